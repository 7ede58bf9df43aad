"""Censored demand (analysis/censoring.py), HPA co-adjustment math (analysis/hpa.py), and the rules held to
the generator of known demand (tests/censored_truth.py): each test has its arithmetic written out."""
from __future__ import annotations

import math

import numpy as np
import pytest

from censored_truth import generate, throttle
from rightsize.analysis import censoring, hpa
from rightsize.analysis.recommend import recommend
from rightsize.config import Config
from rightsize.quantity import MIB
from recommend_tables import ctr, one, snap

A = np.array


# --- memory ------------------------------------------------------------------------------------------


def test_kills_per_week_per_replica():
    # 6 kills over 14 days on 3 replicas: 6 / 2 weeks / 3 = 1 a week each; history under an hour counts as one
    assert censoring.kills_per_week(A([6.0, 0.0, 1.0]), A([336.0, 336.0, 0.0]), A([3.0, 1.0, np.nan])) == \
        pytest.approx([1.0, 0.0, 168.0])


def test_pod_life_from_pods_seen_and_other_restarts():
    # 336 h, 2 replicas, 10 pods seen: 8 replacements -> 336 x 2 / 8 = 84 h; 4 restarts of which 1 OOM adds 3
    # resets -> 336 x 2 / 11 = 61.1 h; pods never replaced and no other restart: no reset seen (inf)
    life = censoring.pod_life_hours(A([336.0, 336.0, 336.0]), A([2.0, 2.0, 2.0]), A([10.0, 10.0, 2.0]),
                                    A([0.0, 4.0, 5.0]), A([0.0, 1.0, 5.0]))
    assert life[:2] == pytest.approx([84.0, 672 / 11]) and math.isinf(life[2])


def test_leak_and_spike_shapes():
    # an even climb from 200 to 400: p50 300, p90 380 -> (380 - 300) / (400 - 300) = 0.8 >= 0.5
    # a steady 250 with a spike: p50 250, p90 255 -> 5 / 150 = 0.03
    assert list(censoring.oom_pattern(A([300.0, 250.0]), A([380.0, 255.0]), A([400.0, 400.0]))) == ["leak", "spike"]


def test_leak_projection_adds_a_climb_per_kill_within_the_life():
    # base = 2 x 300 - 400 = 200; 14 kills a week over a 24 h life = 2 climbs of 200 -> 400 + 400 = 800;
    # a life longer than the 7-day horizon is cut at 168 h: 1 kill a week -> 1 climb -> 600
    out = censoring.leak_projection(A([400.0, 400.0]), A([300.0, 300.0]), A([14.0, 1.0]), A([24.0, np.inf]),
                                    A([168.0, 168.0]))
    assert out == pytest.approx([800.0, 600.0])


def test_spike_escalation_is_logarithmic_in_the_kill_rate_and_capped():
    out = censoring.spike_escalation(A([100.0, 100.0, 100.0]), A([0.5, 1.0, 60.0]), A([1.5] * 3), A([2.0] * 3))
    assert out == pytest.approx([100 * (1 + 1.5 * math.log(1.5)), 100 * min(1 + 1.5 * math.log(2), 2.0), 200.0])


def test_memory_demand_takes_the_limit_as_the_lower_bound():
    est = censoring.memory_demand(A([300.0, 300.0]), A([448.0, np.nan]), A([250.0, 250.0]), A([252.0, 252.0]),
                                  A([1.0, 1.0]), A([1.0, 1.0]), A([1.0, 1.0]), A([336.0, 336.0]), A([1.0, 1.0]),
                                  escalation=A([1.5, 1.5]), max_factor=A([2.0, 2.0]), horizon_hours=A([168.0, 168.0]))
    assert list(est["bound"]) == [448.0, 300.0]  # no limit: the observed peak
    assert est["demand"] == pytest.approx([448 * (1 + 1.5 * math.log(1.5)), 300 * (1 + 1.5 * math.log(1.5))])


# --- CPU -----------------------------------------------------------------------------------------------


def test_cpu_excess_from_throttled_seconds_or_assumed():
    # 30% throttled, 100,800 s over 336 h x 1 pod = 1,209,600 pod-s: 100,800 / (0.3 x 1,209,600) = 0.2778 cores
    excess, measured = censoring.cpu_excess(A([100_800.0, np.nan]), A([0.3, 0.3]), A([336.0, 336.0]), A([1.0, 1.0]),
                                            A([0.5, 0.5]), A([0.5, 0.5]))
    assert excess == pytest.approx([100_800 / (0.3 * 1_209_600), 0.25]) and list(measured) == [True, False]


def test_demand_quantile_only_where_the_share_hides_it():
    # limit 1, excess 0.2: 30% throttled -> p95 = 1 + 0.2 ln(6) = 1.358; p50 is seen (0.3 < 0.5) -> NaN
    out = censoring.demand_quantile(A([1.0, 1.0]), A([0.2, 0.2]), A([0.3, 0.3]), A([0.95, 0.5]))
    assert out[0] == pytest.approx(1 + 0.2 * math.log(6)) and math.isnan(out[1])


def test_share_at_the_limit_without_cfs_data():
    stats = {"p50": A([0.1, 0.1, 0.2]), "p90": A([0.2, 0.15, 0.2]), "p95": A([0.2, 0.18, 0.2]), "p99": A([0.2, 0.19, 0.2])}
    assert censoring.share_at_limit(stats, A([0.2, 0.2, 0.2])) == pytest.approx([0.10, 0.01, 0.5])


