"""Per-pod usage samples reduced as they arrive: each range-query chunk becomes histogram cells and
daily sums at once, so the window's samples are never held in memory.

A chunk (one shard of namespaces, a span of steps, one resource) is reduced in the worker that
fetched it into a :class:`Partial` with its own small indexes; the collector merges partials into
:class:`UsageAccumulator`, which keeps only

- per container instance (pod x container), day and bucket: a sample count (the pod histograms);
- per container, day and bucket: a count of the busiest replica's value (the busiest histograms);
- per container instance and day: samples, sum and max (exact means and maxima).

Days are counted back from the window end: day k holds the steps t with
end - (k+1) x 24 h < t <= end - k x 24 h, so "the last 7 days" is exact for the backtest.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ...sketch import MAX_BUCKET, bucket_of
from ...usage_stats import DAY_SECONDS, RESOURCES
from .client import RangeSeries

_NB = MAX_BUCKET + 1
_HIST_NAMES = ["namespace", "kind", "workload", "container", "pod"]
CHUNK_ROWS = 2_000_000  # histogram rows per streamed chunk (about 60 MB as a frame): whole namespaces each


@dataclass(frozen=True)
class Grid:
    """The steps of the window: ``n`` points at end - (n-1) x step ... end (the window is left-open)."""

    end: float  # unix seconds
    step: float  # seconds
    n: int

    @classmethod
    def of(cls, end: float, window: float, step: float) -> "Grid":
        return cls(end, step, max(int(round(window / step)), 1))

    @property
    def first(self) -> float:
        return self.end - (self.n - 1) * self.step

    @property
    def days(self) -> int:
        return max(int(math.ceil(self.n * self.step / DAY_SECONDS - 1e-9)), 1)

    def index(self, ts: np.ndarray) -> np.ndarray:
        return np.rint((ts - self.first) / self.step).astype(np.int64)

    def day(self, idx: np.ndarray) -> np.ndarray:
        """Day bin (0 = the last 24 h) of step indexes."""
        per_day = DAY_SECONDS / self.step
        if per_day == int(per_day):  # the usual case (a step that divides a day): integer arithmetic, 5x faster
            return (self.n - 1 - idx) // int(per_day)
        return ((self.n - 1 - idx) * self.step // DAY_SECONDS).astype(np.int64)

    def day_start(self, day: np.ndarray) -> pd.DatetimeIndex:
        """UTC start of day bins (the bin is (start, start + 24 h])."""
        return pd.to_datetime(self.end - (np.asarray(day) + 1) * DAY_SECONDS, unit="s", utc=True)


@dataclass
class Partial:
    """One chunk reduced, with local indexes: ``series`` keys (namespace, pod, container) and
    ``containers`` keys (namespace, kind, workload, container)."""

    resource: str
    series: list[tuple]
    containers: list[tuple]
    pod_cells: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # series, day, bucket, count
    pod_days: tuple[np.ndarray, ...]  # series, day, samples, sum, max
    busy_cells: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # container, day, bucket, count
    last: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # per series: its last step
    unowned: set = field(default_factory=set)  # (namespace, pod) with samples but no owner
    span: tuple[int, int] = (-1, -1)  # first and last step with any sample (coverage); -1 when none


def reduce_chunk(result: list[RangeSeries], resource: str, grid: Grid, owners: dict[tuple, tuple]) -> Partial:
    """Reduce one range answer (keys namespace, pod, container; with timestamps) of ``resource``.

    ``owners``: (namespace, pod) -> (kind, workload). Duplicate series of one container instance are
    folded by their max at each step; pods without an owner count nowhere and are reported."""
    index: dict[tuple, int] = {}
    per_series = np.array([index.setdefault(s.key, len(index)) for s in result], dtype=np.int64)
    series = list(index)
    val = np.concatenate([s.values for s in result]) if result else np.zeros(0)
    ok = ~np.isnan(val)
    if not ok.any():
        empty = np.zeros(0, dtype=np.int64)
        return Partial(resource, [], [], (empty,) * 4, (empty,) * 5, (empty,) * 4)
    sid = np.repeat(per_series, [len(s.values) for s in result])[ok]
    step = grid.index(np.concatenate([s.timestamps for s in result])[ok])
    val = val[ok]
    if len(series) < len(result):  # several series for one container instance
        sid, step, val = _fold_max(sid, step, val, grid.n)
    # points now run series by series, steps ascending: each (series, day) is one contiguous run
    day = grid.day(step)
    pod_days, last = _runs(sid, day, step, val, len(series))
    pod_cells = _cells(sid, day, bucket_of(val, resource), grid.days)
    container_of, containers, unowned = _containers(series, owners)
    busy_cells = _busiest(sid, container_of, step, val, len(containers), grid, resource)
    return Partial(resource, series, containers, pod_cells, pod_days, busy_cells, last, unowned,
                   (int(step.min()), int(step.max())))


def _fold_max(group: np.ndarray, step: np.ndarray, val: np.ndarray, n: int):
    """(group, step, value) with one value per (group, step): the largest; sorted by group, then step."""
    if not len(group):
        return group, step, val
    code = group * n + step
    order = np.argsort(code, kind="stable")
    code, val = code[order], val[order]
    starts = np.flatnonzero(np.r_[True, code[1:] != code[:-1]])
    return code[starts] // n, code[starts] % n, np.maximum.reduceat(val, starts)


def _runs(sid: np.ndarray, day: np.ndarray, step: np.ndarray, val: np.ndarray, n_series: int):
    """(series, day, samples, sum, max) per contiguous (series, day) run, and each series' last step."""
    starts = np.flatnonzero(np.r_[True, (sid[1:] != sid[:-1]) | (day[1:] != day[:-1])])
    ends = np.r_[starts[1:], len(sid)]
    last = np.full(n_series, -1, dtype=np.int64)
    last[sid[ends - 1]] = step[ends - 1]  # runs of a series end with its latest step
    days = (sid[starts], day[starts], (ends - starts).astype(np.int64), np.add.reduceat(val, starts),
            np.maximum.reduceat(val, starts))
    return days, last


