from __future__ import annotations

import pickle
from typing import TypeVar

import pytest

from compliance_exports.core.errors import (
    ExportError,
    ExportValidationError,
    FatalError,
    RetryableError,
    UnknownStatusError,
)

E = TypeVar("E", bound=BaseException)


def round_trip(error: E) -> E:
    """Pickle and unpickle our own, trusted exception (as Airflow does across processes)."""
    restored: E = pickle.loads(pickle.dumps(error))  # noqa: S301
    return restored


class TestHierarchy:
    @pytest.mark.parametrize(
        ("error_type", "family"),
        [
            (RetryableError, ExportError),
            (FatalError, ExportError),
            (ExportValidationError, FatalError),
            (UnknownStatusError, FatalError),
        ],
    )
    def test_family(self, error_type: type[Exception], family: type[Exception]) -> None:
        assert issubclass(error_type, family)

    def test_retryable_and_fatal_are_disjoint(self) -> None:
        assert not issubclass(RetryableError, FatalError)
        assert not issubclass(FatalError, RetryableError)


class TestRetryableError:
    def test_carries_retry_after(self) -> None:
        error = RetryableError("429 Too Many Requests", retry_after=2.5)
        assert error.retry_after == 2.5
        assert str(error) == "429 Too Many Requests"

    def test_retry_after_defaults_to_none(self) -> None:
        assert RetryableError("boom").retry_after is None

    def test_pickles_with_retry_after(self) -> None:
        restored = round_trip(RetryableError("slow down", retry_after=3))
        assert (str(restored), restored.retry_after) == ("slow down", 3)


class TestExportValidationError:
    def test_str_is_field_then_message(self) -> None:
        error = ExportValidationError("params.filterBy[1].filterType", "'gt' is not allowed")
        assert str(error) == "params.filterBy[1].filterType: 'gt' is not allowed"
        assert error.field == "params.filterBy[1].filterType"
        assert error.message == "'gt' is not allowed"

    def test_pickles(self) -> None:
        restored = round_trip(ExportValidationError("format", "bad"))
        assert (restored.field, restored.message, str(restored)) == ("format", "bad", "format: bad")


class TestUnknownStatusError:
    def test_message_names_vendor_status_and_known_words(self) -> None:
        error = UnknownStatusError("WEIRD", vendor="veza", known=("CREATED", "FINISHED"))
        assert str(error) == "veza reported unknown status 'WEIRD' (known: CREATED, FINISHED)"
        assert (error.status, error.vendor, error.known) == (
            "WEIRD",
            "veza",
            ("CREATED", "FINISHED"),
        )

    def test_message_without_vendor_or_known(self) -> None:
        assert str(UnknownStatusError("x")) == "vendor reported unknown status 'x'"

    def test_pickles(self) -> None:
        error = UnknownStatusError("WEIRD", vendor="oleria", known=["accepted"])
        restored = round_trip(error)
        assert (restored.status, restored.vendor, restored.known, str(restored)) == (
            "WEIRD",
            "oleria",
            ("accepted",),
            str(error),
        )
