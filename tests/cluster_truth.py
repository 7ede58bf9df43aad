"""A generated cluster whose usage patterns are known, written through the collector's own reducer.

Used by benchmarks/recommend_bench.py (``--cluster N``: the backtest of today's requests and of the
recommendation at 1,000 and 10,000 containers, this tree beside a git revision, and ``--sweep``'s
margin frontier) and by tests that need many containers of known pattern. Deterministic for a seed.

Each container has a CPU pattern (flat, diurnal, bursty, weekly) and a memory pattern (flat, diurnal,
bursty, weekly, growing), replicas (Deployments of 1 to 6, StatefulSets, DaemonSets on every node,
CronJobs running a few hours a day), rollouts that replace every pod (every 2 to 10 days, or none in the
window) and today's requests and limits, set generously as people set them. A *growing* container
leaks: its working set climbs linearly with its age, from a base after every pod start and restart, to
1.5-4x that base over the life it gets (pods replaced by rollouts every few days, restarted daily, or
living longer than the window); a few have a memory limit above that peak, a few one below it (they are
OOM-killed at the limit and restart), most none.

Samples are per pod at a 5-minute step (4,032 steps in 14 days) and go through
``sources/prometheus/usage.py`` exactly as a collection's range answers do: the usage table, the
per-pod histograms and the daily rows (largest raw sample, OOM kills and restarts per pod and day) are
what ``rightsize collect`` would have written. Containers are generated a chunk at a time, so 10,000
of them never hold their samples all at once.

Units: cores, bytes, seconds.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from rightsize.sketch import usage_statistics
from rightsize.quantity import GIB, MIB
from rightsize.snapshot import Snapshot, new_meta
from rightsize.sources.prometheus.client import RangeSeries
from rightsize.sources.prometheus.usage import Grid, UsageAccumulator, reduce_chunk

STEP = 300
PER_DAY = 86400 // STEP
CLUSTER = "gen"
END = pd.Timestamp("2026-11-16T00:00:00Z")
CPU_PATTERNS = {"flat": 0.35, "diurnal": 0.35, "bursty": 0.18, "weekly": 0.12}
MEMORY_PATTERNS = {"flat": 0.52, "diurnal": 0.22, "bursty": 0.12, "weekly": 0.11, "growing": 0.03}
REPLICAS = (1, 2, 3, 4, 6, 2, 3, 2)
ROLLOUT_DAYS = (2.0, 3.5, 7.0, 10.0, np.inf, np.inf)
NAMES = ("api", "gateway", "worker", "indexer", "processor", "writer", "cache", "frontend", "scheduler", "exporter",
         "consumer", "renderer")
PREFIXES = ("identity", "orders", "payments", "catalog", "search", "analytic", "billing", "ledger", "media", "notify",
            "profile", "recommend", "inventory", "shipping")


@dataclass
class Container:
    """One generated container and the pods behind it."""

    namespace: str
    kind: str
    workload: str
    container: str
    replicas: int
    rollout_days: float  # pods replaced every this many days (inf: none in the window)
    cpu_pattern: str
    memory_pattern: str
    cpu_mean: float  # cores
    memory_level: float  # bytes (a growing container's base)
    leak_peak: float  # growing: peak over a life / base
    leak_life_days: float  # growing: the life the peak is reached over
    restart_days: float  # growing: restarted every this many days (inf: never)
    cpu_request: float
    cpu_limit: float
    memory_request: float
    memory_limit: float
    seed: int


def _pick(rng, table: dict, n: int) -> np.ndarray:
    return rng.choice(list(table), n, p=np.array(list(table.values())) / sum(table.values()))


def layout(containers: int, seed: int = 26, nodes: int | None = None) -> list[Container]:
    """The cluster's containers: workloads of 1-2 containers until ``containers`` container specs exist."""
    rng = np.random.default_rng(seed)
    nodes = nodes or max(containers // 100, 4)
    out: list[Container] = []
    w = 0
    while len(out) < containers:
        kind = rng.choice(["Deployment", "StatefulSet", "DaemonSet", "CronJob"], p=[0.845, 0.07, 0.005, 0.08])
        replicas = {"Deployment": REPLICAS[w % len(REPLICAS)], "StatefulSet": int(rng.integers(1, 4)),
                    "DaemonSet": nodes, "CronJob": 1}[kind]
        namespace = (f"staging-{w % 7}" if rng.random() < 0.12 else f"prod-{w % 23:02d}")
        name = f"{PREFIXES[w % len(PREFIXES)]}-{NAMES[(w // len(PREFIXES)) % len(NAMES)]}-{w}"
        rollout = float(rng.choice(ROLLOUT_DAYS)) if kind != "CronJob" else np.inf
        for ci, cname in enumerate(["app", "proxy"][: 1 + int(rng.random() < 0.25)]):
            out.append(_container(rng, namespace, kind, name, cname, replicas, rollout,
                                  ci == 1, len(out) + seed * 1_000_003))
        w += 1
    return out[:containers]


def _container(rng, namespace, kind, workload, name, replicas, rollout, sidecar, seed) -> Container:
    cpu_pattern = str(_pick(rng, CPU_PATTERNS, 1)[0])
    memory_pattern = "flat" if sidecar else str(_pick(rng, MEMORY_PATTERNS, 1)[0])
    if kind == "CronJob" and memory_pattern == "growing":
        memory_pattern = "flat"
    cpu_mean = float(np.exp(rng.uniform(np.log(0.005), np.log(1.5)))) * (0.2 if sidecar else 1.0)
    level = float(np.exp(rng.uniform(np.log(24 * MIB), np.log(3 * GIB)))) * (0.3 if sidecar else 1.0)
    peak, life, restart = np.nan, np.nan, np.inf
    if memory_pattern == "growing":
        peak = float(rng.uniform(1.5, 4.0))
        restart = float(rng.choice([1.0, np.inf, np.inf, np.inf]))
        life = min(restart, rollout if np.isfinite(rollout) else float(rng.uniform(10, 24)))
    cpu_request = cpu_mean * float(rng.uniform(2.0, 6.0))
    top = level * (peak if memory_pattern == "growing" else {"diurnal": 1.3, "bursty": 1.9, "weekly": 1.25}.get(memory_pattern, 1.05))
    memory_request = top * float(rng.uniform(1.3, 2.6)) if memory_pattern != "growing" else level * float(rng.uniform(1.2, 2.0))
    u = rng.random()
    if memory_pattern == "growing":  # most leaks run without a limit; a few have one above their peak, a few below
        memory_limit = np.nan if u < 0.6 else top * (1.25 if u < 0.85 else 0.8)
    else:
        memory_limit = memory_request if u < 0.55 else (np.nan if u < 0.8 else 2 * memory_request)
    cpu_limit = np.nan if rng.random() < 0.75 else cpu_request * 2
    return Container(namespace, kind, workload, name, replicas, rollout, cpu_pattern, memory_pattern, cpu_mean, level,
                     peak, life, restart, cpu_request, cpu_limit, memory_request, memory_limit, seed)


# --- samples ----------------------------------------------------------------------------------------

def _shape(rng, pattern: str, steps: int, phase: float, weekly_low: float) -> np.ndarray:
    """A pattern's multiplier at each step of the window (mean about 1)."""
    t = np.arange(steps)
    day = np.sin(2 * np.pi * t / PER_DAY + phase)
    if pattern == "diurnal":
        return 1 + 0.5 * day
    if pattern == "weekly":
        weekday = ((t // PER_DAY) % 7) < 5
        return np.where(weekday, 1.0, weekly_low) * (1 + 0.3 * day)
    if pattern == "bursty":
        bursts = (rng.random(steps // 6 + 1) < 0.04).repeat(6)[:steps]
        return 1 + bursts * rng.uniform(2.0, 6.0)
    return np.ones(steps)


def _pod_lives(c: Container, steps: int, rng) -> list[tuple[str, int, int, float]]:
    """(pod name, first step, end step, age in days at the first step) of every pod in the window."""
    if c.kind == "CronJob":  # one run a day, 2-6 h, at a fixed hour
        start, length = int(rng.integers(0, PER_DAY // 2)), int(rng.integers(2, 7) * 12)
        return [(f"{c.workload}-{29000000 + d}-x", d * PER_DAY + start, d * PER_DAY + start + length, 0.0)
                for d in range(steps // PER_DAY)]
    if np.isfinite(c.rollout_days):
        period = int(c.rollout_days * PER_DAY)
        offset = int(rng.integers(0, period))
        cuts = [0] + list(range(offset, steps, period)) + [steps]
        cuts = sorted(set(cuts))
    else:
        cuts = [0, steps]
    # the first pods started before the window: a rollout period earlier, or up to 20 days for long-lived pods
    first_age = (period - offset) / PER_DAY if np.isfinite(c.rollout_days) else float(rng.uniform(0, 20))
    return [(f"{c.workload}-{k:x}{r:02d}", s, e, first_age if k == 0 else 0.0)
            for k, (s, e) in enumerate(zip(cuts[:-1], cuts[1:])) for r in range(c.replicas)]


def _leak(c: Container, n: int, age0: float, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A growing container's working set over one pod's life (bytes), and per step its OOM kills and
    restarts. It climbs from its base to base x leak_peak over leak_life_days of age; a restart every
    restart_days and an OOM kill at the limit start the climb again."""
    per_step = c.memory_level * (c.leak_peak - 1) / (c.leak_life_days * PER_DAY)
    age = age0 * PER_DAY + np.arange(n)
    restarts = np.zeros(n)
    if np.isfinite(c.restart_days):
        period = c.restart_days * PER_DAY
        phase = float(rng.uniform(0, period))
        age = (np.arange(n) + phase) % period
        restarts[1:] = np.diff(np.floor((np.arange(n) + phase) / period)) > 0
    kills = np.zeros(n)
    if np.isfinite(c.memory_limit) and c.memory_limit > c.memory_level:
        cycle = (c.memory_limit - c.memory_level) / per_step
        kills[1:] = np.diff(np.floor(age / cycle)) > 0
        kills[1:] *= np.diff(age) > 0  # a restart itself starts a new climb, not a kill
        age = age % cycle
    mem = c.memory_level + per_step * age
    return mem, kills, restarts + kills


def samples(c: Container, steps: int):
    """Per pod: (name, steps, CPU cores, working set at the step, largest raw working-set sample of the step,
    OOM kills per step, restarts per step)."""
    rng = np.random.default_rng(c.seed)
    phase, low = float(rng.uniform(0, 2 * np.pi)), float(rng.uniform(0.2, 0.5))
    cpu_shape = _shape(rng, c.cpu_pattern, steps, phase, low)
    mem_shape = _shape(rng, c.memory_pattern, steps, phase, low) if c.memory_pattern != "growing" else None
    if mem_shape is not None:  # memory swings less than CPU; a burst is a cache or a batch filling it for a while
        mem_shape = 1 + (mem_shape - 1) * {"bursty": 0.15, "diurnal": 0.5, "weekly": 0.6}.get(c.memory_pattern, 0.0)
    out = []
    for pod, s, e, age0 in _pod_lives(c, steps, rng):
        n = e - s
        level = float(rng.normal(1.0, 0.05))
        cpu = c.cpu_mean * level * cpu_shape[s:e] * rng.lognormal(-0.045, 0.3, n)
        if np.isfinite(c.cpu_limit):
            cpu = np.minimum(cpu, c.cpu_limit)
        if mem_shape is None:
            mem, kills, restarts = _leak(c, n, age0, rng)
        else:
            mem = c.memory_level * level * mem_shape[s:e]
            kills = restarts = np.zeros(n)
        mem = mem * (1 + 0.01 * rng.standard_normal(n))
        raw = mem * (1 + np.abs(0.01 * rng.standard_normal(n)))
        if np.isfinite(c.memory_limit):
            mem, raw = np.minimum(mem, c.memory_limit * 0.999), np.minimum(raw, c.memory_limit)
            raw = np.where(kills > 0, c.memory_limit, raw)
        out.append((pod, np.arange(s, e), np.maximum(cpu, 0.0), mem, raw, kills, restarts))
    return out


# --- the snapshot ------------------------------------------------------------------------------------

def _reduce(chunk: list[Container], grid: Grid, acc: UsageAccumulator, owners: dict, raw: list) -> None:
    """One chunk of containers through the collector's reducer, and its daily rows."""
    ts = grid.first + np.arange(grid.n) * grid.step
    series = {"cpu": [], "memory": []}
    rows: dict[str, list] = {k: [] for k in ("namespace", "pod", "container", "day", "memory_max_bytes", "oom_kills", "restarts")}
    for c in chunk:
        for pod, steps, cpu, mem, mx, kills, restarts in samples(c, grid.n):
            owners[(c.namespace, pod)] = (c.kind, c.workload)
            series["cpu"].append(RangeSeries((c.namespace, pod, c.container), cpu, ts[steps]))
            series["memory"].append(RangeSeries((c.namespace, pod, c.container), mem, ts[steps]))
            day = grid.day(steps)
            starts = np.flatnonzero(np.r_[True, day[1:] != day[:-1]])  # steps ascend, so each day is one run
            for k, v in (("namespace", c.namespace), ("pod", pod), ("container", c.container)):
                rows[k].append(np.full(len(starts), v, dtype=object))
            rows["day"].append(day[starts])
            rows["memory_max_bytes"].append(np.maximum.reduceat(mx, starts))
            rows["oom_kills"].append(np.add.reduceat(kills, starts))
            rows["restarts"].append(np.add.reduceat(restarts, starts))
    raw.append(pd.DataFrame({k: np.concatenate(v) for k, v in rows.items()}))
    for resource in ("cpu", "memory"):
        acc.add(reduce_chunk(series[resource], resource, grid, owners))


def generate(containers: int = 1000, seed: int = 26, days: int = 14, chunk: int = 250):
    """(snapshot, the containers' specs as a table): a validated snapshot with per-pod tables."""
    specs = layout(containers, seed)
    return snapshot_of(specs, days, chunk), pd.DataFrame([vars(c) for c in specs]).drop(columns="seed").assign(cluster=CLUSTER)


def snapshot_of(specs: list[Container], days: int = 14, chunk: int = 250) -> Snapshot:
    """A validated snapshot (usage, per-pod histograms and daily rows) of these containers' samples."""
    grid = Grid.of(END.timestamp(), days * 86400.0, float(STEP))
    acc, owners, raw = UsageAccumulator(grid), {}, []
    for i in range(0, len(specs), chunk):
        _reduce(specs[i:i + chunk], grid, acc, owners, raw)
    hist = acc.histograms(CLUSTER, owners)
    daily = acc.daily(CLUSTER, owners, pd.concat(raw, ignore_index=True))
    truth = pd.DataFrame([vars(c) for c in specs]).assign(cluster=CLUSTER)
    key = ["cluster", "namespace", "kind", "workload", "container"]
    per = daily.groupby(key, observed=True)[["oom_kills", "restarts"]].sum().reset_index()
    usage = usage_statistics(hist, daily, STEP).merge(per, on=key, how="left").assign(
        cpu_throttled_ratio=np.nan, cpu_throttled_seconds=np.nan)
    cont = truth[key].assign(container_type="main", cpu_request_cores=truth["cpu_request"], cpu_limit_cores=truth["cpu_limit"],
                             memory_request_bytes=truth["memory_request"], memory_limit_bytes=truth["memory_limit"])
    work = truth.drop_duplicates(key[:4])[key[:4] + ["replicas"]].assign(
        replicas=lambda d: d["replicas"].astype(float), hpa=False, pdb=False, has_pvc=False, has_empty_dir=False,
        has_host_path=False, termination_grace_seconds=30.0, source="test")
    meta = new_meta(step_seconds=STEP, window_start=(END - pd.Timedelta(days=days)).isoformat(), window_end=END.isoformat(),
                    clusters=[CLUSTER])
    snap = Snapshot(tables={"containers": cont, "usage": usage, "workloads": work, "usage_histograms": hist,
                            "usage_daily": daily}, meta=meta)
    return snap.validate()


def container(workload: str, memory_pattern: str = "flat", *, namespace: str = "prod-00", kind: str = "Deployment",
              replicas: int = 1, rollout_days: float = np.inf, memory_level: float = 400 * MIB, leak_peak: float = np.nan,
              leak_life_days: float = np.nan, restart_days: float = np.inf, memory_limit: float = np.nan,
              cpu_pattern: str = "flat", cpu_mean: float = 0.2, seed: int = 1) -> Container:
    """One container spec for a test: requests generous, no CPU limit, the memory limit given (NaN: none)."""
    return Container(namespace, kind, workload, "app", replicas, rollout_days, cpu_pattern, memory_pattern, cpu_mean,
                     memory_level, leak_peak, leak_life_days, restart_days, cpu_mean * 3, np.nan, memory_level * 3,
                     memory_limit, seed)
