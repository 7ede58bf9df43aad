"""One small hand-made table per rule of the recommendation engine (issue 4); each fails if its rule goes."""
import dataclasses
import math

import numpy as np
import pytest

from rightsize import demo
from rightsize.analysis.explain import explain
from rightsize.analysis.recommend import recommend
from rightsize.analysis.rounding import round_cpu_up, round_memory_up
from rightsize.config import Config, RecommendConfig
from rightsize.errors import ConfigError
from rightsize.quantity import GIB, MIB
from rightsize.schema import RECOMMENDATION_COLUMNS
from recommend_tables import NAN, config_with, ctr, node, one, snap, uniform_margins

CFG = uniform_margins()  # one 15 % margin for every usage pattern: the numbers below are about the other rules


def rec1(row, cfg=CFG, **kw):
    return one(recommend(snap(row, **kw), cfg), row["container"]["workload"], row["container"]["container"])


def flags(r):
    return set(filter(None, r["flags"].split(",")))


# --- output shape -----------------------------------------------------------------------------------


def test_one_row_per_container_with_exactly_the_schema_columns():
    s = snap(ctr("web"), ctr("web", "sidecar"), ctr("api", usage=False))
    r = recommend(s, CFG)
    assert list(r.columns) == [c.name for c in RECOMMENDATION_COLUMNS]
    assert len(r) == 3
    assert r[["usd_per_month_current", "usd_per_month_recommended", "savings_usd_per_month"]].isna().all().all()
    assert one(r, "web")["replicas"] == 2 and one(r, "web")["team"] == "t"


def test_empty_snapshot_gives_empty_table():
    from rightsize.snapshot import Snapshot

    r = recommend(Snapshot(), CFG)
    assert r.empty and list(r.columns) == [c.name for c in RECOMMENDATION_COLUMNS]


# --- production requests and limits -----------------------------------------------------------------


def test_production_cpu_request_is_p95_plus_margin_rounded_up():
    r = rec1(ctr(cpu=(0.1, 0.15, 0.2, 0.3, 0.4)))
    assert r["cpu_basis"] == "p95" and r["cpu_basis_cores"] == pytest.approx(0.2)
    assert r["cpu_request_cores_recommended"] == pytest.approx(0.23)  # 0.2 x 1.15
    assert r["status"] == "change" and r["policy"] == "production" and r["confidence"] == "high"
    assert r["cpu_change_percent"] == pytest.approx(-54.0)


def test_production_memory_request_is_max_plus_margin_and_limit_equals_request():
    r = rec1(ctr(memory=(200 * MIB, 220 * MIB, 230 * MIB, 240 * MIB, 256 * MIB)))
    assert r["memory_basis"] == "max"
    assert r["memory_request_bytes_recommended"] == 295 * MIB  # 256Mi x 1.15 = 294.4Mi -> 295Mi
    assert r["memory_limit_bytes_recommended"] == r["memory_request_bytes_recommended"]


def test_margin_percentile_and_memory_limit_factor_are_configurable():
    cfg = config_with(margin=0.5, cpu_request_percentile="p99", memory_request_percentile="p95",
                      memory_limit="factor", memory_limit_factor=1.5)
    r = rec1(ctr(), cfg)
    assert r["cpu_request_cores_recommended"] == pytest.approx(0.45)  # p99 0.3 x 1.5
    # p95 230Mi x 1.5 = 345Mi (above the observed max 256Mi); limit 345Mi x 1.5 = 517.5 -> 518Mi
    assert r["memory_request_bytes_recommended"] == 345 * MIB
    assert r["memory_limit_bytes_recommended"] == 518 * MIB


def test_no_cpu_limit_recommended_when_there_is_none():
    r = rec1(ctr(cpu_limit=NAN))
    assert r["cpu_limit_action"] == "keep_unset" and math.isnan(r["cpu_limit_cores_recommended"])


def test_existing_cpu_limit_is_kept_proportional():
    r = rec1(ctr(cpu_request=0.5, cpu_limit=1.0))  # ratio 2
    assert r["cpu_limit_action"] == "set"
    assert r["cpu_limit_cores_recommended"] == pytest.approx(0.46)  # 230m x 2


def test_cpu_limit_modes_factor_and_remove():
    r = rec1(ctr(cpu_limit=NAN), config_with(cpu_limit="factor", cpu_limit_factor=3))
    assert r["cpu_limit_action"] == "set" and r["cpu_limit_cores_recommended"] == pytest.approx(0.69)
    r = rec1(ctr(cpu_limit=1.0), config_with(cpu_limit="remove"))
    assert r["cpu_limit_action"] == "remove" and math.isnan(r["cpu_limit_cores_recommended"])
    assert r["status"] == "change"
    r = rec1(ctr(cpu_limit=NAN), config_with(cpu_limit="remove"))
    assert r["cpu_limit_action"] == "keep_unset"


def test_cpu_limit_never_below_request_or_p99_usage():
    # ratio 1 limit would be 230m, but p99 usage is 300m: a limit under it would throttle routinely
    r = rec1(ctr(cpu_request=0.5, cpu_limit=0.5, throttled=0.01))
    assert r["cpu_limit_cores_recommended"] == pytest.approx(0.3)
    assert "p99" in r["reason"]


