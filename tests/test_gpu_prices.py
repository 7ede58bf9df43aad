"""A GPU node's price split in three (analysis/price_split.py), against hand computations.

Prices are the bundled catalogue's us-east-1 list prices (2026-07-20), ratio 7.5 (the default):

- m6a.xlarge 0.1728 USD/h, 4 vCPU, 16 GiB: m = 0.1728 / (7.5 x 4 + 16) = 0.1728 / 46 = 0.0037565217 USD per
  GiB-hour, c = 7.5 m = 0.0281739130 USD per vCPU-hour (the reference of g5 and g6: AMD EPYC);
- m5.xlarge 0.192 USD/h, 4 vCPU, 16 GiB: m = 0.192 / 46 = 0.0041739130, c = 0.0313043478 (the reference of
  p4d: Intel Cascade Lake).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from rightsize.analysis import cost
from rightsize.analysis.price_split import caveats, split_price
from rightsize.config import Config, PricingConfig
from rightsize.quantity import GIB
from rightsize.snapshot import Snapshot
from rightsize.sources.aws import collect_prices

M6A = (0.1728 / 46 * 7.5, 0.1728 / 46)  # (USD per vCPU-hour, USD per GiB-hour)
M5 = (0.192 / 46 * 7.5, 0.192 / 46)

# type: (price USD/h, vCPU, GiB, GPUs, reference unit prices)
TYPES = {
    "g5.xlarge": (1.006, 4, 16, 1, M6A),
    "g5.12xlarge": (5.672, 48, 192, 4, M6A),
    "p4d.24xlarge": (21.957642, 96, 1152, 8, M5),
    "g6.xlarge": (0.8048, 4, 16, 1, M6A),
}
# GPU part per GPU, worked by hand from the numbers above:
#   g5.xlarge:    1.006 - (4 c + 16 m) = 1.006 - 0.1728 = 0.8332
#   g5.12xlarge:  (5.672 - (48 c + 192 m)) / 4 = (5.672 - 12 x 0.1728) / 4 = (5.672 - 2.0736) / 4 = 0.8996
#   p4d.24xlarge: (21.957642 - (96 x 0.0313043478 + 1152 x 0.0041739130)) / 8
#                 = (21.957642 - (3.0052174 + 4.8083478)) / 8 = 14.1440768 / 8 = 1.7680096
#   g6.xlarge:    0.8048 - 0.1728 = 0.632
GPU_PART = {"g5.xlarge": 0.8332, "g5.12xlarge": 0.8996, "p4d.24xlarge": 1.7680096, "g6.xlarge": 0.632}


def _config(**pricing) -> Config:
    return dataclasses.replace(Config(), pricing=dataclasses.replace(PricingConfig(), **pricing))


def _snapshot(types=tuple(TYPES), capacity="on-demand") -> Snapshot:
    nodes = pd.DataFrame({"cluster": "c1", "node": [f"n-{t}" for t in types], "instance_type": list(types),
                          "zone": "us-east-1a", "region": "us-east-1", "capacity_type": capacity, "node_group": "gpu",
                          "allocatable_cpu_cores": 3.9, "allocatable_memory_bytes": 14 * GIB, "hours_seen": 24.0})
    snap = Snapshot(tables={"nodes": nodes})
    snap.meta["window_start"], snap.meta["window_end"] = "2026-11-01T00:00:00+00:00", "2026-11-02T00:00:00+00:00"
    return snap


def _nodes(config: Config | None = None, snap: Snapshot | None = None) -> pd.DataFrame:
    config = config or Config()
    snap = snap or _snapshot()
    collect_prices(config, snap, offline=True)
    return cost.node_unit_prices(snap, config).set_index("instance_type")


@pytest.mark.parametrize("itype", list(TYPES))
def test_split_by_hand(itype):
    price, vcpu, gib, gpus, (c, m) = TYPES[itype]
    row = _nodes().loc[itype]
    assert row["usd_per_hour"] == pytest.approx(price)
    assert row["gpus"] == gpus
    # CPU and memory at the reference's unit prices, the GPUs the rest
    assert row["usd_per_vcpu_hour"] == pytest.approx(c)
    assert row["usd_per_gib_hour"] == pytest.approx(m)
    assert row["usd_per_gpu_hour"] == pytest.approx(GPU_PART[itype], rel=1e-6)
    # the parts add up to the node's price
    parts = vcpu * row["usd_per_vcpu_hour"] + gib * row["usd_per_gib_hour"] + gpus * row["usd_per_gpu_hour"]
    assert parts == pytest.approx(price, rel=1e-12)
    assert row["gpu_price_basis"].startswith("CPU and memory at m")


def test_the_issue_s_example_cpu_and_memory_no_longer_carry_the_gpu():
    """The issue: split as if it had no GPU, a g5.xlarge's CPU and memory cost 5.2 times an m6i.xlarge's
    (same shape, 0.192 USD/h); split in three, they cost what m6a.xlarge's do."""
    c_whole, m_whole = split_price(1.006, 4, 16, 7.5)
    assert (4 * c_whole + 16 * m_whole) / 0.192 == pytest.approx(5.24, abs=0.01)
    row = _nodes().loc["g5.xlarge"]
    assert 4 * row["usd_per_vcpu_hour"] + 16 * row["usd_per_gib_hour"] == pytest.approx(0.1728)


