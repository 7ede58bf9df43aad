"""Pod lifetimes: the hours each pod ran in the window, for placement's pod-hours.

Counting the steps at which a pod has a sample overstates a short pod: at a 5-minute step a 5-minute
CronJob pod has a sample in one or two steps, and the engine's lookback (5 minutes) keeps showing its
last sample for the steps after it ended, so it counted for up to twice its life. Here, per pod:

1. a finished pod with ``kube_pod_completion_time`` (kube-state-metrics' default) ran from
   ``kube_pod_start_time`` to its completion, clipped to the window (requests are held from the start,
   image pull included); without a start time, its samples' span ends at the completion;
2. any other pod, from its raw samples: the working set's raw sample count in the window
   (``count_over_time``, read with the daily maxima) times the scrape interval, which for a regularly
   scraped pod is its last sample minus its first plus one interval. The interval is the median spacing of
   raw samples of the container instances present at every step of a whole day;
3. without that interval (no pod present a whole day), the steps with a sample, as before.

A lifetime from samples is never more than the steps with a sample x step (the lookback only adds steps).
Units: hours; times in unix seconds. Pure functions over the collection's rows.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .usage import DAY_SECONDS, Grid, UsageAccumulator  # the day bins of the usage pulls

POD = ["namespace", "pod"]


def scrape_interval(day_steps: pd.DataFrame, raw: pd.DataFrame | None, grid: Grid) -> float:
    """Seconds between raw working-set samples: the median of 24 h / raw samples over the (container
    instance, day) pairs present at every step of a whole day. ``day_steps``: namespace, pod, container,
    day (bin index), steps (with a sample); ``raw``: namespace, pod, container, day, raw_samples. NaN when
    no instance was present a whole day."""
    per_day = DAY_SECONDS / grid.step
    whole = int(grid.n * grid.step // DAY_SECONDS)  # day bins that are whole days (the oldest may be partial)
    if raw is None or raw.empty or not whole:
        return float("nan")
    full = day_steps[(day_steps["steps"] >= per_day - 1e-9) & (day_steps["day"] < whole)]
    counts = full.merge(raw, on=POD + ["container", "day"], how="inner")["raw_samples"]
    counts = counts[counts > 0]
    return float(np.median(DAY_SECONDS / counts)) if len(counts) else float("nan")


def pod_hours(steps: pd.DataFrame, raw: pd.DataFrame | None, times: pd.DataFrame, interval: float, grid: Grid) -> pd.DataFrame:
    """namespace, pod, pod_hours, lifetime ('completion', 'samples' or 'steps': how it was timed).

    ``steps``: namespace, pod, step_hours (steps with a sample x step, the busiest-sampled container);
    ``raw``: namespace, pod, container, day, raw_samples; ``times``: namespace, pod, start_time,
    completion_time (unix seconds, NaN unknown); ``interval``: :func:`scrape_interval`."""
    out = steps[POD + ["step_hours"]].copy()
    if raw is not None and len(raw):
        per = raw.groupby(POD + ["container"], as_index=False)["raw_samples"].sum().groupby(POD)["raw_samples"].max()
        out = out.merge(per.rename("raw_samples").reset_index(), on=POD, how="left")
    else:
        out["raw_samples"] = np.nan
    sampled = np.minimum(out["raw_samples"].to_numpy(dtype=float) * interval / 3600.0, out["step_hours"].to_numpy(dtype=float))
    known = ~np.isnan(sampled)
    out = out.merge(times, on=POD, how="left") if len(times) else out.assign(start_time=np.nan, completion_time=np.nan)
    w0, w1 = grid.end - grid.n * grid.step, grid.end
    done = out["completion_time"].to_numpy(dtype=float)
    start = out["start_time"].to_numpy(dtype=float)
    finished = ~np.isnan(done) & (done > w0) & (np.isnan(start) | (start <= done))
    start = np.where(np.isnan(start), done - np.where(known, sampled, out["step_hours"]) * 3600.0, start)
    exact = (np.minimum(done, w1) - np.maximum(start, w0)) / 3600.0
    out["pod_hours"] = np.where(finished, exact, np.where(known, sampled, out["step_hours"]))
    out["lifetime"] = np.where(finished, "completion", np.where(known, "samples", "steps"))
    return out[POD + ["pod_hours", "lifetime"]]


def pod_lifetimes(acc: UsageAccumulator, raw: pd.DataFrame | None, per_pod: pd.DataFrame, metrics, grid: Grid):
    """(namespace, pod, pod_hours, lifetime per pod; how many pods were timed how, for meta.json) from the
    usage pulls (``acc``: steps with a sample per container instance and day), the daily query's rows
    (``raw``: raw_samples) and the per-pod instant query's rows (``per_pod``: the start and completion
    times, stat = their metric names of ``metrics``)."""
    key = ["namespace", "pod", "container"]
    for res in ("memory", "cpu"):
        s, d, n, _sm, _mx = acc.day_sums(res)
        if len(s):
            break
    else:
        return pd.DataFrame(columns=POD + ["pod_hours", "lifetime"]), {}
    day_steps = pd.DataFrame(list(acc.series), columns=key).iloc[s].reset_index(drop=True).assign(day=d, steps=n)
    steps = day_steps.groupby(key)["steps"].sum().groupby(POD).max() * (grid.step / 3600.0)
    counts = raw[key + ["day", "raw_samples"]].dropna() if raw is not None and res == "memory" else None
    interval = scrape_interval(day_steps, counts, grid)
    mine = per_pod[per_pod["stat"].isin([metrics.pod_start_time, metrics.pod_completion_time])]
    times = mine.pivot_table(index=POD, columns="stat", values="value", aggfunc="max").reset_index()
    times = times.rename(columns={metrics.pod_start_time: "start_time", metrics.pod_completion_time: "completion_time"})
    for col in ("start_time", "completion_time"):
        if col not in times:
            times[col] = np.nan
    out = pod_hours(steps.rename("step_hours").reset_index(), counts, times, interval, grid)
    timed = {"scrape_interval_seconds": None if np.isnan(interval) else interval,
             **{f"pods_timed_by_{k}": int(v) for k, v in out["lifetime"].value_counts().items()}}
    return out, timed