def test_memory_limit_proportional_mode():
    r = rec1(ctr(memory_request=256 * MIB, memory_limit=512 * MIB), config_with(memory_limit="proportional"))
    assert r["memory_limit_bytes_recommended"] == 590 * MIB  # 295Mi x 2


# --- non-production ----------------------------------------------------------------------------------


def test_non_production_requests_from_p50_p90_and_limits_by_factors():
    r = rec1(ctr(namespace="staging", cpu_limit=NAN, memory=(100 * MIB, 200 * MIB, 210 * MIB, 215 * MIB, 220 * MIB)))
    assert r["policy"] == "non_production"
    assert r["cpu_request_cores_recommended"] == pytest.approx(0.12)  # p50 0.1 x 1.15 = 115m -> 120m
    assert r["cpu_limit_action"] == "set" and r["cpu_limit_cores_recommended"] == pytest.approx(0.48)  # x4
    assert r["memory_request_bytes_recommended"] == 230 * MIB  # p90 200Mi x 1.15
    assert r["memory_limit_bytes_recommended"] == 460 * MIB  # x2


def test_non_production_memory_limit_never_below_observed_max():
    # p90 x 1.15 = 115Mi but a spike reached 300Mi: the request packs at p90, the limit covers the max
    r = rec1(ctr(namespace="staging", memory=(90 * MIB, 100 * MIB, 110 * MIB, 200 * MIB, 300 * MIB)),
             config_with("non_production", memory_limit_factor=1.0))
    assert r["memory_request_bytes_recommended"] == 115 * MIB
    assert r["memory_limit_bytes_recommended"] == 300 * MIB


def test_policy_can_require_the_request_to_cover_the_max():
    r = rec1(ctr(namespace="staging", memory=(90 * MIB, 100 * MIB, 110 * MIB, 200 * MIB, 300 * MIB)),
             config_with("non_production", memory_limit_factor=1.0, memory_request_covers_max=True))
    assert r["memory_request_bytes_recommended"] == 300 * MIB
    assert "observed max" in r["reason"]


# --- safety rules ------------------------------------------------------------------------------------


def test_memory_request_never_below_observed_max_even_with_a_low_percentile():
    r = rec1(ctr(memory=(100 * MIB, 110 * MIB, 120 * MIB, 130 * MIB, 400 * MIB)),
             config_with(memory_request_percentile="p50", margin=0.0))
    assert r["memory_request_bytes_recommended"] == 400 * MIB
    assert r["memory_limit_bytes_recommended"] == 400 * MIB


def test_oom_vpa_bump_is_the_floor_of_the_oom_rule():
    # no limit, so the peak is the only lower bound: 50Mi x 1.2 = 60Mi, 50Mi + 100Mi = 150Mi; the escalation
    # for 1 kill in 2 weeks over 2 replicas (0.25 a week each) is 50Mi x (1 + 1.5 ln 1.25) = 66.7Mi
    r = rec1(ctr(memory=(40 * MIB,) * 4 + (50 * MIB,), memory_request=64 * MIB, memory_limit=NAN, oom_kills=1))
    assert r["memory_request_bytes_recommended"] == 150 * MIB
    assert r["memory_limit_bytes_recommended"] == 150 * MIB
    assert "oom_risk" in flags(r) and r["status"] == "change" and r["oom_pattern"] == "spike"
    assert "VPA floor max(peak x 1.2, peak + 100Mi) = 150Mi" in r["reason"]


@pytest.mark.parametrize("kills, factor", [
    (1, 1 + 1.5 * math.log(1 + 0.5)),  # 1 kill in 2 weeks, 1 replica: 0.5 a week -> x1.608
    (120, 2.0),                         # 60 a week: 1 + 1.5 ln 61 = 7.2, capped at oom_max_factor 2
])
def test_oom_spike_escalates_from_the_limit_with_the_kill_rate(kills, factor):
    # billing-profile of issue 16: limit 448Mi, a steady 250Mi working set, a spike killed it before it was seen
    # above 440Mi. The limit is the lower bound (the kill happened there), not the observed 440Mi.
    row = ctr(memory=(250 * MIB, 252 * MIB, 253 * MIB, 255 * MIB, 440 * MIB), memory_request=448 * MIB,
              memory_limit=448 * MIB, oom_kills=kills, restarts=kills, replicas=1, pods=1)
    r = rec1(row)
    expected = math.ceil(448 * factor) * MIB  # whole MiB below 1Gi
    assert r["memory_request_bytes_recommended"] == expected
    assert r["memory_limit_bytes_recommended"] == expected
    assert r["memory_demand_estimate_bytes"] == pytest.approx(448 * MIB * factor)
    assert r["oom_pattern"] == "spike" and "memory_leak" not in flags(r)
    assert "observed peak 440Mi and limit 448Mi are lower bounds" in r["reason"]


