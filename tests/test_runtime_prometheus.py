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
from runtimedata import GIB, MIB, RuntimeDataset

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


def assert_hourly(table: pd.DataFrame, data: RuntimeDataset, closed: bool = True) -> None:
    """Every pod-hour of the window, nothing else (no container-less series), each value exact."""
    end = pd.Timestamp(data.end, unit="s", tz="UTC")
    got = {(r["namespace"], r["pod"], r["container"], round((end - r["hour"]).total_seconds() / 3600) - 1): r
           for r in table.to_dict("records")}
    expected = data.expected_hourly(WINDOW_HOURS, closed)
    assert set(got) == set(expected)
    for key, values in expected.items():
        for column, value in values.items():
            v = got[key][column]
            assert (isinstance(v, float) and math.isnan(v) and math.isnan(value)) or v == value, (key, column, v, value)


def test_every_hourly_value_matches_the_generated_series(collected, runtime_data):
    table = collected.tables["runtime_hourly"]
    assert_hourly(table, runtime_data)
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
    [w] = [w for w in collected.meta["warnings"] if w["code"] == "runtime_settings_from_metrics"]
    assert "runtime memory settings (env, command, args: -Xmx, GOMEMLIMIT, ...) are unknown from metrics alone" in w["message"]
    assert collected.tables["runtimes"].empty  # nothing is guessed from the metrics into the spec table


# --- recommendations from the spec (manifests) and the collected metrics ------------------------------------

MANIFESTS = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: orders, namespace: jvm}
spec:
  replicas: 2
  selector: {matchLabels: {app: orders}}
  template:
    metadata: {labels: {app: orders}}
    spec:
      containers:
      - name: app
        image: registry.example/orders:1
        env:
        - {name: JAVA_TOOL_OPTIONS, value: "-XX:+UseG1GC -Xmx2g -Xms2g -Dspring.profiles.active=prod"}
        resources: {requests: {cpu: 500m, memory: 2560Mi}, limits: {memory: 2560Mi}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: billing, namespace: jvm}
spec:
  replicas: 1
  selector: {matchLabels: {app: billing}}
  template:
    metadata: {labels: {app: billing}}
    spec:
      containers:
      - name: app
        image: eclipse-temurin:21-jre
        command: [java, -Xmx1g, -jar, /app/billing.jar]
        resources: {requests: {cpu: 500m, memory: 2560Mi}, limits: {memory: 2560Mi}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: gateway, namespace: go}
spec:
  replicas: 1
  selector: {matchLabels: {app: gateway}}
  template:
    metadata: {labels: {app: gateway}}
    spec:
      containers:
      - name: app
        image: registry.example/gateway:1
        env:
        - {name: GOMEMLIMIT, value: 900MiB}
        resources: {requests: {cpu: 500m, memory: 2560Mi}, limits: {memory: 2560Mi}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: worker, namespace: go}
spec:
  replicas: 1
  selector: {matchLabels: {app: worker}}
  template:
    metadata: {labels: {app: worker}}
    spec:
      containers:
      - name: app
        image: golang:1.22
        resources: {requests: {cpu: 500m, memory: 2560Mi}, limits: {memory: 2560Mi}}
