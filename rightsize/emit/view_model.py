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
    record: dict = field(default_factory=dict)  # the row's key (cluster ... container), for renderers that lay it out their own way


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


def per_distinct(fn: Callable[[dict], Any], frame: pd.DataFrame, columns) -> list:
    """``fn(row)`` for every row of ``frame``, ``row`` a dict of ``columns`` (None for one the frame lacks), computed
    once per distinct combination of their values: a report's long tables repeat few requests, limits and
    statuses, and formatting each of 20,000 rows one by one takes seconds. A NaN never equals another NaN, so a
    row holding one is computed on its own (same text, only slower)."""
    columns = list(columns)
    lists = [frame[c].tolist() if c in frame.columns else [None] * len(frame) for c in columns]
    memo: dict = {}
    out = []
    for values in zip(*lists):
        text = memo.get(values, memo)
        if text is memo:
            text = memo[values] = fn(dict(zip(columns, values)))
        out.append(text)
    return out


def _basis_text(r: dict) -> str:
    return (f"{r.get('cpu_basis') or '?'} {fmt.cpu(r.get('cpu_basis_cores'), fmt.UNKNOWN)} CPU, "
            f"{r.get('memory_basis') or '?'} {fmt.memory(r.get('memory_basis_bytes'), fmt.UNKNOWN)} memory "
            f"(max {fmt.memory(r.get('memory_max_bytes'), fmt.UNKNOWN)})")


def _evidence_text(r: dict) -> str:
    hours = fmt.number(r.get("hours_covered"))
    return (f"{fmt.count(r.get('replicas'))} replicas, "
            f"{'n/a' if math.isnan(hours) else f'{hours / 24:.1f} d'} of history, "
            f"{fmt.count(r.get('oom_kills'))} OOM kills, throttled {fmt.percent(r.get('cpu_throttled_ratio'))}, "
            f"confidence {r.get('confidence') or 'n/a'}")


def _pattern_text(r: dict) -> str | None:
    """The usage pattern line, None when neither resource has one."""
    if not (r.get("cpu_pattern") or r.get("memory_pattern")):
        return None
    growth = fmt.number(r.get("memory_growth_bytes_per_day"))
    grows = "" if math.isnan(growth) else (f" ({fmt.memory(growth)}/day of pod age, projected peak "
                                            f"{fmt.memory(r.get('memory_projected_bytes'), fmt.UNKNOWN)})")
    return f"CPU {r.get('cpu_pattern') or 'n/a'}, memory {r.get('memory_pattern') or 'n/a'}{grows}"


# (label, the columns it reads, its text of a row dict: None leaves the line out), in the order shown
_DETAIL = (
    ("team · policy", ("team", "policy"), lambda r: f"{r.get('team') or '(none)'} · {r.get('policy') or '?'}"),
    ("why", ("reason",), lambda r: str(r.get("reason") or "—")),
    ("usage basis", ("cpu_basis", "cpu_basis_cores", "memory_basis", "memory_basis_bytes", "memory_max_bytes"), _basis_text),
    ("usage pattern", ("cpu_pattern", "memory_pattern", "memory_growth_bytes_per_day", "memory_projected_bytes"), _pattern_text),
    ("evidence", ("replicas", "hours_covered", "oom_kills", "cpu_throttled_ratio", "confidence"), _evidence_text),
    ("cost/month", ("usd_per_month_current", "usd_per_month_recommended"),
     lambda r: f"{fmt.usd(r.get('usd_per_month_current'))} now, {fmt.usd(r.get('usd_per_month_recommended'))} after"),
)
SELF_CHECK_AT = 5  # the self-check line's place in the detail, whether or not a usage pattern line is there


def _self_check_text(r: dict) -> str | None:
    raised = r.get("raised_by_backtest")
    return f"raised the {raised}: the window's last days would have broken it" if raised else None


