"""Rules for CPU: censoring by a throttling limit, the request, the limit."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import censoring
from ...usage_stats import QUANTILES, STATISTICS
from ..rounding import round_cpu_down, round_cpu_up
from .base import Rows, rule, usage_columns
from .text import cpu_text, joined, pct_text

_QUANTILES = tuple(q.name for q in QUANTILES)  # p50 ... p99
_STATS = tuple(STATISTICS)  # p50 ... max


@rule(after="hpa_scope", flags=("throttled", "demand_hidden"),
      reads=("cpu_limit_cores", "cpu_throttled_ratio", "cpu_throttled_seconds", "hours_covered", "replicas", "has_usage",
             "cpu_stat", "cpu_obs", "rec", "ignored") + usage_columns("cpu", _QUANTILES),
      writes=("throttled", "throttled_share", "cpu_excess", "cpu_excess_measured", "cpu_estimate", "demand_hidden",
              "cpu_p99_estimate", "cpu_basis"),
      settings=("throttling_threshold", "throttled_excess_default", "cpu_request_percentile"))
def cpu_throttling(rows: Rows) -> None:
    """Censored CPU: a throttled container's usage is a lower bound; estimate what the limit hid.

    A container with a CPU limit, throttled in more than throttling_threshold of its CFS
    periods (without CFS data: whose usage percentiles sit at the limit), used at most its limit, so its
    usage is a lower bound. The CPU held back is estimated from the throttled seconds (else assumed
    throttled_excess_default x the limit): E = throttled seconds / (throttled share x pod-seconds) above
    the limit in a throttled period, and with that excess taken as exponential the demand's q-quantile is
    limit + E ln(share / (1 - q)) (censoring.py). Where the share reaches the request's statistic, the
    statistic becomes that estimate, so the request rises with the hidden demand.

    Reason: "throttled in <r>% of CFS periods (threshold <t>%)", "demand hidden by the limit: ...".
    Flag: throttled, demand_hidden.
    """
    v = rows.v
    limit, ratio = rows.num("cpu_limit_cores"), rows.num("cpu_throttled_ratio")
    at_limit = censoring.share_at_limit({q: rows.stat("cpu", q) for q in _QUANTILES}, limit)
    share = np.where(np.isnan(ratio), at_limit, ratio)
    throttled = v["has_usage"] & ~np.isnan(limit) & (share > rows.pf("throttling_threshold"))
    excess, measured = censoring.cpu_excess(rows.num("cpu_throttled_seconds"), share, rows.num("hours_covered"),
                                            rows.num("replicas"), limit, rows.pf("throttled_excess_default"))
    # the request's statistic as a quantile (any pNN, parsed with the config; the max is estimated as the p99)
    stat = rows.setting("cpu_request_percentile")
    q = np.minimum(stat.map({s: s.quantile for s in set(stat)}).to_numpy(dtype=float), 0.99)
    est = censoring.demand_quantile(limit, excess, share, q)
    hidden = throttled & ~np.isnan(est) & (est > np.nan_to_num(v["cpu_obs"], nan=np.inf))
    v.update(throttled=throttled, throttled_share=share, cpu_excess=excess, cpu_excess_measured=measured,
             cpu_estimate=np.where(hidden, est, np.nan), demand_hidden=hidden,
             cpu_p99_estimate=np.where(throttled, censoring.demand_quantile(limit, excess, share, 0.99), np.nan))
    v["cpu_basis"] = np.where(hidden, est, v["cpu_obs"])
    rec = v["rec"]
    source = np.where(measured, " held back on average (throttled seconds)",
                      " assumed held back (" + pct_text(rows.pf("throttled_excess_default")).to_numpy(dtype=object)
                      + " of the limit: no throttled seconds)")
    seen = np.where(np.isnan(ratio), " (usage at the limit, no CFS data)", "").astype(object)
    rows.reason(rec & throttled, "throttled in " + pct_text(share) + " of CFS periods" + seen
                + " (threshold " + pct_text(rows.pf("throttling_threshold")) + ")")
    rows.reason(rec & hidden, "demand hidden by the limit: " + cpu_text(share * excess) + source
                + ", estimated " + pd.Series(v["cpu_stat"]) + " demand " + cpu_text(est))
    rows.flag(~v["ignored"] & throttled, "throttled")
    rows.flag(rec & hidden, "demand_hidden")


@rule(after="cpu_throttling", reads=("cluster", "cpu_basis", "cpu_margin", "cpu_pattern", "widen", "rec", "keep_cpu", "cpu_stat",
                                     "stat_text"),
      writes=("cpu_req", "cpu_raw", "max_cpu", "cpu_capped"), settings=("min_cpu", "max_cpu"))
def cpu_request(rows: Rows) -> None:
    """CPU request: the statistic x (1 + its pattern's margin) x the widening, bounded, rounded up.

    CPU request = the policy's statistic (as cpu_throttling left it) x (1 + the margin of its usage pattern,
    usage_pattern) x the confidence
    widening, at least min_cpu, at most max_cpu (empty: the largest node's allocatable), rounded up to
    5m / 10m / 50m steps.

    Reason: "CPU from <stat> <value> +<margin>% (<pattern>)", "no CPU usage data", "CPU capped at the max".
    Flag: none.
    """
    v = rows.v
    basis = v["cpu_basis"]
    max_cpu = rows.max_bound(rows.pf("max_cpu"), "cpu")
    raw = basis * (1 + v["cpu_margin"]) * v["widen"]
    bounded = np.minimum(np.maximum(raw, rows.pf("min_cpu")), max_cpu)
    req = round_cpu_up(bounded)
    v["cpu_req"] = np.where(req > max_cpu, round_cpu_down(max_cpu), req)
    v.update(cpu_raw=raw, max_cpu=max_cpu, cpu_capped=raw > max_cpu)
    rec, keep = v["rec"], v["keep_cpu"]
    rows.reason(rec & ~keep & ~np.isnan(basis), "CPU from " + joined(v["cpu_stat"], v["stat_text"]) + " "
                + cpu_text(basis) + " +" + pct_text(v["cpu_margin"]) + " (" + pd.Series(v["cpu_pattern"], dtype=object) + ")")
    rows.reason(rec & np.isnan(basis), "no CPU usage data")
    rows.reason(rec & v["cpu_capped"], "CPU capped at the max")


@rule(after="growing_memory_limit", reads=("cpu_req", "cpu_request_cores", "cpu_limit_cores", "throttled", "cpu_p99_estimate",
                                           "cpu_margin", "rec") + usage_columns("cpu", _STATS),
      writes=("cpu_lim", "cpu_action", "cpu_limit_mode"),
      settings=("cpu_limit", "cpu_limit_factor", "throttled_limit_action", "throttled_limit_raise", "cpu_limit_covers_max"))
def cpu_limit(rows: Rows) -> None:
    """CPU limit: by policy; a throttled one is raised to the estimated demand or removed, never lowered.

    CPU limit by policy: unset (none recommended; an existing one stays proportional to the request),
    proportional, factor (request x cpu_limit_factor) or remove. A throttled container's limit is removed
    (throttled_limit_action = remove, or cpu_limit = remove) or raised to at least the estimated p99 demand
    (cpu_throttling), the current limit x (1 + throttled_limit_raise) and the observed max x (1 + its margin),
    so next week is not throttled: it is never lowered. Every limit is at least the request and the
    observed p99 usage, and the observed max where cpu_limit_covers_max (non-production).

    Reason: "CPU limit raised to <v> (estimated p99 demand <v>)", "CPU limit removed (throttled)",
    "CPU limit raised to the p99 usage", "CPU limit raised to the observed max usage".
    Flag: none (cpu_throttling sets throttled).
    """
    v = rows.v
    mode, req, cur_req, cur = rows.ps("cpu_limit"), v["cpu_req"], rows.num("cpu_request_cores"), rows.num("cpu_limit_cores")
    has = ~np.isnan(cur)
    base_req = np.where(np.nan_to_num(cur_req) > 0, cur_req, cur)  # an unset request defaults to the limit
    ratio = np.maximum(np.where(has, cur / np.where(base_req > 0, base_req, 1.0), np.nan), 1.0)
    action = np.full(rows.n, "keep_unset", dtype=object)
    proportional = np.isin(mode, ["unset", "proportional"]) & has
    lim = np.where(proportional, req * ratio, np.where(mode == "factor", req * rows.pf("cpu_limit_factor"), np.nan))
    action[proportional | (mode == "factor")] = "set"
    remove = (mode == "remove") & has
    action[remove] = "remove"
    thr = v["throttled"]
    thr_remove = thr & ((rows.ps("throttled_limit_action") == "remove") | remove)
    thr_raise = thr & ~thr_remove
    raised = np.fmax.reduce([np.nan_to_num(lim, nan=0.0), np.nan_to_num(v["cpu_p99_estimate"], nan=0.0),
                             np.nan_to_num(rows.stat("cpu", "max"), nan=0.0) * (1 + v["cpu_margin"]),
                             cur * (1 + rows.pf("throttled_limit_raise"))])
    lim = np.where(thr_raise, raised, lim)
    action[thr_raise], action[thr_remove] = "set", "remove"
    p99, top = rows.stat("cpu", "p99"), np.fmax.reduce([rows.stat("cpu", p) for p in _STATS])
    covers = rows.pb("cpu_limit_covers_max") & ~np.isnan(top)
    below_p99 = (action == "set") & (np.nan_to_num(lim, nan=np.inf) < np.nan_to_num(p99, nan=-np.inf))
    below_max = (action == "set") & covers & (np.fmax(np.nan_to_num(lim, nan=np.inf), np.nan_to_num(p99)) < top)
    lim = np.fmax(np.fmax(lim, p99), req)
    lim = round_cpu_up(np.where(action == "set", np.where(covers, np.fmax(lim, top), lim), np.nan))
    action[np.isnan(req)] = "none"
    v.update(cpu_lim=np.where(np.isnan(req), np.nan, lim), cpu_action=action, cpu_limit_mode=mode)
    rec = v["rec"]
    rows.reason(rec & thr_raise, "CPU limit raised to " + cpu_text(lim) + " (estimated p99 demand "
                + cpu_text(v["cpu_p99_estimate"]) + ", never lowered)")
    rows.reason(rec & thr_remove, "CPU limit removed (throttled)")
    rows.reason(rec & below_p99 & ~thr_raise, "CPU limit raised to the p99 usage")
    rows.reason(rec & below_max & ~thr_raise, "CPU limit raised to the observed max usage (cpu_limit_covers_max)")
