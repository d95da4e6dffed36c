"""Oleria downloads API: connection, OAuth2 client credentials, paths and status words.

``POST /v1/downloads`` starts a CSV export; ``GET /v1/downloads/{id}`` reports
``accepted | completed | failed`` and, once completed, a presigned S3 ``url`` valid for
five minutes that needs (and gets) no Oleria credentials. Errors are ``{code, message}``.
A submission whose answer was lost cannot be recovered (no download listing): the task
fails saying a download may exist.

``test_connection`` gets a token and reads the status of a download that cannot exist
(the nil UUID): Oleria documents no listing, and its 404 ``{code, message}`` comes only
to a client whose token the API accepted. Nothing is started.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin

import httpx

from compliance_exports.core.auth import OAuth2ClientCredentials
from compliance_exports.core.errors import FatalError
from compliance_exports.core.hooks import ExportHook, extra_flag
from compliance_exports.core.http import ApiCall, VendorResponseError, check_base_url
from compliance_exports.core.states import ExportPhase, ExportState, StatusMap
from compliance_exports.vendors.oleria.connection import CONNECTION

DOWNLOADS = "/v1/downloads"
#: a download id no tenant has (the nil UUID): test_connection reads its status
PROBE_ID = "00000000-0000-0000-0000-000000000000"


class OleriaHook(ExportHook):
    """Talks to Oleria's downloads API through an ``oleria`` connection."""

    conn_name_attr = "oleria_conn_id"
    default_conn_name = "oleria_default"
    conn_type = CONNECTION.conn_type
    hook_name = CONNECTION.hook_name
    vendor = "oleria"
    status_map = StatusMap(
        "oleria",
        {
            "accepted": ExportPhase.PENDING,
            "completed": ExportPhase.SUCCEEDED,
            "failed": ExportPhase.FAILED,
        },
    )

    def base_url_of(self, conn: Any) -> str:
        base = super().base_url_of(conn)
        return base.removesuffix("/v1")  # tolerate a host given with the version segment

    def auth_for(self, conn: Any, base_url: str) -> httpx.Auth:
        token_url = urljoin(base_url + "/", self.required_extra(conn, "token_url"))
        check_base_url(
            token_url, allow_insecure_http=extra_flag(conn.extra_dejson, "allow_insecure_http")
        )
        return OAuth2ClientCredentials(
            token_url=token_url,
            client_id=conn.login or "",
            client_secret=conn.password or "",
            audience=conn.extra_dejson.get("audience"),
            error_parser=self.parse_error,
        )

    def probe_call(self) -> ApiCall:
        return ApiCall("GET", f"{DOWNLOADS}/{PROBE_ID}", ok=(200, 404))

    def probe_problem(self, response: httpx.Response) -> str | None:
        body = self.json_or_none(response)
        if response.status_code == 404 and not (
            isinstance(body, dict) and "code" in body and "message" in body
        ):
            return "not Oleria's {code, message} body: is the host Oleria's API base URL?"
        return None

    def submit_call(self, request: Mapping[str, Any]) -> ApiCall:
        return ApiCall("POST", DOWNLOADS, json=dict(request), ok=(200, 201, 202))

    def job_id_of(self, response: httpx.Response) -> str:
        body = self.json_of(response, "oleria POST /v1/downloads")
        if not body.get("id"):
            raise FatalError("oleria POST /v1/downloads: the answer has no id")
        return str(body["id"])

    def status_call(self, job_id: str) -> ApiCall:
        return ApiCall("GET", f"{DOWNLOADS}/{job_id}")

    def state_of(self, job_id: str, response: httpx.Response) -> ExportState:
        body = self.json_of(response, f"oleria GET /v1/downloads/{job_id}")
        raw = str(body.get("status", ""))
        error = body.get("error") or {}
        return ExportState(
            job_id=job_id,
            phase=self.status_map.phase_of(raw),
            raw_status=raw,
            message=_error_text(error) if isinstance(error, dict) and error else None,
            download_url=body.get("url"),
        )

    def download_call(self, state: ExportState, options: Mapping[str, Any]) -> ApiCall:
        if not state.download_url:
            raise FatalError(f"oleria download {state.job_id} is completed but has no url")
        return ApiCall("GET", state.download_url, headers={"Accept-Encoding": "identity"})

    def default_filename(self, state: ExportState, options: Mapping[str, Any]) -> str:
        return f"{options.get('context', 'oleria')}-{state.job_id}.csv"

    def error_message(self, body: Mapping[str, Any]) -> str:
        return _error_text(body)

    def is_expired_link(self, error: VendorResponseError) -> bool:
        text = error.vendor_message.lower()
        return error.status_code == 403 and ("accessdenied" in text or "expired" in text)


def _error_text(error: Mapping[str, Any]) -> str:
    code, message = error.get("code"), error.get("message")
    return f"{code}: {message}" if code and message else str(message or code or error)
