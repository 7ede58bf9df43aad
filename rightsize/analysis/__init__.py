"""The functional core: pure functions from snapshot tables to result tables (no network, no disk)."""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

import pandas as pd

from ..config import Config
from ..memory import release
from ..refs import refs_text
from ..schema import CONTAINER_KEY, WORKLOAD_KEY
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
    requests_vs_bill: dict | None = None  # consistency.requests_vs_bill: the requests' cost against the bill, in parts
    backtest: pd.DataFrame = field(default_factory=pd.DataFrame)  # schema.BACKTEST_COLUMNS (empty: not run)
    backtest_note: str = ""  # why there is no backtest ('' when there is one or it was not asked for)


def unmatched_usage(snapshot: Snapshot) -> list[dict]:
    """Caveats for usage that no container spec claims (e.g. a workload missing from the manifests):
    those containers get no recommendation, and the report must say so rather than drop them silently."""
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


def unpacked_workloads(snapshot: Snapshot, recommendations: pd.DataFrame) -> list[dict]:
    """A caveat for workloads costed at some pods that have no placement: the bin-packing leaves them out."""
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


def growth_unchecked(snapshot: Snapshot) -> list[dict]:
    """A caveat when the per-pod daily rows were not read (a fleet report): memory growth and the self-check
    need them, so the recommendations here do not see a growing working set (each cluster's own report does)."""
    if "usage_daily" not in (snapshot.meta.get("tables_not_loaded") or []):
        return []
    return [{"code": "growth_not_checked",
             "message": "the per-pod daily rows were not read (a fleet report): memory growth and the self-check were not "
                        "checked here; each cluster's own report and patches check them",
             "affects": "recommendations of growing working sets"}]


def analyze(snapshot: Snapshot, config: Config, candidates: pd.DataFrame, *, backtest: bool = True,
            while_backtest: Callable[[Analysis], None] | None = None) -> Analysis:
    """Run every analysis on a snapshot. ``candidates``: instance types with their list prices and shapes in
    every region of the snapshot, for the best type per family (sources.price_catalogue.instance_candidates).
    The front door is rightsize.api.analyze (the CLI's too), which prices the snapshot and finds them.
    ``backtest`` False: no backtest (the patches do not read it; it is most of an analysis' work at scale).
    ``while_backtest``: called on this thread with the analysis final but for ``backtest`` (and the summary's
    part of it) while the backtest's thread runs, e.g. to render the other CSVs in the time it would wait."""
    from . import binpack, consistency, cost, cross_az, load_balancers, price_split, recommend, runtimes, spot, summary

    days = config.report.backtest_days if backtest else 0
    with ThreadPoolExecutor(1, thread_name_prefix="backtest") as pool:
        # the backtest (its pass over the per-pod histograms, a recommendation from the training days, the
        # replay) runs in a worker thread beside the rest: pyarrow and numpy's big kernels release the GIL, so
        # most of it takes the second core. Its pass also reduces the last days the recommendation's
        # self-check replays (when they are as many): the self-check waits for them (a Future in the cache)
        waiting = Future() if days and days == config.recommend.self_check_days else None
        if waiting is not None:
            snapshot.cache[("last_days", days)] = waiting
        running = pool.submit(_backtest_beside, snapshot, config, days, waiting)
        # first what needs no recommendation, while the backtest's pass makes the test days the self-check waits for
        nodes = cost.node_requests(snapshot, config)
        hpm = config.general.hours_per_month
        costs = dict(cross_az=cross_az.cross_az_costs(snapshot, config),
                     load_balancers=load_balancers.load_balancer_costs(snapshot, config),
                     idle=cost.idle_costs(snapshot, config, nodes), node_prices=cost.node_unit_prices(snapshot, config))
        unmatched, on_nodes = unmatched_usage(snapshot), consistency.caveats(snapshot, nodes, hpm)
        prices = price_split.caveats(snapshot.tables["prices"], snapshot.tables["nodes"], config)
        recs = cost.add_costs(recommend.recommend(snapshot, config), snapshot, config)
        result = Analysis(
            recommendations=recs, spot=spot.spot_suitability(snapshot, recs, config), **costs,
            node_groups=binpack.node_groups(snapshot, recs, config, candidates),
            warnings=list(snapshot.meta.get("warnings", [])) + unmatched + unpacked_workloads(snapshot, recs) + on_nodes
            + runtimes.caveats(recs, snapshot.meta) + prices + growth_unchecked(snapshot),
        )
        # the summary reads the backtest in one part only: the rest is made in the time this thread would wait
        result.summary = summary.summarize(result, snapshot, config)
        totals = result.summary["totals"]
        result.requests_vs_bill = consistency.requests_vs_bill(recs, nodes, cost.workload_unit_prices(snapshot, config), totals, hpm)
        result.warnings += consistency.above_bill(result.requests_vs_bill, totals.get("node_usd_per_month"))
        result.summary.update(requests_vs_bill=result.requests_vs_bill, warnings=summary.merged_warnings(result, snapshot))
        if while_backtest is not None:
            while_backtest(result)
        result.backtest, result.backtest_note = running.result()
    release()
    result.summary["backtest"] = summary.backtest_section(result, config)
    return result


