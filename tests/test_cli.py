"""The CLI end to end: help, exit codes, one-line errors, and the demo producing every output."""
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from binaries import needs_kubectl
from rightsize.config import Config
from rightsize.kustomize import render

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ["collect", "analyze", "report", "patch", "run", "demo", "config"]


def rightsize(*args, cwd=None, check=None):
    proc = subprocess.run([sys.executable, "-m", "rightsize.cli", *map(str, args)], cwd=cwd or ROOT,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600)
    if check is not None:
        assert proc.returncode == check, proc.stderr + proc.stdout
    return proc


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    proc = rightsize("demo", "--out", out, "--quiet", check=0)
    return out, proc


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_explains_itself(command):
    proc = rightsize(command, "--help", check=0)
    assert "--config" in proc.stdout and "usage: rightsize " + command in proc.stdout


def test_top_level_help_documents_exit_codes():
    proc = rightsize("--help", check=0)
    assert "exit codes: 0 ok, 1 error, 2 bad usage or config, 3" in proc.stdout


def test_bad_usage_exits_2():
    proc = rightsize("frobnicate")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_bad_config_is_one_line_exit_2(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[policies.production]\nmargin = \"lots\"\n")
    proc = rightsize("demo", "--config", cfg, "--out", tmp_path / "o")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"rightsize: error: {cfg}: policies.production.margin: expected a number, got 'lots'"]
    assert "Traceback" not in proc.stderr


def test_missing_named_config_file_exits_2(tmp_path):
    proc = rightsize("config", "--check", "--config", tmp_path / "absent.toml")
    assert proc.returncode == 2 and "absent.toml: config file not found" in proc.stderr


def test_unreadable_snapshot_exits_1_with_path(tmp_path):
    proc = rightsize("report", "--snapshot", tmp_path / "nothing", "--out", tmp_path / "r")
    assert proc.returncode == 1
    assert f"{tmp_path / 'nothing'}: no snapshot folder" in proc.stderr and "Traceback" not in proc.stderr


