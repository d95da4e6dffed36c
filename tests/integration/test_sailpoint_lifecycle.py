"""SailPoint end to end against its simulator over HTTP and the local S3 server."""

from __future__ import annotations

import asyncio
import io
import time
import zipfile
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowSensorTimeout

from compliance_exports.core.errors import ExportValidationError, FatalError
from compliance_exports.vendors.sailpoint.hook import SailPointHook
from compliance_exports.vendors.sailpoint.operators import (
    SailPointReportOperator,
    SailPointReportToS3Operator,
)
from compliance_exports.vendors.sailpoint.sensors import SailPointReportSensor
from compliance_exports.vendors.sailpoint.triggers import SailPointReportTrigger
from include.simulators import RunningSimulator
from tests.conftest import LocalS3
from tests.integration.conftest import (
    arm,
    configure,
    deferred_trigger,
    requests_seen,
    run_sensor,
    run_trigger,
    use_connection,
)

pytestmark = pytest.mark.integration

IDENTITIES = {"report_type": "IDENTITIES_DETAILS", "arguments": {"correlatedOnly": True}}


def submit(context: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    op = SailPointReportOperator(task_id="submit", **(kwargs or IDENTITIES))
    result: dict[str, Any] = op.execute(context)
    return result


def wait(context: dict[str, Any], job_id: str, **kwargs: Any) -> dict[str, Any]:
    sensor = SailPointReportSensor(task_id="wait", job_id=job_id, poll_interval=0.1, **kwargs)
    result: dict[str, Any] = run_sensor(sensor, context)
    return result


def fetch(
    context: dict[str, Any], submission: dict[str, Any], s3: LocalS3, dataset: str = "identities"
) -> dict[str, Any]:
    op = SailPointReportToS3Operator(
        task_id="fetch",
        submission=submission,
        dataset=dataset,
        bucket=s3.bucket,
        aws_conn_id=s3.conn_id,
    )
    result: dict[str, Any] = op.execute(context)
    return result


def runs(sim: RunningSimulator) -> list[dict[str, Any]]:
    return [r for r in requests_seen(sim, "/run") if r["method"] == "POST"]


@pytest.mark.parametrize(("layout", "prefix"), [("v3", "/v3/reports"), ("unified", "/reports/v1")])
def test_report_lands_in_the_raw_zone_with_either_api_layout(
    sailpoint: RunningSimulator, s3: LocalS3, context: dict[str, Any], layout: str, prefix: str
) -> None:
    use_connection("sailpoint_default", sailpoint, api_layout=layout)
    submission = submit(context)
    assert wait(context, submission["job_id"])["raw_status"] == "SUCCESS"
    raw = fetch(context, submission, s3)
    assert raw["key"].endswith("/dataset=identities/dt=2026-11-20/identities.csv")
    assert s3.read(raw["key"]).count(b"\n") >= 25
    api_paths = {r["path"] for r in requests_seen(sailpoint) if "/oauth/" not in r["path"]}
    assert api_paths
    assert all(path.startswith(prefix) for path in api_paths)


def test_search_export_zip_is_kept_whole(
    sailpoint: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    search = {"query": "*", "indices": ["identities"], "columns": "id,name"}
    submission = submit(context, report_type="SEARCH_EXPORT", arguments=search)
    wait(context, submission["job_id"])
    raw = fetch(context, submission, s3, dataset="search_export")
    assert raw["key"].endswith(".zip")
    with zipfile.ZipFile(io.BytesIO(s3.read(raw["key"]))) as archive:
        assert archive.namelist()


def test_missing_required_argument_is_refused_before_any_request(
    sailpoint: RunningSimulator, context: dict[str, Any]
) -> None:
    with pytest.raises(ExportValidationError, match="sourceName"):
        submit(context, report_type="ACCOUNTS", arguments={"application": "x"})
    assert requests_seen(sailpoint) == []


def test_failed_report_fails_the_sensor(
    sailpoint: RunningSimulator, context: dict[str, Any]
) -> None:
    arm(sailpoint, kind="job_failure")
    with pytest.raises(FatalError, match="FAILURE"):
        wait(context, submit(context)["job_id"])


def report_trigger(context: dict[str, Any], job_id: str) -> SailPointReportTrigger:
    sensor = SailPointReportSensor(task_id="wait", job_id=job_id, poll_interval=0.1)
    trigger = deferred_trigger(sensor, context)
    assert isinstance(trigger, SailPointReportTrigger)
    return trigger


def test_token_expiry_mid_poll_is_refreshed_and_replayed_in_the_triggerer(
    sailpoint: RunningSimulator, context: dict[str, Any]
) -> None:
    configure(sailpoint, latency=1.0)
    try:
        trigger = report_trigger(context, submit(context)["job_id"])
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
    sailpoint: RunningSimulator, context: dict[str, Any]
) -> None:
    configure(sailpoint, latency=1.0)
    try:
        trigger = report_trigger(context, submit(context)["job_id"])
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
    sailpoint: RunningSimulator, context: dict[str, Any]
) -> None:
    arm(sailpoint, kind="never_finish")
    submission = submit(context)
    with pytest.raises(AirflowSensorTimeout, match="cancelled"):
        wait(context, submission["job_id"], timeout=1)
    cancels = [r for r in requests_seen(sailpoint, "/cancel") if r["method"] == "POST"]
    assert [r["path"] for r in cancels] == [f"/v3/reports/{submission['job_id']}/cancel"]


def test_killing_the_deferred_task_cancels_the_report(
    sailpoint: RunningSimulator, context: dict[str, Any]
) -> None:
    arm(sailpoint, kind="never_finish")
    job_id = submit(context)["job_id"]
    trigger = SailPointReportTrigger(
        conn_id="sailpoint_default", job_id=job_id, deadline=time.time() + 60, poll_interval=0.1
    )
    asyncio.run(trigger.on_kill())
    assert requests_seen(sailpoint, f"{job_id}/cancel")
    with pytest.raises(FatalError, match="TERMINATED"):
        wait(context, job_id)


def test_a_second_run_of_a_running_report_follows_the_running_task(
    sailpoint: RunningSimulator,
) -> None:
    arm(sailpoint, kind="never_finish")
    no_store: dict[str, Any] = {}  # no task_state_store: only SailPoint's own rule applies
    first, second = submit(no_store), submit(no_store)
    SailPointHook().cancel_export(first["job_id"])  # leave no running report behind
    assert second["job_id"] == first["job_id"]
    assert len(runs(sailpoint)) == 2


def test_retried_submit_reuses_the_stored_task_without_a_second_run(
    sailpoint: RunningSimulator, context: dict[str, Any]
) -> None:
    first = submit(context)
    assert submit(context)["job_id"] == first["job_id"]
    assert len(runs(sailpoint)) == 1
