"""Every golden SailPoint request (tests/golden/sailpoint/*.json) is accepted by the simulator."""

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

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "sailpoint"
FILES = sorted(GOLDEN.glob("*.json"))
FIELDS = {"source", "method", "path", "query", "headers", "needs", "expect_status"}


@pytest.fixture(scope="module")
def sailpoint() -> Iterator[RunningSimulator]:
    sim = start_simulator("sailpoint", seed=5, rows=5, latency=0.05)
    yield sim
    sim.stop()


def token(sim: RunningSimulator) -> str:
    form = {"grant_type": "client_credentials", "client_id": sim.credentials["login"],
            "client_secret": sim.credentials["password"]}  # fmt: skip
    response = httpx.post(f"{sim.base_url}/oauth/token", data=form, timeout=10)
    return str(response.raise_for_status().json()["access_token"])


def task_for(sim: RunningSimulator, needs: str | None, bearer: str) -> str:
    """The id of the task a golden request needs (none: a made-up id)."""
    if needs is None:
        return "0" * 32
    http = httpx.Client(base_url=sim.base_url, timeout=10)
    http.headers["Authorization"] = f"Bearer {bearer}"
    if needs == "running_task":
        http.post(f"{sim.base_url}/_sim/faults", json={"kind": "never_finish"})
    body = {"reportType": "IDENTITIES_DETAILS", "arguments": {"correlatedOnly": True}}
    task_id = str(http.post("/v3/reports/run", json=body).raise_for_status().json()["id"])
    deadline = time.monotonic() + 20
    while needs == "finished_task" and not done(http, task_id):
        assert time.monotonic() < deadline, f"{task_id} did not finish"
        time.sleep(0.05)
    return task_id


def done(http: httpx.Client, task_id: str) -> bool:
    return bool(http.get(f"/v3/reports/{task_id}/result").json().get("status"))


def filled(value: Any, values: dict[str, str]) -> Any:
    """``value`` with each ``{name}`` placeholder of its strings replaced."""
    if isinstance(value, dict):
        return {k: filled(v, values) for k, v in value.items()}
    if isinstance(value, str):
        for name, replacement in values.items():
            value = value.replace(f"{{{name}}}", replacement)
    return value


def test_there_are_golden_requests_of_every_operation() -> None:
    shapes = {
        (json.loads(p.read_text())["method"], json.loads(p.read_text())["path"]) for p in FILES
    }

    assert {("POST", "/oauth/token"), ("POST", "/v3/reports/run"), ("POST", "/reports/v1/run"),
            ("GET", "/v3/reports/{taskResultId}/result"), ("GET", "/v3/reports/{taskResultId}"),
            ("POST", "/v3/reports/{id}/cancel")} <= shapes  # fmt: skip


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_golden_request_is_accepted(sailpoint: RunningSimulator, path: Path) -> None:
    golden = json.loads(path.read_text())
    assert set(golden) >= FIELDS
    assert golden["source"].strip()
    bearer = token(sailpoint)
    task_id = task_for(sailpoint, golden["needs"], bearer)
    values = {"access_token": bearer, "taskResultId": task_id, "id": task_id,
              "client_id": sailpoint.credentials["login"],
              "client_secret": sailpoint.credentials["password"]}  # fmt: skip

    response = httpx.request(
        golden["method"],
        sailpoint.base_url + filled(golden["path"], values),
        params=golden["query"],
        headers=filled(golden["headers"], values),
        json=golden.get("json"),
        data=filled(golden.get("form"), values),
        timeout=15,
    )

    assert response.status_code == golden["expect_status"], response.text
    if golden["needs"] == "running_task":
        assert (
            httpx.get(f"{sailpoint.base_url}/_sim/facts").json()["exports"][task_id]["status"]
            == "TERMINATED"
        )
