"""The Veza simulator over real HTTP: every documented behaviour, switch and fault."""

from __future__ import annotations

import csv
import io
import itertools
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openpyxl
import pytest

from include.simulators import RunningSimulator, start_simulator
from include.simulators.data import VEZA_ACCESS_REVIEW, VEZA_CHANGES, count_rows
from include.simulators.veza import HOSTILE

pytestmark = pytest.mark.integration

ROWS = 150
PREFIX = "/api/preview/awf/exports/access_review"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
POLL_DEADLINE = 20.0
TERMINAL = {"FINISHED", "FAILED", "CANCELLED", "EXPIRED"}
ORDER = ["CREATED", "PROCESSING", "FINISHED"]
ABSENT = object()


@pytest.fixture(scope="module")
def veza() -> Iterator[RunningSimulator]:
    sim = start_simulator("veza", seed=1234, rows=ROWS, latency=0.2)
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def http(veza: RunningSimulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=veza.base_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def defaults(http: httpx.Client) -> dict[str, Any]:
    config: dict[str, Any] = http.get("/_sim/config").json()
    return config


@pytest.fixture
def api(veza: RunningSimulator, http: httpx.Client, defaults: dict[str, Any]) -> Iterator[VezaApi]:
    """Faults, logs and settings restored after the test."""
    yield VezaApi(veza, http)
    http.delete("/_sim/faults")
    http.delete("/_sim/requests")
    http.patch("/_sim/config", json=defaults)


class VezaApi:
    def __init__(self, sim: RunningSimulator, http: httpx.Client) -> None:
        self.sim = sim
        self.http = http
        self.auth = {"Authorization": f"Bearer {sim.credentials['password']}"}

    def create(self, **body: Any) -> httpx.Response:
        body.setdefault("format", 0)
        body.setdefault("certification_id", "cert-2026-q3")
        return self.http.post(f"{PREFIX}:create", json=body, headers=self.auth)

    def get(self, export_id: str) -> httpx.Response:
        return self.http.get(f"{PREFIX}/{export_id}", headers=self.auth)

    def download(self, export_id: str) -> httpx.Response:
        return self.http.get(f"{PREFIX}/{export_id}:download", headers=self.auth)

    def created_id(self, **body: Any) -> str:
        answer = self.create(**body)
        assert answer.status_code == 200, answer.text
        value: dict[str, Any] = answer.json()["value"]
        return str(value["id"])

    def wait(self, export_id: str) -> list[str]:
        """Poll until terminal; return the statuses seen in order (deduplicated)."""
        seen: list[str] = []
        deadline = time.monotonic() + POLL_DEADLINE
        while time.monotonic() < deadline:
            status = self.get(export_id).raise_for_status().json()["value"]["status"]
            if not seen or seen[-1] != status:
                seen.append(status)
            if status in TERMINAL:
                return seen
            time.sleep(0.03)
        raise AssertionError(f"export {export_id} did not finish: {seen}")

    def export(self, **body: Any) -> tuple[str, httpx.Response]:
        export_id = self.created_id(**body)
        assert self.wait(export_id)[-1] == "FINISHED"
        answer = self.download(export_id)
        assert answer.status_code == 200, answer.text
        return export_id, answer

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, f"/_sim{path}", **kwargs)

    def arm(self, kind: str, **options: Any) -> None:
        self.admin("POST", "/faults", json={"kind": kind, **options}).raise_for_status()

    def configure(self, **settings: Any) -> None:
        self.admin("PATCH", "/config", json=settings).raise_for_status()

    def facts(self, export_id: str) -> dict[str, Any]:
        facts: dict[str, Any] = self.admin("GET", "/facts").json()["exports"][export_id]
        return facts


def parse_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def assert_rpc_error(answer: httpx.Response, http_status: int, code: int) -> str:
    assert answer.status_code == http_status, answer.text
    body = answer.json()
    assert set(body) == {"code", "message", "details"}
    assert body["code"] == code
    assert body["details"] == []
    return str(body["message"])


# --------------------------------------------------------------------------- auth


