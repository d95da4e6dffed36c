"""Benchmark: Maxsight PDF requests planned for a day against the optimum ceil(events / limit).

Deterministic synthetic days (seeded), each written as the counting CSV the API would
return, read back with the streaming reader in 64 KiB chunks and planned:

- ``uniform``: 50,000 events spread evenly over the day;
- ``bursty``: 20,000 events in one hour plus 5,000 background events;
- ``crowded_instant``: 12,000 events stamped in one millisecond (a bulk job) plus
  8,000 background events; the instant is split by ``event_type``.

``optimal`` is the lower bound ceil(events / 5,000); the counting CSV is one more
request, reported apart. ``late_arrivals`` replays the uniform day against a fake PDF
endpoint after 100 events arrived between counting and fetching, with no safety
margin and with a 250-event margin: refused windows are bisected and retried.

Run: ``python -m bench.audit_windows`` (writes ``bench/results/audit_windows.json``).
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import io
import json
import math
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compliance_exports.vendors.maxsight.audit import (
    CountedEvents,
    Window,
    fetch_with_bisection,
    plan_pdf_windows,
    read_counting_csv,
)
from compliance_exports.vendors.maxsight.audit.window import format_ms, to_epoch_ms
from compliance_exports.vendors.maxsight.query import (
    PDF_EVENT_LIMIT,
)

SEED = 20261121
DAY = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)
DAY_START = to_epoch_ms(DAY)
DAY_END = DAY_START + 86_400_000 - 1
HOUR_MS = 3_600_000
RESULTS = Path(__file__).resolve().parent / "results" / "audit_windows.json"
CHUNK = 1 << 16
LATE_EVENTS = 100
SAFETY_MARGIN = 250

EVENT_TYPES = (
    ("login", 30), ("logout", 20), ("access_granted", 12), ("access_revoked", 8),
    ("role_changed", 8), ("review_decision", 7), ("export", 5), ("screening", 4),
    ("policy_changed", 3), ("api_key_rotated", 2), ("workflow_step", 1),
)  # fmt: skip
SUB_TYPES = ("manual", "automatic", "scheduled", "delegated")
SOURCES = ("api", "ui", "job")


@dataclass(frozen=True)
class Day:
    """One synthetic day: its name, what it models, its event timestamps (epoch ms)."""

    name: str
    description: str
    timestamps: Sequence[int]


def synthetic_days(seed: int = SEED) -> list[Day]:
    rng = random.Random(seed)

    def spread(count: int, start: int, end: int) -> list[int]:
        return [rng.randint(start, end) for _ in range(count)]

    burst_start = DAY_START + 9 * HOUR_MS
    bulk_job = DAY_START + 14 * HOUR_MS + 123
    return [
        Day("uniform", "50,000 events over the day", spread(50_000, DAY_START, DAY_END)),
        Day(
            "bursty",
            "20,000 events in 09:00-10:00 + 5,000 over the day",
            spread(20_000, burst_start, burst_start + HOUR_MS - 1)
            + spread(5_000, DAY_START, DAY_END),
        ),
        Day(
            "crowded_instant",
            "12,000 events in one millisecond + 8,000 over the day",
            [bulk_job] * 12_000 + spread(8_000, DAY_START, DAY_END),
        ),
    ]


def counting_csv(timestamps: Sequence[int], rng: random.Random) -> bytes:
    """The CSV export of a day as Maxsight would return it (UTC, one row per event)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(
        ["event_id", "timestamp", "auditee_id", "event_type", "sub_type", "system_source",
         "description"]
    )  # fmt: skip
    names, weights = zip(*EVENT_TYPES, strict=True)
    kinds = rng.choices(names, weights, k=len(timestamps))
    for number, (stamp, kind) in enumerate(zip(sorted(timestamps), kinds, strict=True)):
        writer.writerow([
            f"evt-{number:07d}",
            format_ms(stamp),
            f"p-{rng.randrange(5000):05d}",
            kind,
            rng.choice(SUB_TYPES),
            rng.choice(SOURCES),
            f'{kind} by "{rng.choice(SOURCES)}", ok' if number % 3 else "",
        ])  # fmt: skip
    return out.getvalue().encode()


def chunked(body: bytes) -> Iterator[bytes]:
    for start in range(0, len(body), CHUNK):
        yield body[start : start + CHUNK]


class OverLimit(Exception):
    """The fake endpoint's 400 for a PDF over the event limit."""


