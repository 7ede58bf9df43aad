"""Rules for memory: the request before its floor, censoring by OOM kills, the floor, the limit."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import censoring
from ...usage_stats import STATISTICS
from ..rounding import round_memory_down, round_memory_up
from .base import Rows, rule, usage_columns
from .text import joined, mem_text, num_text, pct_text, ratio

_STATS = tuple(STATISTICS)  # p50 ... max


@rule(after="cpu_request", reads=("cluster", "mem_basis", "mem_margin", "mem_pattern", "widen", "rec", "keep_memory", "mem_stat",
                                  "stat_text")
      + usage_columns("memory", _STATS),
      writes=("mem_raw", "max_mem", "mem_pre", "mem_marg", "peak", "floor_lim", "floor_req", "oom"),
      settings=("min_memory", "max_memory", "memory_request_covers_max", "memory_limit"))
def memory_request(rows: Rows) -> None:
    """Memory request before its floor: the statistic x (1 + its pattern's margin) x the widening, bounded.

    Memory request before its safety floor = the policy's statistic x (1 + the margin of its usage pattern)
    x the widening, within [min_memory, max_memory]; with memory_limit = margin the margin goes on the limit
    only (``mem_marg``: the statistic x (1 + margin) x the widening, the limit's own floor) and the request
    holds the statistic. The floor: the observed max working set for the limit everywhere and for the
    request where memory_request_covers_max (production: the request holds the peak).

    Reason: "memory from <stat> <value> +<margin>% (<pattern>)", "memory from <stat> <value> (<pattern>:
    limit +<margin>%)", "no memory usage data".
    Flag: none.
    """
    v = rows.v
    basis = v["mem_basis"]
    peak = np.fmax.reduce([rows.stat("memory", p) for p in _STATS])  # the max; any statistic if it is missing
    max_mem = rows.max_bound(rows.pf("max_memory"), "memory")
    on_limit = rows.ps("memory_limit") == "margin"
    raw = basis * (1 + np.where(on_limit, 0.0, v["mem_margin"])) * v["widen"]
    marg = basis * (1 + v["mem_margin"]) * v["widen"]
    v.update(mem_raw=raw, max_mem=max_mem, mem_pre=np.minimum(np.maximum(raw, rows.pf("min_memory")), max_mem),
             mem_marg=np.minimum(np.maximum(marg, rows.pf("min_memory")), max_mem),
             peak=peak, floor_lim=peak, floor_req=np.where(rows.pb("memory_request_covers_max"), peak, np.nan),
             oom=np.zeros(rows.n, dtype=bool))
    rec, keep = v["rec"], v["keep_memory"]
    pattern = pd.Series(v["mem_pattern"], dtype=object)
    rows.reason(rec & ~keep & ~np.isnan(basis), "memory from "
                + joined(v["mem_stat"], np.where(v["mem_stat"] == "max", "", v["stat_text"])) + " " + mem_text(basis)
                + pd.Series(np.where(on_limit, " (" + pattern + ": limit +" + pct_text(v["mem_margin"]) + ")",
                                     " +" + pct_text(v["mem_margin"]) + " (" + pattern + ")"), dtype=object))
    rows.reason(rec & np.isnan(basis), "no memory usage data")


@rule(after="runtime_memory", flags=("oom_risk", "memory_leak"),
      reads=("has_usage", "oom_kills", "restarts", "pods_seen", "hours_covered", "replicas", "memory_limit_bytes",
             "memory_request_bytes", "peak", "max_mem", "floor_req", "floor_lim", "rec", "ignored")
      + usage_columns("memory", ("p50", "p90"), "pooled"),
      writes=("oom", "oom_vpa", "mem_estimate", "oom_bound", "oom_per_week", "oom_life_hours", "oom_capped", "oom_pattern",
              "floor_req", "floor_lim"),
      settings=("oom_escalation", "oom_max_factor", "oom_horizon", "oom_bump_factor", "oom_bump_min"))
def oom_demand(rows: Rows) -> None:
    """Censored memory: an OOM-killed container's peak and limit are lower bounds, escalated with the evidence.

    An OOM-killed container's working set stops at its limit: its observed peak and its
    current limit are lower bounds of its demand. The bound is escalated with the evidence (censoring.py):
    a working set that climbs evenly to the limit is a leak, projected over its pods' life (from pods
    seen and other restarts, at most oom_horizon): bound + (bound - base) x kills in that life; anything
    else is a spike: bound x min(1 + oom_escalation x ln(1 + kills per week per replica), oom_max_factor).
    VPA's max(peak x oom_bump_factor, peak + oom_bump_min) stays the floor; the escalation is capped by the
    largest node's allocatable (or max_memory); the current request and limit are never lowered.

    Reason: "OOM-killed <n>x (<k>/week per replica), <spike|leak>: ...", "... capped at the largest node's
    allocatable <v>".
    Flag: oom_risk, memory_leak.
    """
    v = rows.v
    oom = v["has_usage"] & (np.nan_to_num(rows.num("oom_kills")) > 0)
    peak, max_mem = v["peak"], v["max_mem"]
    est = censoring.memory_demand(
        peak, rows.num("memory_limit_bytes"), rows.stat("memory", "p50", "pooled"), rows.stat("memory", "p90", "pooled"),
        rows.num("oom_kills"), rows.num("restarts"), rows.num("pods_seen"), rows.num("hours_covered"),
        rows.num("replicas"), escalation=rows.pf("oom_escalation"), max_factor=rows.pf("oom_max_factor"),
        horizon_hours=rows.pf("oom_horizon") / 3600.0)
    vpa = np.maximum(peak * rows.pf("oom_bump_factor"), peak + rows.pf("oom_bump_min"))
    capped = oom & (est["demand"] > max_mem)
    demand = np.where(oom, np.fmin(est["demand"], max_mem), np.nan)
    floor = np.fmax(np.fmax(peak, vpa), demand)
    cur_req, cur_lim = rows.num("memory_request_bytes"), rows.num("memory_limit_bytes")
    floor_req = np.where(oom, np.fmax(floor, cur_req), v["floor_req"])
    v.update(oom=oom, oom_vpa=np.where(oom, vpa, np.nan), mem_estimate=demand, oom_bound=est["bound"],
             oom_per_week=est["per_week"], oom_life_hours=est["life_hours"], oom_capped=capped,
             oom_pattern=np.where(oom, est["pattern"], ""), floor_req=floor_req,
             floor_lim=np.where(oom, np.fmax(floor_req, cur_lim), np.where(np.isnan(peak), np.nan, v["floor_lim"])))
    leak = oom & (est["pattern"] == "leak")
    _oom_reasons(rows, est, leak, floor, vpa, capped)
    rows.flag(~v["ignored"] & oom, "oom_risk")
    rows.flag(~v["ignored"] & leak, "memory_leak")


def _oom_reasons(rows: Rows, est: dict, leak: np.ndarray, floor: np.ndarray, vpa: np.ndarray, capped: np.ndarray) -> None:
    v = rows.v
    peak, cur_lim = v["peak"], rows.num("memory_limit_bytes")
    bound_txt = np.where(np.isnan(cur_lim), "observed peak " + mem_text(peak).to_numpy(dtype=object),
                         "observed peak " + mem_text(peak).to_numpy(dtype=object) + " and limit "
                         + mem_text(cur_lim).to_numpy(dtype=object))
    how = np.where(leak, "leak climbing to the limit, projected over " + num_text(np.minimum(
        est["life_hours"], rows.pf("oom_horizon") / 3600) / 24).to_numpy(dtype=object) + "d of pod life",
        "spike, escalated x" + num_text(ratio(est["demand"], est["bound"]), 2).to_numpy(dtype=object))
    rec, oom = v["rec"], v["oom"]
    rows.reason(rec & oom, "OOM-killed " + pd.Series(np.nan_to_num(rows.num("oom_kills")).astype(np.int64)).astype(str)
                + "x (" + num_text(est["per_week"]) + "/week per replica), " + how + ": " + bound_txt
                + " are lower bounds; memory >= " + mem_text(floor) + " (VPA floor max(peak x "
                + num_text(rows.pf("oom_bump_factor"), 2) + ", peak + " + mem_text(rows.pf("oom_bump_min"))
                + ") = " + mem_text(vpa) + "), never lowered")
    rows.reason(rec & capped, "OOM escalation capped at the largest node's allocatable " + mem_text(v["max_mem"]))


@rule(after="growth_demand", reads=("floor_req", "mem_pre", "max_mem", "mem_basis", "mem_raw", "rec", "keep_memory", "oom",
                                    "growth_floor"),
      writes=("mem_req", "mem_raised", "mem_above_max", "mem_capped"))
def memory_floor(rows: Rows) -> None:
    """Memory floor: the request holds its safety floor, rounded up; above the max only for the floor.

    The memory request is at least its safety floor (memory_request, oom_demand), rounded up to whole MiB
    (16 MiB steps from 1 GiB); it exceeds max_memory (the largest node) only when the floor needs it.

    Reason: "memory raised to the observed max working set", "memory capped at the max",
    "memory above the max (largest node) because observed usage needs it".
    Flag: none.
    """
    v = rows.v
    floor_req, pre, max_mem = v["floor_req"], v["mem_pre"], v["max_mem"]
    exact = np.fmax(pre, floor_req)
    exact = np.where(np.isnan(v["mem_basis"]), np.nan, exact)
    raised = ~np.isnan(floor_req) & ~np.isnan(exact) & (floor_req > np.nan_to_num(pre, nan=-1.0))
    req = round_memory_up(exact)
    down = round_memory_down(max_mem)
    req = np.where((req > max_mem) & (down >= np.nan_to_num(floor_req, nan=0.0)), down, req)
    above = req > max_mem
    v.update(mem_req=req, mem_raised=raised, mem_above_max=above, mem_capped=(v["mem_raw"] > max_mem) & ~above)
    rec, keep = v["rec"], v["keep_memory"]
    by_growth = ~np.isnan(v["growth_floor"])  # growth_demand said why
    rows.reason(rec & ~v["oom"] & ~by_growth & ~keep & raised, "memory raised to the observed max working set")
    rows.reason(rec & v["mem_capped"], "memory capped at the max")
    rows.reason(rec & above, "memory above the max (largest node) because observed usage needs it")


@rule(after="hpa_coadjust", reads=("mem_req", "mem_marg", "rt_measured", "memory_request_bytes", "memory_limit_bytes", "floor_lim"),
      writes=("mem_lim", "memory_limit_mode"), settings=("memory_limit", "memory_limit_factor"))
def memory_limit(rows: Rows) -> None:
    """Memory limit: by policy, never below its safety floor or the request.

    Memory limit by policy: request (equal to it), margin (the statistic x (1 + its pattern's margin), which
    the request does not carry; a JVM sized from its heap keeps limit = request, its margin is in its
    non-heap), factor (request x memory_limit_factor) or proportional (the current limit:request ratio),
    never below the limit's safety floor (observed max; after an OOM kill the OOM floor and the current
    limit; a growth's projection) nor the request; rounded up.

    Reason: none (the floors say why in memory_floor and oom_demand).
    Flag: none.
    """
    v = rows.v
    mode, req = rows.ps("memory_limit"), v["mem_req"]
    cur_req, cur_lim = rows.num("memory_request_bytes"), rows.num("memory_limit_bytes")
    positive = np.nan_to_num(cur_req) > 0
    ratio_ = np.where(~np.isnan(cur_lim) & positive, cur_lim / np.where(positive, cur_req, 1.0), 1.0)
    margin = np.where(v["rt_measured"], req, v["mem_marg"])
    lim = np.where(mode == "factor", req * rows.pf("memory_limit_factor"),
                   np.where(mode == "proportional", req * np.maximum(ratio_, 1.0), np.where(mode == "margin", margin, req)))
    lim = np.fmax(lim, v["floor_lim"])
    lim = np.where(np.isnan(req), np.nan, np.fmax(lim, req))
    v.update(mem_lim=round_memory_up(lim), memory_limit_mode=mode)