def test_oom_leak_is_projected_over_the_pod_life():
    # An even climb from 200Mi to the 400Mi limit (p50 300Mi = halfway, p90 380Mi), killed 28x in 14 days on
    # 1 replica whose pods are replaced daily (15 pods seen: life = 336 h x 1 / (15 - 1) = 24 h).
    # 14 kills a week x 24 h / 168 h = 2 climbs of 200Mi within a life: 400Mi + 2 x 200Mi = 800Mi.
    row = ctr(memory=(300 * MIB, 380 * MIB, 390 * MIB, 398 * MIB, 399 * MIB), memory_request=400 * MIB,
              memory_limit=400 * MIB, oom_kills=28, restarts=28, replicas=1, pods=15)
    r = rec1(row)
    assert r["oom_pattern"] == "leak" and {"oom_risk", "memory_leak"} <= flags(r)
    assert r["memory_demand_estimate_bytes"] == pytest.approx(800 * MIB)
    assert r["memory_request_bytes_recommended"] == 800 * MIB and r["memory_limit_bytes_recommended"] == 800 * MIB
    assert "leak climbing to the limit, projected over 1.0d of pod life" in r["reason"]


def test_oom_escalation_is_capped_by_node_allocatable_and_says_so():
    # the same leak, never replaced (1 pod): projected over oom_horizon 7 d = 14 climbs -> 3200Mi; the node has 1Gi
    row = ctr(memory=(300 * MIB, 380 * MIB, 390 * MIB, 398 * MIB, 399 * MIB), memory_request=400 * MIB,
              memory_limit=400 * MIB, oom_kills=28, restarts=28, replicas=1, pods=1)
    r = rec1(row, nodes=[node(memory=1 * GIB)])
    assert r["memory_demand_estimate_bytes"] == 1 * GIB
    assert r["memory_request_bytes_recommended"] == 1 * GIB
    assert "capped at the largest node's allocatable 1024Mi" in r["reason"]
    r = rec1(row, nodes=[node(memory=8 * GIB)])
    assert r["memory_request_bytes_recommended"] == 400 * MIB + 14 * 200 * MIB


def test_oom_killed_memory_is_never_lowered():
    # Killed although usage stayed small: the 4Gi limit is still a lower bound (a kill that fast is never
    # sampled), escalated for 1 kill over 2 replicas in 2 weeks: 4096Mi x (1 + 1.5 ln 1.25) = 5467.1Mi -> 5472Mi
    r = rec1(ctr(memory_request=4 * GIB, memory_limit=4 * GIB, oom_kills=1))
    assert r["memory_request_bytes_recommended"] == 5472 * MIB
    assert r["memory_limit_bytes_recommended"] == 5472 * MIB
    r = rec1(ctr(memory_request=4 * GIB, memory_limit=4 * GIB, oom_kills=0))
    assert r["memory_request_bytes_recommended"] == 295 * MIB


# 14 days on 2 replicas: 2,419,200 pod-seconds
POD_SECONDS = 14 * 24 * 3600 * 2


@pytest.mark.parametrize("throttled_seconds", [0.1 * 0.4 * POD_SECONDS, NAN])
def test_throttled_cpu_demand_is_estimated_and_the_limit_raised(throttled_seconds):
    # limit 200m, throttled in 40% of periods. Measured: E = 96,768 s / (0.4 x 2,419,200 pod-s) = 100m above the
    # limit per throttled period; without the metric E = throttled_excess_default 50% x 200m = 100m too.
    # p95 demand = 200m + 100m x ln(0.4 / 0.05) = 407.9m -> request 407.9m x 1.15 = 469.1m -> 470m;
    # p99 demand = 200m + 100m x ln(0.4 / 0.01) = 568.9m -> limit 570m (above current x 1.5 = 300m).
    r = rec1(ctr(cpu_request=0.2, cpu_limit=0.2, cpu=(0.15, 0.2, 0.2, 0.2, 0.2), throttled=0.4,
                 throttled_seconds=throttled_seconds))
    assert {"throttled", "demand_hidden"} <= flags(r) and r["status"] == "change"
    assert r["cpu_demand_estimate_cores"] == pytest.approx(0.2 + 0.1 * math.log(8))
    assert r["cpu_basis_cores"] == pytest.approx(0.2 + 0.1 * math.log(8))
    assert r["cpu_request_cores_recommended"] == pytest.approx(0.47)
    assert r["cpu_limit_action"] == "set" and r["cpu_limit_cores_recommended"] == pytest.approx(0.57)
    assert "demand hidden by the limit" in r["reason"]
    assert ("held back on average (throttled seconds)" in r["reason"]) == (not math.isnan(throttled_seconds))


def test_throttled_cpu_limit_removed_when_the_policy_says_so():
    r = rec1(ctr(cpu_request=0.2, cpu_limit=0.2, throttled=0.4), config_with(throttled_limit_action="remove"))
    assert r["cpu_limit_action"] == "remove" and math.isnan(r["cpu_limit_cores_recommended"])
    assert "throttled" in flags(r)


