"""The reusable workflow a manifests (GitOps) repository calls: actionlint accepts it, it installs a pinned
rightsize (never the caller's checkout), it can sign in to AWS with OIDC, and its pull-request step, run
here with bash against real git repositories, commits only the overlay and opens one PR with PATCHES.md.

GitHub itself cannot run here: `gh` is a stand-in script that records its calls (stated where it is
made), and the push goes to a local bare repository through git's own `url.<base>.insteadOf`."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from binaries import need_binary

ROOT = Path(__file__).resolve().parents[1]
REUSABLE = ROOT / ".github/workflows/rightsize-weekly.yml"
CALLER = ROOT / "deploy/github/rightsize.yml"


@pytest.fixture(scope="module")
def workflow() -> dict:
    return YAML(typ="safe").load(REUSABLE.read_text())


def _step(workflow, name):
    return next(s for s in workflow["jobs"]["weekly"]["steps"] if s.get("name") == name)


def test_actionlint_accepts_the_workflows():
    """actionlint (the PyPI wheel of the dev extra; it runs shellcheck on every run: script when shellcheck is
    on PATH, which scripts/test installs) finds nothing in any workflow or in the caller example."""
    beside = shutil.which("actionlint", path=str(Path(sys.executable).parent))  # the venv's, when PATH lacks it
    actionlint = beside or need_binary("actionlint", "pip install -e '.[dev]' installs it")
    need_binary("shellcheck", "Debian's shellcheck package; scripts/test installs it")
    files = sorted((ROOT / ".github/workflows").glob("*.yml")) + [CALLER]
    proc = subprocess.run([actionlint, "-no-color", *map(str, files)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_it_is_called_from_another_repository_with_a_pinned_version(workflow):
    call = workflow[True]["workflow_call"] if True in workflow else workflow["on"]["workflow_call"]
    assert call["inputs"]["rightsize-version"]["required"] is True
    install = _step(workflow, "Install the pinned rightsize")["run"]
    assert "pip install ." not in install and "pip install -e" not in install
    assert 'spec="rightsize @ git+https://github.com/${REPOSITORY}@${VERSION}"' in install
    assert 'spec="rightsize==${VERSION#v}"' in install
    caller = YAML(typ="safe").load(CALLER.read_text())
    job = caller["jobs"]["rightsize"]
    assert job["uses"].endswith("/.github/workflows/rightsize-weekly.yml@v0.2.0")
    assert job["with"]["rightsize-version"] == "v0.2.0"  # the same pin as the workflow's ref


@pytest.mark.parametrize("version", ["", "main", "HEAD"])
def test_an_unpinned_version_is_refused(workflow, version, tmp_path):
    script = _step(workflow, "Install the pinned rightsize")["run"]
    proc = subprocess.run(["bash", "-e", "-c", script], capture_output=True, text=True, timeout=60,
                          env={"PATH": os.environ["PATH"], "VERSION": version, "REPOSITORY": "", "RUNNER_TEMP": str(tmp_path)})
    assert proc.returncode == 1 and "::error::rightsize-version must pin a release tag or a commit SHA" in proc.stdout
    assert not (tmp_path / "rightsize-venv").exists()


def test_aws_oidc_and_permissions(workflow):
    job = workflow["jobs"]["weekly"]
    assert workflow["permissions"] == {}
    assert job["permissions"] == {"contents": "write", "pull-requests": "write", "id-token": "write"}
    aws = _step(workflow, "AWS credentials (OIDC)")
    assert aws["uses"].startswith("aws-actions/configure-aws-credentials@") and aws["if"] == "inputs.aws-role-arn != ''"
    assert aws["with"]["role-to-assume"] == "${{ inputs.aws-role-arn }}"
    assert job["runs-on"] == "${{ fromJSON(inputs.runs-on) }}"  # a self-hosted runner inside the VPC, by label
    caller = YAML(typ="safe").load(CALLER.read_text())
    assert caller["permissions"] == {"contents": "write", "pull-requests": "write", "id-token": "write"}
    for s in job["steps"]:
        if s.get("uses", "").startswith("actions/checkout"):
            assert s["with"]["persist-credentials"] is False
        if "secrets." in str(s.get("env", {})) or "github.token" in str(s.get("env", {})):
            assert s["name"] in ("rightsize run", "Open or update the pull request"), s["name"]


def _git(cwd, *args):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def _fake_gh(bin_dir: Path, log: Path, open_pr: str = "") -> None:
    """A stand-in for the GitHub CLI (GitHub is not reachable here): records each call, answers `pr list`."""
    gh = bin_dir / "gh"
    gh.write_text(f"""#!/usr/bin/env bash
