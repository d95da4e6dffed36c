"""Acme's request rules, checked offline: by the registry at parse time and by the
operator before any request (pure: no Airflow, no HTTP, cheap to import)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from compliance_exports.core.errors import ExportValidationError

AUDIT_LOGS = ("admin", "api", "login")
MAX_WINDOW = dt.timedelta(days=31)


def check_audit_log(value: Any) -> str:
    if not value:
        raise ExportValidationError("audit_log", f"required: one of {', '.join(AUDIT_LOGS)}")
    if value not in AUDIT_LOGS:
        raise ExportValidationError("audit_log", f"{value!r} is not one of {', '.join(AUDIT_LOGS)}")
    return str(value)


def check_include_system(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ExportValidationError("include_system", f"{value!r} is not true or false")
    return value


def check_window(since: Any, until: Any) -> None:
    """``[since, until)``: ISO-8601 timestamps with a zone, at most 31 days apart."""
    start, end = _timestamp("since", since), _timestamp("until", until)
    if end <= start:
        raise ExportValidationError("until", f"{until!r} is not after since {since!r}")
    if end - start > MAX_WINDOW:
        raise ExportValidationError("until", "Acme exports at most 31 days at a time")


def _timestamp(field: str, value: Any) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise ExportValidationError(field, f"{value!r} is not an ISO-8601 timestamp") from None
    if parsed.tzinfo is None:
        raise ExportValidationError(field, f"{value!r} has no time zone")
    return parsed
