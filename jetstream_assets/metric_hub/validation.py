"""`validate-config`: parse metric-hub files and dry-run their resolution without Experimenter.

A file's role comes from where it sits in the metric-hub layout; each is resolved against a placeholder
experiment (no branches, so any reference_branch is accepted; started today, 7-day enrollment).
A file outside any metric-hub layout is taken as an experiment config, resolved against `metric_hub_path`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from jetstream_assets.experimenter.models import Experiment
from jetstream_assets.metric_hub.errors import ConfigError
from jetstream_assets.metric_hub.loader import MetricHub
from jetstream_assets.metric_hub.resolver import Resolver
from jetstream_assets.metric_hub.spec import ConfigSpec, parse_spec
from jetstream_assets.metric_hub.templating import ExperimentContext, functions_from_toml
from jetstream_assets.metric_hub.toml_file import read_toml

DEFAULT_PLATFORM = "firefox_desktop"


@dataclass(frozen=True)
class _Role:
    kind: str  # experiment | defaults | outcome | definitions | functions | syntax (parsed only)
    root: Path | None  # metric-hub root, None when the file is outside the layout
    platform: str
    slug: str


def placeholder_experiment(
    slug: str, platform: str = DEFAULT_PLATFORM, outcomes: tuple[str, ...] = ()
) -> Experiment:
    return Experiment(
        slug=slug,
        branches=(),
        start_date=dt.date.today(),
        end_date=None,
        enrollment_end_date=None,
        proposed_enrollment=7,
        reference_branch=None,
        app_name=platform,
        outcomes=outcomes,
    )


def validate_path(
    path: str | Path,
    *,
    metric_hub_path: str | Path | None = None,
    platform: str = DEFAULT_PLATFORM,
) -> list[ConfigError]:
    """Every problem found in the TOML file(s) at `path` (a file or a folder searched recursively)."""
    path = Path(path)
    if path.is_dir():
        files = _layout_files(path) if _is_metric_hub_root(path) else sorted(path.rglob("*.toml"))
    elif path.is_file():
        files = [path]
    else:
        return [ConfigError("no such file or folder", file=str(path))]
    errors: dict[str, ConfigError] = {}
    for file in files:
        error = _validate_file(file.resolve(), metric_hub_path, platform)
        if error is not None:
            errors.setdefault(str(error), error)  # one broken default would repeat for every file
    return list(errors.values())


def _validate_file(file: Path, metric_hub_path: str | Path | None, platform: str) -> ConfigError | None:
    role = _role(file, platform)
    try:
        source = read_toml(file)
        if role.kind == "syntax":
            return None
        if role.kind == "functions":
            functions_from_toml(source.data, source.path)
            return None
        if role.kind == "definitions":
            _check_definitions(parse_spec(source), role)
            return None
        hub = MetricHub(role.root or metric_hub_path or file.parent)
        if role.kind == "outcome":
            hub.resolve(placeholder_experiment("placeholder-experiment", role.platform, (role.slug,)))
        elif role.kind == "defaults":
            hub.resolve(placeholder_experiment("placeholder-experiment", role.platform))
        else:
            hub.resolve(placeholder_experiment(role.slug, role.platform), config_file=file)
    except ConfigError as e:
        return e
    return None


def _check_definitions(definitions: ConfigSpec, role: _Role) -> None:
    """Every metric, data source and segment of a definitions file must resolve on its own."""
    assert role.root is not None
    hub = MetricHub(role.root)
    context = ExperimentContext.of(placeholder_experiment("placeholder-experiment", role.platform), 7)
    resolver = Resolver(
        ConfigSpec(), definitions, hub.templates(), context, str(hub.definitions_path(role.platform))
    )
    for name, entry in definitions.metrics.items():
        resolver.metric(name, entry)
    for name, entry in definitions.data_sources.items():
        resolver.data_source(name, entry, "from_expression")
    for name in definitions.segments:
        resolver.segment(name, None)


_LAYOUT = (
    "definitions/*.toml",
    "jetstream/*.toml",
    "jetstream/defaults/*.toml",
    "jetstream/outcomes/*/*.toml",
)


def _is_metric_hub_root(folder: Path) -> bool:
    return (folder / "definitions").is_dir() or (folder / "jetstream").is_dir()


def _layout_files(root: Path) -> list[Path]:
    # a real metric-hub checkout also holds opmon/, looker/, ... configs that Jetstream never reads
    return sorted({p for pattern in _LAYOUT for p in root.glob(pattern)})


def _role(file: Path, platform: str) -> _Role:
    parts = file.parts
    if len(parts) >= 3 and parts[-3:-1] == ("jetstream", "definitions"):
        # Jetstream's statistics for shared metrics: not a layer this resolver reads
        return _Role("syntax", None, platform, file.stem)
    if len(parts) >= 2 and parts[-2] == "definitions":
        kind = "functions" if file.stem == "functions" else "definitions"
        return _Role(kind, file.parents[1], file.stem, file.stem)
    if len(parts) >= 3 and parts[-3:-1] == ("jetstream", "defaults"):
        return _Role("defaults", file.parents[2], file.stem, file.stem)
    if len(parts) >= 4 and parts[-4:-2] == ("jetstream", "outcomes"):
        return _Role("outcome", file.parents[3], parts[-2], file.stem)
    if len(parts) >= 2 and parts[-2] == "jetstream":
        return _Role("experiment", file.parents[1], platform, file.stem)
    return _Role("experiment", None, platform, file.stem)
