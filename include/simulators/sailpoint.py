"""SailPoint Identity Security Cloud reports API simulator (CSV, PDF, zip of CSVs).

Our own reading of the vendor's docs (``sailpoint-oss/api-specs`` ``idn/sailpoint-api.v3.yaml``
and VENDOR_APIS.md section 3); the report types and argument rules are in
:mod:`include.simulators.sailpoint_reports`. DOC:

* ``POST /oauth/token`` client credentials (form body, query string or HTTP Basic) ->
  ``{access_token, token_type: "bearer", expires_in: 749, ...}``; an expired token is
  answered 401 ``{"error": "JWT validation failed: JWT is expired"}``;
* the reports API under ``/v3/reports/...`` and the unified ``/reports/v1/...`` layout,
  both from one root (there is no ``/v3/task-status``): ``POST run`` -> 200
  ``TaskResultDetails``; "If non-concurrent task is already running then it returns" that
  task: by default any running task of the same report type, whatever its arguments;
  ``GET {id}/result`` -> ``ReportResults`` (no ``status`` while running);
  ``GET {id}?fileFormat=csv|pdf&name=..`` -> the file (``application/csv`` /
  ``application/pdf``, ``Content-disposition: attachment;filename="..."``);
  ``POST {id}/cancel`` -> 204 (and only 204/400/401/403/429/500);
* SEARCH_EXPORT's file is a zip of CSVs (one per index: CHOICE), streamed;
* 100 requests per token per 10 s, then 429 ``{"message": " Rate Limit Exceeded "}``
  with ``Retry-After``; ``ErrorResponseDto`` bodies for 400/403/404/500.

Our CHOICES, each a field of :class:`SailPointSettings` (patchable at ``/_sim/config``;
:data:`HOSTILE` sets each to its least convenient alternative): which running task a run
gets back (``running_task_match``: same report type, or same arguments too); which client
ids are personal access tokens (``pat_clients``) and whether cancel is refused 403 to API
clients (``cancel_requires_pat``); an unknown task's result (``unknown_result``: 404
ErrorResponseDto or ``{}``); the Content-Type of SEARCH_EXPORT's zip (``zip_content_type``:
``application/zip`` or ``application/csv``) and whether its member CSVs differ in header
(``zip_member_headers``); the file asked for before the task is done is a 400 (or 404)
(``file_before_done_status``); the task ``type`` (``task_type``); how a healthy task ends
(``healthy_completion``: SUCCESS or WARNING) and a failed one (``failed_completion``: ERROR
or TEMP_ERROR, both ``FAILURE`` results); report types listed in ``forbidden_report_types``
are refused with 403; whether a task's ``attributes`` echo its arguments
(``echo_arguments``: the spec does not promise it); what an accepted cancel does
(``cancel_outcome``: the task ends TERMINATED, ends ERROR, is gone, or runs on to its own
end); whether the first run of each report type finds someone else's task of that type
running (``foreign_task_at_first_run``: other arguments, another launcher, started
``foreign_task_age`` seconds earlier). Not settings: an unknown or malformed token is 401
``{"error": "JWT validation failed: JWT is invalid"}``; a cancel of an unknown task is a
400. Column names are unpublished: ours are in :data:`REPORT_COLUMNS`
(IDENTITIES_DETAILS as VENDOR_APIS.md chose them); a SEARCH_EXPORT has its ``columns``
argument (or its index's default columns). A task ended ERROR or TERMINATED has no file
(404). Job timing: ``latency`` is seconds from launch to completion (with ``latency_max``:
drawn from that range by the seeded random), and ``latency_by_report`` overrides it per
report type with a number or a ``[low, high]``; ``rows`` / ``rows_by_report`` size the
reports.

Every answer is also logged (bounded) for the tests' OpenAPI check: ``GET /_sim/responses``
(:mod:`include.simulators.sailpoint_responses`).

Faults (``base.FaultInjector``): ``rate_limit`` (429, Retry-After in seconds or HTTP-date
form), ``server_error`` (``status``, ErrorResponseDto), ``job_failure`` (the next run
ends ``ERROR`` with an error message, its result ``FAILURE``), ``never_finish`` (the next
run stays running until cancelled, for good with ``cancel_outcome="runs_on"``),
``drop_connection`` (the download stops after ``after_bytes`` and the connection is
closed), ``truncate`` (a ``Content-Length`` larger than the ``after_bytes`` sent),
``token_expiry`` (a valid token answered 401 as expired, and from then on expired).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import io
import json
import math
import random
import re
import secrets
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, Literal

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from include.simulators import RunningSimulator
from include.simulators.base import (
    Fault,
    FaultInjector,
    SimState,
    SimulatorServer,
    install_common,
    new_state,
)
from include.simulators.data import (
    APPLICATIONS,
    DEPARTMENTS,
    Column,
    Dataset,
    Row,
    RowRandom,
    csv_chunks,
    download_response,
    rendered,
)
from include.simulators.pdf import write_table_pdf
from include.simulators.sailpoint_reports import (
    INDEX_NAMES,
    TASK_KINDS,
    ArgumentError,
    SimReport,
    checked_run,
    download_format,
    other_arguments,
)
from include.simulators.sailpoint_responses import install_response_log

EXPIRED_TOKEN = {"error": "JWT validation failed: JWT is expired"}
INVALID_TOKEN = {"error": "JWT validation failed: JWT is invalid"}
RATE_LIMITED = {"message": " Rate Limit Exceeded "}
LAYOUTS = {"v3": "/v3/reports", "unified": "/reports/v1"}
SPOOL_BYTES = 4 * 1024 * 1024
DOWNLOAD_CHUNK = 64 * 1024


RunningTaskMatch = Literal["report_type", "same_arguments"]
UnknownResult = Literal["not_found", "empty"]
ZipContentType = Literal["application/zip", "application/csv"]
ZipMemberHeaders = Literal["same", "per_index"]
CancelOutcome = Literal["terminated", "error", "removed", "runs_on"]
CANCEL_OUTCOMES: tuple[str, ...] = ("terminated", "error", "removed", "runs_on")
#: The launcher of the running task someone else started (``foreign_task_at_first_run``).
FOREIGN_LAUNCHER = "another-team-client"


@dataclass
class SailPointSettings:
    """Runtime behaviour of the simulator; every field can be patched at ``/_sim/config``.

    The CHOICE settings (the spec leaves the behaviour open): ``running_task_match``,
    ``pat_clients`` with ``cancel_requires_pat``, ``unknown_result``, ``zip_content_type``,
    ``zip_member_headers``, ``file_before_done_status``, ``task_type``,
    ``healthy_completion``, ``failed_completion``, ``forbidden_report_types``,
    ``echo_arguments``, ``cancel_outcome``, ``foreign_task_at_first_run``.
    """

    client_id: str = "sailpoint-sim-client"  # an API client (applicationAuth)
    client_secret: str = "sailpoint-sim-secret"  # noqa: S105 - the simulator's own test secret
    # CHOICE: personal access tokens (userAuth): client id -> secret, accepted at /oauth/token
    # beside the API client above; a token issued to one of these ids is a PAT token
    pat_clients: dict[str, str] = field(default_factory=dict)
    # CHOICE: cancel is declared for userAuth only: True refuses it (403) to API clients
    cancel_requires_pat: bool = False
    token_ttl: float = 749.0  # seconds, the token's expires_in
    rate_limit: int = 100  # requests per token per window
    rate_window: float = 10.0  # seconds
    rows: int = 200  # rows per report (per index CSV for SEARCH_EXPORT)
    rows_by_report: dict[str, int] = field(default_factory=dict)
    latency: float = 0.3  # seconds from launch to completion
    latency_max: float | None = None  # set: latency drawn (seeded) from [latency, latency_max]
    # report type -> seconds, or [low, high] drawn from the seeded random
    latency_by_report: dict[str, float | list[float]] = field(default_factory=dict)
    task_type: str = "QUARTZ"
    healthy_completion: Literal["SUCCESS", "WARNING"] = "SUCCESS"
    failed_completion: Literal["ERROR", "TEMP_ERROR"] = "ERROR"  # a job_failure task
    file_before_done_status: int = 400  # 400 or 404
    forbidden_report_types: list[str] = field(default_factory=list)
    # DOC default (the hostile reading): a run of a report type that has a running task gets
    # that task back whatever its arguments; CHOICE "same_arguments": only identical arguments
    running_task_match: RunningTaskMatch = "report_type"
    # CHOICE: the result of an unknown task id: 404 ErrorResponseDto, or an empty object
    unknown_result: UnknownResult = "not_found"
    # CHOICE: the Content-Type SEARCH_EXPORT's zip is served with (the spec lists csv/pdf only)
    zip_content_type: ZipContentType = "application/zip"
    # CHOICE: "per_index" gives each member CSV of the zip its own header (different columns)
    zip_member_headers: ZipMemberHeaders = "same"
    # CHOICE: a task's ``attributes`` echo its arguments (the spec does not promise it);
    # False: ``attributes`` is an empty object, so a run's answer never shows its arguments
    echo_arguments: bool = True
    # CHOICE: what an accepted cancel (204) does to a running task. "terminated": it ends
    # TERMINATED (the inference); "error": it ends ERROR (a FAILURE result); "removed": it is
    # gone (its id is unknown from then on); "runs_on": nothing visible, it runs to its end
    cancel_outcome: CancelOutcome = "terminated"
    # CHOICE: the first run of each report type (while this is on) finds someone else's task
    # of that type running: other arguments, launcher FOREIGN_LAUNCHER, created and launched
    # foreign_task_age seconds earlier; it ends like any task (latency) from then on
    foreign_task_at_first_run: bool = False
    foreign_task_age: float = 600.0  # seconds before that first run

    def __post_init__(self) -> None:
        if self.task_type not in TASK_KINDS:
            raise ValueError(f"task_type {self.task_type!r} is not one of {TASK_KINDS}")
        if self.file_before_done_status not in (400, 404):
            raise ValueError("file_before_done_status must be 400 or 404")
        if self.token_ttl <= 0 or self.rate_limit <= 0 or self.rate_window <= 0:
            raise ValueError("token_ttl, rate_limit and rate_window must be positive")
        if self.cancel_outcome not in CANCEL_OUTCOMES:
            raise ValueError(
                f"cancel_outcome {self.cancel_outcome!r} is not one of {CANCEL_OUTCOMES}"
            )
        if self.foreign_task_age < 0:
            raise ValueError("foreign_task_age must be >= 0 seconds")

    def is_pat(self, client_id: str) -> bool:
        """Whether ``client_id``'s tokens are personal access tokens (userAuth)."""
        return client_id in self.pat_clients

    def known_client(self, client_id: str, secret: str) -> bool:
        if (client_id, secret) == (self.client_id, self.client_secret):
            return True
        return client_id in self.pat_clients and self.pat_clients[client_id] == secret

    def rows_for(self, report: str) -> int:
        return int(self.rows_by_report.get(report, self.rows))

    def latency_for(self, report: str, rng: random.Random) -> float:
        """Seconds the next task of ``report`` runs (drawn from ``rng`` for a range)."""
        spec = self.latency_by_report.get(report)
        if spec is None:
            spec = self.latency if self.latency_max is None else [self.latency, self.latency_max]
        if isinstance(spec, int | float):
            return float(spec)
        low, high = (float(x) for x in spec)
        if not 0 <= low <= high:
            raise ValueError(f"latency range {spec!r} of {report} is not [low, high]")
        return rng.uniform(low, high)


