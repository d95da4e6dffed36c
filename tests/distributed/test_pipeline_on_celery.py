"""The real export DAGs on the production topology: scheduler, triggerer, Celery workers.

One :class:`DistributedStack` (PostgreSQL + Redis + CeleryExecutor, two workers) for the
module, on the repo's dags/ and the installed package, with the shipped registry (retry delay 1 s).
The four vendor simulators and the S3 lake (moto) run in this test process
(:class:`LocalServices`); their connections reach every Airflow process through the
environment. The tests run in file order and each waits for its runs to finish:

1. the nightly runs of every DAG for yesterday, and a two-day backfill of Oleria,
   publish what the simulators exported (manifest, Parquet rows = the vendor's rows);
2. a triggerer SIGKILLed while an Oleria export waits: a new triggerer takes the
   trigger over, the export completes, the vendor saw exactly one submission;
3. a Celery worker SIGKILLed while it lands an export: the retry publishes exactly one
   copy (one manifest listing every Parquet object of the partition);
4. a deferred SailPoint wait marked failed by a user: the report is cancelled;
5. a deferred Oleria export cleared: the next try re-attaches; its state store deleted
   over REST, then cleared: a fresh export;
6. a deferred SailPoint export cleared: its report is left running and followed by the
   next try; the same task then marked success: the report is cancelled;
7. a live triggerer that stops heartbeating loses its SailPoint trigger to a second
   triggerer; when it wakes it kills its copy (on_kill, apache/airflow#73454) without
   cancelling the report, and the export lands from the one report.
"""

from __future__ import annotations

import datetime as dt
import functools
import signal
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from compliance_exports.landing.layout import Partition
from compliance_exports.registry import ExportEntry, load_registry
from compliance_exports.runs import days_of
from include.distributed import DistributedStack
from include.simulators.clock import today
from tests.distributed.conftest import require_backends
from tests.distributed.conftest import wait_for as poll_until
from tests.lake_checks import check_published

REPO = Path(__file__).resolve().parents[2]
WAIT_TIMEOUT = 240.0  # a failure bound, not a performance expectation
wait_for = functools.partial(poll_until, timeout=WAIT_TIMEOUT)
TODAY = today()  # SIM_TODAY: the simulators' data ends at its midnight
YESTERDAY = TODAY - dt.timedelta(days=1)
BACKFILL_DAG = "oleria_exports"
BACKFILL_DAYS = (TODAY - dt.timedelta(days=5), TODAY - dt.timedelta(days=4))
ENTRIES = {entry.name: entry for entry in load_registry().entries}

pytestmark = [pytest.mark.stack, pytest.mark.airflow, pytest.mark.xdist_group("native-stack")]


# --- module fixtures: the services in this process, one stack -----------------------------


@pytest.fixture(scope="module")
def services() -> Iterator[Any]:
    """The four simulators (data up to today) and the S3 lake, in this process."""
    from include.localstack.services import LocalServices, demo_settings

    with LocalServices(simulator_settings=demo_settings(TODAY)) as running:
        yield running


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, registry_file: Path, services: Any
) -> Iterator[DistributedStack]:
    require_backends()
    env = {
        **services.connection_env(),
        "COMPLIANCE_EXPORTS_REGISTRY": str(registry_file),
        # A dead triggerer's triggers move after this many seconds without heartbeat.
        "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "15",
        # A task whose worker died is failed (and retried) after this many seconds
        # without heartbeat instead of the default 300.
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
    }
    native = DistributedStack(
        dags_folder=REPO / "dags",
        home=tmp_path_factory.mktemp("pipeline-stack"),
        extra_env=env,
    )
    with native:
        yield native


# --- helpers --------------------------------------------------------------------------------


def get(stack: DistributedStack, path: str) -> Any:
    response = stack.rest("GET", path)
    assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
    return response.json()


