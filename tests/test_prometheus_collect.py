"""Collect usage from a real Prometheus server (2.x) backfilled with generated series.

Tolerance of the percentile checks, and why: the generator samples every series on the 60 s grid
the query steps on, so each step sees exactly one written sample and rate() over 5m equals the
generator's (C(t) - C(t-300)) / 300. What an engine may legitimately do differently is include or
exclude the window's first step (closed vs left-open subquery range), which moves any quantile by
at most one rank. So a result passes when it lies between the exact sorted values one rank below
and one rank above the exact quantile (plus 1e-9 relative for float rounding); samples may differ
by that one step. Containers of pods that start or stop inside the window (the rollout) pass the
same check here, since the other replica is the busiest at every edge step.
"""
from __future__ import annotations

import math

import pandas as pd
import pytest

from promdata import Dataset
from promservers import (DATA_HOURS, WINDOW_HOURS, dataset_end, make_config, prom_dataset, prom_server,  # noqa: F401
                         start_prometheus)
from rightsize.errors import SourceError
from rightsize.snapshot import Snapshot
from rightsize.sources import prometheus as P
from rightsize.targets import ClusterTarget

pytestmark = pytest.mark.integration
STATS = [f"{r}_{p}_{u}" for r, u in (("cpu", "cores"), ("memory", "bytes")) for p in ("p50", "p90", "p95", "p99", "max")]
KEY = ["namespace", "kind", "workload", "container"]


def collect(url, end, *, inventory=False, allow_partial=False, progress=None, client=None, window_hours=WINDOW_HOURS, **prom):
    snap = Snapshot()
    P.collect_usage(make_config(url, end, window_hours, **prom), ClusterTarget("c1", url), snap, allow_partial=allow_partial,
                    inventory_from_metrics=inventory, progress=progress or (lambda m: None), client=client)
    return snap


def assert_usage_matches(usage: pd.DataFrame, expected: dict) -> None:
    u = usage.set_index(KEY)
    assert set(u.index) == set(expected), "one row per container, every owner path resolved"
    for key, exp in expected.items():
        row = u.loc[key]
        for stat in STATS:
            exact, low, high = exp[stat]
            got = row[stat]
            slack = 1e-9 * abs(exact)
            assert low - slack <= got <= high + slack, f"{key} {stat}: got {got}, exact {exact}, allowed [{low}, {high}]"
        assert abs(row["samples"] - exp["samples"]) <= 1, key
        assert row["pods_seen"] == exp["pods_seen"], key
        assert row["restarts"] == exp["restarts"], key
        assert row["oom_kills"] == exp["oom_kills"], key
        assert row["cpu_throttled_ratio"] == pytest.approx(exp["cpu_throttled_ratio"], abs=1e-3), key
        assert row["hours_covered"] == pytest.approx(row["samples"] / 60.0)


@pytest.fixture(scope="module")
def collected(prom_server, prom_dataset):
    return collect(prom_server.url, prom_dataset.end, inventory=True)


def test_usage_percentiles_match_generated_samples(collected, prom_dataset):
    expected = prom_dataset.expected(WINDOW_HOURS * 3600)
    assert_usage_matches(collected.tables["usage"], expected)
    assert (collected.tables["usage"]["cluster"] == "c1").all()


def test_owners_resolve_through_replicasets_and_jobs(collected):
    u = collected.tables["usage"]
    kinds = dict(zip(u["workload"], u["kind"]))
    assert kinds == {"web": "Deployment", "api": "Deployment", "legacy": "ReplicaSet", "db": "StatefulSet",
                     "report": "CronJob", "migrate": "Job", "debug": "Pod", "node-exporter": "DaemonSet"}
    api = u[u["workload"] == "api"].iloc[0]
    assert api["pods_seen"] == 2  # two ReplicaSets of one Deployment merged into one row
    assert "kube-system" not in set(u["namespace"])  # excluded by default


