"""The Oleria simulator's filtering and sorting over HTTP, against reference Python.

Each test exports accessInventoryIdentitiesV2 with a filter or sort, downloads the CSV
and compares it with the dataset's rows selected (or ordered) by a predicate written
here from VENDOR_APIS.md, not by the simulator's code. DOC: filters are AND-combined,
sortBy is ``{field, sortType: asc|desc}``, ``last`` takes one duration. The rest is the
simulator's CHOICE (see include/simulators/oleria_query.py): nulls match only
``isNull`` and sort last ascending / first descending; ``contains`` ignores case.
"""

from __future__ import annotations

import datetime as dt
import json
import operator
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from include.simulators import RunningSimulator, clock, start_simulator
from include.simulators.data import oleria_dataset, render_value
from tests.simulators.test_oleria import OleriaApi, parse_csv

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SEED = 77
ROWS = 1500
CONTEXT = "accessInventoryIdentitiesV2"
DATASET = oleria_dataset(CONTEXT)
ALL_ROWS = list(DATASET.rows(SEED, ROWS))
Row = dict[str, Any]


def median_instant(field: str) -> dt.datetime:
    values = sorted(row[field] for row in ALL_ROWS if row[field] is not None)
    instant: dt.datetime = values[len(values) // 2]
    return instant


MIDDLE = median_instant("createdAt")
MIDDLE_TEXT = MIDDLE.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
EARLY = MIDDLE - dt.timedelta(days=60)
EARLY_TEXT = EARLY.isoformat()
ROW0 = ALL_ROWS[0]["createdAt"]


@pytest.fixture(scope="module")
def oleria() -> Iterator[RunningSimulator]:
    sim = start_simulator("oleria", seed=SEED, rows=ROWS, latency=0)
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def session(oleria: RunningSimulator) -> Iterator[OleriaApi]:
    with httpx.Client(base_url=oleria.base_url, timeout=30) as http:
        yield OleriaApi(oleria, http)


@pytest.fixture
def api(session: OleriaApi) -> Iterator[OleriaApi]:
    defaults = session.admin("GET", "/config").json()
    yield session
    session.configure(**defaults)


def exported(api: OleriaApi, **params: Any) -> list[dict[str, str]]:
    return parse_csv(api.download(api.export(**params)["url"]).text)


def rendered(rows: list[Row]) -> list[dict[str, str]]:
    return [{k: render_value(v) for k, v in row.items()} for row in rows]


def selected(keep: Callable[[Row], bool]) -> list[dict[str, str]]:
    return rendered([row for row in ALL_ROWS if keep(row)])


def entry(data_type: str, field: str, filter_type: str, *values: Any) -> dict[str, Any]:
    return {"dataType": data_type, "field": field, "filterType": filter_type, "values": [*values]}


def present(field: str, test: Callable[[Any], bool]) -> Callable[[Row], bool]:
    """Reference: a non-null ``field`` passing ``test`` (DOC-independent CHOICE: nulls fail)."""
    return lambda row: row[field] is not None and test(row[field])


# --------------------------------------------------------------------------- operators

CASES: list[tuple[str, dict[str, Any], Callable[[Row], bool]]] = [
    # string
    (
        "s-eq",
        entry("string", "department", "eq", "Finance"),
        present("department", "Finance".__eq__),
    ),
    ("s-eq-case", entry("string", "department", "eq", "finance"), lambda r: False),
    (
        "s-ne",
        entry("string", "department", "ne", "Finance"),
        present("department", "Finance".__ne__),
    ),
    (
        "s-in",
        entry("string", "department", "in", "Finance", "Legal"),
        present("department", lambda v: v in {"Finance", "Legal"}),
    ),
    (
        "s-notIn",
        entry("string", "department", "notIn", "Finance", "Legal"),
        present("department", lambda v: v not in {"Finance", "Legal"}),
    ),
    (
        "s-contains-any-case",
        entry("string", "identityName", "contains", "SVC-"),
        present("identityName", lambda v: "svc-" in v.lower()),
    ),
    (
        "s-notContains",
        entry("string", "identityName", "notContains", "Svc"),
        present("identityName", lambda v: "svc" not in v.lower()),
    ),
    (
        "s-matches",
        entry("string", "applicationInstance", "matches", "-(eu|us)-prod$"),
        present("applicationInstance", lambda v: re.search("-(eu|us)-prod$", v) is not None),
    ),
    ("s-isNull", entry("string", "department", "isNull"), lambda r: r["department"] is None),
    (
        "s-isNotNull",
        entry("string", "accountEmail", "isNotNull"),
        lambda r: r["accountEmail"] is not None,
    ),
    (
        "s-on-a-number-column",
        entry("string", "assignedRolesCount", "eq", "10"),
        lambda r: r["assignedRolesCount"] == 10,
    ),
    # number
    (
        "n-eq",
        entry("number", "assignedRolesCount", "eq", 10),
        lambda r: r["assignedRolesCount"] == 10,
    ),
    (
        "n-eq-text",
        entry("number", "assignedRolesCount", "eq", "10.0"),
        lambda r: r["assignedRolesCount"] == 10,
    ),
    (
        "n-ne",
        entry("number", "assignedRolesCount", "ne", 10),
        lambda r: r["assignedRolesCount"] != 10,
    ),
    ("n-gt", entry("number", "dormantDays", "gt", 200), present("dormantDays", lambda v: v > 200)),
    (
        "n-gte",
        entry("number", "dormantDays", "gte", 200),
        present("dormantDays", lambda v: v >= 200),
    ),
    ("n-lt", entry("number", "dormantDays", "lt", 30), present("dormantDays", lambda v: v < 30)),
    ("n-lte", entry("number", "dormantDays", "lte", 30), present("dormantDays", lambda v: v <= 30)),
    (
        "n-between-inclusive",
        entry("number", "assignedRolesCount", "between", 5, 9),
        lambda r: 5 <= r["assignedRolesCount"] <= 9,
    ),
    (
        "n-in",
        entry("number", "assignedRolesCount", "in", 1, "2", 3.0),
        lambda r: r["assignedRolesCount"] in {1, 2, 3},
    ),
    (
        "n-notIn",
        entry("number", "dormantDays", "notIn", 0, 1),
        present("dormantDays", lambda v: v not in {0, 1}),
    ),
    ("n-isNull", entry("number", "dormantDays", "isNull"), lambda r: r["dormantDays"] is None),
    ("n-on-a-text-column", entry("number", "department", "gt", 1), lambda r: False),
    (
        "n-isNotNull-on-a-text-column",
        entry("number", "department", "isNotNull"),
        lambda r: r["department"] is not None,
    ),
    # boolean
    ("b-eq", entry("boolean", "isAdmin", "eq", True), lambda r: r["isAdmin"] is True),
    ("b-eq-text", entry("boolean", "isAdmin", "eq", "FALSE"), lambda r: r["isAdmin"] is False),
    ("b-ne", entry("boolean", "isAdmin", "ne", "true"), lambda r: r["isAdmin"] is False),
    # timestamp
    ("t-gt", entry("timestamp", "createdAt", "gt", MIDDLE_TEXT), lambda r: r["createdAt"] > MIDDLE),
    (
        "t-gte",
        entry("timestamp", "createdAt", "gte", MIDDLE_TEXT),
        lambda r: r["createdAt"] >= MIDDLE,
    ),
    ("t-lt", entry("timestamp", "createdAt", "lt", MIDDLE_TEXT), lambda r: r["createdAt"] < MIDDLE),
    (
        "t-lte",
        entry("timestamp", "createdAt", "lte", MIDDLE_TEXT),
        lambda r: r["createdAt"] <= MIDDLE,
    ),
    (
        "t-eq-other-offset",
        entry(
            "timestamp",
            "createdAt",
            "eq",
            ROW0.astimezone(dt.timezone(dt.timedelta(hours=2))).isoformat(),
        ),
        lambda r: r["createdAt"] == ROW0,
    ),
    (
        "t-ne",
        entry("timestamp", "createdAt", "ne", ROW0.isoformat()),
        lambda r: r["createdAt"] != ROW0,
    ),
    (
        "t-between-inclusive",
        entry("timestamp", "createdAt", "between", EARLY_TEXT, MIDDLE_TEXT),
        lambda r: EARLY <= r["createdAt"] <= MIDDLE,
    ),
    (
        "t-naive-is-utc",
        entry("timestamp", "createdAt", "lt", MIDDLE.replace(tzinfo=None).isoformat()),
        lambda r: r["createdAt"] < MIDDLE,
    ),
    ("t-isNull", entry("timestamp", "lastLoginAt", "isNull"), lambda r: r["lastLoginAt"] is None),
    (
        "t-isNotNull",
        entry("timestamp", "lastLoginAt", "isNotNull"),
        lambda r: r["lastLoginAt"] is not None,
    ),
    # enum
    ("e-eq", entry("enum", "identityType", "eq", "human"), lambda r: r["identityType"] == "human"),
    ("e-ne", entry("enum", "identityType", "ne", "human"), lambda r: r["identityType"] != "human"),
    (
        "e-in",
        entry("enum", "identityType", "in", "nonHuman", "serviceAccount"),
        lambda r: r["identityType"] in {"nonHuman", "serviceAccount"},
    ),
    (
        "e-notIn",
        entry("enum", "identityType", "notIn", "human"),
        lambda r: r["identityType"] != "human",
    ),
]
EMPTY_BY_DESIGN = {"s-eq-case", "n-on-a-text-column"}


class TestOperators:
    @pytest.mark.parametrize(("name", "filter_entry", "keep"), CASES, ids=[c[0] for c in CASES])
    def test_operator_keeps_exactly_the_reference_rows(
        self, api: OleriaApi, name: str, filter_entry: dict[str, Any], keep: Callable[[Row], bool]
    ) -> None:
        expected = selected(keep)
        assert exported(api, filterBy=[filter_entry]) == expected
        if name in EMPTY_BY_DESIGN:
            assert expected == []
        else:  # the case discriminates: some rows pass, some do not
            assert 0 < len(expected) < ROWS

    def test_filters_are_and_combined(self, api: OleriaApi) -> None:
        filter_by = [
            entry("enum", "identityType", "eq", "human"),
            entry("number", "assignedGroupsCount", "gte", 60),
            entry("string", "department", "isNotNull"),
        ]
        expected = selected(
            lambda r: (
                r["identityType"] == "human"
                and r["assignedGroupsCount"] >= 60
                and r["department"] is not None
            )
        )
        assert 0 < len(expected) < len(selected(lambda r: r["identityType"] == "human"))
        assert exported(api, filterBy=filter_by) == expected

    def test_a_field_the_context_lacks_is_null_when_strict_fields_is_off(
        self, api: OleriaApi
    ) -> None:
        api.configure(strict_fields=False)
        assert exported(api, filterBy=[entry("string", "nope", "eq", "x")]) == []
        assert len(exported(api, filterBy=[entry("string", "nope", "isNull")])) == ROWS


_NUMBER_OPS = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    filter_type=st.sampled_from(sorted(_NUMBER_OPS)),
    threshold=st.integers(-5, 405),
    as_text=st.booleans(),
)
def test_number_filters_agree_with_python(
    session: OleriaApi, filter_type: str, threshold: int, as_text: bool
) -> None:
    """A nullable number column: nulls never pass a comparison (CHOICE)."""
    value: Any = str(threshold) if as_text else threshold
    compare = _NUMBER_OPS[filter_type]
    got = exported(session, filterBy=[entry("number", "dormantDays", filter_type, value)])
    assert got == selected(present("dormantDays", lambda v: compare(v, threshold)))


