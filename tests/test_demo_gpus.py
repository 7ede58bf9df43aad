"""The demo's GPU block (rightsize/demo_gpus.py): what it adds, and that it leaves the rest of the demo as it was."""
from __future__ import annotations

import pandas as pd
import pytest

from rightsize import demo
from rightsize.api import analyze
from rightsize.config import Config
from rightsize.schema import CONTAINER_KEY
from rightsize.sources.aws import collect_prices


def _analysis():
    snap = demo.generate()
    collect_prices(Config(), snap, offline=True)
    return snap, analyze(snap, Config())


@pytest.fixture(scope="module")
def both():
    with_gpus = _analysis()
    patch = pytest.MonkeyPatch()
    patch.setattr(demo, "gpu_workloads", lambda W, C: [])
    patch.setattr(demo, "gpu_nodes_table", lambda *a: [])
    try:
        without = _analysis()
    finally:
        patch.undo()
    return with_gpus, without


def test_the_demo_s_cpu_and_memory_savings_off_the_gpu_nodes_do_not_change(both):
    (snap, a), (_, b) = both
    keys = list(CONTAINER_KEY)
    money = ["usd_per_month_current", "usd_per_month_recommended", "savings_usd_per_month",
             "cpu_request_cores_recommended", "memory_request_bytes_recommended"]
    gpu = a.recommendations["namespace"] == "ml-platform"
    assert gpu.sum() == 3 and len(a.recommendations) == len(b.recommendations) + 3
    left = a.recommendations[~gpu].set_index(keys)[money].sort_index()
    right = b.recommendations.set_index(keys)[money].sort_index()
    pd.testing.assert_frame_equal(left, right)
    # idle capacity and bin-packing of the node groups without GPUs are the same too
    idle_a, idle_b = a.idle[a.idle["node_group"] != "gpu-a100"].reset_index(drop=True), b.idle.reset_index(drop=True)
    pd.testing.assert_frame_equal(idle_a, idle_b)
    groups_a = a.node_groups[a.node_groups["node_group"] != "gpu-a100"].reset_index(drop=True)
    pd.testing.assert_frame_equal(groups_a, b.node_groups.reset_index(drop=True))


def test_the_gpu_node_group_and_its_workloads(both):
    (snap, a), _ = both
    nodes = snap.tables["nodes"].set_index("node")
    assert nodes.loc["ip-10-0-2-42", "allocatable_gpus"] == 4 and "mig-1g.5gb" in nodes.loc["ip-10-0-2-42", "gpu_resources_json"]
    idle = a.idle.set_index("node_group").loc["gpu-a100"]
    # 16 GPUs: 8 requested on the first node (4 + 2 + 2), the partitioned node's 8 GPU-equivalents idle
    assert idle["allocatable_gpus"] == pytest.approx(16.0) and idle["requested_gpus"] == pytest.approx(8.0)
    assert idle["gpu_idle_usd_per_month"] == pytest.approx(8 * 1.7680096 * 730, rel=1e-6)
    recs = a.recommendations.set_index("workload")
    assert recs.loc["finetune-llm", "gpu_usd_per_month_current"] == pytest.approx(4 * 1.7680096 * 730, rel=1e-6)
    assert snap.tables["workloads"].set_index("workload").loc["finetune-llm", "checkpoints"]


def test_metrics_prom_carries_the_gpu_money_and_the_idle_gpus(both):
    from rightsize.emit import metrics_prom

    (snap, a), _ = both
    text = metrics_prom.render(a, snap)
    samples = dict(line.rsplit(" ", 1) for line in text.splitlines() if line.startswith("rightsize_gpu"))
    # 8 A100s requested (4 + 2 + 2) x 1.7680096 USD per GPU-hour x 730 h; the second node's 8 idle alike
    assert float(samples['rightsize_gpu_cost_usd_per_month{cluster="demo",namespace="ml-platform"}']) == pytest.approx(10325.176, rel=1e-6)
    assert float(samples['rightsize_gpu_idle_usd_per_month{cluster="demo",node_group="gpu-a100"}']) == pytest.approx(10325.176, rel=1e-6)
    assert samples['rightsize_gpu_cost_usd_per_month{cluster="demo",namespace="shop"}'] == "0"  # no GPU there: 0, known


