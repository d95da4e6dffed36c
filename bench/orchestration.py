"""Benchmark: what one 14-day manual run of every windowed export costs the scheduler's workers,
before (commit ``d0a9e7a``) and after (the working tree) the durable export task (issue #12).

What runs: for each side, its own local stack (``python -m include.localstack up`` from
that side's checkout: the simulators, moto S3 and ``airflow standalone`` with the real
scheduler, triggerer, dag-processor and LocalExecutor) on free ports in a temporary state
dir. BEFORE is a ``git worktree`` of ``d0a9e7a`` (its ``.venv`` and ``.cache`` symlinked to
this checkout's: the old code runs on the current venv); AFTER is this working tree. The
two stacks run one after the other, never at once (two cores). On each stack:

1. unpause the DAGs of the windowed exports and wait for the scheduled run that
   unpausing creates (the nightly interval that just ended) to finish: it warms the
   stack up (first parses, first worker start-ups) and does not overlap the measurement;
2. for each windowed export of the default registry (``oleria_employee_events`` of
   ``oleria_exports``, ``maxsight_audit_events`` of ``maxsight_exports``), one after the
   other: a manual run with conf ``{"exports": [name], "range_start": D1, "range_end":
   D14}``, i.e. 14 daily slices, the 14 days ending two days before the simulators' today
   (inside Oleria's history and Maxsight's 60-day demo store, before yesterday's burst);
   ``SIM_TODAY`` (new code) and ``SIM_DATA_ANCHOR`` (old code) are set to the same day so
   both sides see the same data; then the slow-job scenario, the Oleria export again
   with each job taking :data:`SLOW_JOB_S` seconds (the Oleria simulator's ``latency``,
   set through ``PATCH /_sim/config`` for that run only), as on a real tenant;
3. collect the run, its task instances (REST API) and their task logs, then ``down``.

Measured, per scenario and overall (overall = sums over the two default scenarios):

* **wall time**: the DAG run's ``end_date - start_date`` (REST API);
* **task instances per slice**: the task instances of the export's task group, every
  mapped index counted, **the once-per-run ``plan`` task excluded** (same rule on both
  sides), divided by the number of slices; ``tis_per_slice_with_plan`` counts it too.
  For the job export (Oleria) that is submit, wait, fetch, land -> export, land;
* **worker-slot seconds per slice**: the seconds task processes of the export's group
  (``plan`` included: it is worker time the run costs) actually ran on a worker, divided
  by the number of slices. Tasks of the DAG's other export groups (the snapshot export's
  ``plan``, which runs only to skip) are reported apart (``other_groups_worker_s``).

How worker-slot seconds are computed, and why that source: in Airflow 3.3 a task
instance's ``start_date`` is **kept** when a deferred task resumes (the execution API's
``ti_run`` drops ``start_date`` from the update when ``next_method`` is set), so the REST
API's ``duration = end_date - start_date`` includes the deferred wait; ``queued_when`` is
overwritten on resume; the try history only has one row per try. The task log does have
it: each try writes ``attempt=<try>.log`` under ``AIRFLOW_HOME/logs``, and every time a
task process starts on a worker (first start, resume after a deferral, reschedule, retry
= new file) the task runner's first line is ``::group::Pre Execute``; a deferring process
logs ``Pausing task as DEFERRED`` and exits; the triggerer's lines go to a separate
``attempt=<try>.log.trigger.<id>.log`` file. So one log file splits at each ``Pre
Execute`` into the process runs of that try, and a run's duration is its last line's
timestamp minus its first's; the gaps between runs (deferred, queued again) are not
counted. Worker-slot seconds of a task instance = the sum over its tries and runs
(:func:`process_runs`, :func:`worker_seconds`). Checked against the REST API on the
task instances that ran once without deferring (where ``duration`` is the process run,
from the supervisor's start call to its finish call): ``check_vs_api`` gives the median,
smallest and largest ``duration - log seconds``; in the published run they agree within
0.05 s on every such task instance (medians 0.001-0.014 s), while for the deferred
``export`` tasks the REST ``duration`` sums to 99 s against 54 s of process runs.

What the published run showed (bench/results/orchestration.json, 2 cores, nothing else
running): task instances per Oleria slice 4 -> 2 (the target), but worker-slot seconds
per slice 0.98x (Oleria), 1.09x (Maxsight), 0.89x (Oleria with 10 s jobs) and 1.04x
overall, where the target was 0.5x. The old ``wait`` was already a deferrable sensor, so
BEFORE held no worker slot while a job ran either; the per-slice cost is task-process
start-up (each process parses the DAG file, ~0.4 s) and ``land``, which both codes
share, and the new ``export`` still needs two process runs when its job takes time
(submit, then resume to download). What the redesign changes is not the slot time but
what a failed job costs (a resubmission inside the same try, deferred, instead of a
person clearing ``submit``; Veza's re-export no longer waits in a worker). Wall time with
10 s jobs is 2.76x BEFORE's: the new ``export`` holds its vendor pool slot while deferred
(pools count deferred tasks), so at most 2 Oleria jobs run at once, where BEFORE's
``submit`` tasks started all 14 jobs at the vendor unbounded. That is the vendor
concurrency limit the pool is meant to be; raise the pool's slots for more. The default
Oleria jobs (0.2 s, the simulator's ``latency``) finish before the old ``wait`` sensor
first pokes, so BEFORE never deferred in that scenario.

Run: ``python -m bench.orchestration`` (part of ``make bench``; ~12 min; writes
``bench/results/orchestration.json``); ``--days 2`` for a quick look, ``--output -`` for
no file, ``--keep`` keeps the temporary state dirs (logs) for inspection. Bounded by
``--timeout`` (25 min); both stacks and the worktree are always torn down.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "orchestration.json"
BEFORE_COMMIT = "d0a9e7a"
#: the windowed exports of the default registry and their DAGs
EXPORTS: dict[str, str] = {
    "oleria_employee_events": "oleria_exports",
    "maxsight_audit_events": "maxsight_exports",
}
JOB_EXPORT = "oleria_employee_events"  # the one whose per-slice tasks went 4 -> 2
#: Seconds an Oleria job takes in the slow-job scenario (the simulator's default is 0.2 s,
#: so fast that the old ``wait`` sensor never deferred). Long enough that both codes wait
#: deferred, as they do on a real tenant whose exports take minutes; short enough that a
#: 14-slice run through a 2-slot pool takes about two minutes.
SLOW_JOB_S = 10.0
#: scenario -> (export, seconds an Oleria job takes; None: the simulator's default)
SCENARIOS: dict[str, tuple[str, float | None]] = {
    **{export: (export, None) for export in EXPORTS},
    f"{JOB_EXPORT}@{SLOW_JOB_S:g}s": (JOB_EXPORT, SLOW_JOB_S),
}
DAYS = 14
LAST_DAY_BEFORE_TODAY = 2  # the range ends the day before yesterday (yesterday: a burst)
TIMEOUT_S = 25 * 60
WARMUP_TIMEOUT_S = 300.0
WORKER_SLOT_TARGET = 0.5  # after / before, at most
TIS_PER_JOB_SLICE = {"before": 4.0, "after": 2.0}
PROCESS_START = "::group::Pre Execute"
DEFERRED = "Pausing task as DEFERRED"
SIDES = ("before", "after")


class BenchError(RuntimeError):
    """A stack did not start, a run did not succeed, or the time ran out."""


# --------------------------------------------------------------------------- task logs


@dataclass(frozen=True)
class ProcessRun:
    """One task process on a worker: first to last log line of one start."""

    started: dt.datetime
    ended: dt.datetime
    deferred: bool  # it ended by deferring to the triggerer

    @property
    def seconds(self) -> float:
        return (self.ended - self.started).total_seconds()


def parse_time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def read_log(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of a task log file (lines that are not JSON are skipped)."""
    records = []
    for line in path.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict) and "timestamp" in record:
                records.append(record)
    return records


