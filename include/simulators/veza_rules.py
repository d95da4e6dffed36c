"""Veza's access review export rules, read from VENDOR_APIS.md section 2 (simulator side).

DOC (documented by Veza):

- ``format`` is an int, ``0`` = CSV, ``6`` = XLSX, nothing else;
- ``certification_id`` is required; ``previous_certification_id`` asks for a diff
  export, which adds a ``change`` column (added | removed | changed | unchanged);
- ``title`` is for XLSX only, at most 30 characters;
- ``filter`` is SCIM on ``source.``/``destination.`` fields; ``mutable_filter`` is SCIM
  on ``decision``, ``notes``, ``signed_off_state`` and ``reviewers``; decisions are
  ``RESULT_DECISION_{NONE,ACCEPTED,REJECTED,FIXED}``;
- ``order_by`` reads like ``source.name ASC``;
- statuses ``CREATED -> PROCESSING -> FINISHED | FAILED | CANCELLED``, a FINISHED
  export later ``EXPIRED``; terminal: FINISHED, FAILED, CANCELLED, EXPIRED;
- the file is ``text/csv`` or the XLSX type, sent ``Content-Disposition: attachment``.

CHOICE (Veza does not say): the body must be a JSON object without unknown fields;
``format`` must be sent; ``null`` for an optional field means "not set"; ids and
titles are non-empty strings; a diff against the same certification is refused;
``order_by`` may list several comma-separated keys, the direction is optional (ASC)
and of any case; ``eq``/``ne`` on ``decision`` need one of the four decisions (any
case); filtered and ordered attributes must be columns of the export (``strict``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from include.simulators import veza_scim
from include.simulators.data import VEZA_ACCESS_REVIEW

CSV = 0
XLSX = 6
FORMAT_NAMES: Mapping[int, str] = {CSV: "CSV", XLSX: "XLSX"}
MEDIA_TYPES: Mapping[int, str] = {
    CSV: "text/csv",
    XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
EXTENSIONS: Mapping[int, str] = {CSV: "csv", XLSX: "xlsx"}
TITLE_LIMIT = 30
CHANGE_COLUMN = "change"

FILTER_PREFIXES = ("source.", "destination.")
MUTABLE_FIELDS = ("decision", "notes", "signed_off_state", "reviewers")
DECISIONS = tuple(f"RESULT_DECISION_{word}" for word in ("NONE", "ACCEPTED", "REJECTED", "FIXED"))
TERMINAL = frozenset({"FINISHED", "FAILED", "CANCELLED", "EXPIRED"})
STATUS_PREFIX = "EXPORT_STATUS_"  # CHOICE: gRPC-style enum names

FIELDS = (
    "format",
    "certification_id",
    "previous_certification_id",
    "title",
    "filter",
    "mutable_filter",
    "order_by",
)


class RequestError(ValueError):
    """A refused ``access_review:create`` body; ``str()`` reads ``"<field>: <reason>"``."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.field = name


@dataclass
class ExportRequest:
    """An accepted ``access_review:create`` body."""

    format: int
    certification_id: str
    previous_certification_id: str | None = None
    title: str | None = None
    filter: veza_scim.Node | None = None
    mutable_filter: veza_scim.Node | None = None
    order_by: list[tuple[str, bool]] = field(default_factory=list)  # (column, descending)

    @property
    def header(self) -> tuple[str, ...]:
        base = VEZA_ACCESS_REVIEW.header
        return (*base, CHANGE_COLUMN) if self.previous_certification_id else base

    @property
    def kinds(self) -> dict[str, str]:
        kinds: dict[str, str] = dict(VEZA_ACCESS_REVIEW.kinds())
        if self.previous_certification_id:
            kinds[CHANGE_COLUMN] = "enum"
        return kinds

    def nodes(self) -> list[veza_scim.Node]:
        return [node for node in (self.filter, self.mutable_filter) if node is not None]


def parse_request(body: Any, *, strict: bool = True) -> ExportRequest:
    """Check a create body against the rules above; raise RequestError naming the field."""
    if not isinstance(body, dict):
        raise RequestError("body", "expected a JSON object")
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise RequestError(unknown[0], f"unknown field (allowed: {', '.join(FIELDS)})")
    if "format" not in body:
        raise RequestError("format", "is required (0 = CSV, 6 = XLSX)")
    export_format = check_format(body["format"])
    certification = check_id("certification_id", body.get("certification_id"))
    previous = optional(body, "previous_certification_id")
    request = ExportRequest(export_format, certification)
    if previous is not None:
        request.previous_certification_id = check_previous(previous, certification)
    title = optional(body, "title")
    if title is not None:
        request.title = check_title(title, export_format)
    fill_filters(request, body, strict=strict)
    order_by = optional(body, "order_by")
    if order_by is not None:
        request.order_by = parse_order_by(order_by, request.header if strict else None)
    return request


def optional(body: Mapping[str, Any], name: str) -> Any:
    """CHOICE: ``null`` is the same as leaving the field out."""
    return body.get(name)


