"""Deterministic export rows for the vendor simulators, streamed, never held in memory.

Every simulator draws its export contents from here, so the same request against the
same seed gives the same bytes, whatever the row count:

* row ``i`` of a dataset is a pure function of ``(seed, dataset name, variant, i)``
  (:meth:`Dataset.row`); a 1,000,000-row export is a generator, not a list;
* :class:`RowRandom` is the per-row random source with the helpers vendor datasets
  are built from (names, emails, ids, timestamps, free text); SailPoint and Maxsight
  declare their own :class:`Dataset` with it;
* the awkward cases real exports have are generated on purpose: numeric-looking ids
  with leading zeros, values with commas and double quotes, a few embedded newlines,
  unicode names, blank cells, timestamps with and without milliseconds;
* :func:`select_rows` filters while streaming, :func:`ordered_rows` sorts through a
  key-only index (bounded: at most ``SORT_INDEX_LIMIT`` matching rows, see its
  docstring), :func:`count_rows` states how many rows an export holds after its filter;
* :func:`csv_chunks` renders rows as CSV byte chunks of bounded size;
  :meth:`Dataset.csv_chunks` is the faster path for a whole, unfiltered table;
* :func:`download_response` streams a file body with the ``truncate`` and
  ``drop_connection`` faults and single byte ranges.

Row values are typed (``str``, ``int``, ``float``, ``bool``, timezone-aware
``datetime``, ``None`` for a blank cell) so filters compare them as the vendor would;
:func:`render_value` is the one place they become text.

Speed: a cycled dataset (``Dataset.cycle``) costs a few microseconds a row on an idle
core (about 17 s for a million Oleria rows through HTTP on the shared 2-core machine
under load); a fully built row (``cycle=0``) costs several times more.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import hashlib
import io
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from starlette.responses import StreamingResponse

from include.simulators.base import SimState
from include.simulators.clock import DATA_ANCHOR

Row = dict[str, Any]
ColumnKind = Literal["string", "number", "boolean", "timestamp", "enum"]
T = TypeVar("T")

_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_WORD = 1 << 32
_LCG_MULTIPLIER = 6364136223846793005  # Knuth's MMIX constants
_LCG_INCREMENT = 1442695040888963407

# Generated timestamps fall in the two years before the simulators' data anchor: the
# coming midnight of SIM_TODAY (include/simulators/clock.py), so nightly windowed
# exports of "yesterday" find data on any day, and the same seed and SIM_TODAY give
# the same bytes.
TIMESTAMP_ANCHOR = DATA_ANCHOR
TIMESTAMP_SPAN = dt.timedelta(days=730)

# Sorting holds one small key record per matching row (the sort fields and the row
# index). Up to this many matching rows that costs well under 100 MB; simulators
# refuse to sort more (see ordered_rows).
SORT_INDEX_LIMIT = 250_000

CSV_CHUNK_BYTES = 64 * 1024

# Cycled datasets (Dataset.cycle) cache at most this many row bodies, all datasets
# together: a few tens of MB at most.
BODY_CACHE_ROWS = 16_384
DEFAULT_CYCLE = 4_096
_PER_ROW_SALT = 0x5EED5EED5EED5EED


# --------------------------------------------------------------------------- vocabulary

FIRST_NAMES: tuple[str, ...] = (
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Margaret",
    "Dennis",
    "Barbara",
    "Ken",
    "Frances",
    "Edsger",
    "Radia",
    "Tim",
    "Sophie",
    "Yukihiro",
    "Guido",
    "Anita",
    "Hedy",
    "Niklaus",
    "José",
    "Zoë",
    "Søren",
    "Chloé",
    "Łukasz",
    "Ólafur",
    "Mário",
    "Beyoncé",
    "Renée",
    "Wei",
    "Aiko",
    "Priya",
    "Oluwaseun",
    "Nguyễn",
    "Σωκράτης",
    "Дмитрий",
    "李",
    "Ngozi",
)
LAST_NAMES: tuple[str, ...] = (
    "Lovelace",
    "Turing",
    "Hopper",
    "Torvalds",
    "Hamilton",
    "Ritchie",
    "Liskov",
    "Thompson",
    "Allen",
    "Dijkstra",
    "Perlman",
    "Berners-Lee",
    "Wilson",
    "Matsumoto",
    "van Rossum",
    "Borg",
    "Lamarr",
    "Wirth",
    "Müller",
    "Ångström",
    "O'Brien",
    "Kierkegaard",
    "Brontë",
    "Wałęsa",
    "Guðmundsson",
    "Conceição",
    "Zhang",
    "Tanaka",
    "Iyer",
    "Adeyemi",
    "Trần",
    "Παπαδόπουλος",
    "Иванов",
    "王",
    "Okafor",
    "García Márquez",
)
NAME_SUFFIXES: tuple[str, ...] = ("Jr.", "Sr.", "III", "PhD")
EMAIL_DOMAINS: tuple[str, ...] = ("example.com", "corp.example.com", "example.org")
DEPARTMENTS: tuple[str, ...] = (
    "Engineering",
    "Finance",
    "Human Resources",
    "Legal",
    "Marketing",
    "Sales",
    "Security",
    "IT Operations",
    "Research, Development & Design",
    'Office of the "CEO"',
)
APPLICATIONS: tuple[str, ...] = (
    "Okta",
    "Salesforce",
    "GitHub",
    "AWS",
    "Google Workspace",
    "Microsoft 365",
    "Slack",
    "Snowflake",
    "Workday",
    "ServiceNow",
    "Atlassian, Jira",
    "Zoom",
)
ENVIRONMENTS: tuple[str, ...] = ("prod", "staging", "dev", "eu-prod", "us-prod")
WORDS: tuple[str, ...] = (
    "access",
    "review",
    "quarterly",
    "contractor",
    "legacy",
    "break-glass",
    "shared",
    "mailbox",
    "admin",
    "read-only",
    "approved",
    "ticket",
    "exception",
    "owner",
    "audit",
    "temporary",
    "migration",
    "vendor",
    "on-call",
    "payroll",
)


# --------------------------------------------------------------------------- randomness


def _mix(value: int) -> int:
    """SplitMix64 finaliser: a well-spread 64-bit value from any 64-bit input."""
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


@functools.lru_cache(maxsize=1024)
def stream_key(seed: int, name: str) -> int:
    """A 64-bit key for one (seed, dataset/variant name) pair."""
    digest = hashlib.blake2b(f"{seed}\x00{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


class RowRandom:
    """The random source of one row: a 64-bit LCG started from SplitMix64(key, index).

    Cheap to create (no hashing per row) and to draw from, and platform-independent,
    so row ``i`` is the same on every machine and is generated without generating
    rows ``0..i-1``. Good enough for test data, not for anything else.
    """

    __slots__ = ("_state",)

    def __init__(self, key: int, index: int) -> None:
        self._state = _mix((key + index * _GOLDEN) & _MASK64)

    @classmethod
    def for_row(cls, seed: int, name: str, index: int) -> RowRandom:
        return cls(stream_key(seed, name), index)

    def bits(self) -> int:
        """The next 32 random bits (the high half of a 64-bit LCG step)."""
        self._state = (self._state * _LCG_MULTIPLIER + _LCG_INCREMENT) & _MASK64
        return self._state >> 32

    def below(self, n: int) -> int:
        """An integer in ``[0, n)`` (``n`` up to 2**64)."""
        if n <= _WORD:
            return (self.bits() * n) >> 32
        return (((self.bits() << 32) | self.bits()) * n) >> 64

    def between(self, low: int, high: int) -> int:
        """An integer in ``[low, high]``."""
        return low + self.below(high - low + 1)

    def chance(self, probability: float) -> bool:
        """True with the given probability."""
        return self.bits() < probability * _WORD

    def choice(self, options: Sequence[T]) -> T:
        return options[(self.bits() * len(options)) >> 32]

    def sample(self, options: Sequence[T], count: int) -> list[T]:
        """``count`` distinct options (fewer if there are not enough), in option order."""
        picked = {self.below(len(options)) for _ in range(count)}
        return [options[i] for i in sorted(picked)]

    def maybe(self, value: T, blank: float = 0.05) -> T | None:
        """``value``, or ``None`` (a blank cell) with probability ``blank``."""
        return None if self.chance(blank) else value

    # ----------------------------------------------------------------------- people

    def person(self) -> tuple[str, str]:
        """A (first, last) name pair; some unicode, some with apostrophes."""
        return self.choice(FIRST_NAMES), self.choice(LAST_NAMES)

    def full_name(self, first: str, last: str) -> str:
        """A display name; now and then "Last, First" or with a suffix (commas in CSV)."""
        roll = self.below(20)
        if roll == 0:
            return f"{last}, {first}"
        if roll == 1:
            return f"{first} {last}, {self.choice(NAME_SUFFIXES)}"
        if roll == 2:
            return f'{first} "{self.choice(WORDS)}" {last}'
        return f"{first} {last}"

    def email(self, first: str, last: str, number: int | None = None) -> str:
        """An ASCII-ish mailbox for a person (unicode names kept as typed, like real data)."""
        local = f"{first}.{last}".lower().replace(" ", "").replace("'", "")
        suffix = "" if number is None else str(number)
        return f"{local}{suffix}@{self.choice(EMAIL_DOMAINS)}"

    # ----------------------------------------------------------------------- identifiers

    def uuid(self) -> str:
        """A random-looking version-4 UUID string."""
        high = (self.bits() << 32) | self.bits()
        low = (self.bits() << 32) | self.bits()
        text = f"{high:016x}{low:016x}"
        return f"{text[:8]}-{text[8:12]}-4{text[13:16]}-{'89ab'[low % 4]}{text[17:20]}-{text[20:]}"

    def hex_id(self, length: int = 32) -> str:
        """A lowercase hex id of ``length`` characters (SailPoint-style ids)."""
        digits = ""
        while len(digits) < length:
            digits += f"{self.bits():08x}"
        return digits[:length]

    def digits(self, width: int, leading_zeros: float = 0.3) -> str:
        """A numeric-looking id of ``width`` digits; often starting with zeros."""
        zeros = self.between(1, max(1, width // 2)) if self.chance(leading_zeros) else 0
        body = str(self.below(10 ** (width - zeros))).zfill(width - zeros)
        return "0" * zeros + body

    # ----------------------------------------------------------------------- time

    def timestamp(
        self,
        *,
        anchor: dt.datetime = TIMESTAMP_ANCHOR,
        span: dt.timedelta = TIMESTAMP_SPAN,
        milliseconds: float = 0.5,
    ) -> dt.datetime:
        """A UTC instant in ``[anchor - span, anchor)``; some with a millisecond part."""
        seconds = self.below(int(span.total_seconds()))
        millis = self.between(1, 999) if self.chance(milliseconds) else 0
        return anchor - span + dt.timedelta(seconds=seconds, milliseconds=millis)

    def later(self, start: dt.datetime, *, within: dt.timedelta) -> dt.datetime:
        """An instant after ``start``, at most ``within`` later, second precision."""
        return start + dt.timedelta(seconds=self.between(1, int(within.total_seconds())))

    # ----------------------------------------------------------------------- text

    def sentence(self, *, words: tuple[int, int] = (3, 9)) -> str:
        """Free text; now and then with a comma, a quoted word or an embedded newline."""
        picked = [self.choice(WORDS) for _ in range(self.between(*words))]
        roll = self.below(50)
        if roll == 0:
            picked.insert(len(picked) // 2, "\n")
        elif roll < 5:
            picked[0] += ","
        elif roll < 8:
            picked[-1] = f'"{picked[-1]}"'
        return " ".join(picked).replace(" \n ", "\n").capitalize()


# --------------------------------------------------------------------------- datasets


@dataclass(frozen=True)
class Column:
    name: str
    kind: ColumnKind = "string"


RowBuilder = Callable[[RowRandom, int], Row]


@dataclass(frozen=True, eq=False)  # identity hash: it keys the body cache on every row
class Dataset:
    """A named table whose row ``i`` is built from its own :class:`RowRandom`.

    ``variant`` separates independent tables of one shape (e.g. one Veza certification
    from another) without declaring a dataset per variant.

    With ``cycle`` > 0 the expensive part of a row (``build``) repeats every ``cycle``
    rows and is cached (bounded), and ``per_row`` adds the columns that must differ on
    every row (ids); that keeps a million-row export at a few microseconds a row.
    With ``cycle`` == 0 every row is built in full.
    """

    name: str
    columns: tuple[Column, ...]
    build: RowBuilder
    per_row: RowBuilder | None = None
    cycle: int = 0

    @functools.cached_property
    def header(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    @functools.cached_property
    def positions(self) -> dict[str, int]:
        return {name: position for position, name in enumerate(self.header)}

    def kinds(self) -> dict[str, ColumnKind]:
        return {column.name: column.kind for column in self.columns}

    def key(self, seed: int, variant: str = "") -> int:
        return stream_key(seed, f"{self.name}/{variant}")

    def row(self, seed: int, index: int, *, variant: str = "") -> Row:
        """Row ``index`` (0-based): the same for the same (seed, variant, index)."""
        if index < 0:
            raise ValueError(f"row index must be >= 0, got {index}")
        return self.row_at(self.key(seed, variant), index)

    def row_at(self, key: int, index: int) -> Row:
        """Row ``index`` of the table whose stream key is ``key`` (see :meth:`key`)."""
        if not self.cycle:
            return self.build(RowRandom(key, index), index)
        body, body_cells = _cached_body(self, key, index % self.cycle)
        row = DatasetRow(body)
        cells = list(body_cells)
        if self.per_row is not None:
            unique = self.per_row(RowRandom(key ^ _PER_ROW_SALT, index), index)
            row.update(unique)
            for name, value in unique.items():
                cells[self.positions[name]] = render_value(value)
        row.header, row.cells = self.header, cells
        return row

    def csv_chunks(self, seed: int, count: int, *, variant: str = "") -> Iterator[bytes]:
        """The whole table as CSV (the fast path of an unfiltered, unsorted export)."""
        key = self.key(seed, variant)
        if count < 0:
            raise ValueError(f"row count must be >= 0, got {count}")
        return csv_cell_chunks(self.header, (self._cells(key, index) for index in range(count)))

    def _cells(self, key: int, index: int) -> list[str]:
        if not self.cycle:
            return rendered(self.build(RowRandom(key, index), index), self.header)
        cells = list(_cached_body(self, key, index % self.cycle)[1])
        if self.per_row is not None:
            unique = self.per_row(RowRandom(key ^ _PER_ROW_SALT, index), index)
            for name, value in unique.items():
                cells[self.positions[name]] = render_value(value)
        return cells

    def rows(self, seed: int, count: int, *, start: int = 0, variant: str = "") -> Iterator[Row]:
        """Rows ``start .. count-1``, generated one at a time."""
        if count < 0:
            raise ValueError(f"row count must be >= 0, got {count}")
        key = self.key(seed, variant)
        for index in range(start, count):
            yield self.row_at(key, index)


class DatasetRow(dict[str, Any]):
    """A row of a cycled dataset that also carries its cells already rendered as text.

    :func:`csv_chunks` writes ``cells`` directly when its header is ``header``; treat
    the row as a value (a changed key would not change ``cells``).
    """

    __slots__ = ("cells", "header")
    cells: list[str]
    header: tuple[str, ...]


@functools.lru_cache(maxsize=BODY_CACHE_ROWS)
def _cached_body(dataset: Dataset, key: int, index: int) -> tuple[Row, tuple[str, ...]]:
    body = dataset.build(RowRandom(key, index), index)
    return body, tuple(rendered(body, dataset.header))


_DATASETS: dict[str, Dataset] = {}


def register(dataset: Dataset) -> Dataset:
    """Make ``dataset`` available to :func:`get_dataset` (the name must be new)."""
    if dataset.name in _DATASETS and _DATASETS[dataset.name] is not dataset:
        raise ValueError(f"dataset {dataset.name!r} is already registered")
    _DATASETS[dataset.name] = dataset
    return dataset


def get_dataset(name: str) -> Dataset:
    try:
        return _DATASETS[name]
    except KeyError:
        known = ", ".join(sorted(_DATASETS))
        raise KeyError(f"unknown dataset {name!r}; known: {known}") from None


def dataset_names() -> tuple[str, ...]:
    return tuple(sorted(_DATASETS))


# --------------------------------------------------------------------------- Oleria


def _oleria_identity_unique(r: RowRandom, index: int) -> Row:
    return {"dormantDays": r.maybe(r.between(0, 400), blank=0.1)}


def _oleria_identity(r: RowRandom, index: int) -> Row:
    first, last = r.person()
    created = r.timestamp()
    human = r.below(5) != 0
    application = r.choice(APPLICATIONS)
    return {
        "identityName": r.full_name(first, last) if human else f"svc-{r.choice(WORDS)}",
        "accountEmail": r.maybe(r.email(first, last), blank=0.03),
        "identityType": "human" if human else r.choice(("nonHuman", "serviceAccount")),
        "application": application,
        "applicationInstance": f"{application.split(',')[0].lower()}-{r.choice(ENVIRONMENTS)}",
        "department": r.maybe(r.choice(DEPARTMENTS), blank=0.08),
        "isAdmin": r.chance(0.07),
        "assignedApplicationCount": r.between(0, 40),
        "assignedGroupsCount": r.between(0, 120),
        "assignedRolesCount": r.between(0, 25),
        "authenticationMethods": ", ".join(r.sample(("password", "sso", "mfa", "fido2"), 2)),
        "dormantDays": None,  # per row
        "createdAt": created,
        "lastLoginAt": r.maybe(r.later(created, within=dt.timedelta(days=365)), blank=0.12),
    }


OLERIA_IDENTITIES = register(
    Dataset(
        "oleria.accessInventoryIdentitiesV2",
        (
            Column("identityName"),
            Column("accountEmail"),
            Column("identityType", "enum"),
            Column("application"),
            Column("applicationInstance"),
            Column("department"),
            Column("isAdmin", "boolean"),
            Column("assignedApplicationCount", "number"),
            Column("assignedGroupsCount", "number"),
            Column("assignedRolesCount", "number"),
            Column("authenticationMethods"),
            Column("dormantDays", "number"),
            Column("createdAt", "timestamp"),
            Column("lastLoginAt", "timestamp"),
        ),
        _oleria_identity,
        per_row=_oleria_identity_unique,
        cycle=DEFAULT_CYCLE,
    )
)


def _oleria_generic_unique(r: RowRandom, index: int) -> Row:
    return {"id": r.digits(8)}


def _oleria_generic(r: RowRandom, index: int) -> Row:
    first, last = r.person()
    created = r.timestamp()
    return {
        "id": "",  # per row
        "name": r.full_name(first, last),
        "email": r.maybe(r.email(first, last), blank=0.04),
        "type": r.choice(("user", "group", "role", "account", "resource")),
        "application": r.choice(APPLICATIONS),
        "status": r.choice(("active", "inactive", "suspended")),
        "riskScore": round(r.below(10_001) / 100, 2),
        "isPrivileged": r.chance(0.1),
        "owner": r.maybe(r.full_name(*r.person()), blank=0.2),
        "description": r.maybe(r.sentence(), blank=0.3),
        "createdAt": created,
        "updatedAt": r.maybe(r.later(created, within=dt.timedelta(days=200)), blank=0.05),
    }


OLERIA_GENERIC_COLUMNS: tuple[Column, ...] = (
    Column("id"),
    Column("name"),
    Column("email"),
    Column("type", "enum"),
    Column("application"),
    Column("status", "enum"),
    Column("riskScore", "number"),
    Column("isPrivileged", "boolean"),
    Column("owner"),
    Column("description"),
    Column("createdAt", "timestamp"),
    Column("updatedAt", "timestamp"),
)


def oleria_dataset(context: str) -> Dataset:
    """The dataset of one Oleria download context (generic columns unless declared)."""
    name = f"oleria.{context}"
    if name in _DATASETS:
        return _DATASETS[name]
    dataset = Dataset(
        name,
        OLERIA_GENERIC_COLUMNS,
        _oleria_generic,
        per_row=_oleria_generic_unique,
        cycle=DEFAULT_CYCLE,
    )
    return register(dataset)


# --------------------------------------------------------------------------- Veza

VEZA_DECISIONS: tuple[str, ...] = (
    "RESULT_DECISION_NONE",
    "RESULT_DECISION_ACCEPTED",
    "RESULT_DECISION_REJECTED",
    "RESULT_DECISION_FIXED",
)
VEZA_SIGNED_OFF_STATES: tuple[str, ...] = ("NOT_SIGNED_OFF", "SIGNED_OFF")
VEZA_SOURCE_TYPES: tuple[str, ...] = ("OktaUser", "AzureADUser", "GoogleWorkspaceUser", "LocalUser")
VEZA_DESTINATION_TYPES: tuple[str, ...] = (
    "AwsIamRole",
    "S3Bucket",
    "SnowflakeRole",
    "GithubRepository",
    "SalesforceProfile",
)
VEZA_PERMISSIONS: tuple[str, ...] = (
    "s3:GetObject",
    "s3:PutObject",
    "s3:ListBucket",
    "iam:PassRole",
    "USAGE",
    "SELECT",
    "OWNERSHIP",
    "admin",
    "write",
    "read",
)
VEZA_EFFECTIVE: tuple[str, ...] = (
    "DataRead",
    "DataWrite",
    "DataCreate",
    "DataDelete",
    "MetadataRead",
    "MetadataWrite",
)
VEZA_CHANGES: tuple[str, ...] = ("added", "removed", "changed", "unchanged")


def _veza_review_unique(r: RowRandom, index: int) -> Row:
    return {"result_id": r.uuid()}


def _veza_review_row(r: RowRandom, index: int) -> Row:
    first, last = r.person()
    decision = r.choice(VEZA_DECISIONS)
    decided = decision != "RESULT_DECISION_NONE"
    reviewer_names = [r.person() for _ in range(r.between(1, 3))]
    reviewers = "; ".join(r.email(f, s) for f, s in reviewer_names)
    updated = r.timestamp()
    return {
        "result_id": "",  # per row
        "source.name": r.full_name(first, last),
        "source.email": r.maybe(r.email(first, last, index % 53 or None), blank=0.02),
        "source.type": r.choice(VEZA_SOURCE_TYPES),
        "source.is_active": r.chance(0.9),
        "source.department": r.maybe(r.choice(DEPARTMENTS), blank=0.08),
        "source.manager": r.maybe(r.full_name(*r.person()), blank=0.15),
        "destination.name": f"{r.choice(WORDS)}-{r.choice(ENVIRONMENTS)}-{r.digits(4)}",
        "destination.type": r.choice(VEZA_DESTINATION_TYPES),
        "destination.datasource_id": r.digits(12, leading_zeros=0.5),
        "concrete_permissions": ", ".join(r.sample(VEZA_PERMISSIONS, 3)),
        "effective_permissions": ", ".join(r.sample(VEZA_EFFECTIVE, 2)),
        "decision": decision,
        "notes": r.sentence() if decided and r.chance(0.4) else None,
        "signed_off_state": VEZA_SIGNED_OFF_STATES[decided and r.chance(0.7)],
        "reviewers": reviewers,
        "decision_made_by": r.email(*reviewer_names[0]) if decided else None,
        "decision_made_at": r.later(updated, within=dt.timedelta(days=20)) if decided else None,
        "updated_at": updated,
    }


VEZA_ACCESS_REVIEW = register(
    Dataset(
        "veza.access_review",
        (
            Column("result_id"),
            Column("source.name"),
            Column("source.email"),
            Column("source.type", "enum"),
            Column("source.is_active", "boolean"),
            Column("source.department"),
            Column("source.manager"),
            Column("destination.name"),
            Column("destination.type", "enum"),
            Column("destination.datasource_id"),
            Column("concrete_permissions"),
            Column("effective_permissions"),
            Column("decision", "enum"),
            Column("notes"),
            Column("signed_off_state", "enum"),
            Column("reviewers"),
            Column("decision_made_by"),
            Column("decision_made_at", "timestamp"),
            Column("updated_at", "timestamp"),
        ),
        _veza_review_row,
        per_row=_veza_review_unique,
        cycle=DEFAULT_CYCLE,
    )
)


def veza_diff_row(
    seed: int, index: int, *, certification_id: str, previous_certification_id: str
) -> Row:
    """Row ``index`` of a diff export: a review row with a ``change`` column.

    A ``removed`` row is the previous certification's row at that index; the others
    carry the current certification's row (``changed``: a different decision or
    reviewers than before).
    """
    pair = f"{previous_certification_id}->{certification_id}"
    change = VEZA_CHANGES[
        _diff_bucket(RowRandom.for_row(seed, f"veza.diff/{pair}", index).below(20))
    ]
    variant = previous_certification_id if change == "removed" else certification_id
    return {**VEZA_ACCESS_REVIEW.row(seed, index, variant=variant), "change": change}


def veza_diff_rows(
    seed: int, count: int, *, certification_id: str, previous_certification_id: str
) -> Iterator[Row]:
    """Rows ``0 .. count-1`` of a diff export (see :func:`veza_diff_row`)."""
    for index in range(count):
        yield veza_diff_row(
            seed,
            index,
            certification_id=certification_id,
            previous_certification_id=previous_certification_id,
        )


def _diff_bucket(roll: int) -> int:
    """1 in 20 added, 1 in 20 removed, 3 in 20 changed, the rest unchanged."""
    if roll == 0:
        return 0
    if roll == 1:
        return 1
    return 2 if roll < 5 else 3


# --------------------------------------------------------------------------- selection


def select_rows(rows: Iterable[Row], where: Callable[[Row], bool] | None = None) -> Iterator[Row]:
    """The rows passing ``where`` (all rows without one), streamed in order."""
    return iter(rows) if where is None else (row for row in rows if where(row))


def count_rows(rows: Iterable[Row], where: Callable[[Row], bool] | None = None) -> int:
    """How many rows an export holds after its filter: what tests compare with."""
    return sum(1 for _ in select_rows(rows, where))


INDEX_FIELD = "\x00index"


def ordered_rows(
    rows: Iterable[Row],
    *,
    fields: Sequence[str],
    order: Callable[[list[Row]], Sequence[Mapping[str, Any]]],
    row_at: Callable[[int], Row],
    where: Callable[[Row], bool] | None = None,
    limit: int = SORT_INDEX_LIMIT,
) -> Iterator[Row]:
    """Sorted rows through a key-only index, then regenerated one at a time.

    ``rows`` is scanned once (filtered by ``where``) keeping, per matching row, only
    ``fields`` and its index (``INDEX_FIELD``); ``order`` sorts those key records with
    the vendor's rules; rows are then rebuilt in that order with ``row_at(index)``.
    Memory grows with matching rows x sort fields (roughly 300 bytes a row), so more
    than ``limit`` matching rows raise ``ValueError`` instead of eating the machine.
    """
    index: list[Row] = []
    for position, row in enumerate(rows):
        if where is not None and not where(row):
            continue
        if len(index) >= limit:
            raise ValueError(f"sorting more than {limit} rows is not supported by the simulator")
        index.append({**{f: row.get(f) for f in fields}, INDEX_FIELD: position})
    for record in order(index):
        yield row_at(record[INDEX_FIELD])


# --------------------------------------------------------------------------- rendering


@functools.lru_cache(maxsize=65_536)  # cycled datasets repeat their timestamps
def format_timestamp(value: dt.datetime) -> str:
    """ISO-8601 UTC with ``Z``; milliseconds only when the instant has them."""
    if value.tzinfo is not dt.UTC:
        value = value.astimezone(dt.UTC)
    timespec = "milliseconds" if value.microsecond else "seconds"
    return value.replace(tzinfo=None).isoformat(timespec=timespec) + "Z"


def render_value(value: Any) -> str:
    """A row value as CSV text: blanks empty, booleans lowercase, timestamps ISO-8601."""
    if type(value) is str:
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return format_timestamp(value)
    return str(value)


_FAST_TEXT: dict[Any, str] = {None: "", True: "true", False: "false"}


def rendered(row: Mapping[str, Any], header: Sequence[str]) -> list[str]:
    """The row's cells in ``header`` order, as text (the hot loop of every CSV export)."""
    out: list[str] = []
    value: Any
    for value in map(row.get, header):
        kind = type(value)
        if kind is str:
            out.append(value)
        elif kind is dt.datetime:
            out.append(format_timestamp(value))
        elif value is None or kind is bool:
            out.append(_FAST_TEXT[value])
        else:
            out.append(render_value(value))
    return out


