"""Bin-packing (bankable savings) against hand-packed cases with known answers (pure functions, no I/O)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from rightsize.analysis import binpack
from rightsize.config import Config
from rightsize.quantity import GIB
from rightsize.schema import NODE_GROUP_COLUMNS
from rightsize.snapshot import Snapshot


def items(*rows) -> pd.DataFrame:
    """(cpu cores, memory GiB, zone, pods) rows."""
    return pd.DataFrame([{"cpu": c, "mem": m * GIB, "zone": z, "pods": n} for c, m, z, n in rows])


def test_pack_pairs_big_and_small_pods_like_a_hand_packing():
    # 4-core nodes: three 2.5-core pods each take a node, and each leaves exactly room for a 1.5-core pod.
    assert binpack.pack(items((2.5, 1, "", 3), (1.5, 1, "", 3)), 4.0, 16 * GIB) == (3, 0)


def test_pack_is_bound_by_memory_when_memory_is_the_larger_share():
    # 6 GiB pods on 16 GiB nodes: two per node whatever the CPU, so five pods need three nodes.
    assert binpack.pack(items((0.1, 6, "", 5)), 4.0, 16 * GIB) == (3, 0)


def test_pack_two_dimensions_first_fit_decreasing():
    # A = 3 cores / 2 GiB, B = 0.5 core / 12 GiB on 4-core / 16 GiB nodes. Both take 75% of a node in
    # their larger dimension; A goes first (more CPU): A1 -> n1, A2 -> n2 (n1 has 1 core left),
    # B1 -> n1 (0.5 core, 12 of 14 GiB), B2 -> n2. Two nodes, as a hand packing gives.
    assert binpack.pack(items((3, 2, "", 2), (0.5, 12, "", 2)), 4.0, 16 * GIB) == (2, 0)


def test_pack_keeps_zone_bound_pods_in_their_zone():
    # Two 3-core pods bound to zone a, one to zone b: three nodes (a, a, b), because no two fit together.
    # Three 1-core pods that may go anywhere fill the 1 core left on each: still three nodes.
    assert binpack.pack(items((3, 1, "a", 2), (3, 1, "b", 1), (1, 1, "", 3)), 4.0, 16 * GIB) == (3, 0)
    # Bound pods cannot share a node with each other across zones: one 1-core pod in each of 4 zones
    # needs 4 nodes although they would fit on one.
    assert binpack.pack(items(*[(1, 1, z, 1) for z in "abcd"]), 4.0, 16 * GIB) == (4, 0)
    # ...while a node opened for any-zone pods takes the zone of the first bound pod placed on it.
    assert binpack.pack(items((2, 1, "", 1), (1, 1, "a", 2)), 4.0, 16 * GIB) == (1, 0)


def test_pack_counts_a_pod_larger_than_a_node_on_its_own():
    assert binpack.pack(items((5, 1, "", 1), (1, 1, "", 4)), 4.0, 16 * GIB) == (2, 1)


# --- a whole node group, with dollars ----------------------------------------------------------------

def _group_snapshot() -> Snapshot:
    """Four m5.xlarge-like nodes (4 cores / 16 GiB allocatable, 0.192 USD/h) in zones a, a, b, b over 24 h.

    DaemonSet agent (0.25 core, 0.5 GiB) on every node; Deployment api, 4 pods of 1.5 cores / 4 GiB;
    StatefulSet db with a PVC, one 1-core / 4 GiB pod in zone a and one in zone b."""
    nodes = pd.DataFrame({"cluster": "c1", "node": ["n1", "n2", "n3", "n4"], "instance_type": "m5.xlarge",
                          "zone": ["a", "a", "b", "b"], "region": "r1", "capacity_type": "on-demand", "node_group": "general",
                          "allocatable_cpu_cores": 4.0, "allocatable_memory_bytes": 16 * GIB, "hours_seen": 24.0})
    prices = pd.DataFrame({"instance_type": ["m5.xlarge"], "region": "r1", "zone": "", "capacity_type": "on-demand",
                           "usd_per_hour": 0.192, "vcpu": 4.0, "memory_gib": 16.0, "price_source": "test"})
    wl = lambda ns, kind, name: {"cluster": "c1", "namespace": ns, "kind": kind, "workload": name}  # noqa: E731
    placement = pd.DataFrame(
        [{**wl("infra", "DaemonSet", "agent"), "node": n, "zone": z, "pod_hours": 24.0} for n, z in zip(["n1", "n2", "n3", "n4"], "aabb")]
        + [{**wl("shop", "Deployment", "api"), "node": n, "zone": z, "pod_hours": 48.0} for n, z in (("n1", "a"), ("n3", "b"))]
        + [{**wl("data", "StatefulSet", "db"), "node": n, "zone": z, "pod_hours": 24.0} for n, z in (("n2", "a"), ("n4", "b"))])
    base = {"hpa": False, "pdb": False, "has_empty_dir": False, "has_host_path": False, "termination_grace_seconds": 30.0,
            "source": "test"}
    workloads = pd.DataFrame([{**wl("infra", "DaemonSet", "agent"), **base, "replicas": 4.0, "has_pvc": False},
                              {**wl("shop", "Deployment", "api"), **base, "replicas": 4.0, "has_pvc": False},
                              {**wl("data", "StatefulSet", "db"), **base, "replicas": 2.0, "has_pvc": True}])
    snap = Snapshot(tables={"nodes": nodes, "prices": prices, "placement": placement, "workloads": workloads})
    snap.meta["window_start"], snap.meta["window_end"] = "2026-11-01T00:00:00+00:00", "2026-11-02T00:00:00+00:00"
    return snap.validate()


def _recs() -> pd.DataFrame:
    rows = [("infra", "DaemonSet", "agent", "keep", 4.0, 0.25, 0.5, np.nan, np.nan),
            ("shop", "Deployment", "api", "change", 4.0, 1.5, 4.0, 0.5, 2.0),
            ("data", "StatefulSet", "db", "keep", 2.0, 1.0, 4.0, 1.0, 4.0)]
    return pd.DataFrame([{"cluster": "c1", "namespace": ns, "kind": k, "workload": w, "container": "app",
                          "container_type": "main", "status": st, "replicas": reps,
                          "cpu_request_cores_current": cpu, "memory_request_bytes_current": mem * GIB,
                          "cpu_request_cores_recommended": rcpu, "memory_request_bytes_recommended": rmem * GIB}
                         for ns, k, w, st, reps, cpu, mem, rcpu, rmem in rows])


CANDIDATES = pd.DataFrame({"region": "r1", "instance_type": ["m5.large", "m5.xlarge", "m5.2xlarge", "c5.large"],
                           "vcpu": [2.0, 4.0, 8.0, 2.0], "memory_gib": [8.0, 16.0, 32.0, 4.0],
                           "usd_per_hour": [0.096, 0.192, 0.384, 0.085]})


def test_node_group_now_after_and_bankable_savings_hand_packed():
    out = binpack.node_groups(_group_snapshot(), _recs(), Config(), CANDIDATES)
    assert list(out.columns) == [c.name for c in NODE_GROUP_COLUMNS]
    g = out.iloc[0]
    # Each node keeps 4 - 0.25 = 3.75 cores and 16 - 0.5 = 15.5 GiB after the DaemonSet.
    # Now: api pods (1.5 cores = 40% of a node) go first, two per node (3 cores): 2 nodes with 0.75 core left;
    # db's pods need 1 core each and must stay in zones b and a: a node each. 4 nodes.
    # After: db's pods (1 core) go first: a node in b and a node in a (2.75 cores, 11.5 GiB left each);
    # the four 0.5-core / 2 GiB api pods fit on the first. 2 nodes.
    assert (g["nodes"], g["nodes_now"], g["nodes_after"], g["pods"]) == (4.0, 4.0, 2.0, 6.0)
    assert g["daemonset_cpu_cores"] == pytest.approx(0.25) and g["zones"] == "a,b"
    # 0.192 USD/h x 730 h = 140.16 USD per node-month; (4 - 2) x 140.16 = 280.32 USD/month bankable
    assert g["usd_per_node_month"] == pytest.approx(140.16)
    assert g["usd_per_month"] == pytest.approx(4 * 140.16) == g["usd_per_month_now"]
    assert g["usd_per_month_after"] == pytest.approx(280.32)
    assert g["bankable_savings_usd_per_month"] == pytest.approx(280.32)
    assert g["consolidation_usd_per_month"] == pytest.approx(0.0)
    # m5.large (1.75 cores / 7.5 GiB after the DaemonSet): db b, db a on a node each, one api pod beside
    # each (0.25 core left), the other two api pods on a third node: 3 x 0.096 x 730 = 210.24 USD/month,
    # less than 2 m5.xlarge (280.32) or 2 m5.2xlarge (560.64). c5 is another family: not tried.
    assert g["best_instance_type"] == "m5.large" and g["best_nodes_after"] == 3.0
    assert g["best_usd_per_month_after"] == pytest.approx(3 * 0.096 * 730) == pytest.approx(210.24)


def test_unpriced_group_keeps_node_counts_and_unknown_dollars():
    snap = _group_snapshot()
    snap.tables["prices"] = snap.tables["prices"].iloc[0:0]
    g = binpack.node_groups(snap, _recs(), Config(), CANDIDATES).iloc[0]
    assert (g["nodes_now"], g["nodes_after"]) == (4.0, 2.0)
    assert math.isnan(g["bankable_savings_usd_per_month"]) and g["best_instance_type"] == ""


def test_batch_pods_take_room_while_they_run_and_churn_does_not_add_a_pod():
    sizes = pd.DataFrame({"cluster": "c1", "namespace": "ns", "kind": ["CronJob", "Deployment"], "workload": ["cron", "web"],
                          "cpu_now": 1.0, "mem_now": GIB, "cpu_after": 1.0, "mem_after": GIB, "replicas": [0.25, 2.03]})
    placed = pd.DataFrame({"cluster": "c1", "namespace": "ns", "kind": ["CronJob", "Deployment", "Deployment"],
                           "workload": ["cron", "web", "web"], "node_group": "g", "instance_type": "t", "capacity_type": "",
                           "zone": ["a", "a", "b"], "pod_hours": [6.0, 30.0, 18.7]})
    workloads = sizes[["cluster", "namespace", "kind", "workload"]].assign(has_pvc=[False, True])
    pods = binpack.pods_per_group(placed, sizes, workloads).set_index(["workload", "zone"])["pods"]
    # a CronJob running a quarter of the time still needs a pod's room; 2.03 average pods are 2 pods,
    # split by pod-hours (30 vs 18.7) over the zones web's volumes live in
    assert pods.to_dict() == {("cron", ""): 1.0, ("web", "a"): 1.0, ("web", "b"): 1.0}


def test_consolidation_counts_a_half_window_idle_node_hand_computed():
    # a fifth node, empty, that existed for 12 of the 24 hours: it counts as half a node in the bill
    snap = _group_snapshot()
    extra = snap.tables["nodes"].iloc[[0]].assign(node="n5", hours_seen=12.0)
    snap.tables["nodes"] = pd.concat([snap.tables["nodes"], extra], ignore_index=True)
    g = binpack.node_groups(snap, _recs(), Config(), CANDIDATES).iloc[0]
    assert (g["nodes"], g["nodes_now"], g["nodes_after"]) == (4.5, 4.0, 2.0)
    # bill 4.5 x 140.16 = 630.72; packing today's pods needs 4 nodes: 560.64; 70.08 USD/month removable today
    assert g["usd_per_month"] == pytest.approx(630.72)
    assert g["usd_per_month_now"] == pytest.approx(560.64)
    assert g["consolidation_usd_per_month"] == pytest.approx(70.08)
    assert g["bankable_savings_usd_per_month"] == pytest.approx(280.32)  # now - after, as without the idle node


def test_a_costed_workload_without_placement_is_named_as_left_out_of_the_packing():
    from rightsize.analysis import unpacked_workloads

    snap = _group_snapshot()
    assert unpacked_workloads(snap, _recs()) == []
    snap.tables["placement"] = snap.tables["placement"][snap.tables["placement"]["workload"] != "db"]
    (caveat,) = unpacked_workloads(snap, _recs())
    assert caveat["code"] == "not_bin_packed" and "1 workload(s) have no placement" in caveat["message"]
    assert caveat["message"].endswith(": data/StatefulSet/db")


# --- GPU nodes: GPUs are a third dimension -------------------------------------------------------------

def test_pack_counts_gpus_as_a_third_dimension():
    # p4d-like nodes (95 cores, 1,100 GiB, 8 GPUs): three pods of 0.5 core / 1 GiB / 4 GPUs fit one node by CPU
    # and memory, but two per node by GPUs: two nodes. Without a GPU bound (inf, the default) one node.
    three = pd.DataFrame({"cpu": [0.5], "mem": [GIB], "gpu": [4.0], "zone": [""], "pods": [3]})
    assert binpack.pack(three, 95.0, 1100 * GIB, 8.0) == (2, 0)
    assert binpack.pack(three, 95.0, 1100 * GIB) == (1, 0)
    # a pod asking for more GPUs than a node has takes a node of its own and is named oversized
    assert binpack.pack(three.assign(gpu=9.0, pods=1), 95.0, 1100 * GIB, 8.0) == (1, 1)


def _gpu_snapshot() -> Snapshot:
    """Two p4d.24xlarge nodes (95 cores, 1,100 GiB, 8 whole A100 40 GB each) over 24 h; Job train (one pod, 4 GPUs)
    on g1; Deployment serve, 2 pods of 3 GPUs, one on each node."""
    nodes = pd.DataFrame({"cluster": "c1", "node": ["g1", "g2"], "instance_type": "p4d.24xlarge", "zone": "a", "region": "r1",
                          "capacity_type": "on-demand", "node_group": "gpu", "allocatable_cpu_cores": 95.0,
                          "allocatable_memory_bytes": 1100 * GIB, "hours_seen": 24.0, "allocatable_gpus": 8.0,
                          "capacity_gpus": 8.0, "gpu_resources_json": '{"nvidia.com/gpu": 8}'})
    prices = pd.DataFrame({"instance_type": ["p4d.24xlarge"], "region": "r1", "zone": "", "capacity_type": "on-demand",
                           "usd_per_hour": 21.957642, "vcpu": 96.0, "memory_gib": 1152.0, "gpus": 8.0, "price_source": "test"})
    wl = lambda kind, name: {"cluster": "c1", "namespace": "ml", "kind": kind, "workload": name}  # noqa: E731
    placement = pd.DataFrame([{**wl("Job", "train"), "node": "g1", "zone": "a", "pod_hours": 24.0}]
                             + [{**wl("Deployment", "serve"), "node": n, "zone": "a", "pod_hours": 24.0} for n in ("g1", "g2")])
    base = {"hpa": False, "pdb": False, "has_empty_dir": False, "has_host_path": False, "termination_grace_seconds": 30.0,
            "source": "test", "has_pvc": False}
    workloads = pd.DataFrame([{**wl("Job", "train"), **base, "replicas": 1.0}, {**wl("Deployment", "serve"), **base, "replicas": 2.0}])
    snap = Snapshot(tables={"nodes": nodes, "prices": prices, "placement": placement, "workloads": workloads})
    snap.meta["window_start"], snap.meta["window_end"] = "2026-11-01T00:00:00+00:00", "2026-11-02T00:00:00+00:00"
    return snap.validate()


def _gpu_recs() -> pd.DataFrame:
    # train: idle (report-only: its GPUs stay requested); serve: patched from 3 whole GPUs to one MIG 3g.20gb
    # slice, half an A100 40 GB (max(3 of 7 compute slices, 4 of 8 memory eighths))
    rows = [("Job", "train", "keep", 1.0, 4.0, "", np.nan), ("Deployment", "serve", "change", 2.0, 3.0, "nvidia.com/mig-3g.20gb", 1.0)]
    return pd.DataFrame([{"cluster": "c1", "namespace": "ml", "kind": k, "workload": w, "container": "app", "container_type": "main",
                          "status": st, "replicas": reps, "cpu_request_cores_current": 4.0, "memory_request_bytes_current": 16 * GIB,
                          "cpu_request_cores_recommended": 2.0, "memory_request_bytes_recommended": 8 * GIB,
                          "gpu_resource": "nvidia.com/gpu", "gpu_request_count_current": gpus, "gpu_model": "A100-40GB",
                          "gpu_resource_recommended": rec, "gpu_request_count_recommended": rec_count}
                         for k, w, st, reps, gpus, rec, rec_count in rows])


def test_gpu_node_group_packs_on_gpus_and_banks_a_node_hand_computed():
    g = binpack.node_groups(_gpu_snapshot(), _gpu_recs(), Config(), CANDIDATES).iloc[0]
    # Now: 4 + 3 + 3 = 10 GPUs on 8-GPU nodes. FFD: train (4 of 8 GPUs, the largest share) -> g1, serve 1 (3) -> g1
    # (1 left), serve 2 -> a second node. CPU (12 of 95 cores) and memory alone would say one node.
    # After: train 4 -> n1, each serve pod half a GPU -> n1 (3 GPUs left): one node.
    assert (g["allocatable_gpus"], g["nodes_now"], g["nodes_after"], g["pods"]) == (8.0, 2.0, 1.0, 3.0)
    # one p4d.24xlarge node: 21.957642 USD/h x 730 h = 16,029.07866 USD/month bankable
    assert g["usd_per_node_month"] == pytest.approx(16029.07866)
    assert g["bankable_savings_usd_per_month"] == pytest.approx(16029.07866)
    assert g["consolidation_usd_per_month"] == pytest.approx(0.0)
