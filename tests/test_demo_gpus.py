"""The demo's GPU block (rightsize/demo_gpus.py): what it adds, and that it leaves the rest of the demo as it was."""
from __future__ import annotations

import pandas as pd
import pytest

from rightsize import demo
from rightsize.api import analyze
from rightsize.config import Config
from rightsize.schema import CONTAINER_KEY
from rightsize.sources.aws import collect_prices


def _analysis():
    snap = demo.generate()
    collect_prices(Config(), snap, offline=True)
    return snap, analyze(snap, Config())


@pytest.fixture(scope="module")
def both():
    with_gpus = _analysis()
    patch = pytest.MonkeyPatch()
    patch.setattr(demo, "gpu_workloads", lambda W, C: [])
    patch.setattr(demo, "gpu_nodes_table", lambda *a: [])
    try:
        without = _analysis()
    finally:
        patch.undo()
    return with_gpus, without


def test_the_demo_s_cpu_and_memory_savings_off_the_gpu_nodes_do_not_change(both):
    (snap, a), (_, b) = both
    keys = list(CONTAINER_KEY)
    money = ["usd_per_month_current", "usd_per_month_recommended", "savings_usd_per_month",
             "cpu_request_cores_recommended", "memory_request_bytes_recommended"]
    gpu = a.recommendations["namespace"] == "ml-platform"
    assert gpu.sum() == 3 and len(a.recommendations) == len(b.recommendations) + 3
    left = a.recommendations[~gpu].set_index(keys)[money].sort_index()
    right = b.recommendations.set_index(keys)[money].sort_index()
    pd.testing.assert_frame_equal(left, right)
    # idle capacity and bin-packing of the node groups without GPUs are the same too
    idle_a, idle_b = a.idle[a.idle["node_group"] != "gpu-a100"].reset_index(drop=True), b.idle.reset_index(drop=True)
    pd.testing.assert_frame_equal(idle_a, idle_b)
    groups_a = a.node_groups[a.node_groups["node_group"] != "gpu-a100"].reset_index(drop=True)
    pd.testing.assert_frame_equal(groups_a, b.node_groups.reset_index(drop=True))


def test_the_gpu_node_group_and_its_workloads(both):
    (snap, a), _ = both
    nodes = snap.tables["nodes"].set_index("node")
    assert nodes.loc["ip-10-0-2-42", "allocatable_gpus"] == 4 and "mig-1g.5gb" in nodes.loc["ip-10-0-2-42", "gpu_resources_json"]
    idle = a.idle.set_index("node_group").loc["gpu-a100"]
    # 16 GPUs: 8 requested on the first node (4 + 2 + 2), the partitioned node's 8 GPU-equivalents idle
    assert idle["allocatable_gpus"] == pytest.approx(16.0) and idle["requested_gpus"] == pytest.approx(8.0)
    assert idle["gpu_idle_usd_per_month"] == pytest.approx(8 * 1.7680096 * 730, rel=1e-6)
    recs = a.recommendations.set_index("workload")
    assert recs.loc["finetune-llm", "gpu_usd_per_month_current"] == pytest.approx(4 * 1.7680096 * 730, rel=1e-6)
    assert snap.tables["workloads"].set_index("workload").loc["finetune-llm", "checkpoints"]


def test_metrics_prom_carries_the_gpu_money_and_the_idle_gpus(both):
    from rightsize.emit import metrics_prom

    (snap, a), _ = both
    text = metrics_prom.render(a, snap)
    samples = dict(line.rsplit(" ", 1) for line in text.splitlines() if line.startswith("rightsize_gpu"))
    # 8 A100s requested (4 + 2 + 2) x 1.7680096 USD per GPU-hour x 730 h; the second node's 8 idle alike
    assert float(samples['rightsize_gpu_cost_usd_per_month{cluster="demo",namespace="ml-platform"}']) == pytest.approx(10325.176, rel=1e-6)
    assert float(samples['rightsize_gpu_idle_usd_per_month{cluster="demo",node_group="gpu-a100"}']) == pytest.approx(10325.176, rel=1e-6)
    assert samples['rightsize_gpu_cost_usd_per_month{cluster="demo",namespace="shop"}'] == "0"  # no GPU there: 0, known


def test_what_if_moves_the_gpu_thresholds_offline(both):
    from rightsize.api import what_if

    (snap, _), _ = both
    t = what_if(snap, {"idle_below_half_percent": {"gpu_idle_below": 0.005}, "idle_below_10": {"gpu_idle_below": 0.10}})
    saved = t["gpu_savings_usd_per_month"]
    month = 1.7680096 * 730  # one A100 for a month
    # baseline: finetune-llm idle (4 GPUs, p95 1.0 %) + embeddings' 2 GPUs to a 1g.5gb slice each (1/7 of an A100)
    assert saved["baseline"] == pytest.approx(4 * month + 2 * month * 6 / 7, rel=1e-6)
    # below 0.5 %: the 4-GPU job is no longer idle and, on several GPUs, is kept
    assert saved["idle_below_half_percent"] == pytest.approx(2 * month * 6 / 7, rel=1e-6)
    # below 10 %: embeddings (p95 8.0 %) is idle too
    assert saved["idle_below_10"] == pytest.approx(6 * month, rel=1e-6)
