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

from ..sketch import DENSE, MAX_BUCKET, Ids, summed
from ..usage_stats import CONTAINER_KEY, DAY_SECONDS

_NB = MAX_BUCKET + 1
NAMES = list(CONTAINER_KEY) + ["pod", "basis", "resource"]
COLUMNS = NAMES + ["day", "bucket", "count"]
_TAIL = (1 << 12) * _NB  # the day and bucket part of a cell key: 4,096 days of 2,048 buckets
TEST_COLUMNS = [0, 1, 2, 3, 4, 7]  # the test part's series: CONTAINER_KEY and resource (of NAMES)


@dataclass
class _Sums:
    """Running sums of cells: ``series`` maps a series' names to its id; ``done`` holds (cell key, count)
    of series complete in their batch, ``pending`` those that may go on in another batch."""

    series: dict = field(default_factory=dict)
    done: list = field(default_factory=list)
    pending: list = field(default_factory=list)

    def add(self, names: list[tuple], run: np.ndarray, tail: np.ndarray, count: np.ndarray) -> None:
        """Sum cells: run i is of series ``names[i]``; cell j (of :func:`_run_cells`) is of run ``run[j]``, with
        ``tail`` (its day and bucket part of the cell key) and ``count``."""
        if not names:
            return
        known = len(self.series)
        series = self.series
        ids = np.array([series.setdefault(n, len(series)) for n in names], dtype=np.int64)
        # a series first seen in this batch, and not its last one, is complete here in every table rightsize
        # writes (a series' rows are together); the others are summed again at the end. In a table that is
        # not so ordered a cell can come out twice, split: every reader sums cells, so nothing changes
        whole = (ids >= known) & (ids != ids[-1])
        for part, runs in ((self.done, whole), (self.pending, ~whole)):
            if runs.any():
                part.append(_series_sums(ids, runs, run, tail, count))

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(series id, day and bucket part of the cell key, count), int32 each, one entry per cell."""
        if not self.done and not self.pending:
            return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int32)
        rest = _summed(np.concatenate([p[0] for p in self.pending] or [np.zeros(0, dtype=np.int64)]),
                       np.concatenate([p[1] for p in self.pending] or [np.zeros(0, dtype=np.int32)]))
        self.pending = []
        parts, self.done = self.done + [rest], []
        # filled part by part, each freed once copied: the cells are held once, never as one int64 key array
        # beside its quotients (hundreds of MB at 20,000 containers)
        n = sum(len(k) for k, _c in parts)
        sid, tail, count = (np.empty(n, dtype=np.int32) for _ in range(3))
        at = 0
        for i, (k, c) in enumerate(parts):
            end = at + len(k)
            np.floor_divide(k, _TAIL, out=sid[at:end], casting="unsafe")
            np.remainder(k, _TAIL, out=tail[at:end], casting="unsafe")
            count[at:end] = c
            at, parts[i] = end, None
        return sid, tail, count


def _summed(key: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    codes, uniques = pd.factorize(key)
    return np.asarray(uniques, dtype=np.int64), summed(codes, count, len(uniques)).astype(np.int32)


def _run_cells(starts: np.ndarray, lengths: np.ndarray, tail: np.ndarray, count: np.ndarray,
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(run, tail, summed count as float) of every cell of a batch's runs (run i: the ``lengths[i]`` rows from
    ``starts[i]``; the runs cover the batch in order), ordered by run, then tail: one dense array with a slot
    per value of each run's span of ``tail``, summed with np.bincount (a run's days and buckets span a short
    range); a sort of the rows' cell codes where the spans are far wider than the rows."""
    lo, hi = np.minimum.reduceat(tail, starts), np.maximum.reduceat(tail, starts)
    width = hi - lo + 1
    size = int(width.sum())
    if size > DENSE * len(tail) + 4096:
        uniq, inverse = np.unique(np.repeat(np.arange(len(starts), dtype=np.int64) * _TAIL, lengths) + tail,
                                  return_inverse=True)
        return uniq // _TAIL, uniq % _TAIL, summed(inverse, count)
    offset = np.r_[0, np.cumsum(width)[:-1]]
    slot = np.repeat(offset - lo, lengths)
    slot += tail
    seen = np.flatnonzero(np.bincount(slot, minlength=size))  # a cell of count 0 is a cell, as np.unique keeps it
    counts = summed(slot, count, size)[seen]
    run = np.searchsorted(offset, seen, side="right") - 1
    return run, seen - offset[run] + lo[run], counts


