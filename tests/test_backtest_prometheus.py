"""The backtest's split and replay, and the censoring rules' inputs, on data collected from a real
Prometheus (tests/promdata.py: answers known from the very samples written)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from promdata import Dataset
from promservers import make_config, start_prometheus
from rightsize.analysis import backtest as B
from rightsize.sketch import RELATIVE_ERROR
from rightsize.snapshot import Snapshot
from rightsize.sources import prometheus as P
from rightsize.targets import ClusterTarget

pytestmark = pytest.mark.integration
WINDOW_HOURS = 48


@pytest.fixture(scope="module")
def two_days(tmp_path_factory):
    from promservers import dataset_end

    ds = Dataset(dataset_end(), WINDOW_HOURS + 1)
    server = start_prometheus(ds, tmp_path_factory.mktemp("prom-2d"))
    try:
        snap = Snapshot()
        P.collect_usage(make_config(server.url, ds.end, WINDOW_HOURS), ClusterTarget("c1", server.url), snap,
                        inventory_from_metrics=True, progress=lambda m: None)
    finally:
        server.stop()
    snap.meta["window_start"] = pd.Timestamp(ds.end - WINDOW_HOURS * 3600, unit="s", tz="UTC").isoformat()
    snap.meta["window_end"] = pd.Timestamp(ds.end, unit="s", tz="UTC").isoformat()
    snap.meta["step_seconds"] = 60
    return ds, snap


def _pod_steps(ds, key, resource, first_step, last_step):
    """The generator's values of one container's pods at grid steps (first, last], pooled."""
    cpu, mem, _sers, steps = ds.step_values(WINDOW_HOURS * 3600)[key]
    arr = cpu if resource == "cpu" else mem
    sel = (steps > first_step) & (steps <= last_step)
    values = arr[:, sel]
    return values[~np.isnan(values)]


def test_split_on_a_real_collection_matches_the_generator(two_days):
    ds, snap = two_days
    train, test_days = B.split(snap, test_days=1)
    cut = ds.n - 1 - 24 * 60  # grid index of the training days' last step
    key = ("data", "StatefulSet", "db", "postgres")
    u = train.tables["usage"].set_index(["namespace", "kind", "workload", "container"]).loc[key]
    first = _pod_steps(ds, key, "cpu", ds.n - 1 - WINDOW_HOURS * 60, cut)
    exact = np.sort(first)[int(np.floor(0.95 * (len(first) - 1)))]
    assert u["cpu_pooled_p95_cores"] == pytest.approx(exact, rel=RELATIVE_ERROR)  # learnt from the first day only
    assert u["pod_samples"] == len(first)
    test = _pod_steps(ds, key, "cpu", cut, ds.n - 1)
    request = float(np.quantile(test, 0.8))
    settings = pd.DataFrame([{"cluster": "c1", "namespace": "data", "kind": "StatefulSet", "workload": "db",
                              "container": "postgres", "cpu_request_cores": request, "cpu_limit_cores": np.nan,
                              "memory_request_bytes": np.nan, "memory_limit_bytes": 1.5 * 2**30}])
    r = B.replay(settings, test_days).iloc[0]
    # the share above the request, to the sketch's resolution: between the exact shares 1 % either side
    lo, hi = (np.mean(test > request * (1 + RELATIVE_ERROR)), np.mean(test > request * (1 - RELATIVE_ERROR)))
    assert lo <= r["cpu_share_over_request"] <= hi and r["cpu_pod_steps"] == len(test)
    assert r["cpu_mean_cores"] == pytest.approx(test.mean(), rel=1e-9)
    # db-1 was OOM-killed at 60 % of its life, in the second day: its 2 GiB peak crosses a 1.5 GiB limit
    assert r["memory_peak_bytes"] == 2 * 2**30 and r["predicted_oom"]
    assert train.tables["usage"].set_index("workload").loc["db", "oom_kills"] == 0  # the kill is in the test day
    assert r["memory_censored"]  # ... so its test-day peak is only a lower bound


def test_censored_containers_are_found_in_a_real_collection(two_days):
    """db is OOM-killed (its working set reaches the 2 GiB limit), api is throttled in 40 % of its CFS
    periods with the throttled seconds known: the rules treat what was seen as a lower bound."""
    _ds, snap = two_days
    import rightsize as rs

    recs = rs.recommend(snap, policy={"min_history": "1d"}).set_index(["workload", "container"])  # 2 days collected
    db, api = recs.loc[("db", "postgres")], recs.loc[("api", "api")]
    assert "oom_risk" in db["flags"] and db["memory_limit_bytes_recommended"] >= 1.2 * 2 * 2**30
    assert "throttled" in api["flags"] and "demand_hidden" in api["flags"]
    u = snap.tables["usage"].set_index("workload")
    assert u.loc["api", "cpu_throttled_seconds"] > 0  # measured, not assumed
    assert api["cpu_limit_cores_recommended"] > api["cpu_limit_cores_current"]  # raised, never lowered
    assert api["cpu_demand_estimate_cores"] > u.loc["api", "cpu_max_over_pods_p95_cores"]
