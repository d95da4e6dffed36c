"""A real PDF writer for tabular rows, shared by the SailPoint and Maxsight simulators.

Each row of the table is one line of text on the page (one event or record per table
row), under a header line repeated on every page, so that a reader that extracts text
(``pypdf``) finds exactly one line per row. Cells wider than their column are cut and
end with an ellipsis; line breaks and tabs inside a cell become spaces.

Pages are drawn one at a time straight from the row iterator with reportlab's canvas
(no platypus story, no table object holding every row), and page streams are
compressed, so memory stays small for the 5,000 rows a Maxsight PDF may hold.

The font is a TrueType one (DejaVu Sans when the system has it, else the Bitstream Vera
bundled with reportlab) so accented and other non-Latin-1 letters are embedded as text.
"""

from __future__ import annotations

import bisect
import functools
import io
import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import reportlab
from reportlab.lib.pagesizes import A4, landscape
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

FONT = "SimTable"
FONT_BOLD = "SimTable-Bold"
_SYSTEM_FONTS = Path("/usr/share/fonts/truetype/dejavu")
_BUNDLED_FONTS = Path(reportlab.__file__).parent / "fonts"
_ELLIPSIS = "\u2026"
_NARROWEST_GLYPH = 0.2  # em; no glyph of the table fonts is narrower
_BLANKS = str.maketrans({"\r": " ", "\n": " ", "\t": " "})