HOSTILE: dict[str, Any] = {
    # a run of a report type already running gets that (possibly foreign) task back
    "running_task_match": "report_type",
    # cancel is declared for userAuth only: an API client's cancel is refused with 403
    "cancel_requires_pat": True,
    # an unknown task id's result is an empty object, not a 404 naming the problem
    "unknown_result": "empty",
    # SEARCH_EXPORT's zip is served as application/csv, the only type the spec lists for it
    "zip_content_type": "application/csv",
    # the zip's member CSVs differ in header: one table per index, not one table
    "zip_member_headers": "per_index",
    # asking for the file before the task is done is a 404 (looks like an unknown task)
    "file_before_done_status": 404,
    # a healthy task ends WARNING (with a message), not SUCCESS
    "healthy_completion": "WARNING",
    # a failed task ends TEMP_ERROR, not ERROR
    "failed_completion": "TEMP_ERROR",
    # the task type is the least common one of the enum
    "task_type": "QUEUED_TASK",
    # a task's attributes carry none of its arguments: only its type and times tell whose it is
    "echo_arguments": False,
    # an accepted cancel (204) changes nothing visible: the task runs on to its own end
    "cancel_outcome": "runs_on",
    # the first run of each report type meets someone else's running task of that type
    "foreign_task_at_first_run": True,
}
"""Settings that set every SailPoint CHOICE to its least convenient documented-compatible
alternative (the unified ``/reports/v1`` layout needs no setting: both layouts are always
served from one root, and the client picks one with its ``api_layout`` connection extra)."""