# --------------------------------------------------------------------------- last


def data_now_of(api: OleriaApi, download_id: str) -> dt.datetime:
    return dt.datetime.fromisoformat(api.facts(download_id)["data_now"])


class TestLast:
    @pytest.mark.parametrize(
        ("field", "duration", "window"),
        [
            ("createdAt", "30d", dt.timedelta(days=30)),
            ("createdAt", "2w", dt.timedelta(weeks=2)),
            ("createdAt", "240h", dt.timedelta(hours=240)),
            ("createdAt", "43200m", dt.timedelta(minutes=43200)),
            ("lastLoginAt", "365d", dt.timedelta(days=365)),
        ],
    )
    def test_last_keeps_the_window_ending_at_the_data_now(
        self, api: OleriaApi, field: str, duration: str, window: dt.timedelta
    ) -> None:
        done = api.export(filterBy=[entry("timestamp", field, "last", duration)])
        now = data_now_of(api, done["id"])
        got = parse_csv(api.download(done["url"]).text)
        expected = selected(present(field, lambda v: now - window <= v <= now))
        assert got == expected
        assert expected

    def test_data_now_is_the_wall_clock_shifted_to_sim_today(self, api: OleriaApi) -> None:
        """CHOICE: data-now = wall clock + (SIM_TODAY - the real UTC date), not DATA_ANCHOR."""
        before = dt.datetime.now(dt.UTC)
        done = api.export()
        after = dt.datetime.now(dt.UTC)
        shift = dt.timedelta(days=(clock.today() - before.date()).days)
        assert before + shift <= data_now_of(api, done["id"]) <= after + shift

    def test_a_future_instant_is_outside_last(self, api: OleriaApi) -> None:
        """lastLoginAt can lie after the data's now: ``last`` ends at now."""
        done = api.export(filterBy=[entry("timestamp", "lastLoginAt", "last", "3650d")])
        now = data_now_of(api, done["id"])
        got = parse_csv(api.download(done["url"]).text)
        assert len(got) == len(selected(present("lastLoginAt", lambda v: v <= now)))


