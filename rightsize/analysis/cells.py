"""The per-pod histogram table summed over days as it streams, with integer ids instead of names.

A snapshot of 20,000 containers holds about 100 M histogram rows (pod x day x bucket): more than an
analysis may hold. The backtest needs them summed over days: per pod over the training days, per
container over the test days. :func:`sum_over_days` reads the table in Arrow batches (names
dictionary-encoded: each batch carries small integer codes and its own few names) and keeps only those
sums:

- a batch's rows of one series (cluster, namespace, kind, workload, container, pod, basis, resource)
  are contiguous in every table rightsize writes, so series are found by comparing each row's codes
  with the previous row's, and each new series' names are looked up once (a dict of a few hundred
  thousand series at most), never per row;
- a batch's cells are summed per (series, bucket) by hashing one int64 per row (pandas' factorize),
  then the batches' sums once more at the end.

The results are DataFrames with categorical names and, for the training part, the grouping ids
statistics.usage_statistics would compute (statistics.Ids), so nothing is grouped twice.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..sketch import MAX_BUCKET, Ids
from ..usage_stats import CONTAINER_KEY, DAY_SECONDS

_NB = MAX_BUCKET + 1
NAMES = list(CONTAINER_KEY) + ["pod", "basis", "resource"]
COLUMNS = NAMES + ["day", "bucket", "count"]
_TAIL = (1 << 12) * _NB  # the day and bucket part of a cell key: 4,096 days of 2,048 buckets


@dataclass
class _Sums:
    """Running sums of cells: ``series`` maps a series' names to its id; ``done`` holds (cell key, count)
    of series complete in their batch, ``pending`` those that may go on in another batch."""

    series: dict = field(default_factory=dict)
    done: list = field(default_factory=list)
    pending: list = field(default_factory=list)

    def add(self, names: list[tuple], run_rows: np.ndarray, rows: np.ndarray, key_tail: np.ndarray, count: np.ndarray) -> None:
        """Sum cells: run i (``run_rows[i]`` rows, series ``names[i]``) covers the next rows of ``rows``;
        ``key_tail`` (day and bucket part of the cell key) and ``count`` are per row of ``rows``."""
        if not len(rows):
            return
        known = len(self.series)
        ids = np.fromiter((self.series.setdefault(n, len(self.series)) for n in names), dtype=np.int64, count=len(names))
        sid = np.repeat(ids, run_rows)
        key = sid * _TAIL + key_tail
        c = count[rows]
        # a series first seen in this batch, and not its last one, is complete here in every table rightsize
        # writes (a series' rows are together); the others are summed again at the end. In a table that is
        # not so ordered a cell can come out twice, split: every reader sums cells, so nothing changes
        whole = (sid >= known) & (sid != ids[-1])
        self.done.append(_summed(key[whole], c[whole]))
        self.pending.append(_summed(key[~whole], c[~whole]))

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """(cell keys, counts), one entry per cell."""
        if not self.done:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32)
        rest = _summed(np.concatenate([p[0] for p in self.pending]), np.concatenate([p[1] for p in self.pending]))
        self.pending = []
        parts, self.done = self.done + [rest], []
        # filled part by part, each freed once copied: the cells are held once, not twice (hundreds of MB at 20,000 containers)
        n = sum(len(k) for k, _c in parts)
        key, count = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int32)
        at = 0
        for i, (k, c) in enumerate(parts):
            key[at:at + len(k)], count[at:at + len(k)] = k, c
            at += len(k)
            parts[i] = None
        return key, count


def _summed(key: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    codes, uniques = pd.factorize(key)
    return np.asarray(uniques, dtype=np.int64), np.bincount(codes, weights=count, minlength=len(uniques)).astype(np.int32)


def _columns(tb) -> list[tuple[np.ndarray, object]]:
    """Per NAMES column of an Arrow batch: its codes (int32, the batch's own) and its dictionary."""
    import pyarrow as pa
    import pyarrow.compute as pc

    out = []
    for name in NAMES:
        col = tb[name].combine_chunks()
        if not pa.types.is_dictionary(col.type):
            col = pc.dictionary_encode(col)
        out.append((col.indices.to_numpy(zero_copy_only=False).astype(np.int32, copy=False), col.dictionary))
    return out


@dataclass
class DaySums:
    """The histogram rows summed over days: ``train`` (per pod, basis and resource; with ``days`` also
    per day) with ``ids`` its grouping by container and by pod, and ``test`` (basis 'pod', per
    container and resource)."""

    train: pd.DataFrame
    ids: Ids
    test: pd.DataFrame


def sum_over_days(batches, cut: pd.Timestamp, keep_days: bool = False, names: bool = True, train: bool = True) -> DaySums:
    """Sum the histogram batches (Arrow tables with COLUMNS) over days: rows before ``cut`` into the
    training part, the others into the test part (see the module docstring). ``names`` False: the
    training part has only basis, resource, bucket and count (its Ids say whose cells they are).
    ``train`` False: the test part only (the recommendation's self-check of the last days); the
    training frame comes back empty, its ids None."""
    train, test = (_Sums() if train else None), _Sums()
    for tb in batches:
        if tb.num_rows:
            _add_batch(tb, cut, keep_days, train, test)
    if train is None:
        return DaySums(pd.DataFrame(), None, _test_frame(test))
    train_frame, ids = _train_frame(train, cut if keep_days else None, names)
    return DaySums(train_frame, ids, _test_frame(test))


def _add_batch(tb, cut: pd.Timestamp, keep_days: bool, train: _Sums | None, test: _Sums) -> None:
    """One batch's runs of a series (cut where the training days end) summed into ``train`` and ``test``."""
    cols = _columns(tb)
    back = np.rint(_seconds_before(cut, tb["day"]) / DAY_SECONDS).astype(np.int64) - 1  # 0: the last training day; < 0: a test day
    in_test = back < 0
    n = tb.num_rows
    change = np.zeros(n, dtype=bool)
    change[0] = True
    for codes, _words in cols:
        change[1:] |= codes[1:] != codes[:-1]
    change[1:] |= in_test[1:] != in_test[:-1]
    starts = np.flatnonzero(change)
    lengths = np.diff(np.r_[starts, n])
    names = list(zip(*[words.take(codes[starts]).to_pylist() for codes, words in cols]))
    tail = tb["bucket"].to_numpy().astype(np.int64) + (np.maximum(back, 0) * _NB if keep_days else 0)
    count = tb["count"].to_numpy().astype(np.int64)
    run_test = in_test[starts]
    run_pod = np.array([nm[6] == "pod" for nm in names], dtype=bool)
    for part, runs, key_of in ((train, ~run_test, lambda nm: nm), (test, run_test & run_pod, lambda nm: nm[:5] + (nm[7],))):
        if part is None:
            continue
        which = np.flatnonzero(runs)
        rows = np.repeat(runs, lengths)
        part.add([key_of(names[i]) for i in which], lengths[which], np.flatnonzero(rows), tail[rows], count)


_PER_SECOND = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}


