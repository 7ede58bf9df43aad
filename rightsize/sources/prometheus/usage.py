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

from ...analysis.statistics import DAY_SECONDS, MAX_BUCKET, bucket_of
from .client import RangeSeries

_NB = MAX_BUCKET + 1


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


def reduce_chunk(result: list[RangeSeries], resource: str, grid: Grid, owners: dict[tuple, tuple]) -> Partial:
    """Reduce one range answer (keys namespace, pod, container; with timestamps) of ``resource``.

    ``owners``: (namespace, pod) -> (kind, workload). Duplicate series of one container instance are
    folded by their max at each step; pods without an owner count nowhere and are reported."""
    index: dict[tuple, int] = {}
    sid, steps, values = [], [], []
    for s in result:
        i = index.setdefault(s.key, len(index))
        ok = ~np.isnan(s.values)
        sid.append(np.full(int(ok.sum()), i, dtype=np.int64))
        steps.append(grid.index(s.timestamps[ok]))
        values.append(s.values[ok])
    series = list(index)
    if not series:
        empty = np.zeros(0, dtype=np.int64)
        return Partial(resource, [], [], (empty,) * 4, (empty,) * 5, (empty,) * 4)
    sid, step, val = _fold_max(np.concatenate(sid), np.concatenate(steps), np.concatenate(values), grid.n)
    day = grid.day(step)
    last = np.full(len(series), -1, dtype=np.int64)
    np.maximum.at(last, sid, step)
    pod_cells = _cells(sid, day, bucket_of(val, resource), grid.days)
    pod_days = _day_sums(sid, day, val, grid.days)
    container_of, containers, unowned = _containers(series, owners)
    cid = container_of[sid]
    owned = cid >= 0
    bcid, bstep, bval = _fold_max(cid[owned], step[owned], val[owned], grid.n)
    busy_cells = _cells(bcid, grid.day(bstep), bucket_of(bval, resource), grid.days)
    return Partial(resource, series, containers, pod_cells, pod_days, busy_cells, last, unowned)


def _fold_max(group: np.ndarray, step: np.ndarray, val: np.ndarray, n: int):
    """(group, step, value) with one value per (group, step): the largest."""
    if not len(group):
        return group, step, val
    code = group * n + step
    order = np.argsort(code, kind="stable")
    code, val = code[order], val[order]
    starts = np.flatnonzero(np.r_[True, code[1:] != code[:-1]])
    if len(starts) != len(code):
        val = np.maximum.reduceat(val, starts)
        code = code[starts]
    return code // n, code % n, val


def _cells(group: np.ndarray, day: np.ndarray, bucket: np.ndarray, days: int):
    """Histogram cells (group, day, bucket, count) of the points."""
    code = (group * days + day) * _NB + bucket
    cells, counts = np.unique(code, return_counts=True)
    return cells // _NB // days, cells // _NB % days, cells % _NB, counts.astype(np.int64)


def _day_sums(group: np.ndarray, day: np.ndarray, val: np.ndarray, days: int):
    """(group, day, samples, sum, max) per group and day."""
    code = group * days + day
    keys, inverse = np.unique(code, return_inverse=True)
    samples = np.bincount(inverse).astype(np.int64)
    sums = np.bincount(inverse, weights=val)
    maxima = np.full(len(keys), -np.inf)
    np.maximum.at(maxima, inverse, val)
    return keys // days, keys % days, samples, sums, maxima


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