def test_the_reference_types_are_priced_with_the_nodes():
    snap = _snapshot()
    collect_prices(Config(), snap, offline=True)
    od = snap.tables["prices"]
    od = od[od["capacity_type"] == "on-demand"].set_index("instance_type")
    assert {"m6a.xlarge", "m5.xlarge"} <= set(od.index)
    assert od.loc["m6a.xlarge", "usd_per_hour"] == pytest.approx(0.1728)
    assert od.loc["p4d.24xlarge", "gpus"] == 8 and od.loc["m5.xlarge", "gpus"] == 0
    # a reference type is not a node: no "no price" warning names it, the node table is unchanged
    assert len(snap.tables["nodes"]) == len(TYPES)


def test_a_trimmed_cpu_on_a_gpu_node_saves_only_its_cpu_part():
    """2 -> 1 core on a g5.xlarge saves 1 core x c(m6a) x 730 h = 0.0281739 x 730 = 20.567 USD/month, not the
    1 x 0.16402 x 730 = 119.73 a whole-price split (m = 1.006 / 46, c = 7.5 m) would claim."""
    snap = _snapshot(("g5.xlarge",))
    snap.tables["placement"] = pd.DataFrame({"cluster": ["c1"], "namespace": ["ml"], "kind": ["Deployment"],
                                             "workload": ["infer"], "node": ["n-g5.xlarge"], "zone": ["us-east-1a"],
                                             "pod_hours": [24.0]})
    snap.tables["workloads"] = pd.DataFrame({"cluster": ["c1"], "namespace": ["ml"], "kind": ["Deployment"],
                                             "workload": ["infer"], "replicas": [1.0], "hpa": [False]})
    collect_prices(Config(), snap, offline=True)
    recs = pd.DataFrame({"cluster": ["c1"], "namespace": ["ml"], "kind": ["Deployment"], "workload": ["infer"],
                         "container": ["app"], "container_type": ["main"], "status": ["change"], "replicas": [1.0],
                         "cpu_request_cores_current": [2.0], "cpu_request_cores_recommended": [1.0],
                         "memory_request_bytes_current": [4 * GIB], "memory_request_bytes_recommended": [4 * GIB]})
    out = cost.add_costs(recs, snap, Config())
    assert out["savings_usd_per_month"].iloc[0] == pytest.approx(0.1728 / 46 * 7.5 * 730)
    assert out["savings_usd_per_month"].iloc[0] == pytest.approx(20.5669, abs=1e-3)


def test_a_spot_gpu_node_splits_in_the_on_demand_proportions():
    """Spot g5.xlarge (offline estimate: on-demand x (1 - advisor savings)): CPU and memory keep their on-demand
    share 0.1728 / 1.006 of the spot price, the GPU the rest."""
    row = _nodes(snap=_snapshot(("g5.xlarge",), capacity="spot")).loc["g5.xlarge"]
    spot = row["usd_per_hour"]
    assert spot < 1.006 and row["usd_per_hour_on_demand"] == pytest.approx(1.006)
    share = 0.1728 / 1.006
    assert 4 * row["usd_per_vcpu_hour"] + 16 * row["usd_per_gib_hour"] == pytest.approx(spot * share)
    assert row["usd_per_gpu_hour"] == pytest.approx(spot * (1 - share))
    assert row["usd_per_gpu_hour_on_demand"] == pytest.approx(0.8332)