class TestAuth:
    @pytest.mark.parametrize("header", [None, "Bearer wrong-key", "Basic dmV6YQ=="])
    def test_missing_or_wrong_key_is_unauthenticated(
        self, api: VezaApi, header: str | None
    ) -> None:
        headers = {"Authorization": header} if header else {}
        body = {"format": 0, "certification_id": "c"}
        answer = api.http.post(f"{PREFIX}:create", json=body, headers=headers)
        assert_rpc_error(answer, 401, 16)

    def test_connection_carries_the_api_key_as_password(self, veza: RunningSimulator) -> None:
        connection = veza.connection()
        assert connection["conn_type"] == "veza"
        assert connection["password"] == "veza-api-key"
        assert connection["login"] is None


# --------------------------------------------------------------------------- lifecycle


class TestLifecycle:
    def test_create_answers_the_value_envelope(self, api: VezaApi) -> None:
        value = api.create(certification_id="cert-a").json()["value"]
        assert value["status"] == "CREATED"
        assert value["format"] == 0
        assert value["certification_id"] == "cert-a"
        assert {"id", "created_at", "updated_at"} <= set(value)
        assert "error" not in value

    def test_statuses_move_forward_to_finished(self, api: VezaApi) -> None:
        seen = ["CREATED", *api.wait(api.created_id())]
        assert seen[-1] == "FINISHED"
        positions = [ORDER.index(status) for status in seen]
        assert positions == sorted(positions)

    def test_download_before_finished_is_failed_precondition(self, api: VezaApi) -> None:
        api.arm("never_finish")  # keeps the export unfinished however slow this test runs
        export_id = api.created_id()
        assert "FINISHED" in assert_rpc_error(api.download(export_id), 400, 9)

    def test_failed_precondition_status_is_switchable_to_412(self, api: VezaApi) -> None:
        api.configure(precondition_status=412)
        api.arm("never_finish")
        assert_rpc_error(api.download(api.created_id()), 412, 9)

    def test_processing_is_observable(self, api: VezaApi) -> None:
        api.arm("never_finish")
        export_id = api.created_id()
        time.sleep(0.4)  # past a quarter of the latency, so the job is processing
        assert api.get(export_id).json()["value"]["status"] == "PROCESSING"
        assert_rpc_error(api.download(export_id), 400, 9)

    def test_unknown_export_is_not_found(self, api: VezaApi) -> None:
        assert_rpc_error(api.get("no-such-export"), 404, 5)
        assert_rpc_error(api.download("no-such-export"), 404, 5)

    def test_finished_export_expires_after_retention(self, api: VezaApi) -> None:
        api.configure(retention=1.0)
        export_id = api.created_id()
        assert api.wait(export_id)[-1] == "FINISHED"
        time.sleep(1.1)
        assert api.get(export_id).json()["value"]["status"] == "EXPIRED"
        assert "EXPIRED" in assert_rpc_error(api.download(export_id), 400, 9)
        assert api.facts(export_id)["status"] == "EXPIRED"

    def test_cancelled_through_the_admin_action(self, api: VezaApi) -> None:
        export_id = api.created_id()
        cancelled = api.admin("POST", f"/exports/{export_id}/cancel").json()
        assert cancelled == {"cancelled": True, "status": "CANCELLED"}
        time.sleep(0.4)  # past the latency: the job must not move on
        assert api.wait(export_id) == ["CANCELLED"]
        assert_rpc_error(api.download(export_id), 400, 9)
        again = api.admin("POST", f"/exports/{export_id}/cancel").json()
        assert again == {"cancelled": False, "status": "CANCELLED"}

    def test_there_is_no_public_cancel_endpoint(self, api: VezaApi) -> None:
        export_id = api.created_id()
        answer = api.http.post(f"{PREFIX}/{export_id}:cancel", headers=api.auth)
        assert answer.status_code in {404, 405}

    def test_facts_report_rows_status_and_format(self, api: VezaApi) -> None:
        export_id, answer = api.export(certification_id="cert-facts")
        facts = api.facts(export_id)
        assert facts["status"] == "FINISHED"
        assert facts["format"] == 0
        assert facts["certification_id"] == "cert-facts"
        assert facts["rows"] == ROWS == len(parse_csv(answer.text))
        assert facts["downloads"] == 1


class TestLatency:
    def test_random_latency_stays_in_its_range(self, api: VezaApi) -> None:
        api.configure(latency=0.05, latency_max=0.3)
        ids = [api.created_id() for _ in range(4)]
        latencies = [api.facts(export_id)["latency"] for export_id in ids]
        assert all(0.05 <= latency <= 0.3 for latency in latencies)
        assert len(set(latencies)) == 4
        assert all(api.wait(export_id)[-1] == "FINISHED" for export_id in ids)


