from __future__ import annotations

import datetime as dt
import itertools
import pickle
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compliance_exports.vendors.maxsight.audit.bisection import (
    WindowNotSplittableError,
    WindowOverLimitError,
    bisect_window,
    fetch_with_bisection,
)
from compliance_exports.vendors.maxsight.audit.window import Window, to_epoch_ms

DAY_MS = to_epoch_ms(dt.datetime(2026, 11, 21, tzinfo=dt.UTC))


class OverLimit(Exception):
    """What the real fetch raises for Maxsight's 400 on a PDF over the limit."""


class FakeMaxsight:
    """A pure stand-in for the PDF endpoint: refuses a window holding more than ``limit``."""

    def __init__(self, events: Sequence[tuple[int, str]], limit: int) -> None:
        self.events = events
        self.limit = limit
        self.requests: list[Window] = []

    def fetch(self, window: Window) -> int:
        self.requests.append(window)
        selected = [e for e in self.events if window.contains(e[0], {"event_type": e[1]})]
        if len(selected) > self.limit:
            raise OverLimit(f"400: {len(selected)} events")
        return len(selected)


def is_over_limit(error: Exception) -> bool:
    return isinstance(error, OverLimit)


def fetch_or_error(
    window: Window, server: FakeMaxsight, max_depth: int
) -> list[tuple[Window, int]] | WindowOverLimitError:
    try:
        return fetch_with_bisection(window, server.fetch, is_over_limit, max_depth=max_depth)
    except WindowOverLimitError as error:
        return error


def pickled(error: Exception) -> Exception:
    """Pickle and unpickle our own, trusted exception (as Airflow does across processes)."""
    restored: Exception = pickle.loads(pickle.dumps(error))  # noqa: S301
    return restored


class TestBisectWindow:
    @settings(max_examples=150, deadline=None)
    @given(start=st.integers(-(10**13), 10**13), length=st.integers(1, 10**9))
    def test_halves_meet_at_consecutive_milliseconds(self, start: int, length: int) -> None:
        window = Window(start, start + length, expected_events=5001)
        first, second = bisect_window(window)
        assert (first.start_ms, second.end_ms) == (window.start_ms, window.end_ms)
        assert second.start_ms == first.end_ms + 1
        assert 0 <= (first.end_ms - first.start_ms) - (second.end_ms - second.start_ms) <= 1
        assert first.expected_events is None
        assert second.expected_events is None

    def test_two_milliseconds_become_two_instants(self) -> None:
        first, second = bisect_window(Window(DAY_MS, DAY_MS + 1, {"sub_type": ("x",)}))
        assert first == Window(DAY_MS, DAY_MS, {"sub_type": ("x",)})
        assert second == Window(DAY_MS + 1, DAY_MS + 1, {"sub_type": ("x",)})

    def test_an_instant_halves_its_filter_values(self) -> None:
        window = Window(DAY_MS, DAY_MS, {"event_type": ("a",), "sub_type": ("x", "y", "z")}, 9)
        first, second = bisect_window(window)
        assert first == Window(DAY_MS, DAY_MS, {"event_type": ("a",), "sub_type": ("x", "y")})
        assert second == Window(DAY_MS, DAY_MS, {"event_type": ("a",), "sub_type": ("z",)})

    @pytest.mark.parametrize("filters", [{}, {"event_type": ("a",), "system_source": ("api",)}])
    def test_an_instant_without_two_values_cannot_be_bisected(
        self, filters: dict[str, tuple[str, ...]]
    ) -> None:
        window = Window(DAY_MS + 5, DAY_MS + 5, filters)
        with pytest.raises(
            WindowNotSplittableError, match=r"cannot bisect PDF window 2026-11-21T00:00:00\.005Z"
        ):
            bisect_window(window)


