"""The Oleria simulator over real HTTP: every documented behaviour, switch and fault."""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from include.simulators import RunningSimulator, start_simulator
from include.simulators.data import oleria_dataset, render_value
from include.simulators.oleria import HOSTILE

pytestmark = pytest.mark.integration

ROWS = 120
CONTEXT = "accessInventoryIdentitiesV2"
POLL_DEADLINE = 20.0


@pytest.fixture(scope="module")
def oleria() -> Iterator[RunningSimulator]:
    sim = start_simulator("oleria", seed=1234, rows=ROWS, latency=0.1)
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def http(oleria: RunningSimulator) -> Iterator[httpx.Client]:
    """One client for the module (API origin as base; absolute URLs for downloads)."""
    with httpx.Client(base_url=oleria.base_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def defaults(http: httpx.Client) -> dict[str, Any]:
    config: dict[str, Any] = http.get("/_sim/config").json()
    return config


@pytest.fixture
def api(
    oleria: RunningSimulator, http: httpx.Client, defaults: dict[str, Any]
) -> Iterator[OleriaApi]:
    """A client with a fresh token; faults, logs and settings restored after the test."""
    yield OleriaApi(oleria, http)
    http.delete("/_sim/faults")
    http.delete("/_sim/requests")
    http.patch("/_sim/config", json=defaults)


class OleriaApi:
    def __init__(self, sim: RunningSimulator, http: httpx.Client) -> None:
        self.sim = sim
        self.http = http
        self.token = self.fetch_token().json()["access_token"]

    def fetch_token(self, **overrides: str) -> httpx.Response:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.sim.credentials["login"],
            "client_secret": self.sim.credentials["password"],
            **overrides,
        }
        return self.http.post(self.sim.extra["token_url"], data=form)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def create(self, context: str = CONTEXT, **params: Any) -> httpx.Response:
        body = {"context": context, "params": params}
        return self.http.post("/v1/downloads", json=body, headers=self.auth)

    def get(self, download_id: str) -> httpx.Response:
        return self.http.get(f"/v1/downloads/{download_id}", headers=self.auth)

    def wait(self, download_id: str) -> dict[str, Any]:
        """Poll until completed or failed; every status seen must be a documented one."""
        deadline = time.monotonic() + POLL_DEADLINE
        while time.monotonic() < deadline:
            body: dict[str, Any] = self.get(download_id).raise_for_status().json()
            assert body["status"] in {"accepted", "completed", "failed"}
            if body["status"] != "accepted":
                return body
            time.sleep(0.05)
        raise AssertionError(f"download {download_id} did not finish")

    def export(self, context: str = CONTEXT, **params: Any) -> dict[str, Any]:
        created = self.create(context, **params)
        assert created.status_code == 201, created.text
        return self.wait(created.json()["id"])

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, f"{self.sim.base_url}/_sim{path}", **kwargs)

    def download(self, url: str) -> httpx.Response:
        return self.http.get(url)

    def download_partially(self, url: str) -> tuple[bytes, int | None, Exception | None]:
        """Bytes received, the declared Content-Length and the error that cut the body."""
        received = bytearray()
        declared: int | None = None
        try:
            with self.http.stream("GET", url) as answer:
                declared = int(answer.headers.get("content-length", 0)) or None
                for chunk in answer.iter_raw():
                    received += chunk
        except httpx.TransportError as exc:
            return bytes(received), declared, exc
        return bytes(received), declared, None

    def arm(self, kind: str, **options: Any) -> None:
        self.admin("POST", "/faults", json={"kind": kind, **options}).raise_for_status()

    def configure(self, **settings: Any) -> None:
        self.admin("PATCH", "/config", json=settings).raise_for_status()

    def facts(self, download_id: str) -> dict[str, Any]:
        facts: dict[str, Any] = self.admin("GET", "/facts").json()["exports"][download_id]
        return facts


def parse_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


# --------------------------------------------------------------------------- token


