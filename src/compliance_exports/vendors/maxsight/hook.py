"""Maxsight audit events export: one synchronous GET whose body is the file.

``GET {base}/v5/audit-sentinel/events/export`` with the ``apikey`` header; no job, no
polling. Errors are ``{"errors": [{"code", "message", "source"}]}``; rate limits come as
``X-RateLimit-Remaining`` / ``X-RateLimit-Reset-Secs`` (and ``Retry-After`` on a 429).

``test_connection``: Maxsight documents no other endpoint (no job, no count, no list), so
the probe is the export itself over an empty window: one instant (both bounds inclusive)
years before any tenant's events, as a CSV. It proves the key with a 200 that is a CSV
(:meth:`MaxsightHook.probe_problem`: ``Content-Type: text/csv``, or a header line of the
audit events' columns), so a proxy's login page or another server answering 200 HTML
fails; nothing is exported.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx

from compliance_exports.core.auth import HeaderKey
from compliance_exports.core.hooks import Download, ExportHook
from compliance_exports.core.http import ApiCall, default_retry_after
from compliance_exports.vendors.maxsight.connection import CONNECTION
from compliance_exports.vendors.maxsight.query import AuditExportQuery

EXPORT_PATH = "/v5/audit-sentinel/events/export"
#: the probe's window: one instant with no audit event at any tenant
PROBE_INSTANT = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
#: columns the header line of every audit events CSV names (VENDOR_APIS.md: event_id,
#: timestamp, auditee_id, ...; the PDF windows are planned on ``timestamp``)
PROBE_COLUMNS = frozenset({"event_id", "timestamp"})


class MaxsightHook(ExportHook):
    """Talks to Maxsight's audit export through a ``maxsight`` connection."""

    conn_name_attr = "maxsight_conn_id"
    default_conn_name = "maxsight_default"
    conn_type = CONNECTION.conn_type
    hook_name = CONNECTION.hook_name
    vendor = "maxsight"

    def auth_for(self, conn: Any, base_url: str) -> httpx.Auth:
        return HeaderKey(conn.password or "", header="apikey")

    def probe_call(self) -> ApiCall:
        return self.export_call(
            AuditExportQuery(range_start=PROBE_INSTANT, range_end=PROBE_INSTANT)
        )

    def probe_problem(self, response: httpx.Response) -> str | None:
        """A 200 proves nothing unless it is the CSV asked for: ``text/csv``, or (a
        gateway that relabels it) a first line naming the audit events' columns."""
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if media_type == "text/csv" or _header_of(response.text) >= PROBE_COLUMNS:
            return None
        return (
            f"not an audit events CSV (Content-Type {media_type or 'absent'}, no header "
            f"line of {', '.join(sorted(PROBE_COLUMNS))}): is the host Maxsight's API base URL?"
        )

    def export_call(self, query: AuditExportQuery) -> ApiCall:
        return ApiCall(
            "GET",
            EXPORT_PATH,
            params=query.to_params(),
            headers={"Accept-Encoding": "identity"},
        )

    @contextmanager
    def open_export(self, query: AuditExportQuery) -> Iterator[Download]:
        """Stream the export file for ``query`` (retried like every call until it opens)."""
        transport = self.get_transport()
        call = self.export_call(query)
        with transport.open(call) as response:
            download = self.describe_download(response, f"audit-events.{query.file_type}")
            download.source_uri = transport.endpoint_uri(call.path)
            yield download

    def error_message(self, body: Mapping[str, Any]) -> str:
        errors = body.get("errors")
        if not isinstance(errors, list):
            return str(body)[:300]
        return "; ".join(_error_text(e) for e in errors if isinstance(e, dict))

    def retry_after_of(self, response: httpx.Response) -> float | None:
        waited = default_retry_after(response)
        if waited is not None:
            return waited
        if response.headers.get("X-RateLimit-Remaining") == "0":
            reset = response.headers.get("X-RateLimit-Reset-Secs", "")
            return float(reset) if reset.isdigit() else None
        return None


def _header_of(text: str) -> set[str]:
    """The column names of ``text``'s first line, read as a CSV header (lower case)."""
    first = text.lstrip("\ufeff").partition("\n")[0]
    try:
        return {name.strip().lower() for row in csv.reader([first]) for name in row}
    except csv.Error:
        return set()


def _error_text(error: dict[str, Any]) -> str:
    source = f" ({error['source']})" if error.get("source") else ""
    return f"{error.get('code', 'error')}: {error.get('message', '')}{source}"
