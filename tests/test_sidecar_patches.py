"""Sidecars in patches, rendered by real kustomize: an injected proxy is sized through its injector's
annotations on the pod template (never added to a containers list), a native sidecar is patched in
initContainers; the manifests inventory, the analysis and the patch writer run as in `rightsize patch`."""
from __future__ import annotations

import dataclasses
import math

import pandas as pd
import pytest

from binaries import needs_kubectl
from patchfixtures import WINDOW, kustomize
from recommend_tables import node, usage_stats
from rightsize.api import analyze
from rightsize.analysis.injectors import mesh_summary
from rightsize.config import Config
from rightsize.emit.patches import write_patches
from rightsize.quantity import MIB
from rightsize.snapshot import Snapshot, new_meta
from rightsize.sources.aws import collect_prices
from rightsize.sources.manifests import load_manifests

BASE = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
      annotations: {sidecar.istio.io/inject: "true"}
    spec:
      initContainers:
      - name: log-shipper
        image: fluent/fluent-bit:3.0
        restartPolicy: Always
        resources: {requests: {cpu: 200m, memory: 256Mi}}
      - name: migrate
        image: example/migrate:1
        resources: {requests: {cpu: 100m, memory: 64Mi}}
      containers:
      - name: app
        image: example/web:1
        resources: {requests: {cpu: "1", memory: 1Gi}}