def test_throttling_detected_from_five_percent_of_periods():
    # 6% of periods: throttled (kube-prometheus would wait for 25%); the p95 200m sits at the limit, hidden.
    r = rec1(ctr(cpu_request=0.2, cpu_limit=0.2, throttled=0.06))
    assert {"throttled", "demand_hidden"} <= flags(r)
    assert r["cpu_limit_cores_recommended"] > 0.2
    # 4% of periods: below the threshold; the limit is only kept at the p99 300m
    r = rec1(ctr(cpu_request=0.2, cpu_limit=0.2, throttled=0.04))
    assert "throttled" not in flags(r) and r["cpu_limit_cores_recommended"] == pytest.approx(0.3)
    r = rec1(ctr(cpu_limit=NAN, throttled=0.9))
    assert "throttled" not in flags(r) and r["cpu_limit_action"] == "keep_unset"
    # the threshold is the policy's
    r = rec1(ctr(cpu_request=0.2, cpu_limit=0.2, throttled=0.06), config_with(throttling_threshold=0.25))
    assert "throttled" not in flags(r)


def test_usage_at_the_limit_counts_as_throttled_without_cfs_data():
    # no CFS metrics (ratio NaN), but the p90 is at the 200m limit: at least 10% of the time held there
    r = rec1(ctr(cpu_request=0.2, cpu_limit=0.2, cpu=(0.15, 0.2, 0.2, 0.2, 0.2)))
    assert {"throttled", "demand_hidden"} <= flags(r) and "no CFS data" in r["reason"]
    # p95 = 200m + 100m x ln(0.10 / 0.05) = 269.3m -> x 1.15 = 309.7m -> 310m
    assert r["cpu_request_cores_recommended"] == pytest.approx(0.31)


def test_non_production_cpu_limit_never_below_the_observed_max():
    # CI runner of issue 16: p50 500m -> request 575m -> 580m, x4 = 2320m, but a build peaked at 2944m
    row = ctr(namespace="ci", cpu_request=0.5, cpu_limit=NAN, cpu=(0.5, 1.5, 2.0, 2.5, 2.944))
    r = rec1(row)
    assert r["cpu_limit_cores_recommended"] == pytest.approx(2.95)
    assert "observed max" in r["reason"]
    r = rec1(row, config_with("non_production", cpu_limit_covers_max=False))
    assert r["cpu_limit_cores_recommended"] == pytest.approx(2.5)  # request x 4 = 2.32, raised to the p99 2.5


def test_hpa_keep_policy_keeps_the_cpu_request_and_is_flagged():
    r = rec1(ctr(cpu_request=0.5, hpa_cpu=70), config_with(hpa_request="keep"))
    assert r["cpu_request_cores_recommended"] == 0.5
    assert "hpa" in flags(r) and "HPA" in r["reason"]
    assert math.isnan(r["hpa_cpu_target_percent_recommended"])
    assert r["memory_request_bytes_recommended"] == 295 * MIB  # memory still right-sized


def test_hpa_co_adjust_keeps_the_scaling_point():
    # one container, CPU request 500m at a 40% target: the HPA scales out at 200m per pod. p95 usage 200m
    # -> request 230m; new target 40% x 500m / 230m = 86.96% -> 87%, and 87% x 230m = 200.1m per pod.
    r = rec1(ctr(cpu_request=0.5, hpa_cpu=40))
    assert r["cpu_request_cores_recommended"] == pytest.approx(0.23)
    assert r["hpa_cpu_target_percent_current"] == 40 and r["hpa_cpu_target_percent_recommended"] == 87
    assert r["status"] == "change" and "40% -> 87% keeps the scaling point" in r["reason"]


def test_hpa_co_adjust_sums_the_pod_and_clamps_the_target():
    # two containers, 70% of (500m + 500m) = 700m per pod. Requests 230m + 230m = 460m: 70 x 1000 / 460 = 152%,
    # clamped at 90%: both requests grow by 152.2 / 90 to 700m / 0.9 = 777.8m per pod -> 389m each -> 390m,
    # pod 780m; target 70 x 1000 / 780 = 89.7 -> 90%.
    rows = [ctr("web", "a", cpu_request=0.5, hpa_cpu=70), ctr("web", "b", cpu_request=0.5, hpa_cpu=70)]
    r = recommend(snap(*rows), CFG)
    assert list(r["cpu_request_cores_recommended"]) == pytest.approx([0.39, 0.39])
    assert list(r["hpa_cpu_target_percent_recommended"]) == [90, 90]
    assert "requests raised so the HPA target stays at most 90%" in r["reason"].iloc[0]
    # under the minimum: 70% of 100m = 70m per pod, usage p95 200m -> 230m: 70 x 100 / 230 = 30% -> 50%,
    # the request stays 230m (never under the usage) and the scaling point rises to 115m
    r = rec1(ctr(cpu_request=0.1, hpa_cpu=70))
    assert r["cpu_request_cores_recommended"] == pytest.approx(0.23) and r["hpa_cpu_target_percent_recommended"] == 50
    assert "scaling point rises to 115m" in r["reason"]


def test_hpa_co_adjust_needs_every_container_request():
    rows = [ctr("web", "a", cpu_request=0.5, hpa_cpu=70), ctr("web", "b", cpu_request=NAN, hpa_cpu=70)]
    r = recommend(snap(*rows), CFG)
    assert one(r, "web", "a")["cpu_request_cores_recommended"] == 0.5
    assert r["hpa_cpu_target_percent_recommended"].isna().all()
    assert "not every container has a request" in one(r, "web", "a")["reason"]