# --------------------------------------------------------------------------- report rows

IDENTITY_PROFILES = ("Employees", "Contractors", "Service Accounts", "Partners")
LIFECYCLE_STATES = ("active", "inactive", "prehire", "terminated", "leave")
SOURCES = ("Active Directory", "Workday", "Okta", "ServiceNow", "SAP, HR")
IDENTITY_ERRORS = (
    "Attribute 'email' could not be computed",
    'Transform "Manager Lookup" returned no value',
    "Multiple accounts correlate to this identity",
    "Identity attribute exceeds 450 characters, truncated",
)


def _identity(r: RowRandom, index: int) -> Row:
    first, last = r.person()
    created = r.timestamp()
    return {
        "Identity ID": r.hex_id(),
        "Name": f"{first}.{last}".lower().replace(" ", "") + str(index),
        "Display Name": r.full_name(first, last),
        "First Name": first,
        "Last Name": last,
        "Email": r.maybe(r.email(first, last, index), blank=0.04),
        "Manager": r.maybe(r.full_name(*r.person()), blank=0.15),
        "Lifecycle State": r.choice(LIFECYCLE_STATES),
        "Identity Profile": r.choice(IDENTITY_PROFILES),
        "Authoritative Source": r.choice(SOURCES),
        "Created": created,
        "Modified": r.maybe(r.later(created, within=dt.timedelta(days=300)), blank=0.1),
        "Correlated": r.chance(0.85),
        "Access Count": r.between(0, 250),
        "Account Count": r.between(0, 12),
        "Department": r.maybe(r.choice(DEPARTMENTS), blank=0.08),
        "Employee Number": r.digits(7),
        "Error": r.choice(IDENTITY_ERRORS),
    }


def _account(r: RowRandom, index: int) -> Row:
    first, last = r.person()
    created = r.timestamp()
    return {
        "Account ID": r.hex_id(),
        "Account Name": f"{first[0]}{last}".lower().replace(" ", "") + r.digits(3),
        "Display Name": r.full_name(first, last),
        "Native Identity": f"CN={last}\\, {first},OU=Users,DC=corp,DC=example,DC=com",
        "Source Name": r.choice(SOURCES),
        "Application": r.choice(APPLICATIONS),
        "Identity ID": r.maybe(r.hex_id(), blank=0.2),
        "Identity Name": r.maybe(r.full_name(first, last), blank=0.2),
        "Disabled": r.chance(0.1),
        "Locked": r.chance(0.03),
        "Entitlement Count": r.between(0, 60),
        "Created": created,
        "Modified": r.maybe(r.later(created, within=dt.timedelta(days=300)), blank=0.1),
    }


REPORT_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "IDENTITIES_DETAILS": (
        "Identity ID",
        "Name",
        "Display Name",
        "First Name",
        "Last Name",
        "Email",
        "Manager",
        "Lifecycle State",
        "Identity Profile",
        "Authoritative Source",
        "Created",
        "Modified",
        "Correlated",
        "Access Count",
        "Account Count",
    ),
    "IDENTITIES": (
        "Identity ID",
        "Name",
        "Display Name",
        "Email",
        "Lifecycle State",
        "Identity Profile",
        "Correlated",
        "Created",
    ),
    "IDENTITY_PROFILE_IDENTITY_ERROR": (
        "Identity ID",
        "Name",
        "Identity Profile",
        "Authoritative Source",
        "Error",
        "Modified",
    ),
    "ORPHAN_IDENTITIES": (
        "Identity ID",
        "Name",
        "Display Name",
        "Email",
        "Identity Profile",
        "Created",
        "Modified",
    ),
    "ACCOUNTS": (
        "Account ID",
        "Account Name",
        "Display Name",
        "Native Identity",
        "Source Name",
        "Identity ID",
        "Identity Name",
        "Disabled",
        "Locked",
        "Entitlement Count",
        "Created",
        "Modified",
    ),
    "UNCORRELATED_ACCOUNTS": (
        "Account ID",
        "Account Name",
        "Display Name",
        "Native Identity",
        "Source Name",
        "Created",
        "Modified",
    ),
}
"""CHOICE: the columns of each report's CSV/PDF (SailPoint does not publish them)."""