printf '%s\\n' "$*" >> {log}
if [ "$1 $2" = "pr list" ]; then printf '%s' "{open_pr}"; fi
""")
    gh.chmod(0o755)


def _pr_repo(tmp_path: Path):
    remote = tmp_path / "remote.git"
    _git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    repo = tmp_path / "manifests"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "base").mkdir()
    (repo / "base" / "web.yaml").write_text("kind: Deployment\n")
    (repo / "overlays" / "prod").mkdir(parents=True)
    (repo / "overlays" / "prod" / "kustomization.yaml").write_text("resources: [../../base]\n")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "-m", "init")
    _git(repo, "push", "-q", str(remote), "main")
    return repo, remote


def _run_pr_step(workflow, tmp_path, repo, remote, out, open_pr=""):
    step = _step(workflow, "Open or update the pull request")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "gh.log"
    _fake_gh(bin_dir, log, open_pr)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    # git's own URL rewrite sends the push to the local bare repository
    (home / ".gitconfig").write_text(f'[url "{remote}/"]\n\tinsteadOf = https://github.com/acme/manifests.git/\n'
                                     f'[url "{remote}"]\n\tinsteadOf = https://github.com/acme/manifests.git\n')
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "HOME": str(home), "OUT": str(out), "GH_TOKEN": "x",
           "BRANCH": "rightsize/weekly", "OVERLAY": "overlays/prod", "PATCHES_PATH": "rightsize/patches", "BASE": "main",
           "GITHUB_REPOSITORY": "acme/manifests"}
    proc = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=repo, env=env, capture_output=True, text=True, timeout=60)
    return proc, log


def test_the_pr_step_commits_only_the_overlay_and_opens_one_pr_with_patches_md(workflow, tmp_path):
    repo, remote = _pr_repo(tmp_path)
    out = tmp_path / "out"
    (out / "patches").mkdir(parents=True)
    (out / "patches" / "PATCHES.md").write_text("## rightsize\n")
    # what `rightsize run --overlay overlays/prod` leaves in the checkout: the overlay's files only
    (repo / "overlays" / "prod" / "rightsize").mkdir()
    (repo / "overlays" / "prod" / "rightsize" / "shop-deployment-web.yaml").write_text("kind: Deployment\n")
    (repo / "overlays" / "prod" / "kustomization.yaml").write_text("resources: [../../base]\npatches:\n- path: rightsize/shop-deployment-web.yaml\n")
    (repo / "stray.txt").write_text("not rightsize's\n")  # anything else in the checkout is never committed
    proc, log = _run_pr_step(workflow, tmp_path, repo, remote, out)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    pushed = _git(remote, "show", "--name-only", "--format=%s", "rightsize/weekly").split()
    assert pushed[:3] == ["rightsize:", "resource", "changes"]
    assert sorted(p for p in pushed if "/" in p) == ["overlays/prod/kustomization.yaml", "overlays/prod/rightsize/shop-deployment-web.yaml"]
    calls = log.read_text().splitlines()
    assert calls[0] == "auth setup-git" and calls[1].startswith("pr list --repo acme/manifests --head rightsize/weekly")
    assert calls[2].startswith("pr create --repo acme/manifests --head rightsize/weekly --base main --title rightsize: resource changes for ")
    assert calls[2].endswith(f"--body-file {out}/patches/PATCHES.md")


def test_the_pr_step_updates_the_open_pr_and_skips_a_week_without_change(workflow, tmp_path):
    repo, remote = _pr_repo(tmp_path)
    out = tmp_path / "out"
    (out / "patches").mkdir(parents=True)
    (out / "patches" / "PATCHES.md").write_text("## rightsize\n")
    (repo / "overlays" / "prod" / "patch.yaml").write_text("x: 1\n")
    proc, log = _run_pr_step(workflow, tmp_path, repo, remote, out, open_pr="7")
    assert proc.returncode == 0, proc.stderr
    assert log.read_text().splitlines()[-1].startswith("pr edit 7 --repo acme/manifests --title ")
    log.unlink()
    _git(repo, "checkout", "-q", "main")  # next week: the same overlay as main, nothing to propose
    proc, _ = _run_pr_step(workflow, tmp_path, repo, remote, out, open_pr="7")
    assert proc.returncode == 0 and "no resource change this week" in proc.stdout
    assert not log.exists()  # no PR call at all
