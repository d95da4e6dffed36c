"""Issue #12, "Prove the seam": a fifth vendor that exists only under tests/ runs end to
end through the real DAG file with one folder (tests/fifth_vendor/) and one registry
entry (``vendor: tests.fifth_vendor``), nothing else changed.

Real parts only: the DagBag of dags/compliance_exports.py built from a registry written
here, ``dag.test()``, the local S3 server and the Acme simulator over HTTP.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

from compliance_exports.core.errors import ExportValidationError
from compliance_exports.core.vendor import load_vendor
from compliance_exports.registry import REGISTRY_ENV, RegistryError, load_registry
from tests.conftest import set_connection
from tests.fifth_vendor import VENDOR
from tests.fifth_vendor.simulator import AcmeSimulator, render_csv

pytestmark = [pytest.mark.airflow, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
NAME = "acme_admin_events"
DAG_ID = "acme_exports"  # the registry's default: <vendor>_exports
DAY = dt.date(2026, 3, 10)
HEAL_DAY = dt.date(2026, 3, 11)  # dag.test() replaces a run of the same logical date
RECOVER_DAY = dt.date(2026, 3, 12)
DRY_RUN_DAY = dt.date(2026, 3, 12)
ENTRY: dict[str, Any] = {
    "vendor": "tests.fifth_vendor",
    "dataset": "admin_events",
    "kind": "windowed",
    "description": "Acme admin audit log events of the interval.",
    "acme": {"audit_log": "admin"},
    "schema": {
        "event_id": "string",
        "occurred_at": "timestamp",
        "actor": "string",
        "action": "string",
        "target": "string",
        "success": "bool",
    },
}
DEFAULTS: dict[str, Any] = {
    "schedule": "0 0 * * *",
    "timezone": "UTC",
    "retries": 2,
    "retry_delay": "1s",
    "poll_interval": "1s",  # the simulator's jobs take 0.6 s: no 15 s wait between polls
    "lake": {"bucket": "compliance-lake", "aws_conn_id": "aws_lake", "sse": "AES256"},
}


def write_registry(path: Path, entry: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump({"defaults": DEFAULTS, "exports": {NAME: entry}}))
    return path


@pytest.fixture(scope="module")
def acme() -> Iterator[AcmeSimulator]:
    sim = AcmeSimulator().start()
    set_connection("acme_default", sim.connection())
    yield sim
    sim.stop()


@pytest.fixture
def acme_sim(acme: AcmeSimulator) -> Iterator[AcmeSimulator]:
    """The module's simulator: no job, no armed failure, an empty request log."""
    acme.reset()
    yield acme
    acme.reset()


@pytest.fixture(scope="module")
def acme_dag(
    tmp_path_factory: pytest.TempPathFactory, airflow_db: Path, s3_server: Any
) -> Iterator[Any]:
    """The real DAG file's DAG for a registry of ONE entry naming the test vendor.

    The registry stays selected for the module: the trigger form's defaults are read
    from it on every run (tests.conftest.form_defaults).
    """
    from airflow.dag_processing.dagbag import DagBag

    registry = write_registry(tmp_path_factory.mktemp("acme") / "exports.yaml", ENTRY)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(REGISTRY_ENV, str(registry))
        bag = DagBag(dag_folder=str(REPO / "dags" / "compliance_exports.py"))
        assert bag.import_errors == {}
        assert set(bag.dags) == {DAG_ID}
        yield bag.dags[DAG_ID]


def _posts(sim: AcmeSimulator) -> list[dict[str, Any]]:
    return [json.loads(r["body"]) for r in sim.requests if r["method"] == "POST"]


def _export_raw(dagrun: Any) -> dict[str, Any]:
    """What the mapped ``export`` task returned (its RawObject) through XCom."""
    (ti,) = [t for t in dagrun.get_task_instances() if t.task_id == f"{NAME}.export"]
    raw: dict[str, Any] = ti.xcom_pull(task_ids=ti.task_id, map_indexes=ti.map_index)
    return raw


def _check_landed(s3: Any, day: dt.date, sim: AcmeSimulator, job_id: str) -> dict[str, Any]:
    """The raw CSV and the curated partition of ``day`` are the simulator's job ``job_id``."""
    entry = load_registry().get(NAME)
    partition = entry.partition(day)
    assert partition.raw_prefix == f"raw/vendor=acme/dataset=admin_events/dt={day}/"
    job = sim.jobs[job_id]
    (raw_key,) = s3.keys(partition.raw_prefix)
    assert raw_key.endswith(".csv")
    expected = render_csv("admin", job["since"], job["until"], False)
    assert s3.read(raw_key).decode() == expected, "the raw zone holds the file as it came"
    manifest = json.loads(s3.read(partition.manifest_key))
    assert (manifest["vendor"], manifest["dataset"], manifest["day"]) == (
        "acme",
        "admin_events",
        day.isoformat(),
    )
    assert manifest["job_id"] == job_id
    assert manifest["raw"]["key"] == raw_key
    assert manifest["request"]["dataset"] == "admin"
    rows = sum(pq.read_table(io.BytesIO(s3.read(p["key"]))).num_rows for p in manifest["parts"])
    assert rows == manifest["rows"] == job["rows"] > 0, "rows differ from the simulator's"
    assert not any(manifest["drift"].values()), "the CSV has exactly the declared columns"
    return manifest


def test_the_vendor_is_found_by_its_dotted_path() -> None:
    assert load_vendor("tests.fifth_vendor") is VENDOR
    # the raw zone's vendor= comes from the hook, the curated one from the spec
    assert VENDOR.operator_class().hook_class.vendor == VENDOR.name == "acme"


