"""The Veza simulator's SCIM filters over real HTTP (scim2-filter-parser underneath).

Each filter is sent in an ``access_review:create``; the downloaded CSV must hold exactly
the rows a plain-Python reading of the same filter selects from the generated data.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from include.simulators import RunningSimulator, start_simulator
from include.simulators.data import VEZA_ACCESS_REVIEW, Row

pytestmark = pytest.mark.integration

SEED = 77
ROWS = 120
CERT = "cert-scim"
PREFIX = "/api/preview/awf/exports/access_review"


@pytest.fixture(scope="module")
def veza() -> Iterator[RunningSimulator]:
    sim = start_simulator("veza", seed=SEED, rows=ROWS, latency=0.05)
    yield sim
    sim.stop()


@pytest.fixture
def http(veza: RunningSimulator) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {veza.credentials['password']}"}
    with httpx.Client(base_url=veza.base_url, headers=headers, timeout=30) as client:
        defaults = client.get("/_sim/config").json()
        yield client
        client.patch("/_sim/config", json=defaults).raise_for_status()


def create(http: httpx.Client, **fields: Any) -> httpx.Response:
    return http.post(f"{PREFIX}:create", json={"format": 0, "certification_id": CERT, **fields})


def exported_ids(http: httpx.Client, **fields: Any) -> list[str]:
    """Run an export to FINISHED and return the result_id column of its CSV."""
    answer = create(http, **fields)
    assert answer.status_code == 200, answer.text
    export_id = answer.json()["value"]["id"]
    deadline = time.monotonic() + 20
    while http.get(f"{PREFIX}/{export_id}").json()["value"]["status"] != "FINISHED":
        assert time.monotonic() < deadline, "export did not finish"
        time.sleep(0.02)
    text = http.get(f"{PREFIX}/{export_id}:download").raise_for_status().text
    return [row["result_id"] for row in csv.DictReader(io.StringIO(text, newline=""))]


def expected_ids(where: Callable[[Row], bool]) -> list[str]:
    rows = VEZA_ACCESS_REVIEW.rows(SEED, ROWS, variant=CERT)
    return [row["result_id"] for row in rows if where(row)]


def text(row: Row, name: str) -> str:
    value = row[name]
    return "" if value is None else str(value).lower()


ROW0 = next(VEZA_ACCESS_REVIEW.rows(SEED, 1, variant=CERT))
NAME0 = ROW0["source.name"]

FILTERS: list[tuple[str, Callable[[Row], bool]]] = [
    ('source.type eq "oktauser"', lambda r: r["source.type"] == "OktaUser"),  # ignores case
    ('source.department ne "Sales"', lambda r: r["source.department"] != "Sales"),
    ('source.email co "@CORP."', lambda r: "@corp." in text(r, "source.email")),
    ('destination.name sw "admin"', lambda r: r["destination.name"].startswith("admin")),
    ('source.email ew "@example.com"', lambda r: text(r, "source.email").endswith("@example.com")),
    ('source.name gt "m"', lambda r: r["source.name"].casefold() > "m"),
    (f'source.name ge "{NAME0}"', lambda r: r["source.name"].casefold() >= NAME0.casefold()),
    ('source.name lt "d"', lambda r: r["source.name"].casefold() < "d"),
    (f'source.name le "{NAME0}"', lambda r: r["source.name"].casefold() <= NAME0.casefold()),
    ("source.manager pr", lambda r: r["source.manager"] not in (None, "")),
    ("source.department eq null", lambda r: r["source.department"] is None),
    ("source.is_active eq false", lambda r: r["source.is_active"] is False),
    ('source.is_active eq "TRUE"', lambda r: r["source.is_active"] is True),  # the CSV text
    (
        'source.is_active eq true and not (source.type eq "OktaUser")',
        lambda r: r["source.is_active"] and r["source.type"] != "OktaUser",
    ),
    (  # RFC 7644: "and" binds tighter than "or" (the library alone reads it the other way)
        'source.type eq "OktaUser" or source.type eq "LocalUser" and source.is_active eq false',
        lambda r: (
            r["source.type"] == "OktaUser"
            or (r["source.type"] == "LocalUser" and not r["source.is_active"])
        ),
    ),
    (
        'source.is_active eq false and source.type eq "OktaUser" or source.type eq "LocalUser"',
        lambda r: (
            (not r["source.is_active"] and r["source.type"] == "OktaUser")
            or r["source.type"] == "LocalUser"
        ),
    ),
    (
        '(source.type eq "OktaUser" or source.type eq "LocalUser") and source.is_active eq false',
        lambda r: r["source.type"] in {"OktaUser", "LocalUser"} and not r["source.is_active"],
    ),
    (
        'not (source.manager pr or source.department pr) or destination.type eq "S3Bucket"',
        lambda r: (
            (r["source.manager"] is None and r["source.department"] is None)
            or r["destination.type"] == "S3Bucket"
        ),
    ),
    (
        'Source.Type EQ "OktaUser" AND source.is_active Eq true',
        lambda r: r["source.type"] == "OktaUser" and r["source.is_active"] is True,
    ),
]


@pytest.mark.parametrize(("scim", "where"), FILTERS, ids=[f for f, _ in FILTERS])
def test_filter_selects_the_documented_rows(
    http: httpx.Client, scim: str, where: Callable[[Row], bool]
) -> None:
    expected = expected_ids(where)
    assert 0 < len(expected) < ROWS  # the filter really selects
    assert exported_ids(http, filter=scim) == expected


MUTABLE_FILTERS: list[tuple[str, Callable[[Row], bool]]] = [
    ("notes pr", lambda r: r["notes"] not in (None, "")),
    ('decision ne "RESULT_DECISION_NONE"', lambda r: r["decision"] != "RESULT_DECISION_NONE"),
    (
        'signed_off_state eq "SIGNED_OFF" and decision eq "result_decision_accepted"',
        lambda r: (
            r["signed_off_state"] == "SIGNED_OFF" and r["decision"] == "RESULT_DECISION_ACCEPTED"
        ),
    ),
    ('reviewers co "corp"', lambda r: "corp" in r["reviewers"]),
]


@pytest.mark.parametrize(("scim", "where"), MUTABLE_FILTERS, ids=[f for f, _ in MUTABLE_FILTERS])
def test_mutable_filter_selects_the_documented_rows(
    http: httpx.Client, scim: str, where: Callable[[Row], bool]
) -> None:
    expected = expected_ids(where)
    assert 0 < len(expected) < ROWS
    assert exported_ids(http, mutable_filter=scim) == expected


def test_filter_and_mutable_filter_both_apply(http: httpx.Client) -> None:
    def both(row: Row) -> bool:
        return row["source.is_active"] is True and row["notes"] is not None

    expected = expected_ids(both)
    assert 0 < len(expected) < ROWS
    assert exported_ids(http, filter="source.is_active eq true", mutable_filter="notes pr") == (
        expected
    )


def test_a_number_never_matches_a_text_column(http: httpx.Client) -> None:
    assert exported_ids(http, filter="destination.datasource_id eq 5") == []


def test_case_exact_is_switchable(http: httpx.Client) -> None:
    http.patch("/_sim/config", json={"scim_case_exact": True}).raise_for_status()
    assert exported_ids(http, filter='source.type eq "oktauser"') == []
    exact = expected_ids(lambda r: r["source.type"] == "OktaUser")
    assert exported_ids(http, filter='source.type eq "OktaUser"') == exact


REFUSED: list[tuple[str, str]] = [
    ("filter", 'source.name regex "a"'),  # not an operator
    ("filter", 'source.name eq "a" and'),  # cut short
    ("filter", 'source.name eq "unterminated'),
    ("filter", ""),
    ("filter", "(source.name pr"),
    ("filter", "not source.name pr"),  # RFC: not ( ... )
    ("filter", "source.name eq TRUE"),  # JSON literals are lower case
    ("filter", "source.name eq 10"),  # scim2-filter-parser reads single-digit numbers only
    ("filter", 'emails[type eq "work"]'),  # value paths
    ("filter", 'source.is_active gt "a"'),  # RFC 7644: booleans have no order
    ("filter", "source.name gt true"),
    ("filter", "source.name co 1"),
    ("filter", 'source.shoe_size eq "x"'),  # not a column
    ("filter", 'decision eq "RESULT_DECISION_NONE"'),  # not a source./destination. field
    ("filter", 42),
    ("mutable_filter", 'source.name eq "a"'),
    ("mutable_filter", 'decision eq "MAYBE"'),
    ("mutable_filter", 'notes regex "x"'),
]


@pytest.mark.parametrize(("field", "value"), REFUSED, ids=[f"{f}={v}" for f, v in REFUSED])
def test_refused_filters_are_invalid_argument(http: httpx.Client, field: str, value: Any) -> None:
    answer = create(http, **{field: value})
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert set(body) == {"code", "message", "details"}
    assert (body["code"], body["details"]) == (3, [])
    assert body["message"].startswith(f"{field}: ")
