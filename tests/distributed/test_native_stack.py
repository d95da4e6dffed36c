"""The production topology run natively: PostgreSQL + Redis + CeleryExecutor.

One stack for the whole module (~1.4 GiB PSS, one to two minutes of CPU to start),
started with ``python -m include.distributed up`` on the repo's dags/ (and the installed package)
plus a probe DAG bundle (tests/distributed/dags, trigger in tests/distributed/plugins),
and driven through the Python API (``DistributedStack.attach``). Connections to the
conftest's simulators and local S3 reach every process through the environment. The
tests run in file order; the last one stops the stack with ``down`` and checks that
nothing is left.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from compliance_exports.registry import load_registry
from compliance_exports.runs import days_of
from include.distributed import VENDOR_POOLS, DistributedStack
from include.distributed.stack import group_alive, port_is_free
from tests.distributed.conftest import require_backends
from tests.distributed.conftest import wait_for as poll_until

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DAG_ID = "stack_probe"
TASK_ID = "wait_for_signal"
PROBE_POOL = "veza"
WAIT_TIMEOUT = 180.0  # a failure bound, not a performance expectation
wait_for = functools.partial(poll_until, timeout=WAIT_TIMEOUT)
LOCAL_BUNDLE = "airflow.dag_processing.bundles.local.LocalDagBundle"
EXPORT_DAG = "veza_exports"

pytestmark = [pytest.mark.stack, pytest.mark.airflow, pytest.mark.xdist_group("native-stack")]


def cli(state_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m include.distributed --state <file> <args>``, as a user runs it."""
    command = [sys.executable, "-m", "include.distributed", "--state", str(state_file), *args]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def state_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("native-stack-state") / "distributed.json"


def stack_env(registry_file: Path) -> dict[str, str]:
    """The repo's dags/ (the `up` default) plus the probe DAG and trigger."""
    bundles = [
        {"name": "dags-folder", "classpath": LOCAL_BUNDLE, "kwargs": {}},
        {"name": "stack-probe", "classpath": LOCAL_BUNDLE, "kwargs": {"path": str(HERE / "dags")}},
    ]
    python_path = [REPO, HERE / "plugins"]
    return {
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundles),
        "PYTHONPATH": os.pathsep.join(map(str, python_path)),
        "COMPLIANCE_EXPORTS_REGISTRY": str(registry_file),
        # A dead triggerer's triggers move after this many seconds without heartbeat.
        "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "15",
    }


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    state_file: Path,
    registry_file: Path,
    s3_server: Any,
    simulators: dict[str, Any],
) -> Iterator[DistributedStack]:
    """`python -m include.distributed up`, driven through the Python API.

    The connections to the simulators and the local S3 (set in this process by the
    conftest fixtures) reach every Airflow process through the environment.
    """
    require_backends()
    home = tmp_path_factory.mktemp("native-stack")
    env_args = [f"--env={key}={value}" for key, value in stack_env(registry_file).items()]
    up = cli(state_file, "up", f"--home={home}", *env_args)
    assert up.returncode == 0, f"{up.stdout}\n{up.stderr}"
    native = DistributedStack.attach(state_file)
    try:
        yield native
    finally:
        cli(state_file, "down")
        native.stop()  # no-op after `down`; stops what a failed `down` left


@pytest.fixture(scope="module")
def probe_dag(stack: DistributedStack) -> str:
    """The probe DAG, parsed by the dag-processor and unpaused over REST."""
    wait_for("the dag-processor to parse the probe DAG", lambda: dag_status(stack) == 200)
    response = stack.rest("PATCH", f"/api/v2/dags/{DAG_ID}", json={"is_paused": False})
    assert response.status_code == 200, response.text
    assert response.json()["is_paused"] is False
    return DAG_ID


def dag_status(stack: DistributedStack) -> int:
    return stack.rest("GET", f"/api/v2/dags/{DAG_ID}").status_code


