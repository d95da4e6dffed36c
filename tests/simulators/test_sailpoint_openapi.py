"""tests/openapi/sailpoint-reports.yaml is a valid OpenAPI 3.0 document, and the answer
check built on it (every SailPoint simulator answer of the suite) really catches mistakes."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from include.simulators import RunningSimulator
from include.simulators.base import SimulatorServer
from include.simulators.sailpoint import ReportTask, SailPointSettings, build_app
from include.simulators.sailpoint_responses import LoggedResponse, ResponseLog
from tests.openapi.sailpoint_validator import (
    answer_problems,
    load_document,
    logged_answers,
    operations,
    problems_of,
)

pytestmark = pytest.mark.integration


def test_the_document_is_valid_openapi_3_0() -> None:
    document = load_document()

    validate(document)
    assert document["openapi"].startswith("3.0.")


def test_the_validator_rejects_a_broken_document() -> None:
    broken = copy.deepcopy(load_document())
    broken["components"]["schemas"]["ReportResults"]["properties"]["status"]["type"] = "word"

    with pytest.raises(OpenAPIValidationError):
        validate(broken)


def test_both_layouts_declare_the_four_operations() -> None:
    declared = {(op.method, op.template) for op in operations(load_document())}

    for prefix in ("/v3/reports", "/reports/v1"):
        assert {
            ("POST", f"{prefix}/run"),
            ("GET", f"{prefix}/{{taskResultId}}/result"),
            ("GET", f"{prefix}/{{taskResultId}}"),
            ("POST", f"{prefix}/{{id}}/cancel"),
        } <= declared
    assert not any("task-status" in template for _, template in declared)


def entry(method: str, path: str, status: int, body: Any = None, **kw: Any) -> dict[str, Any]:
    content_type = kw.pop("content_type", "application/json" if body is not None else None)
    return {"method": method, "path": path, "status": status, "content_type": content_type,
            "json_body": body, "has_json_body": body is not None, **kw}  # fmt: skip


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (entry("GET", "/v3/reports/abc/result", 200, {"status": "RUNNING"}),
         "'RUNNING' is not one of"),
        (entry("GET", "/reports/v1/abc/result", 200, {"availableFormats": ["csv"]}),
         "'csv' is not one of"),
        (entry("POST", "/v3/reports/abc/cancel", 404, {"detailCode": "404"}),
         "status 404 is not declared"),
        (entry("POST", "/v3/reports/abc/cancel", 204, {}), "a JSON body where none"),
        (entry("GET", "/v3/reports/abc", 200, content_type="text/csv"),
         "mimetype not found: text/csv"),
        (entry("POST", "/v3/reports/run", 200, {"completionStatus": "DONE"}), "'DONE'"),
        (entry("POST", "/v3/reports/run", 401, {"message": "no"}), "'error' is a required"),
        (entry("GET", "/v3/task-status/abc", 200, {}), "no operation of the document"),
        (entry("POST", "/v3/reports/run", 429, {"message": " Rate Limit Exceeded "}),
         "Retry-After"),
        (entry("GET", "/v3/reports/abc/result", 200, content_type="application/json"),
         "Missing response data"),
    ],
)  # fmt: skip
def test_wrong_answers_are_caught(answer: dict[str, Any], problem: str) -> None:
    problems = problems_of(answer)

    assert len(problems) == 1
    assert problem in problems[0]


@pytest.mark.parametrize(
    "answer",
    [
        entry("GET", "/v3/reports/abc/result", 200, {}),
        entry("GET", "/v3/reports/abc/result", 200, {"status": "TERMINATED", "rows": 0}),
        entry("POST", "/reports/v1/abc/cancel", 204),
        entry("GET", "/v3/reports/abc", 200, content_type="application/pdf"),
        entry("POST", "/v3/reports/run", 503, {"detailCode": "503.0 Error", "messages": []}),
        entry("GET", "/v3/task-status/abc", 404, {"detail": "Not Found"}),
        entry(
            "POST",
            "/v3/reports/run",
            429,
            {"message": " Rate Limit Exceeded "},
            headers={"Retry-After": "3"},
        ),
    ],
)
def test_right_answers_pass(answer: dict[str, Any]) -> None:
    assert problems_of(answer) == []


@pytest.fixture
def corrupted(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningSimulator]:
    """A simulator whose ReportResults say ``RUNNING`` (a word outside the enum).

    Its vendor is not "sailpoint", so the suite-wide answer check leaves it alone.
    """
    original = ReportTask.results

    def wrong(self: ReportTask) -> dict[str, Any]:
        return {**original(self), "status": "RUNNING"}

    monkeypatch.setattr(ReportTask, "results", wrong)
    settings = SailPointSettings(latency=30)
    server = SimulatorServer(build_app(settings, seed=1)).start()
    base = server.base_url
    yield RunningSimulator("corrupted", base, {"login": settings.client_id,
                                                "password": settings.client_secret},
                           servers=[server])  # fmt: skip
    server.stop()


def test_a_wrong_answer_over_http_fails_the_check(corrupted: RunningSimulator) -> None:
    http = httpx.Client(base_url=corrupted.base_url, timeout=10)
    form = {"grant_type": "client_credentials", "client_id": corrupted.credentials["login"],
            "client_secret": corrupted.credentials["password"]}  # fmt: skip
    token = http.post("/oauth/token", data=form).json()["access_token"]
    http.headers["Authorization"] = f"Bearer {token}"
    task_id = http.post("/v3/reports/run", json={"reportType": "IDENTITIES"}).json()["id"]
    assert http.get(f"/v3/reports/{task_id}/result").json()["status"] == "RUNNING"
    http.post(f"/v3/reports/{task_id}/cancel")

    problems = answer_problems(corrupted.base_url)

    assert problems == [
        f"GET /v3/reports/{task_id}/result -> 200: status: 'RUNNING' is not one of "
        "['SUCCESS', 'FAILURE', 'WARNING', 'TERMINATED']"
    ]
    assert logged_answers(corrupted.base_url)["responses"] == []  # the check drained it


def test_the_log_keeps_the_route_and_skips_admin_calls(corrupted: RunningSimulator) -> None:
    http = httpx.Client(base_url=corrupted.base_url, timeout=10)
    http.get("/_sim/facts")
    http.get("/reports/v1/abc/result")

    answers = logged_answers(corrupted.base_url)["responses"]

    assert [(a["path"], a["route"], a["status"]) for a in answers] == [
        ("/reports/v1/abc/result", "/reports/v1/{task_id}/result", 401)
    ]
    assert answers[0]["json_body"] == {"error": "JWT validation failed: JWT is invalid"}


def test_the_log_is_bounded_and_counts_what_it_dropped() -> None:
    log = ResponseLog()
    keep = log.items.maxlen
    assert keep is not None
    for i in range(keep + 3):
        log.add(LoggedResponse("GET", f"/{i}", None, 200, None))

    snapshot = log.snapshot()

    assert snapshot["dropped"] == 3
    assert len(snapshot["responses"]) == keep
    assert snapshot["responses"][0]["path"] == "/3"


def test_the_suite_hook_finds_sailpoint_simulators_among_fixture_values() -> None:
    """tests/conftest.py checks the SailPoint simulators a test used: direct, in a dict,
    in a stack's in-process services, or described by a local stack's stack.json."""
    from types import SimpleNamespace

    from tests.conftest import _sailpoint_urls

    def sim(vendor: str, host: str) -> RunningSimulator:
        return RunningSimulator(vendor, f"http://{host}", {})

    direct, in_dict, other = sim("sailpoint", "a"), sim("sailpoint", "b"), sim("veza", "c")
    services = SimpleNamespace(simulators={"sailpoint": sim("sailpoint", "d"), "veza": other})
    stack = SimpleNamespace(info={"simulators": {"sailpoint": {"base_url": "http://e"}}})

    found = _sailpoint_urls(
        [direct, {"sailpoint": in_dict, "veza": other}, other, services, stack, "x", None]
    )

    assert found == {"http://a", "http://b", "http://d", "http://e"}
