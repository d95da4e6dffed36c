"""Veza access review export: request rules and the status vocabulary.

Documented by Veza (DOC, preview API): ``format`` is 0 (CSV) or 6 (XLSX) and nothing
else; ``certification_id`` is required; ``previous_certification_id`` asks for a diff
export; ``title`` is for XLSX only, at most 30 characters; ``filter`` is SCIM on
``source.`` / ``destination.`` fields; ``mutable_filter`` is SCIM on ``decision``,
``notes``, ``signed_off_state`` and ``reviewers``; decisions are
``RESULT_DECISION_{NONE,ACCEPTED,REJECTED,FIXED}``; ``order_by`` reads like
``source.name ASC``; statuses ``CREATED PROCESSING FINISHED FAILED CANCELLED EXPIRED``.

Our CHOICES: ``order_by`` may list several keys separated by commas, the direction is
optional (ASC by default) and case-insensitive; a diff against the same certification
is refused; an empty title is refused; decision values in ``mutable_filter``
``eq``/``ne`` comparisons must be one of the four decisions (any case); status words
may carry an ``EXPORT_STATUS_`` prefix and any case (both seen in Veza's gRPC-style APIs).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from compliance_exports.core.errors import ExportValidationError
from compliance_exports.vendors.veza.scim import (
    Compare,
    Node,
    ScimSyntaxError,
    attributes,
    comparisons,
)
from compliance_exports.vendors.veza.scim import parse_filter as parse_scim

FORMAT_CSV = 0
FORMAT_XLSX = 6
FORMAT_NAMES: Mapping[int, str] = {FORMAT_CSV: "CSV", FORMAT_XLSX: "XLSX"}
CONTENT_TYPES: Mapping[int, str] = {
    FORMAT_CSV: "text/csv",
    FORMAT_XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
FILE_EXTENSIONS: Mapping[int, str] = {FORMAT_CSV: "csv", FORMAT_XLSX: "xlsx"}
TITLE_MAX = 30

FILTER_PREFIXES: tuple[str, ...] = ("source.", "destination.")
MUTABLE_FIELDS: tuple[str, ...] = ("decision", "notes", "signed_off_state", "reviewers")
DECISIONS: tuple[str, ...] = (
    "RESULT_DECISION_NONE",
    "RESULT_DECISION_ACCEPTED",
    "RESULT_DECISION_REJECTED",
    "RESULT_DECISION_FIXED",
)

STATUS_PREFIX = "EXPORT_STATUS_"
ORDER_DIRECTIONS: tuple[str, ...] = ("ASC", "DESC")


def validate_access_review_export(
    *,
    format: int,
    certification_id: Any,
    previous_certification_id: Any = None,
    title: Any = None,
    filter: Any = None,
    mutable_filter: Any = None,
    order_by: Any = None,
) -> None:
    """Check an ``access_review:create`` request; raise ExportValidationError naming the field."""
    validate_format(format)
    _check_id("certification_id", certification_id)
    if previous_certification_id is not None:
        _check_id("previous_certification_id", previous_certification_id)
        if previous_certification_id == certification_id:
            raise ExportValidationError(
                "previous_certification_id",
                "a diff export needs a different certification than certification_id",
            )
    if title is not None:
        validate_title(title, format)
    if filter is not None:
        validate_filter(filter)
    if mutable_filter is not None:
        validate_mutable_filter(mutable_filter)
    if order_by is not None:
        parse_order_by(order_by)


def validate_format(format: Any) -> int:
    """Check ``format``: only 0 (CSV) and 6 (XLSX) exist."""
    if isinstance(format, bool) or format not in FORMAT_NAMES:
        allowed = ", ".join(f"{code} = {name}" for code, name in FORMAT_NAMES.items())
        raise ExportValidationError("format", f"{format!r} is not supported (allowed: {allowed})")
    return int(format)


def _check_id(field: str, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ExportValidationError(field, f"{value!r} is not an id (a non-empty string)")


def validate_title(title: Any, format: int) -> None:
    """Check ``title``: XLSX only, a non-empty string of at most TITLE_MAX characters."""
    if format != FORMAT_XLSX:
        raise ExportValidationError(
            "title", f"only allowed with format {FORMAT_XLSX} (XLSX), not {format!r}"
        )
    if not isinstance(title, str) or not title.strip():
        raise ExportValidationError("title", f"{title!r} is not a title (a non-empty string)")
    if len(title) > TITLE_MAX:
        raise ExportValidationError(
            "title", f"{len(title)} characters is longer than the maximum of {TITLE_MAX}"
        )


def validate_filter(text: Any) -> Node:
    """Parse ``filter``; every attribute must be a ``source.`` or ``destination.`` field."""
    node = _parse("filter", text)
    for name in sorted(attributes(node)):
        if not name.lower().startswith(FILTER_PREFIXES):
            raise ExportValidationError(
                "filter",
                f"attribute {name!r} is not filterable here "
                f"(use fields under {' or '.join(FILTER_PREFIXES)})",
            )
    return node


def validate_mutable_filter(text: Any) -> Node:
    """Parse ``mutable_filter``: only the mutable fields, decisions from the vocabulary."""
    node = _parse("mutable_filter", text)
    for name in sorted(attributes(node)):
        if name.lower() not in MUTABLE_FIELDS:
            raise ExportValidationError(
                "mutable_filter",
                f"attribute {name!r} is not allowed (allowed: {', '.join(MUTABLE_FIELDS)})",
            )
    for leaf in comparisons(node):
        if isinstance(leaf, Compare):
            _check_decision_value(leaf)
    return node


def _check_decision_value(leaf: Compare) -> None:
    if leaf.attribute.lower() != "decision" or leaf.operator not in {"eq", "ne"}:
        return
    if not isinstance(leaf.value, str) or leaf.value.upper() not in DECISIONS:
        raise ExportValidationError(
            "mutable_filter",
            f"{leaf.value!r} is not a decision (allowed: {', '.join(DECISIONS)})",
        )


def _parse(field: str, text: Any) -> Node:
    if not isinstance(text, str) or not text.strip():
        raise ExportValidationError(field, f"{text!r} is not a SCIM filter (a non-empty string)")
    try:
        return parse_scim(text)
    except ScimSyntaxError as exc:
        raise ExportValidationError(field, str(exc)) from None


_ORDER_KEY = re.compile(
    r"^\s*(?P<field>[A-Za-z][A-Za-z0-9_\-]*(?:\.[A-Za-z][A-Za-z0-9_\-]*)*)"
    r"(?:\s+(?P<direction>[A-Za-z]+))?\s*$"
)


def parse_order_by(text: Any) -> list[tuple[str, bool]]:
    """``"source.name ASC, updated_at desc"`` -> ``[("source.name", False), ("updated_at", True)]``.

    The boolean says whether the key sorts descending.
    """
    if not isinstance(text, str) or not text.strip():
        raise ExportValidationError(
            "order_by", f"{text!r} is not an order (e.g. 'source.name ASC')"
        )
    keys = []
    for i, part in enumerate(text.split(",")):
        match = _ORDER_KEY.match(part)
        if match is None:
            raise ExportValidationError(
                "order_by", f"key {i + 1} {part.strip()!r} is not '<field> [ASC|DESC]'"
            )
        direction = (match.group("direction") or "ASC").upper()
        if direction not in ORDER_DIRECTIONS:
            raise ExportValidationError(
                "order_by",
                f"key {i + 1} direction {match.group('direction')!r} is not ASC or DESC",
            )
        keys.append((match.group("field"), direction == "DESC"))
    return keys
