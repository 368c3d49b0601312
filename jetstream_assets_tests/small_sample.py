"""A small, deterministic sample for pipeline tests: the demo's slugs and dates (so the bundled
metric-hub configs apply) with a few hundred clients per experiment, written in well under 3 s.

`write_small_sample(home)` writes `home/warehouse.duckdb` (telemetry tables) and
`home/experimenter_v8.json` (the matching Experimenter body); `analysis_resources` builds the
resources a test passes to `dg.materialize` or a sensor/schedule context.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import duckdb
import pandas as pd

from jetstream_assets.dagster_defs.resources import (
    BucketResource,
    ExperimenterResource,
    MetricHubResource,
    WarehouseResource,
)
from jetstream_assets.sample.designs import DEMO_DESIGNS, BranchDesign, ExperimentDesign
from jetstream_assets.sample.experimenter_payload import experimenter_payload
from jetstream_assets.sample.telemetry import generate_telemetry, write_telemetry

# pre-enrollment weeks of the earliest demo experiment (start 2026-09-01) need a week before it
DATA_START = dt.date(2026, 8, 20)
DATA_END = dt.date(2026, 10, 12)
SEED = 4242
BACKGROUND_CLIENTS = 200
CLIENTS_PER_EXPERIMENT = 600

TAB_GROUPS = "tab-groups-live"  # 3 branches; weekly windows ready on 2026-10-04 and 2026-10-11
ONBOARDING = "onboarding-custom-metrics"  # has its own jetstream/<slug>.toml
SEARCH_SHORTCUTS = "search-shortcuts-complete"
ROLLOUT = "default-search-rollout"
BRAND_NEW = "brand-new-experiment"

# the days on which tab-groups-live (enrollment 2026-09-20..27, so L = 2026-09-28) gets a new window
TAB_GROUPS_PREENROLLMENT_READY = dt.date(2026, 9, 29)
TAB_GROUPS_WEEK_READY = (dt.date(2026, 10, 4), dt.date(2026, 10, 11))

RESULTS_DATASET = "mozanalysis"
MONITORING_DATASET = "monitoring"


@dataclass(frozen=True)
class SmallSample:
    home: Path
    designs: tuple[ExperimentDesign, ...]
    payload: list[dict[str, Any]]

    @property
    def warehouse_path(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def experimenter_json(self) -> Path:
        return self.home / "experimenter_v8.json"

    @property
    def bucket(self) -> Path:
        return self.home / "bucket"

    @property
    def slugs(self) -> list[str]:
        return [d.slug for d in self.designs]


def small_demo_designs(clients: int = CLIENTS_PER_EXPERIMENT) -> tuple[ExperimentDesign, ...]:
    """The demo's experiments with `clients` clients each (those with none keep none)."""
    return tuple(dataclasses.replace(d, n_clients=min(d.n_clients, clients)) for d in DEMO_DESIGNS)


def like_tab_groups(slug: str, *, clients: int = 400, **changes: Any) -> ExperimentDesign:
    """An experiment with tab-groups-live's dates (first weekly window ready on 2026-10-04) and two
    branches, for scenarios that need several experiments analysed on the same date."""
    template = next(d for d in DEMO_DESIGNS if d.slug == TAB_GROUPS)
    fields = dict(
        slug=slug,
        user_facing_name=slug,
        branches=(BranchDesign("control", 1), BranchDesign("treatment", 1, {"active_hours_sum": 1.1})),
        n_clients=clients,
    )
    return dataclasses.replace(template, **(fields | changes))


def write_small_sample(home: Path, designs: Sequence[ExperimentDesign] | None = None) -> SmallSample:
    """Telemetry of `designs` (default: the small demo) in `home/warehouse.duckdb`, plus its
    Experimenter body in `home/experimenter_v8.json`. Same designs, same bytes."""
    designs = tuple(designs if designs is not None else small_demo_designs())
    home.mkdir(parents=True, exist_ok=True)
    telemetry = generate_telemetry(
        designs, data_start=DATA_START, data_end=DATA_END, background_clients=BACKGROUND_CLIENTS, seed=SEED
    )
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        write_telemetry(con, telemetry)
    sample = SmallSample(home=home, designs=designs, payload=experimenter_payload(designs))
    sample.experimenter_json.write_text(json.dumps(sample.payload))
    return sample


def analysis_resources(
    home: Path, *, experimenter_url: str | None = None, metric_hub_path: str = ""
) -> dict[str, Any]:
    """Resources of the analysis assets for an embedded home (the Experimenter body defaults to the
    sample's file; the metric-hub folder to the bundled configs)."""
    return {
        "warehouse": WarehouseResource(home=str(home)),
        "bucket": BucketResource(home=str(home)),
        "experimenter": ExperimenterResource(url=experimenter_url or str(home / "experimenter_v8.json")),
        "metric_hub": MetricHubResource(path=metric_hub_path),
    }


def query(home: Path, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
    """Run `sql` (with `?` parameters) on the home's warehouse through a short-lived read-only connection."""
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql, list(params)).df()


def relations(home: Path, dataset: str = RESULTS_DATASET) -> dict[str, str]:
    """Table and view names of a dataset -> 'BASE TABLE' | 'VIEW'."""
    frame = query(
        home,
        "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = ? ORDER BY table_name",
        [dataset],
    )
    return dict(zip(frame["table_name"], frame["table_type"]))


def canonical_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows sorted on every column, so two frames with the same rows compare equal."""
    if frame.empty:
        return frame.reset_index(drop=True)
    return frame.sort_values(list(frame.columns), na_position="first", kind="stable").reset_index(drop=True)


def table_contents(home: Path, table: str, dataset: str = RESULTS_DATASET) -> pd.DataFrame:
    """Every row of a table (flat columns only), in canonical order."""
    return canonical_rows(query(home, f'SELECT * FROM "{dataset}"."{table}"'))


def log_rows(home: Path, experiment: str | None = None) -> pd.DataFrame:
    """`monitoring.logs` rows (of one experiment when given); empty when no record was ever logged."""
    if "logs" not in relations(home, MONITORING_DATASET):
        return pd.DataFrame(columns=["experiment", "log_level", "message", "metric", "exception_type"])
    if experiment is None:
        return query(home, f"SELECT * FROM {MONITORING_DATASET}.logs ORDER BY timestamp")
    return query(home, f"SELECT * FROM {MONITORING_DATASET}.logs WHERE experiment = ? ORDER BY timestamp", [experiment])


def snapshot_rows(home: Path) -> list[dict[str, Any]]:
    """`monitoring.experimenter_experiments_v1` as JSON-able records (it has nested columns), in slug order."""
    frame = query(home, f"SELECT * FROM {MONITORING_DATASET}.experimenter_experiments_v1 ORDER BY normandy_slug")
    return json.loads(frame.to_json(orient="records"))
