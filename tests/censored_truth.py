"""A generator of containers whose true demand is known, seen through the censoring a real collection applies.

Used by benchmarks/recommend_bench.py (figures: how many OOM-killed or throttled containers a
recommendation leaves below their true demand, and its slack) and by tests that hold the censoring
rules to those figures on a small sample. Pure numpy, deterministic for a seed.

Time: 14 days at one sample a minute (the raw working-set samples; cAdvisor is scraped every 15-60 s),
reduced the way collection reduces them: CPU as the 5-minute rate at every 5-minute step, memory
percentiles from the value at each 5-minute step, the memory max from every raw sample.

Scenarios (``SCENARIOS``), each with a known truth:
- ``spike_oom``: a steady working set with short spikes (1-4 min) whose largest reaches 1.2-1.8x the
  memory limit. A spike that crosses the limit is OOM-killed there, so the working set never shows
  more than the limit (a 1-minute spike that kills is never seen at all). Truth: the largest spike.
- ``leak_oom``: the working set climbs linearly from its baseline after every (re)start; pods are
  replaced by deploys every 1-7 days (more pods seen); crossing the limit kills the container, which
  restarts at the baseline. Truth: what a pod reaches over its whole life, 1.1-2.5x the limit.
- ``throttled``: CPU demand (diurnal, noisy, with sub-second bursts inside each minute) against a
  CPU limit set between its p50 and p97. In each 100 ms CFS period the demand is
  ``m (1 - w) + m w Exp(1)`` for the minute's mean ``m`` and burstiness ``w``; the usage is what fits
  under the limit, the throttled share and throttled seconds are what cAdvisor reports
  (closed forms of the exponential). Truth: p95/p99 of the 5-minute mean demand.
- ``bursty``, ``diurnal``, ``weekly``: uncensored patterns (no CPU limit, memory well under its limit).
- ``cronjob``: a CronJob running 6 h a day (usage exists only while it runs).

Units: cores, bytes, seconds, as everywhere in rightsize.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rightsize.quantity import MIB
from rightsize.snapshot import Snapshot, new_meta

MINUTES = 14 * 24 * 60
STEP_MINUTES = 5
STEP_SECONDS = STEP_MINUTES * 60
WINDOW_HOURS = 14 * 24.0
SCENARIOS = ("spike_oom", "leak_oom", "throttled", "bursty", "diurnal", "weekly", "cronjob")
QUANTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}


@dataclass
class Containers:
    """One scenario's containers: per-minute arrays (n x MINUTES) and per-container facts."""

    scenario: str
    true_cpu: np.ndarray            # demand, cores (mean of the minute)
    used_cpu: np.ndarray            # what the limit let through, cores
    throttled_share: np.ndarray     # share of the minute's CFS periods throttled
    throttled_cpu_seconds: np.ndarray
    true_mem: np.ndarray            # working set it would have without a limit, bytes
    seen_mem: np.ndarray            # working set cAdvisor reports (NaN while not running)
    running: np.ndarray             # bool: a pod is running
    cpu_request: np.ndarray
    cpu_limit: np.ndarray
    mem_request: np.ndarray
    mem_limit: np.ndarray
    oom_kills: np.ndarray
    pods_seen: np.ndarray
    kind: str = "Deployment"


def _minutes() -> np.ndarray:
    return np.arange(MINUTES, dtype=float)


def _diurnal(rng, n: int, amplitude) -> np.ndarray:
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    return 1.0 + np.asarray(amplitude).reshape(-1, 1) * np.sin(2 * np.pi * _minutes() / 1440.0 + phase)


def _noise(rng, n: int, sigma: float) -> np.ndarray:
    """Log-normal noise smoothed over ~10 minutes (load changes gradually)."""
    raw = rng.normal(0.0, sigma, (n, MINUTES + 9))
    kernel = np.ones(10) / 10.0
    smooth = np.stack([np.convolve(r, kernel, mode="valid") for r in raw]) * math.sqrt(10)
    return np.exp(smooth - sigma ** 2 / 2)


