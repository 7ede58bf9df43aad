"""Growing memory on a real Prometheus: generated leaks whose climb is known (tests/promdata.py), four cases, each
with and without a memory limit today. 21 days of data are written; rightsize collects the first 14 and
recommends; the last 7 are the truth. In every case the recommended memory limit is at least the true peak of
those 7 days, or it is left unset (no limit today) with the memory_growth flag and the growth in MiB/day.

- linear: one pod climbing 30 MiB/day, older than the window;
- daily restarts: a climb of 300 MiB/day reset by a restart every day (not a leak over the pod's life);
- weekly rollouts: pods replaced every 7 days, each climbing 40 MiB/day from its start;
- a slow leak (4 MiB/day on 500 MiB) under a long horizon: its namespace's policy holds memory for 30 days.

Samples every 10 minutes (one week at that step is 1,008 per series), so the data stays small."""
from __future__ import annotations

import dataclasses
import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from promdata import ContainerSpec, Dataset, PodSpec
from promservers import dataset_end, make_config, start_prometheus
from rightsize.analysis.recommend import compute
from rightsize.config import PolicyRule
from rightsize.quantity import GIB, MIB
from rightsize.snapshot import Snapshot
from rightsize.sources import prometheus as P
from rightsize.targets import ClusterTarget

pytestmark = pytest.mark.integration
STEP = 600
DAY = 86400
PER_DAY = DAY // STEP
WINDOW_DAYS, FUTURE_DAYS = 14, 7
CASES = {  # namespace -> (growth MiB/day, base MiB, restart every (days, 0 none), rollout days (0 none), age at start (days), limit)
    "linear": (30, 300, 0, 0, 10, 2 * GIB),
    "daily": (300, 300, 1, 0, 0.3, 1 * GIB),
    "weekly": (40, 300, 0, 7, 5, 1 * GIB),
    "slow-lived": (4, 500, 0, 0, 30, 1 * GIB),
}


def _pods(n: int) -> list[PodSpec]:
    pods = []
    for ns, (growth, base, restart, rollout, age0, limit) in CASES.items():
        for workload, mem_limit in (("api", math.nan), ("api-limited", limit)):
            cuts = [0, n] if not rollout else sorted({0, n} | set(range(2 * PER_DAY, n, rollout * PER_DAY)))
            for k, (s, e) in enumerate(zip(cuts[:-1], cuts[1:])):
                ctr = ContainerSpec("app", 0.1, 0.02, base * MIB, 0.0, 0.2, math.nan, 2 * base * MIB, mem_limit,
                                    mem_growth=growth * MIB / DAY, restart_every=restart * DAY,
                                    age0=(age0 if k == 0 else 0.0) * DAY)
                pods.append(PodSpec(ns, f"{workload}-{k}-x", "Deployment", workload, "ReplicaSet", f"{workload}-{k}",
                                    "Deployment", workload, start=s, end=e, containers=[ctr]))
    return pods


