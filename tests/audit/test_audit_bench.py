from __future__ import annotations

import random

import pytest

from bench.audit_windows import (
    DAY_END,
    DAY_START,
    Day,
    FakePdfEndpoint,
    OverLimit,
    counting_csv,
    late_arrivals,
    measure_day,
)
from compliance_exports.vendors.maxsight.audit import Window, read_counting_csv


def tiny_day() -> Day:
    rng = random.Random(7)
    return Day("tiny", "12,000 events", [rng.randint(DAY_START, DAY_END) for _ in range(12_000)])


def test_measure_day_counts_requests_against_the_optimum() -> None:
    row = measure_day(tiny_day(), seed=7)
    assert (row["events"], row["requests"], row["optimal"], row["total_requests"]) == (
        12_000,
        3,
        3,
        4,
    )


def test_the_generated_csv_reads_back_every_event() -> None:
    day = tiny_day()
    counted = read_counting_csv(counting_csv(day.timestamps, random.Random(1)))
    assert sorted(counted.timestamps_ms) == sorted(day.timestamps)
    assert None not in counted.attributes["event_type"]


def test_the_fake_endpoint_refuses_over_the_limit() -> None:
    counted = read_counting_csv(counting_csv(tiny_day().timestamps, random.Random(1)))
    endpoint = FakePdfEndpoint(counted)
    assert endpoint.fetch(Window(DAY_START, DAY_START)) == 0
    with pytest.raises(OverLimit, match="400: 12000 events"):
        endpoint.fetch(Window(DAY_START, DAY_END))
    assert (endpoint.requests, endpoint.refused) == (2, 1)


def test_late_arrivals_are_fetched_by_bisection() -> None:
    outcome = late_arrivals(tiny_day(), seed=7)
    for margin in ("margin_0", "margin_250"):
        assert outcome[margin]["events_fetched"] == 12_000 + outcome["late_events"]
    assert outcome["margin_0"]["refused"] > 0
