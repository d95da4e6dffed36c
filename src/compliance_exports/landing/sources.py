"""Readers of the raw formats: CSV, a zip of CSVs (a search export), XLSX (all sheets).

Every file becomes one or more *segments* (a CSV file, a zip member, a sheet) that
share one header. A segment yields its rows as text blocks; a CSV segment can also
yield batches already typed by pyarrow's CSV converters (the fast path).

Multi-file policy (zip members, sheets): segments with the same header are
concatenated and a ``_file`` / ``_sheet`` column says where each row came from;
empty members and empty sheets are skipped; a segment whose header differs fails
the file, naming both headers.
"""

from __future__ import annotations

import abc
import csv
import enum
import functools
import io
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from compliance_exports.landing.errors import LandingError

Opener = Callable[[], IO[bytes]]
MalformedRowHandler = Callable[[Any], str]
FILE_COLUMN = "_file"
SHEET_COLUMN = "_sheet"
XLSX_BLOCK_ROWS = 32_768
SAMPLE_BYTES = 64 * 1024  # first rows looked at to choose how to read timestamp columns


class RawFormat(enum.StrEnum):
    CSV = "csv"
    XLSX = "xlsx"
    ZIP = "zip"  # a zip of CSV files
    PDF = "pdf"  # archived as evidence, never converted


_BY_SUFFIX = {".csv": RawFormat.CSV, ".xlsx": RawFormat.XLSX, ".zip": RawFormat.ZIP}
_BY_SUFFIX[".pdf"] = RawFormat.PDF
_BY_CONTENT_TYPE = {
    "text/csv": RawFormat.CSV,
    "application/csv": RawFormat.CSV,
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": RawFormat.XLSX,
    "application/zip": RawFormat.ZIP,
    "application/x-zip-compressed": RawFormat.ZIP,
    "application/pdf": RawFormat.PDF,
}


def detect_format(filename: str, content_type: str | None = None) -> RawFormat:
    """By file name suffix first, then by content type."""
    suffix = Path(filename).suffix.lower()
    if suffix in _BY_SUFFIX:
        return _BY_SUFFIX[suffix]
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime in _BY_CONTENT_TYPE:
        return _BY_CONTENT_TYPE[mime]
    raise LandingError(
        f"{filename}: cannot tell the format (content type {content_type!r}); "
        "expected .csv, .xlsx, .zip (of CSVs) or .pdf"
    )


@dataclass(frozen=True)
class TextBlock:
    """Rows of one segment as text (``binary`` for CSV: UTF-8 is checked later)."""

    columns: list[pa.Array]
    rows: int
    first_row: int  # row number of the first row (the header is row 1)
    row_numbers: Sequence[int] | None = None  # when rows are not consecutive (sheets)

    def row_number(self, position: int) -> int:
        if self.row_numbers is not None:
            return self.row_numbers[position]
        return self.first_row + position


@dataclass
class Segment(abc.ABC):
    """One table-shaped piece of a raw file."""

    where: str
    header: tuple[str, ...] | None  # None: nothing at all (a 0-byte file)
    constants: Mapping[str, str] = field(default_factory=dict)

    def sample_text(self) -> pa.RecordBatch | None:
        """The first rows as strings, to choose read types; ``None`` if unavailable."""
        return None

    @abc.abstractmethod
    def text_blocks(self, on_malformed: MalformedRowHandler) -> Iterator[TextBlock]:
        """The rows as text; ``on_malformed`` decides ("skip"/"error") for unparsable rows."""

    def typed_batches(self, read_types: Mapping[str, pa.DataType]) -> Iterator[pa.RecordBatch]:
        """Batches converted by pyarrow itself; only CSV segments have this fast path."""
        raise LandingError(f"{self.where}: no typed reader for this kind of segment")

    @property
    def has_fast_path(self) -> bool:
        return False


@dataclass(frozen=True)
class CsvDialect:
    delimiter: str = ","
    block_bytes: int = 256 * 1024  # larger blocks parse a little faster but hold more memory


