"""The recommendation engine: CPU and memory requests and limits for every container, vectorised.

Units: CPU in cores, memory in bytes, history in hours/days as the column names say. NaN in a
``*_recommended`` column means "no recommendation"; leaving a CPU limit unset is
cpu_limit_action = "keep_unset" (value NaN), an explicit removal is "remove".

``compute`` runs PIPELINE over every container at once: the rules of ``rules/`` (one module per family),
each declaring the columns it reads and the values it writes, in the order their declarations give.
A rule's docstring says what it decides, the reason text it adds and the flag it sets; ``explain``
prints the same rules for one workload.

``compute`` returns the wide frame with every intermediate (columns starting with ``_``);
``recommend`` returns exactly schema.RECOMMENDATION_COLUMNS.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..config import Config
from ..schema import CONTAINER_KEY, RECOMMENDATION_COLUMNS, TABLES, WORKLOAD_KEY
from ..snapshot import Snapshot, conform
from .injectors import with_injected
from .rules import RULES
from .rules import runtimes as runtime_rules
from .rules.base import USAGE_COLUMNS, WORKLOAD_COLUMNS, Pipeline, Rows
from .rules.text import join

# The values of the rules the output reads (``_output``): the pipeline checks some rule writes each.
_INTERMEDIATES = (
    "days", "widen", "margin", "cpu_raw", "mem_raw", "max_cpu", "max_mem", "throttled", "throttled_share",
    "cpu_excess", "cpu_excess_measured", "cpu_p99_estimate", "cpu_obs", "oom", "oom_vpa", "oom_bound", "oom_per_week",
    "oom_life_hours", "oom_capped", "keep_cpu", "keep_memory", "cpu_limit_mode", "memory_limit_mode", "unsafe", "changes",
    "cpu_req_usage", "mem_req_usage", "cpu_margin", "mem_margin", "growing", "growth_known", "growth_life", "growth_age",
    "growth_z", "growth_days", "growth_floor", "check_cpu_limit")
OUTPUTS = _INTERMEDIATES + (
    "policy", "production", "_policy_source", "_policy_note", "status", "confidence", "cpu_req", "cpu_lim", "cpu_action",
    "mem_req", "mem_lim", "has_usage", "cpu_stat", "cpu_basis", "mem_stat", "mem_basis", "peak", "cpu_estimate",
    "mem_estimate", "oom_pattern", "hpa_cpu_target_new", "hpa_memory_target_new", "floor_req", "floor_lim", "mem_action",
    "cpu_pattern", "mem_pattern", "growth_rate", "growth_projected", "raised_by_backtest", "check_peak",
    "check_cpu_share", "gpu_model_name", "gpu_engine_p95", "gpu_engine_mean", "gpu_memory_peak", "gpu_memory", "gpu_action",
    "gpu_target", "gpu_resource_rec", "gpu_count_rec", "gpu_share_after", "gpu_evidence") + runtime_rules.OUTPUTS
PIPELINE = Pipeline(RULES, outputs=OUTPUTS)


def recommend(snapshot: Snapshot, config: Config) -> pd.DataFrame:
    """One row per container of ``snapshot.tables['containers']`` with RECOMMENDATION_COLUMNS.

    Cost columns are NaN (analysis.cost.add_costs fills them).
    """
    wide = compute(snapshot, config)
    out = pd.DataFrame({c.name: wide[c.name] for c in RECOMMENDATION_COLUMNS}, index=wide.index)
    return out.reset_index(drop=True)


# --- building the frame -------------------------------------------------------------------------------


def _frame(snapshot: Snapshot, config: Config, containers: pd.DataFrame | None = None) -> pd.DataFrame:
    """Containers (with the injected sidecars the spec does not declare, analysis/injectors.py) left-joined
    with usage (on CONTAINER_KEY) and workloads (on WORKLOAD_KEY)."""
    tables = snapshot.tables
    cont = _conformed("containers", containers if containers is not None else tables["containers"])
    usage = _conformed("usage", tables["usage"]).drop_duplicates(list(CONTAINER_KEY))
    work = _conformed("workloads", tables["workloads"]).drop_duplicates(list(WORKLOAD_KEY))
    cont = with_injected(cont, usage, work, config.injectors)
    usage = usage[list(CONTAINER_KEY) + list(USAGE_COLUMNS)].assign(_has_usage=True)
    work = work[list(WORKLOAD_KEY) + list(WORKLOAD_COLUMNS)].assign(_has_workload=True)
    f = cont.reset_index(drop=True).merge(usage, on=list(CONTAINER_KEY), how="left")
    f = f.merge(work, on=list(WORKLOAD_KEY), how="left")
    f = _estimate_missing_replicas(snapshot, f)
    f["_has_usage"] = f["_has_usage"].fillna(False).astype(bool)
    f["_has_workload"] = f["_has_workload"].fillna(False).astype(bool)
    f["ignore"] = f["ignore"].fillna(False).astype(bool)
    f["hpa"] = f["hpa"].fillna(False).astype(bool)
    f["team"] = f["team"].fillna("").astype(str)
    f["policy_override"] = f["policy_override"].fillna("").astype(str)
    return f


def _estimate_missing_replicas(snapshot: Snapshot, f: pd.DataFrame) -> pd.DataFrame:
    """Replicas used for cost (cost.pods_for_cost: batch and autoscaled work at the average pods it ran,
    pod-hours / window hours, whatever the inventory says). Marked ``_replicas_estimated``; the average
    itself goes to ``average_pods``."""
    from .cost import pods_for_cost

    pods = pods_for_cost(snapshot, f)
    f["replicas"] = pods["replicas"].to_numpy()
    f["average_pods"] = pods["average_pods"].to_numpy()
    f["_replicas_estimated"] = pods["estimated"].to_numpy(dtype=bool)
    return f


def _conformed(name: str, df: pd.DataFrame) -> pd.DataFrame:
    """The table as the schema describes it; a validated snapshot's tables pass through untouched."""
    if all(c.name in df.columns for c in TABLES[name]):
        return df
    return conform(name, df)


