"""Collect usage from a real Prometheus server (2.x) backfilled with generated series.

Tolerances, and why:
- Every statistic of the registry is read from rightsize's log-bucket sketch, which states its
  relative error (statistics.RELATIVE_ERROR, 0.99 %): each result must lie within it of the exact
  member at rank floor(q x (n - 1)) of the very samples the generator wrote (tests/promdata.py).
- Counts, maxima, means and increases of containers whose pods live through the whole window are
  exact (1e-9 relative for float rounding).
- Containers of pods that start or stop inside the window (``churn``: the rollout of ``api``)
  differ legitimately at the edges: Prometheus extrapolates rate() and increase() where a series
  starts inside the rate window, and keeps showing a stopped pod's last working set for its 5-minute
  lookback. For them the statistics may sit one rank away (still within the sketch's error), and
  counts may differ by the lookback's 5 steps.
"""
from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from promdata import TRAFFIC, Dataset
from promservers import (DATA_HOURS, WINDOW_HOURS, dataset_end, make_config, prom_dataset, prom_server,  # noqa: F401
                         start_prometheus)
from rightsize.sketch import RELATIVE_ERROR, usage_statistics
from rightsize.usage_stats import usage_statistic_columns
from rightsize.errors import SourceError
from rightsize.snapshot import Snapshot
from rightsize.sources import prometheus as P
from rightsize.targets import ClusterTarget

pytestmark = pytest.mark.integration
STATS = [c for c, _ in usage_statistic_columns(core_only=True) if not c.endswith("_max_cores") and not c.endswith("_max_bytes")]
KEY = ["namespace", "kind", "workload", "container"]
LOOKBACK_STEPS = 5  # Prometheus' default lookback (5m) at the generator's 60 s grid


def collect(url, end, *, inventory=False, allow_partial=False, progress=None, client=None, window_hours=WINDOW_HOURS, **prom):
    snap = Snapshot()
    P.collect_usage(make_config(url, end, window_hours, **prom), ClusterTarget("c1", url), snap, allow_partial=allow_partial,
                    inventory_from_metrics=inventory, progress=progress or (lambda m: None), client=client)
    return snap


def within_sketch(got: float, exact: float, low: float, high: float, churn: bool) -> bool:
    lo, hi = (low, high) if churn else (exact, exact)
    return lo * (1 - RELATIVE_ERROR) - 1e-12 <= got <= hi * (1 + RELATIVE_ERROR) + 1e-12


def assert_usage_matches(usage, expected: dict, lookback_steps: int = LOOKBACK_STEPS) -> None:
    u = usage.set_index(KEY)
    assert set(u.index) == set(expected), "one row per container, every owner path resolved"
    for key, exp in expected.items():
        row, churn = u.loc[key], exp["churn"]
        for stat in STATS:
            assert within_sketch(row[stat], *exp[stat], churn), f"{key} {stat}: got {row[stat]}, exact {exp[stat]}"
        assert row["memory_max_bytes"] in (exp["memory_max_bytes"], exp["memory_max_bytes_closed"]), key
        assert row["samples"] == exp["samples"], key
        assert row["pods_seen"] == exp["pods_seen"], key
        assert row["restarts"] == exp["restarts"] and row["oom_kills"] == exp["oom_kills"], key
        assert row["cpu_throttled_ratio"] == pytest.approx(exp["cpu_throttled_ratio"], abs=1e-3), key
        assert row["hours_covered"] == pytest.approx(row["samples"] / 60.0)
        if churn:
            assert abs(row["pod_samples"] - exp["pod_samples"]) <= lookback_steps, key
            assert row["cpu_mean_cores"] == pytest.approx(exp["cpu_mean_cores"], rel=0.01), key
        else:
            assert row["pod_samples"] == exp["pod_samples"], key
            assert row["cpu_max_cores"] == pytest.approx(exp["cpu_max_cores"], rel=1e-9), key
            assert row["cpu_mean_cores"] == pytest.approx(exp["cpu_mean_cores"], rel=1e-9), key
            assert row["memory_mean_bytes"] == pytest.approx(exp["memory_mean_bytes"], rel=1e-9), key
            assert row["cpu_throttled_seconds"] == pytest.approx(exp["cpu_throttled_seconds"], rel=1e-9), key