_ACCOUNT_REPORTS = frozenset({"ACCOUNTS", "UNCORRELATED_ACCOUNTS"})
REPORT_DATASETS: Mapping[str, Dataset] = {
    name: Dataset(
        f"sailpoint.{name}",
        tuple(Column(c) for c in columns),
        _account if name in _ACCOUNT_REPORTS else _identity,
    )
    for name, columns in REPORT_COLUMNS.items()
}


def _search_document(r: RowRandom, index: int) -> Row:
    first, last = r.person()
    created = r.timestamp()
    return {
        "id": r.hex_id(),
        "name": f"{first}.{last}".lower().replace(" ", "") + str(index),
        "displayName": r.full_name(first, last),
        "email": r.maybe(r.email(first, last, index), blank=0.05),
        "type": r.choice(("identity", "account", "entitlement", "role", "access profile")),
        "created": created,
        "modified": r.maybe(r.later(created, within=dt.timedelta(days=300)), blank=0.1),
        "source.name": r.choice(SOURCES),
        "attributes.department": r.maybe(r.choice(DEPARTMENTS), blank=0.08),
        "attributes.employeeNumber": r.digits(7),
        "description": r.maybe(r.sentence(), blank=0.3),
        "privileged": r.chance(0.08),
        "accessCount": r.between(0, 250),
    }


SEARCH_DEFAULT_COLUMNS = ("id", "name", "displayName", "type", "created", "modified")
SEARCH_DATASET = Dataset(
    "sailpoint.SEARCH_EXPORT", tuple(Column(c) for c in SEARCH_DEFAULT_COLUMNS), _search_document
)


INDEX_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "accessprofiles": ("source.name", "description"),
    "accountactivities": ("source.name", "modified"),
    "entitlements": ("source.name", "privileged"),
    "events": ("description", "created"),
    "identities": ("email", "attributes.department", "attributes.employeeNumber"),
    "roles": ("privileged", "accessCount"),
}
"""CHOICE (``zip_member_headers="per_index"``): the columns an index's CSV adds."""


def search_indices(arguments: Mapping[str, Any]) -> tuple[str, ...]:
    """The indices a SEARCH_EXPORT reads: its ``indices``; all of them when absent or ``*``."""
    named = tuple(i for i in INDEX_NAMES if i != "*")
    chosen = arguments.get("indices") or ["*"]
    return named if "*" in chosen else tuple(chosen)


def search_columns(arguments: Mapping[str, Any]) -> tuple[str, ...]:
    """DOC: a SEARCH_EXPORT's columns are its ``columns`` argument (CHOICE: ours without)."""
    columns = arguments.get("columns")
    if not columns:
        return SEARCH_DEFAULT_COLUMNS
    return tuple(c.strip() for c in str(columns).split(","))


def member_columns(arguments: Mapping[str, Any], index: str, headers: str) -> tuple[str, ...]:
    """The header of one index's CSV in the zip: the same for all, or per index (CHOICE)."""
    columns = search_columns(arguments)
    if headers != "per_index":
        return columns
    return columns + tuple(c for c in INDEX_COLUMNS.get(index, ()) if c not in columns)


# --------------------------------------------------------------------------- errors


