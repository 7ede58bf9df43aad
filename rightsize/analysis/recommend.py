"""The recommendation engine: CPU and memory requests and limits for every container, vectorised.

Units: CPU in cores, memory in bytes, history in hours/days as the column names say. NaN in a
``*_recommended`` column means "no recommendation"; leaving a CPU limit unset is
cpu_limit_action = "keep_unset" (value NaN), an explicit removal is "remove".

Pipeline per row (all columns at once, one pass):
  1. policy per container (policy.py) and its settings as columns;
  2. history check (min_history, min_samples) -> no_recommendation with the reason;
  3. request = usage statistic x (1 + margin) x widening for short history (VPA's confidence
     multiplier), bounded by min/max, HPA-scaled resources kept;
  4. safety floors (memory >= observed max; OOM bump; never lowered after an OOM), limits by mode,
     throttled CPU limits raised or removed;
  5. friendly rounding up, change thresholds -> status, flags, reason.

``compute`` returns the wide frame with every intermediate (``explain`` prints them);
``recommend`` returns exactly schema.RECOMMENDATION_COLUMNS.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..config import PERCENTILES, Config
from ..quantity import MIB
from ..schema import CONTAINER_KEY, RECOMMENDATION_COLUMNS, TABLES, WORKLOAD_KEY
from ..snapshot import Snapshot, conform
from . import policy as policy_mod
from .rounding import round_cpu_down, round_cpu_up, round_memory_down, round_memory_up

DAY = 86400.0
_USAGE_COLUMNS = [f"cpu_{p}_cores" for p in PERCENTILES] + [f"memory_{p}_bytes" for p in PERCENTILES] + [
    "samples", "hours_covered", "oom_kills", "restarts", "cpu_throttled_ratio", "pods_seen"]
_WORKLOAD_COLUMNS = ["replicas", "team", "ignore", "policy_override", "hpa", "hpa_cpu_target_percent",
                     "hpa_memory_target_percent"]


def recommend(snapshot: Snapshot, config: Config) -> pd.DataFrame:
    """One row per container of ``snapshot.tables['containers']`` with RECOMMENDATION_COLUMNS.

    Cost columns are NaN (analysis.cost.add_costs fills them).
    """
    wide = compute(snapshot, config)
    out = pd.DataFrame({c.name: wide[c.name] for c in RECOMMENDATION_COLUMNS}, index=wide.index)
    return out.reset_index(drop=True)


def explain(snapshot: Snapshot, config: Config, workload_ref: str) -> str:
    """The full reasoning for one workload's containers ("NAMESPACE/KIND/NAME" or "CLUSTER/NAMESPACE/KIND/NAME")."""
    from .explain import explain as _explain

    return _explain(snapshot, config, workload_ref)


# --- building the frame -------------------------------------------------------------------------------


def _frame(snapshot: Snapshot, containers: pd.DataFrame | None = None) -> pd.DataFrame:
    """Containers left-joined with usage (on CONTAINER_KEY) and workloads (on WORKLOAD_KEY)."""
    tables = snapshot.tables
    cont = _conformed("containers", containers if containers is not None else tables["containers"])
    usage = _conformed("usage", tables["usage"]).drop_duplicates(list(CONTAINER_KEY))
    work = _conformed("workloads", tables["workloads"]).drop_duplicates(list(WORKLOAD_KEY))
    usage = usage[list(CONTAINER_KEY) + _USAGE_COLUMNS].assign(_has_usage=True)
    work = work[list(WORKLOAD_KEY) + _WORKLOAD_COLUMNS].assign(_has_workload=True)
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


def _num(f: pd.DataFrame, col: str) -> np.ndarray:
    return f[col].to_numpy(dtype=float, na_value=np.nan).copy()


def _pick(f: pd.DataFrame, prefix: str, unit: str, stat: np.ndarray) -> np.ndarray:
    """Per row, the usage column named by that row's statistic (p50 ... max)."""
    out = np.full(len(f), np.nan)
    for p in PERCENTILES:
        m = stat == p
        if m.any():
            out[m] = _num(f, f"{prefix}_{p}_{unit}")[m]
    return out


