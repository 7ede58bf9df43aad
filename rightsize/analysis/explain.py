"""``--explain NAMESPACE/KIND/NAME[:CONTAINER]``: the full reasoning behind one workload's recommendations, as text.

Runs the same engine as ``recommend`` on just that workload's containers and prints every
intermediate: the policy and why it applies, the usage evidence, each step from the statistic to
the rounded value, the limits, the safety rules that fired, the flags and the status, and the
pipeline's rules (recommend.PIPELINE) that shaped each container, with their own descriptions.
explain imports recommend, never the other way round.
"""
from __future__ import annotations

import difflib
import math
from types import SimpleNamespace

import pandas as pd

from ..config import Config
from ..errors import ConfigError
from ..formatting import figure, k8s_cpu, k8s_memory
from ..refs import WorkloadRef, refs_text
from ..snapshot import Snapshot
from .recommend import PIPELINE, compute
from .rules.base import Pipeline
from ..usage_stats import BASES, QUANTILES, usage_column


def _cpu(v: float) -> str:
    return k8s_cpu(v, fine=True)


def _mem(v: float) -> str:
    return k8s_memory(v, fine=True)


def find_workload(containers: pd.DataFrame, workload_ref: "str | WorkloadRef") -> pd.DataFrame:
    """Every container of the workload named by ``workload_ref`` (refs.WorkloadRef forms; a :CONTAINER
    suffix must name one of them; kind matched case-insensitively).

    Raises ConfigError with close matches when nothing matches, or when the ref is ambiguous across clusters.
    """
    ref = workload_ref if isinstance(workload_ref, WorkloadRef) else WorkloadRef.parse(workload_ref, what="--explain",
                                                                                      container=True)
    hit = containers[ref.workload().mask(containers)]
    if ref.container and len(hit) and not (hit["container"] == ref.container).any():
        raise ConfigError(f"--explain: {ref.workload()} has no container {ref.container!r}; its containers: "
                          f"{', '.join(sorted(hit['container'].astype(str).unique()))}")
    if hit.empty:
        known = sorted(set(refs_text(containers)))
        wanted = str(WorkloadRef(ref.namespace, ref.kind, ref.name))
        # Same name under another kind or namespace first, then spelling neighbours.
        same_name = [k for k in known if k.rsplit("/", 1)[-1] == ref.name]
        close = list(dict.fromkeys(same_name + difflib.get_close_matches(wanted, known, n=5, cutoff=0.5)))[:5]
        hint = f"; did you mean: {', '.join(close)}" if close else f"; {len(known)} workloads in the snapshot"
        raise ConfigError(f"--explain: no workload {str(workload_ref)!r} in the snapshot{hint}")
    clusters = hit["cluster"].unique()
    if len(clusters) > 1:
        raise ConfigError(
            f"--explain: {str(workload_ref)!r} exists in clusters {', '.join(sorted(clusters))}; prefix the cluster, "
            f"e.g. {WorkloadRef(ref.namespace, ref.kind, ref.name, cluster=clusters[0], container=ref.container)}"
        )
    return hit


def explain(snapshot: Snapshot, config: Config, workload_ref: str, pipeline: Pipeline = PIPELINE) -> str:
    """Text explaining every container of one workload (see module docstring), by ``pipeline``'s rules."""
    ref = WorkloadRef.parse(workload_ref, what="--explain", container=True)
    # The whole workload is computed (its HPA sees every container), the named container alone is shown.
    wide = compute(snapshot, config, containers=find_workload(snapshot.tables["containers"], ref), pipeline=pipeline)
    # Plain namespaces: itertuples would rename the engine's "_intermediate" columns.
    rows = [SimpleNamespace(**rec) for rec in wide.to_dict("records") if rec["container"] == ref.container or not ref.container]
    first = rows[0]
    lines = [str(WorkloadRef.of(vars(first)).workload())]
    replicas = figure(first.replicas, "{:.2f}" if first._replicas_estimated else "{:g}")
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
        lines.append(f"  HPA: {', '.join(hpa_bits) or 'on other metrics (requests may change)'}"
                     f"; requests it scales on: {_hpa_mode(config.policy(first.policy))}")
    if first._policy_note:
        lines.append(f"  note: {first._policy_note}")
    p = config.policy(first.policy)
    lines.append(
        f"  policy settings: CPU request from {p.cpu_request_percentile}, memory request from {p.memory_request_percentile}, "
        f"margin {p.margin:.0%}{_margins_text(p)}, CPU limit {p.cpu_limit}, memory limit {p.memory_limit}, "
        f"change threshold {p.change_threshold:.0%} and {_cpu(p.change_threshold_cpu)} / {_mem(p.change_threshold_memory)}"
    )
    for row in rows:  # one workload: a handful of containers
        lines.append("")
        lines.extend(_container(row, config, pipeline))
    return "\n".join(lines) + "\n"


