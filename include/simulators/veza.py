"""Simulator of Veza's access review export API (VENDOR_APIS.md section 2).

``POST /api/preview/awf/exports/access_review:create`` starts an export (CSV ``format``
0 or XLSX 6) of a certification's review rows, optionally filtered (SCIM ``filter`` on
``source.``/``destination.`` fields, ``mutable_filter`` on the decision fields),
ordered (``order_by``) or diffed against a previous certification (a ``change``
column). ``GET .../access_review/{id}`` reports ``CREATED -> PROCESSING -> FINISHED |
FAILED | CANCELLED``; a FINISHED export turns ``EXPIRED`` after ``retention`` seconds.
``GET .../access_review/{id}:download`` streams the file. Errors are google.rpc.Status
bodies ``{code, message, details}``. Requests are validated with
``compliance_exports.vendors.veza.validation`` (the same rules the client uses).

CHOICES (switchable in :class:`VezaSettings`): the ``{"value": {...}}`` envelope with
``id`` (or ``export_id``), bare status words (or ``EXPORT_STATUS_`` prefixed), a
download before FINISHED answered 400 (or 412), 429 + Retry-After for rate limits,
nulls last for ascending ``order_by`` keys and first for descending ones.
Veza documents no cancel endpoint and this simulator offers none: CANCELLED is
reached through the admin action ``POST /_sim/exports/{id}/cancel``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xlsxwriter
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from compliance_exports.core.errors import ExportValidationError
from compliance_exports.vendors.veza import scim, validation
from include.simulators import RunningSimulator
from include.simulators.base import (
    SeededJobs,
    SimState,
    SimulatorServer,
    install_common,
    new_state,
)
from include.simulators.data import (
    VEZA_ACCESS_REVIEW,
    Row,
    csv_chunks,
    download_response,
    format_timestamp,
    ordered_rows,
    select_rows,
    veza_diff_row,
    veza_diff_rows,
)

VENDOR = "veza"
PREFIX = "/api/preview/awf/exports/access_review"
CHANGE_COLUMN = "change"
FILE_CHUNK_BYTES = 64 * 1024

# google.rpc.Code values used by Veza's API.
INVALID_ARGUMENT = 3
NOT_FOUND = 5
PERMISSION_DENIED = 7
RESOURCE_EXHAUSTED = 8
FAILED_PRECONDITION = 9
INTERNAL = 13
UNAVAILABLE = 14
UNAUTHENTICATED = 16


@dataclass
class VezaSettings:
    """Runtime behaviour of the Veza simulator (patchable through ``/_sim/config``)."""

    api_key: str = "veza-api-key"
    rows: int = 500  # review rows of every certification before filters
    latency: float = 0.2  # seconds from create to FINISHED
    latency_max: float | None = None  # if set: a seeded random latency in [latency, max]
    retention: float = 3600.0  # seconds a FINISHED file stays downloadable (then EXPIRED)
    id_field: str = "id"  # CHOICE: "id" or "export_id" in the response
    status_prefix: bool = False  # CHOICE: EXPORT_STATUS_FINISHED instead of FINISHED
    precondition_status: int = 400  # CHOICE: HTTP status of FAILED_PRECONDITION, 400 or 412
    strict_fields: bool = True  # filter/order_by on a column the export lacks is a 400
    forbidden_certifications: list[str] = field(default_factory=list)  # answered 403 (code 7)

    def __post_init__(self) -> None:
        if self.id_field not in ("id", "export_id"):
            raise ValueError("id_field must be 'id' or 'export_id'")
        if self.precondition_status not in (400, 412):
            raise ValueError("precondition_status must be 400 or 412")
        if self.rows < 0:
            raise ValueError("rows must be >= 0")
        if self.latency_max is not None and self.latency_max < self.latency:
            raise ValueError("latency_max must be >= latency")


@dataclass
class ExportRequest:
    """A validated ``access_review:create`` body."""

    format: int
    certification_id: str
    previous_certification_id: str | None = None
    title: str | None = None
    filter: scim.Node | None = None
    mutable_filter: scim.Node | None = None
    order_by: list[tuple[str, bool]] = field(default_factory=list)
    source_rows: int = 0  # review rows before filters, fixed when the export is created

    @property
    def header(self) -> tuple[str, ...]:
        base = VEZA_ACCESS_REVIEW.header
        return (*base, CHANGE_COLUMN) if self.previous_certification_id else base

    def matches(self, row: Row) -> bool:
        return all(node is None or scim.evaluate(node, row) for node in self.nodes())

    def nodes(self) -> tuple[scim.Node | None, ...]:
        return (self.filter, self.mutable_filter)


@dataclass
class AccessReviewExport:
    id: str
    request: ExportRequest
    created_at: dt.datetime
    status: str = "CREATED"
    updated_at: dt.datetime | None = None
    error: dict[str, Any] | None = None
    finished_at: dt.datetime | None = None
    rows: int | None = None
    size: int | None = None
    file: Path | None = None
    downloads: int = 0
    latency: float = 0.0
    task: asyncio.Task[None] | None = None

    def facts(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "status": self.status,
            "format": self.request.format,
            "certification_id": self.request.certification_id,
            "bytes": self.size,
            "downloads": self.downloads,
            "latency": self.latency,
        }


def rpc_error(
    http_status: int, code: int, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """A google.rpc.Status error body."""
    body = {"code": code, "message": message, "details": []}
    return JSONResponse(body, status_code=http_status, headers=headers)


class VezaService(SeededJobs):
    settings: VezaSettings

    def __init__(self, state: SimState, settings: VezaSettings) -> None:
        super().__init__(state, settings)
        self.exports: dict[str, AccessReviewExport] = {}
        self.files = Path(tempfile.mkdtemp(prefix="veza-sim-"))
        state.facts["exports"] = {}

    # ----------------------------------------------------------------------- requests

    def auth_problem(self, request: Request) -> JSONResponse | None:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or key != self.settings.api_key:
            return rpc_error(401, UNAUTHENTICATED, "invalid or missing API key")
        return None

    def fault_problem(self, path: str) -> JSONResponse | None:
        limited = self.state.faults.take("rate_limit", path)
        if limited is not None:
            headers = {"Retry-After": limited.retry_after_header()}
            return rpc_error(429, RESOURCE_EXHAUSTED, "rate limit exceeded", headers)
        failed = self.state.faults.take("server_error", path)
        if failed is not None:
            code = UNAVAILABLE if failed.status == 503 else INTERNAL
            return rpc_error(failed.status, code, "internal error")
        return None

    # ----------------------------------------------------------------------- lifecycle

    def set_status(self, export: AccessReviewExport, status: str) -> None:
        export.status = status
        export.updated_at = dt.datetime.now(dt.UTC)
        self.publish(export)

    def publish(self, export: AccessReviewExport) -> None:
        """Update ``/_sim/facts`` (copy on write: readers never see a dict change size)."""
        with self._lock:
            exports = dict(self.state.facts["exports"])
            exports[export.id] = export.facts()
            self.state.facts["exports"] = exports

    def refresh(self, export: AccessReviewExport, path: str) -> None:
        """Turn a FINISHED export EXPIRED when its retention ran out (or the fault fires)."""
        if export.status != "FINISHED" or export.finished_at is None:
            return
        age = (dt.datetime.now(dt.UTC) - export.finished_at).total_seconds()
        if age >= self.settings.retention or self.state.faults.take("veza_expired", path):
            self.expire(export)

    def expire(self, export: AccessReviewExport) -> None:
        if export.file is not None:
            export.file.unlink(missing_ok=True)
        self.set_status(export, "EXPIRED")

    async def run(self, export: AccessReviewExport, fault: str | None) -> None:
        """The export job: CREATED, then PROCESSING, then the file (or a failure)."""
        await asyncio.sleep(export.latency / 4)
        self.advance(export, "PROCESSING")
        await asyncio.sleep(export.latency * 3 / 4)
        if fault == "never_finish" or export.status == "CANCELLED":
            return
        if fault == "job_failure":
            self.fail(export, INTERNAL, "export generation failed")
            return
        try:
            await asyncio.to_thread(self.build_file, export)
        except ValueError as exc:  # e.g. a sort over more rows than the simulator indexes
            self.fail(export, FAILED_PRECONDITION, str(exc))
            return
        export.finished_at = dt.datetime.now(dt.UTC)
        self.advance(export, "FINISHED")

    def advance(self, export: AccessReviewExport, status: str) -> None:
        """Move a running export on; a cancelled one stays cancelled."""
        if export.status not in validation.TERMINAL_STATUSES:
            self.set_status(export, status)

    def fail(self, export: AccessReviewExport, code: int, message: str) -> None:
        if export.status not in validation.TERMINAL_STATUSES:
            export.error = {"code": code, "message": message, "details": []}
            self.set_status(export, "FAILED")

    def cancel(self, export: AccessReviewExport) -> bool:
        if export.status in validation.TERMINAL_STATUSES:
            return False
        self.set_status(export, "CANCELLED")
        return True

    # ----------------------------------------------------------------------- files

    def rows(self, request: ExportRequest) -> Iterator[Row]:
        """The export's rows, filtered and ordered, streamed."""
        seed, total = self.state.seed, request.source_rows
        cert, previous = request.certification_id, request.previous_certification_id

        def source() -> Iterator[Row]:
            if previous:
                return veza_diff_rows(
                    seed, total, certification_id=cert, previous_certification_id=previous
                )
            return VEZA_ACCESS_REVIEW.rows(seed, total, variant=cert)

        where = request.matches if any(request.nodes()) else None
        if not request.order_by:
            return select_rows(source(), where)
        return ordered_rows(
            source(),
            fields=[name for name, _ in request.order_by],
            order=lambda records: order_records(records, request.order_by),
            row_at=lambda index: self.row_at(request, index),
            where=where,
        )

    def row_at(self, request: ExportRequest, index: int) -> Row:
        """Row ``index`` of the export before filtering (regenerated for ordered output)."""
        seed, cert = self.state.seed, request.certification_id
        previous = request.previous_certification_id
        if previous:
            return veza_diff_row(
                seed, index, certification_id=cert, previous_certification_id=previous
            )
        return VEZA_ACCESS_REVIEW.row(seed, index, variant=cert)

    def build_file(self, export: AccessReviewExport) -> None:
        """Count the rows and bytes of a CSV, or write the XLSX to a temporary file."""
        request = export.request
        if request.format == validation.FORMAT_XLSX:
            path = self.files / f"{export.id}.xlsx"
            export.rows = write_xlsx(path, request.header, self.rows(request), request.title)
            export.file, export.size = path, path.stat().st_size
            return
        rows = 0

        def counted() -> None:
            nonlocal rows
            rows += 1

        chunks = csv_chunks(request.header, self.rows(request), on_row=counted)
        export.size = sum(len(chunk) for chunk in chunks)
        export.rows = rows

    def chunks(self, export: AccessReviewExport) -> Iterator[bytes]:
        request = export.request
        if export.file is not None:
            return read_chunks(export.file)
        if request.previous_certification_id or request.order_by or any(request.nodes()):
            return csv_chunks(request.header, self.rows(request))
        seed, cert = self.state.seed, request.certification_id  # the whole table: fast path
        return VEZA_ACCESS_REVIEW.csv_chunks(seed, request.source_rows, variant=cert)


