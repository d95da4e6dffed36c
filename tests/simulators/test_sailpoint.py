"""The SailPoint reports simulator, over real HTTP: every DOC point, each CHOICE, each fault."""

from __future__ import annotations

import csv
import email.utils
import io
import re
import time
import zipfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pypdf import PdfReader

from include.simulators import RunningSimulator, start_simulator
from include.simulators.sailpoint import REPORT_COLUMNS
from tests.openapi.sailpoint_validator import assert_answers_valid

pytestmark = pytest.mark.integration

ROWS = 12
LATENCY = 0.1  # seconds a report task runs
LAYOUTS = {"v3": "/v3/reports", "unified": "/reports/v1"}
IDENTITIES_DETAILS = {"reportType": "IDENTITIES_DETAILS", "arguments": {"correlatedOnly": True}}
HEX_ID = re.compile(r"^[0-9a-f]{32}$")
# DOC (the spec's per-type argument schemas): the required arguments of each report type.
REQUIRED: dict[str, tuple[str, ...]] = {
    "ACCOUNTS": ("application", "sourceName"),
    "IDENTITIES_DETAILS": ("correlatedOnly",),
    "IDENTITIES": (),
    "IDENTITY_PROFILE_IDENTITY_ERROR": ("authoritativeSource",),
    "ORPHAN_IDENTITIES": (),
    "UNCORRELATED_ACCOUNTS": (),
    "SEARCH_EXPORT": ("query",),
}
# DOC: the search Index enum, without "*" (which means all of them).
INDICES = ("accessprofiles", "accountactivities", "entitlements", "events", "identities", "roles")
# The settings a test may change, at their defaults (restored after each test).
DEFAULTS: dict[str, Any] = {
    "latency": LATENCY, "task_type": "QUARTZ", "rows": ROWS, "file_before_done_status": 400,
    "healthy_completion": "SUCCESS", "failed_completion": "ERROR", "forbidden_report_types": [],
    "rows_by_report": {}, "latency_by_report": {}, "running_task_match": "report_type",
    "unknown_result": "not_found", "zip_content_type": "application/zip",
    "zip_member_headers": "same", "cancel_requires_pat": False, "pat_clients": {},
    "echo_arguments": True, "cancel_outcome": "terminated", "foreign_task_at_first_run": False,
    "foreign_task_age": 600.0,
}  # fmt: skip


