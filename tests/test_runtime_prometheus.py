"""The runtimes' own memory collected from a real Prometheus backfilled with JVM and Go series of known heap,
live set and non-heap (tests/runtimedata.py): every hourly value exact, duplicate scrapes counted once,
unattributable series counted and left out, one request more per shard, none without runtime metrics."""
from __future__ import annotations

import dataclasses
import math

import pandas as pd
import pytest

from promservers import DATA_HOURS, WINDOW_HOURS, dataset_end, make_config, start_prometheus
from rightsize.config import RuntimeMetricNames
from rightsize.settings import fields_of
from rightsize.snapshot import Snapshot
from rightsize.sources import prometheus as P
from rightsize.targets import ClusterTarget
from runtimedata import RuntimeDataset

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def runtime_data():
    return RuntimeDataset(dataset_end(), DATA_HOURS)


@pytest.fixture(scope="module")
def runtime_server(runtime_data, tmp_path_factory):
    server = start_prometheus(runtime_data, tmp_path_factory.mktemp("prometheus-runtimes"))
    yield server
    server.stop()


def collect(url, end, **prom) -> Snapshot:
    snap = Snapshot()
    P.collect_usage(make_config(url, end, **prom), ClusterTarget("c1", url), snap, inventory_from_metrics=True,
                    progress=lambda m: None)
    return snap


@pytest.fixture(scope="module")
def collected(runtime_server, runtime_data):
    return collect(runtime_server.url, runtime_data.end)


def test_every_hourly_value_matches_the_generated_series(collected, runtime_data):
    table = collected.tables["runtime_hourly"]
    end = pd.Timestamp(runtime_data.end, unit="s", tz="UTC")
    got = {(r["namespace"], r["pod"], r["container"], round((end - r["hour"]).total_seconds() / 3600) - 1): r
           for r in table.to_dict("records")}
    expected = runtime_data.expected_hourly(WINDOW_HOURS)
    assert set(got) == set(expected)  # every pod-hour of the window, nothing else (no container-less series)
    for key, values in expected.items():
        for column, value in values.items():
            v = got[key][column]
            assert (isinstance(v, float) and math.isnan(v) and math.isnan(value)) or v == value, (key, column, v, value)
    # owners resolved; pod 0 of orders was scraped by two jobs and still counts its heap once
    owners = table.groupby(["namespace", "kind", "workload"])["pod"].nunique().to_dict()
    assert owners == {("go", "Deployment", "gateway"): 1, ("go", "Deployment", "worker"): 1,
                      ("jvm", "Deployment", "billing"): 1, ("jvm", "Deployment", "orders"): 2}


def test_series_without_a_container_are_counted_and_left_out(collected):
    [w] = [w for w in collected.meta["warnings"] if w["code"] == "runtime_series_unowned"]
    assert "cluster c1: 1 pod series of runtime metrics" in w["message"]


def test_found_and_missing_families_are_named(collected):
    families = collected.meta["sources"]["prometheus:c1"]["runtime_metrics"]
    assert set(families["jvm"]["found"]) == {"jvm_memory_used_bytes", "jvm_memory_committed_bytes", "jvm_memory_max_bytes",
                                             "jvm_gc_live_data_size_bytes", "jvm_memory_bytes_used",
                                             "jvm_memory_bytes_committed", "jvm_memory_bytes_max"}
    assert families["go"] == {"found": ["go_memstats_heap_inuse_bytes", "go_gc_gomemlimit_bytes"], "missing": []}
    assert families["node"]["found"] == [] and "nodejs_heap_size_used_bytes" in families["node"]["missing"]
    assert families["dotnet"]["found"] == []


def test_one_request_more_per_shard_and_none_without_runtime_metrics(runtime_server, runtime_data, collected):
    absent = RuntimeMetricNames(**{f.name: f"absent_{f.name}" for f in fields_of(RuntimeMetricNames)})
    config = make_config(runtime_server.url, runtime_data.end)
    without = collect(runtime_server.url, runtime_data.end,
                      runtime_metrics=dataclasses.replace(config.prometheus.runtime_metrics, **vars(absent)))
    with_rt, without_rt = (s.meta["sources"]["prometheus:c1"] for s in (collected, without))
    assert with_rt["shards"] == without_rt["shards"] == 1
    assert with_rt["requests"] == without_rt["requests"] + 1
    assert without.tables["runtime_hourly"].empty
    # the usage pulled is the same either way
    pd.testing.assert_frame_equal(collected.tables["usage"], without.tables["usage"])


def test_metrics_alone_say_the_runtime_settings_are_unknown(collected):
    [w] = [w for w in collected.meta["warnings"] if w["code"] == "inventory_from_metrics"]
    assert "runtime memory settings (env, command, args: -Xmx, GOMEMLIMIT, ...) are unknown from metrics alone" in w["message"]
    assert collected.tables["runtimes"].empty  # nothing is guessed from the metrics into the spec table