def test_oom_kills_and_throttling_found(collected):
    u = collected.tables["usage"].set_index("workload")
    assert u.loc["db", "oom_kills"] == 1 and u.loc["db", "restarts"] == 1
    assert u.loc["db", "memory_max_bytes"] == 2 * 2**30  # the peak that got it killed
    assert u.loc["api", "cpu_throttled_ratio"] == pytest.approx(0.4, abs=1e-3)
    assert u.loc["legacy", "cpu_throttled_ratio"] == 0.0


def test_nodes_placement_traffic(collected, prom_dataset):
    nodes = collected.tables["nodes"].set_index("node")
    assert nodes.loc["node-a", "capacity_type"] == "on-demand"  # from the EKS label ON_DEMAND
    assert nodes.loc["node-b", "capacity_type"] == "spot"  # from the Karpenter label
    assert nodes.loc["node-b", "instance_type"] == "m5.2xlarge"
    assert nodes.loc["node-a", "allocatable_cpu_cores"] == pytest.approx(3.92)
    assert nodes.loc["node-a", "hours_seen"] == pytest.approx(WINDOW_HOURS, abs=2 / 60)
    pl = collected.tables["placement"].set_index(["workload", "node"])
    assert pl.loc[("web", "node-b"), "zone"] == "us-east-1b"
    # the rollout moved api from node-a to node-b half way (10 minute overlap)
    assert pl.loc[("api", "node-a"), "pod_hours"] + pl.loc[("api", "node-b"), "pod_hours"] == pytest.approx(WINDOW_HOURS + 10 / 60 + 5 / 60, abs=0.1)
    tr = collected.tables["traffic"].set_index(["source_workload", "destination_workload"])
    for (sn, sw, dn, dw), nbytes in prom_dataset.expected_traffic(WINDOW_HOURS * 3600).items():
        assert tr.loc[(sw, dw), "bytes"] == pytest.approx(nbytes, rel=1e-6)


def test_inventory_from_kube_state_metrics(collected):
    c = collected.tables["containers"].set_index(["workload", "container"])
    assert c.loc[("web", "app"), "cpu_request_cores"] == 0.5
    assert math.isnan(c.loc[("web", "app"), "cpu_limit_cores"])  # unset stays NaN, never 0
    assert c.loc[("web", "envoy"), "cpu_limit_cores"] == 0.2
    assert math.isnan(c.loc[("debug", "shell"), "memory_request_bytes"])
    w = collected.tables["workloads"].set_index("workload")
    assert w.loc["web", "hpa"] and w.loc["web", "hpa_cpu_target_percent"] == 70
    assert w.loc["db", "pdb"] and not w.loc["web", "pdb"]
    assert w.loc["web", "replicas"] == 2 and w.loc["api", "replicas"] == 1
    assert (w["source"] == "prometheus").all()
    collected.validate()


def test_missing_istio_request_metrics_are_reported(collected):
    assert "istio_request_bytes_sum" in collected.meta["missing_metrics"]
    assert any(w["code"] == "missing_metric" and "istio_response_bytes_sum" in w["message"] for w in collected.meta["warnings"])


def test_progress_bar_follows_every_query(prom_server, prom_dataset):
    class Log:
        def __init__(self):
            self.lines, self.bars = [], []

        def __call__(self, msg):
            self.lines.append(msg)

        def bar(self, done, total):
            self.bars.append((done, total))

    log = Log()
    collect(prom_server.url, prom_dataset.end, progress=log)
    finished = [m for m in log.lines if " done (" in m]
    assert log.bars == [(i, len(finished)) for i in range(1, len(finished) + 1)]  # one tick per finished query, ending full
    assert len(finished) >= 7


def test_request_count_is_fixed(collected):
    src = collected.meta["sources"]["prometheus:c1"]
    assert src["shards"] == 1 and src["splits"] == 0
    assert src["requests"] < 40


