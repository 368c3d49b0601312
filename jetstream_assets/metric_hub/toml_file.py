"""Reading one metric-hub TOML file, keeping its text so errors can point at lines."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jetstream_assets.metric_hub.errors import ConfigError, line_of_field

_TOML_POSITION = re.compile(r"\(at line (\d+), column \d+\)")


@dataclass(frozen=True)
class TomlFile:
    path: str  # as shown in errors
    text: str
    data: dict[str, Any] = field(hash=False)

    def error(self, reason: str, field_path: str | None = None, slug: str | None = None) -> ConfigError:
        line = line_of_field(self.text, field_path) if field_path else None
        return ConfigError(reason, file=self.path, field=field_path, line=line, slug=slug)


def parse_toml(text: str, path: str) -> TomlFile:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        position = _TOML_POSITION.search(str(e))
        reason = _TOML_POSITION.sub("", str(e)).strip()
        raise ConfigError(
            f"TOML syntax error: {reason}",
            file=path,
            line=int(position.group(1)) if position else None,
        ) from None
    return TomlFile(path=path, text=text, data=data)


def read_toml(path: Path) -> TomlFile:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read file: {e}", file=str(path)) from None
    return parse_toml(text, str(path))
