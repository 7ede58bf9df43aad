"""The snapshot tables of one cluster's collection, assembled from the pulls: usage, placement, the cluster
rows, the inventory (Prometheus-only mode); pods joined to their owners, incomplete namespaces left out."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from ...errors import SourceError
from ...sketch import usage_statistics
from ...names import invalid_rows
from ...snapshot import Snapshot, conform
from ...table_sink import TableSink
from .. import ksm
from . import lifetimes
from .client import QueryFailed
from .pulls import rows
from .run import Run
from .usage import UsageAccumulator


def with_owners(run: Run, frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` (namespace, pod columns) with the pod's owning ``kind`` and ``workload``
    ('' for a pod without an owner series)."""
    out = frame.copy()
    owner = [run.owners.get(k, ("", "")) for k in zip(out["namespace"], out["pod"])]
    out["kind"] = [o[0] for o in owner]
    out["workload"] = [o[1] for o in owner]
    return out


def drop(frame: pd.DataFrame, namespaces: set) -> pd.DataFrame:
    """Rows of namespaces whose data is incomplete are left out: partial data is never shown as whole."""
    if not namespaces or "namespace" not in frame:
        return frame
    return frame[~frame["namespace"].isin(namespaces)].reset_index(drop=True)


def histograms(run: Run, acc: UsageAccumulator, daily: pd.DataFrame, leave_out: set):
    """The usage_histograms table streamed to a staged file in chunks of whole namespaces (each chunk freed once
    written; rows with a name that is not a Kubernetes name left out, as drop_invalid_names does for the tables
    in memory), and every registry statistic of each chunk's containers (sketch.usage_statistics, with their
    usage_daily rows). Returns (the LazyTable, or None without rows; the statistics)."""
    sink, stats, writing = TableSink("usage_histograms"), [], None
    # a chunk is written by one background thread (Arrow's encoding releases the GIL) while the next one is
    # merged and its statistics computed; at most one write waits, so at most two chunks are held
    with ThreadPoolExecutor(1, thread_name_prefix="usage_histograms") as writer:
        for chunk in acc.histogram_chunks(run.cluster, run.owners, leave_out):
            names = chunk["namespace"].unique()
            stats.append(usage_statistics(chunk, daily[daily["namespace"].isin(names)], run.grid.step))
            chunk = conform("usage_histograms", chunk, copy=False)
            bad = invalid_rows(chunk).to_numpy()
            if writing is not None:
                writing.result()  # a failed write (a full disk) is raised here
            writing = writer.submit(sink.write, chunk[~bad] if bad.any() else chunk)
            del chunk
        if writing is not None:
            writing.result()
    usage = pd.concat(stats, ignore_index=True) if stats else usage_statistics(pd.DataFrame(), daily, run.grid.step)
    return sink.close(), usage


def usage_table(run: Run, usage: pd.DataFrame, daily: pd.DataFrame, oom_known: bool, per_pod: pd.DataFrame) -> pd.DataFrame:
    """The usage table: ``usage`` (every registry statistic per container) plus restarts, OOM kills and CFS
    throttling summed over its pods (NaN when the metrics behind them are missing)."""
    key = ["namespace", "kind", "workload", "container"]
    pp = with_owners(run, per_pod)
    per = pp[pp["resource"] == ""].pivot_table(index=key, columns="stat", values="value", aggfunc="sum")
    idx = pd.MultiIndex.from_frame(usage[key])

    def summed(stat, known):
        if not known:
            return np.full(len(usage), np.nan)
        col = per[stat] if stat in per else pd.Series(dtype=float)
        return idx.map(col).to_numpy(dtype=float, na_value=np.nan)

    usage["restarts"] = np.nan_to_num(summed("restarts", run.has("restarts")), nan=0.0) if run.has("restarts") else np.nan
    periods = summed("cfs_periods", run.has("cpu_periods") and run.has("cpu_throttled_periods"))
    throttled = summed("cfs_throttled_periods", run.has("cpu_periods") and run.has("cpu_throttled_periods"))
    with np.errstate(invalid="ignore", divide="ignore"):
        usage["cpu_throttled_ratio"] = np.where(periods > 0, throttled / periods, np.nan)
    usage["cpu_throttled_seconds"] = summed("cfs_throttled_seconds", run.has("cpu_throttled_seconds"))
    if oom_known and len(daily):
        usage["oom_kills"] = idx.map(daily.groupby(key)["oom_kills"].sum()).to_numpy(dtype=float, na_value=0.0)
    else:
        usage["oom_kills"] = np.nan
    usage["cluster"] = run.cluster
    return usage