"""


def _usage(containers: list[tuple[str, float, float]]) -> pd.DataFrame:
    """Two weeks of steady usage per container: (name, CPU p95 cores, memory max bytes)."""
    rows = []
    for name, cpu, mem in containers:
        row = {"cluster": "prod", "namespace": "shop", "kind": "Deployment", "workload": "web", "container": name,
               **usage_stats([cpu * f for f in (0.5, 0.8, 1.0, 1.1, 1.2)], [mem * f for f in (0.7, 0.8, 0.9, 0.95, 1.0)]),
               "samples": 4032.0, "pod_samples": 12096.0, "hours_covered": 336.0, "oom_kills": 0.0, "restarts": 0.0,
               "cpu_throttled_ratio": 0.0, "pods_seen": 3.0}
        rows.append(row)
    return pd.DataFrame(rows)


@pytest.fixture
def gitops(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    (base / "web.yaml").write_text(BASE)
    (base / "kustomization.yaml").write_text("resources: [web.yaml]\n")
    config = Config()
    config = dataclasses.replace(config, general=dataclasses.replace(config.general, cluster_name="prod"),
                                 patches=dataclasses.replace(config.patches, resources=("../../../base",)))
    tables = load_manifests(base / "web.yaml", config, "prod")
    snap = Snapshot(tables=dict(tables), meta=new_meta(window_start=WINDOW[0], window_end=WINDOW[1], clusters=["prod"]))
    # the proxy Istio injects into every pod, with usage; the base never declares it
    snap.tables["nodes"] = pd.DataFrame([{**node(cluster="prod"), "region": "us-east-1", "node_group": "general"}])
    snap.tables["placement"] = pd.DataFrame([{"cluster": "prod", "namespace": "shop", "kind": "Deployment", "workload": "web",
                                              "node": "n1", "zone": "z1", "pod_hours": 3 * 336.0}])
    collect_prices(config, snap, offline=True)
    snap.tables["usage"] = _usage([("app", 0.2, 300 * MIB), ("log-shipper", 0.02, 40 * MIB), ("migrate", 0.01, 30 * MIB),
                                   ("istio-proxy", 0.03, 60 * MIB)])
    return tmp_path, snap, config


@needs_kubectl
def test_injected_proxy_becomes_annotations_and_every_rendered_container_has_an_image(gitops):
    tmp_path, snap, config = gitops
    analysis = analyze(snap, config)
    recs = analysis.recommendations.set_index("container")
    assert recs.loc["istio-proxy", "container_type"] == "injected" and recs.loc["istio-proxy", "injector"] == "istio"
    assert recs.loc["istio-proxy", "status"] == "change"
    assert math.isnan(recs.loc["istio-proxy", "usd_per_month_current"])  # its requests are the injector's: unknown, not 0
    result = write_patches(analysis.recommendations, snap, config, tmp_path / "patches")
    assert not result.warnings
    docs = kustomize(tmp_path / "patches" / "prod" / "shop")
    web = next(d for d in docs if d["kind"] == "Deployment")
    template = web["spec"]["template"]
    spec = template["spec"]
    everything = spec["containers"] + spec["initContainers"]
    assert [c["name"] for c in spec["containers"]] == ["app"]  # no istio-proxy added
    assert all(c.get("image") for c in everything)  # what a server-side dry run checks first
    ann = template["metadata"]["annotations"]
    proxy = recs.loc["istio-proxy"]
    from rightsize.quantity import format_cpu, format_memory

    assert ann["sidecar.istio.io/proxyCPU"] == format_cpu(proxy["cpu_request_cores_recommended"])
    assert ann["sidecar.istio.io/proxyMemory"] == format_memory(proxy["memory_request_bytes_recommended"])
    assert ann["sidecar.istio.io/proxyMemoryLimit"] == format_memory(proxy["memory_limit_bytes_recommended"])
    assert ann["sidecar.istio.io/inject"] == "true"  # the base's own annotation stays
    assert template["metadata"]["labels"] == {"app": "web"}


@needs_kubectl
def test_native_sidecar_is_costed_and_patched_in_init_containers(gitops):
    tmp_path, snap, config = gitops
    analysis = analyze(snap, config)
    recs = analysis.recommendations.set_index("container")
    shipper = recs.loc["log-shipper"]
    assert shipper["container_type"] == "sidecar" and shipper["status"] == "change"
    assert shipper["usd_per_month_current"] > 0  # long-running: costed like a main container
    assert recs.loc["migrate", "usd_per_month_current"] == 0  # a classic init container is not
    write_patches(analysis.recommendations, snap, config, tmp_path / "patches")
    web = next(d for d in kustomize(tmp_path / "patches" / "prod" / "shop") if d["kind"] == "Deployment")
    inits = web["spec"]["template"]["spec"]["initContainers"]
    assert [c["name"] for c in inits] == ["log-shipper", "migrate"]  # order kept
    from rightsize.quantity import parse_cpu

    assert parse_cpu(inits[0]["resources"]["requests"]["cpu"]) == pytest.approx(shipper["cpu_request_cores_recommended"])
    assert inits[0]["restartPolicy"] == "Always" and inits[0]["image"] == "fluent/fluent-bit:3.0"


def test_mesh_summary_fits_most_pods():
    rows = pd.DataFrame({
        "cluster": "c", "namespace": "ns", "kind": "Deployment", "workload": [f"w{i}" for i in range(5)],
        "container": "istio-proxy", "container_type": "injected", "injector": "istio", "status": "change",
        "replicas": [10.0, 10.0, 10.0, 1.0, 1.0],
        "cpu_request_cores_recommended": [0.05, 0.05, 0.1, 0.5, 1.0],
        "memory_request_bytes_recommended": [64 * MIB, 64 * MIB, 128 * MIB, 512 * MIB, 1024 * MIB],
        "memory_limit_bytes_recommended": [64 * MIB, 64 * MIB, 128 * MIB, 512 * MIB, 1024 * MIB],
    })
    s = mesh_summary(rows).iloc[0]
    # by pods: 20 of 32 pods need <= 50m, 30 of 32 (94 %) <= 100m: the p90 default is 100m / 128Mi
    assert (s["cpu_request_cores"], s["memory_request_bytes"]) == (0.1, 128 * MIB)
    assert (s["workloads"], s["pods"], s["workloads_above"]) == (5, 32.0, 2)


def test_repeated_notes_are_grouped_with_a_count():
    from rightsize.emit.patches_md import grouped_notes

    notes = [f"shop/Deployment/w{i}: container order unknown (no manifest or container list in the snapshot); "
             "kustomize lists the patched containers first" for i in range(102)]
    notes += ["shop/Deployment/api container app: recommended CPU request 2 is above its current CPU limit 1, which the patch keeps"]
    got = grouped_notes(notes)
    assert len(got) == 2
    assert got[0] == ("102 workloads: container order unknown (no manifest or container list in the snapshot); kustomize "
                      "lists the patched containers first (`shop/Deployment/w0`, `shop/Deployment/w1`, `shop/Deployment/w2` and 99 more)")
    assert got[1] == notes[-1]  # a note about one container keeps its words


def test_patches_md_has_the_mesh_wide_summary(gitops):
    tmp_path, snap, config = gitops
    analysis = analyze(snap, config)
    write_patches(analysis.recommendations, snap, config, tmp_path / "patches")
    md = (tmp_path / "patches" / "PATCHES.md").read_text()
    assert "## Mesh-wide proxy resources" in md
    row = next(line for line in md.splitlines() if line.startswith("| istio |"))
    assert "| 1 (3) |" in row and "values.global.proxy.resources" in row
    assert "istio-proxy (injected: annotations)" in md and "log-shipper (native sidecar)" in md