@dataclass(frozen=True)
class PageStyle:
    """Geometry of a table page (points). Landscape A4 with small type by default."""

    width: float = landscape(A4)[0]
    height: float = landscape(A4)[1]
    margin: float = 28.0
    font_size: float = 6.5
    title_size: float = 10.0
    line_height: float = 9.0
    cell_padding: float = 3.0

    @property
    def table_width(self) -> float:
        return self.width - 2 * self.margin

    def rows_per_page(self) -> int:
        usable = self.height - 2 * self.margin - self.title_size - 3 * self.line_height
        return max(1, int(usable // self.line_height))


def register_fonts() -> None:
    """Register the table fonts with reportlab once per process."""
    if FONT in pdfmetrics.getRegisteredFontNames():
        return
    if (_SYSTEM_FONTS / "DejaVuSans.ttf").exists():
        regular, bold = _SYSTEM_FONTS / "DejaVuSans.ttf", _SYSTEM_FONTS / "DejaVuSans-Bold.ttf"
    else:
        regular, bold = _BUNDLED_FONTS / "Vera.ttf", _BUNDLED_FONTS / "VeraBd.ttf"
    pdfmetrics.registerFont(TTFont(FONT, str(regular)))
    pdfmetrics.registerFont(TTFont(FONT_BOLD, str(bold) if bold.exists() else str(regular)))


def fit_text(text: str, width: float, font: str, size: float) -> str:
    """``text`` on one line, cut with an ellipsis so it is at most ``width`` points wide."""
    longest = int(width / (_NARROWEST_GLYPH * size)) + 1  # more glyphs cannot fit
    text = text.translate(_BLANKS)
    cut = text[:longest]
    ends = list(itertools.accumulate(map(_glyph_widths(font).__getitem__, cut)))
    room = width / size
    if len(cut) == len(text) and (not ends or ends[-1] <= room):
        return text
    keep = bisect.bisect_right(ends, room - _glyph_widths(font)[_ELLIPSIS])
    return cut[:keep] + _ELLIPSIS if keep else ""


class _GlyphWidths(dict[str, float]):
    """Advance widths of one font at size 1, measured once per character."""

    def __init__(self, font: str) -> None:
        super().__init__()
        self.font = font

    def __missing__(self, char: str) -> float:
        width = self[char] = pdfmetrics.stringWidth(char, self.font, 1.0)
        return width


@functools.cache
def _glyph_widths(font: str) -> _GlyphWidths:
    return _GlyphWidths(font)


def column_widths(
    columns: Sequence[str], weights: Sequence[float] | None, total: float
) -> list[float]:
    """Split ``total`` points between the columns in proportion to ``weights``."""
    if weights is None:
        weights = [1.0] * len(columns)
    if len(weights) != len(columns) or any(w <= 0 for w in weights):
        raise ValueError("weights: one positive weight per column is required")
    scale = total / sum(weights)
    return [w * scale for w in weights]


class _TableCanvas:
    """Draws the header, rows and footer of a table, page by page."""

    def __init__(
        self,
        out: IO[bytes],
        title: str,
        columns: Sequence[str],
        widths: list[float],
        style: PageStyle,
    ) -> None:
        self.canvas = Canvas(
            out, pagesize=(style.width, style.height), pageCompression=1, invariant=1
        )
        self.canvas.setTitle(title)
        self.title = title
        self.columns = columns
        self.widths = widths
        self.style = style
        self.page = 0

    def draw_page(self, rows: Sequence[Sequence[object]], first_row: int, total: int) -> None:
        style = self.style
        self.page += 1
        top = style.height - style.margin
        self.canvas.setFont(FONT_BOLD, style.title_size)
        self.canvas.drawString(style.margin, top - style.title_size, self.title)
        y = top - style.title_size - 1.5 * style.line_height
        self._draw_line(self.columns, y, FONT_BOLD)
        self.canvas.setLineWidth(0.4)
        self.canvas.line(style.margin, y - 2.5, style.width - style.margin, y - 2.5)
        for row in rows:
            y -= style.line_height
            self._draw_line(row, y, FONT)
        self.canvas.setFont(FONT, style.font_size)
        last = first_row + len(rows)
        footer = f"Page {self.page} \u00b7 rows {first_row + 1}-{last} of {total}"
        if not rows:
            footer = f"Page {self.page} \u00b7 no rows"
        self.canvas.drawRightString(style.width - style.margin, style.margin / 2, footer)
        self.canvas.showPage()

    def _draw_line(self, cells: Sequence[object], y: float, font: str) -> None:
        style = self.style
        line = self.canvas.beginText()
        line.setFont(font, style.font_size)
        x = style.margin
        for value, width in zip(cells, self.widths, strict=False):
            text = "" if value is None else str(value)
            if text:
                line.setTextOrigin(x, y)
                line.textOut(fit_text(text, width - style.cell_padding, font, style.font_size))
            x += width
        self.canvas.drawText(line)

    def save(self) -> None:
        self.canvas.save()


def _pages(rows: Iterable[Sequence[object]], size: int) -> Iterator[list[Sequence[object]]]:
    page: list[Sequence[object]] = []
    for row in rows:
        page.append(row)
        if len(page) == size:
            yield page
            page = []
    if page:
        yield page


def write_table_pdf(
    out: IO[bytes],
    *,
    title: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[object]],
    total: int,
    weights: Sequence[float] | None = None,
    style: PageStyle | None = None,
) -> int:
    """Write ``rows`` as a paged table PDF to ``out``; return the number of rows written.

    ``total`` is the number of rows announced in the page footers ("rows 1-52 of
    5000"); the caller knows it because it already counted them (the Maxsight PDF
    limit). An empty ``rows`` gives one page with the header and "no rows".
    """
    if not columns:
        raise ValueError("columns: at least one column is required")
    register_fonts()
    style = style or PageStyle()
    widths = column_widths(columns, weights, style.table_width)
    table = _TableCanvas(out, title, columns, widths, style)
    written = 0
    for page in _pages(rows, style.rows_per_page()):
        table.draw_page(page, written, total)
        written += len(page)
    if written == 0:
        table.draw_page([], 0, 0)
    table.save()
    return written


def render_table_pdf(
    *,
    title: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[object]],
    total: int,
    weights: Sequence[float] | None = None,
    style: PageStyle | None = None,
) -> bytes:
    """:func:`write_table_pdf` into memory; convenient for small tables and tests."""
    buffer = io.BytesIO()
    write_table_pdf(
        buffer,
        title=title,
        columns=columns,
        rows=rows,
        total=total,
        weights=weights,
        style=style,
    )
    return buffer.getvalue()