def test_explicit_gpu_price_and_gpu_discount():
    # p4d at 1.5 USD per GPU-hour: the GPUs cost 12 USD/h, CPU and memory the other 9.957642, split 7.5:1
    row = _nodes(_config(gpu_usd_per_hour={"p4d.24xlarge": 1.5})).loc["p4d.24xlarge"]
    assert row["usd_per_gpu_hour"] == pytest.approx(1.5)
    c, m = split_price(21.957642 - 12.0, 96, 1152, 7.5)
    assert (row["usd_per_vcpu_hour"], row["usd_per_gib_hour"]) == (pytest.approx(c), pytest.approx(m))
    assert row["gpu_price_basis"] == "GPU price from [pricing] gpu_usd_per_hour"
    # 30% off the GPU part only: g6.xlarge = 0.1728 + 0.632 x 0.7
    row = _nodes(_config(gpu_discount=0.3)).loc["g6.xlarge"]
    assert row["usd_per_gpu_hour"] == pytest.approx(0.632 * 0.7)
    assert row["usd_per_hour"] == pytest.approx(0.1728 + 0.632 * 0.7)
    assert 4 * row["usd_per_vcpu_hour"] + 16 * row["usd_per_gib_hour"] == pytest.approx(0.1728)


def test_a_non_gpu_node_keeps_the_plain_split():
    row = _nodes(snap=_snapshot(("m5.xlarge",))).loc["m5.xlarge"]
    assert row["gpus"] == 0 and np.isnan(row["usd_per_gpu_hour"]) and row["gpu_price_basis"] == ""
    assert (row["usd_per_vcpu_hour"], row["usd_per_gib_hour"]) == (pytest.approx(M5[0]), pytest.approx(M5[1]))


def test_a_reference_without_a_price_keeps_the_whole_price_split_and_says_so():
    """Collect prices every reference with the nodes; should one still have no price (a type the region does not
    offer), the GPU type keeps the plain CPU:RAM split of its whole price and a caveat names both types."""
    snap = _snapshot(("g6.xlarge",))
    collect_prices(Config(), snap, offline=True)
    prices = snap.tables["prices"]
    snap.tables["prices"] = prices = prices[prices["instance_type"] != "m6a.xlarge"]
    row = cost.node_unit_prices(snap, Config()).set_index("instance_type").loc["g6.xlarge"]
    c, m = split_price(0.8048, 4, 16, 7.5)
    assert (row["usd_per_vcpu_hour"], row["usd_per_gib_hour"]) == (pytest.approx(c), pytest.approx(m))
    assert row["usd_per_gpu_hour"] == 0.0 and row["gpu_price_basis"].startswith("no price for m6a.xlarge")
    warned = caveats(prices, snap.tables["nodes"], Config())
    assert [w["code"] for w in warned] == ["gpu_reference_unpriced"] and "m6a.xlarge" in warned[0]["message"]


def test_a_family_without_a_declared_reference_is_assumed_and_said():
    """g7e has GPUs in the catalogue but no row in gpu_families.csv: m7i.xlarge (0.2016) is assumed, and named;
    [pricing] gpu_reference_types declares one."""
    snap = _snapshot(("g7e.2xlarge",))
    collect_prices(Config(), snap, offline=True)
    row = cost.node_unit_prices(snap, Config()).set_index("instance_type").loc["g7e.2xlarge"]
    c, m = split_price(0.2016, 4, 16, 7.5)
    assert (row["usd_per_vcpu_hour"], row["usd_per_gib_hour"]) == (pytest.approx(c), pytest.approx(m))
    warned = caveats(snap.tables["prices"], snap.tables["nodes"], Config())
    assert [w["code"] for w in warned] == ["gpu_reference_assumed"]
    assert "g7e.2xlarge" in warned[0]["message"] and "gpu_reference_types" in warned[0]["message"]
    config = _config(gpu_reference_types={"g7e": "m6a.xlarge"})
    snap = _snapshot(("g7e.2xlarge",))
    collect_prices(config, snap, offline=True)
    row = cost.node_unit_prices(snap, config).set_index("instance_type").loc["g7e.2xlarge"]
    assert row["usd_per_vcpu_hour"] == pytest.approx(M6A[0])
    assert caveats(snap.tables["prices"], snap.tables["nodes"], config) == []


def test_a_reference_dearer_than_the_node_leaves_no_negative_gpu_part():
    snap = _snapshot(("g5.xlarge",))
    collect_prices(_config(instance_prices={"g5.xlarge": 0.1}), snap, offline=True)
    row = cost.node_unit_prices(snap, Config()).set_index("instance_type").loc["g5.xlarge"]
    assert row["usd_per_gpu_hour"] == 0.0
    assert 4 * row["usd_per_vcpu_hour"] + 16 * row["usd_per_gib_hour"] == pytest.approx(0.1)
    assert [w["code"] for w in caveats(snap.tables["prices"], snap.tables["nodes"], Config())] == ["gpu_part_negative"]