class Tenant:
    """A client of one running simulator: token, reports calls, waiting, admin."""

    def __init__(self, sim: RunningSimulator) -> None:
        self.sim = sim
        self.http = httpx.Client(base_url=sim.base_url, timeout=15)
        self.admin = sim.admin()
        self.headers = {"Authorization": f"Bearer {self.token()}"}

    def token(self) -> str:
        response = self.http.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": self.sim.credentials["login"],
                "client_secret": self.sim.credentials["password"],
            },
        )
        response.raise_for_status()
        return str(response.json()["access_token"])

    def run(self, body: dict[str, Any], layout: str = "v3") -> httpx.Response:
        return self.http.post(f"{LAYOUTS[layout]}/run", json=body, headers=self.headers)

    def started(self, body: dict[str, Any], layout: str = "v3") -> str:
        response = self.run(body, layout)
        assert response.status_code == 200, response.text
        return str(response.json()["id"])

    def result(self, task_id: str, layout: str = "v3") -> dict[str, Any]:
        response = self.http.get(
            f"{LAYOUTS[layout]}/{task_id}/result",
            params={"completed": "false"},
            headers=self.headers,
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def wait(self, task_id: str, layout: str = "v3") -> dict[str, Any]:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            result = self.result(task_id, layout)
            if result.get("status") is not None:
                return result
            time.sleep(0.05)
        raise AssertionError(f"task {task_id} did not finish")

    def file(self, task_id: str, layout: str = "v3", **params: str) -> httpx.Response:
        return self.http.get(f"{LAYOUTS[layout]}/{task_id}", params=params, headers=self.headers)

    def cancel(self, task_id: str, layout: str = "v3") -> httpx.Response:
        return self.http.post(f"{LAYOUTS[layout]}/{task_id}/cancel", headers=self.headers)

    def export(self, task_id: str) -> dict[str, Any]:
        """The simulator's facts of one task (completion status, messages, rows)."""
        body: dict[str, Any] = self.facts()["exports"][task_id]
        return body

    def arm(self, **fault: Any) -> None:
        self.admin.post("/_sim/faults", json=fault).raise_for_status()

    def configure(self, **settings: Any) -> None:
        self.admin.patch("/_sim/config", json=settings).raise_for_status()

    def facts(self) -> dict[str, Any]:
        body: dict[str, Any] = self.admin.get("/_sim/facts").json()
        return body

    def close(self) -> None:
        self.http.close()
        self.admin.close()


@pytest.fixture(scope="module")
def sailpoint() -> Iterator[RunningSimulator]:
    sim = start_simulator("sailpoint", seed=1234, rows=ROWS, latency=LATENCY)
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def shared_tenant(sailpoint: RunningSimulator) -> Iterator[Tenant]:
    client = Tenant(sailpoint)
    yield client
    client.close()


@pytest.fixture
def tenant(shared_tenant: Tenant) -> Iterator[Tenant]:
    """The module's client with a fresh token (its own rate budget); reset after the test."""
    shared_tenant.headers = {"Authorization": f"Bearer {shared_tenant.token()}"}
    yield shared_tenant
    shared_tenant.admin.delete("/_sim/faults")
    shared_tenant.configure(**DEFAULTS)


@pytest.fixture
def own_tenant() -> Iterator[Any]:
    """A factory of simulators with their own settings (stopped after the test)."""
    started: list[tuple[RunningSimulator, Tenant]] = []

    def make(**settings: Any) -> Tenant:
        sim = start_simulator("sailpoint", seed=7, rows=ROWS, **settings)
        client = Tenant(sim)
        started.append((sim, client))
        return client

    yield make
    for sim, client in started:
        client.close()
        try:
            assert_answers_valid(sim.base_url)  # every answer as tests/openapi declares
        finally:
            sim.stop()


def error_text(response: httpx.Response) -> str:
    """The text of an ErrorResponseDto, after checking its shape."""
    body = response.json()
    assert set(body) == {"detailCode", "trackingId", "messages", "causes"}
    assert body["messages"][0]["locale"] == "en-US"
    assert body["causes"] == []
    return str(body["messages"][0]["text"])


def read_csv(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


class TestConnection:
    def test_start_describes_the_connection(self, sailpoint: RunningSimulator) -> None:
        conn = sailpoint.connection()

        assert conn["conn_type"] == "sailpoint"
        assert conn["host"] == sailpoint.base_url
        assert conn["extra"] == {
            "token_url": f"{sailpoint.base_url}/oauth/token",
            "api_layout": "v3",
        }
        assert conn["login"] == "sailpoint-sim-client"
        assert conn["password"] == "sailpoint-sim-secret"


class TestToken:
    def test_client_credentials_form(self, tenant: Tenant) -> None:
        response = tenant.http.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": tenant.sim.credentials["login"],
                "client_secret": tenant.sim.credentials["password"],
            },
        )

        body = response.json()
        assert response.status_code == 200
        assert body["token_type"] == "bearer"
        assert body["expires_in"] == 749
        assert body["access_token"].count(".") == 2  # JWT-shaped
        assert {"scope", "tenant_id", "pod", "org", "jti"} <= set(body)

    def test_query_string_and_basic_auth_are_accepted(self, tenant: Tenant) -> None:
        login, password = tenant.sim.credentials["login"], tenant.sim.credentials["password"]
        by_query = tenant.http.post(
            "/oauth/token",
            params={"grant_type": "client_credentials", "client_id": login,
                    "client_secret": password},
        )  # fmt: skip
        by_basic = tenant.http.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=(login, password)
        )

        assert by_query.status_code == by_basic.status_code == 200

    def test_bad_secret_and_bad_grant(self, tenant: Tenant) -> None:
        login = tenant.sim.credentials["login"]
        bad_secret = tenant.http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials", "client_id": login, "client_secret": "x"},
        )
        bad_grant = tenant.http.post("/oauth/token", data={"grant_type": "password"})

        assert bad_secret.status_code == 401
        assert bad_secret.json()["error"] == "invalid_client"
        assert bad_grant.status_code == 400
        assert bad_grant.json()["error"] == "unsupported_grant_type"

    def test_missing_or_unknown_token_is_401(self, tenant: Tenant) -> None:
        missing = tenant.http.get("/v3/reports/abc/result")
        unknown = tenant.http.get(
            "/v3/reports/abc/result", headers={"Authorization": "Bearer not.a.token"}
        )

        assert missing.status_code == unknown.status_code == 401
        assert unknown.json() == {"error": "JWT validation failed: JWT is invalid"}

    def test_expired_token_is_401_with_the_documented_body(self, own_tenant: Any) -> None:
        tenant = own_tenant(token_ttl=0.3)
        expires_in = tenant.http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials", **_client(tenant)},
        ).json()["expires_in"]
        time.sleep(0.4)  # past the 0.3 s lifetime
        expired = tenant.http.get("/v3/reports/abc/result", headers=tenant.headers)
        tenant.configure(token_ttl=749)  # the fresh token must outlive a slow machine
        fresh = tenant.http.get(
            "/v3/reports/abc/result", headers={"Authorization": f"Bearer {tenant.token()}"}
        )

        assert expires_in == 0.3
        assert expired.status_code == 401
        assert expired.json() == {"error": "JWT validation failed: JWT is expired"}
        assert fresh.status_code == 404  # authenticated: the task is unknown

    def test_token_expiry_fault_expires_a_valid_token(self, tenant: Tenant) -> None:
        tenant.arm(kind="token_expiry")

        first = tenant.http.get("/v3/reports/abc/result", headers=tenant.headers)
        again = tenant.http.get("/v3/reports/abc/result", headers=tenant.headers)

        assert first.status_code == again.status_code == 401
        assert first.json() == {"error": "JWT validation failed: JWT is expired"}
        tenant.headers = {"Authorization": f"Bearer {tenant.token()}"}
        assert poll_unknown(tenant, tenant.headers).status_code == 404


