"""The transport: base URL checks, retries with Retry-After, credential isolation."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest

from compliance_exports.core.auth import BearerKey
from compliance_exports.core.errors import ExportValidationError, RetryableError
from compliance_exports.core.http import (
    AmbiguousSubmitError,
    ApiCall,
    LongWaitRequested,
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


class TestJobCreatingCalls:
    """A POST that creates a remote job is re-sent only when the vendor cannot have acted."""

    CREATE = ApiCall("POST", "/jobs", json={"a": 1}, ok=(201,), creates=True)

    @pytest.mark.parametrize(
        "before",
        [
            httpx.ConnectError("refused"),
            httpx.ConnectTimeout("no answer to the handshake"),
            httpx.Response(429, headers={"Retry-After": "0"}),
            httpx.Response(503),
        ],
        ids=["refused", "connect-timeout", "429", "503"],
    )
    def test_resent_when_the_vendor_never_acted(self, before: Exception | httpx.Response) -> None:
        script = Script(before, httpx.Response(201))
        assert transport(script, []).request(self.CREATE).status_code == 201
        assert len(script.requests) == 2

    @pytest.mark.parametrize(
        "after",
        [
            httpx.ReadTimeout("sent, no answer"),
            httpx.RemoteProtocolError("dropped mid-response"),
            httpx.WriteTimeout("half sent"),
            httpx.Response(500),
            httpx.Response(502),
            httpx.Response(504),
        ],
        ids=["read-timeout", "dropped", "write-timeout", "500", "502", "504"],
    )
    def test_never_resent_once_the_vendor_may_have_acted(
        self, after: Exception | httpx.Response
    ) -> None:
        script = Script(after, httpx.Response(201))
        with pytest.raises(AmbiguousSubmitError, match="may have created a job"):
            transport(script, []).request(self.CREATE)
        assert len(script.requests) == 1

    def test_reads_are_still_retried_after_a_read_timeout(self) -> None:
        script = Script(httpx.ReadTimeout("slow"), httpx.Response(200))
        assert transport(script, []).request(ApiCall("GET", "/jobs/1")).status_code == 200


class TestLongRetryAfter:
    """A Retry-After longer than ``max_delay`` is honoured in full; a worker defers it."""

    def test_a_long_retry_after_is_slept_in_full_not_cut_to_max_delay(self) -> None:
        sleeps: list[float] = []
        script = Script(httpx.Response(429, headers={"Retry-After": "200"}), httpx.Response(200))
        transport(script, sleeps, max_delay=60).request(ApiCall("GET", "/x"))
        assert sleeps == [200.0]

    def test_past_the_sleep_limit_a_worker_is_told_to_defer_instead(self) -> None:
        sleeps: list[float] = []
        script = Script(httpx.Response(429, headers={"Retry-After": "200"}), httpx.Response(200))
        limited = transport(script, sleeps)
        limited.sleep_limit = 30.0
        with pytest.raises(LongWaitRequested) as raised:
            limited.request(ApiCall("GET", "/x"))
        assert raised.value.retry_after == 200.0
        assert sleeps == []

    def test_beyond_the_call_budget_it_gives_up_instead_of_waking_early(self) -> None:
        script = Script(httpx.Response(429, headers={"Retry-After": "400"}), httpx.Response(200))
        with pytest.raises(RetryableError, match="429"):
            transport(script, [], max_elapsed=300).request(ApiCall("GET", "/x"))
        assert len(script.requests) == 1

    async def test_the_async_path_waits_the_retry_after_it_was_given(self) -> None:
        script = Script(httpx.Response(429, headers={"Retry-After": "2"}), httpx.Response(200))
        started = time.monotonic()
        response = await transport(script, [], max_delay=0.5).arequest(ApiCall("GET", "/x"))
        waited = time.monotonic() - started
        assert response.status_code == 200
        assert waited >= 2.0  # the vendor's 2 s, not max_delay's 0.5 s
        print(f"async Retry-After 2 s: waited {waited:.2f} s")


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
