"""SailPoint Identity Security Cloud reports: both API layouts, statuses, error bodies.

``api_layout`` (connection extra) picks ``v3`` (``/v3/reports/...``) or ``unified``
(``/reports/v1/...``). ``ReportResults.status`` is absent (or null) while the report
runs, ``SUCCESS | WARNING | FAILURE | TERMINATED`` once done; an empty object means an
unknown task. Errors are ``ErrorResponseDto`` (``messages[].text``), except 401
``{"error"}`` and 429 ``{"message"}``.

"If non-concurrent task is already running then it returns" that task: the spec says
it of the report *type*, so a run may get back someone else's task of the same type
with other arguments. The answer is adopted only if it is ours by every signal it has
(:func:`foreign_reason`): ``reportType``; the arguments where ``attributes`` carries them;
a ``created``/``launched`` time not before our request. "Before our request" is read on
the tenant's own clock where the answer has a ``Date`` header (RFC 9110 makes an origin
server with a clock send it): our task cannot have been created before that Date less the
time the request took, give or take :data:`TENANT_CLOCK_SLACK`. Without a Date, our
clock is used, allowing :data:`CLOCK_SKEW`. A task that is not ours raises
:class:`ForeignJobRunning`: the export task waits it out, never cancels it, and runs the
report again. Cancel is declared for personal access tokens (``userAuth``) only: a 403 on
cancel is logged with that reason and the report is left.

Known limits (the documented API gives no other signal):

* where ``attributes`` does not echo our arguments (the spec does not promise it), a task
  of our report type that someone else started less than :data:`TENANT_CLOCK_SLACK`
  plus the request's duration (and the Date's whole second) before our request reached
  the tenant (less than :data:`CLOCK_SKEW` before we asked, when the answer has no
  ``Date``) cannot be told from ours: it is adopted, and its file, made with the other
  run's arguments, lands as ours. Two exports of one report type with different
  arguments that start within seconds of each other (two registry entries in one DAG
  run, say) are that case: on such a tenant, run them one after the other;
* an argument we leave out is not compared (a tenant may echo its default), so a task
  whose only difference is an optional argument we did not send is adopted;
* a run whose answer was lost (:meth:`~SailPointHook.recover_submission` is not
  overridden) fails the task saying a report may exist: running the report again to get
  "the running task" back would start a second report once the first had finished.

``test_connection`` gets a token and reads the result of a report task that cannot exist
(32 zeros): what an unknown task gets is unpublished, a 404 ``ErrorResponseDto`` or an
empty object, and either comes only to a token the API accepted. Nothing is run.
"""

from __future__ import annotations

import datetime as dt
import email.utils
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
from compliance_exports.core.states import ExportPhase, ExportState, StatusMap, vendor_instant
from compliance_exports.vendors.sailpoint.connection import CONNECTION

LAYOUTS = {"v3": "/v3/reports", "unified": "/reports/v1"}
RUNNING = "RUNNING"  # our word for "no status yet": SailPoint has none
#: a task result id no tenant has: test_connection reads its result
PROBE_ID = "0" * 32
#: How far the tenant's clock may run behind ours before a task "started before we asked"
#: (used only when the answer has no ``Date`` header to read the tenant's clock from)
CLOCK_SKEW = dt.timedelta(minutes=2)
#: How far a task of ours may seem created before the answer's ``Date`` less the request's
#: duration: the tenant's task service and its web front need not share one clock exactly
TENANT_CLOCK_SLACK = dt.timedelta(seconds=5)


