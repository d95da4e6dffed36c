"""Acme audit log exports: connection, bearer API key, paths, status words, errors.

``POST /api/exports {"dataset", "since", "until"}`` answers ``{"job": {"id", "state"}}``;
``GET /api/exports/{id}`` reports ``queued | running | done | error`` (an ``error``
job carries ``{"error": {"code", "message"}}``); ``GET /api/exports/{id}/file`` streams
the CSV. Errors are ``{"error": {"code", "message"}}``. ``GET /api/exports?dataset=..&
since=..&until=..&submitted_after=..`` lists the jobs of a request submitted since a
time: how a submission whose answer was lost is found again (:meth:`recover_submission`).
``test_connection`` (the base's) reads the status of a job that cannot exist: Acme's 404
``{"error"}`` comes only to an accepted key (a wrong one gets 401), and nothing starts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import httpx

from compliance_exports.core.auth import BearerKey
from compliance_exports.core.errors import FatalError
from compliance_exports.core.hooks import ExportHook
from compliance_exports.core.http import ApiCall
from compliance_exports.core.states import ExportPhase, ExportState, StatusMap
from tests.fifth_vendor.connection import CONNECTION

EXPORTS = "/api/exports"
#: a job id Acme never hands out: test_connection reads its status
PROBE_ID = "connection-probe"
#: how far the tenant's clock may run behind ours when we ask for jobs submitted since
CLOCK_SLACK = dt.timedelta(seconds=5)


class AcmeHook(ExportHook):
    """Talks to Acme's audit log export API through an ``acme`` connection."""

    conn_name_attr = "acme_conn_id"
    default_conn_name = "acme_default"
    conn_type = CONNECTION.conn_type  # its connection type, form and names: connection.py
    hook_name = CONNECTION.hook_name
    vendor = "acme"  # must equal AcmeVendor.name: the raw zone's vendor= segment
    status_map = StatusMap(
        "acme",
        {
            "queued": ExportPhase.PENDING,
            "running": ExportPhase.RUNNING,
            "done": ExportPhase.SUCCEEDED,
            "error": ExportPhase.FAILED,
        },
    )

    def auth_for(self, conn: Any, base_url: str) -> httpx.Auth:
        return BearerKey(conn.password or "")

    def probe_call(self) -> ApiCall:
        return ApiCall("GET", f"{EXPORTS}/{PROBE_ID}", ok=(200, 404))

    def probe_problem(self, response: httpx.Response) -> str | None:
        body = self.json_or_none(response)
        if isinstance(body, dict) and isinstance(
            body.get("error" if response.status_code == 404 else "job"), dict
        ):
            return None
        return "not an Acme answer: is the host the Acme API URL?"

    def submit_call(self, request: Mapping[str, Any]) -> ApiCall:
        return ApiCall("POST", EXPORTS, json=dict(request), ok=(200, 201, 202))

    def job_id_of(self, response: httpx.Response) -> str:
        job = self._job(response, f"acme POST {EXPORTS}")
        if not job.get("id"):
            raise FatalError(f"acme POST {EXPORTS}: the answer has no job id")
        return str(job["id"])

    def status_call(self, job_id: str) -> ApiCall:
        return ApiCall("GET", f"{EXPORTS}/{job_id}")

    def state_of(self, job_id: str, response: httpx.Response) -> ExportState:
        job = self._job(response, f"acme GET {EXPORTS}/{job_id}")
        raw = str(job.get("state", ""))
        error = job.get("error")
        return ExportState(
            job_id=job_id,
            phase=self.status_map.phase_of(raw),
            raw_status=raw,
            message=self.error_message({"error": error}) if isinstance(error, dict) else None,
            progress=None if job.get("progress") is None else str(job["progress"]),
        )

    def recover_submission(
        self, request: Mapping[str, Any], asked_at: dt.datetime | None
    ) -> str | None:
        """The one job of ``request`` submitted since we first sent it, if there is one."""
        if asked_at is None:
            return None
        since = (asked_at - CLOCK_SLACK).isoformat()
        params = {
            "dataset": request["dataset"],
            "since": request["since"],
            "until": request["until"],
            "submitted_after": since,
        }
        response = self.get_transport().request(ApiCall("GET", EXPORTS, params=params))
        jobs = self.json_of(response, f"acme GET {EXPORTS}").get("jobs")
        if not isinstance(jobs, list):
            raise FatalError(f"acme GET {EXPORTS}: the answer has no 'jobs' list")
        mine = [job for job in jobs if job.get("include_system") == request["include_system"]]
        if len(mine) != 1:
            self.log.warning(
                "acme: %d jobs of this request since %s: none adopted", len(mine), since
            )
            return None
        return str(mine[0]["id"])

    def download_call(self, state: ExportState, options: Mapping[str, Any]) -> ApiCall:
        return ApiCall(
            "GET", f"{EXPORTS}/{state.job_id}/file", headers={"Accept-Encoding": "identity"}
        )

    def default_filename(self, state: ExportState, options: Mapping[str, Any]) -> str:
        return f"acme-audit-{state.job_id}.csv"

    def error_message(self, body: Mapping[str, Any]) -> str:
        error = body.get("error")
        if not isinstance(error, Mapping):
            return str(body)[:300]
        code, message = error.get("code"), error.get("message")
        return f"{code}: {message}" if code and message else str(message or code or error)

    def _job(self, response: httpx.Response, what: str) -> dict[str, Any]:
        job = self.json_of(response, what).get("job")
        if not isinstance(job, dict):
            raise FatalError(f"{what}: the answer has no 'job' object")
        return job
