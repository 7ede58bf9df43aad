"""The report view-model: what the weekly report shows, built once from an analysis.

``build_view`` turns summary.json, the analysis tables and the week-over-week comparison into a
``ReportView``: headline figures, counts, the money explanation and an ordered list of sections, each
with its tables (columns, rows of already formatted cells). The Jinja2 templates under templates/
render it as report.md and report.html, and the terminal summary prints from it, so every output
shows the same rows, numbers and wording.

The model (cells, tables, sections) is view_model.py's. Adding a section: write a builder ``def _my_section(ctx) -> Section`` and add it to SECTIONS; the
generic template block renders its intro, tables, lists and bullets in both formats (give the
Section a ``template`` name only when it needs a block of its own, as the totals and charts do).
Money in USD/month, CPU in cores, memory in bytes until formatted here.
"""
from __future__ import annotations

import math
from typing import Callable

import pandas as pd

from .. import formatting as fmt
from ..analysis import selection
from .gpu_section import gpu_kpis, gpu_section
from ..analysis.compare import COVERAGE_LABEL
from .backtest_view import backtest_section as _backtest
from ..analysis.consistency import parts_text
from .view_model import (MAX_LIST_ROWS, header_line, Cell, Column, Context, Filter, ItemList, Kpi, ReportView, Row, Section, Table,
                         change_cell, money_cell, num_cell, recommendation_table, ref_text, several_clusters)
MAX_CAVEATS = 40
FLEET_DETAIL_ROWS = 1000  # a fleet report's HTML lists at most this many rows of a long table (containers, namespaces, spot, LBs)

DETAIL_FILES = (
    ("recommendations.csv", "every container: current and recommended requests/limits, reason, flags, cost"),
    ("spot.csv", "spot suitability per workload, with reasons and changes needed"),
    ("cross_az.csv", "inter-AZ traffic cost per workload pair, with the fix"),
    ("load_balancers.csv", "LoadBalancer Services and their fixed cost"),
    ("idle.csv", "node groups: allocatable vs requested, idle cost"),
    ("node_groups.csv", "node groups: nodes now and after packing the recommended requests, bankable savings"),
    ("backtest.csv", "the backtest per container: today's and the recommended requests replayed over the last days"),
    ("summary.json", "machine-readable totals (schema in the README)"),
    ("report.html", "this report with charts and sortable, filterable tables"),
)

# (totals key, label, note) in the order shown; the main figure is savings
TOTAL_ROWS = (
    ("node_usd_per_month", "Node bill", "what the nodes seen in the window cost"),
    ("usd_per_month_current", "Current cost of requests", "requests x replicas at the nodes' unit prices"),
    ("usd_per_month_recommended", "Cost after recommendations", "every proposed change applied"),
    ("savings_usd_per_month", "Savings available (net of increases)", "current - after"),
    ("increases_usd_per_month", "of which increases (OOM risk, throttling)", "requests raised for safety"),
    ("bankable_savings_usd_per_month", "Bankable savings (nodes that go away)", "the recommended requests packed onto fewer nodes"),
    ("one_off_job_savings_usd_per_month", "One-off Jobs, for their next run", "not in the savings: a Job's template cannot be patched"),
    ("idle_usd_per_month", "Idle node capacity (not requested)", "allocatable capacity no pod requests"),
    ("spot_savings_usd_per_month", "Spot savings, ready workloads", ""),
    ("spot_savings_with_changes_usd_per_month", "Spot savings, ready after changes", ""),
    ("cross_az_usd_per_month", "Cross-AZ transfer", ""),
    ("load_balancer_usd_per_month", "Load balancers", ""),
)
MAIN_TOTAL = "savings_usd_per_month"


# --- headline ------------------------------------------------------------------------------------------

def _kpis(totals: dict) -> list[Kpi]:
    return [Kpi(key, label, totals.get(key), fmt.usd(totals.get(key), 0), note, key == MAIN_TOTAL)
            for key, label, note in TOTAL_ROWS] + gpu_kpis(totals)