class SailPointHook(ExportHook):
    """Talks to SailPoint's report API through a ``sailpoint`` connection."""

    conn_name_attr = "sailpoint_conn_id"
    default_conn_name = "sailpoint_default"
    conn_type = CONNECTION.conn_type
    hook_name = CONNECTION.hook_name
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

    def auth_for(self, conn: Any, base_url: str) -> httpx.Auth:
        extra = conn.extra_dejson
        token_url = urljoin(base_url + "/", extra.get("token_url") or "/oauth/token")
        check_base_url(token_url, allow_insecure_http=extra_flag(extra, "allow_insecure_http"))
        return OAuth2ClientCredentials(
            token_url=token_url,
            client_id=conn.login or "",
            client_secret=conn.password or "",
            error_parser=self.parse_error,
        )

    def probe_call(self) -> ApiCall:
        return ApiCall(
            "GET", f"{self.reports}/{PROBE_ID}/result", params={"completed": "false"}, ok=(200, 404)
        )

    def probe_problem(self, response: httpx.Response) -> str | None:
        body = self.json_or_none(response)
        if response.status_code == 200 and isinstance(body, dict):
            return None  # ReportResults, or the empty object of an unknown task
        if isinstance(body, dict) and ("messages" in body or "detailCode" in body):
            return None  # an ErrorResponseDto: the tenant's "not found"
        return (
            "not a SailPoint ReportResults or ErrorResponseDto: is the host the tenant's API "
            "URL, and api_layout right?"
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
        task = self.json_of(response, "sailpoint reports run")
        tenant_asked = tenant_asked_at(response, asked_at, dt.datetime.now(dt.UTC))
        reason = foreign_reason(task, request, asked_at, tenant_asked=tenant_asked)
        if reason is None and not _echoes_arguments(task, request):
            self.log.info(
                "sailpoint task %s adopted on its report type and times alone: its "
                "attributes do not carry our arguments",
                task.get("id"),
            )
        return reason

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
            details={
                "rows": body.get("rows"),
                "reportType": body.get("reportType"),
                # ReportResults: created + duration (ms) is when the report was produced
                "produced_at": vendor_instant(body.get("created"), body.get("duration"))
                if body.get("status")
                else None,
            },
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
    task: Mapping[str, Any],
    request: Mapping[str, Any],
    asked_at: dt.datetime,
    *,
    tenant_asked: dt.datetime | None = None,
) -> str | None:
    """Why the ``TaskResultDetails`` a run answered with is someone else's, or None.

    Every signal counts, none is required (the spec promises none of them): another
    ``reportType``; an argument of ours that ``attributes`` carries with another value; a
    ``created`` or ``launched`` time before our request: before ``tenant_asked`` (when
    we asked, on the tenant's clock: :func:`tenant_asked_at`) less
    :data:`TENANT_CLOCK_SLACK`, or without it before ``asked_at`` (our clock) less
    :data:`CLOCK_SKEW`.
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
    if tenant_asked is not None:
        limit, clock = tenant_asked - TENANT_CLOCK_SLACK, "on the tenant's clock"
    else:
        limit, clock = asked_at - CLOCK_SKEW, "on our clock"
    for field in ("created", "launched"):
        started = _instant(task.get(field))
        if started is not None and started < limit:
            return f"it was {field} at {started.isoformat()}, before we asked ({clock})"
    return None


def tenant_asked_at(
    response: httpx.Response, asked_at: dt.datetime, answered_at: dt.datetime
) -> dt.datetime | None:
    """The earliest the tenant can have received our request, on its own clock: the
    answer's ``Date`` less the time from asking to the answer (None without a Date)."""
    date = response.headers.get("date")
    if not date:
        return None
    try:
        tenant_now = email.utils.parsedate_to_datetime(date)
    except (TypeError, ValueError):
        return None
    if tenant_now.tzinfo is None:
        tenant_now = tenant_now.replace(tzinfo=dt.UTC)
    return tenant_now - max(answered_at - asked_at, dt.timedelta(0))


def _echoes_arguments(task: Mapping[str, Any], request: Mapping[str, Any]) -> bool:
    """Whether ``attributes`` carries every argument of ours (so they were compared)."""
    attributes = task.get("attributes")
    arguments = request.get("arguments") or {}
    return isinstance(attributes, Mapping) and all(key in attributes for key in arguments)


def _instant(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
