"""The functional core: pure functions from snapshot tables to result tables (no network, no disk)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:  # the package is imported by schema.py and config.py (statistics registry): no cycle
    from ..config import Config
    from ..snapshot import Snapshot


@dataclass
class Analysis:
    """Everything the emit stage needs. Tables follow schema.RECOMMENDATION_COLUMNS, SPOT_COLUMNS,
    CROSS_AZ_COLUMNS, LOAD_BALANCER_COLUMNS and IDLE_COLUMNS."""

    recommendations: pd.DataFrame
    spot: pd.DataFrame
    cross_az: pd.DataFrame
    load_balancers: pd.DataFrame
    idle: pd.DataFrame
    node_prices: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)
    warnings: list[dict] = field(default_factory=list)


def unmatched_usage(snapshot: Snapshot) -> list[dict]:
    """Caveats for usage that no container spec claims (e.g. a workload missing from the manifests):
    those containers get no recommendation, and the report must say so rather than drop them silently."""
    from ..schema import CONTAINER_KEY

    usage, specs = snapshot.tables["usage"], snapshot.tables["containers"]
    if usage.empty:
        return []
    keys = list(CONTAINER_KEY)
    merged = usage[keys].merge(specs[keys].drop_duplicates(), how="left", on=keys, indicator=True)
    missing = merged[merged["_merge"] == "left_only"]
    if missing.empty:
        return []
    refs = ["/".join(row) for row in missing[keys[1:]].astype(str).itertuples(index=False, name=None)]
    shown = ", ".join(refs[:5]) + (f" and {len(refs) - 5} more" if len(refs) > 5 else "")
    return [{"code": "usage_without_spec",
             "message": f"{len(refs)} container(s) have usage but no spec in the workload source, so no recommendation: {shown}",
             "affects": "recommendations"}]


def analyze(snapshot: Snapshot, config: Config) -> Analysis:
    """Run every analysis on a snapshot."""
    from . import cost, cross_az, load_balancers, recommend, spot, summary

    recs = recommend.recommend(snapshot, config)
    recs = cost.add_costs(recs, snapshot, config)
    result = Analysis(
        recommendations=recs,
        spot=spot.spot_suitability(snapshot, recs, config),
        cross_az=cross_az.cross_az_costs(snapshot, config),
        load_balancers=load_balancers.load_balancer_costs(snapshot, config),
        idle=cost.idle_costs(snapshot, config),
        node_prices=cost.node_unit_prices(snapshot, config),
        warnings=list(snapshot.meta.get("warnings", [])) + unmatched_usage(snapshot),
    )
    result.summary = summary.summarize(result, snapshot, config)
    return result