def _counts(summary: dict) -> tuple[dict[str, int], str]:
    """Containers by outcome; the parts add up to the total (an ignored container is counted)."""
    st, fl = summary.get("containers_by_status") or {}, summary.get("containers_by_flag") or {}
    total = int((summary.get("totals") or {}).get("containers", 0) or 0)
    parts = {k: int(st.get(k, 0) or 0) for k in ("change", "keep", "no_recommendation", "ignored")}
    other = total - sum(parts.values())
    counts = {"containers": total, **parts, "other": other, "oom_risk": int(fl.get("oom_risk", 0) or 0),
              "throttled": int(fl.get("throttled", 0) or 0),
              "workloads": int((summary.get("totals") or {}).get("workloads", 0) or 0)}
    text = (f"{total:,} containers in {counts['workloads']:,} workloads = {parts['change']:,} with a proposed change"
            f" + {parts['keep']:,} fine as they are + {parts['no_recommendation']:,} without a recommendation"
            f" + {parts['ignored']:,} ignored (opted out)" + (f" + {other:,} other" if other else "")
            + f"; {counts['oom_risk']:,} at OOM risk, {counts['throttled']:,} throttled.")
    return counts, text


def money_explanation(totals: dict, parts: dict | None = None) -> list[str]:
    """How the node bill, the requests, idle capacity and the savings relate (plain sentences); ``parts``:
    summary.json ``requests_vs_bill`` (analysis.consistency), the requests against the bill by their parts."""
    node, idle = totals.get("node_usd_per_month"), totals.get("idle_usd_per_month")
    current, savings = totals.get("usd_per_month_current"), totals.get("savings_usd_per_month")
    if fmt.unknown(node) or not node:
        return ["No node prices: the node bill and idle capacity are unknown, so the savings below are "
                "the cost of requests only."]
    share = f" ({idle / node:.0%})" if not fmt.unknown(idle) and node else ""
    return [
        f"The nodes cost {fmt.usd(node, 0)}/month. Pods request {fmt.usd(node - (idle or 0), 0)} of that capacity; "
        f"{fmt.usd(idle, 0)}{share} is allocatable capacity no pod requests (idle).",
        (parts_text(parts, lambda v: fmt.usd(v, 0)) if parts else
         f"Today's requests cost {fmt.usd(current, 0)}/month at the nodes' unit prices.")
        + f" Applying the recommendations lowers requests by {fmt.usd(savings, 0)}/month.",
        "Freed requests first become more idle capacity: the bill goes down only when nodes are removed "
        "(the cluster autoscaler or Karpenter consolidates them). So savings and idle capacity are two views "
        "of the same spare room, not amounts to add up.",
    ]


# --- sections ------------------------------------------------------------------------------------------

def _totals(ctx: Context) -> Section:
    return Section("totals", "Totals", template="totals",
                   bullets=money_explanation(ctx.totals, ctx.summary.get("requests_vs_bill")))


def _charts(ctx: Context) -> Section | None:
    if ctx.charts is None:
        return None
    from .chart_data import CHARTS, captions

    usage = ctx.snapshot.tables.get("usage") if ctx.snapshot is not None else None
    texts = captions(ctx.analysis, ctx.config, usage)
    figures = [{"name": name, "title": title, "png": ctx.charts.get(name), "caption": texts.get(name, ""),
                "wide": name in ("requested_vs_used", "top_workload_percentiles")}
               for name, title in CHARTS]
    missing = [f["title"] for f in figures if f["png"] is None]
    return Section("charts", "Charts", template="charts", md=False, data={
        "figures": [f for f in figures if f["png"] is not None],
        "missing": f"No data for: {', '.join(missing)}." if missing else ""})


def _week_over_week(ctx: Context) -> Section:
    c = ctx.comparison
    if c is None:
        return Section("week-over-week", "Week over week", empty="No earlier report found to compare with "
                       "(the first report in this folder, or use --compare DIR).")
    rows = []
    for r in c.totals.to_dict("records"):
        money, days = "USD" in r["metric"], r["metric"] == COVERAGE_LABEL
        f = fmt.usd if money else (fmt.days if days else fmt.count)
        delta = fmt.signed_usd if money else (fmt.signed_days if days else fmt.signed_count)
        change = Cell(r["note"]) if r.get("note") else num_cell(r["delta"], delta)
        rows.append(Row([Cell(r["metric"].replace(" (USD/month)", "")), num_cell(r["previous"], f), num_cell(r["current"], f),
                         change]))
    table = Table("wow-totals", [Column(""), Column("previous", True), Column("now", True), Column("change", True)], rows)
    with_cluster = several_clusters(c.new_oom_risks, c.resolved_oom_risks, c.applied)
    lists = []
    for title, df, note in (("New OOM risks", c.new_oom_risks, None), ("Resolved OOM risks", c.resolved_oom_risks, "now"),
                            ("Recommendations applied", c.applied, None)):
        items = [(ref_text(r, with_cluster), str(r[note]) if note else "") for r in df.to_dict("records")]
        lists.append(ItemList(title, items, len(items)))
    intro = " ".join([f"Compared with **{c.previous_label}**."] + list(c.notes))
    return Section("week-over-week", "Week over week", intro=intro, tables=[table], lists=lists,
                   data={"previous": c.previous_label})


