"""Benchmark: one triggerer event loop waiting on 1,000 deferred Oleria exports at once.

What runs, and how it matches Airflow 3.3.2's triggerer:

* the Oleria simulator runs in a **separate process** (``python -m include.simulators``),
  so its CPU is not counted; jobs take a seeded random ``latency``..``latency_max``
  seconds, meant to make the waits overlap (the peak actually reached is reported);
* the jobs are submitted first (one token, then ``POST /v1/downloads``), and the
  triggers find the connection in ``AIRFLOW_CONN_OLERIA_DEFAULT`` (JSON form);
* each trigger is an ``OleriaDownloadTrigger`` built by the job's ``serialize()``; its
  classpath + kwargs are encrypted with ``Trigger.encrypt_kwargs`` into a
  ``workloads.RunTrigger`` and handed to Airflow's own ``TriggerRunner``, in process,
  50 a loop (``[triggerer] max_trigger_to_select_per_loop``, as the supervisor does):
  ``create_triggers()`` decrypts the kwargs, imports the class by classpath and starts
  one ``run_trigger()`` task per trigger (greenback portal, span, event bookkeeping),
  ``block_watchdog()`` is Airflow's watchdog, ``cleanup_finished_triggers()`` reaps
  the finished tasks, and the harness loops once a second as ``TriggerRunner.arun``
  does. What differs from the real triggerer: no supervisor process, so no
  database, no ``sync_state_to_supervisor`` round trip (events are drained from
  ``runner.events`` here) and ``SUPERVISOR_COMMS`` is unset, so ``mask_secret``
  calls do not also send a ``MaskSecret`` message; logs are written as JSON to a file
  (``configure_logging(json_output=True, sending_to_supervisor=True)``, as the
  triggerer's child does) instead of a socket to the supervisor.

Measured in that loop: event-loop lag (a coroutine sleeps 10 ms and records how late it
woke), the process CPU time of the wait phase (``time.process_time``, every thread of
this process, not the simulator's) per 1,000 waits and per status poll, events by
status, the peak number of triggers waiting at once, Airflow's watchdog warnings,
every lag above its 0.2 s threshold, and the garbage collector's pauses (wall and CPU).

Run: ``python -m bench.triggerer`` (writes ``bench/results/triggerer.json``, ~3 min);
``--what-if`` then measures the same wait without the trigger's ``gc.freeze()``
(``triggerer_gc_freeze`` off), to show what it buys; ``--triggers 50
--latency 3 --latency-max 6`` for a quick look; ``--profile FILE`` dumps a cProfile of
the wait phase. Findings and advice: docs/TRIGGERER_CAPACITY.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import datetime as dt
import gc
import json
import math
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

RESULTS = REPO / "bench" / "results" / "triggerer.json"
CONN_ID = "oleria_default"
CONTEXT = "accessInventoryIdentitiesV2"
LAG_TARGET_MS = 50.0
BLOCKED_THRESHOLD_S = 0.2  # [triggerer] blocked_main_thread_warning_threshold default


@dataclass(frozen=True)
class BenchConfig:
    """What one run does; the defaults are the published benchmark."""

    triggers: int = 1000
    latency: float = 90.0  # simulator: seconds from accepted to completed, at least ...
    latency_max: float = 120.0  # ... and at most (seeded uniform)
    poll_interval: float = 2.0  # trigger kwargs: first poll interval ...
    max_poll_interval: float = 10.0  # ... growing x1.5 up to this
    deadline_s: float = 900.0  # absolute deadline = submit time + this
    rows: int = 10  # rows per export (the file is built when the job completes)
    seed: int = 20261122
    monitor_interval: float = 0.010
    idle_s: float = 5.0  # lag of the bare loop first: what the machine's load alone costs
    submit_concurrency: int = 32
    select_per_loop: int = 50  # [triggerer] max_trigger_to_select_per_loop default
    give_up_s: float = 1200.0  # the harness stops waiting (and says so) after this
    configure_logging: bool = True  # JSON logs to a file, as the triggerer's child
    what_if: bool = False  # also measure the what-if (WHAT_IFS) after the shipped code


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of already sorted values."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), math.ceil(q / 100 * len(sorted_values))))
    return sorted_values[rank - 1]


# --------------------------------------------------------------------------- environment


def prepare_airflow_env(workdir: Path) -> None:
    """An Airflow config for an in-process triggerer (set before airflow is imported)."""
    from cryptography.fernet import Fernet

    os.environ.setdefault("AIRFLOW_HOME", str(workdir / "airflow-home"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__CORE__FERNET_KEY", Fernet.generate_key().decode())


@contextlib.contextmanager
def environment(name: str, value: str) -> Iterator[None]:
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


@dataclass
class SimulatorProcess:
    """``python -m include.simulators --vendor oleria`` in its own process."""

    process: subprocess.Popen[bytes]
    connection: dict[str, Any]
    base_url: str

    def cpu_seconds(self) -> float:
        import psutil

        times = psutil.Process(self.process.pid).cpu_times()
        return float(times.user + times.system)

    def requests(self) -> list[dict[str, Any]]:
        import httpx

        answer = httpx.get(f"{self.base_url}/_sim/requests", timeout=60)
        answer.raise_for_status()
        items: list[dict[str, Any]] = answer.json()
        return items

    def clear_requests(self) -> None:
        import httpx

        httpx.delete(f"{self.base_url}/_sim/requests", timeout=60).raise_for_status()


@contextlib.contextmanager
def simulator(cfg: BenchConfig, workdir: Path) -> Iterator[SimulatorProcess]:
    state_file = workdir / "simulator.json"
    command = [
        sys.executable,
        "-m",
        "include.simulators",
        "--vendor",
        "oleria",
        "--port-base",
        "0",
        "--seed",
        str(cfg.seed),
        "--set",
        f"oleria.latency={cfg.latency}",
        "--set",
        f"oleria.latency_max={cfg.latency_max}",
        "--set",
        f"oleria.rows={cfg.rows}",
        "--state-file",
        str(state_file),
    ]
    log = (workdir / "simulator.log").open("wb")
    process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while not state_file.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the simulator did not start; see {workdir / 'simulator.log'}:\n"
                    + (workdir / "simulator.log").read_text(errors="replace")[-2000:]
                )
            time.sleep(0.1)
        state = json.loads(state_file.read_text())["oleria"]
        yield SimulatorProcess(process, state["connection"], state["base_url"])
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


# --------------------------------------------------------------------------- submission


def submit_jobs(cfg: BenchConfig, connection: dict[str, Any]) -> list[str]:
    """Start ``cfg.triggers`` Oleria downloads: one token, then concurrent POST /v1/downloads.

    Plain httpx rather than the hook, so the submissions are quick (every job's latency
    runs from its POST) and leave nothing in this process (tokens, secrets masker).
    """
    return asyncio.run(_submit_jobs(cfg, connection))


async def _submit_jobs(cfg: BenchConfig, connection: dict[str, Any]) -> list[str]:
    import httpx

    request = {"context": CONTEXT, "params": {"filterBy": [], "sortBy": []}}
    limit = asyncio.Semaphore(cfg.submit_concurrency)
    async with httpx.AsyncClient(base_url=connection["host"], timeout=60) as client:
        token = await client.post(
            connection["extra"]["token_url"],
            data={
                "grant_type": "client_credentials",
                "client_id": connection["login"],
                "client_secret": connection["password"],
            },
        )
        token.raise_for_status()
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}

        async def submit() -> str:
            async with limit:
                answer = await client.post("/v1/downloads", json=request, headers=headers)
            answer.raise_for_status()
            return str(answer.json()["id"])

        return list(await asyncio.gather(*(submit() for _ in range(cfg.triggers))))


def build_workloads(cfg: BenchConfig, job_ids: Sequence[str], deadline: float) -> list[Any]:
    """One ``RunTrigger`` per job: the trigger's classpath and encrypted serialize() kwargs."""
    from airflow.executors.workloads import RunTrigger
    from airflow.models.trigger import Trigger

    from compliance_exports.vendors.oleria.triggers import OleriaDownloadTrigger

    timeout_after = dt.datetime.fromtimestamp(deadline + 60, tz=dt.UTC)
    workloads = []
    for number, job_id in enumerate(job_ids, start=1):
        trigger = OleriaDownloadTrigger(
            conn_id=CONN_ID,
            job_id=job_id,
            deadline=deadline,
            poll_interval=cfg.poll_interval,
            max_poll_interval=cfg.max_poll_interval,
        )
        classpath, kwargs = trigger.serialize()
        workloads.append(
            RunTrigger(
                id=number,
                classpath=classpath,
                encrypted_kwargs=Trigger.encrypt_kwargs(kwargs),
                timeout_after=timeout_after,
            )
        )
    return workloads


