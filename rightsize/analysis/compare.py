"""Week over week: deltas of this report against an earlier one (pure: dicts and DataFrames in, a
Comparison out; emit/compare.py reads the earlier report folder).

Money in USD/month; counts as plain numbers. A recommendation counts as applied when the requests it
proposed to move moved to within APPLIED_RTOL (or the absolute tolerance) of it. Per-hour figures are
compared only where both reports divided them by the hours covered (or neither was short of data).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..quantity import MIB
from ..schema import CONTAINER_KEY
from .summary import flag_mask

# (summary path, label, per hour): money in USD/month, counts as plain numbers. "Per hour" figures are
# rates over the hours the server had data for (node hours, pod-hours, bytes): a change of coverage
# between two reports that did not both measure it is not a change of cost.
DELTA_METRICS = (
    (("totals", "node_usd_per_month"), "Node bill (USD/month)", True),
    (("totals", "usd_per_month_current"), "Current cost of requests (USD/month)", True),
    (("totals", "usd_per_month_recommended"), "Cost after recommendations (USD/month)", True),
    (("totals", "savings_usd_per_month"), "Savings available (USD/month)", True),
    (("totals", "bankable_savings_usd_per_month"), "Bankable savings (USD/month)", True),
    (("totals", "idle_usd_per_month"), "Idle node cost (USD/month)", True),
    (("totals", "spot_savings_usd_per_month"), "Spot savings, ready workloads (USD/month)", True),
    (("totals", "cross_az_usd_per_month"), "Cross-AZ transfer (USD/month)", True),
    (("totals", "load_balancer_usd_per_month"), "Load balancers (USD/month)", False),
    (("containers_by_status", "change"), "Containers with a proposed change", False),
    (("containers_by_flag", "oom_risk"), "Containers at OOM risk", False),
    (("containers_by_flag", "throttled"), "Throttled containers", False),
)
COVERAGE_LABEL = "Days of data (shortest cluster)"
COVERAGE_CHANGED = "coverage changed"

# A recommendation counts as applied when today's request moved from last week's value to within this of
# last week's recommendation.
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


def covered_days(summary: dict) -> tuple[float, bool]:
    """(days of data of the shortest cluster, measured): summary.json window coverage, else the window."""
    window = summary.get("window") or {}
    hours = [c.get("hours") for c in window.get("coverage") or [] if c.get("hours")]
    if hours:
        return min(hours) / 24, True
    return (float(window["hours"]) / 24 if window.get("hours") else np.nan), False


def _short(summary: dict) -> bool:
    """Whether a report's data covered less of its window than the window (by more than a step)."""
    return any(c.get("short") for c in (summary.get("window") or {}).get("coverage") or [])


def delta_totals(summary: dict, previous_summary: dict) -> tuple[pd.DataFrame, list[str]]:
    """The totals table (metric, previous, current, delta, note) and notes on coverage. Per-hour figures
    of two reports compare when both divided by the hours they covered (coverage measured in both), or when
    neither was short; otherwise their row says "coverage changed" instead of a delta."""
    (prev_days, prev_measured), (cur_days, cur_measured) = covered_days(previous_summary), covered_days(summary)
    changed = not np.isclose(prev_days, cur_days, rtol=0.01, equal_nan=True)
    comparable = (prev_measured and cur_measured) or not (_short(previous_summary) or _short(summary))
    rows = [{"metric": COVERAGE_LABEL, "previous": prev_days, "current": cur_days, "delta": cur_days - prev_days, "note": ""}]
    for path, label, per_hour in DELTA_METRICS:
        prev, cur = _get(previous_summary, path), _get(summary, path)
        blind = per_hour and changed and not comparable
        rows.append({"metric": label, "previous": prev, "current": cur, "delta": np.nan if blind else cur - prev,
                     "note": COVERAGE_CHANGED if blind else ""})
    notes = []
    if changed:
        notes.append(f"The data covered {prev_days:.1f} days then and {cur_days:.1f} now: "
                     + ("every per-hour figure is a monthly rate over the days covered in both, so the changes compare "
                        "(a rate over fewer days is less certain)." if comparable else
                        "the earlier report did not measure its coverage, so its per-hour figures (node bill, idle, "
                        "cross-AZ, costs of batch and autoscaled work) are not compared."))
    return pd.DataFrame(rows, columns=["metric", "previous", "current", "delta", "note"]), notes


def compare(summary: dict, recommendations: pd.DataFrame, previous_summary: dict,
            previous_recommendations: pd.DataFrame, previous_label: str = "", previous_dir: str = "") -> Comparison:
    """Deltas of totals (with the coverage of both reports), new and resolved OOM risks, and the
    recommendations applied since then."""
    totals, notes = delta_totals(summary, previous_summary)
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

    applied = applied_changes(prev, cur)
    return Comparison(previous_dir=previous_dir, previous_label=previous_label, totals=totals,
                      new_oom_risks=new, resolved_oom_risks=resolved, applied=applied, notes=notes)


def _close(a: pd.Series, b: pd.Series, atol: float) -> np.ndarray:
    """a and b equal within APPLIED_RTOL / ``atol``; two unset (NaN) values are equal, unset and set are not."""
    return np.isclose(a.to_numpy(dtype=float), b.to_numpy(dtype=float), rtol=APPLIED_RTOL, atol=atol, equal_nan=True)


def applied_changes(prev: pd.DataFrame, cur: pd.DataFrame) -> pd.DataFrame:
    """Last week's proposed changes that were applied: at least one request was proposed to move, and every
    request proposed to move moved from last week's value to (within tolerance) the recommendation. A
    change proposed only for limits or an HPA target leaves the requests where they were: never "applied"
    here, and a container whose requests did not change never is."""
    key = list(CONTAINER_KEY)
    proposed = prev[prev["status"] == "change"]
    cols = ["cpu_request_cores_current", "cpu_request_cores_recommended",
            "memory_request_bytes_current", "memory_request_bytes_recommended"]
    both = proposed[key + cols].merge(cur[key + ["cpu_request_cores_current", "memory_request_bytes_current"]],
                                      on=key, suffixes=("_before", "_now"))
    ok, any_move = np.ones(len(both), dtype=bool), np.zeros(len(both), dtype=bool)
    for res, atol in (("cpu_request_cores", APPLIED_ATOL_CORES), ("memory_request_bytes", APPLIED_ATOL_BYTES)):
        before, rec, now = both[f"{res}_current_before"], both[f"{res}_recommended"], both[f"{res}_current_now"]
        move = rec.notna().to_numpy() & ~_close(before, rec, atol)
        ok &= ~move | (_close(now, rec, atol) & ~_close(now, before, atol))
        any_move |= move
    applied = both[ok & any_move].rename(columns={
        "cpu_request_cores_current_before": "cpu_request_cores_before",
        "memory_request_bytes_current_before": "memory_request_bytes_before",
        "cpu_request_cores_current_now": "cpu_request_cores_now",
        "memory_request_bytes_current_now": "memory_request_bytes_now",
    })[key + ["cpu_request_cores_before", "cpu_request_cores_now", "memory_request_bytes_before", "memory_request_bytes_now"]]
    return applied.reset_index(drop=True)