def _busiest(sid: np.ndarray, container_of: np.ndarray, step: np.ndarray, val: np.ndarray, n_containers: int, grid: Grid,
             resource: str):
    """Histogram cells of the busiest replica's value at each step, per container: the largest value
    of its pods at each step, on a containers x steps grid of this chunk (at most its points).

    ``sid``: each point's series, ``container_of``: each series' container (-1 without an owner). The
    series of a container are taken in layers (its first series, its second...): within a layer each
    (container, step) comes once, so a layer is one gather and one scatter, several times cheaper than
    a maximum per point (ufunc.at)."""
    cid = container_of[sid]
    owned = cid >= 0
    sid, cid, step, val = sid[owned], cid[owned], step[owned], val[owned]
    if not len(cid):
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, empty
    lo = int(step.min())
    width = int(step.max()) - lo + 1
    dense = np.full(n_containers * width, np.nan)
    layer = _layers(container_of)[sid]
    order = np.argsort(layer, kind="stable")
    flat, val = (cid * width + step - lo)[order], val[order]
    bounds = np.searchsorted(layer[order], np.arange(int(layer.max()) + 2))
    for a, b in zip(bounds[:-1], bounds[1:]):
        f = flat[a:b]
        dense[f] = np.fmax(dense[f], val[a:b])
    cells = np.flatnonzero(~np.isnan(dense))
    return _cells(cells // width, grid.day(cells % width + lo), bucket_of(dense[cells], resource), grid.days)


def _layers(group: np.ndarray) -> np.ndarray:
    """Per item, how many items of its group come before it (0 for the first)."""
    order = np.argsort(group, kind="stable")
    g = group[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]]) if len(g) else np.zeros(0, dtype=np.int64)
    rank = np.arange(len(g)) - np.repeat(starts, np.diff(np.r_[starts, len(g)]))
    out = np.empty(len(g), dtype=np.int64)
    out[order] = rank
    return out


def _cells(group: np.ndarray, day: np.ndarray, bucket: np.ndarray, days: int):
    """Histogram cells (group, day, bucket, count) of the points."""
    code = (group * days + day) * _NB + bucket
    cells, counts = np.unique(code, return_counts=True)
    return cells // _NB // days, cells // _NB % days, cells % _NB, counts.astype(np.int64)


