"""Growing memory: a working set that rises with its pod's age, fitted per pod from the daily maxima.

A leak shows as a pod's working set climbing day after day until the pod is replaced (a rollout, a
new pod name) or its container restarts; then the climb starts again from a base. The window's max
says nothing about how far the next week climbs when pods live longer than the window showed, so the
memory rules (rules/growth.py) project the climb over the pods' expected life.

**Segments.** The per-pod, per-day rows (``usage_daily``) of one container are cut into *segments*:
one per pod, cut again at every day with a restart (``restarts``, OOM kills included). A day with a
restart holds two lives and is left out; so is a day the pod did not run whole (its first and last
day, fewer than FULL_DAY of the day's steps), whose maximum a shorter day lowers. What remains is
each segment's daily maxima (largest raw sample) against the pod's age at the end of each day.

**The fit.** Per container, the slope is Theil–Sen's: the median of the slopes between every two
days of one segment (pairs never span two pods), in bytes per day of age, robust to a spike or a
lull. Whether it grows at all is Mann–Kendall's test, pooled over the segments: S = the concordant
minus the discordant pairs, its variance n (n - 1) (2n + 5) / 18 per segment, z = (S - 1) / sd. A
container grows when z >= Z_MIN (one-sided p < 0.01), the slope is positive, some segment has at
least MIN_DAYS whole days, and the climb over one life (at most the horizon) is at least MATERIAL of
its level. A steady or diurnal working set has flat daily maxima (z near 0); a bursty one has
maxima that jump both ways (pairs cancel); a warm-up inside the first day is left out with that day.

**The projection** over a horizon H (days): each pod running at the window end keeps climbing from
its fitted level for min(H, L - its age) days, where L is the pods' expected life: the median length
of the segments whose start and end the window saw (rollouts, restarts), unbounded when none ended;
a pod replaced within H starts again from the base (the fitted level at age 0) and climbs for
min(L, H). The projected peak is the largest of those and the window's max.

Pure numpy/pandas over the daily table; units: bytes, days.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..usage_stats import CONTAINER_KEY, DAY_SECONDS

MIN_DAYS = 3  # whole days in one segment, at least
Z_MIN = 2.33  # Mann-Kendall z for a one-sided p < 0.01
MATERIAL = 0.05  # a climb over one life below this share of the level is no growth worth acting on
FULL_DAY = 0.9  # share of a day's steps a pod must have run for the day's maximum to count

COLUMNS = ("growth_bytes_per_day", "growth_z", "growth_days", "growth_life_days", "growth_level_bytes",
           "growth_age_days", "growth_base_bytes", "growing")


def segments(daily: pd.DataFrame, step_seconds: float, window_end: pd.Timestamp) -> pd.DataFrame:
    """The fit points: one row per whole, restart-free pod-day with ``seg`` (segment id), ``cid`` (container
    id, into the returned frame's ``attrs['containers']``), ``age`` (days: the pod's age at the day's end,
    from its first sample or the day after its last restart; a lower bound when the pod started before the
    window) and ``y`` (the day's largest raw working-set sample, bytes); ``attrs['segments']`` holds per
    segment its start (observed or not), end (observed or running at the window end) and length in days."""
    d = daily[list(CONTAINER_KEY) + ["pod", "day", "memory_samples", "memory_max_bytes", "oom_kills"]
              + (["restarts"] if "restarts" in daily else [])].copy()
    d = d[(d["memory_samples"] > 0) & d["memory_max_bytes"].notna()]
    per_day = DAY_SECONDS / float(step_seconds or 300)
    d["_t"] = (pd.to_datetime(d["day"], utc=True) - window_end).dt.total_seconds().to_numpy() / DAY_SECONDS + 1.0
    d, cid, pod = _sorted_ids(d, list(CONTAINER_KEY))
    containers = d[list(CONTAINER_KEY)].iloc[_first(cid, np.arange(len(d)))].reset_index(drop=True).astype(str)
    restarts = np.fmax(d["restarts"].to_numpy(dtype=float) if "restarts" in d else np.full(len(d), np.nan),
                       d["oom_kills"].to_numpy(dtype=float))
    reset = np.nan_to_num(restarts) > 0
    new_pod = np.r_[True, pod[1:] != pod[:-1]]
    # a segment begins with a pod, and again the day after a restart
    seg = np.cumsum(new_pod | np.r_[False, reset[:-1] & ~new_pod[1:]]) - 1
    t, whole = d["_t"].to_numpy(), d["memory_samples"].to_numpy(dtype=float) >= FULL_DAY * per_day
    first_t = _first(seg, t)  # end of each segment's first day (days from the window end, <= 0)
    first_samples = _first(seg, d["memory_samples"].to_numpy(dtype=float))
    after_restart = _first(seg, ~new_pod) > 0
    window_start = float(np.min(t)) if len(t) else 0.0
    # the start: half way through the restart day, or the first sample of a pod first seen after the window's first day
    started = np.where(after_restart, first_t - 1.5, first_t - first_samples / per_day)
    seen_start = after_restart | (first_t > window_start + 1e-9) | (first_samples < FULL_DAY * per_day)
    last_t = _last(seg, t)
    by_restart = _last(seg, reset)
    samples = d["memory_samples"].to_numpy(dtype=float)
    # restarted; gone before the window's last day; or gone within it (a short last day after whole ones)
    ended = by_restart | (last_t < -1e-9) | ((_last(seg, samples) < FULL_DAY * per_day) & (_last(seg, t) > first_t))
    # the end: half way through the restart day, or the last sample of a pod that ran from its last day's start
    last_t = np.where(by_restart, last_t - 0.5, np.where(ended, last_t - 1 + _last(seg, samples) / per_day, last_t))
    keep = whole & ~reset
    pts = pd.DataFrame({"seg": seg[keep], "cid": cid[keep], "age": t[keep] - started[seg[keep]],
                        "y": d["memory_max_bytes"].to_numpy(dtype=float)[keep]})
    pts.attrs["containers"] = containers
    pts.attrs["segments"] = pd.DataFrame({"cid": _first(seg, cid), "seen_start": seen_start, "ended": ended,
                                          "length": last_t - started, "age_now": np.where(ended, np.nan, 0.0 - started)})
    return pts


def fit(daily: pd.DataFrame, step_seconds: float, window_end: pd.Timestamp) -> pd.DataFrame:
    """Per container (CONTAINER_KEY + COLUMNS): the slope (bytes per day of pod age), Mann-Kendall's z, the
    whole days fitted, the expected pod life (days, inf when no segment ended in the window), the highest
    fitted level of a pod running at the window end and its age, the base (fitted level at age 0; NaN when
    no start was seen), and ``growing`` before the materiality check (see :func:`project`)."""
    pts = segments(daily, step_seconds, window_end)
    containers, segs = pts.attrs["containers"], pts.attrs["segments"]
    n = len(containers)
    out = containers.copy()
    if pts.empty:
        return out.assign(**{c: np.nan for c in COLUMNS[:-1]}, growing=False).assign(growth_days=0.0)
    pos = pts.groupby("seg").cumcount().to_numpy()
    width = int(pos.max()) + 1
    nseg = len(segs)
    Y, X = np.full((nseg, width), np.nan), np.full((nseg, width), np.nan)
    Y[pts["seg"], pos], X[pts["seg"], pos] = pts["y"], pts["age"]
    seg_cid = segs["cid"].to_numpy()
    npts = (~np.isnan(Y)).sum(axis=1)
    var = npts * (npts - 1) * (2 * npts + 5) / 18.0
    signs, pair_cid, slopes = _pair_slopes(Y, X, seg_cid)
    s_sum = np.bincount(seg_cid, weights=signs, minlength=n)
    v_sum = np.bincount(seg_cid, weights=var, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(v_sum > 0, (s_sum - np.sign(s_sum)) / np.sqrt(v_sum), np.nan)
    slope = _grouped_median(pair_cid, slopes, n)
    del pair_cid, slopes
    # each segment's intercept under its container's slope: the median of y - slope x
    with warnings.catch_warnings():  # a segment without whole days has no intercept (NaN)
        warnings.simplefilter("ignore", RuntimeWarning)
        inter = np.nanmedian(Y - slope[seg_cid][:, None] * X, axis=1)
    life = _grouped_median(seg_cid[segs["ended"] & segs["seen_start"]], segs["length"].to_numpy()[segs["ended"] & segs["seen_start"]], n)
    running = ~segs["ended"].to_numpy() & ~np.isnan(inter)
    level_now = np.where(running, inter + slope[seg_cid] * segs["age_now"].to_numpy(), np.nan)
    top = _argmax_by(seg_cid, level_now, n)
    out["growth_bytes_per_day"] = slope
    out["growth_z"] = z
    out["growth_days"] = np.bincount(seg_cid, weights=npts, minlength=n)
    out["growth_life_days"] = np.where(np.isnan(life), np.inf, life)
    out["growth_level_bytes"] = np.where(top >= 0, level_now[np.maximum(top, 0)], np.nan)
    out["growth_age_days"] = np.where(top >= 0, segs["age_now"].to_numpy()[np.maximum(top, 0)], np.nan)
    out["growth_base_bytes"] = _grouped_max(seg_cid[segs["seen_start"]], inter[segs["seen_start"].to_numpy()], n)
    long_enough = np.bincount(seg_cid, weights=npts >= MIN_DAYS, minlength=n) > 0
    out["growing"] = long_enough & (slope > 0) & (np.nan_to_num(z) >= Z_MIN)
    return out


def _pair_slopes(Y: np.ndarray, X: np.ndarray, seg_cid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of a segment's points (Y: levels, X: ages; segments x points, NaN padded): per segment the sum
    of the pairs' signs (Mann-Kendall's S), and per pair with both points its container and its slope (per unit of
    X). Formed one gap k between the points at a time (columns i and i + k of every segment): slices, not a
    gather of every pair; the order of the pairs differs from segment-major, which a median and a sum of signs
    (whole numbers, exact in float64) do not see."""
    signs, cids, slopes = np.zeros(len(Y)), [], []
    for k in range(1, Y.shape[1]):
        dy = Y[:, k:] - Y[:, :-k]
        with np.errstate(invalid="ignore", divide="ignore"):
            slope = dy / (X[:, k:] - X[:, :-k])
        pairs = ~np.isnan(slope)
        signs += np.where(pairs, np.sign(dy), 0.0).sum(axis=1)
        cids.append(seg_cid[np.nonzero(pairs)[0]])
        slopes.append(slope[pairs])
    if not slopes:
        return signs, np.zeros(0, dtype=seg_cid.dtype), np.zeros(0)
    return signs, np.concatenate(cids), np.concatenate(slopes)


def project(g: pd.DataFrame | dict, horizon_days, peak) -> np.ndarray:
    """The peak working set over the next ``horizon_days`` (bytes, per row of ``g``, a :func:`fit` frame or
    its columns), never below ``peak`` (the window's max): running pods climb for min(H, L - age) days, a
    pod replaced within H climbs from the base for min(L, H) (module docstring). NaN where nothing grows."""
    slope, life = np.asarray(g["growth_bytes_per_day"], dtype=float), np.asarray(g["growth_life_days"], dtype=float)
    h = np.asarray(horizon_days, dtype=float)
    left = np.clip(np.nan_to_num(life - np.asarray(g["growth_age_days"], dtype=float), nan=np.inf), 0.0, h)
    running = np.asarray(g["growth_level_bytes"], dtype=float) + slope * left
    renewed = np.where(np.isfinite(life), np.asarray(g["growth_base_bytes"], dtype=float) + slope * np.minimum(life, h), np.nan)
    out = np.fmax(np.fmax(running, renewed), np.asarray(peak, dtype=float))
    return np.where(np.asarray(g["growing"], dtype=bool), out, np.nan)


def material(g: pd.DataFrame | dict, horizon_days) -> np.ndarray:
    """Growth worth acting on: the climb over one life (at most the horizon) is MATERIAL of the level or more."""
    span = np.minimum(np.asarray(g["growth_life_days"], dtype=float), np.asarray(horizon_days, dtype=float))
    level = np.fmax(np.asarray(g["growth_level_bytes"], dtype=float), np.asarray(g["growth_base_bytes"], dtype=float))
    with np.errstate(invalid="ignore"):
        return np.asarray(g["growing"], dtype=bool) & (np.asarray(g["growth_bytes_per_day"], dtype=float) * span >= MATERIAL * level)


# --- helpers --------------------------------------------------------------------------------------------

def _sorted_ids(d: pd.DataFrame, keys: list[str]) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """``d`` sorted by ``keys``, pod and ``_t`` (stable, as sort_values would), with per row its container id and
    pod id (0, 1, ... in that order). The text keys are sorted once each as integer codes (factorize, sorted):
    a sort of the rows on six text columns takes a second at 20,000 containers."""
    codes = [pd.factorize(d[k], sort=True, use_na_sentinel=False)[0] for k in keys + ["pod"]]
    order = np.lexsort([d["_t"].to_numpy()] + codes[::-1])
    codes = [c[order] for c in codes]
    changed = np.zeros(len(order), dtype=bool)
    changed[:1] = True
    for c in codes[:-1]:
        changed[1:] |= c[1:] != c[:-1]
    new_pod = changed.copy()
    new_pod[1:] |= codes[-1][1:] != codes[-1][:-1]
    return d.iloc[order], np.cumsum(changed) - 1, np.cumsum(new_pod) - 1


def _first(group: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per group id (0..max, rows sorted by group) the value of its first row."""
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]]) if len(group) else np.zeros(0, dtype=np.int64)
    return np.asarray(values)[starts]


def _last(group: np.ndarray, values: np.ndarray) -> np.ndarray:
    ends = np.flatnonzero(np.r_[group[1:] != group[:-1], True]) if len(group) else np.zeros(0, dtype=np.int64)
    return np.asarray(values)[ends]


def _grouped_median(group: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Per group 0..n-1 the median of its values (NaN for a group without any)."""
    out = np.full(n, np.nan)
    if len(values):
        med = pd.Series(values).groupby(group).median()
        out[med.index.to_numpy()] = med.to_numpy()
    return out


def _grouped_max(group: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    out = np.full(n, -np.inf)
    ok = ~np.isnan(values)
    np.maximum.at(out, group[ok], values[ok])
    return np.where(np.isinf(out), np.nan, out)


def _argmax_by(group: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Per group the index (into ``values``) of its largest non-NaN value, -1 when none."""
    out = np.full(n, -1, dtype=np.int64)
    ok = np.flatnonzero(~np.isnan(values))
    if len(ok):
        order = ok[np.lexsort((values[ok], group[ok]))]
        last = np.r_[group[order][1:] != group[order][:-1], True]
        out[group[order][last]] = order[last]
    return out
