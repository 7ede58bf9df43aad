"""A deterministic demo snapshot: one EKS-like cluster in us-east-1 with every situation the tool handles.

Generated from a fixed seed in about a second, so nothing binary is shipped. Every pod gets its own
synthetic 5-minute CPU and working-set series, and those go through the very reducer a collection
uses (sources/prometheus/usage.py, then sketch.py), so the demo's usage table, its
histograms and its daily rows are what `rightsize collect` would have written for those samples.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .demo_gpus import DemoGpu, gpu_nodes_table, gpu_placement, gpu_usage, gpu_usage_columns, gpu_workloads
from .demo_runtimes import DemoRuntime, runtime_tables
from .sketch import usage_statistics
from .quantity import GIB, parse_cpu, parse_memory
from .snapshot import Snapshot, new_meta
from .sources.prometheus.usage import Grid

CLUSTER = "demo"
REGION = "us-east-1"
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
WINDOW_DAYS = 14
STEP_SECONDS = 300  # the demo's synthetic series use a 5-minute step to stay small


@dataclass
class DemoContainer:
    name: str
    cpu_request: str | None
    memory_request: str | None
    cpu_limit: str | None = None
    memory_limit: str | None = None
    cpu_mean: float = 0.1  # cores
    cpu_burst: float = 2.0  # peak / mean
    memory_mean: str = "128Mi"
    memory_growth: float = 0.1  # fraction the working set grows over the window
    oom_kills: int = 0
    restarts: int = 0
    throttled: float = float("nan")  # throttled ratio; NaN = no CPU limit
    init: bool = False
    history_days: float = WINDOW_DAYS
    runtime: DemoRuntime | None = None  # a JVM or Go runtime (demo_runtimes.py): memory_mean is then its non-heap
    gpu: DemoGpu | None = None  # its GPUs (demo_gpus.py)


@dataclass
class DemoWorkload:
    namespace: str
    kind: str
    name: str
    replicas: int
    containers: list[DemoContainer]
    team: str
    hpa_cpu: float = float("nan")
    hpa_memory: float = float("nan")
    pdb_min_available: float = float("nan")
    pdb_max_unavailable: float = float("nan")
    pvc: bool = False
    empty_dir: bool = False
    host_path: bool = False
    grace: float = 30.0
    capacity: str = ""  # capacity type the spec pins
    zones: tuple = ZONES
    on_spot: bool = False
    ignore: bool = False
    spot_preference: str = ""
    services: list[tuple] = field(default_factory=list)  # (name, type, internal)
    checkpoints: bool = False  # annotated as checkpointing its work (a training job that can resume)

    @property
    def gpus(self) -> bool:
        return any(c.gpu is not None for c in self.containers)


C = DemoContainer
W = DemoWorkload

NAMESPACES = {
    "shop": {"environment": "production", "team": "storefront"},
    "payments": {"environment": "production", "team": "payments"},
    "data": {"environment": "production", "team": "data"},
    "staging": {"environment": "staging", "team": "storefront"},
    "ci-runners": {"environment": "ci", "team": "platform"},
    "monitoring": {"environment": "production", "team": "platform"},
    "ml-platform": {"environment": "production", "team": "ml-platform"},
}


def _workloads() -> list[DemoWorkload]:
    """The demo estate, one namespace at a time."""
    return [*_shop(), *_payments(), *_data(), *_staging(), *_ci_runners(), *_monitoring(),
            *gpu_workloads(W, C)]  # the GPU block: ml-platform (demo_gpus.py)


def _shop() -> list[DemoWorkload]:
    """shop (production)"""
    return [
        W("shop", "Deployment", "frontend", 6, [C("web", "1", "1Gi", None, "1Gi", cpu_mean=0.18, memory_mean="300Mi")],
          "storefront", hpa_cpu=70, pdb_max_unavailable=1, services=[("frontend", "LoadBalancer", False)]),
        W("shop", "Deployment", "checkout", 3, [C("app", "500m", "512Mi", "500m", "512Mi", cpu_mean=0.33, cpu_burst=2.2, memory_mean="380Mi", throttled=0.42),
                                               C("envoy", "100m", "128Mi", None, "128Mi", cpu_mean=0.02, memory_mean="60Mi")],
          "storefront", pdb_min_available=2, services=[("checkout", "ClusterIP", False)]),
        W("shop", "Deployment", "cart", 3, [C("app", "2", "4Gi", None, "4Gi", cpu_mean=0.07, memory_mean="420Mi")],
          "storefront", pdb_max_unavailable=1, services=[("cart", "ClusterIP", False)]),
        W("shop", "Deployment", "catalog", 4, [C("app", "1500m", "2Gi", None, "2Gi", cpu_mean=0.25, memory_mean="700Mi")],
          "storefront", services=[("catalog", "ClusterIP", False)]),
        W("shop", "Deployment", "search", 2, [C("app", "250m", "1Gi", None, "1Gi", cpu_mean=0.6, memory_mean="900Mi", memory_growth=0.25, oom_kills=4, restarts=4)],
          "storefront", services=[("search", "ClusterIP", False)]),
        W("shop", "Deployment", "recommendations", 2, [C("app", "500m", "1Gi", None, "1Gi", cpu_mean=0.12, memory_mean="450Mi")],
          "storefront", hpa_cpu=60, services=[("recommendations", "ClusterIP", False)]),
        W("shop", "Deployment", "ads", 2, [C("app", "300m", "512Mi", None, "512Mi", cpu_mean=0.05, memory_mean="200Mi")],
          "storefront", capacity="on-demand", services=[("ads", "LoadBalancer", False)]),
        W("shop", "Deployment", "currency", 2, [C("app", "200m", "256Mi", None, "256Mi", cpu_mean=0.04, memory_mean="90Mi")],
          "storefront", services=[("currency", "ClusterIP", False)]),
        W("shop", "Deployment", "email", 1, [C("app", "100m", "128Mi", None, "128Mi", cpu_mean=0.01, memory_mean="70Mi")],
          "storefront", services=[("email", "ClusterIP", False)]),
        W("shop", "Deployment", "image-resizer", 2, [C("app", "1", "2Gi", None, "2Gi", cpu_mean=0.12, memory_mean="300Mi")],
          "storefront", on_spot=True, spot_preference="in", services=[("image-resizer", "ClusterIP", False)]),
        W("shop", "StatefulSet", "redis", 3, [C("redis", "500m", "2Gi", None, "2Gi", cpu_mean=0.05, memory_mean="1200Mi", memory_growth=0.05)],
          "storefront", pvc=True, grace=60, pdb_max_unavailable=1, services=[("redis", "ClusterIP", False)]),
        W("shop", "Deployment", "legacy-admin", 1, [C("app", None, None, cpu_mean=0.03, memory_mean="150Mi")],
          "storefront", zones=("us-east-1a",), services=[("legacy-admin", "LoadBalancer", False)]),
        W("shop", "Deployment", "new-feature", 2, [C("app", "500m", "512Mi", None, "512Mi", cpu_mean=0.05, memory_mean="100Mi", history_days=1.5)],
          "storefront"),
    ]


def _payments() -> list[DemoWorkload]:
    """payments (production)"""
    return [
        W("payments", "Deployment", "payments-api", 3, [C("app", "1", "1Gi", "2", "1Gi", cpu_mean=0.2, memory_mean="500Mi"),
                                                        C("istio-proxy", "100m", "128Mi", None, "256Mi", cpu_mean=0.03, memory_mean="80Mi")],
          "payments", pdb_min_available=3, grace=180, services=[("payments-api", "ClusterIP", False)]),
        W("payments", "Deployment", "fraud-scorer", 2, [C("model", "2", "6Gi", None, "6Gi", cpu_mean=0.9, cpu_burst=1.6, memory_mean="3Gi")],
          "payments", hpa_memory=80, services=[("fraud-scorer", "ClusterIP", False)]),
        W("payments", "StatefulSet", "postgres", 2, [C("postgres", "2", "8Gi", None, "8Gi", cpu_mean=0.3, memory_mean="5Gi", memory_growth=0.05),
                                                     C("metrics-exporter", "50m", "64Mi", None, "64Mi", cpu_mean=0.005, memory_mean="30Mi")],
          "payments", pvc=True, grace=300, pdb_max_unavailable=0, zones=("us-east-1a", "us-east-1b"), services=[("postgres", "ClusterIP", False)]),
        W("payments", "CronJob", "ledger-export", 1, [C("export", "1", "2Gi", None, "2Gi", cpu_mean=0.15, cpu_burst=5, memory_mean="600Mi"),
                                                      C("fetch-config", "100m", "64Mi", None, "64Mi", cpu_mean=0.01, memory_mean="20Mi", init=True)],
          "payments"),
        W("payments", "Deployment", "webhooks", 2, [C("app", "250m", "256Mi", None, "256Mi", cpu_mean=0.03, memory_mean="120Mi")],
          "payments", services=[("webhooks", "LoadBalancer", True)]),
    ]


def _data() -> list[DemoWorkload]:
    """data (production)"""
    return [
        W("data", "StatefulSet", "kafka", 3, [C("kafka", "2", "8Gi", None, "8Gi", cpu_mean=0.7, memory_mean="6Gi", memory_growth=0.02)],
          "data", pvc=True, grace=120, pdb_max_unavailable=1, services=[("kafka", "ClusterIP", False)]),
        W("data", "Deployment", "etl-worker", 4, [C("worker", "1", "3Gi", None, "3Gi", cpu_mean=0.45, cpu_burst=3, memory_mean="1800Mi")],
          "data", empty_dir=True, pdb_max_unavailable=1),
        W("data", "CronJob", "nightly-report", 1, [C("report", "500m", "1Gi", None, "1Gi", cpu_mean=0.2, cpu_burst=4, memory_mean="700Mi", oom_kills=1, restarts=1)],
          "data"),
        W("data", "Job", "backfill-2026-11", 1, [C("backfill", "4", "6Gi", None, "6Gi", cpu_mean=1.1, memory_mean="2Gi", history_days=4)], "data"),
    ]


def _staging() -> list[DemoWorkload]:
    """staging (non-production)"""
    return [
        W("staging", "Deployment", "frontend", 2, [C("web", "1", "1Gi", None, "1Gi", cpu_mean=0.03, memory_mean="250Mi")],
          "storefront", services=[("frontend", "LoadBalancer", False)]),
        W("staging", "Deployment", "checkout", 2, [C("app", "500m", "512Mi", "500m", "512Mi", cpu_mean=0.02, memory_mean="200Mi")], "storefront",
          services=[("checkout", "ClusterIP", False)]),
        W("staging", "Deployment", "catalog", 2, [C("app", "1500m", "2Gi", None, "2Gi", cpu_mean=0.04, memory_mean="500Mi")], "storefront",
          services=[("catalog", "ClusterIP", False)]),
        W("staging", "StatefulSet", "postgres", 1, [C("postgres", "1", "4Gi", None, "4Gi", cpu_mean=0.02, memory_mean="800Mi")],
          "storefront", pvc=True, zones=("us-east-1b",)),
    ]


def _ci_runners() -> list[DemoWorkload]:
    """ci-runners (non-production)"""
    return [
        W("ci-runners", "Deployment", "runner", 4, [C("runner", "2", "4Gi", None, "8Gi", cpu_mean=0.5, cpu_burst=6, memory_mean="1500Mi")],
          "platform", on_spot=True),
        W("ci-runners", "Deployment", "cache", 1, [C("cache", "500m", "2Gi", None, "2Gi", cpu_mean=0.05, memory_mean="600Mi")], "platform",
          empty_dir=True, ignore=True),
    ]


def _monitoring() -> list[DemoWorkload]:
    """monitoring"""
    return [
        W("monitoring", "DaemonSet", "node-exporter", 16, [C("node-exporter", "100m", "64Mi", "200m", "64Mi", cpu_mean=0.02, memory_mean="25Mi")],
          "platform", host_path=True),
        W("monitoring", "DaemonSet", "fluent-bit", 16, [C("fluent-bit", "200m", "256Mi", None, "256Mi", cpu_mean=0.03, memory_mean="60Mi")],
          "platform", host_path=True),
        W("monitoring", "StatefulSet", "prometheus", 1, [C("prometheus", "2", "16Gi", None, "16Gi", cpu_mean=0.8, memory_mean="9Gi", memory_growth=0.15)],
          "platform", pvc=True, grace=600, zones=("us-east-1c",)),
    ] + _runtime_workloads()


# --- runtimes: a Spring Boot service whose -Xmx is four times its live set, a Go service with GOMEMLIMIT, and a
# JVM at MaxRAMPercentage=75 whose limit the working-set rule alone would cut below what its heap needs ---
def _runtime_workloads() -> list[DemoWorkload]:
    orders = DemoRuntime("jvm", "registry.example/shop/orders:2.4.1", committed="2Gi", live="512Mi",
                         env={"JAVA_TOOL_OPTIONS": "-XX:+UseG1GC -Xmx2g -Xms2g -Dspring.profiles.active=prod"})
    gateway = DemoRuntime("go", "registry.example/shop/edge-gateway:1.9", env={"GOMEMLIMIT": "1800MiB", "GOGC": "100"})
    ledger = DemoRuntime("jvm", "eclipse-temurin:21-jre", command=["java", "-XX:MaxRAMPercentage=75.0", "-jar", "/app/ledger.jar"],
                         committed="900Mi", live="780Mi", live_data=False)
    return [
        W("shop", "Deployment", "orders", 3, [C("app", "500m", "2560Mi", None, "2560Mi", cpu_mean=0.2, memory_mean="280Mi",
                                               memory_growth=0.02, runtime=orders)], "storefront", services=[("orders", "ClusterIP", False)]),
        W("shop", "Deployment", "edge-gateway", 2, [C("app", "500m", "2Gi", None, "2Gi", cpu_mean=0.15, memory_mean="550Mi",
                                                     memory_growth=0.05, runtime=gateway)], "storefront"),
        W("payments", "Deployment", "ledger-api", 2, [C("app", "1", "2Gi", None, "2Gi", cpu_mean=0.3, memory_mean="240Mi",
                                                       memory_growth=0.02, runtime=ledger)], "payments"),
    ]


NODES = [
    # name, instance type, zone, capacity type, node group
    ("ip-10-0-1-11", "m5.2xlarge", "us-east-1a", "on-demand", "general"),
    ("ip-10-0-2-12", "m5.2xlarge", "us-east-1b", "on-demand", "general"),
    ("ip-10-0-3-13", "m5.2xlarge", "us-east-1c", "on-demand", "general"),
    ("ip-10-0-1-14", "m5.2xlarge", "us-east-1a", "on-demand", "general"),
    ("ip-10-0-2-15", "m5.2xlarge", "us-east-1b", "on-demand", "general"),
    ("ip-10-0-3-16", "m5.2xlarge", "us-east-1c", "on-demand", "general"),
    ("ip-10-0-1-17", "m5.2xlarge", "us-east-1a", "on-demand", "general"),
    ("ip-10-0-2-18", "m5.2xlarge", "us-east-1b", "on-demand", "general"),
    ("ip-10-0-3-19", "m5.2xlarge", "us-east-1c", "on-demand", "general"),
    ("ip-10-0-1-21", "r5.2xlarge", "us-east-1a", "on-demand", "memory"),
    ("ip-10-0-2-22", "r5.2xlarge", "us-east-1b", "on-demand", "memory"),
    ("ip-10-0-3-23", "r5.2xlarge", "us-east-1c", "on-demand", "memory"),
    ("ip-10-0-1-31", "c6i.2xlarge", "us-east-1a", "spot", "spot-compute"),
    ("ip-10-0-2-32", "c6i.2xlarge", "us-east-1b", "spot", "spot-compute"),
    ("ip-10-0-3-33", "m6i.xlarge", "us-east-1c", "spot", "spot-compute"),
    ("ip-10-0-3-34", "c6i.2xlarge", "us-east-1c", "spot", "spot-compute"),
]
NODE_SHAPES = {"m5.2xlarge": (8, 32), "r5.2xlarge": (8, 64), "c6i.2xlarge": (8, 16), "m6i.xlarge": (4, 16)}

TRAFFIC = [  # source ns/name, destination ns/name, GB over the window
    ("shop/frontend", "shop/checkout", 420), ("shop/frontend", "shop/catalog", 2600), ("shop/frontend", "shop/cart", 900),
    ("shop/frontend", "shop/recommendations", 380), ("shop/frontend", "shop/ads", 150), ("shop/checkout", "payments/payments-api", 210),
    ("shop/checkout", "shop/currency", 60), ("shop/checkout", "shop/email", 12), ("shop/cart", "shop/redis", 1800),
    ("shop/catalog", "shop/search", 700), ("payments/payments-api", "payments/postgres", 1400),
    ("payments/payments-api", "payments/fraud-scorer", 300), ("data/etl-worker", "data/kafka", 5200),
    ("data/etl-worker", "payments/postgres", 650), ("staging/frontend", "staging/catalog", 40),
    ("monitoring/fluent-bit", "data/kafka", 800),
]


def _series(rng: np.random.Generator, steps: int, mean: float, burst: float) -> np.ndarray:
    """Daily-seasonal usage with noise and rare bursts reaching ``burst`` x mean; never negative."""
    t = np.arange(steps)
    daily = 1 + 0.45 * np.sin(2 * np.pi * t / (86400 / STEP_SECONDS))
    noise = rng.lognormal(0, 0.25, steps)
    s = mean * daily * noise
    spikes = rng.random(steps) < 0.004
    s[spikes] = mean * burst * rng.uniform(0.8, 1.0, spikes.sum())
    return np.clip(s, 0, None)


def _pod_lives(w: DemoWorkload, c: DemoContainer, grid) -> list[tuple[str, int, int]]:
    """(pod name, first step, end step) of the pods behind a container: ``replicas`` pods through its
    history, or for a CronJob one run a day through the first 15 % of it."""
    steps = int(c.history_days * 86400 / STEP_SECONDS)
    first = grid.n - steps
    if w.kind == "CronJob":
        per_day = int(86400 / STEP_SECONDS)
        run = int(per_day * 0.15)
        return [(f"{w.name}-{29000000 + d}-x", s, s + run) for d, s in enumerate(range(first, grid.n - run + 1, per_day))]
    return [(f"{w.name}-{'0123456789abcdef'[i % 16]}{i}", first, grid.n) for i in range(w.replicas)]


def _pod_usage(rng, w: DemoWorkload, c: DemoContainer, lives, grid):
    """Per pod (name, steps, CPU cores, working-set bytes, OOM-kill steps): CPU capped at a limit (the
    throttled usage a collection sees), a working set that grows and, for OOM-killed containers,
    reaches the limit where it was killed."""
    out = []
    kills = rng.choice(sum(e - s for _, s, e in lives), c.oom_kills, replace=False) if c.oom_kills else np.array([], dtype=int)
    offset = 0
    for pod, s, e in lives:
        n = e - s
        level = rng.normal(1.0, 0.06)  # replicas are alike, not identical
        cpu = _series(rng, n, c.cpu_mean * level, c.cpu_burst)
        if c.cpu_limit:
            cpu = np.minimum(cpu, parse_cpu(c.cpu_limit))
        mem = parse_memory(c.memory_mean) * level * (1 + c.memory_growth * np.linspace(0, 1, n)) * rng.normal(1, 0.03, n)
        if c.runtime is not None:  # a runtime's working set: its committed heap plus the series (demo_runtimes.py)
            mem = c.runtime.working_set(mem)
        mine = kills[(kills >= offset) & (kills < offset + n)] - offset
        if c.oom_kills:
            limit = parse_memory(c.memory_limit or c.memory_request)
            mem = np.minimum(mem * 1.05, limit)
            mem[mine] = limit
        out.append((pod, np.arange(s, e), cpu, mem, mine))
        offset += n
    return out


def _reduce_usage(pods_by_container, grid) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The demo's pod samples through the collector's reducer: usage_histograms and usage_daily."""
    from .sources.prometheus.client import RangeSeries
    from .sources.prometheus.usage import UsageAccumulator, reduce_chunk

    owners, acc, raw = {}, UsageAccumulator(grid), []
    ts = grid.first + np.arange(grid.n) * grid.step
    for (w, c), pods in pods_by_container:
        for pod, steps, cpu, mem, kills in pods:
            owners[(w.namespace, pod)] = (w.kind, w.name)
            days = grid.day(steps)
            for d in np.unique(days):
                raw.append({"namespace": w.namespace, "pod": pod, "container": c.name, "day": int(d),
                            "memory_max_bytes": float(mem[days == d].max()), "oom_kills": float((days[kills] == d).sum()),
                            "restarts": float((days[kills] == d).sum())})  # the demo's containers restart only when killed
    for resource, which in (("cpu", 2), ("memory", 3)):
        result = [RangeSeries((w.namespace, p[0], c.name), p[which], ts[p[1]]) for (w, c), pods in pods_by_container for p in pods]
        acc.add(reduce_chunk(result, resource, grid, owners))
    raw = gpu_usage(pods_by_container, grid, acc, owners, pd.DataFrame(raw))  # the GPU block's DCGM samples
    return acc.histograms(CLUSTER, owners), acc.daily(CLUSTER, owners, raw)


