"""The planner against the Maxsight simulator's own event store and CSV rendering (no HTTP).

The simulator is the reference for what the API selects: every planned window, asked as
a PDF query, must select exactly the events the counting CSV put in it, within the limit.
"""

from __future__ import annotations

import datetime as dt

import pytest

from compliance_exports.vendors.maxsight.audit import (
    counting_query,
    plan_pdf_windows,
    read_counting_csv,
)
from compliance_exports.vendors.maxsight.query import AuditExportQuery
from include.simulators.data import csv_chunks
from include.simulators.maxsight import COLUMNS, EventRenderer, EventStore, MaxsightSettings

DAY = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
DAY_END = DAY + dt.timedelta(days=1) - dt.timedelta(milliseconds=1)
LIMIT = 400


@pytest.fixture(scope="module")
def store() -> EventStore:
    settings = MaxsightSettings(
        events=1_500,
        store_start="2026-09-30T12:00:00.000Z",  # events on both sides of the planned day
        store_end="2026-10-02T12:00:00.000Z",
        burst_events=600,
        burst_start="2026-10-01T13:00:00.000Z",
        burst_seconds=30.0,
        instant_events=700,  # one millisecond over LIMIT: split by a filter
        instant_at="2026-10-01T08:30:00.250Z",
    )
    return EventStore(settings, seed=11)


def counting_csv(store: EventStore, query: AuditExportQuery) -> list[bytes]:
    rows = EventRenderer(query).named_rows(store.select(query))
    return list(csv_chunks(COLUMNS, rows, chunk_bytes=4096))


@pytest.mark.parametrize("base", [AuditExportQuery(), AuditExportQuery(system_source=("api",))])
def test_every_window_selects_what_the_count_put_in_it(
    store: EventStore, base: AuditExportQuery
) -> None:
    query = counting_query(base, DAY, DAY_END)
    counted = read_counting_csv(counting_csv(store, query))
    assert len(counted) == store.count(query)
    windows = plan_pdf_windows(counted, DAY, DAY_END, limit=LIMIT)
    for window in windows:
        assert window.expected_events is not None
        assert store.count(window.pdf_query(base)) == window.expected_events <= LIMIT
    assert sum(window.expected_events or 0 for window in windows) == len(counted)
    if base == AuditExportQuery():
        assert any(window.filters for window in windows)


def test_offsets_of_another_time_zone_read_as_the_same_instants(store: EventStore) -> None:
    utc = counting_query(AuditExportQuery(), DAY, DAY_END)
    new_york = AuditExportQuery(
        range_start=utc.range_start, range_end=utc.range_end, timezone="America/New_York"
    )
    from_utc = read_counting_csv(counting_csv(store, utc))
    from_new_york = read_counting_csv(counting_csv(store, new_york))
    assert from_new_york.timestamps_ms == from_utc.timestamps_ms
    assert from_new_york.attributes == from_utc.attributes