@pytest.fixture(scope="module")
def collected(prom_server, prom_dataset):
    return collect(prom_server.url, prom_dataset.end, inventory=True)


def test_every_statistic_matches_the_generated_samples(collected, prom_dataset):
    assert_usage_matches(collected.tables["usage"], prom_dataset.expected(WINDOW_HOURS * 3600))
    assert (collected.tables["usage"]["cluster"] == "c1").all()


def test_pooled_is_not_the_busiest_replica(collected):
    """web's two replicas differ (0.20 and 0.25 cores of base load): pooled p50 lies between the
    replicas', the busiest replica's and the hottest pod's p50 are the second replica's or above."""
    u = collected.tables["usage"].set_index(["workload", "container"]).loc[("web", "app")]
    assert u["cpu_pooled_p50_cores"] < u["cpu_max_over_pods_p50_cores"] <= u["cpu_busiest_p50_cores"] * (1 + RELATIVE_ERROR)


def test_snapshot_keeps_enough_to_recompute_every_statistic(collected):
    again = usage_statistics(collected.tables["usage_histograms"], collected.tables["usage_daily"], 60.0).set_index(KEY[:0] + ["cluster"] + KEY)
    u = collected.tables["usage"].set_index(["cluster"] + KEY)
    for col in [c for c, _ in usage_statistic_columns()] + ["samples", "pod_samples", "pods_seen", "cpu_mean_cores"]:
        np.testing.assert_allclose(again.loc[u.index, col].to_numpy(dtype=float), u[col].to_numpy(dtype=float), rtol=1e-12, err_msg=col)


def test_daily_rows_hold_raw_maxima_and_oom_kills(collected, prom_dataset):
    d = collected.tables["usage_daily"]
    db = d[(d["workload"] == "db") & (d["pod"] == "db-1")]
    assert db["oom_kills"].sum() == 1 and db["memory_max_bytes"].max() == 2 * 2**30  # the peak that got it killed
    assert (d["cpu_samples"] <= 24 * 60).all() and len(d["day"].unique()) == 1  # one 24 h bin


def test_owners_resolve_through_replicasets_and_jobs(collected):
    u = collected.tables["usage"]
    kinds = dict(zip(u["workload"], u["kind"]))
    assert kinds == {"web": "Deployment", "api": "Deployment", "legacy": "ReplicaSet", "db": "StatefulSet",
                     "report": "CronJob", "migrate": "Job", "debug": "Pod", "node-exporter": "DaemonSet"}
    api = u[u["workload"] == "api"].iloc[0]
    assert api["pods_seen"] == 2  # two ReplicaSets of one Deployment merged into one row
    assert "kube-system" not in set(u["namespace"])  # excluded by default


def test_oom_kills_and_throttling_found(collected, prom_dataset):
    u = collected.tables["usage"].set_index("workload")
    assert u.loc["db", "oom_kills"] == 1 and u.loc["db", "restarts"] == 1
    assert u.loc["db", "memory_max_bytes"] == 2 * 2**30
    assert u.loc["api", "cpu_throttled_ratio"] == pytest.approx(0.4, abs=1e-3)
    assert u.loc["legacy", "cpu_throttled_ratio"] == 0.0 and u.loc["legacy", "cpu_throttled_seconds"] == 0.0


def test_nodes_placement_and_traffic_in_both_directions(collected, prom_dataset):
    nodes = collected.tables["nodes"].set_index("node")
    assert nodes.loc["node-a", "capacity_type"] == "on-demand"  # from the EKS label ON_DEMAND
    assert nodes.loc["node-b", "capacity_type"] == "spot"  # from the Karpenter label
    assert nodes.loc["node-b", "instance_type"] == "m5.2xlarge"
    assert nodes.loc["node-a", "allocatable_cpu_cores"] == pytest.approx(3.92)
    assert nodes.loc["node-a", "hours_seen"] == pytest.approx(WINDOW_HOURS, abs=2 / 60)
    pl = collected.tables["placement"].set_index(["workload", "node"])
    assert pl.loc[("web", "node-b"), "zone"] == "us-east-1b"
    assert pl.loc[("web", "node-b"), "pod_hours"] == pytest.approx(WINDOW_HOURS)
    # the rollout moved api from node-a to node-b half way (10 minutes of overlap, 5 of lookback)
    assert pl.loc[("api", "node-a"), "pod_hours"] + pl.loc[("api", "node-b"), "pod_hours"] == pytest.approx(
        WINDOW_HOURS + 10 / 60, abs=(LOOKBACK_STEPS + 1) / 60)
    tr = collected.tables["traffic"].set_index(["source_workload", "destination_workload"])
    assert len(tr) == len(TRAFFIC)
    for (sn, sw, dn, dw), (req, resp) in prom_dataset.expected_traffic(WINDOW_HOURS * 3600).items():
        # both reporters wrote every byte: counted once, from the configured reporter
        assert tr.loc[(sw, dw), "request_bytes"] == pytest.approx(req, rel=1e-9)
        assert tr.loc[(sw, dw), "response_bytes"] == pytest.approx(resp, rel=1e-9)
        assert tr.loc[(sw, dw), "bytes"] == pytest.approx(req + resp, rel=1e-9)
    assert collected.meta["sources"]["prometheus:c1"]["istio_reporter"] == "destination"


