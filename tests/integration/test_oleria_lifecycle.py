"""Oleria's durable export task end to end: its simulator over HTTP, the local S3 server.

Each test drives ``OleriaExportOperator`` the way Airflow does (execute, defer to the
trigger, resume), with a shared state store standing in for ``task_state_store``.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from compliance_exports.core.errors import ExportError, ExportValidationError, FatalError
from compliance_exports.core.fetch import TruncatedDownloadError
from compliance_exports.vendors.oleria.operators import OleriaExportOperator
from compliance_exports.vendors.oleria.sensors import OleriaDownloadSensor
from include.simulators import RunningSimulator
from tests.conftest import LocalS3, without_run
from tests.integration.conftest import (
    arm,
    configure,
    deferred_trigger,
    disarm,
    next_try,
    recreate,
    requests_seen,
    run_deferrable,
    run_trigger,
    run_trigger_for,
)

pytestmark = pytest.mark.integration

CONTEXT = "accessInventoryIdentitiesV2"


def operator(s3: LocalS3, **kwargs: Any) -> OleriaExportOperator:
    return OleriaExportOperator(
        task_id="export",
        context=CONTEXT,
        dataset="identities",
        bucket=s3.bucket,
        aws_conn_id=s3.conn_id,
        poll_interval=0.1,
        multipart_chunksize=5 * 1024 * 1024,
        **kwargs,
    )


def export(context: dict[str, Any], s3: LocalS3, **kwargs: Any) -> dict[str, Any]:
    result: dict[str, Any] = run_deferrable(operator(s3, **kwargs), context)
    return result


def posts(oleria: RunningSimulator) -> list[dict[str, Any]]:
    return [r for r in requests_seen(oleria, "/v1/downloads") if r["method"] == "POST"]


def test_export_lands_the_csv_in_the_raw_zone(
    oleria: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    raw = export(context, s3, sort_by=[{"field": "identityName", "sortType": "asc"}])

    body = s3.read(raw["key"])
    assert (
        without_run(raw["key"])
        == "raw/vendor=oleria/dataset=identities/dt=2026-11-20/identities.csv"
    )
    assert raw["size"] == len(body)
    assert raw["sha256"] == hashlib.sha256(body).hexdigest()
    assert body.count(b"\n") == 41  # header + 40 rows
    assert [job["job_id"] for job in raw["jobs"]] == [raw["job_id"]]
    assert raw["request"]["context"] == CONTEXT
    downloads = [r for r in requests_seen(oleria) if "/oleria-downloads/" in r["path"]]
    assert downloads
    assert all("authorization" not in r["headers"] for r in downloads)


def test_bad_filter_fails_before_any_request(
    oleria: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    bad = [{"dataType": "boolean", "field": "isAdmin", "filterType": "gt", "values": [True]}]
    with pytest.raises(ExportValidationError, match=r"params.filterBy\[0\].filterType"):
        export(context, s3, filter_by=bad)
    assert requests_seen(oleria) == []


@pytest.mark.parametrize("cleared", [False, True], ids=["retry", "clear"])
def test_next_try_reattaches_instead_of_submitting_again(
    oleria: RunningSimulator, s3: LocalS3, context: dict[str, Any], cleared: bool
) -> None:
    configure(oleria, latency=1.0)
    try:
        first = deferred_trigger(operator(s3), context)  # the worker dies while deferred
        raw = export(next_try(context, cleared=cleared), s3)
    finally:
        configure(oleria, latency=0.2)
    assert raw["job_id"] == first.job_id
    assert len(posts(oleria)) == 1


def test_fresh_export_submits_once_per_clear_and_retries_reattach(
    oleria: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    first = export(context, s3)
    cleared = next_try(context, cleared=True)
    fresh = export(cleared, s3, fresh_export=True)
    retried = export(next_try(cleared), s3, fresh_export=True)  # a retry of the same Clear
    assert fresh["job_id"] != first["job_id"]
    assert retried["job_id"] == fresh["job_id"]
    assert len(posts(oleria)) == 2


def test_failed_job_is_resubmitted_within_the_same_try(
    oleria: RunningSimulator,
    s3: LocalS3,
    context: dict[str, Any],
    capfd: pytest.CaptureFixture[str],
) -> None:
    arm(oleria, kind="job_failure", count=1)
    raw = export(context, s3)
    failed, resubmitted = raw["jobs"]
    assert failed["ended"] == "failed"
    assert not failed["resubmit"]
    assert resubmitted["resubmit"]
    assert resubmitted["job_id"] == raw["job_id"]
    assert s3.read(raw["key"])
    assert len(posts(oleria)) == 2
    assert "submitting again, resubmit 1 of 1" in "".join(capfd.readouterr())


def test_resubmit_budget_spent_fails_naming_every_job(
    oleria: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    arm(oleria, kind="job_failure", count=3)
    with pytest.raises(FatalError, match="resubmit budget of 1 is spent"):
        export(context, s3)
    assert len(posts(oleria)) == 2


def test_zero_budget_fails_on_the_first_failure(
    oleria: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    arm(oleria, kind="job_failure", count=1)
    with pytest.raises(FatalError, match="budget of 0"):
        export(context, s3, resubmits=0)
    assert len(posts(oleria)) == 1


def test_rate_limit_storm_and_server_errors_are_ridden_out(
    oleria: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    arm(oleria, kind="rate_limit", count=3, retry_after=1, path="/v1/downloads")
    arm(oleria, kind="server_error", count=2, status=503, path="/v1/downloads")
    raw = export(context, s3)
    assert s3.read(raw["key"])
    statuses = [r["status"] for r in requests_seen(oleria, "/v1/downloads")]
    assert statuses.count(429) == 3
    assert statuses.count(503) == 2


def test_submission_answered_500_is_never_sent_twice(
    oleria: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    arm(oleria, kind="server_error", count=1, status=500, path="/v1/downloads")
    with pytest.raises(AirflowFailException, match="may have created a job"):
        export(context, s3)
    assert len(posts(oleria)) == 1


def finish_with_link_faults(
    oleria: RunningSimulator, s3: LocalS3, context: dict[str, Any], expired: int
) -> dict[str, Any]:
    """Wait for the job, then expire the next ``expired`` links minted, then resume."""
    op = operator(s3)
    [event] = run_trigger(deferred_trigger(op, context))
    arm(oleria, kind="expire_url", count=expired)
    return dict(run_deferrable(op, context, resume=("execute_complete", event)))


def test_expired_presigned_url_is_refreshed_by_polling_again(
    oleria: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    raw = finish_with_link_faults(oleria, s3, context, expired=1)
    assert s3.read(raw["key"])
    answers = [r["status"] for r in requests_seen(oleria, "/oleria-downloads/")]
    assert answers == [403, 200]
    assert len(posts(oleria)) == 1


def test_link_that_stays_expired_is_exported_again(
    oleria: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    raw = finish_with_link_faults(oleria, s3, context, expired=3)  # every attempt's link
    assert [job.get("ended") for job in raw["jobs"]] == ["LINK_EXPIRED", None]
    assert len(posts(oleria)) == 2
    assert s3.read(raw["key"])


@pytest.mark.parametrize("kind", ["drop_connection", "truncate"])
def test_broken_download_is_retried_from_the_start_and_never_half_published(
    oleria: RunningSimulator, s3: LocalS3, context: dict[str, Any], kind: str
) -> None:
    configure(oleria, rows=3000)
    try:
        arm(oleria, kind=kind, count=5, after_bytes=2048)
        with pytest.raises(Exception, match="download"):
            export(context, s3)
        assert s3.keys() == []
        disarm(oleria)
        arm(oleria, kind=kind, count=1, after_bytes=2048)
        raw = export(next_try(context), s3)  # one broken attempt, then a whole one
        assert raw["size"] == len(s3.read(raw["key"]))
    finally:
        configure(oleria, rows=40)
    assert len(posts(oleria)) == 1  # the retry re-attached to the finished job


def test_multipart_upload_cut_mid_body_is_aborted_not_published(
    oleria: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    configure(oleria, rows=45_000)  # ~7.5 MB: more than one 5 MB part
    try:
        arm(oleria, kind="truncate", count=3, after_bytes=6 * 1024 * 1024)
        with pytest.raises(TruncatedDownloadError):
            export(context, s3)
    finally:
        configure(oleria, rows=40)
    assert s3.keys() == []
    assert s3.client().list_multipart_uploads(Bucket=s3.bucket).get("Uploads", []) == []


def test_trigger_recreated_mid_wait_resumes_the_same_job(
    oleria: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    configure(oleria, latency=1.5)
    try:
        deferred = deferred_trigger(operator(s3), context)
        polls_before = len(requests_seen(oleria, deferred.job_id))
        first = recreate(deferred)
        assert run_trigger_for(first, seconds=0.5) == []  # the triggerer dies mid-wait
        assert len(requests_seen(oleria, deferred.job_id)) > polls_before
        second = recreate(first)  # another triggerer takes over from the stored kwargs
        events = run_trigger(second)
    finally:
        configure(oleria, latency=0.2)
    assert [e["status"] for e in events] == ["success"]
    assert second.deadline == deferred.deadline
    assert len(posts(oleria)) == 1


def test_token_expiry_while_the_triggerer_polls(
    oleria: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    configure(oleria, latency=1.0)
    try:
        deferred = deferred_trigger(operator(s3), context)
        arm(oleria, kind="token_expiry", count=1, path=deferred.job_id)
        events = run_trigger(deferred)
    finally:
        configure(oleria, latency=0.2)
    assert [e["status"] for e in events] == ["success"]
    polls = [r["status"] for r in requests_seen(oleria, deferred.job_id)]
    assert polls.count(401) == 1


def test_job_that_never_finishes_times_out_at_the_deadline(
    oleria: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    arm(oleria, kind="never_finish")
    with pytest.raises(ExportError, match="not done within wait_timeout"):
        export(context, s3, wait_timeout=1)


def test_sensor_waits_for_a_job_started_elsewhere(
    oleria: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    job_id = deferred_trigger(operator(s3), context).job_id
    sensor = OleriaDownloadSensor(task_id="wait", job_id=job_id, poll_interval=0.1)
    state = run_deferrable(sensor, context)
    assert state["phase"] == "succeeded"
    assert state["download_url"] is None  # a presigned link never goes to XCom


def test_a_long_retry_after_is_waited_out_deferred_not_in_the_worker(
    oleria: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    import datetime as dt

    from airflow.sdk.exceptions import TaskDeferred

    arm(oleria, kind="rate_limit", count=1, retry_after=120, path="/v1/downloads")
    op = operator(s3)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)  # the worker is freed at once instead of sleeping 120 s
    moment = deferred.value.trigger.moment
    assert moment - dt.datetime.now(dt.UTC) > dt.timedelta(seconds=100)
    assert deferred.value.method_name == "resume_after_wait"
    raw = run_deferrable(op, context, resume=("resume_after_wait", {}))  # the timer fired
    assert s3.read(raw["key"])
    assert [r["status"] for r in posts(oleria)] == [429, 201]


def test_a_repolled_link_that_is_the_same_expired_one_is_exported_again(
    oleria: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    """The hostile reading of "re-polling returns a fresh url" (CHOICE): it repeats the
    first url, dead five minutes (here: three seconds) after it was signed."""
    import time

    configure(oleria, fresh_url_per_poll=False, url_ttl=3)
    try:
        op = operator(s3)
        [event] = run_trigger(deferred_trigger(op, context))  # the url is signed now
        time.sleep(3.5)  # ... and dead before the worker gets to it
        raw = run_deferrable(op, context, resume=("execute_complete", event))
    finally:
        configure(oleria, fresh_url_per_poll=True, url_ttl=300)
    assert [job.get("ended") for job in raw["jobs"]] == ["LINK_EXPIRED", None]
    assert len(posts(oleria)) == 2
    assert s3.read(raw["key"])
