"""The CLI end to end: help, exit codes, one-line errors, and the demo producing every output."""
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from binaries import needs_kubectl
from rightsize.formatting import k8s_cpu
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
    """The dollar figures of recommendations.csv and summary.json, recomputed by hand from the snapshot the demo
    wrote: every container whose pods ran only on on-demand m5.2xlarge nodes is costed at that type's price
    split into a vCPU-hour and a GiB-hour price (ratio 7.5, [pricing] cpu_ram_price_ratio's default)."""
    out, _ = demo_dir
    recs = pd.read_csv(out / "recommendations.csv")
    summary = json.loads((out / "summary.json").read_text())
    snap = {t: pd.read_parquet(out / "snapshot" / f"{t}.parquet") for t in ("nodes", "placement", "prices", "workloads")}
    assert len(recs) == 41  # every demo container has a row (35, 3 in the runtimes block of demo.py, 3 GPU containers)
    price = snap["prices"].query("instance_type == 'm5.2xlarge' and capacity_type == 'on-demand'").iloc[0]
    assert (price.usd_per_hour, price.vcpu, price.memory_gib) == (0.384, 8.0, 32.0)
    per_gib_hour = 0.384 / (7.5 * 8 + 32)  # P = 8 c + 32 m with c = 7.5 m  ->  m = 0.384 / 92
    per_vcpu_hour = 7.5 * per_gib_hour
    # shop/cart/app: 3 replicas of 2 cores and 4 GiB, (2 x 0.0313043 + 4 x 0.0041739) x 3 x 730 = 173.6765 USD/month
    cart = recs.query("namespace == 'shop' and workload == 'cart'").iloc[0]
    assert (2 * per_vcpu_hour + 4 * per_gib_hour) * 3 * 730 == pytest.approx(173.6765, abs=1e-4)
    assert cart.usd_per_month_current == pytest.approx(173.6765, abs=1e-4)
    # the same for every container placed only on on-demand m5.2xlarge nodes, now and recommended
    placed = snap["placement"].merge(snap["nodes"], on=["cluster", "node"])
    types = placed.groupby(["namespace", "workload"])[["instance_type", "capacity_type"]].agg(set)
    only = types[types.instance_type.eq({"m5.2xlarge"}) & types.capacity_type.eq({"on-demand"})].index
    rows = recs[recs.set_index(["namespace", "workload"]).index.isin(only) & recs.container_type.eq("main")
                & ~recs["flags"].fillna("").str.contains("replicas_estimated")]
    assert len(rows) >= 15
    pods = rows.merge(snap["workloads"][["namespace", "workload", "replicas"]], on=["namespace", "workload"],
                      suffixes=("", "_spec"))["replicas_spec"].to_numpy()

    def by_hand(cpu, memory):
        return (cpu.fillna(0) * per_vcpu_hour + memory.fillna(0) / 2**30 * per_gib_hour).to_numpy() * pods * 730

    now = by_hand(rows.cpu_request_cores_current, rows.memory_request_bytes_current)
    assert rows.usd_per_month_current.to_numpy() == pytest.approx(now)
    changed = rows.status.eq("change").to_numpy()
    after = by_hand(rows.cpu_request_cores_recommended, rows.memory_request_bytes_recommended)
    assert rows.usd_per_month_recommended.to_numpy()[changed] == pytest.approx(after[changed])
    # the totals count the changes only, one-off Jobs apart: for their next run, not patchable now
    one_off = recs["flags"].fillna("").str.contains("one_off_job")
    counted = (recs.status == "change") & ~one_off
    assert summary["totals"]["savings_usd_per_month"] == pytest.approx(recs.savings_usd_per_month[counted].sum(), abs=0.01)
    assert set(recs.workload[one_off]) == {"backfill-2026-11", "finetune-llm"}
    one_off_savings = recs.savings_usd_per_month[one_off & (recs.status == "change")].sum()
    assert one_off_savings > 0 and summary["totals"]["one_off_job_savings_usd_per_month"] == pytest.approx(one_off_savings, abs=0.01)
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
    """--explain shows the same numbers as recommendations.csv, with the steps that lead to them: the OOM
    safety floor max(peak x 1.2, peak + 100Mi) from the observed peak, the rounding, the flags."""
    out, _ = demo_dir
    proc = rightsize("analyze", "--snapshot", out / "snapshot", "--explain", "shop/deployment/search", check=0)
    row = pd.read_csv(out / "recommendations.csv").query("namespace == 'shop' and workload == 'search'").iloc[0]
    lines = proc.stdout.splitlines()
    assert lines[0] == "demo/shop/Deployment/search"
    assert f"  container app (main): status {row.status.upper()}, confidence {row.confidence}" in lines
    peak_mib = row.memory_max_bytes / 2**20
    floor_mib = max(peak_mib * 1.2, peak_mib + 100)
    assert f"VPA bump max(peak x 1.2, peak + 100Mi) = {floor_mib:.1f}Mi" in proc.stdout
    assert f"rounded up -> {row.memory_request_bytes_recommended / 2**20:.0f}Mi" in proc.stdout
    assert row.memory_request_bytes_recommended >= floor_mib * 2**20  # the floor holds in the table too
    assert f"rounded up -> {k8s_cpu(row.cpu_request_cores_recommended, fine=True)}" in proc.stdout
    assert f"{row.oom_kills:.0f} OOM kills" in proc.stdout and f"    flags: {row['flags']}" in lines
    one = rightsize("analyze", "--snapshot", out / "snapshot", "--explain", "demo/shop/Deployment/search:app", check=0)
    assert one.stdout == proc.stdout  # one container of a one-container workload: the same text


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
            if r.memory_limit_action == "keep_unset":  # a growing working set without a limit today keeps none
                assert "memory" not in res.get("limits", {})
            else:
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
    loud = rightsize("patch", "--snapshot", out / "snapshot", "--out", tmp_path / "p2", check=0)
    assert loud.stderr.count("list no resources") == proc.stderr.count("list no resources")  # said once, not logged again


def test_analyze_summary_lists_the_configured_top_n(demo_dir, tmp_path):
    out, _ = demo_dir
    cfg = tmp_path / "c.toml"
    cfg.write_text("[report]\ntop_n = 3\n")
    proc = rightsize("analyze", "--quiet", "--config", cfg, "--snapshot", out / "snapshot", "--out", tmp_path / "a")
    assert proc.returncode == 0, proc.stderr
    assert "Top 3 changes by savings" in proc.stdout and "Top 10" not in proc.stdout