@dataclass
class CsvSegment(Segment):
    opener: Opener = field(default=lambda: io.BytesIO())
    dialect: CsvDialect = field(default_factory=CsvDialect)

    @property
    def has_fast_path(self) -> bool:
        return True

    def _read(
        self,
        column_types: Mapping[str, pa.DataType],
        handler: MalformedRowHandler | None,
        *,
        use_threads: bool,
        block_bytes: int | None = None,
    ) -> pacsv.CSVStreamingReader:
        """pyarrow's streaming reader; single-threaded, it knows the row number of a bad row."""
        return pacsv.open_csv(
            self.opener(),
            read_options=pacsv.ReadOptions(
                block_size=block_bytes or self.dialect.block_bytes, use_threads=use_threads
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=self.dialect.delimiter,
                newlines_in_values=True,
                invalid_row_handler=handler,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=dict(column_types),
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
                null_values=[""],
                true_values=["true", "True", "TRUE", "1", "yes", "Yes", "YES"],
                false_values=["false", "False", "FALSE", "0", "no", "No", "NO"],
            ),
        )

    def typed_batches(self, read_types: Mapping[str, pa.DataType]) -> Iterator[pa.RecordBatch]:
        if not self.header:
            return
        yield from self._read(read_types, None, use_threads=True)

    def sample_text(self) -> pa.RecordBatch | None:
        if not self.header:
            return None
        text_types = dict.fromkeys(self.header, pa.string())
        try:
            reader = self._read(text_types, None, use_threads=False, block_bytes=SAMPLE_BYTES)
            return next(iter(reader), None)
        except pa.ArrowInvalid:
            return None

    def text_blocks(self, on_malformed: MalformedRowHandler) -> Iterator[TextBlock]:
        if not self.header:
            return
        first_row = 2
        text_types = dict.fromkeys(self.header, pa.binary())
        for batch in self._read(text_types, on_malformed, use_threads=False):
            yield TextBlock(list(batch.columns), batch.num_rows, first_row)
            first_row += batch.num_rows


def read_csv_header(opener: Opener, dialect: CsvDialect, where: str) -> tuple[str, ...] | None:
    """The first record of a CSV file; ``None`` for a file with nothing in it."""
    with opener() as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")
        try:
            record = next(csv.reader(text, delimiter=dialect.delimiter), None)
        except csv.Error as exc:
            raise LandingError(f"{where}: cannot read the header: {exc}") from None
    for name in record or ():
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            raise LandingError(f"{where}: the header is not UTF-8 text: {name!r}") from None
    return tuple(record) if record else None


def csv_segments(path: Path, dialect: CsvDialect) -> list[Segment]:
    def opener() -> IO[bytes]:
        return pa.OSFile(str(path), "rb")

    header = read_csv_header(opener, dialect, path.name)
    return [CsvSegment(path.name, header, {}, opener, dialect)]


def zip_segments(path: Path, dialect: CsvDialect) -> list[Segment]:
    """One segment per ``*.csv`` member, in name order; anything else fails the file."""
    segments: list[Segment] = []
    with zipfile.ZipFile(path) as archive:
        members = sorted(info.filename for info in archive.infolist() if not info.is_dir())
    members = [m for m in members if not m.startswith("__MACOSX/")]
    strangers = [m for m in members if not m.lower().endswith(".csv")]
    if strangers:
        raise LandingError(f"{path.name}: zip members that are not CSV: {', '.join(strangers)}")
    for member in members:
        opener = _member_opener(path, member)
        where = f"{path.name}:{member}"
        header = read_csv_header(opener, dialect, where)
        segments.append(CsvSegment(where, header, {FILE_COLUMN: member}, opener, dialect))
    if not segments:
        raise LandingError(f"{path.name}: the zip holds no CSV file")
    return segments


def _member_opener(path: Path, member: str) -> Opener:
    def opener() -> IO[bytes]:
        archive = zipfile.ZipFile(path)
        stream = archive.open(member)
        archive.close()  # the member stream keeps its own handle on the file
        return stream

    return opener


# --------------------------------------------------------------------------- XLSX


@dataclass
class SheetSegment(Segment):
    #: the sheet's cells as text, one row per sheet row from row 1 (index i = row i + 1),
    #: columns from the first one in use; blank cells are null
    cells: pa.RecordBatch | None = None
    header_index: int = 0  # index of the header row in ``cells``

    def text_blocks(self, on_malformed: MalformedRowHandler) -> Iterator[TextBlock]:
        if self.cells is None or not self.header:
            return
        for offset in range(self.header_index + 1, self.cells.num_rows, XLSX_BLOCK_ROWS):
            chunk = self.cells.slice(offset, XLSX_BLOCK_ROWS)
            block = _sheet_block(chunk.columns, offset + 1, len(self.header), self.where)
            if block.rows:
                yield block


