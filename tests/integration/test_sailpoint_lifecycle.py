"""SailPoint's durable export task end to end: its simulator over HTTP, the local S3 server."""

from __future__ import annotations

import asyncio
import io
import time
import zipfile
from typing import Any

import pytest

from compliance_exports.core.errors import ExportError, ExportValidationError
from compliance_exports.vendors.sailpoint.hook import SailPointHook
from compliance_exports.vendors.sailpoint.operators import SailPointReportOperator
from compliance_exports.vendors.sailpoint.triggers import SailPointReportTrigger
from include.simulators import RunningSimulator
from tests.conftest import LocalS3
from tests.integration.conftest import (
    arm,
    configure,
    deferred_trigger,
    next_try,
    requests_seen,
    run_deferrable,
    run_trigger,
    use_connection,
)

pytestmark = pytest.mark.integration

IDENTITIES = {"report_type": "IDENTITIES_DETAILS", "arguments": {"correlatedOnly": True}}


def operator(s3: LocalS3, **kwargs: Any) -> SailPointReportOperator:
    kwargs = {**IDENTITIES, "dataset": "identities", **kwargs}
    return SailPointReportOperator(
        task_id="export", bucket=s3.bucket, aws_conn_id=s3.conn_id, poll_interval=0.1, **kwargs
    )


def export(context: dict[str, Any], s3: LocalS3, **kwargs: Any) -> dict[str, Any]:
    result: dict[str, Any] = run_deferrable(operator(s3, **kwargs), context)
    return result


def runs(sim: RunningSimulator) -> list[dict[str, Any]]:
    return [r for r in requests_seen(sim, "/run") if r["method"] == "POST"]


@pytest.mark.parametrize(("layout", "prefix"), [("v3", "/v3/reports"), ("unified", "/reports/v1")])
def test_report_lands_in_the_raw_zone_with_either_api_layout(
    sailpoint: RunningSimulator, s3: LocalS3, context: dict[str, Any], layout: str, prefix: str
) -> None:
    use_connection("sailpoint_default", sailpoint, api_layout=layout)
    raw = export(context, s3)
    assert raw["key"].endswith("/dataset=identities/dt=2026-11-20/identities.csv")
    assert s3.read(raw["key"]).count(b"\n") >= 25
    assert raw["request"] == {
        "reportType": "IDENTITIES_DETAILS",
        "arguments": {"correlatedOnly": True},
    }
    api_paths = {r["path"] for r in requests_seen(sailpoint) if "/oauth/" not in r["path"]}
    assert api_paths
    assert all(path.startswith(prefix) for path in api_paths)


