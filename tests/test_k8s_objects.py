"""k8s_objects: Kubernetes object dicts -> snapshot rows (pure functions, hand-made objects)."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math

import pytest

from rightsize.config import Config, WorkloadOverride
from rightsize.errors import SourceError
from rightsize.sources import k8s_fields as ko
from rightsize.sources.k8s_objects import Options, build_tables


def deployment(name, replicas=3, labels=None, ns="shop", containers=None, annotations=None, **spec_extra):
    labels = labels or {"app": name}
    return {
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "annotations": annotations or {}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": containers or [
                    {"name": "app", "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}}}]},
            },
            **spec_extra,
        },
    }


def owned(kind, name, owner_kind, owner_name, ns="shop", template=None, **spec):
    return {
        "kind": kind,
        "metadata": {"name": name, "namespace": ns,
                     "ownerReferences": [{"kind": owner_kind, "name": owner_name, "controller": True}]},
        "spec": {**({"template": template} if template else {}), **spec},
    }


def pdb(name, selector, ns="shop", **spec):
    return {"kind": "PodDisruptionBudget", "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": selector, **spec}}


def opts(config=None, **kw):
    return Options(cluster="c1", source="api", config=config or Config(), **kw)


def build(objects, config=None, **kw):
    warnings = []
    tables = build_tables(objects, opts(config, **kw), lambda c, m, a="": warnings.append((c, m, a)))
    return tables, warnings


def one(df, **where):
    sel = df
    for k, v in where.items():
        sel = sel[sel[k] == v]
    assert len(sel) == 1, f"expected one row for {where}, got {len(sel)}"
    return sel.iloc[0]


# --- percentages and PDBs ---------------------------------------------------------------------------

def test_percent_rounds_up_for_both_pdb_fields():
    # Kubernetes rounds a PDB percentage up: 50% of 5 pods -> 3, 25% of 5 -> 2 (1.25 up)
    assert ko.scaled_int_or_percent("50%", 5) == 3
    assert ko.scaled_int_or_percent("25%", 5) == 2
    assert ko.scaled_int_or_percent("20%", 5) == 1  # exact, must not be bumped by float noise
    assert ko.scaled_int_or_percent(2, 5) == 2
    assert math.isnan(ko.scaled_int_or_percent("50%", math.nan))
    assert math.isnan(ko.scaled_int_or_percent(None, 5))


def test_resolve_pdb_absolute_and_percent():
    assert ko.resolve_pdb({"spec": {"minAvailable": "50%"}}, 5.0) == (3.0, pytest.approx(math.nan, nan_ok=True), 2.0)
    min_av, max_un, allowed = ko.resolve_pdb({"spec": {"maxUnavailable": "25%"}}, 5.0)
    assert math.isnan(min_av) and max_un == 2.0 and allowed == 2.0
    assert ko.resolve_pdb({"spec": {"minAvailable": 3}}, 3.0)[2] == 0.0  # blocks every eviction
    assert ko.resolve_pdb({"spec": {"maxUnavailable": 0}}, 4.0)[2] == 0.0


def test_pdb_matched_by_selector_and_most_restrictive_wins():
    objs = [
        deployment("web", replicas=4, labels={"app": "web", "tier": "front"}),
        deployment("api", replicas=2),
        pdb("loose", {"matchLabels": {"app": "web"}}, maxUnavailable="50%"),
        pdb("strict", {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]}, minAvailable="75%"),
        pdb("other-ns", {"matchLabels": {"app": "api"}}, ns="elsewhere", minAvailable=1),
    ]
    tables, _ = build(objs)
    web = one(tables["workloads"], workload="web")
    assert web["pdb"] and web["pdb_min_available_pods"] == 3 and web["pdb_disruptions_allowed"] == 1
    api = one(tables["workloads"], workload="api")
    assert not api["pdb"] and math.isnan(api["pdb_disruptions_allowed"])


def test_selector_semantics():
    assert ko.selector_matches({}, {"a": "1"})  # empty selector selects everything
    assert not ko.selector_matches(None, {"a": "1"})
    assert ko.selector_matches({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["2"]}]}, {"a": "1"})
    assert not ko.selector_matches({"matchExpressions": [{"key": "b", "operator": "Exists"}]}, {"a": "1"})
    assert not ko.map_selector_matches({}, {"a": "1"})  # a Service without selector selects nothing


# --- HPA --------------------------------------------------------------------------------------------

def test_hpa_v2_metrics_and_targets():
    hpa = {"kind": "HorizontalPodAutoscaler", "metadata": {"name": "web", "namespace": "shop"},
           "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 2, "maxReplicas": 9,
                    "metrics": [
                        {"type": "Resource", "resource": {"name": "memory", "target": {"type": "Utilization", "averageUtilization": 80}}},
                        {"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "app",
                                                                            "target": {"type": "Utilization", "averageUtilization": 60}}},
                        {"type": "Pods", "pods": {"metric": {"name": "rps"}}}]}}
    tables, warnings = build([deployment("web"), hpa, {**hpa, "metadata": {"name": "ghost", "namespace": "shop"},
                                                       "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "gone"}}}])
    web = one(tables["workloads"], workload="web")
    assert web["hpa"] and web["hpa_min_replicas"] == 2 and web["hpa_max_replicas"] == 9
    assert web["hpa_cpu_target_percent"] == 60 and web["hpa_memory_target_percent"] == 80
    assert web["hpa_metrics"] == "Resource:memory,ContainerResource:cpu,Pods"
    # where a patch finds each target (JSON pointers into the HPA as read), and the HPA's own name
    assert web["hpa_name"] == "web"
    assert web["hpa_memory_target_path"] == "/spec/metrics/0/resource/target/averageUtilization"
    assert web["hpa_cpu_target_path"] == "/spec/metrics/1/containerResource/target/averageUtilization"
    assert any(c == "hpa_target_not_found" and "shop/ghost" in m for c, m, _ in warnings)


def test_hpa_v1_and_default_cpu_target():
    assert ko.hpa_summary({"spec": {"maxReplicas": 5, "targetCPUUtilizationPercentage": 70}})["hpa_cpu_target_percent"] == 70
    v1 = ko.hpa_summary({"metadata": {"name": "w"}, "spec": {"maxReplicas": 5, "targetCPUUtilizationPercentage": 70}})
    assert v1["hpa_cpu_target_path"] == "/spec/targetCPUUtilizationPercentage" and v1["hpa_name"] == "w"
    default = ko.hpa_summary({"spec": {"maxReplicas": 5}})
    assert default["hpa_cpu_target_percent"] == 80 and default["hpa_min_replicas"] == 1
    assert default["hpa_cpu_target_path"] == ""  # a default has no place in the object to patch


def test_manifest_without_replicas_takes_hpa_min():
    d = deployment("web")
    del d["spec"]["replicas"]
    hpa = {"kind": "HorizontalPodAutoscaler", "metadata": {"name": "web", "namespace": "shop"},
           "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 4, "maxReplicas": 8}}
    tables, _ = build([d, hpa])
    assert one(tables["workloads"], workload="web")["replicas"] == 4
    tables, _ = build([d])
    assert one(tables["workloads"], workload="web")["replicas"] == 1  # the API server's default


# --- owner resolution -------------------------------------------------------------------------------

def test_replicaset_and_pod_resolve_to_deployment():
    tmpl = deployment("web")["spec"]["template"]
    objs = [
        deployment("web"),
        owned("ReplicaSet", "web-5d9f", "Deployment", "web", template=tmpl, replicas=3),
        {**owned("Pod", "web-5d9f-x1", "ReplicaSet", "web-5d9f"), "spec": tmpl["spec"]},
        {"kind": "ReplicaSet", "metadata": {"name": "lonely", "namespace": "shop"},
         "spec": {"replicas": 2, "template": tmpl}},
    ]
    tables, _ = build(objs)
    wl = tables["workloads"]
    assert sorted(zip(wl["kind"], wl["workload"])) == [("Deployment", "web"), ("ReplicaSet", "lonely")]
    assert one(wl, workload="web")["replicas"] == 3


def test_pod_of_unlisted_replicaset_resolves_through_pod_template_hash():
    tmpl = deployment("web")["spec"]["template"]
    pod = owned("Pod", "web-5d9f-x1", "ReplicaSet", "web-5d9f")
    pod["metadata"]["labels"] = {"app": "web", "pod-template-hash": "5d9f"}
    pod["spec"] = tmpl["spec"]
    stray = owned("Pod", "other-1", "ReplicaSet", "other-abc")  # no hash label: stays a ReplicaSet
    stray["spec"] = tmpl["spec"]
    wl = build([deployment("web"), pod, stray])[0]["workloads"]
    assert sorted(zip(wl["kind"], wl["workload"])) == [("Deployment", "web"), ("ReplicaSet", "other-abc")]
    wl = build([pod])[0]["workloads"]  # the Deployment not listed either: rebuilt from its pod
    assert list(zip(wl["kind"], wl["workload"], wl["replicas"])) == [("Deployment", "web", 1.0)]


def test_job_resolves_to_cronjob_and_stands_in_when_cronjob_not_listed():
    job_tmpl = {"spec": {"containers": [{"name": "run", "resources": {"requests": {"cpu": "1"}}}]}}
    objs = [
        owned("Job", "nightly-2891", "CronJob", "nightly", template=job_tmpl, parallelism=3),
        {"kind": "Job", "metadata": {"name": "migrate-once", "namespace": "shop"}, "spec": {"template": job_tmpl}},
        {**owned("Pod", "nightly-2891-abc", "Job", "nightly-2891"), "spec": job_tmpl["spec"]},
    ]
    tables, warnings = build(objs)
    wl = tables["workloads"]
    # the CronJob itself was not listed (e.g. 403): it is rebuilt from its Job, never shown as a Job
    assert sorted(zip(wl["kind"], wl["workload"])) == [("CronJob", "nightly"), ("Job", "migrate-once")]
    assert one(wl, workload="nightly")["replicas"] == 3
    assert one(tables["containers"], workload="nightly")["cpu_request_cores"] == 1.0
    assert any(c == "inventory_from_owned_objects" for c, _, _ in warnings)


def test_cronjob_containers_come_from_job_template():
    cj = {"kind": "CronJob", "metadata": {"name": "nightly", "namespace": "shop"},
          "spec": {"jobTemplate": {"spec": {"template": {"spec": {
              "initContainers": [{"name": "fetch", "resources": {"limits": {"memory": "1Gi"}}}],
              "containers": [{"name": "run", "resources": {"requests": {"cpu": "500m"}}}]}}}}}}
    tables, _ = build([cj])
    c = tables["containers"]
    fetch = one(c, container="fetch")
    assert fetch["container_type"] == "init"
    # an unset request takes the limit, as the API server does
    assert fetch["memory_request_bytes"] == 1024**3 and math.isnan(fetch["cpu_request_cores"])
    assert one(c, container="run")["cpu_request_cores"] == 0.5
    assert one(tables["workloads"], workload="nightly")["replicas"] == 1


def test_bare_pod_and_custom_controller_pods():
    spec = {"containers": [{"name": "c"}]}
    objs = [
        {"kind": "Pod", "metadata": {"name": "debug", "namespace": "shop"}, "spec": spec},
        {**owned("Pod", "roll-1", "Rollout", "canary"), "spec": spec},
        {**owned("Pod", "roll-2", "Rollout", "canary"), "spec": spec},
        {"kind": "Pod", "metadata": {"name": "done", "namespace": "shop"}, "spec": spec, "status": {"phase": "Succeeded"}},
    ]
    tables, _ = build(objs)
    wl = tables["workloads"]
    assert one(wl, kind="Pod")["workload"] == "debug"  # the finished pod holds nothing and is left out
    assert one(wl, kind="Rollout", workload="canary")["replicas"] == 2
    c = one(tables["containers"], workload="debug")
    assert math.isnan(c["cpu_request_cores"]) and math.isnan(c["memory_limit_bytes"])  # unset is NaN, never 0


# --- annotations, labels, config --------------------------------------------------------------------

def test_opt_out_annotation_spot_policy_and_team():
    objs = [
        deployment("legacy", annotations={"rightsize.io/ignore": "true", "rightsize.io/policy": "non_production"}),
        deployment("batch", annotations={"rightsize.io/spot": "false"}),
        {**deployment("web"), "metadata": {"name": "web", "namespace": "shop", "labels": {"team": "storefront"}}},
        {"kind": "Namespace", "metadata": {"name": "shop", "labels": {"team": "commerce"}}},
    ]
    tables, _ = build(objs)
    wl = tables["workloads"]
    legacy = one(wl, workload="legacy")
    assert legacy["ignore"] and legacy["policy_override"] == "non_production"
    assert not one(wl, workload="web")["ignore"]
    assert one(wl, workload="batch")["spot_preference"] == "out"
    assert one(wl, workload="web")["team"] == "storefront"
    assert one(wl, workload="batch")["team"] == "commerce"  # falls back to the namespace's label
    assert json.loads(one(tables["namespaces"], namespace="shop")["labels_json"]) == {"team": "commerce"}


def test_config_override_is_not_baked_into_the_snapshot_and_custom_annotation_names():
    cfg = Config()
    cfg = dataclasses.replace(
        cfg, overrides=(WorkloadOverride(workload="shop/deployment/api", ignore=True),),
        kubernetes=dataclasses.replace(cfg.kubernetes, ignore_annotation="acme.io/skip", team_label="owner"))
    objs = [deployment("api"), deployment("old", annotations={"acme.io/skip": "true"}),
            deployment("web", annotations={"rightsize.io/ignore": "true"})]
    wl = build(objs, cfg)[0]["workloads"]
    # the snapshot records the annotation only; the config override is applied when analyzing
    assert not one(wl, workload="api")["ignore"] and one(wl, workload="old")["ignore"]
    assert not one(wl, workload="web")["ignore"]  # the default annotation name is no longer read


def test_ignore_override_applies_at_analyze_time_and_removing_it_takes_effect():
    """Collect with an [[overrides]] ignore entry, then analyze the same snapshot with and without it."""
    from rightsize.analysis.recommend import recommend
    from rightsize.snapshot import Snapshot

    with_override = dataclasses.replace(Config(), overrides=(WorkloadOverride(workload="shop/Deployment/api", ignore=True),))
    tables = build([deployment("api"), deployment("legacy", annotations={"rightsize.io/ignore": "true"})], with_override)[0]
    snap = Snapshot(tables={k: tables[k] for k in ("workloads", "containers")}).validate()
    recs = recommend(snap, with_override).set_index("workload")
    assert recs.loc["api", "status"] == "ignored" and recs.loc["api", "reason"] == "ignored by a config override"
    assert recs.loc["legacy", "reason"] == "ignored by annotation rightsize.io/ignore"
    recs = recommend(snap, Config()).set_index("workload")
    assert recs.loc["api", "status"] == "no_recommendation" and "ignored" not in recs.loc["api", "reason"]
    assert recs.loc["legacy", "status"] == "ignored"


def test_bad_quantity_names_object_and_field():
    d = deployment("web", containers=[{"name": "app", "resources": {"requests": {"cpu": "a lot"}}}])
    d["_source_file"] = "deploy/web.yaml"
    with pytest.raises(SourceError) as err:
        build([d])
    msg = str(err.value)
    assert "shop/Deployment/web" in msg and "deploy/web.yaml" in msg
    assert "containers[app].resources.requests.cpu" in msg and "'a lot'" in msg


# --- pod spec facts ---------------------------------------------------------------------------------

def test_capacity_affinity_and_spot_toleration():
    assert ko.capacity_affinity({"nodeSelector": {"karpenter.sh/capacity-type": "spot"}}) == "spot"
    assert ko.capacity_affinity({"nodeSelector": {"eks.amazonaws.com/capacityType": "ON_DEMAND"}}) == "on-demand"
    req = lambda op, vals: {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "karpenter.sh/capacity-type", "operator": op, "values": vals}]}]}}}}
    assert ko.capacity_affinity(req("In", ["spot"])) == "spot"
    assert ko.capacity_affinity(req("NotIn", ["spot"])) == "on-demand"
    assert ko.capacity_affinity(req("In", ["spot", "on-demand"])) == ""
    assert ko.tolerates_spot({"tolerations": [{"key": "eks.amazonaws.com/capacityType", "value": "SPOT"}]})
    assert ko.tolerates_spot({"tolerations": [{"operator": "Exists"}]})
    assert not ko.tolerates_spot({"tolerations": [{"key": "dedicated", "value": "gpu"}]})


def test_volumes_grace_and_update_strategy():
    d = deployment("web", strategy={"type": "Recreate"})
    d["spec"]["template"]["spec"].update(
        terminationGracePeriodSeconds=600,
        volumes=[{"name": "a", "emptyDir": {"medium": "Memory"}}, {"name": "b", "persistentVolumeClaim": {"claimName": "x"}}])
    sts = {"kind": "StatefulSet", "metadata": {"name": "db", "namespace": "shop"},
           "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "pg"}]}},
                    "volumeClaimTemplates": [{"metadata": {"name": "data"}}]}}
    wl = build([d, sts])[0]["workloads"]
    web, db = one(wl, workload="web"), one(wl, workload="db")
    assert web["has_pvc"] and web["has_memory_empty_dir"] and not web["has_empty_dir"]
    assert web["termination_grace_seconds"] == 600 and db["termination_grace_seconds"] == 30
    assert (web["update_max_unavailable"], web["update_max_surge"]) == ("100%", "0")
    assert db["has_pvc"] and db["update_max_unavailable"] == "1"
    assert ko.update_strategy({"kind": "Deployment", "spec": {}}) == ("25%", "25%")


def test_services_resolve_workload_and_aws_annotations():
    svc = lambda name, ann, **spec: {"kind": "Service", "metadata": {"name": name, "namespace": "shop", "annotations": ann},
                                     "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}], **spec}}
    objs = [deployment("web"),
            svc("old-lb", {"service.beta.kubernetes.io/aws-load-balancer-internal": "0.0.0.0/0",
                           "service.kubernetes.io/topology-aware-hints": "auto"}, type="LoadBalancer"),
            svc("public", {"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"}, type="LoadBalancer",
                internalTrafficPolicy="Local"),
            svc("nobody", {}, selector={"app": "none"})]
    s = build(objs)[0]["services"]
    old = one(s, service="old-lb")
    assert old["workload"] == "web" and old["kind"] == "Deployment" and old["ports"] == "80/TCP"
    assert old["load_balancer_internal"] and old["topology_mode"] == "auto"
    pub = one(s, service="public")
    assert not pub["load_balancer_internal"] and pub["load_balancer_class"] == "nlb"
    assert pub["internal_traffic_policy"] == "Local"
    assert one(s, service="nobody")["workload"] == ""


def test_nodes_labels_allocatable_and_hours():
    now = dt.datetime(2026, 1, 15, tzinfo=dt.timezone.utc)
    node = {"kind": "Node", "metadata": {"name": "ip-10-0-0-1", "creationTimestamp": "2026-01-14T12:00:00Z", "labels": {
        "node.kubernetes.io/instance-type": "m6i.large", "topology.kubernetes.io/zone": "eu-west-1a",
        "topology.kubernetes.io/region": "eu-west-1", "eks.amazonaws.com/capacityType": "SPOT",
        "eks.amazonaws.com/nodegroup": "general"}},
        "status": {"allocatable": {"cpu": "1930m", "memory": "7548Mi"}}}
    n = one(build([node], now=now, window_hours=336.0)[0]["nodes"], node="ip-10-0-0-1")
    assert (n["instance_type"], n["zone"], n["region"], n["capacity_type"], n["node_group"]) == (
        "m6i.large", "eu-west-1a", "eu-west-1", "spot", "general")
    assert n["allocatable_cpu_cores"] == pytest.approx(1.93) and n["allocatable_memory_bytes"] == 7548 * 1024**2
    assert n["hours_seen"] == 12.0  # younger than the window


def test_namespace_scope():
    objs = [deployment("web"), deployment("coredns", ns="kube-system")]
    wl = build(objs, exclude_namespaces=("kube-system",))[0]["workloads"]
    assert list(wl["workload"]) == ["web"]


def test_pods_of_unlisted_replicasets_and_jobs_resolve_by_selector_and_job_name_once():
    """ReplicaSets and Jobs forbidden (403): pods without the hash label map to the listed Deployment whose
    selector matches and whose name prefixes the ReplicaSet's; Job pods map to the CronJob named by the
    Job's prefix. Each pod counts once, and the mapping is flagged."""
    tmpl = deployment("web")["spec"]["template"]
    api_tmpl = deployment("web-api")["spec"]["template"]
    pods = [{**owned("Pod", f"web-7c4b-{i}", "ReplicaSet", "web-7c4b"), "spec": tmpl["spec"]} for i in range(3)]
    pods += [{**owned("Pod", "web-api-9f1-a", "ReplicaSet", "web-api-9f1"), "spec": api_tmpl["spec"]}]
    for p, labels in zip(pods, [{"app": "web"}] * 3 + [{"app": "web-api"}]):
        p["metadata"]["labels"] = labels
    cron = {"kind": "CronJob", "metadata": {"name": "nightly", "namespace": "shop"},
            "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "run"}]}}}}}}
    job_pod = {**owned("Pod", "nightly-29374560-x", "Job", "nightly-29374560"), "spec": {"containers": [{"name": "run"}]}}
    once = {**owned("Pod", "migrate-once-y", "Job", "migrate-once"), "spec": {"containers": [{"name": "run"}]}}
    tables, warnings = build([deployment("web"), deployment("web-api"), cron, job_pod, once, *pods])
    wl = tables["workloads"]
    assert sorted(zip(wl["kind"], wl["workload"])) == [
        ("CronJob", "nightly"), ("Deployment", "web"), ("Deployment", "web-api"), ("Job", "migrate-once")]
    assert one(wl, workload="web")["resolved_by"] == "selector" and one(wl, workload="web")["replicas"] == 3
    assert one(wl, workload="nightly")["resolved_by"] == "job name"
    assert one(wl, workload="migrate-once")["resolved_by"] == ""
    codes = {c: m for c, m, _ in warnings}
    assert "3 workload(s)" in codes["owners_inferred"] and "selector (2)" in codes["owners_inferred"]
    assert "shop/Job/migrate-once" in codes["owners_unresolved"]
    assert len(tables["containers"]) == 4  # one container row per workload, none for a ReplicaSet


def test_zone_spread_only_when_the_scheduler_must_spread():
    zone = "topology.kubernetes.io/zone"
    assert ko.zone_spread({"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": zone, "whenUnsatisfiable": "DoNotSchedule"}]})
    assert not ko.zone_spread({"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": zone, "whenUnsatisfiable": "ScheduleAnyway"}]})
    assert not ko.zone_spread({"topologySpreadConstraints": [{"topologyKey": "kubernetes.io/hostname"}]})
    assert ko.zone_spread({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "a"}}, "topologyKey": zone}]}}})
    d = deployment("web")
    d["spec"]["template"]["spec"]["topologySpreadConstraints"] = [{"topologyKey": zone, "whenUnsatisfiable": "DoNotSchedule"}]
    wl = build([d, deployment("api")])[0]["workloads"]
    assert one(wl, workload="web")["zone_spread"] and not one(wl, workload="api")["zone_spread"]


