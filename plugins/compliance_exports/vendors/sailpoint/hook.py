"""SailPoint Identity Security Cloud reports: both API layouts, statuses, error bodies.

``api_layout`` (connection extra) picks ``v3`` (``/v3/reports/...``) or ``unified``
(``/reports/v1/...``). ``ReportResults.status`` is absent (or null) while the report
runs, ``SUCCESS | WARNING | FAILURE | TERMINATED`` once done; an empty object means an
unknown task. Errors are ``ErrorResponseDto`` (``messages[].text``), except 401
``{"error"}`` and 429 ``{"message"}``.

"If non-concurrent task is already running then it returns" that task: the spec says
it of the report *type*, so a run may get back someone else's task of the same type
with other arguments. The answer is adopted only if it
is ours by every signal it has (``reportType``; the arguments where ``attributes``
carries them; a ``created``/``launched`` time not before our request, allowing for clock
skew); otherwise :class:`ForeignJobRunning`: the export task waits it out, never
cancels it, and runs the report again. Cancel is declared for personal access tokens
(``userAuth``) only: a 403 on cancel is logged with that reason and the report is left.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin

import httpx

from compliance_exports.core.auth import OAuth2ClientCredentials
from compliance_exports.core.errors import ExportValidationError, FatalError
from compliance_exports.core.hooks import (
    ExportHook,
    ExportNotFoundError,
    extra_flag,
)
from compliance_exports.core.http import ApiCall, VendorResponseError, check_base_url
from compliance_exports.core.states import ExportPhase, ExportState, StatusMap

LAYOUTS = {"v3": "/v3/reports", "unified": "/reports/v1"}
RUNNING = "RUNNING"  # our word for "no status yet": SailPoint has none
#: How far the tenant's clock may run behind ours before a task "started before we asked"
CLOCK_SKEW = dt.timedelta(minutes=2)


class SailPointHook(ExportHook):
    """Talks to SailPoint's report API through a ``sailpoint`` connection."""

    conn_name_attr = "sailpoint_conn_id"
    default_conn_name = "sailpoint_default"
    conn_type = "sailpoint"
    hook_name = "SailPoint Identity Security Cloud"
    vendor = "sailpoint"
    can_cancel = True
    status_map = StatusMap(
        "sailpoint",
        {
            RUNNING: ExportPhase.RUNNING,
            "SUCCESS": ExportPhase.SUCCEEDED,
            "WARNING": ExportPhase.SUCCEEDED,
            "FAILURE": ExportPhase.FAILED,
            "TERMINATED": ExportPhase.CANCELLED,
        },
    )

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["schema", "port"],
            "relabeling": {
                "host": "Tenant API URL",
                "login": "Client ID",
                "password": "Client secret",
            },
            "placeholders": {
                "host": "https://<tenant>.api.identitynow.com",
                "extra": '{"api_layout": "v3", "token_url": "<host>/oauth/token", '
                '"allow_insecure_http": false}',
            },
        }

    def auth_for(self, conn: Any, base_url: str) -> httpx.Auth:
        extra = conn.extra_dejson
        token_url = urljoin(base_url + "/", extra.get("token_url") or "/oauth/token")
        check_base_url(token_url, allow_insecure_http=extra_flag(extra, "allow_insecure_http"))
        return OAuth2ClientCredentials(
            token_url=token_url, client_id=conn.login or "", client_secret=conn.password or ""
        )

    @property
    def reports(self) -> str:
        layout = str(self.extra.get("api_layout") or "v3").lower()
        if layout not in LAYOUTS:
            raise ExportValidationError("extra.api_layout", f"{layout!r} is not v3 or unified")
        return LAYOUTS[layout]

    def submit_call(self, request: Mapping[str, Any]) -> ApiCall:
        return ApiCall("POST", f"{self.reports}/run", json=dict(request))

    def job_id_of(self, response: httpx.Response) -> str:
        body = self.json_of(response, "sailpoint reports run")
        if not body.get("id"):
            raise FatalError("sailpoint reports run: the answer has no task id")
        return str(body["id"])

    def foreign_job_reason(
        self, response: httpx.Response, request: Mapping[str, Any], asked_at: dt.datetime
    ) -> str | None:
        """The task SailPoint answered a run with must be ours (module docstring)."""
        return foreign_reason(self.json_of(response, "sailpoint reports run"), request, asked_at)

    def cancel_refusal(self, error: VendorResponseError) -> str | None:
        if error.status_code == 403:
            return (
                "SailPoint declares report cancel for personal access tokens (userAuth) "
                "only; this connection's client is not one, so the report is left running "
                "(use a PAT's client id and secret to let the pipeline cancel)"
            )
        return None

    def status_call(self, job_id: str) -> ApiCall:
        return ApiCall("GET", f"{self.reports}/{job_id}/result", params={"completed": "false"})

    def state_of(self, job_id: str, response: httpx.Response) -> ExportState:
        body = self.json_of(response, f"sailpoint report {job_id} result")
        if not body:
            raise ExportNotFoundError(f"sailpoint knows no report task {job_id}")
        raw = str(body.get("status") or RUNNING)
        return ExportState(
            job_id=job_id,
            phase=self.status_map.phase_of(raw),
            raw_status=raw,
            details={"rows": body.get("rows"), "reportType": body.get("reportType")},
        )

    def cancel_call(self, job_id: str) -> ApiCall:
        return ApiCall("POST", f"{self.reports}/{job_id}/cancel", ok=(200, 202, 204))

    def download_call(self, state: ExportState, options: Mapping[str, Any]) -> ApiCall:
        params = {
            "fileFormat": str(options.get("file_format", "csv")).lower(),
            "auditable": "false",
        }
        if options.get("name"):
            params["name"] = str(options["name"])
        return ApiCall(
            "GET",
            f"{self.reports}/{state.job_id}",
            params=params,
            headers={"Accept-Encoding": "identity"},
        )

    def default_filename(self, state: ExportState, options: Mapping[str, Any]) -> str:
        return f"report_{state.job_id}.{str(options.get('file_format', 'csv')).lower()}"

    def error_message(self, body: Mapping[str, Any]) -> str:
        texts = [m.get("text", "") for m in body.get("messages") or [] if isinstance(m, dict)]
        message = "; ".join(t for t in texts if t) or body.get("error") or body.get("message")
        code = body.get("detailCode")
        text = str(message or body).strip()
        return f"{code}: {text}" if code else text


def foreign_reason(
    task: Mapping[str, Any], request: Mapping[str, Any], asked_at: dt.datetime
) -> str | None:
    """Why the ``TaskResultDetails`` a run answered with is someone else's, or None.

    Every signal counts, none is required (the spec promises none of them): another
    ``reportType``; an argument of ours that ``attributes`` carries with another value; a
    ``created`` or ``launched`` time before our request (beyond :data:`CLOCK_SKEW`).
    """
    ours = request.get("reportType")
    theirs = task.get("reportType")
    if theirs and ours and str(theirs) != str(ours):
        return f"it runs report type {theirs}, we asked for {ours}"
    attributes = task.get("attributes")
    if isinstance(attributes, Mapping):
        for key, value in (request.get("arguments") or {}).items():
            if key in attributes and attributes[key] != value:
                return f"its argument {key}={attributes[key]!r}, ours {value!r}"
    for field in ("created", "launched"):
        started = _instant(task.get(field))
        if started is not None and started < asked_at - CLOCK_SKEW:
            return f"it was {field} at {started.isoformat()}, before we asked"
    return None


def _instant(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
