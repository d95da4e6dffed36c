"""The poll loop's decisions, shared by the async trigger and the synchronous waits.

:class:`PollLoop` looks at each observed :class:`ExportState` and says what to do next:
stop (terminal), sleep (with growing intervals), give up at the absolute deadline, or
give up because ``(status, progress)`` has not changed for ``stall_timeout`` seconds.
The driver (``a_wait_for_export``, run by ``ExportStatusTrigger``) only sleeps.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum

from compliance_exports.core.states import ExportState


class PollOutcome(StrEnum):
    DONE = "done"
    SLEEP = "sleep"
    DEADLINE = "deadline"
    STALLED = "stalled"


@dataclass(frozen=True)
class PollDecision:
    outcome: PollOutcome
    delay: float = 0.0
    message: str = ""


@dataclass
class PollLoop:
    """Decides after each observation; ``deadline`` is an absolute ``time.time()`` epoch."""

    deadline: float
    poll_interval: float = 10.0
    max_poll_interval: float = 120.0
    backoff: float = 1.5
    stall_timeout: float | None = None
    clock: Callable[[], float] = time.time
    _interval: float = field(init=False)
    _last_fingerprint: tuple[str, str | None] | None = field(init=False, default=None)
    _unchanged_since: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        if self.poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        if self.max_poll_interval < self.poll_interval:
            raise ValueError("max_poll_interval must be at least poll_interval")
        if self.stall_timeout is not None and self.stall_timeout <= 0:
            raise ValueError("stall_timeout must be positive (or None to disable)")
        self._interval = self.poll_interval

    def observe(self, state: ExportState) -> PollDecision:
        now = self.clock()
        if state.phase.is_terminal:
            return PollDecision(PollOutcome.DONE)
        if self._stalled(state, now):
            return PollDecision(
                PollOutcome.STALLED,
                message=(
                    f"export {state.job_id} stalled: status {state.raw_status!r} and progress "
                    f"{state.progress!r} unchanged for {self.stall_timeout:.0f} s"
                ),
            )
        remaining = self.deadline - now
        if remaining <= 0:
            return PollDecision(
                PollOutcome.DEADLINE,
                message=f"export {state.job_id} still {state.raw_status!r} at the deadline",
            )
        delay = min(self._interval, remaining)
        self._interval = min(self.max_poll_interval, self._interval * self.backoff)
        return PollDecision(PollOutcome.SLEEP, delay=delay)

    def _stalled(self, state: ExportState, now: float) -> bool:
        if state.fingerprint != self._last_fingerprint:
            self._last_fingerprint = state.fingerprint
            self._unchanged_since = now
            self._interval = self.poll_interval  # movement: look again soon
            return False
        return self.stall_timeout is not None and now - self._unchanged_since >= self.stall_timeout


async def a_wait_for_export(
    get_state: Callable[[], Awaitable[ExportState]], loop: PollLoop
) -> tuple[ExportState, PollDecision]:
    """Poll until the loop stops; return the last state and why. Never blocks the loop."""
    while True:
        state = await get_state()
        decision = loop.observe(state)
        if decision.outcome is not PollOutcome.SLEEP:
            return state, decision
        await asyncio.sleep(decision.delay)
