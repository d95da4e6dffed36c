"""Raw file (CSV, zip of CSVs, XLSX) -> Parquet part files on local disk. No Airflow here.

Two ways through a CSV file, same result:

- the *fast path* lets pyarrow's multithreaded CSV reader convert declared columns
  itself (``int64``, ``bool``, ...) and only timestamps go through
  :func:`~compliance_exports.landing.values.to_utc_timestamp`;
- the *text path* reads every column as bytes and applies the rules of
  :mod:`compliance_exports.landing.values` block by block. It is exact about bad input
  (row number, column, value) and can set bad rows aside (quarantine).

With the ``fail`` policy the fast path runs first; if pyarrow refuses anything (a bad
value, a value our rules accept but pyarrow does not, such as ``" 12 "``), its output
is thrown away and the text path runs, which either lands the file or names the row.
"""

from __future__ import annotations

import csv
import enum
import io
import logging
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from compliance_exports.landing.errors import BadRowError, LandingError, TooManyRejectedRowsError
from compliance_exports.landing.parquet import ParquetOptions, PartWriter, WrittenPart
from compliance_exports.landing.schema import (
    DatasetSchema,
    ResolvedSchema,
    check_header,
    resolve,
)
from compliance_exports.landing.sources import (
    CsvDialect,
    RawFormat,
    Segment,
    TextBlock,
    common_header,
    open_segments,
)
from compliance_exports.landing.values import (
    NAIVE_MICROS,
    UTC_MICROS,
    bad_positions,
    decode_utf8,
    has_zone,
    to_typed,
    to_utc_timestamp,
)

log = logging.getLogger(__name__)


class BadRowPolicy(enum.StrEnum):
    FAIL = "fail"  # the first bad row fails the file; nothing is landed
    QUARANTINE = "quarantine"  # bad rows are set aside, the rest is landed


@dataclass(frozen=True)
class ConversionOptions:
    on_bad_rows: BadRowPolicy = BadRowPolicy.FAIL
    max_rejected_rows: int = 10_000  # with quarantine: more than this fails the file
    parquet: ParquetOptions = field(default_factory=ParquetOptions)
    dialect: CsvDialect = field(default_factory=CsvDialect)
    # Arrow allocator for the conversion: jemalloc hands freed blocks back to the OS
    # sooner than pyarrow's default mimalloc here (~15% lower peak RSS); "default" keeps
    # the process's pool. The switch is process-wide while a conversion runs.
    memory_pool: str = "jemalloc"

    def __post_init__(self) -> None:
        object.__setattr__(self, "on_bad_rows", BadRowPolicy(self.on_bad_rows))


@dataclass(frozen=True)
class RejectedRow:
    where: str
    row: int | None
    column: str | None
    reason: str
    record: str  # the row as CSV text


@dataclass(frozen=True)
class ConversionResult:
    rows: int
    parts: list[WrittenPart]
    schema: ResolvedSchema
    segments: list[str]
    rejected: list[RejectedRow]
    fast_path: bool
    seconds: float


class _FastPathRefusedError(Exception):
    """pyarrow's converters refused the file: rerun it through the exact text path."""


def convert_file(
    path: Path,
    raw_format: RawFormat,
    schema: DatasetSchema,
    out_dir: Path,
    options: ConversionOptions | None = None,
) -> ConversionResult:
    """Convert one raw file into ``out_dir/part-NNNNN.parquet`` (at least one part)."""
    options = options or ConversionOptions()
    with _memory_pool(options.memory_pool):
        return _convert_file(path, raw_format, schema, out_dir, options)


@contextmanager
def _memory_pool(name: str) -> Iterator[None]:
    if name == "default":
        yield
        return
    try:
        pool = getattr(pa, f"{name}_memory_pool")()
    except (AttributeError, NotImplementedError):
        log.info("pyarrow has no %s allocator here; using %s", name, pa.default_memory_pool())
        yield
        return
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pool)
    try:
        yield
    finally:
        pa.set_memory_pool(previous)


def _convert_file(
    path: Path,
    raw_format: RawFormat,
    schema: DatasetSchema,
    out_dir: Path,
    options: ConversionOptions,
) -> ConversionResult:
    started = time.monotonic()
    segments = open_segments(path, raw_format, options.dialect)
    resolved = _resolve(schema, segments)
    if options.on_bad_rows is BadRowPolicy.FAIL and all(s.has_fast_path for s in segments):
        try:
            rows, parts = _write(_fast_batches(segments, resolved), resolved, out_dir, options)
        except _FastPathRefusedError as refused:
            log.info("fast CSV path refused %s (%s); using the exact text path", path, refused)
            _clear(out_dir)
        else:
            return ConversionResult(
                rows, parts, resolved, [s.where for s in segments], [], True, _since(started)
            )
    text = _TextConversion(resolved, options)
    rows, parts = _write(text.batches(segments), resolved, out_dir, options)
    return ConversionResult(
        rows, parts, resolved, [s.where for s in segments], text.rejected, False, _since(started)
    )


