"""The Maxsight simulator's request rules over HTTP: arrays, strictness, microseconds, CHOICES.

Each DOC rule is checked as VENDOR_APIS.md section 4 states it; each CHOICE in every
one of its settings (patched at ``/_sim/config``), and HOSTILE as a whole.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest

from include.simulators import RunningSimulator, start_simulator
from include.simulators.maxsight import CHOICES, HOSTILE, MaxsightSettings
from tests.simulators.test_maxsight import METADATA_KEYS  # the doc's list, quoted once

pytestmark = pytest.mark.integration

EXPORT = "/v5/audit-sentinel/events/export"
STORE = {"store_start": "2026-10-01T00:00:00.000Z", "store_end": "2026-10-31T23:59:59.999Z"}
LAST_MS = "2026-11-20T23:59:59.999Z"
LATE = "2026-11-20T23:59:59.999500Z"  # half a millisecond after LAST_MS
Pairs = Sequence[tuple[str, str]]


class Client:
    """One simulator of its own, with its settings patched per test."""

    def __init__(self, sim: RunningSimulator) -> None:
        self.sim = sim
        self.http = httpx.Client(
            base_url=sim.base_url, timeout=30, headers={"apikey": sim.credentials["password"]}
        )
        self.admin = sim.admin()

    def export(self, params: Pairs = ()) -> httpx.Response:
        return self.http.get(EXPORT, params=tuple(params))

    def rows(self, params: Pairs = ()) -> list[dict[str, str]]:
        response = self.export(params)
        assert response.status_code == 200, response.text
        return list(csv.DictReader(io.StringIO(response.content.decode(), newline="")))

    def ids(self, params: Pairs = ()) -> list[str]:
        return [row["event_id"] for row in self.rows(params)]

    def configure(self, **settings: Any) -> None:
        self.admin.patch("/_sim/config", json=settings).raise_for_status()


@pytest.fixture(scope="module")
def shared() -> Iterator[Client]:
    sim = start_simulator("maxsight", seed=5, events=400, **STORE)
    client = Client(sim)
    yield client
    client.http.close()
    client.admin.close()
    sim.stop()


@pytest.fixture
def client(shared: Client) -> Iterator[Client]:
    """The module's simulator at its default settings again after each test."""
    yield shared
    defaults = dataclasses.asdict(MaxsightSettings(**STORE))
    shared.configure(**{name: defaults[name] for name in CHOICES})


@pytest.fixture
def late_events() -> Iterator[Any]:
    """A factory of simulators whose only events are 3 stamped at ``LATE``."""
    started: list[tuple[RunningSimulator, Client]] = []

    def make(**settings: Any) -> Client:
        sim = start_simulator("maxsight", events=0, instant_events=3, instant_at=LATE, **settings)
        started.append((sim, Client(sim)))
        return started[-1][1]

    yield make
    for sim, made in started:
        made.http.close()
        made.admin.close()
        sim.stop()


def error_source(response: httpx.Response) -> str:
    source: str = response.json()["errors"][0]["source"]
    return source


class TestArrays:
    """DOC: repeated keys; CHOICE: the undocumented bracket form."""

    def test_documented_sample_filters(self, client: Client) -> None:
        everything = client.rows()
        wanted = [r["event_id"] for r in everything if r["event_type"] == "assessment"]

        assert client.ids([("event_type", "assessment")]) == wanted
        assert 0 < len(wanted) < len(everything)

    def test_repeated_keys_are_ored(self, client: Client) -> None:
        everything = client.rows()
        wanted = [r["event_id"] for r in everything if r["event_type"] in {"task", "user"}]

        assert client.ids([("event_type", "task"), ("event_type", "user")]) == wanted

    def test_brackets_accepted_by_default(self, client: Client) -> None:
        repeated = client.ids([("sub_type", "created"), ("sub_type", "login")])

        assert client.ids([("sub_type[]", "created"), ("sub_type[]", "login")]) == repeated

    def test_brackets_ignored_is_a_silently_unfiltered_export(self, client: Client) -> None:
        client.configure(bracket_arrays="ignore")

        assert client.ids([("event_type[]", "task")]) == client.ids()

    def test_brackets_ignored_even_when_strict(self, client: Client) -> None:
        client.configure(bracket_arrays="ignore", unknown_parameters="refuse")

        assert client.ids([("event_type[]", "task")]) == client.ids()
        assert client.export([("page", "2")]).status_code == 400

    def test_brackets_refused(self, client: Client) -> None:
        client.configure(bracket_arrays="refuse")

        refused = client.export([("event_type", "task"), ("event_type[]", "user")])

        assert refused.status_code == 400
        assert error_source(refused) == "event_type[]"
        assert client.ids([("event_type", "task")])  # the documented form still works


