"""The one-screen summary a run prints at its end: totals, counts that add up, and a KRR-like table
of the top changes (rich; plain text when not a terminal). Printed from the report view-model, so
it shows the same rows and figures as report.md and report.html.
"""
from __future__ import annotations

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from .. import formatting as fmt
from ..escape import clean_text

# (label, totals key, week-over-week metric)
ROWS = (
    ("Node bill", "node_usd_per_month", None),
    ("Current cost of requests", "usd_per_month_current", "Current cost of requests (USD/month)"),
    ("Cost after recommendations", "usd_per_month_recommended", "Cost after recommendations (USD/month)"),
    ("Savings available", "savings_usd_per_month", "Savings available (USD/month)"),
    ("Idle node capacity", "idle_usd_per_month", "Idle node cost (USD/month)"),
    ("Spot savings (ready)", "spot_savings_usd_per_month", "Spot savings, ready workloads (USD/month)"),
    ("Cross-AZ transfer", "cross_az_usd_per_month", "Cross-AZ transfer (USD/month)"),
    ("Load balancers", "load_balancer_usd_per_month", "Load balancers (USD/month)"),
)


def totals_table(summary: dict, comparison=None) -> Table:
    t = summary.get("totals") or {}
    deltas = {r["metric"]: r["delta"] for r in comparison.totals.to_dict("records")} if comparison is not None else {}
    table = Table(title="rightsize summary", title_justify="left", show_edge=False, pad_edge=False)
    table.add_column("", style="bold")
    table.add_column("USD/month", justify="right")
    if deltas:
        table.add_column(f"vs {comparison.previous_label}", justify="right")
    for label, key, metric in ROWS:
        cells = [label, Text(fmt.usd(t.get(key)), style="bold green" if key == "savings_usd_per_month" else "")]
        if deltas:
            d = deltas.get(metric)
            cells.append("" if d is None or fmt.unknown(d) else fmt.signed_usd(d))
        table.add_row(*cells)
    return table


def top_table(changes, limit: int | None = None) -> Table | None:
    """The top changes (the view's ``top_changes``) like KRR's table: where, current → recommended requests, $ per
    month, flags."""
    rows = changes.rows[:limit] if limit else changes.rows
    if not rows:
        return None
    several = len({r.record.get("cluster") for r in rows}) > 1
    table = Table(title=f"Top {len(rows)} changes by savings", title_justify="left", show_edge=False, pad_edge=False)
    for name in (["cluster"] if several else []) + ["namespace", "workload", "container"]:
        table.add_column(name, overflow="fold")
    table.add_column("CPU request", justify="right", no_wrap=True)
    table.add_column("memory request", justify="right", no_wrap=True)
    table.add_column("$/month", justify="right", style="green", no_wrap=True)
    table.add_column("flags", overflow="fold")
    for row in rows:
        r = row.record
        where = [Text(clean_text(v)) for v in ([r["cluster"]] if several else []) + [r["namespace"], r["workload"], r["container"]]]
        table.add_row(*where, row.cells[2].text, row.cells[4].text, fmt.usd(row.cells[6].sort),
                      ", ".join(fmt.words(t) for t in row.cells[0].tags))
    return table


def summary_table(summary: dict, *, report_dir: str = "", crossed: list[str] | None = None, comparison=None, changes=None):
    """A rich renderable: totals (with week-over-week change when present), counts, the top changes, where the report is."""
    from .view import _counts

    _, counts_text = _counts(summary)
    fl = summary.get("containers_by_flag") or {}
    parts = [totals_table(summary, comparison),
             Text(counts_text, style="bold red" if fl.get("oom_risk") else "")]
    top = top_table(changes) if changes is not None else None
    if top is not None:
        parts.append(top)
    p = summary.get("pricing") or {}
    if p.get("source"):
        parts.append(Text(f"Prices: {p['source']} {p.get('date', '')}".rstrip(), style="dim"))
    n_warn = len(summary.get("warnings") or [])
    if n_warn:
        parts.append(Text(f"{n_warn} data caveat(s): see report.md.", style="yellow"))
    for message in crossed or []:
        parts.append(Text(f"threshold crossed: {message}", style="bold red"))
    if report_dir:
        parts.append(Text(f"Report: {report_dir}/report.html (summary: report.md)"))
    return Group(*parts)


