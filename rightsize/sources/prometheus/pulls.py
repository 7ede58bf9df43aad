"""The pulls of one cluster's collection: every per-shard request in one bounded pool (execute.py), each
answer cleaned (sanity.py) and reduced or kept as rows as it arrives; a failed shard is recorded as partial."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ...snapshot import Snapshot
from ...usage_stats import DAY_SECONDS
from . import execute, gpu, runtime, sanity
from .client import QueryFailed
from .promql import tagged
from .run import Run
from .usage import Partial, UsageAccumulator, reduce_chunk

POD_KEY = ["namespace", "pod", "container"]


def pull(run: Run, inventory: bool, allow_partial: bool):
    """Run every per-shard request; returns (accumulator, daily raw rows or None, per-pod rows, outcome, runtime chunks)."""
    p = run.config.prometheus
    run.shards = execute.plan_shards(run.series_per_namespace, run.grid.n, p.range_points)
    run.log(f"[{run.cluster}] {int(sum(run.series_per_namespace.values()))} container series in "
            f"{len(run.series_per_namespace)} namespaces -> {len(run.shards)} shard(s)")
    tasks = execute.ordered_tasks(run.shards, run.series_per_namespace, _inventory_parts(run, inventory),
                                  [r for r, m in (("cpu", "cpu_usage"), ("memory", "memory_working_set")) if run.has(m)],
                                  run.grid.n, p.range_points, first=runtime.tasks(run)) + gpu.tasks(run)
    acc = UsageAccumulator(run.grid)
    rows: dict[str, list] = {"daily": [], "per_pod": [], "cluster": [], "runtime": []}

    def consume(task, result):
        if isinstance(result, Partial):
            acc.add(result)
        else:
            (run.gpu if task.name.startswith("gpu") else rows).setdefault(task.name, []).append(result)

    outcome = execute.run(tasks, lambda t: _fetch(run, t, inventory), consume, concurrency=p.concurrency,
                          allow_partial=allow_partial, log=run.log)
    raw = _daily_rows(rows["daily"]) if _daily(run) else None
    per_pod = _joined(rows["per_pod"], POD_KEY + ["stat", "resource", "value"])
    run.cluster_answer = rows["cluster"][0] if rows["cluster"] else None
    return acc, raw, per_pod, outcome, rows["runtime"]


def _daily(run: Run) -> bool:
    return run.has("memory_working_set") or run.has("restarts")


def _times(run: Run) -> tuple[str, ...]:
    m = run.config.prometheus.metrics
    return tuple(getattr(m, f) for f in ("pod_start_time", "pod_completion_time") if run.has(f))


def _inventory_parts(run: Run, inventory: bool) -> list[tuple[str, str]]:
    """(task name, part) of each shard's inventory requests: one request per part of the daily and per-pod
    queries (promql.Queries.daily_parts, per_pod_parts)."""
    daily = [("daily", part) for part in run.q.daily_parts(None, DAY_SECONDS)] if _daily(run) else []
    return daily + [("per_pod", part) for part in run.q.per_pod_parts(None, inventory, _times(run))]


def _fetch(run: Run, task: execute.Task, inventory: bool):
    L, nss = run.labels, run.namespaces(task.namespaces)
    key = [L.namespace, L.pod, L.container]
    if task.name.startswith("gpu"):
        return gpu.fetch(run, task)
    if task.name == "cluster":
        # the nodes' first and last step: with the containers' (from the pulls) the coverage of the window
        coverage_of = (run.config.prometheus.metrics.node_labels,) if run.has("node_labels") else ()
        try:  # its failure is the cluster tables' only (see _cluster_rows), never the run's
            return run.client.query(run.q.cluster(inventory, coverage_of), run.grid.end, what="nodes, traffic, HPAs and PDBs")
        except QueryFailed as exc:
            return exc
    if task.name in ("cpu", "memory"):
        t0 = run.grid.first + task.first * run.grid.step
        parse = run.client.query_range(run.q.usage(task.name, nss), t0, t0 + (task.steps - 1) * run.grid.step,
                                       run.grid.step, key, what=f"{task.name} usage", timestamps=True, deferred=True)
        # parsed and reduced by the collector's thread while this worker asks the next question (execute.Later)
        return execute.Later(lambda: reduce_chunk(sanity.clean_samples(parse(), run.dropped), task.name, run.grid, run.owners))
    if task.name == "daily":
        return sanity.clean_rows(_fetch_daily(run, nss, key, task.part), run.dropped, POD_KEY)
    if task.name == "runtime":
        return runtime.fetch(run, task, nss, key)
    query = tagged({task.part: run.q.per_pod_parts(nss, inventory, _times(run))[task.part]})
    result = run.client.query(query, run.grid.end, what=f"{task.part} per pod")
    return sanity.clean_rows(rows(result, key + ["stat", "resource"], ["namespace", "pod", "container", "stat", "resource"]),
                             run.dropped, POD_KEY)


def _fetch_daily(run: Run, nss, key, part: str) -> pd.DataFrame:
    """One ``part`` of the daily query: whole days back from the window end in one range query at a one-day
    step; the rest of a window that is not whole days (its oldest, partial day) in one instant query of
    that length."""
    g, window = run.grid, run.config.general.window
    full = int(window // DAY_SECONDS)
    rest = window - full * DAY_SECONDS
    frames = []
    if full:
        res = run.client.query_range(tagged({part: run.q.daily_parts(nss, DAY_SECONDS)[part]}), g.end - (full - 1) * DAY_SECONDS,
                                     g.end, DAY_SECONDS, key + ["stat"], what=f"daily {part}", timestamps=True)
        if res:  # one frame for every series (a frame per series costs 0.1 ms each: seconds at 10,000 containers)
            series = np.repeat(np.arange(len(res)), [len(s.values) for s in res])
            keys = pd.DataFrame([s.key for s in res], columns=POD_KEY + ["stat"]).take(series).reset_index(drop=True)
            day = np.rint((g.end - np.concatenate([s.timestamps for s in res])) / DAY_SECONDS).astype(np.int64)
            frames.append(keys.assign(day=day, value=np.concatenate([s.values for s in res])))
    if rest >= g.step:
        res = run.client.query(tagged({part: run.q.daily_parts(nss, rest)[part]}), g.end - full * DAY_SECONDS,
                               what=f"{part} of the oldest partial day")
        f = rows(res, key + ["stat"], ["namespace", "pod", "container", "stat"])
        frames.append(f.assign(day=full))
    return _joined(frames, POD_KEY + ["stat", "day", "value"])


def _joined(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    """The frames' rows in one frame, values as floats: the parts of an inventory query answer apart, and a
    part with no series (no OOM kill in the window) must not turn the values into objects, which pandas then
    aggregates in Python (15 s for the daily rows of 10,000 containers)."""
    kept = [f for f in frames if len(f)]
    out = pd.concat(kept, ignore_index=True) if kept else pd.DataFrame(columns=columns)
    return out.astype({"value": float})


def rows(result: list[dict], labels: list[str], names: list[str]) -> pd.DataFrame:
    """Instant-vector result -> DataFrame with the given labels (renamed to ``names``) and ``value``."""
    rows = [[r["metric"].get(lab, "") for lab in labels] + [float(r["value"][1])] for r in result]
    return pd.DataFrame(rows, columns=names + ["value"])


def _daily_rows(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """namespace, pod, container, day, memory_max_bytes, restarts, oom_kills, raw_samples (raw working-set
    samples) from the daily query rows."""
    if not frames:
        return pd.DataFrame(columns=POD_KEY + ["day", "memory_max_bytes", "restarts", "oom_kills", "raw_samples"])
    d = _joined(frames, POD_KEY + ["stat", "day", "value"])
    wide = d.pivot_table(index=POD_KEY + ["day"], columns="stat", values="value", aggfunc="max").reset_index()
    wide.columns.name = None
    wide = wide.rename(columns={"memory_max": "memory_max_bytes"})
    for c in ("memory_max_bytes", "restarts", "oom", "raw_samples"):
        if c not in wide:
            wide[c] = np.nan
    wide["oom_kills"] = wide["restarts"].where(wide["oom"].notna())  # restarts where the reason was OOMKilled
    wide["oom_kills"] = wide["oom_kills"].round()
    wide["restarts"] = wide["restarts"].round()
    return wide[POD_KEY + ["day", "memory_max_bytes", "restarts", "oom_kills", "raw_samples"]]


def record_partial(run: Run, snapshot: Snapshot, outcome: execute.Outcome) -> None:
    if outcome.splits:
        run.log(f"[{run.cluster}] {outcome.splits} split(s) after the server rejected a request")
    if not outcome.failed:
        return
    listed = snapshot.meta.setdefault("partial", {}).setdefault("namespaces", [])
    for ns in sorted(outcome.failed):
        if f"{run.cluster}/{ns}" not in listed:
            listed.append(f"{run.cluster}/{ns}")
    snapshot.warn("partial", f"cluster {run.cluster}: no usage for namespaces {', '.join(sorted(outcome.failed))}: "
                  f"{outcome.errors[0]}", affects=", ".join(sorted(outcome.failed)))
