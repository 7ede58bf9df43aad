"""Synthetic DCGM exporter + kube-state-metrics + cAdvisor series of a small GPU cluster, with known truth.

Two p4d.24xlarge nodes (8 A100 40 GB each): ``gpu-a`` advertises 8 whole GPUs; ``gpu-b`` was partitioned
with MIG's mixed strategy (4 whole GPUs, 14 x 1g.5gb, 4 x 3g.20gb) and nothing requests it. The pods
(every one alive through the whole window, each on gpu-a):

- ``ml/Job/train``: 2 GPUs (two DCGM series, different values: the busiest counts), engine ~1 %: idle;
- ``ml/Deployment/embed``: 2 replicas x 1 GPU, engine ~6 %, 2.5 GiB frame buffer: a 1g.5gb MIG slice, which
  gpu-b offers; one replica's exporter series carries the pod labels as exported_* (honor_labels off);
- ``ml/Deployment/serve``: 1 GPU, engine ~70 %, 28 GiB: keep;
- a GPU with no pod (an idle device the exporter still reports): left out.

Everything is sampled on the 60 s grid aligned to whole minutes (as tests/promdata.py does), so a query
at a step reads exactly the sample written there; ``expected`` computes the statistics from those samples.
"""
from __future__ import annotations

import numpy as np

from promdata import STEP, _bases, _fmt, _noise

MIB = 2**20
NODES = [("gpu-a", {"nvidia_com_gpu": 8}), ("gpu-b", {"nvidia_com_gpu": 4, "nvidia_com_mig_1g_5gb": 14, "nvidia_com_mig_3g_20gb": 4})]
# namespace, pod, kind, workload, owner kind, owner name, container, GPUs: [(engine mean, FB MiB)], exported labels
PODS = [
    ("ml", "train-x7k2p", "Job", "train", "Job", "train", "trainer", [(0.010, 1500.0), (0.006, 1400.0)], False),
    ("ml", "embed-5f9c-a1", "Deployment", "embed", "ReplicaSet", "embed-5f9c", "server", [(0.060, 2500.0)], True),
    ("ml", "embed-5f9c-b2", "Deployment", "embed", "ReplicaSet", "embed-5f9c", "server", [(0.055, 2600.0)], False),
    ("ml", "serve-77d4-c3", "Deployment", "serve", "ReplicaSet", "serve-77d4", "vllm", [(0.700, 28000.0)], False),
]
FB_TOTAL_MIB = 40960.0


