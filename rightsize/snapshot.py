"""The snapshot: a folder of parquet tables plus meta.json, the only thing stages exchange.

``Snapshot.write`` writes to a temporary folder and moves it into place, so a failed write never
leaves half a snapshot, and records each table file's sha256 in meta.json ``checksums``;
``Snapshot.read`` verifies those checksums (a flipped bit is an error naming the file), then validates
every table against schema.TABLES and names the table and column at fault. Both take an s3:// location
too (storage.py): written through a local folder and committed whole, read through its manifest.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import stat
from dataclasses import dataclass, field
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from .atomic import bytes_sha256, file_sha256
from .errors import SnapshotError
from .folders import link_one
from .memory import release
from .escape import clean_text
from .schema import OPTIONAL_TABLES, TABLES, Column
from .storage import local_copy, location, replace_folder, store

SCHEMA_VERSION = 1


def empty_table(name: str) -> pd.DataFrame:
    """An empty DataFrame with the columns and dtypes of table ``name``."""
    return pd.DataFrame({c.name: pd.Series(dtype=_pandas_dtype(c)) for c in TABLES[name]})


def _pandas_dtype(c: Column) -> str:
    return {"str": "object", "float": "float64", "int": "int64", "bool": "bool", "datetime": "datetime64[ns, UTC]"}[c.dtype]


def conform(name: str, df: pd.DataFrame, where: str = "", *, copy: bool = True, columns: list[str] | None = None) -> pd.DataFrame:
    """Check ``df`` against table ``name``: add missing optional columns, coerce dtypes, check values.

    Raises SnapshotError naming the table and column at fault. Extra columns are kept. ``copy=False``
    works on ``df`` itself (the snapshot's own tables: ten million histogram rows are not copied).
    ``columns``: check only these (a batch of some columns of a table).
    """
    label = f"{where}table {name!r}" if not where else f"{where}: table {name!r}"
    out = df.copy() if copy else df
    for c in TABLES[name]:
        if columns is not None and c.name not in columns:
            continue
        if c.name not in out.columns:
            if c.required:
                raise SnapshotError(f"{label}: missing required column {c.name!r} ({c.description})")
            out[c.name] = {"str": "", "float": np.nan, "int": 0, "bool": False, "datetime": pd.NaT}[c.dtype]
        col = out[c.name]
        try:
            if c.dtype == "str":
                if col.isna().any() and not c.nullable:
                    raise SnapshotError(f"{label}: column {c.name!r} has empty values in {int(col.isna().sum())} rows")
                out[c.name] = _strings(col)
                if not c.nullable and (out[c.name] == "").any():
                    raise SnapshotError(f"{label}: column {c.name!r} has empty values in {int((out[c.name] == '').sum())} rows")
            elif c.dtype == "float":
                # a float64 column is kept as it is: set anew, it would be a copy while the frame's block
                # still holds the original (165 MB at 20,000 containers)
                if col.dtype != np.float64:
                    out[c.name] = pd.to_numeric(col, errors="raise").astype("float64")
            elif c.dtype == "int":  # a narrower integer type is kept (bucket and count of the histograms)
                out[c.name] = col if pd.api.types.is_integer_dtype(col.dtype) else pd.to_numeric(col, errors="raise").astype("int64")
            elif c.dtype == "bool":
                if col.isna().any():
                    raise SnapshotError(f"{label}: column {c.name!r} has missing booleans")
                out[c.name] = col.astype(bool)
            elif c.dtype == "datetime":
                if not (isinstance(col.dtype, pd.DatetimeTZDtype) and str(col.dtype.tz) == "UTC"):
                    out[c.name] = pd.to_datetime(col, utc=True)
        except SnapshotError:
            raise
        except (ValueError, TypeError) as exc:
            raise SnapshotError(f"{label}: column {c.name!r} should be {c.dtype}: {exc}") from None
        if c.non_negative and c.dtype in ("float", "int") and (out[c.name] < 0).any():
            bad = out.loc[out[c.name] < 0, c.name].iloc[0]
            raise SnapshotError(f"{label}: column {c.name!r} has negative values (e.g. {bad}); units: {c.description}")
    return out


def _strings(col: pd.Series) -> pd.Series:
    """A str column with '' for missing values; a categorical one (the per-pod tables, a few hundred
    names repeated over a million rows) stays categorical: a tenth of the memory, and read fast."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        cats = col.cat.categories
        if cats.dtype != object or not all(isinstance(v, str) for v in cats):  # e.g. read back from parquet
            col = col.cat.rename_categories(pd.Index([str(v) for v in cats], dtype=object))
        if not col.isna().any():
            return col
        if "" not in col.cat.categories:
            col = col.cat.add_categories("")
        return col.fillna("")
    return col.fillna("").astype(str)


PER_POD = ("usage_histograms", "usage_daily")  # the tables with a row per pod and day: the bulk of a snapshot
# read with their names as categoricals (a few thousand names over a million rows): the per-pod tables, and
# the runtimes' hourly rows (a row per pod and hour: 1.4 M at 20,000 containers, 130 MB less than strings)
CATEGORICAL_NAMES = PER_POD + ("runtime_hourly",)
# rows of a per-pod table read at once when it streams (about 40 MB of Arrow): pyarrow's default row group, so
# that a table rightsize wrote streams a batch per row group, none cut in two (a tail of 48,576 rows each)
BATCH_ROWS = 1 << 20


@dataclass
class LazyTable:
    """A table file read when first used: whole (``load``), or ``batches`` of rows and chosen columns.

    The per-pod histograms are the bulk of a snapshot (100 M rows at 20,000 containers): an analysis
    that only reduces them streams them in batches instead of holding them. Each batch is checked
    against the schema as it is read; the file's checksum was checked when the snapshot was opened."""

    name: str
    path: Path
    where: str
    keep: Any = field(default=None, repr=False, compare=False)  # what keeps the file (a staged one: its TableSink)

    def load(self) -> pd.DataFrame:
        return conform(self.name, _read_parquet(self.path, self.name), self.where, copy=False)

    def batches(self, columns: list[str] | None = None, rows: int | None = None):
        """Arrow tables of at most ``rows`` rows with ``columns`` (default all), names dictionary-encoded.
        Each is checked against the schema (the columns it has) as it is read, the next one read by a thread
        while the caller works on this one (pyarrow decodes without holding the GIL: the pass over 100 M
        histogram rows at 20,000 containers hides most of its reading)."""
        return read_ahead(self._batches(columns, rows))

    def _batches(self, columns: list[str] | None, rows: int | None):
        import pyarrow as pa

        try:
            f = pq.ParquetFile(str(self.path), pre_buffer=False, read_dictionary=[c.name for c in TABLES[self.name] if c.dtype == "str"])
            wanted = [c for c in (columns or f.schema_arrow.names) if c in f.schema_arrow.names]
            # one thread decodes (read_ahead's): pyarrow's own pool costs more CPU for no less time here
            for batch in f.iter_batches(batch_size=rows or BATCH_ROWS, columns=wanted, use_threads=False):
                table = pa.Table.from_batches([batch])
                _check_batch(self.name, table, f"{self.where}: table {self.name!r}")
                yield table
        except (OSError, pa.ArrowException) as exc:
            raise SnapshotError(f"{self.path}: cannot read table {self.name!r}: {exc}") from None
        release()  # what the stream's batches used: the analysis after it is numpy


def read_ahead(items):
    """The items of the iterator ``items``, each next one produced by a worker thread while the caller works
    on this one (one item ahead: the memory of one more). An exception raised producing an item is raised
    here, where that item would have come."""
    with ThreadPoolExecutor(1, thread_name_prefix="read_ahead") as pool:
        nxt = pool.submit(next, items, _END)
        while (item := nxt.result()) is not _END:
            nxt = pool.submit(next, items, _END)
            yield item


_END = object()


class Tables(dict):
    """The snapshot's tables by name; a LazyTable is read whole the first time it is asked for by name."""

    def __getitem__(self, name):
        value = super().__getitem__(name)
        if isinstance(value, LazyTable):
            value = value.load()
            super().__setitem__(name, value)
        return value

    def get(self, name, default=None):
        return self[name] if name in self else default

    def items(self):
        return [(k, self[k]) for k in self.keys()]

    def values(self):
        return [self[k] for k in self.keys()]

    def lazy(self, name: str) -> LazyTable | None:
        value = super().get(name)
        return value if isinstance(value, LazyTable) else None


@dataclass
class Snapshot:
    """All tables of one collection run plus its metadata. Tables follow schema.TABLES."""

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    # what the analysis derived from the tables while this snapshot is in memory (e.g. its last days reduced
    # for a replay, shared by the backtest and the recommendation's self-check); never written
    cache: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        if not isinstance(self.tables, Tables):
            self.tables = Tables(self.tables)
        for name in TABLES:
            self.tables.setdefault(name, empty_table(name))
        base = new_meta()
        for k, v in base.items():
            self.meta.setdefault(k, v)

    def __getattr__(self, name: str) -> pd.DataFrame:
        tables = self.__dict__.get("tables", {})
        if name in tables:
            return tables[name]
        raise AttributeError(name)

    def validate(self, where: str = "") -> "Snapshot":
        """Conform every table in place (a table not read yet is checked as it is read); raises
        SnapshotError on the first fault."""
        for name in TABLES:
            if self.tables.lazy(name) is None:
                self.tables[name] = conform(name, self.tables[name], where, copy=False)
        _check_unique(self.tables, where)
        return self

    def rows(self, name: str) -> int:
        """Rows of table ``name``, without reading a table that has not been read yet."""
        lazy = self.tables.lazy(name)
        return pq.ParquetFile(str(lazy.path)).metadata.num_rows if lazy is not None else len(self.tables[name])

    def batches(self, name: str, columns: list[str] | None = None):
        """Table ``name`` as Arrow tables of a few million rows with ``columns``: streamed from its file when
        it has not been read whole, else the table in memory as one batch."""
        import pyarrow as pa

        lazy = self.tables.lazy(name)
        if lazy is not None:
            yield from lazy.batches(columns)
            return
        table = self.tables[name]
        if len(table):
            yield pa.Table.from_pandas(table if columns is None else table[[c for c in columns if c in table.columns]],
                                       preserve_index=False)

    def window_hours(self) -> float | None:
        """Length of the usage window in hours, from meta window_start / window_end (None if unknown)."""
        start, end = self.meta.get("window_start"), self.meta.get("window_end")
        if not start or not end:
            return None
        try:
            hours = (pd.Timestamp(end) - pd.Timestamp(start)).total_seconds() / 3600.0
        except (TypeError, ValueError):
            return None
        return hours if hours > 0 else None

    def observed_hours(self, cluster: str) -> float | None:
        """Hours of the window the server had data for ``cluster`` (meta.json ``coverage``, measured by collect:
        a server may keep fewer days than the window); the window's hours when not recorded (a snapshot from
        before coverage was measured, the demo); None when neither is known."""
        hours = ((self.meta.get("coverage") or {}).get(cluster) or {}).get("hours")
        return float(hours) if hours else self.window_hours()

    def hours_of(self, clusters: pd.Series) -> np.ndarray:
        """:meth:`observed_hours` of each row's cluster (NaN unknown): what every per-hour figure divides by."""
        names = pd.Series(clusters, dtype=object).fillna("").astype(str)
        hours = {c: self.observed_hours(c) for c in names.unique()}
        return names.map(lambda c: hours[c] if hours[c] else np.nan).to_numpy(dtype=float)

    def warn(self, code: str, message: str, affects: str = "") -> None:
        """Record a data caveat (missing metric, partial data, price estimate) for the report."""
        entry = {"code": code, "message": message, "affects": affects}
        if entry not in self.meta["warnings"]:
            self.meta["warnings"].append(entry)

    def write(self, path: str | os.PathLike) -> Path:
        """Write atomically: into a temp folder beside ``path``, then rename over it (an s3:// location:
        uploaded, then committed by its _SUCCESS manifest)."""
        target = location(path)
        if self.meta.get("tables_not_loaded"):
            raise SnapshotError(f"{target}: this snapshot was read without {', '.join(self.meta['tables_not_loaded'])}; "
                                "writing it would lose them (nothing was written)")
        self.validate()

        def fill(tmp: Path) -> None:
            sums = {}
            for name in self.tables:
                lazy = self.tables.lazy(name)
                if lazy is not None:  # a table streamed to a staged file (collect), or not read yet
                    link_one(lazy.path, tmp / f"{name}.parquet")
                else:
                    self.tables[name].reset_index(drop=True).to_parquet(tmp / f"{name}.parquet", index=False)
                sums[f"{name}.parquet"] = file_sha256(tmp / f"{name}.parquet")
            self.meta["checksums"] = sums
            meta = json.loads(json.dumps(self.meta, default=str))  # the digest is of what a reader will see
            meta["digest"] = self.meta["digest"] = {"covers": list(MONEY_FIELDS), "sha256": meta_digest(meta)}
            (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True))

        return replace_folder(target, fill, what="snapshot", error=SnapshotError)

    @classmethod
    def read(cls, path: str | os.PathLike, *, skip: tuple[str, ...] = (), lazy: tuple[str, ...] = ()) -> "Snapshot":
        """Read and validate a snapshot folder (or s3:// prefix); SnapshotError names the file/table/column
        at fault. ``skip``: tables not to load (left empty, named in meta ``tables_not_loaded``), e.g. the
        large per-pod ones a fleet report does not need. ``lazy``: tables read only when used (whole, or
        streamed by Snapshot.batches); their checksums are checked now all the same."""
        src = location(path)
        unwanted = {f"{name}.parquet" for name in skip}
        with local_copy(src, what="snapshot", keep=lambda rel: rel not in unwanted, error=SnapshotError) as folder:
            # a temporary copy is gone once read: nothing in it may be read later
            return cls._read_folder(folder, skip=skip, lazy=() if store(src).copies_to_read else lazy)

    @classmethod
    def _read_folder(cls, src: Path, *, skip: tuple[str, ...], lazy: tuple[str, ...]) -> "Snapshot":
        if not src.is_dir():
            raise SnapshotError(f"{src}: no snapshot folder here (run `rightsize collect` or `rightsize demo` first)")
        meta = _read_meta(src / "meta.json")
        tables = {}
        sums = meta.get("checksums")
        for name in TABLES:
            f = src / f"{name}.parquet"
            if name in skip and name in OPTIONAL_TABLES:
                continue
            if not f.exists():
                if name in OPTIONAL_TABLES and f.name not in (sums or {}):
                    continue
                raise SnapshotError(f"{f}: missing table {name!r}")
            _regular(f)
            if sums is not None:
                _verify(f, sums.get(f.name))
            tables[name] = LazyTable(name, f, str(src)) if name in lazy else _read_parquet(f, name)
        if skip:
            meta["tables_not_loaded"] = sorted(set(skip) & OPTIONAL_TABLES)
        snap = cls(tables=Tables(tables), meta=meta).validate(where=str(src))
        release()  # what reading the files used
        if meta.get("digest") is None:
            snap.warn("snapshot_unverified", "meta.json records no digest (written before rightsize recorded one): "
                      "its window, step, clusters and prices could not be verified", str(src))
        if sums is None:
            snap.warn("snapshot_unverified", "meta.json records no checksums (written before rightsize checked them): "
                      "the tables could not be verified", str(src))
        return snap


