"""The cost model against hand-worked numbers, on small hand-made tables (no I/O)."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from rightsize.analysis import cost
from rightsize.analysis.summary import rollup
from rightsize.config import Config, PricingConfig
from rightsize.demo import generate
from rightsize.quantity import GIB
from rightsize.schema import IDLE_COLUMNS
from rightsize.snapshot import Snapshot
from rightsize.sources.aws import collect_prices

KEY = ["cluster", "namespace", "kind", "workload"]


def _config(ratio: float = 4.0) -> Config:
    return dataclasses.replace(Config(), pricing=dataclasses.replace(PricingConfig(), cpu_ram_price_ratio=ratio))


def _snapshot() -> Snapshot:
    """Hand-worked setup, ratio 4: a 2 vCPU / 8 GiB type at 0.16 USD/h splits into c = 0.04 USD per
    vCPU-hour and m = 0.01 USD per GiB-hour (0.16 = 2*4m + 8m); its spot price 0.08 into 0.02 / 0.005."""
    nodes = pd.DataFrame({
        "cluster": "c1", "node": ["n1", "n2", "n3"], "instance_type": ["t.std", "t.std", "zz9.mega"],
        "zone": ["z-a", "z-b", "z-a"], "region": "r1", "capacity_type": ["on-demand", "spot", "on-demand"],
        "node_group": ["general", "spot", "mystery"], "allocatable_cpu_cores": [1.9, 1.9, 4.0],
        "allocatable_memory_bytes": [7 * GIB, 7 * GIB, 16 * GIB], "hours_seen": 24.0,
    })
    prices = pd.DataFrame({
        "instance_type": ["t.std", "t.std", "t.std"], "region": "r1", "zone": ["", "z-b", "z-a"],
        "capacity_type": ["on-demand", "spot", "spot"], "usd_per_hour": [0.16, 0.08, 0.12],
        "vcpu": 2.0, "memory_gib": 8.0, "price_source": ["aws", "aws", "aws"],
    })
    placement = pd.DataFrame({
        "cluster": "c1", "namespace": ["ns", "ns", "other"], "kind": "Deployment", "workload": ["a", "a", "d"],
        "node": ["n1", "n2", "n3"], "zone": ["z-a", "z-b", "z-a"], "pod_hours": [30.0, 10.0, 24.0],
    })
    workloads = pd.DataFrame({
        "cluster": "c1", "namespace": ["ns", "ns", "other"], "kind": "Deployment", "workload": ["a", "b", "d"],
        "replicas": [2.0, 1.0, 1.0], "hpa": False, "pdb": False, "has_pvc": False, "has_empty_dir": False,
        "has_host_path": False, "termination_grace_seconds": 30.0, "source": "test",
    })
    containers = pd.DataFrame({
        "cluster": "c1", "namespace": ["ns", "ns", "ns", "other"], "kind": "Deployment",
        "workload": ["a", "a", "b", "d"], "container": ["app", "setup", "app", "app"],
        "container_type": ["main", "init", "main", "main"],
        "cpu_request_cores": [1.0, 0.5, np.nan, 1.0], "cpu_limit_cores": np.nan,
        "memory_request_bytes": [2 * GIB, 3 * GIB, 1 * GIB, 1 * GIB], "memory_limit_bytes": np.nan,
    })
    snap = Snapshot(tables={"nodes": nodes, "prices": prices, "placement": placement,
                            "workloads": workloads, "containers": containers})
    snap.meta["window_start"], snap.meta["window_end"] = "2026-11-01T00:00:00+00:00", "2026-11-02T00:00:00+00:00"
    return snap.validate()


def _recs() -> pd.DataFrame:
    return pd.DataFrame({
        "cluster": "c1", "namespace": ["ns", "ns", "ns", "other", "ns"], "kind": "Deployment",
        "workload": ["a", "b", "b", "d", "a"], "container": ["app", "app", "app2", "app", "setup"],
        "container_type": ["main", "main", "main", "main", "init"], "team": ["t1", "t1", "t1", "t2", "t1"],
        "status": ["change", "change", "no_recommendation", "change", "change"],
        "replicas": [2.0, 1.0, 1.0, 1.0, 2.0],
        "cpu_request_cores_current": [1.0, np.nan, 0.2, 1.0, 0.5],
        "cpu_request_cores_recommended": [0.5, np.nan, np.nan, 0.5, 0.1],
        "memory_request_bytes_current": [2 * GIB, 1 * GIB, 1 * GIB, 1 * GIB, 3 * GIB],
        "memory_request_bytes_recommended": [1 * GIB, 0.5 * GIB, np.nan, 0.5 * GIB, 1 * GIB],
    })


def test_split_matches_opencost_defaults():
    ratio = 0.031611 / 0.004237
    assert ratio == pytest.approx(7.46, abs=0.01)
    price = 2 * 0.031611 + 8 * 0.004237
    c, m = cost.split_price(price, 2, 8, ratio)
    assert (c, m) == (pytest.approx(0.031611), pytest.approx(0.004237))


def test_node_unit_prices_hand_worked():
    nodes = cost.node_unit_prices(_snapshot(), _config()).set_index("node")
    assert nodes.loc["n1", "usd_per_hour"] == pytest.approx(0.16)
    assert nodes.loc["n1", "usd_per_vcpu_hour"] == pytest.approx(0.04)
    assert nodes.loc["n1", "usd_per_gib_hour"] == pytest.approx(0.01)
    # The spot node takes its own zone's spot price, not another zone's.
    assert nodes.loc["n2", "usd_per_hour"] == pytest.approx(0.08)
    assert nodes.loc["n2", "usd_per_vcpu_hour"] == pytest.approx(0.02)
    assert nodes.loc["n2", "usd_per_gib_hour"] == pytest.approx(0.005)
    assert nodes.loc["n2", "usd_per_hour_on_demand"] == pytest.approx(0.16)
    assert math.isnan(nodes.loc["n3", "usd_per_hour"]) and nodes.loc["n3", "price_source"] == "unknown"
    price = nodes["usd_per_vcpu_hour"] * nodes["vcpu"] + nodes["usd_per_gib_hour"] * nodes["memory_gib"]
    assert price.loc[["n1", "n2"]].tolist() == pytest.approx([0.16, 0.08])


def test_spot_node_without_its_zone_uses_region_estimate_then_on_demand():
    snap = _snapshot()
    prices = snap.tables["prices"]
    snap.tables["prices"] = prices[prices["zone"] != "z-b"]  # n2's zone loses its spot price
    nodes = cost.node_unit_prices(snap, _config()).set_index("node")
    assert nodes.loc["n2", "usd_per_hour"] == pytest.approx(0.12)  # mean of the remaining zones
    snap.tables["prices"] = prices[prices["capacity_type"] == "on-demand"]
    nodes = cost.node_unit_prices(snap, _config()).set_index("node")
    assert nodes.loc["n2", "usd_per_hour"] == pytest.approx(0.16)
    assert "no spot price" in nodes.loc["n2", "price_source"]


def test_workload_unit_prices_weighted_by_pod_hours():
    units = cost.workload_unit_prices(_snapshot(), _config()).set_index("workload")
    # a: 30 pod-hours at (0.04, 0.01) and 10 at (0.02, 0.005).
    assert units.loc["a", "usd_per_core_hour"] == pytest.approx(0.035)
    assert units.loc["a", "usd_per_gib_hour"] == pytest.approx(0.00875)
    assert units.loc["a", "spot_share"] == pytest.approx(0.25)
    assert units.loc["a", "usd_per_core_hour_on_demand"] == pytest.approx(0.04)
    assert units.loc["a", "price_basis"] == "placement"
    # b has no placement: the cluster's average on-demand unit prices (n3 is unpriced, so n1 and n2 only).
    assert units.loc["b", "price_basis"] == "cluster_average"
    assert units.loc["b", "usd_per_core_hour"] == pytest.approx(0.04)
    # d ran only on the unpriced node.
    assert math.isnan(units.loc["d", "usd_per_core_hour"]) and units.loc["d", "unknown_price_share"] == 1.0


def test_add_costs_hand_worked():
    out = cost.add_costs(_recs(), _snapshot(), _config())
    a, b, b2, d, init = (out.iloc[i] for i in range(5))
    # (1 core x 0.035 + 2 GiB x 0.00875) x 2 replicas x 730 h
    assert a["usd_per_month_current"] == pytest.approx(76.65)
    assert a["usd_per_month_recommended"] == pytest.approx(38.325)
    assert a["savings_usd_per_month"] == pytest.approx(38.325)
    # Unset CPU request costs 0; a NaN CPU recommendation keeps the current (unset) value.
    assert b["usd_per_month_current"] == pytest.approx(1 * 0.01 * 730)
    assert b["usd_per_month_recommended"] == pytest.approx(0.5 * 0.01 * 730)
    assert "no current request" in b["cost_note"] and "cluster average" in b["cost_note"]
    # No recommendation: recommended cost = current cost.
    assert b2["usd_per_month_recommended"] == pytest.approx(b2["usd_per_month_current"])
    assert b2["savings_usd_per_month"] == pytest.approx(0.0)
    # Unknown price is NaN, never 0.
    assert math.isnan(d["usd_per_month_current"]) and math.isnan(d["savings_usd_per_month"])
    assert "price unknown" in d["cost_note"]
    assert init["usd_per_month_current"] == 0.0 and "init" in init["cost_note"]


def test_keep_status_means_no_change():
    recs = _recs().iloc[[0]].assign(status="keep")
    out = cost.add_costs(recs, _snapshot(), _config())
    assert out.iloc[0]["savings_usd_per_month"] == pytest.approx(0.0)


def test_rollup_counts_unpriced_rows_and_never_makes_them_0():
    """summary.rollup, the one rollup of the API (costs(by=...)) and the report, on add_costs' output."""
    out = cost.add_costs(_recs(), _snapshot(), _config())
    by_ns = rollup(out, ["namespace"])
    assert by_ns["namespace"].tolist() == ["ns", "other"]  # largest savings first, the unknown last
    ns, other = by_ns.iloc[0], by_ns.iloc[1]
    # a: 76.65 now, saves 38.325; b: 1 GiB x 0.01 x 730 = 7.30, saves 3.65; b (no recommendation, cluster
    # average prices): (0.2 x 0.04 + 1 x 0.01) x 730 = 13.14, saves nothing; a's init container: not costed.
    assert ns["usd_per_month_current"] == pytest.approx(76.65 + 7.30 + 13.14)
    assert ns["savings_usd_per_month"] == pytest.approx(38.325 + 3.65)
    assert ns["usd_per_month_recommended"] == pytest.approx(76.65 + 7.30 + 13.14 - 38.325 - 3.65)
    assert (ns["containers"], ns["changes"], ns["containers_without_price"]) == (4, 3, 0)
    # d ran only on an unpriced node: its group's money is unknown (NaN), not 0, and the row is counted.
    assert math.isnan(other["usd_per_month_current"]) and math.isnan(other["savings_usd_per_month"])
    assert (other["containers"], other["containers_without_price"]) == (1, 1)
    # One group mixing both: the priced rows are summed, the unpriced one counted apart.
    whole = rollup(out, ["kind"]).iloc[0]
    assert whole["usd_per_month_current"] == pytest.approx(76.65 + 7.30 + 13.14)
    assert (whole["containers"], whole["containers_without_price"]) == (5, 1)
    assert rollup(out, []).iloc[0]["savings_usd_per_month"] == pytest.approx(38.325 + 3.65)


