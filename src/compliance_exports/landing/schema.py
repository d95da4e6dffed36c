"""Declared dataset schemas (column -> type) and how a file's header is matched to one.

A dataset declares the columns it relies on; everything else in a file is kept as a
string column. Declared-string and undeclared columns are never type-inferred, so
identifiers such as ``000123`` keep their leading zeros.

Types: ``string``, ``int64``, ``float64``, ``bool``, ``timestamp`` (microseconds, UTC),
``date`` and ``decimal(precision, scale)``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from compliance_exports.landing.errors import LandingError

if TYPE_CHECKING:
    import pyarrow as pa

# pyarrow is imported only where Arrow types are built: the registry validates declared
# schemas at DAG parse time, which must stay free of heavy imports.
_DECIMAL = re.compile(r"^decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)$")
_SIMPLE_TYPES: tuple[str, ...] = ("string", "int64", "float64", "bool", "timestamp", "date")
TYPE_NAMES = (*_SIMPLE_TYPES, "decimal(p,s)")


def _arrow_simple(name: str) -> pa.DataType:
    import pyarrow as pa

    return {
        "string": pa.string(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "date": pa.date32(),
    }[name]


@dataclass(frozen=True)
class ColumnType:
    """A declared column type, by the name a registry file uses (``int64``, ``decimal(18,2)``)."""

    name: str
    precision: int = 0
    scale: int = 0

    def __post_init__(self) -> None:
        if self.name == "decimal":
            if not 1 <= self.precision <= 38 or not 0 <= self.scale <= self.precision:
                raise ValueError(
                    f"decimal({self.precision},{self.scale}) needs 1 <= precision <= 38 "
                    "and 0 <= scale <= precision"
                )
        elif self.name not in _SIMPLE_TYPES:
            raise ValueError(f"unknown column type {self.name!r} (known: {', '.join(TYPE_NAMES)})")

    @classmethod
    def parse(cls, text: str) -> ColumnType:
        if not isinstance(text, str):
            raise TypeError(f"a column type is a string such as 'int64', not {text!r}")
        spelled = text.strip().lower()
        decimal = _DECIMAL.match(spelled)
        if decimal:
            return cls("decimal", int(decimal.group(1)), int(decimal.group(2)))
        return cls(spelled)

    @property
    def arrow_type(self) -> pa.DataType:
        import pyarrow as pa

        if self.name == "decimal":
            return pa.decimal128(self.precision, self.scale)
        return _arrow_simple(self.name)

    def __str__(self) -> str:
        if self.name == "decimal":
            return f"decimal({self.precision},{self.scale})"
        return self.name


STRING = ColumnType("string")


@dataclass(frozen=True)
class DatasetSchema:
    """The columns a dataset declares, in the order the curated table shows them."""

    columns: tuple[tuple[str, ColumnType], ...] = ()

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for name, _ in self.columns:
            if not name:
                raise ValueError("a declared column name is empty")
            if name in seen:
                raise ValueError(f"column {name!r} is declared twice")
            seen.add(name)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, str | ColumnType]) -> DatasetSchema:
        """Build from ``{"column": "type"}``, as a registry YAML file spells it."""
        if not isinstance(mapping, Mapping):
            raise TypeError(f"a schema maps column names to types, not {type(mapping).__name__}")
        columns = []
        for name, spelled in mapping.items():
            if not isinstance(name, str):
                raise TypeError(f"column name {name!r} is not a string")
            try:
                ctype = spelled if isinstance(spelled, ColumnType) else ColumnType.parse(spelled)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"column {name!r}: {exc}") from None
            columns.append((name, ctype))
        return cls(tuple(columns))

    def to_mapping(self) -> dict[str, str]:
        return {name: str(ctype) for name, ctype in self.columns}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)


@dataclass(frozen=True)
class ResolvedSchema:
    """A declared schema matched to one file's header: the output table and the drift."""

    columns: tuple[tuple[str, ColumnType], ...]
    declared: frozenset[str]
    added: tuple[str, ...] = ()  # in the file, not declared: landed as strings
    missing: tuple[str, ...] = ()  # declared, not in the file: landed as null columns
    extra: tuple[str, ...] = field(default=())  # added by the reader, e.g. ``_sheet``

    @property
    def arrow_schema(self) -> pa.Schema:
        import pyarrow as pa

        return pa.schema([pa.field(name, ctype.arrow_type) for name, ctype in self.columns])

    def type_of(self, name: str) -> ColumnType:
        return dict(self.columns)[name]

    def drift(self) -> dict[str, list[str]]:
        return {"added": list(self.added), "missing": list(self.missing)}

    def describe(self) -> list[dict[str, object]]:
        """The schema as the manifest records it."""
        return [
            {"name": name, "type": str(ctype), "declared": name in self.declared}
            for name, ctype in self.columns
        ]


def check_header(header: Sequence[str], where: str) -> None:
    """Refuse headers a table cannot hold: empty or repeated column names."""
    seen: set[str] = set()
    for position, name in enumerate(header, start=1):
        if not name.strip():
            raise LandingError(f"{where}: header column {position} has no name")
        if name in seen:
            raise LandingError(f"{where}: header names column {name!r} twice")
        seen.add(name)


def resolve(
    schema: DatasetSchema, header: Sequence[str], extra: Sequence[str] = ()
) -> ResolvedSchema:
    """Declared columns first (declared order), then undeclared ones (file order) as strings.

    ``extra`` are columns the reader adds (``_sheet``, ``_file``): strings, never drift.
    """
    in_file = set(header)
    declared = set(schema.names)
    added = tuple(name for name in header if name not in declared)
    missing = tuple(name for name in schema.names if name not in in_file and name not in extra)
    columns = (
        *schema.columns,
        *((name, STRING) for name in added),
        *((name, STRING) for name in extra if name not in declared),
    )
    return ResolvedSchema(
        columns=tuple(columns),
        declared=frozenset(declared),
        added=added,
        missing=missing,
        extra=tuple(extra),
    )
