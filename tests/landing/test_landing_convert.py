"""Raw file -> Parquet parts on local disk (no S3): types, bad input, drift, formats."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compliance_exports.landing.convert import (
    BadRowPolicy,
    ConversionOptions,
    ConversionResult,
    convert_file,
    write_rejected_rows,
)
from compliance_exports.landing.errors import BadRowError, LandingError, TooManyRejectedRowsError
from compliance_exports.landing.parquet import ParquetOptions, PartWriter, WrittenPart
from compliance_exports.landing.schema import DatasetSchema
from compliance_exports.landing.sources import RawFormat
from tests.landing.conftest import WriteFile
from tests.landing.helpers import read_parts, write_xlsx, write_zip

UTC = dt.UTC
ACCESS = DatasetSchema.from_mapping(
    {
        "id": "string",
        "count": "int64",
        "score": "float64",
        "admin": "bool",
        "seen_at": "timestamp",
        "born": "date",
        "amount": "decimal(10,2)",
    }
)
ACCESS_CSV = (
    "id,name,count,score,admin,seen_at,born,amount\n"
    '000123,"Doe, Jane",7,1.5,true,2026-11-20T10:00:00Z,1990-01-02,12.30\n'
    "000124,Zoë Ünïcødé 東京,,,FALSE,2026-11-20 10:00:00.123+02:00,,\n"
    '0,"",0,-2e3,yes,2026-11-20T10:00:00,2000-02-29,-0.5\n'
    "00,,3,0,0,,,\n"
).encode()


def _convert(
    path: Path,
    schema: DatasetSchema = ACCESS,
    on_bad_rows: BadRowPolicy = BadRowPolicy.FAIL,
    max_rejected_rows: int = 10_000,
) -> ConversionResult:
    out = path.parent.parent / "out"
    options = ConversionOptions(on_bad_rows=on_bad_rows, max_rejected_rows=max_rejected_rows)
    return convert_file(path, RawFormat(path.suffix.lstrip(".")), schema, out, options)


class TestCsvValues:
    def test_declared_types_and_leading_zeros(self, write_file: WriteFile) -> None:
        result = _convert(write_file("access.csv", ACCESS_CSV))
        table = read_parts(result)
        assert result.rows == 4
        assert table.schema.field("id").type == pa.string()
        assert table.schema.field("name").type == pa.string()
        assert table.schema.field("seen_at").type == pa.timestamp("us", tz="UTC")
        assert table.column("id").to_pylist() == ["000123", "000124", "0", "00"]
        assert table.column("name").to_pylist() == ["Doe, Jane", "Zoë Ünïcødé 東京", None, None]
        assert table.column("count").to_pylist() == [7, None, 0, 3]
        assert table.column("score").to_pylist() == [1.5, None, -2000.0, 0.0]
        assert table.column("admin").to_pylist() == [True, False, True, False]
        assert table.column("seen_at").to_pylist() == [
            dt.datetime(2026, 11, 20, 10, tzinfo=UTC),
            dt.datetime(2026, 11, 20, 8, 0, 0, 123000, tzinfo=UTC),
            dt.datetime(2026, 11, 20, 10, tzinfo=UTC),
            None,
        ]
        assert table.column("born").to_pylist() == [
            dt.date(1990, 1, 2),
            None,
            dt.date(2000, 2, 29),
            None,
        ]
        assert table.column("amount").to_pylist() == [
            Decimal("12.30"),
            None,
            Decimal("-0.50"),
            None,
        ]

    def test_duckdb_reads_the_same_rows(self, write_file: WriteFile) -> None:
        result = _convert(write_file("access.csv", ACCESS_CSV))
        files = [str(part.path) for part in result.parts]
        con = duckdb.connect()
        query = "SELECT id, name, count, admin, seen_at, amount FROM read_parquet(?) ORDER BY id"
        rows = con.execute(query, [files]).fetchall()
        assert [r[0] for r in rows] == ["0", "00", "000123", "000124"]
        assert rows[2][1] == "Doe, Jane"
        assert rows[2][2] == 7
        assert rows[2][4] == dt.datetime(2026, 11, 20, 10, tzinfo=UTC)
        assert rows[2][5] == Decimal("12.30")
        described = con.execute("DESCRIBE SELECT seen_at FROM read_parquet(?)", [files]).fetchall()
        assert described[0][1] == "TIMESTAMP WITH TIME ZONE"

    def test_whitespace_and_odd_spellings_take_the_exact_path(self, write_file: WriteFile) -> None:
        csv = b"id,count,admin\n1, 12 ,tRuE\n2,3,N\n"
        result = _convert(write_file("odd.csv", csv))
        table = read_parts(result)
        assert not result.fast_path
        assert table.column("count").to_pylist() == [12, 3]
        assert table.column("admin").to_pylist() == [True, False]

    def test_clean_file_takes_the_fast_path(self, write_file: WriteFile) -> None:
        assert _convert(write_file("access.csv", ACCESS_CSV)).fast_path

    def test_quoted_newline_and_bom(self, write_file: WriteFile) -> None:
        csv = '\ufeffid,notes\n001,"line one\nline two"\n002,plain\n'.encode()
        table = read_parts(_convert(write_file("notes.csv", csv)))
        assert table.column_names[:2] == ["id", "count"]
        assert table.column("id").to_pylist() == ["001", "002"]
        assert table.column("notes").to_pylist() == ["line one\nline two", "plain"]

    def test_column_names_with_dots_and_spaces_are_kept(self, write_file: WriteFile) -> None:
        csv = b"source.name,Display Name\nokta,Jane Doe\n"
        schema = DatasetSchema.from_mapping({"source.name": "string"})
        table = read_parts(_convert(write_file("veza.csv", csv), schema))
        assert table.column_names == ["source.name", "Display Name"]


class TestTimestampReadTypes:
    def test_naive_timestamps_stay_on_the_fast_path(self, write_file: WriteFile) -> None:
        csv = b"id,seen_at\n1,2026-11-20 10:00:00\n2,2026-11-20T11:00:00.5\n"
        result = _convert(write_file("naive.csv", csv))
        assert result.fast_path
        assert read_parts(result).column("seen_at").to_pylist() == [
            dt.datetime(2026, 11, 20, 10, tzinfo=UTC),
            dt.datetime(2026, 11, 20, 11, 0, 0, 500000, tzinfo=UTC),
        ]

    def test_a_wrong_guess_from_the_first_rows_is_corrected(self, write_file: WriteFile) -> None:
        zoned = "".join(f"{i},2026-11-20T10:00:00Z\n" for i in range(5000))
        csv = f"id,seen_at\n{zoned}5000,2026-11-20 11:00:00\n".encode()
        result = _convert(write_file("late.csv", csv))
        assert not result.fast_path
        stamps = read_parts(result).column("seen_at").to_pylist()
        assert len(stamps) == 5001
        assert stamps[-1] == dt.datetime(2026, 11, 20, 11, tzinfo=UTC)


class TestBadInput:
    def test_wrong_field_count_names_the_row(self, write_file: WriteFile) -> None:
        csv = b"id,count\n1,2\n2,3\n3,4,5\n4,5\n"
        with pytest.raises(BadRowError) as caught:
            _convert(write_file("bad.csv", csv))
        assert caught.value.row == 4
        assert "expected 2 fields, found 3" in str(caught.value)
        assert "3,4,5" in str(caught.value)

    def test_row_numbers_count_records_not_lines(self, write_file: WriteFile) -> None:
        csv = b'id,notes\n1,"two\nlines"\n2,ok\n3,a,b\n'
        with pytest.raises(BadRowError) as caught:
            _convert(write_file("bad.csv", csv))
        assert caught.value.row == 4

    def test_value_that_does_not_fit_names_row_column_sample(self, write_file: WriteFile) -> None:
        csv = b"id,count\n" + b"".join(f"{i},{i}\n".encode() for i in range(1, 500)) + b"500,12x\n"
        with pytest.raises(BadRowError) as caught:
            _convert(write_file("bad.csv", csv))
        error = caught.value
        assert (error.row, error.column, error.value) == (501, "count", "12x")
        assert "row 501, column 'count': not a valid int64: '12x'" in str(error)

    def test_bad_timestamp(self, write_file: WriteFile) -> None:
        csv = b"id,seen_at\n1,2026-11-20T10:00:00Z\n2,yesterday\n"
        with pytest.raises(BadRowError, match=r"row 3, column 'seen_at': not a valid timestamp"):
            _convert(write_file("bad.csv", csv))

    def test_undecodable_bytes(self, write_file: WriteFile) -> None:
        csv = b"id,name\n1,ok\n2,caf\xe9\n"
        with pytest.raises(BadRowError) as caught:
            _convert(write_file("latin1.csv", csv))
        assert (caught.value.row, caught.value.column) == (3, "name")
        assert "not UTF-8 text" in str(caught.value)

    def test_bad_row_leaves_no_parts(self, write_file: WriteFile, tmp_path: Path) -> None:
        with pytest.raises(BadRowError):
            _convert(write_file("bad.csv", b"id,count\n1,x\n"))
        assert not list((tmp_path / "out").glob("*.parquet"))

    def test_header_with_a_repeated_name(self, write_file: WriteFile) -> None:
        with pytest.raises(LandingError, match="names column 'id' twice"):
            _convert(write_file("dup.csv", b"id,id\n1,2\n"))


class TestQuarantine:
    CSV = b"id,count\n1,10\n2,ten\n3,30,extra\n4,40\n"

    def test_bad_rows_set_aside_and_the_rest_landed(
        self, write_file: WriteFile, tmp_path: Path
    ) -> None:
        result = _convert(write_file("q.csv", self.CSV), on_bad_rows=BadRowPolicy.QUARANTINE)
        table = read_parts(result)
        assert table.column("id").to_pylist() == ["1", "4"]
        reasons = {r.reason for r in result.rejected}
        assert reasons == {"not a valid int64", "expected 2 fields, found 3"}
        typed = next(r for r in result.rejected if r.column == "count")
        assert (typed.row, typed.record) == (3, "2,ten")
        out = tmp_path / "rejected.csv"
        write_rejected_rows(result.rejected, out)
        text = out.read_text()
        assert text.splitlines()[0] == "where,row,column,reason,record"
        assert "3,30,extra" in text

    def test_row_numbers_count_the_rows_skipped_before(self, write_file: WriteFile) -> None:
        csv = b"id,count\r\n1,1\r\n2,2,2\r\n3,3\r\n4,four\r\n5,5\r\n"
        result = _convert(write_file("crlf.csv", csv), on_bad_rows=BadRowPolicy.QUARANTINE)
        assert read_parts(result).column("id").to_pylist() == ["1", "3", "5"]
        assert sorted((r.row, r.reason) for r in result.rejected) == [
            (3, "expected 2 fields, found 3"),
            (5, "not a valid int64"),
        ]

    def test_undecodable_row_set_aside(self, write_file: WriteFile) -> None:
        csv = b"id,name\n1,caf\xc3\xa9\n2,caf\xe9\n3,ok\n"
        result = _convert(write_file("mixed.csv", csv), on_bad_rows=BadRowPolicy.QUARANTINE)
        assert read_parts(result).column("name").to_pylist() == ["café", "ok"]
        (rejected,) = result.rejected
        assert (rejected.row, rejected.column, rejected.reason) == (3, "name", "not UTF-8 text")
        assert rejected.record == "2,caf\\xe9"

    def test_too_many_rejected_rows_fail(self, write_file: WriteFile) -> None:
        with pytest.raises(TooManyRejectedRowsError):
            _convert(
                write_file("q.csv", self.CSV),
                on_bad_rows=BadRowPolicy.QUARANTINE,
                max_rejected_rows=1,
            )


class TestDriftAndEmpty:
    def test_new_column_kept_as_string_and_missing_column_null(self, write_file: WriteFile) -> None:
        schema = DatasetSchema.from_mapping({"id": "string", "count": "int64", "gone": "timestamp"})
        result = _convert(write_file("d.csv", b"id,count,surprise\n1,2,007\n"), schema)
        table = read_parts(result)
        assert table.column_names == ["id", "count", "gone", "surprise"]
        assert table.schema.field("gone").type == pa.timestamp("us", tz="UTC")
        assert table.column("gone").to_pylist() == [None]
        assert table.column("surprise").to_pylist() == ["007"]
        assert result.schema.drift() == {"added": ["surprise"], "missing": ["gone"]}

    @pytest.mark.parametrize("content", [b"", b"id,count,admin\n"], ids=["0-bytes", "header-only"])
    def test_empty_export_gives_a_zero_row_part(
        self, write_file: WriteFile, content: bytes
    ) -> None:
        schema = DatasetSchema.from_mapping({"id": "string", "count": "int64"})
        result = _convert(write_file("empty.csv", content), schema)
        assert result.rows == 0
        assert len(result.parts) == 1
        parquet_schema = pq.read_schema(result.parts[0].path)
        assert parquet_schema.field("count").type == pa.int64()
        assert pq.read_metadata(result.parts[0].path).num_rows == 0


class TestParquetLayout:
    def test_row_groups_zstd_statistics_dictionary(self, write_file: WriteFile) -> None:
        rows = "".join(f"{i:06d},{['human', 'service'][i % 2]},{i}\n" for i in range(2500))
        path = write_file("big.csv", ("id,kind,count\n" + rows).encode())
        options = ParquetOptions(row_group_rows=1000, rows_per_part=2000)
        result = convert_file(
            path, RawFormat.CSV, ACCESS, path.parent / "out", ConversionOptions(parquet=options)
        )
        assert [(p.rows, p.path.name) for p in result.parts] == [
            (2000, "part-00000.parquet"),
            (500, "part-00001.parquet"),
        ]
        meta = pq.read_metadata(result.parts[0].path)
        assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [1000, 1000]
        names = [meta.schema.column(i).name for i in range(meta.num_columns)]
        kind = meta.row_group(0).column(names.index("kind"))
        ident = meta.row_group(0).column(names.index("id"))
        assert kind.compression == "ZSTD"
        assert "RLE_DICTIONARY" in kind.encodings
        assert "RLE_DICTIONARY" not in ident.encodings
        assert ident.statistics.min == "000000"
        assert read_parts(result).num_rows == 2500

    def test_writer_thread_errors_reach_the_caller(self, tmp_path: Path) -> None:
        schema = pa.schema([("id", pa.string())])

        def refuse(part: WrittenPart) -> None:
            raise OSError(f"disk full after {part.path.name}")

        writer = PartWriter(
            tmp_path, schema, ParquetOptions(row_group_rows=1, rows_per_part=1), refuse
        )
        batch = pa.record_batch([pa.array(["a", "b"])], schema=schema)

        def write_all() -> None:
            writer.write(batch)
            writer.close()

        with pytest.raises(OSError, match=r"disk full after part-00000\.parquet"):
            write_all()


class TestZipAndXlsx:
    def test_sailpoint_zip_of_csvs(self, write_file: WriteFile, tmp_path: Path) -> None:
        members = {
            "part-2.csv": b"Identity ID,Display Name\n002,B\n",
            "part-1.csv": b"Identity ID,Display Name\n001,A\n003,C\n",
        }
        (tmp_path / "raw").mkdir()
        path = write_zip(tmp_path / "raw" / "search.zip", members)
        result = _convert(path, DatasetSchema.from_mapping({"Identity ID": "string"}))
        table = read_parts(result)
        assert table.column("Identity ID").to_pylist() == ["001", "003", "002"]
        assert table.column("_file").to_pylist() == ["part-1.csv", "part-1.csv", "part-2.csv"]
        assert result.segments == ["search.zip:part-1.csv", "search.zip:part-2.csv"]

    def test_zip_members_with_different_headers_fail(self, tmp_path: Path) -> None:
        members = {"a.csv": b"x,y\n1,2\n", "b.csv": b"x,z\n1,2\n"}
        (tmp_path / "raw").mkdir()
        path = write_zip(tmp_path / "raw" / "mixed.zip", members)
        with pytest.raises(LandingError, match=r"mixed.zip:b.csv: header differs"):
            _convert(path)

    def test_bad_row_in_a_zip_member_names_the_member(self, tmp_path: Path) -> None:
        (tmp_path / "raw").mkdir()
        path = write_zip(tmp_path / "raw" / "r.zip", {"a.csv": b"id,count\n1,one\n"})
        with pytest.raises(BadRowError, match=r"r.zip:a.csv: row 2, column 'count'"):
            _convert(path)

    def test_xlsx_sheets_concatenated_with_sheet_column(self, tmp_path: Path) -> None:
        (tmp_path / "raw").mkdir()
        header = ["id", "count", "admin", "source.name"]
        path = write_xlsx(
            tmp_path / "raw" / "review.xlsx",
            {
                "First": [
                    header,
                    ["007", 1, True, "okta"],
                    ["", "", "", ""],
                    ["008", 2.0, False, None],
                ],
                "Blank": [],
                "Second": [header, ["009", 3, False, "ad"]],
            },
        )
        result = _convert(path)
        table = read_parts(result)
        assert table.column("id").to_pylist() == ["007", "008", "009"]
        assert table.column("count").to_pylist() == [1, 2, 3]
        assert table.column("admin").to_pylist() == [True, False, False]
        assert table.column("_sheet").to_pylist() == ["First", "First", "Second"]
        assert result.segments == ["review.xlsx[First]", "review.xlsx[Second]"]

    def test_xlsx_bad_value_names_sheet_and_row(self, tmp_path: Path) -> None:
        (tmp_path / "raw").mkdir()
        path = write_xlsx(
            tmp_path / "raw" / "r.xlsx", {"S": [["id", "count"], ["1", 1], ["2", "many"]]}
        )
        with pytest.raises(BadRowError, match=r"r.xlsx\[S\]: row 3, column 'count'"):
            _convert(path)

    def test_xlsx_value_without_a_header_fails(self, tmp_path: Path) -> None:
        (tmp_path / "raw").mkdir()
        rows: list[list[object]] = [["id", "count", ""], ["1", 1, ""], ["2", 2, "stray"]]
        path = write_xlsx(tmp_path / "raw" / "r.xlsx", {"S": rows})
        with pytest.raises(LandingError, match=r"r.xlsx\[S\]: row 3 has a value in column 3"):
            _convert(path)

    @staticmethod
    def _cells_workbook(path: Path, *more: list[object]) -> Path:
        """A table at B3 (not A1): typed cells on row 4, text on row 6, then ``more``."""
        import xlsxwriter

        workbook = xlsxwriter.Workbook(str(path))
        stamp = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        day = workbook.add_format({"num_format": "yyyy-mm-dd"})
        sheet = workbook.add_worksheet("S")
        sheet.write_row(2, 1, ["id", "count", "admin", "seen", "on", "score", "raw"])
        sheet.write_row(3, 1, ["007", 3.0, True, None, None, 2.5, 12.0])
        sheet.write_datetime(3, 4, dt.datetime(2026, 1, 2, 3, 4, 5, 250000), stamp)
        sheet.write_datetime(3, 5, dt.datetime(2026, 1, 2), day)
        row = ["008", 4, False, "2026-01-03T00:00:00Z", "2026-01-03", -1, "x"]
        sheet.write_row(5, 1, row)
        for offset, extra in enumerate(more):
            sheet.write_row(6 + offset, 1, extra)
        workbook.close()
        return path

    CELLS = DatasetSchema.from_mapping(
        {
            "count": "int64",
            "admin": "bool",
            "seen": "timestamp",
            "on": "date",
            "score": "float64",
        }
    )

    def test_xlsx_cells_of_every_kind_land_as_the_declared_types(self, tmp_path: Path) -> None:
        (tmp_path / "raw").mkdir()
        path = self._cells_workbook(tmp_path / "raw" / "cells.xlsx")

        table = read_parts(_convert(path, self.CELLS))

        assert table.column("id").to_pylist() == ["007", "008"]
        assert table.column("count").to_pylist() == [3, 4]
        assert table.column("admin").to_pylist() == [True, False]
        assert table.column("seen").to_pylist() == [
            dt.datetime(2026, 1, 2, 3, 4, 5, 250000, tzinfo=dt.UTC),
            dt.datetime(2026, 1, 3, tzinfo=dt.UTC),
        ]
        assert table.column("on").to_pylist() == [dt.date(2026, 1, 2), dt.date(2026, 1, 3)]
        assert table.column("score").to_pylist() == [2.5, -1.0]
        assert table.column("raw").to_pylist() == ["12", "x"]  # undeclared: text as shown

    def test_xlsx_rows_are_numbered_as_in_the_sheet(self, tmp_path: Path) -> None:
        (tmp_path / "raw").mkdir()
        path = self._cells_workbook(tmp_path / "raw" / "cells.xlsx", ["009", "five"])
        with pytest.raises(BadRowError, match=r"cells.xlsx\[S\]: row 7, column 'count'"):
            _convert(path, self.CELLS)

    def test_a_file_that_is_not_a_workbook_is_named(self, tmp_path: Path) -> None:
        (tmp_path / "raw").mkdir()
        path = tmp_path / "raw" / "broken.xlsx"
        path.write_bytes(b"this is not a zip")
        with pytest.raises(LandingError, match=r"broken.xlsx: not a readable XLSX workbook"):
            _convert(path)

    def test_xlsx_sheets_with_different_headers_fail(self, tmp_path: Path) -> None:
        (tmp_path / "raw").mkdir()
        path = write_xlsx(tmp_path / "raw" / "r.xlsx", {"A": [["x"], ["1"]], "B": [["y"], ["2"]]})
        with pytest.raises(LandingError, match=r"r.xlsx\[B\]: header differs"):
            _convert(path)


class TestRoundTrip:
    cell = st.text(
        alphabet=st.characters(codec="utf-8", exclude_characters="\r\x00"),
        max_size=12,
    )

    @settings(max_examples=15, deadline=None)
    @given(rows=st.lists(st.tuples(cell, cell, st.integers(-(2**40), 2**40)), max_size=30))
    def test_csv_rows_come_back_exactly(
        self, tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[str, str, int]]
    ) -> None:
        """Whatever the text (quotes, commas, newlines, unicode), the rows come back."""
        raw = tmp_path_factory.mktemp("roundtrip") / "raw"
        raw.mkdir()
        out = io.StringIO(newline="")
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["id", "text", "count"])
        writer.writerows(rows)
        path = raw / "rows.csv"
        path.write_bytes(out.getvalue().encode())
        schema = DatasetSchema.from_mapping({"id": "string", "text": "string", "count": "int64"})
        table = read_parts(_convert(path, schema))
        expected = [{"id": a or None, "text": b or None, "count": n} for a, b, n in rows]
        assert table.to_pylist() == expected