def _series_sums(ids: np.ndarray, runs: np.ndarray, run: np.ndarray, tail: np.ndarray, count: np.ndarray,
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(cell key, count as int32) of the cells of the chosen ``runs`` (a mask over runs, of series ``ids``),
    summed per cell and ordered by series, then day and bucket (several runs may be of one series)."""
    mine = runs[run]
    key = ids[run[mine]] * _TAIL + tail[mine]
    if (np.diff(ids[runs]) > 0).all():  # each series one run (a table rightsize wrote): cells already apart, in order
        return key, count[mine].astype(np.int32)
    uniq, inverse = np.unique(key, return_inverse=True)
    return uniq, np.bincount(inverse, weights=count[mine]).astype(np.int32)


class _Words:
    """Per NAMES column the names seen so far, each with a global code (its index): a batch's own dictionary
    codes are mapped to them once per batch, so a series is a tuple of small ints, never of strings."""

    def __init__(self):
        self.codes: list[dict] = [{} for _ in NAMES]
        self.words: list[list] = [[] for _ in NAMES]

    def lookups(self, tb) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per NAMES column of an Arrow batch: its codes (integers, the batch's own) and the global code of each
        of the batch's dictionary entries."""
        import pyarrow as pa
        import pyarrow.compute as pc

        out = []
        for i, name in enumerate(NAMES):
            col = _array(tb[name])
            if not pa.types.is_dictionary(col.type):
                col = pc.dictionary_encode(col)
            known, words, batch_words = self.codes[i], self.words[i], col.dictionary.to_pylist()
            for w in batch_words:
                if w not in known:
                    known[w] = len(words)
                    words.append(w)
            lut = np.array(list(map(known.__getitem__, batch_words)), dtype=np.int32)
            out.append((col.indices.to_numpy(zero_copy_only=False), lut))  # the file's own width: no copy
        return out

    def names(self, series: np.ndarray, columns: list[int]) -> list[np.ndarray]:
        """The names (object arrays) of ``series`` (rows of global codes of ``columns``), column by column."""
        return [np.asarray(self.words[c], dtype=object)[series[:, j]] for j, c in enumerate(columns)]


@dataclass
class DaySums:
    """The histogram rows summed over days: ``train`` (per pod, basis and resource; with ``days`` also
    per day) with ``ids`` its grouping by container and by pod, and ``test`` (basis 'pod', per
    container and resource)."""

    train: pd.DataFrame
    ids: Ids
    test: pd.DataFrame
    test_ids: tuple = ()  # (container id per row of ``test``, in order of first appearance; the id -> CONTAINER_KEY table)


def sum_over_days(batches, cut: pd.Timestamp, keep_days: bool = False, names: bool = True, train: bool = True) -> DaySums:
    """Sum the histogram batches (Arrow tables with COLUMNS) over days: rows before ``cut`` into the
    training part, the others into the test part (see the module docstring). ``names`` False: the
    training part has only basis, resource, bucket and count (its Ids say whose cells they are).
    ``train`` False: the test part only (the recommendation's self-check of the last days); the
    training frame comes back empty, its ids None."""
    train, test, words = (_Sums() if train else None), _Sums(), _Words()
    for tb in batches:
        if tb.num_rows:
            _add_batch(tb, cut, keep_days, train, test, words)
    if train is None:
        return DaySums(pd.DataFrame(), None, *_test_frame(test, words))
    train_frame, ids = _train_frame(train, words, cut if keep_days else None, names)
    return DaySums(train_frame, ids, *_test_frame(test, words))


def _add_batch(tb, cut: pd.Timestamp, keep_days: bool, train: _Sums | None, test: _Sums, words: _Words) -> None:
    """One batch's runs of a series (cut where the training days end) summed into ``train`` and ``test``."""
    cols = words.lookups(tb)
    back = _days_before(cut, tb["day"]) if keep_days else None  # 0: the last training day; < 0: a test day
    in_test = back < 0 if keep_days else _test_day(cut, tb["day"])
    n = tb.num_rows
    change = np.zeros(n, dtype=bool)
    change[0] = True
    for codes, _lut in cols:
        change[1:] |= codes[1:] != codes[:-1]
    change[1:] |= in_test[1:] != in_test[:-1]
    starts = np.flatnonzero(change)
    lengths = np.diff(np.r_[starts, n])
    run_codes = np.column_stack([lut[codes[starts]] for codes, lut in cols])  # runs x NAMES, global codes
    tail = tb["bucket"].to_numpy().astype(np.int64)
    if keep_days:
        tail += np.maximum(back, 0) * _NB
    run, cell_tail, cell_count = _run_cells(starts, lengths, tail, tb["count"].to_numpy())
    del tail
    run_test = in_test[starts]
    run_pod = run_codes[:, 6] == words.codes[6].get("pod", -1)
    for part, runs, key_cols in ((train, ~run_test, slice(None)), (test, run_test & run_pod, TEST_COLUMNS)):
        if part is None or not runs.any():
            continue
        which = np.flatnonzero(runs)
        local = np.full(len(starts), -1, dtype=np.int64)
        local[which] = np.arange(len(which))  # a run's index among the part's runs
        mine = runs[run]
        part.add(list(map(tuple, run_codes[which][:, key_cols].tolist())), local[run[mine]], cell_tail[mine],
                 cell_count[mine])


def _array(col):
    """An Arrow column as one array: its only chunk as it is (every streamed batch has one), else the chunks
    combined (combine_chunks copies even one chunk of a dictionary column: 12 ms a batch of 8 name columns)."""
    return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()


_PER_SECOND = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}


