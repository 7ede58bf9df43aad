"""Synthetic cAdvisor + kube-state-metrics series with exactly known statistics.

The generator writes OpenMetrics text (for ``promtool tsdb create-blocks-from openmetrics``) or
Prometheus text with timestamps (for VictoriaMetrics' /api/v1/import/prometheus) and computes the
expected usage statistics from the very samples it writes:

- every series is sampled on the same 60 s grid, aligned to whole minutes, so a query step of 60 s
  sees exactly the sample written at that instant (no lookback interpolation);
- CPU usage is written as a counter whose per-minute increments are known, so the value of
  ``rate(counter[5m])`` at a step t is exactly (C(t) - C(t-300)) / 300 whenever the pod has samples
  at both ends of the window (Prometheus 2.x range selectors are closed at both ends, and
  MetricsQL's rate uses the sample before the window, which is again C(t-300));
- the expected statistics are computed from exactly those per-pod step values, on every basis of
  the registry (pooled, max over pods, busiest replica), as the member at rank floor(q x (n - 1))
  that rightsize's sketch reads (within its stated relative error);
- Istio counters are written by both reporters (source and destination proxies) with the same
  counts, so a collector that adds the two reporters is caught; TCP has a request (received) and
  a response (sent) direction with different rates.

Pods that start or stop inside the window make rate() extrapolate at their edges, and a stopped
pod's last working set stays visible for the engine's lookback; containers of such pods carry
``churn=True`` in the expectations and tests compare them with a looser tolerance.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

import numpy as np

from rightsize.batch_groups import ksm_label
from rightsize.sketch import MIN_POD_SAMPLES
from rightsize.usage_stats import QUANTILES

STEP = 60  # seconds between samples and between query steps
RATE_WINDOW = 300  # seconds, the rate() window the tests configure
PERIODS_PER_MINUTE = 600  # CFS periods of 100 ms in a minute
THROTTLED_SECONDS_PER_PERIOD = 0.04  # time a throttled period was held back, seconds


@dataclass
class ContainerSpec:
    name: str
    cpu_base: float  # cores
    cpu_amp: float  # cores, daily sine amplitude
    mem_base: float  # bytes
    mem_amp: float  # bytes
    cpu_request: float = math.nan
    cpu_limit: float = math.nan
    mem_request: float = math.nan
    mem_limit: float = math.nan
    throttle_ratio: float = 0.0  # share of CFS periods throttled
    oom_at: float = math.nan  # fraction of the pod's life at which it is OOM-killed (restart + reason)
    mem_growth: float = 0.0  # bytes per second of the container's age: a leak, reset by each restart
    restart_every: float = 0.0  # seconds between restarts (not OOM kills: no termination reason); 0 = none
    age0: float = 0.0  # the container's age at the pod's first sample, seconds (a pod started before the data)
    image: str = ""  # kube_pod_container_info's image label ('' = example/NAME:1)
    init_restart_policy: str = ""  # '' = a main container; else an init container with this restart policy
                                   # ('Always': a native sidecar), its kube-state-metrics series are kube_pod_init_container_*


@dataclass
class PodSpec:
    namespace: str
    pod: str
    kind: str  # the resolved workload kind (Deployment, StatefulSet, ...)
    workload: str
    owner_kind: str  # kube_pod_owner owner_kind
    owner_name: str
    parent_kind: str = ""  # owner of the ReplicaSet / Job, '<none>' when it has none
    parent_name: str = ""
    node: str = "node-a"
    start: int = 0  # index into the time grid (inclusive)
    end: int = -1  # index (exclusive); -1 = end of data
    containers: list[ContainerSpec] = field(default_factory=list)
    labels: dict = field(default_factory=dict)  # pod labels, written as kube_pod_labels (label_<sanitized key>)
    completes: bool = False  # a finished pod: kube_pod_completion_time is written at its last sample


def _noise(key: str, n: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
    return np.random.default_rng(seed).random(n)


def default_cluster(scale: int = 1) -> list[PodSpec]:
    """A small cluster touching every owner path: Deployment (with a rollout across two ReplicaSets),
    StatefulSet, DaemonSet, CronJob -> Job, bare Job, bare Pod, orphan ReplicaSet, plus kube-system.

    ``scale`` > 1 repeats the application namespaces (for the shard-split test)."""
    GiB, MiB = 2**30, 2**20
    pods: list[PodSpec] = []
    for s in range(scale):
        sfx = "" if s == 0 else f"-{s}"
        shop, data, batch = f"shop{sfx}", f"data{sfx}", f"batch{sfx}"
        for r in range(2):
            pods.append(PodSpec(shop, f"web-7d9f-{r}", "Deployment", "web", "ReplicaSet", "web-7d9f", "Deployment", "web",
                                node=f"node-{'ab'[r]}", containers=[
                                    ContainerSpec("app", 0.20 + 0.05 * r, 0.10, 300 * MiB, 50 * MiB, 0.5, math.nan, 512 * MiB, 512 * MiB),
                                    ContainerSpec("envoy", 0.02, 0.01, 60 * MiB, 5 * MiB, 0.1, 0.2, 128 * MiB, 128 * MiB)]))
        # a rollout half way: ReplicaSet api-1 replaced by api-2 (both owned by Deployment api)
        pods.append(PodSpec(shop, "api-1-x", "Deployment", "api", "ReplicaSet", "api-1", "Deployment", "api",
                            node="node-a", end=-2, containers=[
                                ContainerSpec("api", 0.45, 0.05, 200 * MiB, 10 * MiB, 0.5, 0.5, 256 * MiB, 256 * MiB, throttle_ratio=0.4)]))
        pods.append(PodSpec(shop, "api-2-y", "Deployment", "api", "ReplicaSet", "api-2", "Deployment", "api",
                            node="node-b", start=-2, containers=[
                                ContainerSpec("api", 0.45, 0.05, 200 * MiB, 10 * MiB, 0.5, 0.5, 256 * MiB, 256 * MiB, throttle_ratio=0.4)]))
        pods.append(PodSpec(shop, "legacy-abc", "ReplicaSet", "legacy", "ReplicaSet", "legacy", "<none>", "<none>",
                            node="node-a", containers=[ContainerSpec("legacy", 0.05, 0.0, 50 * MiB, 0.0)]))
        for r in range(2):
            pods.append(PodSpec(data, f"db-{r}", "StatefulSet", "db", "StatefulSet", "db", node=f"node-{'ab'[r]}", containers=[
                ContainerSpec("postgres", 0.8, 0.4, 1.5 * GiB, 0.3 * GiB, 1.0, math.nan, 2 * GiB, 2 * GiB,
                              oom_at=0.6 if r == 1 else math.nan)]))
        pods.append(PodSpec(batch, "report-2900-z", "CronJob", "report", "Job", "report-2900", "CronJob", "report",
                            node="node-b", containers=[ContainerSpec("report", 1.2, 0.8, 700 * MiB, 200 * MiB, 1.0, math.nan, 1 * GiB, 1 * GiB)]))
        pods.append(PodSpec(batch, "migrate-q", "Job", "migrate", "Job", "migrate", "<none>", "<none>",
                            node="node-a", containers=[ContainerSpec("migrate", 0.3, 0.1, 100 * MiB, 30 * MiB)]))
        pods.append(PodSpec(batch, "debug", "Pod", "debug", "<none>", "<none>", node="node-a",
                            containers=[ContainerSpec("shell", 0.01, 0.0, 10 * MiB, 1 * MiB)]))
    for r, node in enumerate(("node-a", "node-b")):
        pods.append(PodSpec("monitoring", f"node-exporter-{r}", "DaemonSet", "node-exporter", "DaemonSet", "node-exporter",
                            node=node, containers=[ContainerSpec("exporter", 0.03, 0.01, 30 * MiB, 2 * MiB, 0.05, math.nan, 64 * MiB, 64 * MiB)]))
    pods.append(PodSpec("kube-system", "coredns-1-a", "Deployment", "coredns", "ReplicaSet", "coredns-1", "Deployment", "coredns",
                        containers=[ContainerSpec("coredns", 0.05, 0.0, 40 * MiB, 0.0, 0.1)]))
    return pods


def small_cluster() -> list[PodSpec]:
    """Four long-running pods on NODES, the workloads TRAFFIC names (shop/web x2 across both zones, shop/api
    in zone a, data/db in zone b): enough for the node bill, idle capacity and cross-AZ traffic."""
    MiB = 2**20
    web = [PodSpec("shop", f"web-1-{r}", "Deployment", "web", "ReplicaSet", "web-1", "Deployment", "web", node=f"node-{'ab'[r]}",
                   containers=[ContainerSpec("app", 0.3, 0.1, 300 * MiB, 30 * MiB, 0.5, math.nan, 512 * MiB, 512 * MiB)])
           for r in range(2)]
    return web + [
        PodSpec("shop", "api-1-x", "Deployment", "api", "ReplicaSet", "api-1", "Deployment", "api", node="node-a",
                containers=[ContainerSpec("api", 0.4, 0.1, 200 * MiB, 10 * MiB, 1.0, math.nan, 1024 * MiB, 1024 * MiB)]),
        PodSpec("data", "db-0", "StatefulSet", "db", "StatefulSet", "db", node="node-b",
                containers=[ContainerSpec("postgres", 0.8, 0.2, 1500 * MiB, 100 * MiB, 2.0, math.nan, 4096 * MiB, 4096 * MiB)])]


NODES = [
    {"node": "node-a", "zone": "us-east-1a", "region": "us-east-1", "instance_type": "m5.xlarge", "capacity": "ON_DEMAND",
     "karpenter": "", "cpu": 3.92, "memory": 15 * 2**30},
    {"node": "node-b", "zone": "us-east-1b", "region": "us-east-1", "instance_type": "m5.2xlarge", "capacity": "",
     "karpenter": "spot", "cpu": 7.91, "memory": 30 * 2**30},
]

# Istio traffic: (source ns, source workload, destination ns, destination workload, protocol,
# request bytes/s (client -> server), response bytes/s (server -> client))
TRAFFIC = [("shop", "web", "shop", "api", "http", 1500.0, 5000.0), ("shop", "api", "data", "db", "tcp", 4000.0, 20000.0)]


class Dataset:
    """Samples of a generated cluster, ending at ``end`` (unix seconds, multiple of ``interval``), ``hours``
    long, one sample of every series each ``interval`` seconds (60 by default: the query step of most tests).

    ``drop`` names metrics left out (to test missing-metric handling); ``nodes`` replaces NODES (a node may
    carry ``nodegroup`` / ``nodepool`` labels); ``workload_extras`` adds HPA, PDB and Istio series (off:
    a cluster without them); pod start times are written for every pod, completion times for pods with
    ``completes``. ``scrape_jobs``: the kubelet's cAdvisor series are written once per job (a kubelet
    scraped by two jobs), with job and instance labels. ``poison``: {pod: {sample index: value}} written
    into that pod's working set instead (NaN, +Inf, -1). ``nan_pods``: pods every cAdvisor sample of which is
    NaN (CPU counters and working set: an exporter that answers NaN)."""

    def __init__(self, end: int, hours: float, pods: list[PodSpec] | None = None, drop: tuple[str, ...] = (),
                 cluster_label: str = "", cluster: str = "", interval: int = STEP, nodes: list[dict] | None = None,
                 workload_extras: bool = True, scrape_jobs: tuple[str, ...] = (), poison: dict | None = None,
                 nan_pods: tuple[str, ...] = ()):
        self.scrape_jobs = scrape_jobs
        self.nan_pods = set(nan_pods)
        self.poison = poison or {}
        assert end % interval == 0
        self.end, self.interval = end, interval
        self.n = int(hours * 3600 // interval) + 1
        self.ts = end - interval * np.arange(self.n - 1, -1, -1, dtype=np.int64)
        self.pods = pods if pods is not None else default_cluster()
        self.drop = set(drop)
        self.nodes = NODES if nodes is None else nodes
        self.extras = workload_extras
        self.extra = f'{cluster_label}="{cluster}",' if cluster_label else ""
        self._series: dict[tuple[str, str], dict] = {}
        self._build()

    def lifetime_hours(self, p: PodSpec) -> float:
        """The truth of a pod's life: from one interval before its first sample (its start) to its last
        sample (its completion), (end - start) x interval, in hours."""
        s, e = self._life(p)
        return (e - s) * self.interval / 3600.0

    # --- sample generation ------------------------------------------------------------------------
    def _life(self, p: PodSpec) -> tuple[int, int]:
        half = self.n // 2
        start = half if p.start == -2 else p.start
        end = half + 10 if p.end == -2 else (self.n if p.end == -1 else p.end)  # 10 min overlap, like maxSurge
        return start, end

    def _build(self):
        day = 86400.0
        for p in self.pods:
            s, e = self._life(p)
            t = self.ts[s:e]
            for c in p.containers:
                key = f"{p.namespace}/{p.pod}/{c.name}"
                u = _noise(key + "cpu", e - s)
                spike = (_noise(key + "spike", e - s) > 0.995) * c.cpu_base * 2
                # rate of the interval ending at each sample (cores); the first sample's interval is 0
                cpu = np.maximum(c.cpu_base + c.cpu_amp * np.sin(2 * np.pi * t / day) + 0.1 * c.cpu_base * u + spike, 0.0)
                cpu[0] = 0.0
                counter = np.cumsum(cpu * self.interval)
                m = _noise(key + "mem", e - s)
                mem = np.round(c.mem_base + c.mem_amp * np.sin(2 * np.pi * (t / day + 0.25)) + 0.05 * c.mem_base * m)
                restarts = np.zeros(e - s)
                if c.mem_growth or c.restart_every:  # a leak: the working set climbs with the container's age
                    age = c.age0 + (t - t[0]).astype(float)
                    if c.restart_every:
                        restarts = np.floor(age / c.restart_every) - math.floor(c.age0 / c.restart_every)
                        age = age % c.restart_every
                    mem = mem + np.round(c.mem_growth * age)
                reason = None
                if not math.isnan(c.oom_at):
                    k = int((e - s) * c.oom_at)
                    mem[k - 1] = c.mem_limit  # the peak that got it killed
                    restarts[k:] = 1
                    reason = k
                periods = np.arange(e - s, dtype=float) * PERIODS_PER_MINUTE * self.interval / 60
                throttled = np.round(periods * c.throttle_ratio)
                self._series[(p.namespace, p.pod, c.name)] = dict(pod=p, c=c, s=s, e=e, counter=counter, mem=mem, restarts=restarts,
                                                     reason=reason, periods=periods, throttled=throttled,
                                                     throttled_seconds=throttled * THROTTLED_SECONDS_PER_PERIOD)

    # --- expected statistics ----------------------------------------------------------------------
    def step_values(self, window_seconds: int) -> dict:
        """{container key: (cpu, memory)} matrices pods x steps of the window (end - window, end], NaN
        where a pod has no value: CPU only where its whole rate window lies in the pod's life."""
        first = self.n - 1 - window_seconds // self.interval  # grid index just before the window (excluded)
        steps = np.arange(max(first + 1, 0), self.n)
        groups: dict[tuple, list] = {}
        for (_ns, _pod, cname), ser in self._series.items():
            p = ser["pod"]
            if p.namespace != "kube-system":
                groups.setdefault((p.namespace, p.kind, p.workload, cname), []).append(ser)
        k = RATE_WINDOW // self.interval
        out = {}
        for key, sers in groups.items():
            cpu = np.full((len(sers), len(steps)), np.nan)
            mem = np.full((len(sers), len(steps)), np.nan)
            for i, ser in enumerate(sers):
                idx = steps[(steps >= ser["s"]) & (steps < ser["e"])]
                mem[i, idx - steps[0]] = ser["mem"][idx - ser["s"]]
                full = idx[idx - k >= ser["s"]]
                cpu[i, full - steps[0]] = (ser["counter"][full - ser["s"]] - ser["counter"][full - k - ser["s"]]) / RATE_WINDOW
            out[key] = (cpu, mem, sers, steps)
        return out

    def expected(self, window_seconds: int) -> dict:
        """{(namespace, kind, workload, container): stats} for the window (end - window, end].

        Per usage column of the registry (cpu_pooled_p95_cores, ...) a tuple (exact, low, high): the
        member at rank floor(q x (n - 1)) and the members one rank below and above; cpu_max_cores and
        memory_max_bytes (every raw sample); samples, pod_samples, pods_seen, oom_kills, restarts,
        cpu_throttled_ratio, cpu_throttled_seconds, means, and churn (bool)."""
        out = {}
        for key, (cpu, mem, sers, steps) in self.step_values(window_seconds).items():
            stats = {}
            for name, arr in (("cpu", cpu), ("memory", mem)):
                unit = "cores" if name == "cpu" else "bytes"
                for basis, values in _bases(arr).items():
                    for q in QUANTILES:
                        stats[f"{name}_{basis}_{q.name}_{unit}"] = values(q.quantile)
                stats[f"{name}_mean_{unit}"] = float(np.nanmean(arr))
            stats["cpu_max_cores"] = float(np.nanmax(cpu))
            lo = steps[0]
            # every raw sample of the window; Prometheus 2.x range selectors also include the sample on
            # the window's left edge (closed), MetricsQL's do not (left-open): both are right
            stats["memory_max_bytes"] = max(float(ser["mem"][max(lo - ser["s"], 0):].max()) for ser in sers if ser["e"] > lo)
            stats["memory_max_bytes_closed"] = max(float(ser["mem"][max(lo - 1 - ser["s"], 0):].max()) for ser in sers if ser["e"] > lo - 1)
            stats["samples"] = int((~np.isnan(mem).all(axis=0)).sum())
            stats["pod_samples"] = int((~np.isnan(mem)).sum())
            stats["pods_seen"] = len({ser["pod"].pod for ser in sers if ser["e"] > lo})
            stats["restarts"] = sum(float(ser["restarts"][-1] - ser["restarts"][max(lo - 1 - ser["s"], 0)]) for ser in sers)
            stats["oom_kills"] = sum(1 for ser in sers if ser["reason"] is not None and ser["s"] + ser["reason"] >= lo)
            for name, col in (("throttled", "tp"), ("periods", "pp"), ("throttled_seconds", "ts")):
                stats[col] = sum(ser[name][-1] - ser[name][max(lo - 1 - ser["s"], 0)] for ser in sers)
            stats["cpu_throttled_ratio"] = stats["tp"] / stats["pp"] if stats["pp"] else math.nan
            stats["cpu_throttled_seconds"] = stats["ts"]
            stats["churn"] = any(ser["s"] > lo - RATE_WINDOW // self.interval or ser["e"] < self.n for ser in sers)
            out[key] = stats
        return out

    # --- output -----------------------------------------------------------------------------------
    def _lines(self, ts_ms: bool):
        """Yield text lines; timestamps in seconds (OpenMetrics) or milliseconds (Prometheus text)."""
        x = self.extra
        mult = 1000 if ts_ms else 1
        tsv = [str(int(t) * mult) for t in self.ts]

        def emit(name, labels, values, s):
            if name in self.drop:
                return
            head = f"{name}{{{x}{labels}}} "
            for v, t in zip(values, tsv[s:s + len(values)]):
                yield f"{head}{_fmt(v)} {t}\n"

        ones_cache = {}

        def const(name, labels, value, s, e):
            if e - s not in ones_cache:
                ones_cache[e - s] = np.ones(e - s)
            yield from emit(name, labels, ones_cache[e - s] * value, s)

        seen_rs, seen_job = set(), set()
        for (_ns, pod, cname), ser in self._series.items():
            p, c, s, e = ser["pod"], ser["c"], ser["s"], ser["e"]
            base = f'namespace="{p.namespace}",pod="{p.pod}",container="{c.name}"'
            mem = ser["mem"]
            if p.pod in self.poison:
                mem = mem.astype(float).copy()
                for i, v in self.poison[p.pod].items():
                    mem[i] = v
            cadvisor = {"counter": ser["counter"], "periods": ser["periods"], "throttled": ser["throttled"],
                        "throttled_seconds": ser["throttled_seconds"], "mem": mem}
            if p.pod in self.nan_pods:
                cadvisor = {k: np.full(len(v), np.nan) for k, v in cadvisor.items()}
            for job in self.scrape_jobs or ("",):
                scrape = f'job="{job}",instance="{job}:10250",' if job else ""
                yield from emit("container_cpu_usage_seconds_total", scrape + base + ',cpu="total"', cadvisor["counter"], s)
                yield from emit("container_memory_working_set_bytes", scrape + base, cadvisor["mem"], s)
                yield from emit("container_cpu_cfs_periods_total", scrape + base, cadvisor["periods"], s)
                yield from emit("container_cpu_cfs_throttled_periods_total", scrape + base, cadvisor["throttled"], s)
                yield from emit("container_cpu_cfs_throttled_seconds_total", scrape + base, cadvisor["throttled_seconds"], s)
            ksm = base + ',uid="u-' + p.pod + '"'
            family = "kube_pod_init_container" if c.init_restart_policy else "kube_pod_container"
            if not c.init_restart_policy:
                yield from const("kube_pod_container_info", f'{ksm},image="{c.image or "example/" + c.name + ":1"}"', 1.0, s, e)
            if c.init_restart_policy:
                yield from const("kube_pod_init_container_info", f'{ksm},image="x",restart_policy="{c.init_restart_policy}"', 1.0, s, e)
            for res, unit, req, lim in (("cpu", "core", c.cpu_request, c.cpu_limit), ("memory", "byte", c.mem_request, c.mem_limit)):
                if not math.isnan(req):
                    yield from const(f"{family}_resource_requests", f'{ksm},resource="{res}",unit="{unit}",node="{p.node}"', req, s, e)
                if not math.isnan(lim):
                    yield from const(f"{family}_resource_limits", f'{ksm},resource="{res}",unit="{unit}",node="{p.node}"', lim, s, e)
            yield from emit("kube_pod_container_status_restarts_total", ksm, ser["restarts"], s)
            if ser["reason"] is not None:
                yield from const("kube_pod_container_status_last_terminated_reason", f'{ksm},reason="OOMKilled"', 1.0, s + ser["reason"], e)
        for p in self.pods:
            s, e = self._life(p)
            pl = f'namespace="{p.namespace}",pod="{p.pod}",uid="u-{p.pod}"'
            yield from const("kube_pod_owner", f'{pl},owner_kind="{p.owner_kind}",owner_name="{p.owner_name}",owner_is_controller="true"', 1.0, s, e)
            yield from const("kube_pod_info", f'{pl},node="{p.node}",host_ip="10.0.0.1",pod_ip="10.1.0.1",created_by_kind="{p.owner_kind}",created_by_name="{p.owner_name}"', 1.0, s, e)
            yield from const("kube_pod_start_time", pl, float(self.ts[s] - self.interval), s, e)
            if p.completes:
                yield from const("kube_pod_completion_time", pl, float(self.ts[e - 1]), e - 1, e)
            if p.labels:
                labels = ",".join(f'{ksm_label(k)}="{v}"' for k, v in p.labels.items())
                yield from const("kube_pod_labels", f"{pl},{labels}", 1.0, s, e)
            if p.owner_kind == "ReplicaSet" and (p.namespace, p.owner_name) not in seen_rs:
                seen_rs.add((p.namespace, p.owner_name))
                yield from const("kube_replicaset_owner", f'namespace="{p.namespace}",replicaset="{p.owner_name}",owner_kind="{p.parent_kind}",owner_name="{p.parent_name}",owner_is_controller="true"', 1.0, s, e)
            if p.owner_kind == "Job" and (p.namespace, p.owner_name) not in seen_job:
                seen_job.add((p.namespace, p.owner_name))
                yield from const("kube_job_owner", f'namespace="{p.namespace}",job_name="{p.owner_name}",owner_kind="{p.parent_kind}",owner_name="{p.parent_name}",owner_is_controller="true"', 1.0, s, e)
        for nd in self.nodes:
            lab = (f'node="{nd["node"]}",label_topology_kubernetes_io_zone="{nd["zone"]}",label_topology_kubernetes_io_region="{nd["region"]}",'
                   f'label_node_kubernetes_io_instance_type="{nd["instance_type"]}",label_eks_amazonaws_com_capacity_type="{nd["capacity"]}",'
                   f'label_karpenter_sh_capacity_type="{nd["karpenter"]}"')
            lab += "".join(f',{name}="{nd[key]}"' for key, name in (("nodegroup", "label_eks_amazonaws_com_nodegroup"),
                                                                     ("nodepool", "label_karpenter_sh_nodepool")) if nd.get(key))
            yield from const("kube_node_labels", lab, 1.0, 0, self.n)
            yield from const("kube_node_status_allocatable", f'node="{nd["node"]}",resource="cpu",unit="core"', nd["cpu"], 0, self.n)
            yield from const("kube_node_status_allocatable", f'node="{nd["node"]}",resource="memory",unit="byte"', nd["memory"], 0, self.n)
        if self.extras:
            yield from self._workload_extras(emit, const)

    def _workload_extras(self, emit, const):
        """HPA, PDB and Istio series (a cluster without them leaves ``workload_extras`` off)."""
        hpa = 'namespace="shop",horizontalpodautoscaler="web"'
        yield from const("kube_horizontalpodautoscaler_info", hpa + ',scaletargetref_kind="Deployment",scaletargetref_name="web"', 1.0, 0, self.n)
        yield from const("kube_horizontalpodautoscaler_spec_target_metric", hpa + ',metric_name="cpu",metric_target_type="utilization"', 70.0, 0, self.n)
        yield from const("kube_horizontalpodautoscaler_spec_min_replicas", hpa, 2.0, 0, self.n)
        yield from const("kube_horizontalpodautoscaler_spec_max_replicas", hpa, 6.0, 0, self.n)
        yield from const("kube_poddisruptionbudget_status_desired_healthy", 'namespace="data",poddisruptionbudget="db"', 1.0, 0, self.n)
        yield from const("kube_poddisruptionbudget_status_expected_pods", 'namespace="data",poddisruptionbudget="db"', 2.0, 0, self.n)
        for reporter in ("destination", "source"):  # both proxies count every byte
            for sn, sw, dn, dw, proto, req, resp in TRAFFIC:
                lab = (f'reporter="{reporter}",source_workload_namespace="{sn}",source_workload="{sw}",'
                       f'destination_workload_namespace="{dn}",destination_workload="{dw}"')
                names = (("istio_tcp_received_bytes_total", "istio_tcp_sent_bytes_total") if proto == "tcp"
                         else ("istio_request_bytes_sum", "istio_response_bytes_sum"))
                for name, bps in zip(names, (req, resp)):
                    yield from emit(name, lab, np.arange(self.n) * bps * self.interval, 0)

    def expected_traffic(self, window_seconds: int) -> dict:
        """{(src ns, src wl, dst ns, dst wl): (request bytes, response bytes) over the window}."""
        return {(a, b, c, d): (req * window_seconds, resp * window_seconds) for a, b, c, d, _p, req, resp in TRAFFIC}

    def openmetrics_lines(self):
        """OpenMetrics lines with timestamps in seconds, series by series (tests/promservers.py backfills them)."""
        return self._lines(ts_ms=False)

    def prometheus_text_chunks(self, lines_per_chunk: int = 200_000):
        """Prometheus exposition lines with millisecond timestamps, in chunks (for VM's import API)."""
        buf = []
        for line in self._lines(ts_ms=True):
            buf.append(line)
            if len(buf) >= lines_per_chunk:
                yield "".join(buf)
                buf = []
        if buf:
            yield "".join(buf)


def _fmt(v: float) -> str:
    if not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("+Inf" if v > 0 else "-Inf")
    return repr(float(v)) if v != int(v) else str(int(v))


def _bases(arr: np.ndarray) -> dict:
    """Per basis of the registry, a function quantile -> (exact, low, high) over the pods x steps matrix."""
    pooled = np.sort(arr[~np.isnan(arr)])
    busiest = np.nanmax(arr, axis=0)
    busiest = np.sort(busiest[~np.isnan(busiest)])
    per_pod = [np.sort(row[~np.isnan(row)]) for row in arr]
    per_pod = [p for p in per_pod if len(p)]
    eligible = [p for p in per_pod if len(p) >= MIN_POD_SAMPLES] or per_pod

    def over_pods(q):
        each = [_quantile_with_neighbours(p, q) for p in eligible]
        return tuple(max(e[i] for e in each) for i in range(3))

    return {"pooled": lambda q: _quantile_with_neighbours(pooled, q),
            "max_over_pods": over_pods,
            "busiest": lambda q: _quantile_with_neighbours(busiest, q)}


def _quantile_with_neighbours(sorted_values: np.ndarray, phi: float) -> tuple[float, float, float]:
    """The member at rank floor(phi x (n - 1)) and the members one rank below and above."""
    n = len(sorted_values)
    if n == 0:
        return (math.nan, math.nan, math.nan)
    r = int(math.floor(phi * (n - 1) + 1e-9))
    return (float(sorted_values[r]), float(sorted_values[max(r - 1, 0)]), float(sorted_values[min(r + 1, n - 1)]))


class Clusters:
    """Several datasets in one store, told apart by their cluster label (each made with ``cluster_label``)."""

    def __init__(self, *datasets: Dataset):
        self.datasets = datasets

    def openmetrics_lines(self):
        for d in self.datasets:
            yield from d.openmetrics_lines()

    def prometheus_text_chunks(self, lines_per_chunk: int = 200_000):
        for d in self.datasets:
            yield from d.prometheus_text_chunks(lines_per_chunk)


def cronjob_cluster(hours: float, interval: int = STEP, runs=((5, 30), (10, 45), (20, 60)), namespace: str = "batch") -> list[PodSpec]:
    """A Deployment running the whole time (so the scrape interval can be learnt) and CronJobs whose pods
    run ``minutes`` every ``every`` minutes (``runs``: (minutes, every) per CronJob, named 'every-<minutes>m'),
    starting 7 minutes past a multiple of ``every``: off the 5-minute step grid. Each pod completes
    (kube_pod_completion_time at its last sample); Dataset.lifetime_hours is the truth of its life."""
    MiB = 2**20
    pods = [PodSpec(namespace, "steady-1-a", "Deployment", "steady", "ReplicaSet", "steady-1", "Deployment", "steady",
                    containers=[ContainerSpec("app", 0.1, 0.02, 100 * MiB, 5 * MiB, 0.2, math.nan, 256 * MiB, 256 * MiB)])]
    steps = int(hours * 3600 // interval)
    for minutes, every in runs:
        name = f"every-{minutes}m"
        for k, start in enumerate(range(7 * 60 // interval, steps - minutes * 60 // interval, every * 60 // interval)):
            job = f"{name}-{k:04d}"
            pods.append(PodSpec(namespace, f"{job}-x", "CronJob", name, "Job", job, "CronJob", name, node="node-b",
                                start=start + 1, end=start + 1 + max(minutes * 60 // interval, 1), completes=True,
                                containers=[ContainerSpec("job", 0.5, 0.1, 200 * MiB, 20 * MiB, 1.0, math.nan,
                                                          512 * MiB, 512 * MiB)]))
    return pods


def framework_pods(hours: float, interval: int = STEP, namespace: str = "pipelines") -> list[PodSpec]:
    """Pods that batch frameworks start, once an hour, each 10 minutes long, with the labels and owners those
    frameworks really set: Argo Workflows (a CronWorkflow's runs 'etl-<unix time>', templates extract and
    load, owned by their Workflow), Airflow's KubernetesPodOperator (bare pods labelled dag_id / task_id),
    Spark (a bare driver and two executors the driver owns, labelled spark-app-name / spark-role) and Tekton
    (TaskRun pods labelled tekton.dev/task). PodSpec kind / workload hold the group each pod must land in."""
    MiB = 2**20
    life = 10 * 60 // interval

    def c(name):
        return ContainerSpec(name, 0.3, 0.05, 150 * MiB, 10 * MiB, 0.5, math.nan, 512 * MiB, 512 * MiB)

    pods = []
    for k, start in enumerate(range(3 * 60 // interval, int(hours * 3600 // interval) - life, 3600 // interval)):
        span = {"start": start, "end": start + life, "completes": True, "node": "node-a"}
        wf = f"etl-{1761156000 + 3600 * k}"
        for template in ("extract", "load"):
            pods.append(PodSpec(namespace, f"{wf}-{template}-{3155092536 + k}", "ArgoWorkflow", f"etl.{template}", "Workflow", wf,
                                labels={"workflows.argoproj.io/workflow": wf, "workflows.argoproj.io/completed": "true"},
                                containers=[c("main"), c("wait")], **span))
        pods.append(PodSpec(namespace, f"daily-sales-load-{k:04d}ab", "AirflowTask", "daily_sales.load", "<none>", "<none>",
                            labels={"dag_id": "daily_sales", "task_id": "load", "kubernetes_pod_operator": "True"},
                            containers=[c("base")], **span))
        driver = f"pi-{k:04d}-driver"
        spark = {"spark-app-name": "pi", "spark-app-selector": f"spark-{k:032x}"}
        pods.append(PodSpec(namespace, driver, "SparkApplication", "pi.driver", "<none>", "<none>",
                            labels={**spark, "spark-role": "driver"}, containers=[c("spark-kubernetes-driver")], **span))
        for e in (1, 2):
            pods.append(PodSpec(namespace, f"pi-{k:04d}-exec-{e}", "SparkApplication", "pi.executor", "Pod", driver,
                                labels={**spark, "spark-role": "executor"}, containers=[c("spark-kubernetes-executor")], **span))
        pods.append(PodSpec(namespace, f"build-run-{k:04d}-pod", "TektonTask", "build", "TaskRun", f"build-run-{k:04d}",
                            labels={"tekton.dev/task": "build", "tekton.dev/taskRun": f"build-run-{k:04d}"},
                            containers=[c("step-build")], **span))
    return pods