def _demo_hpa(w: DemoWorkload) -> dict:
    """The demo HPA's name (the workload's) and where its targets sit: metrics list CPU first, then memory."""
    metrics = [res for res, v in (("cpu", w.hpa_cpu), ("memory", w.hpa_memory)) if not np.isnan(v)]
    paths = {res: f"/spec/metrics/{i}/resource/target/averageUtilization" for i, res in enumerate(metrics)}
    return {"hpa_name": w.name if metrics else "", "hpa_cpu_target_path": paths.get("cpu", ""),
            "hpa_memory_target_path": paths.get("memory", "")}


def generate(seed: int = 7, now: dt.datetime | None = None) -> Snapshot:
    """Build the demo snapshot (no prices: collect's pricing step fills those, offline in the demo)."""
    rng = np.random.default_rng(seed)
    end = (now or dt.datetime(2026, 11, 16, tzinfo=dt.timezone.utc)).replace(minute=0, second=0, microsecond=0)
    start = end - dt.timedelta(days=WINDOW_DAYS)
    grid = Grid.of(end.timestamp(), WINDOW_DAYS * 86400.0, float(STEP_SECONDS))
    workloads, containers, extras, placement, services = [], [], [], [], []
    pods_by_container: list = []  # ((workload, container), its pods)
    free_cpu = {n[0]: NODE_SHAPES[n[1]][0] - 0.19 for n in NODES}
    for index, w in enumerate(_workloads()):
        # rotate the zone order so the replicas that do not divide evenly land in different zones
        shift = index % len(w.zones)
        w.zones = tuple(w.zones[shift:]) + tuple(w.zones[:shift])
        workloads.append(_workload_row(w))
        services += _service_rows(w)
        for c in w.containers:
            containers.append(_container_row(w, c))
            lives = _pod_lives(w, c, grid)
            pods_by_container.append(((w, c), _pod_usage(rng, w, c, lives, grid)))
            throttled = c.throttled if not np.isnan(c.throttled) else (0.02 if c.cpu_limit else np.nan)
            extras.append({"namespace": w.namespace, "kind": w.kind, "workload": w.name, "container": c.name,
                           "restarts": float(c.restarts), "cpu_throttled_ratio": throttled,
                           # a throttled period holds the container back for about a third of its 100 ms
                           "cpu_throttled_seconds": throttled * 0.033 * sum(e - s for _, s, e in lives) * STEP_SECONDS * 10})
        placement += _placement_rows(w, grid, free_cpu) if not w.gpus else gpu_placement(
            CLUSTER, w, sum(e - s for _, s, e in _pod_lives(w, w.containers[0], grid)) * STEP_SECONDS / 3600 / max(w.replicas, 1))
    hist, daily = _reduce_usage(pods_by_container, grid)
    usage = usage_statistics(hist, daily, STEP_SECONDS)
    key = ["namespace", "kind", "workload", "container"]
    usage = usage.merge(pd.DataFrame(extras), on=key, how="left")
    usage["oom_kills"] = pd.MultiIndex.from_frame(usage[key]).map(daily.groupby(key)["oom_kills"].sum()).to_numpy(dtype=float)
    runtimes, runtime_hourly = runtime_tables(pods_by_container, grid, CLUSTER)
    usage = gpu_usage_columns(usage, pods_by_container)
    snap = Snapshot(
        tables={
            "workloads": pd.DataFrame(workloads), "containers": pd.DataFrame(containers), "usage": usage,
            "usage_histograms": hist, "usage_daily": daily, "nodes": _nodes_table(), "placement": pd.DataFrame(placement),
            "traffic": _traffic_table(), "services": pd.DataFrame(services),
            "namespaces": pd.DataFrame([{"cluster": CLUSTER, "namespace": ns, "labels_json": json.dumps(labels)}
                                        for ns, labels in NAMESPACES.items()]),
            "series": _series_table(pods_by_container, grid),
            "runtimes": runtimes, "runtime_hourly": runtime_hourly,
        },
        meta=new_meta(
            window_start=start.isoformat(), window_end=end.isoformat(), step_seconds=STEP_SECONDS, clusters=[CLUSTER],
            sources={"usage": "demo", "workloads": "demo"}, versions={"generator": f"rightsize.demo seed={seed}"},
        ),
    )
    return snap.validate()


