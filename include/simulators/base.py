"""Shared machinery of the vendor simulators: faults, request log, admin API, server.

Every vendor simulator is a FastAPI app built by ``build_app(...)`` in its own module.
They all get, from here:

* a :class:`FaultInjector` (deterministic under a seed) that handlers consult with
  ``faults.take("kind", request)``; faults are set at start (``SimSettings.faults``)
  or at run time through ``POST /_sim/faults``;
* a :class:`RequestLog` filled by a middleware (secrets redacted) and readable at
  ``GET /_sim/requests``;
* the admin router under ``/_sim`` (never logged, never faulted);
* :class:`SimulatorServer`, a uvicorn server in a background thread on loopback,
  used by the test fixtures and the local stack.
"""

from __future__ import annotations

import asyncio
import random
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from email.utils import formatdate
from typing import Any, Literal

import uvicorn
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response

FaultKind = Literal[
    "rate_limit",  # 429 with Retry-After (seconds or HTTP-date form)
    "server_error",  # 5xx burst
    "job_failure",  # the export job ends failed with the vendor's error body
    "never_finish",  # the export job stays non-terminal forever
    "drop_connection",  # the download connection is closed mid-body
    "truncate",  # Content-Length larger than the body sent
    "expire_url",  # presigned URL handed out already expired (Oleria)
    "token_expiry",  # a valid token is answered 401 as expired
    "veza_expired",  # a FINISHED Veza export turns EXPIRED
]
FAULT_KINDS: tuple[str, ...] = FaultKind.__args__  # type: ignore[attr-defined]

SECRET_HEADERS = frozenset(
    {"authorization", "apikey", "x-api-key", "cookie", "proxy-authorization"}
)
SECRET_FIELDS = re.compile(r"(client_secret|password|access_token|apikey)=[^&\s]+")
ADMIN_PREFIX = "/_sim"


@dataclass
class Fault:
    """One armed fault. ``count`` is how many times it fires (-1: forever)."""

    kind: str
    count: int = 1
    probability: float = 1.0
    path: str | None = None  # regex matched against the request path; None = any
    status: int = 503  # for server_error
    retry_after: float = 1.0  # seconds, for rate_limit
    retry_after_form: Literal["seconds", "http-date"] = "seconds"
    after_bytes: int = 1024  # for drop_connection / truncate: bytes sent before the cut
    fired: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; known: {', '.join(FAULT_KINDS)}")

    def retry_after_header(self) -> str:
        if self.retry_after_form == "http-date":
            return formatdate(time.time() + self.retry_after, usegmt=True)
        return str(max(0, round(self.retry_after)))


class FaultInjector:
    """Armed faults, consulted by handlers. Deterministic for a given seed and call order."""

    def __init__(self, seed: int = 0, faults: list[Fault] | None = None) -> None:
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.faults: list[Fault] = list(faults or [])

    def arm(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()

    def take(self, kind: str, path: str = "") -> Fault | None:
        """Return (and consume one firing of) the first armed ``kind`` fault matching ``path``."""
        with self._lock:
            for fault in self.faults:
                if fault.kind != kind or fault.count == 0:
                    continue
                if fault.path and not re.search(fault.path, path):
                    continue
                if fault.probability < 1.0 and self._rng.random() >= fault.probability:
                    continue
                if fault.count > 0:
                    fault.count -= 1
                fault.fired += 1
                return fault
        return None

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(f) for f in self.faults]


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: str
    origin: str  # scheme://host:port the request was addressed to
    headers: dict[str, str]
    status: int | None
    at: float
    body: str | None = None  # form/JSON bodies, secrets redacted