def test_what_if_moves_the_gpu_thresholds_offline(both):
    from rightsize.api import what_if

    (snap, _), _ = both
    t = what_if(snap, {"idle_below_half_percent": {"gpu_idle_below": 0.005}, "idle_below_10": {"gpu_idle_below": 0.10}})
    saved = t["gpu_savings_usd_per_month"]
    month = 1.7680096 * 730  # one A100 for a month
    # baseline: finetune-llm idle (4 GPUs, p95 1.0 %) + embeddings' 2 GPUs to a 1g.5gb slice each (1/7 of an A100)
    assert saved["baseline"] == pytest.approx(4 * month + 2 * month * 6 / 7, rel=1e-6)
    # below 0.5 %: the 4-GPU job is no longer idle and, on several GPUs, is kept
    assert saved["idle_below_half_percent"] == pytest.approx(2 * month * 6 / 7, rel=1e-6)
    # below 10 %: embeddings (p95 8.0 %) is idle too
    assert saved["idle_below_10"] == pytest.approx(6 * month, rel=1e-6)


MONTH = 1.7680096 * 730  # one A100 of a p4d.24xlarge for a month: its GPU part per GPU-hour x 730 h


def test_rs_gpu_per_container_per_namespace_and_per_node_group(both):
    """rs.gpu on the demo: each of the three GPU workloads with its action and dollars, by hand."""
    from rightsize.api import gpu

    (snap, _), (plain, _) = both
    per = gpu(snap, Config()).set_index("workload")
    assert list(per.index) == ["finetune-llm", "embeddings", "llm-serving"]  # largest GPU saving first
    assert per["gpu_action"].to_dict() == {"finetune-llm": "idle", "embeddings": "share_mig", "llm-serving": "keep"}
    # finetune-llm: 4 A100s for one pod; embeddings and llm-serving: 1 A100 x 2 replicas
    assert per["gpu_usd_per_month_current"].tolist() == pytest.approx([4 * MONTH, 2 * MONTH, 2 * MONTH], rel=1e-6)
    # idle: all 4 GPUs go; a 1g.5gb slice keeps 1/7 of each of embeddings' two GPUs; kept: nothing
    assert per["gpu_savings_usd_per_month"].tolist() == pytest.approx([4 * MONTH, 2 * MONTH * 6 / 7, 0.0], rel=1e-6, abs=1e-9)
    # used: the requested dollars x the engine's mean activity (DCGM)
    assert per["gpu_usd_per_month_used"].tolist() == pytest.approx(
        (per["gpu_usd_per_month_current"] * per["gpu_engine_mean_ratio"]).tolist(), rel=1e-9)
    assert per.loc["embeddings", "gpu_resource_recommended"] == "nvidia.com/mig-1g.5gb"
    ns = gpu(snap, Config(), by="namespace").set_index("namespace")
    assert list(ns.index) == ["ml-platform"]  # a namespace without GPUs has no row
    assert ns.loc["ml-platform", "gpu_usd_per_month_current"] == pytest.approx(8 * MONTH, rel=1e-6)
    assert ns.loc["ml-platform", "gpu_usd_per_month_used"] == pytest.approx(per["gpu_usd_per_month_used"].sum(), rel=1e-9)
    assert ns.loc["ml-platform", "gpu_savings_usd_per_month"] == pytest.approx(4 * MONTH + 2 * MONTH * 6 / 7, rel=1e-6)
    groups = gpu(snap, Config(), by="node_group")
    assert groups[["node_group", "allocatable_gpus", "requested_gpus"]].values.tolist() == [["gpu-a100", 16.0, 8.0]]
    assert groups["gpu_idle_usd_per_month"].tolist() == pytest.approx([8 * MONTH], rel=1e-6)
    # the demo without its GPU block: no GPU rows at all (not rows of zeros)
    assert gpu(plain, Config()).empty and gpu(plain, Config(), by="node_group").empty


def _md_row(md: str, label: str) -> str:
    line = next((line for line in md.splitlines() if line.startswith(f"| {label} |")), None)
    assert line is not None, f"no row {label!r} in report.md"
    return line