# --------------------------------------------------------------------------- the wait


class LagMonitor:
    """Sleeps ``interval`` in a loop and records how late each wake-up was (seconds)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.samples: list[tuple[float, float]] = []  # (seconds since start, lag)
        self._stop = False

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        while not self._stop:
            expected = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            now = loop.time()
            self.samples.append((now - start, max(0.0, now - expected)))

    def stop(self) -> None:
        self._stop = True


class WatchdogLog:
    """Airflow's runner logger, counting the watchdog's "async thread was blocked" lines."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.blocked: list[float] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def ainfo(self, event: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(event, str) and "async thread was blocked" in event and args:
            self.blocked.append(float(args[0]))
        return await self._inner.ainfo(event, *args, **kwargs)


class GcPauses:
    """Python's garbage-collector pauses (they stop the event loop too), by generation.

    Each pause is recorded as wall time and as the thread's CPU time: on a loaded host
    the difference is time the process waited for a core in the middle of a collection.
    """

    def __init__(self) -> None:
        self.pauses: dict[int, list[tuple[float, float]]] = {0: [], 1: [], 2: []}
        self._started = (0.0, 0.0)

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = (time.perf_counter(), time.thread_time())
        else:
            wall, cpu = self._started
            pause = (time.perf_counter() - wall, time.thread_time() - cpu)
            self.pauses[info["generation"]].append(pause)

    def summary(self) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for generation, pauses in self.pauses.items():
            longest = max(pauses, default=(0.0, 0.0))
            result[f"gen{generation}"] = {
                "collections": len(pauses),
                "max_ms": round(longest[0] * 1000, 1),
                "max_cpu_ms": round(max((cpu for _, cpu in pauses), default=0.0) * 1000, 1),
                "longest_cpu_ms": round(longest[1] * 1000, 1),
                "total_s": round(sum(wall for wall, _ in pauses), 2),
                "total_cpu_s": round(sum(cpu for _, cpu in pauses), 2),
            }
        return result


