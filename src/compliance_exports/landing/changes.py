"""Access drift: the rows that changed between two published versions of a snapshot.

:func:`diff_snapshots` compares two versions of a dataset with a primary key (the
previous and the new day's Parquet part files, one schema per side) and writes one row
per key that was added, removed or changed, sorted by key::

    change           string          added | removed | changed
    <key columns>    their types
    changed_columns  list<string>    the non-key columns that differ, in schema order
                                     (empty for added and removed rows)
    before           struct<...>     the non-key columns with their types: the whole old
                                     row of a removed key, only the changed columns of a
                                     changed key (other fields null), null for an added one
    after            struct<...>     the same for the new row (null for a removed key)

A value changed when it differs or is null on one side only (null vs null is no change,
nor is NaN vs NaN). Columns present on one day only are not compared: they are reported
in :class:`ChangeSummary` (``columns_added``, ``columns_removed``) and in the parts'
schema metadata (``b"changes"``, JSON). The compared columns follow the new day's order.
A dataset made of its key alone has no ``before``/``after`` (Parquet has no empty struct).
A key that occurs twice on one side, or is null, is an error naming the value(s): the
diff never silently picks a row. A column whose type changed is an error too.

Algorithm (pyarrow only, no per-row Python):

1. *Plan*: the Parquet footers give both sides' schemas and row counts; one small batch
   of each side is decoded to estimate the Arrow size of a row. String columns stored
   dictionary-encoded in every row group with a few bits per value (a status, a
   department) are read as Arrow dictionaries: decoded once per dictionary page, not
   once per row, 4 bytes a row, compared by their indices. ``N`` is 1 if the diff's
   working set (:data:`WORKING_SET_FACTOR` times both sides' Arrow size) fits in
   ``memory_budget``; else the number of key ranges such that ``_workers()`` of them
   (pyarrow's CPU count) can be diffed at once within the budget.
2. ``N == 1``: both sides are read into memory and diffed at once (no spill).
3. ``N > 1``, out of core:

   a. *Sample*: every k-th key of the larger side (only its key columns are decoded)
      gives ``N - 1`` splitter keys at the sample's quantiles: ``N`` key ranges.
   b. *Spill*: both sides are streamed at once (a thread each) in batches of a 32nd of
      the budget. Each row's range comes from comparing its key with the splitters (one
      by one, or a vectorized binary search when there are many); a stable sort groups
      the batch by range, and each range's rows are gathered (``take``) and appended to
      that side's Arrow IPC stream file for the range (pieces under
      :data:`SPILL_PIECE_BYTES` are gathered first).
   c. *Diff* the ranges in key order, ``_workers()`` at a time: a range's two files are
      memory-mapped, diffed (4.) and deleted; the change rows are written in range order,
      hence sorted as a whole.

4. *Diff of one range*: an Acero hash join (full outer) on the key columns, outputting
   only the two sides' row numbers, gives the matched pairs and the rows found on one
   side only; row counts reveal a key repeated on one side and matched (it matches
   several times), and a key repeated among the unmatched rows shows up in the sorted
   change rows. Scattered into the new side's order, the matched pairs give each new
   row its old row: per non-key column, only the old values are gathered and compared
   in place with the new column (``pyarrow.compute``, null-aware); the OR of the masks
   picks the changed rows. The change rows are sorted by gathering their keys only;
   their values are then gathered straight into sorted order, a row group at a time, as
   they are written (a null row number gathers a null: that masks the unchanged fields).

Output: :class:`pyarrow.parquet.ParquetWriter`, row groups of at most
:data:`ROW_GROUP_ROWS` rows, parts of at most ``rows_per_file`` rows, at least one part
(with the schema) even for no changes.

Memory bound, beyond the interpreter and libraries: the largest of (a) the diff phase:
``_workers()`` ranges in flight, each about ``WORKING_SET_FACTOR`` x its share of both
sides' Arrow size (measured: 1.7x for 1% churn and for a day of only new rows; the
output is gathered a row group at a time), which the choice of ``N`` keeps within
``memory_budget``; (b) the spill phase: per side, the Parquet reader's row group buffers,
one batch (a 32nd of the budget) and its gathered copy, plus the pieces waiting to be
written (:data:`SPILL_PIECE_BYTES` per range); (c) one output row group. Very wide rows,
a skewed key sample, or much larger Parquet row groups than the budget can make a phase
larger than planned; ``N`` is capped by :data:`MAX_PARTITIONS` (and the open file limit),
beyond which ranges grow with the input. Disk: the spill holds both sides once,
uncompressed Arrow IPC, in ``spill_dir`` (the system temporary directory by default),
removed range by range and in any case at the end.
"""

from __future__ import annotations

import json
import math
import resource
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pyarrow as pa
import pyarrow.acero as acero
import pyarrow.compute as pc
import pyarrow.parquet as pq

