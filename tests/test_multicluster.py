"""Many clusters in one run (issue 11): a shared store with a cluster label, and [[clusters]] entries
where one cluster fails and the others still complete. Real servers: victoria-metrics and prometheus."""
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from promdata import Dataset
from promservers import DATA_HOURS, flush, free_port, make_config, prom_dataset, prom_server, start_victoria  # noqa: F401
from rightsize.api import analyze
from rightsize.collect import collect
from rightsize.config import ClusterEntry, KubernetesConfig
from rightsize.emit.patches import write_patches
from rightsize.sources.aws import collect_prices

ROOT = Path(__file__).resolve().parents[1]


def quiet(_msg):
    pass


@pytest.fixture(scope="module")
def fleet_store(prom_dataset, tmp_path_factory):
    """One VictoriaMetrics holding two clusters' series, told apart by the label cluster="eu"/"us"."""
    eu = Dataset(prom_dataset.end, DATA_HOURS, cluster_label="cluster", cluster="eu")
    us = Dataset(prom_dataset.end, DATA_HOURS, cluster_label="cluster", cluster="us")
    server = start_victoria(eu, tmp_path_factory.mktemp("fleet"))
    for chunk in us.prometheus_text_chunks():
        requests.post(server.url + "/api/v1/import/prometheus", data=chunk.encode(), timeout=120).raise_for_status()
    flush(server)
    yield server, eu
    server.stop()


def prometheus_only(config):
    """Specs from kube-state-metrics; the test data covers a day, so a day of history is enough here."""
    policies = {name: dataclasses.replace(p, min_history=12 * 3600.0) for name, p in config.policies.items()}
    return dataclasses.replace(config, kubernetes=KubernetesConfig(source="prometheus"), policies=policies)


def test_shared_store_discovers_clusters_and_reports_each(fleet_store, tmp_path):
    server, eu = fleet_store
    config = prometheus_only(make_config(server.url, eu.end, cluster_label="cluster"))
    snapshot = collect(config, log=quiet)
    assert snapshot.meta["clusters"] == ["eu", "us"]
    usage = snapshot.usage
    per_cluster = usage.groupby("cluster").size()
    assert per_cluster["eu"] == per_cluster["us"] > 0  # same generated cluster twice, nothing mixed up
    # identical series in both clusters give identical statistics: the cluster matcher isolates them
    eu_rows = usage[usage.cluster == "eu"].drop(columns="cluster").sort_values(["namespace", "workload", "container"])
    us_rows = usage[usage.cluster == "us"].drop(columns="cluster").sort_values(["namespace", "workload", "container"])
    assert eu_rows.reset_index(drop=True).equals(us_rows.reset_index(drop=True))
    assert set(snapshot.nodes.cluster) == {"eu", "us"}

    collect_prices(config, snapshot, offline=True)
    analysis = analyze(snapshot, config)
    clusters = {row["cluster"] for row in analysis.summary["by_cluster"]}
    assert clusters == {"eu", "us"}
    result = write_patches(analysis.recommendations, snapshot, config, tmp_path / "patches")
    folders = {p.relative_to(tmp_path / "patches").parts[0] for p in result.written}
    # one folder of patches per cluster (and resize/ for the urgent raises, per cluster inside)
    assert len(result.written) > 2 and folders == {"eu", "us", "PATCHES.md", "resize"}
    scripts = {p.relative_to(tmp_path / "patches" / "resize").parts[0] for p in result.written if "resize" in p.parts and p.suffix == ".sh"}
    assert scripts == {"eu", "us"}


def test_failing_cluster_is_reported_and_others_complete(prom_server, prom_dataset, tmp_path):
    closed = f"http://127.0.0.1:{free_port()}"
    end = make_config(prom_server.url, prom_dataset.end).prometheus.end
    cfg = tmp_path / "fleet.toml"
    cfg.write_text(f"""
[general]
window = "24h"
step = "1m"
[prometheus]
end = "{end}"
retries = 0
timeout = "20s"
[kubernetes]
source = "prometheus"
[policies.production]
min_history = "12h"
[pricing]
source = "offline"
[[clusters]]
name = "good"
prometheus_url = "{prom_server.url}"
[[clusters]]
name = "down"
prometheus_url = "{closed}"
""")
    out = tmp_path / "week"
    proc = subprocess.run([sys.executable, "-m", "rightsize.cli", "run", "--config", str(cfg), "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600)
    assert proc.returncode == 4, proc.stderr  # partial: one cluster missing
    assert "[down] FAILED" in proc.stderr and closed in proc.stderr
    meta = json.loads((out / "snapshot" / "meta.json").read_text())
    assert meta["clusters"] == ["good"] and meta["partial"]["clusters"] == ["down"]
    summary = json.loads((out / "summary.json").read_text())
    assert [c["cluster"] for c in summary["by_cluster"]] == ["good"]
    report = (out / "report.md").read_text()
    assert "down" in report and "was not collected" in report  # the caveat reaches the reader


def test_cluster_entries_inherit_prometheus_settings():
    from rightsize.config import Config
    from rightsize.targets import cluster_targets

    base = Config()
    config = dataclasses.replace(
        base, prometheus=dataclasses.replace(base.prometheus, cluster_label="cluster", headers={"X-Scope-OrgID": "fleet"}),
        clusters=(ClusterEntry(name="eu", headers={"X-Extra": "1"}), ClusterEntry(name="us", prometheus_url="http://us:9090")))
    eu, us = cluster_targets(config)
    assert eu.prometheus_url == base.prometheus.url and eu.label_value == "eu"
    assert eu.headers == {"X-Scope-OrgID": "fleet", "X-Extra": "1"}
    assert us.prometheus_url == "http://us:9090" and us.label_value == ""  # own server: no label matcher


def test_collect_series_fetches_only_the_chosen_workloads(prom_server, prom_dataset):
    config = prometheus_only(make_config(prom_server.url, prom_dataset.end))
    # the kind matches case-insensitively, the cluster prefix names the one collected
    snapshot = collect(config, series=(f"{config.general.cluster_name}/shop/deployment/web",), log=quiet)
    series = snapshot.series
    assert len(series) > 0
    assert set(zip(series.namespace, series.kind, series.workload)) == {("shop", "Deployment", "web")}
    assert set(series.container) == {"app", "envoy"}
    assert (series.cpu_cores >= 0).all() and (series.memory_bytes > 0).all()
    # at [general] step (60 s in these tests) over the 24 h window
    assert series.groupby("container").size().max() == 24 * 60


def test_collect_series_rejects_a_malformed_reference(prom_server, prom_dataset):
    from rightsize.errors import ConfigError

    config = prometheus_only(make_config(prom_server.url, prom_dataset.end))
    with pytest.raises(ConfigError, match=r"--series: expected NAMESPACE/KIND/NAME or CLUSTER/NAMESPACE/KIND/NAME, got 'web'"):
        collect(config, series=("web",), log=quiet)
    with pytest.raises(ConfigError, match=r"--series 'elsewhere/shop/Deployment/web': no cluster 'elsewhere' is collected"):
        collect(config, series=("elsewhere/shop/Deployment/web",), log=quiet)
