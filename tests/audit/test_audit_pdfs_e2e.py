"""Maxsight audit PDFs end to end: count with the CSV, plan, fetch every PDF into the raw zone.

Real parts only: a Maxsight simulator over HTTP (our own, so we choose its distribution
and its PDF limit), the local S3 server, the operators' ``execute()`` and the DAG's own
planning glue (:func:`~compliance_exports.vendors.maxsight.spec.plan_audit_pdfs`), and the
landed PDFs read back with pypdf. Cases 1-3 lower the simulator's ``pdf_event_limit`` and plan with
the same ``window_limit``: the mechanism is what is tested. The ``dag.test()`` case runs
the shipped ``maxsight_exports`` DAG at the real limit of 5,000.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import itertools
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs

import pyarrow.parquet as pq
import pytest
from pypdf import PdfReader

from compliance_exports.landing.layout import Partition
from compliance_exports.registry import ExportEntry, load_registry
from compliance_exports.vendors.maxsight.audit import (
    InstantOverLimitError,
    Window,
    WindowOverLimitError,
)
from compliance_exports.vendors.maxsight.audit.window import format_ms, parse_ms, to_epoch_ms
from compliance_exports.vendors.maxsight.operators import MaxsightAuditExportToS3Operator
from compliance_exports.vendors.maxsight.pdfs import MaxsightAuditPdfsToS3Operator
from compliance_exports.vendors.maxsight.spec import plan_audit_pdfs
from include.simulators import RunningSimulator
from include.simulators.maxsight import EXPORT_PATH
from tests.audit.simulated_pdfs import (
    AROUND_THE_DAY,
    DAY,
    DAY_END,
    DAY_START,
    configure,
    maxsight_simulators,
    pdf_event_ids,
)
from tests.conftest import LocalS3

pytestmark = pytest.mark.integration

CONN_ID = "maxsight_pdf_e2e"
ENTRY = "maxsight_audit_events"
ITEM = {"day": DAY.isoformat(), "request": {"range_start": DAY_START, "range_end": DAY_END}}


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def maxsight(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., RunningSimulator]]:
    """``maxsight(**settings)``: our own simulator, behind the ``maxsight_pdf_e2e`` connection."""
    with maxsight_simulators(monkeypatch, CONN_ID) as start:
        yield start


@pytest.fixture
def context() -> dict[str, Any]:
    return {"data_interval_start": dt.datetime.combine(DAY, dt.time(), dt.UTC)}


def entry_with_limit(limit: int) -> ExportEntry:
    entry = load_registry().get(ENTRY)
    return replace(entry, params={**entry.params, "window_limit": limit, "window_margin": 0})


def day_export(s3: LocalS3) -> dict[str, Any]:
    """What the CSV fetch and the PDF fetch of the day share: source, target, day, locale."""
    return {
        "conn_id": CONN_ID,
        "dataset": "audit_events",
        "bucket": s3.bucket,
        "aws_conn_id": s3.conn_id,
        "day": DAY.isoformat(),
        "timezone": "UTC",
        "locale": "en",
    }


def fetch_csv(s3: LocalS3, context: Any, **filters: Any) -> dict[str, Any]:
    """The counting CSV of the day, landed in the raw zone as the DAG's ``fetch_csv`` does."""
    op = MaxsightAuditExportToS3Operator(
        task_id="fetch_csv",
        **day_export(s3),
        range_start=DAY_START,
        range_end=DAY_END,
        file_type="csv",
        **filters,
    )
    raw: dict[str, Any] = dict(op.execute(context))
    return raw


def plan(raw_csv: dict[str, Any], limit: int) -> list[Window]:
    """The DAG's planning step on the landed CSV: every window of the day, in order."""
    batches = plan_audit_pdfs(entry_with_limit(limit), [raw_csv], [ITEM])
    return [Window.from_dict(w) for batch in batches for w in batch["windows"]]


def fetch_pdfs(
    s3: LocalS3, context: Any, windows: list[Window], **kwargs: Any
) -> list[dict[str, Any]]:
    op = MaxsightAuditPdfsToS3Operator(
        task_id="fetch_pdfs",
        **day_export(s3),
        windows=[w.to_dict() for w in windows],
        **kwargs,
    )
    return op.execute(context)