def _since(started: float) -> float:
    return round(time.monotonic() - started, 3)


def _resolve(schema: DatasetSchema, segments: Sequence[Segment]) -> ResolvedSchema:
    header = common_header(segments)
    extras = tuple(segments[0].constants)
    if header is not None:
        check_header((*header, *extras), segments[0].where)
    return resolve(schema, header or (), extras)


def _clear(out_dir: Path) -> None:
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)


def _write(
    batches: Iterator[pa.RecordBatch],
    resolved: ResolvedSchema,
    out_dir: Path,
    options: ConversionOptions,
) -> tuple[int, list[WrittenPart]]:
    out_dir.mkdir(parents=True, exist_ok=True)
    writer = PartWriter(out_dir, resolved.arrow_schema, options.parquet)
    rows = 0
    try:
        for batch in batches:
            writer.write(batch)
            rows += batch.num_rows
        return rows, writer.close()
    except BaseException:
        writer.abort()
        _clear(out_dir)
        raise


def _assemble(
    resolved: ResolvedSchema, constants: Mapping[str, str], rows: int, found: Mapping[str, Any]
) -> pa.RecordBatch:
    """One output batch in the resolved column order; absent columns are nulls."""
    arrays = []
    for name, ctype in resolved.columns:
        if name in found:
            arrays.append(found[name])
        elif name in constants:
            arrays.append(pa.repeat(pa.scalar(constants[name], pa.string()), rows))
        else:
            arrays.append(pa.nulls(rows, ctype.arrow_type))
    return pa.RecordBatch.from_arrays(arrays, schema=resolved.arrow_schema)


# --------------------------------------------------------------------------- fast path


def _timestamp_read_type(sample: pa.Array | None) -> pa.DataType:
    """How pyarrow's CSV reader should read a timestamp column, judged on the first rows.

    All zoned: pyarrow parses them to UTC; all naive: pyarrow parses them, we label them
    UTC; mixed or unknown: read as text and parsed by :func:`to_utc_timestamp`. A wrong
    guess only costs a rerun through the text path.
    """
    present = sample.drop_null() if sample is not None else None
    if not present:
        return pa.string()
    zoned = pc.sum(has_zone(present)).as_py()
    if zoned == len(present):
        return UTC_MICROS
    return NAIVE_MICROS if zoned == 0 else pa.string()


def _fast_read_types(segment: Segment, resolved: ResolvedSchema) -> dict[str, pa.DataType]:
    types = {name: resolved.type_of(name) for name in segment.header or ()}
    stamps = [name for name, ctype in types.items() if ctype.name == "timestamp"]
    sample = segment.sample_text() if stamps else None
    read_types = {name: ctype.arrow_type for name, ctype in types.items()}
    for name in stamps:
        column = sample.column(name) if sample is not None else None
        read_types[name] = _timestamp_read_type(column)
    return read_types


def _as_utc(column: pa.Array, read_type: pa.DataType) -> pa.Array:
    if read_type == NAIVE_MICROS:
        return pc.cast(column, UTC_MICROS)
    if read_type == pa.string():
        return to_utc_timestamp(column)
    return column


def _fast_batches(
    segments: Sequence[Segment], resolved: ResolvedSchema
) -> Iterator[pa.RecordBatch]:
    for segment in segments:
        header = segment.header or ()
        try:
            read_types = _fast_read_types(segment, resolved)
            stamps = {n for n in header if resolved.type_of(n).name == "timestamp"}
            for batch in segment.typed_batches(read_types):
                found = {
                    name: _as_utc(column, read_types[name]) if name in stamps else column
                    for name, column in zip(header, batch.columns, strict=True)
                }
                yield _assemble(resolved, segment.constants, batch.num_rows, found)
        except (pa.ArrowInvalid, ValueError) as exc:
            raise _FastPathRefusedError(f"{segment.where}: {exc}") from exc


# --------------------------------------------------------------------------- text path