def test_one_registry_entry_runs_end_to_end(
    acme_dag: Any, acme_sim: AcmeSimulator, s3: Any, run_for_day: Any
) -> None:
    assert set(acme_dag.task_ids) == {f"{NAME}.plan", f"{NAME}.export", f"{NAME}.land"}

    dagrun = run_for_day(acme_dag, DAY)

    states = {(ti.task_id, ti.map_index): ti.state for ti in dagrun.get_task_instances()}
    assert dagrun.state == "success", states
    # one job, asked for exactly the slice's [start, end) of the data interval
    assert _posts(acme_sim) == [
        {
            "dataset": "admin",
            "since": f"{DAY}T00:00:00.000Z",
            "until": f"{DAY + dt.timedelta(days=1)}T00:00:00.000Z",
            "include_system": False,
        }
    ]
    (job_id,) = acme_sim.jobs
    manifest = _check_landed(s3, DAY, acme_sim, job_id)
    assert manifest["data_interval"]["start"].startswith(DAY.isoformat())
    raw = _export_raw(dagrun)
    assert [job["job_id"] for job in raw["jobs"]] == [job_id]


def test_a_job_that_ends_in_error_is_resubmitted(
    acme_dag: Any, acme_sim: AcmeSimulator, s3: Any, run_for_day: Any
) -> None:
    acme_sim.fail_first_job_of("admin")

    dagrun = run_for_day(acme_dag, HEAL_DAY)

    states = {(ti.task_id, ti.map_index): ti.state for ti in dagrun.get_task_instances()}
    assert dagrun.state == "success", states
    failed, healed = acme_sim.jobs
    assert [acme_sim.jobs[j]["state"] for j in (failed, healed)] == ["error", "done"]
    assert len(_posts(acme_sim)) == 2
    raw = _export_raw(dagrun)
    assert [job["job_id"] for job in raw["jobs"]] == [failed, healed]
    assert [job.get("ended") for job in raw["jobs"]] == ["error", None]
    assert "export_failed: the audit store timed out" in raw["jobs"][0]["reason"]
    assert [job["resubmit"] for job in raw["jobs"]] == [False, True]
    _check_landed(s3, HEAL_DAY, acme_sim, healed)


def test_a_submission_whose_answer_was_lost_is_recovered_not_sent_again(
    acme_dag: Any, acme_sim: AcmeSimulator, s3: Any, run_for_day: Any
) -> None:
    """The vendor created the job but its answer was lost (500): the hook finds the job
    by listing the request's jobs submitted since (Acme gives that way), and the task
    follows it; nothing is submitted twice."""
    acme_sim.lose_next_answer()

    dagrun = run_for_day(acme_dag, RECOVER_DAY)

    states = {(ti.task_id, ti.map_index): ti.state for ti in dagrun.get_task_instances()}
    assert dagrun.state == "success", states
    (job_id,) = acme_sim.jobs
    assert len(_posts(acme_sim)) == 1
    assert [r["status"] for r in acme_sim.requests if r["method"] == "POST"] == [500]
    raw = _export_raw(dagrun)
    assert [job["job_id"] for job in raw["jobs"]] == [job_id]
    _check_landed(s3, RECOVER_DAY, acme_sim, job_id)


def test_a_dry_run_builds_the_operator_and_only_tests_the_connection(
    acme_dag: Any, acme_sim: AcmeSimulator, s3: Any, run_for_day: Any
) -> None:
    """The dry run instantiates the operator with every slice's kwargs and calls
    build_request (a slice_request key the operator does not declare fails here), and
    tests the connection with the hook's probe_call: one GET, no job."""
    dagrun = run_for_day(acme_dag, DRY_RUN_DAY, {"dry_run": True})

    states = {ti.task_id: ti.state for ti in dagrun.get_task_instances()}
    assert dagrun.state == "success", states
    assert states[f"{NAME}.plan"] == "skipped"
    assert [(r["method"], r["path"], r["status"]) for r in acme_sim.requests] == [
        ("GET", "/api/exports/connection-probe", 404)
    ]
    assert acme_sim.jobs == {}
    assert s3.keys() == []


@pytest.mark.parametrize(
    ("block", "field"),
    [
        ({}, "audit_log"),
        ({"audit_log": "billing"}, "audit_log"),
        ({"audit_log": "admin", "include_system": "yes"}, "include_system"),
        ({"audit_log": "admin", "columns": ["actor"]}, "columns"),
    ],
)
def test_a_bad_registry_block_names_the_field(
    tmp_path: Path, block: dict[str, Any], field: str
) -> None:
    path = write_registry(tmp_path / "exports.yaml", {**ENTRY, "acme": block})
    with pytest.raises(RegistryError, match=rf"exports\.{NAME}\.acme\.{field}: "):
        load_registry(path)


def test_a_snapshot_kind_is_refused(tmp_path: Path) -> None:
    path = write_registry(tmp_path / "exports.yaml", {**ENTRY, "kind": "snapshot"})
    with pytest.raises(RegistryError, match=rf"exports\.{NAME}\.acme\.kind: .*windowed"):
        load_registry(path)


def test_the_operator_validates_before_any_request(acme_sim: AcmeSimulator) -> None:
    operator = VENDOR.operator_class()(
        task_id="bad_window",
        dataset="admin_events",
        bucket="compliance-lake",
        audit_log="admin",
        since="2026-03-11T00:00:00.000Z",
        until="2026-03-10T00:00:00.000Z",
    )
    with pytest.raises(ExportValidationError, match="until"):
        operator.execute(context={})
    assert acme_sim.requests == []