def _max_bounds(snapshot: Snapshot, f: pd.DataFrame, pcol: np.ndarray, kind: str) -> np.ndarray:
    """Upper bound per row: the policy's max, else the largest node allocatable of the row's cluster
    (all clusters' largest when the cluster has no nodes), else +inf (no nodes at all)."""
    explicit = pcol.astype(float)
    nodes = snapshot.tables["nodes"]
    col = "allocatable_cpu_cores" if kind == "cpu" else "allocatable_memory_bytes"
    if nodes.empty or nodes[col].isna().all():
        node_max = np.full(len(f), np.inf)
    else:
        per_cluster = nodes.groupby("cluster")[col].max()
        node_max = f["cluster"].map(per_cluster).to_numpy(dtype=float, na_value=np.nan)
        node_max = np.where(np.isnan(node_max), float(nodes[col].max()), node_max)
    return np.where(np.isnan(explicit), node_max, explicit)


def _differs(cur: np.ndarray, rec: np.ndarray, frac: np.ndarray, absolute: np.ndarray) -> np.ndarray:
    """True where ``rec`` is a real change from ``cur``: beyond BOTH the relative and absolute thresholds,
    or setting something currently unset."""
    both = ~np.isnan(cur) & ~np.isnan(rec)
    d = np.abs(np.where(both, rec - cur, 0.0))
    big = both & (d > frac * np.where(both, cur, 0.0)) & (d > absolute)
    return big | (np.isnan(cur) & ~np.isnan(rec))


def _cpu_text(cores: np.ndarray) -> pd.Series:
    m = pd.Series(np.round(np.nan_to_num(cores) * 1000).astype(np.int64)).astype(str)
    return m + "m"


def _mem_text(num_bytes: np.ndarray) -> pd.Series:
    mib = pd.Series(np.ceil(np.nan_to_num(num_bytes) / MIB).astype(np.int64)).astype(str)
    return mib + "Mi"


def _pct_text(fraction: np.ndarray) -> pd.Series:
    return pd.Series(np.round(np.nan_to_num(fraction) * 100).astype(np.int64)).astype(str) + "%"


def _join(parts: list[tuple[np.ndarray, pd.Series | str]], n: int, sep: str) -> np.ndarray:
    """Per row, the texts whose mask is True, joined by ``sep`` (element-wise concatenation of object arrays)."""
    out = np.full(n, "", dtype=object)
    for mask, text in parts:
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            continue
        texts = text.to_numpy(dtype=object) if isinstance(text, pd.Series) else np.full(n, text, dtype=object)
        glue = np.where(mask & (out != ""), sep, "").astype(object)
        out = out + glue + np.where(mask, texts, "").astype(object)
    return out


# --- the engine ----------------------------------------------------------------------------------------


