"""GPU dollars per container and GPU idle per node group (analysis/gpu_cost.py through cost.py), by hand.

Prices: the catalogue's us-east-1 list prices. p4d.24xlarge's GPU part is 1.7680096 USD per GPU-hour and
g5.12xlarge's 0.8996 (tests/test_gpu_prices.py works both); 730 hours a month; a 24 h window.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from rightsize.analysis import cost
from rightsize.config import Config
from rightsize.quantity import GIB
from rightsize.snapshot import Snapshot
from rightsize.sources.aws import collect_prices

P4D, G5 = 1.7680096, 0.8996  # USD per GPU-hour
MIG_NODE = {"nvidia.com/gpu": 4, "nvidia.com/mig-1g.5gb": 14, "nvidia.com/mig-3g.20gb": 4}


def _snapshot() -> Snapshot:
    nodes = pd.DataFrame({
        "cluster": "c1", "node": ["a100", "a100-mig", "a10g", "cpu"],
        "instance_type": ["p4d.24xlarge", "p4d.24xlarge", "g5.12xlarge", "m5.xlarge"],
        "zone": "us-east-1a", "region": "us-east-1", "capacity_type": "on-demand",
        "node_group": ["gpu", "gpu", "a10g", "general"], "allocatable_cpu_cores": [95.0, 95.0, 47.0, 3.9],
        "allocatable_memory_bytes": [1100 * GIB, 1100 * GIB, 180 * GIB, 14 * GIB], "hours_seen": 24.0,
        # a100: 8 whole GPUs; a100-mig: 4 whole + 2 GPUs as 7 x 1g.5gb + 2 GPUs as 2 x 3g.20gb;
        # a10g: time-slicing with 4 replicas per GPU (16 advertised for 4 GPUs)
        "allocatable_gpus": [8.0, 4.0, 16.0, 0.0],
        "gpu_resources_json": [json.dumps({"nvidia.com/gpu": 8}), json.dumps(MIG_NODE), json.dumps({"nvidia.com/gpu": 16}), "{}"],
    })
    work = pd.DataFrame({"cluster": "c1", "namespace": "ml", "kind": "Deployment", "workload": ["train", "embed", "tts", "web"],
                         "replicas": 1.0, "hpa": False, "pdb": False, "has_pvc": False, "has_empty_dir": False,
                         "has_host_path": False, "termination_grace_seconds": 30.0, "source": "test"})
    cont = work[["cluster", "namespace", "kind", "workload"]].assign(
        container="app", container_type="main", cpu_request_cores=1.0, memory_request_bytes=1 * GIB,
        cpu_limit_cores=np.nan, memory_limit_bytes=np.nan,
        gpu_resource=["nvidia.com/gpu", "nvidia.com/mig-1g.5gb", "nvidia.com/gpu", ""],
        gpu_request_count=[4.0, 1.0, 1.0, np.nan])
    placement = pd.DataFrame({"cluster": "c1", "namespace": "ml", "kind": "Deployment",
                              "workload": ["train", "embed", "tts", "web"], "node": ["a100", "a100-mig", "a10g", "cpu"],
                              "zone": "us-east-1a", "pod_hours": [24.0, 12.0, 24.0, 24.0]})
    snap = Snapshot(tables={"nodes": nodes, "workloads": work, "containers": cont, "placement": placement})
    snap.meta["window_start"], snap.meta["window_end"] = "2026-11-01T00:00:00+00:00", "2026-11-02T00:00:00+00:00"
    collect_prices(Config(), snap, offline=True)
    return snap.validate()


def _recs(snap: Snapshot) -> pd.DataFrame:
    c = snap.tables["containers"]
    recs = c[["cluster", "namespace", "kind", "workload", "container", "container_type"]].assign(
        status="keep", replicas=1.0, cpu_request_cores_current=c["cpu_request_cores"], cpu_request_cores_recommended=np.nan,
        memory_request_bytes_current=c["memory_request_bytes"], memory_request_bytes_recommended=np.nan)
    return cost.add_costs(recs, snap, Config()).set_index("workload")


def test_gpu_dollars_per_container_by_hand():
    recs = _recs(_snapshot())
    # 4 whole A100s: 4 x 1.7680096 x 730
    assert recs.loc["train", "gpu_usd_per_month_current"] == pytest.approx(4 * P4D * 730, rel=1e-6)
    # one 1g.5gb slice of an A100 40 GB: max(1/7 of its SMs, 1/8 of its memory) = 1/7 of a GPU
    assert recs.loc["embed", "gpu_usd_per_month_current"] == pytest.approx(P4D / 7 * 730, rel=1e-6)
    # one of 16 time-sliced replicas of a g5.12xlarge's 4 A10Gs: a quarter of a GPU
    assert recs.loc["tts", "gpu_usd_per_month_current"] == pytest.approx(G5 / 4 * 730, rel=1e-6)
    assert recs.loc["web", "gpu_usd_per_month_current"] == 0.0
    # the container's cost holds its GPUs: CPU and memory at m5's (p4d) unit prices plus the GPUs
    c, m = 0.192 / 46 * 7.5, 0.192 / 46
    assert recs.loc["train", "usd_per_month_current"] == pytest.approx((c + m) * 730 + 4 * P4D * 730, rel=1e-6)
    assert (recs["gpu_usd_per_month_recommended"] == recs["gpu_usd_per_month_current"]).all()  # no GPU change proposed


def test_gpu_idle_per_node_group_by_hand():
    idle = cost.idle_costs(_snapshot(), Config()).set_index("node_group")
    # gpu: a100 has 8 GPUs, 4 requested; a100-mig 4 + 14/7 + 4 x 1/2 = 8 GPU-equivalents, 1/7 requested half the window
    requested = 4 + (12 / 24) * (1 / 7)
    assert idle.loc["gpu", "allocatable_gpus"] == pytest.approx(16.0)
    assert idle.loc["gpu", "requested_gpus"] == pytest.approx(requested)
    assert idle.loc["gpu", "gpu_idle_usd_per_month"] == pytest.approx((16 - requested) * P4D * 730, rel=1e-6)
    # a10g: 16 advertised replicas of 4 GPUs, one requested = 1/4 GPU
    assert idle.loc["a10g", "allocatable_gpus"] == pytest.approx(4.0)
    assert idle.loc["a10g", "gpu_idle_usd_per_month"] == pytest.approx(3.75 * G5 * 730, rel=1e-6)
    assert idle.loc["general", "gpu_idle_usd_per_month"] == 0.0 and idle.loc["general", "allocatable_gpus"] == 0.0
    # idle_usd_per_month holds the GPUs too: its CPU and memory part is what is left
    cpu_mem = idle["idle_usd_per_month"] - idle["gpu_idle_usd_per_month"]
    assert (cpu_mem >= 0).all() and (cpu_mem < idle["idle_usd_per_month"]).loc[["gpu", "a10g"]].all()


def test_a_gpu_without_a_price_is_unknown_not_zero():
    snap = _snapshot()
    prices = snap.tables["prices"]
    snap.tables["prices"] = prices[prices["instance_type"] != "g5.12xlarge"]
    recs = _recs(snap)
    assert np.isnan(recs.loc["tts", "gpu_usd_per_month_current"]) and np.isnan(recs.loc["tts", "usd_per_month_current"])
    assert "GPU price unknown" in recs.loc["tts", "cost_note"]
    assert recs.loc["web", "gpu_usd_per_month_current"] == 0.0


def test_node_allocatable_unknown_counts_the_type_s_gpus():
    snap = _snapshot()
    snap.tables["nodes"]["allocatable_gpus"] = np.nan
    snap.tables["nodes"]["gpu_resources_json"] = ""
    idle = cost.idle_costs(snap, Config()).set_index("node_group")
    assert idle.loc["gpu", "allocatable_gpus"] == pytest.approx(16.0) and idle.loc["a10g", "allocatable_gpus"] == 4.0


def test_gpu_dollars_used_per_namespace_are_unknown_when_no_gpu_was_measured_never_zero():
    from rightsize.analysis.summary import GPU_SUMS, rollup

    # ml: a GPU container without DCGM usage (used NaN) beside a CPU one (used 0): unknown, not 0;
    # web: no GPU at all: 0; lab: one measured GPU (5 USD/month used) and one unmeasured: the measured 5
    recs = pd.DataFrame({"namespace": ["ml", "ml", "web", "lab", "lab"], "status": "keep", "flags": "", "replicas": 1.0,
                         "usd_per_month_current": [100.0, 1.0, 2.0, 50.0, 50.0], "savings_usd_per_month": 0.0,
                         "gpu_resource": ["nvidia.com/gpu", "", "", "nvidia.com/gpu", "nvidia.com/gpu"],
                         "gpu_usd_per_month_current": [90.0, 0.0, 0.0, 40.0, 40.0], "gpu_savings_usd_per_month": 0.0,
                         "gpu_usd_per_month_used": [np.nan, 0.0, 0.0, 5.0, np.nan]})
    used = rollup(recs, ["namespace"], sums=GPU_SUMS).set_index("namespace")["gpu_usd_per_month_used"]
    assert np.isnan(used["ml"]) and used["web"] == 0.0 and used["lab"] == 5.0
