"""The simulators' table PDF writer: real PDFs, one text line per row."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from include.simulators.pdf import (
    PageStyle,
    column_widths,
    fit_text,
    register_fonts,
    render_table_pdf,
)

COLUMNS = ("id", "name", "note")


def rows(count: int) -> list[tuple[str, str, str]]:
    return [(f"ROW{i:05d}", 'Zoë Ångström, "Jr."', "x" * (i % 7)) for i in range(count)]


def text_lines(pdf: bytes) -> list[str]:
    reader = PdfReader(io.BytesIO(pdf))
    return [line for page in reader.pages for line in page.extract_text().splitlines()]


class TestRenderTablePdf:
    def test_is_a_pdf_with_one_line_per_row_over_several_pages(self) -> None:
        style = PageStyle(height=300.0)  # a short page: several pages for 60 rows
        pdf = render_table_pdf(title="Rows", columns=COLUMNS, rows=rows(60), total=60, style=style)

        assert pdf.startswith(b"%PDF-")
        reader = PdfReader(io.BytesIO(pdf))
        assert len(reader.pages) == -(-60 // style.rows_per_page())
        row_lines = [line for line in text_lines(pdf) if line.startswith("ROW")]
        assert [line.split()[0] for line in row_lines] == [f"ROW{i:05d}" for i in range(60)]

    def test_unicode_and_punctuation_survive_as_text(self) -> None:
        pdf = render_table_pdf(title="Ünïcödé", columns=COLUMNS, rows=rows(1), total=1)

        text = "\n".join(text_lines(pdf))
        assert 'Zoë Ångström, "Jr."' in text
        assert "Ünïcödé" in text

    def test_footer_counts_rows(self) -> None:
        style = PageStyle(height=300.0)
        per_page = style.rows_per_page()
        pdf = render_table_pdf(title="Rows", columns=COLUMNS, rows=rows(30), total=30, style=style)

        first_page = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
        assert f"Page 1 \u00b7 rows 1-{per_page} of 30" in first_page

    def test_no_rows_gives_one_page_saying_so(self) -> None:
        pdf = render_table_pdf(title="Empty", columns=COLUMNS, rows=[], total=0)

        reader = PdfReader(io.BytesIO(pdf))
        assert len(reader.pages) == 1
        assert "no rows" in reader.pages[0].extract_text()

    def test_same_input_same_bytes(self) -> None:
        first = render_table_pdf(title="T", columns=COLUMNS, rows=rows(5), total=5)
        second = render_table_pdf(title="T", columns=COLUMNS, rows=rows(5), total=5)

        assert first == second

    def test_needs_columns(self) -> None:
        with pytest.raises(ValueError, match="columns"):
            render_table_pdf(title="T", columns=(), rows=[], total=0)


class TestLayout:
    def test_long_text_is_cut_with_an_ellipsis_to_fit(self) -> None:
        from reportlab.pdfbase import pdfmetrics

        register_fonts()
        cut = fit_text("word " * 200, 100.0, "SimTable", 6.5)

        assert cut.endswith("\u2026")
        assert pdfmetrics.stringWidth(cut, "SimTable", 6.5) <= 100.0

    def test_short_text_is_kept_and_line_breaks_become_spaces(self) -> None:
        register_fonts()

        assert fit_text("a\nb\tc", 100.0, "SimTable", 6.5) == "a b c"

    def test_widths_follow_weights(self) -> None:
        assert column_widths(("a", "b"), (1.0, 3.0), 400.0) == [100.0, 300.0]
        assert column_widths(("a", "b"), None, 400.0) == [200.0, 200.0]

    @pytest.mark.parametrize("weights", [(1.0,), (1.0, 0.0)])
    def test_bad_weights_are_refused(self, weights: tuple[float, ...]) -> None:
        with pytest.raises(ValueError, match="weights"):
            column_widths(("a", "b"), weights, 400.0)
