"""The backtest: recommend from the earlier part of the window, replay the last days against it.

Had you applied the recommendation computed without the last ``test_days`` days, what would those
days have looked like? Per container and per policy (and for today's requests, the reference):

- ``cpu_share_over_request``: share of the test days' pod-steps (every replica's 5-minute CPU) above
  the CPU request: what the scheduler did not reserve;
- ``cpu_share_at_limit``: share of pod-steps at or above the CPU limit (throttled; 0 without a limit);
- ``memory_peak_bytes`` against the memory limit: ``predicted_oom`` when the largest raw working-set
  sample of the test days reaches it; ``memory_censored`` when the container was OOM-killed in the
  test days (its peak there is a lower bound: whether a higher limit holds cannot be replayed);
- ``cpu_slack`` / ``memory_slack``: (request - usage) / request averaged over the pod-steps, the
  relative slack Google's Autopilot paper reports (23 % for Autopiloted jobs, 46 % for manual limits).

Everything comes from the snapshot's per-pod histograms and daily rows (statistics.py): no query.
Limits of the replay, said in the report: the test days were themselves collected under today's
limits, so a throttled or OOM-killed container's test usage is censored the same way; the training
part's restarts and CFS throttling are the window's (they have no daily breakdown).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..sketch import MAX_BUCKET, bucket_value, daily_statistics, factorize, usage_statistics
from ..usage_stats import CONTAINER_KEY, DAY_SECONDS, RESOURCES
from .cells import COLUMNS, chunks, sum_over_days

KEYS = list(CONTAINER_KEY)  # pandas reads a tuple as one key
TEST_DAYS = 7
OVER_REQUEST_SHARE = 0.05  # a container above its request more often than this is counted in the rollups
_TODAY = "today"
_NB = MAX_BUCKET + 1


def can_backtest(snapshot, test_days: int = TEST_DAYS, min_train_days: float = 3.0) -> str:
    """'' when the snapshot holds enough to backtest, else why not."""
    if "usage_histograms" in (snapshot.meta.get("tables_not_loaded") or []):
        return ("skipped for a fleet report, which does not load the per-pod tables (usage_histograms, usage_daily); "
                "run `rightsize backtest` on a cluster's snapshot")
    if not snapshot.rows("usage_histograms"):
        return "the snapshot has no per-pod histograms (collected before they existed, or no usage)"
    hours = snapshot.window_hours() or 0.0
    if hours < (test_days + min_train_days) * 24:
        return f"the window ({hours / 24:.1f} d) is shorter than {test_days} d to replay plus {min_train_days:g} d to learn from"
    return ""


def split(snapshot, test_days: int = TEST_DAYS, keep_days: bool = False, names: bool = True):
    """(training snapshot, TestDays): the training snapshot's usage is recomputed from the days before the
    last ``test_days`` (its window ends there); the test days are reduced for the replay.

    The histogram table is streamed (Snapshot.batches: 100 M rows at 20,000 containers are never held)
    and summed over days (cells.sum_over_days): per pod for the training part (per pod and day with
    ``keep_days``, which a decayed statistic needs), per container for the test part. The training
    snapshot's histograms are those sums (without a day column unless ``keep_days``, and without the
    container and pod names unless ``names``: only a policy asking for a statistic the usage table does
    not carry reads them again)."""
    from ..snapshot import Snapshot

    end = pd.Timestamp(snapshot.meta["window_end"])
    cut = end - pd.Timedelta(seconds=test_days * DAY_SECONDS)
    sums = sum_over_days(snapshot.batches("usage_histograms", COLUMNS), cut, keep_days, names)
    train_h = sums.train
    daily = snapshot.tables["usage_daily"]
    in_test_d = daily["day"] >= cut
    train_d, test_d = daily[~in_test_d].reset_index(drop=True), daily[in_test_d].reset_index(drop=True)
    usage = _training_usage(snapshot, train_h, train_d, sums.ids)
    tables = {**snapshot.tables, "usage": usage, "usage_histograms": train_h, "usage_daily": train_d}
    meta = {**snapshot.meta, "window_end": cut.isoformat()}
    return Snapshot(tables=tables, meta=meta), TestDays.of(sums.test, test_d)


def _training_usage(snapshot, hist: pd.DataFrame, daily: pd.DataFrame, ids=None) -> pd.DataFrame:
    """The usage table of the training days: statistics recomputed, OOM kills of those days; restarts and
    CFS throttling are the window's (no daily breakdown). With ``ids`` (cells.sum_over_days) the
    histogram statistics are computed a range of containers at a time (cells.chunks)."""
    step = float(snapshot.meta.get("step_seconds") or 300)
    if ids is None:
        usage = usage_statistics(hist, daily, step)
    else:
        parts = [usage_statistics(h, daily.iloc[0:0], step, ids=i) for h, i in chunks(hist, ids)]
        usage = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        by_container = daily_statistics(daily, KEYS)
        idx = pd.MultiIndex.from_frame(usage[KEYS])
        for col in by_container.columns:
            usage[col] = idx.map(by_container[col]).to_numpy(dtype=float, na_value=np.nan)
    window = snapshot.tables["usage"].set_index(KEYS)
    idx = pd.MultiIndex.from_frame(usage[KEYS])
    for col in ("restarts", "cpu_throttled_ratio", "cpu_throttled_seconds"):
        usage[col] = idx.map(window[col]).to_numpy(dtype=float, na_value=np.nan) if col in window else np.nan
    kills = daily.groupby(KEYS, observed=True)["oom_kills"].sum(min_count=1)
    usage["oom_kills"] = idx.map(kills).to_numpy(dtype=float, na_value=np.nan)
    return usage


# --- the replay ----------------------------------------------------------------------------------------

@dataclass
class TestDays:
    """The test days reduced once for every policy replayed against them: per container (an integer id,
    ``keys`` the id -> KEYS table), each resource's pooled pod-step histogram as cumulative
    counts over its buckets, and the daily figures (mean usage, pod-steps, memory peak, OOM kills).
    A replay then costs one lookup per container and policy, never a merge of the histogram rows."""

    keys: pd.DataFrame
    cells: dict  # resource -> (code = id x buckets + bucket, sorted; counts of the cells before each one, per id its total)
    daily: pd.DataFrame  # indexed by id

    @classmethod
    def of(cls, hist: pd.DataFrame, daily: pd.DataFrame) -> "TestDays":
        cid_h, keys = factorize(hist, KEYS)
        cid_d, dkeys = factorize(daily, KEYS)
        # the daily rows' containers under the histograms' ids (a container with daily rows only gets a new one)
        known = dkeys.merge(keys.assign(_id=np.arange(len(keys))), on=KEYS, how="left")["_id"].to_numpy(dtype=float, copy=True)
        new = np.isnan(known)
        known[new] = len(keys) + np.arange(new.sum())
        keys = pd.concat([keys, dkeys[new]], ignore_index=True)
        cid_d = known.astype(np.int64)[cid_d]
        cells = {}
        for res in RESOURCES:
            mine = (hist["resource"] == res).to_numpy()
            if "basis" in hist:  # the raw rows (the reduced test days hold basis 'pod' only)
                mine = mine & (hist["basis"] == "pod").to_numpy()
            code = cid_h[mine] * _NB + hist["bucket"].to_numpy()[mine].astype(np.int64)
            uniq, inverse = np.unique(code, return_inverse=True)
            counts = np.bincount(inverse, weights=hist["count"].to_numpy(dtype=float)[mine])
            cells[res] = (uniq, np.concatenate([[0.0], np.cumsum(counts)]), np.bincount(uniq // _NB, weights=counts,
                                                                                           minlength=len(keys)))
        n = len(keys)
        per = pd.DataFrame(index=np.arange(n))
        for res, unit in (("cpu", "cores"), ("memory", "bytes")):
            samples = np.bincount(cid_d, weights=daily[f"{res}_samples"].to_numpy(dtype=float), minlength=n)
            used = group_sum(cid_d, (daily[f"{res}_mean_{unit}"] * daily[f"{res}_samples"]).to_numpy(dtype=float), n)
            with np.errstate(divide="ignore", invalid="ignore"):
                per[f"{res}_mean_{unit}"] = np.where(samples > 0, used / samples, np.nan)
        peak = np.full(n, -np.inf)
        np.fmax.at(peak, cid_d, daily["memory_max_bytes"].to_numpy(dtype=float))
        per["memory_peak_bytes"] = np.where(np.isinf(peak), np.nan, peak)
        kills = daily["oom_kills"].to_numpy(dtype=float)
        counted = np.bincount(cid_d, weights=~np.isnan(kills), minlength=n)
        per["oom_kills"] = np.where(counted > 0, np.bincount(cid_d, weights=np.nan_to_num(kills), minlength=n), np.nan)
        return cls(keys, cells, per)

    def ids(self, settings: pd.DataFrame) -> np.ndarray:
        """The id of each settings row's container (-1 when the test days have none of it)."""
        if settings.empty:
            return np.zeros(0, dtype=np.int64)
        table = self.keys.assign(_id=np.arange(len(self.keys)))
        found = settings[KEYS].astype(str).merge(table, on=KEYS, how="left")["_id"]
        return found.fillna(-1).to_numpy(dtype=np.int64)

    def share_above(self, ids: np.ndarray, resource: str, threshold: np.ndarray, strict: bool):
        """(share of the pooled pod-steps whose bucket lies above ``threshold``, pod-steps) per row;
        read to the sketch's resolution (a bucket counts when its representative value is above; with
        ``strict`` False, at or above)."""
        code, before, total = self.cells[resource]
        known = ids >= 0
        n = np.where(known, total[np.maximum(ids, 0)] if len(total) else 0.0, 0.0)
        t = np.nan_to_num(np.asarray(threshold, dtype=float), nan=np.inf)
        first = np.searchsorted(_values(resource), t, side="right" if strict else "left")  # first bucket counted
        start = np.searchsorted(code, np.maximum(ids, 0) * _NB)
        cut = np.searchsorted(code, np.maximum(ids, 0) * _NB + first)
        hit = np.where(known, n - (before[cut] - before[start]), 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(n > 0, hit / n, np.nan), n


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


def _values(resource: str) -> np.ndarray:
    """The representative value of every bucket, ascending."""
    return bucket_value(np.arange(_NB), resource)


def replay(settings: pd.DataFrame, hist: pd.DataFrame | TestDays, daily: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per container of ``settings`` (KEYS + cpu_request_cores, cpu_limit_cores,
    memory_request_bytes, memory_limit_bytes; NaN = unset) the test days' figures (module docstring).
    ``hist`` and ``daily``: the test days' rows, or ``hist`` the TestDays already reduced from them."""
    test = hist if isinstance(hist, TestDays) else TestDays.of(hist, daily)
    ids = test.ids(settings)
    per = test.daily.reindex(ids)  # -1: a container without test days gets NaN everywhere
    out = settings.copy()
    for res, unit in (("cpu", "cores"), ("memory", "bytes")):
        req, lim = settings[f"{res}_request_{unit}"], settings[f"{res}_limit_{unit}"]
        over, n = test.share_above(ids, res, req.to_numpy(dtype=float), strict=True)
        out[f"{res}_share_over_request"] = np.where(req.notna(), over, np.nan)
        at, _ = test.share_above(ids, res, lim.to_numpy(dtype=float), strict=False)
        out[f"{res}_share_at_limit"] = np.where(lim.notna(), at, 0.0)
        mean = per[f"{res}_mean_{unit}"].to_numpy(dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"{res}_slack"] = np.where(req > 0, 1.0 - mean / req.to_numpy(dtype=float), np.nan)
        out[f"{res}_mean_{unit}"] = mean
        out[f"{res}_pod_steps"] = n
    peak = per["memory_peak_bytes"].to_numpy(dtype=float)
    out["memory_peak_bytes"] = peak
    limit = settings["memory_limit_bytes"].to_numpy(dtype=float)
    out["predicted_oom"] = ~np.isnan(limit) & (np.nan_to_num(peak, nan=-1.0) >= limit)
    # OOM-killed in the test days under today's limit: their peak there is a lower bound, so the replay
    # cannot tell whether a higher limit would have held
    out["memory_censored"] = np.nan_to_num(per["oom_kills"].to_numpy(dtype=float)) > 0
    return out


# --- policies side by side ------------------------------------------------------------------------------

def settings_of(recommendations: pd.DataFrame) -> pd.DataFrame:
    """What a recommendation would set: recommended values where it has them, today's elsewhere (no
    recommendation keeps what is there; a CPU limit left unset or removed is no limit)."""
    r = recommendations
    out = r[KEYS].copy()
    for res, unit in (("cpu", "cores"), ("memory", "bytes")):
        for kind in ("request", "limit"):
            cur, new = r[f"{res}_{kind}_{unit}_current"], r[f"{res}_{kind}_{unit}_recommended"]
            out[f"{res}_{kind}_{unit}"] = new.where(r["status"].isin(["change", "keep"]) & new.notna(), cur)
    gone = r["cpu_limit_action"].isin(["remove", "keep_unset"]) & r["status"].isin(["change", "keep"])
    out.loc[gone, "cpu_limit_cores"] = np.nan
    return out


def today_settings(recommendations: pd.DataFrame) -> pd.DataFrame:
    """Today's requests and limits of the same containers."""
    out = recommendations[KEYS].copy()
    for res, unit in (("cpu", "cores"), ("memory", "bytes")):
        for kind in ("request", "limit"):
            out[f"{res}_{kind}_{unit}"] = recommendations[f"{res}_{kind}_{unit}_current"]
    return out


def compare(recommendations: dict[str, pd.DataFrame], test: TestDays) -> pd.DataFrame:
    """One replay per policy label (recommendations made from the training days) plus "today", stacked
    with a ``policy`` column; only containers with usage in the test days (reduced once in ``test``: each
    policy's replay is a lookup)."""
    first = next(iter(recommendations.values()))
    runs = {_TODAY: today_settings(first), **{label: settings_of(r) for label, r in recommendations.items()}}
    frames = []
    for label, settings in runs.items():
        frame = replay(settings, test)
        frames.append(frame.assign(policy=label)[["policy"] + list(frame.columns)])
    out = pd.concat(frames, ignore_index=True)
    return out[out["cpu_pod_steps"].fillna(0) + out["memory_pod_steps"].fillna(0) > 0].reset_index(drop=True)


def rollup(bt: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Per group and policy: containers, request-weighted slack (CPU, memory: sum over containers of
    (request - mean usage) x pod-steps / sum of request x pod-steps), predicted OOMs, and containers
    above their CPU request more than OVER_REQUEST_SHARE of the time."""
    keys = ["policy"] + list(by)
    df = bt.assign(
        _cpu_req=bt["cpu_request_cores"] * bt["cpu_pod_steps"], _cpu_use=bt["cpu_mean_cores"] * bt["cpu_pod_steps"],
        _mem_req=bt["memory_request_bytes"] * bt["memory_pod_steps"], _mem_use=bt["memory_mean_bytes"] * bt["memory_pod_steps"],
        _over=bt["cpu_share_over_request"] > OVER_REQUEST_SHARE)
    known_cpu, known_mem = df["cpu_slack"].notna(), df["memory_slack"].notna()
    df["_cpu_req"], df["_cpu_use"] = df["_cpu_req"].where(known_cpu, 0.0), df["_cpu_use"].where(known_cpu, 0.0)
    df["_mem_req"], df["_mem_use"] = df["_mem_req"].where(known_mem, 0.0), df["_mem_use"].where(known_mem, 0.0)
    g = df.groupby(keys, sort=False, observed=True)
    out = g.agg(containers=("cpu_slack", "size"), predicted_ooms=("predicted_oom", "sum"), over_request=("_over", "sum"),
                censored=("memory_censored", "sum"),
                _cr=("_cpu_req", "sum"), _cu=("_cpu_use", "sum"), _mr=("_mem_req", "sum"), _mu=("_mem_use", "sum"))
    with np.errstate(divide="ignore", invalid="ignore"):
        out["cpu_slack"] = np.where(out["_cr"] > 0, 1 - out["_cu"] / out["_cr"], np.nan)
        out["memory_slack"] = np.where(out["_mr"] > 0, 1 - out["_mu"] / out["_mr"], np.nan)
    out = out.drop(columns=["_cr", "_cu", "_mr", "_mu"]).reset_index()
    return out.astype({"containers": "int64", "predicted_ooms": "int64", "over_request": "int64", "censored": "int64"})


def by_namespace(bt: pd.DataFrame) -> pd.DataFrame:
    """:func:`rollup` per cluster and namespace, "today" first within each namespace (as every view shows it)."""
    by = rollup(bt, ["cluster", "namespace"])
    return by.assign(_today=by["policy"] != "today").sort_values(["cluster", "namespace", "_today"], kind="stable").drop(columns="_today")


def summary(bt: pd.DataFrame, test_days: int) -> dict:
    """summary.json's "backtest": per policy the fleet figures of :func:`rollup`."""
    fleet = rollup(bt, [])
    policies = {row["policy"]: {"containers": int(row["containers"]), "cpu_slack": _float(row["cpu_slack"]),
                                "memory_slack": _float(row["memory_slack"]), "predicted_ooms": int(row["predicted_ooms"]),
                                "oom_killed_in_test_days": int(row["censored"]),
                                "containers_over_request": int(row["over_request"])}
                for row in fleet.to_dict("records")}
    return {"test_days": test_days, "over_request_share": OVER_REQUEST_SHARE, "policies": policies}


def _float(v) -> float | None:
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else float(v)
