"""The self-check: the window's last days replayed against the recommendation before it is output."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ...schema import CONTAINER_KEY
from .. import backtest
from ..rounding import round_cpu_up, round_memory_up
from .base import Rows, rule
from .text import cpu_text, mem_text, pct_text

_EVIDENCE = ("check_peak", "check_cpu_share", "check_cpu_limit", "raised_by_backtest")


def _replay_days(rows: Rows, days: int):
    """(the last ``days`` days' largest raw working-set sample per row, NaN unknown; the rows' ids in the
    backtest's reduction of those days, -1 where it has none; that reduction, None when the per-pod
    histograms were not loaded)."""
    snap = rows.snapshot
    keys = pd.DataFrame({k: rows.column(k).astype(str) for k in CONTAINER_KEY})
    test = backtest.last_days(snap, days)
    if test is not None:
        ids = test.ids(keys)
        peak = test.daily.reindex(ids)["memory_peak_bytes"].to_numpy(dtype=float)
        return peak, ids, test
    daily = None if "usage_daily" in (snap.meta.get("tables_not_loaded") or []) else snap.tables.get("usage_daily")
    if daily is None or daily.empty or not snap.meta.get("window_end"):
        return np.full(rows.n, np.nan), np.full(rows.n, -1), None
    cut = pd.Timestamp(snap.meta["window_end"]) - pd.Timedelta(days=days)
    recent = daily[daily["day"] >= cut]
    peaks = recent.groupby(list(CONTAINER_KEY), observed=True)["memory_max_bytes"].max()
    peak = pd.MultiIndex.from_frame(keys).map(peaks).to_numpy(dtype=float, na_value=np.nan)
    return peak, np.full(rows.n, -1), None


@rule(after="cpu_limit", reads=tuple(CONTAINER_KEY) + ("rec", "ignored", "mem_lim", "mem_req", "mem_action", "cpu_lim",
                                                      "cpu_action", "memory_limit_mode", "keep_memory", "rt_measured", "rt_jvm"),
      writes=("mem_lim", "mem_req", "cpu_lim") + _EVIDENCE, settings=("throttling_threshold",), flags=("raised_by_backtest",))
def self_check(rows: Rows) -> None:
    """Self-check: the window's last days replayed; a limit they would break is raised to the smallest that passes.

    The last [recommend] self_check_days of the window (the backtest's replay, on the same snapshot) against
    the recommended limits: a memory limit their largest raw working-set sample reaches would have been
    OOM-killed, so it is raised just above that sample (and the request with it where the limit equals the
    request); a CPU limit the pooled pod-steps sit at more than throttling_threshold of the time is raised to
    the smallest limit they reach at most that often. Without per-pod histograms only memory is checked. A
    JVM whose heap the recommendation resizes is left to its heap-aware floor (runtime_memory: the new heap
    plus the non-heap peak): its working set followed the old heap, so replaying it would raise the limit
    back to the old heap's size (the backtest replays such a JVM heap-aware too).

    Reason: "raised by the self-check: the last <d>d peaked at <p>, above the memory limit <l>: limit <n>",
    "raised by the self-check: the last <d>d sat at the CPU limit <l> <s>% of the time (threshold <t>%): limit <n>".
    Flag: raised_by_backtest.
    """
    v = rows.v
    days = rows.config.recommend.self_check_days
    empty = np.full(rows.n, np.nan)
    if not days:
        v.update(check_peak=empty, check_cpu_share=empty, check_cpu_limit=empty, raised_by_backtest=np.full(rows.n, "", dtype=object))
        return
    peak, ids, test = _replay_days(rows, days)
    lim, rec = v["mem_lim"], v["rec"]
    jvm = v["rt_jvm"]
    resized = v["rt_measured"] & (np.abs(np.nan_to_num(jvm["heap_new"] - jvm["heap_now"], nan=np.inf)) >= 2**20)
    oom = rec & ~resized & ~np.isnan(lim) & (np.nan_to_num(peak, nan=-1.0) >= lim)
    new_lim = np.where(oom, round_memory_up(peak + 1.0), lim)
    with_request = oom & (v["memory_limit_mode"] == "request") & ~v["keep_memory"]
    v.update(mem_lim=new_lim, mem_req=np.where(with_request, np.fmax(v["mem_req"], new_lim), v["mem_req"]))
    thr = rows.pf("throttling_threshold")
    cpu_set = rec & (v["cpu_action"] == "set") & ~np.isnan(v["cpu_lim"])
    share = test.share_above(ids, "cpu", v["cpu_lim"], strict=False)[0] if test is not None else empty
    share = np.where(cpu_set & (ids >= 0), share, np.nan)
    throttled = np.nan_to_num(share) > thr
    lowest = test.lowest_limit(ids, "cpu", thr) if test is not None else empty
    cpu_new = np.where(throttled, round_cpu_up(lowest), v["cpu_lim"])
    v.update(cpu_lim=cpu_new, check_peak=peak, check_cpu_share=share, check_cpu_limit=np.where(cpu_set, v["cpu_lim"], np.nan))
    what = np.where(oom & throttled, "memory limit, CPU limit", np.where(oom, "memory limit", np.where(throttled, "CPU limit", "")))
    v["raised_by_backtest"] = what.astype(object)
    d = f"the last {days}d"
    rows.reason(oom, f"raised by the self-check: {d} peaked at " + mem_text(peak) + ", above the memory limit "
                + mem_text(lim) + ": limit " + mem_text(new_lim))
    rows.reason(throttled, f"raised by the self-check: {d} sat at the CPU limit " + cpu_text(v["check_cpu_limit"]) + " "
                + pct_text(share) + " of the time (threshold " + pct_text(thr) + "): limit " + cpu_text(cpu_new))
    rows.flag(oom | throttled, "raised_by_backtest")
