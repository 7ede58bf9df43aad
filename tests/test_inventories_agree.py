"""One generated cluster read both ways: the Kubernetes API inventory and the Prometheus-only
(kube-state-metrics) inventory agree on workloads, replicas and cost, also when the API forbids
listing ReplicaSets and Jobs.

Usage, placement and nodes come from a real Prometheus backfilled with tests/promdata.py's cluster.
The same cluster's objects (what exists at the end of the data: controllers, their ReplicaSets and
Jobs, the running pods, nodes, HPA, PDB) are served by the loopback STAND-IN for the Kubernetes API
server of tests/test_kubernetes_api.py (no API server runs here), read by the real `kubernetes`
client. Prices come from the bundled offline catalogue.
"""
from __future__ import annotations

import dataclasses
import math

import pandas as pd
import pytest

from promdata import NODES
from promservers import make_config, prom_dataset, prom_server  # noqa: F401
from rightsize.api import analyze
from rightsize.collect import collect
from test_kubernetes_api import StandInApiServer, _kubeconfig

pytestmark = pytest.mark.integration
KEY = ["kind", "workload"]
FORBIDDEN = ("/apis/apps/v1/replicasets", "/apis/batch/v1/jobs")
NO_HASH_LABEL = ("api",)  # these pods lack pod-template-hash, so only the Deployment's selector can claim them


def _container(c) -> dict:
    def quantities(cpu, memory):
        out = {}
        if not math.isnan(cpu):
            out["cpu"] = repr(float(cpu))
        if not math.isnan(memory):
            out["memory"] = str(int(memory))
        return out

    return {"name": c.name, "resources": {"requests": quantities(c.cpu_request, c.mem_request),
                                          "limits": quantities(c.cpu_limit, c.mem_limit)}}


def _owner(kind, name):
    return [{"apiVersion": "v1", "kind": kind, "name": name, "uid": f"u-{name}", "controller": True}]


def _template(p) -> dict:
    return {"metadata": {"labels": {"app": p.workload}}, "spec": {"containers": [_container(c) for c in p.containers]}}


def _pod(p) -> dict:
    labels = {"app": p.workload}
    if p.owner_kind == "ReplicaSet" and p.parent_kind == "Deployment" and p.workload not in NO_HASH_LABEL:
        labels["pod-template-hash"] = p.owner_name.removeprefix(p.workload + "-")
    meta = {"name": p.pod, "namespace": p.namespace, "labels": labels}
    if p.owner_kind != "<none>":
        meta["ownerReferences"] = _owner(p.owner_kind, p.owner_name)
    return {"metadata": meta, "spec": {"nodeName": p.node, **_template(p)["spec"]}, "status": {"phase": "Running"}}


def _controllers(alive) -> dict[str, list[dict]]:
    """Controllers, ReplicaSets and Jobs of the pods alive at the end, as the API lists them."""
    out: dict[str, list[dict]] = {}
    groups: dict[tuple, list] = {}
    for p in alive:
        groups.setdefault((p.namespace, p.kind, p.workload), []).append(p)
    for (ns, kind, name), pods in groups.items():
        p, n = pods[0], len(pods)
        meta = {"name": name, "namespace": ns}
        selector = {"matchLabels": {"app": name}}
        if kind == "Deployment":
            out.setdefault("/apis/apps/v1/deployments", []).append(
                {"metadata": meta, "spec": {"replicas": n, "selector": selector, "template": _template(p)}})
        elif kind == "StatefulSet":
            out.setdefault("/apis/apps/v1/statefulsets", []).append(
                {"metadata": meta, "spec": {"replicas": n, "selector": selector, "template": _template(p)}})
        elif kind == "DaemonSet":
            out.setdefault("/apis/apps/v1/daemonsets", []).append(
                {"metadata": meta, "spec": {"selector": selector, "template": _template(p)}, "status": {"desiredNumberScheduled": n}})
        elif kind == "CronJob":
            out.setdefault("/apis/batch/v1/cronjobs", []).append(
                {"metadata": meta, "spec": {"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": _template(p)}}}})
        if p.owner_kind == "ReplicaSet":
            rs_meta = {"name": p.owner_name, "namespace": ns}
            if p.parent_kind == "Deployment":
                rs_meta["ownerReferences"] = _owner("Deployment", name)
            out.setdefault("/apis/apps/v1/replicasets", []).append(
                {"metadata": rs_meta, "spec": {"replicas": n, "selector": selector, "template": _template(p)}})
        if p.owner_kind == "Job":
            job_meta = {"name": p.owner_name, "namespace": ns}
            if p.parent_kind == "CronJob":
                job_meta["ownerReferences"] = _owner("CronJob", name)
            out.setdefault("/apis/batch/v1/jobs", []).append({"metadata": job_meta, "spec": {"template": _template(p)}})
    return out