def _top_savings(ctx: Context) -> Section:
    recs = ctx.analysis.recommendations
    top = selection.top_savings(recs, ctx.top_n)
    title = f"Top {ctx.top_n} savings"
    if top.empty:
        return Section("top-savings", title, nav="Top savings", empty="No proposed change lowers cost.")
    total = selection.count_savers(recs)
    shown = top["_savings"].sum()
    intro = (f"These {len(top)} changes save {fmt.usd(shown, 0)}/month, the most of any: apply them first. All proposed "
             f"changes together save {fmt.usd(ctx.totals.get(MAIN_TOTAL), 0)}/month net of the increases for OOM risk "
             "and throttling.")
    table = recommendation_table(top, "top-savings-table", several_clusters(recs), total=total,
                                 more_what="changes that save money", more_file="recommendations.csv")
    return Section("top-savings", title, nav="Top savings", intro=intro, tables=[table])


def _risky(ctx: Context) -> Section:
    rk = selection.risky(ctx.analysis.recommendations)
    title = "OOM risk and throttled containers"
    if rk.empty:
        return Section("oom-throttled", title, nav="OOM / throttled",
                       empty="None: no container was OOM-killed or throttled above the threshold.")
    n_oom, n_all = int(rk["_oom"].sum()), len(rk)
    rk, capped = _fleet_cap(ctx, rk, "containers at risk", "recommendations.csv")
    with_cluster = several_clusters(rk)
    rows = [Row([Cell(ref_text(r, with_cluster), code=True), Cell("OOM risk" if r["_oom"] else "throttled",
                                                                  tags=["oom_risk" if r["_oom"] else "throttled"]),
                 num_cell(r["oom_kills"]), num_cell(r["cpu_throttled_ratio"], fmt.percent),
                 change_cell(r["memory_request_bytes_current"], r["memory_request_bytes_recommended"], fmt.memory),
                 Cell(fmt.cpu_limit_change(r["cpu_limit_action"], r["cpu_limit_cores_current"], r["cpu_limit_cores_recommended"])),
                 Cell(str(r["reason"] or ""))])
            for r in rk.to_dict("records")]
    columns = [Column("container"), Column("risk"), Column("OOM kills", True), Column("throttled", True),
               Column("memory request", True), Column("CPU limit", cls="cpu-limit"), Column("why", md=False, cls="text")]
    intro = (f"{n_oom} container(s) were OOM-killed and get more memory; {n_all - n_oom} throttled one(s) get their "
             "CPU limit raised or removed. These changes cost money and are worth it." + capped)
    table = Table("risk-table", columns, rows, md_limit=MAX_LIST_ROWS, more_what="containers", more_file="recommendations.csv")
    return Section("oom-throttled", title, nav="OOM / throttled", intro=intro, tables=[table])


def _spot(ctx: Context) -> Section:
    spot = ctx.analysis.spot
    if spot.empty:
        return Section("spot", "Spot candidates", nav="Spot", empty="No workload is ready for spot.")
    cands = selection.spot_candidates(spot)
    rest = spot.drop(index=cands.index)
    ordered, capped = _fleet_cap(ctx, pd.concat([cands, rest]), "workloads", "spot.csv")
    with_cluster = several_clusters(spot)
    rows = [Row([Cell(ref_text(r, with_cluster, with_container=False), code=True), Cell(fmt.words(r["verdict"]), tags=[r["verdict"]]),
                 num_cell(r["score"]), Cell(r["interruption_bucket"] or "n/a"), money_cell(r["savings_usd_per_month"]),
                 Cell(r["changes_needed"] or "—"), Cell(str(r["reasons"] or ""))],
                attrs={"verdict": fmt.words(r["verdict"])})
            for r in ordered.to_dict("records")]
    columns = [Column("workload"), Column("verdict"), Column("score", True), Column("interruptions"),
               Column("savings/month", True), Column("changes needed", cls="text"), Column("reasons", md=False, cls="text")]
    ready = cands["savings_usd_per_month"].sum(min_count=1)
    intro = (f"{len(cands)} workload(s) could run on spot nodes (ready, or ready after the listed changes), saving about "
             f"{fmt.usd(ready, 0)}/month." if len(cands) else "No workload is ready for spot; the table says why.") + capped
    table = Table("spot-table", columns, rows, md_limit=min(ctx.top_n, len(cands)), total=len(cands), more_what="candidates",
                  more_file="spot.csv", search=True,
                  filters=[Filter("verdicts", "verdict", sorted(spot["verdict"].map(fmt.words).unique()))])
    return Section("spot", "Spot candidates", nav="Spot", intro=intro, tables=[table])