class TestToken:
    def test_client_credentials_give_a_bearer_token_valid_an_hour(self, api: OleriaApi) -> None:
        body = api.fetch_token().json()
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == 3600
        assert body["access_token"]

    def test_token_endpoint_is_form_encoded(self, api: OleriaApi) -> None:
        answer = api.http.post(
            api.sim.extra["token_url"],
            json={"grant_type": "client_credentials", "client_id": "x", "client_secret": "y"},
        )
        assert answer.status_code == 400
        assert set(answer.json()) == {"code", "message"}

    def test_bad_secret_is_401_with_code_and_message(self, api: OleriaApi) -> None:
        answer = api.fetch_token(client_secret="wrong")
        assert answer.status_code == 401
        assert answer.json()["code"] == "invalid_client"
        assert answer.json()["message"]

    def test_other_grant_types_are_refused(self, api: OleriaApi) -> None:
        assert api.fetch_token(grant_type="password").status_code == 400

    def test_audience_is_checked_when_the_tenant_has_one(self, api: OleriaApi) -> None:
        api.configure(audience="https://api.oleria.io")
        assert api.fetch_token().status_code == 403
        assert api.fetch_token(audience="https://api.oleria.io").status_code == 200

    def test_expired_token_is_refused(self, api: OleriaApi) -> None:
        api.configure(token_ttl=1)
        api.token = api.fetch_token().json()["access_token"]
        time.sleep(1.2)
        answer = api.create()
        assert answer.status_code == 401
        assert answer.json()["code"] == "token_expired"

    @pytest.mark.parametrize("header", [None, "Bearer not-a-token", "Basic abc"])
    def test_requests_without_a_valid_token_are_401(
        self, api: OleriaApi, header: str | None
    ) -> None:
        headers = {"Authorization": header} if header else {}
        answer = api.http.post("/v1/downloads", json={"context": CONTEXT}, headers=headers)
        assert answer.status_code == 401
        assert set(answer.json()) == {"code", "message"}

    def test_token_url_and_api_share_the_loopback_origin(self, oleria: RunningSimulator) -> None:
        connection = oleria.connection()
        assert connection["conn_type"] == "oleria"
        assert connection["login"] == "oleria-client"
        assert connection["extra"]["token_url"].startswith(f"{oleria.base_url}/")


# --------------------------------------------------------------------------- downloads


class TestDownloadLifecycle:
    def test_create_answers_201_accepted_with_a_uuid(self, api: OleriaApi) -> None:
        answer = api.create()
        assert answer.status_code == 201
        body = answer.json()
        assert body["status"] == "accepted"
        assert str(uuid_of(body["id"])) == body["id"]

    @pytest.mark.parametrize("status", [200, 202])
    def test_create_status_is_switchable(self, api: OleriaApi, status: int) -> None:
        api.configure(create_status=status)
        assert api.create().status_code == status

    def test_accepted_then_completed_with_a_url_on_another_origin(self, api: OleriaApi) -> None:
        api.configure(latency=0.5)  # time for the first poll to see the job still accepted
        created = api.create().json()
        first = api.get(created["id"]).json()
        assert first["status"] == "accepted"
        assert "url" not in first
        done = api.wait(created["id"])
        assert done["status"] == "completed"
        url = urlsplit(done["url"])
        assert f"{url.scheme}://{url.netloc}" != api.sim.base_url
        assert f"{url.scheme}://{url.netloc}" == api.sim.servers[1].base_url

    def test_a_context_the_client_may_not_export_is_403(self, api: OleriaApi) -> None:
        api.configure(forbidden_contexts=["risks"])
        answer = api.create("risks")
        assert answer.status_code == 403
        assert answer.json()["code"] == "forbidden"

    def test_unknown_download_is_404(self, api: OleriaApi) -> None:
        answer = api.get("00000000-0000-4000-8000-000000000000")
        assert answer.status_code == 404
        assert answer.json()["code"] == "not_found"

    def test_url_needs_no_oleria_auth_and_serves_the_csv(self, api: OleriaApi) -> None:
        done = api.export()
        answer = api.download(done["url"])
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/csv")
        assert answer.headers["content-disposition"].startswith("attachment; filename=")
        assert int(answer.headers["content-length"]) == len(answer.content)
        rows = parse_csv(answer.text)
        assert len(rows) == ROWS == api.facts(done["id"])["rows"]
        assert list(rows[0]) == list(oleria_dataset(CONTEXT).header)

    def test_same_request_gives_the_same_bytes(self, api: OleriaApi) -> None:
        first = api.download(api.export()["url"]).content
        second = api.download(api.export()["url"]).content
        assert first == second

    def test_a_finished_file_keeps_its_rows_when_settings_change(self, api: OleriaApi) -> None:
        done = api.export()
        api.configure(rows=5)
        answer = api.download(done["url"])
        assert int(answer.headers["content-length"]) == len(answer.content)
        assert len(parse_csv(answer.text)) == ROWS

    def test_every_published_context_exports(self, api: OleriaApi) -> None:
        done = api.export("risks")
        rows = parse_csv(api.download(done["url"]).text)
        assert len(rows) == ROWS
        assert "id" in rows[0]

    def test_csv_keeps_leading_zero_ids_as_text(self, api: OleriaApi) -> None:
        rows = parse_csv(api.download(api.export("employees")["url"]).text)
        assert any(row["id"].startswith("0") for row in rows)

    def test_facts_report_status_rows_and_context(self, api: OleriaApi) -> None:
        done = api.export()
        api.download(done["url"])
        facts = api.facts(done["id"])
        assert facts["status"] == "completed"
        assert facts["context"] == CONTEXT
        assert facts["rows"] == ROWS
        assert facts["downloads"] == 1


