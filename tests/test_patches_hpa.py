"""Patches for HPA co-adjustment (an HPA target patch beside the workload's) and one-off Jobs (no patch)."""
from __future__ import annotations

import pandas as pd
import pytest
from ruamel.yaml import YAML

from binaries import needs_kubectl
from patchfixtures import by_id, config, container, kustomize, rec, recs, snapshot
from rightsize.analysis.summary import change_savings, one_off_job_savings
from rightsize.config import Config
from rightsize.emit.patch_model import ONE_OFF_JOB
from rightsize.emit.patches import write_patches
from rightsize.kustomize import KustomizeError, render
from rightsize.sources.k8s_fields import hpa_summary


DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: app
        image: web:1
        resources: {requests: {cpu: 500m, memory: 512Mi}}
"""
HPA = """\
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web-scaler, namespace: shop}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 2
  maxReplicas: 10
  metrics:
  - type: External
    external:
      metric: {name: queue_depth}
      target: {type: AverageValue, averageValue: "30"}
  - type: Resource
    resource:
      name: cpu
      target: {type: Utilization, averageUtilization: {cpu_target}}
"""


def _hpa_row(**kw) -> dict:
    # 40% of 500m: the HPA scales out at 200m per pod. Request 230m, target 40 x 500 / 230 = 86.96 -> 87%:
    # 87% x 230m = 200.1m per pod, the same scaling point.
    row = rec("shop", "Deployment", "web", "app", cpu=("500m", "230m"), memory=("512Mi", "512Mi"), flags="hpa", **kw)
    row.update(hpa_cpu_target_percent_current=40.0, hpa_cpu_target_percent_recommended=87.0)
    return row


def _base(tmp_path, cpu_target: int = 40):
    base = tmp_path / "base"
    base.mkdir()
    (base / "web.yaml").write_text(DEPLOYMENT)
    (base / "hpa.yaml").write_text(HPA.replace("{cpu_target}", str(cpu_target)))
    (base / "kustomization.yaml").write_text("resources:\n- web.yaml\n- hpa.yaml\n")
    return base


def _snapshot_from(base):
    """Workload facts as the manifests source records them: the HPA's name and target path from hpa_summary."""
    facts = hpa_summary(YAML(typ="safe", pure=True).load((base / "hpa.yaml").read_text()))
    assert facts["hpa_cpu_target_path"] == "/spec/metrics/1/resource/target/averageUtilization"
    return snapshot(pd.DataFrame([{"cluster": "c1", "namespace": "shop", "kind": "Deployment", "workload": "web",
                                   "source": "manifests", "source_file": str(base / "web.yaml"), **facts}]))


@needs_kubectl
def test_hpa_target_moves_with_the_request_and_builds(tmp_path):
    base = _base(tmp_path)
    out = tmp_path / "patches"
    result = write_patches(recs(_hpa_row()), _snapshot_from(base), config(resources=["../../../base"]), out)
    folder = out / "c1" / "shop"
    assert sorted(p.name for p in folder.iterdir()) == ["deployment-web.yaml", "hpa-web-scaler.yaml", "kustomization.yaml"]
    ops = YAML(typ="safe", pure=True).load((folder / "hpa-web-scaler.yaml").read_text())
    path = "/spec/metrics/1/resource/target/averageUtilization"
    assert ops == [{"op": "test", "path": path, "value": 40}, {"op": "replace", "path": path, "value": 87}]
    assert "cpu 40% -> 87%" in (folder / "hpa-web-scaler.yaml").read_text()
    assert "`c1/shop/hpa-web-scaler.yaml`" in (out / "PATCHES.md").read_text()
    assert not result.notes

    after = by_id(kustomize(folder))
    hpa = after[("HorizontalPodAutoscaler", "shop", "web-scaler")]
    assert hpa["spec"]["metrics"][1]["resource"]["target"]["averageUtilization"] == 87
    assert hpa["spec"]["metrics"][0] == {"type": "External", "external": {
        "metric": {"name": "queue_depth"}, "target": {"type": "AverageValue", "averageValue": "30"}}}
    assert container(after[("Deployment", "shop", "web")], "app")["resources"]["requests"]["cpu"] == "230m"


@needs_kubectl
def test_hpa_patch_fails_the_build_when_the_hpa_changed_since_the_snapshot(tmp_path):
    base = _base(tmp_path)
    snap = _snapshot_from(base)
    (base / "hpa.yaml").write_text(HPA.replace("{cpu_target}", "55"))  # someone moved the target meanwhile
    out = tmp_path / "patches"
    write_patches(recs(_hpa_row()), snap, config(resources=["../../../base"]), out)
    with pytest.raises(KustomizeError, match="averageUtilization failed: test failed"):
        render(out / "c1" / "shop", Config())


def test_hpa_without_a_known_name_is_left_to_a_person(tmp_path):
    s = snapshot(pd.DataFrame([{"cluster": "c1", "namespace": "shop", "kind": "Deployment", "workload": "web",
                                "source": "prometheus", "source_file": ""}]))
    result = write_patches(recs(_hpa_row()), s, config(), tmp_path / "p")
    assert not (tmp_path / "p" / "c1" / "shop" / "hpa-web-scaler.yaml").exists()
    assert any("set its HPA's target cpu utilization 40% → 87%" in n for n in result.notes)
    assert "set its HPA's target cpu utilization 40% → 87%" in (tmp_path / "p" / "PATCHES.md").read_text()


def test_one_off_jobs_get_no_patch_and_no_saving_in_the_total(tmp_path):
    rows = recs(rec("data", "Job", "backfill-2026-11", "backfill", cpu=("4", "1.3"), memory=("6Gi", "2500Mi"),
                    flags="low_confidence,one_off_job", savings=80.0),
                rec("data", "CronJob", "nightly", "report", savings=12.5))
    result = write_patches(rows, snapshot(), config(), tmp_path / "p")
    assert list(result.patched["workload"]) == ["nightly"]
    skipped = result.skipped.set_index("workload")
    assert skipped.loc["backfill-2026-11", "reason"] == ONE_OFF_JOB
    md = (tmp_path / "p" / "PATCHES.md").read_text()
    assert "| c1: data/Job/backfill-2026-11 | backfill | change | one-off Job: its pod template is immutable" in md
    # totals: the CronJob's 12.50 counts, the Job's 80.00 is shown apart ("for the next run")
    assert change_savings(rows).sum() == 12.5
    assert one_off_job_savings(rows) == 80.0