def process_runs(records: Iterable[Mapping[str, Any]]) -> list[ProcessRun]:
    """Split one try's log into its process runs: a new one at each ``Pre Execute`` line.

    Lines before the first ``Pre Execute`` belong to the first run.
    """
    runs: list[list[Mapping[str, Any]]] = []
    started = False  # a Pre Execute line seen in the current run
    for record in records:
        starts = str(record.get("event", "")).startswith(PROCESS_START)
        if not runs or (starts and started):
            runs.append([])
            started = False
        started = started or starts
        runs[-1].append(record)
    result = []
    for lines in runs:
        stamps = [parse_time(str(r["timestamp"])) for r in lines]
        deferred = any(str(r.get("event", "")).startswith(DEFERRED) for r in lines)
        result.append(ProcessRun(min(stamps), max(stamps), deferred))
    return result


def worker_seconds(tries: Iterable[Iterable[Mapping[str, Any]]]) -> float:
    """Seconds a task instance's processes ran on a worker, over all tries and runs."""
    return sum(run.seconds for records in tries for run in process_runs(records))


def ti_key(ti: Mapping[str, Any]) -> str:
    index = ti.get("map_index", -1)
    return str(ti["task_id"]) + (f"[{index}]" if index is not None and index >= 0 else "")


def log_paths(home: Path, ti: Mapping[str, Any]) -> list[Path]:
    """``attempt=<n>.log`` of each try of ``ti`` (Airflow 3's default log_filename_template)."""
    folder = home / "logs" / f"dag_id={ti['dag_id']}" / f"run_id={ti['dag_run_id']}"
    folder = folder / f"task_id={ti['task_id']}"
    if ti.get("map_index", -1) >= 0:
        folder = folder / f"map_index={ti['map_index']}"
    return [folder / f"attempt={n}.log" for n in range(1, int(ti.get("try_number") or 0) + 1)]


