"""VezaHook names the file by its kind whatever shape ``format`` takes in the status answer.

VENDOR_APIS.md: tolerate ``format`` "as a number (0, 6), a name ("CSV", "XLSX",
"EXPORT_FORMAT_XLSX") or absent (proto3 JSON drops zero values): the file's kind is
known from the request, and is confirmed by the download's Content-Type or its bytes".
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from compliance_exports.core.states import ExportState
from compliance_exports.vendors.veza.hook import VezaHook

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def state_with(value: dict[str, Any]) -> ExportState:
    body = {"value": {"id": "e1", "status": "FINISHED", **value}}
    return VezaHook().state_of("e1", httpx.Response(200, json=body))


def downloaded_name(
    value: dict[str, Any], content_type: str, options: dict[str, Any] | None = None
) -> str:
    """The file name of a download that has no Content-Disposition."""
    hook = VezaHook()
    fallback = hook.default_filename(state_with(value), options or {})
    response = httpx.Response(200, headers={"Content-Type": content_type}, content=b"x")
    return hook.describe_download(response, fallback).filename


@pytest.mark.parametrize(
    ("value", "content_type", "extension"),
    [
        ({}, XLSX, "xlsx"),  # format absent: the old hook answered .csv
        ({}, "text/csv; charset=utf-8", "csv"),
        ({"format": 6}, XLSX, "xlsx"),
        ({"format": 0}, "text/csv", "csv"),
        ({"format": "XLSX"}, XLSX, "xlsx"),  # a name: the old hook answered .csv
        ({"format": "EXPORT_FORMAT_XLSX"}, XLSX, "xlsx"),
        ({"format": "csv"}, "text/csv", "csv"),
        ({"format": None}, XLSX, "xlsx"),
        ({"format": "EXPORT_FORMAT_PDF"}, XLSX, "xlsx"),  # unknown: the Content-Type decides
    ],
)
def test_extension_whatever_the_format_field(
    value: dict[str, Any], content_type: str, extension: str
) -> None:
    assert downloaded_name(value, content_type) == f"access_review_e1.{extension}"


def test_the_requests_format_in_the_options_wins() -> None:
    assert downloaded_name({}, "application/octet-stream", {"format": 6}).endswith(".xlsx")
    assert downloaded_name({"format": 0}, "text/csv", {"format": 6}).endswith(".xlsx")


def test_unknown_kind_gets_no_invented_extension() -> None:
    assert downloaded_name({}, "application/octet-stream") == "access_review_e1"


def test_content_disposition_still_names_the_file() -> None:
    hook = VezaHook()
    response = httpx.Response(
        200,
        headers={"Content-Type": XLSX, "Content-Disposition": 'attachment; filename="Q3.xlsx"'},
    )
    fallback = hook.default_filename(state_with({}), {})
    assert hook.describe_download(response, fallback).filename == "Q3.xlsx"
