"""Access drift: the change rows between two versions of a keyed snapshot."""

from __future__ import annotations

import datetime as dt
import json
import math
import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from compliance_exports.landing import changes
from compliance_exports.landing.changes import (
    ChangeSummary,
    DuplicateKeyError,
    SnapshotDiffError,
    diff_snapshots,
)
from compliance_exports.landing.errors import LandingError

UTC = dt.UTC
T0 = dt.datetime(2026, 11, 19, 8, 30, tzinfo=UTC)
T1 = dt.datetime(2026, 11, 20, 9, 15, 0, 123456, tzinfo=UTC)

SCHEMA = pa.schema(
    [
        ("identityId", pa.string()),
        ("name", pa.string()),
        ("isAdmin", pa.bool_()),
        ("groups", pa.int64()),
        ("lastLoginAt", pa.timestamp("us", tz="UTC")),
    ]
)
VALUES = ("name", "isAdmin", "groups", "lastLoginAt")

Write = Callable[..., Path]


@pytest.fixture
def write(tmp_path: Path) -> Write:
    """Write rows (dicts) as one Parquet part file; return its path."""
    counter = iter(range(1_000_000))

    def write_part(rows: Sequence[Mapping[str, Any]], schema: pa.Schema = SCHEMA) -> Path:
        path = tmp_path / "in" / f"part-{next(counter):05d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(list(rows), schema=schema), path)
        return path

    return write_part


def person(
    key: str,
    name: str | None = "Ada",
    admin: bool | None = False,
    groups: int | None = 3,
    login: dt.datetime | None = T0,
) -> dict[str, Any]:
    return {
        "identityId": key,
        "name": name,
        "isAdmin": admin,
        "groups": groups,
        "lastLoginAt": login,
    }


def values(row: Mapping[str, Any], *, only: Sequence[str] | None = None) -> dict[str, Any]:
    """The before/after struct of a row: every value column, or only some (others null)."""
    return {c: row[c] if only is None or c in only else None for c in VALUES}