class RequestLog:
    """Every non-admin request a simulator saw, with secrets redacted."""

    def __init__(self, keep: int = 100_000) -> None:
        self._items: list[LoggedRequest] = []
        self._lock = threading.Lock()
        self._keep = keep

    def add(self, item: LoggedRequest) -> None:
        with self._lock:
            self._items.append(item)
            if len(self._items) > self._keep:
                del self._items[: len(self._items) - self._keep]

    def items(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def redact_headers(headers: Any) -> dict[str, str]:
    return {k.lower(): ("***" if k.lower() in SECRET_HEADERS else v) for k, v in headers.items()}


def redact_text(text: str) -> str:
    return SECRET_FIELDS.sub(lambda m: f"{m.group(1)}=***", text)


@dataclass
class SimState:
    """What every simulator app carries in ``app.state.sim``."""

    vendor: str
    seed: int = 0
    faults: FaultInjector = field(default_factory=FaultInjector)
    log: RequestLog = field(default_factory=RequestLog)
    # Vendor-specific, JSON-able facts tests may read (e.g. rows per export id).
    facts: dict[str, Any] = field(default_factory=dict)
    # Hook for vendors to expose/patch runtime settings through /_sim/config.
    settings: Any = None


class SeededJobs:
    """Job ids and export latencies of a simulator, deterministic under its seed.

    ``settings`` needs ``latency`` (seconds) and ``latency_max`` (None: fixed latency;
    otherwise a seeded uniform draw in ``[latency, latency_max]``).
    """

    def __init__(self, state: SimState, settings: Any) -> None:
        self.state = state
        self.settings = settings
        self._rng = random.Random(state.seed)
        self._lock = threading.Lock()

    def new_id(self) -> str:
        with self._lock:
            return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def latency(self) -> float:
        low, high = self.settings.latency, self.settings.latency_max
        if high is None:
            return float(low)
        with self._lock:
            return self._rng.uniform(low, high)


def new_state(
    vendor: str, *, seed: int, settings: Any, faults: Iterable[Fault | dict[str, Any]] = ()
) -> SimState:
    """A simulator's state: its settings and the faults armed at start (dicts or Faults)."""
    armed = [fault if isinstance(fault, Fault) else Fault(**fault) for fault in faults]
    return SimState(vendor=vendor, seed=seed, faults=FaultInjector(seed, armed), settings=settings)


def install_common(app: FastAPI, state: SimState) -> None:
    """Attach the request log middleware and the ``/_sim`` admin router to ``app``."""
    app.state.sim = state

    @app.middleware("http")
    async def _log_requests(request: Request, call_next: Callable[..., Any]) -> Response:
        if request.url.path.startswith(ADMIN_PREFIX):
            admin_response: Response = await call_next(request)
            return admin_response
        body: str | None = None
        if request.method in {"POST", "PUT", "PATCH"}:
            raw = await request.body()
            body = redact_text(raw[:4096].decode("utf-8", "replace"))
        entry = LoggedRequest(
            method=request.method,
            path=request.url.path,
            query=request.url.query,
            origin=f"{request.url.scheme}://{request.url.netloc}",
            headers=redact_headers(request.headers),
            status=None,
            at=time.time(),
            body=body,
        )
        state.log.add(entry)
        response: Response = await call_next(request)
        entry.status = response.status_code
        return response

    app.include_router(admin_router(state))


def admin_router(state: SimState) -> APIRouter:
    router = APIRouter(prefix=ADMIN_PREFIX, tags=["simulator admin"])

    @router.get("/requests")
    def list_requests() -> list[dict[str, Any]]:
        return [asdict(r) for r in state.log.items()]

    @router.delete("/requests")
    def clear_requests() -> dict[str, str]:
        state.log.clear()
        return {"status": "cleared"}

    @router.get("/faults")
    def list_faults() -> list[dict[str, Any]]:
        return state.faults.snapshot()

    @router.post("/faults")
    def arm_fault(spec: dict[str, Any]) -> JSONResponse:
        try:
            fault = state.faults.arm(Fault(**spec))
        except (TypeError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(asdict(fault), status_code=201)

    @router.delete("/faults")
    def clear_faults() -> dict[str, str]:
        state.faults.clear()
        return {"status": "cleared"}

    @router.get("/facts")
    def facts() -> dict[str, Any]:
        return {"vendor": state.vendor, "seed": state.seed, **state.facts}

    @router.get("/config")
    def get_config() -> dict[str, Any]:
        s = state.settings
        return asdict(s) if s is not None and hasattr(s, "__dataclass_fields__") else {}

    @router.patch("/config")
    def patch_config(patch: dict[str, Any]) -> JSONResponse:
        s = state.settings
        if s is None:
            return JSONResponse({"error": "no runtime settings"}, status_code=400)
        unknown = [k for k in patch if not hasattr(s, k)]
        if unknown:
            return JSONResponse({"error": f"unknown settings: {unknown}"}, status_code=400)
        for key, value in patch.items():
            setattr(s, key, value)
        return JSONResponse(asdict(s))

    return router


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class SimulatorServer:
    """Runs one ASGI app with uvicorn in a daemon thread (tests, local stack)."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port or free_port(host)
        config = uvicorn.Config(
            app,
            host=self.host,
            port=self.port,
            log_level="warning",
            lifespan="on",
            timeout_keep_alive=5,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, name=f"sim-{self.port}", daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> SimulatorServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"simulator on {self.base_url} did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


async def sleep_until(deadline: float) -> None:
    """Async sleep until a ``time.time()`` deadline (used for latency simulation)."""
    delay = deadline - time.time()
    if delay > 0:
        await asyncio.sleep(delay)
