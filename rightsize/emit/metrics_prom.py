"""metrics.prom: the week's figures as metrics, for node-exporter's textfile collector or a Pushgateway.

OpenMetrics text (every family a gauge with HELP and TYPE, ``# EOF`` last), which is also valid
Prometheus text exposition (there ``# EOF`` is a comment). One sample per cluster and namespace
(money, GPU money, containers, proposed changes, OOM risks, throttled, coverage), per cluster and node group
(node bill, idle, idle GPUs), and per cluster (the window's end, for staleness alerts). Money is USD per month.
An unknown figure (no price, no node inventory) has no sample at all, never 0. Names from the
cluster are label values only, escaped as the format says (backslash, double quote, newline).
"""
from __future__ import annotations

import math

import pandas as pd

# family -> (help text, rollup column); one sample per cluster and namespace
NAMESPACE_FAMILIES = {
    "rightsize_cost_usd_per_month": ("Cost of today's requests x pods, USD/month (priced containers only).", "usd_per_month_current"),
    "rightsize_recommended_cost_usd_per_month": ("Cost after every proposed change, USD/month.", "usd_per_month_recommended"),
    "rightsize_savings_usd_per_month": ("Net savings of the proposed changes (increases subtracted), USD/month.", "savings_usd_per_month"),
    "rightsize_containers": ("Containers analysed.", "containers"),
    "rightsize_changes": ("Containers with a proposed change.", "changes"),
    "rightsize_oom_risk_containers": ("Containers at OOM risk (OOM-killed in the window).", "oom_risk"),
    "rightsize_throttled_containers": ("Containers throttled above the policy's threshold.", "throttled"),
    "rightsize_containers_without_price": ("Containers whose cost is unknown (left out of the money).", "containers_without_price"),
    "rightsize_coverage_ratio": ("Share of the containers with enough usage history for a recommendation (0..1).", "coverage_ratio"),
    "rightsize_gpu_cost_usd_per_month": ("Cost of the GPUs containers request (in rightsize_cost_usd_per_month), USD/month.",
                                         "gpu_usd_per_month_current"),
    "rightsize_gpu_used_usd_per_month": ("Of it, the share the GPU engines were active (DCGM exporter; no sample: not measured), "
                                         "USD/month.", "gpu_usd_per_month_used"),
    "rightsize_gpu_savings_usd_per_month": ("What the GPU actions save (idle, share, smaller GPU), patched or report-only, "
                                            "USD/month.", "gpu_savings_usd_per_month"),
}
NODE_GROUP_FAMILIES = {
    "rightsize_node_usd_per_month": ("Node bill of the node group, USD/month.", "usd_per_month"),
    "rightsize_idle_usd_per_month": ("Node cost of allocatable capacity no pod requests, USD/month.", "idle_usd_per_month"),
    "rightsize_gpu_idle_usd_per_month": ("Cost of allocatable GPUs no pod requests (in rightsize_idle_usd_per_month), USD/month.",
                                         "gpu_idle_usd_per_month"),
}
WINDOW_END = "rightsize_window_end_timestamp_seconds"
FILE_NAME = "metrics.prom"


def label_value(text) -> str:
    """A label value escaped as OpenMetrics and Prometheus text both read it."""
    return str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: dict) -> str:
    return "{" + ",".join(f'{k}="{label_value(v)}"' for k, v in pairs.items()) + "}"


def _number(v) -> str | None:
    """The sample's value as text, None when unknown (no sample is written)."""
    if v is None or v is pd.NA:
        return None
    v = float(v)
    if math.isnan(v):
        return None
    return repr(v) if not v.is_integer() else str(int(v))


def _family(name: str, help_text: str, rows: list[tuple[dict, object]]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
    lines += [f"{name}{_labels(labels)} {text}" for labels, value in rows if (text := _number(value)) is not None]
    return lines


def namespace_figures(recommendations: pd.DataFrame) -> pd.DataFrame:
    """The one rollup per cluster and namespace plus ``coverage_ratio`` (containers with a
    recommendation, i.e. status change or keep, over the containers not ignored)."""
    from ..analysis.summary import gpu_sums, rollup

    figures = rollup(recommendations, ["cluster", "namespace"], sums=gpu_sums(recommendations))
    if recommendations.empty:
        return figures.assign(coverage_ratio=pd.Series(dtype=float))
    status = recommendations["status"]
    counted = pd.DataFrame({"cluster": recommendations["cluster"].astype(str), "namespace": recommendations["namespace"].astype(str),
                            "_recommended": status.isin(["change", "keep"]), "_considered": status.ne("ignored")})
    coverage = counted.groupby(["cluster", "namespace"], sort=False)[["_recommended", "_considered"]].sum()
    ratio = (coverage["_recommended"] / coverage["_considered"].where(coverage["_considered"] > 0)).rename("coverage_ratio")
    return figures.merge(ratio.reset_index(), on=["cluster", "namespace"], how="left")


def render(analysis, snapshot) -> str:
    """metrics.prom's text for one analysis (a fleet's too: every cluster has its own samples)."""
    lines: list[str] = []
    figures = namespace_figures(analysis.recommendations)
    records = figures.to_dict("records")
    for name, (help_text, column) in NAMESPACE_FAMILIES.items():
        lines += _family(name, help_text, [({"cluster": r["cluster"], "namespace": r["namespace"]}, r.get(column)) for r in records])
    idle = analysis.idle
    if idle is not None and len(idle):
        groups = idle.assign(node_group=idle["node_group"].fillna("").astype(str)).groupby(["cluster", "node_group"], sort=True)
        money = [c for c in ("usd_per_month", "idle_usd_per_month", "gpu_idle_usd_per_month") if c in idle]
        sums = groups[money].sum(min_count=1).reset_index().to_dict("records")
    else:
        sums = []
    for name, (help_text, column) in NODE_GROUP_FAMILIES.items():
        lines += _family(name, help_text, [({"cluster": r["cluster"], "node_group": r["node_group"]}, r.get(column)) for r in sums])
    end = pd.to_datetime(snapshot.meta.get("window_end"), utc=True, errors="coerce")
    clusters = sorted({str(c) for c in analysis.recommendations.get("cluster", [])}) or list(snapshot.meta.get("clusters") or [])
    lines += _family(WINDOW_END, "End of the usage window the figures come from, Unix seconds.",
                     [({"cluster": c}, None if pd.isna(end) else end.timestamp()) for c in clusters])
    return "\n".join(lines + ["# EOF"]) + "\n"
