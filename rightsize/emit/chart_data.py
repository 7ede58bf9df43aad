"""What the report's charts show, without drawing them (no matplotlib here): their names and titles, the
usage percentiles they read, and one caption per chart. The report's view builds its charts section from
these while a forked child draws the PNGs (charts.py), so the parent never imports matplotlib.
Money in USD/month, CPU in cores, memory in bytes.
"""
from __future__ import annotations

import pandas as pd

from ..analysis.summary import change_savings
from ..formatting import usd
from ..schema import CONTAINER_KEY
from ..usage_stats import STATISTICS, usage_column


def ns_label(df: pd.DataFrame) -> pd.Series:
    """'namespace', or 'cluster/namespace' when several clusters are shown."""
    if df["cluster"].nunique() > 1:
        return df["cluster"].astype(str) + "/" + df["namespace"].astype(str)
    return df["namespace"].astype(str)


PCTS = tuple(STATISTICS)


def usage_percentiles(usage: pd.DataFrame | None) -> pd.DataFrame | None:
    """The one reader of the snapshot's usage statistics here: container key + ``cpu_<p>`` (cores) and
    ``memory_<p>`` (bytes) for p in PCTS, every replica's samples pooled; None when the table lacks them."""
    if usage is None or usage.empty:
        return None
    names = {usage_column(res, p): f"{res}_{p}" for res in ("cpu", "memory") for p in PCTS}
    if not set(names) <= set(usage.columns):
        return None
    key = list(CONTAINER_KEY)
    return usage[key + list(names)].drop_duplicates(key).rename(columns=names)


def with_usage(recs: pd.DataFrame, usage: pd.DataFrame | None) -> pd.DataFrame:
    """recs plus used_cpu_cores (pooled p95) / used_memory_bytes (max), from usage when present."""
    df = recs.copy()
    df["used_cpu_cores"] = df["cpu_basis_cores"]
    df["used_memory_bytes"] = df["memory_max_bytes"]
    u = usage_percentiles(usage)
    if u is not None:
        u = u[list(CONTAINER_KEY) + ["cpu_p95", "memory_max"]].rename(columns={"cpu_p95": "_u_cpu", "memory_max": "_u_mem"})
        df = df.merge(u, on=list(CONTAINER_KEY), how="left")
        df["used_cpu_cores"] = df["_u_cpu"].fillna(df["used_cpu_cores"])
        df["used_memory_bytes"] = df["_u_mem"].fillna(df["used_memory_bytes"])
        df = df.drop(columns=["_u_cpu", "_u_mem"])
    return df


CHARTS = (
    ("savings_by_namespace", "Savings by namespace"),
    ("requested_vs_used", "Requested vs used per namespace"),
    ("request_usage_ratios", "Request / usage ratios"),
    ("spot_readiness", "Spot readiness"),
    ("cross_az_by_pair", "Cross-AZ cost by pair"),
    ("top_workload_percentiles", "Top workloads: usage percentiles vs requests"),
)


def captions(analysis, config, usage: pd.DataFrame | None = None) -> dict[str, str]:
    """One sentence per chart saying what to conclude from it (computed from the same tables)."""
    recs, spot, cross = analysis.recommendations, analysis.spot, analysis.cross_az
    out: dict[str, str] = {}
    if len(recs):
        by = recs.assign(_ns=ns_label(recs), _s=change_savings(recs)).groupby("_ns")["_s"].sum().sort_values(ascending=False)
        raised = int((by < 0).sum())
        out["savings_by_namespace"] = (f"{by.index[0]} has the most to save: {usd(by.iloc[0], 0)} of {usd(by.sum(), 0)}/month"
                                       + (f"; {raised} namespace(s) need more than they request (red)." if raised else "."))
        df = with_usage(recs, usage)
        reps = df["replicas"].fillna(1.0)
        cpu_ratio = (df["cpu_request_cores_current"] * reps).sum() / max((df["used_cpu_cores"] * reps).sum(), 1e-9)
        mem_ratio = (df["memory_request_bytes_current"] * reps).sum() / max((df["used_memory_bytes"] * reps).sum(), 1.0)
        out["requested_vs_used"] = (f"Pods request {cpu_ratio:.1f}x the CPU they use at p95 and {mem_ratio:.1f}x their peak "
                                    "memory; the blue bars show how far the recommendations close that gap.")
        over = int(((df["cpu_request_cores_current"] / df["used_cpu_cores"]) > 2).sum())
        under = int(((df["memory_request_bytes_current"] / df["used_memory_bytes"]) < 1).sum())
        out["request_usage_ratios"] = (f"{over} of {len(df)} containers request more than twice the CPU they use at p95; "
                                       f"{under} request less memory than their peak (left of the dashed line), "
                                       "where an OOM kill is likely.")
        out["top_workload_percentiles"] = ("For the largest changes, the recommended request (dashed) sits just above the "
                                           "usage percentiles, where today's request (grey) is far from them.")
    if len(spot):
        ready = spot["verdict"] == "ready"
        later = spot["verdict"] == "ready_with_changes"
        out["spot_readiness"] = (f"{int(ready.sum())} workload(s) can move to spot now and {int(later.sum())} after small "
                                 f"changes, worth {usd(spot.loc[ready | later, 'savings_usd_per_month'].sum(), 0)}/month.")
    if len(cross) and (cross["usd_per_month"].fillna(0) > 0).any():
        top = cross.sort_values("usd_per_month", ascending=False).iloc[0]
        out["cross_az_by_pair"] = (f"{top['source_namespace']}/{top['source_workload']} → {top['destination_namespace']}/"
                                   f"{top['destination_workload']} costs the most, {usd(top['usd_per_month'], 0)}/month; "
                                   "orange pairs are estimated from pod placement.")
    return out
