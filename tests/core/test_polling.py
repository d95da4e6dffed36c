"""The poll loop's decisions: terminal, back-off, deadline, stall."""

from __future__ import annotations

import pytest

from compliance_exports.core.polling import PollLoop, PollOutcome, a_wait_for_export
from compliance_exports.core.states import ExportPhase, ExportState


def state(raw: str = "RUNNING", progress: str | None = None) -> ExportState:
    phase = ExportPhase.SUCCEEDED if raw == "DONE" else ExportPhase.RUNNING
    return ExportState("job", phase, raw, progress=progress)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TestPollLoop:
    def test_terminal_state_is_done(self) -> None:
        loop = PollLoop(deadline=2000, clock=Clock())
        assert loop.observe(state("DONE")).outcome is PollOutcome.DONE

    def test_interval_backs_off_up_to_the_maximum(self) -> None:
        loop = PollLoop(
            deadline=1e9, poll_interval=1, max_poll_interval=3, backoff=2, clock=Clock()
        )
        delays = [loop.observe(state()).delay for _ in range(4)]
        assert delays == [1, 2, 3, 3]

    def test_sleep_never_crosses_the_deadline(self) -> None:
        clock = Clock()
        loop = PollLoop(deadline=clock.now + 0.5, poll_interval=10, clock=clock)
        assert loop.observe(state()).delay == pytest.approx(0.5)
        clock.now += 0.5
        assert loop.observe(state()).outcome is PollOutcome.DEADLINE

    def test_unchanged_status_and_progress_stalls(self) -> None:
        clock = Clock()
        loop = PollLoop(deadline=1e9, stall_timeout=60, clock=clock)
        loop.observe(state(progress="10%"))
        clock.now += 59
        assert loop.observe(state(progress="10%")).outcome is PollOutcome.SLEEP
        clock.now += 1
        decision = loop.observe(state(progress="10%"))
        assert decision.outcome is PollOutcome.STALLED
        assert "unchanged for 60 s" in decision.message

    def test_progress_resets_the_stall_clock(self) -> None:
        clock = Clock()
        loop = PollLoop(deadline=1e9, stall_timeout=60, clock=clock)
        for percent in ("10%", "20%", "30%"):
            clock.now += 59
            assert loop.observe(state(progress=percent)).outcome is PollOutcome.SLEEP

    @pytest.mark.parametrize(
        "kwargs", [{"poll_interval": 0}, {"max_poll_interval": 0.5}, {"stall_timeout": -1}]
    )
    def test_bad_settings_are_refused(self, kwargs: dict[str, float]) -> None:
        with pytest.raises(ValueError, match="must"):
            PollLoop(deadline=1, **kwargs)


async def test_a_wait_for_export_polls_until_terminal() -> None:
    answers = iter([state(), state(), state("DONE")])

    async def next_state() -> ExportState:
        return next(answers)

    final, decision = await a_wait_for_export(
        next_state, PollLoop(deadline=1e12, poll_interval=0.001)
    )
    assert final.raw_status == "DONE"
    assert decision.outcome is PollOutcome.DONE
