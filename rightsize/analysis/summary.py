"""Totals of one analysis: the content of summary.json (pure; no I/O).

summary.json schema (``schema_version`` 1). Money is USD per month (730 h by default,
``[general] hours_per_month``); every figure is a plain JSON number, ``null`` when unknown.

```
{
  "schema_version": 1,
  "window": {"start": ISO-8601 UTC, "end": ISO-8601 UTC, "hours": float},
  "clusters": [str],
  "pricing": {"source": str, "date": str, "region": str, "notes": str},
  "totals": {
    "usd_per_month_current":      cost of today's requests x pods (replicas; the average pods run for Jobs,
                                  CronJobs and HPA-scaled work), every container with a known price,
    "usd_per_month_recommended":  the same after applying every proposed change
                                  (= current - savings; containers without a change keep their cost),
    "savings_usd_per_month":      net savings of the proposed changes (status "change", one-off Jobs
                                  apart); increases (OOM-risk bumps, throttling fixes) are subtracted,
    "savings_gross_usd_per_month":   savings of the changes that lower cost,
    "increases_usd_per_month":       cost added by the changes that raise requests (>= 0),
    "bankable_savings_usd_per_month": node cost consolidation can remove once the changes are applied:
                                  (nodes_now - nodes_after) x node price, summed over node_groups,
    "idle_usd_per_month":        node cost of allocatable capacity no pod requests (idle.csv),
    "node_usd_per_month":        the node bill: node cost of the node groups in idle.csv / node_groups.csv,
    "spot_savings_usd_per_month":            savings of spot-ready workloads moved to spot,
    "spot_savings_with_changes_usd_per_month": the same for workloads ready after listed changes,
    "cross_az_usd_per_month":        inter-AZ transfer cost of the workload pairs (cross_az.csv), point estimate,
    "cross_az_usd_per_month_low":    the same if traffic stayed in-zone wherever endpoints allow,
    "cross_az_usd_per_month_high":   the same with traffic spread uniformly over endpoints (= the point estimate),
    "cross_az_saving_usd_per_month": saving if that traffic stayed in-zone,
    "load_balancer_usd_per_month":   fixed cost of LoadBalancer Services (load_balancers.csv),
    "one_off_job_savings_usd_per_month": savings of changes to one-off Jobs, not in savings_usd_per_month:
                                  a Job's pod template is immutable, so for the next run, change the
                                  manifest that creates it,
    "load_balancers": int, "load_balancer_consolidation_candidates": int,
    "containers": int, "workloads": int, "containers_without_price": int
  },
  "containers_by_status": {"change": int, "keep": int, "no_recommendation": int, "ignored": int},
  "containers_by_flag": {"oom_risk": int, "throttled": int, "hpa": int, ...},
  "spot_by_verdict": {"ready": int, "ready_with_changes": int, ...},
  "by_cluster":   [{"cluster", "usd_per_month_current", "usd_per_month_recommended", "savings_usd_per_month",
                    "containers", "changes", "oom_risk", "throttled"}],
  "by_namespace": [{"cluster", "namespace", ...same figures}],
  "by_team":      [{"team", ...same figures}],
  "warnings": [{"code", "message", "affects"}],   snapshot and analysis caveats, deduplicated
  "missing_metrics": [str],
  "partial": {...},                                meta.json "partial" as collected
  "node_groups": [{"cluster", "node_group", "instance_type", "capacity_type", "nodes", "nodes_now", "nodes_after",
                   "usd_per_month", "usd_per_month_now", "usd_per_month_after", "bankable_savings_usd_per_month",
                   "consolidation_usd_per_month", "best_instance_type", "best_nodes_after",
                   "best_usd_per_month_after"}],   node_groups.csv (bin-packing, see "Cost model")
  "thresholds_crossed": [str],                     added by the report writer: [thresholds] messages
  "fleet": {                                       only in a fleet report (several cluster snapshots merged)
    "root": str, "expected": [str], "expected_from": str, "tables_not_loaded": [str],
    "clusters": [{"name", "clusters": [str], "snapshot", "window_end", "containers"}],
    "missing": [{"cluster", "reason", "snapshot"}]  missing, unreadable or stale: left out of every figure
  },
  "week_over_week": {                              added when an earlier report was compared
    "previous": "2026-W46",
    "totals": [{"metric", "previous", "current", "delta"}],
    "new_oom_risks": [{cluster, namespace, kind, workload, container, ...}],
    "resolved_oom_risks": [{..., "now": "no OOM risk" | "gone"}],
    "applied": [{..., "cpu_request_cores_before", "cpu_request_cores_now",
                 "memory_request_bytes_before", "memory_request_bytes_now"}]
  }
}
```
"""
from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd

