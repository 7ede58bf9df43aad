"""matplotlib charts for report.html: each function returns a Figure (or None when there is no data).

Figures are built with the object API on the Agg canvas (no pyplot state, no display needed), and
``png_bytes`` turns one into PNG bytes for a data URI. Money in USD/month, CPU in cores, memory in GiB.
"""
from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # before anything imports pyplot: reports are drawn on servers and in CI

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from ..analysis.summary import change_savings
from ..schema import CONTAINER_KEY
from ..formatting import usd
from ..quantity import GIB
from .chart_data import CHARTS, PCTS, captions, ns_label, usage_percentiles, with_usage  # noqa: F401 (CHARTS, captions: their one home is chart_data)

# Okabe-Ito colours: told apart with every common colour-vision deficiency
CURRENT, RECOMMENDED, USED, BAD, MUTED = "#8f8f8f", "#0072B2", "#E69F00", "#D55E00", "#c9ced6"
VERDICT_COLORS = {"ready": "#009E73", "ready_with_changes": "#56B4E9", "not_suitable": BAD,
                  "not_applicable": MUTED, "already_on_spot": "#CC79A7"}
DPI = 100


_usd = FuncFormatter(lambda v, _: usd(v, 0))


def _figure(width: float, height: float, layout: str | None = None) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _style(ax) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="x", color="#e6e8ec", linewidth=0.8)
    ax.set_axisbelow(True)


def png_bytes(fig: Figure) -> bytes:
    """The figure as PNG bytes: cropped to a tight bounding box, unless its constrained layout already fits it to the
    canvas (the crop draws the whole figure twice: a third of the time of the six charts)."""
    buf = io.BytesIO()
    tight = {} if fig.get_layout_engine() is not None else {"bbox_inches": "tight"}
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white", **tight)
    return buf.getvalue()


def savings_by_namespace(recs: pd.DataFrame, top_n: int = 15) -> Figure | None:
    """Horizontal bars: net savings of proposed changes per namespace, USD/month (increases in red)."""
    if recs.empty:
        return None
    df = recs.assign(_ns=ns_label(recs), _s=change_savings(recs))
    by = df.groupby("_ns")["_s"].sum().sort_values(ascending=False).head(top_n)[::-1]
    fig = _figure(9, 0.45 * len(by) + 1.2)
    ax = fig.add_subplot()
    ax.barh(by.index, by.values, color=[RECOMMENDED if v >= 0 else BAD for v in by.values])
    for y, v in enumerate(by.values):
        ax.annotate(usd(v, 0), (v, y), xytext=(4 if v >= 0 else -4, 0), textcoords="offset points",
                    va="center", ha="left" if v >= 0 else "right", fontsize=9)
    ax.axvline(0, color="#555", linewidth=0.8)
    ax.xaxis.set_major_formatter(_usd)
    ax.set_xlabel("Savings of proposed changes, USD/month (negative = requests raised)")
    ax.set_title("Savings by namespace", loc="left", fontweight="bold")
    _style(ax)
    ax.margins(x=0.15)
    return fig


