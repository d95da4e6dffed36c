"""Maxsight's synchronous export streamed into the raw zone, against its simulator."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from compliance_exports.core.errors import ExportValidationError, FatalError
from compliance_exports.vendors.maxsight.hook import MaxsightHook
from compliance_exports.vendors.maxsight.operators import MaxsightAuditExportToS3Operator
from compliance_exports.vendors.maxsight.query import AuditExportQuery
from include.simulators import RunningSimulator
from include.simulators.clock import at, days_ago
from include.simulators.maxsight import HOSTILE
from tests.conftest import LocalS3, without_run
from tests.integration.conftest import arm, configure, requests_seen

pytestmark = pytest.mark.integration

# the simulator's whole default event store: the 31 days that end with SIM_TODAY
STORE = {"range_start": at(days_ago(30)), "range_end": at(days_ago(0), "23:59:59.999")}
WANTED = ("task", "user")  # two of the simulator's event types
STRICT = {"unknown_parameters": "refuse", "bracket_arrays": "refuse"}


def fetch(context: dict[str, Any], s3: LocalS3, **kwargs: Any) -> dict[str, Any]:
    op = MaxsightAuditExportToS3Operator(
        task_id="fetch", dataset="audit_events", bucket=s3.bucket, aws_conn_id=s3.conn_id, **kwargs
    )
    result: dict[str, Any] = op.execute(context)
    return result


def test_csv_export_lands_in_the_raw_zone(
    maxsight: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    raw = fetch(context, s3, **STORE)
    rows = list(csv.DictReader(io.StringIO(s3.read(raw["key"]).decode())))
    assert (
        without_run(raw["key"])
        == "raw/vendor=maxsight/dataset=audit_events/dt=2026-11-20/audit_events.csv"
    )
    assert len(rows) == 300
    assert raw["job_id"] is None


def csv_rows(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode(), newline="")))


def hook_rows(query: AuditExportQuery) -> list[dict[str, str]]:
    """The CSV of ``query`` as the client sends it by default (no encoding chosen)."""
    with MaxsightHook().open_export(query) as download:
        return csv_rows(download.response.read())


def store_query(**fields: Any) -> AuditExportQuery:
    start, end = (dt.datetime.fromisoformat(STORE[k]) for k in ("range_start", "range_end"))
    return AuditExportQuery(range_start=start, range_end=end, **fields)


@contextmanager
def simulator_settings(sim: RunningSimulator, **patch: Any) -> Iterator[None]:
    """``patch`` applied to the module's simulator for the block, then undone."""
    with sim.admin() as admin:
        original = admin.get("/_sim/config").json()
    configure(sim, **patch)
    try:
        yield
    finally:
        configure(sim, **{key: original[key] for key in patch})


def ids_of(rows: list[dict[str, str]], event_types: tuple[str, ...]) -> set[str]:
    return {row["event_id"] for row in rows if row["event_type"] in event_types}


def test_array_filters_go_as_repeated_keys(
    maxsight: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    everything = hook_rows(store_query())
    raw = fetch(context, s3, event_type=list(WANTED), **STORE)
    rows = csv_rows(s3.read(raw["key"]))
    assert {row["event_id"] for row in rows} == ids_of(everything, WANTED)
    assert 0 < len(rows) < len(everything)
    query = requests_seen(maxsight, "/export")[-1]["query"]
    assert "event_type%5B%5D=" not in query
    assert query.count("event_type=") == len(WANTED)


def test_client_default_request_is_filtered_by_a_strict_simulator(
    maxsight: RunningSimulator,
) -> None:
    everything = hook_rows(store_query())
    with simulator_settings(maxsight, **STRICT):
        rows = hook_rows(store_query(event_type=WANTED))
        call = MaxsightHook().export_call(store_query(event_type=WANTED))
        assert isinstance(call.params, list)
        brackets = [(f"{k}[]" if k == "event_type" else k, v) for k, v in call.params]
        with maxsight.admin() as http:
            refused = http.get(call.path, params=brackets, headers={"apikey": "maxsight-sim-key"})
    assert refused.status_code == 400  # the strict simulator does refuse the bracket form
    assert [row["event_id"] for row in rows] == [
        row["event_id"] for row in everything if row["event_type"] in WANTED
    ]
    assert 0 < len(rows) < len(everything)
    query = requests_seen(maxsight, "/export")[-2]["query"]
    assert query.count("event_type=") == 2
    assert "%5B%5D" not in query


def test_documented_request_works_under_hostile_settings(
    maxsight: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    with simulator_settings(maxsight, **HOSTILE):
        everything = hook_rows(store_query())
        raw = fetch(context, s3, event_type=list(WANTED), **STORE)
    rows = csv_rows(s3.read(raw["key"]))
    assert {row["event_id"] for row in rows} == ids_of(everything, WANTED)
    assert 0 < len(rows) < len(everything)
    stamps = [dt.datetime.fromisoformat(row["timestamp"]) for row in rows]
    assert stamps == sorted(stamps, reverse=True)  # HOSTILE: newest first
    assert any(stamp.microsecond % 1000 for stamp in stamps)  # HOSTILE: microseconds


def test_reversed_range_is_refused_before_any_request(
    maxsight: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    with pytest.raises(ExportValidationError, match="range"):
        fetch(context, s3, range_start=STORE["range_end"], range_end=STORE["range_start"])
    assert requests_seen(maxsight) == []


def test_pdf_over_the_event_limit_fails_with_maxsight_message(
    maxsight: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    with pytest.raises(FatalError, match="400"):
        fetch(context, s3, file_type="pdf", **STORE)
    assert s3.keys() == []


def test_rate_limit_is_waited_out(
    maxsight: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    arm(maxsight, kind="rate_limit", count=2, retry_after=1)
    raw = fetch(context, s3, **STORE)
    assert s3.read(raw["key"])
    assert [r["status"] for r in requests_seen(maxsight, "/export")] == [429, 429, 200]


def test_microsecond_stamps_fall_in_exactly_one_day(
    maxsight: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    """A tenant that stamps events finer than a millisecond: the two days around a
    midnight, sliced as the DAG slices them, hold every event once (none lost between)."""
    from compliance_exports.registry import load_registry
    from compliance_exports.runs import ExportSlice, day_bounds

    entry = load_registry().get("maxsight_audit_events")
    first = days_ago(5)
    late = at(first, "23:59:59.999600")  # 400 µs before midnight, in the last millisecond
    with simulator_settings(maxsight, timestamp_precision="us", instant_events=40, instant_at=late):
        seen: list[set[str]] = []
        for day in (first, first + dt.timedelta(days=1)):
            start, end = day_bounds(day, dt.UTC)  # type: ignore[arg-type]
            bounds = entry.vendor.slice_request(entry, ExportSlice(day, start, end), {})
            rows = csv_rows(
                s3.read(fetch({**context, "data_interval_start": start}, s3, **bounds)["key"])
            )
            seen.append({row["event_id"] for row in rows})
        whole = csv_rows(s3.read(fetch(context, s3, **STORE)["key"]))
    late_ids = {row["event_id"] for row in whole if row["timestamp"].startswith(late[:-1])}
    assert len(late_ids) == 40
    assert late_ids <= seen[0]  # the last microseconds of a day belong to it
    assert not seen[0] & seen[1]