SCHEMA_VERSION = 1
STATUSES = ("change", "keep", "no_recommendation", "ignored")
SPOT_VERDICTS = ("ready", "ready_with_changes", "not_suitable", "not_applicable", "already_on_spot")
_FIGURES = ("usd_per_month_current", "usd_per_month_recommended", "savings_usd_per_month")
NODE_GROUP_SUMMARY = ("cluster", "node_group", "instance_type", "capacity_type", "nodes", "nodes_now", "nodes_after",
                      "usd_per_month", "usd_per_month_now", "usd_per_month_after", "bankable_savings_usd_per_month",
                      "consolidation_usd_per_month", "best_instance_type", "best_nodes_after", "best_usd_per_month_after")


def _num(value) -> float | None:
    """A JSON-safe float: NaN/inf -> None, rounded to cents-and-a-bit."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    if math.isnan(value) or math.isinf(value):
        return None
    return round(value, 4)


def _sum(df: pd.DataFrame, column: str, mask=None, known: bool = True) -> float | None:
    """Sum of a money column. None (unknown) when the input it comes from is missing (``known`` false)
    or every value summed is unknown; 0.0 only when the input is there and nothing adds to it."""
    if not known:
        return None
    if column not in df.columns or df.empty:
        return 0.0
    col = pd.to_numeric(df[column], errors="coerce")
    if mask is not None:
        col = col[mask]
    if len(col) and col.isna().all():
        return None
    return float(col.sum(skipna=True))


def _has_rows(snapshot, table: str) -> bool:
    frame = snapshot.tables.get(table)
    return frame is not None and not frame.empty


def flag_mask(recommendations: pd.DataFrame, flag: str) -> pd.Series:
    """Rows whose comma-separated ``flags`` contain ``flag`` exactly."""
    if "flags" not in recommendations.columns:
        return pd.Series(False, index=recommendations.index)
    flags = recommendations["flags"].fillna("").astype(str)
    return flags.str.contains(rf"(?:^|,)\s*{re.escape(flag)}\s*(?:,|$)", regex=True)


def change_savings(recommendations: pd.DataFrame) -> pd.Series:
    """Savings per row counted in the totals: only rows with a proposed change, NaN price -> 0 (USD/month).

    One-off Jobs (flag one_off_job) are left out: their pod template cannot be patched, the saving
    only comes with the next run's manifest (``one_off_job_savings``)."""
    if recommendations.empty:
        return pd.Series(dtype="float64")
    savings = pd.to_numeric(recommendations["savings_usd_per_month"], errors="coerce").fillna(0.0)
    counted = (recommendations["status"] == "change") & ~flag_mask(recommendations, "one_off_job")
    return savings.where(counted, 0.0)


def one_off_job_savings(recommendations: pd.DataFrame) -> float:
    """Savings of the changes to one-off Jobs, USD/month: "for the next run, change the manifest that creates it"."""
    if recommendations.empty:
        return 0.0
    savings = pd.to_numeric(recommendations["savings_usd_per_month"], errors="coerce").fillna(0.0)
    return float(savings[(recommendations["status"] == "change") & flag_mask(recommendations, "one_off_job")].sum())


