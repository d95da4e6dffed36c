"""MaxsightHook: the errors envelope and the X-RateLimit headers."""

from __future__ import annotations

import datetime as dt

import httpx

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
