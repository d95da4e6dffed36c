"""A bounded log of the SailPoint simulator's answers, read at ``GET /_sim/responses``.

Tests validate every logged answer against their OpenAPI document of the report API.
Each entry has the method, the path, the route template that served it (``None`` when no
route matched), the status, the Content-Type, the headers a client acts on
(:data:`KEPT_HEADERS`) and, for a JSON answer, its parsed body.
Non-JSON bodies (the report files) are not kept. ``/_sim`` admin answers are not logged.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import asdict, dataclass, field
from typing import Any

from fastapi import FastAPI

ADMIN_PREFIX = "/_sim"
KEEP = 5000  # answers kept; older ones are dropped (and counted)
JSON_BODY_LIMIT = 1024 * 1024  # a JSON body larger than this is logged as truncated
#: response headers kept in the log (lower-case names), for the document's header checks
KEPT_HEADERS = (b"retry-after", b"content-disposition")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass
class LoggedResponse:
    method: str
    path: str
    route: str | None
    status: int
    content_type: str | None
    json_body: Any = None
    has_json_body: bool = False
    truncated: bool = False
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class ResponseLog:
    """The last :data:`KEEP` answers, thread-safe."""

    items: deque[LoggedResponse] = field(default_factory=lambda: deque(maxlen=KEEP))
    dropped: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, item: LoggedResponse) -> None:
        with self.lock:
            if len(self.items) == self.items.maxlen:
                self.dropped += 1
            self.items.append(item)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {"dropped": self.dropped, "responses": [asdict(i) for i in self.items]}

    def clear(self) -> None:
        with self.lock:
            self.items.clear()
            self.dropped = 0


class _Capture:
    """What one request's ``send`` messages carried: status, headers, a JSON body."""

    def __init__(self) -> None:
        self.status = 0
        self.content_type: str | None = None
        self.headers: dict[str, str] = {}
        self.body = bytearray()
        self.truncated = False

    def see(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
            for name, value in message.get("headers", []):
                if name.lower() == b"content-type":
                    self.content_type = value.decode("latin-1")
                elif name.lower() in KEPT_HEADERS:
                    self.headers[name.decode("latin-1")] = value.decode("latin-1")
        elif message["type"] == "http.response.body" and self.is_json:
            if len(self.body) < JSON_BODY_LIMIT:
                self.body += message.get("body", b"")
            else:
                self.truncated = True

    @property
    def is_json(self) -> bool:
        return (self.content_type or "").split(";")[0].strip() == "application/json"

    def entry(self, scope: Scope) -> LoggedResponse:
        route = scope.get("route")
        entry = LoggedResponse(
            method=str(scope["method"]),
            path=str(scope["path"]),
            route=getattr(route, "path", None),
            status=self.status,
            content_type=self.content_type,
            truncated=self.truncated,
            headers=dict(self.headers),
        )
        if self.is_json and self.body and not self.truncated:
            try:
                entry.json_body, entry.has_json_body = json.loads(bytes(self.body)), True
            except ValueError:
                entry.truncated = True  # not parseable: the validator reports it
        return entry


class ResponseLogMiddleware:
    """Pure ASGI middleware: logs each non-admin answer once its last body part is sent."""

    def __init__(self, app: Asgi, log: ResponseLog) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope["path"]).startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        capture = _Capture()

        async def sending(message: Message) -> None:
            capture.see(message)
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            if capture.status:
                self.log.add(capture.entry(scope))


def install_response_log(app: FastAPI) -> ResponseLog:
    """Log ``app``'s answers; ``GET``/``DELETE /_sim/responses`` read and clear the log."""
    log = ResponseLog()
    app.add_middleware(ResponseLogMiddleware, log=log)

    @app.get(f"{ADMIN_PREFIX}/responses", tags=["simulator admin"])
    def list_responses() -> dict[str, Any]:
        return log.snapshot()

    @app.delete(f"{ADMIN_PREFIX}/responses", tags=["simulator admin"])
    def clear_responses() -> dict[str, str]:
        log.clear()
        return {"status": "cleared"}

    return log
