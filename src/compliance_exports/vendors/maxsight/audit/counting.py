"""Counting Maxsight audit events: the CSV export of a range, read as compact arrays.

Maxsight has no count endpoint (DOC gap); the CSV export, which has no event limit,
of the same range and filters is how the PDF windows get planned. The reader streams:
it never holds the CSV, only one timestamp (8 bytes) and three shared-string references
per event.

Our CHOICES: column names match after trimming and lower-casing; ``timestamp`` is
required, the split columns (``event_type``, ``sub_type``, ``system_source``) are read
when present; a blank value is recorded as missing (``None``); a timestamp is ISO-8601
with a date and a time, an offset is honoured and a value without one is UTC (the
counting request, :func:`counting_query`, asks for ``timezone=UTC`` and ``locale=en``);
sub-millisecond digits are truncated.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import IO

from compliance_exports.core.errors import FatalError
from compliance_exports.vendors.maxsight.audit.window import (
    EPOCH,
    ONE_MS,
    SPLIT_DIMENSIONS,
    Moment,
    format_ms,
    from_epoch_ms,
    to_epoch_ms,
)
from compliance_exports.vendors.maxsight.query import AuditExportQuery

TIMESTAMP_COLUMN = "timestamp"
CHUNK_SIZE = 1 << 16

ByteSource = bytes | bytearray | IO[bytes] | Iterable[bytes]
"""CSV bytes: the whole body, a binary file-like, or an iterable of chunks (``iter_bytes()``)."""

_DATE_AND_TIME = re.compile(r"^\s*\d{4}-?\d{2}-?\d{2}[T ]\d{2}")


class CountingCsvError(FatalError):
    """The counting CSV cannot be read: no header, no timestamp column, a malformed row."""


@dataclass(frozen=True, eq=False)
class CountedEvents:
    """Events as the counting CSV lists them: parallel arrays, one entry per event.

    ``timestamps_ms`` holds epoch milliseconds (UTC); ``attributes`` maps each split
    dimension that was read to its values, ``None`` where the event has none (the
    planner also reads a blank string as none).
    """

    timestamps_ms: array[int]
    attributes: Mapping[str, Sequence[str | None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for dimension, values in self.attributes.items():
            if dimension not in SPLIT_DIMENSIONS:
                raise ValueError(
                    f"unknown attribute {dimension!r}; allowed: {', '.join(SPLIT_DIMENSIONS)}"
                )
            if len(values) != len(self.timestamps_ms):
                raise ValueError(
                    f"attribute {dimension!r} has {len(values)} values "
                    f"for {len(self.timestamps_ms)} timestamps"
                )

    @classmethod
    def from_timestamps(
        cls, timestamps: Iterable[Moment], **attributes: Sequence[str | None]
    ) -> CountedEvents:
        """Events from timestamps (epoch ms or aware datetimes) and parallel attribute values."""
        stamps = array("q", (to_epoch_ms(t, name="event timestamp") for t in timestamps))
        columns = {
            dim: [v if v and v.strip() else None for v in vs] for dim, vs in attributes.items()
        }
        return cls(stamps, columns)

    def __len__(self) -> int:
        return len(self.timestamps_ms)

    def values_of(self, index: int) -> dict[str, str | None]:
        """The attribute values of the event at ``index``."""
        return {dim: values[index] for dim, values in self.attributes.items()}


def counting_query(
    base: AuditExportQuery, range_start: Moment, range_end: Moment
) -> AuditExportQuery:
    """The CSV request that counts what ``base`` would put in PDFs over the range.

    Same filters; ``timezone=UTC`` and ``locale=en`` so timestamps come as ISO-8601 (a
    ``de`` or ``fr`` locale renders them day-first, which the reader does not guess at).
    """
    return replace(
        base,
        range_start=from_epoch_ms(to_epoch_ms(range_start, name="range_start")),
        range_end=from_epoch_ms(to_epoch_ms(range_end, name="range_end")),
        file_type="csv",
        locale="en",
        timezone="UTC",
    )


def parse_event_timestamp(text: str) -> int:
    """Epoch milliseconds of a CSV ``timestamp``: ISO-8601 date and time, offset optional."""
    if not _DATE_AND_TIME.match(text):
        raise ValueError(f"{text!r} is not an ISO-8601 date and time")
    moment = dt.datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return (moment - EPOCH) // ONE_MS


def read_counting_csv(source: ByteSource, *, encoding: str = "utf-8-sig") -> CountedEvents:
    """Read the timestamp and split columns of a Maxsight CSV export, streaming.

    ``source`` is the body as bytes, a binary file-like (left open), or an iterable of
    byte chunks. Raises :class:`CountingCsvError` naming the row and value at fault.
    """
    text = io.TextIOWrapper(_byte_stream(source), encoding=encoding, newline="")
    try:
        return _read_rows(text)
    except UnicodeDecodeError as error:
        raise CountingCsvError(f"the counting CSV is not {encoding} text: {error}") from error
    except csv.Error as error:
        raise CountingCsvError(f"the counting CSV is malformed: {error}") from error
    finally:
        text.close()


def _read_rows(text: io.TextIOWrapper) -> CountedEvents:
    reader = csv.reader(text)
    header = next(reader, None)
    if header is None:
        raise CountingCsvError("the counting CSV is empty: no header row")
    positions = _column_positions(header)
    stamp_at = positions.pop(TIMESTAMP_COLUMN)
    timestamps = array("q")
    columns: dict[str, list[str | None]] = {dim: [] for dim in positions}
    shared: dict[str, str] = {}
    for row_number, row in enumerate(reader, start=1):
        if not row:
            continue
        value = row[stamp_at] if stamp_at < len(row) else ""
        try:
            timestamps.append(parse_event_timestamp(value))
        except ValueError as error:
            raise _bad_timestamp(row_number, reader.line_num, value, error) from None
        for dimension, at in positions.items():
            cell = row[at] if at < len(row) else ""
            columns[dimension].append(shared.setdefault(cell, cell) if cell.strip() else None)
    return CountedEvents(timestamps, columns)


def _column_positions(header: list[str]) -> dict[str, int]:
    names = [name.strip().lower() for name in header]
    wanted = (TIMESTAMP_COLUMN, *SPLIT_DIMENSIONS)
    for name in wanted:
        if names.count(name) > 1:
            raise CountingCsvError(f"the counting CSV has the column {name!r} twice: {header}")
    if TIMESTAMP_COLUMN not in names:
        raise CountingCsvError(f"the counting CSV has no 'timestamp' column; columns: {header}")
    return {name: names.index(name) for name in wanted if name in names}


def _bad_timestamp(row_number: int, line: int, value: str, error: ValueError) -> CountingCsvError:
    return CountingCsvError(
        f"counting CSV row {row_number} (line {line}): timestamp {value!r} is not an "
        f"ISO-8601 date and time such as {format_ms(0)} ({error})"
    )


def _byte_stream(source: ByteSource) -> io.BufferedReader:
    chunks: Iterator[bytes]
    if isinstance(source, bytes | bytearray | memoryview):
        chunks = iter([bytes(source)])
    elif callable(read := getattr(source, "read", None)):
        chunks = iter(lambda: read(CHUNK_SIZE), b"")
    else:
        chunks = iter(source)
    return io.BufferedReader(_ChunkReader(chunks), CHUNK_SIZE)


class _ChunkReader(io.RawIOBase):
    """A raw binary stream over an iterator of byte chunks (empty chunks are skipped)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            if not isinstance(chunk, bytes | bytearray | memoryview):
                raise TypeError(f"the CSV source gave {type(chunk).__name__}, expected bytes")
            self._pending = memoryview(bytes(chunk))
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size
