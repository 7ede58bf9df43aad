"""CI thresholds (``[thresholds]`` in config.toml): which ones an analysis crosses (pure; no I/O).

The CLI turns a non-empty result into exit code 3 (errors.EXIT_THRESHOLD) so a CI job can fail
or open an issue; the messages go to the terminal and into report.md.
"""
from __future__ import annotations

import math

import pandas as pd

from ..refs import refs_text
from .summary import flag_mask


def non_production_mask(recommendations: pd.DataFrame, config) -> pd.Series:
    """Rows whose assigned policy is not a production one (``Policy.production`` is false).

    The decision was made once, when the policy was assigned (``production`` column of the
    recommendations); namespace names are not looked at again, so a namespace that [[policy_rules]]
    maps to a production policy stays production even when it matches a non-production glob.
    Tables without the column (older callers) fall back to the declared policy of each row.
    """
    if recommendations.empty:
        return pd.Series(False, index=recommendations.index)
    if "production" in recommendations.columns:
        return ~recommendations["production"].fillna(True).astype(bool)
    names = recommendations["policy"].fillna("").astype(str)
    production = {name: policy.production for name, policy in config.policies.items()}
    return ~names.map(production).fillna(True).astype(bool)


def _names(df: pd.DataFrame, limit: int = 5) -> str:
    refs = refs_text(df, container=True).tolist()
    more = f" and {len(refs) - limit} more" if len(refs) > limit else ""
    return ", ".join(refs[:limit]) + more


def crossed_thresholds(summary: dict, analysis, config) -> list[str]:
    """One message per crossed threshold; empty when none is crossed (or none is configured)."""
    t = config.thresholds
    messages: list[str] = []
    recs = analysis.recommendations
    if t.fail_on_production_oom_risk and len(recs):
        prod_oom = recs[flag_mask(recs, "oom_risk") & ~non_production_mask(recs, config)]
        if len(prod_oom):
            messages.append(
                f"{len(prod_oom)} production container(s) at OOM risk: {_names(prod_oom)} "
                "(thresholds.fail_on_production_oom_risk)"
            )
    limit = t.fail_on_savings_usd_per_month
    savings = (summary.get("totals") or {}).get("savings_usd_per_month")
    if savings is not None and not math.isinf(limit) and savings > limit:
        messages.append(
            f"monthly savings USD {savings:,.2f} exceed USD {limit:,.2f} "
            "(thresholds.fail_on_savings_usd_per_month)"
        )
    missing = (summary.get("fleet") or {}).get("missing") or []
    if len(missing) > t.fail_on_missing_clusters:
        names = ", ".join(str(m.get("cluster")) for m in missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        messages.append(f"{len(missing)} cluster(s) missing or stale in the fleet report: {names} "
                        f"(thresholds.fail_on_missing_clusters = {t.fail_on_missing_clusters:g})")
    return messages