def csv_rows(s3: LocalS3, key: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(s3.read(key).decode("utf-8"))))


def export_requests(sim: RunningSimulator) -> list[dict[str, Any]]:
    """Every export request the simulator saw: ``file_type``, its query and its status."""
    with sim.admin() as admin:
        logged = admin.get("/_sim/requests").json()
    seen = []
    for item in logged:
        if item["path"] != EXPORT_PATH:
            continue
        query = parse_qs(item["query"])
        seen.append(
            {
                "file_type": query.get("file_type", ["csv"])[0],
                "range": (query["range_start"][0], query["range_end"][0]),
                "status": item["status"],
            }
        )
    return seen


def ms(text: str) -> int:
    return parse_ms(text)


def check_landed(
    s3: LocalS3, landed: list[dict[str, Any]], rows: list[dict[str, str]], limit: int
) -> dict[str, list[str]]:
    """Each landed PDF is real, within the limit, holds only events of its window, and
    together they hold every CSV event exactly once. Returns the event ids per PDF key."""
    by_id = {row["event_id"]: row for row in rows}
    ids_per_pdf: dict[str, list[str]] = {}
    for pdf in landed:
        raw = pdf["raw"]
        assert raw["key"].startswith(Partition("maxsight", "audit_events", DAY).raw_prefix)
        assert raw["key"].endswith(".pdf")
        ids = pdf_event_ids(s3.read(raw["key"]))
        ids_per_pdf[raw["key"]] = ids
        assert len(ids) <= limit, f"{pdf['window']} holds {len(ids)} events"
        if pdf["expected_events"] is not None:
            assert len(ids) == pdf["expected_events"], pdf["window"]
        window = Window.from_dict(pdf["window"])
        for event_id in ids:
            row = by_id[event_id]
            values = {dim: row[dim] or None for dim in ("event_type", "sub_type", "system_source")}
            assert window.contains(ms(row["timestamp"]), values), (event_id, str(window))
    assert len(ids_per_pdf) == len(landed), "two windows landed under one key"
    seen = Counter(i for ids in ids_per_pdf.values() for i in ids)
    assert [i for i, n in seen.items() if n > 1] == [], "an event is in two PDFs"
    assert set(seen) == set(by_id), "the PDFs and the CSV hold different events"
    assert sum(seen.values()) == len(rows)
    return ids_per_pdf


def assert_tiles_the_day(windows: list[Window]) -> None:
    """Time windows follow each other to the millisecond; filtered ones share one instant."""
    assert windows[0].start_ms == ms(DAY_START)
    assert windows[-1].end_ms == ms(DAY_END)
    for before, after in itertools.pairwise(windows):
        if before.filters and after.filters and before.start_ms == after.start_ms:
            continue
        assert after.start_ms == before.end_ms + 1, (str(before), str(after))


# --------------------------------------------------------------------------- 1. bursty day