class UsageAccumulator:
    """Partials merged under global indexes, then turned into the snapshot's usage tables."""

    def __init__(self, grid: Grid):
        self.grid = grid
        self.series: dict[tuple, int] = {}
        self.containers: dict[tuple, int] = {}
        self.parts: dict[tuple[str, str], list] = {}  # (resource, 'pod' | 'busy' | 'days') -> arrays
        self.unowned: set = set()
        self.last = np.zeros(0, dtype=np.int64)  # per global series: the last step with a sample

    def add(self, part: Partial) -> None:
        smap = np.array([self.series.setdefault(k, len(self.series)) for k in part.series], dtype=np.int64)
        cmap = np.array([self.containers.setdefault(k, len(self.containers)) for k in part.containers], dtype=np.int64)
        if len(self.last) < len(self.series):
            self.last = np.concatenate([self.last, np.full(len(self.series) - len(self.last), -1, dtype=np.int64)])
        if len(smap):
            np.maximum.at(self.last, smap, part.last)
            s, d, b, c = part.pod_cells
            self.parts.setdefault((part.resource, "pod"), []).append((smap[s], d, b, c))
            s, d, n, sm, mx = part.pod_days
            self.parts.setdefault((part.resource, "days"), []).append((smap[s], d, n, sm, mx))
        if len(cmap):
            g, d, b, c = part.busy_cells
            self.parts.setdefault((part.resource, "busy"), []).append((cmap[g], d, b, c))
        self.unowned |= part.unowned

    def cells(self, resource: str, which: str):
        """(group, day, bucket, count) with one row per cell, chunks of one day summed."""
        arrays = self.parts.get((resource, which))
        if not arrays:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty, empty
        g, d, b, c = (np.concatenate(a) for a in zip(*arrays))
        days = self.grid.days
        code = (g * days + d) * _NB + b
        cells, inverse = np.unique(code, return_inverse=True)
        return cells // _NB // days, cells // _NB % days, cells % _NB, np.bincount(inverse, weights=c).astype(np.int64)

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

    def histograms(self, cluster: str, owners: dict[tuple, tuple]) -> pd.DataFrame:
        """The usage_histograms table (see schema): pod cells and busiest cells of both resources."""
        series = self._series_frame(owners)
        containers = pd.DataFrame(list(self.containers), columns=["namespace", "kind", "workload", "container"])
        frames = []
        for resource in ("cpu", "memory"):
            for which, basis in (("pod", "pod"), ("busy", "busiest")):
                g, d, b, c = self.cells(resource, which)
                ids = series if which == "pod" else containers.assign(pod="")
                f = ids.iloc[g].reset_index(drop=True)
                f = f.assign(basis=basis, resource=resource, day=self.grid.day_start(d), bucket=b, count=c)
                frames.append(f[f["workload"] != ""])
        out = pd.concat(frames, ignore_index=True)
        out.insert(0, "cluster", cluster)
        return out

    def daily(self, cluster: str, owners: dict[tuple, tuple], raw: pd.DataFrame | None, oom_known: bool = True) -> pd.DataFrame:
        """The usage_daily table: per container instance and day, exact samples, means and maxima.

        ``raw``: namespace, pod, container, day (int bin), memory_max_bytes (largest raw sample),
        oom_kills, from the daily query (None when it could not run); its memory max replaces the
        step max where known. ``oom_known``: whether the metrics behind OOM kills exist (else NaN)."""
        series = self._series_frame(owners)
        per = {}
        for resource, unit in (("cpu", "cores"), ("memory", "bytes")):
            s, d, n, sm, mx = self.day_sums(resource)
            per[resource] = pd.DataFrame({"sid": s, "day": d, f"{resource}_samples": n,
                                          f"{resource}_mean_{unit}": sm / np.maximum(n, 1), f"{resource}_max_{unit}": mx})
        out = per["cpu"].merge(per["memory"], on=["sid", "day"], how="outer")
        out = pd.concat([series.iloc[out["sid"].to_numpy()].reset_index(drop=True), out.drop(columns="sid").reset_index(drop=True)], axis=1)
        key = ["namespace", "pod", "container", "day"]
        if raw is not None:
            out = out.merge(raw, on=key, how="left", suffixes=("", "_raw"))
            out["memory_max_bytes"] = out["memory_max_bytes_raw"].fillna(out["memory_max_bytes"])
            out = out.drop(columns=["memory_max_bytes_raw"])
        # no series for a pod: the query ran and saw no kill
        out["oom_kills"] = out["oom_kills"].fillna(0.0) if raw is not None and oom_known else np.nan
        for c in ("cpu_samples", "memory_samples"):
            out[c] = out[c].fillna(0).astype(np.int64)
        out["day"] = self.grid.day_start(out["day"].to_numpy())
        out = out[out["workload"] != ""].reset_index(drop=True)
        out.insert(0, "cluster", cluster)
        return out
