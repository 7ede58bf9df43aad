"""GPU usage from NVIDIA's DCGM exporter, pulled like CPU and memory: each pod's GPUs read once at the step
and reduced as they arrive into the same per-pod, per-day histograms (usage.py), so every percentile, the
backtest and what-if work offline.

- engine active: ``DCGM_FI_PROF_GR_ENGINE_ACTIVE`` (ratio 0-1), else ``DCGM_FI_DEV_GPU_UTIL`` / 100 where
  profiling metrics are off (the usage table's ``gpu_engine_metric`` says which);
- frame buffer used: ``DCGM_FI_DEV_FB_USED`` (MiB); its raw daily maximum (finer than the step); and the
  frame buffer of the pod's GPUs, ``FB_USED + FB_FREE``, with the GPU's ``modelName``.

The exporter labels a GPU's series with the pod it serves (``namespace``, ``pod``, ``container``, or
``exported_*`` when Prometheus renamed them): GPUs without a pod, and pods outside the collected
namespaces, are left out. A pod with several GPUs has one series each; rightsize keeps the busiest
(fullest) at each step, the value a per-GPU slice must hold. The requests are cluster-wide (a DCGM
series' own namespace label may be the exporter's): one series request, time chunks of at most
``range_points`` points per resource, one range query at a one-day step and one instant query. A
missing exporter leaves GPU usage unknown and is named, never read as 0 % used.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ...usage_stats import DAY_SECONDS, GPU_RESOURCES
from . import execute
from .usage import reduce_chunk

# What each DCGM metric's absence disables; named only for a cluster that has GPUs.
DISABLES = {
    "gpu_engine_active": "GPU engine activity from the profiling metric (DCGM_FI_DEV_GPU_UTIL is read instead)",
    "gpu_utilization": "GPU engine activity where the profiling metric is off",
    "gpu_fb_used": "GPU memory used: no GPU share or smaller-GPU recommendation",
    "gpu_fb_free": "the frame buffer size of each GPU (the catalogue's GPU memory is used)",
    "node_capacity": "node GPU capacity (allocatable GPUs are used)",
}
_EXPORTER = {"node_capacity": "kube-state-metrics"}  # else the NVIDIA DCGM exporter
_KEY = ["namespace", "pod", "container"]


def engine_metric(run) -> str:
    """The engine metric this cluster has: the profiling one, else GPU_UTIL, else ''."""
    m = run.config.prometheus.metrics
    return next((getattr(m, f) for f in ("gpu_engine_active", "gpu_utilization") if run.has(f)), "")


def in_scope(run, namespaces: pd.Series, pods: pd.Series) -> np.ndarray:
    """Rows of a GPU pod in the collected namespaces (a GPU without a pod has an empty pod label)."""
    p = run.config.prometheus
    keep = (pods.astype(str) != "") & (namespaces.astype(str) != "") & ~namespaces.isin(list(p.exclude_namespaces))
    return (keep & (namespaces.isin(list(p.namespaces)) if p.namespaces else keep)).to_numpy(dtype=bool)


def read_series(run, found: list[dict]) -> None:
    """How many GPU series serve pods (sizes the range chunks), from the series-API answer."""
    L = run.labels
    fb = run.config.prometheus.metrics.gpu_fb_used
    rows = [[s.get(f"exported_{lab}") or s.get(lab, "") for lab in (L.namespace, L.pod, L.container)]
            for s in found if s.get("__name__") == fb]
    frame = pd.DataFrame(rows, columns=_KEY) if rows else pd.DataFrame(columns=_KEY)
    run.gpu["series"] = int(in_scope(run, frame["namespace"], frame["pod"]).sum())


def tasks(run) -> list[execute.Task]:
    """The GPU requests: time chunks of each resource measured, the daily maxima, the frame buffer sizes."""
    n, p = run.gpu.get("series", 0), run.config.prometheus
    if not n:
        return []
    resources = [r for r, ok in zip(GPU_RESOURCES, (engine_metric(run), run.has("gpu_fb_used"))) if ok]
    out = [t for r in resources for t in execute.range_tasks(r, (), n, run.grid.n, p.range_points)]
    return out + ([execute.Task("gpu_daily", ()), execute.Task("gpu_info", ())] if run.has("gpu_fb_used") else [])


def fetch(run, task: execute.Task):
    """One GPU request: a reduced range chunk (usage.Partial), or rows of the daily maxima / the sizes."""
    L, g = run.labels, run.grid
    key = [L.namespace, L.pod, L.container]
    if task.name in GPU_RESOURCES:
        t0 = g.first + task.first * g.step
        result = run.client.query_range(run.q.gpu_usage(task.name, engine_metric(run)), t0, t0 + (task.steps - 1) * g.step,
                                        g.step, key, what=f"{task.name} usage", timestamps=True)
        mine = in_scope(run, pd.Series([s.key[0] for s in result], dtype=object), pd.Series([s.key[1] for s in result], dtype=object))
        return reduce_chunk([s for s, ok in zip(result, mine) if ok], task.name, g, run.owners)
    if task.name == "gpu_daily":
        full = int(run.config.general.window // DAY_SECONDS)
        if not full:
            return pd.DataFrame(columns=_KEY + ["day", "gpu_memory_max_bytes"])
        res = run.client.query_range(run.q.gpu_daily(DAY_SECONDS), g.end - (full - 1) * DAY_SECONDS, g.end, DAY_SECONDS, key,
                                     what="daily GPU memory maxima", timestamps=True)
        frame = pd.DataFrame([(*s.key, int(d), v) for s in res for d, v in zip(np.rint((g.end - s.timestamps) / DAY_SECONDS), s.values)],
                             columns=_KEY + ["day", "gpu_memory_max_bytes"])
        return frame[in_scope(run, frame["namespace"], frame["pod"])]
    result = run.client.query(run.q.gpu_info(), g.end, what="GPU frame buffer sizes")
    rows = [[r["metric"].get(lab, "") for lab in key + [L.gpu_model]] + [float(r["value"][1])] for r in result]
    frame = pd.DataFrame(rows, columns=_KEY + ["gpu_model", "gpu_memory_total_bytes"])
    return frame[in_scope(run, frame["namespace"], frame["pod"])]


def finish(run, acc, outcome: execute.Outcome, raw: pd.DataFrame | None, snapshot) -> pd.DataFrame | None:
    """After the pulls: a GPU request that failed (with --allow-partial) leaves the cluster's GPU usage out,
    named (partial data is never shown as whole); otherwise the daily GPU memory maxima join ``raw``."""
    failed = [e for e in outcome.errors if e.split(":", 1)[0] in GPU_RESOURCES + ("gpu_daily", "gpu_info")]
    if failed:
        for key in [k for k in acc.parts if k[0] in GPU_RESOURCES]:
            del acc.parts[key]
        run.gpu.pop("gpu_info", None)
        snapshot.warn("partial", f"cluster {run.cluster}: GPU usage left out, a request failed: {failed[0]}", affects="GPU usage")
        snapshot.meta.setdefault("partial", {}).setdefault("gpu_usage", []).append(run.cluster)
        return raw
    daily = run.gpu.get("gpu_daily")
    if raw is None or not daily:
        return raw
    per_day = pd.concat(daily, ignore_index=True).groupby(_KEY + ["day"], as_index=False)["gpu_memory_max_bytes"].max()
    return raw.merge(per_day, on=_KEY + ["day"], how="outer")


def usage_columns(run, usage: pd.DataFrame) -> pd.DataFrame:
    """The usage table with gpu_memory_total_bytes (the largest frame buffer of its pods' GPUs), gpu_model and
    gpu_engine_metric (the metric its engine activity comes from, '' where no GPU usage was measured)."""
    info = pd.concat(run.gpu.get("gpu_info") or [pd.DataFrame(columns=_KEY + ["gpu_model", "gpu_memory_total_bytes"])])
    info = info.assign(kind=[run.owners.get((ns, pod), ("", ""))[0] for ns, pod in zip(info["namespace"], info["pod"])],
                       workload=[run.owners.get((ns, pod), ("", ""))[1] for ns, pod in zip(info["namespace"], info["pod"])])
    key = ["namespace", "kind", "workload", "container"]
    per = info.sort_values("gpu_memory_total_bytes").groupby(key).agg(total=("gpu_memory_total_bytes", "max"), model=("gpu_model", "last"))
    idx = pd.MultiIndex.from_frame(usage[key])
    usage["gpu_memory_total_bytes"] = idx.map(per["total"]).to_numpy(dtype=float, na_value=np.nan) if len(per) else np.nan
    usage["gpu_model"] = pd.Series(idx.map(per["model"]) if len(per) else np.nan, index=usage.index, dtype=object).fillna("")
    measured = usage["gpu_engine_pooled_p50_ratio"].notna() if "gpu_engine_pooled_p50_ratio" in usage else False
    usage["gpu_engine_metric"] = np.where(measured, engine_metric(run), "")
    return usage


def record_missing(run, snapshot, nodes: pd.DataFrame) -> None:
    """Name the DCGM metrics missing from a cluster that has GPU nodes (a cluster without GPUs needs none):
    GPU use is then unknown, and no GPU recommendation is made from it."""
    gpus = nodes["allocatable_gpus"].fillna(0).sum() + nodes["capacity_gpus"].fillna(0).sum() if len(nodes) else 0
    m = run.config.prometheus.metrics
    gone = [f for f in DISABLES if not run.has(f)]
    if not gpus or not gone:
        return
    if engine_metric(run):  # the profiling metric or its fallback is there: only say what the other disables
        gone = [f for f in gone if f not in ("gpu_engine_active", "gpu_utilization")]
    for f in gone:
        name = getattr(m, f)
        what = DISABLES[f] if f not in ("gpu_engine_active", "gpu_utilization") else "GPU engine activity: no GPU recommendation"
        if name not in snapshot.meta.setdefault("missing_metrics", []):
            snapshot.meta["missing_metrics"].append(name)
        snapshot.warn("missing_metric", f"cluster {run.cluster}: metric {name} ({_EXPORTER.get(f, 'NVIDIA DCGM exporter')}) not found in the window, "
                      f"though {gpus:g} GPUs are on its nodes; disables {what}", affects="GPU usage")

