"""The same collection against a real VictoriaMetrics (single-node, 1.79) loaded with the same samples,
and a check that both engines agree.

What MetricsQL does differently, and what it means for these tests (see promql.py):
- range selectors are left-open ``(t - w, t]`` (Prometheus 2.x: closed), so the window's largest raw
  sample excludes the one sample on its left edge;
- rate() and increase() never extrapolate: they start from the last sample before the window, so
  at a pod's first steps VictoriaMetrics and Prometheus give different values;
- a stopped series is stale after about one scrape interval (Prometheus shows its last sample for
  the 5-minute lookback), so a pod that stopped inside the window adds 1 step here, 5 there.
The per-pod pulls read the same steps from both engines, so every statistic of a container whose
pods live through the window is identical on both (to the sketch's bucket); the churned container
(the rollout of ``api``) is compared with the tolerance test_prometheus_collect explains.
"""
from __future__ import annotations

import numpy as np
import pytest

from promservers import WINDOW_HOURS, make_config, prom_dataset, prom_server, vm_server  # noqa: F401
from rightsize.snapshot import Snapshot
from rightsize.sources import prometheus as P
from rightsize.targets import ClusterTarget
from test_prometheus_collect import KEY, STATS, assert_usage_matches

pytestmark = pytest.mark.integration


def collect(url, end, **prom):
    snap = Snapshot()
    P.collect_usage(make_config(url, end, **prom), ClusterTarget("c1", url), snap, inventory_from_metrics=True,
                    progress=lambda m: None)
    return snap


@pytest.fixture(scope="module")
def vm_snapshot(vm_server, prom_dataset):
    return collect(vm_server.url, prom_dataset.end)


def test_engine_is_detected(vm_snapshot):
    assert vm_snapshot.meta["versions"]["metrics_engine:c1"].startswith("victoriametrics")


def test_victoriametrics_usage_matches_generated_samples(vm_snapshot, prom_dataset):
    assert_usage_matches(vm_snapshot.tables["usage"], prom_dataset.expected(WINDOW_HOURS * 3600), lookback_steps=1)


def test_victoriametrics_other_tables(vm_snapshot, prom_dataset):
    u = vm_snapshot.tables["usage"].set_index("workload")
    assert u.loc["db", "oom_kills"] == 1 and u.loc["api", "cpu_throttled_ratio"] == pytest.approx(0.4, abs=1e-3)
    assert set(vm_snapshot.tables["nodes"]["capacity_type"]) == {"on-demand", "spot"}
    tr = vm_snapshot.tables["traffic"].set_index(["source_workload", "destination_workload"])
    for (sn, sw, dn, dw), (req, resp) in prom_dataset.expected_traffic(WINDOW_HOURS * 3600).items():
        # MetricsQL increase() does not extrapolate: exact over the window, each reporter once
        assert tr.loc[(sw, dw), "request_bytes"] == pytest.approx(req, rel=1e-9)
        assert tr.loc[(sw, dw), "response_bytes"] == pytest.approx(resp, rel=1e-9)
    c = vm_snapshot.tables["containers"].set_index(["workload", "container"])
    assert c.loc[("web", "envoy"), "cpu_limit_cores"] == 0.2
    vm_snapshot.validate()


def test_prometheus_and_victoriametrics_agree(vm_snapshot, prom_server, prom_dataset):
    prom = collect(prom_server.url, prom_dataset.end).tables["usage"].set_index(KEY).sort_index()
    vm = vm_snapshot.tables["usage"].set_index(KEY).sort_index()
    assert list(prom.index) == list(vm.index)
    steady = [k for k, e in prom_dataset.expected(WINDOW_HOURS * 3600).items() if not e["churn"]]
    for stat in STATS + ["cpu_max_cores", "samples", "pod_samples", "cpu_throttled_ratio", "restarts", "oom_kills", "pods_seen"]:
        np.testing.assert_allclose(prom.loc[steady, stat].to_numpy(float), vm.loc[steady, stat].to_numpy(float), rtol=1e-9, err_msg=stat)


def test_one_store_many_clusters(tmp_path, prom_dataset):
    """Two clusters in one VictoriaMetrics, told apart by a `cluster` label: discovered from the
    label's values, and each collection sees only its own cluster's series."""
    import requests

    from promdata import Dataset, default_cluster
    from promservers import flush, start_victoria

    eu = Dataset(prom_dataset.end, 3, cluster_label="cluster", cluster="eu")
    us = Dataset(prom_dataset.end, 3, pods=default_cluster(scale=2), cluster_label="cluster", cluster="us")
    server = start_victoria(eu, tmp_path)
    try:
        for chunk in us.prometheus_text_chunks():
            requests.post(server.url + "/api/v1/import/prometheus", data=chunk.encode(), timeout=120).raise_for_status()
        flush(server)
        cfg = make_config(server.url, prom_dataset.end, window_hours=2, cluster_label="cluster")
        assert P.discover_clusters(cfg, server.url) == ["eu", "us"]
        snaps = {}
        for name in ("eu", "us"):
            snaps[name] = Snapshot()
            P.collect_usage(cfg, ClusterTarget(name, server.url, label_value=name), snaps[name], progress=lambda m: None)
    finally:
        server.stop()
    eu_u, us_u = snaps["eu"].tables["usage"], snaps["us"].tables["usage"]
    assert set(eu_u["cluster"]) == {"eu"} and set(us_u["cluster"]) == {"us"}
    assert len(us_u) == 2 * len(eu_u) - 1  # scale=2 repeats every namespace but monitoring
    assert "shop-1" in set(us_u["namespace"]) and "shop-1" not in set(eu_u["namespace"])
    exp = eu.expected(2 * 3600)
    u = eu_u.set_index(KEY)
    for key, e in exp.items():
        assert u.loc[key, "memory_max_bytes"] in (e["memory_max_bytes"], e["memory_max_bytes_closed"])
