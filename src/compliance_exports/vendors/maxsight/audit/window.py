"""One Maxsight PDF request as data: a millisecond range, optional filters, its event count.

Maxsight's ``range_start`` and ``range_end`` are both inclusive (DOC), so windows are
built at the API's timestamp precision, the millisecond: a window ending at ``t`` is
followed by one starting at ``t + 1 ms`` and no instant belongs to two windows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from compliance_exports.vendors.maxsight.query import (
    AuditExportQuery,
    format_api_timestamp,
    parse_api_timestamp,
)

SPLIT_DIMENSIONS: tuple[str, ...] = ("event_type", "sub_type", "system_source")
"""The API's array filters a crowded instant can be split by, in the order they are tried."""

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
ONE_MS = dt.timedelta(milliseconds=1)

Moment = int | dt.datetime
"""A point in time: epoch milliseconds (UTC) or a timezone-aware datetime."""


def to_epoch_ms(value: Moment, *, name: str = "timestamp") -> int:
    """Epoch milliseconds of ``value``; a datetime is truncated to its millisecond."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{name} {value.isoformat()} has no timezone; give an aware datetime")
        return (value - EPOCH) // ONE_MS
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise TypeError(f"{name} must be epoch milliseconds (int) or an aware datetime, not {value!r}")


def from_epoch_ms(ms: int) -> dt.datetime:
    """The aware UTC datetime of epoch milliseconds ``ms``."""
    return EPOCH + ms * ONE_MS


def format_ms(ms: int) -> str:
    """Epoch milliseconds as the API writes range bounds: ``2026-11-21T23:00:00.123Z``."""
    return format_api_timestamp(from_epoch_ms(ms))


def parse_ms(text: str) -> int:
    """Epoch milliseconds of an ISO-8601 timestamp (no offset means UTC)."""
    return to_epoch_ms(parse_api_timestamp(text))


def _normalise_filters(filters: Mapping[str, Iterable[str]]) -> dict[str, tuple[str, ...]]:
    unknown = sorted(set(filters) - set(SPLIT_DIMENSIONS))
    if unknown:
        raise ValueError(f"unknown window filter {unknown}; allowed: {', '.join(SPLIT_DIMENSIONS)}")
    normalised: dict[str, tuple[str, ...]] = {}
    for dimension in SPLIT_DIMENSIONS:
        if dimension not in filters:
            continue
        raw = filters[dimension]
        if isinstance(raw, str) or not isinstance(raw, Iterable):
            raise ValueError(f"filter {dimension} needs a list of strings, got {raw!r}")
        values = tuple(raw)
        if not values or not all(isinstance(v, str) and v.strip() for v in values):
            raise ValueError(f"filter {dimension} needs one or more non-blank strings, got {raw!r}")
        if len(set(values)) != len(values):
            raise ValueError(f"filter {dimension} repeats a value: {list(values)}")
        normalised[dimension] = tuple(sorted(values))
    return normalised


@dataclass(frozen=True)
class Window:
    """The events of ``[start_ms, end_ms]`` (both inclusive) that match every filter.

    ``filters`` maps a dimension of :data:`SPLIT_DIMENSIONS` to the values it keeps
    (an event matches when its value is one of them); ``expected_events`` is what the
    counting CSV found in the window, ``None`` once a bisection has made it unknown.
    """

    start_ms: int
    end_ms: int
    filters: Mapping[str, Sequence[str]] = field(default_factory=dict)
    expected_events: int | None = None

    def __post_init__(self) -> None:
        for name in ("start_ms", "end_ms"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"window {name} must be epoch milliseconds (int), not {value!r}")
        if self.start_ms > self.end_ms:
            raise ValueError(
                f"window starts at {format_ms(self.start_ms)}, "
                f"after its end {format_ms(self.end_ms)}"
            )
        if self.expected_events is not None and self.expected_events < 0:
            raise ValueError(f"expected_events must be >= 0, got {self.expected_events}")
        object.__setattr__(self, "filters", _normalise_filters(self.filters))

    def __hash__(self) -> int:
        return hash((self.start_ms, self.end_ms, tuple(self.filters.items()), self.expected_events))

    def __str__(self) -> str:
        text = f"{format_ms(self.start_ms)}..{format_ms(self.end_ms)}"
        for dimension, values in self.filters.items():
            text += f" {dimension}={','.join(values)}"
        return text

    @property
    def start(self) -> dt.datetime:
        return from_epoch_ms(self.start_ms)

    @property
    def end(self) -> dt.datetime:
        return from_epoch_ms(self.end_ms)

    @property
    def is_instant(self) -> bool:
        """True when the window is a single millisecond (only filters can split it)."""
        return self.start_ms == self.end_ms

    def contains(self, timestamp_ms: int, values: Mapping[str, str | None] | None = None) -> bool:
        """Whether an event at ``timestamp_ms`` with these attribute ``values`` is in the window."""
        if not self.start_ms <= timestamp_ms <= self.end_ms:
            return False
        found = values or {}
        return all(found.get(dim) in allowed for dim, allowed in self.filters.items())

    def pdf_query(self, base: AuditExportQuery) -> AuditExportQuery:
        """``base`` (the export's own filters) narrowed to this window, as a PDF request.

        The window's filters replace the same dimension of ``base``: they were chosen among
        the values the counting CSV of ``base`` returned, so they are already inside it.
        """
        return replace(
            base,
            range_start=self.start,
            range_end=self.end,
            event_type=tuple(self.filters.get("event_type", base.event_type)),
            sub_type=tuple(self.filters.get("sub_type", base.sub_type)),
            system_source=tuple(self.filters.get("system_source", base.system_source)),
            file_type="pdf",
        )

    def to_dict(self) -> dict[str, Any]:
        """Small JSON-ready form for XCom (ISO timestamps at ms precision with ``Z``)."""
        return {
            "start": format_ms(self.start_ms),
            "end": format_ms(self.end_ms),
            "filters": {dim: list(values) for dim, values in self.filters.items()},
            "expected_events": self.expected_events,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Window:
        """Re-create a window from :meth:`to_dict` output; bad input names the field."""
        missing = sorted({"start", "end"} - set(data))
        if missing:
            raise ValueError(f"window dict: missing keys {missing}")
        unknown = sorted(set(data) - {"start", "end", "filters", "expected_events"})
        if unknown:
            raise ValueError(f"window dict: unknown keys {unknown}")
        filters = data.get("filters")
        filters = {} if filters is None else filters
        if not isinstance(filters, Mapping):
            raise ValueError(f"window dict: filters must be an object, got {filters!r}")
        expected = data.get("expected_events")
        if expected is not None and (not isinstance(expected, int) or isinstance(expected, bool)):
            raise ValueError(f"window dict: expected_events must be an integer, got {expected!r}")
        return cls(
            start_ms=parse_ms(data["start"]),
            end_ms=parse_ms(data["end"]),
            filters=filters,
            expected_events=expected,
        )