def _seconds_before(cut: pd.Timestamp, day) -> np.ndarray:
    """Seconds from each timestamp of the Arrow column ``day`` to ``cut``, in integers of the column's own unit (no
    pandas timestamps made per row: at 20,000 containers a second of the pass over the histograms)."""
    import pyarrow as pa

    col = day.combine_chunks() if hasattr(day, "combine_chunks") else day
    per = _PER_SECOND[col.type.unit]
    raw = col.cast(pa.int64()).to_numpy(zero_copy_only=False)
    return (cut.as_unit("ns").value // (10**9 // per) - raw) / per


def _categoricals(series: list[tuple], names: list[str], sid: np.ndarray, build=None) -> tuple[dict, np.ndarray]:
    """Categorical columns (``build``, default all ``names``) of the cells' series names, and the series x
    names code table."""
    table = np.zeros((len(series), len(names)), dtype=np.int32)
    cats = {}
    for i, name in enumerate(names):
        codes, uniques = pd.factorize(np.array([s[i] for s in series], dtype=object))
        table[:, i], cats[name] = codes, pd.Index(uniques, dtype=object)
    return {n: pd.Categorical.from_codes(table[sid, i], categories=cats[n]) for i, n in enumerate(names)
            if build is None or n in build}, table


def _train_frame(sums: _Sums, cut: pd.Timestamp | None, names: bool = True) -> tuple[pd.DataFrame, Ids]:
    """The training cells as a usage_histograms-like table (with ``cut``: per day too) and their Ids."""
    key, count = sums.result()
    sid, tail = _split_key(key)
    del key
    series = list(sums.series)
    columns, table = _categoricals(series, NAMES, sid, None if names else ("basis", "resource"))
    frame = pd.DataFrame(columns)
    if cut is not None:
        frame["day"] = cut - pd.to_timedelta((tail // _NB + 1) * DAY_SECONDS, unit="s")
    frame["bucket"], frame["count"] = (tail % _NB).astype(np.int16), count
    # the grouping statistics.ids_of would find: by container, and by container and pod
    container, containers = _group(table[:, :5])
    pod, pods = _group(table[:, :6])
    groups = pd.DataFrame([series[i][:5] for i in containers], columns=list(CONTAINER_KEY))
    pod_table = pd.DataFrame([series[i][:6] for i in pods], columns=list(CONTAINER_KEY) + ["pod"])
    return frame, Ids(container[sid].astype(np.int32), groups.astype(str), pod[sid].astype(np.int32), pod_table.astype(str))


def _split_key(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(series id, day and bucket part) of each cell key, as int32 (half the memory of int64 quotients)."""
    sid, tail = np.empty(len(key), dtype=np.int32), np.empty(len(key), dtype=np.int32)
    np.floor_divide(key, _TAIL, out=sid, casting="unsafe")
    np.remainder(key, _TAIL, out=tail, casting="unsafe")
    return sid, tail


def _group(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``codes`` (series x name codes) its group id (in order of first appearance) and each
    group's first row."""
    if not len(codes):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    _uniq, first, inverse = np.unique(codes, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[inverse.ravel()], first[order]


def _test_frame(sums: _Sums) -> pd.DataFrame:
    key, count = sums.result()
    sid = key // _TAIL
    columns, _table = _categoricals(list(sums.series), list(CONTAINER_KEY) + ["resource"], sid)
    frame = pd.DataFrame(columns)
    frame["bucket"], frame["count"] = (key % _TAIL % _NB).astype(np.int16), count
    return frame


CHUNK_ROWS = 2_000_000  # training cells reduced to statistics at once (statistics.usage_statistics holds ~10 arrays of them)


def chunks(frame: pd.DataFrame, ids: Ids, rows: int | None = None):
    """(rows of ``frame``, their Ids) for consecutive ranges of container ids of at most about ``rows``
    cells each (a container is never split): statistics per container computed chunk by chunk and
    concatenated are the statistics of the whole, in the same order, with a bounded working set."""
    rows = rows or CHUNK_ROWS
    if len(frame) <= rows:
        yield frame, ids
        return
    per = np.bincount(ids.group, minlength=len(ids.groups))
    ends = np.searchsorted(np.cumsum(per), np.arange(rows, per.sum() + rows, rows), side="right")
    bounds = np.unique(np.r_[0, np.maximum(ends, 1), len(per)].clip(0, len(per)))
    for a, b in zip(bounds[:-1], bounds[1:]):
        sel = (ids.group >= a) & (ids.group < b)
        pod, uniques = pd.factorize(ids.pod[sel])
        yield frame[sel].reset_index(drop=True), Ids(ids.group[sel] - a, ids.groups.iloc[a:b].reset_index(drop=True),
                                                     pod.astype(np.int32), ids.pods.iloc[uniques].reset_index(drop=True))