def _in_unit(cut: pd.Timestamp, day) -> tuple[np.ndarray, int, int]:
    """(the Arrow timestamp column ``day`` as int64, ``cut`` and one second in the column's own unit): no pandas
    timestamps made per row (at 20,000 containers a second of the pass over the histograms)."""
    import pyarrow as pa

    col = _array(day) if hasattr(day, "combine_chunks") else day
    per = _PER_SECOND[col.type.unit]
    return col.cast(pa.int64()).to_numpy(zero_copy_only=False), cut.as_unit("ns").value // (10**9 // per), per


def _days_before(cut: pd.Timestamp, day) -> np.ndarray:
    """Per timestamp of the Arrow column ``day``, the days from it to ``cut``, rounded, minus one (0: the last day
    before ``cut``; < 0: a day from ``cut`` on), int64."""
    raw, end, per = _in_unit(cut, day)
    return np.rint((end - raw) / per / DAY_SECONDS).astype(np.int64) - 1


def _test_day(cut: pd.Timestamp, day) -> np.ndarray:
    """Per timestamp of the Arrow column ``day``, whether :func:`_days_before` is < 0 (bool), compared in integers
    of the column's unit: rint(x) - 1 < 0 exactly when x <= 0.5 (rint rounds half to even)."""
    raw, end, per = _in_unit(cut, day)
    return raw >= end - per * DAY_SECONDS // 2


def _series_codes(sums: _Sums, width: int) -> np.ndarray:
    """The series of ``sums`` (in id order) as a series x ``width`` table of global name codes."""
    return np.array(list(sums.series), dtype=np.int32).reshape(len(sums.series), width)


