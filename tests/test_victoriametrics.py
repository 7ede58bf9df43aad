"""The same collection against a real VictoriaMetrics (single-node, 1.79) loaded with the same samples,
and a check that both engines agree.

MetricsQL differences that matter here (see rightsize/sources/promql.py): rate() does not
extrapolate and starts from the last sample before the window; a subquery's range is left-open, so
VictoriaMetrics sees one step fewer than Prometheus 2.x (closed range) — visible below as the
median of an even number of steps; rightsize uses quantiles_over_time() on VictoriaMetrics so the
busiest-replica subquery is evaluated once for all percentiles.

Tolerance: each engine must land within one rank of the exact quantile of the generated samples
(as in test_prometheus_collect), and the two engines must agree within 0.5 % on every statistic:
adjacent ranks of the generated series differ by far less than that (noise is 10 % of the base
spread over ~1,440 steps), so a larger gap would mean a different query, not a boundary step.
"""
from __future__ import annotations

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
    assert vm_snapshot.meta["sources"]["prometheus:c1"]["engine"] == "victoriametrics"


def test_victoriametrics_usage_matches_generated_samples(vm_snapshot, prom_dataset):
    assert_usage_matches(vm_snapshot.tables["usage"], prom_dataset.expected(WINDOW_HOURS * 3600))


def test_victoriametrics_other_tables(vm_snapshot, prom_dataset):
    u = vm_snapshot.tables["usage"].set_index("workload")
    assert u.loc["db", "oom_kills"] == 1 and u.loc["api", "cpu_throttled_ratio"] == pytest.approx(0.4, abs=1e-3)
    assert set(vm_snapshot.tables["nodes"]["capacity_type"]) == {"on-demand", "spot"}
    tr = vm_snapshot.tables["traffic"].set_index(["source_workload", "destination_workload"])
    for (sn, sw, dn, dw), nbytes in prom_dataset.expected_traffic(WINDOW_HOURS * 3600).items():
        # MetricsQL increase() does not extrapolate: exact over the window
        assert tr.loc[(sw, dw), "bytes"] == pytest.approx(nbytes, rel=1e-6)
    c = vm_snapshot.tables["containers"].set_index(["workload", "container"])
    assert c.loc[("web", "envoy"), "cpu_limit_cores"] == 0.2
    vm_snapshot.validate()


def test_prometheus_and_victoriametrics_agree(vm_snapshot, prom_server, prom_dataset):
    prom = collect(prom_server.url, prom_dataset.end).tables["usage"].set_index(KEY).sort_index()
    vm = vm_snapshot.tables["usage"].set_index(KEY).sort_index()
    assert list(prom.index) == list(vm.index)
    for stat in STATS + ["cpu_throttled_ratio", "restarts", "oom_kills", "pods_seen"]:
        a, b = prom[stat].to_numpy(), vm[stat].to_numpy()
        assert a == pytest.approx(b, rel=5e-3, abs=1e-9), stat
    assert (prom["samples"] - vm["samples"]).abs().max() <= 1


@pytest.mark.parametrize("percentiles_from", ["range", "instant"])
def test_forced_prometheus_dialect_also_works_on_victoriametrics(vm_server, prom_dataset, percentiles_from):
    # the portable PromQL queries run on MetricsQL too: the busiest replica as a range query
    # sorted by rightsize, or one quantile_over_time per percentile
    snap = collect(vm_server.url, prom_dataset.end, engine="prometheus", percentiles_from=percentiles_from)
    assert snap.meta["sources"]["prometheus:c1"]["engine"] == "prometheus"
    assert snap.meta["sources"]["prometheus:c1"]["percentiles"] == percentiles_from
    assert_usage_matches(snap.tables["usage"], prom_dataset.expected(WINDOW_HOURS * 3600))


def test_one_store_many_clusters(tmp_path, prom_dataset):
    """Two clusters in one VictoriaMetrics, told apart by a `cluster` label: discovered from the
    label's values, and each collection sees only its own cluster's series."""
    from promdata import Dataset, default_cluster
    from promservers import start_victoria

    eu = Dataset(prom_dataset.end, 3, cluster_label="cluster", cluster="eu")
    us = Dataset(prom_dataset.end, 3, pods=default_cluster(scale=2), cluster_label="cluster", cluster="us")
    server = start_victoria(eu, tmp_path)
    try:
        from promservers import flush
        import requests

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
        assert e["memory_max_bytes"][1] <= u.loc[key, "memory_max_bytes"] <= e["memory_max_bytes"][2]