def test_debug_shows_the_traceback(tmp_path):
    proc = rightsize("report", "--debug", "--snapshot", tmp_path / "nothing", "--out", tmp_path / "r")
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_unwritable_output_exits_1(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = rightsize("demo", "--quiet", "--out", blocker / "sub")
    assert proc.returncode == 1, proc.stderr
    assert "file/sub" in proc.stderr and "Traceback" not in proc.stderr


def test_config_command_prints_the_shipped_config():
    proc = rightsize("config", check=0)
    assert proc.stdout == (ROOT / "config.toml").read_text()


def test_demo_writes_every_output(demo_dir):
    out, _ = demo_dir
    for name in ["report.md", "report.html", "recommendations.csv", "spot.csv", "cross_az.csv", "load_balancers.csv",
                 "summary.json", "snapshot/meta.json", "snapshot/usage.parquet", "patches/PATCHES.md"]:
        assert (out / name).is_file(), name
    assert list((out / "patches").rglob("kustomization.yaml"))


def test_demo_numbers_are_computed_from_the_snapshot(demo_dir):
    out, _ = demo_dir
    recs = pd.read_csv(out / "recommendations.csv")
    summary = json.loads((out / "summary.json").read_text())
    assert len(recs) == 35  # every demo container has a row
    one_off = recs["flags"].fillna("").str.contains("one_off_job")
    counted = (recs.status == "change") & ~one_off
    savings = recs.savings_usd_per_month[counted].sum()
    assert savings > 100  # the demo is over-provisioned on purpose
    assert summary["totals"]["savings_usd_per_month"] == pytest.approx(savings, abs=0.01)
    # the demo's one-off Job (data/backfill-2026-11) is shown apart: for its next run, not patchable now
    assert set(recs.workload[one_off]) == {"backfill-2026-11"}
    assert summary["totals"]["one_off_job_savings_usd_per_month"] == pytest.approx(
        recs.savings_usd_per_month[one_off & (recs.status == "change")].sum(), abs=0.01)
    search = recs[(recs.namespace == "shop") & (recs.workload == "search")].iloc[0]
    assert "oom_risk" in search["flags"]
    assert search.memory_request_bytes_recommended >= search.memory_max_bytes * 1.2


def test_report_from_a_snapshot_and_threshold_exit_code(demo_dir, tmp_path):
    out, _ = demo_dir
    cfg = tmp_path / "strict.toml"
    cfg.write_text("[thresholds]\nfail_on_production_oom_risk = true\n")
    proc = rightsize("report", "--quiet", "--config", cfg, "--snapshot", out / "snapshot", "--out", tmp_path / "r")
    assert proc.returncode == 3, proc.stderr
    assert "threshold crossed" in proc.stderr and "shop" in proc.stderr
    assert (tmp_path / "r" / "report.md").is_file()  # the report is still written


def test_analyze_explain_prints_reasoning(demo_dir):
    out, _ = demo_dir
    proc = rightsize("analyze", "--snapshot", out / "snapshot", "--explain", "shop/Deployment/search", check=0)
    assert "search" in proc.stdout and "OOM" in proc.stdout.upper()


def test_patch_from_snapshot(demo_dir, tmp_path):
    out, _ = demo_dir
    rightsize("patch", "--quiet", "--snapshot", out / "snapshot", "--out", tmp_path / "p", check=0)
    assert list((tmp_path / "p").rglob("kustomization.yaml"))


def test_collect_checks_cheap_inputs_before_any_query(tmp_path):
    # No Prometheus runs at the default URL here: these must fail on the input, before any query.
    proc = rightsize("collect", "--quiet", "--manifests", tmp_path / "absent", "--out", tmp_path / "s")
    assert proc.returncode == 1
    assert f"{tmp_path / 'absent'}: manifests not found" in proc.stderr


def test_aws_prices_without_credentials_fail_fast(tmp_path, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    manifests = ROOT / "tests" / "fixtures" / "k8s" / "base"
    proc = rightsize("collect", "--quiet", "--prices", "aws", "--manifests", manifests, "--out", tmp_path / "s")
    assert proc.returncode == 1
    assert 'pricing.source = "aws" but no AWS credentials were found' in proc.stderr
    assert not (tmp_path / "s").exists()


def test_terminal_log_draws_a_bar_and_lines():
    import io

    from rich.console import Console

    from rightsize.cli import TerminalLog

    out = io.StringIO()
    log = TerminalLog(Console(file=out, force_terminal=True, width=100))
    log("querying usage")
    log.bar(1, 3)
    assert log._progress is not None
    log.bar(3, 3)
    assert log._progress is None  # finished: the bar is gone, lines stay
    assert "querying usage" in out.getvalue() and "3/3" in out.getvalue()


@needs_kubectl
def test_demo_patches_build_with_kubectl_kustomize(demo_dir):
    """The demo ships its base manifests: every patch folder renders with real kustomize, and each changed
    container renders with exactly the recommended requests and limits of recommendations.csv."""
    from ruamel.yaml import YAML

    from rightsize.quantity import parse_cpu, parse_memory

    out, proc = demo_dir
    assert "list no resources" not in proc.stderr
    recs = pd.read_csv(out / "recommendations.csv")
    one_off = recs["flags"].fillna("").str.contains("one_off_job")  # a Job's template is immutable: no patch
    changed = recs[(recs.status == "change") & recs.kind.isin(["Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job"]) & ~one_off]
    folders = sorted(p.parent for p in (out / "patches").rglob("kustomization.yaml"))
    assert {f.name for f in folders} == set(changed.namespace)
    seen = 0
    for folder in folders:
        docs = {(d["kind"], d["metadata"]["name"]): d for d in YAML(typ="safe").load_all(render(folder, Config())) if d}
        assert docs, f"{folder} renders nothing"
        for r in changed[changed.namespace == folder.name].itertuples():
            pod = docs[(r.kind, r.workload)]["spec"]
            pod = pod["jobTemplate"]["spec"] if r.kind == "CronJob" else pod
            ctrs = pod["template"]["spec"]["containers"] + pod["template"]["spec"].get("initContainers", [])
            res = next(c for c in ctrs if c["name"] == r.container)["resources"]
            assert parse_cpu(res["requests"]["cpu"]) == pytest.approx(r.cpu_request_cores_recommended)
            assert parse_memory(res["requests"]["memory"]) == pytest.approx(r.memory_request_bytes_recommended)
            assert parse_memory(res["limits"]["memory"]) == pytest.approx(r.memory_limit_bytes_recommended)
            if r.cpu_limit_action == "set":
                assert parse_cpu(res["limits"]["cpu"]) == pytest.approx(r.cpu_limit_cores_recommended)
            elif r.cpu_limit_action in ("remove", "keep_unset"):
                assert "cpu" not in res.get("limits", {})
            seen += 1
    assert seen == len(changed) > 20


def test_patches_without_resources_warn(demo_dir, tmp_path):
    out, _ = demo_dir
    proc = rightsize("patch", "--quiet", "--snapshot", out / "snapshot", "--out", tmp_path / "p", check=0)
    assert "rightsize: warning:" in proc.stderr and "list no resources" in proc.stderr
    assert "[patches] resources" in proc.stderr