def _containers(series: list[tuple], owners: dict[tuple, tuple]):
    """Per local series its local container index (-1 without an owner), the container keys, and the
    unowned pods."""
    index: dict[tuple, int] = {}
    out = np.full(len(series), -1, dtype=np.int64)
    unowned = set()
    for i, (ns, pod, container) in enumerate(series):
        owner = owners.get((ns, pod))
        if owner is None:
            unowned.add((ns, pod))
            continue
        out[i] = index.setdefault((ns, owner[0], owner[1], container), len(index))
    return out, list(index), unowned


def _namespace_groups(rows: np.ndarray, budget: int) -> list[tuple[int, int]]:
    """Consecutive namespace codes [lo, hi) grouped so each group has at most ``budget`` rows (a larger namespace
    alone); namespaces without rows join their neighbours."""
    groups, lo, load = [], 0, 0
    for i, n in enumerate(rows.tolist()):
        if load and load + n > budget:
            groups.append((lo, i))
            lo, load = i, 0
        load += n
    return groups + [(lo, len(rows))] if len(rows) else groups


def _codes(values: list[str]) -> tuple[np.ndarray, pd.Index]:
    """Codes and categories of a list of names (a few thousand), for a categorical column."""
    index: dict[str, int] = {}
    codes = np.fromiter((index.setdefault(v, len(index)) for v in values), dtype=np.int32, count=len(values))
    return codes, pd.Index(list(index), dtype=object)


def _compact(ids: np.ndarray, group, day, bucket, count):
    """Histogram cells under global ids, in the smallest integer types (millions of them are kept
    until the end of a collection)."""
    return ids[group].astype(np.int32), day.astype(np.int16), bucket.astype(np.int16), count.astype(np.int32)


