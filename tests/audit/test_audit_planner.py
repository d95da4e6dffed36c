from __future__ import annotations

import datetime as dt
import itertools
import math
import pickle
from collections import Counter
from collections.abc import Sequence
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compliance_exports.vendors.maxsight.audit.counting import CountedEvents
from compliance_exports.vendors.maxsight.audit.planner import (
    InstantOverLimitError,
    pack_values,
    plan_pdf_windows,
)
from compliance_exports.vendors.maxsight.audit.window import Window, to_epoch_ms

DAY_MS = to_epoch_ms(dt.datetime(2026, 11, 21, tzinfo=dt.UTC))
SPAN = 200  # milliseconds in the generated ranges: small, so instants collide
PROPERTY = settings(max_examples=150, deadline=None)


def assert_valid_plan(
    counted: CountedEvents, windows: Sequence[Window], start: int, end: int, capacity: int
) -> None:
    """Windows tile [start, end] without sharing a ms; each event is in exactly one window."""
    spans = sorted({(w.start_ms, w.end_ms) for w in windows})
    assert [(w.start_ms, w.end_ms) for w in windows] == sorted(
        (w.start_ms, w.end_ms) for w in windows
    )
    assert spans[0][0] == start
    assert spans[-1][1] == end
    for (_, previous_end), (next_start, _) in itertools.pairwise(spans):
        assert next_start == previous_end + 1
    for window in windows:
        assert window.filters == {} or window.is_instant
    held = Counter[Window]()
    for index, stamp in enumerate(counted.timestamps_ms):
        holders = [w for w in windows if w.contains(stamp, counted.values_of(index))]
        assert len(holders) == 1, f"event {index} at {stamp} is in {holders}"
        held[holders[0]] += 1
    for window in windows:
        assert window.expected_events is not None
        assert held[window] == window.expected_events <= capacity


def optimal_window_count(per_instant: Sequence[int], capacity: int) -> int:
    """The fewest contiguous groups of instants within capacity (brute force)."""

    @cache
    def best(first: int) -> int:
        if first == len(per_instant):
            return 0
        total, options = 0, []
        for last in range(first, len(per_instant)):
            total += per_instant[last]
            if total > capacity:
                break
            options.append(1 + best(last + 1))
        return min(options)

    return max(1, best(0))


uniform = st.lists(st.integers(0, SPAN), max_size=120)
bursty = st.lists(
    st.builds(
        lambda base, jitter: min(SPAN, base + jitter),
        st.sampled_from([3, 50, 51, 190]),
        st.integers(0, 2),
    ),
    max_size=120,
)