def _client(tenant: Tenant) -> dict[str, str]:
    return {
        "client_id": tenant.sim.credentials["login"],
        "client_secret": tenant.sim.credentials["password"],
    }


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
class TestReportLifecycle:
    def test_run_returns_task_result_details(self, tenant: Tenant, layout: str) -> None:
        response = tenant.run(IDENTITIES_DETAILS, layout)

        body = response.json()
        assert response.status_code == 200
        assert HEX_ID.match(body["id"])
        assert body["type"] == "QUARTZ"
        assert body["reportType"] == "IDENTITIES_DETAILS"
        assert body["completionStatus"] is None
        assert body["completed"] is None
        assert body["launcher"] == tenant.sim.credentials["login"]
        for key in ("taskDefName", "description", "parentName", "launcher", "created",
                    "launched", "messages", "returns", "attributes", "progress"):  # fmt: skip
            assert key in body
        tenant.wait(body["id"], layout)

    def test_result_has_no_status_while_running(self, tenant: Tenant, layout: str) -> None:
        tenant.configure(latency=30)
        task_id = tenant.started(IDENTITIES_DETAILS, layout)

        running = tenant.result(task_id, layout)

        assert "status" not in running
        assert running["id"] == task_id
        assert running["reportType"] == "IDENTITIES_DETAILS"
        tenant.cancel(task_id, layout)

    def test_result_when_done(self, tenant: Tenant, layout: str) -> None:
        task_id = tenant.started(IDENTITIES_DETAILS, layout)

        done = tenant.wait(task_id, layout)

        assert done["status"] == "SUCCESS"
        assert done["rows"] == ROWS
        assert done["duration"] >= LATENCY * 1000 - 5  # never earlier than the latency
        assert done["availableFormats"] == ["CSV", "PDF"]
        assert {"reportType", "taskDefName", "created"} <= set(done)

    def test_unknown_task_result_is_404_by_default(self, tenant: Tenant, layout: str) -> None:
        response = tenant.http.get(f"{LAYOUTS[layout]}/{'0' * 32}/result", headers=tenant.headers)

        assert response.status_code == 404
        assert "0" * 32 in error_text(response)

    def test_unknown_task_result_may_be_an_empty_object(self, tenant: Tenant, layout: str) -> None:
        tenant.configure(unknown_result="empty")

        assert tenant.result("0" * 32, layout) == {}

    def test_csv_file(self, tenant: Tenant, layout: str) -> None:
        task_id = tenant.started(IDENTITIES_DETAILS, layout)
        tenant.wait(task_id, layout)

        response = tenant.file(task_id, layout, fileFormat="csv", name="identities",
                               auditable="false")  # fmt: skip

        assert response.status_code == 200
        assert response.headers["content-type"] == "application/csv"
        assert response.headers["content-disposition"] == 'attachment;filename="identities.csv"'
        table = read_csv(response.content)
        assert tuple(table[0]) == REPORT_COLUMNS["IDENTITIES_DETAILS"]
        assert len(table) - 1 == ROWS == tenant.facts()["exports"][task_id]["rows"]

    def test_cancel_terminates_the_task(self, tenant: Tenant, layout: str) -> None:
        tenant.configure(latency=30)
        task_id = tenant.started(IDENTITIES_DETAILS, layout)

        cancelled = tenant.cancel(task_id, layout)

        assert cancelled.status_code == 204
        assert tenant.result(task_id, layout)["status"] == "TERMINATED"
        assert tenant.export(task_id)["messages"][-1]["key"] == "cloud_report_terminated"
        assert tenant.file(task_id, layout, fileFormat="csv").status_code == 404
        facts = tenant.facts()
        assert task_id in facts["cancellations"]
        assert facts["exports"][task_id]["status"] == "TERMINATED"