def _workload_row(w) -> dict:
    """The workloads table row of one demo workload."""
    pdb = not (np.isnan(w.pdb_min_available) and np.isnan(w.pdb_max_unavailable))
    allowed = np.nan
    if pdb:
        allowed = (w.replicas - w.pdb_min_available) if not np.isnan(w.pdb_min_available) else w.pdb_max_unavailable
    hpa = not (np.isnan(w.hpa_cpu) and np.isnan(w.hpa_memory))
    return {
        "cluster": CLUSTER, "namespace": w.namespace, "kind": w.kind, "workload": w.name,
        "replicas": float(w.replicas), "hpa": hpa,
        "hpa_min_replicas": float(w.replicas) if hpa else np.nan,
        "hpa_max_replicas": float(w.replicas * 3) if hpa else np.nan,
        "hpa_cpu_target_percent": w.hpa_cpu, "hpa_memory_target_percent": w.hpa_memory,
        "hpa_metrics": ",".join(m for m, v in (("Resource:cpu", w.hpa_cpu), ("Resource:memory", w.hpa_memory)) if not np.isnan(v)),
        **_demo_hpa(w),
        "pdb": pdb, "pdb_min_available_pods": w.pdb_min_available, "pdb_max_unavailable_pods": w.pdb_max_unavailable,
        "pdb_disruptions_allowed": max(float(allowed), 0.0) if pdb else np.nan,
        "has_pvc": w.pvc, "has_empty_dir": w.empty_dir, "has_memory_empty_dir": False, "has_host_path": w.host_path,
        "termination_grace_seconds": w.grace, "capacity_affinity": w.capacity, "tolerates_spot": w.on_spot,
        "update_max_unavailable": "25%" if w.kind == "Deployment" else "", "update_max_surge": "25%" if w.kind == "Deployment" else "",
        "team": w.team, "ignore": w.ignore, "spot_preference": w.spot_preference, "policy_override": "",
        "source": "demo", "source_file": "", "checkpoints": w.checkpoints,
    }