def cluster_rows(run: Run, inventory: bool, allow_partial: bool, snapshot: Snapshot) -> pd.DataFrame:
    """The cluster-wide instant query's rows: every label the parts use, ``stat`` and ``value``."""
    L = run.labels
    labels = sorted({L.node, L.zone, L.region, L.instance_type, L.capacity_type_eks, L.capacity_type_karpenter, L.node_group, L.node_pool,
                     L.gpu_product, "resource", L.source_namespace, L.source_workload, L.destination_namespace, L.destination_workload,
                     L.source_zone, L.destination_zone, L.namespace, "horizontalpodautoscaler", "scaletargetref_kind",
                     "scaletargetref_name", "metric_name", "metric_target_type", "poddisruptionbudget", "stat"})
    result = run.cluster_answer  # asked at the start of the pulls, in the same pool
    if isinstance(result, QueryFailed):
        exc = result
        if not allow_partial:
            raise SourceError(f"{exc}; rerun with --allow-partial to keep the rest") from None
        snapshot.warn("partial", f"cluster {run.cluster}: nodes and traffic failed: {exc}", affects="nodes, traffic")
        snapshot.meta.setdefault("partial", {}).setdefault("cluster_tables", []).append(run.cluster)
        return pd.DataFrame(columns=labels + ["value"])
    return rows(result or [], labels, labels)


def placement(run: Run, acc: UsageAccumulator, nodes: pd.DataFrame, raw: pd.DataFrame | None,
               per_pod: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Pod-hours per (workload, node): each pod's lifetime in the window (lifetimes.py: its start and
    completion times, else its raw samples x the scrape interval, else its steps with a sample), from the
    same pulls as the usage; the node from kube_pod_info. And how many pods were timed how (for meta.json)."""
    f, timed = lifetimes.pod_lifetimes(acc, raw, per_pod, run.config.prometheus.metrics, run.grid)
    if f.empty:
        return pd.DataFrame(), timed
    f = with_owners(run, f)
    f["node"] = [run.nodes_of.get((ns, pod), "") for ns, pod in zip(f["namespace"], f["pod"])]
    f = f[(f["workload"] != "") & (f["node"] != "")]
    out = f.groupby(["namespace", "kind", "workload", "node"], as_index=False)["pod_hours"].sum()
    zones = dict(zip(nodes["node"], nodes["zone"])) if len(nodes) else {}
    out["zone"] = out["node"].map(zones).astype(object).fillna("")
    out["cluster"] = run.cluster
    return out, timed


def inventory(run: Run, snapshot: Snapshot, usage: pd.DataFrame, acc: UsageAccumulator, per_pod: pd.DataFrame,
               rows: pd.DataFrame) -> None:
    """Workloads and containers from kube-state-metrics (Prometheus-only mode)."""
    L = run.labels
    key = ["namespace", "kind", "workload", "container"]
    req = with_owners(run, per_pod[per_pod["stat"].isin(["request", "limit", "init_request", "init_limit", "init_info", "image"])])
    containers = ksm.inventory_containers(req[req["workload"] != ""], usage[key], run.cluster)
    alive = [k[:2] for k, last in zip(acc.series, acc.last) if last == run.grid.n - 1]
    at_end = with_owners(run, pd.DataFrame(sorted(set(alive)), columns=["namespace", "pod"]))
    pods = at_end.groupby(["namespace", "kind", "workload"]).size().rename("pods").reset_index() if len(at_end) else pd.DataFrame(
        columns=["namespace", "kind", "workload", "pods"])
    rows = rows.rename(columns={L.namespace: "namespace"})
    hpa = rows[rows["stat"] == "hpa_info"].rename(columns={"scaletargetref_kind": "kind", "scaletargetref_name": "workload"})
    hpa = hpa[["namespace", "horizontalpodautoscaler", "kind", "workload"]]
    target = rows[rows["stat"] == "hpa_target"].rename(columns={"value": "target"})
    target = target[["namespace", "horizontalpodautoscaler", "metric_name", "metric_target_type", "target"]]
    pdbs = rows[rows["stat"] == "pdb_expected"][["namespace", "poddisruptionbudget"]]
    # the cluster query failed (allow_partial): HPAs and PDBs are unknown too
    answered = run.cluster not in snapshot.meta.get("partial", {}).get("cluster_tables", [])
    workloads = ksm.inventory_workloads(containers, pods, hpa, target, pdbs, run.cluster,
                                        hpa_known=answered and run.has("hpa_info") and run.has("hpa_spec_target"),
                                        pdb_known=answered and run.has("pdb_expected_pods"))
    append(snapshot, "containers", containers)
    append(snapshot, "workloads", workloads)
    if len(pdbs):
        snapshot.warn("pdb_by_name", f"cluster {run.cluster}: PDBs matched to workloads by name (kube-state-metrics has no PDB selector)",
                      affects="spot suitability")
    snapshot.warn("inventory_from_metrics", f"cluster {run.cluster}: workload specs from kube-state-metrics: volumes, grace periods and "
                  "spot affinity are unknown (assumed none / 30 s)", affects="spot suitability")


def append(snapshot: Snapshot, table: str, df) -> None:
    """Add rows to ``table`` of ``snapshot``: a DataFrame's, or a staged table's (a LazyTable, taken as it is
    into an empty table)."""
    if df is None or (isinstance(df, pd.DataFrame) and not len(df)):
        return
    if not isinstance(df, pd.DataFrame):
        if len(snapshot.tables[table]):
            raise ValueError(f"table {table!r} has rows already: a staged table goes into an empty one")
        snapshot.tables[table] = df
        return
    df = conform(table, df, copy=False)
    cur = snapshot.tables.get(table)
    snapshot.tables[table] = df if cur is None or not len(cur) else pd.concat([cur, df], ignore_index=True)
