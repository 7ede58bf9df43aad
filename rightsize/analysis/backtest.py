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

Everything comes from the snapshot's per-pod histograms and daily rows (sketch.py): no query.
Limits of the replay, said in the report: the test days were themselves collected under today's
limits, so a throttled or OOM-killed container's test usage is censored the same way; the training
part's restarts and CFS throttling are the window's (they have no daily breakdown).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..sketch import bucket_value, usage_statistics
from ..usage_stats import CONTAINER_KEY, DAY_SECONDS

TEST_DAYS = 7
OVER_REQUEST_SHARE = 0.05  # a container above its request more often than this is counted in the rollups
_TODAY = "today"
KEYS = list(CONTAINER_KEY)  # pandas reads a tuple as one key


def can_backtest(snapshot, test_days: int = TEST_DAYS, min_train_days: float = 3.0) -> str:
    """'' when the snapshot holds enough to backtest, else why not."""
    if "usage_histograms" in (snapshot.meta.get("tables_not_loaded") or []):
        return ("skipped for a fleet report, which does not load the per-pod tables (usage_histograms, usage_daily); "
                "run `rightsize backtest` on a cluster's snapshot")
    if snapshot.tables.get("usage_histograms", pd.DataFrame()).empty:
        return "the snapshot has no per-pod histograms (collected before they existed, or no usage)"
    hours = snapshot.window_hours() or 0.0
    if hours < (test_days + min_train_days) * 24:
        return f"the window ({hours / 24:.1f} d) is shorter than {test_days} d to replay plus {min_train_days:g} d to learn from"
    return ""


def split(snapshot, test_days: int = TEST_DAYS):
    """(training snapshot, test histograms, test daily rows): the training snapshot's usage is recomputed
    from the days before the last ``test_days`` (its window ends there); the test rows are the rest."""
    from ..snapshot import Snapshot

    end = pd.Timestamp(snapshot.meta["window_end"])
    cut = end - pd.Timedelta(seconds=test_days * DAY_SECONDS)
    hist, daily = snapshot.tables["usage_histograms"], snapshot.tables["usage_daily"]
    in_test_h, in_test_d = hist["day"] >= cut, daily["day"] >= cut
    train_h, train_d = hist[~in_test_h].reset_index(drop=True), daily[~in_test_d].reset_index(drop=True)
    usage = _training_usage(snapshot, train_h, train_d)
    tables = {**snapshot.tables, "usage": usage, "usage_histograms": train_h, "usage_daily": train_d}
    meta = {**snapshot.meta, "window_end": cut.isoformat()}
    return Snapshot(tables=tables, meta=meta), hist[in_test_h].reset_index(drop=True), daily[in_test_d].reset_index(drop=True)


def _training_usage(snapshot, hist: pd.DataFrame, daily: pd.DataFrame) -> pd.DataFrame:
    """The usage table of the training days: statistics recomputed, OOM kills of those days; restarts and
    CFS throttling are the window's (no daily breakdown)."""
    step = float(snapshot.meta.get("step_seconds") or 300)
    usage = usage_statistics(hist, daily, step)
    window = snapshot.tables["usage"].set_index(KEYS)
    idx = pd.MultiIndex.from_frame(usage[KEYS])
    for col in ("restarts", "cpu_throttled_ratio", "cpu_throttled_seconds"):
        usage[col] = idx.map(window[col]).to_numpy(dtype=float, na_value=np.nan) if col in window else np.nan
    kills = daily.groupby(KEYS, observed=True)["oom_kills"].sum(min_count=1)
    usage["oom_kills"] = idx.map(kills).to_numpy(dtype=float, na_value=np.nan)
    return usage


# --- the replay ----------------------------------------------------------------------------------------

