"""Argo Rollouts are workloads like Deployments: inventoried from kube-state-metrics (a real Prometheus:
pods -> ReplicaSet -> Rollout owner series), from the Kubernetes API (the real client against
tests/test_kubernetes_api.py's stand-in server: there is no API server here) and from manifests."""
from __future__ import annotations

import math

import pytest

from promdata import ContainerSpec, Dataset, PodSpec
from promservers import DATA_HOURS, WINDOW_HOURS, dataset_end, make_config, start_prometheus
from rightsize.config import Config
from rightsize.snapshot import Snapshot
from rightsize.sources import prometheus as P
from rightsize.sources.kubernetes import collect_inventory
from rightsize.sources.manifests import load_manifests
from rightsize.targets import ClusterTarget
from test_kubernetes_api import ITEMS, StandInApiServer, _config, _kubeconfig

MiB = 2**20
TEMPLATE = {"metadata": {"labels": {"app": "checkout"}},
            "spec": {"containers": [{"name": "app", "image": "checkout:1",
                                     "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "512Mi"}}},
                                    {"name": "proxy", "image": "proxy:1", "resources": {"requests": {"cpu": "50m"}}}]}}
ROLLOUT = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "checkout", "namespace": "shop"},
           "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "checkout"}}, "template": TEMPLATE,
                    "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}}}}
ROLLOUT_MANIFEST = """apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: checkout, namespace: shop}
spec:
  replicas: 3
  selector: {matchLabels: {app: checkout}}
  strategy: {canary: {steps: [{setWeight: 20}, {pause: {}}]}}
  template:
    metadata: {labels: {app: checkout}}
    spec:
      containers:
      - name: app
        image: checkout:1
        resources:
          requests: {cpu: 500m, memory: 512Mi}
          limits: {memory: 512Mi}
      - name: proxy
        image: proxy:1
        resources:
          requests: {cpu: 50m}
"""


@pytest.mark.integration
def test_rollouts_from_kube_state_metrics(tmp_path):
    pods = [PodSpec("shop", f"checkout-6f7d9-{r}", "Rollout", "checkout", "ReplicaSet", "checkout-6f7d9", "Rollout", "checkout",
                    containers=[ContainerSpec("app", 0.2, 0.05, 200 * MiB, 10 * MiB, 0.5, math.nan, 512 * MiB, 512 * MiB)])
            for r in range(3)]
    end = dataset_end()
    server = start_prometheus(Dataset(end, DATA_HOURS, pods), tmp_path)
    try:
        snap = Snapshot()
        P.collect_usage(make_config(server.url, end, WINDOW_HOURS), ClusterTarget("c1", server.url), snap,
                        inventory_from_metrics=True, progress=lambda m: None)
    finally:
        server.stop()
    w = snap.tables["workloads"].set_index("workload")
    assert w.loc["checkout", "kind"] == "Rollout" and w.loc["checkout", "replicas"] == 3
    c = snap.tables["containers"].set_index(["kind", "workload", "container"])
    assert c.loc[("Rollout", "checkout", "app"), "cpu_request_cores"] == 0.5
    assert set(snap.tables["usage"]["kind"]) == {"Rollout"}


def test_rollouts_from_the_api_and_a_missing_crd(tmp_path):
    rs = {"metadata": {"name": "checkout-6f7d9", "namespace": "shop", "labels": {"rollouts-pod-template-hash": "6f7d9"},
                       "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "checkout",
                                            "uid": "u", "controller": True}]},
          "spec": {"replicas": 3, "template": TEMPLATE}}
    items = {**ITEMS, "/apis/argoproj.io/v1alpha1/rollouts": [ROLLOUT],
             "/apis/apps/v1/replicasets": ITEMS["/apis/apps/v1/replicasets"] + [rs]}
    with StandInApiServer(items=items) as server:
        snap = Snapshot()
        collect_inventory(_config(_kubeconfig(tmp_path, server.url)), ClusterTarget("prod", "", context="test-ctx"), snap)
    w = snap.tables["workloads"].set_index(["kind", "workload"])
    assert w.loc[("Rollout", "checkout"), "replicas"] == 3 and ("ReplicaSet", "checkout-6f7d9") not in w.index
    c = snap.tables["containers"].set_index(["kind", "workload", "container"])
    assert c.loc[("Rollout", "checkout", "app"), "memory_request_bytes"] == 512 * MiB
    assert snap.meta["sources"]["kubernetes_api:prod"]["objects"]["Rollout"] == 1
    with StandInApiServer() as server:  # no Argo Rollouts installed: the API answers 404, which is no caveat
        snap = Snapshot()
        collect_inventory(_config(_kubeconfig(tmp_path, server.url)), ClusterTarget("prod", "", context="test-ctx"), snap)
    assert snap.meta["sources"]["kubernetes_api:prod"]["objects"]["Rollout"] == "not installed"
    assert not [w for w in snap.meta["warnings"] if "Rollout" in w["message"]]