@dataclass
class WaitOutcome:
    wall_s: float
    cpu_s: float
    cpu_user_s: float
    cpu_sys_s: float
    create_s: float
    events: Counter[str]
    failures: int
    peak_running: int
    running_after_create: int  # triggers still waiting when the last one was created
    gave_up: bool
    lag: list[tuple[float, float]]
    watchdog_blocked: list[float]
    gc: dict[str, Any]
    messages: Counter[str] = field(default_factory=Counter)


async def wait_for_all(cfg: BenchConfig, workloads: Sequence[Any]) -> WaitOutcome:
    """Run every workload in Airflow's ``TriggerRunner`` until each has fired its event."""
    from airflow.jobs.triggerer_job_runner import TriggerRunner

    runner = TriggerRunner()
    watchdog_log = WatchdogLog(runner.log)
    runner.log = watchdog_log
    monitor = LagMonitor(cfg.monitor_interval)
    events: Counter[str] = Counter()
    messages: Counter[str] = Counter()
    failures = 0
    peak = 0

    cpu0, usage0, t0 = (
        time.process_time(),
        resource.getrusage(resource.RUSAGE_SELF),
        time.monotonic(),
    )
    gc_pauses = GcPauses()
    gc.callbacks.append(gc_pauses)
    monitor_task = asyncio.create_task(monitor.run())
    watchdog = asyncio.create_task(runner.block_watchdog())
    pending = deque(workloads)
    create_s: float | None = None
    running_after_create = 0
    gave_up = False
    while True:  # one TriggerRunner.arun iteration: reap, sync, create, sleep
        await runner.cleanup_finished_triggers()
        while runner.events:
            payload = runner.events.popleft().event.payload
            events[str(payload.get("status"))] += 1
            if payload.get("status") != "success":
                messages[str(payload.get("message"))[:200]] += 1
        while runner.failed_triggers:
            runner.failed_triggers.popleft()
            failures += 1
        # the supervisor hands over at most max_trigger_to_select_per_loop new triggers a loop
        for _ in range(min(cfg.select_per_loop, len(pending))):
            runner.to_create.append(pending.popleft())
        await runner.create_triggers()
        running = sum(1 for details in runner.triggers.values() if not details["task"].done())
        peak = max(peak, running)
        if not pending and create_s is None:
            create_s = time.monotonic() - t0
            running_after_create = running
        if not runner.triggers and not pending:
            break
        if time.monotonic() - t0 > cfg.give_up_s:
            gave_up = True
            for details in runner.triggers.values():
                details["task"].cancel()
            await asyncio.gather(
                *(d["task"] for d in runner.triggers.values()), return_exceptions=True
            )
            break
        await asyncio.sleep(1)  # TriggerRunner.arun's loop period
    wall = time.monotonic() - t0
    cpu = time.process_time() - cpu0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    runner.stop = True
    monitor.stop()
    await asyncio.gather(monitor_task, watchdog)
    gc.callbacks.remove(gc_pauses)
    return WaitOutcome(
        wall_s=wall,
        cpu_s=cpu,
        cpu_user_s=usage.ru_utime - usage0.ru_utime,
        cpu_sys_s=usage.ru_stime - usage0.ru_stime,
        create_s=wall if create_s is None else create_s,
        events=events,
        failures=failures,
        peak_running=peak,
        running_after_create=running_after_create,
        gave_up=gave_up,
        lag=monitor.samples,
        watchdog_blocked=watchdog_log.blocked,
        gc=gc_pauses.summary(),
        messages=messages,
    )


