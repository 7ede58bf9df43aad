"""Which rows the reports show, and in which order (pure: DataFrames in, DataFrames out).

The report's lists are selections of the analysis tables: the changes that save the most, the
containers at risk, the spot candidates, the costliest cross-AZ pairs. They live here, beside the
analyses, so that report.md, report.html, the terminal summary and a notebook pick the same rows.
Money in USD/month.
"""
from __future__ import annotations

import pandas as pd

from .cross_az import top_pairs
from .summary import change_savings, flag_mask

__all__ = ["by_savings", "top_savings", "risky", "spot_candidates", "top_cross_az", "count_savers"]


def by_savings(recs: pd.DataFrame) -> pd.DataFrame:
    """Every row, largest saving of a proposed change first (rows without a change count as 0),
    with ``_savings`` (USD/month) added; ties keep the table's order."""
    if recs.empty:
        return recs.assign(_savings=pd.Series(dtype="float64"))
    return recs.assign(_savings=change_savings(recs)).sort_values("_savings", ascending=False, kind="stable")


def top_savings(recs: pd.DataFrame, n: int) -> pd.DataFrame:
    """Proposed changes that lower cost, largest saving first, at most ``n`` rows (``_savings`` added)."""
    df = by_savings(recs)
    if df.empty:
        return df
    return df[(df["status"] == "change") & (df["_savings"] > 0)].head(n)


def count_savers(recs: pd.DataFrame) -> int:
    """How many proposed changes lower cost (the length of ``top_savings`` without a cap)."""
    if recs.empty:
        return 0
    return int(((recs["status"] == "change") & (change_savings(recs) > 0)).sum())


def risky(recs: pd.DataFrame) -> pd.DataFrame:
    """OOM-risk and throttled containers: OOM first, then by OOM kills, then by throttled ratio.
    Adds boolean ``_oom`` and ``_thr``."""
    if recs.empty:
        return recs.assign(_oom=pd.Series(dtype=bool), _thr=pd.Series(dtype=bool))
    oom, thr = flag_mask(recs, "oom_risk"), flag_mask(recs, "throttled")
    df = recs[oom | thr].assign(_oom=oom[oom | thr], _thr=thr[oom | thr])
    return df.sort_values(["_oom", "oom_kills", "cpu_throttled_ratio"], ascending=False, kind="stable")


def spot_candidates(spot: pd.DataFrame, n: int | None = None) -> pd.DataFrame:
    """Workloads ready for spot (then ready after changes), largest saving first; at most ``n``."""
    if spot.empty:
        return spot
    df = spot[spot["verdict"].isin(["ready", "ready_with_changes"])]
    df = df.sort_values(["verdict", "savings_usd_per_month"], ascending=[True, False], kind="stable")
    return df if n is None else df.head(n)


def top_cross_az(cross: pd.DataFrame, config) -> pd.DataFrame:
    """The costliest workload pairs the report lists (cross_az.top_pairs: ``[cross_az]`` min and top_n)."""
    if cross.empty:
        return cross
    ordered = cross.sort_values("usd_per_month", ascending=False, na_position="last", kind="stable")
    return top_pairs(ordered, config)
