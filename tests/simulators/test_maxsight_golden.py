"""The request samples of VENDOR_APIS.md section 4 (tests/golden/maxsight/*.json) are accepted.

Each golden request is sent as written to the simulator at its default settings, in
strict mode with the bracket form refused, and under HOSTILE: the answer is a 200 with
the file the request asks for, filtered by what the request filters on.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from include.simulators import RunningSimulator, start_simulator
from include.simulators.maxsight import HOSTILE

pytestmark = pytest.mark.integration

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "maxsight"
FILES = sorted(GOLDEN.glob("*.json"))
PROFILES: dict[str, dict[str, Any]] = {
    "default": {},
    "strict": {"unknown_parameters": "refuse", "bracket_arrays": "refuse"},
    "hostile": HOSTILE,
}
FILTER_COLUMNS = {"event_type": "event_type", "metadata[entity_id]": "entity_id"}


def golden(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


@pytest.fixture(scope="module", params=list(PROFILES))
def sim(request: pytest.FixtureRequest) -> Iterator[RunningSimulator]:
    running = start_simulator("maxsight", seed=3, events=500, **PROFILES[request.param])
    yield running
    running.stop()


def send(sim: RunningSimulator, request: dict[str, Any]) -> httpx.Response:
    key = sim.credentials["password"]
    headers = {name: value.replace("<key>", key) for name, value in request["headers"].items()}
    return httpx.request(
        request["method"],
        sim.base_url + request["path"],
        params=[tuple(pair) for pair in request["query"]],
        headers=headers,
        timeout=30,
    )


def test_there_are_golden_requests() -> None:
    assert len(FILES) >= 6
    for path in FILES:
        request = golden(path)
        assert set(request) == {"source", "method", "path", "query", "headers", "expect"}
        assert request["source"].strip()
        assert all(len(pair) == 2 for pair in request["query"])


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_golden_request_is_accepted(sim: RunningSimulator, path: Path) -> None:
    request = golden(path)

    response = send(sim, request)

    assert response.status_code == request["expect"]["status"], response.text
    assert response.headers["content-type"].startswith(request["expect"]["content_type"])
    if request["expect"]["content_type"] == "application/pdf":
        assert response.content.startswith(b"%PDF-")
        return
    rows = list(csv.DictReader(io.StringIO(response.content.decode(), newline="")))
    for name, column in FILTER_COLUMNS.items():
        wanted = {value for key, value in request["query"] if key == name}
        assert not wanted or all(row[column] in wanted for row in rows)


def test_golden_requests_need_the_key(sim: RunningSimulator) -> None:
    request = golden(GOLDEN / "export_with_apikey.json")

    assert send(sim, {**request, "headers": {}}).status_code == 401