from compliance_exports.landing.errors import LandingError, sample

#: Peak memory of diffing a range over the Arrow size of its two sides (the sides, the
#: join, a gathered column, the masks, the change rows' keys): 1.7 measured, with margin.
WORKING_SET_FACTOR = 2.0
MAX_PARTITIONS = 4096
ROW_GROUP_ROWS = 65_536  # of the output
SAMPLE_ROWS_PER_PARTITION = 256
LINEAR_SPLITTERS = 16  # up to this many splitters, each row is compared with each
SPILL_PIECE_BYTES = 256 * 1024  # smaller pieces of a partition are gathered before writing
ESTIMATE_ROWS = 8192  # rows decoded per side to estimate the Arrow size of a row
#: A string column whose Parquet pages hold fewer bytes per value than this is
#: dictionary-encoded (a plain string takes a 4-byte length and its bytes).
DICTIONARY_BYTES_PER_VALUE = 4.0
MAX_NAMED_KEYS = 10  # duplicate key values named in an error message
METADATA_KEY = b"changes"

ADDED, REMOVED, CHANGED = "added", "removed", "changed"
_LEFT, _RIGHT = "__changes_before_row", "__changes_after_row"


@dataclass(frozen=True)
class ChangeSummary:
    """What :func:`diff_snapshots` found and wrote."""

    rows: int
    added: int
    removed: int
    changed: int
    columns_added: list[str]
    columns_removed: list[str]
    seconds: float


class SnapshotDiffError(LandingError):
    """Two snapshot versions that cannot be compared as they are."""


class DuplicateKeyError(SnapshotDiffError):
    """A key value occurs more than once in one snapshot (``values``: some of them)."""

    def __init__(self, side: str, key: Sequence[str], values: list[tuple[object, ...]]) -> None:
        self.side = side
        self.key = list(key)
        self.values = values
        shown = ", ".join(sample(v[0] if len(v) == 1 else v) for v in values[:MAX_NAMED_KEYS])
        more = f" (the first {MAX_NAMED_KEYS} shown)" if len(values) > MAX_NAMED_KEYS else ""
        super().__init__(f"{side} snapshot: key ({', '.join(key)}) is not unique: {shown}{more}")

    def __reduce__(self) -> tuple[object, ...]:
        return (DuplicateKeyError, (self.side, self.key, self.values))


# --------------------------------------------------------------------------- plan


@dataclass
class _Side:
    name: str  # "before" | "after" (error messages)
    files: list[Path]
    metadata: list[pq.FileMetaData]  # the files' footers
    schema: pa.Schema | None  # None: no files
    rows: int
    row_bytes: float = 0.0  # estimated Arrow bytes of a row of what is read


@dataclass
class _Plan:
    key: list[str]
    values: list[str]  # compared non-key columns, in the new day's schema order
    schema: pa.Schema  # the key, then the values, with their types
    dictionary: list[str]  # values read as Arrow dictionaries
    columns_added: list[str]
    columns_removed: list[str]

    @property
    def columns(self) -> list[str]:
        return [*self.key, *self.values]

    @property
    def read_schema(self) -> pa.Schema:
        """What is read of each side: :attr:`schema` with the dictionary columns encoded."""
        return pa.schema(
            [
                field.with_type(pa.dictionary(pa.int32(), field.type))
                if field.name in self.dictionary
                else field
                for field in self.schema
            ]
        )


def _side(name: str, files: Sequence[Path]) -> _Side:
    paths = [Path(f) for f in files]
    footers = [pq.read_metadata(path) for path in paths]
    schema: pa.Schema | None = None
    for path, metadata in zip(paths, footers, strict=True):
        found = metadata.schema.to_arrow_schema().remove_metadata()
        if schema is None:
            schema = found
        elif not found.equals(schema):
            raise SnapshotDiffError(
                f"{name} snapshot: {path.name} has another schema than {paths[0].name}: "
                f"{found} vs {schema}"
            )
    return _Side(name, paths, footers, schema, sum(m.num_rows for m in footers))


def _plan(before: _Side, after: _Side, key: Sequence[str]) -> _Plan:
    key = list(key)
    if not key or len(set(key)) != len(key):
        raise ValueError(f"a key is one or more distinct column names, not {key!r}")
    new, old = after.schema or before.schema, before.schema or after.schema
    if new is None or old is None:
        raise ValueError("no files on either side: nothing to compare (and no schema)")
    for side, schema in ((before, old), (after, new)):
        missing = [k for k in key if k not in schema.names]
        if missing:
            raise SnapshotDiffError(f"{side.name} snapshot has no key column {missing}")
    common = [name for name in new.names if name in old.names]
    for name in common:
        if not new.field(name).type.equals(old.field(name).type):
            raise SnapshotDiffError(
                f"column {name!r} changed type: {old.field(name).type} -> "
                f"{new.field(name).type} (cast one day to the other before diffing)"
            )
    for name in key:
        _check_comparable(name, new.field(name).type, key=True)
    values = [name for name in common if name not in key]
    for name in values:
        _check_comparable(name, new.field(name).type, key=False)
    # nullable: one day may declare a column required and the other not
    schema = pa.schema([new.field(name).with_nullable(True) for name in [*key, *values]])
    return _Plan(
        key=key,
        values=values,
        schema=schema,
        dictionary=_dictionary_columns([before, after], schema, values),
        columns_added=[name for name in new.names if name not in old.names],
        columns_removed=[name for name in old.names if name not in new.names],
    )


