"""The retry policy as data: which answers are worth another attempt, and how long to wait.

``RetryPolicy`` bounds both the number of attempts and the total time spent; the wait
before attempt *n* is the larger of a jittered exponential back-off (capped by
``max_delay``) and the vendor's ``Retry-After`` (delta-seconds or HTTP-date), which is
honoured in full: a wait that would cross the call's ``max_elapsed`` budget is not
taken, and the call gives up instead.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from compliance_exports.core.errors import ExportValidationError

#: HTTP statuses retried: rate limiting and every server-side error.
RETRY_STATUSES: frozenset[int] = frozenset((429, *range(500, 600)))


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (RFC 9110 10.2.3), or None if unusable.

    Both forms are understood: delta-seconds (``"120"``) and an HTTP-date
    (``"Wed, 21 Oct 2026 07:28:00 GMT"``). A date in the past means "now" (0 s).
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


@dataclass(frozen=True)
class RetryPolicy:
    """How one HTTP call is retried.

    ``max_attempts`` counts the first try; ``max_elapsed`` bounds the whole call
    (first try to last retry, in seconds); a wait that would cross it is not taken.
    """

    max_attempts: int = 6
    max_elapsed: float = 300.0
    base_delay: float = 1.0
    multiplier: float = 2.0
    max_delay: float = 60.0
    jitter: float = 0.25  # +/- fraction of the back-off

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.max_elapsed <= 0 or self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("max_elapsed must be positive, delays non-negative")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any]) -> RetryPolicy:
        """A policy tuned by connection extra ``retry_<field>`` keys (defaults otherwise)."""
        tuned: dict[str, Any] = {}
        for name in ("max_attempts", "max_elapsed", "base_delay", "multiplier", "max_delay"):
            value = extra.get(f"retry_{name}")
            if value is None:
                continue
            try:
                tuned[name] = int(value) if name == "max_attempts" else float(value)
            except (TypeError, ValueError):
                raise ExportValidationError(
                    f"extra.retry_{name}", f"{value!r} is not a number"
                ) from None
        try:
            return cls(**tuned)
        except ValueError as exc:
            raise ExportValidationError("extra.retry_*", str(exc)) from None

    def backoff(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """Jittered exponential back-off after failed attempt number ``attempt`` (1-based)."""
        raw = self.base_delay * self.multiplier ** (attempt - 1)
        spread = 1 + self.jitter * (2 * rng() - 1)
        return min(self.max_delay, raw * spread)

    def delay(
        self,
        attempt: int,
        retry_after: float | None = None,
        rng: Callable[[], float] = random.random,
    ) -> float:
        """The wait before the next attempt: max(back-off, Retry-After).

        ``max_delay`` caps our own back-off, never the vendor's ``Retry-After``: waking
        before the vendor said so only earns another 429 (the total is bounded by
        ``max_elapsed``, see :meth:`RetryBudget.next_delay`).
        """
        return max(self.backoff(attempt, rng), retry_after or 0.0)

    def start(self, clock: Callable[[], float] = time.monotonic) -> RetryBudget:
        return RetryBudget(self, clock)


@dataclass
class RetryBudget:
    """The attempts and time left for one call under a :class:`RetryPolicy`."""

    policy: RetryPolicy
    clock: Callable[[], float] = time.monotonic
    attempts: int = 0
    started: float = field(init=False)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def next_delay(self, retry_after: float | None = None) -> float | None:
        """Record a failed attempt; return the wait before the next one, or None to give up."""
        self.attempts += 1
        if self.attempts >= self.policy.max_attempts:
            return None
        wait = self.policy.delay(self.attempts, retry_after)
        if self.clock() - self.started + wait > self.policy.max_elapsed:
            return None
        return wait