def _margins_text(p) -> str:
    """' (per pattern: cpu_flat 5%, ...)' for a policy with pattern margins, '' without."""
    return f" (per usage pattern: {', '.join(f'{k} {v:.0%}' for k, v in p.margins.items())})" if p.margins else ""


def _usage_lines(r) -> list[str]:
    """Every statistic of the registry, one line per resource and basis (the max is basis-free)."""
    out = []
    for res, fmt in (("cpu", _cpu), ("memory", _mem)):
        for basis in BASES:
            values = ", ".join(f"{q.name} {fmt(getattr(r, usage_column(res, q.name, basis)))}" for q in QUANTILES)
            out.append(f"    usage {res:<6} {basis:<13} {values}")
        out.append(f"    usage {res:<6} {'max':<13} {fmt(getattr(r, usage_column(res, 'max')))}"
                   + (" (every raw sample)" if res == "memory" else ""))
    return out


def _hpa_mode(p) -> str:
    if p.allow_hpa_request_change:
        return "sized like any other, the target left alone (allow_hpa_request_change)"
    if p.hpa_request == "keep":
        return "kept (hpa_request = keep)"
    return (f"changed with the target so the scaling point stays (hpa_request = co_adjust, target within "
            f"{p.hpa_target_min:.0f}-{p.hpa_target_max:.0f}%)")


def _container(r, config: Config, pipeline: Pipeline) -> list[str]:
    p = config.policy(r.policy)
    out = [f"  container {r.container} ({r.container_type}): status {r.status.upper()}"
           + (f", confidence {r.confidence}" if r.confidence else "")]
    out.append(f"    reason: {r.reason or '-'}")
    out.append(f"    current: CPU request {_cpu(r.cpu_request_cores_current)}, limit {_cpu(r.cpu_limit_cores_current)}; "
               f"memory request {_mem(r.memory_request_bytes_current)}, limit {_mem(r.memory_limit_bytes_current)}")
    out += _evidence(r)
    if r.status in ("ignored", "no_recommendation"):
        if r.status == "no_recommendation" and r._has_usage:
            out.append(f"    needs: at least {p.min_history / 86400:g} d of history and {p.min_samples} samples")
        out += _rules_fired(r, pipeline)
        return out
    out += (_cpu_lines(r, p) + _growth_lines(r, p) + _memory_lines(r, p) + _runtime_lines(r, p) + _self_check_lines(r, config)
            + _status_lines(r, p))
    out += _rules_fired(r, pipeline)
    return out


def _evidence(r) -> list[str]:
    if not r._has_usage:
        return ["    usage: none in the snapshot"]
    throttled = r.cpu_throttled_ratio * 100 if not math.isnan(r.cpu_throttled_ratio) else math.nan
    return _usage_lines(r) + [
        f"    history: {figure(r.hours_covered, '{:.1f}')} h ({r._days:.1f} d) covered, {figure(r.samples)} samples, "
        f"{figure(r.pods_seen)} pods seen, {figure(r.restarts)} restarts, {figure(r.oom_kills)} OOM kills, "
        f"throttled {figure(throttled, '{:.0f}%')} of CFS periods, {figure(r.cpu_throttled_seconds, '{:.0f}')} s throttled",
    ]


