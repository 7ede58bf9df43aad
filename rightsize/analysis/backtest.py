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
- a JVM's heap (``heap_bytes``): ``predicted_heap_oom`` when the test days' live set outgrows it (a Java
  OutOfMemoryError, not a container OOM kill); where the recommendation changes the heap, the container's
  demand is that heap plus the test days' non-heap peak (heap-aware, ``memory_heap_aware``).

Everything comes from the snapshot's per-pod histograms and daily rows (statistics.py): no query.
Limits of the replay, said in the report: the test days were themselves collected under today's
limits, so a throttled or OOM-killed container's test usage is censored the same way; the training
part's restarts and CFS throttling are the window's (they have no daily breakdown).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .statistics import CONTAINER_KEY, DAY_SECONDS, bucket_value, usage_statistics

TEST_DAYS = 7
OVER_REQUEST_SHARE = 0.05  # a container above its request more often than this is counted in the rollups
_TODAY = "today"


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
    from the days before the last ``test_days`` (its window ends there), and its runtimes' hours are those
    days' (runtime_test gives the others); the test rows are the rest."""
    from ..snapshot import Snapshot

    cut = _cut(snapshot, test_days)
    hist, daily = snapshot.tables["usage_histograms"], snapshot.tables["usage_daily"]
    in_test_h, in_test_d = hist["day"] >= cut, daily["day"] >= cut
    train_h, train_d = hist[~in_test_h].reset_index(drop=True), daily[~in_test_d].reset_index(drop=True)
    usage = _training_usage(snapshot, train_h, train_d)
    hours = snapshot.tables["runtime_hourly"]
    tables = {**snapshot.tables, "usage": usage, "usage_histograms": train_h, "usage_daily": train_d,
              "runtime_hourly": hours[hours["hour"] < cut].reset_index(drop=True)}
    meta = {**snapshot.meta, "window_end": cut.isoformat()}
    return Snapshot(tables=tables, meta=meta), hist[in_test_h].reset_index(drop=True), daily[in_test_d].reset_index(drop=True)


def _cut(snapshot, test_days: int) -> pd.Timestamp:
    return pd.Timestamp(snapshot.meta["window_end"]) - pd.Timedelta(seconds=test_days * DAY_SECONDS)


def runtime_test(snapshot, test_days: int = TEST_DAYS) -> pd.DataFrame:
    """The runtimes' hours (runtime_hourly) of the last ``test_days``: a JVM's live set and non-heap there."""
    hours = snapshot.tables["runtime_hourly"]
    return hours[hours["hour"] >= _cut(snapshot, test_days)].reset_index(drop=True)


def _training_usage(snapshot, hist: pd.DataFrame, daily: pd.DataFrame) -> pd.DataFrame:
    """The usage table of the training days: statistics recomputed, OOM kills of those days; restarts and
    CFS throttling are the window's (no daily breakdown)."""
    step = float(snapshot.meta.get("step_seconds") or 300)
    usage = usage_statistics(hist, daily, step)
    window = snapshot.tables["usage"].set_index(CONTAINER_KEY)
    idx = pd.MultiIndex.from_frame(usage[CONTAINER_KEY])
    for col in ("restarts", "cpu_throttled_ratio", "cpu_throttled_seconds"):
        usage[col] = idx.map(window[col]).to_numpy(dtype=float, na_value=np.nan) if col in window else np.nan
    kills = daily.groupby(CONTAINER_KEY, observed=True)["oom_kills"].sum(min_count=1)
    usage["oom_kills"] = idx.map(kills).to_numpy(dtype=float, na_value=np.nan)
    return usage


# --- the replay ----------------------------------------------------------------------------------------

