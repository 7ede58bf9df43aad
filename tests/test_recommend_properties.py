"""Property test: the safety rules hold for arbitrary usage tables (hypothesis)."""
import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rightsize.analysis.recommend import recommend
from rightsize.quantity import GIB, MIB
from recommend_tables import DAYS14, config_with, ctr, node, snap

NAN = float("nan")
cores = st.one_of(st.just(NAN), st.floats(min_value=0, max_value=64, allow_nan=False))
num_bytes = st.one_of(st.just(NAN), st.floats(min_value=0, max_value=256 * GIB, allow_nan=False))
maybe_cores = st.one_of(st.just(NAN), st.floats(min_value=0.001, max_value=64, allow_nan=False))
maybe_bytes = st.one_of(st.just(NAN), st.floats(min_value=MIB, max_value=256 * GIB, allow_nan=False))

container = st.fixed_dictionaries({
    "namespace": st.sampled_from(["shop", "staging", "ci"]),
    "cpu": st.tuples(cores, cores, cores, cores, cores),
    "memory": st.tuples(num_bytes, num_bytes, num_bytes, num_bytes, num_bytes),
    "cpu_request": maybe_cores, "cpu_limit": maybe_cores,
    "memory_request": maybe_bytes, "memory_limit": maybe_bytes,
    "hours": st.floats(min_value=0, max_value=DAYS14 * 2),
    "samples": st.one_of(st.just(None), st.floats(min_value=0, max_value=10_000)),
    "oom_kills": st.sampled_from([0, 0, 1, 5]),
    "throttled": st.one_of(st.just(NAN), st.floats(min_value=0, max_value=1)),
    "throttled_seconds": st.one_of(st.just(NAN), st.floats(min_value=0, max_value=1e7)),
    "replicas": st.sampled_from([1, 2, 5]), "pods": st.sampled_from([1, 3, 30]),
    "restarts": st.sampled_from([0, 3]),
    "hpa_cpu": st.sampled_from([NAN, NAN, 70.0]), "hpa_memory": st.sampled_from([NAN, NAN, 80.0]),
    "ignore": st.booleans(),
    "usage": st.sampled_from([True, True, True, False]),
})

CONFIGS = [
    config_with(),
    config_with(hpa_request="keep", oom_escalation=0.0, oom_max_factor=1.0, throttled_limit_raise=0.0),
    config_with(throttled_limit_action="remove", cpu_limit="factor", memory_limit="proportional", margin=0.0),
    config_with(cpu_limit="remove", min_history=0.0, min_samples=1, confidence_exponent=2.0),
]


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(container, min_size=1, max_size=6), cfg_index=st.sampled_from(range(len(CONFIGS))),
       node_memory=st.sampled_from([None, 4 * GIB, 64 * GIB]))