def test_dropped_metric_disables_what_depends_on_it(tmp_path):
    end = dataset_end()
    ds = Dataset(end, 3, drop=("container_cpu_cfs_throttled_periods_total", "istio_tcp_sent_bytes_total",
                                        "kube_node_labels"))
    server = start_prometheus(ds, tmp_path)
    try:
        snap = collect(server.url, end, window_hours=2)
    finally:
        server.stop()
    assert {"container_cpu_cfs_throttled_periods_total", "istio_tcp_sent_bytes_total", "kube_node_labels"} <= set(snap.meta["missing_metrics"])
    assert snap.tables["usage"]["cpu_throttled_ratio"].isna().all()
    assert len(snap.tables["traffic"]) == 0 and len(snap.tables["nodes"]) == 0
    assert snap.tables["usage"]["cpu_p95_cores"].notna().all()  # the rest still collected
    messages = " ".join(w["message"] for w in snap.meta["warnings"])
    assert "throttling" in messages and "nodes table" in messages


def test_closed_port_is_a_clear_error():
    from promservers import free_port

    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(SourceError) as err:
        collect(url, dataset_end())
    assert url in str(err.value) and "cannot connect" in str(err.value)
    assert "\n" not in str(err.value)


def _stop_after_first_answer(server):
    def progress(msg):
        if "done (1/" in msg:
            server.stop()
    return progress


def test_server_stopped_mid_run_fails(prom_dataset, tmp_path):
    server = start_prometheus(prom_dataset, tmp_path)
    try:
        with pytest.raises(SourceError) as err:
            collect(server.url, prom_dataset.end, progress=_stop_after_first_answer(server), concurrency=1)
    finally:
        server.stop()
    assert "--allow-partial" in str(err.value) and server.url in str(err.value)


def test_server_stopped_mid_run_with_allow_partial_lists_namespaces(prom_dataset, tmp_path):
    server = start_prometheus(prom_dataset, tmp_path)
    try:
        snap = collect(server.url, prom_dataset.end, allow_partial=True, progress=_stop_after_first_answer(server), concurrency=1)
    finally:
        server.stop()
    assert sorted(snap.meta["partial"]["namespaces"]) == ["c1/batch", "c1/data", "c1/monitoring", "c1/shop"]
    assert len(snap.tables["usage"]) == 0  # nothing half-filled is kept for the failed namespaces
    assert any(w["code"] == "partial" for w in snap.meta["warnings"])


def test_shards_split_when_server_rejects_for_max_samples(prom_dataset, tmp_path):
    # --query.max-samples low enough that the four namespaces together fail but each one alone fits;
    # rightsize's own estimate is set high so the split is driven by the server's rejection.
    server = start_prometheus(prom_dataset, tmp_path, max_samples=15_000)
    try:
        logs = []
        snap = collect(server.url, prom_dataset.end, progress=logs.append, max_samples=10**12)
    finally:
        server.stop()
    src = snap.meta["sources"]["prometheus:c1"]
    assert src["splits"] > 0, logs
    assert any("splitting" in m for m in logs)
    assert_usage_matches(snap.tables["usage"], prom_dataset.expected(WINDOW_HOURS * 3600))


def test_instant_and_range_percentiles_agree(prom_server, prom_dataset, collected):
    # auto on Prometheus = range (one busiest-replica evaluation per resource, sorted here);
    # instant = quantile_over_time in the server, once per percentile. Same steps, same numbers.
    assert collected.meta["sources"]["prometheus:c1"]["percentiles"] == "range"
    instant = collect(prom_server.url, prom_dataset.end, percentiles_from="instant")
    assert instant.meta["sources"]["prometheus:c1"]["percentiles"] == "instant"
    assert_usage_matches(instant.tables["usage"], prom_dataset.expected(WINDOW_HOURS * 3600))
    a = collected.tables["usage"].set_index(KEY).sort_index()
    b = instant.tables["usage"].set_index(KEY).sort_index()
    for col in STATS + ["samples"]:
        pd.testing.assert_series_equal(a[col], b[col], rtol=1e-9, check_names=False, obj=col)


def _range_spans(queries, resource_metric):
    return [(q["end"] - q["start"]) for q in queries if "start" in q and resource_metric in q["query"]]


