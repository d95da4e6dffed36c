"""The Maxsight audit export simulator, over real HTTP: filters, ranges, PDFs, faults, facts."""

from __future__ import annotations

import collections
import csv
import datetime as dt
import email.utils
import io
import re
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfReader

from include.simulators import RunningSimulator, start_simulator
from include.simulators.maxsight import METADATA_POOLS

pytestmark = pytest.mark.integration

EXPORT = "/v5/audit-sentinel/events/export"
COLUMNS = [
    "event_id",
    "timestamp",
    "auditee_id",
    "auditee_name",
    "auditee_type",
    "event_type",
    "sub_type",
    "system_source",
    "description",
    "entity_id",
    "assessment_id",
    "task_id",
    "workflow_instance_id",
]
UNIFORM, BURST, INSTANT = 300, 1200, 25
# A fixed store in the past (set explicitly, not the simulator's clock-relative default),
# so locale renderings of known instants can be checked literally.
STORE = {"store_start": "2026-10-01T00:00:00.000Z", "store_end": "2026-10-31T23:59:59.999Z"}
BURST_HOUR = ("2026-10-15T13:00:00.000Z", "2026-10-15T13:59:59.999Z")
INSTANT_AT = "2026-10-20T08:30:00.250Z"
# DOC: "metadata[KEY]=value with KEY in entity_id, assessment_id, ..., workflow_step"
METADATA_KEYS = (
    "entity_id",
    "assessment_id",
    "task_id",
    "workflow_instance_id",
    "screening_application_id",
    "screening_config_id",
    "match_id",
    "inquiry_id",
    "tag",
    "cache_id",
    "workflow_step",
)
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
Params = Sequence[tuple[str, str]] | dict[str, str]


def pairs(params: Params) -> tuple[tuple[str, str], ...]:
    return tuple(params.items()) if isinstance(params, dict) else tuple(params)


class Auditor:
    """A client of one running Maxsight simulator."""

    def __init__(self, sim: RunningSimulator) -> None:
        self.sim = sim
        self.http = httpx.Client(
            base_url=sim.base_url, timeout=30, headers={"apikey": sim.credentials["password"]}
        )
        self.admin = sim.admin()

    def export(self, params: Params = ()) -> httpx.Response:
        return self.http.get(EXPORT, params=pairs(params))

    def rows(self, params: Params = ()) -> list[dict[str, str]]:
        response = self.export(params)
        assert response.status_code == 200, response.text
        return list(csv.DictReader(io.StringIO(response.content.decode(), newline="")))

    def count(self, params: Params = ()) -> int:
        response = self.admin.get("/_sim/count", params=pairs(params))
        assert response.status_code == 200, response.text
        return int(response.json()["count"])

    def facts(self) -> dict[str, Any]:
        body: dict[str, Any] = self.admin.get("/_sim/facts").json()
        return body

    def arm(self, **fault: Any) -> None:
        self.admin.post("/_sim/faults", json=fault).raise_for_status()

    def configure(self, **settings: Any) -> None:
        self.admin.patch("/_sim/config", json=settings).raise_for_status()

    def close(self) -> None:
        self.http.close()
        self.admin.close()


@pytest.fixture(scope="module")
def maxsight() -> Iterator[RunningSimulator]:
    sim = start_simulator(
        "maxsight",
        seed=1234,
        events=UNIFORM,
        burst_events=BURST,
        instant_events=INSTANT,
        burst_start=BURST_HOUR[0],
        instant_at=INSTANT_AT,
        **STORE,
    )
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def shared_auditor(maxsight: RunningSimulator) -> Iterator[Auditor]:
    client = Auditor(maxsight)
    yield client
    client.close()


@pytest.fixture
def auditor(shared_auditor: Auditor) -> Iterator[Auditor]:
    """The module's client; faults disarmed after each test."""
    yield shared_auditor
    shared_auditor.admin.delete("/_sim/faults")