def test_search_export_zip_is_kept_whole(
    sailpoint: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    search = {"query": "*", "indices": ["identities"], "columns": "id,name"}
    raw = export(
        context, s3, report_type="SEARCH_EXPORT", arguments=search, dataset="search_export"
    )
    assert raw["key"].endswith(".zip")
    with zipfile.ZipFile(io.BytesIO(s3.read(raw["key"]))) as archive:
        assert archive.namelist()


def test_search_export_zip_served_as_csv_is_recognised_by_its_bytes(
    sailpoint: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    """The spec lists only application/csv and application/pdf for the file, yet a
    SEARCH_EXPORT is a zip of CSVs: the zip is stored (and landed) as a zip."""
    search = {"query": "*", "indices": ["identities"], "columns": "id,name"}
    configure(sailpoint, zip_content_type="application/csv")
    try:
        raw = export(
            context, s3, report_type="SEARCH_EXPORT", arguments=search, dataset="search_export"
        )
    finally:
        configure(sailpoint, zip_content_type="application/zip")
    assert raw["key"].endswith("/search_export.zip")
    assert raw["content_type"] == "application/csv"  # as the vendor said; the bytes decide
    assert s3.read(raw["key"])[:4] == b"PK\x03\x04"


def test_missing_required_argument_is_refused_before_any_request(
    sailpoint: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    with pytest.raises(ExportValidationError, match="sourceName"):
        export(context, s3, report_type="ACCOUNTS", arguments={"application": "x"})
    assert requests_seen(sailpoint) == []


def test_failed_report_is_run_again_and_lands(
    sailpoint: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    arm(sailpoint, kind="job_failure", count=1)
    raw = export(context, s3)
    assert [job.get("ended") for job in raw["jobs"]] == ["FAILURE", None]
    assert len(runs(sailpoint)) == 2


def report_trigger(context: dict[str, Any], s3: LocalS3) -> SailPointReportTrigger:
    trigger = deferred_trigger(operator(s3), context)
    assert isinstance(trigger, SailPointReportTrigger)
    return trigger


def test_token_expiry_mid_poll_is_refreshed_and_replayed_in_the_triggerer(
    sailpoint: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    configure(sailpoint, latency=1.0)
    try:
        trigger = report_trigger(context, s3)
        arm(sailpoint, kind="token_expiry", count=1, path="/result")
        events = run_trigger(trigger)
    finally:
        configure(sailpoint, latency=0.3)
    assert [e["status"] for e in events] == ["success"]
    seen = [(r["path"], r["status"]) for r in requests_seen(sailpoint)]
    rejected = [i for i, (path, status) in enumerate(seen) if status == 401]
    assert len(rejected) == 1
    # the rejected poll is followed by one new token and the same poll, now accepted
    assert seen[rejected[0] + 1] == ("/oauth/token", 200)
    assert seen[rejected[0] + 2] == (seen[rejected[0]][0], 200)


def test_rate_limit_storm_in_the_triggerer_is_waited_out(
    sailpoint: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    configure(sailpoint, latency=1.0)
    try:
        trigger = report_trigger(context, s3)
        arm(sailpoint, kind="rate_limit", count=3, retry_after=0, path="/result")
        arm(sailpoint, kind="server_error", count=2, status=502, path="/result")
        events = run_trigger(trigger)
    finally:
        configure(sailpoint, latency=0.3)
    assert [e["status"] for e in events] == ["success"]
    statuses = [r["status"] for r in requests_seen(sailpoint, "/result")]
    assert statuses.count(429) == 3
    assert statuses.count(502) == 2


def test_report_that_never_finishes_is_cancelled_at_the_deadline(
    sailpoint: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    arm(sailpoint, kind="never_finish")
    op = operator(s3, wait_timeout=1)
    [event] = run_trigger(deferred_trigger(op, context))
    assert event["status"] == "timeout"
    assert event["cancelled"]
    with pytest.raises(ExportError, match=r"not done within wait_timeout.*cancelled"):
        op.execute_complete(context, event)
    cancels = [r for r in requests_seen(sailpoint, "/cancel") if r["method"] == "POST"]
    assert [r["path"] for r in cancels] == [f"/v3/reports/{event['job_id']}/cancel"]


def never_finishing_trigger(sailpoint: RunningSimulator) -> SailPointReportTrigger:
    """A trigger waiting on a report that never finishes."""
    arm(sailpoint, kind="never_finish")
    job_id = SailPointHook().submit_export(
        {"reportType": "IDENTITIES_DETAILS", "arguments": {"correlatedOnly": True}}
    )
    return SailPointReportTrigger(
        conn_id="sailpoint_default", job_id=job_id, deadline=time.time() + 60, poll_interval=0.1
    )


@pytest.mark.parametrize(
    ("task_state", "cancelled"),
    [("failed", True), ("success", True), (None, False), ("scheduled", False), ("deferred", False)],
    ids=["marked-failed", "marked-success", "cleared", "cleared-rescheduled", "reassigned"],
)
def test_on_kill_cancels_only_what_a_person_ended(
    sailpoint: RunningSimulator,
    monkeypatch: pytest.MonkeyPatch,
    task_state: str | None,
    cancelled: bool,
) -> None:
    trigger = never_finishing_trigger(sailpoint)

    async def state_now(self: Any) -> str | None:
        return task_state

    monkeypatch.setattr(SailPointReportTrigger, "task_state", state_now)
    asyncio.run(trigger.on_kill())
    assert bool(requests_seen(sailpoint, f"{trigger.job_id}/cancel")) is cancelled
    if not cancelled:
        SailPointHook().cancel_export(trigger.job_id)  # leave no running report behind


def test_a_second_run_of_a_running_report_follows_the_running_task(
    sailpoint: RunningSimulator,
) -> None:
    arm(sailpoint, kind="never_finish")
    hook = SailPointHook()
    request = {"reportType": "IDENTITIES_DETAILS", "arguments": {"correlatedOnly": True}}
    first, second = hook.submit_export(request), hook.submit_export(request)
    hook.cancel_export(first)  # leave no running report behind
    assert second == first
    assert len(runs(sailpoint)) == 2


def test_retry_reuses_the_stored_task_without_a_second_run(
    sailpoint: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    first = export(context, s3)
    assert export(next_try(context), s3)["job_id"] == first["job_id"]
    assert len(runs(sailpoint)) == 1


def test_a_foreign_running_task_is_waited_out_never_cancelled_and_the_run_resubmitted(
    sailpoint: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    """SailPoint returns the running task of the report *type*: another run's task with
    other arguments is not adopted (the simulator's default is that hostile reading)."""
    configure(sailpoint, latency=1.5)
    try:
        theirs = SailPointHook().submit_export(
            {"reportType": "IDENTITIES_DETAILS", "arguments": {"correlatedOnly": False}}
        )
        raw = export(context, s3)  # ours: correlatedOnly true
    finally:
        configure(sailpoint, latency=0.3)
    assert raw["job_id"] != theirs
    assert requests_seen(sailpoint, "/cancel") == []  # never cancelled by us
    assert len(runs(sailpoint)) == 3  # theirs, ours answered with theirs, ours again
    assert [job["job_id"] for job in raw["jobs"]] == [raw["job_id"]]


def test_a_refused_cancel_is_logged_with_the_reason_and_the_report_left(
    sailpoint: RunningSimulator,
    s3: LocalS3,
    context: dict[str, Any],
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Cancel is declared for personal access tokens only: an API client's is refused."""
    configure(sailpoint, cancel_requires_pat=True)
    arm(sailpoint, kind="never_finish")
    try:
        op = operator(s3, wait_timeout=1)
        [event] = run_trigger(deferred_trigger(op, context))
    finally:
        configure(sailpoint, cancel_requires_pat=False)
    assert event["status"] == "timeout"
    assert event["cancelled"] is False
    assert "personal access tokens" in "".join(capfd.readouterr())
    with pytest.raises(ExportError, match="not done within wait_timeout"):
        op.execute_complete(context, event)
    [refused] = requests_seen(sailpoint, "/cancel")
    assert refused["status"] == 403
    SailPointHook().cancel_export(event["job_id"])  # a refused cancel does not raise either


def test_a_search_export_whose_csvs_differ_in_header_fails_naming_the_member(
    sailpoint: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    """Each index's CSV of a SEARCH_EXPORT zip may carry its own columns: landing them
    as one table would misalign rows, so the landing refuses and names the member (the
    original stays in the raw zone as it came)."""
    from compliance_exports.landing.errors import LandingError
    from compliance_exports.landing.land import land_raw_object

    search = {"query": "*", "indices": ["identities", "roles"], "columns": "id,name"}
    configure(sailpoint, zip_member_headers="per_index")
    try:
        raw = export(
            context, s3, report_type="SEARCH_EXPORT", arguments=search, dataset="search_export"
        )
    finally:
        configure(sailpoint, zip_member_headers="same")
    with pytest.raises(LandingError, match=r"search_export\.zip:.*\.csv: header differs"):
        land_raw_object(raw, {}, aws_conn_id=s3.conn_id, bucket=s3.bucket)
    assert s3.keys("curated/") == []
    assert s3.read(raw["key"])[:2] == b"PK"