def test_inventory_from_kube_state_metrics(collected):
    c = collected.tables["containers"].set_index(["workload", "container"])
    assert c.loc[("web", "app"), "cpu_request_cores"] == 0.5
    assert math.isnan(c.loc[("web", "app"), "cpu_limit_cores"])  # unset stays NaN, never 0
    assert c.loc[("web", "envoy"), "cpu_limit_cores"] == 0.2
    assert math.isnan(c.loc[("debug", "shell"), "memory_request_bytes"])
    w = collected.tables["workloads"].set_index("workload")
    assert w.loc["web", "hpa"] and w.loc["web", "hpa_cpu_target_percent"] == 70 and w.loc["web", "hpa_name"] == "web"
    assert w.loc["db", "pdb"] and not w.loc["web", "pdb"]
    assert w.loc["web", "replicas"] == 2 and w.loc["api", "replicas"] == 1  # pods alive at the window end
    assert (w["source"] == "prometheus").all()
    collected.validate()


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
    assert log.bars == [(i, len(finished)) for i in range(1, len(finished) + 1)]  # one tick per finished request, ending full
    # all in the one pool: the cluster-wide inventory, cpu, memory, and each part of the daily and per-pod
    # inventory queries once (one request per part: the server's heap holds one part's series at a time)
    asked = Counter(m.split(" for ")[0] for m in finished)
    daily = {f"daily {p}" for p in ("memory_max", "raw_samples", "restarts", "oom")}
    assert {"cluster", "cpu", "memory"} | daily | {"per_pod restarts", "per_pod cfs_periods"} <= set(asked)
    assert set(asked.values()) == {1} and all(a.startswith(("daily ", "per_pod ")) for a in set(asked) - {"cluster", "cpu", "memory"})


def test_request_count_does_not_grow_with_workloads(prom_dataset, tmp_path):
    """Three times the workloads (and namespaces) in the same store: the same requests."""
    big = Dataset(prom_dataset.end, 3, pods=__import__("promdata").default_cluster(scale=3))
    server = start_prometheus(big, tmp_path)
    try:
        small = collect(server.url, big.end, window_hours=2, namespaces=("shop", "data", "batch", "monitoring"))
        large = collect(server.url, big.end, window_hours=2)
    finally:
        server.stop()
    assert large.tables["usage"]["namespace"].nunique() == 3 * small.tables["usage"]["namespace"].nunique() - 2
    # setup (4), the cluster-wide query, cpu and memory, and one per part of the daily (4) and per-pod queries
    assert large.meta["sources"]["prometheus:c1"]["requests"] == small.meta["sources"]["prometheus:c1"]["requests"] <= 24


def test_dropped_metric_disables_what_depends_on_it(tmp_path):
    end = dataset_end()
    ds = Dataset(end, 3, drop=("container_cpu_cfs_throttled_periods_total", "istio_tcp_sent_bytes_total", "istio_tcp_received_bytes_total",
                                "istio_request_bytes_sum", "istio_response_bytes_sum", "kube_node_labels",
                                "kube_pod_container_status_last_terminated_reason"))
    server = start_prometheus(ds, tmp_path)
    try:
        snap = collect(server.url, end, window_hours=2)
    finally:
        server.stop()
    assert {"container_cpu_cfs_throttled_periods_total", "istio_tcp_sent_bytes_total", "kube_node_labels"} <= set(snap.meta["missing_metrics"])
    u = snap.tables["usage"]
    assert u["cpu_throttled_ratio"].isna().all() and u["oom_kills"].isna().all()  # unknown, never 0
    assert u["cpu_throttled_seconds"].notna().all()  # its own metric is still there
    assert len(snap.tables["traffic"]) == 0 and len(snap.tables["nodes"]) == 0
    assert u["cpu_pooled_p95_cores"].notna().all()  # the rest still collected
    messages = " ".join(w["message"] for w in snap.meta["warnings"])
    assert "throttling" in messages and "nodes table" in messages and "OOM kill" in messages


