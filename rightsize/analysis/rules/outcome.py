"""Rules that conclude: one-off Jobs, change or keep, and the flags about today's values."""
from __future__ import annotations

import numpy as np

from .base import Rows, rule, usage_columns
from .text import join

IMBALANCE = 1.5  # hottest pod's p95 / pooled p95 from which replicas count as imbalanced


@rule(after="self_check", reads=("rec", "kind"), flags=("one_off_job",))
def one_off_job(rows: Rows) -> None:
    """One-off Jobs: a recommendation for the next run, no patch, not in the savings total.

    A Job that no CronJob runs has an immutable pod template: its recommendation is for the next run, in
    the manifest that creates it. Patches skip it and its savings stay out of the totals (summary.py
    shows them apart).

    Reason: "one-off Job: its pod template is immutable; for the next run, change the manifest that creates it".
    Flag: one_off_job.
    """
    mask = rows.v["rec"] & (rows.column("kind").to_numpy() == "Job")
    rows.reason(mask, "one-off Job: its pod template is immutable; for the next run, change the manifest that creates it")
    rows.flag(mask, "one_off_job")


_VALUES = ("cpu_req", "cpu_lim", "mem_req", "mem_lim", "hpa_cpu_target_new", "hpa_memory_target_new")


def _differs(cur: np.ndarray, rec: np.ndarray, frac: np.ndarray, absolute: np.ndarray) -> np.ndarray:
    """True where ``rec`` is a real change from ``cur``: beyond BOTH the relative and absolute thresholds,
    or setting something currently unset."""
    both = ~np.isnan(cur) & ~np.isnan(rec)
    d = np.abs(np.where(both, rec - cur, 0.0))
    big = both & (d > frac * np.where(both, cur, 0.0)) & (d > absolute)
    return big | (np.isnan(cur) & ~np.isnan(rec))


@rule(after="one_off_job",
      reads=_VALUES + ("rec", "no_rec", "ignored", "cpu_action", "floor_req", "floor_lim", "throttled", "cpu_request_cores",
                       "cpu_limit_cores", "memory_request_bytes", "memory_limit_bytes", "hpa_cpu_target_percent",
                       "hpa_memory_target_percent"),
      writes=_VALUES + ("cpu_action", "mem_action", "status", "unsafe", "changes"),
      settings=("change_threshold", "change_threshold_cpu", "change_threshold_memory"))
def status(rows: Rows) -> None:
    """Status: change or keep by the change thresholds; safety beats stability.

    Rows without a recommendation show none. A row is a change when a value moves beyond BOTH
    change_threshold and the absolute threshold (change_threshold_cpu / _memory), sets something unset,
    removes a CPU limit or moves an HPA target, or when the current values are unsafe (under a memory
    safety floor, or throttled): safety beats stability. Otherwise keep.

    Reason: "change below the threshold".
    Flag: none.
    """
    v = rows.v
    rec, no_rec, ignored = v["rec"], v["no_rec"], v["ignored"]
    for key in _VALUES:
        v[key] = np.where(rec, v[key], np.nan)
    v["cpu_action"] = np.where(rec, v["cpu_action"], "none")
    v["mem_action"] = np.where(rec, v["mem_action"], "none")
    frac, cpu_abs, mem_abs = rows.pf("change_threshold"), rows.pf("change_threshold_cpu"), rows.pf("change_threshold_memory")
    cur_cpu_lim = rows.num("cpu_limit_cores")
    diffs = {
        "CPU request": _differs(rows.num("cpu_request_cores"), v["cpu_req"], frac, cpu_abs),
        "CPU limit": (v["cpu_action"] == "remove") | ((v["cpu_action"] == "set") & _differs(cur_cpu_lim, v["cpu_lim"], frac, cpu_abs)),
        "memory request": _differs(rows.num("memory_request_bytes"), v["mem_req"], frac, mem_abs),
        "memory limit": _differs(rows.num("memory_limit_bytes"), v["mem_lim"], frac, mem_abs),
        "HPA target": _target_moves(rows),
    }
    unsafe = rec & ((np.nan_to_num(rows.num("memory_request_bytes"), nan=np.inf) < np.nan_to_num(v["floor_req"], nan=-np.inf))
                    | (np.nan_to_num(rows.num("memory_limit_bytes"), nan=np.inf) < np.nan_to_num(v["floor_lim"], nan=-np.inf))
                    | v["throttled"])
    changed = rec & (np.logical_or.reduce(list(diffs.values())) | unsafe)
    v["status"] = np.where(ignored, "ignored", np.where(no_rec, "no_recommendation", np.where(changed, "change", "keep")))
    v["unsafe"] = unsafe
    v["changes"] = join([(d & rec, name) for name, d in diffs.items()], rows.n, ", ")
    rows.reason(rec & (v["status"] == "keep"), "change below the threshold")


