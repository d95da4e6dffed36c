"""Auth strategies: static keys, and OAuth2 client credentials with caching and refresh."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import httpx
import pytest
from airflow.sdk._shared.secrets_masker.secrets_masker import redact

from compliance_exports.core.auth import (
    BearerKey,
    HeaderKey,
    OAuth2ClientCredentials,
    TokenCache,
)
from compliance_exports.core.errors import FatalError, RetryableError

TOKEN_URL = "https://idp.example.com/oauth/token"


class FakeVendor:
    """A token endpoint and an API that accepts only the latest token (or none expired)."""

    def __init__(self, ttl: int = 3600) -> None:
        self.ttl = ttl
        self.issued: list[str] = []
        self.revoked: set[str] = set()
        self.token_status = 200
        self.seen: list[str | None] = []
        self.prefix = "token"

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if str(request.url) == TOKEN_URL:
            form = parse_qs(request.content.decode())
            assert form["grant_type"] == ["client_credentials"]
            assert form["client_secret"] == ["s3cret-value"]
            if self.token_status != 200:
                return httpx.Response(self.token_status, json={"error": "nope"})
            token = f"{self.prefix}-{len(self.issued) + 1}"
            self.issued.append(token)
            return httpx.Response(200, json={"access_token": token, "expires_in": self.ttl})
        header = request.headers.get("Authorization")
        self.seen.append(header)
        if header is None or header.removeprefix("Bearer ") in self.revoked:
            return httpx.Response(401, json={"error": "JWT validation failed: JWT is expired"})
        return httpx.Response(200, json={"ok": True})


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def oauth(clock: Clock | None = None, margin: float = 60) -> OAuth2ClientCredentials:
    return OAuth2ClientCredentials(
        token_url=TOKEN_URL,
        client_id="client",
        client_secret="s3cret-value",
        refresh_margin=margin,
        clock=clock or Clock(),
        cache=TokenCache(),  # each test starts without a token
    )


def client(vendor: FakeVendor, auth: httpx.Auth) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(vendor), auth=auth)


class TestOAuth2ClientCredentials:
    def test_token_is_cached_between_requests(self) -> None:
        vendor, auth = FakeVendor(), oauth()
        with client(vendor, auth) as http:
            for _ in range(3):
                assert http.get("https://api.example.com/x").status_code == 200
        assert vendor.issued == ["token-1"]
        assert vendor.seen == ["Bearer token-1"] * 3

    def test_token_is_refreshed_shortly_before_expiry(self) -> None:
        clock = Clock()
        vendor, auth = FakeVendor(ttl=600), oauth(clock, margin=60)
        with client(vendor, auth) as http:
            http.get("https://api.example.com/x")
            clock.now = 539  # 61 s left: still fresh
            http.get("https://api.example.com/x")
            clock.now = 541  # 59 s left: inside the margin
            http.get("https://api.example.com/x")
        assert vendor.issued == ["token-1", "token-2"]

    def test_401_refreshes_the_token_and_replays_once(self) -> None:
        vendor, auth = FakeVendor(), oauth()
        with client(vendor, auth) as http:
            http.get("https://api.example.com/x")
            vendor.revoked.add("token-1")
            response = http.get("https://api.example.com/x")
        assert response.status_code == 200
        assert vendor.seen == ["Bearer token-1", "Bearer token-1", "Bearer token-2"]

    def test_a_second_401_is_returned_not_looped(self) -> None:
        vendor, auth = FakeVendor(), oauth()
        vendor.revoked.update({"token-1", "token-2"})
        with client(vendor, auth) as http:
            assert http.get("https://api.example.com/x").status_code == 401
        assert len(vendor.seen) == 2

    async def test_async_flow_caches_and_refreshes_on_401(self) -> None:
        vendor, auth = FakeVendor(), oauth()
        transport = httpx.MockTransport(vendor)
        async with httpx.AsyncClient(transport=transport, auth=auth) as http:
            await http.get("https://api.example.com/x")
            vendor.revoked.add("token-1")
            response = await http.get("https://api.example.com/x")
        assert response.status_code == 200
        assert vendor.issued == ["token-1", "token-2"]

    def test_hooks_of_one_client_share_one_token(self) -> None:
        vendor = FakeVendor()

        def shared() -> OAuth2ClientCredentials:
            return OAuth2ClientCredentials(
                token_url=TOKEN_URL, client_id="shared-client", client_secret="s3cret-value"
            )

        first, second = shared(), shared()
        assert first.cache is second.cache
        with client(vendor, first) as http_1, client(vendor, second) as http_2:
            http_1.get("https://api.example.com/x")
            http_2.get("https://api.example.com/x")
            vendor.revoked.add(vendor.issued[0])
            http_1.get("https://api.example.com/x")  # refreshes for both
            http_2.get("https://api.example.com/x")
        assert vendor.issued == ["token-1", "token-2"]

    def test_a_different_secret_is_a_different_cache(self) -> None:
        one = OAuth2ClientCredentials(token_url=TOKEN_URL, client_id="c", client_secret="a-secret")
        two = OAuth2ClientCredentials(token_url=TOKEN_URL, client_id="c", client_secret="b-secret")
        assert one.cache is not two.cache

    def test_issued_tokens_are_masked_in_logs(self) -> None:
        vendor, auth = FakeVendor(), oauth()
        vendor.prefix = "sync-flow-token"
        with client(vendor, auth) as http:
            http.get("https://api.example.com/x")
        assert redact("sent sync-flow-token-1 to acme") == "sent *** to acme"

    async def test_async_flow_masks_tokens_too(self) -> None:
        vendor, auth = FakeVendor(), oauth()
        vendor.prefix = "async-flow-token"
        async with httpx.AsyncClient(transport=httpx.MockTransport(vendor), auth=auth) as http:
            await http.get("https://api.example.com/x")
        assert redact("sent async-flow-token-1 to acme") == "sent *** to acme"

    @pytest.mark.parametrize(("status", "error"), [(503, RetryableError), (401, FatalError)])
    def test_token_endpoint_failures(self, status: int, error: type[Exception]) -> None:
        vendor = FakeVendor()
        vendor.token_status = status
        with client(vendor, oauth()) as http, pytest.raises(error) as raised:
            http.get("https://api.example.com/x")
        assert "s3cret-value" not in str(raised.value)

    def test_missing_credentials_are_refused(self) -> None:
        with pytest.raises(FatalError, match="client id"):
            OAuth2ClientCredentials(token_url=TOKEN_URL, client_id="", client_secret="x")


class TestStaticKeys:
    def test_bearer_key(self) -> None:
        seen: list[httpx.Request] = []
        transport = httpx.MockTransport(lambda r: seen.append(r) or httpx.Response(200))
        with httpx.Client(transport=transport, auth=BearerKey("veza-key-123")) as http:
            http.get("https://api.example.com/")
        assert seen[0].headers["Authorization"] == "Bearer veza-key-123"

    def test_apikey_header(self) -> None:
        seen: list[httpx.Request] = []
        transport = httpx.MockTransport(lambda r: seen.append(r) or httpx.Response(200))
        with httpx.Client(transport=transport, auth=HeaderKey("max-key-123")) as http:
            http.get("https://api.example.com/")
        assert seen[0].headers["apikey"] == "max-key-123"
        assert "Authorization" not in seen[0].headers

    @pytest.mark.parametrize("auth", [BearerKey, HeaderKey])
    def test_empty_key_is_refused(self, auth: type[httpx.Auth]) -> None:
        with pytest.raises(FatalError, match="API key"):
            auth("")


def test_fake_vendor_speaks_json() -> None:
    assert json.loads(FakeVendor()(httpx.Request("GET", "https://a/")).content)["error"]