def order_records(records: list[Row], keys: Sequence[tuple[str, bool]]) -> list[Row]:
    """Stable multi-key order; nulls last ascending, first descending (CHOICE)."""
    ordered = list(records)
    for name, descending in reversed(keys):
        present = [r for r in ordered if r.get(name) is not None]
        missing = [r for r in ordered if r.get(name) is None]
        present.sort(key=lambda r: sort_value(r[name]), reverse=descending)
        ordered = missing + present if descending else present + missing
    return ordered


def sort_value(value: Any) -> tuple[int, Any]:
    if isinstance(value, bool | int | float):
        return 0, float(value)
    if isinstance(value, dt.datetime):
        return 1, value.timestamp()
    return 2, str(value)


def read_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(FILE_CHUNK_BYTES):
            yield chunk


_SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")


def write_xlsx(path: Path, header: Sequence[str], rows: Iterator[Row], title: str | None) -> int:
    """Write a real workbook row by row (constant memory); return the data row count."""
    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    try:
        sheet_name = _SHEET_FORBIDDEN.sub("_", title or "Access Review")[:31].strip("'")
        workbook.set_properties({"title": title or "Access Review"})
        sheet = workbook.add_worksheet(sheet_name or "Access Review")
        bold = workbook.add_format({"bold": True})
        sheet.write_row(0, 0, list(header), bold)
        count = 0
        for count, row in enumerate(rows, start=1):
            for column, name in enumerate(header):
                write_cell(sheet, count, column, row.get(name))
    finally:
        workbook.close()
    return count


