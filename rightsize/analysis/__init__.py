"""The functional core: pure functions from snapshot tables to result tables (no network, no disk)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

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
        warnings=list(snapshot.meta.get("warnings", [])),
    )
    result.summary = summary.summarize(result, snapshot, config)
    return result