def _target_moves(rows: Rows) -> np.ndarray:
    moves = np.zeros(rows.n, dtype=bool)
    for res in ("cpu", "memory"):
        new, cur = rows.v[f"hpa_{res}_target_new"], rows.num(f"hpa_{res}_target_percent")
        moves |= ~np.isnan(new) & (new != cur)
    return moves


@rule(after="status",
      reads=("ignored", "rec", "cpu_req", "mem_req", "cpu_basis", "mem_basis", "peak", "oom", "cpu_request_cores",
             "memory_request_bytes", "memory_limit_bytes", "_replicas_estimated", "pods_seen")
      + usage_columns("cpu", ("p95",), "max_over_pods") + usage_columns("cpu", ("p95",), "pooled"),
      settings=("memory_limit",),
      flags=("no_limit", "no_request", "over_provisioned", "under_provisioned", "replicas_estimated", "imbalanced_replicas"))
def provisioning_flags(rows: Rows) -> None:
    """Flags about today's values: no limit or request, over- or under-provisioned, estimated replicas.

    Flags about the current values: no memory limit where the policy wants one equal to the request,
    no request, more than over_provisioned_factor x the recommendation, under the usage (or OOM-killed),
    and replicas estimated from pod-hours.

    Reason: none.
    Flag: no_limit, no_request, over_provisioned, under_provisioned, replicas_estimated, imbalanced_replicas
    (the hottest pod's CPU p95 more than 1.5 x the pooled p95).
    """
    v = rows.v
    active, rec = ~v["ignored"], v["rec"]
    cur_cpu, cur_mem = rows.num("cpu_request_cores"), rows.num("memory_request_bytes")
    over_f = rows.config.recommend.over_provisioned_factor
    with np.errstate(invalid="ignore"):
        over = rec & ((cur_cpu > over_f * v["cpu_req"]) | (cur_mem > over_f * v["mem_req"]))
        under = rec & ((cur_cpu < v["cpu_basis"]) | (cur_mem < v["mem_basis"]) | (cur_mem < v["peak"]) | v["oom"])
    rows.flag(active & np.isnan(rows.num("memory_limit_bytes")) & np.isin(rows.ps("memory_limit"), ["request", "margin"]), "no_limit")
    rows.flag(active & (np.isnan(cur_cpu) | np.isnan(cur_mem)), "no_request")
    rows.flag(over, "over_provisioned")
    rows.flag(under, "under_provisioned")
    rows.flag(active & rows.column("_replicas_estimated").to_numpy(dtype=bool), "replicas_estimated")
    rows.flag(active & _imbalanced(rows), "imbalanced_replicas")


def _imbalanced(rows: Rows) -> np.ndarray:
    """The hottest pod's CPU p95 well above every replica's pooled p95 (a leader, a hot shard): a request
    sized for the average replica leaves that one short; max_over_pods sizes for it."""
    hot, pooled = rows.stat("cpu", "p95", "max_over_pods"), rows.stat("cpu", "p95", "pooled")
    with np.errstate(invalid="ignore"):
        return (rows.num("pods_seen") >= 2) & (hot > IMBALANCE * pooled) & (hot - pooled >= 0.01)