@pytest.mark.parametrize("dropped, hint", [
    (("container_memory_working_set_bytes", "container_cpu_usage_seconds_total"), "cAdvisor"),
    (("kube_pod_owner",), "kube-state-metrics"),
])
def test_missing_core_metrics_are_an_error_with_hints(tmp_path, dropped, hint):
    end = dataset_end()
    server = start_prometheus(Dataset(end, 2, drop=dropped), tmp_path)
    try:
        with pytest.raises(SourceError) as err:
            collect(server.url, end, window_hours=1)
        partial = collect(server.url, end, window_hours=1, allow_partial=True)
    finally:
        server.stop()
    assert dropped[0] in str(err.value) and hint in str(err.value) and server.url in str(err.value)
    assert sorted(partial.meta["partial"]["metrics"]) == sorted(f"c1/{d}" for d in dropped)


def test_wrong_cluster_label_names_the_restriction(prom_server, prom_dataset):
    cfg = make_config(prom_server.url, prom_dataset.end, cluster_label="cluster")
    with pytest.raises(SourceError) as err:
        P.collect_usage(cfg, ClusterTarget("eu", prom_server.url, label_value="eu"), Snapshot(), progress=lambda m: None)
    assert 'cluster="eu"' in str(err.value) and "cluster_label" in str(err.value)


def test_a_wrong_path_prefix_hints_at_the_prefix(prom_server, prom_dataset):
    """A real Prometheus asked under a prefix it does not serve answers 404 '404 page not found': the error
    says so in plain text (not as a bytes repr) and points at the URL's path prefix."""
    url = prom_server.url + "/prometheus"
    with pytest.raises(SourceError) as err:
        collect(url, prom_dataset.end)
    message = str(err.value)
    assert f"{url}: " in message and "HTTP 404: 404 page not found; is [prometheus] url the API's base with its path prefix" in message
    assert "b'" not in message and "\\n" not in message and "\n" not in message


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
    except SourceError:
        pytest.fail("allow_partial must keep going")
    finally:
        server.stop()
    assert sorted(snap.meta["partial"]["namespaces"]) == ["c1/batch", "c1/data", "c1/monitoring", "c1/shop"]
    # nothing half-filled is kept for the failed namespaces
    assert len(snap.tables["usage"]) == 0 and len(snap.tables["usage_histograms"]) == 0
    assert any(w["code"] == "partial" for w in snap.meta["warnings"])


class _FailsOneCpuChunk(P.Client):
    """Every answer comes from the real Prometheus except the second CPU chunk of the shard holding
    ``shop``, which fails as a server error would. A stand-in for that one failure: a real server
    cannot be made to fail one chunk of one shard on demand."""

    cpu_chunks = 0

    def query_range(self, promql, start, end, step, labels, what="range query", timestamps=False, deferred=False):
        if promql.startswith("rate(container_cpu_usage_seconds_total") and re.search(r'namespace=~?"[^"]*\bshop\b', promql):
            with self._lock:
                self.cpu_chunks += 1
                if self.cpu_chunks == 2:
                    raise P.QueryFailed(f"{self.url}: {what}: HTTP 500 (stand-in)", False, 500)
        return super().query_range(promql, start, end, step, labels, what, timestamps, deferred)