class Cli:
    """``python -m include.simulators`` in a subprocess with its own SIM_TODAY."""

    def __init__(self, sim_today: dt.date, *args: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", clock.TODAY_ENV: sim_today.isoformat()}
        command = [sys.executable, "-m", "include.simulators", "--vendor", "oleria", *args]
        self.process = subprocess.Popen(
            [*command, "--port-base", "0"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def connection(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line and self.process.poll() is not None:
                raise AssertionError(f"simulator exited {self.process.returncode}")
            if line.startswith("export AIRFLOW_CONN_OLERIA_DEFAULT="):
                connection: dict[str, Any] = json.loads(line.partition("=")[2].strip().strip("'"))
                return connection
        raise AssertionError("simulator did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def test_last_finds_the_recent_rows_with_sim_today_a_year_ahead() -> None:
    """With SIM_TODAY a year ahead the data moves a year ahead; ``last 7d`` follows it."""
    ahead = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=365)
    cli = Cli(ahead, "--set", "oleria.rows=3000", "--set", "oleria.latency=0")
    try:
        connection = cli.connection()
        with httpx.Client(base_url=connection["host"], timeout=30) as http:
            sim = RunningSimulator(
                "oleria",
                connection["host"],
                {"login": connection["login"], "password": connection["password"]},
                connection["extra"],
            )
            api = OleriaApi(sim, http)
            done = api.export(filterBy=[entry("timestamp", "createdAt", "last", "7d")])
            now = data_now_of(api, done["id"])
            recent = parse_csv(api.download(done["url"]).text)
            everything = parse_csv(api.download(api.export()["url"]).text)
    finally:
        cli.stop()
    wall = dt.datetime.now(dt.UTC)
    assert abs(now - (wall + dt.timedelta(days=365))) < dt.timedelta(minutes=5)
    assert recent
    assert all(
        stamp(row) >= dt.datetime.combine(ahead, dt.time(), dt.UTC) - dt.timedelta(days=8)
        for row in recent
    )
    assert recent == [r for r in everything if now - dt.timedelta(days=7) <= stamp(r) <= now]


def stamp(row: dict[str, str]) -> dt.datetime:
    return dt.datetime.fromisoformat(row["createdAt"])


# --------------------------------------------------------------------------- sorting


def nulls_last(field: str, *, descending: bool) -> list[Row]:
    """Reference CHOICE: nulls last ascending, first descending; ties keep row order."""
    values = [row for row in ALL_ROWS if row[field] is not None]
    nulls = [row for row in ALL_ROWS if row[field] is None]
    ordered = sorted(values, key=lambda row: row[field], reverse=descending)
    return nulls + ordered if descending else ordered + nulls


class TestSorting:
    @pytest.mark.parametrize("field", ["dormantDays", "department", "lastLoginAt"])
    @pytest.mark.parametrize("sort_type", ["asc", "desc"])
    def test_one_key_with_nulls(self, api: OleriaApi, field: str, sort_type: str) -> None:
        got = exported(api, sortBy=[{"field": field, "sortType": sort_type}])
        assert got == rendered(nulls_last(field, descending=sort_type == "desc"))
        assert got[0 if sort_type == "desc" else -1][field] == ""

    def test_first_key_is_most_significant_and_ties_keep_row_order(self, api: OleriaApi) -> None:
        sort_by = [
            {"field": "application", "sortType": "asc"},
            {"field": "isAdmin", "sortType": "desc"},
            {"field": "assignedRolesCount", "sortType": "asc"},
        ]
        expected = sorted(
            ALL_ROWS,
            key=lambda r: (r["application"], not r["isAdmin"], r["assignedRolesCount"]),
        )
        assert exported(api, sortBy=sort_by) == rendered(expected)

    def test_sorting_applies_after_filtering(self, api: OleriaApi) -> None:
        filter_by = [entry("enum", "identityType", "ne", "human")]
        sort_by = [{"field": "createdAt", "sortType": "desc"}]
        kept = [r for r in ALL_ROWS if r["identityType"] != "human"]
        expected = sorted(kept, key=lambda r: r["createdAt"], reverse=True)
        assert exported(api, filterBy=filter_by, sortBy=sort_by) == rendered(expected)
