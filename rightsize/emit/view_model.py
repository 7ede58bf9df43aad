"""The report view-model's shape: formatted cells, tables, sections and the whole ReportView, the context
every section builder reads, and the rows of a recommendation table. view.py builds the sections."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import pandas as pd

from .. import formatting as fmt
from ..analysis.summary import change_savings

MAX_LIST_ROWS = 50  # OOM / throttled and week-over-week lists in report.md: every row matters, but a PR comment must stay readable
PAGE_ROWS = 100  # report.html: a table longer than this is drawn by the browser from embedded data, a page at a time


@dataclass
class Cell:
    """One table cell: ``text`` as shown, ``sort`` the value it sorts by (HTML), ``code`` for a name
    (backticks in Markdown), ``tags`` for flag badges, ``cls`` extra CSS classes (e.g. 'pos'/'neg')."""

    text: str
    sort: Any = None
    code: bool = False
    tags: list[str] = field(default_factory=list)
    cls: str = ""


@dataclass
class Column:
    label: str
    num: bool = False  # right-aligned, sorts numerically
    cls: str = ""  # CSS class of the column's cells (e.g. 'cpu-limit', which the browser test reads)
    md: bool = True  # shown in report.md (the HTML shows every column)


@dataclass
class Row:
    cells: list[Cell]
    detail: list[tuple[str, str]] = field(default_factory=list)  # (label, text): the expandable part in HTML
    attrs: dict[str, str] = field(default_factory=dict)  # data-* attributes the HTML filters match on
    record: dict = field(default_factory=dict)  # the source row, for renderers that lay it out their own way


@dataclass
class Filter:
    label: str  # 'namespaces'
    attr: str  # row attribute it matches ('namespace')
    options: list[str]


@dataclass
class Table:
    id: str
    columns: list[Column]
    rows: list[Row]
    title: str = ""
    md_limit: int | None = None  # report.md shows at most this many rows (None: all)
    total: int | None = None  # rows in the whole list for the "...and N more" line (default: len(rows))
    more_what: str = "rows"
    more_file: str = ""
    sort_column: int | None = None  # the column the rows are already sorted by, descending
    filters: list[Filter] = field(default_factory=list)
    search: bool = False  # a free-text filter box in HTML
    md: bool = True
    expandable: bool = False

    @property
    def paged(self) -> bool:
        """report.html draws this table in the browser, a page of PAGE_ROWS rows at a time, from its rows
        embedded as compressed data: 20,000 rows of HTML would make the file tens of MiB and slow to open."""
        return len(self.rows) > PAGE_ROWS

    @property
    def md_index(self) -> list[int]:
        """Indexes of the columns report.md shows."""
        return [i for i, c in enumerate(self.columns) if c.md]

    @property
    def md_rows(self) -> list[Row]:
        return self.rows if self.md_limit is None else self.rows[: self.md_limit]

    @property
    def md_more(self) -> int:
        total = len(self.rows) if self.total is None else self.total
        return max(total - len(self.md_rows), 0)


@dataclass
class ItemList:
    """A titled bullet list ('New OOM risks: 1'); ``items`` are (name, note) pairs."""

    title: str
    items: list[tuple[str, str]]
    total: int
    md_limit: int = MAX_LIST_ROWS
    more_file: str = "recommendations.csv"  # where report.md says the rest of a capped list is


@dataclass
class Section:
    anchor: str
    title: str
    nav: str = ""  # short name in the HTML navigation bar (default: title)
    intro: str = ""  # what to conclude, in one or two sentences
    empty: str = ""  # shown instead of the tables when there is nothing to list
    tables: list[Table] = field(default_factory=list)
    lists: list[ItemList] = field(default_factory=list)
    bullets: list[str] = field(default_factory=list)
    template: str = ""  # a dedicated template block; '' = the generic one
    md: bool = True
    html: bool = True
    data: dict = field(default_factory=dict)  # whatever a dedicated block needs


@dataclass
class Kpi:
    key: str
    label: str
    value: float | None
    text: str
    note: str = ""
    main: bool = False


@dataclass
class ReportView:
    title: str
    subtitle: str
    kpis: list[Kpi]
    counts: dict[str, int]
    counts_text: str
    crossed: list[str]
    sections: list[Section]
    top_changes: Table  # the terminal's top-N table


@dataclass
class Context:
    """Inputs of every section builder."""

    summary: dict
    analysis: Any
    snapshot: Any
    config: Any
    comparison: Any = None
    crossed: list[str] = field(default_factory=list)
    extra_caveats: list[dict] = field(default_factory=list)
    charts: dict[str, bytes | None] | None = None

    @property
    def totals(self) -> dict:
        return self.summary.get("totals") or {}

    @property
    def top_n(self) -> int:
        return self.config.report.top_n


def money_cell(v, signed: bool = False) -> Cell:
    cls = ""
    if signed and not fmt.unknown(v):
        cls = "pos" if float(v) > 0 else ("neg" if float(v) < 0 else "")
    text = fmt.signed_usd(v) if signed else fmt.usd(v)
    return Cell(text, None if fmt.unknown(v) else float(v), cls=cls)


def num_cell(v, formatter: Callable = fmt.count) -> Cell:
    return Cell(formatter(v), None if fmt.unknown(v) else float(v))


def change_cell(current, recommended, formatter) -> Cell:
    return Cell(fmt.change(current, recommended, formatter), None if fmt.unknown(recommended) else float(recommended))


def ref_text(r: dict, with_cluster: bool, with_container: bool = True) -> str:
    """'namespace/workload/container' ('cluster/...' when several clusters are shown)."""
    parts = [r["namespace"], r["workload"]]
    if with_container and "container" in r:
        parts.append(r["container"])
    text = "/".join(str(p) for p in parts)
    return f"{r['cluster']}/{text}" if with_cluster else text


def several_clusters(*frames: pd.DataFrame) -> bool:
    names = set()
    for df in frames:
        if len(df) and "cluster" in df.columns:
            names |= set(df["cluster"].astype(str))
    return len(names) > 1


REC_COLUMNS = [
    Column("container"), Column("status", md=False), Column("CPU request", num=True), Column("CPU limit", cls="cpu-limit"),
    Column("memory request", num=True), Column("memory limit", num=True), Column("savings/month", num=True),
]


def _detail(r: dict) -> list[tuple[str, str]]:
    basis = f"{r.get('cpu_basis') or '?'} {fmt.cpu(r.get('cpu_basis_cores'), fmt.UNKNOWN)} CPU, " \
            f"{r.get('memory_basis') or '?'} {fmt.memory(r.get('memory_basis_bytes'), fmt.UNKNOWN)} memory " \
            f"(max {fmt.memory(r.get('memory_max_bytes'), fmt.UNKNOWN)})"
    hours = fmt.number(r.get("hours_covered"))
    out = [("workload", f"{r['cluster']}: {r['namespace']}/{r['kind']}/{r['workload']}"),
           ("team · policy", f"{r.get('team') or '(none)'} · {r.get('policy') or '?'}"),
           ("why", str(r.get("reason") or "—")),
           ("usage basis", basis),
           ("evidence", f"{fmt.count(r.get('replicas'))} replicas, "
                        f"{'n/a' if math.isnan(hours) else f'{hours / 24:.1f} d'} of history, "
                        f"{fmt.count(r.get('oom_kills'))} OOM kills, throttled {fmt.percent(r.get('cpu_throttled_ratio'))}, "
                        f"confidence {r.get('confidence') or 'n/a'}"),
           ("cost/month", f"{fmt.usd(r.get('usd_per_month_current'))} now, "
                          f"{fmt.usd(r.get('usd_per_month_recommended'))} after")]
    if r.get("cpu_pattern") or r.get("memory_pattern"):
        growth = fmt.number(r.get("memory_growth_bytes_per_day"))
        grows = "" if math.isnan(growth) else (f" ({fmt.memory(growth)}/day of pod age, projected peak "
                                                f"{fmt.memory(r.get('memory_projected_bytes'), fmt.UNKNOWN)})")
        out.insert(4, ("usage pattern", f"CPU {r.get('cpu_pattern') or 'n/a'}, memory {r.get('memory_pattern') or 'n/a'}{grows}"))
    if r.get("raised_by_backtest"):
        out.insert(5, ("self-check", f"raised the {r['raised_by_backtest']}: the window's last days would have broken it"))
    return out


def recommendation_row(r: dict, saving: float, with_cluster: bool) -> Row:
    flags = fmt.flag_words(r.get("flags"))
    return Row(
        cells=[Cell(ref_text(r, with_cluster), code=True, tags=flags),
               Cell(fmt.words(r["status"])),
               change_cell(r["cpu_request_cores_current"], r["cpu_request_cores_recommended"], fmt.cpu),
               Cell(fmt.cpu_limit_change(r["cpu_limit_action"], r["cpu_limit_cores_current"], r["cpu_limit_cores_recommended"]),
                    fmt.number(r["cpu_limit_cores_recommended"]) if r["cpu_limit_action"] == "set" else None),
               change_cell(r["memory_request_bytes_current"], r["memory_request_bytes_recommended"], fmt.memory),
               Cell(fmt.memory_limit_change(r["memory_limit_action"], r["memory_limit_bytes_current"],
                                            r["memory_limit_bytes_recommended"]),
                    None if fmt.unknown(r["memory_limit_bytes_recommended"]) else float(r["memory_limit_bytes_recommended"])),
               money_cell(saving, signed=True)],
        detail=_detail(r),
        attrs={"namespace": str(r["namespace"]), "team": str(r.get("team") or "(none)"), "status": fmt.words(r["status"])},
        record=r,
    )


def recommendation_table(recs: pd.DataFrame, table_id: str, with_cluster: bool, **kw) -> Table:
    """Rows of a recommendation table, largest saving first (recs is already in that order when ``_savings`` is set)."""
    savings = recs["_savings"] if "_savings" in recs.columns else change_savings(recs)
    rows = [recommendation_row(r, s, with_cluster) for r, s in zip(recs.to_dict("records"), savings.tolist())]
    return Table(table_id, REC_COLUMNS, rows, sort_column=6, expandable=True, **kw)


def header_line(summary: dict) -> str:
    w = summary.get("window") or {}
    names = list(summary.get("clusters") or [])
    clusters = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "") or "unknown cluster"
    days = f"{w['hours'] / 24:.0f} days" if w.get("hours") else "unknown window"
    span = f" ({str(w.get('start', ''))[:10]} {fmt.ARROW} {str(w.get('end', ''))[:10]})" if w.get("start") else ""
    return f"Clusters: {clusters} · usage window: {days}{span}{coverage_text(w)}"


def coverage_text(window: dict) -> str:
    """' · data: c1 7.0 days (start -> end)' for the clusters whose data covers less of the window, or
    ' · data: the whole window' when the coverage was measured and is complete ('' when not measured)."""
    cov = window.get("coverage") or []
    if not cov:
        return ""
    short = [c for c in cov if c.get("short")]
    if not short:
        return " · data: the whole window"
    parts = [f"{c['cluster']} {c['hours'] / 24:.1f} days ({str(c.get('start'))[:10]} {fmt.ARROW} {str(c.get('end'))[:10]})"
             for c in short[:10]]
    return " · data: " + ", ".join(parts) + (f" and {len(short) - 10} more" if len(short) > 10 else "")
