"""Maxsight audit PDFs: fetch planned windows, each under the 5,000-event limit.

The windows come from :func:`compliance_exports.vendors.maxsight.audit.plan_pdf_windows`
(counted with the CSV export of the same range and filters). Events may arrive between counting and
fetching: a window Maxsight refuses with 400 for the PDF limit is bisected and fetched
again, to a bounded depth (:func:`~compliance_exports.vendors.maxsight.audit.fetch_with_bisection`).
Which 400 is the limit is decided by :func:`is_pdf_limit_refusal`: Maxsight's error body
is unpublished, so when it does not speak of the limit the window is counted again with
the CSV export, and the count decides.
Each PDF lands in the raw zone under a name derived from its window, so a rerun
overwrites the same objects.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from compliance_exports.core.errors import ExportValidationError
from compliance_exports.core.http import VendorResponseError
from compliance_exports.vendors.maxsight.audit import SPLIT_DIMENSIONS, Window, fetch_with_bisection
from compliance_exports.vendors.maxsight.hook import MaxsightHook
from compliance_exports.vendors.maxsight.operators import MaxsightAuditExportToS3Operator
from compliance_exports.vendors.maxsight.query import PDF_EVENT_LIMIT

if TYPE_CHECKING:
    from airflow.sdk import Context

_LIMIT_WORDS = re.compile(r"limit|5,?000|too many|exceed", re.IGNORECASE)


def is_pdf_limit_refusal(
    error: Exception, *, events: int | None = None, limit: int = PDF_EVENT_LIMIT
) -> bool:
    """Whether ``error`` is Maxsight refusing a PDF request for its event limit.

    VENDOR_APIS.md section 4: a PDF of more than 5,000 events fails with 400 (DOC); so does
    ``range_start`` after ``range_end`` (DOC), and so may a bad parameter. The error body is
    unpublished: a JSON envelope, bare text or nothing at all, in unknown words. Hence:

    * only a 400 can be the limit;
    * ``events``, the request's events counted with the CSV export (which has no limit),
      decides when given, whatever the body says: over ``limit`` it is the limit (the
      client validated the parameters and ``range_start <= range_end`` before sending, so
      the other documented 400s cannot apply); at or under ``limit`` it cannot be;
    * without a count, only a message that speaks of the limit is taken for it: an empty
      or otherwise worded body is not, the caller counts (see the operator).
    """
    if not isinstance(error, VendorResponseError) or error.status_code != 400:
        return False
    if events is not None:
        return events > limit
    return bool(_LIMIT_WORDS.search(f"{error.vendor_message} {error}"))


class PdfLimitRefusedError(VendorResponseError):
    """A 400 for a PDF whose body did not say why, shown to be the limit by counting."""

    def __init__(
        self, answer: str, window: Window, events: int, limit: int, vendor_message: str = ""
    ) -> None:
        super().__init__(
            f"{answer}; the CSV export counts {events} events in window {window}, "
            f"over the PDF limit of {limit}: the 400 is the PDF event limit",
            status_code=400,
            vendor_message=vendor_message,
        )
        self.answer = answer
        self.window = window
        self.events = events
        self.limit = limit

    def __reduce__(self) -> tuple[object, ...]:
        args = (self.answer, self.window, self.events, self.limit, self.vendor_message)
        return (type(self), args)


def _refused_for_limit(error: Exception) -> bool:
    return isinstance(error, PdfLimitRefusedError) or is_pdf_limit_refusal(error)


def pdf_filename(window: Window) -> str:
    """``audit_events_<start>_<end>[_<filters hash>].pdf``, stable for a window."""
    start, end = (
        value.replace("-", "").replace(":", "").replace(".", "")
        for value in (window.to_dict()["start"], window.to_dict()["end"])
    )
    name = f"audit_events_{start}_{end}"
    if window.filters:
        digest = hashlib.sha256(
            json.dumps(window.to_dict()["filters"], sort_keys=True).encode()
        ).hexdigest()[:10]
        name += f"_{digest}"
    return f"{name}.pdf"


class MaxsightAuditPdfsToS3Operator(MaxsightAuditExportToS3Operator):
    """Fetch a batch of planned PDF windows (``windows``: ``Window.to_dict()`` items).

    Returns one ``{"window", "expected_events", "raw"}`` per PDF landed; the parts of a
    window split by bisection are counted again with a CSV request of the same window.

    A 400 whose body does not speak of the PDF limit (Maxsight's body is unpublished: it
    may be empty or worded otherwise) is settled by counting the window with the CSV
    export: over ``pdf_event_limit`` it is the limit and the window is bisected; otherwise
    it is another 400 and fails the task with Maxsight's answer, never bisected.
    ``pdf_event_limit`` is Maxsight's documented 5,000; lower it only for a simulator
    configured with a lower limit.
    """

    template_fields = (*MaxsightAuditExportToS3Operator.template_fields, "windows")

    def __init__(
        self,
        *,
        windows: Sequence[Mapping[str, Any]],
        max_bisection_depth: int = 4,
        pdf_event_limit: int = PDF_EVENT_LIMIT,
        **kwargs: Any,
    ) -> None:
        kwargs["file_type"] = "pdf"
        super().__init__(**kwargs)
        if isinstance(pdf_event_limit, bool) or not isinstance(pdf_event_limit, int):
            raise ExportValidationError("pdf_event_limit", f"{pdf_event_limit!r} is not an integer")
        if pdf_event_limit < 1:
            raise ExportValidationError("pdf_event_limit", f"{pdf_event_limit} is not >= 1")
        self.windows = windows
        self.max_bisection_depth = max_bisection_depth
        self.pdf_event_limit = pdf_event_limit

    def execute(self, context: Context) -> list[dict[str, Any]]:  # type: ignore[override]
        base = {dim: tuple(getattr(self, dim)) for dim in SPLIT_DIMENSIONS}
        landed: list[dict[str, Any]] = []
        for data in self.windows:
            planned = Window.from_dict(data)
            pieces = fetch_with_bisection(
                planned,
                lambda window: self._fetch_window(window, base, context),
                _refused_for_limit,
                max_depth=self.max_bisection_depth,
            )
            split = len(pieces) > 1
            if split:
                self.log.warning(
                    "window %s was refused for the PDF limit (events arrived since counting): "
                    "bisected into %d PDFs",
                    planned,
                    len(pieces),
                )
            for window, raw in pieces:
                events = self._count_events(window) if split else window.expected_events
                landed.append({"window": window.to_dict(), "expected_events": events, "raw": raw})
        return landed

    def _count_events(self, window: Window) -> int:
        """Count a window's events again (CSV of the same query, in UTC/English): a part
        of a bisected window, or a window refused with a 400 that does not say why."""
        from compliance_exports.vendors.maxsight.audit import counting_query, read_counting_csv

        assert self._query is not None, "a PDF was fetched for this window first"
        query = counting_query(window.pdf_query(self._query), window.start, window.end)
        hook = self.hook
        assert isinstance(hook, MaxsightHook)
        with hook.open_export(query) as download:
            return len(read_counting_csv(download.response.iter_bytes(1 << 16)))

    def _fetch_window(
        self, window: Window, base: Mapping[str, tuple[str, ...]], context: Context
    ) -> dict[str, Any]:
        bounds = window.to_dict()
        self.range_start, self.range_end = bounds["start"], bounds["end"]
        for dim in SPLIT_DIMENSIONS:
            setattr(self, dim, tuple(window.filters.get(dim, base[dim])))
        self.filename = pdf_filename(window)
        try:
            return dict(super().execute(context))
        except VendorResponseError as error:
            if error.status_code != 400 or is_pdf_limit_refusal(error):
                raise  # not a 400, or one that says it is the limit
            # The body does not say why (empty, or other words): count what we asked for.
            events = self._count_events(window)
            if is_pdf_limit_refusal(error, events=events, limit=self.pdf_event_limit):
                raise PdfLimitRefusedError(
                    str(error), window, events, self.pdf_event_limit, error.vendor_message
                ) from error
            error.add_note(
                f"window {window} counts {events} events, within the PDF limit of "
                f"{self.pdf_event_limit}: this 400 is not the limit, so it is not bisected"
            )
            raise
