"""Typed record batches -> Parquet part files, encoded on a background thread.

The caller parses and converts (pyarrow releases the GIL) while this writer's thread
encodes and compresses the previous row group, so two cores work on one file. A row
group is handed over only when the writer is free: at most one row group is being
written and one gathered, so memory stays flat whatever the file size.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


@dataclass(frozen=True)
class ParquetOptions:
    """How parts are cut and encoded."""

    row_group_rows: int = 131_072
    rows_per_part: int = 64 * 131_072  # ~8.4M rows: a few hundred MB per part at most
    compression: str = "zstd"
    compression_level: int | None = 1  # zstd 1: same size as the default here, faster
    dictionary_max_ratio: float = 0.2  # dictionary-encode a column when distinct/rows <= this

    def __post_init__(self) -> None:
        if self.row_group_rows < 1 or self.rows_per_part < self.row_group_rows:
            raise ValueError("need 1 <= row_group_rows <= rows_per_part")


@dataclass(frozen=True)
class WrittenPart:
    index: int
    path: Path
    rows: int
    bytes: int


PartCallback = Callable[[WrittenPart], None]
_DONE = None


def low_cardinality_columns(table: pa.Table, max_ratio: float) -> list[str]:
    """Columns whose distinct values are few enough for a dictionary to pay off."""
    if table.num_rows == 0:
        return []
    return [
        name
        for name, column in zip(table.column_names, table.columns, strict=True)
        if column.type != pa.bool_()
        and pc.count_distinct(column, mode="all").as_py() <= max_ratio * table.num_rows
    ]


class PartWriter:
    """Gathers batches into row groups and writes ``part-NNNNN.parquet`` files in ``directory``.

    ``on_part`` is called (on the writer thread) with each closed part, e.g. to upload it.
    """

    def __init__(
        self,
        directory: Path,
        schema: pa.Schema,
        options: ParquetOptions | None = None,
        on_part: PartCallback | None = None,
    ) -> None:
        self.directory = directory
        self.schema = schema
        self.options = options or ParquetOptions()
        self.on_part = on_part
        self.parts: list[WrittenPart] = []
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._queue: queue.Queue[pa.Table | None] = queue.Queue(maxsize=1)
        self._writer_free = threading.Semaphore(1)
        self._error: BaseException | None = None
        self._writer: pq.ParquetWriter | None = None
        self._part_rows = 0
        self._dictionary: list[str] | None = None
        self._aborted = False
        self._thread = threading.Thread(target=self._run, name="parquet-writer", daemon=True)
        self._thread.start()

    # -- caller side ---------------------------------------------------------------
    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        while self._pending_rows >= self.options.row_group_rows:
            self._send(self._take(self.options.row_group_rows))

    def close(self) -> list[WrittenPart]:
        """Flush, finish the last part (a zero-row part if nothing came) and return the parts."""
        if self._pending_rows:
            self._send(self._take(self._pending_rows))
        self._put(_DONE)
        self._thread.join()
        self._raise_if_failed()
        return self.parts

    def abort(self) -> None:
        """Stop the writer thread without finishing a part; files written so far stay."""
        self._pending.clear()
        self._aborted = True
        if self._thread.is_alive():
            self._put(_DONE)
            self._thread.join()

    def _take(self, rows: int) -> pa.Table:
        table = pa.Table.from_batches(self._pending, schema=self.schema)
        head, rest = table.slice(0, rows), table.slice(rows)
        self._pending = rest.to_batches()
        self._pending_rows = rest.num_rows
        return head

    def _send(self, table: pa.Table) -> None:
        while not self._writer_free.acquire(timeout=0.5):
            self._raise_if_failed()
        self._raise_if_failed()
        self._put(table)

    def _put(self, item: pa.Table | None) -> None:
        while self._thread.is_alive():
            try:
                self._queue.put(item, timeout=0.5)
                return
            except queue.Full:
                continue
        self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    # -- writer thread ---------------------------------------------------------------
    def _run(self) -> None:
        try:
            while (table := self._queue.get()) is not _DONE:
                if not self._aborted:
                    self._write_row_group(table)
                del table  # the row group's memory goes before the next one is accepted
                self._writer_free.release()
            if self._aborted:
                self._close_quietly()
            else:
                self._finish_part(force=not self.parts)
        except BaseException as exc:  # handed to the caller thread by _raise_if_failed
            self._error = exc
            self._drain()

    def _drain(self) -> None:
        while self._queue.get() is not _DONE:
            continue

    def _write_row_group(self, table: pa.Table) -> None:
        if self._dictionary is None:
            self._dictionary = low_cardinality_columns(table, self.options.dictionary_max_ratio)
        writer = self._writer or self._open_part()
        writer.write_table(table, row_group_size=table.num_rows)
        self._part_rows += table.num_rows
        if self._part_rows + self.options.row_group_rows > self.options.rows_per_part:
            self._finish_part()

    def _close_quietly(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _open_part(self) -> pq.ParquetWriter:
        self._writer = pq.ParquetWriter(
            self._path(len(self.parts)),
            self.schema,
            compression=self.options.compression,
            compression_level=self.options.compression_level,
            use_dictionary=self._dictionary if self._dictionary is not None else False,
            write_statistics=True,
        )
        return self._writer

    def _finish_part(self, *, force: bool = False) -> None:
        if self._writer is None and force:
            self._open_part()
        if self._writer is None:
            return
        self._writer.close()
        path = self._path(len(self.parts))
        part = WrittenPart(len(self.parts), path, self._part_rows, path.stat().st_size)
        self._writer, self._part_rows = None, 0
        self.parts.append(part)
        if self.on_part is not None:
            self.on_part(part)

    def _path(self, index: int) -> Path:
        return self.directory / f"part-{index:05d}.parquet"
