"""report.html: one self-contained file (inline CSS, a small inline script, charts as PNG data URIs).

Nothing is fetched when the file is opened: no external scripts, stylesheets, fonts or images, so
it can be mailed, attached to a CI run, or opened from a PVC. Tables with class ``sortable`` sort on
a header click; a table's filter box and namespace/team selects hide rows that do not match.
"""
from __future__ import annotations

import base64
import html as _html
import math

import pandas as pd

from . import charts as _charts
from .markdown import (DETAIL_FILES, TOTAL_ROWS, _nan, caveats, container_ref, cores, header_lines, nbytes, percent,
                       risky, signed_usd, spot_candidates, top_cross_az, top_savings, usd)
from ..analysis.summary import change_savings

CSS = """
:root{--fg:#1d2433;--muted:#5b6478;--line:#e3e6ec;--bg:#f6f7f9;--blue:#2f7ed8;--green:#2e8b57;--red:#c9302c;--amber:#b7791f}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 -apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:var(--bg)}
header{background:#1d2433;color:#fff;padding:18px 28px}
header h1{margin:0 0 4px;font-size:22px}
header p{margin:0;color:#c8cdd8}
nav{position:sticky;top:0;z-index:2;background:#fff;border-bottom:1px solid var(--line);padding:8px 28px;white-space:nowrap;overflow-x:auto}
nav a{color:var(--blue);text-decoration:none;margin-right:16px;font-size:13px}
main{max-width:1280px;margin:0 auto;padding:8px 28px 40px}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:14px 18px;margin:16px 0}
h2{font-size:18px;margin:0 0 10px}
h3{font-size:15px;margin:14px 0 6px}
.kpis{display:grid;grid-template-columns:repeat(auto-fill,minmax(190px,1fr));gap:10px}
.kpi{border:1px solid var(--line);border-radius:8px;padding:10px 12px;background:#fbfcfd}
.kpi .v{font-size:22px;font-weight:600}
.kpi .l{color:var(--muted);font-size:12px}
.kpi.main{border-color:var(--green);background:#f1f9f4}
.kpi.main .v{color:var(--green)}
.counts{color:var(--muted);margin:10px 0 0}
.alert{border-left:4px solid var(--red);background:#fdf3f2;padding:8px 12px;margin:10px 0}
.charts{display:grid;grid-auto-flow:dense;grid-template-columns:repeat(auto-fit,minmax(560px,1fr));gap:14px}
figure.wide{grid-column:1/-1}
figure{margin:0;border:1px solid var(--line);border-radius:6px;padding:8px;background:#fff}
figure img{max-width:100%;height:auto;display:block;margin:0 auto}
figcaption{color:var(--muted);font-size:12px;margin-top:4px}
.wrap{overflow-x:auto;max-height:560px;overflow-y:auto;border:1px solid var(--line);border-radius:6px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{padding:5px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:#f0f2f5;position:sticky;top:0;font-weight:600;white-space:nowrap}
table.sortable th{cursor:pointer;user-select:none}
table.sortable th:after{content:" \\2195";color:#a0a7b4;font-size:11px}
table.sortable th.asc:after{content:" \\2191";color:var(--fg)}
table.sortable th.desc:after{content:" \\2193";color:var(--fg)}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tbody tr:nth-child(even){background:#fafbfc}
tbody tr:hover{background:#eef4fc}
.pos{color:var(--green)}.neg{color:var(--red)}
.tag{display:inline-block;padding:0 6px;border-radius:9px;font-size:11px;background:#eef0f4;margin:1px 2px 1px 0;white-space:nowrap}
.tag.oom_risk,.tag.not_suitable{background:#fde2e1;color:#9b1c1c}.tag.throttled{background:#fdf0d5;color:#8a5a00}
.tag.ready{background:#dcf3e5;color:#1e6b3f}.tag.ready_with_changes{background:#eef7d9;color:#4d6b12}
.filters{display:flex;gap:8px;align-items:center;margin:6px 0;flex-wrap:wrap}
.filters input,.filters select{font:inherit;padding:4px 8px;border:1px solid #c8cdd8;border-radius:5px}
.filters input{min-width:260px}
.muted{color:var(--muted)}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
ul{margin:6px 0;padding-left:20px}
"""