def wait_dags_parsed(stack: DistributedStack) -> None:
    wanted = set(load_registry().by_dag())

    def parsed() -> bool:
        body = get(stack, "/api/v2/dags?limit=100")
        return wanted <= {dag["dag_id"] for dag in body["dags"]}

    wait_for("the export DAGs to be parsed", parsed)


def unpause(stack: DistributedStack, dag_id: str) -> None:
    response = stack.rest("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})
    assert response.status_code == 200, response.text


def trigger(stack: DistributedStack, dag_id: str, conf: dict[str, Any]) -> str:
    body = {"logical_date": None, "conf": conf}
    response = stack.rest("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["dag_run_id"])


def runs_of(stack: DistributedStack, dag_id: str, run_type: str) -> list[dict[str, Any]]:
    runs = get(stack, f"/api/v2/dags/{dag_id}/dagRuns?limit=100")["dag_runs"]
    return [run for run in runs if run["run_type"] == run_type]


def run_states(stack: DistributedStack, dag_id: str, run_id: str) -> dict[Any, Any]:
    tis = get(stack, f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=200")
    return {
        (t["task_id"], t["map_index"]): (t["state"], t["try_number"]) for t in tis["task_instances"]
    }


def wait_run(stack: DistributedStack, dag_id: str, run_id: str) -> str:
    def finished() -> str | None:
        state = str(get(stack, f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"])
        return state if state in ("success", "failed") else None

    state: str = wait_for(f"{dag_id} run {run_id} to finish", finished)
    return state


def task_instance(
    stack: DistributedStack, dag_id: str, run_id: str, task_id: str, map_index: int = 0
) -> dict[str, Any]:
    ti: dict[str, Any] = get(
        stack, f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/{map_index}"
    )
    return ti


def wait_task_state(
    stack: DistributedStack,
    dag_id: str,
    run_id: str,
    task_id: str,
    states: set[str],
    every: float = 1.0,
) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        response = stack.rest(
            "GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/0"
        )
        if response.status_code == 404:  # not mapped (expanded) yet
            return None
        ti: dict[str, Any] = response.json()
        assert ti["state"] not in ("failed", "upstream_failed"), ti
        if ti["state"] in states and (ti["state"] != "deferred" or ti.get("triggerer_job")):
            return ti
        return None

    ti: dict[str, Any] = wait_for(f"{task_id} to be {states}", reached, every=every)
    return ti


def sim_admin(services: Any, vendor: str, method: str, path: str, **kwargs: Any) -> Any:
    with services.simulators[vendor].admin() as admin:
        response = admin.request(method, f"/_sim/{path}", **kwargs)
    assert response.status_code < 300, response.text
    return response.json()


class Lake:
    """Reads of the S3 lake (moto) in this process."""

    def __init__(self, services: Any) -> None:
        import boto3

        from include.localstack.services import LAKE_BUCKET

        conn = services.s3_connection()
        self.bucket = LAKE_BUCKET
        self.client = boto3.client(
            "s3",
            endpoint_url=services.s3_endpoint,
            aws_access_key_id=conn["login"],
            aws_secret_access_key=conn["password"],
            region_name="us-east-1",
        )

    def keys(self, prefix: str) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        )
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))

    def read(self, key: str) -> bytes:
        body: bytes = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return body


def partition_of(entry: ExportEntry, day: dt.date) -> Partition:
    return entry.partition(day)


def check_partition(lake: Lake, services: Any, entry: ExportEntry, day: dt.date) -> dict[str, Any]:
    """The live version (``tests.lake_checks``) holds the rows the simulator says it
    exported. Returns the manifest."""
    manifest, _ = check_published(lake.keys, lake.read, partition_of(entry, day))
    assert manifest["rows"] == vendor_rows(services, entry, manifest, day), entry.name
    return manifest


def vendor_rows(services: Any, entry: ExportEntry, manifest: dict[str, Any], day: dt.date) -> int:
    """The rows the simulator says it exported for this manifest's job (or Maxsight query)."""
    facts = sim_admin(services, entry.vendor.name, "GET", "facts")
    if manifest["job_id"] is not None:
        return int(facts["exports"][manifest["job_id"]]["rows"])
    # Maxsight is synchronous: the last complete CSV export whose range starts on the day.
    csvs = [
        record
        for record in facts["exports"].values()
        if record["file_type"] == "csv"
        and record["status"] == "sent"
        and urllib.parse.parse_qs(record["query"])["range_start"][0].startswith(day.isoformat())
    ]
    assert csvs, f"no Maxsight CSV export of {day}"
    return int(csvs[-1]["rows"])


def check_pdf_report(lake: Lake, entry: ExportEntry, day: dt.date) -> None:
    pdfs = [k for k in lake.keys(partition_of(entry, day).raw_prefix) if k.endswith(".pdf")]
    assert len(pdfs) == 1, pdfs
    assert lake.read(pdfs[0]).startswith(b"%PDF-")


def run_days(run: dict[str, Any], entry: ExportEntry) -> list[dt.date]:
    start, end = (dt.datetime.fromisoformat(run[f"data_interval_{e}"]) for e in ("start", "end"))
    from zoneinfo import ZoneInfo

    return days_of(start, end, ZoneInfo(entry.timezone))


def submissions(services: Any, vendor: str, path: str) -> list[dict[str, Any]]:
    log = sim_admin(services, vendor, "GET", "requests")
    return [r for r in log if r["method"] == "POST" and r["path"] == path]


def trigger_logs(
    stack: DistributedStack, run_id: str, task_id: str, dag_id: str = BACKFILL_DAG, attempt: int = 1
) -> dict[int, str]:
    """Triggerer job id -> the trigger log that job wrote for ``attempt`` of ``task_id``."""
    folder = (
        stack.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
        / f"task_id={task_id}" / "map_index=0"
    )  # fmt: skip
    return {
        int(path.name.rsplit(".", 2)[1]): path.read_text()
        for path in folder.glob(f"attempt={attempt}.log.trigger.*.log")
    }


def landing_files(pid: int) -> list[str]:
    """The files task process ``pid`` has open in its landing work directory: the raw
    file it downloads, then the Parquet parts it writes. (Parquet alone was too short a
    window for 150k rows: the test once saw the task end before it could kill it.)"""
    try:
        files = psutil.Process(pid).open_files()
    except psutil.NoSuchProcess:
        pytest.fail(f"task process {pid} ended before it was killed")
    return [f.path for f in files if "landing-" in f.path]


def process_gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def worker_running(stack: DistributedStack, pid: int) -> str:
    """The worker component whose process tree holds task process ``pid``."""
    ancestors = {parent.pid for parent in psutil.Process(pid).parents()}
    owners = [c for c, leader in stack.state.processes.items() if leader in ancestors]
    assert len(owners) == 1, (pid, ancestors, stack.state.processes)
    assert owners[0].startswith("worker-"), owners
    return owners[0]


# --- the tests --------------------------------------------------------------------------------


def test_nightly_runs_and_a_backfill_land_what_the_vendors_exported(
    stack: DistributedStack, services: Any
) -> None:
    lake = Lake(services)
    wait_dags_parsed(stack)
    by_dag = load_registry().by_dag()
    for dag_id in by_dag:
        unpause(stack, dag_id)  # catchup off: the scheduler creates yesterday's run
    backfill = stack.airflow(
        "backfill", "create", "--dag-id", BACKFILL_DAG,
        "--from-date", BACKFILL_DAYS[0].isoformat(), "--to-date", BACKFILL_DAYS[1].isoformat(),
    )  # fmt: skip
    assert backfill.returncode == 0, backfill.stderr

    def scheduled_runs() -> dict[str, dict[str, Any]] | None:
        runs = {}
        for dag_id in by_dag:
            found = runs_of(stack, dag_id, "scheduled")
            if not found:
                return None
            runs[dag_id] = found[0]
        return runs

    nightly = wait_for("the scheduled runs", scheduled_runs)
    for dag_id, run in nightly.items():
        state = wait_run(stack, dag_id, run["dag_run_id"])
        assert state == "success", (dag_id, run_states(stack, dag_id, run["dag_run_id"]))
        for entry in by_dag[dag_id]:
            assert run_days(run, entry) == [YESTERDAY]
            if not entry.schema:
                check_pdf_report(lake, entry, YESTERDAY)
            else:
                check_partition(lake, services, entry, YESTERDAY)

    runs = runs_of(stack, BACKFILL_DAG, "backfill")
    assert len(runs) == 2, runs
    windowed = ENTRIES["oleria_employee_events"]
    landed = []
    for run in runs:
        state = wait_run(stack, BACKFILL_DAG, run["dag_run_id"])
        assert state == "success", run_states(stack, BACKFILL_DAG, run["dag_run_id"])
        days = run_days(run, windowed)
        assert len(days) == 1, days
        check_partition(lake, services, windowed, days[0])
        landed.append(days[0])
    assert sorted(landed) == list(BACKFILL_DAYS)
    # The snapshot export is skipped for history, never labelled with today's state.
    snapshot = ENTRIES["oleria_identities"]
    for day in BACKFILL_DAYS:
        assert lake.keys(partition_of(snapshot, day).curated_prefix) == []


def test_killed_triggerer_mid_wait_export_completes_with_one_submission(
    stack: DistributedStack, services: Any
) -> None:
    entry = ENTRIES["oleria_employee_events"]
    day = TODAY - dt.timedelta(days=8)
    sim_admin(services, "oleria", "DELETE", "requests")
    earlier = set(sim_admin(services, "oleria", "GET", "facts")["exports"])
    sim_admin(services, "oleria", "PATCH", "config", json={"latency": 40.0})
    try:
        conf = {"exports": [entry.name], "range_start": str(day), "range_end": str(day)}
        run_id = trigger(stack, BACKFILL_DAG, conf)
        task_id = f"{entry.name}.export"
        wait_task_state(stack, BACKFILL_DAG, run_id, task_id, {"deferred"})
        [old_job] = wait_for(
            "the triggerer to run the trigger",
            lambda: [
                job
                for job, log in trigger_logs(stack, run_id, task_id).items()
                if "starting" in log
            ],
        )
        exports = sim_admin(services, "oleria", "GET", "facts")["exports"]
        [job] = [(key, fact) for key, fact in exports.items() if key not in earlier]
        assert job[1]["status"] != "completed", "the export finished before the kill"

        stack.kill("triggerer", signal.SIGKILL)
        wait_for("the triggerer to die", lambda: not stack.is_running("triggerer"))
        stack.restart("triggerer")
        state = wait_run(stack, BACKFILL_DAG, run_id)
    finally:
        sim_admin(services, "oleria", "PATCH", "config", json={"latency": 0.2})
    assert state == "success", run_states(stack, BACKFILL_DAG, run_id)
    export_ti = task_instance(stack, BACKFILL_DAG, run_id, task_id)
    assert export_ti["try_number"] == 1, "the export was retried instead of taken over"
    logs = trigger_logs(stack, run_id, task_id)
    fired = [job for job, text in logs.items() if "Trigger fired event" in text]
    assert len(fired) == 1, logs
    assert fired[0] != old_job, "the killed triggerer's job fired the event"
    posts = submissions(services, "oleria", "/v1/downloads")
    assert len(posts) == 1, posts
    manifest = check_partition(Lake(services), services, entry, day)
    assert manifest["job_id"] == job[0]


def test_killed_worker_mid_landing_publishes_exactly_one_copy(
    stack: DistributedStack, services: Any
) -> None:
    entry = ENTRIES["oleria_identities"]  # a snapshot: the largest Oleria file
    earlier = set(sim_admin(services, "oleria", "GET", "facts")["exports"])
    sim_admin(services, "oleria", "PATCH", "config", json={"rows": 150_000})
    try:
        run_id = trigger(stack, BACKFILL_DAG, {"exports": [entry.name]})
        land = wait_task_state(
            stack, BACKFILL_DAG, run_id, f"{entry.name}.land", {"running"}, every=0.1
        )
        victim = worker_running(stack, land["pid"])
        wait_for(
            "the land task to download or convert",
            lambda: landing_files(land["pid"]),
            timeout=240,
            every=0.1,
        )
        stack.kill(victim, signal.SIGKILL)  # the worker and its task runners, as a crash would
        wait_for("the task process to die", lambda: process_gone(land["pid"]), timeout=30)
        assert (
            task_instance(stack, BACKFILL_DAG, run_id, f"{entry.name}.land")["state"] == "running"
        )
        wait_for(f"{victim} to die", lambda: not stack.is_running(victim))
        stack.restart(victim)
        state = wait_run(stack, BACKFILL_DAG, run_id)
    finally:
        sim_admin(services, "oleria", "PATCH", "config", json={"rows": 20_000})
    assert state == "success", run_states(stack, BACKFILL_DAG, run_id)
    landed = task_instance(stack, BACKFILL_DAG, run_id, f"{entry.name}.land")
    assert landed["try_number"] == 2, landed
    manifest = check_partition(Lake(services), services, entry, YESTERDAY)
    [job] = set(sim_admin(services, "oleria", "GET", "facts")["exports"]) - earlier
    assert manifest["job_id"] == job, "the partition is not this run's export"


def test_user_failing_a_deferred_sailpoint_export_cancels_the_report(
    stack: DistributedStack, services: Any
) -> None:
    entry = ENTRIES["sailpoint_identities"]
    sim_admin(services, "sailpoint", "POST", "faults", json={"kind": "never_finish"})
    run_id = trigger(stack, "sailpoint_exports", {"exports": [entry.name]})
    task_id = f"{entry.name}.export"
    wait_task_state(stack, "sailpoint_exports", run_id, task_id, {"deferred"})

    path = f"/api/v2/dags/sailpoint_exports/dagRuns/{run_id}/taskInstances/{task_id}/0"
    response = stack.rest("PATCH", path, json={"new_state": "failed"})
    assert response.status_code == 200, response.text

    def cancelled() -> list[str]:
        facts = sim_admin(services, "sailpoint", "GET", "facts")
        return [
            task
            for task in facts.get("cancellations", [])
            if facts["exports"][task]["status"] == "TERMINATED"
        ]

    terminated = wait_for("the report to be cancelled", cancelled, timeout=180)
    assert len(terminated) == 1, terminated


def cancellations(services: Any) -> list[str]:
    return list(sim_admin(services, "sailpoint", "GET", "facts").get("cancellations", []))


SAILPOINT_DAG = "sailpoint_exports"


def ledger_job(stack: DistributedStack, dag_id: str, run_id: str, task_id: str) -> str | None:
    """The job the export task's ledger follows (its ``task_state_store``, read over REST)."""
    path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/state-store"
    entries = get(stack, f"{path}?map_index=0")["task_state_store"]
    ledger = {e["key"]: e["value"] for e in entries}.get("export_job") or {}
    return ledger.get("job_id")


def clear(stack: DistributedStack, dag_id: str, run_id: str, task_id: str) -> None:
    body = {
        "dry_run": False,
        "dag_run_id": run_id,
        "task_ids": [[task_id, 0]],
        "only_failed": False,
        "reset_dag_runs": True,
    }
    response = stack.rest("POST", f"/api/v2/dags/{dag_id}/clearTaskInstances", json=body)
    assert response.status_code == 200, response.text


def clear_and_wait_deferred(
    stack: DistributedStack, dag_id: str, run_id: str, task_id: str
) -> None:
    """Clear a deferred export on its first try; wait until its second try defers again."""
    clear(stack, dag_id, run_id, task_id)

    def deferred_again() -> bool:
        ti = task_instance(stack, dag_id, run_id, task_id)
        return bool(ti["try_number"] == 2 and ti["state"] == "deferred")

    wait_for("the cleared export to defer again", deferred_again)


def test_a_cleared_deferred_export_reattaches_and_a_deleted_state_store_exports_afresh(
    stack: DistributedStack, services: Any
) -> None:
    """A Clear of the deferred task fires the trigger's on_kill: the job is left running
    (not cancelled) and the next try follows it. Deleting the task's state store over REST
    first (docs/OPERATIONS.md, "A fresh export of a day") makes the next try export again."""
    entry = ENTRIES["oleria_employee_events"]
    day = TODAY - dt.timedelta(days=9)
    task_id = f"{entry.name}.export"
    sim_admin(services, "oleria", "DELETE", "requests")
    sim_admin(services, "oleria", "PATCH", "config", json={"latency": 120.0})
    try:
        conf = {"exports": [entry.name], "range_start": str(day), "range_end": str(day)}
        run_id = trigger(stack, BACKFILL_DAG, conf)
        wait_task_state(stack, BACKFILL_DAG, run_id, task_id, {"deferred"})
        first = ledger_job(stack, BACKFILL_DAG, run_id, task_id)
        assert first

        clear_and_wait_deferred(stack, BACKFILL_DAG, run_id, task_id)
        assert ledger_job(stack, BACKFILL_DAG, run_id, task_id) == first
        assert len(submissions(services, "oleria", "/v1/downloads")) == 1

        store = f"/api/v2/dags/{BACKFILL_DAG}/dagRuns/{run_id}/taskInstances/{task_id}/state-store"
        response = stack.rest("DELETE", f"{store}?map_index=0")
        assert response.status_code == 204, response.text
        sim_admin(services, "oleria", "PATCH", "config", json={"latency": 0.2})
        clear(stack, BACKFILL_DAG, run_id, task_id)
        state = wait_run(stack, BACKFILL_DAG, run_id)
    finally:
        sim_admin(services, "oleria", "PATCH", "config", json={"latency": 0.2})
    assert state == "success", run_states(stack, BACKFILL_DAG, run_id)
    fresh = ledger_job(stack, BACKFILL_DAG, run_id, task_id)
    assert fresh not in (None, first)
    assert len(submissions(services, "oleria", "/v1/downloads")) == 2
    manifest = check_partition(Lake(services), services, entry, day)
    assert manifest["job_id"] == fresh


def test_a_cleared_sailpoint_export_is_followed_not_cancelled_and_marked_success_cancels(
    stack: DistributedStack, services: Any
) -> None:
    """SailPoint can cancel, so on_kill has a decision to make: after a Clear (the task is
    no longer failed or success) it leaves the report to the next try; after a person
    marks the task success it cancels the report."""
    entry = ENTRIES["sailpoint_identities"]
    task_id = f"{entry.name}.export"
    before = cancellations(services)
    sim_admin(services, "sailpoint", "POST", "faults", json={"kind": "never_finish"})
    run_id = trigger(stack, SAILPOINT_DAG, {"exports": [entry.name]})
    wait_task_state(stack, SAILPOINT_DAG, run_id, task_id, {"deferred"})
    first = ledger_job(stack, SAILPOINT_DAG, run_id, task_id)
    assert first

    clear_and_wait_deferred(stack, SAILPOINT_DAG, run_id, task_id)
    wait_for(
        "the cleared try's trigger to decide in on_kill",
        lambda: any(
            "left running" in log
            for log in trigger_logs(stack, run_id, task_id, SAILPOINT_DAG, attempt=1).values()
        ),
        timeout=180,
    )
    assert ledger_job(stack, SAILPOINT_DAG, run_id, task_id) == first
    assert cancellations(services) == before, "a Clear cancelled the report"

    path = f"/api/v2/dags/{SAILPOINT_DAG}/dagRuns/{run_id}/taskInstances/{task_id}/0"
    response = stack.rest("PATCH", path, json={"new_state": "success"})
    assert response.status_code == 200, response.text
    new = wait_for(
        "the report to be cancelled",
        lambda: [task for task in cancellations(services) if task not in before],
        timeout=180,
    )
    assert new == [first]
    facts = sim_admin(services, "sailpoint", "GET", "facts")
    assert facts["exports"][first]["status"] == "TERMINATED"
    wait_run(stack, SAILPOINT_DAG, run_id)  # (its land fails: no file) before the next test


def test_a_trigger_moved_to_another_triggerer_keeps_following_its_report(
    stack: DistributedStack, services: Any
) -> None:
    """apache/airflow#73454: a triggerer that stopped heartbeating (here: SIGSTOP) finds,
    when it wakes, that its trigger moved to another triggerer, and calls its on_kill.
    The task is still deferred, so the report is not cancelled; the new triggerer follows
    it to the end and the export lands from that one report."""
    entry = ENTRIES["sailpoint_identities"]
    task_id = f"{entry.name}.export"
    before = cancellations(services)
    sim_admin(services, "sailpoint", "DELETE", "requests")
    latency = sim_admin(services, "sailpoint", "GET", "config")["latency"]
    # A report's latency is fixed when it starts: far longer than the takeover and the
    # woken triggerer's on_kill; the test then lets it finish through the admin API.
    sim_admin(services, "sailpoint", "PATCH", "config", json={"latency": 600.0})
    stopped = False
    try:
        run_id = trigger(stack, SAILPOINT_DAG, {"exports": [entry.name]})
        wait_task_state(stack, SAILPOINT_DAG, run_id, task_id, {"deferred"})
        sim_admin(services, "sailpoint", "PATCH", "config", json={"latency": latency})
        [old_job] = wait_for(
            "the triggerer to run the trigger",
            lambda: [
                job
                for job, log in trigger_logs(stack, run_id, task_id, SAILPOINT_DAG).items()
                if "starting" in log
            ],
        )
        report = ledger_job(stack, SAILPOINT_DAG, run_id, task_id)
        second = stack.add_triggerer()

        stack.kill("triggerer", signal.SIGSTOP)  # alive, but no heartbeat
        stopped = True
        [new_job] = wait_for(
            "the second triggerer to take the trigger over",
            lambda: [
                job
                for job, log in trigger_logs(stack, run_id, task_id, SAILPOINT_DAG).items()
                if job != old_job and "starting" in log
            ],
        )
        stack.kill("triggerer", signal.SIGCONT)
        stopped = False
        wait_for(
            "the woken triggerer to kill its copy of the trigger",
            lambda: "left running" in trigger_logs(stack, run_id, task_id, SAILPOINT_DAG)[old_job],
            timeout=240,
        )
        assert cancellations(services) == before, "the moved trigger cancelled the report"
        assert report
        sim_admin(services, "sailpoint", "POST", f"reports/{report}/finish")
        state = wait_run(stack, SAILPOINT_DAG, run_id)
    finally:
        if stopped:
            stack.kill("triggerer", signal.SIGCONT)
        sim_admin(services, "sailpoint", "PATCH", "config", json={"latency": latency})
    assert state == "success", run_states(stack, SAILPOINT_DAG, run_id)
    assert stack.is_running(second)
    export_ti = task_instance(stack, SAILPOINT_DAG, run_id, task_id)
    assert export_ti["try_number"] == 1, "the export was retried instead of followed"
    fired = [
        job
        for job, text in trigger_logs(stack, run_id, task_id, SAILPOINT_DAG).items()
        if "Trigger fired event" in text
    ]
    assert fired == [new_job]
    assert cancellations(services) == before
    runs = [r for r in sim_admin(services, "sailpoint", "GET", "requests")
            if r["method"] == "POST" and r["path"].endswith("/run")]  # fmt: skip
    assert len(runs) == 1, runs
    manifest = check_partition(Lake(services), services, entry, YESTERDAY)
    assert manifest["job_id"] == report