def uuid_of(text: str) -> Any:
    import uuid

    return uuid.UUID(text)


# --------------------------------------------------------------------------- validation


class TestValidation:
    def test_unknown_context_is_400(self, api: OleriaApi) -> None:
        answer = api.create("noSuchContext")
        assert answer.status_code == 400
        assert answer.json()["code"] == "invalid_request"
        assert "context" in answer.json()["message"]

    @pytest.mark.parametrize(
        ("entry", "mentions"),
        [
            (
                {"dataType": "string", "field": "department", "filterType": "gt", "values": ["a"]},
                "filterType",
            ),
            (
                {
                    "dataType": "number",
                    "field": "dormantDays",
                    "filterType": "between",
                    "values": [1],
                },
                "values",
            ),
            (
                {
                    "dataType": "timestamp",
                    "field": "createdAt",
                    "filterType": "last",
                    "values": ["7x"],
                },
                "values[0]",
            ),
            (
                {"dataType": "boolean", "field": "isAdmin", "filterType": "in", "values": [True]},
                "filterType",
            ),
            (
                {"dataType": "string", "field": "noSuchField", "filterType": "eq", "values": ["a"]},
                "field",
            ),
        ],
    )
    def test_bad_filters_are_400_naming_the_field(
        self, api: OleriaApi, entry: dict[str, Any], mentions: str
    ) -> None:
        answer = api.create(filterBy=[entry])
        assert answer.status_code == 400
        body = answer.json()
        assert set(body) == {"code", "message"}
        assert f"params.filterBy[0].{mentions}" in body["message"]

    def test_bad_sort_type_is_400(self, api: OleriaApi) -> None:
        answer = api.create(sortBy=[{"field": "department", "sortType": "up"}])
        assert answer.status_code == 400
        assert "params.sortBy[0].sortType" in answer.json()["message"]

    def test_body_that_is_not_json_is_400(self, api: OleriaApi) -> None:
        answer = api.http.post("/v1/downloads", content=b"{", headers=api.auth)
        assert answer.status_code == 400

    def test_unknown_fields_pass_when_strict_fields_is_off(self, api: OleriaApi) -> None:
        api.configure(strict_fields=False)
        entry = {"dataType": "string", "field": "nope", "filterType": "isNull", "values": []}
        done = api.export(filterBy=[entry])
        assert api.facts(done["id"])["rows"] == ROWS


class TestFiltersAndSorting:
    def test_filters_are_and_combined_and_applied(self, api: OleriaApi) -> None:
        filter_by: list[dict[str, Any]] = [
            {"dataType": "boolean", "field": "isAdmin", "filterType": "eq", "values": ["false"]},
            {
                "dataType": "number",
                "field": "assignedRolesCount",
                "filterType": "gte",
                "values": [10],
            },
        ]
        done = api.export(filterBy=filter_by)
        rows = parse_csv(api.download(done["url"]).text)
        expected = [
            {k: render_value(v) for k, v in row.items()}
            for row in oleria_dataset(CONTEXT).rows(1234, ROWS)
            if row["isAdmin"] is False and row["assignedRolesCount"] >= 10
        ]
        assert rows == expected
        assert 0 < len(rows) == api.facts(done["id"])["rows"] < ROWS

    def test_string_in_and_is_null_filters(self, api: OleriaApi) -> None:
        filter_by = [
            {"dataType": "string", "field": "department", "filterType": "isNull", "values": []},
        ]
        done = api.export(filterBy=filter_by)
        rows = parse_csv(api.download(done["url"]).text)
        assert rows
        assert all(row["department"] == "" for row in rows)

    def test_sort_descending_puts_blanks_first(self, api: OleriaApi) -> None:
        done = api.export(sortBy=[{"field": "dormantDays", "sortType": "desc"}])
        values = [row["dormantDays"] for row in parse_csv(api.download(done["url"]).text)]
        blanks = values.count("")
        assert blanks
        assert values[:blanks] == [""] * blanks
        numbers = [int(v) for v in values[blanks:]]
        assert numbers == sorted(numbers, reverse=True)

    def test_multi_key_sort(self, api: OleriaApi) -> None:
        sort_by = [
            {"field": "application", "sortType": "asc"},
            {"field": "createdAt", "sortType": "desc"},
        ]
        done = api.export(sortBy=sort_by)
        rows = parse_csv(api.download(done["url"]).text)
        keys = [(r["application"], -parse_time(r["createdAt"]).timestamp()) for r in rows]
        assert keys == sorted(keys)
        assert len(rows) == ROWS


def parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


# --------------------------------------------------------------------------- presigned urls


class TestPresignedUrls:
    def test_query_is_s3_style(self, api: OleriaApi) -> None:
        query = parse_qs(urlsplit(api.export()["url"]).query)
        assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
        assert query["X-Amz-Expires"] == ["300"]
        assert {"X-Amz-Date", "X-Amz-Signature", "X-Amz-Credential"} <= set(query)

    def test_expired_url_is_403_request_has_expired(self, api: OleriaApi) -> None:
        api.configure(url_ttl=1)
        url = api.export()["url"]
        time.sleep(2.1)
        answer = api.download(url)
        assert answer.status_code == 403
        assert "<Code>AccessDenied</Code>" in answer.text
        assert "<Message>Request has expired</Message>" in answer.text

    def test_tampered_url_is_403_signature_does_not_match(self, api: OleriaApi) -> None:
        url = api.export()["url"]
        answer = api.download(url.replace("X-Amz-Expires=300", "X-Amz-Expires=99999"))
        assert answer.status_code == 403
        assert "<Code>SignatureDoesNotMatch</Code>" in answer.text

    def test_unsigned_url_is_403_access_denied(self, api: OleriaApi) -> None:
        url = api.export()["url"].split("?")[0]
        answer = api.download(url)
        assert answer.status_code == 403
        assert "<Code>AccessDenied</Code>" in answer.text

    @pytest.mark.parametrize("fresh", [True, False])
    def test_repolling_mints_a_fresh_url_or_repeats_it(self, api: OleriaApi, fresh: bool) -> None:
        api.configure(fresh_url_per_poll=fresh)
        done = api.export()
        time.sleep(1.05)  # X-Amz-Date has second resolution
        again = api.get(done["id"]).json()["url"]
        assert (again != done["url"]) is fresh
        assert api.download(again).status_code == 200

    def test_repeated_url_expires_and_only_a_new_download_gets_a_live_one(
        self, api: OleriaApi
    ) -> None:
        """CHOICE fresh_url_per_poll=False: what the client survives by submitting again."""
        api.configure(fresh_url_per_poll=False, url_ttl=1)
        done = api.export()
        time.sleep(2.1)
        again = api.get(done["id"]).json()["url"]
        assert again == done["url"]
        assert "Request has expired" in api.download(again).text
        assert api.download(api.export()["url"]).status_code == 200

    def test_fresh_urls_stay_valid_after_the_first_expires(self, api: OleriaApi) -> None:
        api.configure(url_ttl=1)
        done = api.export()
        time.sleep(2.1)
        assert api.download(done["url"]).status_code == 403
        assert api.download(api.get(done["id"]).json()["url"]).status_code == 200


class TestRanges:
    def test_range_answers_206_with_those_bytes(self, api: OleriaApi) -> None:
        url = api.export()["url"]
        whole = api.download(url).content
        part = api.http.get(url, headers={"Range": "bytes=100-1099"})
        assert part.status_code == 206
        assert part.headers["content-range"] == f"bytes 100-1099/{len(whole)}"
        assert part.content == whole[100:1100]
        suffix = api.http.get(url, headers={"Range": "bytes=-10"})
        assert suffix.content == whole[-10:]

    def test_range_past_the_end_is_416_invalid_range(self, api: OleriaApi) -> None:
        url = api.export()["url"]
        answer = api.http.get(url, headers={"Range": "bytes=99999999-"})
        assert answer.status_code == 416
        assert "<Code>InvalidRange</Code>" in answer.text

    def test_a_dropped_download_resumes_with_a_range(self, api: OleriaApi) -> None:
        url = api.export()["url"]
        whole = api.download(url).content
        api.arm("drop_connection", after_bytes=5000)
        received, _, error = api.download_partially(url)
        assert error is not None
        rest = api.http.get(url, headers={"Range": f"bytes={len(received)}-"})
        assert received + rest.content == whole