class TestChoices:
    def test_export_id_instead_of_id(self, api: VezaApi) -> None:
        api.configure(id_field="export_id")
        value = api.create().json()["value"]
        assert "id" not in value
        assert api.get(value["export_id"]).status_code == 200

    def test_export_status_prefix(self, api: VezaApi) -> None:
        api.configure(status_prefix=True)
        value = api.create().json()["value"]
        assert value["status"] == "EXPORT_STATUS_CREATED"

    @pytest.mark.parametrize(
        ("form", "csv", "xlsx"),
        [
            ("number", 0, 6),
            ("name", "CSV", "XLSX"),
            ("enum_name", "EXPORT_FORMAT_CSV", "EXPORT_FORMAT_XLSX"),
            ("proto3", ABSENT, 6),
            ("absent", ABSENT, ABSENT),
        ],
    )
    def test_format_in_responses(self, api: VezaApi, form: str, csv: Any, xlsx: Any) -> None:
        api.configure(format_field=form)
        for body, expected in (({"format": 0}, csv), ({"format": 6, "title": "t"}, xlsx)):
            created = api.create(**body).json()["value"]
            status = api.get(created["id"]).json()["value"]
            assert created.get("format", ABSENT) == expected == status.get("format", ABSENT)

    def test_bare_object_without_the_value_envelope(self, api: VezaApi) -> None:
        api.configure(envelope=False)
        created = api.create().json()
        assert "value" not in created
        assert api.get(created["id"]).json()["certification_id"] == "cert-2026-q3"

    @pytest.mark.parametrize(
        ("form", "armed"), [("http-date", "seconds"), ("seconds", "http-date")]
    )
    def test_retry_after_form_overrides_the_fault(
        self, api: VezaApi, form: str, armed: str
    ) -> None:
        api.configure(retry_after_form=form)
        api.arm("rate_limit", retry_after=3, retry_after_form=armed)
        header = api.create().headers["retry-after"]
        assert header == "3" if form == "seconds" else header.endswith(" GMT")

    def test_hostile_settings_round_trip(self, api: VezaApi) -> None:
        api.configure(**HOSTILE)
        arrived = api.admin("GET", "/config").json()
        assert {name: arrived[name] for name in HOSTILE} == HOSTILE

    def test_hostile_lifecycle(self, api: VezaApi) -> None:
        """Every CHOICE at its least convenient alternative; the export still completes."""
        api.configure(**HOSTILE)
        api.arm("never_finish")
        stuck = api.create(format=6, title="t").json()["value"]
        assert_rpc_error(api.download(stuck["export_id"]), 412, 9)
        value = api.create(format=6, title="Hostile").json()["value"]
        assert "id" not in value
        assert "format" not in value
        export_id = value["export_id"]
        deadline = time.monotonic() + POLL_DEADLINE
        while (status := api.get(export_id).json()["value"]["status"]) != "EXPORT_STATUS_FINISHED":
            assert status in {"EXPORT_STATUS_CREATED", "EXPORT_STATUS_PROCESSING"}
            assert time.monotonic() < deadline
            time.sleep(0.03)
        answer = api.download(export_id)
        assert answer.headers["content-type"] == XLSX
        assert answer.content[:2] == b"PK"
        api.arm("rate_limit")
        assert api.create().headers["retry-after"].endswith(" GMT")


# --------------------------------------------------------------------------- validation


