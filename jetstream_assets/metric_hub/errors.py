"""The one error type of metric-hub configuration problems, located as precisely as we can."""

from __future__ import annotations

import dataclasses
import re

_TOML_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_TOML_KEY = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_.\-"' ]+?)\s*=""")


class ConfigError(ValueError):
    """A configuration problem: `str()` reads "<file>:<line>: <field>: <reason>" (unknown parts left out)."""

    def __init__(
        self,
        reason: str,
        *,
        file: str | None = None,
        field: str | None = None,
        line: int | None = None,
        slug: str | None = None,
    ) -> None:
        self.reason = reason
        self.file = file
        self.field = field
        self.line = line
        self.slug = slug
        super().__init__(str(self))

    def __str__(self) -> str:
        location = self.file or "<config>"
        if self.line is not None:
            location += f":{self.line}"
        parts = [location, self.field, self.reason] if self.field else [location, self.reason]
        return ": ".join(parts)

    def __reduce__(self):  # keep keyword-only attributes through pickling (Dagster serialises errors)
        return (_rebuild, (self.reason, self.file, self.field, self.line, self.slug))

    def located(
        self,
        *,
        file: str | None = None,
        field: str | None = None,
        line: int | None = None,
        slug: str | None = None,
    ) -> "ConfigError":
        """A copy with the missing location parts filled in (parts already known are kept)."""
        return ConfigError(
            self.reason,
            file=self.file or file,
            field=self.field or field,
            line=self.line if self.line is not None else line,
            slug=self.slug or slug,
        )


def _rebuild(reason, file, field, line, slug) -> ConfigError:
    return ConfigError(reason, file=file, field=field, line=line, slug=slug)


@dataclasses.dataclass(frozen=True)
class _Header:
    line: int
    path: tuple[str, ...]


def _split_dotted(text: str) -> tuple[str, ...]:
    parts = re.findall(r'"[^"]*"|\'[^\']*\'|[^.]+', text)
    return tuple(p.strip().strip("\"'") for p in parts)


def line_of_field(text: str, field: str, fallback: bool = True) -> int | None:
    """Best-effort 1-based line of a dotted `field` in TOML `text` (tomllib reports no positions).

    Looks for the longest table header that prefixes the field, then for the next key of the field
    inside that table (or a dotted key such as `a.b = ...`). Falls back to the header's line unless
    `fallback` is off.
    """
    wanted = _split_dotted(field)
    lines = text.splitlines()
    headers = [_Header(0, ())]
    for number, raw in enumerate(lines, start=1):
        match = _TOML_HEADER.match(raw)
        if match:
            headers.append(_Header(number, _split_dotted(match.group(1))))
    best: _Header | None = None
    for header in headers:
        if wanted[: len(header.path)] == header.path and (best is None or len(header.path) > len(best.path)):
            best = header
    if best is None:
        return None
    rest = wanted[len(best.path) :]
    if not rest:
        return best.line or None
    following = [h.line for h in headers if h.line > best.line]
    end = min(following) - 1 if following else len(lines)
    for number in range(best.line + 1, end + 1):
        match = _TOML_KEY.match(lines[number - 1])
        if match:
            key = _split_dotted(match.group(1))
            overlap = min(len(key), len(rest))
            if key[:overlap] == rest[:overlap]:  # `statistics = {...}` holds `statistics.binomial`
                return number
    return (best.line or None) if fallback else None
