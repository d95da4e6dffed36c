"""Events can arrive between counting and fetching: split a refused PDF window and retry.

A window the API refuses for the 5,000-event limit is bisected at millisecond
precision (``[s, m]`` and ``[m + 1 ms, e]``, never sharing an instant) and both halves
are fetched, to a bounded depth. A single-instant window is bisected by halving the
values of one of its filters; without filter values it cannot be split.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TypeVar

from compliance_exports.core.errors import FatalError
from compliance_exports.vendors.maxsight.audit.window import Window

T = TypeVar("T")

DEFAULT_MAX_DEPTH = 4


class WindowNotSplittableError(FatalError):
    """A window of one millisecond whose filters have no two values to divide."""

    def __init__(self, window: Window) -> None:
        self.window = window
        super().__init__(
            f"cannot bisect PDF window {window}: it is a single millisecond and "
            "has no filter with two or more values to divide"
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.window,))


class WindowOverLimitError(FatalError):
    """The API still refuses a (sub-)window for the PDF limit after the allowed bisections."""

    def __init__(self, window: Window, planned: Window, depth: int, reason: str = "") -> None:
        self.window = window
        self.planned = planned
        self.depth = depth
        self.reason = reason
        super().__init__(
            f"PDF window {window} is still over the event limit after {depth} bisection(s) "
            f"of planned window {planned}" + (f": {reason}" if reason else "")
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.window, self.planned, self.depth, self.reason))


def bisect_window(window: Window) -> tuple[Window, Window]:
    """Two windows that together select exactly the events of ``window``.

    In time when it spans two or more milliseconds (the first half gets the extra one);
    otherwise by halving the values of its first filter with two or more values.
    Raises :class:`WindowNotSplittableError` when neither is possible.
    """
    if not window.is_instant:
        middle = window.start_ms + (window.end_ms - window.start_ms) // 2
        return (
            replace(window, end_ms=middle, expected_events=None),
            replace(window, start_ms=middle + 1, expected_events=None),
        )
    for dimension, values in window.filters.items():
        if len(values) >= 2:
            first, second = values[: (len(values) + 1) // 2], values[(len(values) + 1) // 2 :]
            return _narrowed(window, dimension, first), _narrowed(window, dimension, second)
    raise WindowNotSplittableError(window)


def _narrowed(window: Window, dimension: str, values: Sequence[str]) -> Window:
    return replace(window, filters={**window.filters, dimension: values}, expected_events=None)


def fetch_with_bisection(
    window: Window,
    fetch: Callable[[Window], T],
    is_over_limit: Callable[[Exception], bool],
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> list[tuple[Window, T]]:
    """``fetch(window)``, bisecting and retrying any part the API refuses for the limit.

    ``is_over_limit`` tells the limit's 400 from other errors, which propagate as they
    are. Returns ``(window, result)`` in time (then filter) order, one per fetched part.
    Raises :class:`WindowOverLimitError`, naming the part, when a part is still refused
    after ``max_depth`` bisections or cannot be bisected.
    """
    if isinstance(max_depth, bool) or not isinstance(max_depth, int) or max_depth < 0:
        raise ValueError(f"max_depth must be a whole number >= 0, got {max_depth!r}")
    return _fetch(window, window, fetch, is_over_limit, max_depth, 0)


def _fetch(
    window: Window,
    planned: Window,
    fetch: Callable[[Window], T],
    is_over_limit: Callable[[Exception], bool],
    max_depth: int,
    depth: int,
) -> list[tuple[Window, T]]:
    try:
        return [(window, fetch(window))]
    except Exception as error:
        if not is_over_limit(error):
            raise
        halves = _halves_or_raise(window, planned, max_depth, depth, error)
    return [
        part
        for half in halves
        for part in _fetch(half, planned, fetch, is_over_limit, max_depth, depth + 1)
    ]


def _halves_or_raise(
    window: Window, planned: Window, max_depth: int, depth: int, error: Exception
) -> tuple[Window, Window]:
    if depth >= max_depth:
        raise WindowOverLimitError(
            window, planned, depth, f"the depth limit is {max_depth}"
        ) from error
    try:
        return bisect_window(window)
    except WindowNotSplittableError as not_splittable:
        raise WindowOverLimitError(window, planned, depth, str(not_splittable)) from error
