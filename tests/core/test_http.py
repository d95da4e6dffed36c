"""The transport: base URL checks, retries with Retry-After, credential isolation."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest

from compliance_exports.core.auth import BearerKey
from compliance_exports.core.errors import ExportValidationError, RetryableError
from compliance_exports.core.http import (
    ApiCall,
    VendorResponseError,
    VendorTransport,
    check_base_url,
    is_loopback,
)
from compliance_exports.core.retry import RetryPolicy


class TestBaseUrl:
    @pytest.mark.parametrize(
        "url",
        [
            "https://acme.vezacloud.com",
            "http://127.0.0.1:8080",
            "http://127.3.4.5",
            "http://[::1]:9",
            "http://localhost:1",
        ],
    )
    def test_accepted(self, url: str) -> None:
        assert check_base_url(url + "/") == url

    def test_plain_http_to_a_remote_host_is_refused(self) -> None:
        refused = r"host: plain http:// to acme\.example\.com"
        with pytest.raises(ExportValidationError, match=refused):
            check_base_url("http://acme.example.com")

    def test_plain_http_allowed_when_the_connection_says_so(self) -> None:
        assert check_base_url("http://acme.example.com", allow_insecure_http=True)

    @pytest.mark.parametrize("url", [None, "", "acme.example.com", "ftp://acme.example.com"])
    def test_not_a_base_url(self, url: str | None) -> None:
        with pytest.raises(ExportValidationError, match="host"):
            check_base_url(url)

    def test_loopback_names(self) -> None:
        assert is_loopback("localhost")
        assert is_loopback("127.0.0.2")
        assert not is_loopback("10.0.0.1")
        assert not is_loopback("example.com")


class Script:
    """Answers a scripted list of responses and records what it saw."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def transport(script: Script, sleeps: list[float], **policy: float) -> VendorTransport:
    return VendorTransport(
        vendor="acme",
        base_url="https://api.acme.example",
        auth=BearerKey("key-for-acme"),
        policy=RetryPolicy(jitter=0, base_delay=0.01, **policy),  # type: ignore[arg-type]
        sleep=sleeps.append,
        http_transport=httpx.MockTransport(script),
        async_http_transport=httpx.MockTransport(script),
    )


class TestRetries:
    def test_429_waits_the_retry_after_seconds(self) -> None:
        sleeps: list[float] = []
        script = Script(httpx.Response(429, headers={"Retry-After": "3"}), httpx.Response(200))
        assert transport(script, sleeps).request(ApiCall("GET", "/x")).status_code == 200
        assert sleeps == [3.0]

    def test_429_waits_until_the_http_date(self) -> None:
        sleeps: list[float] = []
        when = email.utils.formatdate(time.time() + 5, usegmt=True)
        script = Script(httpx.Response(429, headers={"Retry-After": when}), httpx.Response(200))
        transport(script, sleeps).request(ApiCall("GET", "/x"))
        assert 3.5 <= sleeps[0] <= 5.0

    def test_5xx_and_connection_errors_are_retried_with_backoff(self) -> None:
        sleeps: list[float] = []
        script = Script(
            httpx.Response(503),
            httpx.ConnectError("refused"),
            httpx.ReadTimeout("slow"),
            httpx.Response(200),
        )
        transport(script, sleeps).request(ApiCall("GET", "/x"))
        assert sleeps == [0.01, 0.02, 0.04]

    def test_attempts_are_bounded(self) -> None:
        sleeps: list[float] = []
        script = Script(*[httpx.Response(500, text="boom")] * 3)
        with pytest.raises(RetryableError, match="acme GET /x answered 500: boom"):
            transport(script, sleeps, max_attempts=3).request(ApiCall("GET", "/x"))
        assert len(script.requests) == 3

    def test_4xx_is_not_retried_and_carries_the_vendor_message(self) -> None:
        script = Script(httpx.Response(400, text="bad filter"))
        with pytest.raises(VendorResponseError, match="answered 400: bad filter") as raised:
            transport(script, []).request(ApiCall("POST", "/x", json={}))
        assert raised.value.status_code == 400
        assert len(script.requests) == 1

    async def test_async_twin_retries_too(self) -> None:
        script = Script(httpx.Response(429, headers={"Retry-After": "0"}), httpx.Response(200))
        response = await transport(script, []).arequest(ApiCall("GET", "/x"))
        assert response.status_code == 200
        assert len(script.requests) == 2


class TestCredentialIsolation:
    def test_another_origin_gets_no_vendor_credentials(self) -> None:
        script = Script(httpx.Response(200, content=b"file"))
        vendor = transport(script, [])
        with vendor.open(
            ApiCall("GET", "https://bucket.s3.example/f.csv?X-Amz-Signature=abc")
        ) as r:
            assert r.read() == b"file"
        assert "Authorization" not in script.requests[0].headers

    def test_the_vendor_origin_gets_them(self) -> None:
        script = Script(httpx.Response(200))
        transport(script, []).request(ApiCall("GET", "https://api.acme.example/x"))
        assert script.requests[0].headers["Authorization"] == "Bearer key-for-acme"

    def test_redirects_are_not_followed_on_the_vendor_api(self) -> None:
        script = Script(httpx.Response(302, headers={"Location": "https://evil.example/"}))
        with pytest.raises(VendorResponseError, match="answered 302"):
            transport(script, []).request(ApiCall("GET", "/x"))
        assert len(script.requests) == 1

    def test_error_text_never_holds_the_query_string(self) -> None:
        script = Script(httpx.Response(403, text="denied"))
        with pytest.raises(VendorResponseError) as raised:
            transport(script, []).request(
                ApiCall("GET", "https://s3.example/f?X-Amz-Signature=abc")
            )
        assert "Signature" not in str(raised.value)
