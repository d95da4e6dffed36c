"""Maxsight's synchronous export streamed into the raw zone, against its simulator."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from compliance_exports.core.errors import ExportValidationError, FatalError
from compliance_exports.vendors.maxsight.operators import MaxsightAuditExportToS3Operator
from include.simulators import RunningSimulator
from include.simulators.clock import at, days_ago
from tests.conftest import LocalS3
from tests.integration.conftest import arm, requests_seen

pytestmark = pytest.mark.integration

# the simulator's whole default event store: the 31 days that end with SIM_TODAY
STORE = {"range_start": at(days_ago(30)), "range_end": at(days_ago(0), "23:59:59.999")}


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
    assert raw["key"] == "raw/vendor=maxsight/dataset=audit_events/dt=2026-11-20/audit_events.csv"
    assert len(rows) == 300
    assert raw["job_id"] is None


@pytest.mark.parametrize("style", ["brackets", "repeat"])
def test_array_filters_in_both_encodings(
    maxsight: RunningSimulator, s3: LocalS3, context: dict[str, Any], style: str
) -> None:
    raw = fetch(context, s3, event_type=["login", "logout"], array_style=style, **STORE)
    rows = list(csv.DictReader(io.StringIO(s3.read(raw["key"]).decode())))
    assert {row["event_type"] for row in rows} <= {"login", "logout"}
    query = requests_seen(maxsight, "/export")[-1]["query"]
    assert ("event_type%5B%5D=" in query) == (style == "brackets")


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