def _check_batch(name: str, table, label: str) -> None:
    """The checks ``conform`` makes that a streamed batch can fail: numbers that must not be negative,
    names that must not be empty (the dtypes come from the file, which the checksum vouched for)."""
    import pyarrow.compute as pc

    for c in TABLES[name]:
        if c.name not in table.column_names:  # not asked for
            continue
        col = table[c.name]
        # the smallest value, one pass without a mask of the rows (a million per batch of the per-pod histograms)
        if c.non_negative and c.dtype in ("float", "int") and (pc.min(col).as_py() or 0) < 0:
            raise SnapshotError(f"{label}: column {c.name!r} has negative values; units: {c.description}")
        if not c.nullable and col.null_count:
            raise SnapshotError(f"{label}: column {c.name!r} has empty values in {col.null_count} rows")


def _read_parquet(f: Path, name: str) -> pd.DataFrame:
    """A table file as pandas: the name columns of the CATEGORICAL_NAMES tables as categoricals, the rest as
    they are."""
    try:
        # pyarrow reads the file itself: pandas would hand it a Python file object, whose buffers
        # pyarrow 14-15 may release from a background thread at interpreter exit, which aborts the
        # process (SIGABRT instead of our exit code; apache/arrow#34314)
        names = [c.name for c in TABLES[name] if c.dtype == "str"] if name in CATEGORICAL_NAMES else None
        return pq.read_table(str(f), read_dictionary=names).to_pandas()
    except Exception as exc:  # pyarrow raises many types for a corrupt file
        raise SnapshotError(f"{f}: cannot read table {name!r}: {exc}") from None