"""


@pytest.fixture(scope="module")
def recommended(runtime_server, runtime_data, tmp_path_factory):
    from rightsize.analysis.recommend import recommend
    from rightsize.collect import collect as collect_stage

    folder = tmp_path_factory.mktemp("runtime-manifests")
    (folder / "apps.yaml").write_text(MANIFESTS)
    config = make_config(runtime_server.url, runtime_data.end)
    # a day of history: no minimum, no widening for a short history (the hand computation is the rule itself)
    short = dataclasses.replace(config.policies["production"], min_history=12 * 3600.0, full_confidence_history=86400.0,
                                medium_confidence_history=86400.0)
    config = dataclasses.replace(config, policies={**config.policies, "production": short},
                                 pricing=dataclasses.replace(config.pricing, source="offline"))
    snap = collect_stage(config, manifests=str(folder), log=lambda m: None)
    return snap, recommend(snap, config).set_index(["namespace", "workload"])


def test_the_jvm_heap_and_limit_match_a_hand_computation(recommended):
    _, recs = recommended
    orders = recs.loc[("jvm", "orders")]
    # live set: Micrometer's live data, 480 / 512 MiB + 8 MiB x (hour % 4): 48 pod-hours, p99 = the largest, 536 MiB;
    # heap = 536 / 0.7 = 765.7 -> 766 MiB; non-heap: working set - committed heap, peak 300 MiB (the spike);
    # memory = 766 + 300 x 1.15 = 1111 MiB -> 1120 MiB (16 MiB steps from 1 GiB)
    assert orders["live_set_bytes"] == 536 * MIB and orders["non_heap_bytes"] == 300 * MIB
    assert orders["heap_bytes_current"] == 2 * GIB and orders["heap_bytes_recommended"] == 766 * MIB
    assert orders["memory_request_bytes_recommended"] == orders["memory_limit_bytes_recommended"] == 1120 * MIB
    assert orders["runtime_setting_action"] == "patch" and orders["status"] == "change"
    assert orders["runtime_env_json"] == '{"JAVA_TOOL_OPTIONS": "-XX:+UseG1GC -Xmx766m -Xms766m -Dspring.profiles.active=prod"}'
    # -Xmx2g is four times its 512 MiB live set: the memory request falls by more than half
    saving = 1 - orders["memory_request_bytes_recommended"] / orders["memory_request_bytes_current"]
    assert saving >= 0.5 and saving == pytest.approx(1 - 1120 / 2560)


def test_a_heap_on_the_command_line_stays_and_its_edit_is_given(recommended):
    _, recs = recommended
    billing = recs.loc[("jvm", "billing")]
    # no live data (the JMX exporter): the heap's hourly troughs; the -Xmx1g on the command line is not patched
    assert billing["runtime_setting_action"] == "by_hand" and "runtime_by_hand" in billing["flags"]
    assert billing["runtime_setting_edit"] == f'command[1]: "-Xmx1g" -> "-Xmx{math.ceil(billing["live_set_bytes"] / 0.7 / MIB)}m"'
    assert billing["memory_limit_bytes_recommended"] >= GIB + billing["non_heap_bytes"]  # today's heap + non-heap


def test_go_runtime_limit_is_a_share_of_the_limit(recommended, runtime_data):
    _, recs = recommended
    gateway = recs.loc[("go", "gateway")]
    limit = gateway["memory_limit_bytes_recommended"]
    # by hand: the generated working set (400 MiB + up to 5 % noise), its largest raw sample x (1 + the flat
    # pattern's margin), rounded up; the Go heap's peak, 260 MiB x (1 + margin) / 0.9, is below it: no floor
    from rightsize.analysis.rounding import round_memory_up
    from rightsize.config import Config

    peak = max(ser["mem"].max() for (ns, _pod, _c), ser in runtime_data._series.items()
               if ns == "go" and ser["pod"].workload == "gateway")
    margin = Config().policy("production").margins["memory_flat"]
    assert 400 * MIB <= peak <= 420 * MIB
    assert gateway["memory_pattern"] == "flat" and limit == round_memory_up(peak * (1 + margin))
    assert 260 * MIB * (1 + margin) / 0.9 < limit
    assert gateway["runtime_env_json"] == f'{{"GOMEMLIMIT": "{int(0.9 * limit // MIB)}MiB"}}'
    assert gateway["heap_bytes_current"] == 900 * MIB  # GOMEMLIMIT from the spec (the metrics say the same)
    worker = recs.loc[("go", "worker")]
    assert worker["runtime_setting_action"] == "none" and "no GOMEMLIMIT" in worker["reason"]


def test_no_recommended_limit_is_below_the_heap_maximum_plus_non_heap(recommended):
    _, recs = recommended
    runtime = recs[recs["runtime"] != ""]
    assert len(runtime) == 4
    moved = runtime["runtime_setting_action"].isin(["patch", "follows_limit"])
    heap_after = runtime["heap_bytes_recommended"].where(moved, runtime["heap_bytes_current"])
    below = runtime["memory_limit_bytes_recommended"] < heap_after + runtime["non_heap_bytes"].fillna(0)
    assert heap_after.notna().sum() == 3 and below.sum() == 0



def test_victoriametrics_answers_the_same_runtime_query(runtime_data, tmp_path_factory):
    """The same samples in a real VictoriaMetrics: every hourly value exact, with MetricsQL's left-open windows."""
    from promservers import start_victoria

    server = start_victoria(runtime_data, tmp_path_factory.mktemp("victoria-runtimes"))
    try:
        snap = collect(server.url, runtime_data.end)
    finally:
        server.stop()
    assert_hourly(snap.tables["runtime_hourly"], runtime_data, closed=False)