# --------------------------------------------------------------------------- one run


@dataclass
class TaskCost:
    key: str
    task: str  # the task id inside the export's group (``export``, ``land``, ...)
    state: str | None
    tries: int
    runs: int
    deferrals: int
    worker_s: float
    api_duration_s: float | None
    missing_logs: int


def task_cost(home: Path, ti: Mapping[str, Any]) -> TaskCost:
    tries, missing = [], 0
    for path in log_paths(home, ti):
        if path.exists():
            tries.append(read_log(path))
        else:
            missing += 1
    runs = [run for records in tries for run in process_runs(records)]
    return TaskCost(
        key=ti_key(ti),
        task=str(ti["task_id"]).split(".", 1)[-1],
        state=ti.get("state"),
        tries=int(ti.get("try_number") or 0),
        runs=len(runs),
        deferrals=sum(run.deferred for run in runs),
        worker_s=sum(run.seconds for run in runs),
        api_duration_s=ti.get("duration"),
        missing_logs=missing,
    )


def summarize_run(
    export: str, slices: int, run: Mapping[str, Any], costs: Sequence[TaskCost]
) -> dict[str, Any]:
    """The numbers of one export's run, from its run record and its task costs."""
    mine = [c for c in costs if c.key.startswith(f"{export}.")]
    others = [c for c in costs if not c.key.startswith(f"{export}.")]
    per_slice = [c for c in mine if c.task != "plan"]
    by_task: dict[str, dict[str, Any]] = {}
    for cost in mine:
        entry = by_task.setdefault(cost.task, {"tis": 0, "worker_s": 0.0, "deferrals": 0})
        entry["tis"] += 1
        entry["worker_s"] = round(entry["worker_s"] + cost.worker_s, 3)
        entry["deferrals"] += cost.deferrals
    worker = sum(c.worker_s for c in mine)
    wall = (parse_time(run["end_date"]) - parse_time(run["start_date"])).total_seconds()
    return {
        "export": export,
        "dag_id": run.get("dag_id"),
        "run_id": run.get("dag_run_id"),
        "state": run.get("state"),
        "slices": slices,
        "wall_s": round(wall, 2),
        "tis": len(per_slice),
        "tis_with_plan": len(mine),
        "tis_per_slice": round(len(per_slice) / slices, 3),
        "tis_per_slice_with_plan": round(len(mine) / slices, 3),
        "worker_s": round(worker, 2),
        "worker_s_per_slice": round(worker / slices, 3),
        "api_duration_s": round(sum(c.api_duration_s or 0.0 for c in mine), 2),
        "process_runs": sum(c.runs for c in mine),
        "deferrals": sum(c.deferrals for c in mine),
        "retries": sum(max(0, c.tries - 1) for c in mine),
        "missing_logs": sum(c.missing_logs for c in mine),
        "states": dict(Counter(str(c.state) for c in mine)),
        "by_task": by_task,
        "other_groups_worker_s": round(sum(c.worker_s for c in others), 2),
        "check_vs_api": check_vs_api(mine),
    }