def _backtest_beside(snapshot: Snapshot, config: Config, days: int, waiting: Future | None) -> tuple[pd.DataFrame, str]:
    """run_backtest, its split shared with the recommendation's self-check when ``waiting`` (a Future the
    self-check waits on: backtest.split resolves it with the test days; None here when the split cannot run,
    the exception when it fails, so the waiting thread never hangs)."""
    try:
        split = backtest_split(snapshot, config, days) if waiting is not None else None
        release()  # the pass over the histograms freed hundreds of MB at 20,000 containers: not the peak of what follows
        return run_backtest(snapshot, config, days, split=split)
    except BaseException as exc:
        if waiting is not None and not waiting.done():
            waiting.set_exception(exc)
        raise
    finally:
        if waiting is not None and not waiting.done():
            waiting.set_result(None)


def backtest_split(snapshot: Snapshot, config: Config, test_days: int, runs: dict | None = None):
    """backtest.split for these runs (label -> Config): (training snapshot, test days), or the reason it cannot
    run (a str)."""
    from . import backtest

    why = backtest.can_backtest(snapshot, test_days)
    if why:
        return why
    from ..usage_stats import policies_need_histograms

    runs = runs or {"recommended": config}
    every = [p for cfg in runs.values() for p in cfg.policies.values()]
    decayed = any(p.usage_half_life for p in every)
    # the training days' own self-check replays their last days: keep days apart when there are more of them
    check = max(cfg.recommend.self_check_days for cfg in runs.values())
    longer = bool(check) and (snapshot.window_hours() or 0.0) / 24.0 - test_days > check
    return backtest.split(snapshot, test_days, keep_days=decayed or longer, names=decayed or policies_need_histograms(every),
                          check_days=check)


def run_backtest(snapshot: Snapshot, config: Config, test_days: int, policies: dict | None = None,
                 split=None) -> tuple[pd.DataFrame, str]:
    """The backtest (analysis.backtest) of the config's policies (or ``policies``: label -> Config, each
    run through recommend as is), and '' or why it could not run. ``test_days`` 0: not run. ``split``: the
    training snapshot and test days already made (or the reason they could not be)."""
    from . import backtest, recommend

    if not test_days:
        return pd.DataFrame(), ""
    runs = policies or {"recommended": config}
    split = split if split is not None else backtest_split(snapshot, config, test_days, runs)
    if isinstance(split, str):
        return pd.DataFrame(), split
    train, test = split
    recs = {label: recommend.recommend(train, cfg) for label, cfg in runs.items()}
    return backtest.compare(recs, test), ""