# --- GPUs ---------------------------------------------------------------------------------------------

def test_gpu_requests_and_limits_of_containers():
    d = deployment("infer", containers=[
        {"name": "whole", "resources": {"requests": {"cpu": "1"}, "limits": {"nvidia.com/gpu": "2"}}},
        {"name": "slice", "resources": {"requests": {"nvidia.com/mig-1g.5gb": 1}, "limits": {"nvidia.com/mig-1g.5gb": 1}}},
        {"name": "amd", "resources": {"limits": {"amd.com/gpu": 1}}},
        {"name": "cpu-only"},
        {"name": "two", "resources": {"limits": {"nvidia.com/mig-3g.20gb": 1, "nvidia.com/mig-1g.5gb": 2}}},
    ], ns="ml")
    tables, warnings = build([d])
    c = tables["containers"].set_index("container")
    # only the limit set: the API server copies it into the request (extended resources: request = limit)
    assert (c.loc["whole", "gpu_resource"], c.loc["whole", "gpu_request_count"], c.loc["whole", "gpu_limit_count"]) == (
        "nvidia.com/gpu", 2.0, 2.0)
    assert (c.loc["slice", "gpu_resource"], c.loc["slice", "gpu_request_count"]) == ("nvidia.com/mig-1g.5gb", 1.0)
    assert c.loc["amd", "gpu_resource"] == "amd.com/gpu" and c.loc["amd", "gpu_request_count"] == 1.0
    assert c.loc["cpu-only", "gpu_resource"] == "" and math.isnan(c.loc["cpu-only", "gpu_request_count"])
    # two MIG profiles in one container: the first by name is costed, and a warning names it
    assert c.loc["two", "gpu_resource"] == "nvidia.com/mig-1g.5gb" and c.loc["two", "gpu_request_count"] == 2.0
    (code, message, affects), = [w for w in warnings if w[0] == "gpu_resources_several"]
    assert "ml/Deployment/infer:two" in message and "lower bound" in affects