class GpuDataset:
    """Samples of the cluster above, ``hours`` long, ending at ``end`` (unix seconds, a multiple of 60).

    ``drop``: metric names left out (no exporter: every DCGM_* name; profiling off: DCGM_FI_PROF_GR_ENGINE_ACTIVE)."""

    def __init__(self, end: int, hours: float, drop: tuple[str, ...] = ()):
        assert end % STEP == 0
        self.end, self.n = end, int(hours * 3600 // STEP) + 1
        self.ts = end - STEP * np.arange(self.n - 1, -1, -1, dtype=np.int64)
        self.drop = set(drop)
        self.gpus = {}  # (pod, gpu index) -> (engine ratio per step, FB used MiB per step)
        for ns, pod, _k, _w, _ok, _on, _c, devices, _x in PODS:
            for i, (mean, fb) in enumerate(devices):
                key = f"{pod}/{i}"
                engine = np.clip(mean * (0.5 + _noise(key + "e", self.n)) + (_noise(key + "s", self.n) > 0.99) * mean, 0.0, 1.0)
                self.gpus[(pod, i)] = (np.round(engine, 4), np.round(fb + 200.0 * _noise(key + "f", self.n)))

    def expected(self, window_seconds: int, util: bool = False) -> dict:
        """{(namespace, kind, workload, container): stats}: gpu_engine_* (exact, low, high) per basis and quantile,
        gpu_memory_max_bytes (and _closed: with the sample on the window's left edge, which Prometheus' closed range
        selectors read), the engine mean; each pod's value at a step is the busiest of its GPUs. ``util``: the engine
        as DCGM_FI_DEV_GPU_UTIL (whole percent) / 100 gives it."""
        steps = np.arange(self.n - window_seconds // STEP, self.n)
        by_container: dict[tuple, list] = {}
        for ns, pod, kind, wl, _ok, _on, c, devices, _x in PODS:
            engines = [self.gpus[(pod, i)][0] for i in range(len(devices))]
            engine = np.max([np.round(e * 100) / 100 if util else e for e in engines], axis=0)[steps]
            fb_all = np.max([self.gpus[(pod, i)][1] for i in range(len(devices))], axis=0) * MIB
            fb, edge = fb_all[steps], fb_all[steps[0] - 1]
            by_container.setdefault((ns, kind, wl, c), []).append((engine, fb, edge))
        out = {}
        for key, pods in by_container.items():
            engine, fb = np.array([p[0] for p in pods]), np.array([p[1] for p in pods])
            stats = {f"gpu_engine_{basis}_{q}": values(phi) for basis, values in _bases(engine).items()
                     for q, phi in (("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99))}
            stats["gpu_memory_max_bytes"] = float(fb.max())
            stats["gpu_memory_max_bytes_closed"] = max(float(fb.max()), max(p[2] for p in pods))
            stats["gpu_engine_mean_ratio"] = float(engine.mean())
            out[key] = stats
        return out

    def _lines(self):
        tsv = [str(int(t)) for t in self.ts]

        def emit(name, labels, values):
            if name in self.drop:
                return
            for v, t in zip(values, tsv):
                yield f"{name}{{{labels}}} {_fmt(v)} {t}\n"

        ones = np.ones(self.n)
        replicasets = set()
        for ns, pod, kind, wl, owner_kind, owner, c, devices, exported in PODS:
            base = f'namespace="{ns}",pod="{pod}",container="{c}"'
            cpu = np.cumsum(np.full(self.n, 0.5 * STEP))
            yield from emit("container_cpu_usage_seconds_total", base + ',cpu="total"', cpu)
            yield from emit("container_memory_working_set_bytes", base, ones * 4 * 2**30)
            ksm = f'{base},uid="u-{pod}",node="gpu-a"'
            for metric in ("kube_pod_container_resource_requests", "kube_pod_container_resource_limits"):
                yield from emit(metric, ksm + ',resource="cpu",unit="core"', ones * 2.0)
                yield from emit(metric, ksm + ',resource="memory",unit="byte"', ones * 8 * 2**30)
                yield from emit(metric, ksm + ',resource="nvidia_com_gpu",unit="integer"', ones * len(devices))
            yield from emit("kube_pod_container_status_restarts_total", f'{base},uid="u-{pod}"', ones * 0)
            pl = f'namespace="{ns}",pod="{pod}",uid="u-{pod}"'
            yield from emit("kube_pod_owner", f'{pl},owner_kind="{owner_kind}",owner_name="{owner}",owner_is_controller="true"', ones)
            yield from emit("kube_pod_info", f'{pl},node="gpu-a",host_ip="10.0.0.1",pod_ip="10.1.0.1"', ones)
            if owner_kind == "ReplicaSet" and owner not in replicasets:
                replicasets.add(owner)
                yield from emit("kube_replicaset_owner", f'namespace="{ns}",replicaset="{owner}",owner_kind="Deployment",'
                                                         f'owner_name="{wl}",owner_is_controller="true"', ones)
        yield from self._node_lines(emit, ones)
        yield from self._dcgm_lines(emit)

    def _node_lines(self, emit, ones):
        for node, gpus in NODES:
            lab = (f'node="{node}",label_topology_kubernetes_io_zone="us-east-1a",label_topology_kubernetes_io_region="us-east-1",'
                   f'label_node_kubernetes_io_instance_type="p4d.24xlarge",label_eks_amazonaws_com_capacity_type="ON_DEMAND",'
                   f'label_eks_amazonaws_com_nodegroup="gpu",label_nvidia_com_gpu_product="NVIDIA-A100-SXM4-40GB"')
            yield from emit("kube_node_labels", lab, ones)
            for metric in ("kube_node_status_allocatable", "kube_node_status_capacity"):
                for res, unit, value in [("cpu", "core", 95.0), ("memory", "byte", 1100 * 2**30)] + [(r, "integer", v) for r, v in gpus.items()]:
                    yield from emit(metric, f'node="{node}",resource="{res}",unit="{unit}"', ones * value)

    def _dcgm_lines(self, emit):
        exporter = 'namespace="gpu-operator",pod="nvidia-dcgm-exporter-abcde",container="nvidia-dcgm-exporter"'
        devices = [(ns, pod, c, i, exported) for ns, pod, _k, _w, _ok, _on, c, ds, exported in PODS for i in range(len(ds))]
        for metric in ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE"):
            for g, (ns, pod, c, i, exported) in enumerate(devices):
                engine, fb = self.gpus[(pod, i)]
                labels = (f'{exporter},exported_namespace="{ns}",exported_pod="{pod}",exported_container="{c}"' if exported
                          else f'namespace="{ns}",pod="{pod}",container="{c}"')
                labels += f',gpu="{g}",UUID="GPU-{g:04d}",modelName="NVIDIA A100-SXM4-40GB",Hostname="gpu-a"'
                values = {"DCGM_FI_PROF_GR_ENGINE_ACTIVE": engine, "DCGM_FI_DEV_GPU_UTIL": np.round(engine * 100),
                          "DCGM_FI_DEV_FB_USED": fb, "DCGM_FI_DEV_FB_FREE": FB_TOTAL_MIB - fb}[metric]
                yield from emit(metric, labels, values)
            # a GPU no pod uses: the exporter reports it without pod labels
            idle = {"DCGM_FI_PROF_GR_ENGINE_ACTIVE": 0.0, "DCGM_FI_DEV_GPU_UTIL": 0.0, "DCGM_FI_DEV_FB_USED": 0.0,
                    "DCGM_FI_DEV_FB_FREE": FB_TOTAL_MIB}[metric]
            yield from emit(metric, f'namespace="",pod="",container="",gpu="7",UUID="GPU-0007",modelName="NVIDIA A100-SXM4-40GB",'
                                    f'Hostname="gpu-a"', np.full(self.n, idle))

    def openmetrics_lines(self):
        """OpenMetrics lines with timestamps in seconds, series by series (tests/promservers.py backfills them)."""
        return (line for line in self._lines() if line)


def idle_gpu_equivalents() -> float:
    """GPU-equivalents nothing requests: gpu-a's 8 minus the 5 the pods ask for, and all of gpu-b's 8 (4 whole,
    14 x 1g.5gb at 1/7, 4 x 3g.20gb at 1/2)."""
    asked = sum(len(p[7]) for p in PODS)
    return (8 - asked) + (4 + 14 / 7 + 4 / 2)
