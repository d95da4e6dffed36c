"""Plan the Maxsight PDF requests of a range: the fewest windows under the 5,000-event limit.

Greedy over the counted instants in time order: a window grows while its events fit
the capacity (``limit - margin``) and closes the millisecond before the instant that
would overflow it. An instant that alone exceeds the capacity becomes its own windows
(``start == end``), one per group of filter values, the groups packed first-fit
decreasing. See ``docs/AUDIT_WINDOWS.md`` for the guarantees.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence

from compliance_exports.core.errors import FatalError
from compliance_exports.vendors.maxsight.audit.counting import CountedEvents
from compliance_exports.vendors.maxsight.audit.window import (
    SPLIT_DIMENSIONS,
    Moment,
    Window,
    format_ms,
    to_epoch_ms,
)
from compliance_exports.vendors.maxsight.query import PDF_EVENT_LIMIT


class InstantOverLimitError(FatalError):
    """One millisecond holds more events than a PDF allows and no filter splits it."""

    def __init__(self, instant_ms: int, events: int, capacity: int, reasons: Sequence[str]):
        self.instant_ms = instant_ms
        self.events = events
        self.capacity = capacity
        self.reasons = tuple(reasons)
        super().__init__(
            f"instant {format_ms(instant_ms)} holds {events} events, more than the {capacity} "
            f"a PDF may hold, and no filter splits it: {'; '.join(self.reasons)}"
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.instant_ms, self.events, self.capacity, self.reasons))


def plan_pdf_windows(
    events: CountedEvents | Iterable[Moment],
    range_start: Moment,
    range_end: Moment,
    *,
    limit: int = PDF_EVENT_LIMIT,
    margin: int = 0,
    split_by: Sequence[str] = SPLIT_DIMENSIONS,
) -> list[Window]:
    """Windows covering ``[range_start, range_end]`` (both inclusive), each within the limit.

    ``events`` are the counted events (or bare timestamps, which cannot split a crowded
    instant); every one must lie in the range. Each window holds at most
    ``limit - margin`` counted events; windows are sorted, never share a millisecond
    (filtered windows of one instant share it but partition its events), and cover the
    range exactly. An empty range still gets one window, so an empty day has its PDF.
    """
    capacity = _capacity(limit, margin)
    counted = events if isinstance(events, CountedEvents) else CountedEvents.from_timestamps(events)
    start = to_epoch_ms(range_start, name="range_start")
    end = to_epoch_ms(range_end, name="range_end")
    _check_range(counted, start, end, split_by)
    per_instant = Counter(counted.timestamps_ms)
    crowded = _crowded_instants(counted, per_instant, capacity)
    windows: list[Window] = []
    window_start, window_events = start, 0
    for instant in sorted(per_instant):
        events_now = per_instant[instant]
        if window_events + events_now <= capacity:
            window_events += events_now
            continue
        if window_start < instant:
            windows.append(Window(window_start, instant - 1, expected_events=window_events))
        if instant in crowded:
            windows += split_instant(counted, crowded[instant], instant, capacity, split_by)
            window_start, window_events = instant + 1, 0
        else:
            window_start, window_events = instant, events_now
    if window_start <= end:
        windows.append(Window(window_start, end, expected_events=window_events))
    return windows


def split_instant(
    counted: CountedEvents,
    indices: Sequence[int],
    instant_ms: int,
    capacity: int,
    split_by: Sequence[str] = SPLIT_DIMENSIONS,
) -> list[Window]:
    """Windows of one instant, one per group of values of the first dimension that works.

    A dimension works when every event of the instant has a value in it (a filter on
    values cannot select a blank) and no single value exceeds ``capacity``. Raises
    :class:`InstantOverLimitError` naming the instant when none works.
    """
    reasons: list[str] = []
    for dimension in split_by:
        column = counted.attributes.get(dimension)
        if column is None:
            reasons.append(f"{dimension}: not counted")
            continue
        per_value = Counter(_value_or_none(column[i]) for i in indices)
        reason = _why_not_splittable(per_value, capacity)
        if reason:
            reasons.append(f"{dimension}: {reason}")
            continue
        groups = pack_values({v: n for v, n in per_value.items() if v is not None}, capacity)
        return [
            Window(instant_ms, instant_ms, {dimension: values}, expected_events=total)
            for values, total in groups
        ]
    raise InstantOverLimitError(
        instant_ms, len(indices), capacity, reasons or ["no split dimension given"]
    )


def pack_values(per_value: Mapping[str, int], capacity: int) -> list[tuple[tuple[str, ...], int]]:
    """Group values so each group's events fit ``capacity`` (first-fit decreasing).

    Returns ``(values, events)`` per group, values sorted; each value is in one group.
    """
    groups: list[tuple[list[str], int]] = []
    for value, events in sorted(per_value.items(), key=lambda item: (-item[1], item[0])):
        if events > capacity:
            raise ValueError(f"value {value!r} alone has {events} events, over {capacity}")
        for position, (values, total) in enumerate(groups):
            if total + events <= capacity:
                groups[position] = ([*values, value], total + events)
                break
        else:
            groups.append(([value], events))
    return [(tuple(sorted(values)), total) for values, total in groups]


def _value_or_none(value: str | None) -> str | None:
    return value if value and value.strip() else None


def _why_not_splittable(per_value: Counter[str | None], capacity: int) -> str:
    blanks = per_value.get(None, 0)
    if blanks:
        return f"{blanks} events have no value"
    value, events = max(per_value.items(), key=lambda item: item[1])
    if events > capacity:
        return f"{value!r} alone has {events} events"
    return ""


def _capacity(limit: int, margin: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive number of events, got {limit!r}")
    if isinstance(margin, bool) or not isinstance(margin, int) or not 0 <= margin < limit:
        raise ValueError(f"margin must be a whole number in [0, {limit}), got {margin!r}")
    return limit - margin


def _check_range(counted: CountedEvents, start: int, end: int, split_by: Sequence[str]) -> None:
    if start > end:
        raise ValueError(f"range_start {format_ms(start)} is after range_end {format_ms(end)}")
    unknown = [dimension for dimension in split_by if dimension not in SPLIT_DIMENSIONS]
    if unknown:
        raise ValueError(f"cannot split by {unknown}; allowed: {', '.join(SPLIT_DIMENSIONS)}")
    if len(counted):
        first, last = min(counted.timestamps_ms), max(counted.timestamps_ms)
        outside = first if first < start else last if last > end else None
        if outside is not None:
            raise ValueError(
                f"event at {format_ms(outside)} is outside the range "
                f"{format_ms(start)}..{format_ms(end)}; count the same range you plan"
            )


def _crowded_instants(
    counted: CountedEvents, per_instant: Counter[int], capacity: int
) -> dict[int, list[int]]:
    """The event indices of every instant holding more than ``capacity`` events."""
    crowded = {instant for instant, events in per_instant.items() if events > capacity}
    indices: defaultdict[int, list[int]] = defaultdict(list)
    if crowded:
        for index, instant in enumerate(counted.timestamps_ms):
            if instant in crowded:
                indices[instant].append(index)
    return dict(indices)