class TestReports:
    def test_running_report_is_returned_again_until_it_ends(self, tenant: Tenant) -> None:
        """CHOICE running_task_match="same_arguments": only identical arguments share a task."""
        tenant.configure(latency=30, running_task_match="same_arguments")
        first = tenant.started(IDENTITIES_DETAILS)
        again = tenant.started(IDENTITIES_DETAILS, "unified")
        other = tenant.started(
            {"reportType": "IDENTITIES_DETAILS", "arguments": {"correlatedOnly": False}}
        )
        tenant.cancel(first)
        after = tenant.started(IDENTITIES_DETAILS)

        assert again == first
        assert other != first
        assert after not in (first, other)
        for task_id in (other, after):
            tenant.cancel(task_id)

    def test_the_admin_api_finishes_a_running_report_at_once(self, tenant: Tenant) -> None:
        """``POST /_sim/reports/{id}/finish``: tests need not wait out a long latency."""
        tenant.configure(latency=600)
        task_id = tenant.started(IDENTITIES_DETAILS)
        assert "status" not in tenant.result(task_id)  # running: no status yet (DOC)

        done = tenant.admin.post(f"/_sim/reports/{task_id}/finish")

        assert done.status_code == 200
        assert done.json()["completionStatus"] == "SUCCESS"
        assert tenant.result(task_id)["status"] == "SUCCESS"
        assert tenant.admin.post("/_sim/reports/nope/finish").status_code == 404

    def test_pdf_holds_the_same_rows_as_the_csv(self, tenant: Tenant) -> None:
        task_id = tenant.started(IDENTITIES_DETAILS)
        tenant.wait(task_id)

        pdf = tenant.file(task_id, fileFormat="pdf")
        csv_ids = [row[0] for row in read_csv(tenant.file(task_id, fileFormat="csv").content)[1:]]

        assert pdf.status_code == 200
        assert pdf.headers["content-type"] == "application/pdf"
        assert pdf.headers["content-disposition"].endswith(f'{task_id}.pdf"')
        lines = [
            line
            for page in PdfReader(io.BytesIO(pdf.content)).pages
            for line in page.extract_text().splitlines()
        ]
        pdf_ids = [line.split()[0] for line in lines if HEX_ID.match(line.split()[0])]
        assert pdf_ids == csv_ids

    def test_search_export_is_a_zip_with_one_csv_per_index(self, tenant: Tenant) -> None:
        body = {
            "reportType": "SEARCH_EXPORT",
            "arguments": {"query": "name:a*", "indices": ["identities", "roles"],
                          "columns": "id,name,source.name"},
        }  # fmt: skip
        task_id = tenant.started(body)
        result = tenant.wait(task_id)

        response = tenant.file(task_id, fileFormat="csv", name="search")

        assert response.headers["content-type"] == "application/zip"
        assert response.headers["content-disposition"] == 'attachment;filename="search.zip"'
        archive = zipfile.ZipFile(io.BytesIO(response.content))
        assert archive.namelist() == ["identities.csv", "roles.csv"]
        for name in archive.namelist():
            table = read_csv(archive.read(name))
            assert table[0] == ["id", "name", "source.name"]
            assert len(table) - 1 == ROWS
        assert result["rows"] == 2 * ROWS == tenant.facts()["exports"][task_id]["rows"]
        assert result["availableFormats"] == ["CSV", "PDF"]  # DOC: no selectedFormats argument

    def test_search_export_without_indices_reads_every_index(self, tenant: Tenant) -> None:
        task_id = tenant.started({"reportType": "SEARCH_EXPORT", "arguments": {"query": "*"}})
        tenant.wait(task_id)

        archive = zipfile.ZipFile(io.BytesIO(tenant.file(task_id, fileFormat="csv").content))

        assert archive.namelist() == [f"{i}.csv" for i in INDICES]

    def test_search_export_has_no_pdf(self, tenant: Tenant) -> None:
        task_id = tenant.started({"reportType": "SEARCH_EXPORT", "arguments": {"query": "x"}})
        tenant.wait(task_id)

        response = tenant.file(task_id, fileFormat="pdf")

        assert response.status_code == 400
        assert "fileFormat" in error_text(response)

    @pytest.mark.parametrize("params", [{}, {"fileFormat": "xlsx"}])
    def test_file_format_is_checked(self, tenant: Tenant, params: dict[str, str]) -> None:
        task_id = tenant.started(IDENTITIES_DETAILS)
        tenant.wait(task_id)

        response = tenant.file(task_id, **params)

        assert response.status_code == 400
        assert error_text(response).startswith("fileFormat:")

    def test_selected_formats_limit_the_files(self, tenant: Tenant) -> None:
        body = {"reportType": "ORPHAN_IDENTITIES", "arguments": {"selectedFormats": ["PDF"]}}
        task_id = tenant.started(body)

        assert tenant.wait(task_id)["availableFormats"] == ["PDF"]
        assert tenant.file(task_id, fileFormat="csv").status_code == 400
        assert tenant.file(task_id, fileFormat="pdf").status_code == 200

    def test_file_of_unknown_task_is_404(self, tenant: Tenant) -> None:
        response = tenant.file("f" * 32, fileFormat="csv")

        assert response.status_code == 404
        assert "f" * 32 in error_text(response)

    def test_cancel_of_unknown_task_is_a_declared_400(self, tenant: Tenant) -> None:
        response = tenant.cancel("e" * 32)

        assert response.status_code == 400  # cancel declares 204/400/401/403/429/500: no 404
        assert "e" * 32 in error_text(response)

    def test_rows_per_report_are_configurable(self, tenant: Tenant) -> None:
        tenant.configure(rows_by_report={"IDENTITIES": 3})
        task_id = tenant.started({"reportType": "IDENTITIES", "arguments": {}})

        assert tenant.wait(task_id)["rows"] == 3
        assert len(read_csv(tenant.file(task_id, fileFormat="csv").content)) == 4

    def test_latency_per_report_and_ranges(self, own_tenant: Any) -> None:
        tenant = own_tenant(
            latency=0.1, latency_max=0.2, latency_by_report={"IDENTITIES": [0.3, 0.4]}
        )
        ranged = tenant.started(IDENTITIES_DETAILS)
        fixed = tenant.started({"reportType": "IDENTITIES", "arguments": {}})

        assert tenant.wait(ranged)["duration"] >= 95
        assert tenant.wait(fixed)["duration"] >= 295


