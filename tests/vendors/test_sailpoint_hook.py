"""SailPointHook: result statuses (absent = running), the three error shapes, layouts."""

from __future__ import annotations

import json

import httpx
import pytest

from compliance_exports.core.auth import OAuth2ClientCredentials
from compliance_exports.core.errors import ExportValidationError, FatalError, UnknownStatusError
from compliance_exports.core.states import ExportPhase
from compliance_exports.vendors.sailpoint.hook import SailPointHook


@pytest.mark.parametrize(
    ("body", "phase"),
    [
        ({"id": "t"}, ExportPhase.RUNNING),
        ({"id": "t", "status": None}, ExportPhase.RUNNING),
        ({"id": "t", "status": "SUCCESS"}, ExportPhase.SUCCEEDED),
        ({"id": "t", "status": "WARNING"}, ExportPhase.SUCCEEDED),
        ({"id": "t", "status": "FAILURE"}, ExportPhase.FAILED),
        ({"id": "t", "status": "TERMINATED"}, ExportPhase.CANCELLED),
    ],
)
def test_every_result_status(body: dict[str, object], phase: ExportPhase) -> None:
    assert SailPointHook().state_of("t", httpx.Response(200, json=body)).phase is phase


def test_unknown_status_is_an_error() -> None:
    with pytest.raises(UnknownStatusError):
        SailPointHook().state_of("t", httpx.Response(200, json={"id": "t", "status": "DONE"}))


def test_empty_result_means_an_unknown_task() -> None:
    with pytest.raises(FatalError, match="knows no report task t"):
        SailPointHook().state_of("t", httpx.Response(200, json={}))


@pytest.mark.parametrize(
    ("status", "body", "text"),
    [
        (
            400,
            {"detailCode": "400.1 Bad Request", "messages": [{"locale": "en-US", "text": "bad"}]},
            "400.1 Bad Request: bad",
        ),
        (401, {"error": "JWT validation failed: JWT is expired"}, "JWT validation failed"),
        (429, {"message": " Rate Limit Exceeded "}, "Rate Limit Exceeded"),
    ],
)
def test_error_shapes(status: int, body: dict[str, object], text: str) -> None:
    assert text in SailPointHook().parse_error(httpx.Response(status, json=body))


@pytest.mark.parametrize(("layout", "prefix"), [("v3", "/v3/reports"), ("unified", "/reports/v1")])
def test_api_layouts(monkeypatch: pytest.MonkeyPatch, layout: str, prefix: str) -> None:
    conn = {
        "conn_type": "sailpoint",
        "host": "https://acme.api.identitynow.com",
        "login": "id",
        "password": "secret-2",
        "extra": {"api_layout": layout},
    }
    monkeypatch.setenv("AIRFLOW_CONN_SP_UNIT", json.dumps(conn))
    hook = SailPointHook("sp_unit")
    hook.get_transport()
    assert hook.status_call("t").path == f"{prefix}/t/result"
    assert hook.cancel_call("t").path == f"{prefix}/t/cancel"
    auth = hook.get_transport().auth
    assert isinstance(auth, OAuth2ClientCredentials)
    assert auth.token_url == "https://acme.api.identitynow.com/oauth/token"


def test_unknown_layout_names_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {
        "conn_type": "sailpoint",
        "host": "https://acme.api.identitynow.com",
        "login": "id",
        "password": "secret-2",
        "extra": {"api_layout": "v2"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_SP_UNIT", json.dumps(conn))
    hook = SailPointHook("sp_unit")
    hook.get_transport()
    with pytest.raises(ExportValidationError, match=r"extra\.api_layout"):
        hook.status_call("t")