def trigger(stack: DistributedStack, signal_file: Path) -> str:
    body = {"logical_date": None, "conf": {"signal_path": str(signal_file)}}
    response = stack.rest("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["dag_run_id"])


def task_instance(stack: DistributedStack, run_id: str) -> dict[str, Any]:
    path = f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{TASK_ID}"
    response = stack.rest("GET", path)
    assert response.status_code == 200, response.text
    ti: dict[str, Any] = response.json()
    return ti


def run_state(stack: DistributedStack, run_id: str, dag_id: str = DAG_ID) -> str:
    response = stack.rest("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
    assert response.status_code == 200, response.text
    return str(response.json()["state"])


def wait_run_finished(stack: DistributedStack, run_id: str, dag_id: str = DAG_ID) -> str:
    def finished() -> str | None:
        state = run_state(stack, run_id, dag_id)
        return state if state in ("success", "failed") else None

    state: str = wait_for(f"run {run_id} to finish", finished)
    return state


def returned_event(stack: DistributedStack, run_id: str) -> dict[str, Any]:
    path = (
        f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{TASK_ID}"
        "/xcomEntries/return_value?deserialize=true"
    )
    response = stack.rest("GET", path)
    assert response.status_code == 200, response.text
    value: dict[str, Any] = response.json()["value"]
    return value


def pool(stack: DistributedStack, name: str) -> dict[str, Any]:
    response = stack.rest("GET", f"/api/v2/pools/{name}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def deferred_in_a_triggerer(stack: DistributedStack, run_id: str) -> dict[str, Any] | None:
    """The task instance once it is deferred and a triggerer has taken its trigger."""
    ti = task_instance(stack, run_id)
    if ti["state"] == "deferred" and ti.get("triggerer_job"):
        return ti
    assert ti["state"] in (None, "scheduled", "queued", "running", "deferred"), ti
    return None


def test_stack_is_healthy_with_one_group_per_component(stack: DistributedStack) -> None:
    assert stack.health_problems() == []
    assert set(stack.state.processes) == set(stack.components)
    assert len(stack.components) == 6  # api-server, scheduler, dag-processor, triggerer, 2 workers
    for component, pid in stack.state.processes.items():
        assert stack.is_running(component)
        assert os.getpgid(pid) == pid, f"{component} is not the leader of its own group"


def test_vendor_pools_count_deferred_tasks(stack: DistributedStack) -> None:
    for name, slots in VENDOR_POOLS.items():
        body = pool(stack, name)
        assert body["include_deferred"] is True
        assert body["slots"] == slots


def test_deferrable_run_succeeds_through_triggerer_and_workers(
    stack: DistributedStack, probe_dag: str, tmp_path: Path
) -> None:
    signal_file = tmp_path / "go"
    run_id = trigger(stack, signal_file)
    ti = wait_for(
        "the task to defer to a triggerer", lambda: deferred_in_a_triggerer(stack, run_id)
    )
    assert ti["pool"] == PROBE_POOL
    veza = pool(stack, PROBE_POOL)
    assert veza["deferred_slots"] == 1
    assert veza["open_slots"] == VENDOR_POOLS[PROBE_POOL] - 1

    signal_file.touch()

    assert wait_run_finished(stack, run_id) == "success"
    event = returned_event(stack, run_id)
    assert event["status"] == "success"
    assert event["pgid"] == stack.state.processes["triggerer"]
    assert task_instance(stack, run_id)["try_number"] == 1


def test_killed_triggerer_is_replaced_and_the_task_completes(
    stack: DistributedStack, probe_dag: str, tmp_path: Path
) -> None:
    signal_file = tmp_path / "go"
    run_id = trigger(stack, signal_file)
    before = wait_for("the task to defer", lambda: deferred_in_a_triggerer(stack, run_id))
    old_triggerer = stack.state.processes["triggerer"]

    stack.kill("triggerer", signal.SIGKILL)
    wait_for("the killed triggerer's group to empty", lambda: not stack.is_running("triggerer"))
    assert task_instance(stack, run_id)["state"] == "deferred"
    stack.restart("triggerer")
    new_triggerer = stack.state.processes["triggerer"]
    assert new_triggerer != old_triggerer
    assert not group_alive(old_triggerer)

    def taken_over() -> dict[str, Any] | None:
        ti = deferred_in_a_triggerer(stack, run_id)
        return ti if ti and ti["triggerer_job"]["id"] != before["triggerer_job"]["id"] else None

    wait_for("the new triggerer to take the trigger over", taken_over)
    signal_file.touch()

    assert wait_run_finished(stack, run_id) == "success"
    event = returned_event(stack, run_id)
    assert event["pgid"] == new_triggerer
    ti = task_instance(stack, run_id)
    assert ti["try_number"] == 1, "the task was retried instead of resumed"


def test_project_dags_load_in_the_stack(stack: DistributedStack) -> None:
    wanted = set(load_registry().by_dag())
    wait_for("the project DAGs to be parsed", lambda: wanted <= stack_dag_ids(stack))
    errors = stack.rest("GET", "/api/v2/importErrors").json()
    assert errors["total_entries"] == 0, errors


def stack_dag_ids(stack: DistributedStack) -> set[str]:
    body = stack.rest("GET", "/api/v2/dags?limit=100").json()
    return {dag["dag_id"] for dag in body["dags"]}


def test_a_project_export_dag_lands_its_exports(stack: DistributedStack, s3_server: Any) -> None:
    """The real Veza DAG, unpaused: its scheduled run submits on a worker, waits in the
    triggerer, fetches and lands, and every export of the DAG publishes its manifest."""
    wait_for("the export DAG", lambda: EXPORT_DAG in stack_dag_ids(stack))
    response = stack.rest("PATCH", f"/api/v2/dags/{EXPORT_DAG}", json={"is_paused": False})
    assert response.status_code == 200, response.text
    run = wait_for("the scheduler to create the latest run", lambda: latest_run(stack))

    state = wait_run_finished(stack, run["dag_run_id"], dag_id=EXPORT_DAG)

    tis_path = f"/api/v2/dags/{EXPORT_DAG}/dagRuns/{run['dag_run_id']}/taskInstances"
    tis = stack.rest("GET", tis_path).json()["task_instances"]
    assert state == "success", {ti["task_id"]: ti["state"] for ti in tis}
    for entry in load_registry().by_dag()[EXPORT_DAG]:
        start, end = (
            dt.datetime.fromisoformat(run[f"data_interval_{edge}"]) for edge in ("start", "end")
        )
        day = days_of(start, end, ZoneInfo(entry.timezone))[-1]
        partition = entry.partition(day)
        assert partition.manifest_key in s3_server.keys(partition.curated_prefix), entry.name


def latest_run(stack: DistributedStack) -> dict[str, Any] | None:
    runs = stack.rest("GET", f"/api/v2/dags/{EXPORT_DAG}/dagRuns").json()["dag_runs"]
    return runs[0] if runs else None


def test_status_command_reports_every_component_healthy(
    stack: DistributedStack, state_file: Path
) -> None:
    status = cli(state_file, "status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "healthy" in status.stdout.splitlines()[-1]
    for component in stack.components:
        assert f"{component} " in status.stdout


def test_down_leaves_no_process_no_port_no_database(
    stack: DistributedStack, state_file: Path
) -> None:
    groups = dict(stack.state.processes)
    ports = dict(stack.state.ports)
    redis_db = stack.state.redis_db

    down = cli(state_file, "down")

    assert down.returncode == 0, down.stdout + down.stderr
    assert not state_file.exists()
    assert [name for name, pgid in groups.items() if group_alive(pgid)] == []
    assert [name for name, port in ports.items() if not port_is_free(port)] == []
    assert not stack.database_exists()
    assert stack.broker_size(redis_db) == 0
