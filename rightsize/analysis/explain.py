"""``--explain NAMESPACE/KIND/NAME``: the full reasoning behind one workload's recommendations, as text.

Runs the same engine as ``recommend`` on just that workload's containers and prints every
intermediate: the policy and why it applies, the usage evidence, each step from the statistic to
the rounded value, the limits, the safety rules that fired, the flags and the status.
"""
from __future__ import annotations

import difflib
import math
from types import SimpleNamespace

import pandas as pd

from ..config import Config
from ..errors import ConfigError
from ..quantity import format_cpu, format_memory
from ..snapshot import Snapshot
from .recommend import compute


def _cpu(v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "unset"
    if math.isinf(v):
        return "none"
    return format_cpu(v) if v >= 0.001 else f"{v * 1000:.2f}m"


def _mem(v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "unset"
    if math.isinf(v):
        return "none"
    text = format_memory(v)
    return text if text.endswith("i") else f"{v / 2**20:.1f}Mi"


def _num(v: float, fmt: str = "{:.0f}") -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else fmt.format(v)


def _ref(row) -> str:
    return f"{row.namespace}/{row.kind}/{row.workload}"


def find_workload(containers: pd.DataFrame, workload_ref: str) -> pd.DataFrame:
    """The containers of the workload named by ``workload_ref`` (kind matched case-insensitively).

    Raises ConfigError with close matches when nothing matches, or when the ref is ambiguous across clusters.
    """
    parts = workload_ref.strip().split("/")
    if len(parts) not in (3, 4) or not all(parts):
        raise ConfigError(f"--explain: expected NAMESPACE/KIND/NAME or CLUSTER/NAMESPACE/KIND/NAME, got {workload_ref!r}")
    namespace, kind, name = parts[-3:]
    mask = (containers["namespace"] == namespace) & (containers["kind"].str.lower() == kind.lower()) & (containers["workload"] == name)
    if len(parts) == 4:
        mask &= containers["cluster"] == parts[0]
    hit = containers[mask]
    if hit.empty:
        known = sorted({f"{ns}/{k}/{w}" for ns, k, w in containers[["namespace", "kind", "workload"]].itertuples(index=False)})
        wanted = "/".join(parts[-3:])
        # Same name under another kind or namespace first, then spelling neighbours.
        same_name = [k for k in known if k.rsplit("/", 1)[-1] == name]
        close = list(dict.fromkeys(same_name + difflib.get_close_matches(wanted, known, n=5, cutoff=0.5)))[:5]
        hint = f"; did you mean: {', '.join(close)}" if close else f"; {len(known)} workloads in the snapshot"
        raise ConfigError(f"--explain: no workload {workload_ref!r} in the snapshot{hint}")
    clusters = hit["cluster"].unique()
    if len(clusters) > 1:
        raise ConfigError(
            f"--explain: {workload_ref!r} exists in clusters {', '.join(sorted(clusters))}; prefix the cluster, "
            f"e.g. {clusters[0]}/{'/'.join(parts[-3:])}"
        )
    return hit


def explain(snapshot: Snapshot, config: Config, workload_ref: str) -> str:
    """Text explaining every container of one workload (see module docstring)."""
    hit = find_workload(snapshot.tables["containers"], workload_ref)
    wide = compute(snapshot, config, containers=hit)
    # Plain namespaces: itertuples would rename the engine's "_intermediate" columns.
    rows = [SimpleNamespace(**rec) for rec in wide.to_dict("records")]
    first = rows[0]
    lines = [f"{first.cluster}/{_ref(first)}"]
    replicas = _num(first.replicas, "{:.2f}" if first._replicas_estimated else "{:g}")
    if first._replicas_estimated:
        replicas += " (average pods run: pod-hours / window hours)"
    production = "" if first.production else ", non-production"
    lines.append(f"  replicas: {replicas}   team: {first.team or '-'}   policy: {first.policy} ({first._policy_source}){production}")
    hpa_bits = []
    if not math.isnan(first.hpa_cpu_target_percent):
        hpa_bits.append(f"CPU at {first.hpa_cpu_target_percent:.0f}% of request")
    if not math.isnan(first.hpa_memory_target_percent):
        hpa_bits.append(f"memory at {first.hpa_memory_target_percent:.0f}% of request")
    if hpa_bits or first.hpa:
        lines.append(f"  HPA: {', '.join(hpa_bits) or 'on other metrics (requests may change)'}")
    if first._policy_note:
        lines.append(f"  note: {first._policy_note}")
    p = config.policy(first.policy)
    lines.append(
        f"  policy settings: CPU request from {p.cpu_request_percentile}, memory request from {p.memory_request_percentile}, "
        f"margin {p.margin:.0%}, CPU limit {p.cpu_limit}, memory limit {p.memory_limit}, "
        f"change threshold {p.change_threshold:.0%} and {_cpu(p.change_threshold_cpu)} / {_mem(p.change_threshold_memory)}"
    )
    for row in rows:  # one workload: a handful of containers
        lines.append("")
        lines.extend(_container(row, config))
    return "\n".join(lines) + "\n"


def _container(r, config: Config) -> list[str]:
    p = config.policy(r.policy)
    out = [f"  container {r.container} ({r.container_type}): status {r.status.upper()}"
           + (f", confidence {r.confidence}" if r.confidence else "")]
    out.append(f"    reason: {r.reason or '-'}")
    out.append(f"    current: CPU request {_cpu(r.cpu_request_cores_current)}, limit {_cpu(r.cpu_limit_cores_current)}; "
               f"memory request {_mem(r.memory_request_bytes_current)}, limit {_mem(r.memory_limit_bytes_current)}")
    if r._has_usage:
        out.append("    usage (busiest replica per step): CPU "
                   + ", ".join(f"{q} {_cpu(getattr(r, f'cpu_{q}_cores'))}" for q in ("p50", "p90", "p95", "p99", "max")))
        out.append("                                      memory "
                   + ", ".join(f"{q} {_mem(getattr(r, f'memory_{q}_bytes'))}" for q in ("p50", "p90", "p95", "p99", "max")))
        out.append(f"    history: {_num(r.hours_covered, '{:.1f}')} h ({r._days:.1f} d) covered, {_num(r.samples)} samples, "
                   f"{_num(r.pods_seen)} pods seen, {_num(r.restarts)} restarts, {_num(r.oom_kills)} OOM kills, "
                   f"throttled {_num(r.cpu_throttled_ratio * 100 if not math.isnan(r.cpu_throttled_ratio) else math.nan, '{:.0f}%')} of CFS periods")
    else:
        out.append("    usage: none in the snapshot")
    if r.status in ("ignored", "no_recommendation"):
        if r.status == "no_recommendation" and r._has_usage:
            out.append(f"    needs: at least {p.min_history / 86400:g} d of history and {p.min_samples} samples")
        if r.flags:
            out.append(f"    flags: {r.flags}")
        return out
    eff = (1 + r._margin) * r._widen
    widen_text = f" x {r._widen:.3f} (short history: VPA-style confidence widening)" if r._widen > 1 + 1e-9 else ""
    # CPU request
    if r._keep_cpu_hpa:
        out.append(f"    CPU request: kept at {_cpu(r.cpu_request_cores_current)} - the HPA's target is a percentage of it "
                   f"(set allow_hpa_request_change to change it)")
    elif not math.isnan(r.cpu_basis_cores):
        out.append(f"    CPU request: {r.cpu_basis} {_cpu(r.cpu_basis_cores)} x (1 + {r._margin:.0%}){widen_text} = {_cpu(r._cpu_raw)}"
                   f" (x {eff:.3f}); bounds [{_cpu(r._min_cpu)}, {_cpu(r._max_cpu)}]; rounded up -> {_cpu(r.cpu_request_cores_recommended)}")
    else:
        out.append("    CPU request: no CPU usage data, no recommendation")
    # CPU limit
    action = r.cpu_limit_action
    if action == "set":
        why = {"factor": f"request x {p.cpu_limit_factor:g}", "unset": "kept proportional to the request (current limit:request ratio)",
               "proportional": "current limit:request ratio", "remove": ""}.get(r._cpu_limit_mode, "")
        if r._throttled:
            why = (f"throttled {r.cpu_throttled_ratio:.0%} > {p.throttling_threshold:.0%}: raised to at least current x "
                   f"{1 + p.throttled_limit_raise:g}, request x {p.cpu_limit_factor:g} and max usage x (1 + margin)")
        out.append(f"    CPU limit: {_cpu(r.cpu_limit_cores_recommended)} ({why}; never below the request or the p99 usage)")
    elif action == "remove":
        why = f"throttled {r.cpu_throttled_ratio:.0%} of CFS periods" if r._throttled else "policy removes CPU limits"
        out.append(f"    CPU limit: remove ({why})")
    elif action == "keep_unset":
        out.append("    CPU limit: leave unset (policy: no CPU limit, so no CFS throttling)")
    # memory request
    if not math.isnan(r.memory_request_bytes_recommended):
        if r._keep_mem_hpa and r.memory_request_bytes_recommended == r.memory_request_bytes_current:
            out.append(f"    memory request: kept at {_mem(r.memory_request_bytes_current)} - the HPA's target is a percentage of it")
        elif r._keep_mem_hpa:
            out.append(f"    memory request: the HPA scales on it, but the current {_mem(r.memory_request_bytes_current)} "
                       "is under the safety floor, so it is raised")
        else:
            out.append(f"    memory request: {r.memory_basis} {_mem(r.memory_basis_bytes)} x (1 + {r._margin:.0%}){widen_text} = "
                       f"{_mem(r._mem_raw)}; bounds [{_mem(r._min_mem)}, {_mem(r._max_mem)}]")
        floor_bits = [f"observed max {_mem(r.memory_max_bytes)}"]
        if not math.isnan(r._oom_floor):
            floor_bits.append(f"OOM bump max(peak x {p.oom_bump_factor:g}, peak + {_mem(p.oom_bump_min)}) = {_mem(r._oom_floor)}")
            floor_bits.append("current request (never lowered after an OOM kill)")
        out.append(f"      safety floor: {_mem(r._mem_floor_request)} ({'; '.join(floor_bits)}); rounded up -> "
                   f"{_mem(r.memory_request_bytes_recommended)}")
        mode = {"request": "equal to the request", "factor": f"request x {p.memory_limit_factor:g}",
                "proportional": "current limit:request ratio"}[r._memory_limit_mode]
        out.append(f"    memory limit: {_mem(r.memory_limit_bytes_recommended)} ({mode}; never below {_mem(r._mem_floor_limit)})")
    else:
        out.append("    memory: no memory usage data, no recommendation")
    if r.status == "change":
        if r._changes:
            out.append(f"    status CHANGE: {r._changes} differ from current by more than {p.change_threshold:.0%} and "
                       f"{_cpu(p.change_threshold_cpu)} / {_mem(p.change_threshold_memory)} (or are set for the first time)")
        if r._unsafe_current:
            why = ("the current CPU limit throttles" if r._throttled
                   else "the current memory request or limit is under its safety floor")
            out.append(f"    status CHANGE regardless of thresholds: {why}")
    else:
        out.append(f"    status KEEP: every change is within {p.change_threshold:.0%} or {_cpu(p.change_threshold_cpu)} / "
                   f"{_mem(p.change_threshold_memory)}; no patch proposed")
    pct = []
    if not math.isnan(r.cpu_change_percent):
        pct.append(f"CPU request {r.cpu_change_percent:+.0f}%")
    if not math.isnan(r.memory_change_percent):
        pct.append(f"memory request {r.memory_change_percent:+.0f}%")
    if pct:
        out.append(f"    change: {', '.join(pct)}")
    if r.flags:
        out.append(f"    flags: {r.flags}")
    return out
