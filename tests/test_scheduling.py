"""The scheduling examples parse and point at the right things (workflow, CronJob + ConfigMap + PVC, Dockerfile)."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from rightsize.config import load_config
from rightsize.quantity import parse_memory

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github/workflows/weekly-report.yml"
CRONJOB = ROOT / "deploy/cronjob.yaml"
RBAC = ROOT / "deploy/rbac.yaml"
DOCKERFILE = ROOT / "deploy/Dockerfile"
READER = ROOT / "deploy/report-reader.yaml"
PVC = ROOT / "deploy/reports-pvc.yaml"
FLEET = ROOT / "deploy/fleet-cronjob.yaml"


def _load_all(path: Path) -> list:
    return [d for d in YAML(typ="safe").load_all(path.read_text()) if d]


@pytest.fixture(scope="module")
def workflow() -> dict:
    return YAML(typ="safe").load(WORKFLOW.read_text())


@pytest.fixture(scope="module")
def manifests() -> dict:
    return {d["kind"]: d for d in _load_all(CRONJOB)}


def _steps(workflow, job="report"):
    return workflow["jobs"][job]["steps"]


def _step(workflow, name, job="report"):
    return next(s for s in _steps(workflow, job) if s.get("name") == name)


def test_workflow_runs_weekly_and_publishes(workflow):
    triggers = workflow["on"]
    crons = [s["cron"] for s in triggers["schedule"]]
    assert len(crons) == 1 and len(crons[0].split()) == 5 and crons[0].split()[4] not in ("*",)  # one day a week
    assert "workflow_dispatch" in triggers
    steps = _steps(workflow)
    runs = "\n".join(s.get("run", "") for s in steps)
    assert re.search(r"pip install \.", runs)
    assert re.search(r'^\s*rightsize run --config "\$RIGHTSIZE_CONFIG_FILE" --out "\$OUT"', runs, re.M)
    assert 'cat "$OUT/report.md" >> "$GITHUB_STEP_SUMMARY"' in runs
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["with"]["path"] == "${{ steps.week.outputs.dir }}" and upload.get("if") == "always()"
    assert upload["with"]["name"] == "rightsize-report" and upload["with"]["retention-days"] >= 14
    assert "date -u +%G-W%V" in runs  # the same ISO year-week folder rightsize writes
    # the exit code (3 = threshold) fails the job only after the summary and artifact are published
    last = steps[-1]
    assert last["if"] == "steps.run.outputs.exit_code != '0'" and last["run"] == 'exit "$CODE"'
    assert steps.index(upload) < len(steps) - 1


def test_workflow_takes_the_url_from_repository_settings_and_says_when_missing(workflow, tmp_path):
    """The Configuration step writes the config from RIGHTSIZE_CONFIG or RIGHTSIZE_PROMETHEUS_URL, and fails
    with an ::error:: naming the variable when neither is set (run here with bash, as the runner would)."""
    import os
    import subprocess

    step = _step(workflow, "Configuration")
    assert step["env"] == {"CONFIG_TEXT": "${{ vars.RIGHTSIZE_CONFIG }}", "PROMETHEUS_URL": "${{ vars.RIGHTSIZE_PROMETHEUS_URL }}"}
    script = step["run"].replace("rightsize config", f"{sys.executable} -m rightsize.cli config")

    def run(**env):
        (tmp_path / "env").write_text("")
        base = {"PATH": os.environ["PATH"], "RUNNER_TEMP": str(tmp_path), "GITHUB_ENV": str(tmp_path / "env"),
                "PYTHONPATH": str(ROOT)}
        return subprocess.run(["bash", "-e", "-c", script], env={**base, **env}, capture_output=True, text=True)

    missing = run(CONFIG_TEXT="", PROMETHEUS_URL="")
    assert missing.returncode == 1
    assert "::error title=rightsize is not configured::Set the repository variable RIGHTSIZE_PROMETHEUS_URL" in missing.stdout
    ok = run(CONFIG_TEXT="", PROMETHEUS_URL="https://prometheus.example.internal")
    assert ok.returncode == 0, ok.stderr
    written = (tmp_path / "rightsize" / "config.toml")
    assert load_config(written, required=True).prometheus.url == "https://prometheus.example.internal"
    assert (tmp_path / "env").read_text() == f"RIGHTSIZE_CONFIG_FILE={written}\n"
    bad = run(CONFIG_TEXT="[prometheus]\nurll = 1\n", PROMETHEUS_URL="")
    assert bad.returncode == 2 and "urll" in bad.stderr  # a broken config fails before any query


def test_workflow_history_comes_from_the_previous_artifact_not_the_cache(workflow):
    uses = [s.get("uses", "") for job in workflow["jobs"].values() for s in job["steps"]]
    assert not any(u.startswith("actions/cache") for u in uses)
    step = _step(workflow, "Last week's report (for week-over-week)")
    assert "gh run download" in step["run"] and "--name rightsize-report" in step["run"]
    assert '--dir "reports/$prev"' in step["run"]  # beside this week's folder: found as the previous week
    assert workflow["jobs"]["report"]["permissions"] == {"contents": "read", "actions": "read"}


def test_workflow_tokens_only_where_needed(workflow):
    """No token at workflow or job level; the Prometheus token only in the run step, the GitHub token only in
    the steps that call gh; checkout leaves no credentials behind; write access only in the PR job."""
    assert workflow["permissions"] == {}
    for name, job in workflow["jobs"].items():
        assert "secrets." not in str(job.get("env", {})) and "token" not in str(job.get("env", {})).lower(), name
        for s in job["steps"]:
            if s.get("uses", "").startswith("actions/checkout"):
                assert s["with"]["persist-credentials"] is False
            text = str(s.get("env", {}))
            if "secrets." in text or "github.token" in text:
                assert s["name"] in ("rightsize run", "Last week's report (for week-over-week)",
                                     "Open or update the pull request"), s["name"]
    assert "RIGHTSIZE_PROMETHEUS_TOKEN" in _step(workflow, "rightsize run")["env"]


def test_workflow_opens_a_pull_request_with_the_patches(workflow):
    job = workflow["jobs"]["pull-request"]
    assert job["needs"] == "report" and "vars.RIGHTSIZE_OPEN_PR == 'true'" in job["if"]
    assert job["permissions"] == {"contents": "write", "pull-requests": "write"}
    step = _step(workflow, "Open or update the pull request", "pull-request")
    assert step["env"]["GH_TOKEN"] == "${{ secrets.RIGHTSIZE_PR_TOKEN || github.token }}"
    script = step["run"]
    assert '--body-file "$PATCHES_PATH/PATCHES.md"' in script and "gh pr create" in script and "gh pr edit" in script
    assert 'cp -R "$REPORT/patches/." "$PATCHES_PATH/"' in script


def test_cronjob_does_not_retry_findings_and_has_requests(manifests):
    job = manifests["CronJob"]["spec"]["jobTemplate"]["spec"]
    rules = job["podFailurePolicy"]["rules"]
    fail = next(r for r in rules if r["action"] == "FailJob")
    assert fail["onExitCodes"] == {"containerName": "rightsize", "operator": "In", "values": [2, 3, 4]}
    assert {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]} in rules
    pod = job["template"]["spec"]
    assert pod["restartPolicy"] == "Never"  # podFailurePolicy requires it
    (container,) = pod["containers"]
    requests, limits = container["resources"]["requests"], container["resources"]["limits"]
    assert set(requests) >= {"cpu", "memory", "ephemeral-storage"} and "memory" in limits
    assert parse_memory(limits["memory"]) >= parse_memory(requests["memory"]) >= 650 * 2**20  # README: 646 MiB at 21,000


def test_reports_on_a_volume_can_be_read_with_a_reader_pod():
    (reader,) = _load_all(READER)
    (pvc,) = _load_all(PVC)
    assert reader["kind"] == "Pod" and reader["metadata"]["namespace"] == "rightsize" == pvc["metadata"]["namespace"]
    claim = reader["spec"]["volumes"][0]["persistentVolumeClaim"]
    assert claim["claimName"] == pvc["metadata"]["name"] and claim["readOnly"] is True
    (container,) = reader["spec"]["containers"]
    assert container["volumeMounts"][0]["mountPath"] == "/reports" and container["volumeMounts"][0]["readOnly"] is True
    assert "kubectl -n rightsize cp rightsize-report-reader:/reports/" in READER.read_text()
    assert reader["spec"]["activeDeadlineSeconds"] <= 3600


def test_cronjob_uses_the_rbac_service_account(manifests):
    assert set(manifests) == {"ConfigMap", "CronJob"}
    rbac = {d["kind"]: d for d in _load_all(RBAC)} if RBAC.exists() else {}
    job = manifests["CronJob"]
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "rightsize"
    namespaces = {d["metadata"]["namespace"] for d in manifests.values()}
    assert namespaces == {"rightsize"}
    if rbac:  # deploy/rbac.yaml (another module) defines the ServiceAccount and namespace
        assert rbac["ServiceAccount"]["metadata"]["name"] == pod["serviceAccountName"]
        assert rbac["ServiceAccount"]["metadata"]["namespace"] == "rightsize"
        role = rbac["ServiceAccount"]["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]  # IRSA
        assert re.fullmatch(r"arn:aws:iam::\d{12}:role/rightsize", role)
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    assert len(job["spec"]["schedule"].split()) == 5


def test_cronjob_reads_amp_and_writes_its_week_to_s3(manifests, tmp_path):
    import datetime as dt

    from rightsize.emit.report import default_report_dir
    from rightsize.s3 import S3Path
    from rightsize.sources.prometheus.sigv4 import region_of

    pod = manifests["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert volumes["config"]["configMap"]["name"] == manifests["ConfigMap"]["metadata"]["name"]
    assert not [v for v in volumes.values() if "persistentVolumeClaim" in v]  # S3, no volume to share
    args = container["args"]
    assert args[0] == "run" and args[args.index("--config") + 1] == f"{mounts['config']}/config.toml"
    # the ConfigMap's config.toml is valid for rightsize, signs for AMP and writes one folder per cluster and week
    cfg = tmp_path / "config.toml"
    cfg.write_text(manifests["ConfigMap"]["data"]["config.toml"])
    config = load_config(cfg, required=True)
    assert config.prometheus.auth == "sigv4" and region_of(config.prometheus.url, config.prometheus.region, None) == "eu-west-1"
    out = default_report_dir(config, dt.datetime(2026, 11, 23, 6, tzinfo=dt.timezone.utc))
    assert isinstance(out, S3Path) and str(out) == "s3://my-rightsize-reports/rightsize/2026-W48/production"
    assert config.kubernetes.source == "api"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True and mounts["tmp"] == "/tmp"


def _stages(text: str) -> list[dict]:
    """The Dockerfile's stages: {"from", "name", "steps": [(INSTRUCTION, arguments)]}, continuations joined."""
    stages: list[dict] = []
    for line in re.sub(r"\\\n", " ", text).splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        instruction, _, args = line.strip().partition(" ")
        if instruction.upper() == "FROM":
            image, _, name = args.partition(" AS ")
            stages.append({"from": image.strip(), "name": name.strip(), "steps": []})
        else:
            stages[-1]["steps"].append((instruction.upper(), args.strip()))
    return stages


