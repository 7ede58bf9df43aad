"""Censored demand: what an OOM kill or a CPU limit hides, estimated from the evidence (pure numpy).

A container never shows more usage than its limit lets it have: the working set of an OOM-killed
container stops at its memory limit, the CPU of a throttled one at its CPU limit. What was
observed there is a lower bound of the demand. These functions estimate how far above it the
demand went, from the evidence a collection has: kill counts, pods seen and restarts, the shape of
the working set, the throttled share of CFS periods and the throttled seconds. Every function
takes and returns arrays (one value per container); units are cores, bytes, hours.

Memory (``memory_demand``):
- the lower bound is the observed peak, and the current limit when there is one (a container is
  OOM-killed when its cgroup reaches the limit, and a short spike that kills is never sampled);
- a *leak* climbs evenly from a base to the limit after every (re)start (``oom_pattern``); it is
  projected over a pod's life (window x replicas / (pods seen + other restarts)), at most the
  horizon: each kill in that life is one more climb of (bound - base) above the bound;
- anything else is a *spike*: the bound x min(1 + escalation x ln(1 + kills per week per replica),
  max factor). The data cannot show how far a spike went past the limit; benchmarks/recommend_bench.py
  shows what the escalation clears on spikes of 1.2-1.8x the limit.

CPU (``cpu_excess``, ``demand_quantile``): in a throttled CFS period a container used its quota
and wanted more. The mean excess over the limit in a throttled period is E = throttled seconds /
(throttled share x pod-seconds) (the kernel adds throttled time up per CPU, so it approximates the
CPU-seconds held back); without that metric E is assumed to be a fraction of the limit. With the
excess above the limit taken as exponential (memoryless), the q-quantile of the demand is
limit + E x ln(share / (1 - q)) wherever the throttled share exceeds 1 - q.
"""
from __future__ import annotations

import numpy as np

from ..usage_stats import QUANTILES

WEEK_HOURS = 168.0
LEAK_SHAPE = 0.5  # (p90 - p50) / (bound - p50): an even climb gives 0.8, a flat line with spikes about 0
AT_LIMIT = 0.95   # a CPU percentile at 95% of the limit or more is taken as held at the limit
# the registry's quantiles; the max is estimated as the p99 (the demand behind a censored max is unknown)
PERCENTILE_Q = {**{q.name: q.quantile for q in QUANTILES}, "max": 0.99}


def _replicas(replicas: np.ndarray) -> np.ndarray:
    return np.where(np.nan_to_num(replicas) > 0, replicas, 1.0)


def kills_per_week(oom_kills: np.ndarray, hours: np.ndarray, replicas: np.ndarray) -> np.ndarray:
    """OOM kills per replica per week of history (0 without kills; history under an hour counts as one)."""
    weeks = np.maximum(np.nan_to_num(hours), 1.0) / WEEK_HOURS
    return np.nan_to_num(oom_kills) / (weeks * _replicas(replicas))


def pod_life_hours(hours: np.ndarray, replicas: np.ndarray, pods_seen: np.ndarray, restarts: np.ndarray,
                   oom_kills: np.ndarray) -> np.ndarray:
    """Hours a container runs between fresh starts other than its OOM kills (inf: none seen in the window).

    Pod replacements and restarts for other reasons both reset a leak. A window of W hours over pods
    that live L hours sees about replicas x (W / L + 1) pods (the first and last are cut by the
    window's edges), so L = W x replicas / (pods seen - replicas + other restarts).
    """
    reps = _replicas(replicas)
    resets = np.maximum(np.nan_to_num(pods_seen) - reps, 0.0) + np.maximum(np.nan_to_num(restarts) - np.nan_to_num(oom_kills), 0.0)
    with np.errstate(divide="ignore"):
        return np.where(resets > 0, np.nan_to_num(hours) * reps / np.where(resets > 0, resets, 1.0), np.inf)


def oom_pattern(p50: np.ndarray, p90: np.ndarray, bound: np.ndarray) -> np.ndarray:
    """'leak' where the working set climbs evenly to the bound ((p90 - p50) >= LEAK_SHAPE x (bound - p50)),
    'spike' otherwise (a steady working set that something pushes past the limit)."""
    span = bound - p50
    with np.errstate(invalid="ignore"):
        leak = (span > 0) & ((p90 - p50) >= LEAK_SHAPE * span)
    return np.where(leak, "leak", "spike")