# --------------------------------------------------------------------------- faults


class TestFaults:
    def test_rate_limit_with_retry_after_seconds(self, api: OleriaApi) -> None:
        api.arm("rate_limit", retry_after=7, path="/v1/downloads")
        answer = api.create()
        assert answer.status_code == 429
        assert answer.headers["retry-after"] == "7"
        assert answer.json()["code"] == "rate_limited"
        assert api.create().status_code == 201

    def test_rate_limit_with_retry_after_http_date(self, api: OleriaApi) -> None:
        api.arm("rate_limit", retry_after=30, retry_after_form="http-date")
        answer = api.create()
        assert answer.status_code == 429
        assert answer.headers["retry-after"].endswith(" GMT")

    def test_tenant_rate_limit_answers_429_with_retry_after(self, api: OleriaApi) -> None:
        api.configure(rate_limit=3, rate_window=30)
        statuses = [api.create().status_code for _ in range(4)]
        assert statuses == [201, 201, 201, 429]
        answer = api.get("00000000-0000-4000-8000-000000000000")
        assert answer.status_code == 429
        assert 1 <= int(answer.headers["retry-after"]) <= 30

    def test_server_error_burst(self, api: OleriaApi) -> None:
        api.arm("server_error", count=2, status=503, path="/v1/downloads")
        assert [api.create().status_code for _ in range(3)] == [503, 503, 201]

    def test_job_failure_reports_failed_with_an_error(self, api: OleriaApi) -> None:
        api.arm("job_failure")
        done = api.export()
        assert done["status"] == "failed"
        assert set(done["error"]) == {"code", "message"}
        assert "url" not in done
        assert api.facts(done["id"])["status"] == "failed"

    def test_never_finish_stays_accepted(self, api: OleriaApi) -> None:
        api.arm("never_finish")
        download_id = api.create().json()["id"]
        time.sleep(0.5)  # several times the latency
        assert api.get(download_id).json()["status"] == "accepted"

    def test_token_expiry_answers_401_for_a_valid_token(self, api: OleriaApi) -> None:
        api.arm("token_expiry")
        answer = api.create()
        assert answer.status_code == 401
        assert answer.json()["code"] == "token_expired"
        assert api.create().status_code == 201

    def test_expire_url_hands_out_an_expired_link(self, api: OleriaApi) -> None:
        done = api.export()
        api.arm("expire_url")
        url = api.get(done["id"]).json()["url"]
        answer = api.download(url)
        assert answer.status_code == 403
        assert "Request has expired" in answer.text
        assert api.download(api.get(done["id"]).json()["url"]).status_code == 200

    def test_drop_connection_mid_download(self, api: OleriaApi) -> None:
        done = api.export()
        api.arm("drop_connection", after_bytes=2000)
        received, _, error = api.download_partially(done["url"])
        assert error is not None
        assert 0 < len(received) <= 2000
        assert api.facts(done["id"])["downloads"] == 0

    def test_truncate_declares_more_than_it_sends(self, api: OleriaApi) -> None:
        done = api.export()
        api.arm("truncate", after_bytes=1500)
        received, declared, error = api.download_partially(done["url"])
        assert error is not None
        assert declared is not None
        assert len(received) == 1500 < declared

    def test_server_error_on_the_download_origin(self, api: OleriaApi) -> None:
        done = api.export()
        api.arm("server_error", status=500, path="/oleria-downloads/")
        assert api.download(done["url"]).status_code == 500
        assert api.download(done["url"]).status_code == 200


# --------------------------------------------------------------------------- request log


class TestRequestLog:
    def test_download_origin_never_sees_an_authorization_header(self, api: OleriaApi) -> None:
        done = api.export()
        api.download(done["url"])
        log = api.admin("GET", "/requests").json()
        downloads = [r for r in log if r["path"].startswith("/oleria-downloads/")]
        assert downloads
        assert all(r["origin"] == api.sim.servers[1].base_url for r in downloads)
        assert all("authorization" not in r["headers"] for r in downloads)

    def test_secrets_are_redacted(self, api: OleriaApi) -> None:
        api.create()
        log = api.admin("GET", "/requests").json()
        token_requests = [r for r in log if r["path"] == "/oauth/token"]
        assert token_requests
        assert all("oleria-secret" not in (r["body"] or "") for r in token_requests)
        assert "client_secret=***" in token_requests[0]["body"]
        api_requests = [r for r in log if r["path"] == "/v1/downloads"]
        assert api_requests[0]["headers"]["authorization"] == "***"
        assert api.token not in str(log)


