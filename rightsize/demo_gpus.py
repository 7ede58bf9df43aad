"""The demo's GPU block: an A100 node group, an idle training job, an over-sized inference service and a
well-used one (rightsize.demo builds the rest of the cluster).

- Node group ``gpu-a100``: two p4d.24xlarge (8 A100 40 GB each). One advertises 8 whole GPUs; the other
  was partitioned with MIG's "mixed" strategy (4 whole GPUs, 2 GPUs as seven 1g.5gb slices, 2 as two
  3g.20gb slices) and nothing requests it: GPUs idle.
- ``ml-platform/Job/finetune-llm``: 4 GPUs, a training job stuck waiting for data (engine active p95 about 2 %):
  idle. It checkpoints (annotation ``rightsize.io/checkpoints``), so spot would suit it.
- ``ml-platform/Deployment/embeddings``: 2 replicas x 1 GPU, engine active about 5 % (p95 about 8 %), 2.5 GiB of
  its 40 GB frame buffer: a 1g.5gb MIG slice holds it, and the other node offers that slice.
- ``ml-platform/Deployment/llm-serving``: 2 replicas x 1 GPU, engine active about 50 % (p95 about 80 %), 28 GiB: keep.

GPU nodes are tainted (nvidia.com/gpu:NoSchedule, as EKS GPU node groups are): no other demo workload
and no demo DaemonSet lands on them, so the rest of the demo is priced as it was.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .quantity import GIB

GPU_NODES = [
    # name, instance type, zone, capacity type, node group, allocatable GPU resources
    ("ip-10-0-1-41", "p4d.24xlarge", "us-east-1a", "on-demand", "gpu-a100", {"nvidia.com/gpu": 8}),
    ("ip-10-0-2-42", "p4d.24xlarge", "us-east-1b", "on-demand", "gpu-a100",
     {"nvidia.com/gpu": 4, "nvidia.com/mig-1g.5gb": 14, "nvidia.com/mig-3g.20gb": 4}),
]
GPU_SHAPES = {"p4d.24xlarge": (96, 1152, 8)}  # vCPU, GiB, GPUs
GPU_PRODUCT = {"p4d.24xlarge": "NVIDIA-A100-SXM4-40GB"}
FRAME_BUFFER_BYTES = {"p4d.24xlarge": 40960 * 2**20}  # what DCGM reports as FB used + free on an A100 40 GB


@dataclass
class DemoGpu:
    """A container's GPU request and what its GPUs do: engine active (fraction of the time) and frame buffer."""

    count: int = 1
    resource: str = "nvidia.com/gpu"
    engine_mean: float = 0.5  # fraction of time the graphics engine is active
    engine_burst: float = 1.3  # peak / mean
    memory_gib: float = 8.0  # frame buffer used, GiB


def gpu_workloads(W, C) -> list:
    """The demo's GPU workloads (``W``, ``C``: rightsize.demo's DemoWorkload and DemoContainer)."""
    return [
        W("ml-platform", "Job", "finetune-llm", 1, [C("trainer", "8", "64Gi", None, "64Gi", cpu_mean=0.4, memory_mean="20Gi",
                                            gpu=DemoGpu(4, engine_mean=0.006, engine_burst=3.0, memory_gib=1.5))],
          "ml-platform", checkpoints=True),
        W("ml-platform", "Deployment", "embeddings", 2, [C("server", "4", "16Gi", None, "16Gi", cpu_mean=0.5, memory_mean="6Gi",
                                                 gpu=DemoGpu(1, engine_mean=0.05, engine_burst=2.0, memory_gib=2.5))],
          "ml-platform", services=[("embeddings", "ClusterIP", False)]),
        W("ml-platform", "Deployment", "llm-serving", 2, [C("vllm", "8", "48Gi", None, "48Gi", cpu_mean=2.0, memory_mean="30Gi",
                                                  gpu=DemoGpu(1, engine_mean=0.5, engine_burst=1.3, memory_gib=28.0))],
          "ml-platform", services=[("llm-serving", "ClusterIP", False)]),
    ]


