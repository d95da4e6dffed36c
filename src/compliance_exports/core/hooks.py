"""``ExportHook``: the vendor adapter base. Vendors declare; the base does the I/O.

A vendor hook declares its connection type, its status vocabulary (a
:class:`StatusMap`), how to authenticate, and which :class:`ApiCall` submits, reads,
cancels and downloads an export, plus how to read the answers. The base turns a
connection into a :class:`VendorTransport` (sync for workers, async for the triggerer)
and offers the lifecycle calls, each with an ``a_`` async twin where the triggerer
needs it: ``submit_export``, ``get_export_state`` / ``a_get_export_state``,
``cancel_export`` / ``a_cancel_export``, ``open_download``.

``test_connection()`` (the UI's Test button, the trigger form's dry run) is the base's
too: the vendor declares only its probe (``probe_call``: the cheapest documented read
that proves the credentials, never starting an export), and the base makes it through a
transport of its own with a small retry budget, turning every failure into
``(False, message)`` with the vendor's own words and never the connection's secret.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import ssl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx
from airflow.sdk import BaseHook

from compliance_exports.core.auth import TokenRequestError, amask, mask
from compliance_exports.core.connection import untestable
from compliance_exports.core.errors import (
    ExportError,
    ExportValidationError,
    FatalError,
    RetryableError,
)
from compliance_exports.core.http import (
    DEFAULT_TIMEOUT,
    AmbiguousSubmitError,
    ApiCall,
    VendorResponseError,
    VendorTransport,
    VendorUnreachableError,
    check_base_url,
    default_error_parser,
    default_retry_after,
    describe,
    json_or_none,
    ssl_context,
)
from compliance_exports.core.retry import RetryPolicy
from compliance_exports.core.states import ExportState, StatusMap

_FILENAME = re.compile(r"""filename\*?=(?:UTF-8'')?["']?([^"';]+)["']?""", re.IGNORECASE)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_TRUE = {"1", "true", "yes", "on"}

#: test_connection's retry budget: a person waits at the Test button (or on a dry run),
#: so one retry of a 429/5xx/dropped connection, within 10 s, instead of minutes.
PROBE_RETRY_POLICY = RetryPolicy(max_attempts=2, max_elapsed=10.0, base_delay=0.5, max_delay=2.0)
#: and its timeouts, each capped here (a shorter one of the connection's extra wins)
PROBE_TIMEOUT = httpx.Timeout(20.0, connect=5.0)


def extra_flag(extra: Mapping[str, Any], name: str) -> bool:
    """A boolean connection extra that may arrive as a JSON bool or a string."""
    value = extra.get(name, False)
    return value if isinstance(value, bool) else str(value).strip().lower() in _TRUE


def timeout_from_extra(extra: Mapping[str, Any], given: httpx.Timeout | None) -> httpx.Timeout:
    """The hook's timeout, else extra ``timeout`` (seconds per read/write), else the default."""
    if given is not None:
        return given
    value = extra.get("timeout")
    if value is None:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ExportValidationError("extra.timeout", f"{value!r} is not in seconds") from None
    if seconds <= 0:
        raise ExportValidationError("extra.timeout", "must be positive")
    return httpx.Timeout(seconds, connect=min(seconds, DEFAULT_TIMEOUT.connect or seconds))


def probe_timeout(configured: httpx.Timeout) -> httpx.Timeout:
    """``configured`` with each limit capped by :data:`PROBE_TIMEOUT`."""

    def cap(value: float | None, limit: float | None) -> float | None:
        return limit if value is None else min(value, limit or value)

    return httpx.Timeout(
        connect=cap(configured.connect, PROBE_TIMEOUT.connect),
        read=cap(configured.read, PROBE_TIMEOUT.read),
        write=cap(configured.write, PROBE_TIMEOUT.write),
        pool=cap(configured.pool, PROBE_TIMEOUT.pool),
    )


def scrub(text: str, *secrets: str | None) -> str:
    """``text`` with every occurrence of each (non-empty) secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def verify_from_extra(extra: Mapping[str, Any]) -> bool | ssl.SSLContext:
    """TLS verification: always on; extra ``ca_bundle`` names a CA file to trust instead."""
    bundle = extra.get("ca_bundle")
    if not bundle:
        return True
    try:
        return ssl_context(str(bundle))
    except (OSError, ssl.SSLError) as exc:
        raise ExportValidationError("extra.ca_bundle", f"cannot load {bundle!r}: {exc}") from None


def safe_filename(name: str) -> str:
    """A file name fit for an S3 key segment: base name only, unusual characters as '_'."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    cleaned = _UNSAFE.sub("_", base).lstrip("._")
    return cleaned or "export"