def test_idle_costs_hand_worked():
    idle = cost.idle_costs(_snapshot(), _config())
    assert list(idle.columns) == [c.name for c in IDLE_COLUMNS]
    g = idle.set_index("node_group")
    # n1: a's pod requests max(1 core main, 0.5 init) = 1 core and max(2 GiB, 3 GiB init) = 3 GiB, 30 pod-hours
    # over a 24 h window -> 1.25 cores and 3.75 GiB requested of 1.9 / 7 allocatable.
    assert g.loc["general", "requested_cpu_cores"] == pytest.approx(1.25)
    assert g.loc["general", "requested_memory_bytes"] == pytest.approx(3.75 * GIB)
    assert g.loc["general", "usd_per_month"] == pytest.approx(0.16 * 730)
    assert g.loc["general", "idle_usd_per_month"] == pytest.approx((0.65 * 0.04 + 3.25 * 0.01) * 730)
    assert g.loc["spot", "idle_usd_per_month"] == pytest.approx(((1.9 - 10 / 24) * 0.02 + (7 - 1.25) * 0.005) * 730)
    assert g.loc["spot", "capacity_type"] == "spot" and g.loc["spot", "nodes"] == 1.0
    assert math.isnan(g.loc["mystery", "usd_per_month"]) and math.isnan(g.loc["mystery", "idle_usd_per_month"])


