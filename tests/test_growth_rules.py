"""The growth rules and the self-check on generated containers (tests/cluster_truth.py: samples through the
collector's reducer): a growing working set without a limit keeps none, one with a limit gets its projected
peak, an OOM-killed leak keeps the OOM rule; the self-check raises a limit the last days would break to the
smallest value that passes, and records why."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from cluster_truth import container, snapshot_of
from rightsize.analysis import backtest
from rightsize.analysis.recommend import PIPELINE, compute
from rightsize.analysis.rounding import round_memory_up
from rightsize.analysis.rules.base import Rows, rule
from rightsize.config import Config
from rightsize.quantity import MIB

CFG = Config()
MARGIN = CFG.policy("production").margins["memory_growing"]


@pytest.fixture(scope="module")
def grown():
    """Four containers: a leak without a limit, the same leak under a limit above its climb, one under a limit it
    reaches (OOM-killed), a steady one; 400 MiB growing to 3x over 20 days of pod age (40 MiB/day)."""
    specs = [container("free", "growing", leak_peak=3.0, leak_life_days=20.0, seed=1),
             container("limited", "growing", leak_peak=3.0, leak_life_days=20.0, memory_limit=4096 * MIB, seed=2),
             container("killed", "growing", leak_peak=3.0, leak_life_days=20.0, memory_limit=700 * MIB, seed=3),
             container("steady", "flat", seed=4)]
    s = snapshot_of(specs)
    return s, compute(s, CFG).set_index("workload")


def test_a_growing_container_without_a_limit_gets_none_and_is_flagged(grown):
    _s, r = grown
    free = r.loc["free"]
    assert free["memory_pattern"] == "growing" and "memory_growth" in free["flags"]
    assert free["memory_limit_action"] == "keep_unset" and np.isnan(free["memory_limit_bytes_recommended"])
    # the generator's climb; daily maxima of a noise proportional to the level climb a few % faster (errs safe)
    assert 40 * MIB <= free["memory_growth_bytes_per_day"] <= 1.08 * 40 * MIB
    assert "Mi/day of pod age" in free["reason"] and "memory limit left unset" in free["reason"]
    # its request holds the projected peak (production: the request covers the peak) with the growing margin
    assert free["memory_request_bytes_recommended"] >= free["memory_projected_bytes"] * (1 + MARGIN)
    assert free["memory_projected_bytes"] >= free["memory_max_bytes"] + 6.5 * 40 * MIB  # a week more of climbing


def test_a_growing_container_with_a_limit_gets_at_least_its_projected_peak(grown):
    _s, r = grown
    limited = r.loc["limited"]
    assert limited["memory_limit_action"] == "set" and "memory_growth" in limited["flags"]
    assert limited["memory_limit_bytes_recommended"] >= limited["memory_projected_bytes"] * (1 + MARGIN)
    assert "memory raised to the projected peak" in limited["reason"]


def test_an_oom_killed_leak_keeps_the_oom_rule(grown):
    _s, r = grown
    killed = r.loc["killed"]
    assert "oom_risk" in killed["flags"] and killed["oom_pattern"] == "leak"
    assert np.isnan(killed["_growth_floor"])  # the OOM rule's own leak projection sizes it
    assert killed["memory_limit_bytes_recommended"] >= killed["memory_demand_estimate_bytes"]
    steady = r.loc["steady"]
    assert steady["memory_pattern"] == "flat" and "memory_growth" not in steady["flags"]
    assert steady["memory_limit_action"] == "set"


def test_memory_growth_limit_projected_sets_the_projected_peak(grown):
    s, _r = grown
    policies = {k: dataclasses.replace(p, memory_growth_limit="projected") for k, p in CFG.policies.items()}
    free = compute(s, dataclasses.replace(CFG, policies=policies)).set_index("workload").loc["free"]
    assert free["memory_limit_action"] == "set"
    assert free["memory_limit_bytes_recommended"] == round_memory_up(free["memory_projected_bytes"] * (1 + MARGIN))


# --- the self-check -------------------------------------------------------------------------------------

@rule(after="growing_memory_limit", reads=("mem_lim", "rec"), writes=("mem_lim",))
def tight_memory_limit(rows: Rows) -> None:
    """A test's rule: every memory limit at 95 % of what it was (below the window's peak)."""
    rows.v["mem_lim"] = np.where(rows.v["rec"], rows.v["mem_lim"] * 0.5, rows.v["mem_lim"])


@rule(after="cpu_limit", reads=("cpu_lim", "cpu_action", "rec", "cpu_req"), writes=("cpu_lim", "cpu_action"))
def tight_cpu_limit(rows: Rows) -> None:
    """A test's rule: a CPU limit at the request (p95 x margin: the pods sit above it more than 5 % of the time)."""
    v = rows.v
    v["cpu_action"] = np.where(v["rec"], "set", v["cpu_action"]).astype(object)
    v["cpu_lim"] = np.where(v["rec"], v["cpu_req"] * 0.6, v["cpu_lim"])