def test_rollouts_from_manifests(tmp_path):
    (tmp_path / "rollout.yaml").write_text(ROLLOUT_MANIFEST)
    tables = load_manifests(tmp_path, Config(), "dev")
    w = tables["workloads"].set_index("workload")
    assert w.loc["checkout", "kind"] == "Rollout" and w.loc["checkout", "replicas"] == 3
    assert sorted(tables["containers"]["container"]) == ["app", "proxy"]


def test_rollout_with_a_workload_ref_uses_the_deployments_template(tmp_path):
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "checkout-base", "namespace": "shop"},
                  "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "checkout"}}, "template": TEMPLATE}}
    ref = {**ROLLOUT, "spec": {"replicas": 4, "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "checkout-base"}}}
    from rightsize.sources.k8s_objects import Options, build_tables

    tables = build_tables([deployment, ref], Options("c", "manifests", Config()))
    c = tables["containers"]
    assert sorted(c[c["kind"] == "Rollout"]["container"]) == ["app", "proxy"]


def test_rollout_ops_touch_only_the_values_they_name():
    """With the manifest: leaves where the maps exist, a whole map only where there is none. Without it: a
    map that holds no CPU or memory value may hold other resources, so that container is left to a person."""
    from rightsize.emit.rollout_patch import container_ops

    row = {"container": "app", "cpu_limit_action": "remove", "cpu_request_cores_current": 0.5, "memory_request_bytes_current": 2**29,
           "memory_limit_bytes_current": float("nan"), "cpu_limit_cores_current": 1.0}
    want = {"requests": {"cpu": "250m", "memory": "300Mi"}, "limits": {"memory": "300Mi"}}
    spec = {"name": "app", "resources": {"requests": {"cpu": "500m", "memory": "512Mi", "ephemeral-storage": "1Gi"},
                                         "limits": {"cpu": "1", "nvidia.com/gpu": 1}}}
    ops, why = container_ops(row, 0, "containers", want, spec)
    base = "/spec/template/spec/containers/0"
    assert why == "" and ops == [
        {"op": "test", "path": f"{base}/name", "value": "app"},
        {"op": "add", "path": f"{base}/resources/requests/cpu", "value": "250m"},
        {"op": "add", "path": f"{base}/resources/requests/memory", "value": "300Mi"},
        {"op": "add", "path": f"{base}/resources/limits/memory", "value": "300Mi"},
        {"op": "remove", "path": f"{base}/resources/limits/cpu"}]
    ops, _ = container_ops({**row, "cpu_limit_action": "keep_unset"}, 1, "containers", want, {"name": "app"})
    assert ops[1:] == [{"op": "add", "path": "/spec/template/spec/containers/1/resources", "value": {"requests": want["requests"]}},
                       {"op": "add", "path": "/spec/template/spec/containers/1/resources/limits", "value": want["limits"]}]
    unlimited = {**row, "cpu_limit_cores_current": float("nan"), "cpu_limit_action": "keep_unset"}
    ops, why = container_ops(unlimited, 0, "containers", want, None)  # no manifest, no CPU or memory limit set
    assert ops == [] and "resources.limits holds no CPU or memory value" in why and "memory 300Mi" in why
    ops, why = container_ops(row, 0, "containers", want, None)  # its CPU limit is set: the limits map exists
    assert why == "" and [o["op"] for o in ops] == ["test", "add", "add", "add", "remove"]


def test_rollouts_are_patched_and_the_patch_renders_with_kustomize(tmp_path, kubectl):
    """From manifests: JSON6902 ops by position, every other field and container kept (a strategic merge would
    drop them: checked below), rendered by real `kubectl kustomize` over the manifest. From the API (the
    snapshot's container list): the same values where the maps exist. From kube-state-metrics (no positions):
    no patch, the reason in PATCHES.md's skipped list. Batch-framework groups: never patched, with why."""
    import pandas as pd

    from patchfixtures import config, kustomize, rec, recs, snapshot
    from rightsize.emit.patches import write_patches

    base = tmp_path / "base"
    base.mkdir()
    (base / "rollout.yaml").write_text(ROLLOUT_MANIFEST)
    (base / "kustomization.yaml").write_text("resources: [rollout.yaml]\n")
    rows = recs(rec("shop", "Rollout", "checkout", "app", cpu=("500m", "250m"), memory=("512Mi", "300Mi"),
                    memory_limit=("512Mi", "300Mi")),
                rec("shop", "Rollout", "checkout", "proxy", cpu=("50m", "20m"), memory=(None, "64Mi")),
                rec("pipelines", "AirflowTask", "daily_sales.load", "base"))
    wl = pd.DataFrame([{"cluster": "c1", "namespace": "shop", "kind": "Rollout", "workload": "checkout", "source": "manifests",
                        "source_file": str(base / "rollout.yaml")}])
    result = write_patches(rows, snapshot(wl), config(resources=["../../../base"]), tmp_path / "out")
    folder = tmp_path / "out" / "c1" / "shop"
    assert sorted(p.name for p in folder.iterdir()) == ["kustomization.yaml", "rollout-checkout.yaml"]
    [doc] = kustomize(folder)
    app, proxy = doc["spec"]["template"]["spec"]["containers"]
    assert app == {"name": "app", "image": "checkout:1",
                   "resources": {"requests": {"cpu": "250m", "memory": "300Mi"}, "limits": {"memory": "300Mi"}}}
    # proxy had requests without memory: the leaf added beside its CPU request
    assert proxy == {"name": "proxy", "image": "proxy:1", "resources": {"requests": {"cpu": "20m", "memory": "64Mi"}}}
    assert doc["spec"]["strategy"] == {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}} and doc["spec"]["replicas"] == 3
    skipped = result.skipped.set_index("workload")
    assert "batch framework" in skipped.loc["daily_sales.load", "reason"]

    # from the API: the order from the snapshot's containers; proxy has no memory request yet but a CPU one
    api = wl.assign(source="api", source_file="")
    snap = snapshot(api)
    snap.tables["containers"] = pd.DataFrame([{"cluster": "c1", "namespace": "shop", "kind": "Rollout", "workload": "checkout",
                                               "container": c, "container_type": "main", "cpu_limit_cores": float("nan")}
                                              for c in ("app", "proxy")])
    write_patches(rows, snap, config(resources=["../../../base"]), tmp_path / "api")
    [doc] = kustomize(tmp_path / "api" / "c1" / "shop")
    assert [c["resources"]["requests"]["cpu"] for c in doc["spec"]["template"]["spec"]["containers"]] == ["250m", "20m"]
    # kube-state-metrics: no positions, no patch, and why
    ksm = write_patches(rows, snapshot(wl.assign(source="prometheus", source_file="")), config(), tmp_path / "ksm")
    assert not (tmp_path / "ksm" / "c1" / "shop").exists()
    assert "containers by position" in ksm.skipped.set_index("container").loc["app", "reason"]


def test_a_strategic_merge_would_replace_a_rollouts_containers(tmp_path, kubectl):
    """Why a Rollout gets JSON6902 operations: kustomize has no schema for the custom resource, so a
    strategic-merge patch naming one container replaces the whole list (image and the other container gone)."""
    from patchfixtures import kustomize

    (tmp_path / "rollout.yaml").write_text(ROLLOUT_MANIFEST)
    (tmp_path / "patch.yaml").write_text("apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: checkout, "
                                         "namespace: shop}\nspec: {template: {spec: {containers: [{name: app, resources: "
                                         "{requests: {cpu: 250m}}}]}}}\n")
    (tmp_path / "kustomization.yaml").write_text("resources: [rollout.yaml]\npatches:\n- path: patch.yaml\n")
    [doc] = kustomize(tmp_path)
    assert doc["spec"]["template"]["spec"]["containers"] == [{"name": "app", "resources": {"requests": {"cpu": "250m"}}}]