def _details(recs: pd.DataFrame) -> list[list[tuple[str, str]]]:
    """The expandable part of every row: the workload, then the _DETAIL lines that apply, the self-check's at SELF_CHECK_AT."""
    workload = (recs["cluster"].astype(str) + ": " + recs["namespace"].astype(str) + "/" + recs["kind"].astype(str) + "/"
                + recs["workload"].astype(str)).tolist()
    lines = [[(label, text) for text in per_distinct(fn, recs, columns)] for label, columns, fn in _DETAIL]
    checks = per_distinct(_self_check_text, recs, ("raised_by_backtest",))
    out = []
    for w, check, *pairs in zip(workload, checks, *lines):
        detail = [("workload", w)] + [pair for pair in pairs if pair[1] is not None]
        if check is not None:
            detail.insert(SELF_CHECK_AT, ("self-check", check))
        out.append(detail)
    return out


def _value(v) -> float | None:
    return None if fmt.unknown(v) else float(v)


# the cells of a recommendation row after the first, each (columns it reads, its Cell of a row dict)
_REC_CELLS = (
    (("status",), lambda r: Cell(fmt.words(r["status"]))),
    (("cpu_request_cores_current", "cpu_request_cores_recommended"),
     lambda r: change_cell(r["cpu_request_cores_current"], r["cpu_request_cores_recommended"], fmt.cpu)),
    (("cpu_limit_action", "cpu_limit_cores_current", "cpu_limit_cores_recommended"),
     lambda r: Cell(fmt.cpu_limit_change(r["cpu_limit_action"], r["cpu_limit_cores_current"], r["cpu_limit_cores_recommended"]),
                    fmt.number(r["cpu_limit_cores_recommended"]) if r["cpu_limit_action"] == "set" else None)),
    (("memory_request_bytes_current", "memory_request_bytes_recommended"),
     lambda r: change_cell(r["memory_request_bytes_current"], r["memory_request_bytes_recommended"], fmt.memory)),
    (("memory_limit_action", "memory_limit_bytes_current", "memory_limit_bytes_recommended"),
     lambda r: Cell(fmt.memory_limit_change(r["memory_limit_action"], r["memory_limit_bytes_current"],
                                            r["memory_limit_bytes_recommended"]), _value(r["memory_limit_bytes_recommended"]))),
    (("_saving",), lambda r: money_cell(r["_saving"], signed=True)),
)


def _copy(cell: Cell) -> Cell:
    """A cell of its own for a row (a cell shared by the rows of one distinct value could be changed through one)."""
    return Cell(cell.text, cell.sort, cell.code, list(cell.tags), cell.cls)


def recommendation_table(recs: pd.DataFrame, table_id: str, with_cluster: bool, **kw) -> Table:
    """Rows of a recommendation table, largest saving first (recs is already in that order when ``_savings`` is set);
    the cells built column by column, once per distinct value (per_distinct)."""
    savings = recs["_savings"] if "_savings" in recs.columns else change_savings(recs)
    frame = recs.assign(_saving=savings.to_numpy())
    names = frame["namespace"].astype(str) + "/" + frame["workload"].astype(str) + "/" + frame["container"].astype(str)
    if with_cluster:
        names = frame["cluster"].astype(str) + "/" + names
    flags = per_distinct(lambda r: fmt.flag_words(r["flags"]), frame, ("flags",))
    cells = [per_distinct(fn, frame, columns) for columns, fn in _REC_CELLS]
    teams = per_distinct(lambda r: str(r.get("team") or "(none)"), frame, ("team",))
    keys = [frame[c].tolist() for c in ("cluster", "namespace", "kind", "workload", "container")]
    rows = [Row(cells=[Cell(name, code=True, tags=list(tags))] + [_copy(c) for c in row_cells], detail=detail,
                attrs={"namespace": str(key[1]), "team": team, "status": row_cells[0].text},
                record=dict(zip(("cluster", "namespace", "kind", "workload", "container"), key)))
            for name, tags, team, detail, key, *row_cells in zip(names.tolist(), flags, teams, _details(frame), zip(*keys), *cells)]
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
