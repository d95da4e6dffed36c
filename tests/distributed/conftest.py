"""What the native-stack test modules share: the backends check and a polling wait."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

BACKENDS = (("PostgreSQL", 5432), ("Redis", 6379))


def reachable(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError:
        return False
    return True


def require_backends() -> None:
    """Skip unless PostgreSQL and Redis listen on 127.0.0.1 (every machine here has both)."""
    for name, port in BACKENDS:
        if not reachable("127.0.0.1", port):
            pytest.skip(f"{name} is not listening on 127.0.0.1:{port}")


def wait_for(what: str, probe: Callable[[], Any], *, timeout: float, every: float = 1.0) -> Any:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` at the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        time.sleep(every)
    pytest.fail(f"gave up waiting for {what}")
