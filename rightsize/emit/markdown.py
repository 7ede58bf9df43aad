"""report.md: the summary for a CI job summary or a pull-request comment.

Every list is capped (``[report] top_n`` rows, longer lists say how many were left out), so the file
stays a few tens of KiB, far below GitHub's 1 MiB step-summary limit. The same section list and the
number formatting are shared with report.html.
"""
from __future__ import annotations

import math

import pandas as pd

from ..analysis.summary import change_savings, flag_mask

GIB = 1024.0**3
MIB = 1024.0**2
MAX_LIST_ROWS = 50  # OOM / throttled lists: every row matters, but a PR comment must stay readable
MAX_CAVEATS = 40

# (anchor, title): the sections of both reports, in order
SECTIONS = (
    ("totals", "Totals"),
    ("week-over-week", "Week over week"),
    ("top-savings", "Top savings"),
    ("oom-throttled", "OOM risk and throttled containers"),
    ("spot", "Spot candidates"),
    ("cross-az", "Top cross-AZ pairs"),
    ("load-balancers", "Load balancers"),
    ("idle", "Idle node capacity"),
    ("caveats", "Data caveats"),
    ("files", "Detail files"),
)

DETAIL_FILES = (
    ("recommendations.csv", "every container: current and recommended requests/limits, reason, flags, cost"),
    ("spot.csv", "spot suitability per workload, with reasons and changes needed"),
    ("cross_az.csv", "inter-AZ traffic cost per workload pair, with the fix"),
    ("load_balancers.csv", "LoadBalancer Services and their fixed cost"),
    ("idle.csv", "node groups: allocatable vs requested, idle cost"),
    ("summary.json", "machine-readable totals (schema in the README)"),
    ("report.html", "this report with charts and sortable, filterable detail tables"),
)

# (totals key, label) in the order shown
TOTAL_ROWS = (
    ("usd_per_month_current", "Current cost of requests"),
    ("usd_per_month_recommended", "Cost after recommendations"),
    ("savings_usd_per_month", "**Savings available** (net of increases)"),
    ("increases_usd_per_month", "of which increases (OOM risk, throttling)"),
    ("idle_usd_per_month", "Idle node capacity (not requested)"),
    ("spot_savings_usd_per_month", "Spot savings, ready workloads"),
    ("spot_savings_with_changes_usd_per_month", "Spot savings, ready after changes"),
    ("cross_az_usd_per_month", "Cross-AZ transfer"),
    ("load_balancer_usd_per_month", "Load balancers"),
)


# --- formatting (shared with html.py) ----------------------------------------------------------------

def _cpu_limit_after(r) -> str:
    """The recommended CPU limit in words: a value when one is set, else what happens to the limit."""
    if r["cpu_limit_action"] == "set":
        return cores(r["cpu_limit_cores_recommended"])
    return {"keep_unset": "unset", "remove": "remove", "none": "no change"}.get(r["cpu_limit_action"], r["cpu_limit_action"])