def csv_chunks(
    header: Sequence[str],
    rows: Iterable[Mapping[str, Any]],
    *,
    chunk_bytes: int = CSV_CHUNK_BYTES,
    bom: bool = False,
    on_row: Callable[[], None] | None = None,
) -> Iterator[bytes]:
    """RFC 4180 CSV (CRLF, minimal quoting, UTF-8) as byte chunks of about ``chunk_bytes``.

    ``on_row`` is called once per data row written (simulators count rows with it).
    """
    header = tuple(header)
    cells = (_cells_of(row, header) for row in rows)
    return csv_cell_chunks(header, cells, chunk_bytes=chunk_bytes, bom=bom, on_row=on_row)


def _cells_of(row: Mapping[str, Any], header: tuple[str, ...]) -> Sequence[str]:
    if type(row) is DatasetRow and (row.header is header or row.header == header):
        return row.cells
    return rendered(row, header)


def csv_cell_chunks(
    header: Sequence[str],
    cell_rows: Iterable[Sequence[str]],
    *,
    chunk_bytes: int = CSV_CHUNK_BYTES,
    bom: bool = False,
    on_row: Callable[[], None] | None = None,
) -> Iterator[bytes]:
    """:func:`csv_chunks` for rows already rendered as text cells."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if bom:
        buffer.write("\ufeff")
    writer.writerow(header)
    for cells in cell_rows:
        writer.writerow(cells)
        if on_row is not None:
            on_row()
        if buffer.tell() >= chunk_bytes:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


# --------------------------------------------------------------------------- downloads


class DownloadCut(ConnectionError):
    """Raised inside a response body to drop the connection mid-download (a fault)."""


class _QuietCuts(logging.Filter):
    """Keep the server log free of the tracebacks our own download faults cause."""

    SHORT_BODY = ("Too little data for declared", "Response content shorter than Content-Length")

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, DownloadCut):
            return False
        return not (error is not None and any(text in str(error) for text in self.SHORT_BODY))


logging.getLogger("uvicorn.error").addFilter(_QuietCuts())


def cut_chunks(chunks: Iterable[bytes], *, after_bytes: int, drop: bool) -> Iterator[bytes]:
    """The first ``after_bytes`` bytes of ``chunks``; then stop, or raise DownloadCut."""
    sent = 0
    for chunk in chunks:
        room = after_bytes - sent
        if len(chunk) >= room:
            if room:
                yield chunk[:room]
            if drop:
                raise DownloadCut(f"connection dropped after {after_bytes} bytes")
            return
        sent += len(chunk)
        yield chunk


def _counted(chunks: Iterable[bytes], on_complete: Callable[[], None]) -> Iterator[bytes]:
    yield from chunks
    on_complete()


_BYTE_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class UnsatisfiableRange(ValueError):
    """A ``Range`` that starts past the end of the file (HTTP 416)."""


def requested_range(header: str | None, size: int | None) -> tuple[int, int] | None:
    """The inclusive ``(first, last)`` bytes a single-range ``Range`` header asks for.

    None means "send the whole file" (no header, an unknown size, several ranges or a
    malformed one, which RFC 9110 lets a server ignore); a range starting at or past
    the end raises UnsatisfiableRange.
    """
    match = _BYTE_RANGE.match(header.strip()) if header and size is not None else None
    if match is None or size is None or match.groups() == ("", ""):
        return None
    first_text, last_text = match.groups()
    if not first_text:  # a suffix: the last N bytes
        if int(last_text) == 0 or size == 0:
            raise UnsatisfiableRange(f"{header} of {size} bytes")
        return max(0, size - int(last_text)), size - 1
    first = int(first_text)
    if last_text and int(last_text) < first:
        return None
    if first >= size:
        raise UnsatisfiableRange(f"{header} of {size} bytes")
    return first, min(int(last_text), size - 1) if last_text else size - 1


def slice_chunks(chunks: Iterable[bytes], first: int, last: int) -> Iterator[bytes]:
    """Bytes ``first..last`` (inclusive) of the stream ``chunks``."""
    position = 0
    for chunk in chunks:
        end = position + len(chunk)
        if end > first:
            yield chunk[max(0, first - position) : last + 1 - position]
        position = end
        if position > last:
            return


def download_response(
    state: SimState,
    path: str,
    *,
    chunks: Iterable[bytes],
    size: int | None,
    media_type: str,
    headers: Mapping[str, str],
    on_complete: Callable[[], None] | None = None,
    byte_range: tuple[int, int] | None = None,
) -> StreamingResponse:
    """A streamed file body honouring the armed ``truncate``/``drop_connection`` faults.

    ``truncate`` declares a Content-Length larger than the bytes sent; ``drop_connection``
    closes the connection after ``after_bytes``. ``byte_range`` (see
    :func:`requested_range`) answers 206 with those bytes; ``on_complete`` runs after a
    full (not ranged) body.
    """
    out, status = dict(headers), 200
    if byte_range is not None and size is not None:
        first, last = byte_range
        chunks, status = slice_chunks(chunks, first, last), 206
        out["Content-Range"] = f"bytes {first}-{last}/{size}"
        size, on_complete = last - first + 1, None
    if size is not None:
        out["Content-Length"] = str(size)
    truncate = state.faults.take("truncate", path)
    drop = None if truncate else state.faults.take("drop_connection", path)
    if truncate is not None:
        out["Content-Length"] = str(max(size or 0, truncate.after_bytes + 1))
        body = cut_chunks(chunks, after_bytes=truncate.after_bytes, drop=False)
    elif drop is not None:
        body = cut_chunks(chunks, after_bytes=drop.after_bytes, drop=True)
    else:
        body = iter(chunks) if on_complete is None else _counted(chunks, on_complete)
    return StreamingResponse(body, status_code=status, media_type=media_type, headers=out)