class TestValidation:
    @pytest.mark.parametrize(
        ("report", "missing"),
        [(name, arg) for name, required in REQUIRED.items() for arg in required],
    )
    def test_required_arguments(self, tenant: Tenant, report: str, missing: str) -> None:
        arguments = {a: _valid_value(a) for a in REQUIRED[report] if a != missing}

        response = tenant.run({"reportType": report, "arguments": arguments})

        assert response.status_code == 400
        assert error_text(response) == f"arguments.{missing}: is required for {report}"

    def test_every_report_type_runs_with_its_required_arguments(self, tenant: Tenant) -> None:
        started = {
            name: tenant.started(
                {"reportType": name, "arguments": {a: _valid_value(a) for a in required}}
            )
            for name, required in REQUIRED.items()
        }

        finished = {name: tenant.wait(task_id) for name, task_id in started.items()}

        assert {name: result["reportType"] for name, result in finished.items()} == {
            name: name for name in REQUIRED
        }
        assert all(result["status"] == "SUCCESS" for result in finished.values())

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"reportType": "PAYROLL"}, "reportType"),
            ({"reportType": "ORPHAN_IDENTITIES", "arguments": {"selectedFormats": ["csv"]}},
             "arguments.selectedFormats[0]"),
            ({"reportType": "IDENTITIES_DETAILS", "arguments": {"correlatedOnly": "yes"}},
             "arguments.correlatedOnly"),
        ],
    )  # fmt: skip
    def test_bad_report_is_400_naming_the_field(
        self, tenant: Tenant, body: dict[str, Any], field: str
    ) -> None:
        response = tenant.run(body)

        assert response.status_code == 400
        assert error_text(response).startswith(f"{field}:")

    def test_body_must_be_json(self, tenant: Tenant) -> None:
        response = tenant.http.post("/v3/reports/run", content=b"{not json", headers=tenant.headers)

        assert response.status_code == 400

    def test_forbidden_report_type_is_403(self, tenant: Tenant) -> None:
        tenant.configure(forbidden_report_types=["IDENTITIES"])

        response = tenant.run({"reportType": "IDENTITIES", "arguments": {}})

        assert response.status_code == 403
        assert response.json()["detailCode"] == "403 Forbidden"