def _check_unique(tables, where: str) -> None:
    """SnapshotError when a workload or container is listed twice: each would count twice in every figure."""
    from .refs import refs_text
    from .schema import CONTAINER_KEY, WORKLOAD_KEY

    for name, key in (("workloads", WORKLOAD_KEY), ("containers", CONTAINER_KEY), ("usage", CONTAINER_KEY)):
        df = tables[name]
        if df.empty or not set(key) <= set(df.columns):
            continue
        twice = df.duplicated(list(key), keep=False)
        if twice.any():
            example = refs_text(df[twice].head(1), cluster=True, container="container" in key).iloc[0]
            raise SnapshotError(f"{where + ': ' if where else ''}table {name!r} lists {int(twice.sum())} rows of the same "
                                f"{'container' if 'container' in key else 'workload'} (e.g. {clean_text(example)}); "
                                "each must be there once, or it would count twice")


MONEY_FIELDS = ("window_start", "window_end", "step_seconds", "clusters", "pricing", "checksums")
_META_MAX_BYTES = 64 << 20


def meta_digest(meta: dict) -> str:
    """'sha256:<hex>' of the meta.json fields that change money (the window, the clusters, the step, the price
    sources, and through the tables' checksums every price and usage figure): an edit to any of them is found."""
    covered = json.dumps({k: meta.get(k) for k in MONEY_FIELDS}, sort_keys=True, separators=(",", ":"), default=str)
    return bytes_sha256(covered.encode())