def test_a_shard_failing_after_its_first_chunks_leaves_no_rows_of_its_namespaces(prom_server, prom_dataset):
    """With --allow-partial, the chunks a failed shard did answer (its memory, its first CPU chunk)
    must not leave usage, histograms or pod-hours that look complete."""
    cfg = make_config(prom_server.url, prom_dataset.end, range_points=2000, concurrency=1)
    client = _FailsOneCpuChunk(cfg, prom_server.url)
    snap = collect(prom_server.url, prom_dataset.end, allow_partial=True, client=client, range_points=2000, concurrency=1)
    failed = {ns.split("/", 1)[1] for ns in snap.meta["partial"]["namespaces"]}
    assert client.cpu_chunks >= 2 and "shop" in failed and len(failed) < 4
    for table in ("usage", "usage_histograms", "usage_daily", "placement"):
        t = snap.tables[table]
        assert not t["namespace"].isin(failed).any(), table
        assert len(t), table  # the other namespaces are there


def _range_spans(queries, metric):
    """Seconds spanned by each range query of ``metric`` at the 60 s step, grouped by query text
    (one text per shard)."""
    spans: dict[str, list[float]] = {}
    for q in queries:
        if "start" in q and metric in q["query"] and q["step"] == 60:
            spans.setdefault(q["query"], []).append(q["end"] - q["start"])
    return spans


def test_range_chunk_halved_when_server_rejects_it(prom_dataset, tmp_path):
    # the server's sample limit rejects the whole-window range query; rightsize halves the time chunk
    server = start_prometheus(prom_dataset, tmp_path, max_samples=12_000)
    try:
        cfg = make_config(server.url, prom_dataset.end)
        client = P.Client(cfg, server.url)
        client.recorded = []
        logs = []
        snap = collect(server.url, prom_dataset.end, client=client, progress=logs.append)
    finally:
        server.stop()
    [spans] = _range_spans(client.recorded, "container_memory_working_set_bytes").values()
    assert spans[0] == (WINDOW_HOURS * 60 - 1) * 60 and min(spans) < spans[0] / 2, spans
    assert snap.meta["sources"]["prometheus:c1"]["splits"] > 0 and any("splitting" in m for m in logs)
    assert_usage_matches(snap.tables["usage"], prom_dataset.expected(WINDOW_HOURS * 3600))


def test_range_queries_cut_into_time_chunks_read_every_step_once(prom_server, prom_dataset):
    cfg = make_config(prom_server.url, prom_dataset.end, range_points=2000)
    client = P.Client(cfg, prom_server.url)
    client.recorded = []
    snap = collect(prom_server.url, prom_dataset.end, range_points=2000, client=client)
    assert_usage_matches(snap.tables["usage"], prom_dataset.expected(WINDOW_HOURS * 3600))
    shards = _range_spans(client.recorded, "container_cpu_usage_seconds_total")
    assert len(shards) == snap.meta["sources"]["prometheus:c1"]["shards"] > 1  # namespaces grouped under the budget
    for spans in shards.values():
        assert len(spans) > 1  # 1,440 steps x the shard's series do not fit 2,000 points
        assert sum(s / 60 + 1 for s in spans) == WINDOW_HOURS * 60  # every step of the window exactly once


def test_plan_shards_packs_namespaces_under_budget():
    # 288 steps (a day at 5 m) x 55 series fit a 15,840-point budget: chunks of at least a day
    assert P.plan_shards({"a": 50, "b": 30, "c": 20, "d": 5}, steps=4032, points=288 * 55) == [("a",), ("b", "c", "d")]
    assert P.plan_shards({"a": 10}, steps=100, points=10) == [("a",)]  # one namespace is never split here


def test_hostile_namespace_names_cannot_change_queries(prom_server, prom_dataset):
    from rightsize.errors import SourceError

    with pytest.raises(SourceError, match="found 0 containers"):  # matched literally: no such namespaces
        collect(prom_server.url, prom_dataset.end, namespaces=('shop"} or vector(1) #', "shop|data", ".*"))
    snap = collect(prom_server.url, prom_dataset.end, namespaces=("shop",))
    assert set(snap.tables["usage"]["namespace"]) == {"shop"}