def test_range_queries_cut_into_time_chunks_give_the_same_result(prom_server, prom_dataset):
    cfg = make_config(prom_server.url, prom_dataset.end, range_points=2000)
    client = P.Client(cfg, prom_server.url)
    client.recorded = []
    snap = collect(prom_server.url, prom_dataset.end, range_points=2000, client=client)
    assert_usage_matches(snap.tables["usage"], prom_dataset.expected(WINDOW_HOURS * 3600))
    spans = _range_spans(client.recorded, "container_cpu_usage_seconds_total")
    assert len(spans) > 2  # 1,441 steps x the shard's series do not fit 2,000 points
    assert sum(s / 60 + 1 for s in spans) == WINDOW_HOURS * 60 + 1  # every step exactly once, no overlap


def test_range_chunk_halved_when_server_rejects_it(prom_dataset, tmp_path):
    # the server's sample limit rejects the whole-window range query; rightsize halves the time chunk
    server = start_prometheus(prom_dataset, tmp_path, max_samples=30_000)
    try:
        cfg = make_config(server.url, prom_dataset.end, max_samples=10**12)
        client = P.Client(cfg, server.url)
        client.recorded = []
        snap = collect(server.url, prom_dataset.end, max_samples=10**12, client=client)
    finally:
        server.stop()
    spans = _range_spans(client.recorded, "container_memory_working_set_bytes")
    assert spans[0] == WINDOW_HOURS * 3600 and min(spans) < spans[0] / 2, spans
    assert_usage_matches(snap.tables["usage"], prom_dataset.expected(WINDOW_HOURS * 3600))


def test_planned_shards_from_series_counts(prom_server, prom_dataset):
    # a small sample budget makes rightsize plan one shard per namespace up front
    snap = collect(prom_server.url, prom_dataset.end, max_samples=1000)
    assert snap.meta["sources"]["prometheus:c1"]["shards"] == 4
    assert_usage_matches(snap.tables["usage"], prom_dataset.expected(WINDOW_HOURS * 3600))


def test_plan_shards_packs_namespaces_under_budget():
    shards = P.plan_shards({"a": 50, "b": 30, "c": 20, "d": 5}, steps=100, max_samples=3 * 100 * 55)
    assert shards == [["a"], ["b", "c", "d"]]  # largest first, each group within 55 series
    assert P.plan_shards({"a": 10}, steps=100, max_samples=1000) == [["a"]]  # one namespace is never split here


def test_hostile_namespace_names_cannot_change_queries(prom_server, prom_dataset):
    snap = collect(prom_server.url, prom_dataset.end, namespaces=('shop"} or vector(1) #', "shop|data", ".*"))
    assert len(snap.tables["usage"]) == 0  # matched literally: no such namespaces
    snap = collect(prom_server.url, prom_dataset.end, namespaces=("shop",))
    assert set(snap.tables["usage"]["namespace"]) == {"shop"}


def test_fetch_series_for_chosen_workloads(prom_server, prom_dataset):
    cfg = make_config(prom_server.url, prom_dataset.end)
    target = ClusterTarget("c1", prom_server.url)
    df = P.fetch_series(cfg, target, [("shop", "Deployment", "web"), ("data", "StatefulSet", "db")], step_seconds=300)
    assert set(zip(df["workload"], df["container"])) == {("web", "app"), ("web", "envoy"), ("db", "postgres")}
    db = df[df["workload"] == "db"]
    assert len(db) == WINDOW_HOURS * 12 + 1
    # each point is the busiest replica's sample at that instant (the step is a multiple of the scrape grid)
    sers = [v for (_ns, pod, c), v in prom_dataset._series.items() if c == "postgres" and v["pod"].namespace == "data"]
    for ts, got in zip(db["timestamp"].iloc[::37], db["memory_bytes"].iloc[::37]):
        i = int((ts.timestamp() - prom_dataset.ts[0]) // 60)
        assert got == max(s["mem"][i - s["s"]] for s in sers)
    assert str(df["timestamp"].dtype).startswith("datetime64")