def test_demo_snapshot_end_to_end_offline():
    snap = generate()
    config = Config()
    collect_prices(config, snap, offline=True)
    nodes = cost.node_unit_prices(snap, config)
    assert nodes["usd_per_hour"].notna().all()
    spot = nodes[nodes["capacity_type"] == "spot"]
    assert (spot["price_source"] == "offline-estimate").all()
    assert (spot["usd_per_hour"] < spot["usd_per_hour_on_demand"]).all()
    idle = cost.idle_costs(snap, config)
    assert len(idle) == 5 and idle["usd_per_month"].notna().all()  # general, memory, spot-compute (2 types), gpu-a100
    units = cost.workload_unit_prices(snap, config)
    assert units["usd_per_core_hour"].notna().all()
    assert set(units[KEY].itertuples(index=False)) >= set(snap.tables["workloads"][KEY].itertuples(index=False))


# --- batch and autoscaled work: costed at the pods it really ran -----------------------------------

def _batch_snapshot(placement_rows, workloads_rows, containers_rows) -> Snapshot:
    """One on-demand t.std node (ratio 4: 0.04 USD per vCPU-hour, 0.01 USD per GiB-hour), a 14-day window (336 h)."""
    nodes = pd.DataFrame({"cluster": "c1", "node": ["n1"], "instance_type": "t.std", "zone": "z-a", "region": "r1",
                          "capacity_type": "on-demand", "node_group": "general", "allocatable_cpu_cores": 8.0,
                          "allocatable_memory_bytes": 32 * GIB, "hours_seen": 336.0})
    prices = pd.DataFrame({"instance_type": ["t.std"], "region": "r1", "zone": "", "capacity_type": "on-demand",
                           "usd_per_hour": 0.16, "vcpu": 2.0, "memory_gib": 8.0, "price_source": "aws"})
    base = {"hpa": False, "pdb": False, "has_pvc": False, "has_empty_dir": False, "has_host_path": False,
            "termination_grace_seconds": 30.0, "source": "test"}
    tables = {"nodes": nodes, "prices": prices,
              "workloads": pd.DataFrame([{**base, "cluster": "c1", **w} for w in workloads_rows]),
              "containers": pd.DataFrame([{"cluster": "c1", "container_type": "main", "cpu_limit_cores": np.nan,
                                           "memory_limit_bytes": np.nan, **c} for c in containers_rows])}
    if placement_rows:
        tables["placement"] = pd.DataFrame([{"cluster": "c1", "node": "n1", "zone": "z-a", **p} for p in placement_rows])
    snap = Snapshot(tables=tables)
    snap.meta["window_start"], snap.meta["window_end"] = "2026-11-02T00:00:00+00:00", "2026-11-16T00:00:00+00:00"
    return snap.validate()