def test_fetch_series_for_chosen_workloads(prom_server, prom_dataset):
    cfg = make_config(prom_server.url, prom_dataset.end)
    target = ClusterTarget("c1", prom_server.url)
    df = P.fetch_series(cfg, target, [("shop", "Deployment", "web"), ("data", "StatefulSet", "db")])
    assert set(zip(df["workload"], df["container"])) == {("web", "app"), ("web", "envoy"), ("db", "postgres")}
    db = df[df["workload"] == "db"]
    assert len(db) == WINDOW_HOURS * 60  # [general] step (60 s here) over the window
    sers = [v for (_ns, pod, c), v in prom_dataset._series.items() if c == "postgres" and v["pod"].namespace == "data"]
    for ts, got in zip(db["timestamp"].iloc[::37], db["memory_bytes"].iloc[::37]):
        i = int((ts.timestamp() - prom_dataset.ts[0]) // 60)
        assert got == max(s["mem"][i - s["s"]] for s in sers)  # the busiest replica at that step
    assert str(df["timestamp"].dtype).startswith("datetime64")


def test_fetch_series_that_matches_nothing_is_an_error(prom_server, prom_dataset):
    from rightsize.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        P.fetch_series(make_config(prom_server.url, prom_dataset.end), ClusterTarget("c1", prom_server.url),
                       ["shop/Deployment/wbe", "shop/Deployment/web"])
    assert "shop/Deployment/wbe" in str(err.value) and "shop/Deployment/web," not in str(err.value)


NAME_COLUMNS = ["cluster", "namespace", "kind", "workload", "container", "pod", "basis", "resource"]


def series_runs_are_contiguous(hist) -> bool:
    """Each series (its names, basis and resource) in one run of consecutive rows: what analysis/cells.py relies on."""
    key = hist[NAME_COLUMNS].astype(str).agg("\x1f".join, axis=1)
    starts = key.ne(key.shift())
    return int(starts.sum()) == key.nunique()


def plain(hist):
    """Rows sorted, names as text (the two paths may carry different unused categories)."""
    out = hist.astype({c: str for c in NAME_COLUMNS})
    return out.sort_values(list(out.columns)).reset_index(drop=True)


def test_streamed_histograms_hold_the_one_piece_tables_rows_in_several_chunks(prom_server, prom_dataset, monkeypatch, tmp_path):
    """collect writes usage_histograms to a staged file a chunk of whole namespaces at a time and frees each chunk.
    With a budget of a few hundred rows per chunk the table comes in several chunks, yet it holds exactly the rows
    the one-piece path (UsageAccumulator.histograms, the demo's) builds from the same pulls, each series' rows
    together; the usage statistics computed chunk by chunk equal those of the whole table; and the snapshot
    written from it reads back (checksums) with the same rows."""
    from rightsize.sources.prometheus import assemble, usage as usage_mod
    from rightsize.table_sink import TableSink

    whole, chunks, streamed_histograms = {}, [], assemble.histograms

    def both(run, acc, daily, leave_out):  # the one-piece table from the same accumulator, before streaming frees it
        whole["hist"] = assemble.drop(acc.histograms(run.cluster, run.owners), leave_out)
        whole["usage"] = usage_statistics(whole["hist"], daily, run.grid.step)
        return streamed_histograms(run, acc, daily, leave_out)

    monkeypatch.setattr(assemble, "histograms", both)
    monkeypatch.setattr(usage_mod, "CHUNK_ROWS", 400)
    write = TableSink.write
    monkeypatch.setattr(TableSink, "write", lambda self, frame: (chunks.append(frame["namespace"].unique().tolist()), write(self, frame))[1])
    snap = collect(prom_server.url, prom_dataset.end, inventory=True)
    assert snap.tables.lazy("usage_histograms") is not None  # streamed: not held in memory
    assert len(chunks) >= 3 and sum(len(c) for c in chunks) == len(set().union(*map(set, chunks)))  # namespaces never split
    streamed = snap.tables["usage_histograms"]
    assert len(whole["hist"]) > 1000 and series_runs_are_contiguous(streamed)
    pd.testing.assert_frame_equal(plain(streamed), plain(whole["hist"]))
    columns = [c for c, _ in usage_statistic_columns()] + ["samples", "pod_samples", "pods_seen", "hours_covered"]
    got, exact = (u.sort_values(KEY).reset_index(drop=True) for u in (snap.tables["usage"], whole["usage"]))
    assert got[KEY].equals(exact[KEY].astype(got[KEY].dtypes.to_dict()))
    np.testing.assert_array_equal(got[columns].to_numpy(dtype=float), exact[columns].to_numpy(dtype=float))
    snap.write(tmp_path / "snapshot")
    again = Snapshot.read(tmp_path / "snapshot").tables["usage_histograms"]
    pd.testing.assert_frame_equal(plain(again), plain(whole["hist"]))
    assert series_runs_are_contiguous(again)