def _check_comparable(name: str, kind: pa.DataType, *, key: bool) -> None:
    unsupported = pa.types.is_nested(kind) or pa.types.is_dictionary(kind)
    if unsupported or pa.types.is_null(kind) or (key and pa.types.is_floating(kind)):
        what = "key" if key else "compared"
        raise SnapshotDiffError(f"{what} column {name!r} has type {kind}, which is not supported")


def _dictionary_columns(sides: list[_Side], schema: pa.Schema, values: list[str]) -> list[str]:
    """The string value columns that every row group stores dictionary-encoded.

    Told from the footers: a plain-encoded string takes at least 4 bytes per value in
    the pages, a dictionary-encoded one a few bits. (A wrong guess costs time, never
    correctness: pyarrow then builds the dictionary itself.)
    """
    candidates = [name for name in values if schema.field(name).type in (pa.string(), pa.binary())]
    if not candidates:
        return []
    small = dict.fromkeys(candidates, True)
    for side in sides:
        for metadata in side.metadata:
            positions = {metadata.schema.column(i).path: i for i in range(metadata.num_columns)}
            for group in range(metadata.num_row_groups):
                row_group = metadata.row_group(group)
                for name in candidates:
                    chunk = row_group.column(positions[name])
                    if chunk.num_values == 0:
                        continue
                    per_value = chunk.total_uncompressed_size / chunk.num_values
                    if not chunk.has_dictionary_page or per_value >= DICTIONARY_BYTES_PER_VALUE:
                        small[name] = False
    return [name for name in candidates if small[name]]


def _output_schema(plan: _Plan) -> pa.Schema:
    values = pa.struct([plan.schema.field(name) for name in plan.values])
    metadata = {
        "key": plan.key,
        "columns_added": plan.columns_added,
        "columns_removed": plan.columns_removed,
    }
    return pa.schema(
        [
            pa.field("change", pa.string(), nullable=False),
            *(plan.schema.field(name) for name in plan.key),
            pa.field("changed_columns", pa.list_(pa.string()), nullable=False),
            *((pa.field("before", values), pa.field("after", values)) if plan.values else ()),
        ],
        metadata={METADATA_KEY: json.dumps(metadata).encode()},
    )


def _row_bytes(side: _Side, plan: _Plan) -> float:
    """Arrow bytes of a row as read, from a batch of the side's first rows."""
    for path in side.files:
        with pq.ParquetFile(path, read_dictionary=plan.dictionary) as parquet:
            if parquet.metadata.num_rows == 0:
                continue
            batch = next(parquet.iter_batches(batch_size=ESTIMATE_ROWS, columns=plan.columns))
            dictionaries = sum(
                column.dictionary.nbytes
                for column in batch.columns
                if isinstance(column, pa.DictionaryArray)
            )
            return (batch.nbytes - dictionaries) / max(batch.num_rows, 1)
    return 0.0


def _workers() -> int:
    """Partitions diffed at once: pyarrow's CPU count (``pyarrow.set_cpu_count``)."""
    return max(1, pa.cpu_count())


def _partition_count(before: _Side, after: _Side, memory_budget: int) -> int:
    """1 if the whole diff fits in the budget, else enough partitions for ``_workers()``
    of them to be diffed at once within the budget."""
    data = sum(side.rows * side.row_bytes for side in (before, after))
    if WORKING_SET_FACTOR * data <= memory_budget:
        return 1
    wanted = math.ceil(WORKING_SET_FACTOR * data * _workers() / memory_budget)
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    files_allowed = MAX_PARTITIONS if soft == resource.RLIM_INFINITY else (soft - 64) // 2
    return max(2, min(wanted, MAX_PARTITIONS, files_allowed))


# --------------------------------------------------------------------------- reading


def _batches(
    side: _Side, plan: _Plan, columns: list[str], batch_rows: int, *, use_threads: bool = True
) -> Iterator[pa.RecordBatch]:
    dictionary = [name for name in plan.dictionary if name in columns]
    for path in side.files:
        with pq.ParquetFile(path, read_dictionary=dictionary) as parquet:
            yield from parquet.iter_batches(
                batch_size=batch_rows, columns=columns, use_threads=use_threads
            )


