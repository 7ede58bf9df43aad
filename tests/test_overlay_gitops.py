"""`rightsize patch --overlay` run inside a GitOps repository (git, base/ and overlays/prod/ over two
namespaces holding workloads of the same name): only the overlay's files change, nothing else appears in
the repository (no lock, no reports/), PATCHES.md and the render diff go beside the snapshot, and a
second run says the overlay is unchanged. Real git, real kustomize, the CLI as a user runs it."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from binaries import needs_kubectl
from patchfixtures import WINDOW, kustomize
from recommend_tables import node, usage_stats
from rightsize.config import Config
from rightsize.quantity import MIB
from rightsize.snapshot import Snapshot, new_meta
from rightsize.sources.aws import collect_prices
from rightsize.sources.manifests import load_manifests

ROOT = Path(__file__).resolve().parents[1]


def _deployment(ns: str) -> str:
    return f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: catalog, namespace: {ns}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: catalog}}}}
  template:
    metadata: {{labels: {{app: catalog}}}}
    spec:
      containers:
      - name: app
        image: example/catalog:1
        resources: {{requests: {{cpu: "1", memory: 1Gi}}}}
"""


def _git(repo, *args) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def _cli(cwd, *args):
    return subprocess.run([sys.executable, "-m", "rightsize.cli", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=300, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
                                                                       "HOME": str(cwd), "TMPDIR": str(Path(cwd).parent / "tmp")})


@pytest.fixture
def gitops(tmp_path):
    repo = tmp_path / "gitops"
    (repo / "base").mkdir(parents=True)
    for ns in ("shop", "staging"):
        (repo / "base" / f"catalog-{ns}.yaml").write_text(_deployment(ns))
    (repo / "base" / "kustomization.yaml").write_text("resources: [catalog-shop.yaml, catalog-staging.yaml]\n")
    (repo / "overlays" / "prod").mkdir(parents=True)
    (repo / "overlays" / "prod" / "kustomization.yaml").write_text("# prod\nresources:\n- ../../base\n")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "-m", "init")
    (tmp_path / "tmp").mkdir()
    # last week's snapshot, elsewhere (as `rightsize collect` wrote it)
    config = Config()
    tables = load_manifests(repo / "base", config, "default")
    snap = Snapshot(tables=dict(tables), meta=new_meta(window_start=WINDOW[0], window_end=WINDOW[1], clusters=["default"]))
    snap.tables["usage"] = pd.DataFrame([{"cluster": "default", "namespace": ns, "kind": "Deployment", "workload": "catalog",
                                          "container": "app", **usage_stats([0.1, 0.15, 0.2, 0.25, 0.3], [200 * MIB] * 5),
                                          "samples": 4032.0, "hours_covered": 336.0, "oom_kills": 0.0, "restarts": 0.0,
                                          "cpu_throttled_ratio": 0.0, "pods_seen": 2.0} for ns in ("shop", "staging")])
    snap.tables["nodes"] = pd.DataFrame([{**node(cluster="default"), "region": "us-east-1"}])
    collect_prices(config, snap, offline=True)
    week = tmp_path / "reports" / "2026-W46"
    snap.write(week / "snapshot")
    return repo, week


@needs_kubectl
def test_overlay_over_two_namespaces_changes_only_the_overlay(gitops):
    repo, week = gitops
    proc = _cli(repo, "patch", "--snapshot", week / "snapshot", "--overlay", "overlays/prod")
    assert proc.returncode == 0, proc.stderr
    status = _git(repo, "status", "--porcelain", "--untracked-files=all").splitlines()
    assert sorted(line[3:] for line in status) == ["overlays/prod/kustomization.yaml",
                                                  "overlays/prod/rightsize/shop-deployment-catalog.yaml",
                                                  "overlays/prod/rightsize/staging-deployment-catalog.yaml"]
    assert not list(repo.rglob("*.lock")) and not (repo / "reports").exists()
    md, diff = week / "patches" / "PATCHES.md", week / "patches" / "overlay.diff"
    assert md.is_file() and "catalog" in md.read_text()
    assert diff.read_text().strip() == proc.stdout.strip() and "+            cpu: " in diff.read_text()
    assert not list((week.parent).glob("*.lock")) and not list(week.glob(".*.lock"))
    assert "overlay overlays/prod updated (3 files written, 0 removed)" in proc.stderr
    rendered = {d["metadata"]["namespace"]: d for d in kustomize(repo / "overlays" / "prod")}
    for ns in ("shop", "staging"):
        req = rendered[ns]["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]
        assert req["cpu"] != "1" and req["memory"] != "1Gi"

    again = _cli(repo, "patch", "--snapshot", week / "snapshot", "--overlay", "overlays/prod")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "(the rendered overlay does not change)"
    assert "overlay overlays/prod unchanged (its rightsize patches already say this)" in again.stderr
    assert "updated" not in again.stderr
    assert sorted(_git(repo, "status", "--porcelain", "--untracked-files=all").splitlines()) == sorted(status)


@needs_kubectl
def test_a_failed_overlay_run_leaves_the_repository_as_it_was(gitops):
    repo, week = gitops
    (repo / "overlays" / "empty").mkdir()
    (repo / "overlays" / "empty" / "kustomization.yaml").write_text("resources: []\n")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "-m", "empty overlay")
    proc = _cli(repo, "patch", "--snapshot", week / "snapshot", "--overlay", "overlays/empty")
    assert proc.returncode == 1 and "the overlay renders none of the 2 workloads" in proc.stderr
    assert _git(repo, "status", "--porcelain", "--untracked-files=all") == ""
    assert not list((repo.parent / "tmp").rglob("*.lock"))
