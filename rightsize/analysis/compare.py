"""Week over week: deltas of this report against an earlier one (pure: dicts and DataFrames in, a
Comparison out; emit/compare.py reads the earlier report folder).

Money in USD/month; counts as plain numbers. A recommendation counts as applied when today's
request is within APPLIED_RTOL (or the absolute tolerance) of last week's recommendation.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..quantity import MIB
from ..schema import CONTAINER_KEY
from .summary import flag_mask

# (summary path, label); money in USD/month, counts as plain numbers
DELTA_METRICS = (
    (("totals", "usd_per_month_current"), "Current cost of requests (USD/month)"),
    (("totals", "usd_per_month_recommended"), "Cost after recommendations (USD/month)"),
    (("totals", "savings_usd_per_month"), "Savings available (USD/month)"),
    (("totals", "idle_usd_per_month"), "Idle node cost (USD/month)"),
    (("totals", "spot_savings_usd_per_month"), "Spot savings, ready workloads (USD/month)"),
    (("totals", "cross_az_usd_per_month"), "Cross-AZ transfer (USD/month)"),
    (("totals", "load_balancer_usd_per_month"), "Load balancers (USD/month)"),
    (("containers_by_status", "change"), "Containers with a proposed change"),
    (("containers_by_flag", "oom_risk"), "Containers at OOM risk"),
    (("containers_by_flag", "throttled"), "Throttled containers"),
)

# A recommendation counts as applied when today's request is within this of last week's recommendation.
APPLIED_RTOL = 0.02
APPLIED_ATOL_CORES = 0.001
APPLIED_ATOL_BYTES = MIB


@dataclass
class Comparison:
    """Deltas against an earlier report. ``totals`` columns: metric, previous, current, delta."""

    previous_dir: str
    previous_label: str
    totals: pd.DataFrame
    new_oom_risks: pd.DataFrame
    resolved_oom_risks: pd.DataFrame
    applied: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        """JSON-safe form (used by summary.json's "week_over_week")."""
        def recs(df):
            return json.loads(df.to_json(orient="records"))

        return {"previous": self.previous_label, "totals": recs(self.totals),
                "new_oom_risks": recs(self.new_oom_risks), "resolved_oom_risks": recs(self.resolved_oom_risks),
                "applied": recs(self.applied)}


def _get(summary: dict, path: tuple) -> float:
    value = summary
    for key in path:
        if not isinstance(value, dict):
            return np.nan
        value = value.get(key)
    try:
        return float(value) if value is not None else np.nan
    except (TypeError, ValueError):
        return np.nan


def _keyed(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for k in CONTAINER_KEY:
        out[k] = out[k].fillna("").astype(str)
    return out


def compare(summary: dict, recommendations: pd.DataFrame, previous_summary: dict,
            previous_recommendations: pd.DataFrame, previous_label: str = "", previous_dir: str = "") -> Comparison:
    """Deltas of totals, new and resolved OOM risks, and the recommendations applied since then."""
    rows = []
    for path, label in DELTA_METRICS:
        prev, cur = _get(previous_summary, path), _get(summary, path)
        rows.append({"metric": label, "previous": prev, "current": cur, "delta": cur - prev})
    totals = pd.DataFrame(rows, columns=["metric", "previous", "current", "delta"])

    key = list(CONTAINER_KEY)
    cur = _keyed(recommendations)
    prev = _keyed(previous_recommendations)
    cur_oom = cur.loc[flag_mask(cur, "oom_risk"), key + ["oom_kills", "memory_request_bytes_current", "memory_request_bytes_recommended"]]
    prev_oom = prev.loc[flag_mask(prev, "oom_risk"), key]
    new = cur_oom.merge(prev_oom, on=key, how="left", indicator=True)
    new = new[new["_merge"] == "left_only"].drop(columns="_merge").reset_index(drop=True)
    resolved = prev_oom.merge(cur[key + ["status"]], on=key, how="left", indicator=True)
    resolved["now"] = np.where(resolved["_merge"] == "left_only", "gone", "no OOM risk")
    still = resolved.merge(cur_oom[key], on=key, how="left", indicator="_still")
    resolved = still[still["_still"] == "left_only"][key + ["now"]].reset_index(drop=True)

    proposed = prev[prev["status"] == "change"]
    cols = ["cpu_request_cores_current", "cpu_request_cores_recommended",
            "memory_request_bytes_current", "memory_request_bytes_recommended"]
    both = proposed[key + cols].merge(cur[key + ["cpu_request_cores_current", "memory_request_bytes_current"]],
                                      on=key, suffixes=("_before", "_now"))
    cpu_rec, mem_rec = both["cpu_request_cores_recommended"], both["memory_request_bytes_recommended"]
    cpu_now, mem_now = both["cpu_request_cores_current_now"], both["memory_request_bytes_current_now"]
    cpu_ok = cpu_rec.isna() | np.isclose(cpu_now, cpu_rec, rtol=APPLIED_RTOL, atol=APPLIED_ATOL_CORES)
    mem_ok = mem_rec.isna() | np.isclose(mem_now, mem_rec, rtol=APPLIED_RTOL, atol=APPLIED_ATOL_BYTES)
    applied = both[cpu_ok & mem_ok & ~(cpu_rec.isna() & mem_rec.isna())].rename(columns={
        "cpu_request_cores_current_before": "cpu_request_cores_before",
        "memory_request_bytes_current_before": "memory_request_bytes_before",
        "cpu_request_cores_current_now": "cpu_request_cores_now",
        "memory_request_bytes_current_now": "memory_request_bytes_now",
    })[key + ["cpu_request_cores_before", "cpu_request_cores_now", "memory_request_bytes_before", "memory_request_bytes_now"]]
    return Comparison(previous_dir=previous_dir, previous_label=previous_label, totals=totals,
                      new_oom_risks=new, resolved_oom_risks=resolved, applied=applied.reset_index(drop=True))
