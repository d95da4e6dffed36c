"""``ExportStatusTrigger``: one async poll loop for every vendor's export job.

A vendor subclass declares only ``hook_class``. The trigger keeps JSON-only kwargs,
carries an absolute ``deadline`` (epoch seconds, computed once by the operator, so a
triggerer restart never extends the wait), resolves its connection asynchronously,
never blocks the event loop, and yields exactly one terminal :class:`ExportEvent`:

* ``success`` - the job succeeded (``state`` holds it);
* ``failed`` - the vendor ended the job FAILED / CANCELLED / EXPIRED (``message`` is theirs);
* ``timeout`` - the deadline passed, or the job stalled; the remote job was cancelled
  where the vendor can (``cancelled`` says whether it was);
* ``error`` - anything else went wrong (``message`` says what).

``on_kill`` cancels the job only when a person ended the task: Airflow 3.3.2 calls it
when the deferred task is marked failed or success, but also when it is cleared and,
until apache/airflow#73454 is fixed, when the trigger moves to another triggerer. The
trigger asks the execution API for the task instance's state (:func:`task_state`):
``failed`` or ``success`` cancels; anything else (``None``/``scheduled`` after a Clear,
whose next try re-attaches to the job; ``deferred`` for a reassigned trigger, which keeps
waiting on it elsewhere) leaves the job running.

The first trigger to run in a process freezes the garbage collector's view of the heap
there (:func:`freeze_startup_heap`); ``[compliance_exports] triggerer_gc_freeze = False``
turns that off.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import gc
import time
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from airflow.triggers.base import BaseTrigger, TriggerEvent

from compliance_exports.core.hooks import ExportHook
from compliance_exports.core.polling import PollLoop, PollOutcome, a_wait_for_export
from compliance_exports.core.states import ExportEvent, ExportState

#: Extra time the framework gives a deferred task beyond the trigger's own deadline,
#: so the trigger's ``timeout`` event (and its cancel) always comes first.
DEADLINE_GRACE = 120.0
#: The longest a cancel call may take (``on_kill`` has a 30 s budget in Airflow 3.3).
CANCEL_TIMEOUT = 20.0

#: Task states in which ``on_kill`` means "a person ended this task": cancel the job.
USER_ENDED_STATES = frozenset({"failed", "success"})

_heap_frozen = False
#: on_kill decisions still running after on_kill itself was cut short (kept referenced)
_BACKGROUND: set[asyncio.Future[None]] = set()


async def task_state(dag_id: str, run_id: str, task_id: str, map_index: int) -> str | None:
    """A task instance's state, asked from inside the triggerer (its supervisor relays it)."""
    from airflow.sdk.execution_time import task_runner
    from airflow.sdk.execution_time.comms import GetTaskStates

    comms = getattr(task_runner, "SUPERVISOR_COMMS", None)
    if comms is None:  # not inside a triggerer (a test's event loop): nobody to ask
        return None
    response = await comms.asend(
        GetTaskStates(dag_id=dag_id, run_ids=[run_id], task_ids=[task_id], map_index=map_index)
    )
    states = dict(getattr(response, "task_states", {}) or {}).get(run_id, {})
    key = task_id if map_index is None or map_index < 0 else f"{task_id}_{map_index}"
    value = states.get(key)
    return None if value is None else str(getattr(value, "value", value))


def freeze_startup_heap() -> bool:
    """``gc.freeze()`` once per process, from the first trigger run (True if it froze now).

    A triggerer's process holds ~190,000 tracked objects from importing Airflow before any
    trigger runs; every full (generation 2) collection walks all of them, 120-230 ms with
    the event loop stopped here, at times above the triggerer's 0.2 s blocked-loop warning
    (measured by ``python -m bench.triggerer``). Frozen, they sit in the permanent generation and a
    full collection walks only what the triggers allocate (max pause 68-74 ms with 1,000
    triggers). Airflow freezes the same way in the dag-processor and LocalExecutor.
    The cost: cycles among objects alive at the freeze (those of the first few triggers)
    are never collected, a few hundred kB once per process. Disable with
    ``AIRFLOW__COMPLIANCE_EXPORTS__TRIGGERER_GC_FREEZE=False``.
    """
    global _heap_frozen
    if _heap_frozen:
        return False
    _heap_frozen = True
    from airflow.sdk import conf

    if not conf.getboolean("compliance_exports", "triggerer_gc_freeze", fallback=True):
        return False
    gc.freeze()
    # back to the collector at exit, so the interpreter's final collection frees them (and
    # extension modules that count their live objects at shutdown find none leaked)
    atexit.register(gc.unfreeze)
    return True


