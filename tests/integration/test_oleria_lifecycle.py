"""Oleria end to end against its simulator over HTTP and the local S3 server."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from compliance_exports.core.errors import ExportValidationError, FatalError
from compliance_exports.core.fetch import TruncatedDownloadError
from compliance_exports.vendors.oleria.operators import (
    OleriaDownloadOperator,
    OleriaDownloadToS3Operator,
)
from compliance_exports.vendors.oleria.sensors import OleriaDownloadSensor
from include.simulators import RunningSimulator
from tests.conftest import LocalS3
from tests.integration.conftest import (
    arm,
    configure,
    deferred_trigger,
    disarm,
    recreate,
    requests_seen,
    run_sensor,
    run_trigger,
    run_trigger_for,
)

pytestmark = pytest.mark.integration

CONTEXT = "accessInventoryIdentitiesV2"


def submit(context: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    op = OleriaDownloadOperator(task_id="submit", context=CONTEXT, **kwargs)
    result: dict[str, Any] = op.execute(context)
    return result


def wait_sensor(job_id: str, **kwargs: Any) -> OleriaDownloadSensor:
    return OleriaDownloadSensor(task_id="wait", job_id=job_id, poll_interval=0.1, **kwargs)


def wait(context: dict[str, Any], job_id: str, **kwargs: Any) -> dict[str, Any]:
    result: dict[str, Any] = run_sensor(wait_sensor(job_id, **kwargs), context)
    return result


def fetch(context: dict[str, Any], submission: dict[str, Any], s3: LocalS3) -> dict[str, Any]:
    op = OleriaDownloadToS3Operator(
        task_id="fetch",
        submission=submission,
        dataset="identities",
        bucket=s3.bucket,
        aws_conn_id=s3.conn_id,
        multipart_chunksize=5 * 1024 * 1024,
    )
    result: dict[str, Any] = op.execute(context)
    return result


def test_submit_wait_fetch_lands_the_csv_in_the_raw_zone(
    oleria: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    submission = submit(
        context, filter_by=[], sort_by=[{"field": "identityName", "sortType": "asc"}]
    )
    state = wait(context, submission["job_id"])
    raw = fetch(context, submission, s3)

    assert state["phase"] == "succeeded"
    assert state["download_url"] is None
    body = s3.read(raw["key"])
    assert raw["key"] == "raw/vendor=oleria/dataset=identities/dt=2026-11-20/identities.csv"
    assert raw["size"] == len(body)
    assert raw["sha256"] == hashlib.sha256(body).hexdigest()
    assert body.count(b"\n") == 41  # header + 40 rows
    downloads = [r for r in requests_seen(oleria) if "/oleria-downloads/" in r["path"]]
    assert downloads
    assert all("authorization" not in r["headers"] for r in downloads)


def test_bad_filter_fails_before_any_request(
    oleria: RunningSimulator, context: dict[str, Any]
) -> None:
    bad = [{"dataType": "boolean", "field": "isAdmin", "filterType": "gt", "values": [True]}]
    with pytest.raises(ExportValidationError, match=r"params.filterBy\[0\].filterType"):
        submit(context, filter_by=bad)
    assert requests_seen(oleria) == []


def test_retried_submit_reattaches_instead_of_submitting_again(
    oleria: RunningSimulator, context: dict[str, Any]
) -> None:
    first = submit(context)
    second = submit(context)  # the same task instance, next try: same state store
    assert second["job_id"] == first["job_id"]
    assert len([r for r in requests_seen(oleria, "/v1/downloads") if r["method"] == "POST"]) == 1


def test_failed_job_fails_the_sensor_with_the_vendor_message(
    oleria: RunningSimulator, context: dict[str, Any]
) -> None:
    arm(oleria, kind="job_failure")
    submission = submit(context)
    with pytest.raises(FatalError, match="failed"):
        wait(context, submission["job_id"])


def test_failed_job_is_resubmitted_on_retry(
    oleria: RunningSimulator, context: dict[str, Any]
) -> None:
    arm(oleria, kind="job_failure")
    first = submit(context)
    with pytest.raises(FatalError):
        wait(context, first["job_id"])
    second = submit(context)
    assert second["job_id"] != first["job_id"]


def test_rate_limit_storm_and_server_errors_are_ridden_out(
    oleria: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    arm(oleria, kind="rate_limit", count=3, retry_after=1, path="/v1/downloads")
    arm(oleria, kind="server_error", count=2, status=503, path="/v1/downloads")
    submission = submit(context)
    wait(context, submission["job_id"])
    raw = fetch(context, submission, s3)
    assert s3.read(raw["key"])
    statuses = [r["status"] for r in requests_seen(oleria, "/v1/downloads")]
    assert statuses.count(429) == 3
    assert statuses.count(503) == 2


def test_expired_presigned_url_is_refreshed_by_polling_again(
    oleria: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    submission = submit(context)
    wait(context, submission["job_id"])
    arm(oleria, kind="expire_url", count=1)
    raw = fetch(context, submission, s3)
    assert s3.read(raw["key"])
    answers = [r["status"] for r in requests_seen(oleria, "/oleria-downloads/")]
    assert answers == [403, 200]


@pytest.mark.parametrize("kind", ["drop_connection", "truncate"])
def test_broken_download_is_retried_from_the_start_and_never_half_published(
    oleria: RunningSimulator, s3: LocalS3, context: dict[str, Any], kind: str
) -> None:
    configure(oleria, rows=3000)
    try:
        submission = submit(context)
        wait(context, submission["job_id"])
        arm(oleria, kind=kind, count=5, after_bytes=2048)
        with pytest.raises(Exception, match="download"):
            fetch(context, submission, s3)
        assert s3.keys() == []
        disarm(oleria)
        arm(oleria, kind=kind, count=1, after_bytes=2048)
        raw = fetch(context, submission, s3)  # one broken attempt, then a whole one
        assert raw["size"] == len(s3.read(raw["key"]))
    finally:
        configure(oleria, rows=40)


def test_multipart_upload_cut_mid_body_is_aborted_not_published(
    oleria: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    configure(oleria, rows=45_000)  # ~7.5 MB: more than one 5 MB part
    try:
        submission = submit(context)
        wait(context, submission["job_id"])
        arm(oleria, kind="truncate", count=3, after_bytes=6 * 1024 * 1024)
        with pytest.raises(TruncatedDownloadError):
            fetch(context, submission, s3)
    finally:
        configure(oleria, rows=40)
    assert s3.keys() == []
    assert s3.client().list_multipart_uploads(Bucket=s3.bucket).get("Uploads", []) == []


def test_trigger_recreated_mid_wait_resumes_the_same_job(
    oleria: RunningSimulator, context: dict[str, Any]
) -> None:
    configure(oleria, latency=1.5)
    try:
        submission = submit(context)
        deferred = deferred_trigger(wait_sensor(submission["job_id"]), context)
        polls_before = len(requests_seen(oleria, submission["job_id"]))
        first = recreate(deferred)
        assert run_trigger_for(first, seconds=0.5) == []  # the triggerer dies mid-wait
        assert len(requests_seen(oleria, submission["job_id"])) > polls_before
        second = recreate(first)  # another triggerer takes over from the stored kwargs
        events = run_trigger(second)
    finally:
        configure(oleria, latency=0.2)
    assert [e["status"] for e in events] == ["success"]
    assert second.deadline == deferred.deadline
    assert len([r for r in requests_seen(oleria, "/v1/downloads") if r["method"] == "POST"]) == 1


def test_token_expiry_while_the_triggerer_polls(
    oleria: RunningSimulator, context: dict[str, Any]
) -> None:
    configure(oleria, latency=1.0)
    try:
        submission = submit(context)
        deferred = deferred_trigger(wait_sensor(submission["job_id"]), context)
        arm(oleria, kind="token_expiry", count=1, path=submission["job_id"])
        events = run_trigger(deferred)
    finally:
        configure(oleria, latency=0.2)
    assert [e["status"] for e in events] == ["success"]
    polls = [r["status"] for r in requests_seen(oleria, submission["job_id"])]
    assert polls.count(401) == 1


def test_job_that_never_finishes_times_out_at_the_deadline(
    oleria: RunningSimulator, context: dict[str, Any]
) -> None:
    arm(oleria, kind="never_finish")
    submission = submit(context)
    from airflow.sdk.exceptions import AirflowSensorTimeout

    with pytest.raises(AirflowSensorTimeout):
        wait(context, submission["job_id"], timeout=1)
