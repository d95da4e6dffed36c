"""Which 400 of a Maxsight PDF request is the 5,000-event limit (VENDOR_APIS.md section 4).

A PDF over the limit fails with 400 (DOC), so does ``range_start`` after ``range_end``
(DOC), and the error body is unpublished: the simulator's ``error_body`` CHOICE answers
with a JSON envelope, bare text or no body at all. The client must bisect a window
refused for the limit under every one of them, and must not bisect any other 400.
Direct tests of :func:`is_pdf_limit_refusal` first, then the same over HTTP.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import pickle
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest

from compliance_exports.core.errors import ExportValidationError
from compliance_exports.core.http import ApiCall, VendorResponseError, VendorRetryableError
from compliance_exports.vendors.maxsight.audit import (
    Window,
    counting_query,
    plan_pdf_windows,
    read_counting_csv,
)
from compliance_exports.vendors.maxsight.audit.window import format_ms, parse_ms
from compliance_exports.vendors.maxsight.hook import MaxsightHook
from compliance_exports.vendors.maxsight.pdfs import (
    MaxsightAuditPdfsToS3Operator,
    PdfLimitRefusedError,
    is_pdf_limit_refusal,
)
from compliance_exports.vendors.maxsight.query import AuditExportQuery
from include.simulators import RunningSimulator
from include.simulators.maxsight import CHOICES, EXPORT_PATH
from tests.audit.simulated_pdfs import (
    AROUND_THE_DAY,
    DAY,
    DAY_END,
    DAY_START,
    configure,
    maxsight_simulators,
    pdf_event_ids,
)
from tests.conftest import LocalS3

ERROR_BODIES: tuple[str, ...] = CHOICES["error_body"]
WHERE = "maxsight GET /v5/audit-sentinel/events/export answered 400"


def answer(vendor_message: str, status: int = 400) -> VendorResponseError:
    """The error the transport raises for an answer whose body said ``vendor_message``."""
    where = WHERE.replace("400", str(status))
    message = f"{where}: {vendor_message}" if vendor_message else where
    return VendorResponseError(message, status_code=status, vendor_message=vendor_message)


# What a 400 over the limit says in each error_body shape, as the hook parses it.
LIMIT_JSON = (
    "pdf_event_limit: The export selects 6200 events; a PDF holds at most 5000. "
    "Use file_type=csv or narrow the filters. (file_type)"
)
LIMIT_TEXT = "The export selects 6200 events; a PDF holds at most 5000."
REVERSED = (
    "invalid_parameter: range_end 2026-11-20T00:00:00.000Z is before range_start "
    "2026-11-20T23:59:59.999Z (range_end)"
)


# --------------------------------------------------------------------------- the classifier


class TestIsPdfLimitRefusal:
    @pytest.mark.parametrize("message", [LIMIT_JSON, LIMIT_TEXT, "Too many events for a PDF"])
    def test_a_400_that_speaks_of_the_limit(self, message: str) -> None:
        assert is_pdf_limit_refusal(answer(message))

    @pytest.mark.parametrize(
        "message",
        [
            "",  # error_body "empty": nothing to read
            "Bad Request",
            REVERSED,  # the other documented 400
            "invalid_parameter: 'colour' is not a parameter of the audit events export",
        ],
    )
    def test_without_a_count_a_400_that_does_not_say_so_is_not(self, message: str) -> None:
        assert not is_pdf_limit_refusal(answer(message))

    @pytest.mark.parametrize("message", ["", "Bad Request", LIMIT_TEXT, REVERSED])
    def test_a_count_over_the_limit_decides_whatever_the_body(self, message: str) -> None:
        # parameters validated and range_start <= range_end checked by the client: a 400
        # for a PDF whose window counts over the limit can only be the limit
        assert is_pdf_limit_refusal(answer(message), events=5001)
        assert not is_pdf_limit_refusal(answer(message), events=5000)
        assert not is_pdf_limit_refusal(answer(message), events=0)

    def test_the_limit_can_be_lowered_for_a_simulator(self) -> None:
        assert is_pdf_limit_refusal(answer(""), events=101, limit=100)
        assert not is_pdf_limit_refusal(answer(""), events=100, limit=100)

    @pytest.mark.parametrize("status", [401, 403, 404, 422])
    def test_only_a_400(self, status: int) -> None:
        assert not is_pdf_limit_refusal(answer(LIMIT_JSON, status))
        assert not is_pdf_limit_refusal(answer(LIMIT_JSON, status), events=10_000)

    @pytest.mark.parametrize(
        "error",
        [
            VendorRetryableError("maxsight answered 429: Too many requests.", status_code=429),
            ValueError("limit exceeded"),
            RuntimeError("400"),
        ],
    )
    def test_other_errors_never(self, error: Exception) -> None:
        assert not is_pdf_limit_refusal(error)
        assert not is_pdf_limit_refusal(error, events=10_000)

    def test_a_refusal_shown_by_counting_names_the_count_and_survives_pickling(self) -> None:
        window = Window(0, 999, {"event_type": ("user",)})
        error = PdfLimitRefusedError(str(answer("")), window, 120, 100, "")
        assert str(error) == (
            f"{WHERE}; the CSV export counts 120 events in window {window}, "
            "over the PDF limit of 100: the 400 is the PDF event limit"
        )
        assert error.status_code == 400
        restored = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own, trusted error
        assert isinstance(restored, PdfLimitRefusedError)
        assert (str(restored), restored.window, restored.events) == (str(error), window, 120)

    @pytest.mark.parametrize("limit", [0, -1, True, 5000.0, "5000"])
    def test_the_operator_checks_its_limit(self, limit: Any) -> None:
        with pytest.raises(ExportValidationError, match="pdf_event_limit"):
            MaxsightAuditPdfsToS3Operator(
                task_id="t", dataset="audit_events", bucket="b", windows=[], pdf_event_limit=limit
            )


# --------------------------------------------------------------------------- over HTTP

integration = pytest.mark.integration

LIMIT = 100
CONN_ID = "maxsight_pdf_refusals"


@pytest.fixture
def maxsight(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., RunningSimulator]]:
    """``maxsight(**settings)``: a simulator of our own behind the ``CONN_ID`` connection."""
    with maxsight_simulators(
        monkeypatch, CONN_ID, **AROUND_THE_DAY, pdf_event_limit=LIMIT
    ) as start:
        yield start


def hook() -> MaxsightHook:
    return MaxsightHook(CONN_ID)


def day_query(file_type: str = "csv") -> AuditExportQuery:
    start, end = (dt.datetime.fromisoformat(t.replace("Z", "+00:00")) for t in (DAY_START, DAY_END))
    return AuditExportQuery(range_start=start, range_end=end, file_type=file_type)


def day_event_ids() -> list[str]:
    """Every event id of the day, from its CSV."""
    query = counting_query(day_query(), parse_ms(DAY_START), parse_ms(DAY_END))
    with hook().open_export(query) as download:
        text = download.response.read().decode("utf-8-sig")
    return [row["event_id"] for row in csv.DictReader(io.StringIO(text, newline=""))]


def plan_day() -> list[Window]:
    """The day counted with the CSV and planned in windows of at most ``LIMIT`` events."""
    start, end = parse_ms(DAY_START), parse_ms(DAY_END)
    with hook().open_export(counting_query(day_query(), start, end)) as download:
        counted = read_counting_csv(download.response.iter_bytes(1 << 16))
    return plan_pdf_windows(counted, start, end, limit=LIMIT)


def refused_pdf(query: AuditExportQuery | list[tuple[str, str]]) -> VendorResponseError:
    """The error of a PDF request the simulator refuses (a query, or raw parameters)."""
    params = query.to_params() if isinstance(query, AuditExportQuery) else query
    with (
        pytest.raises(VendorResponseError) as refused,
        hook().get_transport().open(ApiCall("GET", EXPORT_PATH, params=params)),
    ):
        pass
    return refused.value


def fetch_pdfs(s3: LocalS3, windows: list[Window]) -> list[dict[str, Any]]:
    op = MaxsightAuditPdfsToS3Operator(
        task_id="fetch_pdfs",
        conn_id=CONN_ID,
        dataset="audit_events",
        bucket=s3.bucket,
        aws_conn_id=s3.conn_id,
        day=DAY.isoformat(),
        timezone="UTC",
        windows=[w.to_dict() for w in windows],
        pdf_event_limit=LIMIT,
    )
    return op.execute({})


def export_requests(sim: RunningSimulator) -> list[tuple[str, int]]:
    """``(file_type, status)`` of every export request the simulator saw, in order."""
    with sim.admin() as admin:
        logged = admin.get("/_sim/requests").json()
    return [
        (parse_qs(item["query"]).get("file_type", ["csv"])[0], item["status"])
        for item in logged
        if item["path"] == EXPORT_PATH
    ]


@integration
@pytest.mark.parametrize("error_body", ERROR_BODIES)
def test_each_400_over_http_is_classified_with_a_count(
    maxsight: Callable[..., RunningSimulator], error_body: str
) -> None:
    """The documented 400s as the client receives them in each ``error_body`` shape."""
    maxsight(events=600, error_body=error_body)
    events = len(day_event_ids())
    assert events > LIMIT

    over = refused_pdf(day_query("pdf"))
    assert over.status_code == 400
    assert is_pdf_limit_refusal(over, events=events, limit=LIMIT), error_body
    if error_body == "empty":
        assert over.vendor_message == ""
        assert not is_pdf_limit_refusal(over), "nothing to read: the client must count"

    # the other documented 400: range_start after range_end (the client never builds one)
    reversed_range = refused_pdf(
        [("range_start", DAY_END), ("range_end", DAY_START), ("file_type", "pdf")]
    )
    assert reversed_range.status_code == 400
    assert not is_pdf_limit_refusal(reversed_range), reversed_range.vendor_message
    assert not is_pdf_limit_refusal(reversed_range, events=0, limit=LIMIT)


@integration
@pytest.mark.parametrize("error_body", ERROR_BODIES)
def test_late_arrivals_are_bisected_whatever_the_error_body(
    maxsight: Callable[..., RunningSimulator], s3: LocalS3, error_body: str
) -> None:
    sim = maxsight(events=600, instant_events=0, error_body=error_body)
    windows = plan_day()
    first = windows[0]
    assert first.expected_events == LIMIT, "the first window is full"
    late = format_ms(first.start_ms + (first.end_ms - first.start_ms) // 3)
    configure(sim, instant_events=75, instant_at=late)  # after counting, inside `first`

    landed = fetch_pdfs(s3, windows)

    ids = {p["raw"]["key"]: pdf_event_ids(s3.read(p["raw"]["key"])) for p in landed}
    assert all(len(found) <= LIMIT for found in ids.values())
    seen = Counter(i for found in ids.values() for i in found)
    assert max(seen.values()) == 1, "an event is in two PDFs"
    assert set(seen) == set(day_event_ids()), "every event of the day, late ones included"
    for pdf in landed:
        assert pdf["expected_events"] == len(ids[pdf["raw"]["key"]]), pdf["window"]
    requests = export_requests(sim)
    refused = [r for r in requests if r == ("pdf", 400)]
    assert len(refused) >= 2, "refused, then refused again one level down"
    assert len(landed) == len(windows) + len(refused), "each refusal split one window in two"
    assert {status for _, status in requests} == {200, 400}


@integration
@pytest.mark.parametrize("error_body", ERROR_BODIES)
def test_another_400_fails_the_task_without_bisecting(
    maxsight: Callable[..., RunningSimulator], s3: LocalS3, error_body: str
) -> None:
    """A 400 for a window that counts within the limit is not the limit, whatever it says."""
    sim = maxsight(events=600, instant_events=0, error_body=error_body)
    windows = plan_day()
    with sim.admin() as admin:
        fault = {"kind": "server_error", "status": 400, "count": 1, "path": EXPORT_PATH}
        admin.post("/_sim/faults", json=fault).raise_for_status()

    with pytest.raises(VendorResponseError) as failure:
        fetch_pdfs(s3, windows)

    error = failure.value
    assert not isinstance(error, PdfLimitRefusedError)
    assert error.status_code == 400
    assert f"within the PDF limit of {LIMIT}: this 400 is not the limit" in "".join(
        getattr(error, "__notes__", [])
    )
    pdfs = [status for file_type, status in export_requests(sim) if file_type == "pdf"]
    assert pdfs == [400], "no bisection: one PDF request, refused"
    assert [k for k in s3.keys(prefix="raw/") if k.endswith(".pdf")] == []
