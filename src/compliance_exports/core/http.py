"""The HTTP transport every vendor hook uses: sync and async twins with one retry policy.

* every call has a timeout; redirects are never followed on the vendor API (an
  ``Authorization`` header must not travel to another origin);
* an absolute URL on another origin (a presigned download link) goes through a separate
  client that carries no vendor credentials at all;
* 429 and 5xx answers, connection errors and timeouts are retried under a
  :class:`RetryPolicy`, honouring ``Retry-After`` in full within the call's total
  budget; other 4xx answers raise :class:`VendorResponseError` with the vendor's own
  message;
* a call that creates a remote job (``ApiCall.creates``) is sent again only when the
  vendor cannot have acted on it: the connection was never made (refused, connect
  timeout), or the answer was 429 or 503. After a read timeout, a connection dropped
  mid-response or another 5xx, :class:`AmbiguousSubmitError` says a job may exist;
* a worker does not sleep longer than ``sleep_limit`` for a ``Retry-After``: it raises
  :class:`LongWaitRequested`, and the export task spends that wait deferred;
* error texts name the method and path, never the query string (presigned signatures)
  nor any header.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import ipaddress
import logging
import ssl
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import certifi
import httpx

from compliance_exports.core.errors import ExportValidationError, FatalError, RetryableError
from compliance_exports.core.retry import (
    RETRY_STATUSES,
    RetryBudget,
    RetryPolicy,
    parse_retry_after,
)

DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=60.0, write=60.0, pool=10.0)
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})

ErrorParser = Callable[[httpx.Response], str]
RetryAfterReader = Callable[[httpx.Response], float | None]


class VendorResponseError(FatalError):
    """A non-retryable answer (4xx other than 429) with the vendor's own message."""

    def __init__(self, message: str, *, status_code: int, vendor_message: str = "") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.vendor_message = vendor_message


class AmbiguousSubmitError(FatalError):
    """A job-creating call whose outcome is unknown: the vendor may have created the job.

    ``asked_at`` (set by ``ExportHook.submit_export``) is when the call was first sent, so
    a recovery can look only at jobs created since.
    """

    asked_at: dt.datetime | None = None


class VendorUnreachableError(RetryableError):
    """No answer: the connection was refused or dropped, the name did not resolve, or a
    timeout struck (after every retry, or about to be retried)."""


class LongWaitRequested(RetryableError):
    """The vendor asked for a wait (``retry_after`` s) longer than a worker may sleep."""


#: Why a job-creating request may be sent again: the vendor never saw it, or refused it.
SAFE_TO_RESEND_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)
SAFE_TO_RESEND_STATUSES = frozenset({429, 503})


class VendorRetryableError(RetryableError):
    """A 429/5xx answer that stayed bad after every retry (or is about to be retried)."""

    def __init__(self, message: str, *, status_code: int, retry_after: float | None = None) -> None:
        super().__init__(message, retry_after=retry_after)
        self.status_code = status_code


@dataclass(frozen=True)
class ApiCall:
    """One request a hook wants made: a path under the base URL or an absolute URL."""

    method: str
    path: str
    params: Mapping[str, Any] | list[tuple[str, Any]] | None = None
    json: Any = None
    ok: tuple[int, ...] = (200,)
    headers: Mapping[str, str] = field(default_factory=dict)
    #: the call creates a remote job: never sent twice unless the vendor cannot have acted
    creates: bool = False


