"""A local folder in metric-hub layout, and Jetstream's resolution of one experiment's configuration.

    definitions/<platform>.toml, definitions/functions.toml
    jetstream/definitions/<platform>.toml, jetstream/definitions/functions.toml (Jetstream's layer)
    jetstream/<slug>.toml, jetstream/defaults/<platform>.toml, jetstream/outcomes/<platform>/<slug>.toml

Resolution: platform defaults -> the experiment's own TOML (wins) -> outcomes (Experimenter's, then
`[experiment].outcomes`) -> names not defined locally come from the platform's definitions: the root
`definitions/` merged with `jetstream/definitions/` (which wins, field by field; Jetstream loads metric-hub
as two collections, the root and `jetstream/`, and merges the second into the first).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from jetstream_assets.core.naming import is_valid_slug
from jetstream_assets.experimenter.models import Experiment
from jetstream_assets.metric_hub.errors import ConfigError
from jetstream_assets.metric_hub.git_history import is_git_work_tree, last_commit_hash
from jetstream_assets.metric_hub.models import AnalysisConfig
from jetstream_assets.metric_hub.outcomes import OutcomeSpec, parse_outcome
from jetstream_assets.metric_hub.resolver import ResolveInputs, resolve_analysis
from jetstream_assets.metric_hub.spec import ConfigSpec, parse_spec
from jetstream_assets.metric_hub.templating import SqlTemplates, functions_from_toml
from jetstream_assets.metric_hub.toml_file import TomlFile, read_toml

METRIC_HUB_BLOB_URL = "https://github.com/mozilla/metric-hub/blob/main"
# a child of the analysis logger: during an analysis step its WARNINGs become monitoring.logs rows
log = logging.getLogger("jetstream_assets.analysis.metric_hub")


class MetricHub:
    """Reads configs lazily; each file is parsed at most once per instance (make a new one to reload)."""

    def __init__(self, path: str | Path, *, commit_hashes: bool = True) -> None:
        """`commit_hashes=False` leaves outcomes' commit hashes null without asking git (validation needs none)."""
        self.root = Path(path)
        self.commit_hashes = commit_hashes
        self._files: dict[Path, TomlFile | None] = {}
        self._definitions: dict[str, ConfigSpec] = {}
        self._outcomes: dict[tuple[str, str], OutcomeSpec | None] = {}
        self._templates: SqlTemplates | None = None
        self._is_git_work_tree: bool | None = None

    # --- paths -----------------------------------------------------------------------------
    def definitions_path(self, platform: str) -> Path:
        return self.root / "definitions" / f"{_path_safe(platform)}.toml"

    def jetstream_definitions_path(self, platform: str) -> Path:
        return self.root / "jetstream" / "definitions" / f"{_path_safe(platform)}.toml"

    def definitions_paths(self, platform: str) -> tuple[Path, Path]:
        """The platform's definition layers, the one that wins last."""
        return self.definitions_path(platform), self.jetstream_definitions_path(platform)

    def functions_path(self) -> Path:
        return self.root / "definitions" / "functions.toml"

    def functions_paths(self) -> tuple[Path, Path]:
        return self.functions_path(), self.root / "jetstream" / "definitions" / "functions.toml"

    def experiment_path(self, slug: str) -> Path | None:
        """jetstream/<slug>.toml; None for a slug that cannot name a file, which so has no config of its own
        (Jetstream still analyses such an experiment, under a sanitised table name)."""
        return self.root / "jetstream" / f"{slug}.toml" if is_valid_slug(slug) else None

    def defaults_path(self, platform: str) -> Path:
        return self.root / "jetstream" / "defaults" / f"{_path_safe(platform)}.toml"

    def outcome_path(self, platform: str, slug: str) -> Path:
        return self.root / "jetstream" / "outcomes" / _path_safe(platform) / f"{_path_safe(slug)}.toml"

    def has_experiment_config(self, slug: str) -> bool:
        path = self.experiment_path(slug)
        return path is not None and path.is_file()

    def experiment_config_slugs(self) -> list[str]:
        folder = self.root / "jetstream"
        return sorted(p.stem for p in folder.glob("*.toml")) if folder.is_dir() else []

    # --- loading ---------------------------------------------------------------------------
    def _file(self, path: Path) -> TomlFile | None:
        if path not in self._files:
            self._files[path] = read_toml(path) if path.is_file() else None
        return self._files[path]

    def read(self, path: Path) -> TomlFile:
        """One file of this checkout, parsed once (raises ConfigError when unreadable)."""
        source = self._file(path)
        if source is None:
            raise ConfigError("no such file", file=str(path))
        return source

    def _spec(self, path: Path) -> ConfigSpec:
        source = self._file(path)
        return parse_spec(source) if source is not None else ConfigSpec()

    def templates(self) -> SqlTemplates:
        """Jinja helpers of both functions.toml files; the jetstream/ one wins for a name in both."""
        if self._templates is None:
            functions: dict[str, str] = {}
            for path in self.functions_paths():
                source = self._file(path)
                if source is not None:
                    functions.update(functions_from_toml(source.data, source.path))
            self._templates = SqlTemplates(functions)
        return self._templates

    def definitions(self, platform: str) -> ConfigSpec:
        """The platform's shared definitions: root definitions/ with jetstream/definitions/ merged over it."""
        if platform not in self._definitions:
            spec = ConfigSpec()
            for path in self.definitions_paths(platform):
                spec = spec.merge(self._spec(path))
            self._definitions[platform] = spec
        return self._definitions[platform]

    def definitions_label(self, platform: str) -> str:
        """How "unknown ..." errors name where shared definitions were looked up."""
        found = [str(p.relative_to(self.root)) for p in self.definitions_paths(platform) if p.is_file()]
        return " + ".join(found) if found else str(self.definitions_path(platform).relative_to(self.root))

    def _outcome(self, platform: str, slug: str) -> OutcomeSpec | None:
        key = (platform, slug)
        if key not in self._outcomes:
            path = self.outcome_path(platform, slug)
            source = self._file(path)
            self._outcomes[key] = parse_outcome(source, slug, self._commit_hash(path)) if source else None
        return self._outcomes[key]

    def _outcomes_for(self, platform: str, slugs: tuple[str, ...]) -> dict[str, OutcomeSpec]:
        # only the outcomes an experiment uses are parsed, so a broken unrelated outcome can't fail it
        found = {slug: self._outcome(platform, slug) for slug in slugs}
        return {slug: outcome for slug, outcome in found.items() if outcome is not None}

    def _commit_hash(self, path: Path) -> str | None:
        """The last commit of `path`; None (warned once per checkout) when metric-hub is not a git work tree."""
        if not self.commit_hashes:
            return None
        if self._is_git_work_tree is None:
            self._is_git_work_tree = is_git_work_tree(self.root)
            if not self._is_git_work_tree:
                log.warning(
                    "metric-hub at %s is not a git work tree: outcome commit hashes are null", self.root
                )
        return last_commit_hash(path) if self._is_git_work_tree else None

    # --- resolution ------------------------------------------------------------------------
    def resolve(
        self, experiment: Experiment, config_file: str | Path | None = None, *, log_warnings: bool = True
    ) -> AnalysisConfig:
        """The experiment's AnalysisConfig; raises ConfigError (with the slug) on any config problem.

        `config_file` replaces jetstream/<slug>.toml (Jetstream's `--config-file`). Keys the config sets but
        the analysis does not act on are logged as WARNINGs (and kept in `config.warnings`).
        """
        try:
            config = self._resolve(experiment, Path(config_file) if config_file else None)
        except ConfigError as e:
            raise e.located(slug=experiment.slug) from None
        if log_warnings:
            for warning in config.warnings:
                log.warning("%s: %s", experiment.slug, warning, extra={"jetstream": {"experiment": experiment.slug}})
        return config

    def _resolve(self, experiment: Experiment, config_file: Path | None) -> AnalysisConfig:
        platform = experiment.app_name
        own_path = config_file or self.experiment_path(experiment.slug)
        own = self._file(own_path) if own_path is not None else None
        if config_file is not None and own is None:
            raise ConfigError("no such config file", file=str(config_file))
        spec = self._spec(self.defaults_path(platform))
        if own is not None:
            spec = spec.merge(parse_spec(own))
        configured_outcomes = _configured_outcomes(spec)
        inputs = ResolveInputs(
            spec=spec,
            definitions=self.definitions(platform),
            outcomes=self._outcomes_for(
                platform, tuple(dict.fromkeys(experiment.outcomes + configured_outcomes))
            ),
            templates=self.templates(),
            definitions_file=self.definitions_label(platform),
            config_file=str(own_path) if own is not None else None,
            config_url=(
                f"{METRIC_HUB_BLOB_URL}/jetstream/{experiment.slug}.toml"
                if own is not None and config_file is None
                else None
            ),
        )
        return resolve_analysis(experiment, inputs)

    def config_fingerprint(self, slug: str, platform: str, outcomes: tuple[str, ...] = ()) -> str:
        """SHA-256 over every file that can change this experiment's analysis.

        Covers its own TOML, the platform defaults, definitions (+ functions), and the outcomes it uses:
        `outcomes` (Experimenter's) plus those its config lists. A missing file counts as "absent", so
        adding one changes the fingerprint too. Files are read afresh, not from this instance's cache.
        """
        own = self.experiment_path(slug)
        listed: tuple[str, ...] = ()
        try:
            listed = _configured_outcomes(parse_spec(read_toml(own))) if own and own.is_file() else ()
        except ConfigError:
            pass  # a broken config still gets a fingerprint (of its bytes)
        paths = [self.defaults_path(platform), *self.definitions_paths(platform), *self.functions_paths()]
        paths += [own] if own is not None else []
        paths += [self.outcome_path(platform, o) for o in sorted(set(outcomes) | set(listed))]
        digest = hashlib.sha256()
        for path in paths:
            digest.update(str(path.relative_to(self.root)).encode() + b"\0")
            digest.update(path.read_bytes() if path.is_file() else b"<absent>")
            digest.update(b"\0")
        return digest.hexdigest()


def _path_safe(name: str) -> str:
    # names come from Experimenter and configs; one with "/" or ".." must not reach other files
    if not is_valid_slug(name):
        raise ConfigError(f"invalid name {name!r}: expected letters, digits, '-' and '_' only")
    return name


def _configured_outcomes(spec: ConfigSpec) -> tuple[str, ...]:
    if spec.experiment is None:
        return ()
    value = spec.experiment.get("outcomes", [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise spec.experiment.error("expected a list of outcome slugs", "outcomes")
    return tuple(value)