def test_hpa_on_memory_keeps_memory_but_not_below_the_observed_max():
    keep = config_with(hpa_request="keep")
    r = rec1(ctr(memory_request=1 * GIB, memory_limit=1 * GIB, hpa_memory=80), keep)
    assert r["memory_request_bytes_recommended"] == 1 * GIB
    r = rec1(ctr(memory_request=200 * MIB, memory_limit=200 * MIB, hpa_memory=80), keep)  # max is 256Mi
    assert r["memory_request_bytes_recommended"] == 256 * MIB and r["status"] == "change"


def test_hpa_request_change_allowed_by_policy():
    r = rec1(ctr(cpu_request=0.5, hpa_cpu=70), config_with(allow_hpa_request_change=True))
    assert r["cpu_request_cores_recommended"] == pytest.approx(0.23)
    assert math.isnan(r["hpa_cpu_target_percent_recommended"])  # the target is left alone


def test_minimum_requests():
    r = rec1(ctr(cpu=(0.0, 0.0, 0.001, 0.001, 0.002), memory=(MIB, MIB, MIB, MIB, 2 * MIB)))
    assert r["cpu_request_cores_recommended"] == pytest.approx(0.01)
    assert r["memory_request_bytes_recommended"] == 16 * MIB
    r = rec1(ctr(cpu=(0.0, 0.0, 0.001, 0.001, 0.002)), config_with(min_cpu=0.05))
    assert r["cpu_request_cores_recommended"] == pytest.approx(0.05)


def test_maximum_is_the_largest_node_allocatable_or_the_policy_max():
    big = ctr(cpu=(3, 5, 7, 7.5, 8), cpu_request=4, memory=(GIB,) * 4 + (40 * GIB,), memory_request=48 * GIB,
              memory_limit=48 * GIB)
    r = rec1(big, nodes=[node("a", cpu=3.81, memory=30 * GIB), node("b", cpu=7.81, memory=60 * GIB)])
    assert r["cpu_request_cores_recommended"] == pytest.approx(7.8)  # 7 x 1.15 = 8.05 -> capped at 7.81 -> 7.8
    r = rec1(big, nodes=[node("a", cpu=4.0)])
    assert r["cpu_request_cores_recommended"] == pytest.approx(4.0)
    assert "capped" in r["reason"]
    r = rec1(big, config_with(max_cpu=2.0), nodes=[node("a", cpu=4.0)])
    assert r["cpu_request_cores_recommended"] == pytest.approx(2.0)
    r = rec1(big, nodes=[])  # no nodes known: no maximum
    assert r["cpu_request_cores_recommended"] == pytest.approx(8.05)


def test_memory_safety_beats_the_maximum():
    row = ctr(memory=(GIB,) * 4 + (40 * GIB,), memory_request=48 * GIB, memory_limit=48 * GIB)
    r = rec1(row, nodes=[node("a", memory=30 * GIB)])
    assert r["memory_request_bytes_recommended"] >= 40 * GIB and "above the max" in r["reason"]
    r = rec1(ctr(memory=(GIB,) * 5), nodes=[node("a", memory=1.1 * GIB)])  # 1Gi x 1.15 capped at 1.1Gi, rounded down
    assert GIB <= r["memory_request_bytes_recommended"] <= 1.1 * GIB


# --- history and confidence --------------------------------------------------------------------------


def test_too_little_history_gives_no_recommendation_with_the_reason():
    r = rec1(ctr(hours=36))
    assert r["status"] == "no_recommendation" and "too little history" in r["reason"]
    assert math.isnan(r["cpu_request_cores_recommended"]) and math.isnan(r["memory_request_bytes_recommended"])
    assert r["cpu_limit_action"] == "none" and r["confidence"] == ""
    assert r["hours_covered"] == 36


def test_too_few_samples_gives_no_recommendation():
    r = rec1(ctr(hours=14 * 24, samples=50))
    assert r["status"] == "no_recommendation" and "too few samples" in r["reason"]


def test_history_thresholds_are_configurable():
    r = rec1(ctr(hours=36, samples=500), config_with(min_history=86400.0))
    assert r["status"] == "change"


def test_no_usage_row_gives_no_recommendation():
    r = rec1(ctr(usage=False))
    assert r["status"] == "no_recommendation" and r["reason"] == "no usage data"
    assert math.isnan(r["memory_max_bytes"])


def test_ignored_workload():
    r = rec1(ctr(ignore=True))
    assert r["status"] == "ignored" and "annotation" in r["reason"]
    assert math.isnan(r["cpu_request_cores_recommended"]) and r["cpu_limit_action"] == "none"