def check_vs_api(costs: Sequence[TaskCost]) -> dict[str, Any]:
    """REST ``duration`` minus log seconds, on task instances with one process run."""
    diffs = sorted(
        c.api_duration_s - c.worker_s
        for c in costs
        if c.runs == 1 and c.tries == 1 and c.api_duration_s is not None
    )
    if not diffs:
        return {"tis": 0}
    return {
        "tis": len(diffs),
        "median_s": round(statistics.median(diffs), 3),
        "min_s": round(diffs[0], 3),
        "max_s": round(diffs[-1], 3),
    }


def overall(exports: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Both exports together: sums, per slice over all slices."""
    slices = sum(e["slices"] for e in exports.values())
    tis = sum(e["tis"] for e in exports.values())
    worker = sum(e["worker_s"] for e in exports.values())
    return {
        "slices": slices,
        "wall_s": round(sum(e["wall_s"] for e in exports.values()), 2),
        "tis": tis,
        "tis_per_slice": round(tis / slices, 3) if slices else 0.0,
        "worker_s": round(worker, 2),
        "worker_s_per_slice": round(worker / slices, 3) if slices else 0.0,
    }


METRICS = (
    ("wall_s", "wall time s"),
    ("tis_per_slice", "task instances / slice"),
    ("worker_s_per_slice", "worker-slot s / slice"),
)


def ratio(after: float, before: float) -> float | None:
    return round(after / before, 3) if before else None


def compare(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """after / before for each metric, per scenario and overall (the default scenarios)."""
    rows = {name: (before["exports"][name], after["exports"][name]) for name in SCENARIOS}
    rows["overall"] = (before["overall"], after["overall"])
    return {
        name: {metric: ratio(a[metric], b[metric]) for metric, _ in METRICS}
        for name, (b, a) in rows.items()
    }


def targets(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    ratios = compare(before, after)
    worker_ratio = ratios["overall"]["worker_s_per_slice"]
    job_before = before["exports"][JOB_EXPORT]["tis_per_slice"]
    job_after = after["exports"][JOB_EXPORT]["tis_per_slice"]
    return {
        "worker_slot_s_per_slice": {
            "target": f"after <= {WORKER_SLOT_TARGET} x before (overall)",
            "ratio": worker_ratio,
            "per_export": {name: ratios[name]["worker_s_per_slice"] for name in SCENARIOS},
            "met": worker_ratio is not None and worker_ratio <= WORKER_SLOT_TARGET,
            "met_by_export": {
                name: (r := ratios[name]["worker_s_per_slice"]) is not None
                and r <= WORKER_SLOT_TARGET
                for name in SCENARIOS
            },
        },
        "tis_per_job_slice": {
            "target": (
                f"{JOB_EXPORT}: {TIS_PER_JOB_SLICE['before']:g} -> "
                f"{TIS_PER_JOB_SLICE['after']:g} (submit, wait, fetch, land -> export, land)"
            ),
            "before": job_before,
            "after": job_after,
            "met": job_before == TIS_PER_JOB_SLICE["before"]
            and job_after == TIS_PER_JOB_SLICE["after"],
        },
    }


def table(result: Mapping[str, Any]) -> str:
    """before / after / ratio for each metric, per export and overall."""
    before, after, ratios = result["before"], result["after"], result["ratios"]
    header = ["", "metric", "before", "after", "after/before"]
    cells = []
    for name in [*SCENARIOS, "overall"]:
        b = before["overall"] if name == "overall" else before["exports"][name]
        a = after["overall"] if name == "overall" else after["exports"][name]
        for metric, title in METRICS:
            r = ratios[name][metric]
            label = name if metric == METRICS[0][0] else ""  # the name on its first row only
            cells.append(
                [label, title, f"{b[metric]:g}", f"{a[metric]:g}", "-" if r is None else f"{r:g}"]
            )
    widths = [max(len(row[i]) for row in [header, *cells]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in [header, *cells]
    ]
    for key, target in result["targets"].items():
        lines.append(f"target {key}: {target['target']}: {'met' if target['met'] else 'NOT met'}")
    return "\n".join(line.rstrip() for line in lines)


# --------------------------------------------------------------------------- the stacks


def data_days(today: dt.date, days: int) -> tuple[dt.date, dt.date]:
    """``days`` days ending ``LAST_DAY_BEFORE_TODAY`` days before ``today``."""
    last = today - dt.timedelta(days=LAST_DAY_BEFORE_TODAY)
    return last - dt.timedelta(days=days - 1), last


def clock_env(today: dt.date) -> dict[str, str]:
    """The same simulators' today for both codes: SIM_TODAY (new), SIM_DATA_ANCHOR (old)."""
    anchor = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), dt.UTC)
    return {"SIM_TODAY": today.isoformat(), "SIM_DATA_ANCHOR": anchor.isoformat()}


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self, what: str, cap: float | None = None) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise BenchError(f"the {self.seconds:.0f} s time box ran out before {what}")
        return min(left, cap) if cap is not None else left


