"""The runtimes' own memory (JVM heap, live set and non-heap; Go heap and GOMEMLIMIT; V8 heap; .NET GC heap)
per container instance and hour: the runtime_hourly table.

Part of the one pull: when any runtime family is found in the window, one range query per shard at a
one-hour step (promql.Queries.runtime), cut in time like the usage chunks when the shard is large, reads
each family's hourly minima and maxima of raw samples; nothing is asked when no family is there. The number
of requests grows with the data, never with the workloads. Rows of pods without an owner or series without
a container label cannot be attributed to a container: they are left out and counted in a caveat.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ...config import RuntimeMetricNames
from ...settings import fields_of
from . import execute

HOUR = 3600.0
# The families behind each runtime, for "what is missing" (one of a row's metrics is enough for that row).
FAMILIES = {
    "jvm": ("jvm_memory_used", "jmx_memory_used", "jvm_memory_committed", "jmx_memory_committed", "jvm_memory_max",
            "jmx_memory_max", "jvm_gc_live_data"),
    "go": ("go_heap_inuse", "go_memory_limit"),
    "node": ("node_heap_used", "node_heap_total"),
    "dotnet": ("dotnet_heap_size", "dotnet_total_available", "otel_dotnet_heap_size", "otel_dotnet_committed"),
}
COLUMNS = ["heap_used_min_bytes", "heap_used_max_bytes", "heap_committed_max_bytes", "runtime_max_bytes",
           "live_set_max_bytes", "non_heap_max_bytes", "non_heap_pools_max_bytes"]
GO_NO_LIMIT = 2.0**62  # go_gc_gomemlimit_bytes reads math.MaxInt64 when GOMEMLIMIT is unset


def families(names: RuntimeMetricNames, present: set[str]) -> dict[str, dict[str, list[str]]]:
    """Per runtime, the metric names found in the window and those missing (meta.json sources)."""
    out = {}
    for runtime, fields in FAMILIES.items():
        metrics = [getattr(names, f) for f in fields]
        out[runtime] = {"found": [m for m in metrics if m in present], "missing": [m for m in metrics if m not in present]}
    return out


def present_names(names: RuntimeMetricNames, present: set[str]) -> set[str]:
    """The configured runtime metric names found in the window."""
    return {getattr(names, f.name) for f in fields_of(RuntimeMetricNames)} & present


def hours(window: float) -> int:
    """Whole hours of the window (a part hour at its start is left out)."""
    return max(int(window // HOUR), 1)


def tasks(run) -> list[execute.Task]:
    """Per shard of the collection ``run`` (run.Run), the time chunks (in hours) of the runtime query: at most
    ``range_points`` series x hours each, counting every container of the shard once per part of the query
    (an upper bound: only runtimes answer); none when no runtime family was found."""
    if not run.runtime_present:
        return []
    parts = max(len(run.q.runtime_parts(None, run.runtime_present)), 1)
    out = []
    for shard in run.shards:
        series = sum(run.series_per_namespace.get(ns, 0.0) for ns in shard) * parts
        out += execute.range_tasks("runtime", shard, series, hours(run.config.general.window), run.config.prometheus.range_points)
    return out


def fetch(run, task: execute.Task, namespaces, labels: list[str]) -> pd.DataFrame:
    """One chunk: namespace, pod, container, stat, hour (0 = the last hour), value."""
    n, end = hours(run.config.general.window), run.grid.end
    first = end - (n - 1 - task.first) * HOUR
    result = run.client.query_range(run.q.runtime(namespaces, run.runtime_present), first, first + (task.steps - 1) * HOUR,
                                    HOUR, labels + ["stat"], what="runtime memory per hour", timestamps=True)
    frames = [pd.DataFrame({"namespace": s.key[0], "pod": s.key[1], "container": s.key[2], "stat": s.key[3],
                            "hour": np.rint((end - s.timestamps) / HOUR).astype(np.int64), "value": s.values})
              for s in result]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["namespace", "pod", "container", "stat", "hour", "value"])


def collected(run, snapshot, frames: list[pd.DataFrame], failed: set, inventory_from_metrics: bool) -> pd.DataFrame:
    """The runtime_hourly rows of the collection ``run`` (failed namespaces left out), its caveats (series no
    container can claim; settings unknown from metrics alone), and the families found in meta.json's sources."""
    hourly, left_out = table(frames, run.owners, run.cluster, run.grid.end)
    if left_out:
        snapshot.warn("runtime_series_unowned", f"cluster {run.cluster}: {left_out} pod series of runtime metrics (JVM, Go, "
                      "Node.js, .NET) have no container label or no pod owner, so no container: left out", affects="runtimes")
    if inventory_from_metrics:
        snapshot.warn("runtime_settings_from_metrics", f"cluster {run.cluster}: runtime memory settings (env, command, args: "
                      "-Xmx, GOMEMLIMIT, ...) are unknown from metrics alone (kube-state-metrics has no env): runtimes are "
                      "known from their own metrics only", affects="runtime settings")
    return hourly[~hourly["namespace"].isin(failed)].reset_index(drop=True) if len(hourly) else hourly


def table(frames: list[pd.DataFrame], owners: dict, cluster: str, end: float) -> tuple[pd.DataFrame, int]:
    """The runtime_hourly rows (schema.TABLES) from the chunks, and how many pod series were left out (no
    owner, no container label). Go's GOMEMLIMIT at math.MaxInt64 (unset) is NaN, not a limit."""
    long = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if long.empty:
        return pd.DataFrame(), 0
    long[["runtime", "column"]] = long["stat"].str.split(":", n=1, expand=True)
    key = ["namespace", "pod", "container", "runtime", "hour"]
    wide = long.pivot_table(index=key, columns="column", values="value", aggfunc="max").reset_index()
    wide.columns.name = None
    for c in COLUMNS:
        if c not in wide:
            wide[c] = np.nan
    go = wide["runtime"] == "go"
    wide.loc[go, "runtime_max_bytes"] = wide.loc[go, "runtime_max_bytes"].where(wide.loc[go, "runtime_max_bytes"] < GO_NO_LIMIT)
    owner = [owners.get(k) for k in zip(wide["namespace"], wide["pod"])]
    known = np.array([o is not None for o in owner]) & (wide["container"].astype(str) != "").to_numpy()
    left_out = int(wide.loc[~known, ["namespace", "pod", "container"]].drop_duplicates().shape[0])
    wide = wide[known].reset_index(drop=True)
    owned = [o for o, k in zip(owner, known) if k]
    wide["kind"] = [o[0] for o in owned]
    wide["workload"] = [o[1] for o in owned]
    wide["cluster"] = cluster
    wide["hour"] = pd.to_datetime(end - (wide["hour"].to_numpy(dtype=float) + 1) * HOUR, unit="s", utc=True)
    return wide, left_out