def test_short_history_widens_the_margin_vpa_style_and_labels_confidence():
    # 4 days: factor (1 + 1/4) / (1 + 1/7) = 1.09375 on top of the 15% margin
    r = rec1(ctr(hours=96, cpu=(0.1, 0.15, 1.0, 1.1, 1.2)))
    assert r["cpu_request_cores_recommended"] == pytest.approx(float(round_cpu_up(1.0 * 1.15 * 1.09375)))
    assert r["cpu_request_cores_recommended"] == pytest.approx(1.3)  # plain 15% would be 1.15
    assert r["confidence"] == "low" and "low_confidence" in flags(r) and "widened" in r["reason"]
    r = rec1(ctr(hours=6 * 24, cpu=(0.1, 0.15, 1.0, 1.1, 1.2)))
    assert r["confidence"] == "medium" and "low_confidence" not in flags(r)
    assert r["cpu_request_cores_recommended"] == pytest.approx(float(round_cpu_up(1.15 * (1 + 1 / 6) / (1 + 1 / 7))))
    r = rec1(ctr(hours=14 * 24, cpu=(0.1, 0.15, 1.0, 1.1, 1.2)))
    assert r["confidence"] == "high" and r["cpu_request_cores_recommended"] == pytest.approx(1.15)


def test_confidence_uses_samples_too():
    # 14 days covered but only 4 days worth of 5-minute samples (gaps): treated as 4 days
    r = rec1(ctr(hours=14 * 24, samples=4 * 288))
    assert r["confidence"] == "low"


def test_evidence_is_carried_into_the_output():
    r = rec1(ctr(pods=7, restarts=3, throttled=0.05, cpu_limit=1.0))
    assert (r["pods_seen"], r["restarts"], r["samples"]) == (7, 3, 14 * 24 * 12)
    assert r["cpu_throttled_ratio"] == pytest.approx(0.05) and r["memory_max_bytes"] == 256 * MIB


# --- stability -------------------------------------------------------------------------------------


def test_small_changes_are_kept_but_still_shown():
    # recommendation 230m / 295Mi against current 220m / 300Mi: within 10%
    r = rec1(ctr(cpu_request=0.22, memory_request=300 * MIB, memory_limit=300 * MIB))
    assert r["status"] == "keep" and "below the threshold" in r["reason"]
    assert r["cpu_request_cores_recommended"] == pytest.approx(0.23)
    assert r["memory_request_bytes_recommended"] == 295 * MIB


def test_relative_threshold():
    # 2.0 -> 2.1 cores is 100m (above the 10m absolute threshold) but only 5%
    row = ctr(cpu=(1.0, 1.5, 1.8, 1.9, 2.0), cpu_request=2.0, memory_request=300 * MIB, memory_limit=300 * MIB)
    r = rec1(row)
    assert r["cpu_request_cores_recommended"] == pytest.approx(2.1) and r["status"] == "keep"
    assert rec1(row, config_with(change_threshold=0.01))["status"] == "change"


def test_absolute_thresholds_apply_too():
    # CPU 20m -> 30m is +50% but only 10m; memory 60Mi -> 69Mi is +15% but only 9Mi (< 32Mi)
    row = ctr(cpu=(0.01, 0.02, 0.026, 0.03, 0.03), cpu_request=0.02, memory=(50 * MIB,) * 4 + (60 * MIB,),
              memory_request=60 * MIB, memory_limit=60 * MIB)
    r = rec1(row)
    assert r["cpu_request_cores_recommended"] == pytest.approx(0.03)
    assert r["memory_request_bytes_recommended"] == 69 * MIB
    assert r["status"] == "keep"
    assert rec1(row, config_with(change_threshold_cpu=0.005))["status"] == "change"


def test_safety_beats_the_change_threshold():
    # current 250Mi is under the observed max 256Mi: change even though 295Mi is within 32Mi... of nothing
    r = rec1(ctr(memory_request=250 * MIB, memory_limit=250 * MIB, cpu_request=0.23),
             config_with(change_threshold=0.5, change_threshold_memory=GIB))
    assert r["status"] == "change"
    r = rec1(ctr(memory_request=290 * MIB, memory_limit=290 * MIB, cpu_request=0.23),
             config_with(change_threshold=0.5, change_threshold_memory=GIB))
    assert r["status"] == "keep"


def test_setting_an_unset_value_is_a_change():
    r = rec1(ctr(cpu_request=0.23, memory_request=295 * MIB, memory_limit=NAN))
    assert r["status"] == "change" and "no_limit" in flags(r)


# --- flags -----------------------------------------------------------------------------------------


def test_flags_no_request_over_and_under_provisioned():
    r = rec1(ctr(cpu_request=NAN, memory_request=NAN, memory_limit=NAN))
    assert {"no_request", "no_limit"} <= flags(r) and math.isnan(r["cpu_change_percent"])
    r = rec1(ctr(cpu_request=2.0))
    assert "over_provisioned" in flags(r) and "under_provisioned" not in flags(r)
    r = rec1(ctr(cpu_request=0.1))  # p95 usage 200m above the 100m request
    assert "under_provisioned" in flags(r) and "over_provisioned" not in flags(r)
    r = rec1(ctr(cpu_request=0.4), dataclasses.replace(CFG, recommend=RecommendConfig(over_provisioned_factor=1.5)))
    assert "over_provisioned" in flags(r)


def test_no_limit_flag_only_for_production_style_memory_limits():
    r = rec1(ctr(namespace="staging", memory_limit=NAN))
    assert "no_limit" not in flags(r)


# --- accuracy on synthetic series --------------------------------------------------------------------