@pytest.fixture(scope="module")
def steady():
    specs = [container("web", "flat", cpu_pattern="diurnal", seed=7), container("api", "diurnal", seed=8)]
    return snapshot_of(specs)


def test_the_self_check_raises_a_memory_limit_the_last_days_would_break(steady):
    pipeline = PIPELINE.with_rules(tight_memory_limit)
    r = compute(steady, CFG, pipeline=pipeline).set_index("workload")
    daily = steady.tables["usage_daily"]
    last = daily[daily["day"] >= pd.Timestamp(steady.meta["window_end"]) - pd.Timedelta(days=7)]
    for wl in ("web", "api"):
        peak = last[last["workload"] == wl]["memory_max_bytes"].max()
        row = r.loc[wl]
        assert row["self_check_memory_peak_bytes"] == peak  # the evidence: the last 7 days' largest raw sample
        assert row["raised_by_backtest"] == "memory limit" and "raised_by_backtest" in row["flags"]
        assert row["memory_limit_bytes_recommended"] == round_memory_up(peak + 1) > peak  # the smallest that passes
        assert row["memory_request_bytes_recommended"] >= row["memory_limit_bytes_recommended"]  # limit = request
        assert "raised by the self-check: the last 7d peaked at" in row["reason"]
    # without the test's rule the recommendation passes: nothing raised
    plain = compute(steady, CFG).set_index("workload")
    assert (plain["raised_by_backtest"] == "").all() and not plain["flags"].str.contains("raised_by_backtest").any()


def test_the_self_check_raises_a_cpu_limit_to_the_smallest_that_passes(steady):
    r = compute(steady, CFG, pipeline=PIPELINE.with_rules(tight_cpu_limit)).set_index("workload")
    test = backtest.last_days(steady, 7)
    thr = CFG.policy("production").throttling_threshold
    for wl in ("web", "api"):
        row = r.loc[wl]
        assert row["self_check_cpu_share_at_limit"] > thr and "CPU limit" in row["raised_by_backtest"]
        ids = test.ids(pd.DataFrame([row[["cluster", "namespace", "kind"]].to_dict() | {"workload": wl, "container": "app"}]))
        share, _ = test.share_above(ids, "cpu", np.array([row["cpu_limit_cores_recommended"]]), strict=False)
        assert share[0] <= thr  # the raised limit passes
        lower = test.lowest_limit(ids, "cpu", thr)[0] / 1.03  # a bucket below the smallest that passes does not
        assert test.share_above(ids, "cpu", np.array([lower]), strict=False)[0][0] > thr
        assert row["cpu_limit_cores_recommended"] <= test.lowest_limit(ids, "cpu", thr)[0] + 0.01  # rounded up to 5-10m


def test_the_self_check_can_be_turned_off_and_needs_no_histograms_for_memory(steady):
    off = dataclasses.replace(CFG, recommend=dataclasses.replace(CFG.recommend, self_check_days=0))
    r = compute(steady, off, pipeline=PIPELINE.with_rules(tight_memory_limit))
    assert (r["raised_by_backtest"] == "").all() and r["self_check_memory_peak_bytes"].isna().all()
    # a fleet-like snapshot without its histograms: memory is still checked from the daily rows, CPU not
    bare = dataclasses.replace(steady, meta={**steady.meta, "tables_not_loaded": ["usage_histograms"]}, cache={})
    r = compute(bare, CFG, pipeline=PIPELINE.with_rules(tight_memory_limit, tight_cpu_limit)).set_index("workload")
    assert (r["raised_by_backtest"] == "memory limit").all() and r["self_check_cpu_share_at_limit"].isna().all()


def test_explain_prints_the_growth_and_the_self_check(grown):
    from rightsize.analysis.explain import explain

    s, r = grown
    text = explain(s, CFG, "prod-00/Deployment/free")
    rate = r.loc["free", "memory_growth_bytes_per_day"] / MIB
    assert f"memory growth: {rate:.1f} MiB per day of pod age (Theil-Sen over 14 whole pod-days" in text
    assert "memory limit: leave unset (none today, and the working set grows" in text
    assert "self-check (the last 7 d replayed): peak" in text and "-> passes" in text
    steady = explain(s, CFG, "prod-00/Deployment/steady")
    assert "memory growth: none (14 whole pod-days" in steady