def _steady_memory(rng, n: int, level) -> np.ndarray:
    level = np.asarray(level, dtype=float).reshape(-1, 1)
    return level * (1 + 0.02 * rng.standard_normal((n, MINUTES)))


def _unthrottled(true_cpu: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    zeros = np.zeros_like(true_cpu)
    return true_cpu, zeros, zeros


def throttle(m: np.ndarray, limit: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Usage (cores), throttled share of periods and throttled CPU-seconds per minute for mean demand ``m``.

    Per CFS period the demand is X = m (1 - w) + m w E with E ~ Exp(1); with a = L - m (1 - w) and
    s = m w: P(X > L) = exp(-a / s), E[(X - L)+] = s exp(-a / s) (a > 0; otherwise always throttled).
    The excess is held back (throttled) and counted as CPU-seconds (600 periods of 0.1 s a minute).
    """
    limit = np.asarray(limit, dtype=float).reshape(-1, 1)
    w = np.asarray(w, dtype=float).reshape(-1, 1)
    s = np.maximum(m * w, 1e-12)
    a = limit - m * (1 - w)
    with np.errstate(over="ignore"):
        tail = np.exp(-np.maximum(a, 0.0) / s)
    excess = np.where(a > 0, s * tail, m - limit)
    share = np.where(a > 0, tail, 1.0)
    return m - excess, share, excess * 60.0


def spike_oom(rng, n: int) -> Containers:
    limit = np.exp(rng.uniform(np.log(256 * MIB), np.log(2048 * MIB), n))
    base = limit * rng.uniform(0.35, 0.75, n)
    peak = limit * rng.uniform(1.2, 1.8, n)
    per_day = np.exp(rng.uniform(np.log(0.3), np.log(20), n))
    true_mem = _steady_memory(rng, n, base)
    seen = true_mem.copy()
    kills = np.zeros(n)
    for i in range(n):  # a generator, not analysis: a loop over a few hundred containers is fine
        count = max(1, rng.poisson(per_day[i] * 14))
        starts = np.sort(rng.integers(0, MINUTES - 5, count))
        heights = base[i] + (peak[i] - base[i]) * rng.uniform(0, 1, count)
        heights[rng.integers(count)] = peak[i]
        for t0, h in zip(starts, heights):
            dur = int(rng.integers(1, 5))
            ramp = base[i] + (h - base[i]) * np.arange(1, dur + 1) / dur
            true_mem[i, t0:t0 + dur] = np.maximum(true_mem[i, t0:t0 + dur], ramp)
            over = np.nonzero(ramp >= limit[i])[0]
            if len(over):  # killed at the first minute the spike reaches the limit: that sample is lost
                kills[i] += 1
                k = over[0]
                seen[i, t0:t0 + k] = np.minimum(ramp[:k], limit[i] * 0.999)
                seen[i, t0 + k] = np.nan
            else:
                seen[i, t0:t0 + dur] = np.maximum(seen[i, t0:t0 + dur], ramp)
    cpu = 0.05 + 0.15 * rng.random(n)
    true_cpu = cpu.reshape(-1, 1) * _diurnal(rng, n, 0.3) * _noise(rng, n, 0.2)
    used, share, thr = _unthrottled(true_cpu)
    # running throughout: a killed container restarts within the minute (the sample at the kill is lost)
    return Containers("spike_oom", true_cpu, used, share, thr, true_mem, seen, np.ones_like(seen, dtype=bool),
                      cpu * 2, np.full(n, np.nan), limit, limit, kills, np.ones(n))


def leak_oom(rng, n: int) -> Containers:
    limit = np.exp(rng.uniform(np.log(256 * MIB), np.log(2048 * MIB), n))
    base = limit * rng.uniform(0.2, 0.5, n)
    life_days = rng.choice([1.0, 2.0, 3.5, 7.0], n)
    peak = limit * rng.uniform(1.1, 2.5, n)
    growth = (peak - base) / (life_days * 1440)  # bytes per minute
    offset = rng.uniform(0, 1, n) * life_days * 1440
    age = (_minutes()[None, :] + offset[:, None]) % (life_days[:, None] * 1440)  # minutes since the pod started
    true_mem = base[:, None] + growth[:, None] * age
    cycle = (limit - base) / growth  # minutes from a (re)start to the kill
    seen = base[:, None] + growth[:, None] * (age % cycle[:, None])
    seen *= 1 + 0.01 * rng.standard_normal(seen.shape)
    seen = np.minimum(seen, limit[:, None] * 0.999)
    # a kill happens each time the age passes a multiple of the cycle
    kills = np.diff(np.floor(age / cycle[:, None]), axis=1)
    kills = np.where(kills > 0, kills, 0).sum(axis=1)
    pods = np.ceil((MINUTES + offset) / (life_days * 1440))
    cpu = 0.05 + 0.2 * rng.random(n)
    true_cpu = cpu.reshape(-1, 1) * _diurnal(rng, n, 0.3) * _noise(rng, n, 0.2)
    used, share, thr = _unthrottled(true_cpu)
    return Containers("leak_oom", true_cpu, used, share, thr, true_mem, seen, np.ones_like(seen, dtype=bool),
                      cpu * 2, np.full(n, np.nan), limit, limit, kills, pods)


def throttled(rng, n: int) -> Containers:
    mean = np.exp(rng.uniform(np.log(0.05), np.log(2.0), n))
    m = mean.reshape(-1, 1) * _diurnal(rng, n, rng.uniform(0.2, 0.6, n)) * _noise(rng, n, rng.uniform(0.2, 0.5))
    steps = m.reshape(n, -1, STEP_MINUTES).mean(axis=2)
    q = rng.uniform(0.5, 0.97, n)
    limit = np.array([np.quantile(steps[i], q[i]) for i in range(n)])
    w = rng.uniform(0.2, 0.8, n)
    used, share, thr = throttle(m, limit, w)
    mem = np.exp(rng.uniform(np.log(64 * MIB), np.log(1024 * MIB), n))
    true_mem = _steady_memory(rng, n, mem)
    return Containers("throttled", m, used, share, thr, true_mem, true_mem.copy(), np.ones_like(m, dtype=bool),
                      limit * rng.uniform(0.5, 1.0, n), limit, mem * 2, mem * 2, np.zeros(n), np.ones(n))


def _plain(name: str, rng, n: int, cpu_shape: np.ndarray, mem_shape: np.ndarray, running=None,
           kind: str = "Deployment") -> Containers:
    mean = np.exp(rng.uniform(np.log(0.05), np.log(2.0), n))
    mem = np.exp(rng.uniform(np.log(64 * MIB), np.log(2048 * MIB), n))
    true_cpu = mean.reshape(-1, 1) * cpu_shape * _noise(rng, n, 0.25)
    true_mem = mem.reshape(-1, 1) * mem_shape * (1 + 0.02 * rng.standard_normal((n, MINUTES)))
    running = np.ones_like(true_cpu, dtype=bool) if running is None else running
    seen = np.where(running, true_mem, np.nan)
    used, share, thr = _unthrottled(np.where(running, true_cpu, 0.0))
    return Containers(name, true_cpu, used, share, thr, true_mem, seen, running, mean * 2, np.full(n, np.nan),
                      mem * 3, mem * 3, np.zeros(n), np.ones(n), kind=kind)


def bursty(rng, n: int) -> Containers:
    bursts = 1 + rng.uniform(4, 10, (n, 1)) * (rng.random((n, MINUTES // 30)) < 0.05).repeat(30, axis=1)
    return _plain("bursty", rng, n, bursts, 1 + 0.2 * (bursts > 1))


def diurnal(rng, n: int) -> Containers:
    shape = _diurnal(rng, n, rng.uniform(0.4, 0.8, n))
    return _plain("diurnal", rng, n, shape, 0.8 + 0.2 * shape)


def weekly(rng, n: int) -> Containers:
    day = (_minutes() // 1440) % 7
    weekday = np.where(day < 5, 1.0, rng.uniform(0.2, 0.5, (n, 1)))
    shape = weekday * _diurnal(rng, n, 0.5)
    return _plain("weekly", rng, n, shape, 0.7 + 0.3 * weekday)


def cronjob(rng, n: int) -> Containers:
    minute_of_day = _minutes() % 1440
    start = rng.integers(0, 18 * 60, (n, 1))
    running = (minute_of_day >= start) & (minute_of_day < start + 360)
    ramp = np.where(running, 0.5 + (minute_of_day - start) / 360.0, 0.0)
    c = _plain("cronjob", rng, n, np.where(running, 1.0, 0.0), np.maximum(ramp, 0.1), running, kind="CronJob")
    c.pods_seen = np.full(n, 14.0)
    return c


GENERATORS = {"spike_oom": spike_oom, "leak_oom": leak_oom, "throttled": throttled, "bursty": bursty,
              "diurnal": diurnal, "weekly": weekly, "cronjob": cronjob}


def _quantiles(steps: np.ndarray) -> dict[str, np.ndarray]:
    """p50..p99 and max over the steps of each row, NaN steps (not running) left out."""
    out = {p: np.nanquantile(steps, q, axis=1) for p, q in QUANTILES.items()}
    out["max"] = np.nanmax(steps, axis=1)
    return out


def observe(c: Containers) -> pd.DataFrame:
    """The usage rows collection would write for these containers (schema usage columns, no identity)."""
    n = len(c.cpu_limit)
    running_steps = c.running.reshape(n, -1, STEP_MINUTES).any(axis=2)
    cpu_steps = np.where(running_steps, c.used_cpu.reshape(n, -1, STEP_MINUTES).mean(axis=2), np.nan)
    mem_steps = c.seen_mem[:, ::STEP_MINUTES]
    cpu_q, mem_q = _quantiles(cpu_steps), _quantiles(mem_steps)
    mem_q["max"] = np.nanmax(c.seen_mem, axis=1)  # the memory max is taken from every raw sample
    samples = running_steps.sum(axis=1).astype(float)
    periods = np.where(c.running, 600.0, 0.0).sum(axis=1)
    has_limit = ~np.isnan(c.cpu_limit)
    ratio = np.where(has_limit, (c.throttled_share * 600.0 * c.running).sum(axis=1) / np.maximum(periods, 1), np.nan)
    seconds = np.where(has_limit, (c.throttled_cpu_seconds * c.running).sum(axis=1), np.nan)
    from recommend_tables import usage_stats

    stats = ("p50", "p90", "p95", "p99", "max")
    return pd.DataFrame({
        # one pod per container here: every per-replica basis of the registry holds the same values
        **usage_stats([cpu_q[p] for p in stats], [mem_q[p] for p in stats]),
        # the same under the names of the usage table before the registry, for the baseline revision
        # that recommend_bench.py runs beside this one
        **{f"cpu_{p}_cores": v for p, v in cpu_q.items()},
        **{f"memory_{p}_bytes": v for p, v in mem_q.items()},
        "samples": samples, "hours_covered": samples * STEP_SECONDS / 3600.0,
        "oom_kills": c.oom_kills, "restarts": c.oom_kills, "cpu_throttled_ratio": ratio,
        "cpu_throttled_seconds": seconds, "pods_seen": c.pods_seen,
    })


def truth(c: Containers) -> pd.DataFrame:
    """What the container really needed: memory peak, CPU p95/p99 of the 5-minute mean demand (while running)."""
    n = len(c.cpu_limit)
    running_steps = c.running.reshape(n, -1, STEP_MINUTES).any(axis=2)
    steps = np.where(running_steps, c.true_cpu.reshape(n, -1, STEP_MINUTES).mean(axis=2), np.nan)
    return pd.DataFrame({
        "true_memory_peak_bytes": np.nanmax(np.where(c.running, c.true_mem, np.nan), axis=1),
        "true_cpu_p95_cores": np.nanquantile(steps, 0.95, axis=1),
        "true_cpu_p99_cores": np.nanquantile(steps, 0.99, axis=1),
    })


def demand_steps(c: Containers) -> tuple[np.ndarray, np.ndarray]:
    """True demand at each 5-minute step (NaN while not running): CPU mean cores, memory max bytes."""
    n = len(c.cpu_limit)
    running_steps = c.running.reshape(n, -1, STEP_MINUTES).any(axis=2)
    cpu = np.where(running_steps, c.true_cpu.reshape(n, -1, STEP_MINUTES).mean(axis=2), np.nan)
    mem = np.where(c.running, c.true_mem, -np.inf).reshape(n, -1, STEP_MINUTES).max(axis=2)
    return cpu, np.where(running_steps & np.isfinite(mem), mem, np.nan)


def observed_steps(c: Containers) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What a collection reads at each 5-minute step (NaN while not running): CPU mean cores (held down
    by the limit), the working set at the step, and the largest raw working-set sample of the step."""
    n = len(c.cpu_limit)
    running_steps = c.running.reshape(n, -1, STEP_MINUTES).any(axis=2)
    cpu = np.where(running_steps, c.used_cpu.reshape(n, -1, STEP_MINUTES).mean(axis=2), np.nan)
    raw = np.where(c.running, c.seen_mem, -np.inf).reshape(n, -1, STEP_MINUTES).max(axis=2)
    return cpu, c.seen_mem[:, STEP_MINUTES - 1::STEP_MINUTES], np.where(np.isfinite(raw), raw, np.nan)


def generate(per_scenario: int = 40, seed: int = 16, scenarios=SCENARIOS, namespace: str = "bench",
             keep_series: bool = False):
    """(snapshot, truth, series): a validated snapshot of ``per_scenario`` containers per scenario, the truth
    per container (keyed like the snapshot), and the true demand steps per scenario when ``keep_series``."""
    rng = np.random.default_rng(seed)
    containers, usage, workloads, truths, series = [], [], [], [], {}
    for name in scenarios:
        c = GENERATORS[name](rng, per_scenario)
        kind = c.kind
        ident = pd.DataFrame({"cluster": "bench", "namespace": namespace, "kind": kind,
                              "workload": [f"{name}-{i}" for i in range(per_scenario)], "container": "app"})
        containers.append(ident.assign(container_type="main", cpu_request_cores=c.cpu_request,
                                       cpu_limit_cores=c.cpu_limit, memory_request_bytes=c.mem_request,
                                       memory_limit_bytes=c.mem_limit))
        usage.append(pd.concat([ident, observe(c)], axis=1))
        workloads.append(ident.drop(columns="container").assign(
            replicas=1.0, hpa=False, pdb=False, has_pvc=False, has_empty_dir=False, has_host_path=False,
            termination_grace_seconds=30.0, source="test"))
        truths.append(pd.concat([ident.assign(scenario=name), truth(c)], axis=1))
        if keep_series:
            series[name] = demand_steps(c)
            series[f"observed:{name}"] = observed_steps(c)
    end = pd.Timestamp("2026-11-16T00:00:00Z")
    meta = new_meta(step_seconds=STEP_SECONDS, window_start=(end - pd.Timedelta(days=14)).isoformat(),
                    window_end=end.isoformat(), clusters=["bench"])
    snap = Snapshot(tables={"containers": pd.concat(containers, ignore_index=True),
                            "usage": pd.concat(usage, ignore_index=True),
                            "workloads": pd.concat(workloads, ignore_index=True)}, meta=meta)
    return snap.validate(), pd.concat(truths, ignore_index=True), series
