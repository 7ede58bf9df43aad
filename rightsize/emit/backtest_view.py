"""The report's backtest section: the last days replayed against the recommendation made without them.

It shows the slack and predicted OOM kills of today's requests and of the recommendation per namespace,
every predicted OOM kill named (container, first day at the limit, limit against peak), the kills really
observed in those days, and the recommendations the self-check raised: the window's last days replayed
against the report's own recommendation before it was output (analysis/rules/selfcheck.py).
"""
from __future__ import annotations

import pandas as pd

from .. import formatting as fmt
from .view_model import Cell, Column, Context, ItemList, Row, Section, Table, num_cell, ref_text, several_clusters


def backtest_section(ctx: Context) -> Section | None:
    bt = getattr(ctx.analysis, "backtest", None)
    info = ctx.summary.get("backtest") or {}
    raised = _raised(ctx.analysis.recommendations)
    if bt is None or bt.empty:
        if not raised.items:
            return Section("backtest", "Backtest", empty=f"No backtest: {info['skipped']}.") if info.get("skipped") else None
        why = f"No backtest: {info['skipped']}. " if info.get("skipped") else ""
        return Section("backtest", "Backtest", intro=why + _self_check_text(raised), lists=[raised])
    from ..analysis.backtest import OVER_REQUEST_SHARE, by_namespace, observed_kills, predicted_ooms, rollup

    days = info.get("test_days")
    fleet = {r["policy"]: r for r in rollup(bt, []).to_dict("records")}
    today, rec = fleet.get("today", {}), fleet.get("recommended") or next((v for k, v in fleet.items() if k != "today"), {})
    intro = (f"Had you applied the recommendation made without the last {days} days, those days would have seen CPU slack "
             f"{fmt.percent(rec.get('cpu_slack'))} (today {fmt.percent(today.get('cpu_slack'))}), memory slack "
             f"{fmt.percent(rec.get('memory_slack'))} (today {fmt.percent(today.get('memory_slack'))}), "
             f"{fmt.count(rec.get('predicted_ooms'))} predicted OOM kill(s) (today's limits: {fmt.count(today.get('predicted_ooms'))} "
             f"predicted against {fmt.count(today.get('censored'))} container(s) really OOM-killed in those days) and "
             f"{fmt.count(rec.get('over_request'))} container(s) above their CPU request more than {OVER_REQUEST_SHARE:.0%} of "
             f"the time (today {fmt.count(today.get('over_request'))}). Slack is (request - usage) / request over every pod's "
             "5-minute steps; the test days were collected under today's limits, so hidden demand stays hidden there too"
             + (f": {fmt.count(today.get('censored'))} container(s) were OOM-killed in them, and whether a higher limit "
                "holds cannot be replayed for those." if today.get("censored") else ".") + " " + _self_check_text(raised))
    lists = _backtest_lists(bt, predicted_ooms(bt), observed_kills(bt)) + ([raised] if raised.items else [])
    by = by_namespace(bt)
    rows = [Row([Cell(f"{r['cluster']}/{r['namespace']}"), Cell(r["policy"]), num_cell(r["containers"]),
                 num_cell(r["cpu_slack"], fmt.percent), num_cell(r["memory_slack"], fmt.percent),
                 num_cell(r["predicted_ooms"]), num_cell(r["over_request"])]) for r in by.to_dict("records")]
    columns = [Column("namespace"), Column("requests"), Column("containers", True), Column("CPU slack", True),
               Column("memory slack", True), Column("predicted OOMs", True), Column(f"over request > {OVER_REQUEST_SHARE:.0%}", True)]
    table = Table("backtest-table", columns, rows, md_limit=2 * ctx.top_n, more_what="rows", more_file="backtest.csv")
    return Section("backtest", f"Backtest: the last {days} days replayed", nav="Backtest", intro=intro, tables=[table],
                   lists=lists)


def _backtest_lists(bt: pd.DataFrame, predicted: pd.DataFrame, killed: pd.DataFrame) -> list[ItemList]:
    """The predicted OOM kills named (container, day, limit vs peak) for each replayed recommendation, and the
    kills really observed in the test days beside what replaying today's limits predicts for them."""
    with_cluster = several_clusters(bt)
    lists = []
    for policy, rows in predicted[predicted["policy"] != "today"].groupby("policy", sort=False):
        items = [(ref_text(r, with_cluster), f"{str(r['predicted_oom_day'])[:10]}: peak {fmt.memory(r['memory_peak_bytes'])} "
                  f"reaches the limit {fmt.memory(r['memory_limit_bytes'])}") for r in rows.to_dict("records")]
        lists.append(ItemList(f"Predicted OOM kills, {policy}", items, len(items), more_file="backtest.csv"))
    if len(killed):
        items = [(ref_text(r, with_cluster), f"{fmt.count(r['oom_kills'])} kill(s); today's limits replayed: "
                  + ("predicted" if r["predicted"] else "not predicted (the kill left no sample at the limit)"))
                 for r in killed.to_dict("records")]
        lists.append(ItemList("OOM-killed in those days, under today's limits", items, len(items), more_file="backtest.csv"))
    return lists


def _raised(recs: pd.DataFrame) -> ItemList:
    """The recommendations the self-check raised, each with its evidence."""
    mine = recs[recs["raised_by_backtest"].fillna("") != ""] if "raised_by_backtest" in recs.columns else recs.iloc[0:0]
    with_cluster = several_clusters(mine) if len(mine) else False
    items = []
    for r in mine.to_dict("records"):
        bits = []
        if "memory" in r["raised_by_backtest"]:
            bits.append(f"the last days peaked at {fmt.memory(r['self_check_memory_peak_bytes'])}: memory limit "
                        f"{fmt.memory(r['memory_limit_bytes_recommended'])}")
        if "CPU" in r["raised_by_backtest"]:
            bits.append(f"at the CPU limit {fmt.percent(r['self_check_cpu_share_at_limit'])} of the time: limit "
                        f"{fmt.cpu(r['cpu_limit_cores_recommended'])}")
        items.append((ref_text(r, with_cluster), "; ".join(bits)))
    return ItemList("Raised by the self-check", items, len(items), more_file="recommendations.csv")


def _self_check_text(raised: ItemList) -> str:
    return ("Before this report's recommendation was output, the self-check replayed the window's last days against it: "
            + (f"it raised {raised.total} container(s) those days would have OOM-killed or throttled (listed below)."
               if raised.items else "nothing needed raising."))