@dataclass
class Stack:
    """A local stack of one checkout, started with that checkout's own ``localstack up``."""

    side: str
    checkout: Path
    state_dir: Path
    today: dt.date
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from include.simulators.base import free_port

        inherited = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW", "AWS_", "CE_", "SIM_")) and k != "PYTHONPATH"
        }
        self.env = {
            **inherited,
            **clock_env(self.today),
            "CE_STATE_DIR": str(self.state_dir),
            "CE_API_PORT": str(free_port()),
            "CE_S3_PORT": str(free_port()),
            "CE_SIM_PORT_BASE": "0",
            # the measured checkout's own package first (src/; plugins/ before the src layout),
            # ahead of the editable install of this work tree
            "PYTHONPATH": os.pathsep.join(
                str(self.checkout / part) for part in ("", "src", "plugins")
            ),
        }

    def command(self, action: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "include.localstack", action],
            cwd=self.checkout,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def log_tail(self) -> str:
        parts = []
        for log in sorted((self.state_dir / "logs").glob("*.log")):
            parts.append(f"--- {log}:\n" + log.read_text(errors="replace")[-1500:])
        return "\n".join(parts)

    @contextlib.contextmanager
    def running(self, deadline: Deadline) -> Iterator[dict[str, Any]]:
        print(f"[{self.side}] starting the local stack of {self.checkout}", flush=True)
        try:
            try:
                done = self.command("up", deadline.left(f"the {self.side} stack started", 600))
            except subprocess.TimeoutExpired:
                raise BenchError(f"the {self.side} stack did not start in time") from None
            if done.returncode != 0:
                raise BenchError(
                    f"the {self.side} stack did not start (exit {done.returncode}):\n"
                    f"{done.stdout[-2000:]}{done.stderr[-3000:]}\n{self.log_tail()}"
                )
            yield json.loads((self.state_dir / "stack.json").read_text())
        finally:
            stopped = self.command("down", 120)
            print(f"[{self.side}] down: {stopped.stdout.strip() or stopped.stderr[-500:]}")