class ExportStatusTrigger(BaseTrigger):
    """Polls ``hook_class(conn_id).a_get_export_state(job_id)`` until one terminal event."""

    hook_class: ClassVar[type[ExportHook]]

    def __init__(
        self,
        *,
        conn_id: str,
        job_id: str,
        deadline: float,
        poll_interval: float = 30.0,
        max_poll_interval: float = 300.0,
        stall_timeout: float | None = None,
        cancel_on_timeout: bool = True,
        cancellable: bool = True,
    ) -> None:
        super().__init__()
        self.conn_id = conn_id
        self.job_id = job_id
        self.deadline = float(deadline)
        self.poll_interval = float(poll_interval)
        self.max_poll_interval = float(max_poll_interval)
        self.stall_timeout = None if stall_timeout is None else float(stall_timeout)
        self.cancel_on_timeout = bool(cancel_on_timeout)
        #: False for a job that is not ours (waited out, never cancelled by us)
        self.cancellable = bool(cancellable)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        cls = type(self)
        return (
            f"{cls.__module__}.{cls.__qualname__}",
            {
                "conn_id": self.conn_id,
                "job_id": self.job_id,
                "deadline": self.deadline,
                "poll_interval": self.poll_interval,
                "max_poll_interval": self.max_poll_interval,
                "stall_timeout": self.stall_timeout,
                "cancel_on_timeout": self.cancel_on_timeout,
                "cancellable": self.cancellable,
            },
        )

    def make_hook(self) -> ExportHook:
        return self.hook_class(self.conn_id)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        freeze_startup_heap()
        hook = self.make_hook()
        try:
            event = await self._watch(hook)
        except Exception as exc:
            event = self._event("error", f"{type(exc).__name__}: {exc}")
        finally:
            with contextlib.suppress(Exception):
                await hook.aclose()
        yield TriggerEvent(dict(event))

    async def _watch(self, hook: ExportHook) -> ExportEvent:
        loop = PollLoop(
            deadline=self.deadline,
            poll_interval=self.poll_interval,
            max_poll_interval=max(self.poll_interval, self.max_poll_interval),
            stall_timeout=self.stall_timeout,
        )
        try:
            async with asyncio.timeout(max(0.0, self.deadline - time.time())):
                state, decision = await a_wait_for_export(
                    lambda: hook.a_get_export_state(self.job_id), loop
                )
        except TimeoutError:
            return await self._timed_out(hook, f"export {self.job_id} not done at the deadline")
        if decision.outcome is not PollOutcome.DONE:
            return await self._timed_out(hook, decision.message, state)
        if state.phase.is_successful:
            return self._event("success", f"export {self.job_id} succeeded", state)
        message = state.message or f"export {self.job_id} ended {state.raw_status}"
        return self._event("failed", message, state)

    async def _timed_out(
        self, hook: ExportHook, message: str, state: ExportState | None = None
    ) -> ExportEvent:
        cancelled = False
        if self.cancel_on_timeout and self.cancellable and hook.can_cancel:
            cancelled = await self._cancel(hook)
            message += "; cancelled" if cancelled else "; cancel failed"
        event = self._event("timeout", message, state)
        event["cancelled"] = cancelled
        return event

    async def _cancel(self, hook: ExportHook) -> bool:
        try:
            async with asyncio.timeout(CANCEL_TIMEOUT):
                return await hook.a_cancel_export(self.job_id)
        except Exception as exc:
            self.log.warning("could not cancel export %s: %s", self.job_id, exc)
            return False

    async def on_kill(self) -> None:
        """Cancel the remote job, but only if a person marked the task failed or success.

        Asking for the task's state is a round trip through the triggerer's supervisor
        that can outlast the runner's patience (it cancels ``on_kill`` again when the
        trigger is still listed as cancelling): the decision runs shielded, so it finishes
        (within :data:`CANCEL_TIMEOUT` for the cancel itself) even when ``on_kill`` is cut.
        """
        decision = asyncio.ensure_future(self._cancel_if_ended_by_a_person())
        _BACKGROUND.add(decision)
        decision.add_done_callback(_BACKGROUND.discard)
        await asyncio.shield(decision)

    async def _cancel_if_ended_by_a_person(self) -> None:
        hook = self.make_hook()
        if not (hook.can_cancel and self.cancellable):
            return
        state = await self.task_state()
        if state not in USER_ENDED_STATES:
            self.log.warning(
                "export %s left running: the task is %s (cleared, or its trigger moved to "
                "another triggerer), so its next try or new home follows the job",
                self.job_id,
                state,
            )
            return
        try:
            if await self._cancel(hook):
                self.log.warning("export %s cancelled: its task was marked %s", self.job_id, state)
        finally:
            await hook.aclose()

    async def task_state(self) -> str | None:
        """The current state of this trigger's task instance, from the execution API."""
        ti = self.task_instance
        if ti is None:
            return None
        return await task_state(ti.dag_id, ti.run_id, ti.task_id, ti.map_index)

    def _event(self, status: Any, message: str, state: ExportState | None = None) -> ExportEvent:
        return ExportEvent(
            status=status,
            job_id=self.job_id,
            message=message,
            state=state.public_dict() if state is not None else None,
        )