def requested_vs_used(recs: pd.DataFrame, usage: pd.DataFrame | None = None, top_n: int = 12) -> Figure | None:
    """Grouped bars per namespace: requested now, recommended, and used (pooled p95 CPU / max memory
    x replicas), CPU in cores and memory in GiB."""
    if recs.empty:
        return None
    df = with_usage(recs, usage)
    reps = df["replicas"].fillna(1.0)
    df = df.assign(
        _ns=ns_label(df),
        cpu_req=df["cpu_request_cores_current"] * reps,
        cpu_rec=df["cpu_request_cores_recommended"].fillna(df["cpu_request_cores_current"]) * reps,
        cpu_used=df["used_cpu_cores"] * reps,
        mem_req=df["memory_request_bytes_current"] * reps / GIB,
        mem_rec=df["memory_request_bytes_recommended"].fillna(df["memory_request_bytes_current"]) * reps / GIB,
        mem_used=df["used_memory_bytes"] * reps / GIB,
    )
    by = df.groupby("_ns")[["cpu_req", "cpu_rec", "cpu_used", "mem_req", "mem_rec", "mem_used"]].sum(min_count=1)
    by = by.sort_values("cpu_req", ascending=False).head(top_n)
    fig = _figure(11, 0.55 * len(by) + 1.8, layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    y = np.arange(len(by))[::-1]
    h = 0.27
    for ax, prefix, title, unit in ((axes[0], "cpu", "CPU", "cores"), (axes[1], "mem", "Memory", "GiB")):
        ax.barh(y + h, by[f"{prefix}_req"].fillna(0), h, color=CURRENT, label="requested now")
        ax.barh(y, by[f"{prefix}_rec"].fillna(0), h, color=RECOMMENDED, label="recommended")
        ax.barh(y - h, by[f"{prefix}_used"].fillna(0), h, color=USED, label="used (p95 CPU / max memory)")
        ax.set_title(f"{title}, {unit}", loc="left", fontweight="bold")
        ax.set_xlabel(f"{unit} (per container x replicas)")
        _style(ax)
    axes[0].set_yticks(y, by.index)
    axes[1].legend(loc="lower right", fontsize=8, frameon=False)
    fig.suptitle("Requested vs used per namespace", x=0.01, ha="left", fontweight="bold")
    return fig


def request_usage_ratios(recs: pd.DataFrame, usage: pd.DataFrame | None = None) -> Figure | None:
    """Histogram of request / usage per container (CPU: request / p95, memory: request / max); log scale,
    1 = the request matches usage, above 1 = headroom."""
    if recs.empty:
        return None
    df = with_usage(recs, usage)
    cpu = (df["cpu_request_cores_current"] / df["used_cpu_cores"]).replace([np.inf, -np.inf], np.nan).dropna()
    mem = (df["memory_request_bytes_current"] / df["used_memory_bytes"]).replace([np.inf, -np.inf], np.nan).dropna()
    cpu, mem = cpu[cpu > 0], mem[mem > 0]
    if cpu.empty and mem.empty:
        return None
    values = pd.concat([cpu, mem])
    lo, hi = min(values.min(), 0.5), max(values.max(), 4.0)
    bins = np.geomspace(lo * 0.9, hi * 1.1, 25)
    fig = _figure(9, 3.6)
    ax = fig.add_subplot()
    ax.hist([cpu, mem], bins=bins, color=[RECOMMENDED, USED], label=[f"CPU request / p95 ({len(cpu)})",
                                                                      f"memory request / max ({len(mem)})"])
    ax.set_xscale("log")
    ticks = [t for t in (0.125, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128) if bins[0] <= t <= bins[-1]]
    ax.set_xticks(ticks, [f"{t:g}x" for t in ticks])
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    # labelled in the legend: a text beside the line would sit on the bars around 1x
    ax.axvline(1.0, color=BAD, linestyle="--", linewidth=1, label="request = usage")
    ax.set_xlabel("request / usage (log scale; > 1 = headroom, < 1 = under-requested)")
    ax.set_ylabel("containers")
    ax.legend(frameon=False, fontsize=8)
    ax.set_title("Distribution of request / usage ratios", loc="left", fontweight="bold")
    _style(ax)
    return fig


def spot_readiness(spot: pd.DataFrame) -> Figure | None:
    """Bars: workloads per spot verdict, annotated with their estimated savings (USD/month)."""
    if spot.empty:
        return None
    order = [v for v in VERDICT_COLORS if v in set(spot["verdict"])] + sorted(set(spot["verdict"]) - set(VERDICT_COLORS))
    counts = spot["verdict"].value_counts().reindex(order).fillna(0)
    savings = spot.groupby("verdict")["savings_usd_per_month"].sum(min_count=1).reindex(order)
    fig = _figure(9, 3.4)
    ax = fig.add_subplot()
    labels = [v.replace("_", " ") for v in order]
    ax.bar(labels, counts.values, color=[VERDICT_COLORS.get(v, MUTED) for v in order])
    for x, (n, s) in enumerate(zip(counts.values, savings.values)):
        movable = order[x] in ("ready", "ready_with_changes")  # savings of the others are not on offer
        text = f"{int(n)}" + (f"\n{usd(s, 0)}/mo" if movable and pd.notna(s) and s > 0 else "")
        ax.annotate(text, (x, n), xytext=(0, 3), textcoords="offset points", ha="center", va="bottom", fontsize=9)
    ax.set_ylabel("workloads")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.margins(y=0.3)
    ax.set_title("Spot readiness (workloads; estimated savings)", loc="left", fontweight="bold")
    _style(ax)
    ax.grid(axis="x", visible=False)
    ax.grid(axis="y", color="#e6e8ec", linewidth=0.8)
    return fig


def cross_az_by_pair(cross: pd.DataFrame, top_n: int = 10) -> Figure | None:
    """Horizontal bars: inter-AZ cost of the top workload pairs, USD/month."""
    if cross.empty or not (cross["usd_per_month"].fillna(0) > 0).any():
        return None
    top = cross.sort_values("usd_per_month", ascending=False).head(top_n)[::-1]
    # two lines per pair keep the labels narrow enough for a half-width chart
    labels = (top["source_namespace"] + "/" + top["source_workload"] + "\n→ "
              + top["destination_namespace"] + "/" + top["destination_workload"])
    fig = _figure(7.5, 0.6 * len(top) + 1.2)
    ax = fig.add_subplot()
    ax.barh(labels, top["usd_per_month"], color=[RECOMMENDED if m else USED for m in top["measured"]])
    for y, v in enumerate(top["usd_per_month"]):
        ax.annotate(usd(v, 2), (v, y), xytext=(4, 0), textcoords="offset points", va="center", fontsize=9)
    ax.xaxis.set_major_formatter(_usd)
    ax.set_xlabel("Inter-AZ transfer, USD/month\n(blue = measured zones, orange = estimated from placement)")
    ax.set_title("Cross-AZ cost by workload pair", loc="left", fontweight="bold")
    ax.margins(x=0.15)
    _style(ax)
    return fig


def top_workload_percentiles(recs: pd.DataFrame, usage: pd.DataFrame | None, top_n: int = 6) -> Figure | None:
    """For the containers with the largest savings: usage percentiles (p50..max, replicas pooled)
    as dots, against the current (grey) and recommended (blue) request; CPU in cores, memory in GiB."""
    u = usage_percentiles(usage)
    if recs.empty or u is None:
        return None
    pcts = PCTS
    cols = [f"{res}_{p}" for res in ("cpu", "memory") for p in pcts]
    df = recs.drop(columns=[c for c in cols if c in recs.columns]).assign(_s=change_savings(recs).abs())
    df = df.merge(u, on=list(CONTAINER_KEY), how="inner")
    df = df[df["status"].isin(["change", "keep"])].sort_values("_s", ascending=False).head(top_n)
    if df.empty:
        return None
    fig = _figure(11, 0.8 * len(df) + 1.2, layout="constrained")
    axes = fig.subplots(len(df), 2, squeeze=False)
    markers = dict(zip(pcts, ("o", "s", "D", "^", "v")))
    for i, r in enumerate(df.to_dict("records")):  # a handful of rows: one subplot each
        name = f"{r['namespace']}/{r['workload']}/{r['container']}"
        for j, (res, scale, unit, cur, rec) in enumerate((
                ("cpu", 1.0, "cores", r["cpu_request_cores_current"], r["cpu_request_cores_recommended"]),
                ("memory", GIB, "GiB", r["memory_request_bytes_current"], r["memory_request_bytes_recommended"]))):
            ax = axes[i][j]
            vals = [r[f"{res}_{p}"] / scale for p in pcts]
            for p, v in zip(pcts, vals):
                ax.plot([v], [0], marker=markers[p], color=USED, linestyle="none", markersize=6, label=p)
            if pd.notna(cur):
                ax.axvline(cur / scale, color=CURRENT, linewidth=2.5, label="current request")
            if pd.notna(rec):
                ax.axvline(rec / scale, color=RECOMMENDED, linewidth=2.5, linestyle="--", label="recommended")
            ax.set_yticks([])
            ax.set_xlim(left=0)
            ax.margins(x=0.1)
            ax.spines[["top", "right", "left"]].set_visible(False)
            ax.tick_params(axis="x", labelsize=8)
            if j == 0:
                ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
            if i == 0:
                ax.set_title(f"{'CPU' if res == 'cpu' else 'Memory'}, {unit}", loc="left", fontsize=10, fontweight="bold")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=7, frameon=False, fontsize=8)
    fig.suptitle("Top workloads: usage percentiles vs requests", x=0.01, ha="left", fontweight="bold")
    return fig


def render_all(analysis, snapshot, config) -> dict[str, bytes | None]:
    """Every chart as PNG bytes (None when its data is empty), keyed by the names in CHARTS."""
    recs = analysis.recommendations
    usage = snapshot.tables.get("usage") if snapshot is not None else None
    top_n = config.report.top_n
    figures = {
        "savings_by_namespace": savings_by_namespace(recs, top_n=max(top_n, 10)),
        "requested_vs_used": requested_vs_used(recs, usage, top_n=max(top_n, 10)),
        "request_usage_ratios": request_usage_ratios(recs, usage),
        "spot_readiness": spot_readiness(analysis.spot),
        "cross_az_by_pair": cross_az_by_pair(analysis.cross_az, top_n=config.cross_az.top_n),
        "top_workload_percentiles": top_workload_percentiles(recs, usage, top_n=min(top_n, 8)),
    }
    return {name: (png_bytes(fig) if fig is not None else None) for name, fig in figures.items()}