@functools.cache
def ssl_context(cafile: str | None = None) -> ssl.SSLContext:
    """One verifying TLS context per CA file, shared by every client of the process.

    httpx builds (and loads the CA bundle into) a new context for each client unless
    given one: ~100 ms of CPU that, in a triggerer, would block the event loop once per
    trigger.
    """
    return ssl.create_default_context(cafile=cafile or certifi.where())


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_base_url(url: str | None, *, allow_insecure_http: bool = False) -> str:
    """Validate a connection's base URL; plain HTTP only for loopback or when allowed."""
    if not url:
        raise ExportValidationError("host", "the connection has no host (the API base URL)")
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ExportValidationError(
            "host", f"{url!r} is not a base URL with scheme, e.g. https://tenant.example.com"
        )
    if parts.scheme == "http" and not (allow_insecure_http or is_loopback(parts.hostname)):
        raise ExportValidationError(
            "host",
            f"plain http:// to {parts.hostname} is refused; use https:// or set "
            "allow_insecure_http in the connection extra",
        )
    return url.rstrip("/")


def origin_of(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return (parts.scheme, (parts.hostname or "").lower(), port)


def describe(method: str, url: str) -> str:
    """``METHOD path`` without the query string (it may hold a presigned signature)."""
    parts = urlsplit(url)
    return f"{method} {parts.path or '/'}"


def default_retry_after(response: httpx.Response) -> float | None:
    return parse_retry_after(response.headers.get("Retry-After"))


def json_or_none(response: httpx.Response) -> Any:
    """The decoded JSON body of ``response``, or None when the body is not JSON (e.g. an
    HTML page): for reading an answer that may be the vendor's or not."""
    try:
        return response.json()
    except ValueError:
        return None


def default_error_parser(response: httpx.Response) -> str:
    return response.text[:500].strip()


ClientKey = tuple[str, tuple[float | None, ...], int]


@dataclass
class _Lease:
    client: httpx.AsyncClient
    users: int = 0


class SharedAsyncClients:
    """One ``httpx.AsyncClient`` per event loop and API origin, shared by every transport.

    A triggerer waits on hundreds of exports of the same connection in one event loop.
    A client each would mean hundreds of connection pools, a new TCP (and TLS)
    connection per trigger and the client's set-up on the loop each time; shared, the
    status polls reuse a few keep-alive connections. Clients carry no credentials (the
    auth goes with each request), so transports of different connections to the same
    API may share one. A client is closed when the last transport using it releases it.
    """

    def __init__(self) -> None:
        self._leases: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[ClientKey, _Lease]
        ] = weakref.WeakKeyDictionary()

    @staticmethod
    def key(base_url: str, timeout: httpx.Timeout, verify: bool | ssl.SSLContext) -> ClientKey:
        limits = (timeout.connect, timeout.read, timeout.write, timeout.pool)
        # ssl_context() hands out one context per CA file, so identity names it
        return (base_url, limits, id(verify))

    def acquire(
        self, base_url: str, timeout: httpx.Timeout, verify: bool | ssl.SSLContext
    ) -> httpx.AsyncClient:
        leases = self._leases.setdefault(asyncio.get_running_loop(), {})
        key = self.key(base_url, timeout, verify)
        lease = leases.get(key)
        if lease is None or lease.client.is_closed:
            client = httpx.AsyncClient(
                base_url=base_url, timeout=timeout, verify=verify, follow_redirects=False
            )
            lease = leases[key] = _Lease(client)
        lease.users += 1
        return lease.client

    async def release(self, client: httpx.AsyncClient) -> None:
        leases = self._leases.get(asyncio.get_running_loop(), {})
        for key, lease in list(leases.items()):
            if lease.client is client:
                lease.users -= 1
                if lease.users <= 0:
                    del leases[key]
                    await client.aclose()
                return
        await client.aclose()  # not (or no longer) shared on this loop: just close it

    def open_clients(self) -> int:
        """How many shared clients the running loop holds (tests, diagnostics)."""
        return len(self._leases.get(asyncio.get_running_loop(), {}))


#: the process-wide registry the transports lease their async clients from
SHARED_ASYNC_CLIENTS = SharedAsyncClients()


