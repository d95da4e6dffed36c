"""Progress lines in the task log for long transfers: bytes, percent, rate."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

MB = 1024 * 1024


class ProgressLog:
    """Logs bytes, percent (when the size is known) and MB/s every ``interval`` seconds.

    :meth:`advance` is safe to call from several threads (boto3's transfer callbacks).
    """

    def __init__(
        self,
        log: Callable[..., None],
        total: int | None,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
        what: str = "transferring",
    ) -> None:
        self._log, self.total, self.interval, self._clock = log, total, interval, clock
        self.what = what
        self.started = self._last = clock()
        self.done = 0
        self._lock = threading.Lock()

    def advance(self, count: int) -> None:
        with self._lock:
            self.done += count
            due = self._clock() - self._last >= self.interval
            if due:
                self._last = self._clock()
        if due:
            self.report(self.what)

    def report(self, what: str) -> None:
        now = self._clock()
        self._last = now
        rate = self.done / MB / max(now - self.started, 1e-6)
        share = (
            f" of {self.total / MB:.1f} MB ({100 * self.done / self.total:.0f}%)"
            if self.total
            else ""
        )
        self._log("%s: %.1f MB%s at %.2f MB/s", what, self.done / MB, share, rate)