def _service_rows(w) -> list[dict]:
    return [{
        "cluster": CLUSTER, "namespace": w.namespace, "service": svc, "type": typ,
        "selector_json": json.dumps({"app": w.name}), "workload": w.name, "kind": w.kind,
        "ports": "443/TCP" if typ == "LoadBalancer" else "8080/TCP", "topology_mode": "",
        "traffic_distribution": "PreferClose" if w.name == "redis" else "", "internal_traffic_policy": "Cluster",
        "load_balancer_internal": internal, "load_balancer_class": "",
    } for svc, typ, internal in w.services]


def _container_row(w, c) -> dict:
    return {
        "cluster": CLUSTER, "namespace": w.namespace, "kind": w.kind, "workload": w.name, "container": c.name,
        "container_type": "init" if c.init else "main",
        "cpu_request_cores": parse_cpu(c.cpu_request) if c.cpu_request else np.nan,
        "cpu_limit_cores": parse_cpu(c.cpu_limit) if c.cpu_limit else np.nan,
        "memory_request_bytes": parse_memory(c.memory_request) if c.memory_request else np.nan,
        "memory_limit_bytes": parse_memory(c.memory_limit) if c.memory_limit else np.nan,
        "gpu_resource": c.gpu.resource if c.gpu else "",
        "gpu_request_count": float(c.gpu.count) if c.gpu else np.nan, "gpu_limit_count": float(c.gpu.count) if c.gpu else np.nan,
    }


