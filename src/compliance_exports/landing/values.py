"""Text -> declared type, column at a time (pyarrow.compute, vectorized), and finding bad values.

These rules define what the curated zone accepts; the fast CSV path (pyarrow's own
converters) is an optimisation that falls back to them whenever it refuses a file.

- Surrounding whitespace is ignored for every type but ``string``; empty -> null.
- ``bool``: true/t/yes/y/1 and false/f/no/n/0, any letter case.
- ``timestamp``: ISO-8601 with ``T`` or a space, with or without fractional seconds,
  with ``Z`` or a ``+HH:MM``/``+HHMM`` offset, or without one (then it is UTC).
- ``date``: ``YYYY-MM-DD``, or with a midnight time (``2026-11-20 00:00:00``: a
  spreadsheet's date cell). ``int64``/``float64``/``decimal``: plain decimal notation.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc

from compliance_exports.landing.schema import ColumnType

TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0"})
UTC_MICROS = pa.timestamp("us", tz="UTC")
NAIVE_MICROS = pa.timestamp("us")
MIDNIGHT = r"^(\d{4}-\d{2}-\d{2})[T ]00:00:00(?:\.0+)?$"


def to_typed(text: pa.Array, ctype: ColumnType) -> pa.Array:
    """Convert a string column; raises ``ValueError`` if any value does not fit."""
    if ctype.name == "string":
        return text
    trimmed = _blank_to_null(pc.utf8_trim_whitespace(text))
    if ctype.name == "bool":
        return _to_bool(trimmed)
    if ctype.name == "timestamp":
        return to_utc_timestamp(trimmed)
    if ctype.name == "date":
        return pc.cast(_strip_midnight(trimmed), ctype.arrow_type)
    return pc.cast(trimmed, ctype.arrow_type)


def _strip_midnight(text: pa.Array) -> pa.Array:
    """``YYYY-MM-DD 00:00:00[.000]`` (or with ``T``) -> ``YYYY-MM-DD``; other text as is."""
    if not pc.any(pc.greater(pc.utf8_length(text), 10)).as_py():
        return text
    return pc.replace_substring_regex(text, MIDNIGHT, r"\1")


def to_utc_timestamp(text: pa.Array) -> pa.Array:
    """ISO-8601 text with or without a zone (naive = UTC) -> ``timestamp[us, UTC]``.

    The zone check comes first: a failed cast costs far more than looking at the ends.
    """
    present = len(text) - text.null_count
    if pc.sum(pc.ends_with(text, "Z")).as_py() == present:
        return pc.cast(text, UTC_MICROS)
    zoned = has_zone(text)
    count = pc.sum(zoned).as_py() or 0
    if count == present:
        return pc.cast(text, UTC_MICROS)
    if count == 0:
        return pc.cast(pc.cast(text, NAIVE_MICROS), UTC_MICROS)
    with_zone = pc.cast(pc.if_else(zoned, text, None), UTC_MICROS)
    without_zone = pc.cast(pc.cast(pc.if_else(zoned, None, text), NAIVE_MICROS), UTC_MICROS)
    return pc.coalesce(with_zone, without_zone)


def has_zone(text: pa.Array) -> pa.Array:
    """Ends with ``Z``, ``+HH:MM`` or ``+HHMM`` (a date's ``-21`` is not a zone)."""
    raw = text.view(pa.binary())
    signs = pa.array([b"+", b"-"])
    colon_offset = pc.and_(
        pc.is_in(pc.binary_slice(raw, -6, -5), signs),
        pc.equal(pc.binary_slice(raw, -3, -2), b":"),
    )
    plain_offset = pc.is_in(pc.binary_slice(raw, -5, -4), signs)
    return pc.or_(pc.ends_with(raw, b"Z"), pc.or_(colon_offset, plain_offset))


def _blank_to_null(text: pa.Array) -> pa.Array:
    blank = pc.equal(text, "")
    if not pc.any(blank).as_py():
        return text
    return pc.if_else(blank, None, text)


def _to_bool(text: pa.Array) -> pa.Array:
    """Through the dictionary: only the distinct spellings are looked at in Python."""
    encoded = pc.dictionary_encode(text)
    spellings = encoded.dictionary.to_pylist()
    meanings = []
    for spelling in spellings:
        word = spelling.lower()
        if word not in TRUE_WORDS and word not in FALSE_WORDS:
            raise pa.ArrowInvalid(f"{spelling!r} is not a boolean")
        meanings.append(word in TRUE_WORDS)
    return pc.take(pa.array(meanings, pa.bool_()), encoded.indices)


def fits(text: pa.Array, ctype: ColumnType) -> bool:
    try:
        to_typed(text, ctype)
    except (ValueError, pa.ArrowException):
        return False
    return True


def bad_positions(text: pa.Array, ctype: ColumnType, *, start: int = 0) -> Iterator[int]:
    """Positions of the values that do not fit, in order, found by bisection.

    Cheap when bad values are few: a slice that converts is never looked into again.
    """
    if fits(text, ctype):
        return
    if len(text) == 1:
        yield start
        return
    middle = len(text) // 2
    yield from bad_positions(text.slice(0, middle), ctype, start=start)
    yield from bad_positions(text.slice(middle), ctype, start=start + middle)


def first_bad_position(text: pa.Array, ctype: ColumnType) -> int | None:
    return next(bad_positions(text, ctype), None)


def decode_utf8(raw: pa.Array) -> tuple[pa.Array, list[int]]:
    """Binary -> string, with values that are not UTF-8 set to null; and their positions."""
    try:
        return pc.cast(raw, pa.string()), []
    except pa.ArrowInvalid:
        pass
    text: list[str | None] = []
    undecodable = []
    for position, value in enumerate(raw.to_pylist()):
        try:
            text.append(None if value is None else value.decode("utf-8"))
        except UnicodeDecodeError:
            text.append(None)
            undecodable.append(position)
    return pa.array(text, pa.string()), undecodable