def test_a_fractional_gpu_count_names_object_and_field():
    d = deployment("infer", containers=[{"name": "app", "resources": {"limits": {"nvidia.com/gpu": "500m"}}}])
    with pytest.raises(SourceError) as err:
        build([d])
    assert "shop/Deployment/infer" in str(err.value) and "containers[app].resources.limits.nvidia.com/gpu" in str(err.value)


def test_node_gpu_capacity_allocatable_mig_slices_and_product():
    node = {"kind": "Node", "metadata": {"name": "gpu-1", "labels": {
        "node.kubernetes.io/instance-type": "p4d.24xlarge", "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB"}},
        "status": {"capacity": {"cpu": "96", "memory": "1152Gi", "nvidia.com/gpu": "4", "nvidia.com/mig-1g.5gb": "14"},
                   "allocatable": {"cpu": "95", "memory": "1100Gi", "nvidia.com/gpu": "4", "nvidia.com/mig-1g.5gb": "14",
                                   "nvidia.com/mig-3g.20gb": "4"}}}
    plain = {"kind": "Node", "metadata": {"name": "cpu-1"}, "status": {"allocatable": {"cpu": "2", "memory": "8Gi"}}}
    nodes = build([node, plain])[0]["nodes"].set_index("node")
    assert nodes.loc["gpu-1", "capacity_gpus"] == 4 and nodes.loc["gpu-1", "allocatable_gpus"] == 4
    assert json.loads(nodes.loc["gpu-1", "gpu_resources_json"]) == {
        "nvidia.com/gpu": 4, "nvidia.com/mig-1g.5gb": 14, "nvidia.com/mig-3g.20gb": 4}
    assert nodes.loc["gpu-1", "gpu_product"] == "NVIDIA-A100-SXM4-40GB"
    # a node the API lists without GPU resources has none (0), not an unknown count
    assert nodes.loc["cpu-1", "allocatable_gpus"] == 0 and json.loads(nodes.loc["cpu-1", "gpu_resources_json"]) == {}


def test_checkpoints_from_annotation_or_label():
    job = {"kind": "Job", "metadata": {"name": "train", "namespace": "ml", "annotations": {"rightsize.io/checkpoints": "true"}},
           "spec": {"template": {"spec": {"containers": [{"name": "t"}]}}}}
    labelled = {"kind": "Job", "metadata": {"name": "tune", "namespace": "ml", "labels": {"rightsize.io/checkpoints": "True"}},
                "spec": {"template": {"spec": {"containers": [{"name": "t"}]}}}}
    plain = deployment("serve", ns="ml")
    w = build([job, labelled, plain])[0]["workloads"].set_index("workload")
    assert w.loc["train", "checkpoints"] and w.loc["tune", "checkpoints"] and not w.loc["serve", "checkpoints"]
