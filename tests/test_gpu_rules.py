"""The GPU rules (analysis/rules/gpu.py) on hand-made containers: idle, share (MIG, time-slicing), smaller GPU,
keep, unmeasured; each action's evidence and dollars, and the MIG patch only where nodes offer the slice.

Prices: the catalogue's us-east-1 list prices (tests/test_gpu_prices.py works the split): per GPU-hour, p4d.24xlarge
(A100 40 GB) 1.7680096, g5.12xlarge (A10G) 0.8996, g6.xlarge (L4) 0.632; 730 hours a month.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from recommend_tables import DAYS14, ctr, snap
from rightsize.analysis import cost
from rightsize.analysis.recommend import compute, recommend
from rightsize.config import Config
from rightsize.quantity import GIB
from rightsize.sources.aws import collect_prices
from rightsize.usage_stats import BASES, QUANTILES, usage_column

P4D, G5_12 = 1.7680096, 0.8996
MIG_NODE = {"nvidia.com/gpu": 4, "nvidia.com/mig-1g.5gb": 14, "nvidia.com/mig-3g.20gb": 4}


def gpu_ctr(workload: str, *, engine_p95: float | None, fb_peak_gib: float, node: str, count: float = 1.0,
            resource: str = "nvidia.com/gpu", fb_total_gib: float = 40.0, model: str = "NVIDIA A100-SXM4-40GB",
            engine_mean: float | None = None) -> dict:
    """A container asking for ``count`` x ``resource``, with DCGM statistics (None: not measured) and its node."""
    row = ctr(workload, namespace="ml", cpu_request=1.0, memory_request=4 * GIB, memory_limit=4 * GIB, replicas=1)
    row["container"].update(gpu_resource=resource, gpu_request_count=count, gpu_limit_count=count)
    if engine_p95 is not None:
        for basis in BASES:
            for q in QUANTILES:
                row["usage"][usage_column("gpu_engine", q.name, basis)] = engine_p95 * q.quantile / 0.95
                row["usage"][usage_column("gpu_memory", q.name, basis)] = fb_peak_gib * GIB * 0.9
        row["usage"].update(gpu_engine_max_ratio=min(engine_p95 * 1.3, 1.0), gpu_memory_max_bytes=fb_peak_gib * GIB,
                            gpu_engine_mean_ratio=engine_mean if engine_mean is not None else engine_p95 * 0.6,
                            gpu_memory_total_bytes=fb_total_gib * GIB, gpu_model=model,
                            gpu_engine_metric="DCGM_FI_PROF_GR_ENGINE_ACTIVE")
    row["node"] = node
    return row


def gpu_node(name: str, itype: str, resources: dict) -> dict:
    whole = float(resources.get("nvidia.com/gpu", 0))
    return {"cluster": "c1", "node": name, "instance_type": itype, "zone": "us-east-1a", "region": "us-east-1",
            "capacity_type": "on-demand", "node_group": itype, "allocatable_cpu_cores": 40.0,
            "allocatable_memory_bytes": 180 * GIB, "hours_seen": DAYS14, "allocatable_gpus": whole, "capacity_gpus": whole,
            "gpu_resources_json": json.dumps(resources)}


def gpu_snapshot(*rows: dict, mig_offered: bool = True):
    nodes = [gpu_node("a100", "p4d.24xlarge", {"nvidia.com/gpu": 8}),
             gpu_node("a100-mig", "p4d.24xlarge", MIG_NODE if mig_offered else {"nvidia.com/gpu": 8}),
             gpu_node("a10g", "g5.12xlarge", {"nvidia.com/gpu": 4})]
    s = snap(*rows, nodes=nodes)
    s.tables["placement"] = pd.DataFrame([{"cluster": "c1", "namespace": "ml", "kind": "Deployment", "workload": r["container"]["workload"],
                                           "node": r["node"], "zone": "us-east-1a", "pod_hours": DAYS14} for r in rows])
    s.meta["window_start"], s.meta["window_end"] = "2026-11-02T00:00:00+00:00", "2026-11-16T00:00:00+00:00"
    collect_prices(Config(), s, offline=True)
    return s


def _recs(s) -> pd.DataFrame:
    return cost.add_costs(recommend(s, Config()), s, Config()).set_index("workload")


@pytest.fixture(scope="module")
def recs():
    return _recs(gpu_snapshot(
        gpu_ctr("idle", engine_p95=0.02, fb_peak_gib=1.0, node="a100"),
        gpu_ctr("embed", engine_p95=0.08, fb_peak_gib=2.5, node="a100"),                      # MIG 1g.5gb
        gpu_ctr("bigger", engine_p95=0.30, fb_peak_gib=12.0, node="a100"),                    # MIG 3g.20gb
        gpu_ctr("busy", engine_p95=0.85, fb_peak_gib=30.0, node="a100"),                      # keep
        gpu_ctr("tts", engine_p95=0.15, fb_peak_gib=3.0, node="a10g", fb_total_gib=24, model="NVIDIA A10G"),   # 4 per GPU
        gpu_ctr("vision", engine_p95=0.30, fb_peak_gib=14.0, node="a10g", fb_total_gib=24, model="NVIDIA A10G"),  # L4
        gpu_ctr("train", engine_p95=0.40, fb_peak_gib=20.0, node="a100", count=4.0),          # multi-GPU: keep
        gpu_ctr("blind", engine_p95=None, fb_peak_gib=0.0, node="a100"),                      # no DCGM series
    ))


def test_idle(recs):
    r = recs.loc["idle"]
    assert (r["gpu_action"], r["gpu_target"], r["gpu_share_after"]) == ("idle", "no GPU", 0.0)
    assert "gpu_idle" in r["flags"] and "GPU idle: engine active p95 2.0% < 5.0%" in r["reason"]
    assert r["gpu_savings_usd_per_month"] == pytest.approx(P4D * 730, rel=1e-6)  # the whole GPU goes
    assert r["gpu_resource_recommended"] == "" and r["gpu_usd_per_month_recommended"] == r["gpu_usd_per_month_current"]


def test_mig_share_is_patched_where_nodes_offer_the_slice(recs):
    r = recs.loc["embed"]
    # needs: 8% x 1.15 = 9.2% of the SMs (1g = 1/7 = 14.3%) and 2.5 GiB x 1.2 = 3.22e9 bytes (5 GB): 1g.5gb
    assert (r["gpu_action"], r["gpu_target"], r["gpu_resource_recommended"]) == ("share_mig", "MIG 1g.5gb", "nvidia.com/mig-1g.5gb")
    assert r["gpu_share_after"] == pytest.approx(1 / 7) and r["status"] == "change"
    # the patch changes what the GPU costs: a seventh of the A100's 1.7680096 USD per GPU-hour
    assert r["gpu_usd_per_month_recommended"] == pytest.approx(P4D / 7 * 730, rel=1e-6)
    assert r["gpu_savings_usd_per_month"] == pytest.approx(P4D * 6 / 7 * 730, rel=1e-6)
    assert r["savings_usd_per_month"] >= r["gpu_savings_usd_per_month"] - 1e-6  # in the patched savings
    assert "nvidia.com/gpu 1 -> nvidia.com/mig-1g.5gb 1" in r["reason"]
    # 30% x 1.15 = 34.5% of the SMs (3g = 42.9%) and 12 GiB x 1.2 = 15.5e9 bytes (20 GB): 3g.20gb, half a GPU
    b = recs.loc["bigger"]
    assert (b["gpu_target"], b["gpu_share_after"]) == ("MIG 3g.20gb", 0.5)
    assert b["gpu_resource_recommended"] == "nvidia.com/mig-3g.20gb"


def test_mig_share_is_report_only_where_no_node_offers_it():
    recs = _recs(gpu_snapshot(gpu_ctr("embed", engine_p95=0.08, fb_peak_gib=2.5, node="a100"), mig_offered=False))
    r = recs.loc["embed"]
    assert r["gpu_action"] == "share_mig" and r["gpu_resource_recommended"] == ""
    assert "report only: no node offers nvidia.com/mig-1g.5gb yet" in r["reason"]
    assert r["gpu_usd_per_month_recommended"] == r["gpu_usd_per_month_current"]  # no patch: the spec keeps its GPU
    assert r["gpu_savings_usd_per_month"] == pytest.approx(P4D * 6 / 7 * 730, rel=1e-6)  # what the slice would save


def test_time_slicing_on_a_gpu_without_mig(recs):
    r = recs.loc["tts"]
    # 15% x 1.15 = 17.25% -> 5 fit; 3 GiB x 1.2 = 3.6 GiB of 24 -> 6 fit; at most gpu_time_slices (4)
    assert (r["gpu_action"], r["gpu_target"], r["gpu_share_after"]) == ("share_time_slicing", "time-slicing 4 per GPU", 0.25)
    assert r["gpu_savings_usd_per_month"] == pytest.approx(G5_12 * 0.75 * 730, rel=1e-6)
    assert r["gpu_resource_recommended"] == "" and "report only" in r["reason"]


def test_smaller_gpu(recs):
    r = recs.loc["vision"]
    # 14 GiB x 1.2 = 16.8 GiB: one per A10G (no share); of the cheaper GPUs only L4 (24 GiB, 0.632) holds it, T4 (16) does not
    assert (r["gpu_action"], r["gpu_target"]) == ("smaller_gpu", "L4 (g6.xlarge)")
    assert r["gpu_share_after"] == pytest.approx(0.632 / G5_12, rel=1e-6)
    assert r["gpu_savings_usd_per_month"] == pytest.approx((G5_12 - 0.632) * 730, rel=1e-6)
    assert "benchmark it there before moving (report only)" in r["reason"]


def test_keep_multi_gpu_and_unmeasured(recs):
    assert recs.loc["busy", "gpu_action"] == "keep" and "GPU kept: engine active p95 85.0%" in recs.loc["busy", "reason"]
    assert recs.loc["train", "gpu_action"] == "keep"  # 4 GPUs: no slice for a multi-GPU container
    b = recs.loc["blind"]
    assert b["gpu_action"] == "unmeasured" and "gpu_unmeasured" in b["flags"] and b["gpu_savings_usd_per_month"] == 0.0
    assert np.isnan(b["gpu_usd_per_month_used"]) and "no DCGM exporter series" in b["reason"]
    # used GPU dollars: today's GPU cost x the engine's mean activity (0.6 x p95 here)
    assert recs.loc["busy", "gpu_usd_per_month_used"] == pytest.approx(P4D * 730 * 0.85 * 0.6, rel=1e-6)


def test_evidence_and_non_gpu_rows(recs):
    ev = recs.loc["embed", "gpu_evidence"]
    assert ev == ("engine active p95 8.0% (DCGM_FI_PROF_GR_ENGINE_ACTIVE), frame buffer peak 2.5 GiB of 40.0 GiB on "
                  "A100-40GB, 14.0 d")
    plain = _recs(gpu_snapshot(ctr("web", namespace="ml") | {"node": "a100"}))
    assert plain.loc["web", "gpu_action"] == "" and plain.loc["web", "gpu_usd_per_month_current"] == 0.0


def test_explain_shows_the_gpu_rules():
    from rightsize.analysis.explain import explain

    s = gpu_snapshot(gpu_ctr("embed", engine_p95=0.08, fb_peak_gib=2.5, node="a100"))
    text = explain(s, Config(), "ml/Deployment/embed")
    assert "gpu_share" in text and "MIG 1g.5gb" in text and "frame buffer peak" in text
    assert compute(s, Config())["_rules"].iloc[0].endswith(",gpu_share")  # the rules that gave it a reason or flag
