"""Fetch building blocks: the hashing reader, object names, days, argument checks."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from compliance_exports.core.errors import ExportValidationError
from compliance_exports.core.fetch import (
    HashingReader,
    ProgressLog,
    TruncatedDownloadError,
    as_day,
    sniff_suffix,
)
from compliance_exports.core.hooks import Download, filename_from_disposition, safe_filename
from compliance_exports.vendors.oleria.operators import OleriaExportOperator


class TestHashingReader:
    @given(chunks=st.lists(st.binary(max_size=300), max_size=20), size=st.integers(1, 700))
    def test_reads_everything_once_and_hashes_it(self, chunks: list[bytes], size: int) -> None:
        data = b"".join(chunks)
        reader = HashingReader(iter(chunks), expected_size=len(data))
        out = bytearray()
        while piece := reader.read(size):
            out += piece
        assert bytes(out) == data
        assert reader.sha256 == hashlib.sha256(data).hexdigest()
        assert reader.size == len(data)

    def test_short_body_is_a_truncation(self) -> None:
        reader = HashingReader(iter([b"abc"]), expected_size=10)
        with pytest.raises(TruncatedDownloadError, match="3 of 10 bytes"):
            reader.read()

    def test_a_dropped_connection_is_a_truncation(self) -> None:
        def chunks() -> Iterator[bytes]:
            yield b"abc"
            raise httpx.RemoteProtocolError("peer closed connection")

        reader = HashingReader(chunks(), expected_size=None)
        with pytest.raises(TruncatedDownloadError, match="after 3 bytes: RemoteProtocolError"):
            io.BufferedReader(reader).read()

    def test_progress_is_logged_at_the_interval(self) -> None:
        lines: list[tuple[object, ...]] = []
        now = [0.0]
        progress = ProgressLog(
            lambda *a: lines.append(a), 4 * 1024 * 1024, 10, clock=lambda: now[0]
        )
        reader = HashingReader(
            iter([b"x" * 1024 * 1024] * 4), expected_size=None, progress=progress
        )
        for _ in range(4):
            now[0] += 5
            reader.read(1024 * 1024)
        assert len(lines) == 2  # at 10 s and 20 s
        assert lines[0][3] == " of 4.0 MB (50%)"


class TestNames:
    @pytest.mark.parametrize(
        ("header", "name"),
        [
            ('attachment; filename="report.csv"', "report.csv"),
            ("attachment;filename=a b.xlsx", "a_b.xlsx"),
            ('attachment; filename="../../etc/passwd"', "passwd"),
            (None, None),
        ],
    )
    def test_content_disposition(self, header: str | None, name: str | None) -> None:
        assert filename_from_disposition(header) == name

    def test_safe_filename_never_empty(self) -> None:
        assert safe_filename("..") == "export"

    @pytest.mark.parametrize(
        ("vendor_name", "content_type", "stored"),
        [
            ("Q4 review.xlsx", "application/octet-stream", "access.xlsx"),
            ("export", "text/csv; charset=utf-8", "access.csv"),
            ("search.zip", "application/zip", "access.zip"),
            ("weird.dat", "application/pdf", "access.pdf"),
        ],
    )
    def test_object_name_is_deterministic_per_dataset(
        self, vendor_name: str, content_type: str, stored: str
    ) -> None:
        op = OleriaExportOperator(task_id="f", context="identities", dataset="access", bucket="b")
        download = Download(httpx.Response(200), vendor_name, content_type, None)
        assert op.object_name(download) == stored


class TestArguments:
    @pytest.mark.parametrize(
        ("value", "day"),
        [
            ("2026-11-20", dt.date(2026, 11, 20)),
            ("2026-11-20T05:00:00+00:00", dt.date(2026, 11, 20)),
            (dt.datetime(2026, 11, 20, 23, tzinfo=dt.UTC), dt.date(2026, 11, 20)),
        ],
    )
    def test_as_day(self, value: object, day: dt.date) -> None:
        assert as_day(value) == day

    def test_bad_day_names_the_field(self) -> None:
        with pytest.raises(ExportValidationError, match="day"):
            as_day("yesterday")

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"server_side_encryption": "des"}, "server_side_encryption"),
            ({"kms_key_id": "k"}, "kms_key_id"),
            ({"max_download_attempts": 0}, "max_download_attempts"),
            ({"resubmits": -1}, "resubmits"),
            ({"wait_timeout": 0}, "wait_timeout"),
            ({"poll_interval": 10, "max_poll_interval": 5}, "max_poll_interval"),
        ],
    )
    def test_bad_arguments_fail_before_any_request(
        self, kwargs: dict[str, object], field: str
    ) -> None:
        op = OleriaExportOperator(
            task_id="f",
            context="identities",
            dataset="d",
            bucket="b",
            **kwargs,  # type: ignore[arg-type]
        )
        with pytest.raises(ExportValidationError, match=field):
            op.validate()


class TestSniffSuffix:
    """A file's kind is confirmed by its bytes, whatever its name or Content-Type."""

    @staticmethod
    def zip_of(*names: str) -> bytes:
        import zipfile

        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as archive:
            for name in names:
                archive.writestr(name, "a,b\n1,2\n")
        return out.getvalue()

    def test_a_real_workbook_is_xlsx(self) -> None:
        import openpyxl

        out = io.BytesIO()
        openpyxl.Workbook().save(out)
        assert sniff_suffix(out.getvalue()[:65536]) == ".xlsx"

    def test_a_zip_of_csvs_is_a_zip(self) -> None:
        assert sniff_suffix(self.zip_of("identities.csv", "roles.csv")) == ".zip"

    def test_a_pdf(self) -> None:
        assert sniff_suffix(b"%PDF-1.7\n%...") == ".pdf"

    @pytest.mark.parametrize("head", [b"id,name\n1,x\n", b"", b"PK\x03\x04short"])
    def test_text_or_too_little_proves_nothing(self, head: bytes) -> None:
        assert sniff_suffix(head) is None

    def test_the_bytes_win_over_the_vendor_name_and_type(self) -> None:
        op = OleriaExportOperator(task_id="f", context="identities", dataset="search", bucket="b")
        download = Download(httpx.Response(200), "report.csv", "application/csv", None)
        assert op.object_name(download, ".zip") == "search.zip"
        assert op.object_name(download, None) == "search.csv"
