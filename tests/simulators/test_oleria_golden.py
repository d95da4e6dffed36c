"""The golden Oleria requests (tests/golden/oleria, format in tests/golden/README.md).

Each file is a request transcribed from VENDOR_APIS.md; the simulator must accept it,
and must refuse with 400 ``{code, message}`` a deliberately wrong variant of it.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from include.simulators import RunningSimulator, start_simulator

pytestmark = pytest.mark.integration

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "oleria"
FILES = sorted(GOLDEN.glob("*.json"))
# ../shared beside the checkout (as on every developer machine and in CI)
VENDOR_APIS = Path(__file__).resolve().parents[3] / "shared" / "VENDOR_APIS.md"
AUDIENCE = "https://api.oleria.io"
FILE_KEYS = {"source", "method", "path", "headers", "form", "json"}


def golden(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((GOLDEN / f"{name}.json").read_text())
    return loaded


def fill(value: Any, values: dict[str, str]) -> Any:
    """Replace ``{name}`` placeholders in every string of ``value``."""
    if isinstance(value, str):
        return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), value)
    if isinstance(value, list):
        return [fill(item, values) for item in value]
    if isinstance(value, dict):
        return {key: fill(item, values) for key, item in value.items()}
    return value


@pytest.fixture(scope="module")
def oleria() -> Iterator[RunningSimulator]:
    sim = start_simulator("oleria", seed=5, rows=50, latency=0)
    yield sim
    sim.stop()


class Sender:
    """Sends golden requests to the simulator, filling in the placeholders."""

    def __init__(self, sim: RunningSimulator, http: httpx.Client) -> None:
        self.http = http
        self.values = {
            "token_url": sim.extra["token_url"],
            "client_id": sim.credentials["login"],
            "client_secret": sim.credentials["password"],
            "audience": AUDIENCE,
        }
        token = self.send(golden("token"))
        self.values["access_token"] = token.json()["access_token"]

    def send(self, request: dict[str, Any]) -> httpx.Response:
        request = fill(request, self.values)
        content_type = request["headers"].get("Content-Type", "")
        body: dict[str, Any] = {}
        if "form" in request:
            assert content_type == "application/x-www-form-urlencoded"
            body["data"] = request["form"]
        if "json" in request:
            assert content_type == "application/json"
            body["content"] = json.dumps(request["json"]).encode()
        return self.http.request(
            request["method"], request["path"], headers=request["headers"], **body
        )


@pytest.fixture
def sender(oleria: RunningSimulator) -> Iterator[Sender]:
    with httpx.Client(base_url=oleria.base_url, timeout=30) as http:
        defaults = http.get("/_sim/config").json()
        yield Sender(oleria, http)
        http.patch("/_sim/config", json=defaults)


def refused(answer: httpx.Response) -> None:
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert set(body) == {"code", "message"}
    assert body["code"]
    assert body["message"]


def creates() -> list[Path]:
    return [path for path in FILES if golden(path.stem)["path"] == "/v1/downloads"]


# --------------------------------------------------------------------------- the files


def test_there_is_a_file_per_documented_request() -> None:
    names = {path.stem for path in FILES}
    assert {"token", "token_audience", "create_plain", "poll", "sort"} <= names
    data_types = {
        entry["dataType"]
        for path in creates()
        for entry in golden(path.stem)["json"]["params"]["filterBy"]
    }
    assert data_types == {"string", "number", "boolean", "timestamp", "enum"}


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_files_follow_the_readme_format(path: Path) -> None:
    request = json.loads(path.read_text())
    assert set(request) <= FILE_KEYS
    assert {"source", "method", "path", "headers"} <= set(request)
    assert request["method"] in {"GET", "POST"}
    assert request["source"].strip()


@pytest.mark.skipif(not VENDOR_APIS.exists(), reason="VENDOR_APIS.md is not on this machine")
@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_sources_quote_vendor_apis(path: Path) -> None:
    doc = " ".join(VENDOR_APIS.read_text().split())
    for quote in json.loads(path.read_text())["source"].split(" / "):
        assert quote in doc, quote


# --------------------------------------------------------------------------- accepted


def test_token_request_is_accepted(sender: Sender) -> None:
    answer = sender.send(golden("token"))
    assert answer.status_code == 200
    assert answer.json()["token_type"] == "Bearer"
    assert answer.json()["expires_in"] == 3600


def test_token_request_with_audience_is_accepted(sender: Sender) -> None:
    sender.http.patch("/_sim/config", json={"audience": AUDIENCE})
    assert sender.send(golden("token_audience")).status_code == 200
    assert sender.send(golden("token")).status_code == 403  # this tenant wants its audience


@pytest.mark.parametrize("path", creates(), ids=[p.stem for p in creates()])
def test_create_request_is_accepted_and_polls(sender: Sender, path: Path) -> None:
    answer = sender.send(golden(path.stem))
    assert answer.status_code == 201, answer.text
    assert answer.json()["status"] == "accepted"
    sender.values["id"] = answer.json()["id"]
    polled = sender.send(golden("poll"))
    assert polled.status_code == 200
    assert polled.json()["id"] == answer.json()["id"]
    assert polled.json()["status"] in {"accepted", "completed"}


# --------------------------------------------------------------------------- refused


def first_filter(name: str) -> Callable[[Callable[[dict[str, Any]], None]], dict[str, Any]]:
    """A copy of golden ``name`` with its first filter changed by the given function."""

    def variant(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        request = copy.deepcopy(golden(name))
        change(request["json"]["params"]["filterBy"][0])
        return request

    return variant


def set_keys(**values: Any) -> Callable[[dict[str, Any]], None]:
    return lambda entry: entry.update(values)


WRONG_FILTERS = {
    "between with 1 value": first_filter("filter_number_between")(set_keys(values=[30])),
    "between with 3 values": first_filter("filter_timestamp_between")(
        lambda e: e["values"].append("2026-03-01T00:00:00Z")
    ),
    "gt on a string": first_filter("filter_string_in")(set_keys(filterType="gt", values=["F"])),
    "last on a number": first_filter("filter_number_between")(
        set_keys(filterType="last", values=["7d"])
    ),
    "last with two durations": first_filter("filter_timestamp_last")(
        set_keys(values=["7d", "24h"])
    ),
    "last without a unit": first_filter("filter_timestamp_last")(set_keys(values=["7"])),
    "isNull with a value": first_filter("filter_string_is_null")(set_keys(values=["x"])),
    "in with no value": first_filter("filter_enum_in")(set_keys(values=[])),
    "in on a boolean": first_filter("filter_boolean_eq")(set_keys(filterType="in")),
    "contains on an enum": first_filter("filter_enum_in")(
        set_keys(filterType="contains", values=["hu"])
    ),
    "unknown dataType": first_filter("filter_boolean_eq")(set_keys(dataType="bool")),
}


@pytest.mark.parametrize("request_", WRONG_FILTERS.values(), ids=list(WRONG_FILTERS))
def test_wrong_filter_variants_are_400(sender: Sender, request_: dict[str, Any]) -> None:
    refused(sender.send(request_))


def test_wrong_sort_type_is_400(sender: Sender) -> None:
    request = copy.deepcopy(golden("sort"))
    request["json"]["params"]["sortBy"][0]["sortType"] = "descending"
    refused(sender.send(request))


def test_unknown_context_is_400(sender: Sender) -> None:
    request = copy.deepcopy(golden("create_plain"))
    request["json"]["context"] = "accessInventoryIdentities"
    refused(sender.send(request))


def test_token_request_as_json_is_400(sender: Sender) -> None:
    request = golden("token")
    request["headers"] = {"Content-Type": "application/json"}
    request["json"] = request.pop("form")
    refused(sender.send(request))


def test_token_request_with_another_grant_is_400(sender: Sender) -> None:
    request = golden("token")
    request["form"]["grant_type"] = "password"
    refused(sender.send(request))