def rollup(recommendations: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Current / recommended / savings USD per month plus counts, grouped by ``by`` (sorted by savings)."""
    cols = list(by) + list(_FIGURES) + ["containers", "changes", "oom_risk", "throttled"]
    if recommendations.empty:
        return pd.DataFrame(columns=cols)
    df = recommendations.copy()
    for key in by:
        df[key] = df[key].fillna("").astype(str).replace("", "(none)")
    df["_current"] = pd.to_numeric(df["usd_per_month_current"], errors="coerce").fillna(0.0)
    df["_savings"] = change_savings(df)
    df["_change"] = df["status"] == "change"
    df["_oom"] = flag_mask(df, "oom_risk")
    df["_thr"] = flag_mask(df, "throttled")
    out = df.groupby(by, sort=False).agg(
        usd_per_month_current=("_current", "sum"), savings_usd_per_month=("_savings", "sum"),
        containers=("status", "size"), changes=("_change", "sum"), oom_risk=("_oom", "sum"),
        throttled=("_thr", "sum"),
    ).reset_index()
    out["usd_per_month_recommended"] = out["usd_per_month_current"] - out["savings_usd_per_month"]
    for c in ("containers", "changes", "oom_risk", "throttled"):
        out[c] = out[c].astype(int)
    return out[cols].sort_values(["savings_usd_per_month"] + list(by), ascending=[False] + [True] * len(by),
                                 kind="stable").reset_index(drop=True)


def _records(df: pd.DataFrame) -> list[dict]:
    def plain(v):
        if isinstance(v, (bool, np.bool_)):
            return bool(v)
        if isinstance(v, (int, np.integer)):
            return int(v)
        if isinstance(v, (float, np.floating)):
            return _num(v)
        return v

    return [{k: plain(v) for k, v in row.items()} for row in df.to_dict("records")]


def merged_warnings(analysis, snapshot) -> list[dict]:
    """Snapshot caveats then analysis caveats, each {code, message, affects}, without duplicates."""
    seen, out = set(), []
    for w in list(snapshot.meta.get("warnings") or []) + list(getattr(analysis, "warnings", None) or []):
        if isinstance(w, str):
            w = {"code": "note", "message": w, "affects": ""}
        entry = {"code": str(w.get("code", "")), "message": str(w.get("message", "")), "affects": str(w.get("affects", ""))}
        key = (entry["code"], entry["message"])
        if key not in seen:
            seen.add(key)
            out.append(entry)
    return out


def _text(value) -> str:
    """meta.json text that may be a list of notes -> one '; ' separated string."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return "; ".join(str(v) for v in value if v)
    return str(value)


def _window(meta: dict) -> dict:
    start, end = meta.get("window_start"), meta.get("window_end")
    hours = None
    if start and end:
        try:
            hours = _num((pd.Timestamp(end) - pd.Timestamp(start)).total_seconds() / 3600)
        except (ValueError, TypeError):
            hours = None
    return {"start": start, "end": end, "hours": hours}


def money_totals(analysis, snapshot) -> dict[str, float | None]:
    """The USD/month figures of summary.json "totals" (None = unknown: its input was not collected)."""
    recs = analysis.recommendations
    spot, cross, lbs, idle = analysis.spot, analysis.cross_az, analysis.load_balancers, analysis.idle
    groups = getattr(analysis, "node_groups", None)
    groups = groups if groups is not None else pd.DataFrame()
    savings_rows = change_savings(recs)
    current = _sum(recs, "usd_per_month_current", known=len(recs) > 0)
    priced = current is not None
    savings = float(savings_rows.sum()) if priced else None
    verdict = spot["verdict"] if "verdict" in spot.columns else pd.Series(dtype=str)
    # Unknown (null) when the input is missing: no traffic metrics, no node inventory, no Services listed.
    traffic = len(cross) > 0 or _has_rows(snapshot, "traffic")
    nodes = len(idle) > 0 or _has_rows(snapshot, "nodes")
    services = len(lbs) > 0 or _has_rows(snapshot, "services")
    return {
        "usd_per_month_current": current,
        "usd_per_month_recommended": current - savings if priced else None,
        "savings_usd_per_month": savings,
        "savings_gross_usd_per_month": float(savings_rows.clip(lower=0).sum()) if priced else None,
        "increases_usd_per_month": float(-savings_rows.clip(upper=0).sum()) if priced else None,
        "bankable_savings_usd_per_month": _sum(groups, "bankable_savings_usd_per_month", known=len(groups) > 0),
        "idle_usd_per_month": _sum(idle, "idle_usd_per_month", known=nodes),
        "node_usd_per_month": _sum(idle, "usd_per_month", known=nodes),
        "spot_savings_usd_per_month": _sum(spot, "savings_usd_per_month", verdict == "ready", known=len(spot) > 0),
        "spot_savings_with_changes_usd_per_month": _sum(spot, "savings_usd_per_month", verdict == "ready_with_changes",
                                                        known=len(spot) > 0),
        "cross_az_usd_per_month": _sum(cross, "usd_per_month", known=traffic),
        "cross_az_usd_per_month_low": _sum(cross, "usd_per_month_low", known=traffic),
        "cross_az_usd_per_month_high": _sum(cross, "usd_per_month_high", known=traffic),
        "cross_az_saving_usd_per_month": _sum(cross, "saving_usd_per_month", known=traffic),
        "load_balancer_usd_per_month": _sum(lbs, "usd_per_month", known=services),
        "one_off_job_savings_usd_per_month": one_off_job_savings(recs) if priced else None,
    }


def summarize(analysis, snapshot, config) -> dict[str, Any]:
    """summary.json as a dict (schema in this module's docstring)."""
    recs = analysis.recommendations
    spot, lbs = analysis.spot, analysis.load_balancers
    groups = getattr(analysis, "node_groups", None)
    groups = groups if groups is not None else pd.DataFrame()
    verdict = spot["verdict"] if "verdict" in spot.columns else pd.Series(dtype=str)
    totals = money_totals(analysis, snapshot)
    totals = {k: _num(v) for k, v in totals.items()}
    totals.update({
        "load_balancers": int(len(lbs)),
        "load_balancer_consolidation_candidates": int(lbs["consolidation_candidate"].astype(bool).sum()) if len(lbs) else 0,
        "containers": int(len(recs)),
        "workloads": int(recs[["cluster", "namespace", "kind", "workload"]].drop_duplicates().shape[0]) if len(recs) else 0,
        "containers_without_price": int(pd.to_numeric(recs["usd_per_month_current"], errors="coerce").isna().sum()) if len(recs) else 0,
    })
    by_status = {s: 0 for s in STATUSES}
    if len(recs):
        by_status.update({str(k): int(v) for k, v in recs["status"].value_counts().items()})
    by_flag: dict[str, int] = {}
    if len(recs):
        flags = recs["flags"].fillna("").astype(str).str.split(",").explode().str.strip()
        by_flag = {str(k): int(v) for k, v in flags[flags != ""].value_counts().sort_index().items()}
    for f in ("oom_risk", "throttled"):
        by_flag.setdefault(f, 0)
    by_verdict = {v: 0 for v in SPOT_VERDICTS}
    by_verdict.update({str(k): int(v) for k, v in verdict.value_counts().items()})
    meta = snapshot.meta
    pricing = dict(meta.get("pricing") or {})
    clusters = list(meta.get("clusters") or (sorted(recs["cluster"].unique()) if len(recs) else []))
    return {
        "schema_version": SCHEMA_VERSION,
        "window": _window(meta),
        "clusters": [str(c) for c in clusters],
        "pricing": {k: _text(pricing.get(k)) for k in ("source", "date", "region", "notes")},
        "totals": totals,
        "containers_by_status": by_status,
        "containers_by_flag": by_flag,
        "spot_by_verdict": by_verdict,
        "by_cluster": _records(rollup(recs, ["cluster"])),
        "by_namespace": _records(rollup(recs, ["cluster", "namespace"])),
        "by_team": _records(rollup(recs, ["team"])),
        "warnings": merged_warnings(analysis, snapshot),
        "missing_metrics": [str(m) for m in (meta.get("missing_metrics") or [])],
        "partial": meta.get("partial") or {},
        "node_groups": _records(groups[[c for c in NODE_GROUP_SUMMARY if c in groups.columns]]) if len(groups) else [],
        "backtest": _backtest(analysis, config),
        **({"fleet": meta["fleet"]} if meta.get("fleet") else {}),
    }


def _backtest(analysis, config) -> dict | None:
    """summary.json "backtest": per policy (and "today") the test days' slack, predicted OOMs and
    containers over their request; null with the reason when it did not run."""
    from .backtest import summary as backtest_summary

    bt = getattr(analysis, "backtest", None)
    if bt is None or bt.empty:
        note = getattr(analysis, "backtest_note", "")
        return {"skipped": note} if note else None
    return backtest_summary(bt, config.report.backtest_days)