# --- the engine ----------------------------------------------------------------------------------------


def compute(snapshot: Snapshot, config: Config, containers: pd.DataFrame | None = None,
            pipeline: Pipeline = PIPELINE) -> pd.DataFrame:
    """The wide frame: RECOMMENDATION_COLUMNS plus every intermediate (columns starting with ``_``).

    ``containers`` restricts the run to some rows of the containers table (explain uses it); ``pipeline``
    is PIPELINE, or one with more rules (Pipeline.with_rules).
    """
    rows = pipeline.run(Rows(_frame(snapshot, config, containers), snapshot, config))
    return _types(_output(rows))


def _output(rows: Rows) -> pd.DataFrame:
    v, out, n = {k: rows.v[k] for k in OUTPUTS}, rows.f, rows.n
    cur = {k: rows.num(k) for k in ("cpu_request_cores", "cpu_limit_cores", "memory_request_bytes", "memory_limit_bytes")}
    with np.errstate(divide="ignore", invalid="ignore"):
        change = {res: np.where(np.nan_to_num(cur[c]) > 0, (v[k] - cur[c]) / cur[c] * 100, np.nan)
                  for res, c, k in (("cpu", "cpu_request_cores", "cpu_req"), ("memory", "memory_request_bytes", "mem_req"))}
    columns = {
        "policy": v["policy"], "production": v["production"], "_policy_source": v["_policy_source"],
        "_policy_note": v["_policy_note"],
        "status": v["status"], "reason": join(rows.reasons, n, "; "), "confidence": v["confidence"],
        "flags": join([(m, name) for m, name in rows.flags], n, ","),
        "cpu_request_cores_current": cur["cpu_request_cores"], "cpu_request_cores_recommended": v["cpu_req"],
        "cpu_limit_cores_current": cur["cpu_limit_cores"], "cpu_limit_cores_recommended": v["cpu_lim"],
        "cpu_limit_action": v["cpu_action"].astype(str),
        "memory_request_bytes_current": cur["memory_request_bytes"], "memory_request_bytes_recommended": v["mem_req"],
        "memory_limit_bytes_current": cur["memory_limit_bytes"], "memory_limit_bytes_recommended": v["mem_lim"],
        "memory_limit_action": v["mem_action"].astype(str),
        "cpu_change_percent": change["cpu"], "memory_change_percent": change["memory"],
        "cpu_basis": np.where(v["has_usage"], v["cpu_stat"], ""), "cpu_basis_cores": v["cpu_basis"],
        "memory_basis": np.where(v["has_usage"], v["mem_stat"], ""), "memory_basis_bytes": v["mem_basis"],
        "memory_max_bytes": v["peak"], "cpu_demand_estimate_cores": v["cpu_estimate"],
        "memory_demand_estimate_bytes": v["mem_estimate"], "oom_pattern": v["oom_pattern"],
        "cpu_pattern": np.where(v["has_usage"], v["cpu_pattern"], ""), "memory_pattern": np.where(v["has_usage"], v["mem_pattern"], ""),
        "memory_growth_bytes_per_day": v["growth_rate"], "memory_projected_bytes": v["growth_projected"],
        "raised_by_backtest": v["raised_by_backtest"], "self_check_memory_peak_bytes": v["check_peak"],
        "self_check_cpu_share_at_limit": v["check_cpu_share"],
        "hpa_cpu_target_percent_current": rows.num("hpa_cpu_target_percent"),
        "hpa_cpu_target_percent_recommended": v["hpa_cpu_target_new"],
        "hpa_memory_target_percent_current": rows.num("hpa_memory_target_percent"),
        "hpa_memory_target_percent_recommended": v["hpa_memory_target_new"],
        "usd_per_month_current": np.nan, "usd_per_month_recommended": np.nan, "savings_usd_per_month": np.nan,
        **_gpu_output(rows, v),
    }
    intermediates = {f"_{k}": v[k] for k in _INTERMEDIATES}
    intermediates.update(_min_cpu=rows.pf("min_cpu"), _min_mem=rows.pf("min_memory"),
                         _mem_floor_request=v["floor_req"], _mem_floor_limit=v["floor_lim"],
                         _rules=join(_fired(rows), n, ","))
    new = {**columns, **intermediates, **runtime_rules.output(v, cur["memory_limit_bytes"])}
    # one concat, not a column at a time: pandas warns (and slows down) past a hundred inserts
    return pd.concat([out.drop(columns=[c for c in new if c in out]), pd.DataFrame(new, index=out.index)], axis=1)