def api_items(dataset) -> dict[str, list[dict]]:
    """Every list the API serves for the generated cluster (path -> items)."""
    alive = [p for p in dataset.pods if p.end == -1]
    items = {path: [] for path in ("/apis/apps/v1/deployments", "/apis/apps/v1/statefulsets", "/apis/apps/v1/daemonsets",
                                   "/apis/apps/v1/replicasets", "/apis/batch/v1/cronjobs", "/apis/batch/v1/jobs",
                                   "/api/v1/services")}
    items.update(_controllers(alive))
    items["/api/v1/pods"] = [_pod(p) for p in alive]
    items["/api/v1/namespaces"] = [{"metadata": {"name": ns}} for ns in sorted({p.namespace for p in dataset.pods})]
    items["/api/v1/nodes"] = [{"metadata": {"name": n["node"], "labels": {
        "node.kubernetes.io/instance-type": n["instance_type"], "topology.kubernetes.io/zone": n["zone"],
        "topology.kubernetes.io/region": n["region"]}},
        "status": {"allocatable": {"cpu": str(n["cpu"]), "memory": str(n["memory"])}}} for n in NODES]
    items["/apis/autoscaling/v2/horizontalpodautoscalers"] = [
        {"metadata": {"name": "web", "namespace": "shop"},
         "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 2, "maxReplicas": 6,
                  "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]}}]
    items["/apis/policy/v1/poddisruptionbudgets"] = [
        {"metadata": {"name": "db", "namespace": "data"}, "spec": {"selector": {"matchLabels": {"app": "db"}}, "minAvailable": 1}}]
    return items


def _config(url, end, source, kubeconfig=""):
    c = make_config(url, end)
    return dataclasses.replace(
        c, kubernetes=dataclasses.replace(c.kubernetes, source=source, kubeconfig=kubeconfig, backoff=0.0, page_size=50),
        pricing=dataclasses.replace(c.pricing, source="offline"))


def per_workload(snapshot, config) -> pd.DataFrame:
    recs = analyze(snapshot, config).recommendations
    return recs.groupby(KEY).agg(replicas=("replicas", "first"), usd=("usd_per_month_current", "sum"))


@pytest.fixture(scope="module")
def prometheus_only(prom_server, prom_dataset):
    config = _config(prom_server.url, prom_dataset.end, "prometheus")
    snap = collect(config, log=lambda m: None)
    return per_workload(snap, config)


@pytest.mark.parametrize("forbidden", [(), FORBIDDEN], ids=["all-listed", "replicasets-and-jobs-forbidden"])
def test_api_and_prometheus_only_inventories_agree(prom_server, prom_dataset, prometheus_only, forbidden, tmp_path):
    with StandInApiServer(forbidden=forbidden, fail_once=(), items=api_items(prom_dataset)) as server:
        config = _config(prom_server.url, prom_dataset.end, "api", _kubeconfig(tmp_path, server.url))
        snap = collect(config, context="test-ctx", log=lambda m: None)
    api = per_workload(snap, config)

    # the same workloads: no pod became a second "ReplicaSet" or "Job" workload beside its controller
    assert sorted(api.index) == sorted(prometheus_only.index)
    joined = api.merge(prometheus_only, left_index=True, right_index=True, suffixes=("", "_prom"))
    assert joined["replicas"].to_numpy() == pytest.approx(joined["replicas_prom"].to_numpy(), rel=0.01)
    assert joined["usd"].to_numpy() == pytest.approx(joined["usd_prom"].to_numpy(), rel=0.01)
    assert api["usd"].sum() == pytest.approx(prometheus_only["usd"].sum(), rel=0.01)
    # batch work is costed at the pods it ran, from either inventory (the CronJob's pod ran the whole window)
    assert api.loc[("CronJob", "report"), "replicas"] == pytest.approx(1.0, abs=0.02)

    wl = snap.tables["workloads"].set_index(KEY)
    if forbidden:
        assert wl.loc[("Deployment", "web"), "resolved_by"] == "pod-template-hash"
        assert wl.loc[("Deployment", "api"), "resolved_by"] == "selector"
        assert wl.loc[("CronJob", "report"), "resolved_by"] == "job name"
        codes = {w["code"] for w in snap.meta["warnings"]}
        assert {"kubernetes_forbidden", "owners_inferred"} <= codes
    else:
        assert (wl["resolved_by"] == "").all()