def _cross_az(ctx: Context) -> Section:
    cross = ctx.analysis.cross_az
    cz = selection.top_cross_az(cross, ctx.config)
    title = "Top cross-AZ pairs"
    if cz.empty:
        nodata = " (no traffic data)" if cross.empty else ""
        return Section("cross-az", title, nav="Cross-AZ", empty=f"No workload pair costs more than "
                       f"{fmt.usd(ctx.config.cross_az.min_usd_per_month)}/month in inter-AZ transfer{nodata}.")
    rows = [Row([Cell(f"{r['source_namespace']}/{r['source_workload']} {fmt.ARROW} {r['destination_namespace']}/{r['destination_workload']}"),
                 num_cell(r["cross_az_gb_per_month"]), num_cell(r["crossing_fraction"], fmt.percent),
                 Cell("measured" if r["measured"] else "estimated"), money_cell(r["usd_per_month"]),
                 Cell(shorten(r["fix"])), Cell(str(r["caveat"] or "—"))])
            for r in cz.to_dict("records")]
    columns = [Column("pair"), Column("GB/month crossing", True), Column("crossing", True), Column("zones"),
               Column("cost/month", True), Column("fix (full text in cross_az.csv)", cls="text"), Column("caveat", md=False, cls="text")]
    intro = (f"The top pair alone costs {fmt.usd(cz['usd_per_month'].iloc[0], 0)}/month; keeping these flows in-zone saves "
             f"up to {fmt.usd(cz['saving_usd_per_month'].sum(min_count=1), 0)}/month.")
    low, high = ctx.totals.get("cross_az_usd_per_month_low"), ctx.totals.get("cross_az_usd_per_month_high")
    if not fmt.unknown(low) and not fmt.unknown(high) and high > low:
        intro += (f" Where the zones of a flow are not measured the cost lies between {fmt.usd(low, 0)} (each pod calls "
                  f"its own zone where it can) and {fmt.usd(high, 0)}/month (calls spread evenly); the figures use the high end.")
    table = Table("cross-az-table", columns, rows, total=len(cross), more_what="pairs", more_file="cross_az.csv")
    return Section("cross-az", title, nav="Cross-AZ", intro=intro, tables=[table])


def _load_balancers(ctx: Context) -> Section:
    lb = ctx.analysis.load_balancers
    if lb.empty:
        return Section("load-balancers", "Load balancers", empty="No Service of type LoadBalancer.")
    shown, capped = _fleet_cap(ctx, lb.sort_values("usd_per_month", ascending=False, kind="stable"), "load balancers",
                               "load_balancers.csv")
    rows = [Row([Cell(f"{r['namespace']}/{r['service']}", code=True), Cell(r["workload"] or "n/a"), Cell(r["scheme"]),
                 money_cell(r["usd_per_month"]), Cell("yes" if r["consolidation_candidate"] else "no"),
                 Cell(shorten(r["risk"], 80) or "—")]) for r in shown.to_dict("records")]
    columns = [Column("service"), Column("workload"), Column("scheme"), Column("cost/month", True),
               Column("could share an ingress"), Column("risk")]
    n = int(lb["consolidation_candidate"].astype(bool).sum())
    intro = f"{len(lb)} load balancer(s) cost {fmt.usd(lb['usd_per_month'].sum(min_count=1), 0)}/month; {n} could share an ingress." + capped
    table = Table("lb-table", columns, rows, md_limit=ctx.top_n, more_what="load balancers", more_file="load_balancers.csv")
    return Section("load-balancers", "Load balancers", intro=intro, tables=[table])


