"""OleriaHook: status words, error bodies, connection rules."""

from __future__ import annotations

import json
import os
import re

import httpx
import pytest

from compliance_exports.core.errors import ExportValidationError, UnknownStatusError
from compliance_exports.core.http import VendorResponseError, ssl_context
from compliance_exports.core.states import ExportPhase
from compliance_exports.vendors.oleria.hook import OleriaHook


@pytest.mark.parametrize(
    ("word", "phase"),
    [
        ("accepted", ExportPhase.PENDING),
        ("completed", ExportPhase.SUCCEEDED),
        ("failed", ExportPhase.FAILED),
    ],
)
def test_every_status_word(word: str, phase: ExportPhase) -> None:
    response = httpx.Response(200, json={"id": "d1", "status": word, "url": "https://s3/x"})
    state = OleriaHook().state_of("d1", response)
    assert state.phase is phase
    assert state.download_url == "https://s3/x"


@pytest.mark.parametrize("word", ["running", "", "COMPLETED_OK"])
def test_unknown_status_is_an_error(word: str) -> None:
    with pytest.raises(UnknownStatusError):
        OleriaHook().state_of("d1", httpx.Response(200, json={"id": "d1", "status": word}))


def test_failure_carries_oleria_error() -> None:
    body = {"id": "d1", "status": "failed", "error": {"code": "E42", "message": "too big"}}
    assert OleriaHook().state_of("d1", httpx.Response(200, json=body)).message == "E42: too big"


def test_error_body_and_expired_link() -> None:
    hook = OleriaHook()
    assert (
        hook.parse_error(httpx.Response(400, json={"code": "bad", "message": "nope"}))
        == "bad: nope"
    )
    xml = "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
    message = hook.parse_error(httpx.Response(403, text=xml))
    assert hook.is_expired_link(VendorResponseError("x", status_code=403, vendor_message=message))
    assert not hook.is_expired_link(VendorResponseError("x", status_code=404, vendor_message=""))


def connect(monkeypatch: pytest.MonkeyPatch, host: str, **extra: object) -> None:
    conn = {
        "conn_type": "oleria",
        "host": host,
        "login": "id",
        "password": "secret-1",
        "extra": extra,
    }
    monkeypatch.setenv("AIRFLOW_CONN_OLERIA_UNIT", json.dumps(conn))


def test_plain_http_to_a_remote_host_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    connect(monkeypatch, "http://devx.acme.oleria.io", token_url="https://idp/token")
    with pytest.raises(ExportValidationError, match="host: plain http://"):
        OleriaHook("oleria_unit").get_transport()


def test_token_url_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    connect(monkeypatch, "https://devx.acme.oleria.io")
    with pytest.raises(ExportValidationError, match=r"extra\.token_url"):
        OleriaHook("oleria_unit").get_transport()


def test_version_segment_in_host_is_tolerated(monkeypatch: pytest.MonkeyPatch) -> None:
    connect(monkeypatch, "https://devx.acme.oleria.io/v1/", token_url="/oauth/token")
    transport = OleriaHook("oleria_unit").get_transport()
    assert transport.base_url == "https://devx.acme.oleria.io"
    assert os.environ["AIRFLOW_CONN_OLERIA_UNIT"]


def test_timeout_and_retry_policy_from_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    connect(
        monkeypatch,
        "https://devx.acme.oleria.io",
        token_url="/oauth/token",
        timeout="15",
        retry_max_attempts=2,
    )
    transport = OleriaHook("oleria_unit").get_transport()
    assert transport.timeout.read == 15.0
    assert transport.timeout.connect == 10.0
    assert transport.policy.max_attempts == 2
    assert transport.verify is ssl_context()  # verified, one context for the process


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"timeout": "soon"}, "extra.timeout"),
        ({"ca_bundle": "/nonexistent/ca.pem"}, "extra.ca_bundle"),
    ],
)
def test_bad_transport_extras_name_the_field(
    monkeypatch: pytest.MonkeyPatch, extra: dict[str, str], field: str
) -> None:
    connect(monkeypatch, "https://devx.acme.oleria.io", token_url="/oauth/token", **extra)
    with pytest.raises(ExportValidationError, match=re.escape(field)):
        OleriaHook("oleria_unit").get_transport()
