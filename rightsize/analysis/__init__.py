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
    CROSS_AZ_COLUMNS, LOAD_BALANCER_COLUMNS, IDLE_COLUMNS and NODE_GROUP_COLUMNS."""

    recommendations: pd.DataFrame
    spot: pd.DataFrame
    cross_az: pd.DataFrame
    load_balancers: pd.DataFrame
    idle: pd.DataFrame
    node_prices: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)
    warnings: list[dict] = field(default_factory=list)
    node_groups: pd.DataFrame = field(default_factory=pd.DataFrame)  # schema.NODE_GROUP_COLUMNS (binpack)
    backtest: pd.DataFrame = field(default_factory=pd.DataFrame)  # schema.BACKTEST_COLUMNS (empty: not run)
    backtest_note: str = ""  # why there is no backtest ('' when there is one or it was not asked for)


def unmatched_usage(snapshot: Snapshot) -> list[dict]:
    """Caveats for usage that no container spec claims (e.g. a workload missing from the manifests):
    those containers get no recommendation, and the report must say so rather than drop them silently."""
    from ..refs import refs_text
    from ..schema import CONTAINER_KEY

    usage, specs = snapshot.tables["usage"], snapshot.tables["containers"]
    if usage.empty:
        return []
    keys = list(CONTAINER_KEY)
    merged = usage[keys].merge(specs[keys].drop_duplicates(), how="left", on=keys, indicator=True)
    missing = merged[merged["_merge"] == "left_only"]
    if missing.empty:
        return []
    refs = refs_text(missing, container=True).tolist()
    shown = ", ".join(refs[:5]) + (f" and {len(refs) - 5} more" if len(refs) > 5 else "")
    return [{"code": "usage_without_spec",
             "message": f"{len(refs)} container(s) have usage but no spec in the workload source, so no recommendation: {shown}",
             "affects": "recommendations"}]


def instance_candidates() -> pd.DataFrame:
    """List prices and shapes of every instance type in the bundled catalogue (region, instance_type,
    vcpu, memory_gib, usd_per_hour), for binpack's best type per family. Reads the package's data files
    once per process; regions the catalogue does not price use us-east-1's list prices (as pricing does)."""
    from ..sources.price_catalogue import load_catalogue

    catalogue = load_catalogue()
    return catalogue.ondemand.merge(catalogue.shapes[["instance_type", "vcpu", "memory_gib"]], on="instance_type")


def for_regions(candidates: pd.DataFrame, snapshot: Snapshot) -> pd.DataFrame:
    """``candidates`` (instance_candidates) for every region of the snapshot's nodes."""
    from ..sources.price_catalogue import FALLBACK_REGION

    regions = set(snapshot.tables["nodes"]["region"].fillna("").astype(str)) | set(
        (snapshot.meta.get("pricing") or {}).get("regions") or [])
    priced = set(candidates["region"])
    frames = [candidates[candidates["region"] == (r if r in priced else FALLBACK_REGION)].assign(region=r) for r in regions]
    return pd.concat(frames, ignore_index=True) if frames else candidates.iloc[0:0]


def unpacked_workloads(snapshot: Snapshot, recommendations: pd.DataFrame) -> list[dict]:
    """A caveat for workloads costed at some pods that have no placement: the bin-packing leaves them out."""
    from ..refs import refs_text
    from ..schema import WORKLOAD_KEY

    keys = list(WORKLOAD_KEY)
    if recommendations.empty:
        return []
    costed = recommendations[recommendations["replicas"].fillna(0) > 0][keys].drop_duplicates()
    placed = snapshot.tables["placement"][keys].drop_duplicates()
    missing = costed.merge(placed, on=keys, how="left", indicator=True)
    missing = missing[missing["_merge"] == "left_only"]
    if missing.empty:
        return []
    refs = refs_text(missing).tolist()
    shown = ", ".join(refs[:5]) + (f" and {len(refs) - 5} more" if len(refs) > 5 else "")
    return [{"code": "not_bin_packed",
             "message": f"{len(refs)} workload(s) have no placement (pod-hours per node), so the node estimate leaves their pods out: {shown}",
             "affects": "nodes_now, nodes_after, bankable savings"}]


def analyze(snapshot: Snapshot, config: Config, candidates: pd.DataFrame | None = None) -> Analysis:
    """Run every analysis on a snapshot. ``candidates``: instance types for the best type per family
    (default: the bundled catalogue, see instance_candidates)."""
    from . import binpack, cost, cross_az, load_balancers, price_split, recommend, spot, summary

    recs = recommend.recommend(snapshot, config)
    recs = cost.add_costs(recs, snapshot, config)
    candidates = instance_candidates() if candidates is None else candidates
    result = Analysis(
        recommendations=recs,
        spot=spot.spot_suitability(snapshot, recs, config),
        cross_az=cross_az.cross_az_costs(snapshot, config),
        load_balancers=load_balancers.load_balancer_costs(snapshot, config),
        idle=cost.idle_costs(snapshot, config),
        node_prices=cost.node_unit_prices(snapshot, config),
        node_groups=binpack.node_groups(snapshot, recs, config, for_regions(candidates, snapshot)),
        warnings=list(snapshot.meta.get("warnings", [])) + unmatched_usage(snapshot) + unpacked_workloads(snapshot, recs)
        + price_split.caveats(snapshot.tables["prices"], snapshot.tables["nodes"], config),
    )
    result.backtest, result.backtest_note = run_backtest(snapshot, config, config.report.backtest_days)
    result.summary = summary.summarize(result, snapshot, config)
    return result


def run_backtest(snapshot: Snapshot, config: Config, test_days: int, policies: dict | None = None) -> tuple[pd.DataFrame, str]:
    """The backtest (analysis.backtest) of the config's policies (or ``policies``: label -> Config, each
    run through recommend as is), and '' or why it could not run. ``test_days`` 0: not run."""
    from . import backtest, recommend

    if not test_days:
        return pd.DataFrame(), ""
    why = backtest.can_backtest(snapshot, test_days)
    if why:
        return pd.DataFrame(), why
    runs = policies or {"recommended": config}
    decayed = any(p.usage_half_life for cfg in runs.values() for p in cfg.policies.values())
    train, test = backtest.split(snapshot, test_days, keep_days=decayed)
    recs = {label: recommend.recommend(train, cfg) for label, cfg in runs.items()}
    return backtest.compare(recs, test), ""