def write_cell(sheet: Any, row: int, column: int, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool):
        sheet.write_boolean(row, column, value)
    elif isinstance(value, int | float):
        sheet.write_number(row, column, value)
    elif isinstance(value, dt.datetime):
        sheet.write_string(row, column, format_timestamp(value))
    else:
        sheet.write_string(row, column, str(value))


# --------------------------------------------------------------------------- requests


def parse_export_request(body: Any, settings: VezaSettings) -> ExportRequest:
    """Validate an ``access_review:create`` body with the shared Veza rules."""
    if not isinstance(body, dict):
        raise ExportValidationError("body", "expected a JSON object")
    unknown = sorted(set(body) - set(CREATE_FIELDS))
    if unknown:
        raise ExportValidationError(
            unknown[0], f"unknown field (allowed: {', '.join(CREATE_FIELDS)})"
        )
    if "format" not in body:
        raise ExportValidationError("format", "is required (0 = CSV, 6 = XLSX)")
    validation.validate_access_review_export(
        format=body["format"],
        certification_id=body.get("certification_id"),
        previous_certification_id=body.get("previous_certification_id"),
        title=body.get("title"),
        filter=body.get("filter"),
        mutable_filter=body.get("mutable_filter"),
        order_by=body.get("order_by"),
    )
    request = ExportRequest(
        format=validation.validate_format(body["format"]),
        certification_id=body["certification_id"],
        previous_certification_id=body.get("previous_certification_id") or None,
        title=body.get("title"),
        filter=validation.validate_filter(body["filter"]) if body.get("filter") else None,
        mutable_filter=(
            validation.validate_mutable_filter(body["mutable_filter"])
            if body.get("mutable_filter")
            else None
        ),
        order_by=validation.parse_order_by(body["order_by"]) if body.get("order_by") else [],
        source_rows=settings.rows,
    )
    if settings.strict_fields:
        check_columns(request)
    return request