def replay(settings: pd.DataFrame, hist: pd.DataFrame, daily: pd.DataFrame) -> pd.DataFrame:
    """Per container of ``settings`` (KEYS + cpu_request_cores, cpu_limit_cores,
    memory_request_bytes, memory_limit_bytes; NaN = unset) the test days' figures (module docstring)."""
    out = settings.copy()
    for res, unit in (("cpu", "cores"), ("memory", "bytes")):
        req, lim = settings[f"{res}_request_{unit}"], settings[f"{res}_limit_{unit}"]
        over, n = _share_above(settings, hist, res, req, strict=True)
        out[f"{res}_share_over_request"] = np.where(req.notna(), over, np.nan)
        at, _ = _share_above(settings, hist, res, lim, strict=False)
        out[f"{res}_share_at_limit"] = np.where(lim.notna(), at, 0.0)
        mean = _mean(settings, daily, res, unit)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"{res}_slack"] = np.where(req > 0, 1.0 - mean / req.to_numpy(dtype=float), np.nan)
        out[f"{res}_mean_{unit}"] = mean
        out[f"{res}_pod_steps"] = n
    peak = _lookup(settings, daily.groupby(KEYS, observed=True)["memory_max_bytes"].max())
    out["memory_peak_bytes"] = peak
    limit = settings["memory_limit_bytes"].to_numpy(dtype=float)
    out["predicted_oom"] = ~np.isnan(limit) & (np.nan_to_num(peak, nan=-1.0) >= limit)
    # OOM-killed in the test days under today's limit: their peak there is a lower bound, so the replay
    # cannot tell whether a higher limit would have held
    kills = _lookup(settings, daily.groupby(KEYS, observed=True)["oom_kills"].sum(min_count=1))
    out["memory_censored"] = np.nan_to_num(kills) > 0
    return out


def _lookup(settings: pd.DataFrame, series: pd.Series) -> np.ndarray:
    if settings.empty:
        return np.zeros(0)
    return pd.MultiIndex.from_frame(settings[KEYS].astype(str)).map(series).to_numpy(dtype=float, na_value=np.nan)


def _share_above(settings: pd.DataFrame, hist: pd.DataFrame, resource: str, threshold: pd.Series, strict: bool):
    """(share of pooled pod-steps whose bucket lies above ``threshold``, pod-steps) per settings row;
    read to the sketch's resolution (a bucket counts when its representative value is above)."""
    cells = hist[(hist["resource"] == resource) & (hist["basis"] == "pod")]
    key = settings[KEYS].astype(str).assign(_t=threshold.to_numpy(dtype=float), _row=np.arange(len(settings)))
    cells = cells[KEYS + ["bucket", "count"]].astype({k: str for k in KEYS}).merge(key, on=KEYS)
    value = bucket_value(cells["bucket"].to_numpy(), resource)
    t = cells["_t"].to_numpy()
    above = (value > t) if strict else (value >= t)
    count = cells["count"].to_numpy(dtype=float)
    rows = cells["_row"].to_numpy()
    total = np.bincount(rows, weights=count, minlength=len(settings))
    hit = np.bincount(rows, weights=count * above, minlength=len(settings))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, hit / total, np.nan), total


def _mean(settings: pd.DataFrame, daily: pd.DataFrame, resource: str, unit: str) -> np.ndarray:
    """Mean usage over every pod-step of the test days (cores / bytes), exact from the daily rows."""
    d = daily.assign(_sum=daily[f"{resource}_mean_{unit}"] * daily[f"{resource}_samples"])
    g = d.groupby(KEYS, observed=True)
    return _lookup(settings, g["_sum"].sum() / g[f"{resource}_samples"].sum().replace(0, np.nan))


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


def compare(recommendations: dict[str, pd.DataFrame], hist: pd.DataFrame, daily: pd.DataFrame) -> pd.DataFrame:
    """One replay per policy label (recommendations made from the training days) plus "today", stacked
    with a ``policy`` column; only containers with usage in the test days."""
    first = next(iter(recommendations.values()))
    runs = {_TODAY: today_settings(first), **{label: settings_of(r) for label, r in recommendations.items()}}
    frames = []
    for label, settings in runs.items():
        frame = replay(settings, hist, daily)
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