class FakePdfEndpoint:
    """Answers PDF requests from a fixed set of events: the count, or 400 over the limit."""

    def __init__(self, events: CountedEvents) -> None:
        self._order = sorted(range(len(events)), key=events.timestamps_ms.__getitem__)
        self._stamps = [events.timestamps_ms[i] for i in self._order]
        self._events = events
        self.requests = 0
        self.refused = 0

    def fetch(self, window: Window) -> int:
        self.requests += 1
        low = bisect.bisect_left(self._stamps, window.start_ms)
        high = bisect.bisect_right(self._stamps, window.end_ms)
        selected = high - low
        if window.filters:
            selected = sum(
                window.contains(self._stamps[k], self._events.values_of(self._order[k]))
                for k in range(low, high)
            )
        if selected > PDF_EVENT_LIMIT:
            self.refused += 1
            raise OverLimit(f"400: {selected} events in {window}")
        return selected


def measure_day(day: Day, seed: int) -> dict[str, Any]:
    body = counting_csv(day.timestamps, random.Random(seed))
    started = time.perf_counter()
    counted = read_counting_csv(chunked(body))
    counted_at = time.perf_counter()
    windows = plan_pdf_windows(counted, DAY_START, DAY_END)
    planned_at = time.perf_counter()
    margin_windows = plan_pdf_windows(counted, DAY_START, DAY_END, margin=SAFETY_MARGIN)
    events = len(counted)
    return {
        "description": day.description,
        "events": events,
        "requests": len(windows),
        "optimal": max(1, math.ceil(events / PDF_EVENT_LIMIT)),
        "counting_requests": 1,
        "total_requests": len(windows) + 1,
        "filtered_requests": sum(1 for w in windows if w.filters),
        f"requests_margin_{SAFETY_MARGIN}": len(margin_windows),
        "csv_bytes": len(body),
        "count_seconds": round(counted_at - started, 4),
        "plan_seconds": round(planned_at - counted_at, 4),
    }


def late_arrivals(day: Day, seed: int) -> dict[str, Any]:
    """PDF requests for a day whose events grew by LATE_EVENTS after counting."""
    rng = random.Random(seed)
    counted = CountedEvents.from_timestamps(day.timestamps)
    grown = CountedEvents.from_timestamps(
        [*day.timestamps, *(rng.randint(DAY_START, DAY_END) for _ in range(LATE_EVENTS))]
    )
    outcome: dict[str, Any] = {"day": day.name, "late_events": LATE_EVENTS}
    for margin in (0, SAFETY_MARGIN):
        endpoint = FakePdfEndpoint(grown)
        windows = plan_pdf_windows(counted, DAY_START, DAY_END, margin=margin)
        pdfs = [
            part
            for window in windows
            for part in fetch_with_bisection(window, endpoint.fetch, _is_over_limit)
        ]
        outcome[f"margin_{margin}"] = {
            "planned": len(windows),
            "pdf_requests": endpoint.requests,
            "refused": endpoint.refused,
            "pdfs": len(pdfs),
            "events_fetched": sum(count for _, count in pdfs),
        }
    return outcome


def _is_over_limit(error: Exception) -> bool:
    return isinstance(error, OverLimit)


def print_table(results: dict[str, Any]) -> None:
    margin_key = f"requests_margin_{SAFETY_MARGIN}"
    print(f"Maxsight PDF windows (limit {PDF_EVENT_LIMIT}; + 1 counting CSV request each)")
    print(f"{'distribution':<16}{'events':>8}{'requests':>10}{'optimal':>9}"
          f"{'margin ' + str(SAFETY_MARGIN):>12}{'count s':>9}{'plan s':>8}")  # fmt: skip
    for name, row in results["distributions"].items():
        print(
            f"{name:<16}{row['events']:>8}{row['requests']:>10}{row['optimal']:>9}"
            f"{row[margin_key]:>12}{row['count_seconds']:>9.3f}{row['plan_seconds']:>8.3f}"
        )
    late = results["late_arrivals"]
    for margin in (0, SAFETY_MARGIN):
        row = late[f"margin_{margin}"]
        print(
            f"late arrivals (+{late['late_events']} on {late['day']}, margin {margin}): "
            f"{row['planned']} planned, {row['pdf_requests']} PDF requests, "
            f"{row['refused']} refused, {row['pdfs']} PDFs"
        )


def main(*, seed: int = SEED, write: bool = True) -> dict[str, Any]:
    """Run the benchmark, print the table, write the JSON results, return them."""
    days = synthetic_days(seed)
    results: dict[str, Any] = {
        "benchmark": "audit_windows",
        "seed": seed,
        "limit": PDF_EVENT_LIMIT,
        "range": [format_ms(DAY_START), format_ms(DAY_END)],
        "distributions": {day.name: measure_day(day, seed) for day in days},
        "late_arrivals": late_arrivals(days[0], seed),
    }
    print_table(results)
    if write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