def _gpu_output(rows: Rows, v: dict) -> dict:
    """The GPU columns of RECOMMENDATION_COLUMNS (rules/gpu.py); cost.py adds their dollars."""
    return {
        "gpu_resource": rows.column("gpu_resource").fillna("").astype(str).to_numpy(),
        "gpu_request_count_current": rows.num("gpu_request_count"), "gpu_model": v["gpu_model_name"],
        "gpu_engine_p95_ratio": v["gpu_engine_p95"], "gpu_engine_mean_ratio": v["gpu_engine_mean"],
        "gpu_memory_peak_bytes": v["gpu_memory_peak"], "gpu_memory_bytes": np.where(rows.v["gpu"], v["gpu_memory"], np.nan),
        "gpu_action": v["gpu_action"], "gpu_target": v["gpu_target"], "gpu_resource_recommended": v["gpu_resource_rec"],
        "gpu_request_count_recommended": np.where(v["gpu_resource_rec"] != "", v["gpu_count_rec"], rows.num("gpu_request_count")),
        "gpu_share_after": v["gpu_share_after"], "gpu_evidence": v["gpu_evidence"],
        **{c: np.nan for c in ("gpu_usd_per_month_current", "gpu_usd_per_month_recommended", "gpu_usd_per_month_used",
                               "gpu_savings_usd_per_month")},
    }


def _fired(rows: Rows) -> list[tuple[np.ndarray, str]]:
    """Per rule, the rows it added a reason or a flag to, as (mask, rule name) pairs in pipeline order."""
    masks: dict[str, np.ndarray] = {}
    for name, mask in rows.fired:
        masks[name] = masks.get(name, np.zeros(rows.n, dtype=bool)) | mask
    return [(m, name) for name, m in masks.items()]


def _types(out: pd.DataFrame) -> pd.DataFrame:
    for c in RECOMMENDATION_COLUMNS:
        if c.dtype == "str":
            out[c.name] = out[c.name].fillna("").astype(str)
        elif c.dtype == "float":
            out[c.name] = pd.to_numeric(out[c.name], errors="coerce").astype("float64")
    return out
