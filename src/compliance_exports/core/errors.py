"""The exception types every part of the export lifecycle raises.

Two families decide what happens next: a :class:`RetryableError` (429, 5xx, a dropped
connection, a truncated download) is worth another attempt, a :class:`FatalError`
(4xx, a job the vendor failed, a request we refuse to send) is not.
"""

from __future__ import annotations

from collections.abc import Iterable


class ExportError(Exception):
    """Base class of every error raised by compliance_exports."""


class RetryableError(ExportError):
    """A transient failure: the same request may succeed later.

    ``retry_after`` is the wait in seconds the vendor asked for (``Retry-After``), if any.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class FatalError(ExportError):
    """A permanent failure: retrying the same request cannot help."""


class ExportValidationError(FatalError):
    """A request that breaks a vendor rule, caught before (or instead of) sending it.

    ``field`` is the path of the offending input as the vendor names it, e.g.
    ``params.filterBy[1].filterType``; ``str()`` reads ``"<field>: <message>"``.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def __reduce__(self) -> tuple[type[ExportValidationError], tuple[str, str]]:
        return (type(self), (self.field, self.message))


class UnknownStatusError(FatalError):
    """The vendor reported a status word we do not know: never treated as success."""

    def __init__(self, status: str, *, vendor: str = "", known: Iterable[str] = ()) -> None:
        self.status = status
        self.vendor = vendor
        self.known = tuple(known)
        who = f"{vendor} reported" if vendor else "vendor reported"
        message = f"{who} unknown status {status!r}"
        if self.known:
            message += f" (known: {', '.join(self.known)})"
        super().__init__(message)

    def __reduce__(self) -> tuple[object, ...]:
        return (_unknown_status, (self.status, self.vendor, self.known))


def _unknown_status(status: str, vendor: str, known: tuple[str, ...]) -> UnknownStatusError:
    return UnknownStatusError(status, vendor=vendor, known=known)
