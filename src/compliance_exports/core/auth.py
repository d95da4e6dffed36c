"""Vendor authentication as ``httpx.Auth`` subclasses, each with sync and async flows.

* :class:`BearerKey` - a static API key sent as ``Authorization: Bearer <key>``.
* :class:`HeaderKey` - a static key in a named header, e.g. ``apikey``.
* :class:`OAuth2ClientCredentials` - the client-credentials grant with a cached token,
  refreshed shortly before it expires and again when the API answers 401, after which
  the request is replayed once. A refused token request raises :class:`TokenRequestError`
  with the token endpoint's own message (RFC 6749 ``error`` / ``error_description``, or
  the vendor's error body read by the hook's parser).

Token values are registered with Airflow's secrets masker as soon as they are known
(``mask_secret`` in the sync flow, ``amask_secret`` in the async one: the sync call may
talk to the supervisor and must not run on the triggerer's event loop). Static keys and
client secrets come from the connection's password, which the hook masks.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from dataclasses import dataclass, field

import httpx

from compliance_exports.core.errors import FatalError, RetryableError
from compliance_exports.core.http import json_or_none
from compliance_exports.core.retry import RETRY_STATUSES, parse_retry_after


def mask(secret: str | None) -> None:
    """Register ``secret`` with Airflow's secrets masker (task and supervisor logs)."""
    if not secret:
        return
    from airflow.sdk.log import mask_secret

    mask_secret(secret)


async def amask(secret: str | None) -> None:
    """Async twin of :func:`mask`, safe on the triggerer's event loop."""
    if not secret:
        return
    from airflow.sdk.log import amask_secret

    await amask_secret(secret)


class TokenRequestError(FatalError):
    """The token endpoint refused the client (wrong id or secret, unknown audience...).

    ``vendor_message`` is the endpoint's own message; ``str()`` adds the status and a hint.
    """

    def __init__(self, message: str, *, status_code: int, vendor_message: str = "") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.vendor_message = vendor_message

    def __reduce__(self) -> tuple[object, ...]:
        return (_token_error, (str(self), self.status_code, self.vendor_message))


def _token_error(message: str, status_code: int, vendor_message: str) -> TokenRequestError:
    return TokenRequestError(message, status_code=status_code, vendor_message=vendor_message)


def oauth_error_text(
    response: httpx.Response, fallback: Callable[[httpx.Response], str] | None = None
) -> str:
    """The message of a token endpoint's error answer (body already read).

    RFC 6749 5.2 ``{"error", "error_description"}`` first; otherwise ``fallback`` (the
    vendor's error parser), else the start of the body.
    """
    body = json_or_none(response)
    if isinstance(body, Mapping) and isinstance(body.get("error"), str):
        description = body.get("error_description")
        return f"{body['error']}: {description}" if description else str(body["error"])
    if fallback is not None:
        return fallback(response)
    return response.text[:300].strip()


class BearerKey(httpx.Auth):
    """``Authorization: Bearer <key>`` on every request."""

    def __init__(self, key: str) -> None:
        if not key:
            raise FatalError("the connection has no API key (password field)")
        self._header = f"Bearer {key}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


class HeaderKey(httpx.Auth):
    """A static key in a named header (``apikey: <key>``)."""

    def __init__(self, key: str, header: str = "apikey") -> None:
        if not key:
            raise FatalError("the connection has no API key (password field)")
        self._key = key
        self._name = header

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[self._name] = self._key
        yield request


@dataclass
class AccessToken:
    value: str
    expires_at: float  # time.monotonic()

    def fresh(self, margin: float, now: float) -> bool:
        return now < self.expires_at - margin


@dataclass
class TokenCache:
    """One client's current token, shared by every hook of the process that uses it.

    A triggerer runs many triggers for one connection: they share one token (one fetch,
    one masking) instead of one each. The async lock is per event loop.
    """

    token: AccessToken | None = None
    sync_lock: threading.Lock = field(default_factory=threading.Lock)
    _async_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = field(
        default_factory=weakref.WeakKeyDictionary
    )

    def async_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._async_locks.get(loop)
        if lock is None:
            lock = self._async_locks[loop] = asyncio.Lock()
        return lock