def test_the_report_shows_gpu_money_in_its_top_cards_and_a_gpus_section(both, tmp_path):
    """report.md and report.html with the GPU block, and the same demo without it: no GPU card, no section."""
    import dataclasses

    from rightsize.emit.report import write_report

    (snap, a), (plain, b) = both
    config = Config()
    config = dataclasses.replace(config, report=dataclasses.replace(config.report, charts=False))
    out = write_report(snap, a, config, tmp_path / "gpu").out_dir
    md, html = (out / "report.md").read_text(), (out / "report.html").read_text()
    saved = 4 * MONTH + 2 * MONTH * 6 / 7
    assert _md_row(md, "GPUs requested") == f"| GPUs requested | ${8 * MONTH:,.2f} |"
    assert _md_row(md, "Idle GPUs") == f"| Idle GPUs | ${8 * MONTH:,.2f} |"  # the second p4d's 8, no pod asks for them
    assert _md_row(md, "GPU savings available") == f"| GPU savings available | ${saved:,.2f} |"
    section = md[md.index("## GPUs"):]
    section = section[:section.index("\n## ", 1)]
    assert _md_row(section, "`ml-platform/finetune-llm/trainer`").startswith(
        f"| `ml-platform/finetune-llm/trainer` | 4 x A100-40GB | idle: release | 1% |")
    assert f"+${4 * MONTH:,.2f} |" in _md_row(section, "`ml-platform/finetune-llm/trainer`")
    assert "| share (MIG 1g.5gb) |" in _md_row(section, "`ml-platform/embeddings/server`")
    assert "| keep |" in _md_row(section, "`ml-platform/llm-serving/vllm`")
    assert _md_row(section, "gpu-a100") == f"| gpu-a100 | p4d.24xlarge | 16.0 | 8.0 | ${8 * MONTH:,.2f} |"
    assert 'id="gpu-table"' in html and 'id="gpu-idle-table"' in html and "GPUs requested" in html
    assert "finetune-llm" in html and "MIG 1g.5gb" in html
    # without GPUs, nothing of it: a fleet without GPUs is not shown $0 of GPUs
    plain_out = write_report(plain, b, config, tmp_path / "plain").out_dir
    plain_md, plain_html = (plain_out / "report.md").read_text(), (plain_out / "report.html").read_text()
    assert "## GPUs" not in plain_md and "GPUs requested" not in plain_md
    assert 'id="gpu-table"' not in plain_html and "GPUs requested" not in plain_html


def test_the_mig_patch_renders_with_kubectl_kustomize_and_only_there(tmp_path, kubectl):
    """`rightsize demo`, then the real `kubectl kustomize` of ml-platform's patches over the demo's base: embeddings
    moves from a whole A100 to the 1g.5gb slice the partitioned node offers; the idle job and the kept service
    keep their GPUs (report-only advice never touches the spec)."""
    import subprocess
    import sys
    from pathlib import Path

    from patchfixtures import by_id, kustomize, pod_spec

    out = tmp_path / "demo"
    subprocess.run([sys.executable, "-m", "rightsize.cli", "demo", "--out", str(out), "--quiet"], check=True,
                   cwd=Path(__file__).resolve().parents[1], capture_output=True)
    ml = by_id(kustomize(out / "patches" / "demo" / "ml-platform"))
    server = pod_spec(ml[("Deployment", "ml-platform", "embeddings")])["containers"][0]
    for part in ("requests", "limits"):
        assert server["resources"][part].get("nvidia.com/mig-1g.5gb") in (1, "1"), part
        assert "nvidia.com/gpu" not in server["resources"][part], part
    vllm = pod_spec(ml[("Deployment", "ml-platform", "llm-serving")])["containers"][0]
    assert vllm["resources"]["limits"]["nvidia.com/gpu"] in (1, "1")
    trainer = pod_spec(ml[("Job", "ml-platform", "finetune-llm")])["containers"][0]
    assert trainer["resources"]["limits"]["nvidia.com/gpu"] in (4, "4")
    patch = (out / "patches" / "demo" / "ml-platform" / "deployment-embeddings.yaml").read_text()
    assert "nvidia.com/gpu 1 → nvidia.com/mig-1g.5gb 1" in patch