class TestValidation:
    @pytest.mark.parametrize(
        ("body", "mentions"),
        [
            ({"format": 1}, "format"),
            ({"format": "CSV"}, "format"),
            ({"certification_id": ""}, "certification_id"),
            ({"title": "Q3"}, "title"),
            ({"format": 6, "title": "x" * 31}, "title"),
            ({"filter": 'source.name eq "unterminated'}, "filter"),
            ({"filter": 'decision eq "RESULT_DECISION_NONE"'}, "filter"),
            ({"mutable_filter": 'source.name eq "a"'}, "mutable_filter"),
            ({"mutable_filter": 'decision eq "MAYBE"'}, "mutable_filter"),
            ({"order_by": "source.name SIDEWAYS"}, "order_by"),
            ({"order_by": "source.shoe_size ASC"}, "order_by"),
            ({"colour": "blue"}, "colour"),
        ],
    )
    def test_invalid_requests_are_invalid_argument(
        self, api: VezaApi, body: dict[str, Any], mentions: str
    ) -> None:
        assert assert_rpc_error(api.create(**body), 400, 3).startswith(mentions)

    def test_format_is_required(self, api: VezaApi) -> None:
        answer = api.http.post(f"{PREFIX}:create", json={"certification_id": "c"}, headers=api.auth)
        assert assert_rpc_error(answer, 400, 3).startswith("format")

    def test_forbidden_certification_is_permission_denied(self, api: VezaApi) -> None:
        api.configure(forbidden_certifications=["secret-cert"])
        assert_rpc_error(api.create(certification_id="secret-cert"), 403, 7)


# --------------------------------------------------------------------------- files


class TestFiles:
    def test_csv_content_type_and_disposition(self, api: VezaApi) -> None:
        _, answer = api.export(certification_id="cert-csv")
        assert answer.headers["content-type"].startswith("text/csv")
        assert answer.headers["content-disposition"].startswith("attachment; filename=")
        assert answer.headers["content-disposition"].endswith('.csv"')
        assert int(answer.headers["content-length"]) == len(answer.content)
        rows = parse_csv(answer.text)
        assert list(rows[0]) == list(VEZA_ACCESS_REVIEW.header)

    def test_xlsx_is_a_real_workbook_with_the_title(self, api: VezaApi) -> None:
        export_id, answer = api.export(format=6, title="Q3 2026 review")
        assert answer.headers["content-type"] == XLSX
        assert answer.headers["content-disposition"] == 'attachment; filename="Q3_2026_review.xlsx"'
        workbook = openpyxl.load_workbook(io.BytesIO(answer.content), read_only=True)
        sheet = workbook.active
        assert sheet is not None
        assert sheet.title == "Q3 2026 review"
        values = list(sheet.iter_rows(values_only=True))
        assert list(values[0]) == list(VEZA_ACCESS_REVIEW.header)
        assert len(values) - 1 == ROWS == api.facts(export_id)["rows"]
        datasource = VEZA_ACCESS_REVIEW.header.index("destination.datasource_id")
        assert all(isinstance(row[datasource], str) for row in values[1:])

    def test_csv_and_xlsx_hold_the_same_rows(self, api: VezaApi) -> None:
        _, csv_answer = api.export(certification_id="cert-same")
        _, xlsx_answer = api.export(certification_id="cert-same", format=6)
        workbook = openpyxl.load_workbook(io.BytesIO(xlsx_answer.content), read_only=True)
        sheet = workbook.active
        assert sheet is not None
        xlsx_ids = [row[0] for row in sheet.iter_rows(min_row=2, values_only=True)]
        assert xlsx_ids == [row["result_id"] for row in parse_csv(csv_answer.text)]

    def test_filter_is_applied(self, api: VezaApi) -> None:
        text = (
            'source.is_active eq true and (source.type eq "OktaUser" or source.type eq "LocalUser")'
        )
        export_id, answer = api.export(certification_id="cert-f", filter=text)
        rows = parse_csv(answer.text)
        assert rows
        assert all(r["source.is_active"] == "true" for r in rows)
        assert all(r["source.type"] in {"OktaUser", "LocalUser"} for r in rows)
        expected = count_rows(
            VEZA_ACCESS_REVIEW.rows(1234, ROWS, variant="cert-f"),
            lambda row: (
                row["source.is_active"] is True and row["source.type"] in {"OktaUser", "LocalUser"}
            ),
        )
        assert len(rows) == expected == api.facts(export_id)["rows"]

    def test_mutable_filter_is_applied(self, api: VezaApi) -> None:
        text = 'decision eq "RESULT_DECISION_ACCEPTED" or decision eq "RESULT_DECISION_FIXED"'
        _, answer = api.export(mutable_filter=text)
        decisions = {row["decision"] for row in parse_csv(answer.text)}
        assert decisions == {"RESULT_DECISION_ACCEPTED", "RESULT_DECISION_FIXED"}

    def test_order_by_is_applied(self, api: VezaApi) -> None:
        _, answer = api.export(order_by="source.department DESC, result_id ASC")
        rows = parse_csv(answer.text)
        departments = [row["source.department"] for row in rows]
        blanks = departments.count("")
        assert blanks
        assert departments[:blanks] == [""] * blanks  # nulls first when descending
        assert departments[blanks:] == sorted(departments[blanks:], reverse=True)
        for first, second in itertools.pairwise(rows):
            if first["source.department"] == second["source.department"]:
                assert first["result_id"] < second["result_id"]

    def test_diff_export_adds_a_change_column(self, api: VezaApi) -> None:
        _, answer = api.export(certification_id="cert-q3", previous_certification_id="cert-q2")
        rows = parse_csv(answer.text)
        assert list(rows[0])[-1] == "change"
        assert {row["change"] for row in rows} == set(VEZA_CHANGES)

    def test_diff_export_can_be_filtered_on_change(self, api: VezaApi) -> None:
        _, answer = api.export(
            previous_certification_id="cert-q1",
            filter="source.is_active eq false",
            order_by="change",
        )
        changes = [row["change"] for row in parse_csv(answer.text)]
        assert changes == sorted(changes)

    def test_same_request_gives_the_same_bytes(self, api: VezaApi) -> None:
        assert api.export()[1].content == api.export()[1].content


