"""Reading what the Maxsight simulator serves, for the audit PDF tests over HTTP."""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from pypdf import PdfReader

from include.simulators import RunningSimulator, start_simulator
from tests.conftest import set_connection

#: the day the tests export, and a simulator event store around it (it starts and ends
#: half a day outside, so the day's edges are real boundaries)
DAY = dt.date(2026, 11, 20)
DAY_START, DAY_END = "2026-11-20T00:00:00.000Z", "2026-11-20T23:59:59.999Z"
AROUND_THE_DAY = {
    "store_start": "2026-11-19T12:00:00.000Z",
    "store_end": "2026-11-21T12:00:00.000Z",
}
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def pdf_event_ids(pdf: bytes) -> list[str]:
    """The event ids of a simulator PDF: one table row per text line, the id first."""
    assert pdf.startswith(b"%PDF-")
    lines = (
        line
        for page in PdfReader(io.BytesIO(pdf)).pages
        for line in page.extract_text().splitlines()
    )
    return [words[0] for words in map(str.split, lines) if words and UUID.match(words[0])]


def configure(sim: RunningSimulator, **settings: Any) -> None:
    """Change the simulator's runtime settings (``PATCH /_sim/config``)."""
    with sim.admin() as admin:
        admin.patch("/_sim/config", json=settings).raise_for_status()


@contextmanager
def maxsight_simulators(
    monkeypatch: pytest.MonkeyPatch, conn_id: str, **defaults: Any
) -> Iterator[Callable[..., RunningSimulator]]:
    """``start(**settings)``: Maxsight simulators of our own (``defaults`` under the
    test's ``settings``), each behind the ``conn_id`` connection; all stopped on exit."""
    running: list[RunningSimulator] = []
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", "")  # removed again afterwards

    def start(**settings: Any) -> RunningSimulator:
        sim = start_simulator("maxsight", seed=2026, **{**defaults, **settings})
        running.append(sim)
        set_connection(conn_id, sim.connection())
        return sim

    try:
        yield start
    finally:
        for sim in running:
            sim.stop()