def _regular(path: Path) -> None:
    """SnapshotError unless ``path`` is a regular file: a FIFO, a device or a link to one (/dev/zero) would hang a read."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise SnapshotError(f"{path}: cannot read: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        raise SnapshotError(f"{path}: not a regular file (a FIFO, a device, or a link to one); refused")


def _read_meta(meta_file: Path) -> dict:
    """meta.json, checked: a regular file of sane size holding a JSON object whose digest (when it records
    one) matches the fields that change money. SnapshotError names the file."""
    if not meta_file.exists() and not meta_file.is_symlink():
        raise SnapshotError(f"{meta_file}: missing; not a rightsize snapshot")
    _regular(meta_file)
    try:
        if meta_file.stat().st_size > _META_MAX_BYTES:
            raise SnapshotError(f"{meta_file}: larger than {_META_MAX_BYTES >> 20} MiB; not a rightsize meta.json")
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else getattr(exc, "strerror", None) or exc
        raise SnapshotError(f"{meta_file}: unreadable: {reason}") from None
    if not isinstance(meta, dict):
        raise SnapshotError(f"{meta_file}: not a rightsize meta.json (a JSON {type(meta).__name__}, expected an object)")
    if meta.get("schema_version") != SCHEMA_VERSION:
        raise SnapshotError(f"{meta_file}: schema_version {meta.get('schema_version')!r}, this rightsize reads {SCHEMA_VERSION}")
    digest = meta.get("digest")
    if digest is not None and (not isinstance(digest, dict) or digest.get("sha256") != meta_digest(meta)):
        raise SnapshotError(f"{meta_file}: its digest does not match its {', '.join(MONEY_FIELDS)}: meta.json was "
                            "edited or damaged after it was written (these fields change every dollar); collect again")
    return meta


def _verify(path: Path, recorded: str | None) -> None:
    """SnapshotError naming the file when its bytes are not the ones meta.json recorded."""
    if not recorded:
        raise SnapshotError(f"{path}: not listed in meta.json's checksums; the snapshot was changed after it was written")
    actual = file_sha256(path)
    if actual != recorded:
        raise SnapshotError(f"{path}: checksum mismatch (meta.json records {recorded[:19]}..., the file has "
                            f"{actual[:19]}...): the file changed or was damaged after it was written; collect again")


def new_meta(**overrides) -> dict[str, Any]:
    """meta.json defaults; ``warnings`` is a list of {code, message, affects}."""
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    meta = {
        "schema_version": SCHEMA_VERSION,
        "created_at": now.isoformat(),
        "window_start": None,
        "window_end": None,
        "step_seconds": None,
        "clusters": [],
        "sources": {},
        "versions": {},
        "warnings": [],
        "missing_metrics": [],
        "partial": {},
        "pricing": {},
    }
    meta.update(overrides)
    return meta