def filename_from_disposition(header: str | None) -> str | None:
    match = _FILENAME.search(header or "")
    return safe_filename(match.group(1)) if match else None


class ExportNotFoundError(FatalError):
    """The vendor does not know the job (purged, or never existed)."""


class ForeignJobRunning(ExportError):
    """The vendor answered a submission with a job that is not ours (someone else's run
    of the same report, say): wait it out, never cancel it, then submit again."""

    def __init__(self, job_id: str, reason: str) -> None:
        super().__init__(f"the vendor answered with job {job_id}, which is not ours: {reason}")
        self.job_id = job_id
        self.reason = reason


@dataclass
class Download:
    """An open, streaming download: the response plus what we know about the file."""

    response: httpx.Response
    filename: str
    content_type: str
    content_length: int | None
    source_uri: str = ""  # the vendor endpoint the file came from (lineage)


class ExportHook(BaseHook):
    """Base of the four vendor hooks; subclasses are mostly class attributes."""

    conn_name_attr = "conn_id"
    default_conn_name: ClassVar[str]
    conn_type: ClassVar[str]
    hook_name: ClassVar[str]
    vendor: ClassVar[str]
    status_map: ClassVar[StatusMap]
    #: whether the vendor can cancel a running export (``cancel_call`` is declared).
    can_cancel: ClassVar[bool] = False

    def __init__(
        self,
        conn_id: str | None = None,
        *,
        retry_policy: RetryPolicy | None = None,  # None: defaults tuned by extra retry_*
        timeout: httpx.Timeout | None = None,  # None: DEFAULT_TIMEOUT, or extra "timeout"
        sleep_limit: float | None = None,  # a longer Retry-After raises LongWaitRequested
        **named: Any,  # the connection id by its Airflow name (``conn_name_attr``)
    ) -> None:
        # Airflow builds a hook from a connection (the UI's Test button, ``Connection.
        # get_hook``) as ``hook_class(**{conn_name_attr: conn_id})``
        named_conn_id = named.pop(self.conn_name_attr, None)
        if named:
            unknown = ", ".join(sorted(named))
            raise TypeError(f"{type(self).__name__} got unexpected keyword arguments: {unknown}")
        super().__init__()
        self.conn_id = conn_id or named_conn_id or self.default_conn_name
        self.retry_policy = retry_policy
        self.timeout = timeout
        self.sleep_limit = sleep_limit
        self._transport: VendorTransport | None = None
        self._atransport: VendorTransport | None = None
        #: the connection's extra, set once the connection is read (before any call is built)
        self.extra: dict[str, Any] = {}

    # -- what a vendor declares ----------------------------------------------------------

    def auth_for(self, conn: Any, base_url: str) -> httpx.Auth:
        """The ``httpx.Auth`` built from the connection."""
        raise NotImplementedError

    def submit_call(self, request: Mapping[str, Any]) -> ApiCall:
        raise NotImplementedError

    def job_id_of(self, response: httpx.Response) -> str:
        raise NotImplementedError

    def status_call(self, job_id: str) -> ApiCall:
        raise NotImplementedError

    def state_of(self, job_id: str, response: httpx.Response) -> ExportState:
        raise NotImplementedError

    def cancel_call(self, job_id: str) -> ApiCall:
        raise FatalError(f"{self.vendor} exports cannot be cancelled")

    def download_call(self, state: ExportState, options: Mapping[str, Any]) -> ApiCall:
        raise NotImplementedError

    def default_filename(self, state: ExportState, options: Mapping[str, Any]) -> str:
        return f"{state.job_id}.csv"

    def parse_error(self, response: httpx.Response) -> str:
        """The vendor's error message from an error answer (body already read)."""
        body = self.json_or_none(response)
        if body is None:
            return default_error_parser(response)
        return self.error_message(body) if isinstance(body, dict) else str(body)[:300]

    def error_message(self, body: Mapping[str, Any]) -> str:
        """The message of a JSON error body, in the vendor's own words."""
        return str(body)[:300]

    def retry_after_of(self, response: httpx.Response) -> float | None:
        return default_retry_after(response)

    def is_expired_link(self, error: VendorResponseError) -> bool:
        """Whether a download failed because its (presigned) link expired."""
        return False

    def probe_call(self) -> ApiCall:
        """The cheapest documented read that proves the credentials work (``test_connection``).

        It must start nothing at the vendor: a list, or the status of a job that cannot
        exist (then ``ok`` includes the vendor's "not found", which it answers only to an
        authenticated client). Built after the connection is read (``self.extra`` is set).
        """
        raise NotImplementedError(f"{type(self).__name__} declares no probe_call")

    def probe_problem(self, response: httpx.Response) -> str | None:
        """Why an answer to the probe (its status in ``probe_call().ok``) does not prove
        that this is the vendor's API (e.g. a bare 404 from some other server), or None."""
        return None

    def base_url_of(self, conn: Any) -> str:
        extra = conn.extra_dejson
        return check_base_url(
            conn.host, allow_insecure_http=extra_flag(extra, "allow_insecure_http")
        )

    # -- connection -> transport ---------------------------------------------------------

    def _build_transport(self, conn: Any, *, probe: bool = False) -> VendorTransport:
        """The transport of ``conn``; ``probe``: test_connection's small budget."""
        self.extra = dict(conn.extra_dejson)
        base_url = self.base_url_of(conn)
        policy = self.retry_policy or RetryPolicy.from_extra(self.extra)
        timeout = timeout_from_extra(self.extra, self.timeout)
        return VendorTransport(
            vendor=self.vendor,
            base_url=base_url,
            auth=self.auth_for(conn, base_url),
            policy=PROBE_RETRY_POLICY if probe else policy,
            timeout=probe_timeout(timeout) if probe else timeout,
            verify=verify_from_extra(self.extra),
            error_parser=self.parse_error,
            retry_after=self.retry_after_of,
            logger=self.log,  # type: ignore[arg-type]
            sleep_limit=self.sleep_limit,
        )

    def get_transport(self) -> VendorTransport:
        if self._transport is None:
            conn = self.get_connection(self.conn_id)
            mask(conn.password)
            self._transport = self._build_transport(conn)
        return self._transport

    async def a_get_transport(self) -> VendorTransport:
        if self._atransport is None:
            conn = await self.aget_connection(self.conn_id)
            await amask(conn.password)
            self._atransport = self._build_transport(conn)
        return self._atransport

    def get_conn(self) -> VendorTransport:
        return self.get_transport()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    async def aclose(self) -> None:
        if self._atransport is not None:
            await self._atransport.aclose()

    # -- test_connection -----------------------------------------------------------------

    def test_connection(self) -> tuple[bool, str]:
        """Authenticate and make the vendor's probe (:meth:`probe_call`): ``(True, what
        answered)``, or ``(False, why)`` in the vendor's words. Never raises; the message
        never holds the connection's password (client secret or API key)."""
        secret: str | None = None
        base_url = ""
        try:
            conn = self.get_connection(self.conn_id)
            secret = conn.password
            mask(secret)
            transport = self._build_transport(conn, probe=True)
            base_url = transport.base_url
            try:
                call = self.probe_call()
                response = transport.request(call)
            finally:
                transport.close()
            problem = self.probe_problem(response)
            where = describe(call.method, call.path)
            if problem is not None:
                ok, message = False, f"{self.hook_name}: {where} answered {response.status_code}: "
                message += problem
            else:
                ok = True
                message = (
                    f"{self.hook_name} accepted the credentials: {where} answered "
                    f"{response.status_code} (nothing was exported)"
                )
        except Exception as exc:  # the Test button shows a message, never a traceback
            ok, message = False, self._probe_failure(exc, base_url)
        message = scrub(message, secret)
        (self.log.info if ok else self.log.warning)("test_connection %s: %s", self.conn_id, message)
        return ok, message

    def _probe_failure(self, exc: Exception, base_url: str) -> str:
        name = self.hook_name
        if isinstance(exc, NotImplementedError):
            return untestable(str(exc) or f"{type(self).__name__} lacks a method")
        if isinstance(exc, ExportValidationError):
            return f"the {name} connection {self.conn_id!r} is not usable: {exc}"
        if isinstance(exc, TokenRequestError):
            return f"{name} refused the credentials: {exc}"
        if isinstance(exc, VendorResponseError):
            if exc.status_code in (401, 403):
                return f"{name} refused the credentials: {exc}"
            return f"{name} answered an error: {exc}"
        if isinstance(exc, VendorUnreachableError):  # connection refused, DNS, timeouts
            return f"cannot reach {name} at {base_url or 'its host'}: {exc}"
        if isinstance(exc, RetryableError):  # 429 or 5xx, from the API or the token endpoint
            return f"{name} did not answer usefully (try again later): {exc}"
        if isinstance(exc, ExportError | httpx.HTTPError):
            return f"{name}: {exc}"
        return f"{name}: {type(exc).__name__}: {exc}"

    # -- the lifecycle -------------------------------------------------------------------

    def submit_export(self, request: Mapping[str, Any]) -> str:
        """Start an export; return the vendor's job id.

        The POST is sent again only where the vendor cannot have acted on it (see
        ``core.http``); otherwise :class:`AmbiguousSubmitError` says a job may exist.
        """
        asked_at = dt.datetime.now(dt.UTC)
        transport = self.get_transport()
        call = dataclasses.replace(self.submit_call(request), creates=True)
        try:
            response = transport.request(call)
        except AmbiguousSubmitError as exc:
            exc.asked_at = asked_at
            raise
        job_id = self.job_id_of(response)
        reason = self.foreign_job_reason(response, request, asked_at)
        if reason is not None:
            raise ForeignJobRunning(job_id, reason)
        self.log.info("%s export submitted: job %s", self.vendor, job_id)
        return job_id

    def foreign_job_reason(
        self, response: httpx.Response, request: Mapping[str, Any], asked_at: dt.datetime
    ) -> str | None:
        """Why the job a submission was answered with is not ours (someone else's run the
        vendor handed back), or None (the default: it is ours)."""
        return None

    def recover_submission(
        self, request: Mapping[str, Any], asked_at: dt.datetime | None
    ) -> str | None:
        """The job an ambiguous submission of ``request`` (first sent at ``asked_at``)
        created, where the vendor gives a way to find it.

        None (the default) means the vendor gives no way, or found no single job: the
        task then fails without a retry, saying a job may exist. A vendor that can list
        its jobs (or keys them by an idempotency key) overrides this; each vendor's hook
        says why it does or does not (docs/ADDING_A_VENDOR.md shows an implementation).
        """
        return None

    def get_export_state(self, job_id: str) -> ExportState:
        transport = self.get_transport()
        try:
            response = transport.request(self.status_call(job_id))
        except VendorResponseError as exc:
            if exc.status_code == 404:
                raise ExportNotFoundError(str(exc)) from None
            raise
        return self.state_of(job_id, response)

    async def a_get_export_state(self, job_id: str) -> ExportState:
        transport = await self.a_get_transport()
        response = await transport.arequest(self.status_call(job_id))
        return self.state_of(job_id, response)

    def cancel_export(self, job_id: str) -> bool:
        """Cancel the job; False (logged) when the vendor refuses these credentials."""
        transport = self.get_transport()
        try:
            transport.request(self.cancel_call(job_id))
        except VendorResponseError as exc:
            return self._refused(job_id, exc)
        self.log.info("%s export %s cancelled", self.vendor, job_id)
        return True

    async def a_cancel_export(self, job_id: str) -> bool:
        transport = await self.a_get_transport()
        try:
            await transport.arequest(self.cancel_call(job_id))
        except VendorResponseError as exc:
            return self._refused(job_id, exc)
        self.log.info("%s export %s cancelled", self.vendor, job_id)
        return True

    def cancel_refusal(self, error: VendorResponseError) -> str | None:
        """Why the vendor refused to cancel with these credentials (then the job is left
        running and the task carries on), or None for an error worth raising."""
        return None

    def _refused(self, job_id: str, error: VendorResponseError) -> bool:
        reason = self.cancel_refusal(error)
        if reason is None:
            raise error
        self.log.warning(
            "%s export %s was not cancelled: %s (%s)", self.vendor, job_id, reason, error
        )
        return False

    @contextmanager
    def open_download(
        self, state: ExportState, options: Mapping[str, Any] | None = None
    ) -> Iterator[Download]:
        """Stream the finished export's file."""
        opts = options or {}
        transport = self.get_transport()
        call = self.download_call(state, opts)
        # a presigned link on another origin is not the dataset: name the vendor's job
        source = (
            self.status_call(state.job_id).path if transport.is_foreign(call.path) else call.path
        )
        with transport.open(call) as response:
            download = self.describe_download(response, self.default_filename(state, opts))
            download.source_uri = transport.endpoint_uri(source)
            yield download

    @staticmethod
    def describe_download(response: httpx.Response, fallback_name: str) -> Download:
        length = response.headers.get("Content-Length")
        return Download(
            response=response,
            filename=filename_from_disposition(response.headers.get("Content-Disposition"))
            or safe_filename(fallback_name),
            content_type=response.headers.get("Content-Type", "application/octet-stream"),
            content_length=int(length) if length and length.isdigit() else None,
        )

    # -- helpers for vendor adapters -------------------------------------------------------

    @staticmethod
    def json_of(response: httpx.Response, what: str) -> dict[str, Any]:
        """The JSON object body of ``response``, or a clear error naming ``what``."""
        try:
            body = response.json()
        except ValueError:
            raise FatalError(f"{what}: the answer is not JSON") from None
        if not isinstance(body, dict):
            raise FatalError(f"{what}: expected a JSON object, got {type(body).__name__}")
        return body

    json_or_none = staticmethod(json_or_none)

    @staticmethod
    def required_extra(conn: Any, name: str) -> str:
        value = conn.extra_dejson.get(name)
        if not value:
            raise ExportValidationError(f"extra.{name}", f"connection {conn.conn_id!r} needs it")
        return str(value)