def test_accuracy_on_series_with_known_percentiles():
    rng = np.random.default_rng(3)
    # CPU: a permutation of 1..10001 millicores; with linear interpolation the q-quantile is 1 + q x 10000 exactly.
    cpu_m = rng.permutation(np.arange(1, 10002, dtype=float))
    # memory: permutation of 100..1100 MiB in 1Mi steps (1001 values): q-quantile = 100 + q x 1000 MiB.
    mem_mi = rng.permutation(np.arange(100, 1101, dtype=float))
    known_cpu = {"p50": 5001, "p90": 9001, "p95": 9501, "p99": 9901, "max": 10001}
    known_mem = {"p50": 600, "p90": 1000, "p95": 1050, "p99": 1090, "max": 1100}
    qs = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}
    for p, q in qs.items():  # numpy agrees with the closed form
        assert np.quantile(cpu_m, q) == pytest.approx(known_cpu[p])
        assert np.quantile(mem_mi, q) == pytest.approx(known_mem[p])
    stats_cpu = tuple(np.quantile(cpu_m, q) / 1000 for q in qs.values()) + (cpu_m.max() / 1000,)
    stats_mem = tuple(np.quantile(mem_mi, q) * MIB for q in qs.values()) + (mem_mi.max() * MIB,)
    rows = [ctr("prod", cpu=stats_cpu, memory=stats_mem, cpu_request=1.0, memory_request=1 * GIB, memory_limit=1 * GIB),
            ctr("np", namespace="staging", cpu=stats_cpu, memory=stats_mem, cpu_request=1.0, memory_request=1 * GIB)]
    r = recommend(snap(*rows, nodes=[node(cpu=32, memory=128 * GIB)]), CFG)
    prod, nonprod = one(r, "prod"), r[r["namespace"] == "staging"].iloc[0]
    assert prod["cpu_request_cores_recommended"] == pytest.approx(float(round_cpu_up(9.501 * 1.15)))
    assert prod["cpu_request_cores_recommended"] == pytest.approx(10.95)  # 10.92615 -> 50m steps
    assert prod["memory_request_bytes_recommended"] == round_memory_up(1100 * MIB * 1.15)
    assert prod["memory_request_bytes_recommended"] == 1280 * MIB  # 1265Mi -> 16Mi steps above 1Gi
    assert nonprod["cpu_request_cores_recommended"] == pytest.approx(float(round_cpu_up(5.001 * 1.15)))
    assert nonprod["cpu_request_cores_recommended"] == pytest.approx(5.8)  # 5.75115 -> 50m steps
    # non-production memory: p90 1000Mi x 1.15 = 1150Mi is above the max 1100Mi -> 1152Mi (16Mi steps)
    assert nonprod["memory_request_bytes_recommended"] == 1152 * MIB


# --- explain -----------------------------------------------------------------------------------------


def test_explain_prints_the_reasoning_for_each_container():
    s = snap(ctr("web", cpu_request=0.2, cpu_limit=0.2, throttled=0.4, oom_kills=1), ctr("web", "sidecar"), ctr("api"))
    text = explain(s, CFG, "shop/deployment/web")
    assert "c1/shop/Deployment/web" in text
    assert "container app" in text and "container sidecar" in text and "container api" not in text
    assert "p95 200m x (1 + 15%, bursty usage)" in text  # the computation, with the usage pattern the margin is for
    assert "memory growth: not checked (no per-pod daily rows" in text  # the hand-made snapshot has none
    assert "self-check: the last 7 d could not be replayed" in text
    assert "VPA bump" in text and "throttled 40%" in text and "memory censored: OOM-killed 1x" in text
    assert "rules applied:" in text and "oom_demand: Censored memory: an OOM-killed" in text
    assert "cpu_throttling: Censored CPU: a throttled" in text and "hpa_coadjust" not in text
    assert "policy: production (default policy)" in text
    assert explain(s, CFG, "c1/shop/Deployment/web") == text
    # one container: computed with its workload (the same numbers), shown alone
    sidecar = explain(s, CFG, "shop/Deployment/web:sidecar")
    assert "container sidecar" in sidecar and "container app" not in sidecar
    assert sidecar.split("  container sidecar")[1] == text.split("  container sidecar")[1]
    with pytest.raises(ConfigError, match=r"--explain: shop/Deployment/web has no container 'proxy'; its containers: app, sidecar"):
        explain(s, CFG, "shop/Deployment/web:proxy")


def test_explain_unknown_workload_lists_close_matches():
    s = snap(ctr("checkout"), ctr("cart"))
    with pytest.raises(ConfigError, match="did you mean: shop/Deployment/checkout"):
        explain(s, CFG, "shop/Deployment/checkuot")
    with pytest.raises(ConfigError, match="shop/Deployment/checkout"):
        explain(s, CFG, "shop/StatefulSet/checkout")
    with pytest.raises(ConfigError, match="NAMESPACE/KIND/NAME"):
        explain(s, CFG, "checkout")


def test_explain_no_recommendation_and_short_history():
    text = explain(snap(ctr("web", hours=24)), CFG, "shop/Deployment/web")
    assert "NO_RECOMMENDATION" in text and "too little history" in text


