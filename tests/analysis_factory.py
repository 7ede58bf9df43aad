"""Hand-made Analysis objects for the report tests (the real analyses are tested on their own).

Two weeks of the same small estate: ``make_analysis(week=1)`` is the week after ``week=0``, with
one recommendation applied (current now equals last week's recommendation), one OOM risk resolved
and one new OOM risk.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from rightsize.analysis import Analysis
from rightsize.quantity import MIB
from rightsize.schema import (CROSS_AZ_COLUMNS, IDLE_COLUMNS, LOAD_BALANCER_COLUMNS, RECOMMENDATION_COLUMNS,
                              SPOT_COLUMNS)
from rightsize.snapshot import Snapshot, new_meta

NAN = np.nan

# (namespace, workload, container, team, policy, status, flags, replicas,
#  cpu cur, cpu rec, mem cur MiB, mem rec MiB, oom_kills, throttled, usd cur, usd rec)
_WEEK0 = [
    ("shop", "frontend", "app", "storefront", "production", "change", "over_provisioned", 3,
     1.0, 0.25, 1024, 384, 0, NAN, 120.0, 35.0),
    ("shop", "search", "app", "storefront", "production", "change", "", 2,
     2.0, 1.2, 4096, 3072, 0, NAN, 210.0, 140.0),
    ("shop", "cart", "app", "storefront", "production", "change", "oom_risk", 2,
     0.5, 0.5, 256, 512, 3, NAN, 30.0, 42.0),
    ("payments", "api", "app", "payments", "production", "change", "throttled", 2,
     0.5, 0.6, 512, 512, 0, 0.41, 40.0, 45.0),
    ("payments", "api", "istio-proxy", "payments", "production", "keep", "", 2,
     0.1, 0.1, 128, 128, 0, NAN, 8.0, 8.0),
    ("payments", "ledger", "db", "payments", "production", "no_recommendation", "low_confidence", 1,
     1.0, NAN, 2048, NAN, 0, NAN, 60.0, NAN),
    ("staging", "frontend", "app", "storefront", "non_production", "change", "over_provisioned", 1,
     1.0, 0.05, 1024, 128, 0, NAN, 40.0, 3.0),
    ("staging", "worker", "app", "storefront", "non_production", "change", "oom_risk", 1,
     0.2, 0.2, 128, 256, 1, NAN, 6.0, 9.0),
]


def _recommendations(rows) -> pd.DataFrame:
    recs = []
    for (ns, wl, ctr, team, policy, status, flags, reps, cpu_c, cpu_r, mem_c, mem_r, oom, thr, usd_c, usd_r) in rows:
        rec_known = status != "no_recommendation"
        recs.append({
            "cluster": "demo", "namespace": ns, "kind": "Deployment", "workload": wl, "container": ctr,
            "container_type": "main", "team": team, "policy": policy, "status": status,
            "reason": "too little history (2.0 d < 3 d)" if not rec_known else "p95 x 1.15",
            "production": policy == "production",
            "confidence": "high" if rec_known else "", "flags": flags, "replicas": float(reps), "average_pods": float(reps),
            "cpu_request_cores_current": cpu_c, "cpu_request_cores_recommended": cpu_r,
            "cpu_limit_cores_current": 0.5 if "throttled" in flags else NAN,
            "cpu_limit_cores_recommended": NAN, "cpu_limit_action": "remove" if "throttled" in flags else ("keep_unset" if rec_known else "none"),
            "memory_request_bytes_current": mem_c * MIB, "memory_request_bytes_recommended": mem_r * MIB,
            "memory_limit_bytes_current": mem_c * MIB, "memory_limit_bytes_recommended": mem_r * MIB,
            "cpu_change_percent": (cpu_r - cpu_c) / cpu_c * 100, "memory_change_percent": (mem_r - mem_c) / mem_c * 100,
            "cpu_basis": "p95", "cpu_basis_cores": cpu_r / 1.15 if rec_known else NAN,
            "memory_basis": "max", "memory_basis_bytes": mem_r * MIB / 1.15 if rec_known else NAN,
            "memory_max_bytes": mem_r * MIB / 1.15 if rec_known else mem_c * MIB * 0.5,
            "hours_covered": 336.0 if rec_known else 48.0, "samples": 4032.0, "pods_seen": float(reps),
            "restarts": float(oom), "oom_kills": float(oom), "cpu_throttled_ratio": thr,
            "usd_per_month_current": usd_c, "usd_per_month_recommended": usd_r,
            "savings_usd_per_month": usd_c - usd_r,
        })
    df = pd.DataFrame(recs).reindex(columns=[c.name for c in RECOMMENDATION_COLUMNS])  # evidence not listed: unknown
    strings = [c.name for c in RECOMMENDATION_COLUMNS if c.dtype == "str"]
    df[strings] = df[strings].astype(object).fillna("")
    return df


def _week_rows(week: int):
    rows = [list(r) for r in _WEEK0]
    if week == 1:
        # frontend applied last week's recommendation: current = recommended, now 'keep'
        rows[0][5], rows[0][6] = "keep", ""
        rows[0][8], rows[0][10], rows[0][14] = 0.25, 384, 35.0
        # cart's OOM risk resolved (memory raised), search became an OOM risk
        rows[2][5], rows[2][6], rows[2][12], rows[2][10], rows[2][14] = "keep", "", 0, 512, 42.0
        rows[1][6], rows[1][12] = "oom_risk", 2
    return [tuple(r) for r in rows]


def _frame(columns, rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=[c.name for c in columns])


def _spot() -> pd.DataFrame:
    base = ("demo",)
    rows = [
        base + ("shop", "Deployment", "frontend", "storefront", 85.0, "ready", "replicas 3; stateless", "", 3.0, 0.0, "<5%", 35.0, 12.0, 23.0, False),
        base + ("shop", "Deployment", "search", "storefront", 60.0, "ready_with_changes", "grace 300 s", "lower terminationGracePeriodSeconds to 120", 2.0, 0.0, "5-10%", 140.0, 50.0, 90.0, False),
        base + ("payments", "StatefulSet", "ledger", "payments", 10.0, "not_suitable", "StatefulSet with PVC", "", 1.0, 0.0, "", 60.0, 22.0, NAN, False),
        base + ("staging", "Deployment", "frontend", "storefront", 90.0, "ready", "non-production", "", 1.0, 0.0, "<5%", 3.0, 1.0, 2.0, True),
        base + ("monitoring", "DaemonSet", "node-exporter", "platform", 0.0, "not_applicable", "DaemonSet", "", 6.0, NAN, "", 5.0, 5.0, NAN, False),
    ]
    return _frame(SPOT_COLUMNS, rows)


def _cross_az() -> pd.DataFrame:
    rows = [
        ("demo", "shop", "frontend", "shop", "search", 3000.0, 0.66, False, 1980.0, 39.6, 0.0, 39.6, "uniform over endpoints (no topology hint on Service shop/search)", "spec.trafficDistribution: PreferClose", 39.6, "us-east-1a,us-east-1b,us-east-1c", True, ""),
        ("demo", "shop", "search", "data", "redis", 1500.0, 0.5, True, 750.0, 15.0, 15.0, 15.0, "measured zones", "topology-mode: Auto", 15.0, "us-east-1a", False, "destination runs in one zone: spread it first"),
        ("demo", "payments", "api", "payments", "ledger", 40.0, 0.66, False, 26.4, 0.53, 0.53, 0.53, "uniform over endpoints (routing unknown: no Service known for payments/ledger)", "spec.trafficDistribution: PreferClose", 0.53, "us-east-1b", False, ""),
    ]
    return _frame(CROSS_AZ_COLUMNS, rows)


def _load_balancers() -> pd.DataFrame:
    rows = [
        ("demo", "shop", "frontend-public", "frontend", "internet-facing", 16.43, True, True, ""),
        ("demo", "payments", "api-lb", "api", "internet-facing", 16.43, True, True, "internet-facing without the internal annotation"),
        ("demo", "data", "kafka-nlb", "kafka", "internal", 16.43, False, False, ""),
    ]
    return _frame(LOAD_BALANCER_COLUMNS, rows)


def _idle() -> pd.DataFrame:
    gib = 1024**3
    rows = [
        ("demo", "general", "m5.xlarge", "on-demand", 4.0, 15.2, 9.0, 55 * gib, 30 * gib, 0.0, 0.0, 560.64, 210.0, 0.0),
        ("demo", "spot", "m5.large", "spot", 2.0, 3.6, 1.0, 13 * gib, 4 * gib, 0.0, 0.0, 80.0, 55.5, 0.0),
    ]
    return _frame(IDLE_COLUMNS, rows)


def make_analysis(week: int = 0) -> Analysis:
    """A small, internally consistent Analysis (one cluster, four namespaces, two teams)."""
    return Analysis(
        recommendations=_recommendations(_week_rows(week)),
        spot=_spot(), cross_az=_cross_az(), load_balancers=_load_balancers(), idle=_idle(),
        node_prices=pd.DataFrame({"instance_type": ["m5.xlarge"], "usd_per_vcpu_hour": [0.04], "usd_per_gib_hour": [0.005]}),
        warnings=[
            {"code": "missing_metric", "message": "container_cpu_cfs_throttled_periods_total not found; throttling unknown",
             "affects": "throttling"},
        ],
    )


def make_snapshot(analysis: Analysis | None = None) -> Snapshot:
    """A snapshot whose meta and usage match make_analysis (usage percentiles for the charts)."""
    analysis = analysis or make_analysis()
    recs = analysis.recommendations
    usage = recs[["cluster", "namespace", "kind", "workload", "container"]].copy()
    base_cpu = recs["cpu_basis_cores"].fillna(recs["cpu_request_cores_current"] * 0.3)
    base_mem = recs["memory_max_bytes"]
    from recommend_tables import usage_stats

    stats = usage_stats([base_cpu * f for f in (0.5, 0.8, 1.0, 1.2, 1.5)], [base_mem * f for f in (0.7, 0.85, 0.9, 0.95, 1.0)])
    usage = usage.assign(**stats)
    for col in ("samples", "hours_covered", "oom_kills", "restarts", "cpu_throttled_ratio", "pods_seen"):
        usage[col] = recs[col]
    meta = new_meta(
        window_start="2026-11-02T00:00:00+00:00", window_end="2026-11-16T00:00:00+00:00", step_seconds=300,
        clusters=["demo"],
        pricing={"source": "offline", "date": "2026-10-01", "region": "us-east-1",
                 "notes": "bundled on-demand list prices; spot from the Spot Advisor"},
        missing_metrics=["container_cpu_cfs_throttled_periods_total"],
        partial={"demo": "2 of 40 namespace shards timed out"},
        warnings=[{"code": "estimated_price", "message": "m7g.large price estimated from its family", "affects": "cost"}],
    )
    return Snapshot(tables={"usage": usage}, meta=meta)
