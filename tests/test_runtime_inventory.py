"""The runtimes table from both spec inventories (manifests, the Kubernetes API through the real client), its
caveats, and the runtime tables through a snapshot's write and read."""
from __future__ import annotations

import json
import math

import pandas as pd

from rightsize.config import Config
from rightsize.snapshot import Snapshot
from rightsize.sources.kubernetes import collect_inventory
from rightsize.sources.manifests import load_manifests
from rightsize.targets import ClusterTarget
from test_kubernetes_api import ITEMS, StandInApiServer, _config, _kubeconfig

MIB, GIB = 2**20, 2**30

MANIFESTS = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: orders, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: orders}}
  template:
    metadata: {labels: {app: orders}}
    spec:
      containers:
      - name: app
        image: eclipse-temurin:21-jre
        env:
        - {name: JAVA_TOOL_OPTIONS, value: "-XX:+UseG1GC -Xmx2g -Xms2g"}
        resources: {requests: {memory: 2560Mi}, limits: {memory: 2560Mi}}
      - name: proxy
        image: envoyproxy/envoy:v1.30
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: gateway, namespace: shop}
spec:
  selector: {matchLabels: {app: gateway}}
  template:
    metadata: {labels: {app: gateway}}
    spec:
      containers:
      - name: app
        image: registry.example/gateway:3
        env:
        - {name: GOMEMLIMIT, value: 1800MB}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: report, namespace: shop}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
          - name: report
            image: node:20-alpine
            command: [node, report.js]
            env:
            - name: NODE_OPTIONS
              valueFrom: {configMapKeyRef: {name: report-config, key: node-options}}
"""


def test_manifests_give_one_row_per_runtime_container_with_its_caveats(tmp_path):
    (tmp_path / "all.yaml").write_text(MANIFESTS)
    notes: list = []
    tables = load_manifests(tmp_path, Config(), "c1", warnings=notes)
    rt = tables["runtimes"].set_index(["workload", "container"])
    assert sorted(rt.index) == [("gateway", "app"), ("orders", "app"), ("report", "report")]  # envoy: no runtime
    orders = rt.loc[("orders", "app")]
    assert (orders["cluster"], orders["kind"], orders["runtime"], orders["memory_setting_bytes"], orders["initial_heap_bytes"]) == (
        "c1", "Deployment", "jvm", 2 * GIB, 2 * GIB)
    assert json.loads(orders["env_json"]) == {"JAVA_TOOL_OPTIONS": "-XX:+UseG1GC -Xmx2g -Xms2g"}
    gateway = rt.loc[("gateway", "app")]
    assert gateway["runtime"] == "go" and math.isnan(gateway["memory_setting_bytes"])
    assert rt.loc[("report", "report")]["uncertain"] == "env NODE_OPTIONS (valueFrom configMapKeyRef report-config/node-options)"
    codes = {n["code"]: n["message"] for n in notes}
    assert "GOMEMLIMIT='1800MB' is not a byte count Go reads" in codes["runtime_setting_malformed"]
    assert codes["runtime_setting_malformed"].startswith("1 container(s) have a runtime memory setting that does not parse")
    assert "shop/CronJob/report:report" in codes["runtime_setting_unknown"]


def test_the_api_inventory_reads_the_same_settings_through_the_real_client(tmp_path):
    template = {"metadata": {"labels": {"app": "api"}}, "spec": {"containers": [{
        "name": "app", "image": "amazoncorretto:21", "command": ["java", "-XX:MaxRAMPercentage=75.0", "-jar", "/app.jar"],
        "env": [{"name": "JAVA_TOOL_OPTIONS", "valueFrom": {"secretKeyRef": {"name": "jvm", "key": "opts"}}}]}]}}
    items = {**{path: [] for path in ITEMS}, "/apis/apps/v1/deployments": [
        {"metadata": {"name": "api", "namespace": "shop"},
         "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "api"}}, "template": template}}]}
    with StandInApiServer(items=items, forbidden=(), fail_once=()) as server:
        snap = Snapshot()
        collect_inventory(_config(_kubeconfig(tmp_path, server.url)), ClusterTarget(name="prod", prometheus_url="",
                                                                                    context="test-ctx"), snap)
    [row] = snap.tables["runtimes"].to_dict("records")
    assert (row["cluster"], row["workload"], row["memory_setting"], row["memory_setting_percent"], row["memory_setting_where"]) == (
        "prod", "api", "-XX:MaxRAMPercentage", 75.0, "command[1]")
    # a secret's JAVA_TOOL_OPTIONS could hold an -Xmx, which beats the percentage: said, never guessed
    assert row["uncertain"] == "env JAVA_TOOL_OPTIONS (valueFrom secretKeyRef jvm/opts)"
    assert any(w["code"] == "runtime_setting_unknown" for w in snap.meta["warnings"])


def test_runtime_tables_survive_a_snapshot_write_and_read(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "all.yaml").write_text(MANIFESTS)
    snap = Snapshot()
    snap.tables["runtimes"] = load_manifests(tmp_path / "m", Config(), "c1")["runtimes"]
    key = {"cluster": "c1", "namespace": "shop", "kind": "Deployment", "workload": "orders", "container": "app"}
    snap.tables["runtime_hourly"] = pd.DataFrame([{**key, "pod": "orders-1", "runtime": "jvm", "hour": pd.Timestamp("2026-11-16T10:00Z"),
                                                   "heap_used_min_bytes": 600.0 * MIB, "heap_used_max_bytes": 1.9 * GIB,
                                                   "heap_committed_max_bytes": 2.0 * GIB, "runtime_max_bytes": 2.0 * GIB,
                                                   "live_set_max_bytes": 512.0 * MIB, "non_heap_max_bytes": -3.0 * MIB,
                                                   "non_heap_pools_max_bytes": 160.0 * MIB}])
    snap.write(tmp_path / "snap")
    back = Snapshot.read(tmp_path / "snap")
    pd.testing.assert_frame_equal(back.tables["runtimes"], snap.validate().tables["runtimes"])
    assert back.tables["runtime_hourly"]["non_heap_max_bytes"].tolist() == [-3.0 * MIB]  # committed but untouched heap
