"""GPUs on a real Prometheus: generated DCGM exporter, kube-state-metrics and cAdvisor series (tests/gpudata.py)
backfilled with promtool, collected with the kube-state-metrics inventory, priced from the bundled catalogue and
analysed. What the truth says: each pod's GPU engine p95 and frame-buffer max, the idle GPUs' dollars, each GPU
workload's recommendation; and a cluster without the exporter gets a named caveat and no GPU recommendation."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gpudata import FB_TOTAL_MIB, MIB, GpuDataset, idle_gpu_equivalents
from promservers import DATA_HOURS, WINDOW_HOURS, dataset_end, make_config, start_prometheus
from rightsize.api import analyze
from rightsize.config import Config
from rightsize.sketch import RELATIVE_ERROR
from rightsize.snapshot import Snapshot
from rightsize.sources import prometheus as P
from rightsize.sources.aws import collect_prices
from rightsize.targets import ClusterTarget

pytestmark = pytest.mark.integration

P4D = 1.7680096  # USD per GPU-hour of a p4d.24xlarge (tests/test_gpu_prices.py works it by hand)
DCGM = ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE")
KEY = ["namespace", "kind", "workload", "container"]
TRAIN, EMBED, SERVE = ("ml", "Job", "train", "trainer"), ("ml", "Deployment", "embed", "server"), ("ml", "Deployment", "serve", "vllm")


def _config() -> Config:
    """The defaults, with a day of history enough for a recommendation (the generated window is 24 h)."""
    base = Config()
    policies = {name: dataclasses.replace(p, min_history=3600.0) for name, p in base.policies.items()}
    return dataclasses.replace(base, policies=policies)


def _collect(dataset, tmp_path_factory, name):
    server = start_prometheus(dataset, tmp_path_factory.mktemp(name))
    try:
        snap = Snapshot()
        snap.meta["window_start"] = str(np.datetime64(dataset.end - WINDOW_HOURS * 3600, "s")) + "+00:00"
        snap.meta["window_end"] = str(np.datetime64(dataset.end, "s")) + "+00:00"
        P.collect_usage(make_config(server.url, dataset.end), ClusterTarget("c1", server.url), snap, inventory_from_metrics=True)
    finally:
        server.stop()
    collect_prices(_config(), snap, offline=True)
    return dataset, snap.validate(), analyze(snap, _config())


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    return _collect(GpuDataset(dataset_end(), DATA_HOURS), tmp_path_factory, "gpu-full")


def _within(got: float, exact: tuple[float, float, float]) -> bool:
    return exact[0] * (1 - RELATIVE_ERROR) - 1e-12 <= got <= exact[0] * (1 + RELATIVE_ERROR) + 1e-12


def test_each_pod_s_engine_percentiles_and_frame_buffer_max_match_the_samples(full):
    dataset, snap, _ = full
    usage = snap.tables["usage"].set_index(KEY)
    expected = dataset.expected(WINDOW_HOURS * 3600)
    assert set(expected) <= set(usage.index)
    for key, exp in expected.items():
        row = usage.loc[key]
        for stat in [k for k in exp if k.startswith("gpu_engine_") and k != "gpu_engine_mean_ratio"]:
            assert _within(row[f"{stat}_ratio"], exp[stat]), f"{key} {stat}: got {row[f'{stat}_ratio']}, exact {exp[stat][0]}"
        # the raw daily maximum of the fullest GPU, exact (a closed range selector also reads the left edge)
        assert row["gpu_memory_max_bytes"] in (exp["gpu_memory_max_bytes"], exp["gpu_memory_max_bytes_closed"]), key
        assert row["gpu_engine_mean_ratio"] == pytest.approx(exp["gpu_engine_mean_ratio"], rel=1e-9)
        assert row["gpu_memory_total_bytes"] == FB_TOTAL_MIB * MIB and row["gpu_model"] == "NVIDIA A100-SXM4-40GB"
        assert row["gpu_engine_metric"] == "DCGM_FI_PROF_GR_ENGINE_ACTIVE"
    # the replica whose exporter series carry exported_namespace / exported_pod counts like the other
    assert usage.loc[EMBED, "pods_seen"] == 2
    # the GPU no pod uses is left out: no usage row outside the pods' containers
    assert set(usage.index.get_level_values("namespace")) == {"ml"}
    hist = snap.tables["usage_histograms"]
    assert set(hist["resource"]) == {"cpu", "memory", "gpu_engine", "gpu_memory"}  # offline percentiles, backtest, what-if


def test_gpu_requests_and_node_gpus_from_kube_state_metrics(full):
    _, snap, _ = full
    c = snap.tables["containers"].set_index(KEY)
    assert c.loc[TRAIN, "gpu_resource"] == "nvidia.com/gpu" and c.loc[TRAIN, "gpu_request_count"] == 2
    assert c.loc[EMBED, "gpu_request_count"] == 1 and c.loc[SERVE, "gpu_limit_count"] == 1
    n = snap.tables["nodes"].set_index("node")
    assert (n.loc["gpu-a", "allocatable_gpus"], n.loc["gpu-b", "allocatable_gpus"], n.loc["gpu-b", "capacity_gpus"]) == (8, 4, 4)
    assert '"nvidia.com/mig-1g.5gb": 14.0' in n.loc["gpu-b", "gpu_resources_json"]
    assert n.loc["gpu-a", "gpu_product"] == "NVIDIA-A100-SXM4-40GB"


def test_idle_gpu_dollars_within_one_percent_of_a_hand_computation(full):
    _, _, analysis = full
    idle = analysis.idle.set_index("node_group").loc["gpu"]
    # 8 + 8 GPU-equivalents on the two nodes, 5 requested all window: 11 idle x 1.7680096 USD x 730 h
    hand = idle_gpu_equivalents() * P4D * 730
    assert idle_gpu_equivalents() == 11
    assert idle["gpu_idle_usd_per_month"] == pytest.approx(hand, rel=0.01)
    assert idle["requested_gpus"] == pytest.approx(5.0, rel=0.01)


def test_each_gpu_workload_gets_its_recommendation(full):
    _, _, analysis = full
    r = analysis.recommendations.set_index(KEY)
    assert r.loc[TRAIN, "gpu_action"] == "idle" and r.loc[TRAIN, "gpu_savings_usd_per_month"] == pytest.approx(
        2 * P4D * 730 * r.loc[TRAIN, "replicas"], rel=1e-6)
    assert (r.loc[EMBED, "gpu_action"], r.loc[EMBED, "gpu_resource_recommended"]) == ("share_mig", "nvidia.com/mig-1g.5gb")
    assert r.loc[SERVE, "gpu_action"] == "keep"


@pytest.fixture(scope="module")
def without_exporter(tmp_path_factory):
    return _collect(GpuDataset(dataset_end(), DATA_HOURS, drop=DCGM), tmp_path_factory, "gpu-none")


def test_a_cluster_without_the_exporter_gets_a_named_caveat_and_no_gpu_recommendation(without_exporter):
    _, snap, analysis = without_exporter
    assert set(DCGM) <= set(snap.meta["missing_metrics"])
    warned = [w["message"] for w in snap.meta["warnings"] if w["code"] == "missing_metric" and "DCGM" in w["message"]]
    assert any("DCGM_FI_DEV_FB_USED" in m and "GPUs are on its nodes" in m for m in warned)
    r = analysis.recommendations.set_index(KEY)
    assert (r.loc[[TRAIN, EMBED, SERVE], "gpu_action"] == "unmeasured").all()
    assert r["gpu_savings_usd_per_month"].sum() == 0 and r["gpu_resource_recommended"].eq("").all()
    assert r.loc[EMBED, "gpu_engine_p95_ratio"] != r.loc[EMBED, "gpu_engine_p95_ratio"]  # NaN: unknown, never 0 %
    assert "no DCGM exporter series" in r.loc[EMBED, "reason"]


def test_profiling_metrics_off_falls_back_to_gpu_util(tmp_path_factory):
    dataset, snap, _ = _collect(GpuDataset(dataset_end(), DATA_HOURS, drop=("DCGM_FI_PROF_GR_ENGINE_ACTIVE",)),
                                tmp_path_factory, "gpu-util")
    usage = snap.tables["usage"].set_index(KEY)
    for key, exp in dataset.expected(WINDOW_HOURS * 3600, util=True).items():
        assert usage.loc[key, "gpu_engine_metric"] == "DCGM_FI_DEV_GPU_UTIL"
        assert _within(usage.loc[key, "gpu_engine_pooled_p95_ratio"], exp["gpu_engine_pooled_p95"]), key
    assert "DCGM_FI_PROF_GR_ENGINE_ACTIVE" not in snap.meta["missing_metrics"]  # the fallback measured it