def _cpu_lines(r, p) -> list[str]:
    out = []
    eff = (1 + r._cpu_margin) * r._widen
    widen_text = f" x {r._widen:.3f} (short history: VPA-style confidence widening)" if r._widen > 1 + 1e-9 else ""
    if r._throttled:
        how = "measured from throttled seconds" if r._cpu_excess_measured else \
            f"assumed {p.throttled_excess_default:.0%} of the limit (no throttled seconds)"
        out.append(f"    CPU censored: throttled {r._throttled_share:.0%} of CFS periods > {p.throttling_threshold:.0%}: usage is a "
                   f"lower bound; {_cpu(r._cpu_excess)} wanted above the limit per throttled period ({how}); "
                   f"estimated p99 demand {_cpu(r._cpu_p99_estimate)}")
    if r._keep_cpu and r.cpu_request_cores_recommended == r.cpu_request_cores_current:
        out.append(f"    CPU request: kept at {_cpu(r.cpu_request_cores_current)} - the HPA's target is a percentage of it "
                   "(hpa_request = keep, or a container without a request)")
    elif not math.isnan(r.cpu_basis_cores):
        source = (f"estimated {r.cpu_basis} demand {_cpu(r.cpu_demand_estimate_cores)} (observed {_cpu(r._cpu_obs)} is "
                  "held down by the limit)" if not math.isnan(r.cpu_demand_estimate_cores) else f"{r.cpu_basis} {_cpu(r.cpu_basis_cores)}")
        out.append(f"    CPU request: {source} x (1 + {r._cpu_margin:.0%}, {r.cpu_pattern} usage){widen_text} = {_cpu(r._cpu_raw)}"
                   f" (x {eff:.3f}); bounds [{_cpu(r._min_cpu)}, {_cpu(r._max_cpu)}]; rounded up -> {_cpu(r._cpu_req_usage)}")
    else:
        out.append("    CPU request: no CPU usage data, no recommendation")
    out += _hpa_line(r, "cpu", _cpu)
    action = r.cpu_limit_action
    if action == "set":
        why = {"factor": f"request x {p.cpu_limit_factor:g}", "unset": "kept proportional to the request (current limit:request ratio)",
               "proportional": "current limit:request ratio", "remove": ""}.get(r._cpu_limit_mode, "")
        if r._throttled:
            why = (f"throttled: raised to at least the estimated p99 demand, current x {1 + p.throttled_limit_raise:g} "
                   "and max usage x (1 + margin); never lowered")
        floor = "the request, the p99 usage" + (" and the max usage" if p.cpu_limit_covers_max else "")
        out.append(f"    CPU limit: {_cpu(r.cpu_limit_cores_recommended)} ({why}; never below {floor})")
    elif action == "remove":
        why = f"throttled {r._throttled_share:.0%} of CFS periods" if r._throttled else "policy removes CPU limits"
        out.append(f"    CPU limit: remove ({why})")
    elif action == "keep_unset":
        out.append("    CPU limit: leave unset (policy: no CPU limit, so no CFS throttling)")
    return out


def _hpa_line(r, res: str, fmt) -> list[str]:
    cur, new = getattr(r, f"hpa_{res}_target_percent_current"), getattr(r, f"hpa_{res}_target_percent_recommended")
    if math.isnan(cur) or math.isnan(new):
        return []
    before = r._cpu_req_usage if res == "cpu" else r._mem_req_usage
    after = r.cpu_request_cores_recommended if res == "cpu" else r.memory_request_bytes_recommended
    raised = f"; request raised {fmt(before)} -> {fmt(after)} to keep it at the target's maximum" if after > before else ""
    return [f"      HPA target {res}: {cur:.0f}% -> {new:.0f}% so that target x pod request (the scaling point) stays{raised}"]