@pytest.fixture
def own_auditor() -> Iterator[Any]:
    """A factory of simulators with their own settings (stopped after the test)."""
    started: list[tuple[RunningSimulator, Auditor]] = []

    def make(**settings: Any) -> Auditor:
        sim = start_simulator("maxsight", seed=99, **{**STORE, **settings})
        client = Auditor(sim)
        started.append((sim, client))
        return client

    yield make
    for sim, client in started:
        client.close()
        sim.stop()


def errors(response: httpx.Response) -> dict[str, str]:
    """The single error of a CHOICE error body, after checking its shape."""
    body = response.json()
    assert list(body) == ["errors"]
    assert len(body["errors"]) == 1
    error: dict[str, str] = body["errors"][0]
    assert set(error) == {"code", "message", "source"}
    return error


def instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def api_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TestConnectionAndAuth:
    def test_start_describes_the_connection(self, maxsight: RunningSimulator) -> None:
        conn = maxsight.connection()

        assert conn["conn_type"] == "maxsight"
        assert conn["host"] == maxsight.base_url
        assert conn["password"] == "maxsight-sim-key"

    @pytest.mark.parametrize("headers", [{}, {"apikey": "wrong"}])
    def test_bad_key_is_401(self, maxsight: RunningSimulator, headers: dict[str, str]) -> None:
        response = httpx.get(maxsight.base_url + EXPORT, headers=headers)

        assert response.status_code == 401
        assert errors(response)["source"] == "apikey"

    def test_no_count_endpoint_for_the_pipeline(self, auditor: Auditor) -> None:
        response = auditor.http.get("/v5/audit-sentinel/events/count")

        assert response.status_code == 404


class TestCsv:
    def test_whole_store_in_time_order(self, auditor: Auditor) -> None:
        response = auditor.export()
        rows = list(csv.DictReader(io.StringIO(response.content.decode(), newline="")))

        assert response.status_code == 200
        assert response.headers["content-type"] == "text/csv; charset=utf-8"
        assert response.headers["content-disposition"].startswith("attachment; filename=")
        assert response.content.decode().splitlines()[0].split(",") == COLUMNS
        assert len(rows) == UNIFORM + BURST + INSTANT == auditor.facts()["events"]["total"]
        stamps = [instant(row["timestamp"]) for row in rows]
        assert stamps == sorted(stamps)
        assert all(UUID.match(row["event_id"]) for row in rows)
        assert len({row["event_id"] for row in rows}) == len(rows)

    def test_timestamp_is_iso_with_milliseconds_and_offset(self, auditor: Auditor) -> None:
        rows = auditor.rows({"range_start": INSTANT_AT, "range_end": INSTANT_AT})

        assert len(rows) == INSTANT
        assert {row["timestamp"] for row in rows} == {"2026-10-20T08:30:00.250+00:00"}

    def test_auditee_names_are_consistent_per_id(self, auditor: Auditor) -> None:
        names: dict[str, set[str]] = collections.defaultdict(set)
        for row in auditor.rows():
            names[row["auditee_id"]].add(row["auditee_name"])

        assert all(len(found) == 1 for found in names.values())
        assert any(auditee_id.startswith("0") for auditee_id in names)  # leading zeros kept

    def test_rate_headers_on_every_export(self, auditor: Auditor) -> None:
        response = auditor.export({"range_start": INSTANT_AT, "range_end": INSTANT_AT})

        assert int(response.headers["X-RateLimit-Remaining"]) >= 0
        assert int(response.headers["X-RateLimit-Reset-Secs"]) >= 1