def _categoricals(series: np.ndarray, names: list[str], columns: list[int], words: _Words, sid: np.ndarray,
                  build=None) -> tuple[dict, np.ndarray]:
    """Categorical columns (``build``, default all ``names``) of the cells' series names (``series``: global codes
    of ``columns``), categories in order of first appearance among the series, and the series x names code table."""
    table = np.zeros((len(series), len(names)), dtype=np.int32)
    cats = {}
    for i, (name, words_i) in enumerate(zip(names, words.names(series, columns))):
        codes, first = pd.factorize(series[:, i])
        table[:, i], cats[name] = codes, pd.Index(words_i[_first_rows(codes, len(first))], dtype=object)
    # each column's codes narrowed before they are spread over the cells (from_codes keeps the narrowest anyway)
    return {n: pd.Categorical.from_codes(table[:, i].astype(np.min_scalar_type(-len(cats[n])))[sid], categories=cats[n])
            for i, n in enumerate(names) if build is None or n in build}, table


def _first_rows(codes: np.ndarray, n: int) -> np.ndarray:
    """The first row of each of the ``n`` codes (codes numbered in order of first appearance)."""
    first = np.full(n, len(codes), dtype=np.int64)
    np.minimum.at(first, codes, np.arange(len(codes)))
    return first


def _train_frame(sums: _Sums, words: _Words, cut: pd.Timestamp | None, names: bool = True) -> tuple[pd.DataFrame, Ids]:
    """The training cells as a usage_histograms-like table (with ``cut``: per day too) and their Ids. Each
    per-cell array is made in its final width and its source freed once used (11.5 M cells at 21,000
    containers: an int64 array of them is 92 MB)."""
    sid, tail, count = sums.result()
    series = _series_codes(sums, len(NAMES))
    columns, table = _categoricals(series, NAMES, list(range(len(NAMES))), words, sid,
                                   None if names else ("basis", "resource"))
    frame = pd.DataFrame(columns)
    del columns
    if cut is not None:
        frame["day"] = cut - pd.to_timedelta((tail // _NB + 1) * DAY_SECONDS, unit="s")
    np.remainder(tail, _NB, out=tail)
    frame["bucket"], frame["count"] = tail.astype(np.int16), count
    del tail, count
    # the grouping statistics.ids_of would find: by container, and by container and pod
    container, containers = _group(table[:, :5])
    pod, pods = _group(table[:, :6])
    groups = pd.DataFrame(dict(zip(CONTAINER_KEY, words.names(series[containers, :5], list(range(5))))))
    pod_table = pd.DataFrame(dict(zip(list(CONTAINER_KEY) + ["pod"], words.names(series[pods, :6], list(range(6))))))
    group, pod = container.astype(np.int32)[sid], pod.astype(np.int32)[sid]  # per cell, int32 from the start
    return frame, Ids(group, groups.astype(str), pod, pod_table.astype(str))


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


def _test_frame(sums: _Sums, words: _Words) -> tuple[pd.DataFrame, tuple[np.ndarray, pd.DataFrame]]:
    """The test cells as a table (CONTAINER_KEY, resource, bucket, count) and their containers: an id per row
    and the id -> CONTAINER_KEY table, as sketch.factorize would find them (ids in order of first appearance,
    names as str), from the series' names (not hashed row by row: 3 M rows at 20,000 containers)."""
    sid, tail, count = sums.result()
    series = _series_codes(sums, len(TEST_COLUMNS))
    columns, table = _categoricals(series, list(CONTAINER_KEY) + ["resource"], TEST_COLUMNS, words, sid)
    frame = pd.DataFrame(columns)
    np.remainder(tail, _NB, out=tail)
    frame["bucket"], frame["count"] = tail.astype(np.int16), count
    del tail
    container, firsts = _group(table[:, :5])  # per series its container, and each container's first series
    cid, order = pd.factorize(container[sid])
    keys = pd.DataFrame(dict(zip(CONTAINER_KEY, words.names(series[firsts[order], :5], TEST_COLUMNS[:5])))).astype(str)
    return frame, (cid, keys)


CHUNK_ROWS = 1_000_000  # training cells reduced to statistics at once (usage_statistics holds ~10 arrays of them; two chunks at once)


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