def _costed(snap: Snapshot) -> pd.DataFrame:
    from rightsize.analysis.recommend import recommend

    return cost.add_costs(recommend(snap, _config()), snap, _config()).set_index("workload")


@pytest.mark.parametrize("inventory_replicas", [1.0, 0.0])  # API: parallelism 1; kube-state-metrics: no pod alive at the end
def test_cronjob_running_6_hours_a_day_costs_a_quarter_pod(inventory_replicas):
    snap = _batch_snapshot(
        [{"namespace": "batch", "kind": "CronJob", "workload": "nightly", "pod_hours": 6.0 * 14}],
        [{"namespace": "batch", "kind": "CronJob", "workload": "nightly", "replicas": inventory_replicas}],
        [{"namespace": "batch", "kind": "CronJob", "workload": "nightly", "container": "run",
          "cpu_request_cores": 1.0, "memory_request_bytes": 2 * GIB}])
    row = _costed(snap).loc["nightly"]
    # 6 h a day for 14 days = 84 pod-hours over a 336 h window: 0.25 pods on average.
    assert row["average_pods"] == pytest.approx(84 / 336) == pytest.approx(0.25)
    assert row["replicas"] == pytest.approx(0.25) and "replicas_estimated" in row["flags"]
    # (1 core x 0.04 + 2 GiB x 0.01) USD/h x 0.25 pods x 730 h = 0.06 x 0.25 x 730 = 10.95 USD/month
    assert row["usd_per_month_current"] == pytest.approx(10.95)
    assert "average pods it ran" in row["cost_note"]


