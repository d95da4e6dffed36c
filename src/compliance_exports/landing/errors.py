"""Errors of the raw -> curated landing step (all fatal: the same file fails the same way)."""

from __future__ import annotations

from compliance_exports.core.errors import FatalError

SAMPLE_CHARS = 60


def sample(value: object) -> str:
    """A short, printable excerpt of an offending value for an error message."""
    text = repr(value)
    return text if len(text) <= SAMPLE_CHARS else text[: SAMPLE_CHARS - 3] + "..."


class LandingError(FatalError):
    """A raw file that cannot be landed as it is (format, header, layout)."""


class BadRowError(LandingError):
    """One row of the file is malformed or holds a value that does not fit its column.

    ``row`` counts records of the file with the header as row 1 (a spreadsheet's row
    number; a quoted value spanning lines is still one row). ``where`` names the
    file, zip member or sheet.
    """

    def __init__(
        self, *, where: str, row: int | None, column: str | None, value: object, reason: str
    ) -> None:
        self.where = where
        self.row = row
        self.column = column
        self.value = value
        self.reason = reason
        at = f"row {row}" if row is not None else "a row"
        col = f", column {column!r}" if column is not None else ""
        super().__init__(f"{where}: {at}{col}: {reason}: {sample(value)}")

    def __reduce__(self) -> tuple[object, ...]:
        return (_bad_row, (self.where, self.row, self.column, self.value, self.reason))


def _bad_row(
    where: str, row: int | None, column: str | None, value: object, reason: str
) -> BadRowError:
    return BadRowError(where=where, row=row, column=column, value=value, reason=reason)


class TooManyRejectedRowsError(LandingError):
    """Quarantine is on, but more rows were rejected than the policy tolerates."""
