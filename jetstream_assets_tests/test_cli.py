"""`jetstream-assets run / rerun` as a user runs them (a subprocess against DAGSTER_HOME), and
`validate-config` on good and broken configs."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from jetstream_assets.cli import main
from jetstream_assets.dagster_defs.run_tags import ANALYSIS_DATE_TAG, RERUN_TAG
from jetstream_assets.settings import bundled_metric_hub
from jetstream_assets_tests.fixtures_sample import CLI, BackgroundCommand, cli_env, new_dagster_home
from jetstream_assets_tests.small_sample import (
    ONBOARDING,
    ROLLOUT,
    TAB_GROUPS,
    SmallSample,
    relations,
    small_demo_designs,
    write_small_sample,
)

PARTITION_TAG = "dagster/partition"
RUN_DATE = "2026-10-05"  # no window of either experiment becomes ready: the runs stay short
RERUN_DATE = "2026-10-04"  # tab-groups-live's pre-enrollment week (ready 2026-09-29) and week 1 are ready


@dataclass
class CliHome:
    sample: SmallSample
    dagster_home: Path
    command: BackgroundCommand

    def analysis_runs(self, **tags: str) -> list[dg.DagsterRun]:
        with dg.DagsterInstance.from_config(str(self.dagster_home)) as instance:
            return list(instance.get_runs(dg.RunsFilter(job_name="experiment_analysis", tags=tags)))


def start(root: Path, *args: str) -> CliHome:
    designs = [d for d in small_demo_designs(300) if d.slug in (TAB_GROUPS, ONBOARDING, ROLLOUT)]
    sample = write_small_sample(root / "home", designs)
    dagster_home = new_dagster_home(root / "dagster_home")
    env = cli_env(sample.home, dagster_home, str(sample.experimenter_json))
    return CliHome(sample, dagster_home, BackgroundCommand(list(args), env))


@pytest.fixture(scope="module", autouse=True)
def commands(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, CliHome]]:
    """The three commands, each in its own homes, started together when the module starts."""
    homes = {
        "run": start(tmp_path_factory.mktemp("cli_run"), "run", "--date", RUN_DATE),
        "limited": start(tmp_path_factory.mktemp("cli_limited"), "run", "--date", RUN_DATE,
                         "--experiment-slug", TAB_GROUPS, "--experiment-slug", "no-such-experiment"),
        "rerun": start(tmp_path_factory.mktemp("cli_rerun"), "rerun", "--experiment-slug", TAB_GROUPS,
                       "--date", RERUN_DATE),
    }
    yield homes
    for home in homes.values():
        home.command.stop()


def test_bad_date_is_a_usage_error() -> None:
    done = subprocess.run([CLI, "run", "--date", "2026-13-01"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "YYYY-MM-DD" in done.stderr


# --- validate-config (in process: the same `main` the console script calls) ---------------------

BUNDLED_CONFIG = Path(bundled_metric_hub()) / "jetstream" / f"{ONBOARDING}.toml"


@pytest.fixture
def validation_env(monkeypatch: pytest.MonkeyPatch, small_sample: SmallSample) -> SmallSample:
    """Dry runs go to the small sample's warehouse; configs resolve against the bundled metric-hub."""
    monkeypatch.setenv("JETSTREAM_HOME", str(small_sample.home))
    monkeypatch.delenv("METRIC_HUB_PATH", raising=False)
    monkeypatch.delenv("JETSTREAM_ENGINE", raising=False)
    return small_sample


def test_validate_config_accepts_a_good_config(validation_env: SmallSample, capsys: pytest.CaptureFixture) -> None:
    assert main(["validate-config", str(BUNDLED_CONFIG)]) == 0
    assert "OK" in capsys.readouterr().out


