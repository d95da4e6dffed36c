"""Helpers for the lifecycle tests: simulators with small settings, deferral driver."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import json
import os
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import TaskDeferred

from include.simulators import RunningSimulator, start_simulator

#: Short back-off so fault tests stay quick; the policy itself is unit-tested.
FAST_RETRIES = {"retry_base_delay": 0.05, "retry_max_delay": 2.0}


class MemoryStateStore:
    """Stands in for ``context["task_state_store"]`` (same API) outside a task runner."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.data[key] = json.loads(json.dumps(value))

    def delete(self, key: str) -> None:
        self.data.pop(key, None)


def use_connection(conn_id: str, sim: RunningSimulator, **extra: Any) -> None:
    conn = sim.connection()
    conn["extra"] = {**conn["extra"], **FAST_RETRIES, **extra}
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(conn)


def recreate(trigger: Any) -> Any:
    """What the triggerer does: classpath + kwargs -> a new trigger instance."""
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    return cls(**json.loads(json.dumps(kwargs)))


def run_trigger(trigger: Any) -> list[dict[str, Any]]:
    async def collect() -> list[dict[str, Any]]:
        return [event.payload async for event in recreate(trigger).run()]

    return asyncio.run(collect())


def run_trigger_for(trigger: Any, seconds: float) -> list[dict[str, Any]]:
    """Run ``trigger`` for ``seconds`` then cancel it, as a dying triggerer would."""

    async def collect() -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []

        async def consume() -> None:
            async for event in trigger.run():
                events.append(event.payload)

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(consume(), timeout=seconds)
        return events

    return asyncio.run(collect())


def deferred_trigger(task: Any, context: dict[str, Any]) -> Any:
    """The trigger a deferrable task hands to the triggerer (the task must defer)."""
    with pytest.raises(TaskDeferred) as deferred:
        task.execute(context)
    return deferred.value.trigger


def run_deferrable(
    task: Any,
    context: dict[str, Any],
    max_deferrals: int = 10,
    resume: tuple[str, dict[str, Any]] | None = None,
) -> Any:
    """Execute a deferrable task the way Airflow does: defer, trigger, resume, as often as
    it defers again (a resubmitted job, a long Retry-After wait). ``resume``: start from
    ``(method name, event)`` instead of ``execute``."""
    step = functools.partial(task.execute, context)
    if resume is not None:
        step = functools.partial(getattr(task, resume[0]), context, resume[1])
    for _ in range(max_deferrals):
        try:
            return step()
        except TaskDeferred as deferred:
            events = run_trigger(deferred.trigger)
            assert len(events) == 1, events
            step = functools.partial(getattr(task, deferred.method_name), context, events[0])
    raise AssertionError(f"{task.task_id} deferred more than {max_deferrals} times")


def next_try(context: dict[str, Any], *, cleared: bool = False) -> dict[str, Any]:
    """The context of the task's next try (same state store): a retry, or after a Clear."""
    ti, dag_run = context["ti"], context["dag_run"]
    return {
        **context,
        "ti": SimpleNamespace(try_number=ti.try_number + 1),
        "dag_run": SimpleNamespace(clear_number=dag_run.clear_number + int(cleared)),
    }


def requests_seen(sim: RunningSimulator, path: str = "") -> list[dict[str, Any]]:
    with sim.admin() as admin:
        items: list[dict[str, Any]] = admin.get("/_sim/requests").json()
    return [item for item in items if path in item["path"]]


def arm(sim: RunningSimulator, **fault: Any) -> None:
    with sim.admin() as admin:
        admin.post("/_sim/faults", json=fault).raise_for_status()


def disarm(sim: RunningSimulator) -> None:
    with sim.admin() as admin:
        admin.delete("/_sim/faults")


def configure(sim: RunningSimulator, **settings: Any) -> None:
    with sim.admin() as admin:
        admin.patch("/_sim/config", json=settings).raise_for_status()


def reset(sim: RunningSimulator) -> None:
    with sim.admin() as admin:
        admin.delete("/_sim/faults")
        admin.delete("/_sim/requests")


def _clean(sim: RunningSimulator) -> Iterator[RunningSimulator]:
    """The module's simulator for one test: no fault, empty log, its connection in use."""
    reset(sim)
    use_connection(f"{sim.vendor}_default", sim)
    yield sim
    reset(sim)


def _vendor_sim(vendor: str, **settings: Any) -> Iterator[RunningSimulator]:
    sim = start_simulator(vendor, seed=7, **settings)
    use_connection(f"{vendor}_default", sim)
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture(scope="module")
def oleria_sim() -> Iterator[RunningSimulator]:
    yield from _vendor_sim("oleria", rows=40, latency=0.2)


@pytest.fixture
def oleria(oleria_sim: RunningSimulator) -> Iterator[RunningSimulator]:
    yield from _clean(oleria_sim)


@pytest.fixture
def context() -> dict[str, Any]:
    import datetime as dt

    day = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)  # a partition label: any day will do
    return {
        "task_state_store": MemoryStateStore(),
        "data_interval_start": day,
        "ti": SimpleNamespace(try_number=1),
        "dag_run": SimpleNamespace(clear_number=0),
    }


@pytest.fixture(scope="module")
def veza_sim() -> Iterator[RunningSimulator]:
    yield from _vendor_sim("veza", rows=30, latency=0.2)


@pytest.fixture
def veza(veza_sim: RunningSimulator) -> Iterator[RunningSimulator]:
    yield from _clean(veza_sim)


@pytest.fixture(scope="module")
def sailpoint_sim() -> Iterator[RunningSimulator]:
    yield from _vendor_sim("sailpoint", rows=25, latency=0.3)


@pytest.fixture
def sailpoint(sailpoint_sim: RunningSimulator) -> Iterator[RunningSimulator]:
    yield from _clean(sailpoint_sim)


@pytest.fixture(scope="module")
def maxsight_sim() -> Iterator[RunningSimulator]:
    yield from _vendor_sim("maxsight", events=300, pdf_event_limit=50)


@pytest.fixture
def maxsight(maxsight_sim: RunningSimulator) -> Iterator[RunningSimulator]:
    yield from _clean(maxsight_sim)