class TestFetchWithBisection:
    def test_a_window_within_the_limit_is_fetched_once(self) -> None:
        server = FakeMaxsight([(DAY_MS + i, "a") for i in range(5)], limit=5)
        window = Window(DAY_MS, DAY_MS + 99)
        assert fetch_with_bisection(window, server.fetch, is_over_limit) == [(window, 5)]
        assert server.requests == [window]

    def test_a_refused_window_is_bisected_until_each_part_fits(self) -> None:
        # a burst of 5 events in the second quarter: bisected 4 times, as deep as allowed
        events = [(DAY_MS + t, "a") for t in [1, 2, 30, 31, 32, 33, 34, 90]]
        server = FakeMaxsight(events, limit=4)
        parts = fetch_with_bisection(Window(DAY_MS, DAY_MS + 99), server.fetch, is_over_limit)
        assert [(w.start_ms - DAY_MS, w.end_ms - DAY_MS, n) for w, n in parts] == [
            (0, 24, 2),
            (25, 31, 2),
            (32, 37, 3),
            (38, 49, 0),
            (50, 99, 1),
        ]

    @settings(max_examples=100, deadline=None)
    @given(
        offsets=st.lists(st.integers(0, 255), max_size=60),
        limit=st.integers(1, 20),
        max_depth=st.integers(0, 6),
    )
    def test_parts_tile_the_window_and_fetch_every_event_once(
        self, offsets: list[int], limit: int, max_depth: int
    ) -> None:
        server = FakeMaxsight([(DAY_MS + t, "a") for t in offsets], limit)
        window = Window(DAY_MS, DAY_MS + 255)
        outcome = fetch_or_error(window, server, max_depth)
        if isinstance(outcome, WindowOverLimitError):
            assert outcome.planned == window
            assert sum(outcome.window.contains(DAY_MS + t) for t in offsets) > limit
            assert outcome.depth == max_depth or outcome.window.is_instant
            return
        parts = outcome
        assert parts[0][0].start_ms == window.start_ms
        assert parts[-1][0].end_ms == window.end_ms
        for (before, _), (after, _) in itertools.pairwise(parts):
            assert after.start_ms == before.end_ms + 1
        assert sum(n for _, n in parts) == len(offsets)
        assert len(parts) <= 2**max_depth

    def test_a_crowded_instant_is_bisected_by_its_filter_values(self) -> None:
        events = [(DAY_MS, kind) for kind in "aaabbbcd"]
        server = FakeMaxsight(events, limit=3)
        window = Window(DAY_MS, DAY_MS, {"event_type": ("a", "b", "c", "d")}, expected_events=5)
        parts = fetch_with_bisection(window, server.fetch, is_over_limit)
        assert [(w.filters["event_type"], n) for w, n in parts] == [
            (("a",), 3),
            (("b",), 3),
            (("c", "d"), 2),
        ]

    def test_the_depth_limit_names_the_window(self) -> None:
        server = FakeMaxsight([(DAY_MS + 7, "a")] * 3 + [(DAY_MS + 8, "a")] * 3, limit=2)
        planned = Window(DAY_MS, DAY_MS + 15)
        with pytest.raises(WindowOverLimitError) as caught:
            fetch_with_bisection(planned, server.fetch, is_over_limit, max_depth=2)
        assert str(caught.value) == (
            "PDF window 2026-11-21T00:00:00.004Z..2026-11-21T00:00:00.007Z is still over the "
            "event limit after 2 bisection(s) of planned window "
            "2026-11-21T00:00:00.000Z..2026-11-21T00:00:00.015Z: the depth limit is 2"
        )
        assert isinstance(caught.value.__cause__, OverLimit)

    def test_an_unsplittable_instant_fails_naming_it(self) -> None:
        server = FakeMaxsight([(DAY_MS + 1, "a")] * 3, limit=2)
        with pytest.raises(WindowOverLimitError, match=r"single millisecond") as caught:
            fetch_with_bisection(Window(DAY_MS, DAY_MS + 1), server.fetch, is_over_limit)
        assert caught.value.window == Window(DAY_MS + 1, DAY_MS + 1)
        assert caught.value.depth == 1

    def test_max_depth_zero_never_bisects(self) -> None:
        server = FakeMaxsight([(DAY_MS, "a"), (DAY_MS + 1, "a")], limit=1)
        with pytest.raises(WindowOverLimitError, match="after 0 bisection"):
            fetch_with_bisection(
                Window(DAY_MS, DAY_MS + 1), server.fetch, is_over_limit, max_depth=0
            )
        assert len(server.requests) == 1

    def test_other_errors_propagate_without_bisection(self) -> None:
        calls: list[Window] = []

        def fetch(window: Window) -> bytes:
            calls.append(window)
            raise ConnectionError("reset by peer")

        with pytest.raises(ConnectionError, match="reset by peer"):
            fetch_with_bisection(Window(DAY_MS, DAY_MS + 9), fetch, is_over_limit)
        assert len(calls) == 1

    @pytest.mark.parametrize("max_depth", [-1, True, 2.0])
    def test_max_depth_must_be_a_whole_number(self, max_depth: object) -> None:
        with pytest.raises(ValueError, match="max_depth must be a whole number >= 0"):
            fetch_with_bisection(Window(DAY_MS, DAY_MS), bytes, is_over_limit, max_depth=max_depth)  # type: ignore[arg-type]

    def test_errors_survive_pickling(self) -> None:
        error = WindowOverLimitError(Window(DAY_MS, DAY_MS), Window(DAY_MS, DAY_MS + 1), 1, "why")
        assert str(pickled(error)) == str(error)
        not_splittable = WindowNotSplittableError(Window(DAY_MS, DAY_MS))
        assert str(pickled(not_splittable)) == str(not_splittable)