def test_validate_config_names_the_file_and_line_of_a_syntax_error(
    validation_env: SmallSample, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    broken = tmp_path / "jetstream" / "broken-experiment.toml"
    broken.parent.mkdir()
    broken.write_text('[experiment]\nenrollment_period = 7\n\n[metrics]\nweekly = ["active_hours",,]\n'
                      'overall = ["active_hours"]\n')
    assert main(["validate-config", str(broken)]) == 1
    out = capsys.readouterr().out
    assert f"{broken}:5" in out
    assert "TOML syntax error" in out


def test_validate_config_dry_run_names_the_failing_metric(
    validation_env: SmallSample, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    hub = tmp_path / "metric-hub"
    shutil.copytree(bundled_metric_hub(), hub)
    config = hub / "jetstream" / "bad-sql-experiment.toml"
    config.write_text(
        '[metrics]\nweekly = ["broken_metric"]\n\n[metrics.broken_metric]\n'
        'select_expression = "SUM(no_such_column)"\ndata_source = "clients_daily"\n'
        "statistics = { bootstrap_mean = {} }\n"
    )
    assert main(["validate-config", str(config)]) == 1
    out = capsys.readouterr().out
    assert str(config) in out and "broken_metric" in out


# --- run / rerun (subprocesses started by `commands`) --------------------------------------------


def test_run_records_one_analysis_run_per_analysable_experiment(commands: dict[str, CliHome]) -> None:
    home = commands["run"]
    done = home.command.result()
    assert done.returncode == 0, done.stdout + done.stderr
    runs = home.analysis_runs(**{ANALYSIS_DATE_TAG: RUN_DATE})
    assert sorted(r.tags[PARTITION_TAG] for r in runs) == sorted([TAB_GROUPS, ONBOARDING])  # not the rollout
    for run in runs:
        assert run.status == dg.DagsterRunStatus.SUCCESS
        assert run.tags[RERUN_TAG] == "false"
    for slug in (TAB_GROUPS, ONBOARDING):
        assert slug in done.stdout
    assert f"enrollments_{TAB_GROUPS.replace('-', '_')}" in relations(home.sample.home)


def test_run_refreshes_the_snapshot_and_monitoring_in_the_same_instance(commands: dict[str, CliHome]) -> None:
    home = commands["run"]
    assert home.command.result().returncode == 0
    with dg.DagsterInstance.from_config(str(home.dagster_home)) as instance:
        jobs = {r.job_name for r in instance.get_runs()}
        partitions = set(instance.get_dynamic_partitions("jetstream_experiments"))
    assert {"experimenter_snapshot", "experiment_analysis", "monitoring_daily"} <= jobs
    assert partitions == {TAB_GROUPS, ONBOARDING}


def test_experiment_slug_limits_the_runs_and_an_unknown_one_fails(commands: dict[str, CliHome]) -> None:
    home = commands["limited"]
    done = home.command.result()
    assert done.returncode == 1, done.stdout + done.stderr
    assert "no-such-experiment" in done.stdout and "not in the Experimenter snapshot" in done.stdout
    runs = home.analysis_runs()
    assert [r.tags[PARTITION_TAG] for r in runs] == [TAB_GROUPS]
    assert runs[0].status == dg.DagsterRunStatus.SUCCESS
    assert ONBOARDING not in done.stdout


def test_rerun_reanalyses_every_window_up_to_the_date(commands: dict[str, CliHome]) -> None:
    home = commands["rerun"]
    done = home.command.result()
    assert done.returncode == 0, done.stdout + done.stderr
    [run] = home.analysis_runs()
    assert run.tags[PARTITION_TAG] == TAB_GROUPS
    assert run.tags[ANALYSIS_DATE_TAG] == RERUN_DATE
    assert run.tags[RERUN_TAG] == "true"
    assert run.status == dg.DagsterRunStatus.SUCCESS
    tables = relations(home.sample.home)
    assert tables["statistics_tab_groups_live_preenrollment_week_1"] == "BASE TABLE"
    assert tables["statistics_tab_groups_live_week_1"] == "BASE TABLE"
    assert tables["statistics_tab_groups_live_weekly"] == "VIEW"
    assert "statistics_tab_groups_live_week_2" not in tables
