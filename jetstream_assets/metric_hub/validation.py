"""`validate-config`'s checks, as Jetstream's `validate_config` runs them (no SQL here).

A file's role comes from where it sits in the metric-hub layout. An experiment config is resolved against
its Experimenter record (platform, dates, branches) when there is one; otherwise against a placeholder
experiment on `platform` whose dates cannot conflict with the config's own. Defaults, outcomes and
definitions are resolved on their own platform (the file's or folder's name). A file outside any
metric-hub layout is taken as an experiment config, resolved against `metric_hub_path`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jetstream_assets.experimenter.models import Experiment
from jetstream_assets.metric_hub.errors import ConfigError
from jetstream_assets.metric_hub.loader import MetricHub
from jetstream_assets.metric_hub.models import AnalysisConfig
from jetstream_assets.core.platforms import PLATFORMS
from jetstream_assets.metric_hub.resolver import Resolver
from jetstream_assets.metric_hub.spec import ConfigSpec
from jetstream_assets.metric_hub.templating import ExperimentContext, functions_from_toml
from jetstream_assets.metric_hub.toml_file import TomlFile

DEFAULT_PLATFORM = "firefox_desktop"
PLACEHOLDER_LEAD_DAYS = 35  # a placeholder start this long before the config's end leaves room for enrollment
PLACEHOLDER_ENROLLMENT_DAYS = 14  # Jetstream's dummy experiments' proposed enrollment
PLACEHOLDER_SLUG = "dummy_experiment"


@dataclass(frozen=True)
class FileCheck:
    """The verdict on one file: its error (None when valid), warnings, and for an experiment config
    the resolved configuration (what a dry run needs)."""

    file: Path
    error: ConfigError | None = None
    warnings: tuple[str, ...] = ()
    config: AnalysisConfig | None = None


@dataclass(frozen=True)
class _Role:
    kind: str  # experiment | defaults | outcome | definitions | functions
    root: Path | None  # metric-hub root, None when the file is outside the layout
    platform: str
    slug: str


def _as_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return None
    return None  # a malformed override is reported when the config itself is resolved


def placeholder_dates(start_override: Any, end_override: Any, today: dt.date | None = None) -> tuple[dt.date, None]:
    """(start, end) of a placeholder experiment for a config with no Experimenter record: its own
    start_date when it sets one, else a start before its own end_date (or before today), and no end of
    its own, so that the config's dates can never conflict with the placeholder's."""
    start = _as_date(start_override)
    if start is None:
        end = _as_date(end_override)
        anchor = min(end, today or dt.date.today()) if end else (today or dt.date.today())
        start = anchor - dt.timedelta(days=PLACEHOLDER_LEAD_DAYS)
    return start, None


def placeholder_experiment(
    slug: str,
    platform: str = DEFAULT_PLATFORM,
    outcomes: tuple[str, ...] = (),
    own: Mapping[str, Any] | None = None,
) -> Experiment:
    """A stand-in Experimenter record (no branches, so any reference_branch is accepted); `own` is the
    config's `[experiment]` table, whose dates the placeholder's must not contradict."""
    own = own or {}
    start, end = placeholder_dates(own.get("start_date"), own.get("end_date"))
    return Experiment(
        slug=slug,
        branches=(),
        start_date=start,
        end_date=end,
        enrollment_end_date=None,
        proposed_enrollment=PLACEHOLDER_ENROLLMENT_DAYS,
        reference_branch=None,
        app_name=platform,
        outcomes=outcomes,
    )


class Validator:
    """Checks files one by one; every metric-hub checkout is loaded once (definitions, functions and
    outcomes parsed once for all the files that use them)."""

    def __init__(
        self,
        *,
        metric_hub_path: str | Path | None = None,
        platform: str = DEFAULT_PLATFORM,
        experiments: Mapping[str, Experiment] | None = None,
    ) -> None:
        self.metric_hub_path = Path(metric_hub_path) if metric_hub_path else None
        self.platform = platform
        self.experiments = experiments or {}
        self._hubs: dict[Path, MetricHub] = {}
        self._definition_problems: dict[tuple[Path, str], tuple[str, ...]] = {}

    def hub(self, root: Path) -> MetricHub:
        if root not in self._hubs:
            self._hubs[root] = MetricHub(root, commit_hashes=False)
        return self._hubs[root]

    def check_path(self, path: str | Path) -> list[FileCheck]:
        """A FileCheck per TOML file at `path` (a file, or a folder searched recursively)."""
        path = Path(path)
        if path.is_dir():
            files = layout_files(path) if _is_metric_hub_root(path) else sorted(path.rglob("*.toml"))
        elif path.is_file():
            files = [path]
        else:
            return [FileCheck(path, ConfigError("no such file or folder", file=str(path)))]
        return [self.check_file(file.resolve()) for file in files]

    def check_file(self, file: Path) -> FileCheck:
        role = _role(file, self.platform)
        try:
            hub = self.hub(role.root or self.metric_hub_path or file.parent)
            source = hub.read(file)  # parsed once, also for the resolution below
            if role.kind == "functions":
                functions_from_toml(source.data, source.path)
                return FileCheck(file)
            if role.kind == "definitions":
                key = (hub.root, role.platform)
                if key not in self._definition_problems:  # both layers of a platform share one check
                    self._definition_problems[key] = _check_definitions(hub, role.platform)
                problems = self._definition_problems[key]
                return FileCheck(file, warnings=tuple(p for p in problems if p.startswith(str(file))))
            if role.kind == "outcome":
                placeholder = placeholder_experiment(PLACEHOLDER_SLUG, role.platform, (role.slug,))
                config = hub.resolve(placeholder, log_warnings=False)
                return FileCheck(file, warnings=config.warnings)
            if role.kind == "defaults":
                placeholder = placeholder_experiment(PLACEHOLDER_SLUG, role.platform)
                # a type-keyed defaults file (e.g. messaging.toml) is merged over the platform's, as Jetstream does
                own = None if role.slug == role.platform else file
                config = hub.resolve(placeholder, config_file=own, log_warnings=False)
                return FileCheck(file, warnings=config.warnings)
            config = hub.resolve(self._experiment_for(role.slug, source), config_file=file, log_warnings=False)
            return FileCheck(file, warnings=config.warnings, config=config)
        except ConfigError as e:
            return FileCheck(file, e)

    def _experiment_for(self, slug: str, source: TomlFile) -> Experiment:
        record = self.experiments.get(slug)
        if record is not None:
            return record
        own = source.data.get("experiment")
        return placeholder_experiment(slug, self.platform, own=own if isinstance(own, Mapping) else None)


def validate_path(
    path: str | Path,
    *,
    metric_hub_path: str | Path | None = None,
    platform: str = DEFAULT_PLATFORM,
    experiments: Mapping[str, Experiment] | None = None,
) -> list[ConfigError]:
    """Every problem found in the TOML file(s) at `path` (a file or a folder searched recursively)."""
    validator = Validator(metric_hub_path=metric_hub_path, platform=platform, experiments=experiments)
    errors: dict[str, ConfigError] = {}
    for check in validator.check_path(path):
        if check.error is not None:
            errors.setdefault(str(check.error), check.error)  # one broken default would repeat for every file
    return list(errors.values())


def _check_definitions(hub: MetricHub, platform: str) -> tuple[str, ...]:
    """Every metric, data source and segment of the platform's definitions (both layers), resolved on its
    own. A definition that does not resolve is a WARNING, not a refusal: metric-config-parser only parses
    definitions, and the definition fails the configs that use it (which are refused then)."""
    definitions = hub.definitions(platform)
    context = ExperimentContext.of(placeholder_experiment(PLACEHOLDER_SLUG, platform), PLACEHOLDER_ENROLLMENT_DAYS)
    resolver = Resolver(ConfigSpec(), definitions, hub.templates(), context, hub.definitions_label(platform))
    checks = [
        (lambda n=name, e=entry: resolver.metric(n, e))
        for name, entry in definitions.metrics.items()
        if entry.get("select_expression") or entry.get("depends_on")  # the others only add statistics
    ]
    checks += [(lambda n=name, e=entry: resolver.data_source(n, e, "from_expression"))
               for name, entry in definitions.data_sources.items()]
    checks += [(lambda n=name: resolver.segment(n, None)) for name in definitions.segments]
    problems: list[str] = []
    for check in checks:
        try:
            check()
        except ConfigError as e:
            problems.append(f"{e} (any config using it is refused)")
    return tuple(problems)


_LAYOUT = (
    "definitions/*.toml",
    "jetstream/*.toml",
    "jetstream/defaults/*.toml",
    "jetstream/definitions/*.toml",
    "jetstream/outcomes/*/*.toml",
)


def _is_metric_hub_root(folder: Path) -> bool:
    return (folder / "definitions").is_dir() or (folder / "jetstream").is_dir()


def layout_files(root: Path) -> list[Path]:
    """The files Jetstream reads in a metric-hub checkout (which also holds opmon/, looker/, ... configs)."""
    return sorted({p for pattern in _LAYOUT for p in root.glob(pattern)})


def _own_platform(root: Path, name: str) -> str:
    """A defaults file's platform: its name, when that names an app or a definitions file; else (a
    type-keyed file such as messaging.toml) desktop, as Jetstream validates it."""
    known = name in PLATFORMS or (root / "definitions" / f"{name}.toml").is_file()
    return name if known else DEFAULT_PLATFORM


def _role(file: Path, platform: str) -> _Role:
    parts = file.parts
    if len(parts) >= 2 and parts[-2] == "definitions":
        kind = "functions" if file.stem == "functions" else "definitions"
        in_jetstream = len(parts) >= 3 and parts[-3] == "jetstream"
        return _Role(kind, file.parents[2] if in_jetstream else file.parents[1], file.stem, file.stem)
    if len(parts) >= 3 and parts[-3:-1] == ("jetstream", "defaults"):
        return _Role("defaults", file.parents[2], _own_platform(file.parents[2], file.stem), file.stem)
    if len(parts) >= 4 and parts[-4:-2] == ("jetstream", "outcomes"):
        return _Role("outcome", file.parents[3], parts[-2], file.stem)
    if len(parts) >= 2 and parts[-2] == "jetstream":
        return _Role("experiment", file.parents[1], platform, file.stem)
    return _Role("experiment", None, platform, file.stem)