# --- the demo --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_recs():
    s = demo.generate()
    return s, recommend(s, CFG)


def test_demo_output_conforms(demo_recs):
    s, r = demo_recs
    assert list(r.columns) == [c.name for c in RECOMMENDATION_COLUMNS]
    assert len(r) == len(s.tables["containers"])
    assert set(r["status"]) <= {"change", "keep", "no_recommendation", "ignored"}
    assert set(r["cpu_limit_action"]) <= {"set", "keep_unset", "remove", "none"}
    has = r["status"].isin(["change", "keep"])
    assert r.loc[has, "memory_request_bytes_recommended"].notna().all()
    # a JVM sized by its runtime holds heap + non-heap (its working set followed the old heap); the others the max
    jvm = has & r["runtime"].eq("jvm") & r["live_set_bytes"].notna() & r["non_heap_bytes"].notna()
    heap = r["heap_bytes_recommended"].fillna(r["heap_bytes_current"])
    assert jvm.sum() == 2 and (r.loc[jvm, "memory_request_bytes_recommended"] >= heap[jvm] + r.loc[jvm, "non_heap_bytes"]).all()
    assert (r.loc[has & ~jvm, "memory_request_bytes_recommended"] >= r.loc[has & ~jvm, "memory_max_bytes"]).all()
    limited = has & (r["memory_limit_action"] == "set")
    assert (r.loc[limited, "memory_limit_bytes_recommended"] >= r.loc[limited, "memory_request_bytes_recommended"]).all()
    # a growing working set without a limit today is left without one (memory_growth_limit = "unset")
    unset = has & (r["memory_limit_action"] == "keep_unset")
    assert r.loc[unset, "memory_limit_bytes_recommended"].isna().all() and r.loc[unset, "memory_limit_bytes_current"].isna().all()
    assert r.loc[unset, "flags"].str.contains("memory_growth").all()
    assert set(r.loc[has, "memory_limit_action"]) <= {"set", "keep_unset"} and set(r.loc[~has, "memory_limit_action"]) <= {"none"}
    assert r.loc[~has, ["cpu_request_cores_recommended", "memory_request_bytes_recommended"]].isna().all().all()
    assert (r["reason"] != "").all()


def row_of(r, ns, wl, c):
    return r[(r["namespace"] == ns) & (r["workload"] == wl) & (r["container"] == c)].iloc[0]


def test_demo_situations(demo_recs):
    _, r = demo_recs
    search = row_of(r, "shop", "search", "app")
    assert "oom_risk" in flags(search) and search["memory_request_bytes_recommended"] > search["memory_request_bytes_current"]
    checkout = row_of(r, "shop", "checkout", "app")
    assert "throttled" in flags(checkout) and checkout["cpu_limit_cores_recommended"] > checkout["cpu_limit_cores_current"]
    assert row_of(r, "ci-runners", "cache", "cache")["status"] == "ignored"
    new = row_of(r, "shop", "new-feature", "app")
    assert new["status"] == "no_recommendation" and "history" in new["reason"]
    assert set(r.loc[r["namespace"] == "staging", "policy"]) == {"non_production"}
    assert set(r.loc[r["namespace"] == "shop", "policy"]) == {"production"}
    frontend = row_of(r, "shop", "frontend", "web")
    assert "hpa" in flags(frontend)
    # co-adjusted: the scaling point target x request stays within the target's rounding (half a percent)
    point = frontend["hpa_cpu_target_percent_current"] * frontend["cpu_request_cores_current"]
    new_point = frontend["hpa_cpu_target_percent_recommended"] * frontend["cpu_request_cores_recommended"]
    assert abs(new_point - point) <= 0.5 * frontend["cpu_request_cores_recommended"]
    assert "low_confidence" in flags(row_of(r, "data", "backfill-2026-11", "backfill"))
    assert {"no_request", "no_limit"} <= flags(row_of(r, "shop", "legacy-admin", "app"))


def test_replicas_a_spec_cannot_state_are_estimated_from_pod_hours():
    # a DaemonSet read from manifests has no replica count: 5,376 pod-hours over a 336 h window
    # is 16 pods on average, which is what its cost must be multiplied by
    from rightsize.analysis.cost import add_costs
    from rightsize.sources.aws import collect_prices

    s = demo.generate()
    collect_prices(CFG, s, offline=True)
    w = s.tables["workloads"]
    w.loc[w["workload"] == "node-exporter", "replicas"] = np.nan
    pod_hours = s.tables["placement"].query("workload == 'node-exporter'")["pod_hours"].sum()
    recs = recommend(s, CFG)
    ne = recs[recs["workload"] == "node-exporter"].iloc[0]
    assert ne["replicas"] == pytest.approx(pod_hours / s.window_hours()) and ne["replicas"] == 16
    assert "replicas_estimated" in ne["flags"].split(",")
    fb = recs[recs["workload"] == "fluent-bit"].iloc[0]
    assert "replicas_estimated" not in fb["flags"]  # stated replicas are never replaced
    costed = add_costs(recs, s, CFG)
    assert costed.loc[costed["workload"] == "node-exporter", "usd_per_month_current"].iloc[0] > 0