class _TextConversion:
    """Every column read as text and converted by our rules, block by block."""

    def __init__(self, resolved: ResolvedSchema, options: ConversionOptions) -> None:
        self.resolved = resolved
        self.options = options
        self.quarantine = options.on_bad_rows is BadRowPolicy.QUARANTINE
        self.rejected: list[RejectedRow] = []
        self._malformed: list[int] = []  # row numbers the parser skipped in this segment
        self._parse_error: RejectedRow | None = None

    def batches(self, segments: Sequence[Segment]) -> Iterator[pa.RecordBatch]:
        for segment in segments:
            self._malformed, self._parse_error = [], None
            try:
                for block in segment.text_blocks(self._malformed_row_handler(segment)):
                    yield self._convert(segment, block)
            except pa.ArrowInvalid as exc:
                raise self._explain(segment, exc) from None

    def _malformed_row_handler(self, segment: Segment) -> Any:
        def handle(row: Any) -> str:
            reason = f"expected {row.expected_columns} fields, found {row.actual_columns}"
            rejected = RejectedRow(segment.where, row.number, None, reason, row.text)
            if not self.quarantine:
                self._parse_error = rejected
                return "error"
            if row.number is not None:
                self._malformed.append(row.number)
            self._reject(rejected)
            return "skip"

        return handle

    def _explain(self, segment: Segment, exc: pa.ArrowInvalid) -> LandingError:
        bad = self._parse_error
        if bad is None:
            return LandingError(f"{segment.where}: cannot parse the file: {exc}")
        return BadRowError(
            where=bad.where, row=bad.row, column=None, value=bad.record, reason=bad.reason
        )

    def _row_number(self, block: TextBlock, position: int) -> int:
        """The file's row number, counting the rows the parser skipped before it."""
        row = block.row_number(position)
        if block.row_numbers is None:
            for skipped in self._malformed:
                if skipped > row:
                    break
                row += 1
        return row

    def _reject(self, rejected: RejectedRow) -> None:
        self.rejected.append(rejected)
        if len(self.rejected) > self.options.max_rejected_rows:
            raise TooManyRejectedRowsError(
                f"{rejected.where}: more than {self.options.max_rejected_rows} rows rejected; "
                f"the last: row {rejected.row}, {rejected.reason}"
            )

    def _convert(self, segment: Segment, block: TextBlock) -> pa.RecordBatch:
        header = segment.header or ()
        bad: dict[int, tuple[str, str]] = {}  # position -> (column, reason)
        found: dict[str, pa.Array] = {}
        for name, column in zip(header, block.columns, strict=True):
            text = self._as_text(segment, block, name, column, bad)
            found[name] = self._as_typed(segment, block, name, text, bad)
        if bad:
            self._set_aside(segment, block, bad)
            keep = pa.array([i not in bad for i in range(block.rows)], pa.bool_())
            found = {name: pc.filter(array, keep) for name, array in found.items()}
        rows = block.rows - len(bad)
        return _assemble(self.resolved, segment.constants, rows, found)

    def _as_text(
        self,
        segment: Segment,
        block: TextBlock,
        name: str,
        column: pa.Array,
        bad: dict[int, tuple[str, str]],
    ) -> pa.Array:
        if column.type != pa.binary():
            return column
        text, undecodable = decode_utf8(column)
        for position in undecodable:
            value = column[position].as_py()
            self._found_bad(segment, block, position, name, value, "not UTF-8 text", bad)
        return text

    def _as_typed(
        self,
        segment: Segment,
        block: TextBlock,
        name: str,
        text: pa.Array,
        bad: dict[int, tuple[str, str]],
    ) -> pa.Array:
        ctype = self.resolved.type_of(name)
        try:
            return to_typed(text, ctype)
        except (pa.ArrowInvalid, ValueError):
            pass
        positions = list(bad_positions(text, ctype))
        for position in positions:
            reason = f"not a valid {ctype}"
            self._found_bad(segment, block, position, name, text[position].as_py(), reason, bad)
        rejected = set(positions)
        mask = pa.array([i in rejected for i in range(len(text))], pa.bool_())
        return to_typed(pc.if_else(mask, None, text), ctype)

    def _found_bad(
        self,
        segment: Segment,
        block: TextBlock,
        position: int,
        column: str,
        value: object,
        reason: str,
        bad: dict[int, tuple[str, str]],
    ) -> None:
        if not self.quarantine:
            row = self._row_number(block, position)
            raise BadRowError(
                where=segment.where, row=row, column=column, value=value, reason=reason
            )
        bad.setdefault(position, (column, reason))

    def _set_aside(
        self, segment: Segment, block: TextBlock, bad: Mapping[int, tuple[str, str]]
    ) -> None:
        for position in sorted(bad):
            column, reason = bad[position]
            record = [_cell(array[position].as_py()) for array in block.columns]
            row = self._row_number(block, position)
            self._reject(RejectedRow(segment.where, row, column, reason, _csv_line(record)))


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    return str(value)


def _csv_line(values: Sequence[str]) -> str:
    line = io.StringIO()
    csv.writer(line, lineterminator="").writerow(values)
    return line.getvalue()


def write_rejected_rows(rejected: Sequence[RejectedRow], path: Path) -> None:
    """The quarantine file: one CSV line per rejected row, with where and why."""
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["where", "row", "column", "reason", "record"])
        for item in rejected:
            writer.writerow(
                [item.where, item.row or "", item.column or "", item.reason, item.record]
            )