_TOKEN_CACHES: dict[tuple[str, str, str, str | None], TokenCache] = {}
_TOKEN_CACHES_LOCK = threading.Lock()


def shared_token_cache(
    token_url: str, client_id: str, client_secret: str, audience: str | None
) -> TokenCache:
    """The process-wide cache of one OAuth2 client (keyed by a digest of the secret)."""
    digest = hashlib.sha256(client_secret.encode()).hexdigest()
    key = (token_url, client_id, digest, audience)
    with _TOKEN_CACHES_LOCK:
        return _TOKEN_CACHES.setdefault(key, TokenCache())


class OAuth2ClientCredentials(httpx.Auth):
    """OAuth2 client-credentials grant with a cached, proactively refreshed bearer token.

    ``refresh_margin`` seconds before expiry the token is replaced; a 401 on a request
    made with the current token also replaces it and replays the request once.
    """

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        audience: str | None = None,
        refresh_margin: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        cache: TokenCache | None = None,
        error_parser: Callable[[httpx.Response], str] | None = None,
    ) -> None:
        if not token_url:
            raise FatalError("the connection has no token_url")
        if not client_id or not client_secret:
            raise FatalError("the connection needs a client id (login) and secret (password)")
        self.token_url = token_url
        self._form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
        }
        if audience:
            self._form["audience"] = audience
        self.refresh_margin = refresh_margin
        self._clock = clock
        self.cache = cache or shared_token_cache(token_url, client_id, client_secret, audience)
        #: reads the vendor's error body when the endpoint does not answer as RFC 6749 says
        self.error_parser = error_parser

    # -- the shared, I/O-free steps ---------------------------------------------------

    def _needs_token(self, rejected: str | None = None) -> bool:
        token = self.cache.token
        if token is None:
            return True
        if rejected is not None:
            return token.value == rejected  # someone else may have refreshed already
        return not token.fresh(self.refresh_margin, self._clock())

    def _token_request(self) -> httpx.Request:
        return httpx.Request(
            "POST", self.token_url, data=self._form, headers={"Accept": "application/json"}
        )

    def _store(self, response: httpx.Response) -> str:
        """Keep the token of a token-endpoint answer; return it (for masking)."""
        if response.status_code in RETRY_STATUSES:
            raise RetryableError(
                f"token endpoint answered {response.status_code}",
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        if response.status_code != 200:
            said = oauth_error_text(response, self.error_parser)
            message = f"token endpoint answered {response.status_code}"
            message += f": {said}" if said else ""
            if response.status_code in (400, 401):
                message += " (check the client id and secret)"
            raise TokenRequestError(message, status_code=response.status_code, vendor_message=said)
        try:
            body = response.json()
            value = str(body["access_token"])
            lifetime = float(body.get("expires_in") or 300)
        except (ValueError, KeyError, TypeError):
            raise FatalError("token endpoint answered without an access_token") from None
        self.cache.token = AccessToken(value, self._clock() + lifetime)
        return value

    def _authorize(self, request: httpx.Request) -> str:
        token = self.cache.token
        assert token is not None
        request.headers["Authorization"] = f"Bearer {token.value}"
        return token.value

    # -- sync flow ---------------------------------------------------------------------

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        yield from self._sync_refresh(None)
        used = self._authorize(request)
        response = yield request
        if response.status_code != 401:
            return
        yield from self._sync_refresh(used)
        self._authorize(request)
        yield request

    def _sync_refresh(self, rejected: str | None) -> Generator[httpx.Request, httpx.Response, None]:
        with self.cache.sync_lock:
            if self._needs_token(rejected):
                response = yield self._token_request()
                response.read()
                mask(self._store(response))

    # -- async flow --------------------------------------------------------------------

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if self._needs_token():
            async with self.cache.async_lock():
                if self._needs_token():
                    response = yield self._token_request()
                    await response.aread()
                    await amask(self._store(response))
        used = self._authorize(request)
        response = yield request
        if response.status_code != 401:
            return
        async with self.cache.async_lock():
            if self._needs_token(used):
                token_response = yield self._token_request()
                await token_response.aread()
                await amask(self._store(token_response))
        self._authorize(request)
        yield request
