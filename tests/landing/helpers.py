"""Small raw files and read-back helpers for the landing tests."""

from __future__ import annotations

import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from compliance_exports.landing.convert import ConversionResult


def read_parts(result: ConversionResult) -> pa.Table:
    return pa.concat_tables([pq.read_table(part.path) for part in result.parts])


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return path


def write_xlsx(path: Path, sheets: Mapping[str, Sequence[Sequence[object]]]) -> Path:
    import xlsxwriter

    workbook = xlsxwriter.Workbook(str(path))
    for name, rows in sheets.items():
        sheet = workbook.add_worksheet(name)
        for index, row in enumerate(rows):
            sheet.write_row(index, 0, row)
    workbook.close()
    return path
