"""deploy/: the production dagster.yaml validates (instance schema and each configured class's own
schema, Postgres URL built from env vars, no server contacted); the Dockerfile installs from the
repo's own files (docker is not available here: its COPY/RUN steps are checked by parsing, and the
same `pip install ".[deploy]"` was run in a fresh venv by hand, see docs/deployment.md); the Helm
values and the settings ConfigMap agree with the code."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml
from dagster._config import process_config
from dagster._core.instance.ref import InstanceRef
from dagster._serdes import ConfigurableClassData

from jetstream_assets.dagster_defs.resources import GCP_SETTINGS
from jetstream_assets.settings import SETTINGS

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
PG_ENV = {"DAGSTER_PG_HOST": "10.1.2.3", "DAGSTER_PG_DB": "dagster", "DAGSTER_PG_USERNAME": "dagster",
          "DAGSTER_PG_PASSWORD": "s3cret-pw", "DAGSTER_COMPUTE_LOG_BUCKET": "dagster-logs"}


@pytest.fixture
def instance_ref(monkeypatch) -> InstanceRef:
    for name, value in PG_ENV.items():
        monkeypatch.setenv(name, value)
    return InstanceRef.from_dir(str(DEPLOY))  # validates dagster.yaml against the instance schema


def _validated(data: ConfigurableClassData) -> dict:
    """The class's own config schema applied to its config (env vars resolved), without instantiating it."""
    module = __import__(data.module_name, fromlist=[data.class_name])
    klass = getattr(module, data.class_name)
    result = process_config(klass.config_type(), yaml.safe_load(data.config_yaml))
    assert result.success, result.errors
    return result.value


def test_instance_uses_postgres_without_secrets_in_the_file(instance_ref: InstanceRef) -> None:
    pytest.importorskip("dagster_postgres")
    from dagster_postgres.utils import pg_url_from_config

    assert instance_ref.run_storage_data.module_name == "dagster_postgres"
    config = _validated(instance_ref.run_storage_data)
    # psycopg2 named: SQLAlchemy 2.1 reads a bare `postgresql://` as psycopg 3, which is not installed
    assert pg_url_from_config(config) == "postgresql+psycopg2://dagster:s3cret-pw@10.1.2.3:5432/dagster"
    assert instance_ref.event_storage_data.class_name == "PostgresEventLogStorage"
    assert instance_ref.schedule_storage_data.class_name == "PostgresScheduleStorage"
    assert "s3cret" not in (DEPLOY / "dagster.yaml").read_text()


def test_runs_launch_as_kubernetes_jobs(instance_ref: InstanceRef) -> None:
    pytest.importorskip("dagster_k8s")
    assert (instance_ref.run_launcher_data.module_name, instance_ref.run_launcher_data.class_name) == (
        "dagster_k8s", "K8sRunLauncher")
    config = _validated(instance_ref.run_launcher_data)
    assert config["env_config_maps"] == ["jetstream-assets-env"]
    assert config["run_k8s_config"]["container_config"]["resources"]["limits"]["memory"] == "8Gi"


def test_compute_logs_go_to_gcs_and_queues_are_bounded(instance_ref: InstanceRef) -> None:
    assert instance_ref.compute_logs_data.class_name == "GCSComputeLogManager"
    assert _validated(instance_ref.compute_logs_data)["bucket"] == "dagster-logs"
    concurrency = instance_ref.settings["concurrency"]
    assert concurrency["runs"]["max_concurrent_runs"] == 40
    assert {"key": "dagster/backfill", "limit": 10} in concurrency["runs"]["tag_concurrency_limits"]
    assert concurrency["pools"]["granularity"] == "op" and concurrency["pools"]["default_limit"] == 30
    assert instance_ref.settings["run_monitoring"]["max_runtime_seconds"] == 6 * 3600
    # a dead run's pool slots come back (test_postgres_instance.py shows the queue draining)
    assert instance_ref.settings["run_monitoring"]["free_slots_after_run_end_seconds"] > 0


def _dockerfile() -> list[tuple[str, str]]:
    lines = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text()).splitlines()
    return [tuple(line.split(None, 1)) for line in lines if line.strip() and not line.startswith("#")]


def test_dockerfile_installs_from_the_repos_own_files() -> None:
    steps = _dockerfile()
    copied = [shlex.split(args)[:-1] for op, args in steps if op == "COPY"]
    sources = [s for group in copied for s in group]
    for source in sources:
        assert (REPO / source).exists(), source
    assert {"pyproject.toml", "jetstream_assets"} <= set(sources)
    installs = [args for op, args in steps if op == "RUN" and "pip install" in args]
    assert installs == ['python -m pip install ".[deploy]"']
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    deploy_extra = " ".join(pyproject["project"]["optional-dependencies"]["deploy"])
    assert "dagster-postgres" in deploy_extra and "dagster-k8s" in deploy_extra
    cmd = next(args for op, args in steps if op == "CMD")
    assert pyproject["tool"]["dagster"]["module_name"] in cmd
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    for source in sources:  # every copied path is let through the ignore file
        assert f"!{source.rstrip('/')}" in ignored or f"!{source.rstrip('/')}/" in ignored, source


def test_helm_values_and_settings_configmap_agree_with_the_code() -> None:
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    deployment = values["dagster-user-deployments"]["deployments"][0]
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert pyproject["tool"]["dagster"]["module_name"] in deployment["dagsterApiGrpcArgs"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher" and values["postgresql"]["enabled"] is False
    queued = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    instance = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    assert queued["maxConcurrentRuns"] == instance["concurrency"]["runs"]["max_concurrent_runs"]
    assert values["postgresql"]["postgresqlScheme"] == instance["storage"]["postgres"]["postgres_db"]["scheme"]
    assert values["dagsterDaemon"]["runMonitoring"]["freeSlotsAfterRunEndSeconds"] == (
        instance["run_monitoring"]["free_slots_after_run_end_seconds"])
    env = yaml.safe_load((DEPLOY / "jetstream-assets-env.yaml").read_text())["data"]
    known = {s.name for s in (*SETTINGS, *GCP_SETTINGS)}
    assert set(env) <= known
    assert {"JETSTREAM_ENGINE", "JETSTREAM_PROJECT", "JETSTREAM_DATASET", "JETSTREAM_BUCKET"} <= set(env)
    assert env["JETSTREAM_ENGINE"] == "bigquery" and env["JETSTREAM_BUCKET"].startswith("gs://")
    assert not any(re.search(r"CREDENTIALS|PASSWORD|KEY", name) for name in env)