def test_safety_rules_hold_for_arbitrary_usage(rows, cfg_index, node_memory):
    cfg = CONFIGS[cfg_index]
    built = [ctr(f"w{i}", **row) for i, row in enumerate(rows)]
    nodes = [] if node_memory is None else [node(cpu=4.0, memory=node_memory)]
    r = recommend(snap(*built, nodes=nodes), cfg)
    assert len(r) == len(rows)
    for i, row in enumerate(rows):
        out = r.iloc[i]
        assert out["workload"] == f"w{i}"
        status = out["status"]
        assert status in ("change", "keep", "no_recommendation", "ignored")
        if row["ignore"]:
            assert status == "ignored"
        if not row["usage"] and not row["ignore"]:
            assert status == "no_recommendation" and out["reason"] == "no usage data"
        recommended = ["cpu_request_cores_recommended", "cpu_limit_cores_recommended",
                       "memory_request_bytes_recommended", "memory_limit_bytes_recommended"]
        if status not in ("change", "keep"):
            assert all(math.isnan(out[c]) for c in recommended) and out["cpu_limit_action"] == "none"
            continue
        policy = cfg.policy(out["policy"])
        for c in recommended:  # never encoded as 0
            assert math.isnan(out[c]) or out[c] > 0
        mem_req, mem_lim = out["memory_request_bytes_recommended"], out["memory_limit_bytes_recommended"]
        peak = row["memory"][4]
        if not math.isnan(mem_req):
            assert mem_lim >= mem_req
            if not math.isnan(row["memory"][3]):  # every limit at least the p99, any policy
                assert mem_lim >= row["memory"][3]
            if not math.isnan(peak):
                assert mem_lim >= peak
                if policy.memory_request_covers_max or row["oom_kills"]:
                    assert mem_req >= peak
                if row["oom_kills"]:  # an OOM-killed container never below its peak x the floor factor
                    bump = max(peak * policy.oom_bump_factor, peak + policy.oom_bump_min)
                    assert mem_req >= bump and mem_lim >= bump
                    assert "oom_risk" in out["flags"]
                    assert out["memory_demand_estimate_bytes"] >= min(peak, node_memory or math.inf)
            if row["oom_kills"]:  # never lowered after an OOM kill
                if not math.isnan(row["memory_request"]):
                    assert mem_req >= row["memory_request"]
                if not math.isnan(row["memory_limit"]):
                    assert mem_lim >= row["memory_limit"]
            if math.isnan(row["hpa_memory"]):
                assert mem_req >= policy.min_memory - 1e-6
        cpu_req = out["cpu_request_cores_recommended"]
        hpa_cpu_kept = not math.isnan(row["hpa_cpu"]) and not math.isnan(row["cpu_request"]) and policy.hpa_request == "keep"
        if hpa_cpu_kept:
            assert cpu_req == row["cpu_request"] and "hpa" in out["flags"]
        elif not math.isnan(cpu_req) and math.isnan(row["hpa_cpu"]):
            assert cpu_req >= policy.min_cpu - 1e-12
            assert cpu_req <= 4.0 + 1e-9 or not nodes  # the largest node's allocatable
        _hpa_scaling_point_holds(row, out, policy)
        action = out["cpu_limit_action"]
        cpu_lim = out["cpu_limit_cores_recommended"]
        if action == "set":
            assert cpu_lim >= cpu_req - 1e-12
            p99, top = row["cpu"][3], row["cpu"][4]
            if not math.isnan(p99):  # never a CPU limit under the observed p99, any policy
                assert cpu_lim >= p99 - 1e-12
            if policy.cpu_limit_covers_max and not math.isnan(top):  # non-production: not under the max either
                assert cpu_lim >= top - 1e-12
        else:
            assert math.isnan(cpu_lim)
        if not math.isnan(row["cpu_limit"]) and row["throttled"] > policy.throttling_threshold:
            assert "throttled" in out["flags"] and status == "change"
        if "throttled" in out["flags"].split(","):  # a throttled container's limit is never lowered
            assert action in ("remove", "none") or cpu_lim >= row["cpu_limit"]  # none: no CPU data, untouched
        if status == "keep":  # a kept current value is never under its safety floor
            if not math.isnan(peak) and not math.isnan(row["memory_limit"]):
                assert row["memory_limit"] >= peak
            if not math.isnan(peak) and not math.isnan(row["memory_request"]) and policy.memory_request_covers_max:
                assert row["memory_request"] >= peak
    assert np.isin(r["cpu_limit_action"], ["set", "keep_unset", "remove", "none"]).all()


def _hpa_scaling_point_holds(row, out, policy) -> None:
    """co_adjust: target x request (one container per workload here) stays where the target is not clamped."""
    new = out["hpa_cpu_target_percent_recommended"]
    if math.isnan(new):
        return
    assert policy.hpa_target_min <= new <= policy.hpa_target_max
    old_point = row["hpa_cpu"] * row["cpu_request"]
    new_point = new * out["cpu_request_cores_recommended"]
    if policy.hpa_target_min < new < policy.hpa_target_max:
        assert abs(new_point - old_point) <= 0.5 * out["cpu_request_cores_recommended"] + 1e-9
    elif new == policy.hpa_target_max:  # the requests grew so the point is not lowered
        assert new_point >= old_point - 0.5 * out["cpu_request_cores_recommended"] - 1e-9
