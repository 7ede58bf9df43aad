"""Inputs checked for consistency, and node groups found without configuration, on a real Prometheus.

Cluster "impossible" (EKS managed node groups): node-a's pods request 6 cores of its 3.92 allocatable, a
pod runs on node-c which has no node metrics, and node-x has an instance type no price list knows. Cluster
"karpenter": nodes labelled only with Karpenter's NodePool and capacity type. Each finding must be a caveat
with its size, bankable savings must stay within what the nodes seen cost, and the requests-vs-bill
sentence must name the real parts (here: requests above allocatable).
"""
from __future__ import annotations

import dataclasses
import math

import pytest

from promdata import ContainerSpec, Clusters, Dataset, PodSpec
from promservers import DATA_HOURS, WINDOW_HOURS, dataset_end, make_config, start_prometheus
from rightsize.api import analyze
from rightsize.collect import collect
from rightsize.emit.view import money_explanation

pytestmark = pytest.mark.integration
MiB = 2**20


def node(name, zone, itype, cpu, **labels):
    return {"node": name, "zone": zone, "region": "us-east-1", "instance_type": itype, "capacity": "", "karpenter": "",
            "cpu": cpu, "memory": 15 * 2**30, **labels}


def pod(name, node_name, cpu_request, workload=None):
    w = workload or name.rsplit("-", 1)[0]
    return PodSpec("shop", f"{name}", "Deployment", w, "ReplicaSet", f"{w}-1", "Deployment", w, node=node_name,
                   containers=[ContainerSpec("app", 0.2, 0.05, 200 * MiB, 10 * MiB, cpu_request, math.nan, 256 * MiB, 256 * MiB)])


IMPOSSIBLE_NODES = [node("node-a", "us-east-1a", "m5.xlarge", 3.92, nodegroup="general"),
                    node("node-b", "us-east-1b", "m5.xlarge", 3.92, nodegroup="general"),
                    node("node-x", "us-east-1b", "x9.weird", 3.92, nodegroup="odd")]
IMPOSSIBLE_PODS = [pod("web-1-0", "node-a", 3.0, "web"), pod("api-1-0", "node-a", 3.0, "api"), pod("web-1-1", "node-b", 3.0, "web"),
                   pod("odd-1-0", "node-x", 0.5, "odd"), pod("stray-1-0", "node-c", 0.5, "stray")]
KARPENTER_NODES = [node("kp-a", "us-east-1a", "m5.xlarge", 3.92, karpenter="on-demand", nodepool="default"),
                   node("kp-b", "us-east-1b", "m5.xlarge", 3.92, karpenter="spot", nodepool="spot-pool")]
KARPENTER_PODS = [pod("web-1-0", "kp-a", 0.5, "web"), pod("web-1-1", "kp-b", 0.5, "web")]


OVERBOOKED_NODES = [node("ob-a", "us-east-1a", "m5.xlarge", 3.92, nodegroup="general")]
# 3 x (2 cores, 12 GiB) on one m5.xlarge (4 vCPU, 16 GiB): requests worth more than the node itself
OVERBOOKED_PODS = [PodSpec("shop", f"big-1-{x}", "Deployment", "big", "ReplicaSet", "big-1", "Deployment", "big", node="ob-a",
                           containers=[ContainerSpec("app", 0.2, 0.05, 200 * MiB, 10 * MiB, 2.0, math.nan, 12 * 2**30, 12 * 2**30)])
                   for x in "abc"]


def _collect(server, end, clusters):
    cfg = make_config(server.url, end, WINDOW_HOURS, cluster_label="cluster", clusters=clusters)
    cfg = dataclasses.replace(cfg, pricing=dataclasses.replace(cfg.pricing, source="offline"),
                              kubernetes=dataclasses.replace(cfg.kubernetes, source="prometheus"))
    return cfg, analyze(collect(cfg, log=lambda m: None), cfg)


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    """Both analyses from one server: ("impossible", "karpenter") together, and "overbooked" alone."""
    end = dataset_end()
    data = Clusters(Dataset(end, DATA_HOURS, IMPOSSIBLE_PODS, nodes=IMPOSSIBLE_NODES, cluster_label="cluster", cluster="impossible"),
                    Dataset(end, DATA_HOURS, KARPENTER_PODS, nodes=KARPENTER_NODES, cluster_label="cluster", cluster="karpenter"),
                    Dataset(end, DATA_HOURS, OVERBOOKED_PODS, nodes=OVERBOOKED_NODES, cluster_label="cluster", cluster="overbooked"))
    server = start_prometheus(data, tmp_path_factory.mktemp("prometheus-consistency"))
    try:
        return _collect(server, end, ("impossible", "karpenter")), _collect(server, end, ("overbooked",))
    finally:
        server.stop()


@pytest.fixture(scope="module")
def analysis(collected):
    return collected[0]


def caveat(analysis, code):
    found = [w for w in analysis.warnings if w["code"] == code]
    assert len(found) == 1, code
    return found[0]["message"]


