"""Totals of one analysis: the content of summary.json (pure; no I/O).

summary.json schema (``schema_version`` 1). Money is USD per month (730 h by default,
``[general] hours_per_month``); every figure is a plain JSON number, ``null`` when unknown.

```
{
  "schema_version": 1,
  "window": {"start": ISO-8601 UTC, "end": ISO-8601 UTC, "hours": float,
             "coverage": [{"cluster", "start", "end", "hours", "short"}]},   the span the server had data for,
                                  per cluster; short: more than a step shorter than the window (every per-hour
                                  figure is then a monthly rate over those hours)
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
    "gpu_usd_per_month_current":  what the GPUs containers request cost (in usd_per_month_current),
    "gpu_usd_per_month_used":     of it, the share their engines were active (measured containers; null: none),
    "gpu_savings_usd_per_month":  what the GPU actions save (idle, share, smaller GPU), patched or report-only,
    "gpu_idle_usd_per_month":     allocatable GPUs no pod requests (in idle_usd_per_month),
    "load_balancers": int, "load_balancer_consolidation_candidates": int,
    "containers": int, "workloads": int, "containers_without_price": int,
    "gpu_containers": int, "gpu_containers_unmeasured": int
  },
  "containers_by_status": {"change": int, "keep": int, "no_recommendation": int, "ignored": int},
  "containers_by_flag": {"oom_risk": int, "throttled": int, "hpa": int, ...},
  "spot_by_verdict": {"ready": int, "ready_with_changes": int, ...},
  "by_cluster":   [{"cluster", "usd_per_month_current", "usd_per_month_recommended", "savings_usd_per_month",
                    "containers", "changes", "oom_risk", "throttled", "containers_without_price",
                    "gpu_usd_per_month_current", "gpu_usd_per_month_used", "gpu_savings_usd_per_month"}],
                  money over the priced containers, null when none of the group has a price (rollup)
  "by_namespace": [{"cluster", "namespace", ...same figures}],
  "by_team":      [{"team", ...same figures}],
  "warnings": [{"code", "message", "affects"}],   snapshot and analysis caveats, deduplicated
  "missing_metrics": [str],
  "partial": {...},                                meta.json "partial" as collected
  "node_groups": [{"cluster", "node_group", "instance_type", "capacity_type", "nodes", "nodes_now", "nodes_after",
                   "usd_per_month", "usd_per_month_now", "usd_per_month_after", "bankable_savings_usd_per_month",
                   "consolidation_usd_per_month", "best_instance_type", "best_nodes_after",
                   "best_usd_per_month_after"}],   node_groups.csv (bin-packing, see "Cost model")
  "requests_vs_bill": {"requests", "requested_share", "above_allocatable", "off_nodes", "replicas_over_ran",
                       "reserved", "other"},      the requests' cost against the node bill in parts (consistency.py)
  "thresholds_crossed": [str],                     added by the report writer: [thresholds] messages
  "fleet": {                                       only in a fleet report (several cluster snapshots merged)
    "root": str, "expected": [str], "expected_from": str, "tables_not_loaded": [str],
    "clusters": [{"name", "clusters": [str], "snapshot", "window_end", "containers"}],
    "missing": [{"cluster", "reason", "snapshot"}]  missing, unreadable or stale: left out of every figure
  },
  "week_over_week": {                              added when an earlier report was compared
    "previous": "2026-W46",
    "totals": [{"metric", "previous", "current", "delta", "note"}],   note "coverage changed": not compared
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

from ..schema import WORKLOAD_KEY
from .cost import request_after

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


ROLLUP_COUNTS = ("containers", "changes", "oom_risk", "throttled", "containers_without_price")
ROLLUP_FIGURES = _FIGURES + ROLLUP_COUNTS  # what rollup() computes itself (other columns only with sums=)
TOTAL_FLAGS = ("oom_risk", "throttled", "over_provisioned", "under_provisioned")


def _priced_savings(recommendations: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """(current cost, counted savings) per row in USD/month, both NaN where the price is unknown."""
    current = pd.to_numeric(recommendations["usd_per_month_current"], errors="coerce")
    return current, change_savings(recommendations).where(current.notna())


def rollup(recommendations: pd.DataFrame, by: list[str], *, sums: tuple[str, ...] = ()) -> pd.DataFrame:
    """The one cost rollup (API ``costs(by=...)``, ``what_if(by=...)``, spot and summary.json's by_* lists).

    Per group of ``by`` (an empty key shows as "(none)"), largest savings first: usd_per_month_current,
    usd_per_month_recommended (= current - savings) and savings_usd_per_month (the changes counted in the
    totals, see change_savings), USD/month over the priced containers only: NaN when none of the group is
    priced, never 0; containers, changes, oom_risk, throttled, containers_without_price (counted, left out
    of the money). ``sums``: more numeric columns summed as they are (NaN when all unknown; GPU dollars
    used: NaN for a group whose GPU containers are all unmeasured, 0 for one without GPUs).
    """
    cols = list(by) + list(ROLLUP_FIGURES) + [c for c in sums if c not in ROLLUP_FIGURES]
    if recommendations.empty:
        return pd.DataFrame(columns=cols)
    current, savings = _priced_savings(recommendations)
    df = pd.DataFrame({key: recommendations[key].fillna("").astype(str).replace("", "(none)") for key in by})
    df = df.assign(_current=current, _savings=savings, _change=recommendations["status"] == "change",
                   _oom=flag_mask(recommendations, "oom_risk"), _thr=flag_mask(recommendations, "throttled"),
                   _unpriced=current.isna(), **{f"_sum_{c}": pd.to_numeric(recommendations[c], errors="coerce") for c in sums})
    # A dummy key for by=[]: one row for the whole table.
    keys = list(by) or [pd.Series(0, index=df.index)]
    grouped = df.groupby(keys, sort=False)
    money = grouped[["_current", "_savings"] + [f"_sum_{c}" for c in sums]].sum(min_count=1)
    if "gpu_usd_per_month_used" in sums:  # summed over the GPU containers only: unmeasured is unknown, never 0
        gpu = df.assign(_gpu=recommendations.get("gpu_resource", pd.Series("", index=df.index)).fillna("").astype(str).ne(""))
        gpu["_used"] = gpu["_sum_gpu_usd_per_month_used"].where(gpu["_gpu"])
        by_gpu = gpu.groupby(keys, sort=False)
        money["_sum_gpu_usd_per_month_used"] = by_gpu["_used"].sum(min_count=1).where(by_gpu["_gpu"].any(), 0.0)
    counts = grouped.agg(containers=("_change", "size"), changes=("_change", "sum"), oom_risk=("_oom", "sum"),
                         throttled=("_thr", "sum"), containers_without_price=("_unpriced", "sum")).astype(int)
    out = money.join(counts).rename(columns={"_current": "usd_per_month_current", "_savings": "savings_usd_per_month",
                                             **{f"_sum_{c}": c for c in sums}})
    out["usd_per_month_recommended"] = out["usd_per_month_current"] - out["savings_usd_per_month"]
    out = out.reset_index(drop=not by)
    return out[cols].sort_values(["savings_usd_per_month"] + list(by), ascending=[False] + [True] * len(by),
                                 na_position="last", kind="stable").reset_index(drop=True)


def totals(recommendations: pd.DataFrame) -> dict[str, float]:
    """The one set of totals of a recommendation table (API ``totals``/``what_if``, summary.json "totals").

    Counts: containers, workloads, containers by status (``changes`` = status "change") and by flag,
    containers_without_price. Requests of the main containers x replicas (an unknown replica count as 1),
    now and after applying every change (other rows keep theirs; unset counts as nothing requested):
    cpu_request_cores_current/_after in cores, memory_request_bytes_current/_after in bytes. Money in
    USD/month over the priced containers (NaN when none is priced): usd_per_month_current,
    usd_per_month_recommended (= current - savings), savings_usd_per_month (net, see change_savings),
    savings_gross_usd_per_month, increases_usd_per_month (>= 0), one_off_job_savings_usd_per_month.
    """
    recs = recommendations
    if recs.empty:  # no rows: counts 0, money unknown
        recs = pd.DataFrame({c: pd.Series(dtype=object if c in ("status", "flags") else float) for c in _TOTALS_INPUT})
    out: dict[str, float] = {"containers": len(recs), "workloads": len(recs.drop_duplicates(list(WORKLOAD_KEY)))
                             if set(WORKLOAD_KEY) <= set(recs.columns) else 0}
    for name in STATUSES:
        out["changes" if name == "change" else name] = int((recs["status"] == name).sum())
    for flag in TOTAL_FLAGS:
        out[flag] = int(flag_mask(recs, flag).sum())
    # init containers run before the main ones, so their requests do not add to the pod's
    main = recs["container_type"].ne("init") if "container_type" in recs else pd.Series(True, index=recs.index)
    replicas = recs["replicas"].fillna(1.0).where(main, 0.0)
    for res in ("cpu_request_cores", "memory_request_bytes"):
        current, after = recs[f"{res}_current"], request_after(recs, res)
        out[f"{res}_current"], out[f"{res}_after"] = float((current * replicas).sum()), float((after * replicas).sum())
    current, savings = _priced_savings(recs)
    known = float if current.notna().any() else (lambda _v: math.nan)
    out.update({
        "usd_per_month_current": known(current.sum()),
        "usd_per_month_recommended": known(current.sum() - savings.sum()),
        "savings_usd_per_month": known(savings.sum()),
        "savings_gross_usd_per_month": known(savings.clip(lower=0).sum()),
        "increases_usd_per_month": known(-savings.clip(upper=0).sum()),
        "one_off_job_savings_usd_per_month": known(one_off_job_savings(recs)),
        "containers_without_price": int(current.isna().sum()),
        **gpu_totals(recs),
    })
    return out


GPU_SUMS = ("gpu_usd_per_month_current", "gpu_usd_per_month_used", "gpu_savings_usd_per_month")


def gpu_totals(recs: pd.DataFrame) -> dict[str, float]:
    """The GPU figures of a recommendation table (USD/month): what the GPUs requested cost
    (gpu_usd_per_month_current, in usd_per_month_current), what of it the engines were active
    (gpu_usd_per_month_used, over the measured containers; NaN when none is), what the GPU actions save,
    patched or report-only (gpu_savings_usd_per_month, beside savings_usd_per_month: only a patched MIG
    slice is in both); gpu_containers and gpu_containers_unmeasured (asking for GPUs, no DCGM usage).
    0 without GPUs; NaN when the table has no GPU columns (written before GPUs were costed)."""
    if "gpu_usd_per_month_current" not in recs.columns:
        return {**{k: math.nan for k in GPU_SUMS}, "gpu_containers": 0, "gpu_containers_unmeasured": 0}
    gpu = recs["gpu_resource"].fillna("").astype(str) != "" if "gpu_resource" in recs else pd.Series(False, index=recs.index)
    out = {k: float(pd.to_numeric(recs.loc[gpu, k], errors="coerce").sum()) for k in GPU_SUMS}
    used = pd.to_numeric(recs.loc[gpu, "gpu_usd_per_month_used"], errors="coerce")
    if len(used) and used.isna().all():
        out["gpu_usd_per_month_used"] = math.nan  # GPUs asked for, none measured: unknown, never 0
    action = recs["gpu_action"] if "gpu_action" in recs else pd.Series("", index=recs.index)
    return {**out, "gpu_containers": int(gpu.sum()), "gpu_containers_unmeasured": int((action == "unmeasured").sum())}


_TOTALS_INPUT = ("status", "flags", "replicas", "cpu_request_cores_current", "cpu_request_cores_recommended",
                 "memory_request_bytes_current", "memory_request_bytes_recommended", "usd_per_month_current",
                 "savings_usd_per_month")


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
    """The window, and per cluster the span the server had data for (meta.json ``coverage``): ``short``
    when it is shorter than the window by more than a step (every per-hour figure is then a rate over it)."""
    start, end = meta.get("window_start"), meta.get("window_end")
    hours = None
    if start and end:
        try:
            hours = _num((pd.Timestamp(end) - pd.Timestamp(start)).total_seconds() / 3600)
        except (ValueError, TypeError):
            hours = None
    step_hours = float(meta.get("step_seconds") or 0) / 3600
    coverage = [{"cluster": str(c), "start": v.get("start"), "end": v.get("end"), "hours": _num(v.get("hours")),
                 "short": bool(hours and v.get("hours") and v["hours"] < hours - step_hours - 1e-9)}
                for c, v in sorted((meta.get("coverage") or {}).items())]
    return {"start": start, "end": end, "hours": hours, "coverage": coverage}


def money_totals(analysis, snapshot, t: dict) -> dict[str, float | None]:
    """The USD/month figures of summary.json "totals" (None = unknown: its input was not collected);
    ``t``: :func:`totals` of the recommendations."""
    spot, cross, lbs, idle = analysis.spot, analysis.cross_az, analysis.load_balancers, analysis.idle
    groups = getattr(analysis, "node_groups", None)
    groups = groups if groups is not None else pd.DataFrame()
    verdict = spot["verdict"] if "verdict" in spot.columns else pd.Series(dtype=str)
    # Unknown (null) when the input is missing: no traffic metrics, no node inventory, no Services listed.
    traffic = len(cross) > 0 or _has_rows(snapshot, "traffic")
    nodes = len(idle) > 0 or _has_rows(snapshot, "nodes")
    services = len(lbs) > 0 or _has_rows(snapshot, "services")
    return {
        **{k: t[k] for k in ("usd_per_month_current", "usd_per_month_recommended", "savings_usd_per_month",
                                "savings_gross_usd_per_month", "increases_usd_per_month")},
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
        "one_off_job_savings_usd_per_month": t["one_off_job_savings_usd_per_month"],
        **{k: t[k] for k in GPU_SUMS},
        "gpu_idle_usd_per_month": _sum(idle, "gpu_idle_usd_per_month", known=nodes),
    }


def summarize(analysis, snapshot, config) -> dict[str, Any]:
    """summary.json as a dict (schema in this module's docstring)."""
    recs = analysis.recommendations
    spot, lbs = analysis.spot, analysis.load_balancers
    groups = getattr(analysis, "node_groups", None)
    groups = groups if groups is not None else pd.DataFrame()
    verdict = spot["verdict"] if "verdict" in spot.columns else pd.Series(dtype=str)
    counted = totals(recs)
    figures = {k: _num(v) for k, v in money_totals(analysis, snapshot, counted).items()}
    figures.update({
        "load_balancers": int(len(lbs)),
        "load_balancer_consolidation_candidates": int(lbs["consolidation_candidate"].astype(bool).sum()) if len(lbs) else 0,
        **{k: int(counted[k]) for k in ("containers", "workloads", "containers_without_price", "gpu_containers",
                                        "gpu_containers_unmeasured")},
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
        "totals": figures,
        "containers_by_status": by_status,
        "containers_by_flag": by_flag,
        "spot_by_verdict": by_verdict,
        "by_cluster": _records(rollup(recs, ["cluster"], sums=gpu_sums(recs))),
        "by_namespace": _records(rollup(recs, ["cluster", "namespace"], sums=gpu_sums(recs))),
        "by_team": _records(rollup(recs, ["team"], sums=gpu_sums(recs))),
        "warnings": merged_warnings(analysis, snapshot),
        "missing_metrics": [str(m) for m in (meta.get("missing_metrics") or [])],
        "partial": meta.get("partial") or {},
        "node_groups": _records(groups[[c for c in NODE_GROUP_SUMMARY if c in groups.columns]]) if len(groups) else [],
        "backtest": backtest_section(analysis, config),
        **({"fleet": meta["fleet"]} if meta.get("fleet") else {}),
    }


def gpu_sums(recs: pd.DataFrame) -> tuple[str, ...]:
    """The GPU dollars a rollup sums per group (requested, used, saved), where the table has them."""
    return tuple(c for c in GPU_SUMS if c in recs.columns)


def backtest_section(analysis, config) -> dict | None:
    """summary.json "backtest": per policy (and "today") the test days' slack, predicted OOMs and
    containers over their request, every predicted OOM kill named (day, limit, peak) and the kills observed
    in the test days; null with the reason when it did not run."""
    from .backtest import observed_kills, predicted_ooms
    from .backtest import summary as backtest_summary

    bt = getattr(analysis, "backtest", None)
    if bt is None or bt.empty:
        note = getattr(analysis, "backtest_note", "")
        return {"skipped": note} if note else None
    named = predicted_ooms(bt)
    named["predicted_oom_day"] = named["predicted_oom_day"].map(lambda t: None if pd.isna(t) else pd.Timestamp(t).isoformat())
    return {**backtest_summary(bt, config.report.backtest_days), "predicted_ooms": _records(named),
            "observed_oom_kills": _records(observed_kills(bt))}
