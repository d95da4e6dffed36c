"""Reading what the Maxsight simulator serves, for the audit PDF tests over HTTP."""

from __future__ import annotations

import io
import re
from typing import Any

from pypdf import PdfReader

from include.simulators import RunningSimulator

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
