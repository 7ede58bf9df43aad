"""Small hand-made snapshots for the recommendation tests: one call per container, everything else defaulted.

Defaults describe a healthy production container with 14 days of 5-minute samples; each test
changes only what its rule is about.
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd

from rightsize.config import Config, policy_values
from rightsize.quantity import GIB, MIB
from rightsize.snapshot import Snapshot, new_meta

NAN = np.nan
STEP = 300
DAYS14 = 14 * 24.0


def ctr(workload: str = "web", container: str = "app", *, namespace: str = "shop", kind: str = "Deployment",
        cluster: str = "c1", cpu_request=0.5, cpu_limit=NAN, memory_request=512 * MIB, memory_limit=512 * MIB,
        cpu=(0.10, 0.15, 0.20, 0.30, 0.40), memory=(200 * MIB, 220 * MIB, 230 * MIB, 240 * MIB, 256 * MIB),
        hours=DAYS14, samples=None, oom_kills=0, restarts=0, throttled=NAN, throttled_seconds=NAN, pods=3,
        hpa_cpu=NAN, hpa_memory=NAN, ignore=False, policy_override="", replicas=2, team="t",
        usage=True, container_type="main") -> dict:
    """One container's rows for the containers, usage and workloads tables (cores, bytes, hours)."""
    if samples is None:
        samples = hours * 3600 / STEP
    ident = {"cluster": cluster, "namespace": namespace, "kind": kind, "workload": workload}
    c = {**ident, "container": container, "container_type": container_type, "cpu_request_cores": cpu_request,
         "cpu_limit_cores": cpu_limit, "memory_request_bytes": memory_request, "memory_limit_bytes": memory_limit}
    u = None
    if usage:
        u = {**ident, "container": container,
             **usage_stats(cpu, memory),
             "samples": float(samples), "hours_covered": float(hours), "oom_kills": float(oom_kills),
             "restarts": float(restarts), "cpu_throttled_ratio": throttled, "cpu_throttled_seconds": throttled_seconds,
             "pods_seen": float(pods)}
    hpa = not (np.isnan(hpa_cpu) and np.isnan(hpa_memory))
    w = {**ident, "replicas": float(replicas), "hpa": hpa, "hpa_cpu_target_percent": hpa_cpu,
         "hpa_memory_target_percent": hpa_memory, "pdb": False, "has_pvc": False, "has_empty_dir": False,
         "has_host_path": False, "termination_grace_seconds": 30.0, "team": team, "ignore": ignore,
         "policy_override": policy_override, "source": "test"}
    return {"container": c, "usage": u, "workload": w}


def usage_stats(cpu, memory) -> dict:
    """Usage-table statistic columns from (p50, p90, p95, p99, max) of CPU (cores) and memory (bytes),
    the same on every per-replica basis (as for a container with one replica)."""
    from rightsize.usage_stats import BASES, usage_column

    out = {}
    for res, values in (("cpu", cpu), ("memory", memory)):
        for basis in BASES:
            for stat, v in zip(("p50", "p90", "p95", "p99", "max"), values):
                out[usage_column(res, stat, basis)] = v
    return out


def node(name: str = "n1", cpu: float = 8.0, memory: float = 32 * GIB, cluster: str = "c1") -> dict:
    return {"cluster": cluster, "node": name, "instance_type": "m5.2xlarge", "zone": "z1", "region": "r1",
            "capacity_type": "on-demand", "allocatable_cpu_cores": cpu, "allocatable_memory_bytes": memory,
            "hours_seen": DAYS14}


def snap(*rows: dict, nodes=None, namespaces: dict | None = None, step: int | None = STEP) -> Snapshot:
    """A validated snapshot of the given ctr() rows; ``namespaces`` maps name -> labels."""
    containers = pd.DataFrame([r["container"] for r in rows])
    usage_rows = [r["usage"] for r in rows if r["usage"] is not None]
    work = pd.DataFrame([r["workload"] for r in rows]).drop_duplicates(["cluster", "namespace", "kind", "workload"])
    tables = {"containers": containers, "workloads": work}
    if usage_rows:
        tables["usage"] = pd.DataFrame(usage_rows)
    if nodes is None:
        nodes = [node()]
    if nodes:
        tables["nodes"] = pd.DataFrame(nodes)
    if namespaces:
        cluster = rows[0]["container"]["cluster"]
        tables["namespaces"] = pd.DataFrame(
            [{"cluster": cluster, "namespace": ns, "labels_json": json.dumps(lbl)} for ns, lbl in namespaces.items()])
    s = Snapshot(tables=tables, meta=new_meta(step_seconds=step))
    return s.validate()


def uniform_margins(cfg: Config | None = None) -> Config:
    """``cfg`` (default: the defaults) with each policy's one ``margin`` (15 %) for every usage pattern, as before
    margins per pattern, and production's memory limit = request, as before the margin went on the limit: the rule
    tests compute their numbers with it (test_patterns.py tests the pattern margins and the margin on the limit)."""
    cfg = cfg or Config()
    return dataclasses.replace(cfg, policies={
        k: dataclasses.replace(p, margins={}, memory_limit="request" if p.memory_limit == "margin" else p.memory_limit)
        for k, p in cfg.policies.items()})


def config_with(policy: str = "production", **policy_changes) -> Config:
    """The uniform-margin config (uniform_margins) with some settings of one policy changed, as a config file
    would change them (a margin set without margins is that margin for every pattern)."""
    cfg = uniform_margins()
    policies = dict(cfg.policies)
    policies[policy] = dataclasses.replace(policies[policy], **policy_values(policy_changes))
    return dataclasses.replace(cfg, policies=policies)


def one(df: pd.DataFrame, workload: str = "web", container: str = "app") -> pd.Series:
    hit = df[(df["workload"] == workload) & (df["container"] == container)]
    assert len(hit) == 1, hit
    return hit.iloc[0]
