"""The one-screen summary a run prints at its end (rich table; plain text when not a terminal)."""
from __future__ import annotations

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from .markdown import usd


def summary_table(summary: dict, *, report_dir: str = "", crossed: list[str] | None = None, comparison=None):
    """A rich renderable: totals (with week-over-week change when present), counts, where the report is."""
    t = summary.get("totals") or {}
    deltas = {}
    if comparison is not None:
        deltas = {r["metric"]: r["delta"] for r in comparison.totals.to_dict("records")}
    table = Table(title="rightsize summary", title_justify="left", show_edge=False, pad_edge=False)
    table.add_column("", style="bold")
    table.add_column("USD/month", justify="right")
    if deltas:
        table.add_column(f"vs {comparison.previous_label}", justify="right")
    rows = (
        ("Current cost of requests", "usd_per_month_current", "Current cost of requests (USD/month)"),
        ("Cost after recommendations", "usd_per_month_recommended", "Cost after recommendations (USD/month)"),
        ("Savings available", "savings_usd_per_month", "Savings available (USD/month)"),
        ("Idle node capacity", "idle_usd_per_month", "Idle node cost (USD/month)"),
        ("Spot savings (ready)", "spot_savings_usd_per_month", "Spot savings, ready workloads (USD/month)"),
        ("Cross-AZ transfer", "cross_az_usd_per_month", "Cross-AZ transfer (USD/month)"),
        ("Load balancers", "load_balancer_usd_per_month", "Load balancers (USD/month)"),
    )
    for label, key, metric in rows:
        style = "bold green" if key == "savings_usd_per_month" else ""
        cells = [label, Text(usd(t.get(key)), style=style)]
        if deltas:
            d = deltas.get(metric)
            cells.append("" if d is None or d != d else ("+" if d > 0 else "") + usd(d))
        table.add_row(*cells)
    st, fl = summary.get("containers_by_status") or {}, summary.get("containers_by_flag") or {}
    counts = Text(
        f"{t.get('containers', 0)} containers: {st.get('change', 0)} to change, {st.get('keep', 0)} fine, "
        f"{st.get('no_recommendation', 0)} without a recommendation; "
    )
    counts.append(f"{fl.get('oom_risk', 0)} at OOM risk", style="bold red" if fl.get("oom_risk") else "")
    counts.append(f", {fl.get('throttled', 0)} throttled.")
    parts = [table, counts]
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
                  crossed: list[str] | None = None, comparison=None, console: Console | None = None) -> None:
    """Print the one-screen summary (stdout unless ``console`` says otherwise).

    ``analysis_or_summary``: an Analysis (its ``summary``, or summarize() of it with ``snapshot``) or a
    summary.json dict. ``result``: the ReportResult of write_report, which adds the report folder, the
    crossed thresholds and the week-over-week column.
    """
    if isinstance(analysis_or_summary, dict):
        summary = analysis_or_summary
    else:
        summary = analysis_or_summary.summary
        if not summary:
            from ..analysis.summary import summarize
            from ..config import Config

            summary = summarize(analysis_or_summary, snapshot, Config())
    if result is not None:
        summary = result.summary
        report_dir = report_dir or str(result.out_dir)
        crossed = crossed if crossed is not None else result.crossed
        comparison = comparison if comparison is not None else result.comparison
    console = console or Console()
    console.print(summary_table(summary, report_dir=report_dir, crossed=crossed, comparison=comparison))
