"""ExportStatusTrigger: JSON kwargs round trip, one terminal event, deadline and cancel."""

from __future__ import annotations

import importlib
import json
import time
from typing import Any, ClassVar

import pytest

from compliance_exports.core.errors import RetryableError
from compliance_exports.core.hooks import ExportHook
from compliance_exports.core.states import ExportPhase, ExportState
from compliance_exports.core.triggers import ExportStatusTrigger
from compliance_exports.vendors.oleria.triggers import OleriaDownloadTrigger
from compliance_exports.vendors.sailpoint.triggers import SailPointReportTrigger
from compliance_exports.vendors.veza.triggers import VezaAccessReviewExportTrigger

TRIGGERS = [OleriaDownloadTrigger, VezaAccessReviewExportTrigger, SailPointReportTrigger]


def recreate(trigger: ExportStatusTrigger) -> ExportStatusTrigger:
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    rebuilt: ExportStatusTrigger = cls(**json.loads(json.dumps(kwargs)))
    return rebuilt


@pytest.mark.parametrize("trigger_class", TRIGGERS)
def test_serialize_recreate_serialize_round_trip(trigger_class: type[ExportStatusTrigger]) -> None:
    trigger = trigger_class(
        conn_id="c", job_id="j", deadline=1_900_000_000.5, poll_interval=2, stall_timeout=600
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == f"{trigger_class.__module__}.{trigger_class.__name__}"
    assert recreate(trigger).serialize() == (classpath, kwargs)
    assert kwargs["deadline"] == 1_900_000_000.5  # absolute: a restart keeps the same deadline


class ScriptedHook(ExportHook):
    """In-memory hook: answers a scripted list of states (the run logic is under test)."""

    conn_type = "scripted"
    default_conn_name = "scripted_default"
    hook_name = "Scripted"
    vendor = "scripted"
    can_cancel = True
    script: ClassVar[list[Any]] = []
    cancelled: ClassVar[list[str]] = []

    async def a_get_export_state(self, job_id: str) -> ExportState:
        answer = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(answer, Exception):
            raise answer
        return ExportState(job_id, answer, answer.value)

    async def a_cancel_export(self, job_id: str) -> bool:
        self.cancelled.append(job_id)
        return True


class ScriptedTrigger(ExportStatusTrigger):
    hook_class = ScriptedHook


async def events_of(script: list[Any], **kwargs: Any) -> list[dict[str, Any]]:
    ScriptedHook.script[:] = script
    ScriptedHook.cancelled.clear()
    kwargs.setdefault("deadline", time.time() + 30)
    trigger = ScriptedTrigger(conn_id="x", job_id="job-1", poll_interval=0.01, **kwargs)
    return [event.payload async for event in trigger.run()]


@pytest.mark.parametrize(
    ("final", "status"),
    [
        (ExportPhase.SUCCEEDED, "success"),
        (ExportPhase.FAILED, "failed"),
        (ExportPhase.CANCELLED, "failed"),
        (ExportPhase.EXPIRED, "failed"),
    ],
)
async def test_one_terminal_event_per_outcome(final: ExportPhase, status: str) -> None:
    events = await events_of([ExportPhase.PENDING, ExportPhase.RUNNING, final])
    assert [e["status"] for e in events] == [status]
    assert events[0]["state"]["phase"] == final.value


async def test_deadline_yields_timeout_after_cancelling() -> None:
    events = await events_of([ExportPhase.RUNNING], deadline=time.time() + 0.05)
    assert events[0]["status"] == "timeout"
    assert events[0]["cancelled"] is True
    assert ScriptedHook.cancelled == ["job-1"]


async def test_a_deadline_already_past_times_out_at_once() -> None:
    events = await events_of([ExportPhase.RUNNING], deadline=time.time() - 5)
    assert events[0]["status"] == "timeout"


async def test_stall_yields_timeout_with_the_reason() -> None:
    events = await events_of([ExportPhase.RUNNING], stall_timeout=0.05)
    assert events[0]["status"] == "timeout"
    assert "stalled" in events[0]["message"]


async def test_errors_become_one_error_event() -> None:
    events = await events_of([RetryableError("acme GET /x answered 503")])
    assert events == [
        {
            "status": "error",
            "job_id": "job-1",
            "message": "RetryableError: acme GET /x answered 503",
            "state": None,
        }
    ]


@pytest.mark.parametrize(
    ("task_state", "cancelled"),
    [("failed", ["job-9"]), ("success", ["job-9"]), (None, []), ("deferred", [])],
    ids=["marked-failed", "marked-success", "cleared", "reassigned"],
)
async def test_on_kill_cancels_only_for_a_task_a_person_ended(
    monkeypatch: pytest.MonkeyPatch, task_state: str | None, cancelled: list[str]
) -> None:
    ScriptedHook.cancelled.clear()
    trigger = ScriptedTrigger(conn_id="x", job_id="job-9", deadline=time.time() + 30)

    async def state_now(self: object) -> str | None:
        return task_state

    monkeypatch.setattr(ScriptedTrigger, "task_state", state_now)
    await trigger.on_kill()
    assert ScriptedHook.cancelled == cancelled


async def test_outside_a_triggerer_the_task_state_is_unknown_and_nothing_is_cancelled() -> None:
    ScriptedHook.cancelled.clear()
    trigger = ScriptedTrigger(conn_id="x", job_id="job-9", deadline=time.time() + 30)
    assert await trigger.task_state() is None
    await trigger.on_kill()
    assert ScriptedHook.cancelled == []


class TestFreezeStartupHeap:
    """The first trigger run of a process moves the start-up heap out of the GC's way."""

    @pytest.fixture(autouse=True)
    def fresh_process(self) -> Any:
        import gc

        from compliance_exports.core import triggers

        gc.unfreeze()
        triggers._heap_frozen = False
        yield
        gc.unfreeze()
        triggers._heap_frozen = False

    async def test_the_first_run_freezes_the_heap(self) -> None:
        import gc

        assert gc.get_freeze_count() == 0
        assert await events_of([ExportPhase.SUCCEEDED]) != []
        assert gc.get_freeze_count() > 0

    async def test_only_once_per_process(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import gc

        from compliance_exports.core.triggers import freeze_startup_heap

        freezes: list[None] = []
        monkeypatch.setattr(gc, "freeze", lambda: freezes.append(None))
        for _ in range(3):
            assert await events_of([ExportPhase.SUCCEEDED]) != []
        assert len(freezes) == 1
        assert freeze_startup_heap() is False

    def test_the_setting_turns_it_off(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import gc

        from compliance_exports.core.triggers import freeze_startup_heap

        monkeypatch.setenv("AIRFLOW__COMPLIANCE_EXPORTS__TRIGGERER_GC_FREEZE", "False")
        assert freeze_startup_heap() is False
        assert gc.get_freeze_count() == 0
