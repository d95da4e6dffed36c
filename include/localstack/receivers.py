"""Where the local stack's alerts arrive: an SMTP server and a webhook receiver on loopback.

* :class:`MailReceiver`: a real SMTP server (aiosmtpd) writing each received message as
  an ``.eml`` file (``<n>-<utc time>.eml``) under its directory (``.airflow/mail/``);
* :class:`WebhookReceiver`: an HTTP server writing each call as a JSON file
  (``{"method", "path", "headers", "body", "json"}``) under its directory
  (``.airflow/webhooks/``); Apprise's ``json://host:port/path`` posts here.

Each describes the Airflow connection that points at it (``smtp`` for the SMTP
provider's notifier, ``apprise`` for Apprise's). Used by the local stack and the tests.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import threading
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from include.simulators.base import free_port

MAIL_FROM = "compliance-exports@localhost"


class _Sequence:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._n = 0

    def next_name(self, suffix: str) -> str:
        with self._lock:
            self._n += 1
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
            return f"{self._n:04d}-{stamp}{suffix}"


class MailReceiver:
    """aiosmtpd on ``host:port`` (a free port by default), no TLS, no login."""

    def __init__(self, directory: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.directory, self.host, self.port = Path(directory), host, port or free_port(host)
        self._names = _Sequence()
        self._controller: Any = None

    def start(self) -> MailReceiver:
        from aiosmtpd.controller import Controller

        self.directory.mkdir(parents=True, exist_ok=True)
        receiver = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                content = envelope.content
                data = content if isinstance(content, bytes) else str(content).encode()
                path = receiver.directory / receiver._names.next_name(".eml")
                path.write_bytes(data)
                return "250 Message accepted for delivery"

        self._controller = Controller(Handler(), hostname=self.host, port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> MailReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def connection(self) -> dict[str, Any]:
        """The SMTP provider's connection (JSON form) for this server."""
        return {
            "conn_type": "smtp",
            "host": self.host,
            "port": self.port,
            "extra": {"disable_tls": True, "disable_ssl": True, "from_email": MAIL_FROM},
        }

    def messages(self) -> list[EmailMessage]:
        """Every received message, oldest first."""
        return [
            email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
            for p in sorted(self.directory.glob("*.eml"))
        ]

    def clear(self) -> None:
        for path in self.directory.glob("*.eml"):
            path.unlink()


class WebhookReceiver:
    """An HTTP server on ``host:port`` answering 200 to every POST and writing it down."""

    def __init__(self, directory: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.directory, self.host, self.port = Path(directory), host, port or free_port(host)
        self._names = _Sequence()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> WebhookReceiver:
        self.directory.mkdir(parents=True, exist_ok=True)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace")
                try:
                    parsed = json.loads(body)
                except ValueError:
                    parsed = None
                call = {
                    "method": "POST",
                    "path": self.path,
                    "headers": dict(self.headers.items()),
                    "body": body,
                    "json": parsed,
                    "received_at": dt.datetime.now(dt.UTC).isoformat(),
                }
                path = receiver.directory / receiver._names.next_name(".json")
                path.write_text(json.dumps(call, indent=2))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:  # no access log on stderr
                pass

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def apprise_url(self) -> str:
        return f"json://{self.host}:{self.port}/alerts"

    def connection(self) -> dict[str, Any]:
        """Apprise's connection (JSON form): a generic JSON webhook to this server."""
        return {"conn_type": "apprise", "extra": {"config": {"path": self.apprise_url}}}

    def calls(self) -> list[dict[str, Any]]:
        """Every received call, oldest first."""
        return [json.loads(p.read_text()) for p in sorted(self.directory.glob("*.json"))]

    def clear(self) -> None:
        for path in self.directory.glob("*.json"):
            path.unlink()