def _fleet_cap(ctx: Context, rows: pd.DataFrame, what: str, file: str) -> tuple[pd.DataFrame, str]:
    """A fleet report's HTML lists the first FLEET_DETAIL_ROWS rows of a long table (and says so): 100,000
    rows would make report.html slow to write and to open; the CSV has them all."""
    if not ctx.summary.get("fleet") or len(rows) <= FLEET_DETAIL_ROWS:
        return rows, ""
    return rows.head(FLEET_DETAIL_ROWS), f" report.html lists the first {FLEET_DETAIL_ROWS:,} of {len(rows):,} {what}; {file} has all."


def _share(part, whole) -> float:
    part, whole = fmt.number(part), fmt.number(whole)
    return part / whole if whole else math.nan


def _idle(ctx: Context) -> Section:
    idle = ctx.analysis.idle
    if idle.empty:
        return Section("idle", "Idle node capacity", nav="Idle", empty="No node data.")
    shown = idle.sort_values("idle_usd_per_month", ascending=False, kind="stable")
    rows = [Row([Cell(r["node_group"] or "n/a"), Cell(r["instance_type"]), Cell(r["capacity_type"]), num_cell(r["nodes"]),
                 num_cell(_share(r["requested_cpu_cores"], r["allocatable_cpu_cores"]), fmt.percent),
                 num_cell(_share(r["requested_memory_bytes"], r["allocatable_memory_bytes"]), fmt.percent),
                 money_cell(r["usd_per_month"]), money_cell(r["idle_usd_per_month"])]) for r in shown.to_dict("records")]
    columns = [Column("node group"), Column("type"), Column("capacity"), Column("nodes", True), Column("CPU requested", True),
               Column("memory requested", True), Column("cost/month", True), Column("idle/month", True)]
    top = shown.iloc[0]
    intro = (f"Node group {top['node_group'] or top['instance_type']} has the most idle capacity "
             f"({fmt.usd(top['idle_usd_per_month'], 0)}/month of {fmt.usd(top['usd_per_month'], 0)}).")
    table = Table("idle-table", columns, rows, md_limit=ctx.top_n, more_what="node groups", more_file="idle.csv")
    return Section("idle", "Idle node capacity", nav="Idle", intro=intro, tables=[table])


def _node_groups(ctx: Context) -> Section | None:
    groups = getattr(ctx.analysis, "node_groups", None)
    if groups is None or groups.empty:
        return None
    shown = groups.sort_values("bankable_savings_usd_per_month", ascending=False, kind="stable", na_position="last")
    rows = [Row([Cell(r["node_group"] or "n/a"), Cell(r["instance_type"]), num_cell(r["nodes"]), num_cell(r["nodes_now"]),
                 num_cell(r["nodes_after"]), money_cell(r["usd_per_month_now"]), money_cell(r["usd_per_month_after"]),
                 money_cell(r["bankable_savings_usd_per_month"], signed=True), Cell(r["best_instance_type"] or "—")])
            for r in shown.to_dict("records")]
    columns = [Column("node group"), Column("type"), Column("nodes seen", True), Column("needed now", True),
               Column("needed after", True), Column("cost/month now", True), Column("after", True),
               Column("bankable/month", True), Column("packs best")]
    bankable = ctx.totals.get("bankable_savings_usd_per_month")
    intro = (f"Packing the recommended requests (and each group's DaemonSets) onto the same instance types needs "
             f"{fmt.count(shown['nodes_now'].sum() - shown['nodes_after'].sum())} fewer node(s): {fmt.usd(bankable, 0)}/month "
             "you can bank once the autoscaler or Karpenter consolidates them. An estimate by first-fit decreasing packing, "
             "per zone where workloads are bound to one.")
    table = Table("node-groups-table", columns, rows, md_limit=ctx.top_n, more_what="node groups", more_file="node_groups.csv")
    return Section("node-groups", "Nodes now and after: bankable savings", nav="Nodes", intro=intro, tables=[table])