def _valid_value(argument: str) -> Any:
    return {"correlatedOnly": True}.get(argument, "value")


class TestChoices:
    def test_file_before_done_is_400_or_404(self, tenant: Tenant) -> None:
        tenant.configure(latency=30)
        task_id = tenant.started(IDENTITIES_DETAILS)

        early_400 = tenant.file(task_id, fileFormat="csv")
        tenant.configure(file_before_done_status=404)
        early_404 = tenant.file(task_id, fileFormat="csv")

        assert early_400.status_code == 400
        assert early_404.status_code == 404
        assert "not complete" in error_text(early_400)
        tenant.cancel(task_id)

    @pytest.mark.parametrize("task_type", ["QPOC", "MENTOS", "QUEUED_TASK"])
    def test_task_type(self, tenant: Tenant, task_type: str) -> None:
        tenant.configure(task_type=task_type)
        body = tenant.run(IDENTITIES_DETAILS).json()

        assert body["type"] == task_type
        tenant.wait(body["id"])

    def test_healthy_task_may_end_with_warning(self, tenant: Tenant) -> None:
        tenant.configure(healthy_completion="WARNING")
        task_id = tenant.started({"reportType": "IDENTITIES", "arguments": {}})

        assert tenant.wait(task_id)["status"] == "WARNING"
        status = tenant.export(task_id)
        assert status["status"] == "WARNING"
        assert status["messages"][0]["type"] == "WARN"
        assert tenant.file(task_id, fileFormat="csv").status_code == 200


