"""The usage sketch: each pod's samples kept as compact histograms, and the reducers that read every
statistic of the registry (usage_stats.py) from them. Shared by collect (which reduces each chunk of samples
as it arrives), the demo, the backtest and what-if, so it sits below sources and analysis.

**Samples.** Collection pulls each container instance's (pod's) CPU rate (cores) and working set
(bytes) at every step of the window. Those samples are kept in the snapshot as compact
histograms per pod and per day (table ``usage_histograms``), so any percentile, any sub-window (the
backtest) and any decay can be recomputed offline without asking Prometheus again.

**The sketch.** A histogram with logarithmic buckets (as DDSketch): bucket ``i >= 1`` holds the
values in ``(floor * GAMMA**(i-1), floor * GAMMA**i]``, bucket 0 holds ``[0, floor]``. A quantile
read from it is the bucket's representative value ``2 * floor * GAMMA**i / (GAMMA + 1)``, within
``RELATIVE_ERROR`` (0.99 %) of every value in the bucket. Values at or below ``floor`` (0.1
millicores, 64 KiB) are read as ``floor / 2``: far below any request rightsize recommends.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .usage_stats import BASES, CONTAINER_KEY, QUANTILES, RESOURCES, usage_column, usage_statistic_columns


GAMMA = 1.02


RELATIVE_ERROR = (GAMMA - 1) / (GAMMA + 1)  # 0.0099


_LOG_GAMMA = math.log(GAMMA)


MAX_BUCKET = 2047  # clamp: 1e-4 cores x 1.02**2047 and 64 KiB x 1.02**2047 are far beyond any node


MIN_POD_SAMPLES = 12  # one hour at the 5-minute step


def bucket_of(values: np.ndarray, resource: str) -> np.ndarray:
    """Bucket index (int16) of each value (cores or bytes); NaN must be removed first."""
    floor = RESOURCES[resource].floor
    x = np.asarray(values, dtype=float) / floor
    with np.errstate(divide="ignore", invalid="ignore"):
        idx = np.ceil(np.log(np.maximum(x, 1.0)) / _LOG_GAMMA - 1e-9)
    return np.clip(idx, 0, MAX_BUCKET).astype(np.int16)


def bucket_value(buckets: np.ndarray, resource: str) -> np.ndarray:
    """Representative value (cores or bytes) of each bucket: within RELATIVE_ERROR of its members."""
    floor = RESOURCES[resource].floor
    b = np.asarray(buckets, dtype=float)
    return np.where(b <= 0, floor / 2.0, floor * 2.0 * np.power(GAMMA, b) / (GAMMA + 1.0))


def summed(ids: np.ndarray, weights: np.ndarray, minlength: int = 0) -> np.ndarray:
    """np.bincount(ids, weights=weights, minlength=minlength): the weights summed per id (float64), with integer
    weights made float64 first (numpy converts them element by element inside bincount: 4x its time, measured on
    the 7.7 M training cells of 21,000 containers). The same sums, exactly."""
    return np.bincount(ids, weights=np.asarray(weights, dtype=np.float64), minlength=minlength)


DENSE = 4  # a dense array of cells has at most this many slots per row summed into it (else: sorted)


def cell_sums(cid: np.ndarray, bucket: np.ndarray, count: np.ndarray, base: int = MAX_BUCKET + 1) -> tuple[np.ndarray, np.ndarray]:
    """(cell codes = id x ``base`` + bucket, ascending; summed count of each, float) of the rows' (id, bucket)
    cells, as np.unique and np.bincount would give them, without their sort of the rows (and its int64
    copies: hundreds of MB at 20,000 containers) nor hashing: each id's buckets (or day and bucket, below
    ``base``) span a short range, so each id gets a slot per value of its range in one dense array, summed
    with np.bincount."""
    if not len(cid):
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    ids, lo, hi = _spans(cid, bucket)
    width = hi - lo + 1
    size = int(width.sum())
    if size > DENSE * len(cid) + 4096:  # buckets spread far apart: the dense array would outgrow the sort
        code = cid.astype(np.int64) * base + bucket
        uniq, inverse = np.unique(code, return_inverse=True)
        return uniq, summed(inverse, count)
    offset = np.r_[0, np.cumsum(width)[:-1]]
    at = np.zeros(int(ids[-1]) + 1, dtype=np.int64)
    at[ids] = offset - lo  # a row's slot: at[its id] + its bucket
    slot = at[cid]
    slot += bucket  # in place: one int64 array of the rows, not two
    seen = np.flatnonzero(np.bincount(slot, minlength=size))
    counts = summed(slot, count, size)[seen]
    del slot
    cell = np.searchsorted(offset, seen, side="right") - 1
    shift = ids * base - offset + lo  # per id: its cells' code minus their slot
    seen += shift[cell]
    return seen, counts


_BLOCK_ROWS = 1 << 21  # rows of a resource summed into cells at once (the backtest's TestDays.of)


def cell_sums_in_ranges(cid: np.ndarray, bucket: np.ndarray, count: np.ndarray, mine: np.ndarray, ids: int,
                        rows: int = _BLOCK_ROWS) -> tuple[np.ndarray, np.ndarray]:
    """:func:`cell_sums` of the ``mine`` rows, a range of container ids (of ``ids``) at a time when they are many:
    the same cells in the same order and the same sums (a cell's rows are all in one range, in the same order),
    with the working set of a few million rows (the 21k training cells: 7.7 M rows of CPU, +250 -> +128 MB)."""
    blocks = -(-int(mine.sum()) // rows)
    if blocks <= 1:
        return cell_sums(cid[mine], bucket[mine], count[mine])
    edges, parts = np.linspace(0, ids, blocks + 1).astype(np.int64), []
    for a, b in zip(edges[:-1], edges[1:]):
        sel = mine & (cid >= a) & (cid < b)
        parts.append(cell_sums(cid[sel], bucket[sel], count[sel]))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def group_sum(group: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Per group (0 <= id < n) the sum of its values in row order with Kahan's compensation, NaN skipped:
    the very sums pandas' groupby gives (so figures do not move in their last digit), over integer ids.
    One vectorised pass per position within a group: as many passes as the largest group has rows."""
    keep = ~np.isnan(values)
    group, values = group[keep], values[keep]
    order = np.argsort(group, kind="stable")
    group, values = group[order], values[order]
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]]) if len(group) else np.zeros(0, dtype=np.int64)
    lengths = np.diff(np.r_[starts, len(group)])
    total, comp = np.zeros(n), np.zeros(n)
    for r in range(int(lengths.max()) if len(lengths) else 0):
        at = starts[lengths > r] + r  # the r-th row of every group that has one
        g, y = group[at], values[at] - comp[group[at]]
        t = total[g] + y
        c = t - total[g] - y
        comp[g] = np.where(np.isnan(c), 0.0, c)
        total[g] = t
    return total


