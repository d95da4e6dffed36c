"""Helpers for the lifecycle tests: simulators with small settings, deferral driver."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
from collections.abc import Iterator
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


def deferred_trigger(sensor: Any, context: dict[str, Any]) -> Any:
    """The trigger a deferrable sensor hands to the triggerer (the sensor must defer)."""
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context)
    return deferred.value.trigger


def run_sensor(sensor: Any, context: dict[str, Any]) -> Any:
    """Execute a deferrable sensor the way Airflow does: defer, trigger, resume."""
    try:
        return sensor.execute(context)
    except TaskDeferred as deferred:
        events = run_trigger(deferred.trigger)
        assert len(events) == 1, events
        return getattr(sensor, deferred.method_name)(context, event=events[0])


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

    day = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    return {"task_state_store": MemoryStateStore(), "data_interval_start": day}


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