class TestRateLimit:
    def test_per_token_limit_then_429_with_retry_after(self, own_tenant: Any) -> None:
        tenant = own_tenant(rate_limit=3, rate_window=60)
        statuses = [poll_unknown(tenant, tenant.headers).status_code for _ in range(3)]  # 404s

        limited = poll_unknown(tenant, tenant.headers)
        other_token = poll_unknown(tenant, {"Authorization": f"Bearer {tenant.token()}"})

        assert statuses == [404, 404, 404]
        assert limited.status_code == 429
        assert limited.json() == {"message": " Rate Limit Exceeded "}
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        assert other_token.status_code == 404

    def test_a_new_window_lets_requests_through(self, own_tenant: Any) -> None:
        tenant = own_tenant(rate_limit=1, rate_window=0.5)
        answers = (poll_unknown(tenant, tenant.headers) for _ in range(50))
        limited = next((a for a in answers if a.status_code == 429), None)

        time.sleep(0.6)  # the window (0.5 s) has passed: not an assertion on timing

        assert limited is not None
        assert poll_unknown(tenant, tenant.headers).status_code == 404

    def test_default_limit_is_100_per_10_seconds(self, tenant: Tenant) -> None:
        config = tenant.admin.get("/_sim/config").json()

        assert (config["rate_limit"], config["rate_window"]) == (100, 10.0)

    @pytest.mark.parametrize("form", ["seconds", "http-date"])
    def test_rate_limit_fault_in_both_retry_after_forms(self, tenant: Tenant, form: str) -> None:
        tenant.arm(kind="rate_limit", retry_after=3, retry_after_form=form)

        limited = tenant.run(IDENTITIES_DETAILS)

        assert limited.status_code == 429
        assert limited.json() == {"message": " Rate Limit Exceeded "}
        retry_after = limited.headers["Retry-After"]
        if form == "seconds":
            assert retry_after == "3"
        else:
            assert email.utils.parsedate_to_datetime(retry_after).tzinfo is not None
        tenant.wait(tenant.started(IDENTITIES_DETAILS))


def poll_unknown(tenant: Tenant, headers: dict[str, str]) -> httpx.Response:
    return tenant.http.get("/v3/reports/a/result", headers=headers)


