"""Simulator of Oleria's downloads API (VENDOR_APIS.md section 1).

Two origins, as in the real service:

* the API origin: ``POST /oauth/token`` (OAuth2 client credentials, form-encoded),
  ``POST /v1/downloads`` and ``GET /v1/downloads/{id}`` (``accepted`` -> ``completed``
  | ``failed``; no running state), flat ``{code, message}`` errors (all DOC);
* the download origin (its own port): presigned, S3-style URLs valid 5 minutes that
  need no Oleria auth (DOC), checked for signature and expiry (moto checks neither),
  answering S3's XML ``AccessDenied`` "Request has expired" and ``SignatureDoesNotMatch``.

The request rules (catalogue, filter matrix, value counts, ``last``, sortBy) are the
simulator's own reading of the documentation, in :mod:`include.simulators.oleria_rules`;
filtering and sorting the rows is :mod:`include.simulators.oleria_query`. Neither
shares code with the pipeline's client, so a misreading on either side shows up.

CHOICES (switchable in :class:`OleriaSettings`; :data:`HOSTILE` sets each to its least
convenient documented-compatible alternative): ``POST /v1/downloads`` answers 201 (or
200/202); re-polling mints a fresh URL (or repeats the first, which expires 5 minutes
after it was signed); the names of the unpublished catalogue sections; ``last`` units;
timestamps without an offset read as UTC; tokens last ``token_ttl`` seconds; an export
takes ``latency`` (or a seeded random time up to ``latency_max``) seconds; a filter on a
field the context does not have is a 400; no tenant rate limit unless ``rate_limit``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import math
import secrets
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from include.simulators import RunningSimulator
from include.simulators.base import (
    SeededJobs,
    SimState,
    SimulatorServer,
    install_common,
    new_state,
)
from include.simulators.data import (
    Dataset,
    Row,
    UnsatisfiableRange,
    count_rows,
    csv_chunks,
    download_response,
    oleria_dataset,
    ordered_rows,
    requested_range,
    select_rows,
)
from include.simulators.oleria_query import data_now, sort_records, where
from include.simulators.oleria_rules import (
    PUBLISHED_CONTEXTS,
    UNIT_SECONDS,
    Dialect,
    DownloadQuery,
    Refused,
    checked_fields,
    default_unpublished_contexts,
    read_download_request,
)

VENDOR = "oleria"
TOKEN_PATH = "/oauth/token"  # noqa: S105 - a path, not a secret
DOWNLOAD_BUCKET = "oleria-downloads"
ALLOWED_CREATE_STATUS = (200, 201, 202)
SCOPE = "us-east-1/s3/aws4_request"


@dataclass
class OleriaSettings:
    """Runtime behaviour of the Oleria simulator (patchable through ``/_sim/config``)."""

    client_id: str = "oleria-client"
    client_secret: str = "oleria-secret"  # noqa: S105 - the simulator's own test credential
    audience: str | None = None  # when set, a token request must name this audience
    token_ttl: float = 3600.0  # expires_in of issued tokens
    rows: int = 1000  # rows of every context before filters
    latency: float = 0.2  # seconds from accepted to completed
    latency_max: float | None = None  # if set: a seeded random latency in [latency, max]
    url_ttl: float = 300.0  # X-Amz-Expires of presigned urls
    create_status: int = 201  # POST /v1/downloads status (CHOICE: 200, 201 or 202)
    # CHOICE: every completed poll mints a new url; False: the first url again, expired
    # url_ttl seconds after it was signed
    fresh_url_per_poll: bool = True
    content_length: bool = True  # measure the file when the job completes (as S3 would)
    strict_fields: bool = True  # CHOICE: filters/sorts on a field the context lacks are a 400
    # CHOICE: context names answered for the catalogue sections Oleria has not published
    unpublished_contexts: list[str] = field(default_factory=default_unpublished_contexts)
    extra_contexts: list[str] = field(default_factory=list)  # more names (real ones, later)
    last_units: str = "mhdw"  # CHOICE: units a `last` duration may use (DOC shows d and h)
    naive_timestamps: bool = True  # CHOICE: a timestamp value without an offset is UTC
    forbidden_contexts: list[str] = field(default_factory=list)  # answered 403 (no access)
    rate_limit: int = 0  # API requests per rate_window per tenant (0: unlimited)
    rate_window: float = 1.0  # seconds
    download_port: int = 0  # port of the download origin (0: a free one)
    download_host: str | None = None  # host in presigned urls (default: the bind address)

    def __post_init__(self) -> None:
        if self.create_status not in ALLOWED_CREATE_STATUS:
            raise ValueError(f"create_status must be one of {ALLOWED_CREATE_STATUS}")
        if self.rows < 0:
            raise ValueError("rows must be >= 0")
        if self.latency_max is not None and self.latency_max < self.latency:
            raise ValueError("latency_max must be >= latency")
        if not self.last_units or set(self.last_units) - set(UNIT_SECONDS):
            raise ValueError(f"last_units must be letters of {''.join(UNIT_SECONDS)}")

    def dialect(self) -> Dialect:
        """The CHOICE settings that change how a request body is read."""
        contexts = {name for names in PUBLISHED_CONTEXTS.values() for name in names}
        contexts.update(self.unpublished_contexts, self.extra_contexts)
        return Dialect(
            contexts=frozenset(contexts),
            last_units=self.last_units,
            naive_timestamps=self.naive_timestamps,
        )


HOSTILE: dict[str, Any] = {
    # 202 Accepted, not 201: the doc only promises one of 200/201/202.
    "create_status": 202,
    # Re-polling repeats the first url, dead 5 minutes after it was signed: the client
    # must notice the 403 "Request has expired" and submit the download again.
    "fresh_url_per_poll": False,
    # The unpublished sections' names are our guesses: a tenant that knows none of them
    # refuses them (400 unknown context) unless the client names them in extra_contexts.
    "unpublished_contexts": [],
    # Only the units the doc shows (7d, 24h): 30m or 2w are refused.
    "last_units": "dh",
    # The doc says ISO-8601 UTC: a timestamp without Z or an offset is refused.
    "naive_timestamps": False,
    # Columns are unpublished: a filter or sort on a field the context lacks is a 400.
    "strict_fields": True,
    # Limits are per tenant and unpublished: a tight one, answered 429 with Retry-After.
    "rate_limit": 5,
    "rate_window": 1.0,
    # Exports take a while (no running state is reported meanwhile).
    "latency": 1.0,
    "latency_max": 5.0,
}
"""Settings that make every Oleria CHOICE its least convenient documented alternative."""


@dataclass
class Download:
    """One download request and the job behind it."""

    id: str
    query: DownloadQuery
    created_at: dt.datetime
    data_now: dt.datetime  # the data's now, which `last` filters count back from (CHOICE)
    status: str = "accepted"
    error: dict[str, str] | None = None
    rows: int | None = None
    size: int | None = None
    url: str | None = None
    downloads: int = 0
    latency: float = 0.0
    source_rows: int = 0  # rows of the context before filters, fixed at creation
    task: asyncio.Task[None] | None = None

    @property
    def context(self) -> str:
        return self.query.context

    def facts(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "status": self.status,
            "context": self.context,
            "bytes": self.size,
            "downloads": self.downloads,
            "latency": self.latency,
            "data_now": self.data_now.isoformat(),
        }


class TenantLimit:
    """A fixed-window request budget for the tenant (Oleria limits per tenant, DOC)."""

    def __init__(self, settings: OleriaSettings) -> None:
        self.settings = settings
        self.window_start = 0.0
        self.used = 0

    def retry_after(self) -> str | None:
        """None if the request fits this window, else the seconds until the next one."""
        limit, window = self.settings.rate_limit, self.settings.rate_window
        if limit <= 0:
            return None
        now = time.monotonic()
        if now - self.window_start >= window:
            self.window_start, self.used = now, 0
        self.used += 1
        if self.used <= limit:
            return None
        return str(max(1, math.ceil(self.window_start + window - now)))


class OleriaService(SeededJobs):
    """The state both origins share: tokens, downloads, the URL signing key."""

    settings: OleriaSettings

    def __init__(self, state: SimState, settings: OleriaSettings) -> None:
        super().__init__(state, settings)
        self.tokens: dict[str, float] = {}
        self.downloads: dict[str, Download] = {}
        self.signing_key = secrets.token_bytes(32)
        self.download_origin = ""
        self.tenant_limit = TenantLimit(settings)
        state.facts["exports"] = {}

    # ----------------------------------------------------------------------- tokens

    def issue_token(self) -> dict[str, Any]:
        token = secrets.token_urlsafe(32)
        self.tokens[token] = time.time() + self.settings.token_ttl
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": int(self.settings.token_ttl),
        }

    def token_problem(self, request: Request) -> JSONResponse | None:
        """The 401 to answer when the request's bearer token is missing, unknown or expired."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return error(401, "unauthorized", "missing bearer token")
        expires = self.tokens.get(token)
        if expires is None:
            return error(401, "unauthorized", "invalid access token")
        if expires <= time.time() or self.state.faults.take("token_expiry", request.url.path):
            return error(401, "token_expired", "the access token has expired")
        return None

    # ----------------------------------------------------------------------- jobs

    def dataset(self, download: Download) -> Dataset:
        return oleria_dataset(download.context)

    def rows(self, download: Download) -> Iterator[Row]:
        """The export's rows, filtered and sorted as requested, streamed."""
        dataset = self.dataset(download)
        seed, total, query = self.state.seed, download.source_rows, download.query
        predicate = where(query.conditions, download.data_now)
        if not query.sort_keys:
            return select_rows(dataset.rows(seed, total), predicate)
        key = dataset.key(seed)
        return ordered_rows(
            dataset.rows(seed, total),
            fields=[sort_key.field for sort_key in query.sort_keys],
            order=lambda records: sort_records(records, query.sort_keys),
            row_at=lambda index: dataset.row_at(key, index),
            where=predicate,
        )

    def chunks(self, download: Download) -> Iterator[bytes]:
        dataset = self.dataset(download)
        if not download.query.conditions and not download.query.sort_keys:  # fast path
            return dataset.csv_chunks(self.state.seed, download.source_rows)
        return csv_chunks(dataset.header, self.rows(download))

    def measure(self, download: Download) -> tuple[int, int | None]:
        """Rows (and bytes, if ``content_length``) of the finished file, one streamed pass."""
        if not self.settings.content_length:
            if not download.query.conditions:
                return download.source_rows, None
            return count_rows(self.rows(download)), None
        rows = 0

        def counted() -> None:
            nonlocal rows
            rows += 1

        header = self.dataset(download).header
        size = sum(len(c) for c in csv_chunks(header, self.rows(download), on_row=counted))
        return rows, size

    async def run(self, download: Download, fault: str | None) -> None:
        """The export job: wait, build the file (or fail), then report completed."""
        await asyncio.sleep(download.latency)
        if fault == "never_finish":
            return
        if fault == "job_failure":
            download.error = {"code": "export_failed", "message": "the export job failed"}
            self.set_status(download, "failed")
            return
        try:
            download.rows, download.size = await asyncio.to_thread(self.measure, download)
        except ValueError as exc:  # e.g. a sort over more rows than the simulator indexes
            download.error = {"code": "export_failed", "message": str(exc)}
            self.set_status(download, "failed")
            return
        self.set_status(download, "completed")

    def set_status(self, download: Download, status: str) -> None:
        download.status = status
        self.publish(download)

    def publish(self, download: Download) -> None:
        """Update ``/_sim/facts`` (copy on write: readers never see a dict change size)."""
        with self._lock:
            exports = dict(self.state.facts["exports"])
            exports[download.id] = download.facts()
            self.state.facts["exports"] = exports

    # ----------------------------------------------------------------------- urls

    def object_path(self, download: Download) -> str:
        return f"/{DOWNLOAD_BUCKET}/{download.id}/{download.context}.csv"

    def presign(self, download: Download, *, expired: bool = False) -> str:
        """An S3-style presigned GET url on the download origin."""
        ttl = int(self.settings.url_ttl)
        signed_at = time.time() - (ttl + 60 if expired else 0)
        query = {
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Credential": f"{self.settings.client_id}/{_day(signed_at)}/{SCOPE}",
            "X-Amz-Date": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(signed_at)),
            "X-Amz-Expires": str(ttl),
            "X-Amz-SignedHeaders": "host",
        }
        path = self.object_path(download)
        query["X-Amz-Signature"] = self.signature(path, query)
        return f"{self.download_origin}{path}?{urlencode(query)}"

    def signature(self, path: str, query: Mapping[str, str]) -> str:
        canonical = "\n".join(
            ["GET", path, *(f"{k}={v}" for k, v in sorted(query.items()) if k != "X-Amz-Signature")]
        )
        return hmac.new(self.signing_key, canonical.encode(), hashlib.sha256).hexdigest()

    def url_for(self, download: Download, path: str) -> str:
        expired = self.state.faults.take("expire_url", path) is not None
        if expired or self.settings.fresh_url_per_poll or download.url is None:
            url = self.presign(download, expired=expired)
            if not expired:
                download.url = url
            return url
        return download.url