SCRIPT = """
(function(){
  function val(td){var v=td.getAttribute('data-v');if(v!==null&&v!==''){var f=parseFloat(v);if(!isNaN(f))return f;}
    return td.textContent.trim().toLowerCase();}
  document.querySelectorAll('table.sortable').forEach(function(t){
    t.querySelectorAll('th').forEach(function(th,i){th.addEventListener('click',function(){
      var asc=!th.classList.contains('asc');t.querySelectorAll('th').forEach(function(h){h.classList.remove('asc','desc');});
      th.classList.add(asc?'asc':'desc');var body=t.tBodies[0];var rows=Array.prototype.slice.call(body.rows);
      rows.sort(function(a,b){var x=val(a.cells[i]),y=val(b.cells[i]);
        if(typeof x!==typeof y){x=String(x);y=String(y);}return (x<y?-1:x>y?1:0)*(asc?1:-1);});
      rows.forEach(function(r){body.appendChild(r);});});});});
  document.querySelectorAll('.filters').forEach(function(box){
    var t=document.getElementById(box.getAttribute('data-table'));if(!t)return;
    var count=box.querySelector('.count');
    function apply(){var q=(box.querySelector('input')||{value:''}).value.toLowerCase();var shown=0;
      var sels=box.querySelectorAll('select');
      Array.prototype.forEach.call(t.tBodies[0].rows,function(r){var ok=!q||r.textContent.toLowerCase().indexOf(q)>=0;
        sels.forEach(function(s){var c=parseInt(s.getAttribute('data-col'),10);
          if(s.value&&r.cells[c].textContent.trim()!==s.value)ok=false;});
        r.style.display=ok?'':'none';if(ok)shown++;});
      if(count)count.textContent=shown+' of '+t.tBodies[0].rows.length+' rows';}
    box.querySelectorAll('input,select').forEach(function(e){e.addEventListener('input',apply);e.addEventListener('change',apply);});
    apply();});
})();
"""


def esc(v) -> str:
    return _html.escape("" if _nan(v) else str(v), quote=True)


class Cell:
    """One table cell: what is shown, the value it sorts by, whether it is a number, extra classes."""

    __slots__ = ("text", "sort", "num", "cls", "raw_html")

    def __init__(self, text, sort=None, num=False, cls="", raw_html=False):
        self.text, self.sort, self.num, self.cls, self.raw_html = text, sort, num, cls, raw_html


def money_cell(v, signed=False) -> Cell:
    cls = ""
    if signed and not _nan(v):
        cls = "pos" if v > 0 else ("neg" if v < 0 else "")
    return Cell(signed_usd(v) if signed else usd(v), None if _nan(v) else float(v), True, cls)


def num_cell(v, fmt) -> Cell:
    return Cell(fmt(v), None if _nan(v) else float(v), True)


def tags(text: str) -> Cell:
    parts = [p.strip() for p in str(text or "").split(",") if p.strip()]
    return Cell("".join(f'<span class="tag {esc(p)}">{esc(p.replace("_", " "))}</span>' for p in parts),
                ",".join(parts), raw_html=True)


