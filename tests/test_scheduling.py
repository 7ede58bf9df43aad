"""The scheduling examples parse and point at the right things (workflow, CronJob + ConfigMap + PVC, Dockerfile)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from rightsize.config import load_config

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github/workflows/weekly-report.yml"
CRONJOB = ROOT / "deploy/cronjob.yaml"
RBAC = ROOT / "deploy/rbac.yaml"
DOCKERFILE = ROOT / "deploy/Dockerfile"


def _load_all(path: Path) -> list:
    return [d for d in YAML(typ="safe").load_all(path.read_text()) if d]


@pytest.fixture(scope="module")
def workflow() -> dict:
    return YAML(typ="safe").load(WORKFLOW.read_text())


@pytest.fixture(scope="module")
def manifests() -> dict:
    return {d["kind"]: d for d in _load_all(CRONJOB)}


def test_workflow_runs_weekly_and_publishes(workflow):
    triggers = workflow["on"]
    crons = [s["cron"] for s in triggers["schedule"]]
    assert len(crons) == 1 and len(crons[0].split()) == 5 and crons[0].split()[4] not in ("*",)  # one day a week
    assert "workflow_dispatch" in triggers
    steps = workflow["jobs"]["report"]["steps"]
    runs = "\n".join(s.get("run", "") for s in steps)
    uses = [s.get("uses", "") for s in steps]
    assert re.search(r"pip install \.", runs)
    assert re.search(r"^\s*rightsize run --config config\.toml", runs, re.M)
    assert 'report.md" >> "$GITHUB_STEP_SUMMARY"' in runs
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    week_dir = "${{ steps.week.outputs.dir }}"
    assert upload["with"]["path"] == week_dir and upload.get("if") == "always()"
    assert "date -u +%G-W%V" in runs  # the same ISO year-week folder rightsize writes
    assert any(u.startswith("actions/cache/restore") for u in uses)  # earlier weeks for week-over-week
    # the exit code (3 = threshold) fails the job only after the summary and artifact are published
    last = steps[-1]
    assert last["if"] == "steps.run.outputs.exit_code != '0'" and "exit ${{ steps.run.outputs.exit_code }}" in last["run"]
    assert workflow["permissions"] == {"contents": "read"}


def test_cronjob_uses_the_rbac_service_account(manifests):
    assert set(manifests) == {"ConfigMap", "PersistentVolumeClaim", "CronJob"}
    rbac = {d["kind"]: d for d in _load_all(RBAC)} if RBAC.exists() else {}
    job = manifests["CronJob"]
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "rightsize"
    namespaces = {d["metadata"]["namespace"] for d in manifests.values()}
    assert namespaces == {"rightsize"}
    if rbac:  # deploy/rbac.yaml (another module) defines the ServiceAccount and namespace
        assert rbac["ServiceAccount"]["metadata"]["name"] == pod["serviceAccountName"]
        assert rbac["ServiceAccount"]["metadata"]["namespace"] == "rightsize"
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    assert len(job["spec"]["schedule"].split()) == 5


def test_cronjob_mounts_config_and_reports(manifests, tmp_path):
    pod = manifests["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert volumes["config"]["configMap"]["name"] == manifests["ConfigMap"]["metadata"]["name"]
    assert volumes["reports"]["persistentVolumeClaim"]["claimName"] == manifests["PersistentVolumeClaim"]["metadata"]["name"]
    args = container["args"]
    assert args[0] == "run" and args[args.index("--config") + 1] == f"{mounts['config']}/config.toml"
    # the ConfigMap's config.toml is valid for rightsize and writes onto the PVC
    cfg = tmp_path / "config.toml"
    cfg.write_text(manifests["ConfigMap"]["data"]["config.toml"])
    config = load_config(cfg, required=True)
    assert config.report.output_dir == mounts["reports"]
    assert config.kubernetes.source == "api"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True and mounts["tmp"] == "/tmp"


def test_dockerfile_runs_rightsize_as_non_root():
    text = DOCKERFILE.read_text()
    assert re.search(r'^ENTRYPOINT \["rightsize"\]$', text, re.M)
    assert re.search(r"^USER 10001$", text, re.M)
    assert re.search(r"^FROM python:3\.11", text, re.M)
    assert "COPY rightsize ./rightsize" in text and "pyproject.toml" in text
