"""Veza's durable export task end to end: its simulator over HTTP, the local S3 server."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from airflow.sdk.exceptions import TaskDeferred

from compliance_exports.core.errors import ExportValidationError, FatalError
from compliance_exports.core.ledger import request_fingerprint
from compliance_exports.vendors.veza.operators import VezaAccessReviewExportOperator
from compliance_exports.vendors.veza.sensors import VezaAccessReviewExportSensor
from include.simulators import RunningSimulator
from tests.conftest import LocalS3, without_run
from tests.integration.conftest import (
    MemoryStateStore,
    arm,
    configure,
    deferred_trigger,
    next_try,
    requests_seen,
    run_deferrable,
    run_trigger,
)

pytestmark = pytest.mark.integration


def operator(s3: LocalS3, **kwargs: Any) -> VezaAccessReviewExportOperator:
    kwargs.setdefault("certification_id", "cert-2026-q4")
    return VezaAccessReviewExportOperator(
        task_id="export",
        dataset="access_review",
        bucket=s3.bucket,
        aws_conn_id=s3.conn_id,
        poll_interval=0.1,
        **kwargs,
    )


def export(context: dict[str, Any], s3: LocalS3, **kwargs: Any) -> dict[str, Any]:
    result: dict[str, Any] = run_deferrable(operator(s3, **kwargs), context)
    return result


def start(context: dict[str, Any], s3: LocalS3, **kwargs: Any) -> str:
    """Submit an export in a task of its own (its own state store); return its id."""
    own = {**context, "task_state_store": MemoryStateStore()}
    job_id: str = deferred_trigger(operator(s3, **kwargs), own).job_id
    return job_id


def posts(sim: RunningSimulator) -> int:
    return len([r for r in requests_seen(sim, ":create") if r["method"] == "POST"])


def test_xlsx_export_lands_whole_in_the_raw_zone(
    veza: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    raw = export(context, s3, format=6, title="Q4 review", filter='source.type eq "User"')
    body = s3.read(raw["key"])
    assert without_run(raw["key"]).endswith(
        "/dataset=access_review/dt=2026-11-20/access_review.xlsx"
    )
    assert body[:2] == b"PK"  # an XLSX is a zip
    assert raw["sha256"] == hashlib.sha256(body).hexdigest()


def test_title_on_a_csv_export_is_refused_before_any_request(
    veza: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    with pytest.raises(ExportValidationError, match="title"):
        export(context, s3, format=0, title="not for CSV")
    assert requests_seen(veza) == []


@pytest.mark.parametrize(("id_field", "prefixed"), [("export_id", True), ("id", False)])
def test_envelope_alternatives_are_understood(
    veza: RunningSimulator, s3: LocalS3, context: dict[str, Any], id_field: str, prefixed: bool
) -> None:
    configure(veza, id_field=id_field, status_prefix=prefixed)
    try:
        raw = export(context, s3)
    finally:
        configure(veza, id_field="id", status_prefix=False)
    assert s3.read(raw["key"])


def test_failed_export_is_created_again_and_lands(
    veza: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    arm(veza, kind="job_failure", count=1)
    raw = export(context, s3)
    assert [job.get("ended") for job in raw["jobs"]] == ["FAILED", None]
    assert posts(veza) == 2


def test_failed_export_with_no_budget_fails_with_the_vendor_message(
    veza: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    arm(veza, kind="job_failure")
    with pytest.raises(FatalError, match="ended FAILED"):
        export(context, s3, resubmits=0)


def test_expired_export_is_exported_again_deferred(
    veza: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    op = operator(s3)
    [event] = run_trigger(deferred_trigger(op, context))
    arm(veza, kind="veza_expired", count=1)  # the file is gone before the download
    with pytest.raises(TaskDeferred) as again:  # the re-export waits in the triggerer
        op.execute_complete(context, event)
    raw = run_deferrable(
        op, context, resume=("execute_complete", run_trigger(again.value.trigger)[0])
    )
    assert raw["job_id"] == again.value.trigger.job_id != event["job_id"]
    assert [job.get("ended") for job in raw["jobs"]] == ["EXPIRED", None]
    assert s3.read(raw["key"])
    assert posts(veza) == 2


def test_export_expiring_between_check_and_download_is_exported_again(
    veza: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    op = operator(s3)
    [event] = run_trigger(deferred_trigger(op, context))
    arm(veza, kind="veza_expired", count=1, path=":download$")
    raw = run_deferrable(op, context, resume=("execute_complete", event))
    assert raw["job_id"] != event["job_id"]
    assert s3.read(raw["key"])
    downloads = [r["status"] for r in requests_seen(veza, ":download")]
    assert downloads == [400, 200]


def test_retry_reattaches_to_the_finished_export(
    veza: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    first = export(context, s3)
    assert export(next_try(context), s3)["job_id"] == first["job_id"]
    assert posts(veza) == 1


def test_rate_limit_in_http_date_form_is_honoured(
    veza: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    arm(veza, kind="rate_limit", count=2, retry_after=1, retry_after_form="http-date")
    assert s3.read(export(context, s3)["key"])
    assert [r["status"] for r in requests_seen(veza)].count(429) == 2


def test_a_stored_job_the_vendor_forgot_is_submitted_anew(
    veza: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    op = operator(s3)
    fingerprint = request_fingerprint(op.build_request())
    context["task_state_store"].set(
        op.ledger_key, {"job_id": "purged-export", "request_sha256": fingerprint}
    )
    raw = run_deferrable(op, context)
    assert raw["job_id"] != "purged-export"
    assert raw["jobs"][0] == {**raw["jobs"][0], "job_id": "purged-export", "ended": "UNKNOWN"}
    assert posts(veza) == 1


def test_poke_mode_sensor_waits_in_the_worker(
    veza: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    sensor = VezaAccessReviewExportSensor(
        task_id="wait", job_id=start(context, s3), deferrable=False, poke_interval=0.1, timeout=30
    )
    assert sensor.execute(context)["raw_status"] == "FINISHED"


def test_triggers_of_two_connections_share_one_client_yet_send_their_own_keys(
    veza: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    """Many waits on one loop lease one pooled client; each request carries its own auth."""
    import asyncio
    import json
    import os
    import time

    from compliance_exports.core.http import SHARED_ASYNC_CLIENTS
    from compliance_exports.vendors.veza.triggers import VezaAccessReviewExportTrigger

    jobs = [start(context, s3, certification_id=f"cert-{n}") for n in range(6)]
    wrong = {**veza.connection(), "password": "not-the-key"}
    os.environ["AIRFLOW_CONN_VEZA_WRONG_KEY"] = json.dumps(wrong)
    deadline = time.time() + 60

    def trigger(conn_id: str, job_id: str) -> VezaAccessReviewExportTrigger:
        return VezaAccessReviewExportTrigger(
            conn_id=conn_id, job_id=job_id, deadline=deadline, poll_interval=0.1
        )

    async def wait_all() -> tuple[list[dict[str, Any]], int, int]:
        async def only_event(t: VezaAccessReviewExportTrigger) -> dict[str, Any]:
            (event,) = [event.payload async for event in t.run()]
            return event

        waits = [trigger("veza_default", job) for job in jobs]
        waits.append(trigger("veza_wrong_key", jobs[0]))
        tasks = [asyncio.create_task(only_event(t)) for t in waits]
        # until the first poll leased the client (a loaded machine may take longer than a
        # fixed pause), then count what the waits share
        for _ in range(1000):  # up to 10 s
            if SHARED_ASYNC_CLIENTS.open_clients():
                break
            await asyncio.sleep(0.01)
        while_waiting = SHARED_ASYNC_CLIENTS.open_clients()
        events = await asyncio.gather(*tasks)
        return events, while_waiting, SHARED_ASYNC_CLIENTS.open_clients()

    try:
        events, while_waiting, after = asyncio.run(wait_all())
    finally:
        del os.environ["AIRFLOW_CONN_VEZA_WRONG_KEY"]

    assert while_waiting == 1  # seven triggers, two connections, one API origin
    assert after == 0  # the last trigger to finish closed it
    assert [e["status"] for e in events[:-1]] == ["success"] * len(jobs)
    assert events[-1]["status"] == "error"
    assert "401" in events[-1]["message"]  # the wrong key was sent, not the right one