def _day(epoch: float) -> str:
    return time.strftime("%Y%m%d", time.gmtime(epoch))


def error(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """Oleria's flat error body."""
    return JSONResponse({"code": code, "message": message}, status_code=status, headers=headers)


def common_fault(service: OleriaService, path: str) -> Response | None:
    """The tenant's rate limit, or a rate limit or server error armed for ``path``."""
    state = service.state
    limited = state.faults.take("rate_limit", path)
    wait = limited.retry_after_header() if limited else service.tenant_limit.retry_after()
    if wait is not None:
        return error(
            429, "rate_limited", "too many requests for this tenant", {"Retry-After": wait}
        )
    failed = state.faults.take("server_error", path)
    if failed is not None:
        return error(failed.status, "internal_error", "internal server error")
    return None


# --------------------------------------------------------------------------- API origin


def build_api_app(service: OleriaService) -> FastAPI:
    app = FastAPI(title="Oleria downloads API (simulator)")
    install_common(app, service.state)

    @app.post(TOKEN_PATH)
    async def token(request: Request) -> Response:
        return await token_response(service, request)

    @app.post("/v1/downloads")
    async def create_download(request: Request) -> Response:
        problem = common_fault(service, request.url.path) or service.token_problem(request)
        if problem is not None:
            return problem
        return await create_response(service, request)

    @app.get("/v1/downloads/{download_id}")
    async def get_download(download_id: str, request: Request) -> Response:
        problem = common_fault(service, request.url.path) or service.token_problem(request)
        if problem is not None:
            return problem
        download = service.downloads.get(download_id)
        if download is None:
            return error(404, "not_found", f"download {download_id} not found")
        return JSONResponse(status_body(service, download, request.url.path))

    return app


async def token_response(service: OleriaService, request: Request) -> Response:
    problem = common_fault(service, request.url.path)
    if problem is not None:
        return problem
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return error(400, "invalid_request", "the token request must be form-encoded")
    form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
    if form.get("grant_type") != "client_credentials":
        return error(400, "unsupported_grant_type", "grant_type must be client_credentials")
    settings = service.settings
    if form.get("client_id") != settings.client_id or not hmac.compare_digest(
        form.get("client_secret", ""), settings.client_secret
    ):
        return error(401, "invalid_client", "invalid client credentials")
    if settings.audience is not None and form.get("audience") != settings.audience:
        return error(403, "access_denied", f"unknown audience {form.get('audience')!r}")
    return JSONResponse(service.issue_token())


async def create_response(service: OleriaService, request: Request) -> Response:
    try:
        body = json.loads(await request.body())
        download = parse_download_request(service, body)
    except json.JSONDecodeError as exc:
        return error(400, "invalid_request", f"body is not JSON: {exc}")
    except Refused as exc:
        return error(400, exc.code, exc.message)
    if download.context in service.settings.forbidden_contexts:
        return error(403, "forbidden", f"this client may not export {download.context!r}")
    fault = next(
        (
            kind
            for kind in ("job_failure", "never_finish")
            if service.state.faults.take(kind, request.url.path)
        ),
        None,
    )
    service.downloads[download.id] = download
    service.set_status(download, "accepted")
    download.task = asyncio.create_task(service.run(download, fault))
    return JSONResponse(
        {"id": download.id, "status": download.status}, status_code=service.settings.create_status
    )


def parse_download_request(service: OleriaService, body: Any) -> Download:
    """A ``POST /v1/downloads`` body read by the simulator's rules, or :class:`Refused`."""
    settings = service.settings
    query = read_download_request(body, settings.dialect())
    wall_now = dt.datetime.now(dt.UTC)
    download = Download(
        id=service.new_id(),
        query=query,
        created_at=wall_now,
        data_now=data_now(wall_now),
        latency=service.latency(),
        source_rows=settings.rows,
    )
    if settings.strict_fields:
        check_fields(service.dataset(download).header, query)
    return download


def check_fields(header: tuple[str, ...], query: DownloadQuery) -> None:
    """CHOICE: a field the context's columns lack is refused (``strict_fields``)."""
    for where_, name in checked_fields(query):
        if name not in header:
            raise Refused(
                where_,
                f"unknown field {name!r} for context {query.context!r} "
                f"(fields: {', '.join(header)})",
            )


def status_body(service: OleriaService, download: Download, path: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": download.id,
        "status": download.status,
        "context": download.context,
        "createdAt": download.created_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    if download.status == "completed":
        body["url"] = service.url_for(download, path)
    if download.error is not None:
        body["error"] = download.error
    return body


# --------------------------------------------------------------------------- download origin


def s3_error(code: str, message: str, status: int = 403, **extra: str) -> Response:
    """S3's XML error document (403 for every presigned-url problem)."""
    fields = "".join(f"<{k}>{v}</{k}>" for k, v in extra.items())
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>{fields}"
        f"<RequestId>{secrets.token_hex(8).upper()}</RequestId></Error>"
    )
    return Response(xml, status_code=status, media_type="application/xml")


def check_presigned(service: OleriaService, path: str, query: Mapping[str, str]) -> Response | None:
    """403 unless ``query`` is a valid, unexpired signature of ``path``."""
    required = ("X-Amz-Algorithm", "X-Amz-Date", "X-Amz-Expires", "X-Amz-Signature")
    if any(name not in query for name in required):
        return s3_error("AccessDenied", "Access Denied")
    expected = service.signature(path, query)
    if not hmac.compare_digest(expected, query["X-Amz-Signature"]):
        return s3_error(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        )
    signed = dt.datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    expires = signed + dt.timedelta(seconds=int(query["X-Amz-Expires"]))
    now = dt.datetime.now(dt.UTC)
    if now > expires:
        return s3_error(
            "AccessDenied",
            "Request has expired",
            Expires=expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            ServerTime=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
    return None


def build_download_app(service: OleriaService) -> FastAPI:
    app = FastAPI(title="Oleria download origin (simulator, S3-like)")
    install_common(app, service.state)

    @app.get(f"/{DOWNLOAD_BUCKET}/{{download_id}}/{{filename}}")
    async def get_object(download_id: str, filename: str, request: Request) -> Response:
        path = request.url.path
        problem = check_presigned(service, path, dict(request.query_params))
        if problem is not None:
            return problem
        download = service.downloads.get(download_id)
        if download is None or download.status != "completed":
            return s3_error("NoSuchKey", "The specified key does not exist.", status=404)
        failed = service.state.faults.take("server_error", path)
        if failed is not None:
            return s3_error("InternalError", "We encountered an internal error.", failed.status)
        try:
            byte_range = requested_range(request.headers.get("range"), download.size)
        except UnsatisfiableRange:
            message = "The requested range is not satisfiable"
            return s3_error("InvalidRange", message, 416, ActualObjectSize=str(download.size))
        return object_response(service, download, path, byte_range)

    return app


def object_response(
    service: OleriaService, download: Download, path: str, byte_range: tuple[int, int] | None
) -> StreamingResponse:
    def finished() -> None:
        download.downloads += 1
        service.publish(download)

    filename = f"{download.context}-{download.id}.csv"
    return download_response(
        service.state,
        path,
        chunks=service.chunks(download),
        size=download.size,
        media_type="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "x-amz-request-id": secrets.token_hex(8).upper(),
            **({"Accept-Ranges": "bytes"} if download.size is not None else {}),
        },
        on_complete=finished,
        byte_range=byte_range,
    )


# --------------------------------------------------------------------------- start


def start(
    *, host: str = "127.0.0.1", port: int = 0, seed: int = 0, **settings: Any
) -> RunningSimulator:
    """Start both origins; the connection carries the API origin and ``extra.token_url``."""
    faults = settings.pop("faults", None) or []
    config = OleriaSettings(**settings)
    state = new_state(VENDOR, seed=seed, settings=config, faults=faults)
    service = OleriaService(state, config)
    downloads = SimulatorServer(build_download_app(service), host=host, port=config.download_port)
    public_host = config.download_host or ("127.0.0.1" if host in {"0.0.0.0", "::"} else host)
    service.download_origin = f"http://{public_host}:{downloads.port}"
    api = SimulatorServer(build_api_app(service), host=host, port=port)
    downloads.start()
    try:
        api.start()
    except Exception:
        downloads.stop()
        raise
    extra: dict[str, Any] = {"token_url": f"{api.base_url}{TOKEN_PATH}"}
    if config.audience is not None:
        extra["audience"] = config.audience
    return RunningSimulator(
        vendor=VENDOR,
        base_url=api.base_url,
        credentials={"login": config.client_id, "password": config.client_secret},
        extra=extra,
        servers=[api, downloads],
    )


__all__ = ["OleriaService", "OleriaSettings", "build_api_app", "build_download_app", "start"]