def test_settings_are_validated_at_start() -> None:
    with pytest.raises(ValueError, match="create_status"):
        start_simulator("oleria", create_status=204)


def test_rendered_values_match_the_csv(api: OleriaApi) -> None:
    rows = parse_csv(api.download(api.export()["url"]).text)
    dataset = oleria_dataset(CONTEXT)
    assert rows[5] == {k: render_value(v) for k, v in dataset.row(1234, 5).items()}


class TestLatency:
    def test_random_latency_stays_in_its_range(self, api: OleriaApi) -> None:
        api.configure(latency=0.05, latency_max=0.3)
        ids = [api.create().json()["id"] for _ in range(4)]
        latencies = [api.facts(download_id)["latency"] for download_id in ids]
        assert all(0.05 <= latency <= 0.3 for latency in latencies)
        assert len(set(latencies)) == 4
        assert all(api.wait(download_id)["status"] == "completed" for download_id in ids)

    def test_random_latencies_follow_the_seed(self) -> None:
        def latencies(seed: int) -> list[float]:
            sim = start_simulator("oleria", seed=seed, latency=0.05, latency_max=0.3)
            try:
                with httpx.Client(base_url=sim.base_url, timeout=30) as http:
                    api = OleriaApi(sim, http)
                    ids = [api.create().json()["id"] for _ in range(3)]
                    return [api.facts(download_id)["latency"] for download_id in ids]
            finally:
                sim.stop()

        assert latencies(5) == latencies(5) != latencies(6)


# --------------------------------------------------------------------------- hostile


class TestHostile:
    """HOSTILE: every Oleria CHOICE at its least convenient documented alternative."""

    @pytest.fixture
    def hostile(self) -> Iterator[OleriaApi]:
        sim = start_simulator("oleria", seed=1234, rows=ROWS, **HOSTILE)
        try:
            with httpx.Client(base_url=sim.base_url, timeout=30) as http:
                yield OleriaApi(sim, http)
        finally:
            sim.stop()

    def test_every_entry_is_a_setting_that_differs_from_the_default(
        self, api: OleriaApi, defaults: dict[str, Any]
    ) -> None:
        assert set(HOSTILE) <= set(defaults)
        unchanged = {k for k, v in HOSTILE.items() if defaults[k] == v}
        assert unchanged == {"strict_fields", "rate_window"}  # already least convenient

    def test_hostile_answers(self, hostile: OleriaApi) -> None:
        created = hostile.create()
        assert created.status_code == 202
        assert 1.0 <= hostile.facts(created.json()["id"])["latency"] <= 5.0
        hostile.configure(latency=0, latency_max=None, rate_limit=0)
        download_id = hostile.create().json()["id"]
        first = hostile.wait(download_id)["url"]
        time.sleep(1.05)  # X-Amz-Date has second resolution
        assert hostile.get(download_id).json()["url"] == first
        refused = [
            hostile.create("accessRequests"),
            hostile.create(filterBy=[last_filter("30m")]),
            hostile.create(filterBy=[stamp_filter("2026-01-01T00:00:00")]),
            hostile.create(filterBy=[{**stamp_filter("2026-01-01"), "field": "nope"}]),
        ]
        assert [r.status_code for r in refused] == [400] * 4
        assert hostile.create(filterBy=[last_filter("24h")]).status_code == 202

    def test_hostile_tenant_rate_limit(self, hostile: OleriaApi) -> None:
        """Five requests a second: the token request and four polls, then 429."""
        answers = [hostile.get("00000000-0000-4000-8000-000000000000") for _ in range(5)]
        assert [r.status_code for r in answers] == [404, 404, 404, 404, 429]
        assert answers[4].headers["retry-after"] == "1"


def last_filter(duration: str) -> dict[str, Any]:
    return {
        "dataType": "timestamp",
        "field": "createdAt",
        "filterType": "last",
        "values": [duration],
    }


def stamp_filter(stamp: str) -> dict[str, Any]:
    return {"dataType": "timestamp", "field": "createdAt", "filterType": "gt", "values": [stamp]}