def html_table(headers: list[str], rows: list[list], table_id: str = "", sortable: bool = True) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        tds = []
        for c in row:
            if not isinstance(c, Cell):
                c = Cell(c)
            classes = " ".join(x for x in ("n" if c.num else "", c.cls) if x)
            attrs = (f' class="{classes}"' if classes else "") + (f' data-v="{esc(c.sort)}"' if c.sort is not None else "")
            tds.append(f"<td{attrs}>{c.text if c.raw_html else esc(c.text)}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    ident = f' id="{esc(table_id)}"' if table_id else ""
    cls = ' class="sortable"' if sortable else ""
    return f'<div class="wrap"><table{ident}{cls}><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def filters(table_id: str, selects: list[tuple[str, int, list[str]]] = ()) -> str:
    """A filter box (and optional exact-match selects: label, column index, options) for table ``table_id``."""
    parts = [f'<div class="filters" data-table="{esc(table_id)}"><input type="search" placeholder="Filter rows…" '
             f'aria-label="Filter rows">']
    for label, col, options in selects:
        opts = "".join(f'<option value="{esc(o)}">{esc(o)}</option>' for o in options)
        parts.append(f'<select data-col="{col}" aria-label="{esc(label)}"><option value="">all {esc(label)}</option>{opts}</select>')
    parts.append('<span class="count muted"></span></div>')
    return "".join(parts)


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{esc(title)}</h2>{body}</section>'


def _empty(text: str) -> str:
    return f'<p class="muted">{esc(text)}</p>'


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _req(cur, rec, fmt) -> Cell:
    return Cell(f"{fmt(cur)} → {fmt(rec, 'n/a')}", None if _nan(rec) else float(rec), True)


def recommendation_rows(recs: pd.DataFrame) -> list[list]:
    savings = change_savings(recs)
    rows = []
    for r, s in zip(recs.to_dict("records"), savings.tolist()):
        rows.append([r["cluster"], r["namespace"], r["team"] or "(none)", f"{r['kind']}/{r['workload']}", r["container"],
                     Cell(r["status"].replace("_", " ")),
                     _req(r["cpu_request_cores_current"], r["cpu_request_cores_recommended"], cores),
                     _req(r["memory_request_bytes_current"], r["memory_request_bytes_recommended"], nbytes),
                     Cell(f"{cores(r['cpu_limit_cores_current'])} → {r['cpu_limit_action'].replace('_', ' ')}"),
                     _req(r["memory_limit_bytes_current"], r["memory_limit_bytes_recommended"], nbytes),
                     money_cell(r["usd_per_month_current"]), money_cell(s, signed=True),
                     r["confidence"], tags(r["flags"]), r["reason"]])
    return rows


WIDE_CHARTS = {"requested_vs_used", "top_workload_percentiles"}
TOP_COLUMNS = (2, 6, 7, 10, 11, 12, 13)  # team .. flags: the top list stays narrow; details have all
REC_HEADERS = ["cluster", "namespace", "team", "workload", "container", "status", "CPU request", "memory request",
               "CPU limit", "memory limit", "cost/month", "savings/month", "confidence", "flags", "reason"]


def _rollup_table(records: list[dict], keys: list[str], table_id: str) -> str:
    rows = [[*(r.get(k, "") for k in keys), money_cell(r.get("usd_per_month_current")),
             money_cell(r.get("usd_per_month_recommended")), money_cell(r.get("savings_usd_per_month"), signed=True),
             num_cell(r.get("containers"), lambda v: f"{v:,.0f}"), num_cell(r.get("changes"), lambda v: f"{v:,.0f}"),
             num_cell(r.get("oom_risk"), lambda v: f"{v:,.0f}"), num_cell(r.get("throttled"), lambda v: f"{v:,.0f}")]
            for r in records]
    return html_table(keys + ["cost/month", "after changes", "savings/month", "containers", "changes", "OOM risk", "throttled"],
                      rows, table_id)


def render_html(summary: dict, analysis, snapshot, config, *, comparison=None, crossed: list[str] | None = None,
                title: str = "rightsize report", extra_caveats: list[dict] | None = None) -> str:
    """The whole report.html as text."""
    n = config.report.top_n
    recs = analysis.recommendations
    t = summary["totals"]
    parts: list[str] = []

    # totals
    kpis = []
    for key, label in TOTAL_ROWS:
        main = key == "savings_usd_per_month"
        kpis.append(f'<div class="kpi{" main" if main else ""}"><div class="v">{esc(usd(t.get(key), 0))}</div>'
                    f'<div class="l">{esc(label.replace("**", ""))} / month</div></div>')
    st, fl = summary.get("containers_by_status", {}), summary.get("containers_by_flag", {})
    body = f'<div class="kpis">{"".join(kpis)}</div>'
    body += (f'<p class="counts">{t.get("containers", 0)} containers in {t.get("workloads", 0)} workloads: '
             f'{st.get("change", 0)} with a proposed change, {st.get("keep", 0)} fine as they are, '
             f'{st.get("no_recommendation", 0)} without a recommendation, {st.get("ignored", 0)} ignored; '
             f'<b>{fl.get("oom_risk", 0)} at OOM risk</b>, {fl.get("throttled", 0)} throttled.</p>')
    if crossed:
        body += '<div class="alert"><b>CI thresholds crossed</b> (exit code 3):<ul>' + "".join(
            f"<li>{esc(m)}</li>" for m in crossed) + "</ul></div>"
    parts.append(_section("totals", "Totals", body))

    # charts
    if config.report.charts:
        pngs = _charts.render_all(analysis, snapshot, config)
        figs = []
        for name, caption in _charts.CHARTS:
            png = pngs.get(name)
            if png is None:
                figs.append(f'<figure><p class="muted">{esc(caption)}: no data.</p></figure>')
            else:
                wide = ' class="wide"' if name in WIDE_CHARTS else ""
                figs.append(f'<figure{wide}><img src="{data_uri(png)}" alt="{esc(caption)}"><figcaption>{esc(caption)}</figcaption></figure>')
        parts.append(_section("charts", "Charts", f'<div class="charts">{"".join(figs)}</div>'))

    # week over week
    if comparison is None:
        body = _empty("No earlier report found to compare with (the first report in this folder, or use --compare DIR).")
    else:
        rows = []
        for r in comparison.totals.to_dict("records"):
            money = "USD" in r["metric"]
            count = (lambda v: Cell("n/a" if _nan(v) else f"{v:,.0f}", None if _nan(v) else v, True))
            if money:
                # no red/green: a lower cost is good but lower "savings available" may be too
                rows.append([r["metric"], money_cell(r["previous"]), money_cell(r["current"]),
                             Cell(signed_usd(r["delta"]), None if _nan(r["delta"]) else r["delta"], True)])
            else:
                rows.append([r["metric"], count(r["previous"]), count(r["current"]),
                             Cell("n/a" if _nan(r["delta"]) else f"{r['delta']:+,.0f}", r["delta"], True)])
        body = f'<p>Compared with <b>{esc(comparison.previous_label)}</b>.</p>' + html_table(
            ["", "previous", "now", "change"], rows, "wow-totals", sortable=False)
        for label, df, extra in (("New OOM risks", comparison.new_oom_risks, None),
                                 ("Resolved OOM risks", comparison.resolved_oom_risks, "now"),
                                 ("Recommendations applied", comparison.applied, None)):
            body += f"<h3>{esc(label)}: {len(df)}</h3>"
            if len(df):
                refs = container_ref(df).tolist()
                notes = df[extra].tolist() if extra else [""] * len(refs)
                body += "<ul>" + "".join(f"<li><code>{esc(r)}</code>{(' (' + esc(x) + ')') if x else ''}</li>"
                                         for r, x in zip(refs, notes)) + "</ul>"
    parts.append(_section("week-over-week", "Week over week", body))

    # top savings
    top = top_savings(recs, n)
    top_rows = [[ref] + [row[i] for i in TOP_COLUMNS] for ref, row in zip(container_ref(top), recommendation_rows(top))]
    top_headers = ["container"] + [REC_HEADERS[i] for i in TOP_COLUMNS]
    parts.append(_section("top-savings", f"Top {n} savings", html_table(top_headers, top_rows, "top-savings-table")
                          if len(top) else _empty("No proposed change lowers cost.")))

    # OOM / throttled
    rk = risky(recs)
    if rk.empty:
        body = _empty("None: no container was OOM-killed or throttled above the threshold.")
    else:
        rows = [[f"{ref}", tags("oom_risk" if r["_oom"] else "throttled"), num_cell(r["oom_kills"], lambda v: f"{v:.0f}"),
                 num_cell(r["cpu_throttled_ratio"], percent),
                 _req(r["memory_request_bytes_current"], r["memory_request_bytes_recommended"], nbytes),
                 Cell(f"{cores(r['cpu_limit_cores_current'])} → {r['cpu_limit_action'].replace('_', ' ')}"), r["reason"]]
                for ref, r in zip(container_ref(rk), rk.to_dict("records"))]
        body = html_table(["container", "risk", "OOM kills", "throttled", "memory request", "CPU limit", "reason"], rows, "risk-table")
    parts.append(_section("oom-throttled", "OOM risk and throttled containers", body))

    # spot
    spot = analysis.spot
    if spot.empty:
        body = _empty("No spot analysis.")
    else:
        cands = spot_candidates(spot, len(spot))
        rows = [[ref, tags(r["verdict"]), num_cell(r["score"], lambda v: f"{v:.0f}"), r["interruption_bucket"] or "n/a",
                 money_cell(r["savings_usd_per_month"]), r["changes_needed"] or "—", r["reasons"]]
                for ref, r in zip(container_ref(spot), spot.to_dict("records"))]
        body = (f"<p>{len(cands)} workload(s) ready or ready after changes. All workloads:</p>"
                + filters("spot-table", [("verdicts", 1, sorted(spot["verdict"].str.replace("_", " ").unique()))])
                + html_table(["workload", "verdict", "score", "interruptions", "savings/month", "changes needed", "reasons"],
                             rows, "spot-table"))
    parts.append(_section("spot", "Spot candidates", body))

    # cross-AZ
    cz = top_cross_az(analysis.cross_az, config)
    if cz.empty:
        body = _empty(f"No workload pair costs more than {usd(config.cross_az.min_usd_per_month)}/month in inter-AZ transfer.")
    else:
        rows = [[f"{r['source_namespace']}/{r['source_workload']} → {r['destination_namespace']}/{r['destination_workload']}",
                 num_cell(r["cross_az_gb_per_month"], lambda v: f"{v:,.0f}"), num_cell(r["crossing_fraction"], percent),
                 "measured" if r["measured"] else "estimated", money_cell(r["usd_per_month"]), r["fix"], r["caveat"] or "—"]
                for r in cz.to_dict("records")]
        body = html_table(["pair", "GB/month crossing", "crossing", "zones", "cost/month", "fix", "caveat"], rows, "cross-az-table")
    parts.append(_section("cross-az", "Top cross-AZ pairs", body))

    # load balancers
    lb = analysis.load_balancers
    if lb.empty:
        body = _empty("No Service of type LoadBalancer.")
    else:
        rows = [[f"{r['namespace']}/{r['service']}", r["workload"] or "n/a", r["scheme"], money_cell(r["usd_per_month"]),
                 "yes" if r["consolidation_candidate"] else "no", r["risk"] or "—"] for r in lb.to_dict("records")]
        body = html_table(["service", "workload", "scheme", "cost/month", "could share an ingress", "risk"], rows, "lb-table")
    parts.append(_section("load-balancers", "Load balancers", body))

    # idle
    idle = analysis.idle
    if idle.empty:
        body = _empty("No node data.")
    else:
        rows = [[r["cluster"], r["node_group"] or "n/a", r["instance_type"], r["capacity_type"], num_cell(r["nodes"], lambda v: f"{v:.0f}"),
                 num_cell(r["requested_cpu_cores"] / r["allocatable_cpu_cores"] if r["allocatable_cpu_cores"] else math.nan, percent),
                 num_cell(r["requested_memory_bytes"] / r["allocatable_memory_bytes"] if r["allocatable_memory_bytes"] else math.nan, percent),
                 money_cell(r["usd_per_month"]), money_cell(r["idle_usd_per_month"])] for r in idle.to_dict("records")]
        body = html_table(["cluster", "node group", "type", "capacity", "nodes", "CPU requested", "memory requested",
                           "cost/month", "idle/month"], rows, "idle-table")
    parts.append(_section("idle", "Idle node capacity", body))

    # details per namespace / team
    body = "<h3>By namespace</h3>" + _rollup_table(summary.get("by_namespace", []), ["cluster", "namespace"], "ns-table")
    body += "<h3>By team</h3>" + _rollup_table(summary.get("by_team", []), ["team"], "team-table")
    body += "<h3>Every container</h3>"
    if recs.empty:
        body += _empty("No containers.")
    else:
        body += filters("recs-table", [
            ("namespaces", 1, sorted(recs["namespace"].astype(str).unique())),
            ("teams", 2, sorted(recs["team"].fillna("").replace("", "(none)").astype(str).unique())),
            ("statuses", 5, sorted(recs["status"].str.replace("_", " ").unique())),
        ])
        body += html_table(REC_HEADERS, recommendation_rows(recs), "recs-table")
    parts.append(_section("details", "Details by namespace and team", body))

    # caveats + files
    parts.append(_section("caveats", "Data caveats", "<ul>" + "".join(
        f"<li>{esc(line)}</li>" for line in caveats(summary, extra_caveats)) + "</ul>"))
    parts.append(_section("files", "Detail files", "<ul>" + "".join(
        f'<li><a href="{esc(f)}">{esc(f)}</a>: {esc(what)}</li>' for f, what in DETAIL_FILES if f != "report.html") + "</ul>"))

    nav = "".join(f'<a href="#{a}">{esc(label)}</a>' for a, label in (
        ("totals", "Totals"), ("charts", "Charts"), ("week-over-week", "Week over week"), ("top-savings", "Top savings"),
        ("oom-throttled", "OOM / throttled"), ("spot", "Spot"), ("cross-az", "Cross-AZ"), ("load-balancers", "Load balancers"),
        ("idle", "Idle"), ("details", "Details"), ("caveats", "Caveats"), ("files", "Files")))
    sub = " · ".join(esc(line.replace("**", "")) for line in header_lines(summary, title))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
            f"<header><h1>{esc(title)}</h1><p>{sub}</p></header><nav>{nav}</nav><main>{''.join(parts)}</main>"
            f"<script>{SCRIPT}</script></body></html>\n")