def replay(settings: pd.DataFrame, hist: pd.DataFrame, daily: pd.DataFrame, runtime: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per container of ``settings`` (CONTAINER_KEY + cpu_request_cores, cpu_limit_cores,
    memory_request_bytes, memory_limit_bytes, optionally heap_bytes and heap_changed; NaN = unset) the test
    days' figures (module docstring); with the test days' ``runtime`` hours, a JVM's heap is replayed too
    (:func:`heap_aware`)."""
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
    peak = _lookup(settings, daily.groupby(CONTAINER_KEY, observed=True)["memory_max_bytes"].max())
    out["memory_peak_bytes"] = peak
    limit = settings["memory_limit_bytes"].to_numpy(dtype=float)
    out["predicted_oom"] = ~np.isnan(limit) & (np.nan_to_num(peak, nan=-1.0) >= limit)
    # OOM-killed in the test days under today's limit: their peak there is a lower bound, so the replay
    # cannot tell whether a higher limit would have held
    kills = _lookup(settings, daily.groupby(CONTAINER_KEY, observed=True)["oom_kills"].sum(min_count=1))
    out["memory_censored"] = np.nan_to_num(kills) > 0
    return heap_aware(out, settings, runtime)


def heap_aware(out: pd.DataFrame, settings: pd.DataFrame, runtime: pd.DataFrame | None) -> pd.DataFrame:
    """A JVM's replay with the heap it would run with (``heap_bytes``). A Java OutOfMemoryError is predicted when
    the test days' live set (live data, else the heap's troughs) outgrows the heap: the heap fills, not the
    container. Where the heap changes (``heap_changed``) the working set was measured under another heap, so
    the container's demand is the heap at its maximum plus the test days' non-heap peak, a container OOM kill
    is predicted when that reaches the limit, and the working-set slack and shares are unknown (NaN)."""
    heap = settings["heap_bytes"].to_numpy(dtype=float) if "heap_bytes" in settings else np.full(len(settings), np.nan)
    changed = settings["heap_changed"].to_numpy(dtype=bool) if "heap_changed" in settings else np.zeros(len(settings), bool)
    out["heap_bytes"] = heap
    out["predicted_heap_oom"] = False
    out["memory_heap_aware"] = False
    if runtime is None or runtime.empty or np.isnan(heap).all():
        return out
    g = runtime.groupby(CONTAINER_KEY, observed=True)
    live = _lookup(settings, g["live_set_max_bytes"].max())
    live = np.where(np.isnan(live), _lookup(settings, g["heap_used_min_bytes"].max()), live)
    non_heap = _lookup(settings, g["non_heap_max_bytes"].max())
    non_heap = np.where(np.isnan(non_heap), _lookup(settings, g["non_heap_pools_max_bytes"].max()), non_heap)
    out["predicted_heap_oom"] = ~np.isnan(heap) & (np.nan_to_num(live, nan=-1.0) > heap)
    aware = changed & ~np.isnan(heap) & ~np.isnan(non_heap)
    demand = heap + np.fmax(non_heap, 0.0)
    limit = settings["memory_limit_bytes"].to_numpy(dtype=float)
    out["memory_peak_bytes"] = np.where(aware, demand, out["memory_peak_bytes"])
    out["predicted_oom"] = np.where(aware, ~np.isnan(limit) & (demand >= limit), out["predicted_oom"])
    for col in ("memory_share_over_request", "memory_share_at_limit", "memory_slack", "memory_mean_bytes"):
        out[col] = np.where(aware, np.nan, out[col])
    out["memory_heap_aware"] = aware
    return out


def _lookup(settings: pd.DataFrame, series: pd.Series) -> np.ndarray:
    if settings.empty:
        return np.zeros(0)
    return pd.MultiIndex.from_frame(settings[CONTAINER_KEY].astype(str)).map(series).to_numpy(dtype=float, na_value=np.nan)


def _share_above(settings: pd.DataFrame, hist: pd.DataFrame, resource: str, threshold: pd.Series, strict: bool):
    """(share of pooled pod-steps whose bucket lies above ``threshold``, pod-steps) per settings row;
    read to the sketch's resolution (a bucket counts when its representative value is above)."""
    cells = hist[(hist["resource"] == resource) & (hist["basis"] == "pod")]
    key = settings[CONTAINER_KEY].astype(str).assign(_t=threshold.to_numpy(dtype=float), _row=np.arange(len(settings)))
    cells = cells[CONTAINER_KEY + ["bucket", "count"]].astype({k: str for k in CONTAINER_KEY}).merge(key, on=CONTAINER_KEY)
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
    g = d.groupby(CONTAINER_KEY, observed=True)
    return _lookup(settings, g["_sum"].sum() / g[f"{resource}_samples"].sum().replace(0, np.nan))


# --- policies side by side ------------------------------------------------------------------------------

def settings_of(recommendations: pd.DataFrame) -> pd.DataFrame:
    """What a recommendation would set: recommended values where it has them, today's elsewhere (no
    recommendation keeps what is there; a CPU limit left unset or removed is no limit)."""
    r = recommendations
    out = r[CONTAINER_KEY].copy()
    for res, unit in (("cpu", "cores"), ("memory", "bytes")):
        for kind in ("request", "limit"):
            cur, new = r[f"{res}_{kind}_{unit}_current"], r[f"{res}_{kind}_{unit}_recommended"]
            out[f"{res}_{kind}_{unit}"] = new.where(r["status"].isin(["change", "keep"]) & new.notna(), cur)
    gone = r["cpu_limit_action"].isin(["remove", "keep_unset"]) & r["status"].isin(["change", "keep"])
    out.loc[gone, "cpu_limit_cores"] = np.nan
    if "heap_bytes_current" in r:  # the heap a JVM runs with: the patched one (an -Xmx, or a share of the new limit)
        applied = r["status"].isin(["change", "keep"]) & r["runtime_setting_action"].isin(["patch", "follows_limit"])
        now = r["heap_bytes_current"]
        out["heap_bytes"] = r["heap_bytes_recommended"].where(applied & (r["runtime"] == "jvm"), now).where(r["runtime"] == "jvm")
        out["heap_changed"] = (out["heap_bytes"] - now).abs().fillna(0) >= 2**20
    return out