def _placement_rows(w, grid, free_cpu: dict[str, float]) -> list[dict]:
    """Pod-hours per node: replicas spread over the workload's zones, on nodes of the right capacity type,
    each pod on the candidate with the most CPU still unrequested (``free_cpu`` is updated)."""
    window_hours = WINDOW_DAYS * 24.0
    pod_cpu = sum(parse_cpu(c.cpu_request) for c in w.containers if c.cpu_request and not c.init)
    row = {"cluster": CLUSTER, "namespace": w.namespace, "kind": w.kind, "workload": w.name}
    if w.kind == "DaemonSet":
        for node in NODES:
            free_cpu[node[0]] -= pod_cpu
        return [{**row, "node": node[0], "zone": node[2], "pod_hours": window_hours} for node in NODES]
    pods_per_zone = np.array([w.replicas // len(w.zones) + (1 if i < w.replicas % len(w.zones) else 0) for i in range(len(w.zones))])
    # each pod's hours, from the lives of its pods (a CronJob's runs, a short history)
    lives = _pod_lives(w, w.containers[0], grid)
    hours = sum(e - s for _, s, e in lives) * STEP_SECONDS / 3600 / max(w.replicas, 1)
    out = []
    for zone, pods in zip(w.zones, pods_per_zone):
        if pods == 0:
            continue
        in_zone = [n for n in NODES if n[2] == zone]
        candidates = [n for n in in_zone if (n[3] == "spot") == w.on_spot] or in_zone
        # memory-heavy pods go to the memory node group, everything else stays off it
        memory_heavy = max(parse_memory(c.memory_request or "0") for c in w.containers) > 6 * GIB
        candidates = [n for n in candidates if (n[4] == "memory") == memory_heavy] or candidates
        hours_by_node: dict[str, float] = {}
        for _ in range(pods):
            node = max(candidates, key=lambda n: (free_cpu[n[0]], -NODES.index(n)))
            free_cpu[node[0]] -= pod_cpu
            hours_by_node[node[0]] = hours_by_node.get(node[0], 0.0) + hours
        out += [{**row, "node": name, "zone": zone, "pod_hours": h} for name, h in hours_by_node.items()]
    return out


def _nodes_table() -> pd.DataFrame:
    return pd.DataFrame([{
        "cluster": CLUSTER, "node": n, "instance_type": t, "zone": z, "region": REGION, "capacity_type": cap, "node_group": grp,
        "allocatable_cpu_cores": NODE_SHAPES[t][0] - 0.19, "allocatable_memory_bytes": NODE_SHAPES[t][1] * GIB * 0.92,
        "hours_seen": WINDOW_DAYS * 24.0, "capacity_gpus": 0.0, "allocatable_gpus": 0.0, "gpu_resources_json": "{}",
    } for n, t, z, cap, grp in NODES] + gpu_nodes_table(CLUSTER, REGION, WINDOW_DAYS * 24.0))


def _traffic_table() -> pd.DataFrame:
    """TRAFFIC's "namespace/name" pairs (the demo's own notation, not workload references) as traffic rows."""
    rows = []
    for src, dst, gb in TRAFFIC:
        sns, sname = src.split("/")
        dns, dname = dst.split("/")
        rows.append({"cluster": CLUSTER, "source_namespace": sns, "source_workload": sname, "destination_namespace": dns,
                     "destination_workload": dname, "source_zone": "", "destination_zone": "", "bytes": gb * 1e9})
    return pd.DataFrame(rows)


def _series_table(pods_by_container, grid) -> pd.DataFrame:
    """Hourly drill-down series (the busiest replica's largest value of each hour) for the demo's few
    largest containers (a notebook plots these)."""
    chosen = {("shop", "frontend"), ("shop", "search"), ("payments", "fraud-scorer"), ("data", "etl-worker")}
    per_hour = 3600 // STEP_SECONDS
    frames = []
    for (w, c), pods in pods_by_container:
        if (w.namespace, w.name) not in chosen:
            continue
        cpu, mem = np.full(grid.n, np.nan), np.full(grid.n, np.nan)
        for _pod, steps, pc, pm, _k in pods:
            cpu[steps], mem[steps] = np.fmax(cpu[steps], pc), np.fmax(mem[steps], pm)
        hours = grid.n // per_hour
        idx = pd.date_range(end=pd.Timestamp(grid.end, unit="s", tz="UTC"), periods=hours, freq="h")
        frame = pd.DataFrame({
            "cluster": CLUSTER, "namespace": w.namespace, "kind": w.kind, "workload": w.name, "container": c.name,
            "timestamp": idx, "cpu_cores": np.nanmax(cpu[-hours * per_hour:].reshape(hours, per_hour), axis=1),
            "memory_bytes": np.nanmax(mem[-hours * per_hour:].reshape(hours, per_hour), axis=1),
        })
        frames.append(frame.dropna(subset=["cpu_cores"]))
    return pd.concat(frames, ignore_index=True)
