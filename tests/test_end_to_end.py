"""The weekly job end to end: usage from a real Prometheus, specs from manifests, offline prices,
report and patches that build with real kustomize."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from promservers import make_config, prom_dataset, prom_server  # noqa: F401
from rightsize.config import Config
from rightsize.kustomize import render

ROOT = Path(__file__).resolve().parents[1]

MANIFESTS = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: app
        image: web:1
        resources:
          requests: {cpu: "2", memory: 2Gi}
          limits: {memory: 2Gi}
      - name: envoy
        image: envoy:1
        resources:
          requests: {cpu: 100m, memory: 128Mi}
          limits: {memory: 128Mi}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: data}
spec:
  replicas: 2
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers:
      - name: postgres
        image: postgres:16
        resources:
          requests: {cpu: "1", memory: 2Gi}
          limits: {memory: 2Gi}
"""


def test_run_with_manifests_and_prometheus(prom_server, prom_dataset, kubectl, tmp_path):
    manifests = tmp_path / "manifests.yaml"
    manifests.write_text(MANIFESTS)
    end = make_config(prom_server.url, prom_dataset.end).prometheus.end
    cfg = tmp_path / "config.toml"
    cfg.write_text(f"""
[general]
cluster_name = "prod-eu"
window = "24h"
[prometheus]
url = "{prom_server.url}"
end = "{end}"
[pricing]
source = "offline"
[policies.production]
min_history = "12h"
""")
    out = tmp_path / "week"
    proc = subprocess.run([sys.executable, "-m", "rightsize.cli", "run", "--config", str(cfg), "--manifests", str(manifests),
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600)
    assert proc.returncode == 0, proc.stderr
    recs = pd.read_csv(out / "recommendations.csv")
    web = recs[(recs.workload == "web") & (recs.container == "app")].iloc[0]
    assert web.cluster == "prod-eu" and web.status == "change"
    assert web.cpu_request_cores_current == 2.0 and web.cpu_request_cores_recommended < 1.0  # usage ~0.2-0.3 cores
    assert web.savings_usd_per_month > 0
    db = recs[recs.workload == "db"].iloc[0]
    assert "oom_risk" in db["flags"]  # one db replica was OOM-killed in the generated data
    # workloads with usage but no manifest (e.g. shop/api) are named in the report, not dropped silently
    summary = json.loads((out / "summary.json").read_text())
    caveat = [w for w in summary["warnings"] if w["code"] == "usage_without_spec"]
    assert caveat and "shop/Deployment/api:api" in caveat[0]["message"]
    assert "usage but no spec" in (out / "report.md").read_text()
    # the patches point at the manifest file and build with kustomize against it
    patch = (out / "patches" / "prod-eu" / "shop" / "deployment-web.yaml").read_text()
    assert "name: web" in patch and "cpu:" in patch
    base = tmp_path / "base"
    base.mkdir()
    (base / "all.yaml").write_text(MANIFESTS)
    (base / "kustomization.yaml").write_text("resources: [all.yaml]\n")
    overlay = out / "patches" / "prod-eu" / "shop"
    kustomization = (overlay / "kustomization.yaml").read_text()
    (overlay / "kustomization.yaml").write_text(f"resources: [{os.path.relpath(base, overlay)}]\n" + kustomization)
    assert "cpu: " + web_cpu(web) in render(overlay, Config())


def web_cpu(row) -> str:
    from rightsize.quantity import format_cpu

    return format_cpu(row.cpu_request_cores_recommended)