class VendorTransport:
    """Sync and async HTTP clients for one vendor connection, with retries."""

    def __init__(
        self,
        *,
        vendor: str,
        base_url: str,
        auth: httpx.Auth | None,
        policy: RetryPolicy | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        verify: bool | ssl.SSLContext = True,
        error_parser: ErrorParser = default_error_parser,
        retry_after: RetryAfterReader = default_retry_after,
        logger: logging.Logger | None = None,
        sleep: Callable[[float], None] = time.sleep,
        sleep_limit: float | None = None,
        http_transport: httpx.BaseTransport | None = None,
        async_http_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.vendor = vendor
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.policy = policy or RetryPolicy()
        self.timeout = timeout
        self.verify = ssl_context() if verify is True else verify
        self.error_parser = error_parser
        self.retry_after = retry_after
        self.log = logger or logging.getLogger(__name__)
        self._sleep = sleep
        #: the longest a sync call sleeps for a Retry-After (None: no limit)
        self.sleep_limit = sleep_limit
        self._http_transport = http_transport  # injectable (tests, proxies); None = default
        self._async_http_transport = async_http_transport
        self._client: httpx.Client | None = None
        self._bare: httpx.Client | None = None
        self._aclient: httpx.AsyncClient | None = None

    # -- clients ---------------------------------------------------------------------

    def is_foreign(self, path: str) -> bool:
        """Whether ``path`` is an absolute URL on another origin than the vendor API."""
        absolute = path.startswith(("http://", "https://"))
        return absolute and origin_of(path) != origin_of(self.base_url)

    def _sync_client(self, path: str) -> httpx.Client:
        if self.is_foreign(path):
            if self._bare is None:  # no auth, no vendor headers: safe to follow redirects
                self._bare = httpx.Client(
                    timeout=self.timeout,
                    verify=self.verify,
                    follow_redirects=True,
                    transport=self._http_transport,
                )
            return self._bare
        if self._client is None:
            self._client = httpx.Client(
                base_url=self.base_url,
                auth=self.auth,
                timeout=self.timeout,
                verify=self.verify,
                follow_redirects=False,
                transport=self._http_transport,
            )
        return self._client

    def _async_client(self, path: str) -> httpx.AsyncClient:
        """The async client: leased from :data:`SHARED_ASYNC_CLIENTS` unless injected.

        It carries no credentials; :meth:`arequest` sends ``self.auth`` with each request.
        """
        if self.is_foreign(path):
            raise FatalError("async calls are only made to the vendor API origin")
        if self._aclient is None:
            if self._async_http_transport is not None:  # tests, proxies: a client of its own
                self._aclient = httpx.AsyncClient(
                    base_url=self.base_url,
                    timeout=self.timeout,
                    verify=self.verify,
                    follow_redirects=False,
                    transport=self._async_http_transport,
                )
            else:
                self._aclient = SHARED_ASYNC_CLIENTS.acquire(
                    self.base_url, self.timeout, self.verify
                )
        return self._aclient

    def close(self) -> None:
        for client in (self._client, self._bare):
            if client is not None:
                client.close()
        self._client = self._bare = None

    async def aclose(self) -> None:
        if self._aclient is not None:
            client, self._aclient = self._aclient, None
            await SHARED_ASYNC_CLIENTS.release(client)

    # -- classification ----------------------------------------------------------------

    def endpoint_uri(self, path: str) -> str:
        """The vendor endpoint ``path`` names, as a URI without query (lineage, logs)."""
        target = path if path.startswith(("http://", "https://")) else self.base_url + path
        parts = urlsplit(target)
        return f"{parts.scheme}://{parts.netloc}{parts.path}"

    def check(self, response: httpx.Response, call: ApiCall) -> None:
        """Raise for an answer outside ``call.ok`` (the body must have been read)."""
        if response.status_code in call.ok:
            return
        where = f"{self.vendor} {describe(call.method, call.path)}"
        vendor_message = self.error_parser(response)
        message = f"{where} answered {response.status_code}"
        if vendor_message:
            message += f": {vendor_message}"
        if response.status_code in RETRY_STATUSES:
            raise VendorRetryableError(
                message, status_code=response.status_code, retry_after=self.retry_after(response)
            )
        raise VendorResponseError(
            message, status_code=response.status_code, vendor_message=vendor_message
        )

    def _transport_error(self, call: ApiCall, exc: httpx.TransportError) -> RetryableError:
        where = f"{self.vendor} {describe(call.method, call.path)}"
        if call.creates and not isinstance(exc, SAFE_TO_RESEND_ERRORS):
            raise AmbiguousSubmitError(
                f"{where} failed after the request was sent ({type(exc).__name__}): "
                f"{self.vendor} may have created a job that this task does not know of; "
                "it is not sent again, so that one intent never makes two jobs"
            ) from None
        detail = str(exc).strip()[:200]  # the OS's words ("Connection refused"), no URL
        reason = f"{type(exc).__name__} ({detail})" if detail else type(exc).__name__
        return VendorUnreachableError(f"{where} failed: {reason}")

    def _check_resend(self, call: ApiCall, error: RetryableError) -> None:
        status = getattr(error, "status_code", None)
        if call.creates and status is not None and status not in SAFE_TO_RESEND_STATUSES:
            raise AmbiguousSubmitError(
                f"{error}; {self.vendor} may have created a job that this task does not know "
                "of: it is not sent again, so that one intent never makes two jobs"
            ) from None

    def _next_delay(self, budget: RetryBudget, call: ApiCall, error: RetryableError) -> float:
        self._check_resend(call, error)
        delay = budget.next_delay(error.retry_after)
        if delay is None:
            raise error
        self.log.warning(
            "%s; retry %d/%d in %.1f s",
            error,
            budget.attempts,
            self.policy.max_attempts - 1,
            delay,
        )
        return delay

    def _build(self, client: httpx.Client | httpx.AsyncClient, call: ApiCall) -> httpx.Request:
        return client.build_request(
            call.method,
            call.path,
            params=call.params,
            json=call.json,
            headers=dict(call.headers),
        )

    # -- sync ------------------------------------------------------------------------

    def request(self, call: ApiCall) -> httpx.Response:
        """Make ``call`` (body read), retrying what is worth retrying."""
        with self.open(call) as response:
            response.read()
            return response

    @contextmanager
    def open(self, call: ApiCall) -> Iterator[httpx.Response]:
        """A streaming response whose status is in ``call.ok`` (retried until then)."""
        response = self._open_checked(call)
        try:
            yield response
        finally:
            response.close()

    def _open_checked(self, call: ApiCall) -> httpx.Response:
        budget = self.policy.start()
        while True:
            try:
                return self._open_once(call)
            except httpx.TransportError as exc:
                error = self._transport_error(call, exc)
            except RetryableError as exc:
                error = exc
            delay = self._next_delay(budget, call, error)
            if self.sleep_limit is not None and delay > self.sleep_limit:
                raise LongWaitRequested(
                    f"{error}; {self.vendor} asked for a {delay:.0f} s wait", retry_after=delay
                ) from None
            self._sleep(delay)

    def _open_once(self, call: ApiCall) -> httpx.Response:
        client = self._sync_client(call.path)
        response = client.send(self._build(client, call), stream=True)
        try:
            if response.status_code not in call.ok:
                response.read()
            self.check(response, call)
        except BaseException:
            response.close()
            raise
        return response

    # -- async -----------------------------------------------------------------------

    async def arequest(self, call: ApiCall) -> httpx.Response:
        """Async twin of :meth:`request` (vendor origin only)."""
        budget = self.policy.start()
        while True:
            client = self._async_client(call.path)
            try:
                response = await client.send(self._build(client, call), auth=self.auth)
                self.check(response, call)
                return response
            except httpx.TransportError as exc:
                error = self._transport_error(call, exc)
            except RetryableError as exc:
                error = exc
            await asyncio.sleep(self._next_delay(budget, call, error))