def _rollup_table(records: list[dict], keys: list[str], table_id: str, title: str) -> Table:
    # containers without a price are left out of the money: say how many, where there are any
    unpriced = any(r.get("containers_without_price") for r in records)
    rows = [Row([Cell(str(r.get(k, ""))) for k in keys] + [
        money_cell(r.get("usd_per_month_current")), money_cell(r.get("usd_per_month_recommended")),
        money_cell(r.get("savings_usd_per_month"), signed=True), num_cell(r.get("containers")), num_cell(r.get("changes")),
        num_cell(r.get("oom_risk")), num_cell(r.get("throttled"))]
        + ([num_cell(r.get("containers_without_price"))] if unpriced else [])) for r in records]
    columns = [Column(k) for k in keys] + [Column(c, True) for c in (
        "cost/month", "after changes", "savings/month", "containers", "changes", "OOM risk", "throttled")
        + (("without price",) if unpriced else ())]
    return Table(table_id, columns, rows, title=title, sort_column=len(keys) + 2)


def _fleet(ctx: Context) -> Section | None:
    """A fleet report: every cluster's figures, the teams across clusters, and the clusters left out."""
    fleet = ctx.summary.get("fleet")
    if not fleet:
        return None
    missing = fleet.get("missing") or []
    ends = {c: r["window_end"][:16].replace("T", " ") for r in fleet.get("clusters") or [] for c in r.get("clusters") or [r["name"]]}
    clusters = _rollup_table(ctx.summary.get("by_cluster", []), ["cluster"], "fleet-clusters", "Per cluster")
    clusters.columns.append(Column("window end (UTC)"))
    for row, record in zip(clusters.rows, ctx.summary.get("by_cluster", [])):
        row.cells.append(Cell(ends.get(str(record.get("cluster")), "")))
    teams = _rollup_table(ctx.summary.get("by_team", []), ["team"], "fleet-teams", "Per team, across the fleet")
    for table, what in ((clusters, "clusters"), (teams, "teams")):
        table.md_limit, table.more_what, table.more_file = ctx.top_n, what, "summary.json"
    read = len(fleet.get("clusters") or [])
    intro = (f"{read} cluster snapshot(s) from {fleet.get('root', '')} merged into this report"
             + (f"; {len(missing)} cluster(s) missing, left out of every figure." if missing else "; none missing."))
    lists = [ItemList("Missing or stale clusters", [(str(m.get("cluster")), str(m.get("reason", ""))) for m in missing],
                      len(missing))] if missing else []
    return Section("fleet", "Fleet: clusters and teams", nav="Fleet", intro=intro, tables=[clusters, teams], lists=lists)


def _details(ctx: Context) -> Section:
    recs = ctx.analysis.recommendations
    namespaces = ctx.summary.get("by_namespace", [])
    title, every_title = "By namespace", "Every container"
    if ctx.summary.get("fleet") and len(recs) > FLEET_DETAIL_ROWS:
        # a fleet's every container would make report.html slow to write and to open (100,000 rows); each cluster's
        # own report and recommendations.csv have them all
        title = f"By namespace: the {FLEET_DETAIL_ROWS:,} with the largest savings of {len(namespaces):,} (all in summary.json)"
        namespaces = namespaces[:FLEET_DETAIL_ROWS]
        every_title = (f"The {FLEET_DETAIL_ROWS:,} containers with the largest savings of {len(recs):,} (every container in "
                       "recommendations.csv and in each cluster's own report)")
        recs = selection.by_savings(recs).head(FLEET_DETAIL_ROWS)
    tables = [_rollup_table(namespaces, ["cluster", "namespace"], "ns-table", title),
              _rollup_table(ctx.summary.get("by_team", []), ["team"], "team-table", "By team")]
    if len(recs):
        every = recommendation_table(selection.by_savings(recs), "recs-table", several_clusters(recs), title=every_title,
                                     search=True, filters=[
                                         Filter("namespaces", "namespace", sorted(recs["namespace"].astype(str).unique())),
                                         Filter("teams", "team", sorted(recs["team"].fillna("").replace("", "(none)").astype(str).unique())),
                                         Filter("statuses", "status", sorted(recs["status"].map(fmt.words).unique()))])
        tables.append(every)
    return Section("details", "Details by namespace and team", nav="Details", md=False, tables=tables,
                   intro="Every container, largest saving first; open a row for the reason and the evidence.",
                   empty="" if len(recs) else "No containers.")