CREATE_FIELDS: tuple[str, ...] = (
    "format",
    "certification_id",
    "previous_certification_id",
    "title",
    "filter",
    "mutable_filter",
    "order_by",
)


def check_columns(request: ExportRequest) -> None:
    """Every filtered or ordered attribute must be a column of the export."""
    columns = {name.lower() for name in request.header}
    for name, node in (("filter", request.filter), ("mutable_filter", request.mutable_filter)):
        missing = sorted(
            a for a in (scim.attributes(node) if node else ()) if a.lower() not in columns
        )
        if missing:
            raise ExportValidationError(name, f"unknown attribute {missing[0]!r}")
    for column, _ in request.order_by:
        if column.lower() not in columns:
            raise ExportValidationError("order_by", f"unknown column {column!r}")


def export_body(service: VezaService, export: AccessReviewExport) -> dict[str, Any]:
    settings = service.settings
    status = export.status
    value: dict[str, Any] = {
        settings.id_field: export.id,
        "status": f"{validation.STATUS_PREFIX}{status}" if settings.status_prefix else status,
        "format": export.request.format,
        "certification_id": export.request.certification_id,
        "created_at": _rfc3339(export.created_at),
        "updated_at": _rfc3339(export.updated_at or export.created_at),
    }
    if export.request.previous_certification_id:
        value["previous_certification_id"] = export.request.previous_certification_id
    if export.error is not None:
        value["error"] = export.error
    return {"value": value}