def today_settings(recommendations: pd.DataFrame) -> pd.DataFrame:
    """Today's requests and limits of the same containers."""
    out = recommendations[CONTAINER_KEY].copy()
    for res, unit in (("cpu", "cores"), ("memory", "bytes")):
        for kind in ("request", "limit"):
            out[f"{res}_{kind}_{unit}"] = recommendations[f"{res}_{kind}_{unit}_current"]
    if "heap_bytes_current" in recommendations:
        out["heap_bytes"] = recommendations["heap_bytes_current"].where(recommendations["runtime"] == "jvm")
        out["heap_changed"] = False
    return out


def compare(recommendations: dict[str, pd.DataFrame], hist: pd.DataFrame, daily: pd.DataFrame,
            runtime: pd.DataFrame | None = None) -> pd.DataFrame:
    """One replay per policy label (recommendations made from the training days) plus "today", stacked
    with a ``policy`` column; only containers with usage in the test days. ``runtime``: the test days'
    runtime hours (runtime_test), for the JVMs' heap."""
    first = next(iter(recommendations.values()))
    runs = {_TODAY: today_settings(first), **{label: settings_of(r) for label, r in recommendations.items()}}
    frames = []
    for label, settings in runs.items():
        frame = replay(settings, hist, daily, runtime)
        frames.append(frame.assign(policy=label)[["policy"] + list(frame.columns)])
    out = pd.concat(frames, ignore_index=True)
    return out[out["cpu_pod_steps"].fillna(0) + out["memory_pod_steps"].fillna(0) > 0].reset_index(drop=True)


def rollup(bt: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Per group and policy: containers, request-weighted slack (CPU, memory: sum over containers of
    (request - mean usage) x pod-steps / sum of request x pod-steps), predicted OOM kills and Java
    OutOfMemoryErrors, and containers above their CPU request more than OVER_REQUEST_SHARE of the time."""
    keys = ["policy"] + list(by)
    df = bt.assign(
        _cpu_req=bt["cpu_request_cores"] * bt["cpu_pod_steps"], _cpu_use=bt["cpu_mean_cores"] * bt["cpu_pod_steps"],
        _mem_req=bt["memory_request_bytes"] * bt["memory_pod_steps"], _mem_use=bt["memory_mean_bytes"] * bt["memory_pod_steps"],
        _over=bt["cpu_share_over_request"] > OVER_REQUEST_SHARE)
    known_cpu, known_mem = df["cpu_slack"].notna(), df["memory_slack"].notna()
    df["_cpu_req"], df["_cpu_use"] = df["_cpu_req"].where(known_cpu, 0.0), df["_cpu_use"].where(known_cpu, 0.0)
    df["_mem_req"], df["_mem_use"] = df["_mem_req"].where(known_mem, 0.0), df["_mem_use"].where(known_mem, 0.0)
    if "predicted_heap_oom" not in df:
        df["predicted_heap_oom"] = False
    g = df.groupby(keys, sort=False, observed=True)
    out = g.agg(containers=("cpu_slack", "size"), predicted_ooms=("predicted_oom", "sum"), over_request=("_over", "sum"),
                censored=("memory_censored", "sum"), predicted_heap_ooms=("predicted_heap_oom", "sum"),
                _cr=("_cpu_req", "sum"), _cu=("_cpu_use", "sum"), _mr=("_mem_req", "sum"), _mu=("_mem_use", "sum"))
    with np.errstate(divide="ignore", invalid="ignore"):
        out["cpu_slack"] = np.where(out["_cr"] > 0, 1 - out["_cu"] / out["_cr"], np.nan)
        out["memory_slack"] = np.where(out["_mr"] > 0, 1 - out["_mu"] / out["_mr"], np.nan)
    out = out.drop(columns=["_cr", "_cu", "_mr", "_mu"]).reset_index()
    return out.astype({"containers": "int64", "predicted_ooms": "int64", "over_request": "int64", "censored": "int64",
                       "predicted_heap_ooms": "int64"})


def by_namespace(bt: pd.DataFrame) -> pd.DataFrame:
    """:func:`rollup` per cluster and namespace, "today" first within each namespace (as every view shows it)."""
    by = rollup(bt, ["cluster", "namespace"])
    return by.assign(_today=by["policy"] != "today").sort_values(["cluster", "namespace", "_today"], kind="stable").drop(columns="_today")


def summary(bt: pd.DataFrame, test_days: int) -> dict:
    """summary.json's "backtest": per policy the fleet figures of :func:`rollup`."""
    fleet = rollup(bt, [])
    policies = {row["policy"]: {"containers": int(row["containers"]), "cpu_slack": _float(row["cpu_slack"]),
                                "memory_slack": _float(row["memory_slack"]), "predicted_ooms": int(row["predicted_ooms"]),
                                "predicted_heap_ooms": int(row["predicted_heap_ooms"]),
                                "oom_killed_in_test_days": int(row["censored"]),
                                "containers_over_request": int(row["over_request"])}
                for row in fleet.to_dict("records")}
    return {"test_days": test_days, "over_request_share": OVER_REQUEST_SHARE, "policies": policies}


def _float(v) -> float | None:
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else float(v)