class TestRange:
    def test_both_ends_inclusive_to_the_millisecond(self, auditor: Auditor) -> None:
        rows = auditor.rows(
            {"range_start": "2026-10-05T00:00:00Z", "range_end": "2026-10-12T00:00:00Z"}
        )
        moment = instant(rows[len(rows) // 2]["timestamp"])
        ms = dt.timedelta(milliseconds=1)
        at = api_time(moment)

        exactly = auditor.rows({"range_start": at, "range_end": at})
        from_here = auditor.rows({"range_start": at})
        from_next = auditor.rows({"range_start": api_time(moment + ms)})
        up_to_here = auditor.rows({"range_end": at})
        up_to_before = auditor.rows({"range_end": api_time(moment - ms)})

        assert exactly
        assert auditor.count({"range_start": at, "range_end": at}) == len(exactly)
        assert {instant(r["timestamp"]) for r in exactly} == {moment}
        assert len(from_here) - len(from_next) == len(exactly)
        assert len(up_to_here) - len(up_to_before) == len(exactly)

    def test_start_after_end_is_400(self, auditor: Auditor) -> None:
        response = auditor.export(
            {"range_start": "2026-10-02T00:00:00.001Z", "range_end": "2026-10-02T00:00:00.000Z"}
        )

        assert response.status_code == 400
        assert errors(response)["source"] == "range_end"

    def test_bad_timestamp_is_400_naming_it(self, auditor: Auditor) -> None:
        response = auditor.export({"range_start": "yesterday"})

        assert response.status_code == 400
        assert errors(response)["source"] == "range_start"
        assert "yesterday" in errors(response)["message"]

    def test_offsets_are_honoured(self, auditor: Auditor) -> None:
        utc = auditor.rows(
            {"range_start": "2026-10-15T13:00:00Z", "range_end": "2026-10-15T13:05:00Z"}
        )
        paris = auditor.rows(
            {"range_start": "2026-10-15T15:00:00+02:00", "range_end": "2026-10-15T15:05:00+02:00"}
        )

        assert paris == utc


@pytest.fixture(scope="module")
def every_instant(shared_auditor: Auditor) -> list[dt.datetime]:
    """The instants of all events of the module's store, from a full CSV export."""
    return [instant(row["timestamp"]) for row in shared_auditor.rows()]


class TestRangeProperty:
    """Against the whole store as ground truth: any [start, end] selects exactly its events."""

    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def test_any_range(
        self, shared_auditor: Auditor, every_instant: list[dt.datetime], data: st.DataObject
    ) -> None:
        ms = dt.timedelta(milliseconds=1)
        first = data.draw(st.integers(0, len(every_instant) - 1))
        last = data.draw(st.integers(first, min(first + 40, len(every_instant) - 1)))
        start = every_instant[first] + data.draw(st.sampled_from([-ms, 0 * ms, ms]))
        end = max(start, every_instant[last] + data.draw(st.sampled_from([-ms, 0 * ms, ms])))

        rows = shared_auditor.rows({"range_start": api_time(start), "range_end": api_time(end)})

        assert [instant(r["timestamp"]) for r in rows] == [
            t for t in every_instant if start <= t <= end
        ]


class TestFilters:
    @pytest.mark.parametrize(
        "encoding",
        [
            [("event_type", "task"), ("event_type", "user")],
            [("event_type[]", "task"), ("event_type[]", "user")],
            [("event_type", "task"), ("event_type[]", "user")],
        ],
    )
    def test_both_array_encodings_by_default(
        self, auditor: Auditor, encoding: list[tuple[str, str]]
    ) -> None:
        """DOC repeated keys; CHOICE ``bracket_arrays="accept"`` (the default) for brackets."""
        rows = auditor.rows(encoding)

        assert {row["event_type"] for row in rows} == {"task", "user"}
        assert (
            len(rows)
            == auditor.count(encoding)
            == auditor.count([("event_type", "task"), ("event_type", "user")])
        )
        assert 0 < len(rows) < UNIFORM + BURST + INSTANT

    @pytest.mark.parametrize("name", ["auditee_id", "sub_type", "system_source"])
    def test_each_array_filter(self, auditor: Auditor, name: str) -> None:
        everything = auditor.rows()
        wanted = sorted({row[name] for row in everything})[:2]

        rows = auditor.rows([(name, value) for value in wanted])

        assert rows == [row for row in everything if row[name] in wanted]
        assert rows

    @pytest.mark.parametrize(
        "key", ["entity_id", "assessment_id", "task_id", "workflow_instance_id"]
    )
    def test_metadata_filter_on_a_column(self, auditor: Auditor, key: str) -> None:
        everything = auditor.rows()
        value = next(row[key] for row in everything if row[key])

        rows = auditor.rows({f"metadata[{key}]": value})

        assert rows == [row for row in everything if row[key] == value]

    @pytest.mark.parametrize("key", METADATA_KEYS)
    def test_every_documented_metadata_key_filters(self, auditor: Auditor, key: str) -> None:
        total = UNIFORM + BURST + INSTANT
        probes = ((v, auditor.count({f"metadata[{key}]": v})) for v in candidates(key))
        value, expected = next((v, n) for v, n in probes if n > 0)

        rows = auditor.rows({f"metadata[{key}]": value})

        assert 0 < expected < total
        assert len(rows) == expected

    def test_filters_combine_with_and(self, auditor: Auditor) -> None:
        params = [
            ("event_type", "task"),
            ("system_source", "api"),
            ("range_start", BURST_HOUR[0]),
            ("range_end", BURST_HOUR[1]),
        ]

        rows = auditor.rows(params)

        assert rows
        assert all(r["event_type"] == "task" and r["system_source"] == "api" for r in rows)
        assert len(rows) == auditor.count(params)

    @pytest.mark.parametrize(
        ("params", "source"),
        [
            ({"metadata[colour]": "red"}, "metadata[colour]"),
            ({"page": "2"}, "page"),
            ({"timezone": "Mars/Olympus"}, "timezone"),
            ({"file_type": "xlsx"}, "file_type"),
            ({"locale": "not a locale"}, "locale"),
        ],
    )
    def test_bad_parameters_are_400_naming_them(
        self, auditor: Auditor, params: dict[str, str], source: str
    ) -> None:
        response = auditor.export(params)

        assert response.status_code == 400
        assert errors(response)["source"] == source
        assert errors(response)["code"] == "invalid_parameter"
        assert "X-RateLimit-Remaining" in response.headers


def candidates(key: str) -> tuple[str, ...]:
    """Values the simulator draws for a metadata key, to probe with ``/_sim/count``."""
    values, _ = METADATA_POOLS[key]
    return values[:10]


class TestTimezoneAndLocale:
    RANGE = {"range_start": "2026-10-15T13:00:00Z", "range_end": "2026-10-15T13:02:00Z"}

    def test_timezone_keeps_the_instant_and_shows_the_offset(self, auditor: Auditor) -> None:
        utc = auditor.rows(self.RANGE)
        berlin = auditor.rows({**self.RANGE, "timezone": "Europe/Berlin"})
        new_york = auditor.rows({**self.RANGE, "timezone": "America/New_York"})

        assert [instant(r["timestamp"]) for r in berlin] == [instant(r["timestamp"]) for r in utc]
        assert all(r["timestamp"].endswith("+02:00") for r in berlin)  # CEST in October
        assert all(r["timestamp"].endswith("-04:00") for r in new_york)
        assert "(+02:00)" in berlin[0]["description"]

    def test_german_dates(self, auditor: Auditor) -> None:
        rows = auditor.rows({**self.RANGE, "timezone": "Europe/Berlin", "locale": "de"})

        assert rows
        for row in rows:
            assert re.match(r"^15\.10\.2026 15:0[0-2]:\d\d,\d{3} \+02:00$", row["timestamp"])
            assert " am 15.10.2026, 15:0" in row["description"]

    def test_french_dates(self, auditor: Auditor) -> None:
        rows = auditor.rows({**self.RANGE, "locale": "fr-FR"})

        for row in rows:
            assert re.match(r"^15/10/2026 13:0[0-2]:\d\d,\d{3} \+00:00$", row["timestamp"])
            assert " le 15/10/2026 13:0" in row["description"]

    def test_english_description(self, auditor: Auditor) -> None:
        rows = auditor.rows({**self.RANGE, "locale": "en-GB"})

        assert all(" on Oct 15, 2026, 1:0" in row["description"] for row in rows)
        assert all(" PM (+00:00)" in row["description"] for row in rows)


class TestPdf:
    def test_pdf_holds_the_events_of_the_csv(self, auditor: Auditor) -> None:
        params = {"range_start": "2026-10-03T00:00:00Z", "range_end": "2026-10-09T23:59:59.999Z"}
        csv_ids = [row["event_id"] for row in auditor.rows(params)]

        response = auditor.export({**params, "file_type": "pdf"})

        assert response.status_code == 200
        assert response.headers["content-type"] == "application/pdf"
        assert response.headers["content-disposition"].endswith('.pdf"')
        assert pdf_event_ids(response.content) == csv_ids
        assert len(csv_ids) == auditor.count(params) > 0

    def test_default_limit_is_5000(self, auditor: Auditor) -> None:
        assert auditor.admin.get("/_sim/config").json()["pdf_event_limit"] == 5000

    def test_over_the_limit_is_400(self, auditor: Auditor) -> None:
        auditor.configure(pdf_event_limit=INSTANT)
        try:
            at_limit = auditor.export(
                {"range_start": INSTANT_AT, "range_end": INSTANT_AT, "file_type": "pdf"}
            )
            over = auditor.export({"range_start": INSTANT_AT, "file_type": "PDF"})
            csv_over = auditor.export({"range_start": INSTANT_AT})
        finally:
            auditor.configure(pdf_event_limit=5000)

        assert at_limit.status_code == 200
        assert len(pdf_event_ids(at_limit.content)) == INSTANT
        assert over.status_code == 400
        assert errors(over)["code"] == "pdf_event_limit"
        assert errors(over)["source"] == "file_type"
        assert str(INSTANT) in errors(over)["message"]
        assert csv_over.status_code == 200


def pdf_event_ids(pdf: bytes) -> list[str]:
    lines = [
        line
        for page in PdfReader(io.BytesIO(pdf)).pages
        for line in page.extract_text().splitlines()
    ]
    return [line.split()[0] for line in lines if line.split() and UUID.match(line.split()[0])]


class TestDistributions:
    def test_uniform_spreads_over_the_month(self, own_auditor: Any) -> None:
        client = own_auditor(events=620)

        per_day = collections.Counter(instant(r["timestamp"]).date() for r in client.rows())

        assert len(per_day) == 31
        assert max(per_day.values()) < 620 * 0.1

    def test_bursty_hour(self, auditor: Auditor) -> None:
        burst = {"range_start": BURST_HOUR[0], "range_end": BURST_HOUR[1]}

        in_hour = auditor.rows(burst)
        same_day = auditor.count(
            {"range_start": "2026-10-15T00:00:00Z", "range_end": "2026-10-15T23:59:59.999Z"}
        )

        assert len(in_hour) == auditor.count(burst) >= BURST
        assert same_day - len(in_hour) < 0.05 * BURST

    def test_more_than_5000_events_in_one_instant(self, own_auditor: Any) -> None:
        client = own_auditor(events=50, instant_events=5001, instant_at=INSTANT_AT)
        at = {"range_start": INSTANT_AT, "range_end": INSTANT_AT}

        pdf = client.export({**at, "file_type": "pdf"})
        rows = client.rows(at)

        assert pdf.status_code == 400
        assert "5000" in errors(pdf)["message"]
        assert len(rows) == 5001 == client.count(at)
        assert {row["timestamp"] for row in rows} == {"2026-10-20T08:30:00.250+00:00"}
        assert len({row["event_id"] for row in rows}) == 5001

    def test_store_is_rebuilt_when_its_shape_changes(self, own_auditor: Any) -> None:
        client = own_auditor(events=10)
        before = client.facts()["events"]["total"]

        client.configure(events=20, burst_events=5)

        assert before == 10
        assert client.facts()["events"]["total"] == 25
        assert len(client.rows()) == 25

    def test_same_seed_same_bytes(self, own_auditor: Any) -> None:
        first, second = own_auditor(events=200), own_auditor(events=200)

        assert first.export().content == second.export().content


class TestRateLimit:
    def test_limit_then_429(self, own_auditor: Any) -> None:
        client = own_auditor(events=5, rate_limit=3)

        answers = [client.export() for _ in range(4)]

        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
        assert errors(answers[3])["code"] == "rate_limited"
        assert int(answers[3].headers["Retry-After"]) >= 1
        assert int(answers[3].headers["X-RateLimit-Reset-Secs"]) >= 1

    @pytest.mark.parametrize("form", ["seconds", "http-date"])
    def test_rate_limit_fault(self, auditor: Auditor, form: str) -> None:
        auditor.arm(kind="rate_limit", retry_after=2, retry_after_form=form)

        limited = auditor.export()
        recovered = auditor.export({"range_start": INSTANT_AT, "range_end": INSTANT_AT})

        assert limited.status_code == 429
        assert limited.headers["X-RateLimit-Remaining"] == "0"
        retry_after = limited.headers["Retry-After"]
        if form == "seconds":
            assert retry_after == "2"
        else:
            assert email.utils.parsedate_to_datetime(retry_after).tzinfo is not None
        assert recovered.status_code == 200


class TestTimeout:
    def test_default_is_60_seconds(self, auditor: Auditor) -> None:
        assert auditor.admin.get("/_sim/config").json()["request_timeout"] == 60.0

    def test_slow_answer_within_the_timeout(self, own_auditor: Any) -> None:
        client = own_auditor(events=5, latency=0.1, request_timeout=5)

        assert len(client.rows()) == 5

    def test_answer_past_the_timeout_is_504(self, own_auditor: Any) -> None:
        client = own_auditor(events=5, latency=0.3, request_timeout=0.2)

        response = client.export()

        assert response.status_code == 504
        assert errors(response)["code"] == "timeout"
        assert client.facts()["exports"] == {}


class TestFaults:
    def test_server_error(self, auditor: Auditor) -> None:
        auditor.arm(kind="server_error", status=500)

        failed = auditor.export()

        assert failed.status_code == 500
        assert errors(failed)["code"] == "server_error"
        assert auditor.export({"range_end": INSTANT_AT}).status_code == 200

    @pytest.mark.parametrize("kind", ["drop_connection", "truncate"])
    def test_cut_download(self, auditor: Auditor, kind: str) -> None:
        auditor.arm(kind=kind, after_bytes=700)
        received = bytearray()

        with (
            auditor.http.stream("GET", EXPORT) as response,
            pytest.raises(httpx.RemoteProtocolError),
        ):
            read_into(response, received)

        assert len(received) == 700 < int(response.headers["content-length"])
        assert auditor.facts()["exports"][last_export(auditor)]["status"] == "started"


def read_into(response: httpx.Response, received: bytearray) -> None:
    for chunk in response.iter_raw():
        received += chunk


def last_export(auditor: Auditor) -> str:
    return max(auditor.facts()["exports"])


class TestFacts:
    def test_store_and_exports(self, auditor: Auditor) -> None:
        params = {"range_start": BURST_HOUR[0], "range_end": BURST_HOUR[1]}
        rows = auditor.rows(params)

        facts = auditor.facts()
        export = facts["exports"][last_export(auditor)]

        assert facts["vendor"] == "maxsight"
        assert facts["events"]["total"] == UNIFORM + BURST + INSTANT
        assert facts["events"]["settings"]["burst_events"] == BURST
        assert export["rows"] == len(rows)
        assert export["status"] == "sent"
        assert export["file_type"] == "csv"

    def test_count_is_admin_only_and_not_logged(self, auditor: Auditor) -> None:
        auditor.admin.delete("/_sim/requests")

        count = auditor.count({"event_type": "task"})
        logged = auditor.admin.get("/_sim/requests").json()

        assert count > 0
        assert logged == []