def gpu_nodes_table(cluster: str, region: str, hours: float) -> list[dict]:
    """The GPU nodes' rows of the nodes table."""
    rows = []
    for name, itype, zone, capacity, group, resources in GPU_NODES:
        vcpu, gib, gpus = GPU_SHAPES[itype]
        rows.append({"cluster": cluster, "node": name, "instance_type": itype, "zone": zone, "region": region,
                     "capacity_type": capacity, "node_group": group, "allocatable_cpu_cores": vcpu - 0.5,
                     "allocatable_memory_bytes": gib * GIB * 0.95, "hours_seen": hours, "capacity_gpus": float(gpus),
                     "allocatable_gpus": float(resources.get("nvidia.com/gpu", 0)),
                     "gpu_resources_json": json.dumps(resources, sort_keys=True), "gpu_product": GPU_PRODUCT[itype]})
    return rows


def gpu_placement(cluster: str, w, hours_per_pod: float) -> list[dict]:
    """Pod-hours of a GPU workload: every pod on the first node (8 whole GPUs hold all the demo asks)."""
    name, _itype, zone, *_ = GPU_NODES[0]
    return [{"cluster": cluster, "namespace": w.namespace, "kind": w.kind, "workload": w.name, "node": name, "zone": zone,
             "pod_hours": hours_per_pod * w.replicas}]


SEED = 32  # the GPU samples draw from their own generator: the rest of the demo's draws stay as they were
ENGINE_METRIC = "DCGM_FI_PROF_GR_ENGINE_ACTIVE"


def _engine(rng, n: int, g: DemoGpu, per_day: int) -> np.ndarray:
    """Engine active share at each step: daily-seasonal, noisy, with rare bursts to ``engine_burst`` x mean."""
    t = np.arange(n)
    s = g.engine_mean * (1 + 0.3 * np.sin(2 * np.pi * t / per_day)) * rng.lognormal(0, 0.2, n)
    bursts = rng.random(n) < 0.01
    s[bursts] = g.engine_mean * g.engine_burst * rng.uniform(0.9, 1.0, bursts.sum())
    return np.clip(s, 0.0, 1.0)


def gpu_usage(pods_by_container, grid, acc, owners: dict, raw: pd.DataFrame) -> pd.DataFrame:
    """The GPU containers' DCGM samples (engine active, frame buffer used: the busiest of a pod's GPUs, as the
    collector folds them) through the collector's reducer into ``acc``; ``raw`` (the demo's daily raw rows)
    with each pod's daily frame-buffer maximum added."""
    from .sources.prometheus.client import RangeSeries
    from .sources.prometheus.usage import reduce_chunk

    rng = np.random.default_rng(SEED)
    ts = grid.first + np.arange(grid.n) * grid.step
    per_day = int(86400 / grid.step)
    engine, memory, daily = [], [], []
    for (w, c), pods in pods_by_container:
        if c.gpu is None:
            continue
        for pod, steps, *_ in pods:
            n = len(steps)
            used = c.gpu.memory_gib * GIB * (1 + 0.04 * np.linspace(0, 1, n)) * rng.normal(1, 0.01, n)
            used = np.minimum(used, FRAME_BUFFER_BYTES["p4d.24xlarge"])
            engine.append(RangeSeries((w.namespace, pod, c.name), _engine(rng, n, c.gpu, per_day), ts[steps]))
            memory.append(RangeSeries((w.namespace, pod, c.name), used, ts[steps]))
            days = grid.day(steps)
            daily += [{"namespace": w.namespace, "pod": pod, "container": c.name, "day": int(d),
                       "gpu_memory_max_bytes": float(used[days == d].max())} for d in np.unique(days)]
    for resource, result in (("gpu_engine", engine), ("gpu_memory", memory)):
        if result:
            acc.add(reduce_chunk(result, resource, grid, owners))
    if not daily:
        return raw
    return raw.merge(pd.DataFrame(daily), on=["namespace", "pod", "container", "day"], how="left")


def gpu_usage_columns(usage: pd.DataFrame, pods_by_container) -> pd.DataFrame:
    """The usage table with what DCGM tells of each GPU container: its GPUs' frame buffer, model and engine metric."""
    gpu = {(w.namespace, w.kind, w.name, c.name) for (w, c), _ in pods_by_container if c.gpu is not None}
    mine = pd.Series([k in gpu for k in zip(usage["namespace"], usage["kind"], usage["workload"], usage["container"])], index=usage.index)
    usage["gpu_memory_total_bytes"] = np.where(mine, FRAME_BUFFER_BYTES["p4d.24xlarge"], np.nan)
    usage["gpu_model"] = np.where(mine, "NVIDIA A100-SXM4-40GB", "")
    usage["gpu_engine_metric"] = np.where(mine, ENGINE_METRIC, "")
    return usage
