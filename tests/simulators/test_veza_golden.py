"""The golden Veza requests (tests/golden/veza/*.json) sent to the simulator over HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from include.simulators import RunningSimulator, start_simulator

pytestmark = pytest.mark.integration

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "veza"
FILES = sorted(GOLDEN.glob("*.json"))


@pytest.fixture(scope="module")
def veza() -> Iterator[RunningSimulator]:
    sim = start_simulator("veza", seed=5, rows=40, latency=0.05)
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def http(veza: RunningSimulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=veza.base_url, timeout=30) as client:
        yield client


def load(name: str) -> dict[str, Any]:
    golden: dict[str, Any] = json.loads((GOLDEN / name).read_text())
    return golden


def send(
    http: httpx.Client, golden: dict[str, Any], api_key: str, export_id: str = ""
) -> httpx.Response:
    def fill(text: str) -> str:
        return text.replace("{api_key}", api_key).replace("{export_id}", export_id)

    headers = {name: fill(value) for name, value in golden["headers"].items()}
    content = None if golden["body"] is None else json.dumps(golden["body"])
    return http.request(golden["method"], fill(golden["path"]), headers=headers, content=content)


def finished_export(http: httpx.Client, api_key: str, golden: dict[str, Any]) -> str:
    """Send a create, then poll until FINISHED; return the export id."""
    answer = send(http, golden, api_key)
    assert answer.status_code == 200, answer.text
    export_id = str(answer.json()["value"]["id"])
    deadline = time.monotonic() + 20
    while True:
        status = send(http, load("status.json"), api_key, export_id).json()["value"]["status"]
        if status == "FINISHED":
            return export_id
        assert status in {"CREATED", "PROCESSING"}, status
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_every_file_has_the_documented_keys() -> None:
    assert len(FILES) == 10
    for path in FILES:
        golden = json.loads(path.read_text())
        assert list(golden) == ["source", "method", "path", "headers", "body", "expect"], path
        assert golden["source"].startswith("VENDOR_APIS.md 2: "), path


CREATES = [path.name for path in FILES if path.name.startswith("create_")]
REFUSED = [path.name for path in FILES if path.name.startswith("refused_")]


@pytest.mark.parametrize("name", CREATES)
def test_create_is_accepted_and_finishes(
    veza: RunningSimulator, http: httpx.Client, name: str
) -> None:
    golden = load(name)
    api_key = veza.credentials["password"]
    export_id = finished_export(http, api_key, golden)
    value = send(http, load("status.json"), api_key, export_id).json()["value"]
    assert value["certification_id"] == golden["body"]["certification_id"]
    assert value["format"] == golden["body"]["format"]


def test_status_and_download_are_accepted(veza: RunningSimulator, http: httpx.Client) -> None:
    api_key = veza.credentials["password"]
    export_id = finished_export(http, api_key, load("create_csv.json"))
    status = send(http, load("status.json"), api_key, export_id)
    assert status.status_code == load("status.json")["expect"]["status"]
    assert status.json()["value"]["id"] == export_id
    download = send(http, load("download.json"), api_key, export_id)
    assert download.status_code == load("download.json")["expect"]["status"]
    assert download.headers["content-type"].startswith("text/csv")
    assert download.headers["content-disposition"].startswith("attachment; filename=")


def test_xlsx_download_has_the_xlsx_type(veza: RunningSimulator, http: httpx.Client) -> None:
    api_key = veza.credentials["password"]
    export_id = finished_export(http, api_key, load("create_xlsx_title.json"))
    download = send(http, load("download.json"), api_key, export_id)
    assert download.headers["content-type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert download.content[:2] == b"PK"  # a zip container


@pytest.mark.parametrize("name", REFUSED)
def test_wrong_variant_is_refused_with_a_google_rpc_status(
    veza: RunningSimulator, http: httpx.Client, name: str
) -> None:
    golden = load(name)
    answer = send(http, golden, veza.credentials["password"])
    expect = golden["expect"]
    assert answer.status_code == expect["status"], answer.text
    body = answer.json()
    assert set(body) == {"code", "message", "details"}
    assert (body["code"], body["details"]) == (expect["code"], [])
    assert body["message"].startswith(f"{expect['field']}: ")
