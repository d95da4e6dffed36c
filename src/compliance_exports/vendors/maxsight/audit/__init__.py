"""Maxsight PDF window planning (pure, no Airflow): count with the CSV, plan, bisect on 400.

Maxsight refuses a PDF of more than 5,000 audit events and has no count endpoint; the
CSV export of the same range and filters is read by :func:`read_counting_csv`,
:func:`plan_pdf_windows` turns the counted events into the fewest PDF windows, and
:func:`fetch_with_bisection` splits a window refused because events arrived since.
"""

from __future__ import annotations

from compliance_exports.vendors.maxsight.audit.bisection import (
    WindowNotSplittableError,
    WindowOverLimitError,
    bisect_window,
    fetch_with_bisection,
)
from compliance_exports.vendors.maxsight.audit.counting import (
    CountedEvents,
    CountingCsvError,
    counting_query,
    read_counting_csv,
)
from compliance_exports.vendors.maxsight.audit.planner import (
    InstantOverLimitError,
    plan_pdf_windows,
)
from compliance_exports.vendors.maxsight.audit.window import SPLIT_DIMENSIONS, Window

__all__ = [
    "SPLIT_DIMENSIONS",
    "CountedEvents",
    "CountingCsvError",
    "InstantOverLimitError",
    "Window",
    "WindowNotSplittableError",
    "WindowOverLimitError",
    "bisect_window",
    "counting_query",
    "fetch_with_bisection",
    "plan_pdf_windows",
    "read_counting_csv",
]