class TestFaults:
    def test_server_error_burst(self, tenant: Tenant) -> None:
        tenant.arm(kind="server_error", count=2, status=500)

        first, second = (tenant.run(IDENTITIES_DETAILS) for _ in range(2))
        recovered = tenant.run(IDENTITIES_DETAILS)

        assert first.status_code == second.status_code == 500
        assert first.json()["detailCode"] == "500.0 Internal Fault"
        error_text(first)
        assert recovered.status_code == 200
        tenant.wait(recovered.json()["id"])

    @pytest.mark.parametrize("completion", ["ERROR", "TEMP_ERROR"])
    def test_job_failure(self, tenant: Tenant, completion: str) -> None:
        tenant.configure(failed_completion=completion)
        tenant.arm(kind="job_failure")
        task_id = tenant.started(IDENTITIES_DETAILS)

        result = tenant.wait(task_id)
        status = tenant.export(task_id)

        assert result["status"] == "FAILURE"
        assert result["rows"] == 0
        assert status["status"] == completion
        assert status["messages"][0]["type"] == "ERROR"
        assert status["messages"][0]["error"] is True
        assert status["messages"][0]["localizedText"]
        assert tenant.file(task_id, fileFormat="csv").status_code == 404
        assert tenant.facts()["exports"][task_id]["status"] == completion

    def test_never_finish_until_cancelled(self, tenant: Tenant) -> None:
        tenant.arm(kind="never_finish")
        stuck = tenant.started(IDENTITIES_DETAILS)
        later = tenant.started({"reportType": "IDENTITIES", "arguments": {}})

        tenant.wait(later)  # launched after, with the same latency: it has finished

        assert "status" not in tenant.result(stuck)
        assert tenant.cancel(stuck).status_code == 204
        assert tenant.result(stuck)["status"] == "TERMINATED"

    def test_drop_connection_mid_download(self, tenant: Tenant) -> None:
        task_id = tenant.started(IDENTITIES_DETAILS)
        tenant.wait(task_id)
        tenant.arm(kind="drop_connection", after_bytes=300)

        headers, received = cut_download(tenant, task_id, "csv")

        assert len(received) == 300 < int(headers["content-length"])
        whole = tenant.file(task_id, fileFormat="csv").content
        assert whole.startswith(bytes(received))

    def test_truncated_download(self, tenant: Tenant) -> None:
        task_id = tenant.started(IDENTITIES_DETAILS)
        tenant.wait(task_id)
        tenant.arm(kind="truncate", after_bytes=500)

        headers, received = cut_download(tenant, task_id, "pdf")
        declared = int(headers["content-length"])

        assert len(received) == 500 < declared
        assert declared == len(tenant.file(task_id, fileFormat="pdf").content)


def cut_download(tenant: Tenant, task_id: str, file_format: str) -> tuple[httpx.Headers, bytes]:
    """Download a file whose body is cut short: its headers and the bytes that came."""
    received = bytearray()
    url = f"/v3/reports/{task_id}"
    params = {"fileFormat": file_format}
    with (
        tenant.http.stream("GET", url, params=params, headers=tenant.headers) as response,
        pytest.raises(httpx.RemoteProtocolError),
    ):
        read_into(response, received)
    return response.headers, bytes(received)


def read_into(response: httpx.Response, received: bytearray) -> None:
    for chunk in response.iter_raw():
        received += chunk


class TestFacts:
    def test_running_export(self, tenant: Tenant) -> None:
        tenant.configure(latency=30)
        task_id = tenant.started(IDENTITIES_DETAILS)

        running = tenant.facts()["exports"][task_id]

        assert running["status"] == "RUNNING"
        assert running["resultStatus"] is None
        tenant.cancel(task_id)

    def test_exports_and_tokens(self, tenant: Tenant) -> None:
        task_id = tenant.started(IDENTITIES_DETAILS)
        tenant.wait(task_id)
        done = tenant.facts()

        assert done["exports"][task_id] == {
            "rows": ROWS,
            "status": "SUCCESS",
            "resultStatus": "SUCCESS",
            "reportType": "IDENTITIES_DETAILS",
            "arguments": {"correlatedOnly": True},
            "files": {"IDENTITIES_DETAILS": ROWS},
            "messages": [],
            "launcher": "sailpoint-sim-client",
        }
        assert done["vendor"] == "sailpoint"
        assert done["tokens_issued"] >= 1

    def test_same_seed_same_file(self, tenant: Tenant, own_tenant: Any) -> None:
        first = own_tenant(latency=0.05)
        second = own_tenant(latency=0.05)
        files = []
        for client in (first, second):
            task_id = client.started(IDENTITIES_DETAILS)
            client.wait(task_id)
            files.append(client.file(task_id, fileFormat="csv").content)

        assert files[0] == files[1]