@pytest.fixture(scope="module")
def leaks(tmp_path_factory):
    end = dataset_end() // STEP * STEP
    hours = (WINDOW_DAYS + FUTURE_DAYS) * 24 + 1
    unused = ("container_cpu_cfs_periods_total", "container_cpu_cfs_throttled_periods_total", "container_cpu_cfs_throttled_seconds_total")
    ds = Dataset(end, hours, pods=_pods(int(hours * 3600 // STEP) + 1), interval=STEP, drop=unused, workload_extras=False)
    server = start_prometheus(ds, tmp_path_factory.mktemp("prom-leaks"))
    window_end = end - FUTURE_DAYS * DAY
    cfg = make_config(server.url, window_end, WINDOW_DAYS * 24)
    cfg = dataclasses.replace(cfg, general=dataclasses.replace(cfg.general, step=float(STEP)),
                              prometheus=dataclasses.replace(cfg.prometheus, rate_window=2.0 * STEP))
    try:
        snap = Snapshot()
        P.collect_usage(cfg, ClusterTarget("c1", server.url), snap, inventory_from_metrics=True, progress=lambda m: None)
    finally:
        server.stop()
    snap.meta.update(window_start=pd.Timestamp(window_end - WINDOW_DAYS * DAY, unit="s", tz="UTC").isoformat(),
                     window_end=pd.Timestamp(window_end, unit="s", tz="UTC").isoformat(), step_seconds=STEP)
    long_lived = dataclasses.replace(cfg.policy("production"), oom_horizon=30.0 * DAY)
    cfg = dataclasses.replace(cfg, policies={**cfg.policies, "long_lived": long_lived},
                              policy_rules=(PolicyRule(policy="long_lived", namespaces=("slow-lived",)),))
    recs = compute(snap.validate(), cfg).set_index(["namespace", "workload"])
    return ds, snap, recs, window_end


def _true_peak(ds: Dataset, ns: str, workload: str, first: int, last: int) -> float:
    """The generator's largest working set of a workload's pods at grid indexes first..last."""
    peaks = [ser["mem"][max(first - ser["s"], 0):last - ser["s"] + 1].max() for (n, pod, _c), ser in ds._series.items()
             if n == ns and ser["pod"].workload == workload and ser["e"] > first and ser["s"] <= last]
    return float(max(peaks))


@pytest.mark.parametrize("ns", list(CASES))
@pytest.mark.parametrize("workload", ["api", "api-limited"])
def test_the_recommended_limit_holds_the_next_weeks_peak_or_is_left_unset_with_the_flag(leaks, ns, workload):
    ds, _snap, recs, window_end = leaks
    r = recs.loc[(ns, workload)]
    cut = ds.n - 1 - FUTURE_DAYS * PER_DAY  # the grid index of the window's end
    future = _true_peak(ds, ns, workload, cut + 1, ds.n - 1)
    assert r["status"] in ("change", "keep")
    if r["memory_limit_action"] == "keep_unset":
        assert workload == "api"  # only where there is no limit today
        assert "memory_growth" in r["flags"] and "Mi/day of pod age" in r["reason"]
        growth = CASES[ns][0]
        assert r["memory_growth_bytes_per_day"] / MIB == pytest.approx(growth, rel=0.15)
        assert r["memory_request_bytes_recommended"] >= future  # the request holds the projected peak
    else:
        assert r["memory_limit_bytes_recommended"] >= future, (ns, workload, r["reason"])


def test_each_case_is_read_as_the_generator_wrote_it(leaks):
    ds, snap, recs, _end = leaks
    # a climb over the pod's life: linear, weekly rollouts, the slow leak under its 30-day horizon
    for ns in ("linear", "weekly", "slow-lived"):
        for workload in ("api", "api-limited"):
            assert recs.loc[(ns, workload), "memory_pattern"] == "growing", (ns, workload)
    assert (recs.loc[("linear", "api"), "memory_limit_action"], recs.loc[("linear", "api-limited"), "memory_limit_action"]) == (
        "keep_unset", "set")
    # reset every day by a restart: the climb never outlives a day, the window's max holds it (not growing)
    daily = recs.loc[("daily", "api")]
    assert daily["memory_pattern"] != "growing" and daily["memory_limit_action"] == "set"
    assert snap.tables["usage_daily"].query("namespace == 'daily'")["restarts"].sum() >= 2 * (WINDOW_DAYS - 1)
    # weekly rollouts: pods seen living 7 days; the projection is one life's climb from the base
    weekly = recs.loc[("weekly", "api-limited")]
    assert weekly["_growth_life"] == pytest.approx(7.0, abs=0.3)
    assert weekly["memory_projected_bytes"] >= (300 + 40 * 7) * MIB
    # the slow leak climbs 4 MiB/day: under the default 7-day horizon that is no growth worth acting on, under
    # its policy's 30 days it is, and the projection covers the next 30 days of the generator's climb
    slow = recs.loc[("slow-lived", "api-limited")]
    assert slow["policy"] == "long_lived"
    level = _true_peak(ds, "slow-lived", "api-limited", ds.n - 1 - FUTURE_DAYS * PER_DAY - PER_DAY,
                       ds.n - 1 - FUTURE_DAYS * PER_DAY)
    assert slow["memory_projected_bytes"] >= level + 0.9 * 30 * 4 * MIB
    assert dt.timedelta(seconds=ds.interval) == dt.timedelta(minutes=10) and not np.isnan(slow["memory_growth_bytes_per_day"])