def test_dockerfile_builds_an_image_that_runs_rightsize_as_non_root(tmp_path):
    """No container engine runs here, so the Dockerfile's build stage is replayed on the files it copies: they
    must be enough to build the wheel (readme, package data), whose console script is the ENTRYPOINT; the final
    stage installs that wheel and then switches to a non-root user it created."""
    import importlib.util
    import json
    import shutil
    import subprocess
    import tomllib
    import zipfile

    from packaging.specifiers import SpecifierSet

    from binaries import need_binary

    build, final = _stages(DOCKERFILE.read_text())
    requires = SpecifierSet(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"])
    for stage in (build, final):
        assert re.match(r"python:(\d+\.\d+)", stage["from"]).group(1) in requires, stage["from"]
    context = tmp_path / "src"  # the build stage's WORKDIR
    context.mkdir()
    wheel_dir = None
    for instruction, args in build["steps"]:
        if instruction == "COPY":
            *sources, dest = args.split()
            for source in sources:
                target = context / dest / (source if dest.endswith("/") else "")
                if (ROOT / source).is_dir():
                    shutil.copytree(ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy(ROOT / source, target)
        elif instruction == "RUN":
            assert "pip wheel" in args and args.split()[-1] == "."
            wheel_dir = args.split("--wheel-dir")[1].split()[0]
    assert wheel_dir, "the build stage builds no wheel"
    # this interpreter's pip, else the one on PATH (scripts/test's lowest-versions venv has none of its own)
    pip = [sys.executable, "-m", "pip"] if importlib.util.find_spec("pip") else [need_binary("pip", "python3 -m ensurepip")]
    built = subprocess.run(pip + ["wheel", "-q", "--no-deps", "--wheel-dir", str(tmp_path / "w"), str(context)],
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "w").glob("rightsize-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        scripts = z.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    package = {str(p.relative_to(ROOT)) for p in (ROOT / "rightsize").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    assert package <= names, f"missing from the image's wheel: {sorted(package - names)}"
    steps = final["steps"]
    entrypoint = json.loads(next(a for i, a in steps if i == "ENTRYPOINT"))
    assert re.search(rf"^{re.escape(entrypoint[0])} = rightsize\.__main__:program$", scripts, re.M)
    assert f"COPY --from={build['name']} {wheel_dir} {wheel_dir}" in [f"{i} {a}" for i, a in steps]
    users = [i for i, (instruction, _) in enumerate(steps) if instruction == "USER"]
    uid = steps[users[-1]][1]
    assert uid.isdigit() and int(uid) > 0  # numeric, so runAsNonRoot can verify it
    runs = [a for i, a in steps if i == "RUN"]
    assert any(re.search(rf"useradd .*--uid {uid}\b", a) for a in runs)
    assert any("pip install" in a and wheel_dir in a for a in runs)
    assert all(i < users[-1] for i, (instruction, _) in enumerate(steps) if instruction == "RUN")  # installed as root, run as the user


def test_fleet_cronjob_merges_this_weeks_folder(manifests, tmp_path):
    import datetime as dt

    from rightsize.arguments import build_parser
    from rightsize.cli import _this_weeks_fleet

    (job,) = _load_all(FLEET)
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = build_parser().parse_args(container["args"])
    assert args.command == "report" and args.fleet and args.snapshot is None
    assert pod["serviceAccountName"] == "rightsize" and job["spec"]["concurrencyPolicy"] == "Forbid"
    assert {v["name"]: v for v in pod["volumes"]}["config"]["configMap"]["name"] == manifests["ConfigMap"]["metadata"]["name"]
    cfg = tmp_path / "config.toml"
    cfg.write_text(manifests["ConfigMap"]["data"]["config.toml"])
    week = _this_weeks_fleet(load_config(cfg, required=True), dt.datetime(2026, 11, 23, 9, tzinfo=dt.timezone.utc))
    assert str(week) == "s3://my-rightsize-reports/rightsize/2026-W48"
    # after the clusters' runs of the same day
    assert job["spec"]["schedule"].split()[2:] == manifests["CronJob"]["spec"]["schedule"].split()[2:]
    assert int(job["spec"]["schedule"].split()[1]) > int(manifests["CronJob"]["spec"]["schedule"].split()[1])
