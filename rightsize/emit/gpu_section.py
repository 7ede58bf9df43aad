"""The report's GPU money: the top-card figures (only when the cluster has GPUs) and the GPU section, one row
per container that asks for GPUs with its action, evidence and dollars, and the idle GPUs per node group."""
from __future__ import annotations

from .. import formatting as fmt
from .view_model import Cell, Column, Context, Kpi, Row, Section, Table, money_cell, num_cell, ref_text, several_clusters

# (totals key, label, note): the top cards of a cluster with GPUs
GPU_TOTAL_ROWS = (
    ("gpu_usd_per_month_current", "GPUs requested", "the GPUs pods ask for, at their nodes' GPU-hour price"),
    ("gpu_usd_per_month_used", "GPUs used", "of that, the share their engines were active (DCGM)"),
    ("gpu_idle_usd_per_month", "Idle GPUs", "allocatable GPUs no pod requests"),
    ("gpu_savings_usd_per_month", "GPU savings available", "idle, shared or smaller GPUs; most need a node change"),
)
ACTIONS = {"idle": "idle: release", "share_mig": "share", "share_time_slicing": "share",
           "smaller_gpu": "smaller GPU", "keep": "keep", "unmeasured": "not measured"}


def has_gpus(totals: dict) -> bool:
    """Whether there is GPU money to show (GPUs requested, or GPU nodes idle)."""
    return any(not fmt.unknown(totals.get(k)) and float(totals.get(k)) > 0
               for k in ("gpu_usd_per_month_current", "gpu_idle_usd_per_month"))


def gpu_kpis(totals: dict) -> list[Kpi]:
    """The GPU top cards, after the others; none for a cluster without GPUs."""
    if not has_gpus(totals):
        return []
    return [Kpi(key, label, totals.get(key), fmt.usd(totals.get(key), 0), note) for key, label, note in GPU_TOTAL_ROWS]


def gpu_section(ctx: Context) -> Section | None:
    """GPUs: each container that asks for them, what to do and why, and the idle GPUs per node group."""
    if not has_gpus(ctx.totals):
        return None
    recs = ctx.analysis.recommendations
    gpu = recs[recs["gpu_resource"].fillna("").astype(str) != ""].sort_values(
        ["gpu_savings_usd_per_month", "gpu_usd_per_month_current"], ascending=False, kind="stable", na_position="last")
    with_cluster = several_clusters(recs)
    rows = [_row(r, with_cluster) for r in gpu.to_dict("records")]
    columns = [Column("container"), Column("GPU"), Column("action"), Column("engine p95", True), Column("memory peak", True),
               Column("requested/month", True), Column("used/month", True), Column("saving/month", True)]
    tables = [Table("gpu-table", columns, rows, md_limit=ctx.top_n, more_what="GPU containers", more_file="recommendations.csv",
                    sort_column=7, expandable=True)] if rows else []
    idle = _idle_table(ctx)
    tables += [idle] if idle is not None else []
    t = ctx.totals
    intro = (f"Pods request {fmt.usd(t.get('gpu_usd_per_month_current'), 0)}/month of GPUs; their engines were active for "
             f"{fmt.usd(t.get('gpu_usd_per_month_used'), 0)} of it, and {fmt.usd(t.get('gpu_idle_usd_per_month'), 0)}/month of "
             f"GPUs no pod requests. The GPU actions below save {fmt.usd(t.get('gpu_savings_usd_per_month'), 0)}/month; only "
             "a MIG slice the nodes already offer is in the patches, the rest needs a node group or device plugin change.")
    unmeasured = int(t.get("gpu_containers_unmeasured") or 0)
    bullets = [f"{unmeasured} GPU container(s) have no DCGM exporter data: their use is unknown and they get no GPU "
               "recommendation (see the caveats)."] if unmeasured else []
    return Section("gpus", "GPUs", intro=intro, tables=tables, bullets=bullets)


def _row(r: dict, with_cluster: bool) -> Row:
    action = ACTIONS.get(str(r.get("gpu_action") or ""), str(r.get("gpu_action") or "—"))
    target = str(r.get("gpu_target") or "")
    gpu = f"{fmt.count(r.get('gpu_request_count_current'))} x {r.get('gpu_model') or r.get('gpu_resource')}"
    return Row(
        cells=[Cell(ref_text(r, with_cluster), code=True), Cell(gpu), Cell(action + (f" ({target})" if target and target != "no GPU" else "")),
               num_cell(r.get("gpu_engine_p95_ratio"), fmt.percent), num_cell(r.get("gpu_memory_peak_bytes"), fmt.memory),
               money_cell(r.get("gpu_usd_per_month_current")), money_cell(r.get("gpu_usd_per_month_used")),
               money_cell(r.get("gpu_savings_usd_per_month"), signed=True)],
        detail=[("evidence", str(r.get("gpu_evidence") or "no DCGM exporter data")), ("why", str(r.get("reason") or "—")),
                ("patch", f"{r.get('gpu_resource')} → {r.get('gpu_resource_recommended')}" if r.get("gpu_resource_recommended")
                 else "none: report only")],
        attrs={"namespace": str(r["namespace"]), "team": str(r.get("team") or "(none)")}, record=r)


def _idle_table(ctx: Context) -> Table | None:
    idle = ctx.analysis.idle
    if idle.empty or "allocatable_gpus" not in idle.columns:
        return None
    groups = idle[idle["allocatable_gpus"].fillna(0) > 0].sort_values("gpu_idle_usd_per_month", ascending=False, kind="stable")
    if groups.empty:
        return None
    rows = [Row([Cell(r["node_group"] or "n/a"), Cell(r["instance_type"]), num_cell(r["allocatable_gpus"], _gpus),
                 num_cell(r["requested_gpus"], _gpus), money_cell(r["gpu_idle_usd_per_month"])]) for r in groups.to_dict("records")]
    columns = [Column("node group"), Column("type"), Column("GPUs", True), Column("requested", True), Column("idle GPUs/month", True)]
    return Table("gpu-idle-table", columns, rows, title="Idle GPUs per node group", md_limit=ctx.top_n, more_what="node groups",
                 more_file="idle.csv")


def _gpus(v) -> str:
    """GPU-equivalents with one decimal (a MIG slice or a time-sliced replica is a share of a GPU)."""
    return fmt.UNKNOWN if fmt.unknown(v) else f"{float(v):,.1f}"