class TestUnknownParameters:
    """CHOICE: strict (refuse, the default) or lenient (ignore)."""

    @pytest.mark.parametrize(
        "name",
        ["page", "metadata[colour]", "metadata[]", "event_type[][]", "eventType", "metadata"],
    )
    def test_strict_refuses_naming_it(self, client: Client, name: str) -> None:
        response = client.export([(name, "x")])

        assert response.status_code == 400
        assert error_source(response) == name

    @pytest.mark.parametrize("name", ["page", "metadata[colour]", "eventType"])
    def test_lenient_ignores(self, client: Client, name: str) -> None:
        client.configure(unknown_parameters="ignore")

        assert client.ids([(name, "x"), ("event_type", "task")]) == client.ids(
            [("event_type", "task")]
        )

    def test_metadata_typo_of_the_doc_is_not_the_documented_form(self, client: Client) -> None:
        everything = client.rows()
        entity = next(r["entity_id"] for r in everything if r["entity_id"])
        typo = httpx.QueryParams(f"metadata[entity_id={entity}]")  # as the doc misprints it

        refused = client.http.get(EXPORT, params=typo)
        client.configure(unknown_parameters="ignore")
        ignored = client.http.get(EXPORT, params=typo)

        assert refused.status_code == 400
        assert error_source(refused) == "metadata[entity_id"
        assert ignored.status_code == 200
        assert client.ids([("metadata[entity_id]", entity)]) == [
            r["event_id"] for r in everything if r["entity_id"] == entity
        ]

    @pytest.mark.parametrize("key", METADATA_KEYS)
    def test_every_documented_metadata_key_is_known(self, client: Client, key: str) -> None:
        assert client.export([(f"metadata[{key}]", "no-such-value")]).status_code == 200


class TestParameterErrors:
    """400s naming the parameter (moved from the client's parser tests)."""

    @pytest.mark.parametrize(
        ("params", "source", "words"),
        [
            ([("range_start", "soon")], "range_start", "'soon' is not an ISO-8601 timestamp"),
            ([("locale", "en"), ("locale", "fr")], "locale", "is given more than once"),
            ([("metadata[tag]", "a"), ("metadata[tag]", "b")], "metadata[tag]", "more than once"),
            ([("event_type", "")], "event_type", "has an empty value"),
            ([("file_type", "xlsx")], "file_type", "'xlsx' is not one of csv, pdf"),
            ([("timezone", "Nowhere/City")], "timezone", "is not an IANA time zone"),
            ([("locale", "english language")], "locale", "is not a locale"),
        ],
    )
    def test_named(self, client: Client, params: Pairs, source: str, words: str) -> None:
        response = client.export(params)

        assert response.status_code == 400
        assert error_source(response) == source
        assert words in response.json()["errors"][0]["message"]

    def test_start_after_end_at_microsecond_precision(self, client: Client) -> None:
        response = client.export(
            [("range_start", "2026-10-02T00:00:00.000001Z"), ("range_end", "2026-10-02")]
        )

        assert response.status_code == 400
        assert error_source(response) == "range_end"
        assert "2026-10-02T00:00:00.000001Z" in response.json()["errors"][0]["message"]

    def test_equal_bounds_are_fine(self, client: Client) -> None:
        assert client.export([("range_start", LAST_MS), ("range_end", LAST_MS)]).status_code == 200


class TestMatching:
    """DOC filters: values of one parameter OR, parameters AND; metadata by exact value."""

    def test_and_across_parameters(self, client: Client) -> None:
        everything = client.rows()
        params = [("event_type", "task"), ("system_source", "api"), ("system_source", "web_app")]

        assert client.ids(params) == [
            r["event_id"]
            for r in everything
            if r["event_type"] == "task" and r["system_source"] in {"api", "web_app"}
        ]

    def test_metadata_and_array(self, client: Client) -> None:
        everything = client.rows()
        task = next(r["task_id"] for r in everything if r["task_id"])

        assert client.ids([("metadata[task_id]", task), ("event_type", "task")]) == [
            r["event_id"] for r in everything if r["task_id"] == task and r["event_type"] == "task"
        ]

    def test_values_match_exactly(self, client: Client) -> None:
        assert client.ids([("event_type", "Task")]) == []
        assert client.ids([("event_type", "tas")]) == []


