"""Simulator of Veza's access review export API (VENDOR_APIS.md section 2).

``POST /api/preview/awf/exports/access_review:create`` starts an export (CSV ``format``
0 or XLSX 6) of a certification's review rows, optionally filtered (SCIM ``filter`` on
``source.``/``destination.`` fields, ``mutable_filter`` on the decision fields),
ordered (``order_by``) or diffed against a previous certification (a ``change``
column). ``GET .../access_review/{id}`` reports ``CREATED -> PROCESSING -> FINISHED |
FAILED | CANCELLED``; a FINISHED export turns ``EXPIRED`` after ``retention`` seconds.
``GET .../access_review/{id}:download`` streams the file. Errors are google.rpc.Status
bodies ``{code, message, details}`` (all DOC). The request rules are the simulator's
own reading of the vendor's document (:mod:`include.simulators.veza_rules`); SCIM
filters are parsed by scim2-filter-parser (:mod:`include.simulators.veza_scim`).

CHOICES (switchable in :class:`VezaSettings`, the least convenient in :data:`HOSTILE`):
the ``{"value": {...}}`` envelope (or a bare object), ``id`` (or ``export_id``), bare
status words (or ``EXPORT_STATUS_`` prefixed), ``format`` answered as a number, a
name, an enum name, absent when 0 or always absent, a download before FINISHED
answered 400 (or 412), 429 + Retry-After in seconds (or as an HTTP date) for rate
limits, case-insensitive SCIM string matching (or case-exact), nulls last for
ascending ``order_by`` keys and first for descending ones.
Veza documents no cancel endpoint and this simulator offers none: CANCELLED is
reached through the admin action ``POST /_sim/exports/{id}/cancel``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import xlsxwriter
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from include.simulators import RunningSimulator, veza_rules, veza_scim
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
FILE_CHUNK_BYTES = 64 * 1024

# google.rpc.Code values (DOC: 3 5 7 8 9 16; 13 and 14 for injected server errors).
INVALID_ARGUMENT = 3
NOT_FOUND = 5
PERMISSION_DENIED = 7
RESOURCE_EXHAUSTED = 8
FAILED_PRECONDITION = 9
INTERNAL = 13
UNAVAILABLE = 14
UNAUTHENTICATED = 16


FormatField = Literal["number", "name", "enum_name", "proto3", "absent"]
"""``number``: 0 / 6; ``name``: "CSV" / "XLSX"; ``enum_name``: "EXPORT_FORMAT_CSV" /
"EXPORT_FORMAT_XLSX"; ``proto3``: the number, left out when 0 (proto3 JSON drops zero
values); ``absent``: never sent."""
FORMAT_FIELDS: tuple[str, ...] = ("number", "name", "enum_name", "proto3", "absent")
RetryAfterForm = Literal["fault", "seconds", "http-date"]
"""``fault``: as the armed rate_limit fault says (seconds unless it asks otherwise)."""


@dataclass
class VezaSettings:
    """Runtime behaviour of the Veza simulator (patchable through ``/_sim/config``)."""

    api_key: str = "veza-api-key"
    rows: int = 500  # review rows of every certification before filters
    latency: float = 0.2  # seconds from create to FINISHED
    latency_max: float | None = None  # if set: a seeded random latency in [latency, max]
    retention: float = 3600.0  # seconds a FINISHED file stays downloadable (then EXPIRED)
    envelope: bool = True  # CHOICE: {"value": {...}} (Veza's convention) or a bare object
    id_field: str = "id"  # CHOICE: "id" or "export_id" in the response
    status_prefix: bool = False  # CHOICE: EXPORT_STATUS_FINISHED instead of FINISHED
    format_field: FormatField = "number"  # CHOICE: how a response carries ``format``
    precondition_status: int = 400  # CHOICE: HTTP status of FAILED_PRECONDITION, 400 or 412
    retry_after_form: RetryAfterForm = "fault"  # CHOICE: the 429's Retry-After form
    scim_case_exact: bool = False  # CHOICE: SCIM string comparisons respect case
    strict_fields: bool = True  # filter/order_by on a column the export lacks is a 400
    forbidden_certifications: list[str] = field(default_factory=list)  # answered 403 (code 7)

    def __post_init__(self) -> None:
        if self.id_field not in ("id", "export_id"):
            raise ValueError("id_field must be 'id' or 'export_id'")
        if self.format_field not in FORMAT_FIELDS:
            raise ValueError(f"format_field must be one of {', '.join(FORMAT_FIELDS)}")
        if self.retry_after_form not in ("fault", "seconds", "http-date"):
            raise ValueError("retry_after_form must be 'fault', 'seconds' or 'http-date'")
        if self.precondition_status not in (400, 412):
            raise ValueError("precondition_status must be 400 or 412")
        if self.rows < 0:
            raise ValueError("rows must be >= 0")
        if self.latency_max is not None and self.latency_max < self.latency:
            raise ValueError("latency_max must be >= latency")


HOSTILE: dict[str, Any] = {
    # the doc names only Veza's {"value": ...} convention: no documented alternative to pick
    "envelope": True,
    # "Tolerate export_id for id"
    "id_field": "export_id",
    # "EXPORT_STATUS_ prefixes on status names"
    "status_prefix": True,
    # "format ... absent (proto3 JSON drops zero values)": never tells the file's kind
    "format_field": "absent",
    # "Before FINISHED: 400/412 FAILED_PRECONDITION": 412 is the rarer of the two
    "precondition_status": 412,
    # "429 + Retry-After": an HTTP date (RFC 9110 allows it) rather than seconds
    "retry_after_form": "http-date",
    # RFC 7643 makes case sensitivity the attribute's caseExact; Veza does not say
    "scim_case_exact": True,
}
"""Every Veza CHOICE at its least convenient documented-compatible alternative."""


@dataclass
class AccessReviewExport:
    id: str
    request: veza_rules.ExportRequest
    created_at: dt.datetime
    source_rows: int = 0  # review rows before filters, fixed when the export is created
    where: Callable[[Row], bool] | None = None  # the filters, compiled at creation
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
            form = self.settings.retry_after_form
            if form != "fault":
                limited = dataclasses.replace(limited, retry_after_form=form)
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
        if export.status not in veza_rules.TERMINAL:
            self.set_status(export, status)

    def fail(self, export: AccessReviewExport, code: int, message: str) -> None:
        if export.status not in veza_rules.TERMINAL:
            export.error = {"code": code, "message": message, "details": []}
            self.set_status(export, "FAILED")

    def cancel(self, export: AccessReviewExport) -> bool:
        if export.status in veza_rules.TERMINAL:
            return False
        self.set_status(export, "CANCELLED")
        return True

    # ----------------------------------------------------------------------- files

    def rows(self, export: AccessReviewExport) -> Iterator[Row]:
        """The export's rows, filtered and ordered, streamed."""
        request, where = export.request, export.where
        seed, total = self.state.seed, export.source_rows
        cert, previous = request.certification_id, request.previous_certification_id

        def source() -> Iterator[Row]:
            if previous:
                return veza_diff_rows(
                    seed, total, certification_id=cert, previous_certification_id=previous
                )
            return VEZA_ACCESS_REVIEW.rows(seed, total, variant=cert)

        if not request.order_by:
            return select_rows(source(), where)
        return ordered_rows(
            source(),
            fields=[name for name, _ in request.order_by],
            order=lambda records: order_records(records, request.order_by),
            row_at=lambda index: self.row_at(request, index),
            where=where,
        )

    def row_at(self, request: veza_rules.ExportRequest, index: int) -> Row:
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
        if request.format == veza_rules.XLSX:
            path = self.files / f"{export.id}.xlsx"
            export.rows = write_xlsx(path, request.header, self.rows(export), request.title)
            export.file, export.size = path, path.stat().st_size
            return
        rows = 0

        def counted() -> None:
            nonlocal rows
            rows += 1

        chunks = csv_chunks(request.header, self.rows(export), on_row=counted)
        export.size = sum(len(chunk) for chunk in chunks)
        export.rows = rows

    def chunks(self, export: AccessReviewExport) -> Iterator[bytes]:
        request = export.request
        if export.file is not None:
            return read_chunks(export.file)
        if request.previous_certification_id or request.order_by or export.where is not None:
            return csv_chunks(request.header, self.rows(export))
        seed, cert = self.state.seed, request.certification_id  # the whole table: fast path
        return VEZA_ACCESS_REVIEW.csv_chunks(seed, export.source_rows, variant=cert)


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


