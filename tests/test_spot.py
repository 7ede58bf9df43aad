"""Spot suitability on hand-made tables (one test per rule) and on the demo snapshot."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from rightsize import demo
from rightsize.analysis import spot
from rightsize.config import Config
from rightsize.schema import SPOT_COLUMNS, WORKLOAD_KEY
from rightsize.snapshot import Snapshot, new_meta

KEY = list(WORKLOAD_KEY)
NAN = float("nan")


def config(**sections) -> Config:
    base = Config()
    changes = {name: dataclasses.replace(getattr(base, name), **values) for name, values in sections.items()}
    return dataclasses.replace(base, **changes)


def workload(name: str = "app", **fields) -> dict:
    """A spot-friendly Deployment unless fields say otherwise: 3 replicas, a PDB leaving 1 pod evictable."""
    row = {
        "cluster": "c", "namespace": "prod", "kind": "Deployment", "workload": name, "replicas": 3.0, "hpa": False,
        "pdb": True, "pdb_min_available_pods": NAN, "pdb_max_unavailable_pods": 1.0, "pdb_disruptions_allowed": 1.0,
        "has_pvc": False, "has_empty_dir": False, "has_memory_empty_dir": False, "has_host_path": False,
        "termination_grace_seconds": 30.0, "capacity_affinity": "", "tolerates_spot": False, "team": "t",
        "spot_preference": "", "source": "test",
    }
    row.update(fields)
    return row


NODES = [  # node, instance type, zone, capacity type
    ("od-a", "m5.large", "us-east-1a", "on-demand"),
    ("od-b", "c5.large", "us-east-1b", "on-demand"),
    ("spot-a", "m5.large", "us-east-1a", "spot"),
]


def nodes(rows=NODES) -> pd.DataFrame:
    return pd.DataFrame([{"cluster": "c", "node": n, "instance_type": t, "zone": z, "region": "us-east-1",
                          "capacity_type": cap, "allocatable_cpu_cores": 1.9, "allocatable_memory_bytes": 7e9,
                          "hours_seen": 100.0} for n, t, z, cap in rows])


def placement(name: str, per_node: dict[str, float], **key) -> list[dict]:
    zone = {n: z for n, _, z, _ in NODES}
    ident = {"cluster": "c", "namespace": "prod", "kind": "Deployment", "workload": name, **key}
    return [{**ident, "node": node, "zone": zone.get(node, ""), "pod_hours": h} for node, h in per_node.items()]


def prices(m5_bucket: str = "<5%", c5_bucket: str = "<5%") -> pd.DataFrame:
    """m5.large: on-demand 0.10, spot 0.04 in us-east-1a (ratio 0.4) and 0.05 elsewhere.
    c5.large: on-demand 0.10 and no spot price, Spot Advisor says 70% saving (ratio 0.3)."""
    rows = [
        ("m5.large", "", "on-demand", 0.10, m5_bucket, 60.0),
        ("m5.large", "us-east-1a", "spot", 0.04, m5_bucket, NAN),
        ("m5.large", "us-east-1b", "spot", 0.05, m5_bucket, NAN),
        ("c5.large", "", "on-demand", 0.10, c5_bucket, 70.0),
    ]
    return pd.DataFrame([{"instance_type": t, "region": "us-east-1", "zone": z, "capacity_type": cap, "usd_per_hour": usd,
                          "vcpu": 2.0, "memory_gib": 8.0, "interruption_bucket": b, "spot_savings_percent": pct,
                          "price_source": "test"} for t, z, cap, usd, b, pct in rows])


def recs(costs: dict[str, tuple[float, float]], policy: str = "production", namespace: str = "prod") -> pd.DataFrame:
    """Recommendations with only the columns spot reads: {workload: (recommended, current)} USD/month."""
    return pd.DataFrame([{"cluster": "c", "namespace": namespace, "kind": "Deployment", "workload": w, "container": "main",
                          "policy": policy, "production": policy == "production", "usd_per_month_recommended": rec,
                          "usd_per_month_current": cur}
                         for w, (rec, cur) in costs.items()])


def snapshot(workloads, placement_rows=(), node_rows=True, price_rows=None, namespaces=None) -> Snapshot:
    tables = {"workloads": pd.DataFrame(list(workloads))}
    if node_rows is True:
        tables["nodes"] = nodes()
    elif node_rows is not False:
        tables["nodes"] = node_rows
    if placement_rows:
        tables["placement"] = pd.DataFrame(list(placement_rows))
    if price_rows is not None:
        tables["prices"] = price_rows
    if namespaces is not None:
        tables["namespaces"] = pd.DataFrame(namespaces)
    return Snapshot(tables=tables, meta=new_meta()).validate()


def run(workloads, placement_rows=(), recommendations=None, cfg=None, **kw) -> pd.DataFrame:
    snap = snapshot(workloads, placement_rows, **kw)
    out = spot.spot_suitability(snap, recommendations if recommendations is not None else pd.DataFrame(), cfg or Config())
    return out.set_index("workload", drop=False)


def on_demand(name: str, hours: float = 10.0) -> list[dict]:
    return placement(name, {"od-a": hours})


# --- controller kind --------------------------------------------------------------------------------

def test_replicated_deployment_with_room_in_pdb_is_ready():
    out = run([workload()], on_demand("app"))
    row = out.loc["app"]
    assert row.verdict == "ready" and row.score == 100
    assert row.changes_needed == ""
    assert "Deployment: pods are replaceable" in row.reasons
    assert "PDB leaves 1 pod(s) evictable" in row.reasons
    assert list(out.columns) == [c.name for c in SPOT_COLUMNS]


def test_statefulset_scores_lower_than_the_same_deployment():
    out = run([workload("deploy"), workload("sts", kind="StatefulSet")],
              on_demand("deploy") + placement("sts", {"od-a": 10}, kind="StatefulSet"))
    assert out.loc["deploy", "score"] - out.loc["sts", "score"] == spot.PENALTY_STATEFULSET
    assert "StatefulSet: pods keep identity" in out.loc["sts", "reasons"]


def test_daemonset_is_not_applicable():
    out = run([workload("ds", kind="DaemonSet", pdb=False)], placement("ds", {"od-a": 10, "spot-a": 10}, kind="DaemonSet"),
              recommendations=recs({"ds": (10.0, 10.0)}).assign(kind="DaemonSet"), price_rows=prices())
    row = out.loc["ds"]
    assert row.verdict == "not_applicable"
    assert np.isnan(row.score) and np.isnan(row.savings_usd_per_month)
    assert "DaemonSet: runs on every node" in row.reasons


def test_bare_pod_is_not_suitable():
    out = run([workload("p", kind="Pod", replicas=1.0, pdb=False)], placement("p", {"od-a": 10}, kind="Pod"))
    row = out.loc["p"]
    assert row.verdict == "not_suitable" and row.score == 0
    assert "bare Pod" in row.reasons


def test_jobs_are_good_even_with_one_pod():
    out = run([workload("j", kind="Job", replicas=1.0, pdb=False), workload("cj", kind="CronJob", replicas=1.0, pdb=False)],
              placement("j", {"od-a": 1}, kind="Job") + placement("cj", {"od-a": 1}, kind="CronJob"))
    for name in ("j", "cj"):
        assert out.loc[name, "verdict"] == "ready" and out.loc[name, "score"] == 100
        assert "interrupted pod is retried" in out.loc[name, "reasons"]


# --- replicas and PDB -------------------------------------------------------------------------------

def test_single_replica_needs_a_second_one():
    out = run([workload(replicas=1.0, pdb=False)], on_demand("app"))
    row = out.loc["app"]
    assert row.verdict == "ready_with_changes"
    assert row.score == 100 - spot.PENALTY_ONE_REPLICA
    assert "1 replica: an interruption is an outage" in row.reasons
    assert row.changes_needed == "run at least 2 replicas spread over zones"


@pytest.mark.parametrize("fields,what", [
    ({"pdb_min_available_pods": 3.0, "pdb_max_unavailable_pods": NAN, "pdb_disruptions_allowed": 0.0},
     "minAvailable 3 of 3 replicas"),
    ({"pdb_max_unavailable_pods": 0.0, "pdb_disruptions_allowed": 0.0}, "maxUnavailable 0"),
])
def test_pdb_that_allows_no_eviction_blocks(fields, what):
    out = run([workload(**fields)], on_demand("app"))
    row = out.loc["app"]
    assert row.verdict == "ready_with_changes"
    assert row.score == 100 - spot.PENALTY_PDB_BLOCKS
    assert f"PDB {what} allows no eviction" in row.reasons
    assert "let the PDB allow at least one eviction" in row.changes_needed


def test_pdb_with_percentages_resolved_to_pods():
    # The inventory resolves percentages against replicas (rounding up, as the disruption controller does):
    #   minAvailable 100% of 4 -> 4 pods: no room;  maxUnavailable 25% of 4 -> 1 pod;  minAvailable 50% of 3 -> 2 pods.
    out = run([
        workload("full", replicas=4.0, pdb_min_available_pods=4.0, pdb_max_unavailable_pods=NAN, pdb_disruptions_allowed=0.0),
        workload("quarter", replicas=4.0, pdb_min_available_pods=NAN, pdb_max_unavailable_pods=1.0, pdb_disruptions_allowed=1.0),
        workload("half", replicas=3.0, pdb_min_available_pods=2.0, pdb_max_unavailable_pods=NAN, pdb_disruptions_allowed=1.0),
    ], on_demand("full") + on_demand("quarter") + on_demand("half"))
    assert out.loc["full", "verdict"] == "ready_with_changes"
    assert "minAvailable 4 of 4 replicas allows no eviction" in out.loc["full", "reasons"]
    assert out.loc["quarter", "verdict"] == "ready"
    assert "PDB leaves 1 pod(s) evictable" in out.loc["quarter", "reasons"]
    assert out.loc["half", "verdict"] == "ready"
    assert "PDB leaves 1 pod(s) evictable" in out.loc["half", "reasons"]


def test_pdb_spec_wins_over_a_momentary_status():
    # disruptionsAllowed is 0 while a pod is unready; the spec (minAvailable 2 of 4) still leaves room.
    out = run([workload(replicas=4.0, pdb_min_available_pods=2.0, pdb_max_unavailable_pods=NAN,
                        pdb_disruptions_allowed=0.0)], on_demand("app"))
    assert out.loc["app", "verdict"] == "ready"
    assert "PDB leaves 2 pod(s) evictable" in out.loc["app", "reasons"]


def test_no_pdb_with_several_replicas_suggests_one():
    out = run([workload(pdb=False, pdb_max_unavailable_pods=NAN, pdb_disruptions_allowed=NAN)], on_demand("app"))
    row = out.loc["app"]
    assert row.score == 100 - spot.PENALTY_NO_PDB
    assert "no PDB: suggest one" in row.reasons
    assert row.verdict == "ready"  # a suggestion, not a blocker


# --- local state, grace, pinning ---------------------------------------------------------------------

def test_local_state_penalties():
    out = run([workload("host", has_host_path=True), workload("pvc", has_pvc=True), workload("disk", has_empty_dir=True),
               workload("mem", has_memory_empty_dir=True)],
              on_demand("host") + on_demand("pvc") + on_demand("disk") + on_demand("mem"))
    assert out.loc["host", "score"] == 100 - spot.PENALTY_HOST_PATH
    assert out.loc["host", "verdict"] == "not_suitable"
    assert "hostPath" in out.loc["host", "reasons"]
    assert out.loc["pvc", "score"] == 100 - spot.PENALTY_PVC
    assert "PersistentVolumeClaim" in out.loc["pvc", "reasons"]
    assert out.loc["disk", "score"] == 100 - spot.PENALTY_EMPTY_DIR
    assert "emptyDir on disk" in out.loc["disk", "reasons"]
    assert out.loc["mem", "score"] == 100
    assert "medium: Memory" in out.loc["mem", "reasons"]


def test_statefulset_with_pvc_is_not_suitable_even_after_changes():
    out = run([workload("db", kind="StatefulSet", has_pvc=True, termination_grace_seconds=300.0)],
              placement("db", {"od-a": 10}, kind="StatefulSet"))
    row = out.loc["db"]
    assert row.verdict == "not_suitable"
    assert "lower terminationGracePeriodSeconds" in row.changes_needed  # still listed


def test_grace_longer_than_the_spot_notice():
    out = run([workload("slow", termination_grace_seconds=180.0), workload("edge", termination_grace_seconds=120.0)],
              on_demand("slow") + on_demand("edge"))
    assert out.loc["slow", "verdict"] == "ready_with_changes"
    assert out.loc["slow", "score"] == 100 - spot.PENALTY_GRACE
    assert "terminationGracePeriodSeconds 180 > 120 s" in out.loc["slow", "reasons"]
    assert "lower terminationGracePeriodSeconds to 120 s or less" in out.loc["slow", "changes_needed"]
    assert out.loc["edge", "verdict"] == "ready"
    # The limit is configurable.
    out = run([workload("slow", termination_grace_seconds=180.0)], on_demand("slow"), cfg=config(spot={"max_grace_seconds": 200.0}))
    assert out.loc["slow", "verdict"] == "ready"


def test_on_demand_pin_needs_removing():
    out = run([workload(capacity_affinity="on-demand")], on_demand("app"))
    row = out.loc["app"]
    assert row.verdict == "ready_with_changes"
    assert row.score == 100 - spot.PENALTY_ON_DEMAND_PIN
    assert "pins on-demand capacity" in row.reasons
    assert "remove the on-demand node selector/affinity" in row.changes_needed


# --- already on spot, annotations --------------------------------------------------------------------

def test_already_on_spot_and_partial_share():
    out = run([workload("all"), workload("half")],
              placement("all", {"spot-a": 10}) + placement("half", {"spot-a": 5, "od-a": 5}),
              recommendations=recs({"all": (100.0, 100.0), "half": (100.0, 100.0)}), price_rows=prices())
    assert out.loc["all", "verdict"] == "already_on_spot"
    assert out.loc["all", "spot_share"] == 1.0
    assert "100% of pod-hours already on spot nodes" in out.loc["all", "reasons"]
    assert out.loc["all", "savings_usd_per_month"] == pytest.approx(0.0)
    assert out.loc["half", "verdict"] == "ready"
    assert out.loc["half", "spot_share"] == 0.5
    # m5.large in us-east-1a: ratio 0.4; only the on-demand half is left to move.
    assert out.loc["half", "savings_usd_per_month"] == pytest.approx(100 * 0.6 * 0.5)
    assert "the saving counts the on-demand rest" in out.loc["half", "reasons"]


def test_already_on_spot_threshold_is_configurable():
    out = run([workload("half")], placement("half", {"spot-a": 5, "od-a": 5}), cfg=config(spot={"already_on_spot_share": 0.5}))
    assert out.loc["half", "verdict"] == "already_on_spot"


def test_unknown_capacity_type_is_nan_not_zero():
    unlabeled = nodes([(n, t, z, "") for n, t, z, _ in NODES])
    out = run([workload()], on_demand("app"), node_rows=unlabeled)
    assert np.isnan(out.loc["app", "spot_share"])
    assert "capacity type of its nodes unknown" in out.loc["app", "reasons"]


def test_opt_out_and_opt_in_annotations():
    out = run([workload("out", spot_preference="out"), workload("in", spot_preference="in", has_empty_dir=True),
               workload("plain", has_empty_dir=True)],
              on_demand("out") + on_demand("in") + on_demand("plain"))
    assert out.loc["out", "verdict"] == "not_suitable"
    assert "opted out of spot by annotation rightsize.io/spot" in out.loc["out", "reasons"]
    assert out.loc["in", "score"] - out.loc["plain", "score"] == spot.BONUS_OPT_IN
    assert "opted in to spot" in out.loc["in", "reasons"]


# --- interruption frequency and savings ---------------------------------------------------------------

def test_interruption_bucket_is_the_worst_of_its_instance_types():
    out = run([workload()], placement("app", {"od-a": 10, "od-b": 10}), price_rows=prices(m5_bucket="5-10%", c5_bucket=">20%"))
    row = out.loc["app"]
    assert row.interruption_bucket == ">20%"
    assert row.score == 100 - spot.BUCKET_PENALTY[4]
    assert "interruption frequency >20% for c5.large,m5.large" in row.reasons
    assert "diversified pools" in row.reasons


def test_interruption_bucket_labels_are_normalised():
    ranks = spot.bucket_rank(pd.Series(["<5%", "5 – 10 %", "10-15%", "15-20%", ">20%", "", None]))
    assert ranks.iloc[:5].tolist() == [0, 1, 2, 3, 4]
    assert ranks.iloc[5:].isna().all()


def test_savings_weighted_by_pod_hours_over_instance_types():
    # 30 pod-hours on m5.large in us-east-1a (spot/on-demand = 0.04/0.10 = 0.4) and 10 on c5.large
    # (no spot price; Spot Advisor 70% saving -> 0.3): weighted ratio (30*0.4 + 10*0.3) / 40 = 0.375.
    # Cost: recommended 60 (container a) + current 40 (container b has no recommendation) = 100 USD/month.
    r = pd.DataFrame([
        {"cluster": "c", "namespace": "prod", "kind": "Deployment", "workload": "app", "container": "a",
         "policy": "production", "usd_per_month_recommended": 60.0, "usd_per_month_current": 80.0},
        {"cluster": "c", "namespace": "prod", "kind": "Deployment", "workload": "app", "container": "b",
         "policy": "production", "usd_per_month_recommended": NAN, "usd_per_month_current": 40.0},
    ])
    out = run([workload()], placement("app", {"od-a": 30, "od-b": 10}), recommendations=r, price_rows=prices())
    row = out.loc["app"]
    assert row.usd_per_month_on_demand == pytest.approx(100.0)
    assert row.usd_per_month_spot == pytest.approx(37.5)
    assert row.savings_usd_per_month == pytest.approx(62.5)


def test_spot_price_of_the_pods_zone_is_used():
    zone_b = [("od-b-m5", "m5.large", "us-east-1b", "on-demand")]
    snap_nodes = nodes(NODES + zone_b)
    out = run([workload()], [{"cluster": "c", "namespace": "prod", "kind": "Deployment", "workload": "app",
                              "node": "od-b-m5", "zone": "us-east-1b", "pod_hours": 10.0}],
              recommendations=recs({"app": (100.0, 100.0)}), price_rows=prices(), node_rows=snap_nodes)
    assert out.loc["app", "usd_per_month_spot"] == pytest.approx(50.0)  # 0.05 / 0.10 in us-east-1b


def test_unknown_prices_or_costs_give_nan_savings():
    out = run([workload("noprice"), workload("nocost")], on_demand("noprice") + on_demand("nocost"),
              recommendations=recs({"noprice": (100.0, 100.0), "nocost": (NAN, NAN)}))
    assert np.isnan(out.loc["noprice", "savings_usd_per_month"])  # no prices table
    out = run([workload("nocost")], on_demand("nocost"), recommendations=recs({"nocost": (NAN, NAN)}), price_rows=prices())
    assert np.isnan(out.loc["nocost", "savings_usd_per_month"])


def test_workload_without_placement_uses_the_cluster_node_mix():
    # Node mix weighted by hours: m5.large od-a (ratio 0.4), c5.large od-b (0.3), m5.large spot-a (0.4) -> 1.1/3.
    out = run([workload("placed"), workload("manifest-only")], on_demand("placed"),
              recommendations=recs({"manifest-only": (30.0, 30.0)}), price_rows=prices(c5_bucket="10-15%"))
    row = out.loc["manifest-only"]
    assert "no placement: prices from the cluster's node mix" in row.reasons
    assert row.usd_per_month_spot == pytest.approx(30.0 * 1.1 / 3)
    assert row.interruption_bucket == "10-15%"
    assert np.isnan(row.spot_share)


# --- non-production -----------------------------------------------------------------------------------

def test_non_production_by_policy_namespace_glob_or_label():
    ws = [workload("by-policy"), workload("by-glob", namespace="staging-eu"), workload("by-label", namespace="qa"),
          workload("prod")]
    pl = [{**p, "namespace": ns} for name, ns in (("by-policy", "prod"), ("by-glob", "staging-eu"), ("by-label", "qa"),
                                                  ("prod", "prod")) for p in on_demand(name)]
    r = pd.concat([recs({"by-policy": (1.0, 1.0)}, policy="non_production"), recs({"prod": (1.0, 1.0)})])
    ns = [{"cluster": "c", "namespace": "qa", "labels_json": json.dumps({"environment": "qa"})},
          {"cluster": "c", "namespace": "prod", "labels_json": json.dumps({"environment": "production"})}]
    cfg = config(recommend={"non_production_labels": {"environment": "qa"}})
    out = run(ws, pl, recommendations=r, cfg=cfg, namespaces=ns)
    assert out.loc["by-policy", "non_production"]
    assert out.loc["by-glob", "non_production"]
    assert out.loc["by-label", "non_production"]
    assert not out.loc["prod", "non_production"]
    assert "the whole environment can move to spot" in out.loc["by-glob", "reasons"]
    assert "whole environment" not in out.loc["prod", "reasons"]


# --- verdict thresholds, missing inputs, demo ---------------------------------------------------------

def test_ready_score_threshold():
    w = [workload(has_pvc=True, pdb=False, pdb_max_unavailable_pods=NAN)]  # 100 - 30 - 5 = 65
    assert run(w, on_demand("app")).loc["app", "verdict"] == "not_suitable"
    assert run(w, on_demand("app"), cfg=config(spot={"ready_score": 60})).loc["app", "verdict"] == "ready"


def test_sorted_by_savings_and_one_row_per_workload():
    out = run([workload("small"), workload("big"), workload("unknown")],
              on_demand("small") + on_demand("big") + on_demand("unknown"),
              recommendations=recs({"small": (10.0, 10.0), "big": (100.0, 100.0)}), price_rows=prices())
    assert list(out.workload) == ["big", "small", "unknown"]


def test_empty_snapshot_gives_an_empty_table():
    empty = Snapshot(meta=new_meta()).validate()
    out = spot.spot_suitability(empty, pd.DataFrame(), Config())
    assert out.empty and list(out.columns) == [c.name for c in SPOT_COLUMNS]


def _demo_prices() -> pd.DataFrame:
    # Hand-made prices for the demo's instance types (the lead wires the real offline catalogue).
    rows = [("m5.2xlarge", 0.384, 0.15, "5-10%"), ("r5.2xlarge", 0.504, 0.17, "<5%"),
            ("c6i.2xlarge", 0.34, 0.13, "10-15%"), ("m6i.xlarge", 0.192, 0.08, "<5%")]
    out = []
    for t, od, sp, bucket in rows:
        for cap, usd in (("on-demand", od), ("spot", sp)):
            out.append({"instance_type": t, "region": "us-east-1", "zone": "", "capacity_type": cap, "usd_per_hour": usd,
                        "vcpu": 8.0, "memory_gib": 32.0, "interruption_bucket": bucket,
                        "spot_savings_percent": NAN, "price_source": "test"})
    return pd.DataFrame(out)


def test_demo_snapshot():
    snap = demo.generate()
    snap.tables["prices"] = _demo_prices()
    snap.validate()
    c = snap.tables["containers"]
    nonprod = c.namespace.isin(["staging", "ci-runners"])
    r = c[KEY + ["container"]].assign(policy=np.where(nonprod, "non_production", "production"), production=~nonprod,
                                      usd_per_month_current=10.0, usd_per_month_recommended=NAN)
    out = spot.spot_suitability(snap, r, Config())
    assert list(out.columns) == [c.name for c in SPOT_COLUMNS]
    assert len(out) == len(snap.tables["workloads"])
    assert not out.duplicated(KEY).any()
    got = out.set_index(["namespace", "workload"])
    assert (got.loc[got.kind == "DaemonSet", "verdict"] == "not_applicable").all()
    assert got.loc[("shop", "image-resizer"), "verdict"] == "already_on_spot"
    assert got.loc[("ci-runners", "runner"), "verdict"] == "already_on_spot"
    assert got.loc[("payments", "payments-api"), "verdict"] == "ready_with_changes"  # PDB minAvailable 3 of 3, grace 180
    assert got.loc[("payments", "postgres"), "verdict"] == "not_suitable"
    assert got.loc[("shop", "ads"), "verdict"] == "ready_with_changes"  # pinned to on-demand
    assert got.loc[("shop", "frontend"), "verdict"] == "ready"
    assert got.loc[("staging", "frontend"), "non_production"]
    frontend = got.loc[("shop", "frontend")]
    assert frontend.interruption_bucket in spot.BUCKETS
    assert 0 < frontend.savings_usd_per_month < frontend.usd_per_month_on_demand


# --- GPUs ---------------------------------------------------------------------------------------------

def test_gpu_training_needs_checkpoints_and_gpu_inference_several_replicas():
    jobs = [workload("train-ckpt", kind="Job", replicas=1.0, pdb=False, checkpoints=True),
            workload("train", kind="Job", replicas=1.0, pdb=False, checkpoints=False),
            workload("cpu-batch", kind="Job", replicas=1.0, pdb=False, checkpoints=False),
            workload("infer", replicas=2.0, checkpoints=False), workload("infer-one", replicas=1.0, checkpoints=False)]
    rows = [placement(w["workload"], {"od-a": 10}, kind=w["kind"]) for w in jobs]
    snap = snapshot(jobs, [r for rs in rows for r in rs], price_rows=prices())
    snap.tables["containers"] = pd.DataFrame([{**{k: w[k] for k in KEY}, "container": "main", "container_type": "main",
                                               "gpu_resource": "" if w["workload"] == "cpu-batch" else "nvidia.com/gpu",
                                               "gpu_request_count": NAN if w["workload"] == "cpu-batch" else 1.0} for w in jobs])
    out = spot.spot_suitability(snap, pd.DataFrame(), Config()).set_index("workload")
    assert out.loc["train-ckpt", "verdict"] == "ready" and "GPU training that checkpoints" in out.loc["train-ckpt", "reasons"]
    # without checkpoints every interruption throws GPU-hours away: ready only once it checkpoints
    assert out.loc["train", "verdict"] == "ready_with_changes"
    assert "rightsize.io/checkpoints" in out.loc["train", "changes_needed"]
    assert out.loc["train", "score"] == out.loc["train-ckpt", "score"] - spot.PENALTY_GPU_NO_CHECKPOINT
    assert "GPU" not in out.loc["cpu-batch", "reasons"] and out.loc["cpu-batch", "verdict"] == "ready"
    assert "GPU inference behind 2 replicas" in out.loc["infer", "reasons"] and out.loc["infer", "verdict"] == "ready"
    assert out.loc["infer-one", "verdict"] != "ready"  # one replica: an interruption is an outage
