"""The one registry of usage statistics, and the reducers that compute them from per-pod samples.

Everything that names a usage statistic reads it from here: the snapshot schema (usage columns),
the collector (which reduces each chunk of per-pod samples as it arrives), the policies' choices,
explain, the charts, the demo and the backtest.

**Samples.** Collection pulls each container instance's (pod's) CPU rate (cores) and working set
(bytes) at every step of the window. Those samples are kept in the snapshot as compact
histograms per pod and per day (table ``usage_histograms``), so any percentile, any sub-window (the
backtest) and any decay can be recomputed offline without asking Prometheus again.

**The sketch.** A histogram with logarithmic buckets (as DDSketch): bucket ``i >= 1`` holds the
values in ``(floor * GAMMA**(i-1), floor * GAMMA**i]``, bucket 0 holds ``[0, floor]``. A quantile
read from it is the bucket's representative value ``2 * floor * GAMMA**i / (GAMMA + 1)``, within
``RELATIVE_ERROR`` (0.99 %) of every value in the bucket. Values at or below ``floor`` (0.1
millicores, 64 KiB) are read as ``floor / 2``: far below any request rightsize recommends.

**Bases** (how the replicas of one container are combined):

- ``pooled``: every replica's samples in one distribution, as VPA pools its histogram. The
  default: it does not grow with the replica count.
- ``max_over_pods``: the statistic of each pod, then the largest over pods (KRR's statistic). Pods
  with less than ``MIN_POD_SAMPLES`` samples are left out unless no pod has that many, so a pod
  that lived through one start-up spike does not decide the request.
- ``busiest``: the busiest replica's value at each step (the largest over the pods alive at that
  step), then the statistic over steps. Grows with the replica count.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

GAMMA = 1.02
RELATIVE_ERROR = (GAMMA - 1) / (GAMMA + 1)  # 0.0099
_LOG_GAMMA = math.log(GAMMA)
MAX_BUCKET = 2047  # clamp: 1e-4 cores x 1.02**2047 and 64 KiB x 1.02**2047 are far beyond any node
MIN_POD_SAMPLES = 12  # one hour at the 5-minute step
DAY_SECONDS = 86400.0


@dataclass(frozen=True)
class Resource:
    name: str
    unit: str  # column suffix: cores / bytes
    floor: float  # upper edge of bucket 0, in the unit
    description: str


@dataclass(frozen=True)
class Statistic:
    name: str  # p50 ... max
    quantile: float
    description: str


@dataclass(frozen=True)
class Basis:
    name: str
    description: str


RESOURCES = {
    "cpu": Resource("cpu", "cores", 1e-4, "CPU usage: rate() of the cAdvisor CPU counter over [prometheus] rate_window"),
    "memory": Resource("memory", "bytes", 65536.0, "working set (container_memory_working_set_bytes)"),
}
STATISTICS = {s.name: s for s in (
    Statistic("p50", 0.50, "median"),
    Statistic("p90", 0.90, "90th percentile"),
    Statistic("p95", 0.95, "95th percentile"),
    Statistic("p99", 0.99, "99th percentile"),
    Statistic("max", 1.00, "maximum"),
)}
QUANTILES = tuple(s for s in STATISTICS.values() if s.quantile < 1.0)
BASES = {b.name: b for b in (
    Basis("pooled", "every replica's samples pooled"),
    Basis("max_over_pods", "largest of each pod's own statistic"),
    Basis("busiest", "busiest replica at each step"),
)}
DEFAULT_BASIS = "pooled"
_STAT_NAME = re.compile(r"^(max|p(\d{1,2}(\.\d+)?))$")


def parse_statistic(name: str) -> float:
    """The quantile of a statistic name: 'p95' -> 0.95, 'p99.9' -> 0.999, 'max' -> 1.0; ValueError otherwise."""
    m = _STAT_NAME.match(str(name))
    if not m or (m.group(2) is not None and not 0 < float(m.group(2)) < 100):
        raise ValueError(f"not a usage statistic: {name!r} (expected max or pNN such as p50, p95, p99.9)")
    return 1.0 if m.group(1) == "max" else float(m.group(2)) / 100.0


def usage_column(resource: str, stat: str, basis: str = DEFAULT_BASIS) -> str:
    """Name of the usage-table column holding ``stat`` of ``resource`` on ``basis``.

    The max is the same on every basis: ``cpu_max_cores`` (largest step value of any pod) and
    ``memory_max_bytes`` (largest raw sample of any pod, finer than the step)."""
    unit = RESOURCES[resource].unit
    if stat == "max":
        return f"{resource}_max_{unit}"
    return f"{resource}_{basis}_{stat}_{unit}"


def usage_statistic_columns() -> list[tuple[str, str]]:
    """(column, description) of every statistic column of the usage table, in schema order."""
    out = []
    for res in RESOURCES.values():
        for basis in BASES.values():
            for stat in QUANTILES:
                out.append((usage_column(res.name, stat.name, basis.name),
                            f"{res.description}: {stat.description}, {basis.description}; {res.unit}"))
        what = "largest step value of any pod" if res.name == "cpu" else "largest raw sample of any pod (finer than the step)"
        out.append((usage_column(res.name, "max"), f"{res.description}: {what}; {res.unit}"))
    return out


# --- the sketch ---------------------------------------------------------------------------------------

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
    code = group * (MAX_BUCKET + 1) + bucket
    cells, inverse = np.unique(code, return_inverse=True)
    totals = np.bincount(inverse, weights=count)
    cell_group = cells // (MAX_BUCKET + 1)
    groups, starts = np.unique(cell_group, return_index=True)
    cum = np.cumsum(totals)
    before = np.concatenate([[0.0], cum])[starts]  # samples of the earlier groups
    n = np.bincount(np.searchsorted(groups, cell_group), weights=totals)
    ranks = np.floor(qs[None, :] * (n[:, None] - 1) + 1e-9)  # 0-based rank of the member read
    last = np.concatenate([starts[1:], [len(cells)]]) - 1  # last cell of each group
    pos = np.minimum(np.searchsorted(cum, before[:, None] + ranks + 0.5), last[:, None])
    values = bucket_value(cells[pos] % (MAX_BUCKET + 1), resource)
    return groups, np.where(n[:, None] > 0, values, np.nan)


# --- reducers over the usage_histograms table ------------------------------------------------------------

def _factorize(frame: pd.DataFrame, keys: list[str]) -> tuple[np.ndarray, pd.DataFrame]:
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


def day_weights(days: pd.Series, end: pd.Timestamp, half_life_seconds: float | None) -> np.ndarray:
    """Weight of each day's samples: 1, or 0.5 ** (age / half-life) with age from the middle of the day
    to the window end (VPA decays its histogram the same way, per sample)."""
    if not half_life_seconds:
        return np.ones(len(days))
    age = (end - pd.to_datetime(days, utc=True)).dt.total_seconds().to_numpy() - DAY_SECONDS / 2
    return np.power(0.5, np.maximum(age, 0.0) / half_life_seconds)


def histogram_statistics(hist: pd.DataFrame, keys: list[str], resource: str, quantiles, basis: str,
                         weight: pd.Series | None = None, ids: "Ids | None" = None) -> pd.DataFrame:
    """Quantiles of ``resource`` per ``keys`` group (one row each) from usage_histograms rows on one basis.

    ``hist``: rows of the usage_histograms table (columns keys + pod, basis, resource, bucket, count).
    ``weight``: multipliers of ``count`` aligned with ``hist``'s index (decay); None = 1. ``ids``: the
    groups of ``hist``'s rows when the caller already has them (:func:`ids_of`). Columns of the result
    are the quantiles (floats, in the resource's unit) and ``samples`` (unweighted)."""
    ids = ids or ids_of(hist, keys)
    mask = ((hist["resource"] == resource) & (hist["basis"] == ("busiest" if basis == "busiest" else "pod"))).to_numpy()
    qs = list(quantiles)
    if not mask.any():
        return pd.DataFrame(columns=keys + qs + ["samples"])
    per_pod = basis == "max_over_pods"
    gid, table = (ids.pod, ids.pods) if per_pod else (ids.group, ids.groups)
    gid = gid[mask]
    count = hist["count"].to_numpy(dtype=float)[mask]
    w = count if weight is None else _rescaled(gid, count, count * weight.to_numpy(dtype=float)[mask])
    groups, values = grouped_quantiles(gid, hist["bucket"].to_numpy()[mask], w, qs, resource)
    out = table.iloc[groups].reset_index(drop=True)
    out[qs] = values
    out["samples"] = np.bincount(gid, weights=count)[groups]
    return max_over_pods(out, keys, qs) if per_pod else out


@dataclass
class Ids:
    """Rows of a usage_histograms table grouped once: ``group`` per row (the keys) with the key table
    ``groups``, and ``pod`` per row (keys + pod) with ``pods``."""

    group: np.ndarray
    groups: pd.DataFrame
    pod: np.ndarray
    pods: pd.DataFrame


def ids_of(hist: pd.DataFrame, keys: list[str]) -> Ids:
    group, groups = _factorize(hist, keys)
    pod, pods = _factorize(hist, keys + ["pod"])
    return Ids(group, groups, pod, pods)


def _rescaled(gid: np.ndarray, count: np.ndarray, weighted: np.ndarray) -> np.ndarray:
    """Decayed counts scaled so each group keeps its number of samples: only their relative weight
    changes, and the rank arithmetic of grouped_quantiles stays that of n samples."""
    total, decayed = np.bincount(gid, weights=count), np.bincount(gid, weights=weighted)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(decayed > 0, total / decayed, 0.0)
    return weighted * scale[gid]


def max_over_pods(per_pod: pd.DataFrame, keys: list[str], columns: list) -> pd.DataFrame:
    """The largest per-pod statistic per container, from pods with at least MIN_POD_SAMPLES samples
    (every pod when none has that many). ``per_pod`` has keys + pod + columns + samples."""
    enough = per_pod["samples"] >= MIN_POD_SAMPLES
    has_enough = enough.groupby([per_pod[k] for k in keys]).transform("any")
    eligible = per_pod[enough | ~has_enough]
    agg = {c: "max" for c in columns}
    agg["samples"] = "sum"
    return eligible.groupby(keys, as_index=False, sort=False).agg(agg)


# --- the usage table from the per-pod data -------------------------------------------------------------

CONTAINER_KEY = ["cluster", "namespace", "kind", "workload", "container"]


def usage_statistics(hist: pd.DataFrame, daily: pd.DataFrame, step_seconds: float,
                     weight: pd.Series | None = None) -> pd.DataFrame:
    """Every statistic of the registry per container, from ``usage_histograms`` and ``usage_daily`` rows.

    One code path for collect, the demo, what-if and the backtest: pass a subset of days (the
    backtest's training part) or ``weight`` (decay, aligned with ``hist``) to recompute. Units: cores,
    bytes; ``samples`` are steps with any pod, ``pod_samples`` every pod's steps, ``hours_covered`` =
    samples x step."""
    keys = CONTAINER_KEY
    if hist.empty:
        extra = ["samples", "pod_samples", "cpu_mean_cores", "memory_mean_bytes", "pods_seen", "hours_covered"]
        return pd.DataFrame(columns=keys + [c for c, _ in usage_statistic_columns()] + extra)
    parts = []
    ids = ids_of(hist, keys)  # grouping ten million rows is the costly part: once for every statistic
    for res in RESOURCES:
        qs = [s.quantile for s in QUANTILES]
        for basis in BASES:
            stats = histogram_statistics(hist, keys, res, qs, basis, weight, ids)
            names = {q.quantile: usage_column(res, q.name, basis) for q in QUANTILES}
            stats = stats.rename(columns=names).set_index(keys)
            keep = list(names.values())
            if basis == "busiest" and res == "memory":
                keep.append("samples")
            if basis == "pooled" and res == "memory":
                stats = stats.rename(columns={"samples": "pod_samples"})
                keep.append("pod_samples")
            parts.append(stats[keep])
    parts.append(_daily_statistics(daily, keys))
    out = pd.concat(parts, axis=1)
    out.index.names = keys
    out = out.reset_index()
    out["hours_covered"] = out["samples"] * step_seconds / 3600.0
    return out


def _daily_statistics(daily: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Exact maxima, means and pods seen per container from the per-pod, per-day rows."""
    if daily.empty:
        return pd.DataFrame(columns=["cpu_max_cores", "memory_max_bytes", "cpu_mean_cores", "memory_mean_bytes", "pods_seen"])
    d = daily.assign(_cpu_sum=daily["cpu_mean_cores"] * daily["cpu_samples"],
                     _mem_sum=daily["memory_mean_bytes"] * daily["memory_samples"])
    g = d.groupby(keys, sort=False)
    out = pd.DataFrame({
        "cpu_max_cores": g["cpu_max_cores"].max(),
        "memory_max_bytes": g["memory_max_bytes"].max(),
        "cpu_mean_cores": g["_cpu_sum"].sum(min_count=1) / g["cpu_samples"].sum().replace(0, np.nan),
        "memory_mean_bytes": g["_mem_sum"].sum(min_count=1) / g["memory_samples"].sum().replace(0, np.nan),
        "pods_seen": g["pod"].nunique().astype(float),
    })
    return out


# --- statistics a policy asks for ---------------------------------------------------------------------------

def column_for(resource: str, stat: str, basis: str = DEFAULT_BASIS, half_life: float = 0.0) -> str:
    """The usage-frame column holding ``stat`` of ``resource`` on ``basis`` (decayed with ``half_life``
    seconds): the usage table's own column when the snapshot carries it, else a derived column that
    :func:`derived_statistics` computes from the histograms. The max never decays."""
    if stat == "max" or (stat in STATISTICS and not half_life):
        return usage_column(resource, stat, basis)
    return f"{resource}_{basis}_{stat}_hl{int(half_life)}_{RESOURCES[resource].unit}"


def derived_columns(needed: set[tuple[str, str, str, float]]) -> set[tuple[str, str, str, float]]:
    """The (resource, stat, basis, half-life) of ``needed`` that the usage table does not carry."""
    return {n for n in needed if column_for(*n) != usage_column(*n[:3])}


def derived_statistics(hist: pd.DataFrame, needed: set[tuple[str, str, str, float]], end: pd.Timestamp | None) -> pd.DataFrame:
    """Per container, the columns (see :func:`column_for`) of every (resource, stat, basis, half-life)
    in ``needed`` that the usage table does not carry, from ``usage_histograms`` rows. Empty when
    nothing is needed; NaN for containers without histograms."""
    wanted = derived_columns(needed)
    out = pd.DataFrame(columns=CONTAINER_KEY)
    if not wanted or hist.empty:
        return out.assign(**{column_for(*n): pd.Series(dtype=float) for n in wanted})
    ids = ids_of(hist, CONTAINER_KEY)
    for resource, stat, basis, half_life in sorted(wanted):
        weight = pd.Series(day_weights(hist["day"], end, half_life), index=hist.index) if half_life and end is not None else None
        q = parse_statistic(stat)
        stats = histogram_statistics(hist, CONTAINER_KEY, resource, [q], basis, weight, ids)
        stats = stats.rename(columns={q: column_for(resource, stat, basis, half_life)}).drop(columns="samples")
        out = stats if out.empty else out.merge(stats, on=CONTAINER_KEY, how="outer")
    return out
