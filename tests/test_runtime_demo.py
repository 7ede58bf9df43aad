"""The demo's runtimes block: a Spring Boot service at four times its live set, a Go service with GOMEMLIMIT, a JVM at
MaxRAMPercentage that the working-set rule alone would cut below what its heap needs."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from rightsize.analysis.recommend import recommend
from rightsize.analysis.rounding import round_memory_up
from rightsize.config import Config
from rightsize.demo import generate

MIB = 2**20


@pytest.fixture(scope="module")
def recs():
    snap = generate()
    return recommend(snap, Config()).pipe(lambda t: t.set_index(t["namespace"] + "/" + t["workload"]))


def test_the_spring_boot_service_saves_more_than_half_its_memory(recs):
    orders = recs.loc["shop/orders"]
    assert orders["heap_bytes_current"] == 2048 * MIB
    assert orders["heap_bytes_current"] / orders["live_set_bytes"] >= 3.8  # -Xmx2g, a live set of about 512 MiB
    heap = orders["heap_bytes_recommended"]
    assert heap == round_memory_up(orders["live_set_bytes"] / 0.7)
    assert orders["memory_limit_bytes_recommended"] == round_memory_up(heap + orders["non_heap_bytes"] * 1.15)
    assert 1 - orders["memory_request_bytes_recommended"] / orders["memory_request_bytes_current"] >= 0.5
    env = json.loads(orders["runtime_env_json"])["JAVA_TOOL_OPTIONS"]
    mib = int(heap // MIB)
    assert env == f"-XX:+UseG1GC -Xmx{mib}m -Xms{mib}m -Dspring.profiles.active=prod"  # every other flag kept


def test_the_go_service_moves_gomemlimit_with_its_limit(recs):
    gateway = recs.loc["shop/edge-gateway"]
    limit = gateway["memory_limit_bytes_recommended"]
    assert gateway["heap_bytes_current"] == 1800 * MIB and limit < 1800 * MIB  # today's GOMEMLIMIT is above the new limit
    assert json.loads(gateway["runtime_env_json"]) == {"GOMEMLIMIT": f"{int(0.9 * limit // MIB)}MiB"}


def test_the_jvm_at_max_ram_percentage_is_not_cut_as_far_as_the_working_set_says(recs):
    ledger = recs.loc["payments/ledger-api"]
    margin = Config().policy("production").margins[f"memory_{ledger['memory_pattern']}"]
    by_working_set = round_memory_up(ledger["memory_max_bytes"] * (1 + margin))  # today's rule, which knows no heap
    assert 0.75 * by_working_set < ledger["live_set_bytes"] / 0.7  # its heap would hold the live set at over 70 %
    limit = ledger["memory_limit_bytes_recommended"]
    assert limit > by_working_set and limit == round_memory_up(ledger["live_set_bytes"] / 0.7 / 0.75)
    assert ledger["runtime_setting_action"] == "follows_limit" and ledger["heap_bytes_recommended"] == 0.75 * limit
    assert ledger["heap_occupancy"] <= 0.7


def test_each_demo_case_renders_with_kubectl_kustomize_and_keeps_its_other_settings(tmp_path, kubectl):
    """`rightsize demo`, then the real `kubectl kustomize` of its patch folders over its base manifests."""
    import subprocess
    import sys
    from pathlib import Path

    from patchfixtures import by_id, kustomize, pod_spec

    out = tmp_path / "demo"
    subprocess.run([sys.executable, "-m", "rightsize.cli", "demo", "--out", str(out), "--quiet"], check=True,
                   cwd=Path(__file__).resolve().parents[1], capture_output=True)
    shop = by_id(kustomize(out / "patches" / "demo" / "shop"))
    payments = by_id(kustomize(out / "patches" / "demo" / "payments"))
    orders = pod_spec(shop[("Deployment", "shop", "orders")])["containers"][0]
    # the heap moves with the limit in one patch; every other JVM flag, the image, the container stay
    assert orders["env"] == [{"name": "JAVA_TOOL_OPTIONS", "value": "-XX:+UseG1GC -Xmx754m -Xms754m -Dspring.profiles.active=prod"}]
    assert orders["resources"]["limits"]["memory"] == "1168Mi" and orders["image"] == "registry.example/shop/orders:2.4.1"
    gateway = pod_spec(shop[("Deployment", "shop", "edge-gateway")])["containers"][0]
    import pandas as pd
    table = pd.read_csv(out / "recommendations.csv").pipe(lambda t: t.set_index(t["namespace"] + "/" + t["workload"]))
    limit = table.loc["shop/edge-gateway", "memory_limit_bytes_recommended"]
    # GOMEMLIMIT follows the new limit at 90 %, GOGC beside it stays: merged by name
    assert {e["name"]: e["value"] for e in gateway["env"]} == {"GOMEMLIMIT": f"{int(0.9 * limit // MIB)}MiB", "GOGC": "100"}
    assert gateway["resources"]["limits"]["memory"] == f"{limit / MIB:.0f}Mi" and limit % MIB == 0
    ledger = pod_spec(payments[("Deployment", "payments", "ledger-api")])["containers"][0]
    # MaxRAMPercentage on the command line: untouched, the heap follows the new limit by itself
    assert ledger["command"] == ["java", "-XX:MaxRAMPercentage=75.0", "-jar", "/app/ledger.jar"] and "env" not in ledger
    assert ledger["resources"]["limits"]["memory"] == "1568Mi"
    patch = (out / "patches" / "demo" / "shop" / "deployment-orders.yaml").read_text()
    assert "jvm memory: -Xmx (env JAVA_TOOL_OPTIONS) 2048Mi → 754Mi, patch (live set p99 527Mi, non-heap 351Mi)" in patch


def test_explain_shows_heap_non_heap_live_set_occupancy_and_the_arithmetic():
    from rightsize.analysis.explain import explain

    text = explain(generate(), Config(), "shop/Deployment/orders")
    lines = [line.strip() for line in text.splitlines()]
    assert "runtime: jvm (spec and metrics); setting -Xmx (env JAVA_TOOL_OPTIONS), today 2Gi" in lines
    assert any(line.startswith("live set p99 527.4Mi (live data after full collections); non-heap peak 351.0Mi "
                               "(working set minus committed heap)") for line in lines)
    assert "heap = live set / occupancy 70% = 753.4Mi; after the patch 754Mi" in lines
    assert "memory = heap 754Mi + non-heap 351.0Mi x (1 + 15%) = 1157.6Mi, never below heap + non-heap 1105.0Mi" in lines
    assert "occupancy after: 70% of the heap 754Mi (target 70%)" in lines
    assert any(line.startswith("runtime_memory: ") for line in lines)  # the rule, with what it decides
    ledger = explain(generate(), Config(), "payments/Deployment/ledger-api")
    assert "heap at 75% of the limit: limit >= live set / occupancy 70% = 1169.8Mi / 75% = 1559.7Mi" in ledger


def test_the_runtime_statistics_are_the_same_read_back_from_the_snapshot_files(tmp_path):
    """runtime_hourly is read with its names as categoricals (snapshot.CATEGORICAL_NAMES): the statistics and the
    runtime frame of every container are those of the tables in memory."""
    from rightsize.analysis import runtimes as R
    from rightsize.snapshot import Snapshot

    snap = generate()
    back = Snapshot.read(snap.write(tmp_path / "snap"))
    assert isinstance(back.tables["runtime_hourly"]["pod"].dtype, pd.CategoricalDtype)
    pd.testing.assert_frame_equal(R.statistics(back.tables["runtime_hourly"]), R.statistics(snap.tables["runtime_hourly"]))
    keys = snap.tables["containers"]
    pd.testing.assert_frame_equal(R.frame(back, keys), R.frame(snap, keys))
