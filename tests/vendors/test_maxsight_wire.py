"""Any query the client builds, sent in its default encoding, is read right by the simulator.

The simulator runs strict (unknown parameters refused) with the undocumented bracket
form refused, so a client that strays from the documented request fails here; the rows
it answers are checked against the whole store filtered in the test (a third reading).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compliance_exports.vendors.maxsight.query import AuditExportQuery
from include.simulators import RunningSimulator, start_simulator

pytestmark = pytest.mark.integration

EXPORT = "/v5/audit-sentinel/events/export"
STRICT = {"unknown_parameters": "refuse", "bracket_arrays": "refuse"}
ARRAYS = ("auditee_id", "event_type", "sub_type", "system_source")
METADATA_COLUMNS = ("entity_id", "assessment_id", "task_id", "workflow_instance_id")
Rows = list[dict[str, str]]


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    running = start_simulator(
        "maxsight",
        seed=21,
        events=400,
        store_start="2026-10-01T00:00:00.000Z",
        store_end="2026-10-07T23:59:59.999Z",
        **STRICT,
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def http(sim: RunningSimulator) -> Iterator[httpx.Client]:
    headers = {"apikey": sim.credentials["password"]}
    with httpx.Client(base_url=sim.base_url, headers=headers, timeout=30) as client:
        yield client


def rows_of(response: httpx.Response) -> Rows:
    assert response.status_code == 200, response.text
    return list(csv.DictReader(io.StringIO(response.content.decode(), newline="")))


@pytest.fixture(scope="module")
def everything(http: httpx.Client) -> Rows:
    return rows_of(http.get(EXPORT))


def instant(row: dict[str, str]) -> dt.datetime:
    return dt.datetime.fromisoformat(row["timestamp"])


@st.composite
def client_queries(draw: st.DrawFn, rows: Rows) -> AuditExportQuery:
    """Queries over values the store holds, plus values it does not."""
    arrays = {
        name: tuple(draw(st.lists(st.sampled_from([*{r[name] for r in rows}, "none"]), max_size=3)))
        for name in ARRAYS
    }
    keys = draw(st.lists(st.sampled_from(METADATA_COLUMNS), max_size=1, unique=True))
    metadata = {key: draw(st.sampled_from([r[key] for r in rows if r[key]])) for key in keys}
    start, end = sorted(draw(st.sampled_from([instant(r) for r in rows])) for _ in range(2))
    return AuditExportQuery(
        range_start=draw(st.none() | st.just(start)),
        range_end=draw(st.none() | st.just(end)),
        metadata=metadata,
        locale=draw(st.sampled_from(["en", "de", "fr-FR"])),
        timezone=draw(st.none() | st.sampled_from(["UTC", "Asia/Tokyo"])),
        **arrays,
    )


def selected(rows: Rows, query: AuditExportQuery) -> list[str]:
    def keep(row: dict[str, str]) -> bool:
        when = instant(row)
        return (
            all(not getattr(query, n) or row[n] in getattr(query, n) for n in ARRAYS)
            and all(row[k] == v for k, v in query.metadata.items())
            and (query.range_start is None or when >= query.range_start)
            and (query.range_end is None or when <= query.range_end)
        )

    return [row["event_id"] for row in rows if keep(row)]


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_default_request_is_accepted_and_filtered(
    http: httpx.Client, everything: Rows, data: st.DataObject
) -> None:
    query = data.draw(client_queries(everything))

    rows = rows_of(http.get(EXPORT, params=query.to_params()))

    assert [row["event_id"] for row in rows] == selected(everything, query)


def test_the_bracket_form_is_what_the_strict_simulator_refuses(http: httpx.Client) -> None:
    query = AuditExportQuery(event_type=("task",))

    assert http.get(EXPORT, params=query.to_params()).status_code == 200
    brackets = [(f"{k}[]" if k == "event_type" else k, v) for k, v in query.to_params()]
    assert http.get(EXPORT, params=brackets).status_code == 400