def check_format(value: Any) -> int:
    """DOC: 0 = CSV, 6 = XLSX (nothing else); CHOICE: only JSON numbers."""
    if type(value) is not int or value not in FORMAT_NAMES:
        allowed = ", ".join(f"{code} = {name}" for code, name in FORMAT_NAMES.items())
        raise RequestError("format", f"{value!r} is not supported (allowed: {allowed})")
    return value


def check_id(name: str, value: Any) -> str:
    """DOC: certification_id is required; CHOICE: ids are non-empty strings."""
    if not isinstance(value, str) or not value.strip():
        raise RequestError(name, f"{value!r} is not an id (a non-empty string)")
    return value


def check_previous(value: Any, certification: str) -> str:
    """CHOICE: a diff compares two different certifications."""
    previous = check_id("previous_certification_id", value)
    if previous == certification:
        raise RequestError("previous_certification_id", "must differ from certification_id")
    return previous


def check_title(value: Any, export_format: int) -> str:
    """DOC: XLSX only, max 30 characters; CHOICE: a non-empty string."""
    if export_format != XLSX:
        raise RequestError("title", f"only allowed with format {XLSX} (XLSX)")
    if not isinstance(value, str) or not value.strip():
        raise RequestError("title", f"{value!r} is not a title (a non-empty string)")
    if len(value) > TITLE_LIMIT:
        raise RequestError("title", f"{len(value)} characters, the maximum is {TITLE_LIMIT}")
    return value


def fill_filters(request: ExportRequest, body: Mapping[str, Any], *, strict: bool) -> None:
    text = optional(body, "filter")
    if text is not None:
        node = scim_field("filter", text, request, strict=strict)
        check_filter_fields(node)
        request.filter = node
    text = optional(body, "mutable_filter")
    if text is not None:
        node = scim_field("mutable_filter", text, request, strict=strict)
        check_mutable_fields(node)
        request.mutable_filter = node


def scim_field(name: str, text: Any, request: ExportRequest, *, strict: bool) -> veza_scim.Node:
    """DOC: SCIM (RFC 7644); a filter scim2-filter-parser refuses is refused."""
    if not isinstance(text, str):
        raise RequestError(name, f"{text!r} is not a SCIM filter (a string)")
    try:
        return veza_scim.resolve(veza_scim.parse(text), request.kinds, strict=strict)
    except veza_scim.FilterError as exc:
        raise RequestError(name, str(exc)) from None


def check_filter_fields(node: veza_scim.Node) -> None:
    """DOC: ``filter`` is on ``source.`` / ``destination.`` fields only."""
    for name in veza_scim.attributes(node):
        if not name.lower().startswith(FILTER_PREFIXES):
            raise RequestError(
                "filter", f"attribute {name!r} is not a source. or destination. field"
            )


def check_mutable_fields(node: veza_scim.Node) -> None:
    """DOC: ``mutable_filter`` is on decision, notes, signed_off_state, reviewers."""
    for leaf in veza_scim.leaves(node):
        if leaf.attribute.lower() not in MUTABLE_FIELDS:
            allowed = ", ".join(MUTABLE_FIELDS)
            raise RequestError(
                "mutable_filter", f"attribute {leaf.attribute!r} is not allowed ({allowed})"
            )
        if leaf.attribute.lower() == "decision" and leaf.operator in {"eq", "ne"}:
            check_decision(leaf.value)


def check_decision(value: Any) -> None:
    """DOC: decisions are RESULT_DECISION_{NONE,ACCEPTED,REJECTED,FIXED}; CHOICE: any case."""
    if not isinstance(value, str) or value.upper() not in DECISIONS:
        raise RequestError(
            "mutable_filter", f"{value!r} is not a decision ({', '.join(DECISIONS)})"
        )


_ORDER_KEY = re.compile(r"^\s*(?P<field>[A-Za-z][\w.-]*)(?:\s+(?P<direction>[A-Za-z]+))?\s*$")


def parse_order_by(text: Any, header: tuple[str, ...] | None) -> list[tuple[str, bool]]:
    """DOC: ``source.name ASC``; CHOICE: ``a DESC, b`` (several keys, ASC by default).

    With ``header`` every key must be one of its columns (returned in its spelling).
    """
    if not isinstance(text, str) or not text.strip():
        raise RequestError("order_by", f"{text!r} is not an order (e.g. 'source.name ASC')")
    columns = {name.lower(): name for name in header or ()}
    keys = []
    for part in text.split(","):
        match = _ORDER_KEY.match(part)
        direction = ((match and match.group("direction")) or "ASC").upper()
        if match is None or direction not in ("ASC", "DESC"):
            raise RequestError("order_by", f"{part.strip()!r} is not '<field> [ASC|DESC]'")
        name = match.group("field")
        if header is not None and name.lower() not in columns:
            raise RequestError("order_by", f"unknown column {name!r}")
        keys.append((columns.get(name.lower(), name), direction == "DESC"))
    return keys