def _nan(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA


def usd(v, decimals: int = 2) -> str:
    """'$1,234.56' / '-$5.00'; 'n/a' when unknown."""
    if _nan(v):
        return "n/a"
    v = float(v)
    return ("-" if v < 0 else "") + f"${abs(v):,.{decimals}f}"


def signed_usd(v) -> str:
    if _nan(v):
        return "n/a"
    return ("+" if v > 0 else "") + usd(v)


def cores(v, unset: str = "unset") -> str:
    """CPU in Kubernetes-like notation: '250m', '1.5'."""
    if _nan(v):
        return unset
    v = float(v)
    if v < 1:
        return f"{round(v * 1000)}m"
    return f"{v:.3f}".rstrip("0").rstrip(".")


def nbytes(v, unset: str = "unset") -> str:
    """Memory as '512Mi' / '1.5Gi'."""
    if _nan(v):
        return unset
    v = float(v)
    if v >= GIB:
        return f"{v / GIB:.2f}".rstrip("0").rstrip(".") + "Gi"
    return f"{v / MIB:.0f}Mi"


def percent(v) -> str:
    return "n/a" if _nan(v) else f"{float(v) * 100:.0f}%"


def cell(v) -> str:
    """Text safe inside a Markdown table cell."""
    text = "" if _nan(v) else str(v)
    return text.replace("|", "\\|").replace("\n", " ").replace("\r", " ")


def shorten(text, limit: int = 140) -> str:
    """The first clause of a long explanation, for table cells (the CSVs keep the full text)."""
    text = "" if _nan(text) else str(text)
    head = text.split(" (", 1)[0]
    if len(head) > limit:
        head = head[: limit - 1].rstrip() + "…"
    return head + (" …" if head != text and not head.endswith("…") else "")


def table(headers: list[str], rows: list[list], align: str = "") -> str:
    """A GitHub Markdown table; ``align`` has one 'l'/'r' per column."""
    align = align or "l" * len(headers)
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join(" ---: " if a == "r" else " --- " for a in align) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def container_ref(df: pd.DataFrame, with_cluster: bool | None = None) -> pd.Series:
    """'namespace/workload/container' ('cluster/...' when several clusters are present)."""
    if with_cluster is None:
        with_cluster = df["cluster"].nunique() > 1 if len(df) else False
    ref = df["namespace"].astype(str) + "/" + df["workload"].astype(str)
    if "container" in df.columns:
        ref = ref + "/" + df["container"].astype(str)
    return (df["cluster"].astype(str) + "/" + ref) if with_cluster else ref


def _more(total: int, shown: int, what: str, file: str) -> str:
    return f"\n\n_…and {total - shown} more {what} in [{file}]({file})._" if total > shown else ""


# --- section data (shared with html.py) --------------------------------------------------------------

def top_savings(recs: pd.DataFrame, n: int) -> pd.DataFrame:
    """Proposed changes with the largest savings (USD/month), largest first."""
    if recs.empty:
        return recs
    df = recs.assign(_savings=change_savings(recs))
    df = df[(df["status"] == "change") & (df["_savings"] > 0)]
    return df.sort_values("_savings", ascending=False, kind="stable").head(n)


def risky(recs: pd.DataFrame) -> pd.DataFrame:
    """OOM-risk and throttled containers, OOM first, then by OOM kills / throttled ratio."""
    if recs.empty:
        return recs
    oom, thr = flag_mask(recs, "oom_risk"), flag_mask(recs, "throttled")
    df = recs[oom | thr].assign(_oom=oom[oom | thr], _thr=thr[oom | thr])
    return df.sort_values(["_oom", "oom_kills", "cpu_throttled_ratio"], ascending=False, kind="stable")


def spot_candidates(spot: pd.DataFrame, n: int) -> pd.DataFrame:
    if spot.empty:
        return spot
    df = spot[spot["verdict"].isin(["ready", "ready_with_changes"])]
    return df.sort_values(["verdict", "savings_usd_per_month"], ascending=[True, False], kind="stable").head(n)


def top_cross_az(cross: pd.DataFrame, config) -> pd.DataFrame:
    if cross.empty:
        return cross
    df = cross[cross["usd_per_month"].fillna(0) >= config.cross_az.min_usd_per_month]
    return df.sort_values("usd_per_month", ascending=False, kind="stable").head(config.cross_az.top_n)


def caveats(summary: dict, extra: list[dict] | None = None) -> list[str]:
    """Plain-text caveat lines: prices, missing metrics, partial data, warnings, unpriced containers."""
    lines = []
    p = summary.get("pricing") or {}
    if p.get("source"):
        where = f" ({p['region']})" if p.get("region") else ""
        dated = f", dated {p['date']}" if p.get("date") else ", date unknown"
        notes = f"; {p['notes']}" if p.get("notes") else ""
        lines.append(f"Prices: {p['source']}{where}{dated}{notes}.")
    else:
        lines.append("Prices: no price source recorded; costs may be missing.")
    missing = summary.get("missing_metrics") or []
    if missing:
        lines.append("Missing metrics: " + ", ".join(str(m) for m in missing) + ".")
    partial = summary.get("partial") or {}
    if partial:
        if isinstance(partial, dict):
            lines.append("Partial data: " + "; ".join(f"{k}: {v}" for k, v in partial.items()) + ".")
        else:
            lines.append(f"Partial data: {partial}.")
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


def header_lines(summary: dict, title: str) -> list[str]:
    w = summary.get("window") or {}
    clusters = ", ".join(summary.get("clusters") or []) or "unknown cluster"
    days = f"{w['hours'] / 24:.0f} days" if w.get("hours") else "unknown window"
    span = f" ({str(w.get('start', ''))[:10]} → {str(w.get('end', ''))[:10]})" if w.get("start") else ""
    return [f"Clusters: **{clusters}** · usage window: {days}{span}"]


# --- report.md ---------------------------------------------------------------------------------------

def render_markdown(summary: dict, analysis, config, *, comparison=None, crossed: list[str] | None = None,
                    title: str = "rightsize report", extra_caveats: list[dict] | None = None) -> str:
    """The whole report.md as text."""
    n = config.report.top_n
    recs = analysis.recommendations
    t = summary["totals"]
    out: list[str] = [f"# {title}", "", *header_lines(summary, title), ""]

    out += ["## Totals", "", table(["", "USD/month"], [[label, usd(t.get(k))] for k, label in TOTAL_ROWS], "lr")]
    st, fl = summary.get("containers_by_status", {}), summary.get("containers_by_flag", {})
    out += ["", f"{t.get('containers', 0)} containers in {t.get('workloads', 0)} workloads: "
                f"{st.get('change', 0)} with a proposed change, {st.get('keep', 0)} fine as they are, "
                f"{st.get('no_recommendation', 0)} without a recommendation, {st.get('ignored', 0)} ignored; "
                f"{fl.get('oom_risk', 0)} at OOM risk, {fl.get('throttled', 0)} throttled."]
    if crossed:
        out += ["", "**CI thresholds crossed** (exit code 3):", ""] + [f"- {m}" for m in crossed]

    out += ["", "## Week over week", ""]
    if comparison is None:
        out.append("_No earlier report found to compare with (the first report in this folder, or use --compare DIR)._")
    else:
        out += [f"Compared with **{comparison.previous_label}**.", ""]
        rows = []
        for r in comparison.totals.to_dict("records"):
            money = "USD" in r["metric"]
            fmt = usd if money else (lambda v: "n/a" if _nan(v) else f"{v:,.0f}")
            delta = signed_usd(r["delta"]) if money else ("n/a" if _nan(r["delta"]) else f"{r['delta']:+,.0f}")
            rows.append([r["metric"].replace(" (USD/month)", ""), fmt(r["previous"]), fmt(r["current"]), delta])
        out.append(table(["", "previous", "now", "change"], rows, "lrrr"))
        for label, df, extra in (("New OOM risks", comparison.new_oom_risks, None),
                                 ("Resolved OOM risks", comparison.resolved_oom_risks, "now"),
                                 ("Recommendations applied", comparison.applied, None)):
            out += ["", f"**{label}: {len(df)}**"]
            if len(df):
                shown = df.head(MAX_LIST_ROWS)
                refs = container_ref(shown).tolist()
                notes = shown[extra].tolist() if extra else [""] * len(refs)
                out += [""] + [f"- `{r}`" + (f" ({x})" if x else "") for r, x in zip(refs, notes)]
                out.append(_more(len(df), len(shown), label.lower(), "recommendations.csv").strip())

    out += ["", f"## Top {n} savings", ""]
    top = top_savings(recs, n)
    if top.empty:
        out.append("_No proposed change lowers cost._")
    else:
        rows = [[f"`{ref}`", r["team"], f"{cores(r['cpu_request_cores_current'])} → {cores(r['cpu_request_cores_recommended'], 'n/a')}",
                 f"{nbytes(r['memory_request_bytes_current'])} → {nbytes(r['memory_request_bytes_recommended'], 'n/a')}",
                 usd(r["savings_usd_per_month"]), r["confidence"], r["flags"].replace(",", ", ")]
                for ref, r in zip(container_ref(top), top.to_dict("records"))]
        out.append(table(["container", "team", "CPU request", "memory request", "savings/month", "confidence", "flags"],
                         rows, "lllrrll"))
        total_changes = int(((recs["status"] == "change") & (change_savings(recs) > 0)).sum())
        out.append(_more(total_changes, len(top), "changes that save money", "recommendations.csv").rstrip())

    out += ["", "## OOM risk and throttled containers", ""]
    rk = risky(recs)
    if rk.empty:
        out.append("_None: no container was OOM-killed or throttled above the threshold._")
    else:
        shown = rk.head(MAX_LIST_ROWS)
        rows = [[f"`{ref}`", "OOM risk" if r["_oom"] else "throttled",
                 f"{r['oom_kills']:.0f}" if not _nan(r["oom_kills"]) else "n/a", percent(r["cpu_throttled_ratio"]),
                 f"{nbytes(r['memory_request_bytes_current'])} → {nbytes(r['memory_request_bytes_recommended'], 'n/a')}",
                 f"{cores(r['cpu_limit_cores_current'])} → {_cpu_limit_after(r)}"]
                for ref, r in zip(container_ref(shown), shown.to_dict("records"))]
        out.append(table(["container", "risk", "OOM kills", "throttled", "memory request", "CPU limit"], rows, "llrrll"))
        out.append(_more(len(rk), len(shown), "containers", "recommendations.csv").rstrip())

    out += ["", "## Spot candidates", ""]
    sp = spot_candidates(analysis.spot, n)
    if sp.empty:
        out.append("_No workload is ready for spot._")
    else:
        rows = [[f"`{ref}`", r["verdict"].replace("_", " "), f"{r['score']:.0f}", r["interruption_bucket"] or "n/a",
                 usd(r["savings_usd_per_month"]), r["changes_needed"] or "—"]
                for ref, r in zip(container_ref(sp), sp.to_dict("records"))]
        out.append(table(["workload", "verdict", "score", "interruptions", "savings/month", "changes needed"], rows, "llrlrl"))
        ready = int(analysis.spot["verdict"].isin(["ready", "ready_with_changes"]).sum())
        out.append(_more(ready, len(sp), "candidates", "spot.csv").rstrip())

    out += ["", "## Top cross-AZ pairs", ""]
    cz = top_cross_az(analysis.cross_az, config)
    if cz.empty:
        out.append(f"_No workload pair costs more than {usd(config.cross_az.min_usd_per_month)}/month in inter-AZ transfer"
                   f"{' (no traffic data)' if analysis.cross_az.empty else ''}._")
    else:
        rows = [[f"`{r['source_namespace']}/{r['source_workload']}` → `{r['destination_namespace']}/{r['destination_workload']}`",
                 f"{r['cross_az_gb_per_month']:,.0f}", percent(r["crossing_fraction"]), "measured" if r["measured"] else "estimated",
                 usd(r["usd_per_month"]), shorten(r["fix"])]
                for r in cz.to_dict("records")]
        out.append(table(["pair", "GB/month crossing", "crossing", "zones", "cost/month", "fix (full text in cross_az.csv)"],
                         rows, "lrrlrl"))
        out.append(_more(len(analysis.cross_az), len(cz), "pairs", "cross_az.csv").rstrip())

    out += ["", "## Load balancers", ""]
    lb = analysis.load_balancers
    if lb.empty:
        out.append("_No Service of type LoadBalancer._")
    else:
        shown = lb.sort_values("usd_per_month", ascending=False, kind="stable").head(n)
        rows = [[f"`{r['namespace']}/{r['service']}`", r["workload"] or "n/a", r["scheme"], usd(r["usd_per_month"]),
                 "yes" if r["consolidation_candidate"] else "no", shorten(r["risk"], 80) or "—"] for r in shown.to_dict("records")]
        out.append(table(["service", "workload", "scheme", "cost/month", "could share an ingress", "risk"], rows, "lllrll"))
        out.append(_more(len(lb), len(shown), "load balancers", "load_balancers.csv").rstrip())

    out += ["", "## Idle node capacity", ""]
    idle = analysis.idle
    if idle.empty:
        out.append("_No node data._")
    else:
        shown = idle.sort_values("idle_usd_per_month", ascending=False, kind="stable").head(n)
        rows = [[r["node_group"] or "n/a", r["instance_type"], r["capacity_type"], f"{r['nodes']:.0f}",
                 percent(r["requested_cpu_cores"] / r["allocatable_cpu_cores"]) if r["allocatable_cpu_cores"] else "n/a",
                 percent(r["requested_memory_bytes"] / r["allocatable_memory_bytes"]) if r["allocatable_memory_bytes"] else "n/a",
                 usd(r["usd_per_month"]), usd(r["idle_usd_per_month"])] for r in shown.to_dict("records")]
        out.append(table(["node group", "type", "capacity", "nodes", "CPU requested", "memory requested", "cost/month", "idle/month"],
                         rows, "lllrrrrr"))
        out.append(_more(len(idle), len(shown), "node groups", "idle.csv").rstrip())

    out += ["", "## Data caveats", ""] + [f"- {line}" for line in caveats(summary, extra_caveats)]
    out += ["", "## Detail files", ""] + [f"- [{f}]({f}): {what}" for f, what in DETAIL_FILES]
    text = "\n".join(out)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.rstrip() + "\n"