class TestGreedyPlan:
    @PROPERTY
    @given(offsets=st.one_of(uniform, bursty), limit=st.integers(1, 40), margin=st.integers(0, 5))
    def test_windows_tile_the_range_within_capacity(
        self, offsets: list[int], limit: int, margin: int
    ) -> None:
        margin = min(margin, limit - 1)
        capacity = limit - margin
        per_instant = Counter(offsets)
        # keep every instant within capacity: crowded instants are tested with attributes
        offsets = [t for t in offsets if per_instant[t] <= capacity]
        counted = CountedEvents.from_timestamps([DAY_MS + t for t in offsets])
        windows = plan_pdf_windows(counted, DAY_MS, DAY_MS + SPAN, limit=limit, margin=margin)
        assert_valid_plan(counted, windows, DAY_MS, DAY_MS + SPAN, capacity)

    @PROPERTY
    @given(offsets=st.one_of(uniform, bursty), capacity=st.integers(1, 40))
    def test_greedy_is_optimal_and_bounded(self, offsets: list[int], capacity: int) -> None:
        per_instant = Counter(t for t in offsets if Counter(offsets)[t] <= capacity)
        stamps = [DAY_MS + t for t in sorted(per_instant.elements())]
        windows = plan_pdf_windows(stamps, DAY_MS, DAY_MS + SPAN, limit=capacity)
        events, busiest = len(stamps), max(per_instant.values(), default=0)
        assert len(windows) == optimal_window_count(
            [per_instant[t] for t in sorted(per_instant)], capacity
        )
        if events == 0:
            assert len(windows) == 1
        else:
            # every window but the last holds > capacity - busiest events
            assert len(windows) <= math.ceil(events / (capacity - busiest + 1))
        if busiest <= 1:
            assert len(windows) == max(1, math.ceil(events / capacity))

    def test_instants_near_half_the_limit_defeat_ceil_plus_one(self) -> None:
        # 2,501 + 2,500 events cannot share a window: the optimum itself needs one window
        # per instant, more than ceil(events / limit) + 1 (see docs/AUDIT_WINDOWS.md).
        stamps = [DAY_MS + i for i, size in enumerate([2501, 2500] * 3) for _ in range(size)]
        windows = plan_pdf_windows(stamps, DAY_MS, DAY_MS + 5)
        assert len(windows) == 6 == optimal_window_count([2501, 2500] * 3, 5000)
        assert math.ceil(len(stamps) / 5000) + 1 == 5

    def test_adjacent_windows_meet_at_consecutive_milliseconds(self) -> None:
        stamps = [DAY_MS + 10] * 3 + [DAY_MS + 11] * 3
        windows = plan_pdf_windows(stamps, DAY_MS, DAY_MS + 20, limit=4)
        assert [w.to_dict() for w in windows] == [
            {
                "start": "2026-11-21T00:00:00.000Z",
                "end": "2026-11-21T00:00:00.010Z",
                "filters": {},
                "expected_events": 3,
            },
            {
                "start": "2026-11-21T00:00:00.011Z",
                "end": "2026-11-21T00:00:00.020Z",
                "filters": {},
                "expected_events": 3,
            },
        ]

    def test_an_event_on_the_boundary_belongs_to_one_window(self) -> None:
        stamps = [DAY_MS, DAY_MS + 5, DAY_MS + 5, DAY_MS + 9]
        windows = plan_pdf_windows(stamps, DAY_MS, DAY_MS + 9, limit=2)
        assert [(w.start_ms - DAY_MS, w.end_ms - DAY_MS, w.expected_events) for w in windows] == [
            (0, 4, 1),
            (5, 8, 2),
            (9, 9, 1),
        ]

    def test_an_empty_range_gets_one_window_for_its_evidence(self) -> None:
        start = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)
        end = start + dt.timedelta(days=1) - dt.timedelta(milliseconds=1)
        assert plan_pdf_windows([], start, end) == [
            Window(DAY_MS, DAY_MS + 86_399_999, expected_events=0)
        ]

    def test_datetimes_with_offsets_are_planned_in_utc(self) -> None:
        paris = dt.timezone(dt.timedelta(hours=1))
        events = [
            dt.datetime(2026, 11, 21, 1, 0, 0, ms * 1000 + 999, tzinfo=paris) for ms in (1, 2)
        ]
        end = dt.datetime(2026, 11, 20, 19, 0, 0, 2000, tzinfo=dt.timezone(-dt.timedelta(hours=5)))
        windows = plan_pdf_windows(events, DAY_MS, end, limit=1)
        assert windows == [
            Window(DAY_MS, DAY_MS + 1, expected_events=1),
            Window(DAY_MS + 2, DAY_MS + 2, expected_events=1),
        ]

    def test_margin_lowers_the_capacity(self) -> None:
        stamps = list(range(DAY_MS, DAY_MS + 100))
        assert len(plan_pdf_windows(stamps, DAY_MS, DAY_MS + 99, limit=50)) == 2
        assert len(plan_pdf_windows(stamps, DAY_MS, DAY_MS + 99, limit=50, margin=10)) == 3


class TestBadInput:
    def test_range_start_after_range_end(self) -> None:
        with pytest.raises(
            ValueError, match=r"range_start 2026-11-21T00:00:00\.001Z is after range_end"
        ):
            plan_pdf_windows([], DAY_MS + 1, DAY_MS)

    def test_event_outside_the_range(self) -> None:
        with pytest.raises(
            ValueError, match=r"event at 2026-11-21T00:00:00.011Z is outside the range"
        ):
            plan_pdf_windows([DAY_MS, DAY_MS + 11], DAY_MS, DAY_MS + 10)

    @pytest.mark.parametrize(("limit", "margin"), [(0, 0), (10, 10), (10, -1), (True, 0)])
    def test_limit_and_margin(self, limit: int, margin: int) -> None:
        with pytest.raises(ValueError, match=r"^(limit|margin) must be"):
            plan_pdf_windows([], DAY_MS, DAY_MS, limit=limit, margin=margin)

    def test_unknown_split_dimension(self) -> None:
        with pytest.raises(ValueError, match=r"cannot split by \['auditee_id'\]"):
            plan_pdf_windows([], DAY_MS, DAY_MS, split_by=("auditee_id",))

    def test_naive_range(self) -> None:
        with pytest.raises(ValueError, match=r"range_end .* has no timezone"):
            plan_pdf_windows([], DAY_MS, dt.datetime(2026, 11, 22))


value_names = st.sampled_from(["login", "logout", "grant", "revoke", "export", "view", "approve"])
SOURCES = ["api", "ui", "job"]


