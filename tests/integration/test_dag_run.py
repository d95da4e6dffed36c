"""The four vendors through real Airflow: ``dag.test()`` of one DAG, files in the raw zone."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from include.simulators import RunningSimulator
from tests.conftest import LocalS3, set_connection

pytestmark = [pytest.mark.integration, pytest.mark.airflow]

DAGS = Path(__file__).parent / "dags"
DAY = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)


@pytest.fixture
def test_bundle(airflow_db: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """dag.test() serializes the DAG through a configured bundle: one holding these DAGs."""
    bundle = {
        "name": "lifecycle-tests",
        "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
        "kwargs": {"path": str(DAGS)},
    }
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps([bundle]))
    return airflow_db


def load_dag(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, DAGS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


def secrets_of(simulators: dict[str, RunningSimulator]) -> list[str]:
    return [sim.credentials["password"] for sim in simulators.values()]


def test_every_vendor_runs_submit_wait_fetch_through_dag_test(
    test_bundle: Path,
    sim: dict[str, RunningSimulator],
    s3: LocalS3,
    capfd: pytest.CaptureFixture[str],
) -> None:
    simulators = sim  # request logs start empty: every POST counted below is this run's
    for vendor, running in simulators.items():
        set_connection(f"{vendor}_default", running.connection())
    dag_run = load_dag("export_lifecycle_dag").test(logical_date=DAY)

    assert dag_run.state == "success"
    partition = "dt=2026-11-20"
    assert s3.keys("raw/") == [
        f"raw/vendor=maxsight/dataset=audit_events/{partition}/audit_events.csv",
        f"raw/vendor=oleria/dataset=identities/{partition}/identities.csv",
        f"raw/vendor=sailpoint/dataset=identities/{partition}/identities.csv",
        f"raw/vendor=veza/dataset=access_review/{partition}/access_review.csv",
    ]
    for vendor in ("oleria", "veza", "sailpoint"):
        with simulators[vendor].admin() as admin:
            posts = [r for r in admin.get("/_sim/requests").json() if r["method"] == "POST"]
        submits = [r for r in posts if "token" not in r["path"]]
        assert len(submits) == 1, vendor
    output = capfd.readouterr()
    logs = output.out + output.err
    logs += "".join(p.read_text(errors="replace") for p in test_bundle.rglob("*.log"))
    assert "export submitted" in logs
    for secret in secrets_of(simulators):
        assert secret not in logs


def test_a_retried_submit_reattaches_through_the_real_task_state_store(
    test_bundle: Path, simulators: dict[str, RunningSimulator]
) -> None:
    oleria = simulators["oleria"]
    set_connection("oleria_default", oleria.connection())
    with oleria.admin() as admin:
        admin.delete("/_sim/requests")
    dag_run = load_dag("submit_retry_dag").test(logical_date=DAY)

    assert dag_run.state == "success"
    (ti,) = dag_run.get_task_instances()
    assert ti.try_number == 2
    with oleria.admin() as admin:
        posts = [r for r in admin.get("/_sim/requests").json() if r["path"] == "/v1/downloads"]
    assert [r["method"] for r in posts] == ["POST"]