# --------------------------------------------------------------------------- faults


class TestFaults:
    def test_rate_limit_is_resource_exhausted_with_retry_after(self, api: VezaApi) -> None:
        api.arm("rate_limit", retry_after=4)
        answer = api.create()
        assert_rpc_error(answer, 429, 8)
        assert answer.headers["retry-after"] == "4"
        assert api.create().status_code == 200

    def test_rate_limit_retry_after_as_http_date(self, api: VezaApi) -> None:
        api.arm("rate_limit", retry_after_form="http-date")
        assert api.create().headers["retry-after"].endswith(" GMT")

    def test_server_error_burst(self, api: VezaApi) -> None:
        api.arm("server_error", count=2, status=503)
        statuses = [api.create().status_code for _ in range(3)]
        assert statuses == [503, 503, 200]

    def test_job_failure_ends_failed_with_an_error(self, api: VezaApi) -> None:
        api.arm("job_failure")
        export_id = api.created_id()
        assert api.wait(export_id)[-1] == "FAILED"
        value = api.get(export_id).json()["value"]
        assert set(value["error"]) == {"code", "message", "details"}
        assert_rpc_error(api.download(export_id), 400, 9)

    def test_veza_expired_turns_a_finished_export_expired(self, api: VezaApi) -> None:
        export_id = api.created_id()
        assert api.wait(export_id)[-1] == "FINISHED"
        api.arm("veza_expired")
        assert api.get(export_id).json()["value"]["status"] == "EXPIRED"

    def test_drop_connection_mid_download(self, api: VezaApi) -> None:
        export_id = api.created_id()
        api.wait(export_id)
        api.arm("drop_connection", after_bytes=3000)
        received, error = stream(api, export_id)
        assert error is not None
        assert 0 < len(received) <= 3000
        assert api.facts(export_id)["downloads"] == 0

    def test_truncate_on_xlsx(self, api: VezaApi) -> None:
        export_id = api.created_id(format=6, title="t")
        api.wait(export_id)
        api.arm("truncate", after_bytes=2048)
        received, error = stream(api, export_id)
        assert error is not None
        assert len(received) == 2048


def stream(api: VezaApi, export_id: str) -> tuple[bytes, Exception | None]:
    received = bytearray()
    try:
        with api.http.stream("GET", f"{PREFIX}/{export_id}:download", headers=api.auth) as answer:
            for chunk in answer.iter_raw():
                received += chunk
    except httpx.TransportError as exc:
        return bytes(received), exc
    return bytes(received), None


def test_request_log_redacts_the_api_key(api: VezaApi) -> None:
    api.create()
    log = api.admin("GET", "/requests").json()
    assert log
    assert log[0]["headers"]["authorization"] == "***"
    assert "veza-api-key" not in str(log)


@pytest.mark.parametrize(
    ("setting", "match"),
    [
        ({"id_field": "exportId"}, "id_field"),
        ({"format_field": "string"}, "format_field"),
        ({"retry_after_form": "minutes"}, "retry_after_form"),
        ({"precondition_status": 409}, "precondition_status"),
    ],
)
def test_settings_are_validated_at_start(setting: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        start_simulator("veza", **setting)