class TestMicroseconds:
    """CHOICE ``timestamp_precision``; DOC: both bounds inclusive, read to the microsecond."""

    def test_late_event_outside_a_millisecond_end(self, late_events: Any) -> None:
        client = late_events(timestamp_precision="us")

        at_ms = client.rows([("range_end", LAST_MS)])
        at_us = client.rows([("range_end", "2026-11-20T23:59:59.999999Z")])

        assert at_ms == []
        assert [r["timestamp"] for r in at_us] == ["2026-11-20T23:59:59.999500+00:00"] * 3

    @pytest.mark.parametrize(
        ("name", "bound", "inside"),
        [
            ("range_start", "2026-11-20T23:59:59.9995Z", True),
            ("range_start", "2026-11-20T23:59:59.999501Z", False),
            ("range_start", "2026-11-20T23:59:59.9994991Z", True),  # rounds up to .999500
            ("range_start", "2026-11-20T23:59:59.9995001Z", False),  # rounds up to .999501
            ("range_end", "2026-11-20T23:59:59.999500Z", True),
            ("range_end", "2026-11-20T23:59:59.9995009Z", True),  # rounds down to .999500
            ("range_end", "2026-11-20T23:59:59.999499Z", False),
            ("range_end", "2026-11-21T00:59:59.9995+01:00", True),
        ],
    )
    def test_bounds_are_exact(self, late_events: Any, name: str, bound: str, inside: bool) -> None:
        client = late_events(timestamp_precision="us")

        assert len(client.rows([(name, bound)])) == (3 if inside else 0)

    def test_millisecond_stamping_truncates(self, late_events: Any) -> None:
        client = late_events()

        rows = client.rows([("range_start", LAST_MS), ("range_end", LAST_MS)])

        assert [r["timestamp"] for r in rows] == ["2026-11-20T23:59:59.999+00:00"] * 3

    def test_uniform_events_carry_microseconds(self, client: Client) -> None:
        client.configure(timestamp_precision="us")

        stamps = [r["timestamp"] for r in client.rows()]

        assert all(len(s) == len("2026-10-01T00:00:00.000000+00:00") for s in stamps)
        assert sum(not s.endswith("000+00:00") for s in stamps) > len(stamps) // 2

    def test_locales_render_microseconds(self, late_events: Any) -> None:
        client = late_events(timestamp_precision="us")

        german = client.rows([("locale", "de"), ("timezone", "Europe/Berlin")])

        assert german[0]["timestamp"] == "21.11.2026 00:59:59,999500 +01:00"


class TestOtherChoices:
    def test_error_body_text(self, client: Client) -> None:
        client.configure(error_body="text")

        response = client.export([("page", "2")])

        assert response.status_code == 400
        assert response.headers["content-type"].startswith("text/plain")
        assert response.text == "page: is not a parameter of the audit events export"

    def test_error_body_empty(self, client: Client) -> None:
        client.configure(error_body="empty")

        response = client.export([("page", "2")])

        assert (response.status_code, response.content) == (400, b"")

    def test_descending_order(self, client: Client) -> None:
        ascending = client.ids()
        client.configure(event_order="descending")

        assert client.ids() == ascending[::-1]

    def test_no_rate_headers(self, client: Client) -> None:
        client.configure(rate_limit_headers=False)

        response = client.export()

        assert response.status_code == 200
        assert "X-RateLimit-Remaining" not in response.headers
        assert "X-RateLimit-Reset-Secs" not in response.headers

    @pytest.mark.parametrize("retry_after", [True, False])
    def test_retry_after_on_a_429(self, client: Client, retry_after: bool) -> None:
        client.configure(retry_after=retry_after)
        client.admin.post("/_sim/faults", json={"kind": "rate_limit", "retry_after": 3})

        response = client.export()

        assert response.status_code == 429
        assert ("Retry-After" in response.headers) is retry_after
        assert response.headers["X-RateLimit-Remaining"] == "0"

    @pytest.mark.parametrize(("name", "value"), [("bracket_arrays", "drop"), ("error_body", 1)])
    def test_choices_are_checked(self, name: str, value: Any) -> None:
        with pytest.raises(ValueError, match=name):
            MaxsightSettings(**{name: value})


class TestHostile:
    def test_covers_every_choice_with_an_allowed_value(self) -> None:
        assert set(HOSTILE) == set(CHOICES)
        assert all(HOSTILE[name] in allowed for name, allowed in CHOICES.items())
        MaxsightSettings(**HOSTILE)

    def test_documented_requests_work(self, client: Client) -> None:
        client.configure(**HOSTILE)
        everything = client.rows()
        params = [
            ("event_type", "task"),
            ("event_type", "user"),
            ("range_start", "2026-10-05T00:00:00.000Z"),
            ("range_end", "2026-10-20T23:59:59.999Z"),
            ("timezone", "Europe/London"),
            ("locale", "en"),
        ]

        rows = client.rows(params)
        pdf = client.export([*params, ("file_type", "pdf")])

        assert {r["event_id"] for r in rows} == {
            r["event_id"]
            for r in everything
            if r["event_type"] in {"task", "user"}
            and "2026-10-05" <= r["timestamp"][:10] <= "2026-10-20"
        }
        assert rows
        assert (pdf.status_code, pdf.headers["content-type"]) == (200, "application/pdf")

    def test_undocumented_brackets_go_unfiltered(self, client: Client) -> None:
        client.configure(**HOSTILE)

        assert len(client.rows([("event_type[]", "task")])) == len(client.rows())
