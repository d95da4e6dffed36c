"""MaxsightHook: the errors envelope, the X-RateLimit headers and the probe's answer."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import httpx
import pytest

from compliance_exports.vendors.maxsight.hook import MaxsightHook
from compliance_exports.vendors.maxsight.query import AuditExportQuery


def test_errors_envelope() -> None:
    body = {
        "errors": [{"code": "bad_range", "message": "start after end", "source": "range_start"}]
    }
    assert MaxsightHook().parse_error(httpx.Response(400, json=body)) == (
        "bad_range: start after end (range_start)"
    )


def test_retry_after_wins_then_rate_limit_reset() -> None:
    hook = MaxsightHook()
    assert hook.retry_after_of(httpx.Response(429, headers={"Retry-After": "2"})) == 2.0
    exhausted = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset-Secs": "7"}
    assert hook.retry_after_of(httpx.Response(429, headers=exhausted)) == 7.0
    assert hook.retry_after_of(httpx.Response(429, headers={"X-RateLimit-Remaining": "3"})) is None


def test_export_call_sends_arrays_as_repeated_keys() -> None:
    start = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    query = AuditExportQuery(range_start=start, event_type=("login",))
    call = MaxsightHook().export_call(query)
    assert call.path == "/v5/audit-sentinel/events/export"
    assert ("event_type", "login") in list(call.params or [])


# --- test_connection: a 200 must be the CSV asked for --------------------------------------

HEADER = "event_id,timestamp,auditee_id,auditee_name,event_type\r\n"
LOGIN_PAGE = "<!DOCTYPE html>\n<html><body><form>Sign in to the proxy</form></body></html>\n"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/csv; charset=utf-8", HEADER),
        ("text/csv", ""),  # no event, and no header line: still the CSV asked for
        ("application/octet-stream", "\ufeff" + HEADER),  # a relabelled CSV, with a BOM
        (None, HEADER),
    ],
)
def test_a_csv_answer_proves_the_probe(content_type: str | None, body: str) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = httpx.Response(200, content=body.encode(), headers=headers)
    assert MaxsightHook().probe_problem(response) is None


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/html; charset=utf-8", LOGIN_PAGE),
        ("application/json", '{"event_id": "e1", "timestamp": "2000-01-01T00:00:00Z"}'),
        ("text/plain", "OK\n"),
        ("application/octet-stream", "id,time\r\n"),  # a CSV, not of audit events
    ],
)
def test_an_answer_that_is_not_the_csv_fails_the_probe(content_type: str, body: str) -> None:
    response = httpx.Response(200, content=body.encode(), headers={"Content-Type": content_type})
    problem = MaxsightHook().probe_problem(response)
    assert problem is not None
    assert problem.startswith(f"not an audit events CSV (Content-Type {content_type.split(';')[0]}")
    assert "is the host Maxsight's API base URL?" in problem


class _LoginPage(BaseHTTPRequestHandler):
    """Any GET: 200 and an HTML page (a proxy's login page, a web server's index)."""

    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.seen.append(self.path)
        body = LOGIN_PAGE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # keep the test output quiet
        pass


@pytest.fixture
def login_page() -> Iterator[str]:
    """The base URL of a local HTTP server answering every GET with 200 HTML."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _LoginPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _LoginPage.seen.clear()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.integration
def test_a_host_answering_200_html_fails_the_connection_test(
    login_page: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = {"conn_type": "maxsight", "host": login_page, "password": "key-1"}
    monkeypatch.setenv("AIRFLOW_CONN_MAXSIGHT_HTML", json.dumps(conn))

    ok, message = MaxsightHook("maxsight_html").test_connection()

    assert not ok
    assert message.startswith(
        "Maxsight: GET /v5/audit-sentinel/events/export answered 200: "
        "not an audit events CSV (Content-Type text/html, no header line of event_id, timestamp)"
    ), message
    assert "key-1" not in message
    assert len(_LoginPage.seen) == 1  # one probe: a wrong answer is not retried