class TestCrowdedInstant:
    @PROPERTY
    @given(
        rows=st.lists(
            st.tuples(value_names, st.one_of(st.none(), value_names), st.sampled_from(SOURCES)),
            min_size=1,
            max_size=40,
        ),
        capacity=st.integers(3, 15),
        before=st.integers(0, 15),
    )
    def test_each_event_of_the_instant_is_in_exactly_one_filtered_window(
        self, rows: list[tuple[str, str | None, str]], capacity: int, before: int
    ) -> None:
        before = min(before, capacity)  # only the instant at +50 may be crowded
        columns = [list(column) for column in zip(*rows, strict=True)]
        counted = CountedEvents.from_timestamps(
            [DAY_MS + 50] * len(rows) + [DAY_MS + 10] * before,
            event_type=columns[0] + ["login"] * before,
            sub_type=columns[1] + [None] * before,
            system_source=columns[2] + ["api"] * before,
        )
        splittable = len(rows) <= capacity or any(
            None not in column and max(Counter(column).values()) <= capacity for column in columns
        )
        if not splittable:
            with pytest.raises(InstantOverLimitError, match=f"holds {len(rows)} events"):
                plan_pdf_windows(counted, DAY_MS, DAY_MS + 99, limit=capacity)
            return
        windows = plan_pdf_windows(counted, DAY_MS, DAY_MS + 99, limit=capacity)
        assert_valid_plan(counted, windows, DAY_MS, DAY_MS + 99, capacity)

    def test_split_by_the_first_dimension_that_works(self) -> None:
        counted = CountedEvents.from_timestamps(
            [DAY_MS + 5] * 9,
            event_type=["a"] * 8 + ["b"],  # "a" alone is over the capacity of 4
            sub_type=["x", "x", "y", "y", "z", "z", "w", "w", None],  # a blank: cannot select it
            system_source=["api", "api", "api", "ui", "ui", "ui", "job", "job", "job"],
        )
        windows = plan_pdf_windows(counted, DAY_MS, DAY_MS + 10, limit=4)
        assert [
            (w.start_ms - DAY_MS, w.end_ms - DAY_MS, dict(w.filters), w.expected_events)
            for w in windows
        ] == [
            (0, 4, {}, 0),
            (5, 5, {"system_source": ("api",)}, 3),
            (5, 5, {"system_source": ("job",)}, 3),
            (5, 5, {"system_source": ("ui",)}, 3),
            (6, 10, {}, 0),
        ]

    def test_values_are_packed_first_fit_decreasing(self) -> None:
        counted = CountedEvents.from_timestamps(
            [DAY_MS] * 12, event_type=["a"] * 5 + ["b"] * 3 + ["c"] * 2 + ["d"] * 2
        )
        windows = plan_pdf_windows(counted, DAY_MS, DAY_MS, limit=7)
        assert [(w.filters["event_type"], w.expected_events) for w in windows] == [
            (("a", "c"), 7),
            (("b", "d"), 5),
        ]

    def test_crowded_instants_back_to_back(self) -> None:
        counted = CountedEvents.from_timestamps(
            [DAY_MS + 1] * 3 + [DAY_MS + 2] * 3, event_type=["a", "b", "c"] * 2
        )
        windows = plan_pdf_windows(counted, DAY_MS + 1, DAY_MS + 2, limit=2)
        assert [(w.start_ms - DAY_MS, w.expected_events) for w in windows] == [
            (1, 2),
            (1, 1),
            (2, 2),
            (2, 1),
        ]
        assert_valid_plan(counted, windows, DAY_MS + 1, DAY_MS + 2, 2)

    def test_no_dimension_works_names_the_instant_and_count(self) -> None:
        counted = CountedEvents.from_timestamps(
            [DAY_MS + 123] * 6,
            event_type=["login"] * 6,
            sub_type=["x", "y", "x", "y", "x", ""],
        )
        with pytest.raises(InstantOverLimitError) as caught:
            plan_pdf_windows(counted, DAY_MS, DAY_MS + 999, limit=5)
        assert str(caught.value) == (
            "instant 2026-11-21T00:00:00.123Z holds 6 events, more than the 5 a PDF may hold, "
            "and no filter splits it: event_type: 'login' alone has 6 events; "
            "sub_type: 1 events have no value; system_source: not counted"
        )

    def test_the_error_survives_pickling(self) -> None:
        error = InstantOverLimitError(DAY_MS, 6, 5, ["event_type: not counted"])
        restored = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own, trusted error
        assert (str(restored), restored.instant_ms, restored.events) == (str(error), DAY_MS, 6)

    def test_bare_timestamps_cannot_split_an_instant(self) -> None:
        with pytest.raises(InstantOverLimitError, match="event_type: not counted"):
            plan_pdf_windows([DAY_MS] * 3, DAY_MS, DAY_MS, limit=2)


class TestPackValues:
    @PROPERTY
    @given(
        per_value=st.dictionaries(st.text(min_size=1, max_size=3), st.integers(1, 20), max_size=30),
        capacity=st.integers(20, 60),
    )
    def test_every_value_once_and_groups_within_capacity(
        self, per_value: dict[str, int], capacity: int
    ) -> None:
        groups = pack_values(per_value, capacity)
        values = [value for group, _ in groups for value in group]
        assert sorted(values) == sorted(per_value)
        for group, total in groups:
            assert total == sum(per_value[v] for v in group) <= capacity
        # first-fit: the first value of a later group did not fit any earlier group, so no
        # two groups could have been merged into one
        for i, (_, earlier) in enumerate(groups):
            assert all(earlier + later > capacity for _, later in groups[i + 1 :])

    def test_a_value_over_capacity_is_refused(self) -> None:
        with pytest.raises(ValueError, match="value 'a' alone has 9 events, over 8"):
            pack_values({"a": 9}, 8)