def _spans(cid: np.ndarray, bucket: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids present ascending, the lowest and the highest bucket of each), int64. Rows in runs of one id take a
    few passes of numpy, without a pandas groupby: the lowest and highest bucket per run, then per id over its
    runs (a table rightsize wrote holds a series at a time, so an id comes in a few runs: one per resource and
    basis for a container, in the backtest's training cells); the groupby only where runs are nearly rows."""
    starts = np.flatnonzero(np.r_[True, cid[1:] != cid[:-1]])
    if len(starts) * 4 > len(cid):
        span = pd.Series(bucket).groupby(cid).agg(["min", "max"])
        return (span.index.to_numpy(dtype=np.int64), span["min"].to_numpy(dtype=np.int64),
                span["max"].to_numpy(dtype=np.int64))
    run, lo, hi = cid[starts].astype(np.int64), np.minimum.reduceat(bucket, starts), np.maximum.reduceat(bucket, starts)
    if (run[1:] > run[:-1]).all():  # each id one run, in order
        return run, lo.astype(np.int64), hi.astype(np.int64)
    ids, inverse = np.unique(run, return_inverse=True)
    low, high = np.full(len(ids), np.iinfo(np.int64).max), np.full(len(ids), np.iinfo(np.int64).min)
    np.minimum.at(low, inverse, lo)
    np.maximum.at(high, inverse, hi)
    return ids, low, high


def grouped_quantiles(group: np.ndarray, bucket: np.ndarray, count: np.ndarray, quantiles, resource: str,
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Quantiles of many histograms at once.

    ``group`` (int ids), ``bucket`` and ``count`` are parallel arrays of histogram cells in any
    order, several cells of one (group, bucket) allowed. Returns (groups, values) with ``values[g, q]``
    the ``quantiles[q]`` of group ``groups[g]``: the member at rank floor(q x (n - 1)), as
    quantile_over_time interpolates between ranks, read to within RELATIVE_ERROR; NaN for an empty
    group."""
    group, bucket, count = (np.asarray(a) for a in (group, bucket, count))
    keep = count > 0
    group, bucket, count = group[keep].astype(np.int64), bucket[keep].astype(np.int64), count[keep].astype(float)
    qs = np.asarray(list(quantiles), dtype=float)
    if not len(group):
        return np.zeros(0, dtype=np.int64), np.zeros((0, len(qs)))
    cells, totals = cell_sums(group, bucket, count)  # sorted by group, then bucket
    cell_group = cells // (MAX_BUCKET + 1)
    starts = np.flatnonzero(np.r_[True, cell_group[1:] != cell_group[:-1]])
    groups = cell_group[starts]
    cum = np.cumsum(totals)
    before = np.concatenate([[0.0], cum])[starts]  # samples of the earlier groups
    n = np.bincount(np.searchsorted(groups, cell_group), weights=totals)
    ranks = np.floor(qs[None, :] * (n[:, None] - 1) + 1e-9)  # 0-based rank of the member read
    last = np.concatenate([starts[1:], [len(cells)]]) - 1  # last cell of each group
    pos = np.minimum(np.searchsorted(cum, before[:, None] + ranks + 0.5), last[:, None])
    values = bucket_value(cells[pos] % (MAX_BUCKET + 1), resource)
    return groups, np.where(n[:, None] > 0, values, np.nan)


def factorize(frame: pd.DataFrame, keys: list[str]) -> tuple[np.ndarray, pd.DataFrame]:
    """Integer id per row for the combination of ``keys``, and the key table (id -> key values).

    Column by column (a categorical column's codes are used as they are), compacting after each, so
    ids stay small and no tuple is built per row."""
    code = np.zeros(len(frame), dtype=np.int64)
    for k in keys:
        col = frame[k]
        if isinstance(col.dtype, pd.CategoricalDtype):
            c, n = col.cat.codes.to_numpy(dtype=np.int64), len(col.cat.categories) + 1
        else:
            c, uniques = pd.factorize(col, use_na_sentinel=False)
            n = len(uniques)
        code, _ = pd.factorize(code * n + c)
        code = code.astype(np.int64)
    ids, first = np.unique(code, return_index=True)
    table = frame[keys].iloc[first].reset_index(drop=True)
    for k in keys:
        if isinstance(table[k].dtype, pd.CategoricalDtype):
            table[k] = table[k].astype(str)
    return code, table


def histogram_statistics(hist: pd.DataFrame, keys: list[str], resource: str, quantiles, basis: str,
                         weight: pd.Series | None = None, ids: "Ids | None" = None) -> pd.DataFrame:
    """Quantiles of ``resource`` per ``keys`` group (one row each) from usage_histograms rows on one basis.

    ``hist``: rows of the usage_histograms table (columns keys + pod, basis, resource, bucket, count).
    ``weight``: multipliers of ``count`` aligned with ``hist``'s index (decay); None = 1. ``ids``: the
    groups of ``hist``'s rows when the caller already has them (:func:`ids_of`). Columns of the result
    are the quantiles (floats, in the resource's unit) and ``samples`` (unweighted)."""
    ids = ids or ids_of(hist, keys)
    qs = list(quantiles)
    groups, values, samples = _statistics_by_id(hist, resource, qs, basis, weight, ids)
    if not len(groups):  # float columns, so a range of containers without this resource concatenates as floats
        return pd.DataFrame(columns=keys + qs + ["samples"]).astype({c: float for c in [*qs, "samples"]})
    out = ids.groups.iloc[groups].reset_index(drop=True)
    out[qs] = values
    out["samples"] = samples
    return out


def _statistics_by_id(hist: pd.DataFrame, resource: str, qs: list, basis: str, weight: pd.Series | None, ids: "Ids",
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`histogram_statistics` by group id: (the groups, in the order of that table's rows; their quantiles,
    groups x ``qs``; their samples, unweighted), empty when ``hist`` has no rows of ``resource`` on ``basis``."""
    mask = ((hist["resource"] == resource) & (hist["basis"] == ("busiest" if basis == "busiest" else "pod"))).to_numpy()
    if not mask.any():
        return np.zeros(0, dtype=np.int64), np.zeros((0, len(qs))), np.zeros(0)
    per_pod = basis == "max_over_pods"
    gid = (ids.pod if per_pod else ids.group)[mask]
    count = hist["count"].to_numpy(dtype=float)[mask]
    w = count if weight is None else _rescaled(gid, count, count * weight.to_numpy(dtype=float)[mask])
    groups, values = grouped_quantiles(gid, hist["bucket"].to_numpy()[mask], w, qs, resource)
    samples = np.bincount(gid, weights=count)[groups]
    if not per_pod:
        return groups, values, samples
    pod_group = np.zeros(len(ids.pods), dtype=np.int64)
    pod_group[gid] = ids.group[mask]
    return _max_over_pods(pod_group[groups], values, samples)


@dataclass
class Ids:
    """Rows of a usage_histograms table grouped once: ``group`` per row (the keys) with the key table
    ``groups``, and ``pod`` per row (keys + pod) with ``pods``."""

    group: np.ndarray
    groups: pd.DataFrame
    pod: np.ndarray
    pods: pd.DataFrame


def ids_of(hist: pd.DataFrame, keys: list[str]) -> Ids:
    group, groups = factorize(hist, keys)
    pod, pods = factorize(hist, keys + ["pod"])
    return Ids(group, groups, pod, pods)


def _rescaled(gid: np.ndarray, count: np.ndarray, weighted: np.ndarray) -> np.ndarray:
    """Decayed counts scaled so each group keeps its number of samples: only their relative weight
    changes, and the rank arithmetic of grouped_quantiles stays that of n samples."""
    total, decayed = np.bincount(gid, weights=count), np.bincount(gid, weights=weighted)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(decayed > 0, total / decayed, 0.0)
    return weighted * scale[gid]


def _max_over_pods(group: np.ndarray, values: np.ndarray, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The largest per-pod statistic per group (``group``: each pod's, pods by ascending id), from pods with at
    least MIN_POD_SAMPLES samples (every pod of a group when none has that many): (the groups, in order of their
    first such pod; the largest values, groups x columns; the summed samples)."""
    enough = samples >= MIN_POD_SAMPLES
    has_enough = np.bincount(group, weights=enough) > 0
    keep = enough | ~has_enough[group]
    frame = pd.DataFrame(values[keep])
    frame["samples"] = samples[keep]
    out = frame.groupby(group[keep], sort=False).agg({**{c: "max" for c in range(values.shape[1])}, "samples": "sum"})
    return out.index.to_numpy(dtype=np.int64), out[list(range(values.shape[1]))].to_numpy(dtype=float), out["samples"].to_numpy(dtype=float)


def usage_statistics(hist: pd.DataFrame, daily: pd.DataFrame, step_seconds: float,
                     weight: pd.Series | None = None, ids: "Ids | None" = None) -> pd.DataFrame:
    """Every statistic of the registry per container, from ``usage_histograms`` and ``usage_daily`` rows.

    One code path for collect, the demo, what-if and the backtest: pass a subset of days (the
    backtest's training part) or ``weight`` (decay, aligned with ``hist``) to recompute. Units: cores,
    bytes; ``samples`` are steps with any pod, ``pod_samples`` every pod's steps, ``hours_covered`` =
    samples x step. ``ids``: the rows' grouping when the caller has it (ids_of, or analysis.cells).
    Containers in order of first appearance over the statistics (CPU pooled first), then those with daily rows
    only; the statistics are placed by integer group id and named once (not joined on names per statistic)."""
    keys = list(CONTAINER_KEY)
    if hist.empty:
        extra = ["samples", "pod_samples", *[f"{r.name}_mean_{r.unit}" for r in RESOURCES.values()], "pods_seen", "hours_covered"]
        return pd.DataFrame(columns=keys + [c for c, _ in usage_statistic_columns()] + extra)
    ids = ids or ids_of(hist, keys)  # grouping ten million rows is the costly part: once for every statistic
    columns, order = {}, []  # column -> (group ids, values); the groups of each statistic, in turn
    qs = [s.quantile for s in QUANTILES]
    for res in RESOURCES:
        for basis in BASES:
            groups, values, samples = _statistics_by_id(hist, res, qs, basis, weight, ids)
            order.append(groups)
            columns.update({usage_column(res, q.name, basis): (groups, values[:, i]) for i, q in enumerate(QUANTILES)})
            if res == "memory" and basis in ("busiest", "pooled"):
                columns["samples" if basis == "busiest" else "pod_samples"] = (groups, samples)
    out = _by_group(ids.groups, columns, order).set_index(keys)
    out = pd.concat([out, daily_statistics(daily, keys)], axis=1)
    out.index.names = keys
    out = out.reset_index()
    out["hours_covered"] = out["samples"] * step_seconds / 3600.0
    return out


def _by_group(table: pd.DataFrame, columns: dict, order: list) -> pd.DataFrame:
    """Rows of ``table`` (group id -> keys) with ``columns`` (name -> (group ids, values); NaN where a group has
    none), the groups of ``order``'s arrays in turn, each group where it first appears (what joining the
    statistics one by one on the keys, in that order, gives)."""
    seen = np.zeros(len(table), dtype=bool)
    rows = []
    for groups in order:
        new = groups[~seen[groups]]
        seen[new] = True
        rows.append(new)
    rows = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    at = np.full(len(table), -1, dtype=np.int64)
    at[rows] = np.arange(len(rows))
    out = table.iloc[rows].reset_index(drop=True)
    for name, (groups, values) in columns.items():
        col = np.full(len(rows), np.nan)
        col[at[groups]] = values
        out[name] = col
    return out


def daily_statistics(daily: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Exact maxima, means and pods seen per container from the per-pod, per-day rows (a GPU resource only
    where the rows carry it)."""
    resources = [r for r in RESOURCES.values() if r.core or f"{r.name}_samples" in daily.columns]
    if daily.empty:
        return pd.DataFrame(columns=[f"{r.name}_{w}_{r.unit}" for r in resources for w in ("max", "mean")] + ["pods_seen"])
    d = daily.assign(**{f"_{r.name}_sum": daily[f"{r.name}_mean_{r.unit}"] * daily[f"{r.name}_samples"] for r in resources})
    g = d.groupby(keys, sort=False)
    out = pd.DataFrame({f"{r.name}_max_{r.unit}": g[f"{r.name}_max_{r.unit}"].max() for r in resources})
    for r in resources:
        out[f"{r.name}_mean_{r.unit}"] = g[f"_{r.name}_sum"].sum(min_count=1) / g[f"{r.name}_samples"].sum().replace(0, np.nan)
    out["pods_seen"] = g["pod"].nunique().astype(float)
    return out