@contextlib.contextmanager
def before_worktree(root: Path, commit: str = BEFORE_COMMIT) -> Iterator[Path]:
    """``git worktree add`` of ``commit`` with this checkout's .venv and .cache linked in."""
    path = root / "before"
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(path), commit],
        check=True,
        capture_output=True,
        text=True,
    )
    try:
        for name in (".venv", ".cache"):
            if (REPO / name).exists():
                (path / name).symlink_to(REPO / name)
        yield path
    finally:
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "remove", "--force", str(path)],
            check=False,
            capture_output=True,
        )
        subprocess.run(["git", "-C", str(REPO), "worktree", "prune"], check=False)


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def warm_up(client: Any, side: str, deadline: Deadline) -> dict[str, Any]:
    """Unpause the DAGs; wait for the scheduled runs the unpause creates to finish."""
    from include.localstack.client import StackWaitError, wait_until

    dags = sorted(set(EXPORTS.values()))
    client.wait_for_dags(dags, timeout=deadline.left("the DAGs were parsed", 300))
    started = time.monotonic()
    for dag_id in dags:
        client.set_paused(dag_id, False)
    warm: dict[str, Any] = {}
    for dag_id in dags:

        def any_run(dag_id: str = dag_id) -> list[dict[str, Any]] | None:
            return client.runs(dag_id) or None

        with contextlib.suppress(StackWaitError):
            wait_until(f"a scheduled run of {dag_id}", any_run, timeout=30, every=2)
        run_ids = [r["dag_run_id"] for r in client.runs(dag_id)]
        if not run_ids:
            continue
        cap = deadline.left(f"the warm-up runs of {dag_id}", WARMUP_TIMEOUT_S)
        try:
            states = client.wait_for_runs(dag_id, run_ids, timeout=cap)
        except StackWaitError:  # do not let a slow nightly run eat the time box
            for run_id in run_ids:
                client.rest("PATCH", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}",
                            json={"state": "failed"})  # fmt: skip
            time.sleep(10)
            states = {run_id: client.run(dag_id, run_id) for run_id in run_ids}
        warm[dag_id] = {run_id: run["state"] for run_id, run in states.items()}
    print(f"[{side}] warm-up runs {warm} in {time.monotonic() - started:.0f} s", flush=True)
    return {"runs": warm, "seconds": round(time.monotonic() - started, 1)}


def measure_side(
    side: str, checkout: Path, state_dir: Path, today: dt.date, days: int, deadline: Deadline
) -> dict[str, Any]:
    """Start the side's stack, run each windowed export over ``days`` days, collect, stop."""
    from include.localstack.client import StackClient

    first, last = data_days(today, days)
    stack = Stack(side, checkout, state_dir, today)
    result: dict[str, Any] = {"checkout": str(checkout), "exports": {}, "loadavg": {}}
    with stack.running(deadline) as info:
        client = StackClient.from_stack(info)
        client.wait_for_healthy(timeout=deadline.left(f"the {side} stack was healthy", 180))
        result["commit"] = git_commit(checkout)
        result["warm_up"] = warm_up(client, side, deadline)
        home = Path(info["airflow_home"])
        for scenario, (export, job_s) in SCENARIOS.items():
            dag_id = EXPORTS[export]
            conf = {"exports": [export], "range_start": str(first), "range_end": str(last)}
            load_before = loadavg()
            with oleria_job_seconds(info, job_s):
                resp = client.rest("POST", f"/api/v2/dags/{dag_id}/dagRuns",
                                   json={"logical_date": None, "conf": conf})  # fmt: skip
                if resp.status_code >= 300:
                    raise BenchError(f"[{side}] trigger of {dag_id} refused: {resp.text[:1000]}")
                run_id = resp.json()["dag_run_id"]
                run = client.wait_for_runs(
                    dag_id, [run_id], timeout=deadline.left(f"the {side} run of {scenario} ended")
                )[run_id]
            if run["state"] != "success":
                raise BenchError(
                    f"[{side}] {dag_id} {run_id} ended {run['state']}:\n"
                    f"{client.describe_runs(dag_id, [run_id])}"
                )
            tis = client.task_instances(dag_id, run_id)
            costs = [task_cost(home, ti) for ti in tis]
            summary = summarize_run(export, days, run, costs)
            summary["loadavg"] = {"before": load_before, "after": loadavg()}
            summary["range"] = [str(first), str(last)]
            summary["oleria_job_s"] = job_s
            result["exports"][scenario] = summary
            print(
                f"[{side}] {scenario}: {summary['wall_s']} s wall, "
                f"{summary['tis_per_slice']} TIs/slice, "
                f"{summary['worker_s_per_slice']} worker-slot s/slice",
                flush=True,
            )
    result["overall"] = overall({name: result["exports"][name] for name in EXPORTS})
    return result


