"""The retry policy: Retry-After in both forms, back-off, bounded attempts and time."""

from __future__ import annotations

import email.utils

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compliance_exports.core.errors import ExportValidationError
from compliance_exports.core.retry import RETRY_STATUSES, RetryPolicy, parse_retry_after

NOW = 1_800_000_000.0


class TestParseRetryAfter:
    def test_delta_seconds(self) -> None:
        assert parse_retry_after("120") == 120.0

    def test_http_date(self) -> None:
        header = email.utils.formatdate(NOW + 30, usegmt=True)
        assert parse_retry_after(header, now=NOW) == pytest.approx(30.0)

    def test_http_date_in_the_past_means_now(self) -> None:
        header = email.utils.formatdate(NOW - 30, usegmt=True)
        assert parse_retry_after(header, now=NOW) == 0.0

    @pytest.mark.parametrize("value", [None, "", "soon", "-5", "1.5e3"])
    def test_unusable_values_are_ignored(self, value: str | None) -> None:
        assert parse_retry_after(value) is None


class TestRetryPolicy:
    def test_statuses_are_429_and_every_5xx(self) -> None:
        assert 429 in RETRY_STATUSES
        assert all(code in RETRY_STATUSES for code in range(500, 600))
        assert not {400, 401, 403, 404, 409, 412} & RETRY_STATUSES

    def test_backoff_grows_exponentially_and_is_capped(self) -> None:
        policy = RetryPolicy(base_delay=1, multiplier=2, max_delay=5, jitter=0)
        assert [policy.backoff(n) for n in range(1, 6)] == [1, 2, 4, 5, 5]

    def test_retry_after_wins_when_longer_and_is_honoured_in_full(self) -> None:
        policy = RetryPolicy(base_delay=1, max_delay=30, jitter=0)
        assert policy.delay(1, retry_after=10) == 10
        assert policy.delay(1, retry_after=0.1) == 1
        assert policy.delay(1, retry_after=600) == 600  # max_delay caps our back-off only

    def test_a_retry_after_beyond_the_call_budget_gives_up_instead_of_waking_early(
        self,
    ) -> None:
        policy = RetryPolicy(max_elapsed=300, base_delay=1, max_delay=30, jitter=0)
        assert policy.start(clock=lambda: 0.0).next_delay(retry_after=120) == 120
        assert policy.start(clock=lambda: 0.0).next_delay(retry_after=301) is None

    @given(attempt=st.integers(1, 20), draw=st.floats(0, 1))
    def test_jitter_stays_within_its_band(self, attempt: int, draw: float) -> None:
        policy = RetryPolicy(base_delay=2, multiplier=2, max_delay=1000, jitter=0.25)
        raw = min(1000, 2 * 2 ** (attempt - 1))
        assert raw * 0.75 - 1e-9 <= policy.backoff(attempt, lambda: draw) <= min(1000, raw * 1.25)

    def test_attempts_are_bounded(self) -> None:
        budget = RetryPolicy(max_attempts=3, base_delay=0, jitter=0).start(clock=lambda: 0.0)
        assert budget.next_delay() == 0
        assert budget.next_delay() == 0
        assert budget.next_delay() is None

    def test_total_time_is_bounded(self) -> None:
        now = [0.0]
        policy = RetryPolicy(max_attempts=100, max_elapsed=10, base_delay=4, multiplier=1, jitter=0)
        budget = policy.start(clock=lambda: now[0])
        assert budget.next_delay() == 4
        now[0] = 4.0
        assert budget.next_delay() == 4
        now[0] = 8.0
        assert budget.next_delay() is None  # 8 + 4 would cross 10 s

    def test_from_connection_extra(self) -> None:
        policy = RetryPolicy.from_extra({"retry_max_attempts": "2", "retry_base_delay": 0.5})
        assert (policy.max_attempts, policy.base_delay) == (2, 0.5)

    @pytest.mark.parametrize(
        ("extra", "field"),
        [
            ({"retry_max_attempts": "many"}, "extra.retry_max_attempts"),
            ({"retry_max_attempts": 0}, "retry_"),
        ],
    )
    def test_bad_extra_names_the_field(self, extra: dict[str, object], field: str) -> None:
        with pytest.raises(ExportValidationError, match=field):
            RetryPolicy.from_extra(extra)