def _memory_lines(r, p) -> list[str]:
    if math.isnan(r.memory_request_bytes_recommended):
        return ["    memory: no memory usage data, no recommendation"]
    out = []
    widen_text = f" x {r._widen:.3f}" if r._widen > 1 + 1e-9 else ""
    if r._keep_memory and r.memory_request_bytes_recommended == r.memory_request_bytes_current:
        out.append(f"    memory request: kept at {_mem(r.memory_request_bytes_current)} - the HPA's target is a percentage of it")
    elif r._keep_memory:
        out.append(f"    memory request: the HPA scales on it, but the current {_mem(r.memory_request_bytes_current)} "
                   "is under the safety floor, so it is raised")
    elif r._rt_measured:
        out.append(f"    memory request: the JVM's heap + non-heap (runtime, below; its working set followed the old heap) = "
                   f"{_mem(r._mem_raw)}; bounds [{_mem(r._min_mem)}, {_mem(r._max_mem)}]")
    elif r._memory_limit_mode == "margin":
        out.append(f"    memory request: {r.memory_basis} {_mem(r.memory_basis_bytes)}{widen_text} = {_mem(r._mem_raw)} (its "
                   f"{r.memory_pattern} usage's margin {r._mem_margin:.0%} goes on the limit); bounds [{_mem(r._min_mem)}, "
                   f"{_mem(r._max_mem)}]")
    else:
        out.append(f"    memory request: {r.memory_basis} {_mem(r.memory_basis_bytes)} x (1 + {r._mem_margin:.0%}, {r.memory_pattern} "
                   f"usage){widen_text} = "
                   f"{_mem(r._mem_raw)}; bounds [{_mem(r._min_mem)}, {_mem(r._max_mem)}]")
    floor_bits = [f"heap + non-heap {_mem(r._rt_floor)}" if r._rt_measured else f"observed max {_mem(r.memory_max_bytes)}"]
    if not r._rt_measured and not math.isnan(r._rt_floor):
        floor_bits.append(f"runtime {_mem(r._rt_floor)}")
    if r._oom:
        out.append(f"    memory censored: OOM-killed {r.oom_kills:.0f}x ({r._oom_per_week:.1f} a week per replica, pods live "
                   f"{r._oom_life_hours / 24:.1f} d), {r.oom_pattern}; lower bound {_mem(r._oom_bound)} (peak and limit); "
                   f"estimated need {_mem(r.memory_demand_estimate_bytes)}"
                   + (f" (capped at the largest node's allocatable {_mem(r._max_mem)})" if r._oom_capped else ""))
        floor_bits.append(f"VPA bump max(peak x {p.oom_bump_factor:g}, peak + {_mem(p.oom_bump_min)}) = {_mem(r._oom_vpa)}")
        floor_bits.append(f"OOM estimate {_mem(r.memory_demand_estimate_bytes)}")
        floor_bits.append("current request (never lowered after an OOM kill)")
    if not math.isnan(r._growth_floor):
        floor_bits.append(f"projected peak x (1 + {r._mem_margin:.0%}) = {_mem(r._growth_floor)}")
    floored = r.memory_request_bytes_recommended if r._keep_memory else r._mem_req_usage
    out.append(f"      safety floor: {_mem(r._mem_floor_request)} ({'; '.join(floor_bits)}); rounded up -> {_mem(floored)}")
    out += _hpa_line(r, "memory", _mem)
    mode = {"request": "equal to the request", "factor": f"request x {p.memory_limit_factor:g}",
            "proportional": "current limit:request ratio",
            "margin": "equal to the request" if r._rt_measured else
            f"{r.memory_basis} x (1 + {r._mem_margin:.0%}){widen_text}, at least the request"}[r._memory_limit_mode]
    if r.memory_limit_action == "keep_unset":
        out.append("    memory limit: leave unset (none today, and the working set grows: a limit below its real climb would "
                   "OOM-kill a container that never died; memory_growth_limit = unset)")
    else:
        out.append(f"    memory limit: {_mem(r.memory_limit_bytes_recommended)} ({mode}; never below {_mem(r._mem_floor_limit)})")
    return out


def _growth_lines(r, p) -> list[str]:
    """The growth fit of the working set (analysis/growth.py), when the snapshot has daily rows."""
    if not r._growth_known:
        return ["    memory growth: not checked (no per-pod daily rows in the snapshot)"]
    days = figure(r._growth_days)
    if not r._growing:
        return [f"    memory growth: none ({days} whole pod-days, Mann-Kendall z {figure(r._growth_z, '{:.1f}')}: needs z >= 2.33 and "
                "a climb of 5 % of the level over a life)"]
    life = f"{r._growth_life:.1f} d" if math.isfinite(r._growth_life) else "longer than the window (no pod ended in it)"
    return [f"    memory growth: {r.memory_growth_bytes_per_day / 2**20:.1f} MiB per day of pod age (Theil-Sen over {days} whole "
            f"pod-days, Mann-Kendall z {r._growth_z:.1f}); pods live {life}; projected peak within "
            f"{p.oom_horizon / 86400:g} d: {_mem(r.memory_projected_bytes)} (observed max {_mem(r.memory_max_bytes)})"]