# --------------------------------------------------------------------------- report


def lag_summary(samples: Sequence[tuple[float, float]]) -> dict[str, Any]:
    lags = sorted(lag for _, lag in samples)
    blocked = [(at, lag) for at, lag in samples if lag > BLOCKED_THRESHOLD_S]
    return {
        "lag_samples": len(lags),
        "lag_p50_ms": round(percentile(lags, 50) * 1000, 2),
        "lag_p90_ms": round(percentile(lags, 90) * 1000, 2),
        "lag_p99_ms": round(percentile(lags, 99) * 1000, 2),
        "lag_max_ms": round((lags[-1] if lags else 0.0) * 1000, 2),
        "lag_over_50ms": sum(1 for lag in lags if lag > LAG_TARGET_MS / 1000),
        "lag_over_200ms": len(blocked),
        "first_over_200ms_at_s": round(blocked[0][0], 1) if blocked else None,
        "last_over_200ms_at_s": round(blocked[-1][0], 1) if blocked else None,
    }


def lag_timeline(samples: Sequence[tuple[float, float]], bucket_s: float = 10.0) -> list[dict]:
    """p99 and max lag per ``bucket_s`` window of the wait: where the lag happened."""
    buckets: dict[int, list[float]] = {}
    for at, lag in samples:
        buckets.setdefault(int(at // bucket_s), []).append(lag)
    timeline = []
    for index in sorted(buckets):
        lags = sorted(buckets[index])
        timeline.append(
            {
                "from_s": index * bucket_s,
                "p99_ms": round(percentile(lags, 99) * 1000, 1),
                "max_ms": round(lags[-1] * 1000, 1),
                "samples": len(lags),
            }
        )
    return timeline


def count_requests(requests: Sequence[dict[str, Any]]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for item in requests:
        path = str(item.get("path", ""))
        if path.endswith("/oauth/token"):
            counts["token"] += 1
        elif path.startswith("/v1/downloads/"):
            counts["status_poll"] += 1
        else:
            counts[f"{item.get('method')} {path}"] += 1
    return dict(counts)


def run(cfg: BenchConfig, *, profile: Path | None = None) -> dict[str, Any]:
    """Start the simulator, then measure the shipped code and (optionally) the what-if."""
    with tempfile.TemporaryDirectory(prefix="bench-triggerer-") as tmp:
        workdir = Path(tmp)
        prepare_airflow_env(workdir)
        with (
            simulator(cfg, workdir) as sim,
            environment(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(sim.connection)),
        ):
            if cfg.configure_logging:
                configure_json_logs(workdir / "triggerer.log")
            code = code_version()
            result = run_phase(cfg, sim, profile=profile)
            for key, what in WHAT_IFS.items() if cfg.what_if else ():
                what_if_profile = profile.with_suffix(f".{key}.prof") if profile else None
                with environment(FREEZE_SETTING, "False"):
                    measured = run_phase(cfg, sim, profile=what_if_profile)
                result[key] = {"what": what, **{k: measured[k] for k in WHAT_IF_KEYS}}
    return result | {"code": code}


def code_version() -> dict[str, Any]:
    """The commit measured, and whether the trigger's code differs from it in the work tree."""
    paths = ["src/compliance_exports/core", "src/compliance_exports/vendors/oleria"]

    def git(*args: str) -> str:
        try:
            done = subprocess.run(
                ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=30, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return ""
        return done.stdout.strip()

    changed = git("status", "--porcelain", "--", *paths)
    return {"commit": git("rev-parse", "HEAD"), "trigger_code_modified": changed.splitlines()}


def run_phase(
    cfg: BenchConfig,
    sim: SimulatorProcess,
    *,
    profile: Path | None = None,
) -> dict[str, Any]:
    """Submit ``cfg.triggers`` jobs, then wait for all of them in one triggerer loop.

    Each phase starts as a fresh triggerer process would: heap not frozen, masker empty.
    """
    reset_secrets_masker()  # a fresh triggerer process starts with an empty masker
    t_submit = time.monotonic()
    job_ids = submit_jobs(cfg, sim.connection)
    submit_s = time.monotonic() - t_submit
    deadline = time.time() + cfg.deadline_s
    workloads = build_workloads(cfg, job_ids, deadline)
    sim.clear_requests()
    sim_cpu0 = sim.cpu_seconds()
    loadavg_before = os.getloadavg()
    idle = lag_summary(asyncio.run(idle_lag(cfg)))
    profiler = cProfile.Profile() if profile else None
    if profiler is not None:
        profiler.enable()
    tracked = len(gc.get_objects())
    with fresh_heap():
        outcome = asyncio.run(wait_for_all(cfg, workloads))
        frozen = gc.get_freeze_count() > 0  # did the first trigger run freeze the heap
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(str(profile))
    loadavg_after = os.getloadavg()
    sim_cpu = sim.cpu_seconds() - sim_cpu0
    requests = count_requests(sim.requests())
    result = report(cfg, outcome, submit_s, sim_cpu, requests, loadavg_before, loadavg_after)
    result["idle_loop_lag"] = {key: idle[key] for key in IDLE_KEYS} | {"seconds": cfg.idle_s}
    result["gc_pauses"]["tracked_objects_at_start"] = tracked
    result["gc_pauses"]["frozen"] = frozen
    return result


IDLE_KEYS = ("lag_p50_ms", "lag_p99_ms", "lag_max_ms", "lag_over_50ms", "lag_samples")


async def idle_lag(cfg: BenchConfig) -> list[tuple[float, float]]:
    """The lag monitor alone for ``cfg.idle_s``: the noise floor of this machine right now."""
    monitor = LagMonitor(cfg.monitor_interval)
    task = asyncio.create_task(monitor.run())
    await asyncio.sleep(cfg.idle_s)
    monitor.stop()
    await task
    return monitor.samples


def reset_secrets_masker() -> None:
    from airflow.sdk.log import _secrets_masker

    _secrets_masker().reset_masker()


FREEZE_SETTING = "AIRFLOW__COMPLIANCE_EXPORTS__TRIGGERER_GC_FREEZE"

#: What ``--what-if`` measures after the shipped code: the same wait without one of its parts.
WHAT_IFS: dict[str, str] = {
    "what_if_no_gc_freeze": (
        "the same wait with triggerer_gc_freeze off: the first trigger run no longer calls "
        "gc.freeze(), so every full (generation 2) collection walks the ~190,000 objects of "
        "the imported modules while the event loop waits"
    ),
}
WHAT_IF_KEYS = (
    "triggers",
    "lag_p99_ms",
    "lag_max_ms",
    "cpu_s_per_1000",
    "lag_p50_ms",
    "lag_p90_ms",
    "lag_target_met",
    "blocked",
    "events_by_status",
    "all_success",
    "peak_running_triggers",
    "wall_s",
    "cpu_s",
    "simulator_requests_during_wait",
    "lag_timeline_10s",
    "loadavg",
    "idle_loop_lag",
    "gc_pauses",
)


@contextlib.contextmanager
def fresh_heap() -> Iterator[None]:
    """The heap as a new triggerer process has it: nothing frozen yet (and unfrozen after)."""
    from compliance_exports.core import triggers

    gc.unfreeze()
    gc.collect()
    triggers._heap_frozen = False
    try:
        yield
    finally:
        gc.unfreeze()
        triggers._heap_frozen = False


def configure_json_logs(path: Path) -> None:
    """Structured logs as JSON lines to a file, as the triggerer's child process logs."""
    from airflow.sdk.log import configure_logging

    configure_logging(json_output=True, output=path.open("wb"), sending_to_supervisor=True)


def report(
    cfg: BenchConfig,
    outcome: WaitOutcome,
    submit_s: float,
    sim_cpu: float,
    requests: dict[str, int],
    loadavg_before: tuple[float, float, float],
    loadavg_after: tuple[float, float, float],
) -> dict[str, Any]:
    n = cfg.triggers
    summary = lag_summary(outcome.lag)
    return {
        "triggers": n,
        "lag_p99_ms": summary["lag_p99_ms"],
        "lag_max_ms": summary["lag_max_ms"],
        "cpu_s_per_1000": round(outcome.cpu_s / n * 1000, 2),
        "lag_p50_ms": summary["lag_p50_ms"],
        "lag_p90_ms": summary["lag_p90_ms"],
        "lag_target_ms": LAG_TARGET_MS,
        "lag_target_met": summary["lag_p99_ms"] < LAG_TARGET_MS,
        "blocked": {
            "threshold_s": BLOCKED_THRESHOLD_S,
            "lags_over_threshold": summary["lag_over_200ms"],
            "first_at_s": summary["first_over_200ms_at_s"],
            "last_at_s": summary["last_over_200ms_at_s"],
            "airflow_watchdog_warnings": len(outcome.watchdog_blocked),
            "airflow_watchdog_max_s": round(max(outcome.watchdog_blocked, default=0.0), 3),
        },
        "lag": summary,
        "lag_timeline_10s": lag_timeline(outcome.lag),
        "gc_pauses": outcome.gc,
        "events_by_status": dict(outcome.events),
        "non_success_messages": dict(outcome.messages.most_common(5)),
        "trigger_failures": outcome.failures,
        "all_success": outcome.events.get("success", 0) == n and outcome.failures == 0,
        "gave_up": outcome.gave_up,
        "peak_running_triggers": outcome.peak_running,
        "running_after_create": outcome.running_after_create,
        "wall_s": {
            "submit": round(submit_s, 2),
            "create_triggers": round(outcome.create_s, 2),
            "wait": round(outcome.wall_s, 2),
        },
        "cpu_s": {
            "wait": round(outcome.cpu_s, 2),
            "user": round(outcome.cpu_user_s, 2),
            "system": round(outcome.cpu_sys_s, 2),
            "per_trigger_ms": round(outcome.cpu_s / n * 1000, 2),
            "per_status_poll_ms": round(
                outcome.cpu_s / max(1, requests.get("status_poll", 0)) * 1000, 2
            ),
            "share_of_one_core": round(outcome.cpu_s / outcome.wall_s, 3),
            "simulator_process_wait": round(sim_cpu, 2),
        },
        "simulator_requests_during_wait": requests,
        "settings": {
            "job_latency_s": [cfg.latency, cfg.latency_max],
            "poll_interval_s": cfg.poll_interval,
            "max_poll_interval_s": cfg.max_poll_interval,
            "poll_backoff": 1.5,
            "deadline_s": cfg.deadline_s,
            "rows_per_export": cfg.rows,
            "monitor_interval_ms": cfg.monitor_interval * 1000,
            "seed": cfg.seed,
        },
        "loadavg": {
            "before_wait": [round(x, 2) for x in loadavg_before],
            "after_wait": [round(x, 2) for x in loadavg_after],
        },
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def table(result: dict[str, Any]) -> str:
    """The headline numbers: the shipped code, and the what-if run if there was one."""
    columns = [("shipped code", result)]
    titles = {"what_if_no_gc_freeze": "what if: no gc.freeze()"}
    columns += [(title, result[key]) for key, title in titles.items() if key in result]
    rows: list[tuple[str, Any]] = [
        ("triggers", lambda r: r["triggers"]),
        ("events by status", lambda r: r["events_by_status"]),
        ("peak running triggers", lambda r: r["peak_running_triggers"]),
        (
            "lag p50 / p99 / max ms",
            lambda r: f"{r['lag_p50_ms']} / {r['lag_p99_ms']} / {r['lag_max_ms']}",
        ),
        ("lags > 0.2 s", lambda r: r["blocked"]["lags_over_threshold"]),
        ("airflow watchdog warnings", lambda r: r["blocked"]["airflow_watchdog_warnings"]),
        ("CPU s per 1,000 waits", lambda r: r["cpu_s_per_1000"]),
        ("CPU ms per status poll", lambda r: r["cpu_s"]["per_status_poll_ms"]),
        ("max GC pause ms (gen 2)", lambda r: r["gc_pauses"]["gen2"]["max_ms"]),
        ("wait wall s", lambda r: r["wall_s"]["wait"]),
        (
            "idle loop lag p99 / max ms",
            lambda r: f"{r['idle_loop_lag']['lag_p99_ms']} / {r['idle_loop_lag']['lag_max_ms']}",
        ),
        (
            "token / status requests",
            lambda r: (
                f"{r['simulator_requests_during_wait'].get('token', 0)}"
                f" / {r['simulator_requests_during_wait'].get('status_poll', 0)}"
            ),
        ),
        ("simulator CPU s (apart)", lambda r: r["cpu_s"]["simulator_process_wait"]),
        (
            "loadavg (1 min) before/after",
            lambda r: f"{r['loadavg']['before_wait'][0]} / {r['loadavg']['after_wait'][0]}",
        ),
    ]
    cells = [[name, *(str(get(column)) for _, column in columns)] for name, get in rows]
    header = ["", *(title for title, _ in columns)]
    widths = [max(len(row[i]) for row in [header, *cells]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in [header, *cells]
    ]
    return "\n".join(line.rstrip() for line in lines)


def parse_args(argv: Sequence[str] | None) -> tuple[BenchConfig, Path | None, Path | None]:
    defaults = BenchConfig()
    p = argparse.ArgumentParser(
        prog="python -m bench.triggerer", description=__doc__.split("\n")[0]
    )
    p.add_argument("--triggers", type=int, default=defaults.triggers)
    p.add_argument("--latency", type=float, default=defaults.latency)
    p.add_argument("--latency-max", type=float, default=defaults.latency_max)
    p.add_argument("--poll-interval", type=float, default=defaults.poll_interval)
    p.add_argument("--max-poll-interval", type=float, default=defaults.max_poll_interval)
    p.add_argument("--give-up", type=float, default=defaults.give_up_s)
    p.add_argument(
        "--what-if",
        action="store_true",
        help="then measure again without the trigger's gc.freeze() (~2.5 more minutes)",
    )
    p.add_argument("--output", type=Path, default=RESULTS, help="JSON results ('-': none)")
    p.add_argument("--profile", type=Path, help="write a cProfile of the wait phase here")
    args = p.parse_args(argv)
    cfg = BenchConfig(
        triggers=args.triggers,
        latency=args.latency,
        latency_max=args.latency_max,
        poll_interval=args.poll_interval,
        max_poll_interval=args.max_poll_interval,
        give_up_s=args.give_up,
        what_if=args.what_if,
    )
    output = None if str(args.output) == "-" else args.output
    return cfg, output, args.profile


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = list(sys.argv[1:] if argv is None and __name__ == "__main__" else argv or [])
    cfg, output, profile = parse_args(args)
    result = run(cfg, profile=profile)
    result["command"] = " ".join(["python -m bench.triggerer", *args])
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    return result


__all__ = ["BenchConfig", "LagMonitor", "main", "percentile", "run"]

if __name__ == "__main__":
    main()