def compute(snapshot: Snapshot, config: Config, containers: pd.DataFrame | None = None) -> pd.DataFrame:
    """The wide frame: RECOMMENDATION_COLUMNS plus every intermediate (columns starting with ``_``).

    ``containers`` restricts the run to some rows of the containers table (explain uses it).
    """
    f = _frame(snapshot, containers)
    n = len(f)
    pol = policy_mod.assign_policies(f, snapshot.tables.get("namespaces"), config)
    P = policy_mod.policy_params(config, pol["policy"])
    f["policy"] = pol["policy"].to_numpy()
    f["production"] = P["production"].to_numpy(dtype=bool)
    f["_policy_source"] = pol["policy_source"].to_numpy()
    f["_policy_note"] = pol["policy_note"].to_numpy()

    def p(name: str) -> np.ndarray:
        return P[name].to_numpy()

    def pf(name: str) -> np.ndarray:
        return P[name].to_numpy(dtype=float)

    has_usage = f["_has_usage"].to_numpy(dtype=bool)
    ignored_cfg = pol["ignored_by_config"].to_numpy(dtype=bool)
    ignored_ann = f["ignore"].to_numpy(dtype=bool)
    ignored = ignored_cfg | ignored_ann

    cur_cpu_req, cur_cpu_lim = _num(f, "cpu_request_cores"), _num(f, "cpu_limit_cores")
    cur_mem_req, cur_mem_lim = _num(f, "memory_request_bytes"), _num(f, "memory_limit_bytes")
    hours, samples = _num(f, "hours_covered"), _num(f, "samples")
    oom_kills, throttled_ratio = _num(f, "oom_kills"), _num(f, "cpu_throttled_ratio")
    mem_max, cpu_max_use = _num(f, "memory_max_bytes"), _num(f, "cpu_max_cores")
    margin = pf("margin")

    # --- history and confidence (VPA: confidence in days = min(lifespan, samples at 1/min); we use the
    # snapshot's step instead of one minute) ---
    step = snapshot.meta.get("step_seconds") or 0
    days = np.nan_to_num(hours, nan=0.0) / 24.0
    if step:
        days = np.minimum(days, np.nan_to_num(samples, nan=0.0) * float(step) / DAY)
    full_days = pf("full_confidence_history") / DAY
    safe_days = np.maximum(days, 1.0 / 24.0)
    mult, expo = pf("confidence_multiplier"), pf("confidence_exponent")
    widen = np.where(days < full_days, ((1 + mult / safe_days) / (1 + mult / full_days)) ** expo, 1.0)
    widen = np.maximum(widen, 1.0)
    short_history = (np.nan_to_num(hours) * 3600 < pf("min_history"))
    few_samples = np.nan_to_num(samples) < pf("min_samples")

    cpu_stat, mem_stat = p("cpu_request_percentile").astype(str), p("memory_request_percentile").astype(str)
    cpu_basis = _pick(f, "cpu", "cores", cpu_stat)
    mem_basis = _pick(f, "memory", "bytes", mem_stat)
    no_data = ~has_usage | (np.isnan(cpu_basis) & np.isnan(mem_basis))
    no_rec = ~ignored & (no_data | short_history | few_samples)
    rec = ~ignored & ~no_rec

    # --- requests ---
    min_cpu, min_mem = pf("min_cpu"), pf("min_memory")
    max_cpu = _max_bounds(snapshot, f, pf("max_cpu"), "cpu")
    max_mem = _max_bounds(snapshot, f, pf("max_memory"), "memory")
    allow_hpa = p("allow_hpa_request_change").astype(bool)
    hpa_cpu = ~np.isnan(_num(f, "hpa_cpu_target_percent")) & ~allow_hpa
    hpa_mem = ~np.isnan(_num(f, "hpa_memory_target_percent")) & ~allow_hpa
    keep_cpu = hpa_cpu & ~np.isnan(cur_cpu_req)
    keep_mem = hpa_mem & ~np.isnan(cur_mem_req)

    cpu_raw = cpu_basis * (1 + margin) * widen
    cpu_bounded = np.minimum(np.maximum(cpu_raw, min_cpu), max_cpu)
    cpu_req = round_cpu_up(cpu_bounded)
    cpu_req = np.where(cpu_req > max_cpu, round_cpu_down(max_cpu), cpu_req)
    cpu_capped = cpu_raw > max_cpu
    cpu_req = np.where(keep_cpu, cur_cpu_req, cpu_req)

    mem_raw = mem_basis * (1 + margin) * widen
    mem_bounded = np.minimum(np.maximum(mem_raw, min_mem), max_mem)
    oom = np.nan_to_num(oom_kills) > 0
    oom_floor = np.maximum(mem_max * pf("oom_bump_factor"), mem_max + pf("oom_bump_min"))
    floor = np.where(oom, np.fmax(mem_max, oom_floor), mem_max)
    # After an OOM kill the memory is never lowered: the current request/limit joins the floor.
    # Where the limit may sit above the request (non-production), only the limit must hold the peak;
    # an OOM-killed container gets the bump on both.
    covers_max = p("memory_request_covers_max").astype(bool)
    floor_req = np.where(oom, np.fmax(floor, cur_mem_req), np.where(covers_max, floor, np.nan))
    floor_lim = np.where(oom, np.fmax(floor_req, cur_mem_lim), floor)
    mem_pre = np.where(keep_mem, cur_mem_req, mem_bounded)
    mem_req_exact = np.fmax(mem_pre, floor_req)
    mem_req_exact = np.where(np.isnan(mem_basis) & ~keep_mem, np.nan, mem_req_exact)
    mem_raised = ~np.isnan(floor_req) & ~np.isnan(mem_req_exact) & (floor_req > np.nan_to_num(mem_pre, nan=-1.0))
    mem_req = round_memory_up(mem_req_exact)
    # Requests that were kept (HPA) and need no raise stay byte-exact: rounding would churn them.
    mem_req = np.where(keep_mem & ~mem_raised, cur_mem_req, mem_req)
    over_max = mem_req > max_mem
    mem_down = round_memory_down(max_mem)
    mem_req = np.where(over_max & (mem_down >= np.nan_to_num(floor_req, nan=0.0)), mem_down, mem_req)
    mem_above_max = mem_req > max_mem  # the safety floor (observed usage) wins over the maximum
    mem_capped = (mem_raw > max_mem) & ~mem_above_max

    # --- memory limit ---
    mem_mode = p("memory_limit").astype(str)
    cur_ratio_mem = np.where(~np.isnan(cur_mem_lim) & (np.nan_to_num(cur_mem_req) > 0),
                             cur_mem_lim / np.where(np.nan_to_num(cur_mem_req) > 0, cur_mem_req, 1.0), 1.0)
    mem_lim = np.where(mem_mode == "factor", mem_req * pf("memory_limit_factor"),
                       np.where(mem_mode == "proportional", mem_req * np.maximum(cur_ratio_mem, 1.0), mem_req))
    mem_lim = np.fmax(mem_lim, floor_lim)
    mem_lim = np.where(np.isnan(mem_req), np.nan, np.fmax(mem_lim, mem_req))
    mem_lim = round_memory_up(mem_lim)

    # --- CPU limit ---
    cpu_mode = p("cpu_limit").astype(str)
    has_lim = ~np.isnan(cur_cpu_lim)
    req_for_ratio = np.where(np.nan_to_num(cur_cpu_req) > 0, cur_cpu_req, cur_cpu_lim)  # unset request defaults to the limit
    cpu_ratio = np.where(has_lim, cur_cpu_lim / np.where(req_for_ratio > 0, req_for_ratio, 1.0), np.nan)
    cpu_ratio = np.maximum(cpu_ratio, 1.0)
    action = np.full(n, "keep_unset", dtype=object)
    cpu_lim = np.full(n, np.nan)
    proportional = np.isin(cpu_mode, ["unset", "proportional"]) & has_lim
    cpu_lim = np.where(proportional, cpu_req * cpu_ratio, cpu_lim)
    action[proportional] = "set"
    factor = cpu_mode == "factor"
    cpu_lim = np.where(factor, cpu_req * pf("cpu_limit_factor"), cpu_lim)
    action[factor] = "set"
    remove = (cpu_mode == "remove") & has_lim
    action[remove] = "remove"
    throttled = has_lim & (np.nan_to_num(throttled_ratio) > pf("throttling_threshold"))
    thr_action = p("throttled_limit_action").astype(str)
    thr_remove = throttled & ((thr_action == "remove") | remove)
    thr_raise = throttled & ~thr_remove
    raised = np.fmax.reduce([
        np.nan_to_num(cpu_lim, nan=0.0), cpu_req * pf("cpu_limit_factor"),
        np.nan_to_num(cpu_max_use, nan=0.0) * (1 + margin), cur_cpu_lim * (1 + pf("throttled_limit_raise")),
    ])
    cpu_lim = np.where(thr_raise, raised, cpu_lim)
    action[thr_raise] = "set"
    action[thr_remove] = "remove"
    # A limit under the p99 usage would throttle routinely (and next week's run would raise it again).
    cpu_p99 = _num(f, "cpu_p99_cores")
    lim_p99 = (action == "set") & (np.nan_to_num(cpu_lim, nan=np.inf) < np.nan_to_num(cpu_p99, nan=-np.inf))
    cpu_lim = np.where(action == "set", np.fmax(np.fmax(cpu_lim, cpu_p99), cpu_req), np.nan)
    cpu_lim = round_cpu_up(cpu_lim)
    no_cpu = np.isnan(cpu_req)
    action[no_cpu] = "none"
    cpu_lim = np.where(no_cpu, np.nan, cpu_lim)

    # Rows without a recommendation show none.
    for arr in (cpu_req, cpu_lim, mem_req, mem_lim):
        arr[~rec] = np.nan
    action[~rec] = "none"

    # --- status ---
    frac = pf("change_threshold")
    cpu_diff = _differs(cur_cpu_req, cpu_req, frac, pf("change_threshold_cpu"))
    mem_diff = _differs(cur_mem_req, mem_req, frac, pf("change_threshold_memory"))
    mem_lim_diff = _differs(cur_mem_lim, mem_lim, frac, pf("change_threshold_memory"))
    cpu_lim_diff = (action == "remove") | ((action == "set") & _differs(cur_cpu_lim, cpu_lim, frac, pf("change_threshold_cpu")))
    # Safety beats stability: a current value under a safety floor, or a throttling limit, always changes.
    unsafe = rec & (
        (np.nan_to_num(cur_mem_req, nan=np.inf) < np.nan_to_num(floor_req, nan=-np.inf))
        | (np.nan_to_num(cur_mem_lim, nan=np.inf) < np.nan_to_num(floor, nan=-np.inf))
        | throttled
    )
    changed = rec & (cpu_diff | mem_diff | mem_lim_diff | cpu_lim_diff | unsafe)
    status = np.where(ignored, "ignored", np.where(no_rec, "no_recommendation", np.where(changed, "change", "keep")))

    # --- confidence ---
    conf = np.where(days >= full_days, "high", np.where(days >= pf("medium_confidence_history") / DAY, "medium", "low"))
    conf = np.where(rec, conf, "")

    # --- flags ---
    hpa_any = f["hpa"].to_numpy(dtype=bool) | ~np.isnan(_num(f, "hpa_cpu_target_percent")) | ~np.isnan(_num(f, "hpa_memory_target_percent"))
    over_f = config.recommend.over_provisioned_factor
    over = rec & ((cur_cpu_req > over_f * cpu_req) | (cur_mem_req > over_f * mem_req))
    under = rec & ((cur_cpu_req < cpu_basis) | (cur_mem_req < mem_basis) | (cur_mem_req < mem_max) | oom)
    active = ~ignored
    flag_parts = [
        (active & has_usage & oom, "oom_risk"),
        (active & has_usage & throttled, "throttled"),
        (active & hpa_any, "hpa"),
        (rec & (conf == "low"), "low_confidence"),
        (active & np.isnan(cur_mem_lim) & (mem_mode == "request"), "no_limit"),
        (active & (np.isnan(cur_cpu_req) | np.isnan(cur_mem_req)), "no_request"),
        (over, "over_provisioned"),
        (under, "under_provisioned"),
        (active & f["_replicas_estimated"].to_numpy(dtype=bool), "replicas_estimated"),
    ]
    flags = _join(flag_parts, n, ",")

    # --- reason ---
    pct_margin = _pct_text(margin)
    eff = (1 + margin) * widen
    cpu_txt = "CPU from " + pd.Series(cpu_stat) + " " + _cpu_text(cpu_basis) + " +" + pct_margin
    mem_txt = "memory from " + pd.Series(mem_stat) + " " + _mem_text(mem_basis) + " +" + pct_margin
    widen_txt = "margin widened to " + _pct_text(eff - 1) + " for " + pd.Series(np.round(days, 1)).astype(str) + "d of history"
    oom_txt = ("OOM-killed " + pd.Series(np.nan_to_num(oom_kills).astype(np.int64)).astype(str)
               + "x: memory >= max(peak x " + pd.Series(pf("oom_bump_factor")).astype(str) + ", peak + "
               + _mem_text(pf("oom_bump_min")) + "), never lowered")
    thr_txt = "throttled in " + _pct_text(throttled_ratio) + " of CFS periods: CPU limit "
    history_txt = ("too little history: " + pd.Series(np.round(days, 1)).astype(str) + "d covered, needs "
                   + pd.Series(np.round(pf("min_history") / DAY, 1)).astype(str) + "d")
    samples_txt = ("too few samples: " + pd.Series(np.nan_to_num(samples).astype(np.int64)).astype(str) + ", needs "
                   + pd.Series(pf("min_samples").astype(np.int64)).astype(str))
    ann = config.kubernetes.ignore_annotation
    reason_parts = [
        (ignored_cfg, "ignored by a config override"),
        (ignored_ann & ~ignored_cfg, f"ignored by annotation {ann}"),
        (~ignored & ~has_usage, "no usage data"),
        (~ignored & has_usage & no_data, "no usage data"),
        (~ignored & has_usage & ~no_data & short_history, history_txt),
        (~ignored & has_usage & ~no_data & few_samples, samples_txt),
        (rec & keep_cpu, "HPA scales on CPU utilization: CPU request kept"),
        (rec & ~keep_cpu & ~np.isnan(cpu_basis), cpu_txt),
        (rec & np.isnan(cpu_basis), "no CPU usage data"),
        (rec & keep_mem & ~mem_raised, "HPA scales on memory utilization: memory request kept"),
        (rec & keep_mem & mem_raised, "HPA scales on memory utilization, but the request is under the observed max: raised"),
        (rec & ~keep_mem & ~np.isnan(mem_basis), mem_txt),
        (rec & np.isnan(mem_basis), "no memory usage data"),
        (rec & (widen > 1.0 + 1e-9), widen_txt),
        (rec & oom, oom_txt),
        (rec & ~oom & ~keep_mem & mem_raised, "memory raised to the observed max working set"),
        (rec & thr_raise, thr_txt + "raised"),
        (rec & thr_remove, thr_txt + "removed"),
        (rec & lim_p99 & ~thr_raise, "CPU limit raised to the p99 usage"),
        (rec & cpu_capped, "CPU capped at the max"),
        (rec & mem_capped, "memory capped at the max"),
        (rec & mem_above_max, "memory above the max (largest node) because observed usage needs it"),
        (rec & (status == "keep"), "change below the threshold"),
        (pol["policy_note"].to_numpy(dtype=object) != "", pol["policy_note"]),
    ]
    reason = _join(reason_parts, n, "; ")

    with np.errstate(divide="ignore", invalid="ignore"):
        cpu_change = np.where(np.nan_to_num(cur_cpu_req) > 0, (cpu_req - cur_cpu_req) / cur_cpu_req * 100, np.nan)
        mem_change = np.where(np.nan_to_num(cur_mem_req) > 0, (mem_req - cur_mem_req) / cur_mem_req * 100, np.nan)

    out = f
    out["status"] = status
    out["reason"] = reason
    out["confidence"] = conf
    out["flags"] = flags
    out["cpu_request_cores_current"] = cur_cpu_req
    out["cpu_request_cores_recommended"] = cpu_req
    out["cpu_limit_cores_current"] = cur_cpu_lim
    out["cpu_limit_cores_recommended"] = cpu_lim
    out["cpu_limit_action"] = action.astype(str)
    out["memory_request_bytes_current"] = cur_mem_req
    out["memory_request_bytes_recommended"] = mem_req
    out["memory_limit_bytes_current"] = cur_mem_lim
    out["memory_limit_bytes_recommended"] = mem_lim
    out["cpu_change_percent"] = cpu_change
    out["memory_change_percent"] = mem_change
    out["cpu_basis"] = np.where(has_usage, cpu_stat, "")
    out["cpu_basis_cores"] = cpu_basis
    out["memory_basis"] = np.where(has_usage, mem_stat, "")
    out["memory_basis_bytes"] = mem_basis
    out["memory_max_bytes"] = mem_max
    out["cpu_throttled_ratio"] = throttled_ratio
    for c in ("usd_per_month_current", "usd_per_month_recommended", "savings_usd_per_month"):
        out[c] = np.nan
    # intermediates for explain
    out["_days"] = days
    out["_widen"] = widen
    out["_margin"] = margin
    out["_cpu_raw"] = cpu_raw
    out["_mem_raw"] = mem_raw
    out["_min_cpu"], out["_max_cpu"] = min_cpu, max_cpu
    out["_min_mem"], out["_max_mem"] = min_mem, max_mem
    out["_mem_floor_request"] = floor_req
    out["_mem_floor_limit"] = floor_lim
    out["_oom_floor"] = np.where(oom, oom_floor, np.nan)
    out["_keep_cpu_hpa"] = keep_cpu
    out["_keep_mem_hpa"] = keep_mem
    out["_throttled"] = throttled
    out["_cpu_limit_mode"] = cpu_mode
    out["_memory_limit_mode"] = mem_mode
    out["_unsafe_current"] = unsafe
    out["_changes"] = _join([(cpu_diff & rec, "CPU request"), (cpu_lim_diff & rec, "CPU limit"),
                             (mem_diff & rec, "memory request"), (mem_lim_diff & rec, "memory limit")], n, ", ")
    return _types(out)


def _types(out: pd.DataFrame) -> pd.DataFrame:
    for c in RECOMMENDATION_COLUMNS:
        if c.dtype == "str":
            out[c.name] = out[c.name].fillna("").astype(str)
        elif c.dtype == "float":
            out[c.name] = pd.to_numeric(out[c.name], errors="coerce").astype("float64")
    return out
