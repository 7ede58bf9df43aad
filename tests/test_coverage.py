"""Coverage measured, not assumed: a server that keeps 7 of the 14 days a window asks for.

One real Prometheus holds two clusters of the same generated workloads (tests/promdata.py small_cluster:
four pods on two nodes, Istio traffic between them): "full" with 14 days of samples, "half" with only the
last 7. Every per-hour figure of "half" must be the same monthly rate as "full" (and as the hand
computation from the generator's constants), and "half" carries a caveat naming its coverage. The same
coverage is measured on VictoriaMetrics.
"""
from __future__ import annotations

import dataclasses

import pytest

from promdata import NODES, TRAFFIC, Clusters, Dataset, small_cluster
from promservers import dataset_end, make_config, start_prometheus, start_victoria
from rightsize.api import analyze
from rightsize.collect import collect
from rightsize.emit.view import header_line

pytestmark = pytest.mark.integration
DAY = 86400
INTERVAL = 300


def run_config(url: str, end: int, window_days: float = 14, **prometheus):
    """A 14-day window at the 5-minute step, two clusters told apart by a label, offline prices and the
    kube-state-metrics inventory."""
    cfg = make_config(url, end, window_days * 24, cluster_label="cluster", clusters=("full", "half"), **prometheus)
    return dataclasses.replace(cfg, general=dataclasses.replace(cfg.general, step=float(INTERVAL)),
                               pricing=dataclasses.replace(cfg.pricing, source="offline"),
                               kubernetes=dataclasses.replace(cfg.kubernetes, source="prometheus"))


@pytest.fixture(scope="module")
def store():
    end = dataset_end() // INTERVAL * INTERVAL
    full = Dataset(end, 14 * 24 + 1, small_cluster(), interval=INTERVAL, cluster_label="cluster", cluster="full")
    half = Dataset(end, 7 * 24, small_cluster(), interval=INTERVAL, cluster_label="cluster", cluster="half")
    return end, Clusters(full, half)


@pytest.fixture(scope="module")
def collected(store, tmp_path_factory):
    end, data = store
    server = start_prometheus(data, tmp_path_factory.mktemp("prometheus-coverage"))
    try:
        config = run_config(server.url, end)
        snapshot = collect(config, log=lambda m: None)
    finally:
        server.stop()
    return end, config, snapshot, analyze(snapshot, config)


def per_cluster(frame, column):
    return frame.groupby("cluster")[column].sum()


def test_coverage_is_measured_and_recorded(collected):
    end, _config, snapshot, _analysis = collected
    cov = snapshot.meta["coverage"]
    assert cov["full"]["hours"] == pytest.approx(14 * 24) and cov["full"]["window_hours"] == pytest.approx(14 * 24)
    # the first sample of "half" is 7 days before the end: its first 5-minute step covers (end - 7 d - 5 m, end - 7 d]
    assert cov["half"]["hours"] == pytest.approx(7 * 24 + INTERVAL / 3600)
    assert cov["half"]["end"].startswith(snapshot.meta["window_end"][:16])
    caveats = [w for w in snapshot.meta["warnings"] if w["code"] == "short_coverage"]
    assert len(caveats) == 1 and "cluster half" in caveats[0]["message"]
    assert "7.0 of the 14 days" in caveats[0]["message"] and "per-hour" in caveats[0]["affects"]


def test_seven_of_fourteen_days_give_the_same_monthly_rates(collected):
    _end, config, _snapshot, analysis = collected
    hpm = config.general.hours_per_month
    bill, idle = per_cluster(analysis.idle, "usd_per_month"), per_cluster(analysis.idle, "idle_usd_per_month")
    cross = per_cluster(analysis.cross_az, "usd_per_month")
    for figure in (bill, idle, cross):
        assert figure["half"] == pytest.approx(figure["full"], rel=0.02)
    # by hand: each node of NODES present the whole time covered costs its hourly price x 730 h
    prices = analysis.node_prices[analysis.node_prices["cluster"] == "half"].set_index("node")["usd_per_hour"]
    assert sorted(prices.index) == sorted(n["node"] for n in NODES)
    assert bill["half"] == pytest.approx(prices.sum() * hpm, rel=0.02)
    # by hand: web runs one pod in each zone, api in zone a, db in zone b, so web -> api crosses half the
    # time and api -> db always; bytes per second (both directions) x 3,600 x 730 / 1e9 x 0.02 USD per GB
    rate = {(sw, dw): req + resp for _sn, sw, _dn, dw, _p, req, resp in TRAFFIC}
    crossing = rate[("web", "api")] * 0.5 + rate[("api", "db")] * 1.0
    assert cross["half"] == pytest.approx(crossing * 3600 * hpm / 1e9 * 2 * config.pricing.inter_az_usd_per_gb, rel=0.02)


def test_the_report_states_the_covered_span(collected):
    _end, _config, snapshot, analysis = collected
    window = analysis.summary["window"]
    assert window["hours"] == pytest.approx(14 * 24)
    spans = {c["cluster"]: c for c in window["coverage"]}
    assert spans["half"]["hours"] == pytest.approx(7 * 24 + INTERVAL / 3600) and spans["full"]["hours"] == pytest.approx(14 * 24)
    line = header_line(analysis.summary)
    assert "usage window: 14 days" in line and "data: half 7.0 days" in line and "full" not in line.split("data:")[1]


def test_victoriametrics_measures_the_same_coverage(store, tmp_path):
    end, data = store
    server = start_victoria(data, tmp_path / "vm")
    try:
        config = run_config(server.url, end)
        snapshot = collect(config, log=lambda m: None)
    finally:
        server.stop()
    cov = snapshot.meta["coverage"]
    assert cov["full"]["hours"] == pytest.approx(14 * 24)
    assert cov["half"]["hours"] == pytest.approx(7 * 24 + INTERVAL / 3600, abs=INTERVAL / 3600)
    assert [w["code"] for w in snapshot.meta["warnings"]].count("short_coverage") == 1