def _sheet_block(columns: Sequence[pa.Array], first_row: int, width: int, where: str) -> TextBlock:
    """A slice of a sheet's text columns -> the header's columns; blank rows are dropped."""
    _refuse_cells_beyond_header(columns[width:], first_row, width, where)
    rows = len(columns[0])
    texts = list(columns[:width]) + [pa.nulls(rows, pa.string())] * (width - len(columns))
    filled = functools.reduce(pc.or_, (pc.is_valid(text) for text in texts))
    if pc.all(filled).as_py():
        return TextBlock(texts, rows, first_row)
    kept = pc.indices_nonzero(filled)
    numbers = [first_row + position for position in kept.to_pylist()]
    texts = [pc.take(text, kept) for text in texts]
    return TextBlock(texts, len(numbers), numbers[0] if numbers else first_row, numbers)


def _refuse_cells_beyond_header(
    columns: Sequence[pa.Array], first_row: int, width: int, where: str
) -> None:
    for offset, values in enumerate(columns):
        found = pc.indices_nonzero(pc.is_valid(values))
        if len(found):
            position = found[0].as_py()
            raise LandingError(
                f"{where}: row {first_row + position} has a value in column "
                f"{width + offset + 1}, which has no header: {values[position].as_py()!r}"
            )


def _sheet_cells(reader: Any, name: str) -> pa.RecordBatch:
    """Every cell of sheet ``name`` as text (``""`` as null), rows anchored at row 1.

    fastexcel renders cells as Excel shows them: ``1`` for 1.0, ``true``/``false``, dates
    and times as ``YYYY-MM-DD HH:MM:SS[.fff]``.
    """
    cells = reader.load_sheet(name, header_row=None, skip_rows=0, dtypes="string", eager=True)
    columns = []
    for column in cells.columns:
        text = column if column.type == pa.string() else pc.cast(column, pa.string())
        blank = pc.equal(text, "")
        columns.append(pc.if_else(blank, None, text) if pc.any(blank).as_py() else text)
    return pa.RecordBatch.from_arrays(columns, names=[str(n) for n in range(len(columns))])


def _sheet_header(cells: pa.RecordBatch) -> tuple[int, tuple[str, ...]] | None:
    """(index of the header row in ``cells``, header) of a sheet; None if it is blank."""
    if cells.num_columns == 0 or cells.num_rows == 0:
        return None
    filled = pc.indices_nonzero(
        functools.reduce(pc.or_, (pc.is_valid(column) for column in cells.columns))
    )
    if not len(filled):
        return None
    index = filled[0].as_py()
    header = [column[index].as_py() or "" for column in cells.columns]
    while header and not header[-1]:
        header.pop()
    return index, tuple(header)


def xlsx_segments(path: Path) -> list[Segment]:
    """One segment per non-blank sheet, in workbook order.

    fastexcel (Rust: calamine, then Arrow) reads each sheet straight into Arrow text
    columns; no cell becomes a Python object. Memory follows the sheets' cell counts
    (XLSX caps a sheet at 1,048,576 rows).
    """
    import fastexcel

    segments: list[Segment] = []
    try:
        reader = fastexcel.read_excel(str(path))
        sheets = [(name, _sheet_cells(reader, name)) for name in reader.sheet_names]
    except fastexcel.FastExcelError as exc:
        reason = str(exc).splitlines()[0]
        raise LandingError(f"{path.name}: not a readable XLSX workbook ({reason})") from None
    for name, cells in sheets:
        found = _sheet_header(cells)
        if found is None:
            continue
        index, header = found
        where = f"{path.name}[{name}]"
        segments.append(SheetSegment(where, header, {SHEET_COLUMN: name}, cells, index))
    if not segments:
        segments.append(SheetSegment(path.name, None, {SHEET_COLUMN: ""}))
    return segments


def open_segments(path: Path, raw_format: RawFormat, dialect: CsvDialect) -> list[Segment]:
    if raw_format is RawFormat.CSV:
        return csv_segments(path, dialect)
    if raw_format is RawFormat.ZIP:
        return zip_segments(path, dialect)
    if raw_format is RawFormat.XLSX:
        return xlsx_segments(path)
    raise LandingError(f"{path.name}: {raw_format} files are archived, not converted")


def common_header(segments: Sequence[Segment]) -> tuple[str, ...] | None:
    """The header every non-empty segment shares."""
    first: Segment | None = None
    for segment in segments:
        if segment.header is None:
            continue
        if first is None:
            first = segment
        elif segment.header != first.header:
            raise LandingError(
                f"{segment.where}: header differs from {first.where}; "
                f"{list(segment.header)} != {list(first.header or ())} "
                "(segments of one file must share their columns)"
            )
    return first.header if first else None