class UsageAccumulator:
    """Partials merged under global indexes, then turned into the snapshot's usage tables."""

    def __init__(self, grid: Grid):
        self.grid = grid
        self.series: dict[tuple, int] = {}
        self.containers: dict[tuple, int] = {}
        self.parts: dict[tuple[str, str], list] = {}  # (resource, 'pod' | 'busy' | 'days') -> arrays
        self.unowned: set = set()
        self.last = np.zeros(0, dtype=np.int64)  # per global series: the last step with a sample
        self.span: tuple[int, int] = (-1, -1)  # first and last step with any container's sample

    def add(self, part: Partial) -> None:
        smap = np.array([self.series.setdefault(k, len(self.series)) for k in part.series], dtype=np.int64)
        cmap = np.array([self.containers.setdefault(k, len(self.containers)) for k in part.containers], dtype=np.int64)
        if len(self.last) < len(self.series):
            self.last = np.concatenate([self.last, np.full(len(self.series) - len(self.last), -1, dtype=np.int64)])
        if len(smap):
            np.maximum.at(self.last, smap, part.last)
            self.parts.setdefault((part.resource, "pod"), []).append(_compact(smap, *part.pod_cells))
            s, d, n, sm, mx = part.pod_days
            self.parts.setdefault((part.resource, "days"), []).append((smap[s], d, n, sm, mx))
        if len(cmap):
            self.parts.setdefault((part.resource, "busy"), []).append(_compact(cmap, *part.busy_cells))
        self.unowned |= part.unowned
        if part.span[0] >= 0:
            first, last = self.span
            self.span = (part.span[0] if first < 0 else min(first, part.span[0]), max(last, part.span[1]))

    def cells(self, resource: str, which: str, rank: np.ndarray | None = None, free: bool = False):
        """(group, day, bucket, count) with one row per cell, chunks of one day summed; compact dtypes. Sorted by
        group, day and bucket; with ``rank`` (a position per group id) by rank instead of group. ``free``: the
        partials' arrays are dropped as they are merged (nothing asks for them twice)."""
        arrays = self.parts.pop((resource, which), None) if free else self.parts.get((resource, which))
        if not arrays:
            return (np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int16), np.zeros(0, dtype=np.int16),
                    np.zeros(0, dtype=np.int32))
        days = self.grid.days
        group = np.concatenate([a[0] for a in arrays]).astype(np.int64)
        code = ((group if rank is None else rank[group]) * days + np.concatenate([a[1] for a in arrays])) * _NB
        del group
        code += np.concatenate([a[2] for a in arrays])
        order = np.argsort(code, kind="stable")
        code = code[order]
        counts = np.concatenate([a[3] for a in arrays])[order]
        del order, arrays
        starts = np.flatnonzero(np.r_[True, code[1:] != code[:-1]])
        cells = code[starts]
        del code
        group = cells // _NB // days
        if rank is not None:
            group = np.argsort(rank)[group]  # back from positions to group ids
        return (group.astype(np.int32), (cells // _NB % days).astype(np.int16),
                (cells % _NB).astype(np.int16), np.add.reduceat(counts, starts).astype(np.int32))

    def day_sums(self, resource: str):
        """(series, day, samples, sum, max) with one row per series and day."""
        arrays = self.parts.get((resource, "days"))
        if not arrays:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty, np.zeros(0), np.zeros(0)
        s, d, n, sm, mx = (np.concatenate(a) for a in zip(*arrays))
        days = self.grid.days
        keys, inverse = np.unique(s * days + d, return_inverse=True)
        maxima = np.full(len(keys), -np.inf)
        np.maximum.at(maxima, inverse, mx)
        return (keys // days, keys % days, np.bincount(inverse, weights=n).astype(np.int64),
                np.bincount(inverse, weights=sm), maxima)

    # --- the snapshot tables -------------------------------------------------------------------------
    def _series_frame(self, owners: dict[tuple, tuple]) -> pd.DataFrame:
        """One row per global series index: namespace, pod, container, kind, workload ('' unowned)."""
        keys = list(self.series)
        frame = pd.DataFrame(keys, columns=["namespace", "pod", "container"]) if keys else pd.DataFrame(
            columns=["namespace", "pod", "container"])
        owner = [owners.get((ns, pod), ("", "")) for ns, pod, _ in keys]
        frame["kind"] = [o[0] for o in owner]
        frame["workload"] = [o[1] for o in owner]
        return frame

    def _ids(self, owners: dict[tuple, tuple]):
        """Per global id (series, then containers): the codes and categories of each name column, and whether
        it has an owner (pods without one belong to no container)."""
        owner = [owners.get((ns, pod), ("", "")) for ns, pod, _ in self.series]
        ids = [(ns, o[0], o[1], c, pod) for (ns, pod, c), o in zip(self.series, owner)]
        ids += [(ns, k, w, c, "") for ns, k, w, c in self.containers]
        codes = {col: _codes([r[i] for r in ids]) for i, col in enumerate(_HIST_NAMES)}
        return codes, np.array([w != "" for _ns, _k, w, _c, _p in ids], dtype=bool)

    def histograms(self, cluster: str, owners: dict[tuple, tuple]) -> pd.DataFrame:
        """The usage_histograms table (see schema): pod cells and busiest cells of both resources, with
        categorical name columns (a million rows share a few hundred names)."""
        codes, owned = self._ids(owners)
        parts = []
        for r, resource in enumerate(RESOURCES):
            for which, offset, basis in (("pod", 0, 0), ("busy", len(self.series), 1)):
                g, d, b, c = self.cells(resource, which)
                keep = owned[g + offset]
                parts.append((g[keep] + offset, d[keep], b[keep], c[keep], r, basis))
        return self._frame(cluster, codes, parts)

    def histogram_chunks(self, cluster: str, owners: dict[tuple, tuple], leave_out=frozenset(), rows: int | None = None):
        """The rows of :meth:`histograms` in chunks of whole namespaces (about ``rows`` rows each; a larger namespace
        alone; default CHUNK_ROWS), each a frame with the same columns and categories; within a chunk, rows run as in histograms (by
        resource and basis, then by series), so a series' rows are together. The partials are freed as they are
        merged, and one chunk's frame is built at a time. ``leave_out``: namespaces whose data is incomplete."""
        codes, owned = self._ids(owners)
        ns_of, ns_names = codes["namespace"]
        owned &= ~np.isin(ns_names.to_numpy(dtype=object), list(leave_out))[ns_of]
        parts, per_ns = [], np.zeros(len(ns_names), dtype=np.int64)
        for r, resource in enumerate(RESOURCES):
            for which, offset, n, basis in (("pod", 0, len(self.series), 0), ("busy", len(self.series), len(self.containers), 1)):
                ns = ns_of[offset:offset + n]
                g, d, b, c = self.cells(resource, which, rank=np.argsort(np.argsort(ns, kind="stable")), free=True)
                bounds = np.r_[0, np.cumsum(np.bincount(ns[g], minlength=len(ns_names)))]  # rows now run namespace by namespace
                per_ns += np.diff(bounds)
                parts.append((g + offset, d, b, c, r, basis, bounds))
        for lo, hi in _namespace_groups(per_ns, rows or CHUNK_ROWS):
            chunk = []
            for g, d, b, c, r, basis, bounds in parts:
                sl = slice(bounds[lo], bounds[hi])
                keep = owned[g[sl]]
                chunk.append((g[sl][keep], d[sl][keep], b[sl][keep], c[sl][keep], r, basis))
            frame = self._frame(cluster, codes, chunk)
            if len(frame):
                yield frame

    def _frame(self, cluster: str, codes: dict, parts: list) -> pd.DataFrame:
        """The usage_histograms rows of ``parts``: (global ids, day, bucket, count, resource index, basis index)."""
        row = np.concatenate([p[0] for p in parts])
        out = pd.DataFrame({col: pd.Categorical.from_codes(codes[col][0][row], categories=codes[col][1]) for col in _HIST_NAMES})
        del row
        out.insert(0, "cluster", pd.Categorical.from_codes(np.zeros(len(out), dtype=np.int8), categories=[cluster]))
        out["basis"] = pd.Categorical.from_codes(np.concatenate([np.full(len(p[0]), p[5], dtype=np.int8) for p in parts]),
                                                 categories=["pod", "busiest"])
        out["resource"] = pd.Categorical.from_codes(np.concatenate([np.full(len(p[0]), p[4], dtype=np.int8) for p in parts]),
                                                    categories=list(RESOURCES))
        out["day"] = self.grid.day_start(np.concatenate([p[1] for p in parts]))
        out["bucket"] = np.concatenate([p[2] for p in parts]).astype(np.int16)
        out["count"] = np.concatenate([p[3] for p in parts]).astype(np.int32)
        return out

    def daily(self, cluster: str, owners: dict[tuple, tuple], raw: pd.DataFrame | None, oom_known: bool = True,
              restarts_known: bool | None = None) -> pd.DataFrame:
        """The usage_daily table: per container instance and day, exact samples, means and maxima.

        ``raw``: namespace, pod, container, day (int bin), memory_max_bytes (largest raw sample),
        oom_kills and restarts, from the daily query (None when it could not run); its memory max replaces
        the step max where known. ``oom_known``, ``restarts_known`` (default: as oom_known): whether the
        metrics behind OOM kills (restarts and the termination reason) and behind restarts exist (else NaN)."""
        series = self._series_frame(owners)
        per = {}
        for resource, unit in ((r.name, r.unit) for r in RESOURCES.values()):
            s, d, n, sm, mx = self.day_sums(resource)
            per[resource] = pd.DataFrame({"sid": s, "day": d, f"{resource}_samples": n,
                                          f"{resource}_mean_{unit}": sm / np.maximum(n, 1), f"{resource}_max_{unit}": mx})
        out = per["cpu"]
        for resource in list(RESOURCES)[1:]:
            out = out.merge(per[resource], on=["sid", "day"], how="outer")
        out = pd.concat([series.iloc[out["sid"].to_numpy()].reset_index(drop=True), out.drop(columns="sid").reset_index(drop=True)], axis=1)
        key = ["namespace", "pod", "container", "day"]
        if raw is not None:
            out = out.merge(raw, on=key, how="left", suffixes=("", "_raw"))
            for col in [c for c in ("memory_max_bytes", "gpu_memory_max_bytes") if f"{c}_raw" in out]:
                out[col] = out[f"{col}_raw"].fillna(out[col])  # the largest raw sample, finer than the step
                out = out.drop(columns=[f"{col}_raw"])
        # no series for a pod: the query ran and saw no kill (no restart)
        out["oom_kills"] = out["oom_kills"].fillna(0.0) if raw is not None and oom_known else np.nan
        known = oom_known if restarts_known is None else restarts_known
        out["restarts"] = out["restarts"].fillna(0.0) if raw is not None and known and "restarts" in out else np.nan
        for c in (f"{r}_samples" for r in RESOURCES):
            out[c] = out[c].fillna(0).astype(np.int64)
        out["day"] = self.grid.day_start(out["day"].to_numpy())
        out = out[out["workload"] != ""].reset_index(drop=True)
        out.insert(0, "cluster", cluster)
        return out
