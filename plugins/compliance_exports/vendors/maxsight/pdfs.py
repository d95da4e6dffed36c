"""Maxsight audit PDFs: fetch planned windows, each under the 5,000-event limit.

The windows come from :func:`compliance_exports.vendors.maxsight.audit.plan_pdf_windows`
(counted with the CSV export of the same range and filters). Events may arrive between counting and
fetching: a window Maxsight refuses with 400 for the PDF limit is bisected and fetched
again, to a bounded depth (:func:`~compliance_exports.vendors.maxsight.audit.fetch_with_bisection`).
Each PDF lands in the raw zone under a name derived from its window, so a rerun
overwrites the same objects.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from compliance_exports.core.http import VendorResponseError
from compliance_exports.vendors.maxsight.audit import SPLIT_DIMENSIONS, Window, fetch_with_bisection
from compliance_exports.vendors.maxsight.hook import MaxsightHook
from compliance_exports.vendors.maxsight.operators import MaxsightAuditExportToS3Operator

if TYPE_CHECKING:
    from airflow.sdk import Context

_LIMIT_WORDS = re.compile(r"limit|5,?000|too many|exceed", re.IGNORECASE)


def is_pdf_limit_refusal(error: Exception) -> bool:
    """A 400 whose message speaks of the PDF event limit (Maxsight's body is unpublished)."""
    return (
        isinstance(error, VendorResponseError)
        and error.status_code == 400
        and bool(_LIMIT_WORDS.search(f"{error.vendor_message} {error}"))
    )


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
    """

    template_fields = (*MaxsightAuditExportToS3Operator.template_fields, "windows")

    def __init__(
        self,
        *,
        windows: Sequence[Mapping[str, Any]],
        max_bisection_depth: int = 4,
        **kwargs: Any,
    ) -> None:
        kwargs["file_type"] = "pdf"
        super().__init__(**kwargs)
        self.windows = windows
        self.max_bisection_depth = max_bisection_depth

    def execute(self, context: Context) -> list[dict[str, Any]]:  # type: ignore[override]
        base = {dim: tuple(getattr(self, dim)) for dim in SPLIT_DIMENSIONS}
        landed: list[dict[str, Any]] = []
        for data in self.windows:
            planned = Window.from_dict(data)
            pieces = fetch_with_bisection(
                planned,
                lambda window: self._fetch_window(window, base, context),
                is_pdf_limit_refusal,
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
        """Count a bisected window's events again (CSV of the same query, in UTC/English)."""
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
        return dict(super().execute(context))