def test_requests_above_allocatable_is_a_caveat_with_its_size(analysis):
    cfg, a = analysis
    text = caveat(a, "requests_above_allocatable")
    # node-a: 3 + 3 cores requested of 3.92 allocatable: 2.08 cores beyond it
    assert text.startswith("cluster impossible: pods request more than their nodes' allocatable on 1 of 3 node(s)")
    assert "+2.1 cores" in text and "general 115%" in text  # 9 cores requested of 7.84 in the group
    prices = a.node_prices.set_index("node")
    by_hand = 2.08 * prices.loc["node-a", "usd_per_vcpu_hour"] * cfg.general.hours_per_month
    assert f"{by_hand:,.0f} USD/month" in text
    parts = a.summary["requests_vs_bill"]
    assert parts["above_allocatable"] == pytest.approx(by_hand, rel=0.01)
    total = parts["requested_share"] + parts["above_allocatable"] + parts["off_nodes"] + parts["replicas_over_ran"] - parts["reserved"] + parts["other"]
    assert total == pytest.approx(parts["requests"])
    sentence = money_explanation(a.summary["totals"], parts)[1]
    assert "requested beyond their nodes' allocatable" in sentence and "unpriced nodes" not in sentence


def test_pods_on_nodes_without_metrics_and_nodes_without_price(analysis):
    _cfg, a = analysis
    stray = caveat(a, "pods_on_unknown_nodes")
    assert stray.startswith("cluster impossible: 24.0 pod-hours (20.0% of all) ran on 1 node(s) without node metrics") and "node-c" in stray
    unpriced = caveat(a, "nodes_without_price")
    assert "cluster impossible: 1 node(s) have no price (x9.weird" in unpriced


def test_bankable_savings_never_exceed_the_nodes_seen(analysis):
    _cfg, a = analysis
    groups = a.node_groups
    assert (groups["bankable_savings_usd_per_month"].fillna(0) <= groups["usd_per_month"].fillna(0) + 1e-6).all()
    general = groups[(groups["cluster"] == "impossible") & (groups["node_group"] == "general")].iloc[0]
    assert general["nodes_now"] > general["nodes"]  # what the impossible requests would need
    assert general["usd_per_month_now"] == pytest.approx(general["usd_per_month"])  # the packing starts from the nodes that ran
    assert "but 2 ran: requests above allocatable" in general["note"]
    assert a.summary["totals"]["bankable_savings_usd_per_month"] <= a.summary["totals"]["node_usd_per_month"]


def test_karpenter_node_pools_are_node_groups_without_configuration(analysis):
    _cfg, a = analysis
    idle = a.idle[a.idle["cluster"] == "karpenter"].set_index("node_group")
    assert sorted(idle.index) == ["default", "spot-pool"]
    assert idle.loc["spot-pool", "capacity_type"] == "spot" and idle.loc["default", "capacity_type"] == "on-demand"
    assert set(a.node_groups.loc[a.node_groups["cluster"] == "karpenter", "node_group"]) == {"default", "spot-pool"}


def test_requests_costing_more_than_the_node_bill_is_a_caveat_with_its_size(collected):
    """One m5.xlarge whose pods request 6 cores and 36 GiB: the requests' cost is above the node bill, and the
    caveat says by how much, with the parts that explain it (here: requests beyond allocatable)."""
    cfg, a = collected[1]
    hpm = cfg.general.hours_per_month
    price = a.node_prices.set_index("node").loc["ob-a"]
    # by hand: each of 3 pods requests 2 cores and 12 GiB at the node's unit prices, for the whole month
    requests = 3 * (2.0 * price["usd_per_vcpu_hour"] + 12.0 * price["usd_per_gib_hour"]) * hpm
    bill = price["usd_per_hour"] * hpm
    assert requests > bill
    totals = a.summary["totals"]
    assert totals["usd_per_month_current"] == pytest.approx(requests, rel=0.01)
    assert totals["node_usd_per_month"] == pytest.approx(bill, rel=0.01)
    text = caveat(a, "requests_above_bill")
    assert text.startswith(f"the requests' cost is above the node bill ({totals['usd_per_month_current'] - totals['node_usd_per_month']:,.0f} "
                           f"USD/month more than {totals['node_usd_per_month']:,.0f})")
    parts = a.summary["requests_vs_bill"]
    # beyond allocatable (3.92 cores, 15 GiB in the generator): 6 - 3.92 cores and 36 - 15 GiB
    beyond = ((6.0 - 3.92) * price["usd_per_vcpu_hour"] + (36.0 - 15.0) * price["usd_per_gib_hour"]) * hpm
    assert parts["above_allocatable"] == pytest.approx(beyond, rel=0.01)
    assert f"{parts['above_allocatable']:,.0f} USD requested beyond their nodes' allocatable" in text
    # the impossible cluster's requests stay below its bill: no such caveat there
    assert not [w for w in collected[0][1].warnings if w["code"] == "requests_above_bill"]