def count_diffs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that grows by one for each key range (or whole snapshot) diffed."""
    diffs: list[int] = []
    real_diff = changes._diff

    def counting(*args: Any) -> Any:
        diffs.append(1)
        return real_diff(*args)

    monkeypatch.setattr(changes, "_diff", counting)
    return diffs


def read(parts: Sequence[Path]) -> list[dict[str, Any]]:
    return pa.concat_tables([pq.read_table(part) for part in parts]).to_pylist()


def run(
    before: Sequence[Path],
    after: Sequence[Path],
    out: Path,
    key: Sequence[str] = ("identityId",),
    **options: Any,
) -> tuple[ChangeSummary, list[dict[str, Any]], list[Path]]:
    summary, parts = diff_snapshots(before, after, key, out, **options)
    return summary, read(parts), parts


# --------------------------------------------------------------------------- exact rows


@pytest.mark.parametrize("budget", [256 * 2**20, 300], ids=["in memory", "key ranges"])
def test_added_removed_and_changed_rows_exactly(
    write: Write, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, budget: int
) -> None:
    diffs = count_diffs(monkeypatch)
    unchanged = person("u01", "Grace", True, 7, T0)
    flips = person("u02", "Alan", False, 2, T0)
    logs_in = person("u03", "Ken", False, 1, T0)
    nulled = person("u04", "Barbara", False, 5, T0)
    gets_value = person("u05", None, None, None, None)
    stays_null = person("u06", None, False, None, None)
    removed = person("u07", "Linus", True, 9, None)
    several = person("u08", "Frances", False, 4, T0)
    before = [
        write([several, removed, unchanged]),  # parts and rows in any order
        write([logs_in, flips]),
        write([stays_null, gets_value, nulled]),
    ]
    added = person("u09", "Dennis", None, 0, T1)
    after = [
        write([{**flips, "isAdmin": True}, unchanged, {**logs_in, "lastLoginAt": T1}]),
        write([{**nulled, "groups": None}, added]),
        write([{**gets_value, "name": "Margaret", "groups": 0, "isAdmin": False}, stays_null]),
        write([{**several, "name": "Frances A.", "groups": 5, "lastLoginAt": None}]),
    ]

    summary, rows, parts = run(before, after, tmp_path / "out", memory_budget=budget)

    assert (len(diffs) > 1) == (budget < 2**20)  # several key ranges, or all at once
    assert rows == [
        {
            "change": "changed",
            "identityId": "u02",
            "changed_columns": ["isAdmin"],
            "before": values(flips, only=["isAdmin"]),
            "after": values({**flips, "isAdmin": True}, only=["isAdmin"]),
        },
        {
            "change": "changed",
            "identityId": "u03",
            "changed_columns": ["lastLoginAt"],
            "before": values(logs_in, only=["lastLoginAt"]),
            "after": {"name": None, "isAdmin": None, "groups": None, "lastLoginAt": T1},
        },
        {
            "change": "changed",
            "identityId": "u04",
            "changed_columns": ["groups"],
            "before": {"name": None, "isAdmin": None, "groups": 5, "lastLoginAt": None},
            "after": {"name": None, "isAdmin": None, "groups": None, "lastLoginAt": None},
        },
        {
            "change": "changed",
            "identityId": "u05",
            "changed_columns": ["name", "isAdmin", "groups"],
            "before": {"name": None, "isAdmin": None, "groups": None, "lastLoginAt": None},
            "after": {"name": "Margaret", "isAdmin": False, "groups": 0, "lastLoginAt": None},
        },
        {
            "change": "removed",
            "identityId": "u07",
            "changed_columns": [],
            "before": values(removed),
            "after": None,
        },
        {
            "change": "changed",
            "identityId": "u08",
            "changed_columns": ["name", "groups", "lastLoginAt"],
            "before": {"name": "Frances", "isAdmin": None, "groups": 4, "lastLoginAt": T0},
            "after": {"name": "Frances A.", "isAdmin": None, "groups": 5, "lastLoginAt": None},
        },
        {
            "change": "added",
            "identityId": "u09",
            "changed_columns": [],
            "before": None,
            "after": values(added),
        },
    ]
    assert summary.rows == 7
    assert (summary.added, summary.removed, summary.changed) == (1, 1, 5)
    assert summary.columns_added == summary.columns_removed == []
    assert summary.seconds > 0
    assert parts == [tmp_path / "out" / "part-00000.parquet"]
    schema = pq.read_schema(parts[0])
    assert schema.field("change").type == pa.string()
    assert schema.field("identityId").type == pa.string()
    assert schema.field("changed_columns").type == pa.list_(pa.string())
    struct = pa.struct([SCHEMA.field(name) for name in VALUES])
    assert schema.field("before").type == struct
    assert schema.field("after").type == struct
    assert schema.names == ["change", "identityId", "changed_columns", "before", "after"]


def test_a_multi_column_key(tmp_path: Path) -> None:
    schema = pa.schema(
        [
            ("tenant", pa.int32()),
            ("group", pa.string()),
            ("member", pa.string()),
            ("role", pa.string()),
        ]
    )

    def part(name: str, rows: list[tuple[int, str, str, str]]) -> Path:
        path = tmp_path / f"{name}.parquet"
        table = pa.Table.from_pylist(
            [dict(zip(schema.names, row, strict=True)) for row in rows], schema=schema
        )
        pq.write_table(table, path)
        return path

    before = part(
        "before",
        [
            (2, "g", "ann", "owner"),
            (1, "g", "bob", "member"),
            (1, "h", "ann", "member"),
            (1, "g", "ann", "member"),
        ],
    )
    after = part(
        "after",
        [
            (1, "g", "ann", "member"),
            (1, "g", "bob", "owner"),
            (2, "g", "ann", "owner"),
            (1, "h", "bob", "member"),
        ],
    )

    summary, rows, _ = run([before], [after], tmp_path / "out", key=["tenant", "group", "member"])

    def change(
        kind: str, k: tuple[int, str, str], cols: list[str], old: str | None, new: str | None
    ) -> dict[str, Any]:
        return {
            "change": kind,
            "tenant": k[0],
            "group": k[1],
            "member": k[2],
            "changed_columns": cols,
            "before": None if kind == "added" else {"role": old},
            "after": None if kind == "removed" else {"role": new},
        }

    assert rows == [
        change("changed", (1, "g", "bob"), ["role"], "member", "owner"),
        change("removed", (1, "h", "ann"), [], "member", None),
        change("added", (1, "h", "bob"), [], None, "member"),
    ]
    assert (summary.added, summary.removed, summary.changed) == (1, 1, 1)
    assert (
        pq.read_schema(tmp_path / "out" / "part-00000.parquet").field("tenant").type == pa.int32()
    )


def test_a_column_added_and_one_removed_on_day_two(write: Write, tmp_path: Path) -> None:
    day2 = pa.schema([*(f for f in SCHEMA if f.name != "groups"), ("mfa", pa.bool_())])
    before = [write([person("a", groups=1), person("b", name="B", groups=2)])]
    after = [
        write(
            [
                {**person("a"), "mfa": True},  # groups is gone: not a change
                {**person("b", name="Bea"), "mfa": False},
            ],
            schema=day2,
        )
    ]

    summary, rows, parts = run(before, after, tmp_path / "out")

    assert summary.columns_added == ["mfa"]
    assert summary.columns_removed == ["groups"]
    common = {"name": None, "isAdmin": None, "lastLoginAt": None}
    assert rows == [
        {
            "change": "changed",
            "identityId": "b",
            "changed_columns": ["name"],
            "before": {**common, "name": "B"},
            "after": {**common, "name": "Bea"},
        }
    ]
    schema = pq.read_schema(parts[0])
    assert schema.field("before").type.names == ["name", "isAdmin", "lastLoginAt"]
    recorded = json.loads(schema.metadata[b"changes"])
    assert recorded == {
        "key": ["identityId"],
        "columns_added": ["mfa"],
        "columns_removed": ["groups"],
    }


def test_no_changes_write_one_empty_part_with_the_schema(write: Write, tmp_path: Path) -> None:
    rows = [person("a"), person("b", login=None), person("c", name=None)]
    summary, found, parts = run([write(rows)], [write(rows[::-1])], tmp_path / "out")

    assert found == []
    assert summary == ChangeSummary(0, 0, 0, 0, [], [], summary.seconds)
    assert len(parts) == 1
    assert pq.read_metadata(parts[0]).num_rows == 0
    assert pq.read_schema(parts[0]).names == [
        "change",
        "identityId",
        "changed_columns",
        "before",
        "after",
    ]


@pytest.mark.parametrize("empty", ["no files", "zero rows"])
def test_an_empty_previous_snapshot_adds_every_row(
    write: Write, tmp_path: Path, empty: str
) -> None:
    before = [] if empty == "no files" else [write([])]
    rows = [person("b"), person("a", login=None)]

    summary, found, _ = run(before, [write(rows)], tmp_path / "out")

    assert found == [
        {
            "change": "added",
            "identityId": key,
            "changed_columns": [],
            "before": None,
            "after": values(row),
        }
        for key, row in (("a", rows[1]), ("b", rows[0]))
    ]
    assert (summary.added, summary.removed, summary.changed) == (2, 0, 0)


def test_an_empty_new_snapshot_removes_every_row(write: Write, tmp_path: Path) -> None:
    summary, found, _ = run([write([person("a")])], [write([])], tmp_path / "out")
    assert [(r["change"], r["identityId"], r["after"]) for r in found] == [("removed", "a", None)]
    assert summary.removed == 1


def test_nan_against_nan_is_no_change(tmp_path: Path) -> None:
    schema = pa.schema([("k", pa.int64()), ("score", pa.float64())])

    def part(name: str, scores: list[float | None]) -> Path:
        path = tmp_path / f"{name}.parquet"
        pq.write_table(pa.table({"k": range(len(scores)), "score": scores}, schema=schema), path)
        return path

    before = part("before", [math.nan, math.nan, 1.0, None, 2.5])
    after = part("after", [math.nan, 1.0, math.nan, None, 2.5])
    _, rows, _ = run([before], [after], tmp_path / "out", key=["k"])
    assert [r["k"] for r in rows] == [1, 2]


def test_a_key_only_dataset_has_no_before_and_after(tmp_path: Path) -> None:
    schema = pa.schema([("group", pa.string()), ("member", pa.string())])
    old, new = tmp_path / "old.parquet", tmp_path / "new.parquet"
    pq.write_table(pa.table({"group": ["g", "g"], "member": ["a", "b"]}, schema=schema), old)
    pq.write_table(pa.table({"group": ["g", "g"], "member": ["b", "c"]}, schema=schema), new)

    summary, rows, _ = run([old], [new], tmp_path / "out", key=["group", "member"])

    assert rows == [
        {"change": "removed", "group": "g", "member": "a", "changed_columns": []},
        {"change": "added", "group": "g", "member": "c", "changed_columns": []},
    ]
    assert summary.rows == 2


def test_output_parts_are_cut_at_rows_per_file(write: Write, tmp_path: Path) -> None:
    before = [write([person(f"k{i:02d}") for i in range(0, 30, 2)])]
    after = [write([person(f"k{i:02d}") for i in range(1, 30, 2)])]

    summary, rows, parts = run(before, after, tmp_path / "out", rows_per_file=7)

    assert [pq.read_metadata(p).num_rows for p in parts] == [7, 7, 7, 7, 2]
    assert [r["identityId"] for r in rows] == [f"k{i:02d}" for i in range(30)]
    assert summary.rows == 30


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("before_keys", "after_keys", "side", "named"),
    [
        (["a", "b", "a"], ["a", "b"], "before", "'a'"),  # also in after
        (["a", "b", "b"], ["a"], "before", "'b'"),  # only in before
        (["a", "b"], ["b", "a", "b"], "after", "'b'"),
        (["a"], ["a", "c", "c"], "after", "'c'"),  # only in after
        (["a", "a", "x"], ["a", "a", "x"], "before", "'a'"),
    ],
)
@pytest.mark.parametrize("budget", [256 * 2**20, 2000])
def test_a_duplicate_key_is_an_error_naming_it(
    write: Write,
    tmp_path: Path,
    before_keys: list[str],
    after_keys: list[str],
    side: str,
    named: str,
    budget: int,
) -> None:
    filler = [f"z{i:03d}" for i in range(100)]  # so that a tiny budget means partitions
    before = [write([person(k) for k in [*before_keys, *filler]])]
    after = [write([person(k, groups=4) for k in [*after_keys, *filler]])]

    with pytest.raises(DuplicateKeyError) as raised:
        diff_snapshots(before, after, ["identityId"], tmp_path / "out", memory_budget=budget)

    assert raised.value.side == side
    assert f"{side} snapshot: key (identityId) is not unique: {named}" in str(raised.value)
    assert isinstance(raised.value, LandingError)


def test_a_duplicate_multi_column_key_is_named_as_a_tuple(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"a": [1, 1, 2], "b": ["x", "x", "x"], "v": [1, 2, 3]}), path)
    with pytest.raises(DuplicateKeyError, match=r"key \(a, b\) is not unique: \(1, 'x'\)"):
        diff_snapshots([path], [], ["a", "b"], tmp_path / "out")


@pytest.mark.parametrize("budget", [256 * 2**20, 2000])
def test_a_null_key_is_an_error_and_the_spill_is_removed(
    write: Write, tmp_path: Path, budget: int
) -> None:
    filler = [person(f"z{i:03d}") for i in range(100)]
    before = [write([person("a"), *filler])]
    after = [write([person("a"), *filler, {**person("b"), "identityId": None}])]
    spill = tmp_path / "spill"
    spill.mkdir()
    with pytest.raises(SnapshotDiffError, match="after snapshot: key column 'identityId' has null"):
        diff_snapshots(
            before, after, ["identityId"], tmp_path / "out", memory_budget=budget, spill_dir=spill
        )
    assert list(spill.iterdir()) == []


def test_schema_problems_are_errors(write: Write, tmp_path: Path) -> None:
    before = [write([person("a")])]
    retyped = pa.schema(
        [f if f.name != "groups" else pa.field("groups", pa.string()) for f in SCHEMA]
    )
    after = [write([{**person("a"), "groups": "3"}], schema=retyped)]
    with pytest.raises(SnapshotDiffError, match="column 'groups' changed type: int64 -> string"):
        diff_snapshots(before, after, ["identityId"], tmp_path / "out")
    with pytest.raises(SnapshotDiffError, match="has no key column"):
        diff_snapshots(before, before, ["id"], tmp_path / "out")
    with pytest.raises(SnapshotDiffError, match="has another schema"):
        diff_snapshots([*before, after[0]], before, ["identityId"], tmp_path / "out")
    with pytest.raises(ValueError, match="no files on either side"):
        diff_snapshots([], [], ["identityId"], tmp_path / "out")


def test_the_error_pickles(tmp_path: Path) -> None:
    import pickle

    error = DuplicateKeyError("after", ["a"], [("x",)])
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 (our own bytes)
    assert str(copy) == str(error)
    assert copy.values == [("x",)]


# --------------------------------------------------------------------------- randomized


def nan_free(value: Any) -> Any:
    """NaN as a string, so that rows holding NaN compare equal as tuples."""
    return "NaN" if isinstance(value, float) and math.isnan(value) else value


def reference(
    old: list[dict[str, Any]],
    new: list[dict[str, Any]],
    key: Sequence[str],
    columns: Sequence[str],
) -> list[tuple[Any, ...]]:
    """The change rows by plain dictionaries: (change, key, changed_columns, before, after)."""

    def by_key(rows: list[dict[str, Any]]) -> dict[tuple[Any, ...], dict[str, Any]]:
        return {tuple(row[k] for k in key): row for row in rows}

    def differs(a: Any, b: Any) -> bool:
        if a is None or b is None:
            return (a is None) != (b is None)
        if isinstance(a, float) and math.isnan(a) and math.isnan(b):
            return False
        return bool(a != b)

    def struct(row: dict[str, Any] | None, only: Sequence[str] | None = None) -> Any:
        if row is None:
            return None
        return tuple(nan_free(row[c]) if only is None or c in only else None for c in columns)

    before, after = by_key(old), by_key(new)
    found: list[tuple[Any, ...]] = []
    for k in sorted(before.keys() | after.keys()):
        if k not in before:
            found.append(("added", k, (), None, struct(after[k])))
        elif k not in after:
            found.append(("removed", k, (), struct(before[k]), None))
        else:
            changed = tuple(c for c in columns if differs(before[k][c], after[k][c]))
            if changed:
                found.append(
                    ("changed", k, changed, struct(before[k], changed), struct(after[k], changed))
                )
    return found


def as_tuples(
    rows: list[dict[str, Any]], key: Sequence[str], columns: Sequence[str]
) -> list[tuple[Any, ...]]:
    def struct(value: dict[str, Any] | None) -> Any:
        return None if value is None else tuple(nan_free(value[c]) for c in columns)

    return [
        (
            r["change"],
            tuple(r[k] for k in key),
            tuple(r["changed_columns"]),
            struct(r["before"]),
            struct(r["after"]),
        )
        for r in rows
    ]


RANDOM_SCHEMA = pa.schema(
    [
        ("tenant", pa.int64()),
        ("id", pa.string()),
        ("name", pa.string()),
        ("active", pa.bool_()),
        ("count", pa.int64()),
        ("score", pa.float64()),
        ("seen", pa.timestamp("us", tz="UTC")),
        ("day", pa.date32()),
    ]
)


def random_row(rng: random.Random, tenant: int, key: str) -> dict[str, Any]:
    def maybe(value: Any) -> Any:
        return None if rng.random() < 0.15 else value

    return {
        "tenant": tenant,
        "id": key,
        "name": maybe(rng.choice(["ann", "bob", "cy", "dee", "", "ünï"])),
        "active": maybe(rng.random() < 0.5),
        "count": maybe(rng.randrange(5)),
        "score": maybe(rng.choice([0.5, 1.0, math.nan, -2.0])),
        "seen": maybe(T0 + dt.timedelta(seconds=rng.randrange(3))),
        "day": maybe(dt.date(2026, 11, 1 + rng.randrange(3))),
    }


def mutate(rng: random.Random, row: dict[str, Any]) -> dict[str, Any]:
    fresh = random_row(rng, row["tenant"], row["id"])
    for column in rng.sample(["name", "active", "count", "score", "seen", "day"], 2):
        row = {**row, column: fresh[column]}  # may be the same value: then no change
    return row


@pytest.mark.parametrize(
    ("key", "budget", "rows_per_file"),
    [
        (["id"], 64 * 1024, 1000),  # a few partitions (splitters compared one by one)
        (["id"], 8 * 1024, 333),  # many partitions: the vectorized binary search
        (["tenant", "id"], 24 * 1024, 10_000),  # a multi-column key, partitioned
        (["tenant", "id"], 256 * 2**20, 10_000),  # all in memory
    ],
)
def test_random_snapshots_match_a_reference(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    key: list[str],
    budget: int,
    rows_per_file: int,
) -> None:
    rng = random.Random(f"{key}{budget}")
    old: list[dict[str, Any]] = []
    new: list[dict[str, Any]] = []
    for number in range(3000):
        if len(key) == 2:  # the same ids under several tenants
            tenant, ident = rng.randrange(3) * 10 + number % 3, f"u{number // 3:05d}"
        else:
            tenant, ident = 0, f"u{rng.randrange(10**9):09d}-{number}"
        row = random_row(rng, tenant, ident)
        fate = rng.random()
        if fate < 0.1:
            old.append(row)  # removed
        elif fate < 0.2:
            new.append(row)  # added
        elif fate < 0.5:
            old.append(row)
            new.append(mutate(rng, row))  # changed, mostly
        else:
            old.append(row)
            new.append(dict(row))
    rng.shuffle(old)
    rng.shuffle(new)

    def parts(name: str, rows: list[dict[str, Any]], count: int) -> list[Path]:
        folder = tmp_path / name
        folder.mkdir()
        paths = []
        for index in range(count):
            path = folder / f"part-{index}.parquet"
            chunk = rows[index::count]
            pq.write_table(
                pa.Table.from_pylist(chunk, schema=RANDOM_SCHEMA), path, row_group_size=400
            )
            paths.append(path)
        return paths

    diffs = count_diffs(monkeypatch)
    summary, found, written = run(
        parts("before", old, 3),
        parts("after", new, 2),
        tmp_path / "out",
        key=key,
        memory_budget=budget,
        rows_per_file=rows_per_file,
    )

    columns = [c for c in RANDOM_SCHEMA.names if c not in key]
    expected = reference(old, new, key, columns)
    got = as_tuples(found, key, columns)
    assert got == expected
    assert summary.rows == len(expected) == sum(pq.read_metadata(p).num_rows for p in written)
    kinds = [row[0] for row in expected]
    assert (summary.added, summary.removed, summary.changed) == (
        kinds.count("added"),
        kinds.count("removed"),
        kinds.count("changed"),
    )
    assert min(kinds.count(kind) for kind in ("added", "removed", "changed")) > 100
    if budget < 2**20:
        assert len(diffs) > (16 if budget < 10_000 else 2)  # really partitioned
    else:
        assert len(diffs) == 1
    assert len(written) == max(1, math.ceil(len(expected) / rows_per_file))


# --------------------------------------------------------------------------- reading


def test_low_cardinality_strings_are_read_as_dictionaries_with_the_same_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(7)
    departments = ["Sales", "Engineering", "Finance", None]
    rows = [
        {"id": f"u{i:05d}", "department": rng.choice(departments), "note": f"n{rng.random()}"}
        for i in range(4000)
    ]
    changed = [
        {**row, "department": rng.choice(departments)} if i % 7 == 0 else row
        for i, row in enumerate(rows)
    ]
    old, new = tmp_path / "old.parquet", tmp_path / "new.parquet"
    pq.write_table(pa.Table.from_pylist(rows), old, row_group_size=1000)
    pq.write_table(pa.Table.from_pylist(changed[::-1]), new, row_group_size=1000)

    plan = changes._plan(changes._side("before", [old]), changes._side("after", [new]), ["id"])
    assert plan.dictionary == ["department"]  # "note": one distinct value per row
    results = {}
    for name, threshold in (("dictionary", changes.DICTIONARY_BYTES_PER_VALUE), ("plain", 0.0)):
        monkeypatch.setattr(changes, "DICTIONARY_BYTES_PER_VALUE", threshold)
        for budget in (256 * 2**20, 64 * 1024):  # in memory and partitioned
            _, found, parts = run(
                [old], [new], tmp_path / f"{name}-{budget}", key=["id"], memory_budget=budget
            )
            results[name, budget] = found
            assert pq.read_schema(parts[0]).field("before").type.field("department").type == (
                pa.string()
            )
    expected = [
        {
            "change": "changed",
            "id": row["id"],
            "changed_columns": ["department"],
            "before": {"department": row["department"], "note": None},
            "after": {"department": after["department"], "note": None},
        }
        for row, after in zip(rows, changed, strict=True)
        if row["department"] != after["department"]
    ]
    assert len(expected) > 300
    assert all(found == expected for found in results.values())


def test_a_column_required_on_one_day_only(tmp_path: Path) -> None:
    required = pa.schema([pa.field("id", pa.string(), nullable=False), ("v", pa.int64())])
    optional = pa.schema([("id", pa.string()), ("v", pa.int64())])
    old, new = tmp_path / "old.parquet", tmp_path / "new.parquet"
    keys = [f"k{i:04d}" for i in range(500)]
    pq.write_table(pa.table({"id": keys, "v": range(500)}, schema=required), old)
    pq.write_table(pa.table({"id": keys, "v": [*range(499), 7]}, schema=optional), new)
    for budget in (256 * 2**20, 4096):
        summary, found, _ = run(
            [old], [new], tmp_path / f"out-{budget}", key=["id"], memory_budget=budget
        )
        assert summary.changed == 1
        assert found[0]["before"] == {"v": 499}