class SimulatedResponse(Exception):
    """Raised by a handler to answer with ``response`` right away."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


DETAIL_CODES = {
    400: "400.1 Bad Request Content",
    403: "403 Forbidden",
    404: "404 Not found",
    500: "500.0 Internal Fault",
}


def error_response(status: int, text: str, headers: Mapping[str, str] | None = None) -> Response:
    """An ``ErrorResponseDto`` (400/403/404/5xx)."""
    body = {
        "detailCode": DETAIL_CODES.get(status, f"{status}.0 Error"),
        "trackingId": secrets.token_hex(16),
        "messages": [{"locale": "en-US", "localeOrigin": "DEFAULT", "text": text}],
        "causes": [],
    }
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


# --------------------------------------------------------------------------- tokens


@dataclass
class IssuedToken:
    expires_at: float
    client_id: str = ""
    window_start: float = 0.0
    window_count: int = 0


class TokenIssuer:
    """Issues JWT-shaped bearer tokens, checks expiry, counts requests per token."""

    def __init__(self, state: SimState, settings: SailPointSettings) -> None:
        self.state = state
        self.settings = settings
        self._tokens: dict[str, IssuedToken] = {}
        self._lock = threading.Lock()
        state.facts["tokens_issued"] = 0

    def issue(self, client_id: str) -> dict[str, Any]:
        ttl = self.settings.token_ttl
        now = time.time()
        claims = {"client_id": client_id, "exp": int(now + ttl), "jti": secrets.token_hex(8)}
        header = {"alg": "HS256", "typ": "JWT"}
        signature = secrets.token_bytes(32)
        token = ".".join(_b64(part) for part in (_json(header), _json(claims), signature))
        with self._lock:
            self._tokens[token] = IssuedToken(expires_at=now + ttl, client_id=client_id)
            self.state.facts["tokens_issued"] += 1
        return {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": math.ceil(ttl) if ttl >= 1 else ttl,
            "scope": "sp:scopes:all",
            "tenant_id": "2c91808a7f3b4a5f017f3b5c1d2e0001",
            "pod": "sim01-useast1",
            "strong_auth_supported": False,
            "org": "sim",
            "identity_id": None,
            "user_name": None,
            "strong_auth": False,
            "jti": claims["jti"],
        }

    def check(self, authorization: str | None, faults: FaultInjector, path: str) -> str:
        """The bearer token of a request; raises a 401 response when it is not valid."""
        token = (authorization or "").removeprefix("Bearer ").removeprefix("bearer ").strip()
        with self._lock:
            issued = self._tokens.get(token)
        if issued is None:
            raise SimulatedResponse(JSONResponse(INVALID_TOKEN, status_code=401))
        if faults.take("token_expiry", path):
            issued.expires_at = time.time()
        if time.time() >= issued.expires_at:
            raise SimulatedResponse(JSONResponse(EXPIRED_TOKEN, status_code=401))
        return token

    def client_of(self, token: str) -> str:
        """The client id ``token`` was issued to."""
        with self._lock:
            return self._tokens[token].client_id

    def count_request(self, token: str) -> None:
        """Count one request of ``token``; raises a 429 response over the limit."""
        now = time.time()
        with self._lock:
            issued = self._tokens[token]
            if now - issued.window_start >= self.settings.rate_window:
                issued.window_start, issued.window_count = now, 0
            issued.window_count += 1
            over = issued.window_count > self.settings.rate_limit
            wait = issued.window_start + self.settings.rate_window - now
        if over:
            retry_after = str(max(1, math.ceil(wait)))
            raise SimulatedResponse(
                JSONResponse(RATE_LIMITED, status_code=429, headers={"Retry-After": retry_after})
            )


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --------------------------------------------------------------------------- report tasks


def _iso(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


RESULT_STATUS = {
    "SUCCESS": "SUCCESS",
    "WARNING": "WARNING",
    "ERROR": "FAILURE",
    "TEMP_ERROR": "FAILURE",
    "TERMINATED": "TERMINATED",
}


@dataclass
class ReportTask:
    """One report run (a task result)."""

    id: str
    report: SimReport
    arguments: dict[str, Any]
    rows: int
    task_type: str
    created: dt.datetime
    launched: dt.datetime
    launcher: str
    fails: bool = False
    never_finishes: bool = False
    completed: dt.datetime | None = None
    completion_status: str | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None

    @property
    def done(self) -> bool:
        return self.completion_status is not None

    @property
    def same_report_key(self) -> str:
        return report_key(self.report.name, self.arguments)

    @property
    def task_def_name(self) -> str:
        return "Cloud " + self.report.name.replace("_", " ").title() + " Report"

    @property
    def total_rows(self) -> int:
        """Rows in the download: ``rows`` per CSV of the zip for SEARCH_EXPORT."""
        return self.rows * len(self.files())

    def files(self) -> dict[str, int]:
        """The CSVs of a zipped report (name -> rows); one entry for other reports."""
        if not self.report.zip_of_csvs:
            return {self.report.name: self.rows}
        return {f"{index}.csv": self.rows for index in search_indices(self.arguments)}

    @property
    def formats(self) -> tuple[str, ...]:
        """DOC: ``availableFormats`` (CSV and PDF unless ``selectedFormats`` says)."""
        return self.report.formats(self.arguments)

    def details(self, echo_arguments: bool = True) -> dict[str, Any]:
        """The ``TaskResultDetails`` body (``attributes`` without the arguments unless
        ``echo_arguments``: CHOICE)."""
        attributes = {"reportType": self.report.name, **self.arguments} if echo_arguments else {}
        return {
            "id": self.id,
            "type": self.task_type,
            "reportType": self.report.name,
            "taskDefName": self.task_def_name,
            "description": f"{self.task_def_name} ({self.report.name})",
            "parentName": None,
            "launcher": self.launcher,
            "created": _iso(self.created),
            "launched": _iso(self.launched),
            "completed": _iso(self.completed),
            "completionStatus": self.completion_status,
            "messages": self.messages,
            "returns": [],
            "attributes": attributes,
            "progress": "Completed" if self.done else "Generating report",
        }

    def results(self) -> dict[str, Any]:
        """The ``ReportResults`` body; DOC: no ``status`` while running (none exists)."""
        body: dict[str, Any] = {
            "reportType": self.report.name,
            "taskDefName": self.task_def_name,
            "id": self.id,
            "created": _iso(self.created),
        }
        if self.done:
            assert self.completion_status is not None
            assert self.completed is not None
            body["status"] = RESULT_STATUS[self.completion_status]
            body["duration"] = int((self.completed - self.launched).total_seconds() * 1000)
            failed = RESULT_STATUS[self.completion_status] == "FAILURE"
            body["rows"] = 0 if failed else self.total_rows
        body["availableFormats"] = list(self.formats)
        return body

    def fact(self) -> dict[str, Any]:
        return {
            "rows": self.total_rows,
            "files": self.files(),
            "status": self.completion_status or "RUNNING",
            "resultStatus": RESULT_STATUS.get(self.completion_status or ""),
            "reportType": self.report.name,
            "arguments": self.arguments,
            "messages": self.messages,
            "launcher": self.launcher,
        }


def report_key(report: str, arguments: Mapping[str, Any]) -> str:
    """What makes two runs "the same report": the type and the arguments."""
    return json.dumps([report, arguments], sort_keys=True, separators=(",", ":"))


def _message(kind: str, key: str, text: str) -> dict[str, Any]:
    return {
        "type": kind,
        "error": kind == "ERROR",
        "warning": kind == "WARN",
        "key": key,
        "localizedText": text,
    }


class ReportTasks:
    """The tenant's report tasks: run, finish on the event loop's clock, cancel."""

    def __init__(self, state: SimState, settings: SailPointSettings) -> None:
        self.state = state
        self.settings = settings
        self.rng = random.Random(state.seed)
        self.tasks: dict[str, ReportTask] = {}
        self.cancellations: list[str] = []
        self.removed: list[str] = []
        #: report types whose first run met someone else's task (foreign_task_at_first_run)
        self.foreign_met: set[str] = set()
        self._publish()

    def run(
        self, report: SimReport, arguments: dict[str, Any], path: str, launcher: str
    ) -> ReportTask:
        """DOC: "If non-concurrent task is already running then it returns" that task."""
        if self.settings.foreign_task_at_first_run and report.name not in self.foreign_met:
            self.foreign_met.add(report.name)
            if not self._any_running(report.name):  # the type runs one task at a time
                self._foreign_task(report, arguments)
        running = self._running(report.name, arguments)
        if running is not None:
            return running
        now = _now()
        task = ReportTask(
            id=self._new_id(),
            report=report,
            arguments=arguments,
            rows=self.settings.rows_for(report.name),
            task_type=self.settings.task_type,
            created=now,
            launched=now,
            launcher=launcher,
            fails=self.state.faults.take("job_failure", path) is not None,
            never_finishes=self.state.faults.take("never_finish", path) is not None,
        )
        self._start(task)
        return task

    def _foreign_task(self, report: SimReport, arguments: Mapping[str, Any]) -> None:
        """CHOICE ``foreign_task_at_first_run``: someone else's task of ``report`` (other
        arguments, another launcher), running since ``foreign_task_age`` seconds ago."""
        started = _now() - dt.timedelta(seconds=self.settings.foreign_task_age)
        self._start(
            ReportTask(
                id=self._new_id(),
                report=report,
                arguments=other_arguments(report, arguments),
                rows=self.settings.rows_for(report.name),
                task_type=self.settings.task_type,
                created=started,
                launched=started,
                launcher=FOREIGN_LAUNCHER,
            )
        )

    def _new_id(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"

    def _start(self, task: ReportTask) -> None:
        """Keep ``task`` and let it finish after its latency (unless it never finishes)."""
        self.tasks[task.id] = task
        if not task.never_finishes:
            delay = self.settings.latency_for(task.report.name, self.rng)
            task.timer = asyncio.get_running_loop().call_later(delay, self.finish, task.id)
        self._publish()

    def _any_running(self, report: str) -> bool:
        return any(not t.done and t.report.name == report for t in self.tasks.values())

    def _running(self, report: str, arguments: Mapping[str, Any]) -> ReportTask | None:
        """The running task a run gets back: of its report type (DOC, the default reading),
        or of its report type and arguments (CHOICE ``running_task_match="same_arguments"``).
        """
        key = report_key(report, arguments)
        for task in self.tasks.values():
            if task.done or task.report.name != report:
                continue
            if self.settings.running_task_match == "report_type" or task.same_report_key == key:
                return task
        return None

    def finish(self, task_id: str) -> None:
        task = self.tasks.get(task_id)
        if task is None or task.done:
            return
        if task.fails:
            task.messages.append(
                _message(
                    "ERROR",
                    "cloud_report_error",
                    "Report generation failed: the search backend "
                    "timed out (simulated job_failure)",
                )
            )
            self._complete(task, self.settings.failed_completion)
        elif self.settings.healthy_completion == "WARNING":
            task.messages.append(
                _message(
                    "WARN",
                    "cloud_report_warning",
                    "Some rows were skipped: attribute values too long",
                )
            )
            self._complete(task, "WARNING")
        else:
            self._complete(task, "SUCCESS")

    def cancel(self, task: ReportTask) -> None:
        """A running task, cancelled: as ``cancel_outcome`` says (CHOICE); a done one stays."""
        self.cancellations.append(task.id)
        outcome = self.settings.cancel_outcome
        if not task.done and outcome != "runs_on":
            if task.timer is not None:
                task.timer.cancel()
                task.timer = None
            if outcome == "removed":
                del self.tasks[task.id]
                self.removed.append(task.id)
            elif outcome == "error":
                task.messages.append(
                    _message("ERROR", "cloud_report_terminated", "Task was terminated by request")
                )
                self._complete(task, "ERROR")
            else:
                task.messages.append(
                    _message("INFO", "cloud_report_terminated", "Task was terminated by request")
                )
                self._complete(task, "TERMINATED")
        self._publish()

    def _complete(self, task: ReportTask, status: str) -> None:
        task.completion_status = status
        task.completed = _now()
        task.timer = None
        self._publish()

    def _publish(self) -> None:
        self.state.facts["exports"] = {tid: t.fact() for tid, t in self.tasks.items()}
        self.state.facts["cancellations"] = list(self.cancellations)
        self.state.facts["removed"] = list(self.removed)


# --------------------------------------------------------------------------- files


def report_rows(seed: int, task: ReportTask) -> tuple[tuple[str, ...], Iterator[Row]]:
    dataset = REPORT_DATASETS[task.report.name]
    variant = report_key(task.report.name, task.arguments)
    return dataset.header, dataset.rows(seed, task.rows, variant=variant)


def csv_body(seed: int, task: ReportTask) -> Iterator[bytes]:
    header, rows = report_rows(seed, task)
    return csv_chunks(header, rows)


class _ChunkSink(io.RawIOBase):
    """A write-only, unseekable stream whose written bytes are taken out in chunks."""

    def __init__(self) -> None:
        super().__init__()
        self._buffer = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._buffer += data
        return len(data)

    def take(self) -> bytes:
        chunk = bytes(self._buffer)
        self._buffer.clear()
        return chunk


def zip_body(seed: int, task: ReportTask, headers: str = "same") -> Iterator[bytes]:
    """DOC: SEARCH_EXPORT is a zip of CSVs, one per index (CHOICE), streamed.

    ``headers`` (CHOICE ``zip_member_headers``): ``same`` columns in every CSV, or
    ``per_index`` columns (each index's CSV adds its own, see :data:`INDEX_COLUMNS`).
    """
    sink = _ChunkSink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for index in search_indices(task.arguments):
            columns = member_columns(task.arguments, index, headers)
            variant = report_key(task.report.name, task.arguments) + "/" + index
            rows = SEARCH_DATASET.rows(seed, task.rows, variant=variant)
            with archive.open(f"{index}.csv", "w") as member:
                for chunk in csv_chunks(columns, rows):
                    member.write(chunk)
                    yield sink.take()
    yield sink.take()


def write_pdf(seed: int, task: ReportTask, out: IO[bytes]) -> None:
    header, rows = report_rows(seed, task)
    write_table_pdf(
        out,
        title=f"{task.task_def_name} \u2014 {task.id}",
        columns=header,
        rows=(rendered(row, header) for row in rows),
        total=task.rows,
        weights=pdf_weights(header),
    )


def pdf_weights(header: tuple[str, ...]) -> list[float]:
    """Column widths of the PDF table: ids (32 hex) whole, names wider than flags."""
    wide = {"Email": 2.0, "Display Name": 2.0, "Native Identity": 2.6, "Error": 2.6}
    return [3.6 if name.endswith(" ID") else wide.get(name, 1.0) for name in header]


def pdf_file(seed: int, task: ReportTask) -> tuple[Iterator[bytes], int]:
    """The report as a PDF, rendered to a spooled file: its chunks and its size."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - closed by spool_file
    write_pdf(seed, task, spool)
    size = spool.tell()
    spool.seek(0)
    return spool_file(spool), size


def spool_file(spool: IO[bytes]) -> Iterator[bytes]:
    """The rest of ``spool`` in chunks; closes it at the end."""
    with spool:
        while chunk := spool.read(DOWNLOAD_CHUNK):
            yield chunk


CUT_FAULTS = ("truncate", "drop_connection")


def cut_may_fire(faults: FaultInjector, path: str) -> bool:
    """Whether a ``truncate``/``drop_connection`` fault is armed for ``path`` (not taken)."""
    return any(
        fault["kind"] in CUT_FAULTS
        and fault["count"] != 0
        and (not fault["path"] or re.search(fault["path"], path))
        for fault in faults.snapshot()
    )


async def sized_for_cuts(
    faults: FaultInjector, path: str, chunks: Iterator[bytes], size: int | None
) -> tuple[Iterator[bytes], int | None]:
    """Spool a streamed body to learn its size when a cut fault is armed.

    A cut is only visible to the client when ``Content-Length`` is declared: the request
    log middleware (a ``BaseHTTPMiddleware``) ends an aborted chunked body with a clean
    last chunk. Without an armed cut the body stays streamed (chunked).
    """
    if size is not None or not cut_may_fire(faults, path):
        return chunks, size
    spool, size = await run_in_threadpool(spool_chunks, chunks)
    return spool_file(spool), size


def spool_chunks(chunks: Iterator[bytes]) -> tuple[IO[bytes], int]:
    """Write ``chunks`` to a spooled temporary file; return it rewound, and its size."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - caller closes
    for chunk in chunks:
        spool.write(chunk)
    size = spool.tell()
    spool.seek(0)
    return spool, size


CONTENT_TYPES: Mapping[str, str] = {"csv": "application/csv", "pdf": "application/pdf"}  # DOC


async def file_response(
    state: SimState, task: ReportTask, file_format: str, filename: str, path: str
) -> Response:
    """The report file, streamed (cut short by an armed truncate/drop_connection fault)."""
    settings: SailPointSettings = state.settings
    size: int | None = None
    media_type = CONTENT_TYPES[file_format]
    if task.report.zip_of_csvs:
        chunks = zip_body(state.seed, task, settings.zip_member_headers)
        media_type = settings.zip_content_type
    elif file_format == "csv":
        chunks = csv_body(state.seed, task)
    else:
        chunks, size = await run_in_threadpool(pdf_file, state.seed, task)
    chunks, size = await sized_for_cuts(state.faults, path, chunks, size)
    return download_response(
        state,
        path,
        chunks=chunks,
        size=size,
        media_type=media_type,
        headers={"Content-disposition": f'attachment;filename="{filename}"'},
    )


def download_filename(task: ReportTask, name: str | None, file_format: str) -> str:
    extension = "zip" if task.report.zip_of_csvs else file_format
    stem = (name or f"{task.report.name}_{task.id}").strip().replace('"', "")
    return stem if stem.lower().endswith(f".{extension}") else f"{stem}.{extension}"


# --------------------------------------------------------------------------- the app


class SailPointApi:
    """The HTTP surface: token endpoint, guard (auth, rate limit, faults), reports."""

    def __init__(self, state: SimState, settings: SailPointSettings) -> None:
        self.state = state
        self.settings = settings
        self.tokens = TokenIssuer(state, settings)
        self.tasks = ReportTasks(state, settings)

    def guard(self, request: Request) -> str:
        """Authenticate, rate-limit and inject request faults, in the vendor's order.

        Returns the client id the request's token was issued to.
        """
        path = request.url.path
        token = self.tokens.check(request.headers.get("authorization"), self.state.faults, path)
        if fault := self.state.faults.take("rate_limit", path):
            headers = {"Retry-After": fault.retry_after_header()}
            raise SimulatedResponse(JSONResponse(RATE_LIMITED, status_code=429, headers=headers))
        self.tokens.count_request(token)
        if fault := self.state.faults.take("server_error", path):
            text = f"An internal fault occurred (simulated, HTTP {fault.status})."
            raise SimulatedResponse(error_response(fault.status, text))
        return self.tokens.client_of(token)

    def task(self, task_id: str, missing_status: int = 404) -> ReportTask:
        task = self.tasks.tasks.get(task_id)
        if task is None:
            text = f"Task result {task_id} was not found."
            raise SimulatedResponse(error_response(missing_status, text))
        return task

    async def token(self, request: Request) -> Response:
        """DOC: ``grant_type=client_credentials&client_id=..&client_secret=..``."""
        fields = dict(request.query_params)
        if request.headers.get("content-type", "").startswith("application/x-www-form"):
            fields.update((await request.form()).items())  # type: ignore[arg-type]
        client_id, client_secret = _basic_credentials(request.headers.get("authorization"))
        client_id = str(fields.get("client_id", client_id or ""))
        client_secret = str(fields.get("client_secret", client_secret or ""))
        if fields.get("grant_type") != "client_credentials":
            body = {
                "error": "unsupported_grant_type",
                "error_description": "grant_type must be client_credentials",
            }
            return JSONResponse(body, status_code=400)
        if not self.settings.known_client(client_id, client_secret):
            body = {"error": "invalid_client", "error_description": "Bad credentials"}
            return JSONResponse(body, status_code=401)
        return JSONResponse(self.tokens.issue(client_id))

    async def run(self, request: Request) -> Response:
        """DOC: ``ReportDetails`` in, 200 ``TaskResultDetails`` out (400 on a bad body)."""
        client = self.guard(request)
        try:
            body = await request.json()
        except ValueError:
            return error_response(400, "The request body is not valid JSON.")
        try:
            report, arguments = checked_run(body)
        except ArgumentError as exc:
            return error_response(400, str(exc))
        if report.name in self.settings.forbidden_report_types:
            return error_response(403, f"The client may not run {report.name} reports.")
        task = self.tasks.run(report, arguments, request.url.path, client)
        return JSONResponse(task.details(self.settings.echo_arguments))

    def result(self, request: Request, task_id: str) -> Response:
        """DOC: ``ReportResults``; an unknown task: 404 or ``{}`` (CHOICE ``unknown_result``)."""
        self.guard(request)
        task = self.tasks.tasks.get(task_id)
        if task is None and self.settings.unknown_result == "empty":
            return JSONResponse({})
        return JSONResponse(self.task(task_id).results())

    async def file(self, request: Request, task_id: str) -> Response:
        """DOC: the file in ``fileFormat`` (csv|pdf), ``Content-disposition: attachment``."""
        self.guard(request)
        task = self.task(task_id)
        try:
            file_format = download_format(
                task.report, task.arguments, request.query_params.get("fileFormat")
            )
        except ArgumentError as exc:
            return error_response(400, str(exc))
        if not task.done:
            status = self.settings.file_before_done_status
            return error_response(status, f"Report {task_id} is not complete yet.")
        if task.completion_status not in ("SUCCESS", "WARNING"):
            return error_response(
                404, f"Report {task_id} ended {task.completion_status}; it has no file."
            )
        name = download_filename(task, request.query_params.get("name"), file_format)
        return await file_response(self.state, task, file_format, name, request.url.path)

    async def cancel(self, request: Request, task_id: str) -> Response:
        """DOC: 204, no body; the responses declared are 204/400/401/403/429/500.

        An unknown task is a 400 ErrorResponseDto (CHOICE among the declared ones: no 404);
        with ``cancel_requires_pat`` an API client's token is refused 403 (CHOICE: cancel
        is declared for ``userAuth`` only); what the task then does is ``cancel_outcome``
        (CHOICE: ends TERMINATED by default).
        """
        client = self.guard(request)
        if self.settings.cancel_requires_pat and not self.settings.is_pat(client):
            text = "Cancelling a report needs a personal access token (userAuth)."
            return error_response(403, text)
        self.tasks.cancel(self.task(task_id, missing_status=400))
        return Response(status_code=204)

    def router(self) -> APIRouter:
        router = APIRouter()
        router.add_api_route("/run", self.run, methods=["POST"])
        router.add_api_route("/{task_id}/result", self.result, methods=["GET"])
        router.add_api_route("/{task_id}/cancel", self.cancel, methods=["POST"])
        router.add_api_route("/{task_id}", self.file, methods=["GET"])
        return router


def _basic_credentials(authorization: str | None) -> tuple[str | None, str | None]:
    if not authorization or not authorization.lower().startswith("basic "):
        return None, None
    try:
        decoded = base64.b64decode(authorization[6:]).decode()
    except ValueError:
        return None, None
    client_id, _, secret = decoded.partition(":")
    return client_id, secret


def simulator_app(title: str, api: Any) -> FastAPI:
    """A FastAPI app whose handlers may raise :class:`SimulatedResponse` to answer early."""
    app = FastAPI(title=title)
    app.state.api = api

    @app.exception_handler(SimulatedResponse)
    async def _answer(request: Request, exc: SimulatedResponse) -> Response:
        return exc.response

    return app


def build_app(
    settings: SailPointSettings | None = None,
    *,
    seed: int = 0,
    faults: Iterable[Fault | dict[str, Any]] = (),
) -> FastAPI:
    """The SailPoint simulator app (token endpoint, both report layouts, ``/_sim``)."""
    settings = settings or SailPointSettings()
    state = new_state("sailpoint", seed=seed, settings=settings, faults=faults)
    api = SailPointApi(state, settings)
    app = simulator_app("SailPoint ISC reports (simulator)", api)
    app.add_api_route("/oauth/token", api.token, methods=["POST"])
    for prefix in LAYOUTS.values():
        app.include_router(api.router(), prefix=prefix)
    install_common(app, state)
    install_response_log(app)

    @app.post("/_sim/reports/{task_id}/finish", tags=["simulator admin"])
    async def finish_now(task_id: str) -> JSONResponse:  # on the event loop, like the timers
        """Let a running report end now, as its latency would (tests that must not wait)."""
        task = api.tasks.tasks.get(task_id)
        if task is None:
            return JSONResponse({"error": f"no report task {task_id}"}, status_code=404)
        api.tasks.finish(task_id)
        return JSONResponse({"id": task_id, "completionStatus": task.completion_status})

    return app


def start(
    *, host: str = "127.0.0.1", port: int = 0, seed: int = 0, **settings: Any
) -> RunningSimulator:
    """Start the simulator on ``host:port`` (0: a free port) and describe its connection."""
    faults = settings.pop("faults", [])
    config = SailPointSettings(**settings)
    server = SimulatorServer(build_app(config, seed=seed, faults=faults), host, port).start()
    base = server.base_url
    return RunningSimulator(
        vendor="sailpoint",
        base_url=base,
        credentials={"login": config.client_id, "password": config.client_secret},
        extra={"token_url": f"{base}/oauth/token", "api_layout": "v3"},
        servers=[server],
    )