def _self_check_lines(r, config: Config) -> list[str]:
    """What the replay of the window's last days said of the recommended limits."""
    days = config.recommend.self_check_days
    if not days:
        return ["    self-check: off ([recommend] self_check_days = 0)"]
    if math.isnan(r.self_check_memory_peak_bytes):
        return [f"    self-check: the last {days} d could not be replayed (no daily rows for this container)"]
    cpu = ""
    if not math.isnan(r.self_check_cpu_share_at_limit):
        cpu = f"; CPU at the limit {r.self_check_cpu_share_at_limit:.1%} of the pod-steps (threshold {config.policy(r.policy).throttling_threshold:.0%})"
    raised = f" -> raised: {r.raised_by_backtest}" if r.raised_by_backtest else " -> passes"
    return [f"    self-check (the last {days} d replayed): peak {_mem(r.self_check_memory_peak_bytes)} against the memory limit"
            f" {_mem(r.memory_limit_bytes_recommended)}{cpu}{raised}"]


def _runtime_lines(r, p) -> list[str]:
    """The runtime's heap, non-heap, live set and occupancy, and the arithmetic of runtime_memory / runtime_setting."""
    if not r.runtime:
        return []
    out = [f"    runtime: {r.runtime} ({r.runtime_evidence}); setting {r.runtime_setting or 'none'}, today "
           f"{_mem(r.heap_bytes_current)}"]
    if r.runtime == "jvm" and r._rt_measured:
        out.append(f"      live set p99 {_mem(r.live_set_bytes)} ({r._rt_live_source}); non-heap peak {_mem(r.non_heap_bytes)} "
                   f"({r._rt_non_heap_source})")
        need = f"live set / occupancy {p.heap_target_occupancy:.0%} = {_mem(r._rt_heap_need)}"
        if math.isnan(r._rt_percent):
            out.append(f"      heap = {need}" + (" (full: never below today's heap)" if r._rt_full else "")
                       + f"; after the patch {_mem(r._rt_heap_new)}")
            out.append(f"      memory = heap {_mem(r._rt_heap_new)} + non-heap {_mem(r.non_heap_bytes)} x (1 + {p.margin:.0%}) = "
                       f"{_mem(r._rt_target)}, never below heap + non-heap {_mem(r._rt_floor)}")
        else:
            out.append(f"      heap at {r._rt_percent:.0%} of the limit: limit >= {need} / {r._rt_percent:.0%} = "
                       f"{_mem(r._rt_heap_need / r._rt_percent)} and >= non-heap x (1 + {p.margin:.0%}) / "
                       f"{1 - r._rt_percent:.0%} = {_mem(r.non_heap_bytes * (1 + p.margin) / (1 - r._rt_percent))}")
        heap = r.heap_bytes_current if math.isnan(r.heap_bytes_recommended) else r.heap_bytes_recommended
        out.append(f"      occupancy after: {figure(r.heap_occupancy * 100, '{:.0f}%')} of the heap {_mem(heap)} "
                   f"(target {p.heap_target_occupancy:.0%})")
    elif not math.isnan(r._rt_floor):
        out.append(f"      memory never below {_mem(r._rt_floor)} (the runtime's heap peak at its share of the limit, "
                   "or its setting as it stays)")
    if r.runtime_setting_action:
        edit = f": {r.runtime_setting_edit}" if r.runtime_setting_edit else ""
        out.append(f"      setting after: {_mem(r.heap_bytes_recommended)} ({r.runtime_setting_action}){edit}")
    return out


def _status_lines(r, p) -> list[str]:
    out = []
    if r.status == "change":
        if r._changes:
            out.append(f"    status CHANGE: {r._changes} differ from current by more than {p.change_threshold:.0%} and "
                       f"{_cpu(p.change_threshold_cpu)} / {_mem(p.change_threshold_memory)} (or are set for the first time)")
        if r._unsafe:
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


def _rules_fired(r, pipeline: Pipeline) -> list[str]:
    """The pipeline's rules that shaped this row, each with what it is for (its declaration's purpose)."""
    fired = set(filter(None, r._rules.split(",")))
    return ["    rules applied:"] + [f"      {rule.name}: {rule.purpose}" for rule in pipeline if rule.name in fired]