def print_summary(analysis_or_summary, snapshot=None, *, result=None, report_dir: str = "",
                  crossed: list[str] | None = None, comparison=None, console: Console | None = None, view=None,
                  config=None) -> None:
    """Print the one-screen summary (stdout unless ``console`` says otherwise).

    ``analysis_or_summary``: an Analysis (its ``summary``, or summarize() of it with ``snapshot``) or a
    summary.json dict (totals and counts only, unless ``view`` is given). ``result``: the ReportResult
    of write_report, which adds the report folder, the crossed thresholds, the week-over-week column
    and the view-model the top-changes table comes from. ``config``: the run's (its [report] top_n), else the defaults.
    """
    from ..config import Config

    config = config or Config()
    if isinstance(analysis_or_summary, dict):
        summary = analysis_or_summary
    else:
        summary = analysis_or_summary.summary
        if not summary:
            from ..analysis.summary import summarize

            summary = summarize(analysis_or_summary, snapshot, config)
    if result is not None:
        summary = result.summary
        report_dir = report_dir or str(result.out_dir)
        crossed = crossed if crossed is not None else result.crossed
        comparison = comparison if comparison is not None else result.comparison
        view = view or result.view
    changes = view.top_changes if view is not None else None
    if changes is None and not isinstance(analysis_or_summary, dict):
        from .view import top_changes

        # the top changes are all the summary shows of a view: not the whole report's (seconds at 20,000 containers)
        changes = top_changes(analysis_or_summary, config)
    renderable = summary_table(summary, report_dir=report_dir, crossed=crossed, comparison=comparison, changes=changes)
    (console or log_console(renderable)).print(renderable)


def log_console(renderable, minimum: int = 80, maximum: int = 400) -> Console:
    """stdout's console. Not a terminal (a CI log, a pipe): as wide as the renderable needs (at least
    ``minimum`` columns), so a row stays on one line and no name is folded into 8-character pieces
    ("namespac/e") at rich's default of 80 columns; a log viewer scrolls or wraps whole lines."""
    from rich.measure import Measurement

    console = Console()
    if console.is_terminal:
        return console
    needed = Measurement.get(console, console.options.update(width=maximum), renderable).maximum
    return Console(width=max(minimum, min(needed, maximum)))


def backtest_table(table, days: int) -> Table:
    """`rightsize backtest`: per namespace and policy ("today" first), the replayed days' figures."""
    from ..analysis.backtest import OVER_REQUEST_SHARE, by_namespace, rollup

    rows = by_namespace(table)
    fleet = rollup(table, []).assign(cluster="", namespace="all")
    out = Table(title=f"Backtest: the last {days} days replayed against a recommendation made without them",
                title_justify="left", show_edge=False, pad_edge=False)
    for name in ("namespace", "requests"):
        out.add_column(name, overflow="fold")
    for name in ("containers", "CPU slack", "memory slack", "predicted OOMs", f"over request > {OVER_REQUEST_SHARE:.0%}"):
        out.add_column(name, justify="right", no_wrap=True)
    records = list(rows.to_dict("records"))
    for i, r in enumerate(records + list(fleet.to_dict("records"))):
        where = f"{r['cluster']}/{r['namespace']}" if r["cluster"] else "whole snapshot"
        out.add_row(Text(clean_text(where)), r["policy"], fmt.count(r["containers"]), fmt.percent(r["cpu_slack"]), fmt.percent(r["memory_slack"]),
                    fmt.count(r["predicted_ooms"]), fmt.count(r["over_request"]), end_section=i == len(records) - 1)
    return out


def backtest_text(table, days: int, width: int = 120) -> str:
    """The backtest table as text (rich renders it; colours only on a terminal)."""
    import io

    console = Console(width=width, record=True, file=io.StringIO(), force_terminal=False)
    console.print(backtest_table(table, days))
    return console.export_text()


def frontier_text(table) -> str:
    """The frontier as text: one block per policy, resource and pattern, the chosen margin marked."""
    from ..analysis.margins import choose

    keys = ["policy", "resource", "pattern"]
    table = table.drop(columns="chosen", errors="ignore")
    chosen = choose(table).set_index(keys)["chosen"]
    lines = []
    for key, part in table.groupby(keys, sort=True):
        pick = chosen.get(key)
        share = part["share"].iloc[0]
        allowed = ("the margin is on the limit, not the request" if share == float("inf")
                   else f"allowed over request {fmt.percent(share)}")
        lines.append(clean_text(f"{key[0]} / {key[1]} / {key[2]} ({int(part['containers'].max())} containers, {allowed}): chosen "
                                + ("none passes" if fmt.unknown(pick) else f"{pick * 100:g}%")))
        lines.append("  margin    slack  predicted OOMs  throttled  steps over request")
        for r in part.itertuples(index=False):
            mark = "  <-" if r.margin == pick else ""
            lines.append(f"  {f'{r.margin * 100:g}%':>6}  {fmt.percent(r.slack):>6}  {r.predicted_ooms:>14}  {r.throttled:>9}  "
                         f"{fmt.percent(r.over_request, 1):>18}{mark}")
    return "\n".join(lines)