def test_job_costs_the_hours_it_ran_not_parallelism_around_the_clock():
    snap = _batch_snapshot(
        [{"namespace": "data", "kind": "Job", "workload": "backfill", "pod_hours": 12.0}],
        [{"namespace": "data", "kind": "Job", "workload": "backfill", "replicas": 1.0}],
        [{"namespace": "data", "kind": "Job", "workload": "backfill", "container": "run",
          "cpu_request_cores": 4.0, "memory_request_bytes": 6 * GIB}])
    row = _costed(snap).loc["backfill"]
    # 12 pod-hours / 336 h = 1/28 pods; (4 x 0.04 + 6 x 0.01) = 0.22 USD/h; 0.22 x 730 / 28 = 5.7357 USD/month
    assert row["usd_per_month_current"] == pytest.approx(0.22 * 730 * 12 / 336) == pytest.approx(5.735714, abs=1e-6)
    # at parallelism x 730 h it would have been 0.22 x 730 = 160.60 USD/month


def test_hpa_workload_costs_the_pods_seen_and_batch_without_placement_is_unknown():
    snap = _batch_snapshot(
        [{"namespace": "shop", "kind": "Deployment", "workload": "web", "pod_hours": 3.5 * 336}],
        [{"namespace": "shop", "kind": "Deployment", "workload": "web", "replicas": 2.0, "hpa": True, "hpa_min_replicas": 2.0},
         {"namespace": "shop", "kind": "Deployment", "workload": "api", "replicas": np.nan, "hpa": True, "hpa_min_replicas": 3.0}],
        [{"namespace": "shop", "kind": "Deployment", "workload": w, "container": "app",
          "cpu_request_cores": 0.5, "memory_request_bytes": 1 * GIB} for w in ("web", "api")])
    out = _costed(snap)
    # web: 3.5 pods on average (the HPA's spec said 2 at collection time): (0.5 x 0.04 + 1 x 0.01) x 3.5 x 730
    assert out.loc["web", "replicas"] == pytest.approx(3.5)
    assert out.loc["web", "usd_per_month_current"] == pytest.approx(0.03 * 3.5 * 730) == pytest.approx(76.65)
    # api: no replicas in the spec, no pods seen: minReplicas 3 -> 0.03 x 3 x 730
    assert out.loc["api", "usd_per_month_current"] == pytest.approx(65.7)

    no_placement = _batch_snapshot(
        [], [{"namespace": "batch", "kind": "CronJob", "workload": "nightly", "replicas": 1.0}],
        [{"namespace": "batch", "kind": "CronJob", "workload": "nightly", "container": "run",
          "cpu_request_cores": 1.0, "memory_request_bytes": 2 * GIB}])
    row = _costed(no_placement).loc["nightly"]
    assert math.isnan(row["usd_per_month_current"]) and "pods unknown" in row["cost_note"]