def compile_where(
    request: veza_rules.ExportRequest, settings: VezaSettings
) -> Callable[[Row], bool] | None:
    """Both filters as one row predicate (None without filters)."""
    predicates = [
        veza_scim.compile_filter(node, case_exact=settings.scim_case_exact)
        for node in request.nodes()
    ]
    if not predicates:
        return None
    if len(predicates) == 1:
        return predicates[0]
    first, second = predicates
    return lambda row: first(row) and second(row)


def export_body(service: VezaService, export: AccessReviewExport) -> dict[str, Any]:
    """The export object (DOC fields), shaped by the CHOICE settings."""
    settings = service.settings
    status = export.status
    value: dict[str, Any] = {
        settings.id_field: export.id,
        "status": f"{veza_rules.STATUS_PREFIX}{status}" if settings.status_prefix else status,
        **format_entry(export.request.format, settings.format_field),
        "certification_id": export.request.certification_id,
        "created_at": _rfc3339(export.created_at),
        "updated_at": _rfc3339(export.updated_at or export.created_at),
    }
    if export.request.previous_certification_id:
        value["previous_certification_id"] = export.request.previous_certification_id
    if export.error is not None:
        value["error"] = export.error
    return {"value": value} if settings.envelope else value


def format_entry(export_format: int, form: str) -> dict[str, Any]:
    """CHOICE: ``format`` as a number, a name, an enum name, proto3 (no 0) or absent."""
    name = veza_rules.FORMAT_NAMES[export_format]
    if form == "name":
        return {"format": name}
    if form == "enum_name":
        return {"format": f"EXPORT_FORMAT_{name}"}
    if form == "absent" or (form == "proto3" and export_format == 0):
        return {}
    return {"format": export_format}


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
    settings = service.settings
    try:
        body = json.loads(await request.body())
        export_request = veza_rules.parse_request(body, strict=settings.strict_fields)
    except json.JSONDecodeError as exc:
        return rpc_error(400, INVALID_ARGUMENT, f"body is not JSON: {exc}")
    except veza_rules.RequestError as exc:
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
        source_rows=settings.rows,
        where=compile_where(export_request, settings),
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
    extension = veza_rules.EXTENSIONS[request.format]
    stem = re.sub(
        r"[^A-Za-z0-9_.-]+", "_", request.title or f"access_review_{request.certification_id}"
    )
    return download_response(
        service.state,
        path,
        chunks=service.chunks(export),
        size=export.size,
        media_type=veza_rules.MEDIA_TYPES[request.format],
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


__all__ = ["HOSTILE", "VezaService", "VezaSettings", "build_app", "start"]
