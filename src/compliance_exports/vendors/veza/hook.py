"""Veza access review export (``/api/preview/awf/exports/``): paths, statuses, errors.

Answers come in Veza's single-object envelope ``{"value": {...}}`` (a bare object is
tolerated), the id as ``id`` or ``export_id``, the status with or without the
``EXPORT_STATUS_`` prefix, ``format`` as a number (0, 6), a name (``"XLSX"``,
``"EXPORT_FORMAT_XLSX"``) or absent (proto3 JSON drops zero values). The file's kind
is known from the request and confirmed by the download: the default file name takes
its extension from the request's format when the download options carry it
(``options["format"]``), else from the status answer's ``format`` when recognisable,
else from the download's Content-Type. Errors are google.rpc.Status
``{code, message, details}``. A create whose answer was lost cannot be recovered (no
export listing is documented): the task fails saying an export may exist.

``test_connection`` reads the status of an export that cannot exist (the nil UUID): Veza
documents no listing, and its 404 google.rpc.Status ``NOT_FOUND`` comes only to a key
the API accepted (a wrong one gets 401 ``UNAUTHENTICATED``). Nothing is started.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from compliance_exports.core.auth import BearerKey
from compliance_exports.core.errors import FatalError
from compliance_exports.core.hooks import Download, ExportHook
from compliance_exports.core.http import ApiCall, VendorResponseError
from compliance_exports.core.states import ExportPhase, ExportState, StatusMap, vendor_instant
from compliance_exports.vendors.veza.connection import CONNECTION
from compliance_exports.vendors.veza.validation import (
    CONTENT_TYPES,
    FILE_EXTENSIONS,
    FORMAT_NAMES,
    STATUS_PREFIX,
)

EXPORTS = "/api/preview/awf/exports/access_review"
#: an export id no tenant has (the nil UUID): test_connection reads its status
PROBE_ID = "00000000-0000-0000-0000-000000000000"
RPC_CODES = {
    3: "INVALID_ARGUMENT",
    5: "NOT_FOUND",
    7: "PERMISSION_DENIED",
    8: "RESOURCE_EXHAUSTED",
    9: "FAILED_PRECONDITION",
    16: "UNAUTHENTICATED",
}


class VezaHook(ExportHook):
    """Talks to Veza's access review export API through a ``veza`` connection."""

    conn_name_attr = "veza_conn_id"
    default_conn_name = "veza_default"
    conn_type = CONNECTION.conn_type
    hook_name = CONNECTION.hook_name
    vendor = "veza"
    status_map = StatusMap(
        "veza",
        {
            "CREATED": ExportPhase.PENDING,
            "PROCESSING": ExportPhase.RUNNING,
            "FINISHED": ExportPhase.SUCCEEDED,
            "FAILED": ExportPhase.FAILED,
            "CANCELLED": ExportPhase.CANCELLED,
            "EXPIRED": ExportPhase.EXPIRED,
        },
        strip_prefix=STATUS_PREFIX,
    )

    def auth_for(self, conn: Any, base_url: str) -> httpx.Auth:
        return BearerKey(conn.password or "")

    def probe_call(self) -> ApiCall:
        return ApiCall("GET", f"{EXPORTS}/{PROBE_ID}", ok=(200, 404))

    def probe_problem(self, response: httpx.Response) -> str | None:
        if response.status_code != 404:
            return None
        body = self.json_or_none(response)
        code = body.get("code") if isinstance(body, dict) else None
        if code in (5, "NOT_FOUND"):
            return None
        return "not Veza's NOT_FOUND status body: is the host the Veza URL?"

    def submit_call(self, request: Mapping[str, Any]) -> ApiCall:
        return ApiCall("POST", f"{EXPORTS}:create", json=dict(request))

    def job_id_of(self, response: httpx.Response) -> str:
        value = self._value(response, "veza access_review:create")
        job_id = value.get("id") or value.get("export_id")
        if not job_id:
            raise FatalError("veza access_review:create: the answer has no id or export_id")
        return str(job_id)

    def status_call(self, job_id: str) -> ApiCall:
        return ApiCall("GET", f"{EXPORTS}/{job_id}")

    def state_of(self, job_id: str, response: httpx.Response) -> ExportState:
        value = self._value(response, f"veza export {job_id}")
        raw = str(value.get("status", ""))
        error = value.get("error")
        return ExportState(
            job_id=job_id,
            phase=self.status_map.phase_of(raw),
            raw_status=raw,
            message=_rpc_text(error) if isinstance(error, dict) else None,
            progress=value.get("updated_at"),
            # a FINISHED export's last update is when Veza produced the file
            details={"format": value.get("format"), "produced_at": _finished_at(raw, value)},
        )

    def download_call(self, state: ExportState, options: Mapping[str, Any]) -> ApiCall:
        return ApiCall(
            "GET", f"{EXPORTS}/{state.job_id}:download", headers={"Accept-Encoding": "identity"}
        )

    def default_filename(self, state: ExportState, options: Mapping[str, Any]) -> str:
        """``access_review_<id>.<ext>``; no extension when neither format is recognisable.

        :meth:`describe_download` then adds the extension of the Content-Type.
        """
        extension = extension_of(options.get("format")) or extension_of(state.details.get("format"))
        stem = f"access_review_{state.job_id}"
        return f"{stem}.{extension}" if extension else stem

    @staticmethod
    def describe_download(response: httpx.Response, fallback_name: str) -> Download:
        """As the base class; a name without extension gets the Content-Type's."""
        download = ExportHook.describe_download(response, fallback_name)
        if "." not in download.filename:
            mime = download.content_type.split(";")[0].strip().lower()
            extension = EXTENSIONS_BY_CONTENT_TYPE.get(mime)
            if extension:
                download.filename = f"{download.filename}.{extension}"
        return download

    def error_message(self, body: Mapping[str, Any]) -> str:
        return _rpc_text(body)

    def is_expired_link(self, error: VendorResponseError) -> bool:
        """The file went away between the status check and the download (EXPIRED)."""
        return error.status_code in (400, 412) and "FAILED_PRECONDITION" in error.vendor_message

    def _value(self, response: httpx.Response, what: str) -> dict[str, Any]:
        body = self.json_of(response, what)
        value = body.get("value", body)
        if not isinstance(value, dict):
            raise FatalError(f"{what}: 'value' is not an object")
        return value


EXTENSIONS_BY_CONTENT_TYPE: Mapping[str, str] = {
    CONTENT_TYPES[code]: FILE_EXTENSIONS[code] for code in FILE_EXTENSIONS
}


def extension_of(format: Any) -> str | None:
    """The file extension of a ``format`` as a number (0, 6), a numeric string or a name
    (``"CSV"``, ``"XLSX"``, ``"EXPORT_FORMAT_XLSX"``); None when absent or unknown."""
    if isinstance(format, str):
        word = format.strip().upper().removeprefix("EXPORT_FORMAT_")
        codes = {name: code for code, name in FORMAT_NAMES.items()}
        format = int(word) if word.isdigit() else codes.get(word)
    if isinstance(format, bool) or not isinstance(format, int):
        return None
    return FILE_EXTENSIONS.get(format)


def _rpc_text(status: Mapping[str, Any]) -> str:
    code, message = status.get("code"), status.get("message") or ""
    name = RPC_CODES.get(code, str(code)) if isinstance(code, int) else code
    return f"{name}: {message}" if name else str(message)


def _finished_at(status: str, value: Mapping[str, Any]) -> str | None:
    if not status.upper().endswith("FINISHED"):
        return None
    return vendor_instant(value.get("updated_at"))