def caveats(summary: dict, extra: list[dict] | None = None) -> list[str]:
    """Plain-text caveat lines: prices, missing metrics, partial data, warnings, unpriced containers."""
    p = summary.get("pricing") or {}
    if p.get("source"):
        where = f" ({p['region']})" if p.get("region") else ""
        dated = f", dated {p['date']}" if p.get("date") else ", date unknown"
        lines = [f"Prices: {p['source']}{where}{dated}" + (f"; {p['notes']}" if p.get("notes") else "") + "."]
    else:
        lines = ["Prices: no price source recorded; costs may be missing."]
    if summary.get("missing_metrics"):
        lines.append("Missing metrics: " + ", ".join(str(m) for m in summary["missing_metrics"]) + ".")
    partial = summary.get("partial") or {}
    if partial:
        lines.append("Partial data: " + ("; ".join(f"{k}: {v}" for k, v in partial.items()) if isinstance(partial, dict)
                                         else str(partial)) + ".")
    t = summary.get("totals") or {}
    if t.get("containers_without_price"):
        lines.append(f"{t['containers_without_price']} container(s) have no price (their cost is left out of the totals).")
    no_rec = (summary.get("containers_by_status") or {}).get("no_recommendation", 0)
    if no_rec:
        lines.append(f"{no_rec} container(s) have no recommendation (see the reason column of recommendations.csv).")
    seen = set()
    for w in list(summary.get("warnings") or []) + list(extra or []):
        text = f"{w.get('message', '')}" + (f" (affects: {w['affects']})" if w.get("affects") else "")
        if text not in seen:
            seen.add(text)
            lines.append(f"[{w.get('code', 'note')}] {text}")
    if len(lines) > MAX_CAVEATS:
        lines = lines[:MAX_CAVEATS] + [f"…and {len(lines) - MAX_CAVEATS} more caveats in summary.json."]
    return lines


def _caveats(ctx: Context) -> Section:
    return Section("caveats", "Data caveats", nav="Caveats", bullets=caveats(ctx.summary, ctx.extra_caveats))


def _files(ctx: Context) -> Section:
    return Section("files", "Detail files", nav="Files", template="files",
                   intro="In the report folder (the workflow's artifact, or reports/WEEK/ of the CronJob):",
                   data={"files": DETAIL_FILES})


def shorten(text, limit: int = 140) -> str:
    """The first clause of a long explanation, for table cells (the CSVs keep the full text)."""
    text = "" if fmt.unknown(text) else str(text)
    head = text.split(" (", 1)[0]
    if len(head) > limit:
        head = head[: limit - 1].rstrip() + "…"
    return head + (" …" if head != text and not head.endswith("…") else "")


# The report's sections in order; a builder returns None to leave its section out.
SECTIONS: list[Callable[[Context], Section | None]] = [
    _totals, _fleet, _charts, _week_over_week, _top_savings, gpu_section, _risky, _backtest, _spot, _cross_az, _load_balancers, _idle,
    _node_groups, _details, _caveats, _files,
]


def top_changes(analysis, config) -> Table:
    """The report's top changes by savings ([report] top_n rows): all the terminal summary shows of the view."""
    recs = analysis.recommendations
    return recommendation_table(selection.top_savings(recs, config.report.top_n), "top", several_clusters(recs))


def build_view(summary: dict, analysis, config, *, snapshot=None, comparison=None, crossed: list[str] | None = None,
               title: str = "rightsize report", extra_caveats: list[dict] | None = None,
               charts: dict[str, bytes | None] | Callable[[], dict[str, bytes | None] | None] | None = None) -> ReportView:
    """The whole report as a view-model (see the module docstring). ``charts``: PNG bytes by chart name, or
    None to leave the charts section out (report.md never has it), or a function returning either: it is
    called once every other section is built (write_report's charts are drawn by a forked child meanwhile)."""
    later = charts if callable(charts) else None
    ctx = Context(summary, analysis, snapshot, config, comparison, list(crossed or []), list(extra_caveats or []),
                  None if later else charts)
    counts, counts_text = _counts(summary)
    top = top_changes(analysis, config)
    built = [None if later and builder is _charts else builder(ctx) for builder in SECTIONS]
    if later:
        ctx.charts = later()
        built[SECTIONS.index(_charts)] = _charts(ctx)
    sections = [s for s in built if s is not None]
    return ReportView(title=title, subtitle=header_line(summary), kpis=_kpis(ctx.totals), counts=counts,
                      counts_text=counts_text, crossed=ctx.crossed, sections=sections, top_changes=top)