@contextlib.contextmanager
def oleria_job_seconds(info: Mapping[str, Any], seconds: float | None) -> Iterator[None]:
    """Oleria jobs take ``seconds`` (its simulator's ``latency``) while the block runs."""
    if seconds is None:
        yield
        return
    import httpx

    config = f"{info['simulators']['oleria']['base_url']}/_sim/config"
    default = httpx.get(config, timeout=10).raise_for_status().json()["latency"]
    httpx.patch(config, json={"latency": seconds}, timeout=10).raise_for_status()
    try:
        yield
    finally:
        httpx.patch(config, json={"latency": default}, timeout=10).raise_for_status()


def git_commit(checkout: Path) -> str:
    done = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    dirty = subprocess.run(
        ["git", "-C", str(checkout), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() + (" + working tree changes" if dirty.stdout.strip() else "")


def run(days: int = DAYS, timeout: float = TIMEOUT_S, keep: bool = False) -> dict[str, Any]:
    """BEFORE (a worktree of d0a9e7a) then AFTER (this tree), each on its own stack."""
    deadline = Deadline(timeout)
    today = dt.datetime.now(dt.UTC).date()
    root = Path(tempfile.mkdtemp(prefix="bench-orchestration-"))
    started_load = loadavg()
    sides: dict[str, Any] = {}
    try:
        with before_worktree(root) as before:
            sides["before"] = measure_side(
                "before", before, root / "state-before", today, days, deadline
            )
        sides["after"] = measure_side("after", REPO, root / "state-after", today, days, deadline)
    finally:
        if keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    first, last = data_days(today, days)
    return {
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "before_commit": BEFORE_COMMIT,
        "settings": {
            "exports": EXPORTS,
            "scenarios": {
                name: {"export": e, "oleria_job_s": j} for name, (e, j) in SCENARIOS.items()
            },
            "days": days,
            "range": [str(first), str(last)],
            "simulators_today": str(today),
            "executor": "LocalExecutor, parallelism 4; vendor pools of 2 slots (deferred count)",
            "tis_per_slice": "task instances of the export's group except the per-run plan",
            "worker_s": "task log process runs (Pre Execute .. last line), plan included",
        },
        "loadavg": {
            "start": started_load,
            "end": loadavg(),
            "runs": {
                side: {name: e["loadavg"] for name, e in sides[side]["exports"].items()}
                for side in SIDES
            },
        },
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "before": sides["before"],
        "after": sides["after"],
        "ratios": compare(sides["before"], sides["after"]),
        "targets": targets(sides["before"], sides["after"]),
    }


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.orchestration", description=(__doc__ or "").split("\n")[0]
    )
    p.add_argument("--days", type=int, default=DAYS, help="slices per run (days)")
    p.add_argument("--timeout", type=float, default=TIMEOUT_S, help="time box, seconds")
    p.add_argument("--output", type=Path, default=RESULTS, help="JSON results ('-': none)")
    p.add_argument("--keep", action="store_true", help="keep the state dirs (task logs)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args_list = list(sys.argv[1:] if argv is None and __name__ == "__main__" else argv or [])
    args = parse_args(args_list)
    result = run(days=args.days, timeout=args.timeout, keep=args.keep)
    result["command"] = " ".join(["python -m bench.orchestration", *args_list])
    if str(args.output) != "-":
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    return result


__all__ = ["main", "process_runs", "run", "summarize_run", "table", "worker_seconds"]

if __name__ == "__main__":
    main()