def _rfc3339(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


# --------------------------------------------------------------------------- app


def build_app(service: VezaService) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        shutil.rmtree(service.files, ignore_errors=True)

    app = FastAPI(title="Veza access review export API (simulator)", lifespan=lifespan)
    install_common(app, service.state)

    @app.post("/_sim/exports/{export_id}/cancel")
    async def cancel(export_id: str) -> JSONResponse:  # on the event loop, like the jobs
        export = service.exports.get(export_id)
        if export is None:
            return JSONResponse({"error": f"no export {export_id}"}, status_code=404)
        cancelled = service.cancel(export)
        return JSONResponse({"cancelled": cancelled, "status": export.status})

    @app.post(f"{PREFIX}:create")
    async def create(request: Request) -> Response:
        problem = service.auth_problem(request) or service.fault_problem(request.url.path)
        return problem or await create_response(service, request)

    @app.get(f"{PREFIX}/{{export_id}}:download")
    async def download(export_id: str, request: Request) -> Response:
        problem = service.auth_problem(request) or service.fault_problem(request.url.path)
        return problem or download_file(service, export_id, request.url.path)

    @app.get(f"{PREFIX}/{{export_id}}")
    async def get_export(export_id: str, request: Request) -> Response:
        problem = service.auth_problem(request) or service.fault_problem(request.url.path)
        if problem is not None:
            return problem
        export = service.exports.get(export_id)
        if export is None:
            return rpc_error(404, NOT_FOUND, f"export {export_id} not found")
        service.refresh(export, request.url.path)
        return JSONResponse(export_body(service, export))

    return app


async def create_response(service: VezaService, request: Request) -> Response:
    try:
        export_request = parse_export_request(json.loads(await request.body()), service.settings)
    except json.JSONDecodeError as exc:
        return rpc_error(400, INVALID_ARGUMENT, f"body is not JSON: {exc}")
    except ExportValidationError as exc:
        return rpc_error(400, INVALID_ARGUMENT, str(exc))
    if export_request.certification_id in service.settings.forbidden_certifications:
        message = f"no access to certification {export_request.certification_id}"
        return rpc_error(403, PERMISSION_DENIED, message)
    path = request.url.path
    fault = next(
        (kind for kind in ("job_failure", "never_finish") if service.state.faults.take(kind, path)),
        None,
    )
    export = AccessReviewExport(
        id=service.new_id(),
        request=export_request,
        created_at=dt.datetime.now(dt.UTC),
        latency=service.latency(),
    )
    service.exports[export.id] = export
    service.set_status(export, "CREATED")
    export.task = asyncio.create_task(service.run(export, fault))
    return JSONResponse(export_body(service, export))


def download_file(service: VezaService, export_id: str, path: str) -> Response:
    export = service.exports.get(export_id)
    if export is None:
        return rpc_error(404, NOT_FOUND, f"export {export_id} not found")
    service.refresh(export, path)
    if export.status != "FINISHED":
        message = f"export {export_id} is {export.status}, the file is available once FINISHED"
        return rpc_error(service.settings.precondition_status, FAILED_PRECONDITION, message)

    def finished() -> None:
        export.downloads += 1
        service.publish(export)

    request = export.request
    extension = validation.FILE_EXTENSIONS[request.format]
    stem = re.sub(
        r"[^A-Za-z0-9_.-]+", "_", request.title or f"access_review_{request.certification_id}"
    )
    return download_response(
        service.state,
        path,
        chunks=service.chunks(export),
        size=export.size,
        media_type=validation.CONTENT_TYPES[request.format],
        headers={"Content-Disposition": f'attachment; filename="{stem}.{extension}"'},
        on_complete=finished,
    )


# --------------------------------------------------------------------------- start


def start(
    *, host: str = "127.0.0.1", port: int = 0, seed: int = 0, **settings: Any
) -> RunningSimulator:
    """Start the simulator; the connection's password is the API key."""
    faults = settings.pop("faults", None) or []
    config = VezaSettings(**settings)
    state = new_state(VENDOR, seed=seed, settings=config, faults=faults)
    server = SimulatorServer(build_app(VezaService(state, config)), host=host, port=port).start()
    return RunningSimulator(
        vendor=VENDOR,
        base_url=server.base_url,
        credentials={"password": config.api_key},
        servers=[server],
    )


__all__ = ["VezaService", "VezaSettings", "build_app", "start"]
