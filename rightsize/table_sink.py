"""A snapshot table written chunk by chunk while a collection goes, so its rows are never all in memory.

The per-pod histograms are the bulk of a collection (11 M rows at 10,000 containers): collect writes each
finished chunk into a parquet file in a private staging folder (the system's temporary folder, as for an
S3 upload) and frees it. The snapshot then holds the table as a :class:`~rightsize.snapshot.LazyTable`
on that file: the analysis streams it, and ``Snapshot.write`` copies the file into the snapshot's own
staging folder before the swap, so the snapshot stays atomic. The staging folder goes when the table is
dropped or the process exits; one left by a killed process is removed by the next sink (its pid is dead).
"""
from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import RightsizeError
from .folders import alive

_PREFIX = "rightsize-staged-"


class TableSink:
    """Chunks of table ``name`` appended to one parquet file; :meth:`close` gives the LazyTable on it."""

    def __init__(self, name: str):
        _remove_dead()
        self.name = name
        try:
            self.folder = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-"))
        except OSError as exc:
            raise _cannot_stage(name, tempfile.gettempdir(), exc) from None
        self._cleanup = weakref.finalize(self, shutil.rmtree, str(self.folder), True)
        self.path = self.folder / f"{name}.parquet"
        self._writer: pq.ParquetWriter | None = None
        self.rows = 0

    def write(self, frame: pd.DataFrame) -> None:
        """Append the rows of ``frame`` (columns and dtypes as the first chunk's: categoricals keep their categories)."""
        self.write_arrow(pa.Table.from_pandas(frame, preserve_index=False))

    def write_arrow(self, table: pa.Table) -> None:
        try:
            if self._writer is None:
                self._writer = pq.ParquetWriter(str(self.path), table.schema)
            self._writer.write_table(table.cast(self._writer.schema))
        except OSError as exc:  # a full disk
            raise _cannot_stage(self.name, self.folder, exc) from None
        self.rows += table.num_rows

    def close(self, where: str = "collect"):
        """The LazyTable on the file (None when no row was written); it keeps the staging folder alive."""
        from .snapshot import LazyTable

        if self._writer is None:
            return None
        self._writer.close()
        return LazyTable(self.name, self.path, where, keep=self)


def appended(name: str, *parts, where: str = "collect"):
    """One LazyTable with the rows of ``parts`` (LazyTables: the clusters of one collection) in order, streamed
    into a new staged file; name columns are written as plain strings (each file has its own categories) and
    read back as categoricals."""
    sink = TableSink(name)
    for lazy in parts:
        for batch in lazy.batches():
            sink.write_arrow(batch.cast(pa.schema([pa.field(f.name, f.type.value_type if pa.types.is_dictionary(f.type) else f.type)
                                                   for f in batch.schema])))
    return sink.close(where)


def _cannot_stage(name: str, where, exc: OSError) -> RightsizeError:
    reason = getattr(exc, "strerror", None) or exc
    return RightsizeError(f"{where}: cannot stage the {name} table while collecting: {reason} (the system's temporary "
                          "folder: set TMPDIR to a writable folder with room; nothing was written)")


def _remove_dead() -> None:
    """Staging folders of processes that no longer run (a SIGKILL gives no chance to clean up)."""
    root = Path(tempfile.gettempdir())
    try:
        entries = [e for e in root.iterdir() if e.name.startswith(_PREFIX)]
    except OSError:
        return
    for entry in entries:
        pid = entry.name[len(_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)
