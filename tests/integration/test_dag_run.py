"""The four vendors through real Airflow: ``dag.test()`` of one DAG, files in the raw zone."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from include.simulators import RunningSimulator
from tests.conftest import LocalS3, set_connection, without_run

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


def test_every_vendor_exports_through_dag_test(
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
    assert [without_run(key) for key in s3.keys("raw/")] == [
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
    logs = task_log(test_bundle, capfd)
    assert "export submitted" in logs
    for secret in secrets_of(simulators):
        assert secret not in logs


def arm(sim: RunningSimulator, **fault: Any) -> None:
    """Arm one firing of a simulator fault (``POST /_sim/faults``)."""
    with sim.admin() as admin:
        admin.post("/_sim/faults", json={"count": 1, **fault}).raise_for_status()


def oleria_posts(oleria: RunningSimulator) -> list[dict[str, Any]]:
    with oleria.admin() as admin:
        log = admin.get("/_sim/requests").json()
    return [r for r in log if r["path"] == "/v1/downloads" and r["method"] == "POST"]


def run_retry_dag(oleria: RunningSimulator, task_id: str, day: dt.datetime) -> Any:
    """dag.test() of one task of the retry DAG (the other is left out of the run).

    (dag.test() deletes an earlier run of the same logical date, state store and all, so
    a Clear is tested on the native stack instead:
    tests/distributed/test_pipeline_on_celery.py.)
    """
    set_connection("oleria_default", oleria.connection())
    with oleria.admin() as admin:
        admin.delete("/_sim/requests")
    dag = load_dag("export_retry_dag").partial_subset(task_ids=[task_id])
    return dag.test(logical_date=day)


def test_a_retry_reattaches_through_the_real_task_state_store(
    test_bundle: Path, simulators: dict[str, RunningSimulator], s3: LocalS3
) -> None:
    oleria = simulators["oleria"]
    dag_run = run_retry_dag(oleria, "crash_after_submit", DAY)

    assert dag_run.state == "success"
    (ti,) = dag_run.get_task_instances()
    assert ti.try_number == 2
    assert len(oleria_posts(oleria)) == 1
    assert s3.keys("raw/vendor=oleria/dataset=crashed/")


def test_a_failed_job_is_resubmitted_and_deferred_again_in_one_try(
    test_bundle: Path, simulators: dict[str, RunningSimulator], s3: LocalS3
) -> None:
    oleria = simulators["oleria"]
    arm(oleria, kind="job_failure")
    dag_run = run_retry_dag(oleria, "heal", DAY + dt.timedelta(days=1))

    assert dag_run.state == "success"
    (ti,) = dag_run.get_task_instances()
    assert ti.try_number == 1  # healed inside the first try
    raw = ti.xcom_pull(task_ids="heal")
    assert [job.get("ended") for job in raw["jobs"]] == ["failed", None]
    assert len(oleria_posts(oleria)) == 2
    assert s3.read(raw["key"])


def task_log(test_bundle: Path, capfd: pytest.CaptureFixture[str]) -> str:
    output = capfd.readouterr()
    return (
        output.out
        + output.err
        + "".join(p.read_text(errors="replace") for p in test_bundle.rglob("*.log"))
    )


def test_a_fresh_export_is_submitted_once_and_its_retry_reattaches(
    test_bundle: Path, simulators: dict[str, RunningSimulator], s3: LocalS3
) -> None:
    oleria = simulators["oleria"]
    dag_run = run_retry_dag(oleria, "fresh_crash", DAY + dt.timedelta(days=2))

    assert dag_run.state == "success"
    (ti,) = dag_run.get_task_instances()
    assert ti.try_number == 2
    assert len(oleria_posts(oleria)) == 1  # fresh once per Clear generation, not per try
    raw = ti.xcom_pull(task_ids="fresh_crash")
    assert [job["try_number"] for job in raw["jobs"]] == [1]


def test_a_long_retry_after_is_spent_deferred_through_dag_test(
    test_bundle: Path,
    simulators: dict[str, RunningSimulator],
    s3: LocalS3,
    capfd: pytest.CaptureFixture[str],
) -> None:
    import time

    oleria = simulators["oleria"]
    arm(oleria, kind="rate_limit", retry_after=3, path="/v1/downloads$")
    started = time.monotonic()
    dag_run = run_retry_dag(oleria, "long_wait", DAY + dt.timedelta(days=3))
    took = time.monotonic() - started

    assert dag_run.state == "success"
    (ti,) = dag_run.get_task_instances()
    assert ti.try_number == 1
    assert [r["status"] for r in oleria_posts(oleria)] == [429, 201]
    assert "waiting 3 s deferred (no worker slot held)" in task_log(test_bundle, capfd)
    assert took >= 3.0  # the 3 s were waited in full, not cut short


def test_an_ambiguous_submission_fails_the_task_without_a_retry(
    test_bundle: Path,
    simulators: dict[str, RunningSimulator],
    s3: LocalS3,
    capfd: pytest.CaptureFixture[str],
) -> None:
    oleria = simulators["oleria"]
    arm(oleria, kind="server_error", status=500, path="/v1/downloads$")
    dag_run = run_retry_dag(oleria, "ambiguous", DAY + dt.timedelta(days=4))

    assert dag_run.state == "failed"
    (ti,) = dag_run.get_task_instances()
    assert ti.state == "failed"
    assert ti.try_number == 1  # retries=1, yet no second try: a person decides
    assert len(oleria_posts(oleria)) == 1  # never sent twice
    assert "may have created a job" in task_log(test_bundle, capfd)
    assert not s3.keys("raw/vendor=oleria/dataset=ambiguous/")


def test_an_expired_veza_export_is_exported_again_in_the_same_try(
    test_bundle: Path, simulators: dict[str, RunningSimulator], s3: LocalS3
) -> None:
    veza = simulators["veza"]
    set_connection("veza_default", veza.connection())
    with veza.admin() as admin:
        admin.delete("/_sim/requests")
    arm(veza, kind="veza_expired")
    dag = load_dag("export_retry_dag").partial_subset(task_ids=["veza_expired"])
    dag_run = dag.test(logical_date=DAY + dt.timedelta(days=5))

    assert dag_run.state == "success"
    (ti,) = dag_run.get_task_instances()
    assert ti.try_number == 1
    raw = ti.xcom_pull(task_ids="veza_expired")
    assert [job.get("ended") for job in raw["jobs"]] == ["EXPIRED", None]
    assert raw["jobs"][1]["resubmit"] is True
    assert raw["resubmit_budget"] == 1
    with veza.admin() as admin:
        creates = [r for r in admin.get("/_sim/requests").json() if r["method"] == "POST"]
    assert len([r for r in creates if "token" not in r["path"]]) == 2
    assert s3.read(raw["key"])