def test_the_estimate_is_exact_for_the_generators_bursts():
    # One constant minute demand m = 1 core, w = 0.5, limit 1.2: a = 1.2 - 0.5 = 0.7, s = 0.5,
    # P(throttled) = e^-1.4, excess per throttled period = s exactly (the exponential is memoryless).
    used, share, seconds = throttle(np.ones((1, 10)), A([1.2]), A([0.5]))
    assert share[0, 0] == pytest.approx(math.exp(-1.4)) and used[0, 0] == pytest.approx(1 - 0.5 * math.exp(-1.4))
    pod_seconds_hours = 10 / 60
    excess, _ = censoring.cpu_excess(A([seconds.sum()]), A([share.mean()]), A([pod_seconds_hours]), A([1.0]),
                                     A([1.2]), A([0.5]))
    assert excess == pytest.approx([0.5])


# --- HPA -----------------------------------------------------------------------------------------------


def test_hpa_pod_sums_count_main_containers_and_need_every_request():
    groups, counted = A([0, 0, 0, 1, 1]), A([True, True, False, True, True])
    total, complete = hpa.pod_sums(groups, counted, A([0.5, 0.25, 9.0, 0.5, np.nan]))
    assert list(total) == [0.75, 0.75, 0.75, 0.5, 0.5] and list(complete) == [True, True, True, False, False]


def test_hpa_co_adjust_and_clamps():
    # 70% x 1000m = 700m per pod. 800m: 87.5% (kept point). 460m: 152% -> 90%, requests x 152.17/90.
    # 2000m: 35% -> 50% (the point rises), factor 1.
    target, factor = hpa.co_adjust(A([70.0] * 3), A([1.0] * 3), A([0.8, 0.46, 2.0]), A([50.0] * 3), A([90.0] * 3))
    assert target == pytest.approx([87.5, 90.0, 50.0])
    assert factor == pytest.approx([1.0, (70 / 0.46) / 90, 1.0])
    assert hpa.final_target(A([70.0]), A([1.0]), A([0.78]), A([50.0]), A([90.0])) == pytest.approx([90.0])  # 89.7


# --- the rules on known truth ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def known():
    snapshot, truth, _ = generate(12, seed=21, scenarios=("spike_oom", "leak_oom", "throttled"))
    recs = recommend(snapshot, Config()).merge(truth, on=["cluster", "namespace", "kind", "workload", "container"])
    return recs.merge(snapshot.tables["usage"][["workload", "cpu_throttled_ratio"]].rename(
        columns={"cpu_throttled_ratio": "seen_ratio"}), on="workload")


def test_no_oom_killed_container_is_left_below_its_true_peak(known):
    oom = known[known["oom_kills"] > 0]
    assert len(oom) >= 20 and set(oom["oom_pattern"]) == {"spike", "leak"}
    below = oom[oom["memory_limit_bytes_recommended"] < oom["true_memory_peak_bytes"]]
    assert below.empty, below[["workload", "memory_limit_bytes_recommended", "true_memory_peak_bytes"]]
    # the leaks are told apart from the spikes
    assert (oom["oom_pattern"] == np.where(oom["scenario"] == "leak_oom", "leak", "spike")).all()


def test_no_throttled_container_keeps_a_limit_below_its_true_p95(known):
    thr = known[known["seen_ratio"] > 0.05]
    assert len(thr) >= 10 and thr["flags"].str.contains("demand_hidden").all()
    limit = np.where(thr["cpu_limit_action"] == "remove", np.inf, thr["cpu_limit_cores_recommended"])
    assert (limit >= thr["true_cpu_p95_cores"]).all()
    assert (thr["cpu_request_cores_recommended"] > thr["cpu_request_cores_current"] * 0.5).all()


def test_one_off_job_is_flagged_and_a_cronjob_is_not():
    r = recommend(snap(ctr("backfill", kind="Job"), ctr("nightly", kind="CronJob")), Config())
    job, cron = one(r, "backfill"), one(r, "nightly")
    assert "one_off_job" in job["flags"] and "for the next run, change the manifest" in job["reason"]
    assert job["status"] == "change"  # still a recommendation, for the next run
    assert "one_off_job" not in cron["flags"]


def test_hpa_memory_co_adjust_hand_computed():
    # 80% of 1024Mi: scales at 819.2Mi per pod. Memory max 256Mi -> 295Mi: 80 x 1024 / 295 = 277.7% -> 90%:
    # request 819.2 / 0.9 = 910.2Mi -> 911Mi; target 80 x 1024 / 911 = 89.92 -> 90%
    r = one(recommend(snap(ctr(memory_request=1024 * MIB, memory_limit=1024 * MIB, hpa_memory=80)), Config()))
    assert r["memory_request_bytes_recommended"] == 911 * MIB
    assert r["hpa_memory_target_percent_recommended"] == 90
    assert r["memory_limit_bytes_recommended"] == 911 * MIB


def test_hpa_on_one_containers_utilization_keeps_the_request():
    s = snap(ctr(cpu_request=0.5, hpa_cpu=40))
    s.tables["workloads"]["hpa_metrics"] = "ContainerResource:cpu"
    r = one(recommend(s, Config()))
    assert r["cpu_request_cores_recommended"] == 0.5 and np.isnan(r["hpa_cpu_target_percent_recommended"])
    assert "(ContainerResource): request kept" in r["reason"]
