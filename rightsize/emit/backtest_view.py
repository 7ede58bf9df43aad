"""The report's backtest section: the last days replayed against the recommendation made without them.

It shows the slack and predicted OOM kills of today's requests and of the recommendation per namespace,
every predicted OOM kill named (container, first day at the limit, limit against peak), and the
recommendations the self-check raised (the window's last days replayed against the recommendation itself
before it was output: analysis/rules/selfcheck.py).
"""
from __future__ import annotations

from .. import formatting as fmt
from .view_model import Cell, Column, Context, Row, Section, Table, num_cell, ref_text, several_clusters


def backtest_section(ctx: Context) -> Section | None:
    bt = getattr(ctx.analysis, "backtest", None)
    info = ctx.summary.get("backtest") or {}
    raised = _raised_table(ctx)
    if bt is None or bt.empty:
        if raised is None:
            return Section("backtest", "Backtest", empty=f"No backtest: {info['skipped']}.") if info.get("skipped") else None
        why = f"No backtest: {info['skipped']}. " if info.get("skipped") else ""
        return Section("backtest", "Backtest", intro=why + "The self-check replayed the window's last days against the "
                       "recommendation before it was output and raised what they would have broken:", tables=[raised])
    from ..analysis.backtest import OVER_REQUEST_SHARE, by_namespace, rollup

    days = info.get("test_days")
    fleet = {r["policy"]: r for r in rollup(bt, []).to_dict("records")}
    today, rec = fleet.get("today", {}), fleet.get("recommended") or next((v for k, v in fleet.items() if k != "today"), {})
    n_raised = len(raised.rows) if raised else 0
    intro = (f"Had you applied the recommendation made without the last {days} days, those days would have seen CPU slack "
             f"{fmt.percent(rec.get('cpu_slack'))} (today {fmt.percent(today.get('cpu_slack'))}), memory slack "
             f"{fmt.percent(rec.get('memory_slack'))} (today {fmt.percent(today.get('memory_slack'))}), "
             f"{fmt.count(rec.get('predicted_ooms'))} predicted OOM kill(s) (today {fmt.count(today.get('predicted_ooms'))}) and "
             f"{fmt.count(rec.get('over_request'))} container(s) above their CPU request more than {OVER_REQUEST_SHARE:.0%} of "
             f"the time (today {fmt.count(today.get('over_request'))}). Slack is (request - usage) / request over every pod's "
             "5-minute steps; the test days were collected under today's limits, so hidden demand stays hidden there too"
             + (f": {fmt.count(today.get('censored'))} container(s) were OOM-killed in them, and whether a higher limit "
                "holds cannot be replayed for those." if today.get("censored") else ".")
             + f" Before this report's recommendation was output, the self-check replayed the window's last days against it: "
             + (f"it raised {n_raised} value(s) those days would have broken (below)." if n_raised else "nothing needed raising."))
    by = by_namespace(bt)
    rows = [Row([Cell(f"{r['cluster']}/{r['namespace']}"), Cell(r["policy"]), num_cell(r["containers"]),
                 num_cell(r["cpu_slack"], fmt.percent), num_cell(r["memory_slack"], fmt.percent),
                 num_cell(r["predicted_ooms"]), num_cell(r["over_request"])]) for r in by.to_dict("records")]
    columns = [Column("namespace"), Column("requests"), Column("containers", True), Column("CPU slack", True),
               Column("memory slack", True), Column("predicted OOMs", True), Column(f"over request > {OVER_REQUEST_SHARE:.0%}", True)]
    tables = [Table("backtest-table", columns, rows, md_limit=2 * ctx.top_n, more_what="rows", more_file="backtest.csv"),
              _ooms_table(ctx, bt)]
    return Section("backtest", f"Backtest: the last {days} days replayed", nav="Backtest", intro=intro,
                   tables=[t for t in tables + [raised] if t is not None])


def _ooms_table(ctx: Context, bt) -> Table | None:
    """Every predicted OOM kill, named: which requests, the container, the first day at the limit, limit and peak."""
    from ..analysis.backtest import predicted_ooms

    ooms = predicted_ooms(bt) if "predicted_oom_day" in bt.columns else bt.iloc[0:0]
    if ooms.empty:
        return None
    with_cluster = several_clusters(ooms)
    rows = [Row([Cell(r["policy"]), Cell(ref_text(r, with_cluster), code=True), Cell(str(r["predicted_oom_day"])[:10]),
                 num_cell(r["memory_limit_bytes"], fmt.memory), num_cell(r["memory_peak_bytes"], fmt.memory)])
            for r in ooms.to_dict("records")]
    columns = [Column("requests"), Column("container"), Column("first day at the limit"), Column("memory limit", True),
               Column("peak", True)]
    return Table("backtest-ooms", columns, rows, title="Predicted OOM kills", md_limit=2 * ctx.top_n, more_what="kills",
                 more_file="backtest.csv")


def _raised_table(ctx: Context) -> Table | None:
    """The recommendations the self-check raised, with its evidence."""
    recs = ctx.analysis.recommendations
    if "raised_by_backtest" not in recs.columns:
        return None
    raised = recs[recs["raised_by_backtest"].fillna("") != ""]
    if raised.empty:
        return None
    with_cluster = several_clusters(raised)
    rows = [Row([Cell(ref_text(r, with_cluster), code=True), Cell(r["raised_by_backtest"]),
                 num_cell(r["self_check_memory_peak_bytes"], fmt.memory), num_cell(r["self_check_cpu_share_at_limit"], fmt.percent),
                 Cell(fmt.memory(r["memory_limit_bytes_recommended"]) + " · CPU " + fmt.cpu_limit_change(
                     r["cpu_limit_action"], r["cpu_limit_cores_current"], r["cpu_limit_cores_recommended"]))])
            for r in raised.to_dict("records")]
    columns = [Column("container"), Column("raised"), Column("last days' memory peak", True),
               Column("CPU at the limit", True), Column("limits now recommended")]
    return Table("self-check", columns, rows, title="Raised by the self-check", md_limit=2 * ctx.top_n,
                 more_what="containers", more_file="recommendations.csv")