def _read_all(side: _Side, plan: _Plan) -> pa.Table:
    tables = [
        pq.read_table(path, columns=plan.columns, read_dictionary=plan.dictionary)
        for path in side.files
    ]
    table = pa.concat_tables([t.select(plan.columns) for t in tables]) if tables else None
    if table is None or table.num_rows == 0:
        return plan.read_schema.empty_table()
    _check_no_null_keys(side, plan, table)
    return table


def _check_no_null_keys(side: _Side, plan: _Plan, batch: pa.RecordBatch | pa.Table) -> None:
    for name in plan.key:
        if batch.column(name).null_count:
            raise SnapshotDiffError(f"{side.name} snapshot: key column {name!r} has null values")


# --------------------------------------------------------------------------- partitioning


def _splitters(before: _Side, after: _Side, plan: _Plan, partitions: int) -> pa.Table:
    """Up to ``partitions - 1`` distinct keys, sorted, at the quantiles of a key sample.

    The sample is every k-th key of the larger side: two versions of a snapshot hold
    mostly the same keys.
    """
    side = after if after.rows >= before.rows else before
    step = max(1, side.rows // (partitions * SAMPLE_ROWS_PER_PARTITION))
    samples: list[pa.Table] = []
    position = 0
    for batch in _batches(side, plan, plan.key, 65_536):
        first = (-position) % step
        if first < batch.num_rows:
            picked = pa.arange(first, batch.num_rows, step)
            samples.append(pa.Table.from_batches([batch]).take(picked))
        position += batch.num_rows
    if not samples:
        return plan.schema.select(plan.key).empty_table()
    keys = pa.concat_tables(samples).drop_null()
    keys = keys.sort_by([(name, "ascending") for name in plan.key])
    if keys.num_rows == 0:
        return keys
    positions = sorted({keys.num_rows * i // partitions for i in range(1, partitions)})
    chosen = keys.take(pa.array(positions, pa.int64()))
    # distinct, so that partition i holds the keys in [splitter i-1, splitter i)
    rows = chosen.to_pylist()
    keep = [i for i, row in enumerate(rows) if i == 0 or row != rows[i - 1]]
    return chosen.take(pa.array(keep, pa.int64()))


def _lexicographic(
    left: Sequence[pa.Array | pa.Scalar], right: Sequence[pa.Array], *, or_equal: bool
) -> pa.Array:
    """``left < right`` (or ``<=``) row by row, comparing the columns in order."""
    last = pc.less_equal if or_equal else pc.less
    result = last(left[-1], right[-1])
    for a, b in zip(reversed(left[:-1]), reversed(right[:-1]), strict=True):
        result = pc.or_(pc.less(a, b), pc.and_(pc.equal(a, b), result))
    return result


def _range_ids(keys: Sequence[pa.Array], splitters: pa.Table) -> pa.Array:
    """Each row's partition: how many splitters are <= its key (``bisect_right``).

    A few splitters are compared one by one (as scalars); more by a vectorized binary
    search (each step gathers every row's probe splitter).
    """
    count = splitters.num_rows
    rows = len(keys[0])
    bounds = [splitters.column(i).combine_chunks() for i in range(splitters.num_columns)]
    if count <= LINEAR_SPLITTERS:
        ids = pa.repeat(pa.scalar(0, pa.int32()), rows)
        for index in range(count):
            at = [bound[index] for bound in bounds]
            ids = pc.add(ids, pc.cast(_lexicographic(at, keys, or_equal=True), pa.int32()))
        return ids
    low = pa.repeat(pa.scalar(0, pa.int32()), rows)
    high = pa.repeat(pa.scalar(count, pa.int32()), rows)
    for _ in range(count.bit_length()):
        middle = pc.shift_right(pc.add(low, high), 1)
        probe = pc.min_element_wise(middle, count - 1)
        probed = [bound.take(probe) for bound in bounds]
        searching = pc.less(low, high)
        above = pc.and_(searching, _lexicographic(probed, keys, or_equal=True))
        below = pc.and_(searching, pc.invert(above))
        low = pc.if_else(above, pc.add(middle, 1), low)
        high = pc.if_else(below, middle, high)
    return low


class _Spill:
    """One side's IPC stream files, one per partition; small pieces are gathered first.

    The stream format, not the file format: a dictionary column's dictionary changes
    from one Parquet row group to the next.
    """

    def __init__(
        self, directory: Path, side: str, schema: pa.Schema, partitions: int, buffer_bytes: int
    ) -> None:
        self.paths = [directory / f"{side}-{p:05d}.arrows" for p in range(partitions)]
        self.schema = schema
        self.buffer_bytes = buffer_bytes  # per partition
        self._writers: list[pa.ipc.RecordBatchStreamWriter] = []
        self._pending: list[list[pa.RecordBatch]] = [[] for _ in range(partitions)]
        self._pending_bytes = [0] * partitions
        for path in self.paths:
            self._writers.append(pa.ipc.new_stream(path, schema))

    def add(self, partition: int, batch: pa.RecordBatch) -> None:
        self._pending[partition].append(batch)
        self._pending_bytes[partition] += batch.nbytes
        if self._pending_bytes[partition] >= self.buffer_bytes:
            self._flush(partition)

    def _flush(self, partition: int) -> None:
        pending = self._pending[partition]
        if len(pending) == 1:
            self._writers[partition].write_batch(pending[0])
        elif pending:
            self._writers[partition].write_batch(pa.concat_batches(pending))
        self._pending[partition] = []
        self._pending_bytes[partition] = 0

    def close(self) -> None:
        for partition, writer in enumerate(self._writers):
            self._flush(partition)
            writer.close()


def _spill(
    side: _Side,
    plan: _Plan,
    splitters: pa.Table,
    spill: _Spill,
    batch_rows: int,
    threads: bool,
    stop: threading.Event,
) -> None:
    """Stream one side into its partition files (closed whatever happens; ``stop``: the
    other side failed)."""
    try:
        for read in _batches(side, plan, plan.columns, batch_rows, use_threads=threads):
            if stop.is_set():
                return
            if read.num_rows == 0:
                continue
            _check_no_null_keys(side, plan, read)
            columns = [read.column(name) for name in plan.columns]
            batch = pa.RecordBatch.from_arrays(columns, schema=spill.schema)
            ids = _range_ids([batch.column(name) for name in plan.key], splitters)
            order = pc.sort_indices(ids)  # stable: rows grouped by partition
            runs = pc.run_end_encode(ids.take(order))
            start = 0
            for end, partition in zip(
                runs.run_ends.to_pylist(), runs.values.to_pylist(), strict=True
            ):
                # a gather per partition: whole batches are written as they are
                spill.add(partition, batch.take(order.slice(start, end - start)))
                start = end
    finally:
        spill.close()


def _read_spilled(path: Path, schema: pa.Schema) -> pa.Table:
    with pa.memory_map(str(path)) as source:
        table = pa.ipc.open_stream(source).read_all()
    return table if table.num_rows else schema.empty_table()


# --------------------------------------------------------------------------- diff


def _differs(old: pa.Array | pa.ChunkedArray, new: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Row by row: the values differ, or exactly one of them is null (NaN equals NaN)."""
    result = pc.not_equal(old, new)
    if old.null_count or new.null_count:
        result = pc.or_(pc.fill_null(result, False), pc.xor(pc.is_null(old), pc.is_null(new)))
    if pa.types.is_floating(old.type):
        both_nan = pc.fill_null(pc.and_(pc.is_nan(old), pc.is_nan(new)), False)
        result = pc.and_not(result, both_nan)
    if isinstance(result, pa.ChunkedArray):
        return result.combine_chunks()
    return result


def _comparable(
    old: pa.ChunkedArray, new: pa.ChunkedArray
) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    """What to compare: the columns, or for dictionary columns their indices into one
    dictionary unified over both sides (equal indices are equal values)."""
    if not pa.types.is_dictionary(old.type):
        return old, new
    both = pa.chunked_array([*old.chunks, *new.chunks], old.type).unify_dictionaries()
    indices = [chunk.indices for chunk in both.chunks]
    split = old.num_chunks
    index_type = old.type.index_type
    return (
        pa.chunked_array(indices[:split], index_type),
        pa.chunked_array(indices[split:], index_type),
    )


def _take(column: pa.ChunkedArray, indices: pa.Array) -> pa.Array:
    taken = column.take(indices)
    return taken.combine_chunks() if isinstance(taken, pa.ChunkedArray) else taken


def _values(column: pa.ChunkedArray, indices: pa.Array, kind: pa.DataType) -> pa.Array:
    """The values at ``indices``, with their declared type (dictionaries decoded)."""
    taken = _take(column, indices)
    return taken if taken.type == kind else taken.cast(kind)


def _changed_columns(masks: list[pa.Array], names: list[str], rows: int) -> pa.Array:
    """``list<string>``: for each row, the names whose mask is true, in ``names`` order."""
    if rows == 0 or not masks:
        return _empty_lists(rows)
    counts = pa.repeat(pa.scalar(0, pa.int32()), rows)
    row_ids, column_ids = [], []
    for index, mask in enumerate(masks):
        counts = pc.add(counts, pc.cast(mask, pa.int32()))
        hits = pc.indices_nonzero(mask)
        row_ids.append(hits)
        column_ids.append(pa.repeat(pa.scalar(index, pa.int32()), len(hits)))
    offsets = pa.concat_arrays(
        [pa.array([0], pa.int32()), pc.cumulative_sum(counts).cast(pa.int32())]
    )
    order = pc.sort_indices(pa.concat_arrays(row_ids))  # stable: column order within a row
    columns = pa.concat_arrays(column_ids).take(order)
    return pa.ListArray.from_arrays(offsets, pa.array(names, pa.string()).take(columns))


def _empty_lists(rows: int) -> pa.Array:
    offsets = pa.repeat(pa.scalar(0, pa.int32()), rows + 1)
    return pa.ListArray.from_arrays(offsets, pa.array([], pa.string()))


def _duplicates(table: pa.Table, key: list[str]) -> list[tuple[object, ...]]:
    counts = table.group_by(key, use_threads=False).aggregate([([], "count_all")])
    repeated = counts.filter(pc.greater(counts["count_all"], 1)).sort_by(
        [(name, "ascending") for name in key]
    )
    return [tuple(row[name] for name in key) for row in repeated.to_pylist()]


def _raise_duplicates(old: pa.Table, new: pa.Table, key: list[str]) -> NoReturn:
    """Raise :class:`DuplicateKeyError` for the first side with a repeated key."""
    for side, table in (("before", old), ("after", new)):
        found = _duplicates(table.select(key), key)
        if found:
            raise DuplicateKeyError(side, key, found)
    raise SnapshotDiffError(f"the join on ({', '.join(key)}) matched rows inconsistently")


@dataclass
class _Counts:
    added: int = 0
    removed: int = 0
    changed: int = 0

    def add(self, other: _Counts) -> None:
        self.added += other.added
        self.removed += other.removed
        self.changed += other.changed


def _join(old: pa.Table, new: pa.Table, key: list[str]) -> pa.Table:
    """Full outer hash join on ``key`` of the two sides' row numbers (null: no such row)."""
    left = old.select(key).append_column(_LEFT, pa.arange(0, old.num_rows))
    right = new.select(key).append_column(_RIGHT, pa.arange(0, new.num_rows))
    # Acero builds its hash table on the right input: the smaller side
    left, right = (right, left) if left.num_rows < right.num_rows else (left, right)
    options = acero.HashJoinNodeOptions(
        "full outer",
        key,
        key,
        left_output=[left.column_names[-1]],
        right_output=[right.column_names[-1]],
    )
    sources = [
        acero.Declaration("table_source", acero.TableSourceNodeOptions(table))
        for table in (left, right)
    ]
    return acero.Declaration("hashjoin", options, inputs=sources).to_table()


def _diff(old: pa.Table, new: pa.Table, plan: _Plan, counts: _Counts) -> Iterator[pa.Table]:
    """The change rows between two tables read with ``plan`` (no null keys), sorted by key
    (see :func:`_change_rows`); ``counts`` is updated at once."""
    key, values = plan.key, plan.values
    joined = _join(old, new, key)
    old_rows, new_rows = joined[_LEFT], joined[_RIGHT]
    matched = pc.and_(pc.is_valid(old_rows), pc.is_valid(new_rows))
    matched_old = old_rows.filter(matched).combine_chunks()
    matched_new = new_rows.filter(matched).combine_chunks()
    removed = old_rows.filter(pc.is_null(new_rows)).combine_chunks()
    added = new_rows.filter(pc.is_null(old_rows)).combine_chunks()
    del joined, old_rows, new_rows, matched
    # A key on one side k times and on the other j >= 1 times matches k x j times: with
    # unique keys each row is matched or unmatched exactly once. (Keys repeated among
    # the unmatched rows are caught once sorted, in _change_rows.)
    if len(matched_old) + len(removed) != old.num_rows or (
        len(matched_new) + len(added) != new.num_rows
    ):
        _raise_duplicates(old, new, key)

    masks: list[pa.Array] = []
    any_change: pa.Array | None = None
    if len(matched_new):
        # For each new row, its old row (null if added): the new side is compared in
        # place, only the old side's values are gathered.
        old_of_new = pc.scatter(matched_old, matched_new, max_index=new.num_rows - 1)
        for name in values:
            old_values, new_values = _comparable(old[name], new[name])
            mask = _differs(_take(old_values, old_of_new), new_values)
            masks.append(mask)
            any_change = mask if any_change is None else pc.or_(any_change, mask)
    if any_change is None:  # nothing matched, or a key-only dataset
        new_changed = old_changed = pa.array([], pa.int64())
        masks = [pa.array([], pa.bool_()) for _ in values]
    else:
        new_changed = pc.indices_nonzero(pc.and_(any_change, pc.is_valid(old_of_new)))
        old_changed = old_of_new.take(new_changed)
        masks = [mask.take(new_changed) for mask in masks]
    del matched_old, matched_new, any_change

    counts.changed += len(new_changed)
    counts.added += len(added)
    counts.removed += len(removed)
    return _change_rows(old, new, plan, old_changed, new_changed, masks, added, removed)


def _change_rows(
    old: pa.Table,
    new: pa.Table,
    plan: _Plan,
    old_changed: pa.Array,
    new_changed: pa.Array,
    masks: list[pa.Array],
    added: pa.Array,
    removed: pa.Array,
) -> Iterator[pa.Table]:
    """The output rows, sorted by key, in tables of at most :data:`ROW_GROUP_ROWS` rows:
    changed, added and removed rows by their row numbers (``masks``: which columns of
    each changed row differ).

    Only the key columns are gathered to sort (now); the values are gathered slice by
    slice as the tables are taken (later, while they are written), straight into their
    sorted places: a day of only new rows never holds its output at once.
    """
    schema = _output_schema(plan)
    counts = [len(new_changed), len(added), len(removed)]
    if sum(counts) == 0:
        return iter(())

    def rows_of(*pieces: pa.Array | int) -> pa.Array:
        arrays = [
            pa.nulls(p, pa.int64()) if isinstance(p, int) else p.cast(pa.int64()) for p in pieces
        ]
        return pa.concat_arrays(arrays)

    keys = pa.table(
        {
            name: pa.concat_arrays(
                [
                    _values(old[name], old_changed, field.type),
                    _values(new[name], added, field.type),
                    _values(old[name], removed, field.type),
                ]
            )
            for name, field in ((name, plan.schema.field(name)) for name in plan.key)
        }
    )
    order = pc.sort_indices(keys, [(name, "ascending") for name in plan.key])
    keys = keys.take(order)
    if keys.num_rows > 1:  # a key twice among the change rows: twice on one side
        same = [
            pc.equal(column.slice(1), column.slice(0, keys.num_rows - 1)) for column in keys.columns
        ]
        repeated = same[0]
        for more in same[1:]:
            repeated = pc.and_(repeated, more)
        if pc.any(repeated).as_py():
            _raise_duplicates(old, new, plan.key)
    old_rows = rows_of(old_changed, counts[1], removed).take(order)
    new_rows = rows_of(new_changed, added, counts[2]).take(order)
    kinds = pa.concat_arrays(
        [pa.repeat(kind, n) for kind, n in zip((CHANGED, ADDED, REMOVED), counts, strict=True)]
    ).take(order)
    lists = pa.concat_arrays(
        [
            _changed_columns(masks, plan.values, counts[0]),
            _empty_lists(counts[1]),
            _empty_lists(counts[2]),
        ]
    ).take(order)
    # per value column, the rows that show it: changed rows where it differs, whole rows
    shown_old = [
        pa.concat_arrays([m, pa.repeat(False, counts[1]), pa.repeat(True, counts[2])]).take(order)
        for m in masks
    ]
    shown_new = [
        pa.concat_arrays([m, pa.repeat(True, counts[1]), pa.repeat(False, counts[2])]).take(order)
        for m in masks
    ]
    fields = [plan.schema.field(name) for name in plan.values]
    none = pa.scalar(None, pa.int64())

    def gathered(table: pa.Table, rows: pa.Array, shown: list[pa.Array]) -> pa.StructArray:
        values = [
            _values(table[field.name], pc.if_else(show, rows, none), field.type)
            for field, show in zip(fields, shown, strict=True)
        ]
        return pa.StructArray.from_arrays(values, fields=fields, mask=pc.is_null(rows))

    def tables() -> Iterator[pa.Table]:
        for start in range(0, len(order), ROW_GROUP_ROWS):
            end = min(start + ROW_GROUP_ROWS, len(order))
            arrays = [
                kinds[start:end],
                *keys.slice(start, end - start).columns,
                lists[start:end],
            ]
            if fields:
                piece = slice(start, end)
                arrays.append(gathered(old, old_rows[piece], [show[piece] for show in shown_old]))
                arrays.append(gathered(new, new_rows[piece], [show[piece] for show in shown_new]))
            yield pa.Table.from_arrays(arrays, schema=schema)

    return tables()


# --------------------------------------------------------------------------- output


class _Output:
    """Change rows -> ``part-NNNNN.parquet`` files of at most ``rows_per_file`` rows."""

    def __init__(self, directory: Path, schema: pa.Schema, rows_per_file: int) -> None:
        self.directory = directory
        self.schema = schema
        self.rows_per_file = rows_per_file
        self.parts: list[Path] = []
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._in_file = 0
        self._pending: list[pa.Table] = []
        self._pending_rows = 0

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        self._pending.append(table)
        self._pending_rows += table.num_rows
        if self._pending_rows >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        table = pa.concat_tables(self._pending) if self._pending else self.schema.empty_table()
        self._pending, self._pending_rows = [], 0
        start = 0
        while start < table.num_rows:
            writer = self._current()
            piece = table.slice(start, min(self.rows_per_file - self._in_file, ROW_GROUP_ROWS))
            writer.write_table(piece)
            self._in_file += piece.num_rows
            self.rows += piece.num_rows
            start += piece.num_rows
            if self._in_file >= self.rows_per_file:
                writer.close()
                self._writer = None

    def _current(self) -> pq.ParquetWriter:
        if self._writer is None:
            path = self.directory / f"part-{len(self.parts):05d}.parquet"
            self._writer = pq.ParquetWriter(path, self.schema, compression="zstd")
            self.parts.append(path)
            self._in_file = 0
        return self._writer

    def close(self) -> list[Path]:
        self._flush()
        if not self.parts:  # no change rows: one empty part with the schema
            self._current()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        return self.parts


# --------------------------------------------------------------------------- entry point


def diff_snapshots(
    before: Sequence[Path],
    after: Sequence[Path],
    key: Sequence[str],
    out: Path,
    *,
    memory_budget: int = 256 * 2**20,
    rows_per_file: int = 1_000_000,
    spill_dir: Path | None = None,
) -> tuple[ChangeSummary, list[Path]]:
    """Write the change rows from ``before`` to ``after`` as Parquet parts in ``out``.

    ``before`` and ``after`` are the two versions' local Parquet files (either may be
    empty: every row of the other side is then added or removed), ``key`` their primary
    key columns. Returns the summary and the part files written (at least one).
    """
    started = time.perf_counter()
    if memory_budget < 1 or rows_per_file < 1:
        raise ValueError("memory_budget and rows_per_file must be positive")
    old, new = _side("before", before), _side("after", after)
    plan = _plan(old, new, key)
    for side in (old, new):
        side.row_bytes = _row_bytes(side, plan)
    out.mkdir(parents=True, exist_ok=True)
    output = _Output(out, _output_schema(plan), rows_per_file)
    counts = _Counts()
    partitions = _partition_count(old, new, memory_budget)
    if partitions == 1:
        for table in _diff(_read_all(old, plan), _read_all(new, plan), plan, counts):
            output.write(table)
    else:
        _diff_out_of_core(old, new, plan, partitions, memory_budget, spill_dir, output, counts)
    parts = output.close()
    summary = ChangeSummary(
        rows=output.rows,
        added=counts.added,
        removed=counts.removed,
        changed=counts.changed,
        columns_added=plan.columns_added,
        columns_removed=plan.columns_removed,
        seconds=time.perf_counter() - started,
    )
    return summary, parts


def _diff_out_of_core(
    old: _Side,
    new: _Side,
    plan: _Plan,
    partitions: int,
    memory_budget: int,
    spill_dir: Path | None,
    output: _Output,
    counts: _Counts,
) -> None:
    workers = _workers()
    splitters = _splitters(old, new, plan, partitions)
    partitions = splitters.num_rows + 1
    schema = plan.read_schema
    row_bytes = max(old.row_bytes, new.row_bytes, 1.0)
    batch_rows = max(1024, int(memory_budget / 32 / row_bytes))
    buffer_bytes = max(1, min(memory_budget // (8 * 2 * partitions), SPILL_PIECE_BYTES))
    lone = sum(1 for side in (old, new) if side.rows) == 1
    stop = threading.Event()
    with (
        tempfile.TemporaryDirectory(prefix="changes-", dir=spill_dir) as temp,
        ThreadPoolExecutor(max_workers=max(2, workers), thread_name_prefix="changes") as pool,
    ):
        spills = [_Spill(Path(temp), s.name, schema, partitions, buffer_bytes) for s in (old, new)]
        # both sides at once, one thread each; a lone side decodes with pyarrow's threads
        spilling = [
            pool.submit(_spill, side, plan, splitters, spill, batch_rows, lone, stop)
            for side, spill in zip((old, new), spills, strict=True)
        ]
        try:
            for future in spilling:
                future.result()
        finally:
            stop.set()
        pa.default_memory_pool().release_unused()  # the readers' buffers, before the diffs

        def diff_partition(partition: int) -> tuple[Iterator[pa.Table], _Counts]:
            found = _Counts()
            tables = [_read_spilled(spill.paths[partition], schema) for spill in spills]
            changes = _diff(tables[0], tables[1], plan, found)
            del tables
            for spill in spills:
                spill.paths[partition].unlink()
            return changes, found

        # ``workers`` partitions at a time; the change rows are written in key order
        window: deque[Future[tuple[Iterator[pa.Table], _Counts]]] = deque()
        for partition in range(partitions):
            window.append(pool.submit(diff_partition, partition))
            if len(window) >= workers:
                _write_next(window, output, counts)
        while window:
            _write_next(window, output, counts)


def _write_next(
    window: deque[Future[tuple[Iterator[pa.Table], _Counts]]], output: _Output, counts: _Counts
) -> None:
    changes, found = window.popleft().result()
    for table in changes:
        output.write(table)
    counts.add(found)