@pytest.mark.parametrize("precision", ["ms", "us"])
def test_bursty_day_lands_every_event_once_in_pdfs_within_the_limit(
    maxsight: Callable[..., RunningSimulator],
    s3: LocalS3,
    context: dict[str, Any],
    precision: str,
) -> None:
    """Also with events stamped in microseconds (a CHOICE): the windows, planned on whole
    milliseconds, still put every event in exactly one PDF."""
    limit = 100
    sim = maxsight(
        events=400,  # ~200 of them in the day, the rest on either side of it
        **AROUND_THE_DAY,
        burst_events=500,
        burst_start="2026-11-20T13:00:00.000Z",
        burst_seconds=3600.0,
        pdf_event_limit=limit,
        timestamp_precision=precision,
    )
    raw_csv = fetch_csv(s3, context)
    rows = csv_rows(s3, raw_csv["key"])
    windows = plan(raw_csv, limit)

    landed = fetch_pdfs(s3, context, windows)

    burst = [r for r in rows if r["timestamp"].startswith("2026-11-20T13:")]
    assert len(burst) > 3 * limit, "the burst hour alone needs several PDFs"
    fraction = re.compile(r"\.(\d+)")
    digits = {len(m.group(1)) for r in rows if (m := fraction.search(r["timestamp"]))}
    assert digits == {6 if precision == "us" else 3}
    assert_tiles_the_day(windows)
    assert len(windows) >= -(-len(rows) // limit)
    inside_burst = [w for w in windows if w.start_ms >= ms("2026-11-20T13:00:00.000Z")
                    and w.end_ms < ms("2026-11-20T14:00:00.000Z")]  # fmt: skip
    assert len(inside_burst) >= 2, "the burst hour is split into several windows"
    assert [Window.from_dict(p["window"]) for p in landed] == windows, "one PDF per window"
    check_landed(s3, landed, rows, limit)
    requests = export_requests(sim)
    assert [r["status"] for r in requests] == [200] * (1 + len(windows)), "no 400 at all"
    assert [r["file_type"] for r in requests] == ["csv"] + ["pdf"] * len(windows)


# --------------------------------------------------------------------------- 2. crowded instant

INSTANT = "2026-11-20T08:30:00.250Z"


def test_an_instant_over_the_limit_is_split_by_event_type(
    maxsight: Callable[..., RunningSimulator], s3: LocalS3, context: dict[str, Any]
) -> None:
    limit = 120
    sim = maxsight(
        events=200, **AROUND_THE_DAY, instant_events=300, instant_at=INSTANT, pdf_event_limit=limit
    )
    raw_csv = fetch_csv(s3, context)
    rows = csv_rows(s3, raw_csv["key"])
    windows = plan(raw_csv, limit)

    landed = fetch_pdfs(s3, context, windows)

    at_instant = [r["event_id"] for r in rows if ms(r["timestamp"]) == ms(INSTANT)]
    assert len(at_instant) == 300 > limit
    split = [w for w in windows if w.start_ms == w.end_ms == ms(INSTANT)]
    assert len(split) >= 3
    assert all(list(w.filters) == ["event_type"] for w in split)
    values = [v for w in split for v in w.filters["event_type"]]
    assert sorted(values) == sorted({r["event_type"] for r in rows if r["event_id"] in at_instant})
    assert_tiles_the_day(windows)
    ids = check_landed(s3, landed, rows, limit)
    split_ids = [
        i
        for pdf in landed
        if Window.from_dict(pdf["window"]) in split
        for i in ids[pdf["raw"]["key"]]
    ]
    assert sorted(split_ids) == sorted(at_instant), "the instant's PDFs hold its events, once"
    assert {r["status"] for r in export_requests(sim)} == {200}


SHARED = {"event_type": ["user"], "sub_type": ["login"], "system_source": ["api"]}


@pytest.mark.parametrize(
    ("case", "filters", "instant_events", "limit"),
    [
        # the export's own filters leave one value in every split dimension
        ("shared values", SHARED, 3000, 10),
        # every dimension has a value that alone is over the limit
        ("one value over the limit", {}, 1000, 40),
    ],
)
def test_an_unsplittable_instant_fails_naming_it_before_any_pdf(
    maxsight: Callable[..., RunningSimulator],
    s3: LocalS3,
    context: dict[str, Any],
    case: str,
    filters: dict[str, list[str]],
    instant_events: int,
    limit: int,
) -> None:
    sim = maxsight(
        events=300,
        **AROUND_THE_DAY,
        instant_events=instant_events,
        instant_at=INSTANT,
        pdf_event_limit=limit,
    )
    raw_csv = fetch_csv(s3, context, **filters)
    rows = csv_rows(s3, raw_csv["key"])
    crowd = [r for r in rows if ms(r["timestamp"]) == ms(INSTANT)]
    assert len(crowd) > limit
    for dim in ("event_type", "sub_type", "system_source"):
        assert max(Counter(r[dim] for r in crowd).values()) > limit, (case, dim)

    with pytest.raises(InstantOverLimitError) as failure:
        plan(raw_csv, limit)

    message = str(failure.value)
    assert INSTANT in message
    assert str(len(crowd)) in message
    for dim in ("event_type", "sub_type", "system_source"):
        assert dim in message
    assert [r["file_type"] for r in export_requests(sim)] == ["csv"], "no PDF was asked for"
    assert [k for k in s3.keys(prefix="raw/") if k.endswith(".pdf")] == []


# --------------------------------------------------------------------------- 3. late arrivals


def late_arrival_setup(
    maxsight: Callable[..., RunningSimulator], s3: LocalS3, context: dict[str, Any], limit: int
) -> tuple[RunningSimulator, list[Window], Window, str]:
    """A uniform day planned from its CSV; returns the first window and an instant in it."""
    sim = maxsight(events=600, **AROUND_THE_DAY, pdf_event_limit=limit, instant_events=0)
    raw_csv = fetch_csv(s3, context)
    windows = plan(raw_csv, limit)
    first = windows[0]
    assert first.expected_events == limit, "the first window is full"
    late = format_ms(first.start_ms + (first.end_ms - first.start_ms) // 3)
    return sim, windows, first, late


def test_events_arriving_after_counting_are_bisected_and_retried(
    maxsight: Callable[..., RunningSimulator], s3: LocalS3, context: dict[str, Any]
) -> None:
    limit, arriving = 100, 75  # ~50 + 75 in the late half: two levels of bisection at least
    sim, windows, first, late = late_arrival_setup(maxsight, s3, context, limit)
    configure(sim, instant_events=arriving, instant_at=late)  # after counting, inside `first`

    landed = fetch_pdfs(s3, context, windows)  # max_bisection_depth: the default, 4

    recount = fetch_csv(s3, context)  # what the day holds now
    rows = csv_rows(s3, recount["key"])
    assert len(rows) == sum(w.expected_events or 0 for w in windows) + arriving
    check_landed(s3, landed, rows, limit)
    pdf_requests = [r for r in export_requests(sim) if r["file_type"] == "pdf"]
    refused = [r for r in pdf_requests if r["status"] == 400]
    # an inclusive end goes on the wire through its whole millisecond
    through_end = format_ms(first.end_ms).replace("Z", "999Z")
    assert refused[0]["range"] == (format_ms(first.start_ms), through_end)
    assert 2 <= len(refused) <= 2**4 - 1, "refused, then refused again one level down"
    assert len(pdf_requests) == len(refused) + len(landed)
    assert all(r["status"] in (200, 400) for r in pdf_requests)
    parts = [p for p in landed if first.start_ms <= ms(p["window"]["start"]) <= first.end_ms]
    assert len(parts) >= 3
    assert all(isinstance(p["expected_events"], int) for p in parts), "split parts are recounted"
    assert [Window.from_dict(p["window"]) for p in landed[len(parts) :]] == windows[1:]
    assert (ms(parts[0]["window"]["start"]), ms(parts[-1]["window"]["end"])) == (
        first.start_ms,
        first.end_ms,
    )


def test_the_bisection_depth_bound_fails_naming_the_window(
    maxsight: Callable[..., RunningSimulator], s3: LocalS3, context: dict[str, Any]
) -> None:
    limit, arriving = 100, 75  # one bisection leaves ~50 + 75 events in the late half
    sim, windows, first, late = late_arrival_setup(maxsight, s3, context, limit)
    configure(sim, instant_events=arriving, instant_at=late)

    with pytest.raises(WindowOverLimitError) as failure:
        fetch_pdfs(s3, context, windows, max_bisection_depth=1)

    message = str(failure.value)
    assert str(first) in message, "names the planned window"
    assert "after 1 bisection(s)" in message
    assert "the depth limit is 1" in message
    assert failure.value.planned == first
    assert failure.value.window.start_ms <= ms(late) <= failure.value.window.end_ms
    statuses = [r["status"] for r in export_requests(sim) if r["file_type"] == "pdf"]
    assert statuses.count(400) == 2, "the planned window, then its late half"
    assert len(statuses) <= 3, "bounded: 1 + 2 requests at most"


# --------------------------------------------------------------------------- 4. the real DAG

BURSTY_DAY = {
    "events": 600,
    **AROUND_THE_DAY,  # ~300 in the day
    "burst_events": 4900,
    "burst_start": "2026-11-20T13:00:00.000Z",
    "burst_seconds": 3600.0,
    "instant_events": 0,
}


@pytest.mark.airflow
def test_maxsight_dag_archives_every_pdf_of_a_bursty_day(
    dags: dict[str, Any],
    run_for_day: Any,
    s3: LocalS3,
    sim: dict[str, Any],
) -> None:
    maxsight_sim: RunningSimulator = sim["maxsight"]
    with maxsight_sim.admin() as admin:
        original = admin.get("/_sim/config").json()
    configure(maxsight_sim, **BURSTY_DAY)
    try:
        dagrun = run_for_day(dags["maxsight_exports"], DAY)
        requests = export_requests(maxsight_sim)
    finally:
        configure(maxsight_sim, **{k: original[k] for k in BURSTY_DAY})

    states = {(ti.task_id, ti.map_index): ti.state for ti in dagrun.get_task_instances()}
    assert dagrun.state == "success", states
    entry = load_registry().get(ENTRY)
    assert entry.dag_id == "maxsight_exports"
    limit = entry.params["window_limit"]
    assert limit == 5000, "the real limit"
    manifest = json.loads(s3.read(Partition("maxsight", "audit_events", DAY).manifest_key))
    pdfs = [e for e in manifest["evidence"] if e["kind"] == "pdf"]
    assert len(pdfs) >= 2, "a bursty day of more than 5,000 events needs several PDFs"
    windows = [Window.from_dict(p["window"]) for p in pdfs]
    assert_tiles_the_day(windows)
    assert sum(p["expected_events"] for p in pdfs) == manifest["rows"] > limit
    curated = [
        pq.read_table(io.BytesIO(s3.read(part["key"])), columns=["event_id", "timestamp"])
        for part in manifest["parts"]
    ]
    event_ids = [i for table in curated for i in table.column("event_id").to_pylist()]
    assert len(event_ids) == len(set(event_ids)) == manifest["rows"]
    instants = [to_epoch_ms(t) for table in curated for t in table.column("timestamp").to_pylist()]
    for pdf, window in zip(pdfs, windows, strict=True):
        assert pdf["expected_events"] == window.expected_events <= limit
        in_window = sum(window.start_ms <= t <= window.end_ms for t in instants)
        assert in_window == pdf["expected_events"], "the curated rows of the PDF's window"
        body = s3.read(pdf["key"])
        assert (len(body), hashlib.sha256(body).hexdigest()) == (pdf["size"], pdf["sha256"])
        # Reading every row of a 5,000-event PDF costs ~10 s (the small-limit cases count
        # rows one by one); here the last page's footer says how many rows the PDF holds.
        last_page = PdfReader(io.BytesIO(body)).pages[-1].extract_text()
        footer = re.search(r"rows (\d+)-(\d+) of (\d+)", last_page)
        assert footer, last_page[-200:]
        assert int(footer[2]) == int(footer[3]) == pdf["expected_events"], pdf["key"]
    assert {r["status"] for r in requests} == {200}, "no 400 left to handle"
    assert sum(r["file_type"] == "pdf" for r in requests) == len(pdfs)


@pytest.mark.airflow
def test_a_day_whose_pdfs_fail_still_lands_its_parquet_and_fails_the_run(
    dags: dict[str, Any], run_for_day: Any, s3: LocalS3, sim: dict[str, Any]
) -> None:
    """The CSV's landing does not wait for the PDFs: when every PDF is refused, the day's
    Parquet is published all the same, and the run fails on the PDF task for a person."""
    maxsight_sim: RunningSimulator = sim["maxsight"]
    settings = {**AROUND_THE_DAY, "events": 600, "pdf_event_limit": 1}  # no PDF fits
    with maxsight_sim.admin() as admin:
        original = admin.get("/_sim/config").json()
    configure(maxsight_sim, **settings)
    try:
        dagrun = run_for_day(dags["maxsight_exports"], DAY + dt.timedelta(days=1))
    finally:
        configure(maxsight_sim, **{k: original[k] for k in settings})

    states = {ti.task_id.rsplit(".", 1)[-1]: ti.state for ti in dagrun.get_task_instances()}
    assert dagrun.state == "failed"
    assert states["land"] == "success"
    assert states["fetch_pdfs"] == "failed"
    assert states["attach_evidence"] == "upstream_failed"
    day = Partition("maxsight", "audit_events", DAY + dt.timedelta(days=1))
    manifest = json.loads(s3.read(day.manifest_key))
    assert manifest["rows"] > 0
    assert [e for e in manifest["evidence"] if e["kind"] == "pdf"] == []