def leak_projection(bound: np.ndarray, p50: np.ndarray, per_week: np.ndarray, life_hours: np.ndarray,
                    horizon_hours: np.ndarray) -> np.ndarray:
    """Peak working set of a leak over one pod life (at most the horizon), bytes.

    An even climb from ``base`` to the bound has its median halfway: base = 2 p50 - bound. A life of
    H hours with k kills a week holds k H / 168 climbs of (bound - base); the last one is cut short by
    the life's end, so the projection adds one more: bound + (bound - base) x k H / 168.
    """
    base = np.clip(2 * p50 - bound, 0.0, bound)
    climbs = per_week * np.minimum(life_hours, horizon_hours) / WEEK_HOURS
    return bound + (bound - base) * climbs


def spike_escalation(bound: np.ndarray, per_week: np.ndarray, escalation: np.ndarray, max_factor: np.ndarray) -> np.ndarray:
    """bound x min(1 + escalation x ln(1 + kills per week per replica), max factor), bytes."""
    factor = np.minimum(1.0 + escalation * np.log1p(np.maximum(per_week, 0.0)), max_factor)
    return bound * factor


def memory_demand(peak, limit, p50, p90, oom_kills, restarts, pods_seen, hours, replicas, *, escalation, max_factor,
                  horizon_hours) -> dict[str, np.ndarray]:
    """The memory an OOM-killed container needs, by the rules in the module docstring.

    Returns arrays: ``bound`` (lower bound: peak, and the limit when set), ``pattern`` ('leak' / 'spike'),
    ``per_week`` (kills per replica per week), ``life_hours``, ``demand`` (bytes; NaN without a bound).
    """
    bound = np.fmax(peak, limit)
    pattern = oom_pattern(p50, p90, bound)
    per_week = kills_per_week(oom_kills, hours, replicas)
    life = pod_life_hours(hours, replicas, pods_seen, restarts, oom_kills)
    leak = leak_projection(bound, p50, per_week, life, horizon_hours)
    spike = spike_escalation(bound, per_week, escalation, max_factor)
    demand = np.where(pattern == "leak", np.fmax(leak, bound), spike)
    return {"bound": bound, "pattern": pattern, "per_week": per_week, "life_hours": life, "demand": demand}


def share_at_limit(percentiles: dict[str, np.ndarray], limit: np.ndarray) -> np.ndarray:
    """Without CFS data: the share of time usage sat at the limit, from the lowest percentile that
    reached AT_LIMIT x limit (p50 -> 0.5, p90 -> 0.1, p95 -> 0.05, p99 -> 0.01); 0 when none did."""
    share = np.zeros(len(limit))
    for stat in sorted(percentiles, key=PERCENTILE_Q.get, reverse=True):  # a lower percentile at the limit overrides a higher one
        with np.errstate(invalid="ignore"):
            at = np.nan_to_num(percentiles[stat], nan=-1.0) >= AT_LIMIT * limit
        share = np.where(at, 1.0 - PERCENTILE_Q[stat], share)
    return share


def cpu_excess(throttled_seconds: np.ndarray, share: np.ndarray, hours: np.ndarray, replicas: np.ndarray,
               limit: np.ndarray, default_fraction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean CPU wanted above the limit in a throttled period, cores; True where measured from throttled seconds)."""
    pod_seconds = np.nan_to_num(hours) * 3600.0 * _replicas(replicas)
    measured = ~np.isnan(throttled_seconds) & (share > 0) & (pod_seconds > 0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        measured_excess = throttled_seconds / (share * pod_seconds)
    return np.where(measured, measured_excess, default_fraction * limit), measured


def demand_quantile(limit: np.ndarray, excess: np.ndarray, share: np.ndarray, q) -> np.ndarray:
    """The q-quantile of a throttled container's CPU demand, cores: limit + excess x ln(share / (1 - q))
    where the throttled share exceeds 1 - q; NaN where the observed usage already shows it."""
    tail = 1.0 - np.asarray(q, dtype=float)
    # an absurd measured excess overflows to inf here; recommend caps every request at max_cpu / the largest node
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        est = limit + excess * np.log(share / tail)
    return np.where(share > tail, est, np.nan)
