"""Small HTTP helpers of the Maxsight simulator: early answers and spooled bodies.

Nothing here is a vendor rule; these are the simulator's own plumbing (formerly
borrowed from the SailPoint simulator).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from typing import IO, Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from include.simulators.base import FaultInjector

SPOOL_BYTES = 4 * 1024 * 1024  # a body larger than this spools to disk
CHUNK_BYTES = 64 * 1024
CUT_FAULTS = ("truncate", "drop_connection")


class SimulatedResponse(Exception):
    """Raised by a handler to answer with ``response`` right away."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def simulator_app(title: str, api: Any) -> FastAPI:
    """A FastAPI app whose handlers may raise :class:`SimulatedResponse`."""
    app = FastAPI(title=title)
    app.state.api = api

    @app.exception_handler(SimulatedResponse)
    async def _answer(request: Request, exc: SimulatedResponse) -> Response:
        return exc.response

    return app


def new_spool() -> IO[bytes]:
    """A temporary file held in memory up to :data:`SPOOL_BYTES` (the caller closes it)."""
    return tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)


def spool_file(spool: IO[bytes]) -> Iterator[bytes]:
    """The rest of ``spool`` in chunks; closes it at the end."""
    with spool:
        while chunk := spool.read(CHUNK_BYTES):
            yield chunk


def _cut_armed(faults: FaultInjector, path: str) -> bool:
    return any(
        fault["kind"] in CUT_FAULTS
        and fault["count"] != 0
        and (not fault["path"] or re.search(fault["path"], path))
        for fault in faults.snapshot()
    )


def _spooled(chunks: Iterator[bytes]) -> tuple[IO[bytes], int]:
    spool = new_spool()
    for chunk in chunks:
        spool.write(chunk)
    size = spool.tell()
    spool.seek(0)
    return spool, size


async def sized_for_cuts(
    faults: FaultInjector, path: str, chunks: Iterator[bytes], size: int | None
) -> tuple[Iterator[bytes], int | None]:
    """Spool a streamed body to learn its size when a cut fault is armed.

    A cut is visible to the client only when ``Content-Length`` is declared; without an
    armed cut the body stays streamed (chunked).
    """
    if size is not None or not _cut_armed(faults, path):
        return chunks, size
    spool, size = await run_in_threadpool(_spooled, chunks)
    return spool_file(spool), size
