"""Fleet reports: cluster snapshots in one folder (or S3 prefix) merged into one report.

Each cluster here is a small hand-made snapshot priced by hand: one node type of 2 vCPU / 8 GiB at
0.16 USD/h, split with a CPU:RAM price ratio of 4 into c = 0.04 USD per vCPU-hour and m = 0.01 USD per
GiB-hour (0.16 = 2 x 4m + 8m). A container requesting 1 vCPU and 2 GiB costs 0.04 + 0.02 = 0.06 USD/h
per pod, x 730 h = 43.80 USD/month per pod.
"""
from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest

from recommend_tables import usage_stats
from rightsize.api import analyze
from rightsize.cli import main
from rightsize.config import Config, FleetConfig, PricingConfig
from rightsize.errors import SnapshotError
from rightsize.fleet import load_input
from rightsize.quantity import GIB, MIB
from rightsize.snapshot import Snapshot

POD_USD_PER_MONTH = (1 * 0.04 + 2 * 0.01) * 730  # 43.80


def cluster(name: str, *, kind: str = "Deployment", replicas: float = 2.0, days: float = 14.0, end: str = "2026-11-16",
            pod_hours: float | None = None) -> Snapshot:
    """One cluster: node n1 (2 vCPU / 8 GiB, 0.16 USD/h), workload shop/<kind>/api whose container app
    requests 1 vCPU and 2 GiB and uses a p95 of 0.2 cores and at most 512 MiB."""
    hours = days * 24
    key = {"cluster": name, "namespace": "shop", "kind": kind, "workload": "api"}
    pods = replicas if pod_hours is None else pod_hours / hours
    tables = {
        "nodes": pd.DataFrame([{"cluster": name, "node": "n1", "instance_type": "t.std", "zone": "z-a", "region": "r1",
                                "capacity_type": "on-demand", "node_group": "general", "allocatable_cpu_cores": 1.9,
                                "allocatable_memory_bytes": 7 * GIB, "hours_seen": hours}]),
        "prices": pd.DataFrame([{"instance_type": "t.std", "region": "r1", "zone": "", "capacity_type": "on-demand",
                                 "usd_per_hour": 0.16, "vcpu": 2.0, "memory_gib": 8.0, "price_source": "aws"}]),
        "placement": pd.DataFrame([{**key, "node": "n1", "zone": "z-a", "pod_hours": pods * hours}]),
        "workloads": pd.DataFrame([{**key, "replicas": replicas, "hpa": False, "pdb": False, "has_pvc": False,
                                    "has_empty_dir": False, "has_host_path": False, "termination_grace_seconds": 30.0,
                                    "source": "test", "team": "storefront"}]),
        "containers": pd.DataFrame([{**key, "container": "app", "container_type": "main", "cpu_request_cores": 1.0,
                                     "cpu_limit_cores": float("nan"), "memory_request_bytes": 2 * GIB,
                                     "memory_limit_bytes": float("nan")}]),
        "usage": pd.DataFrame([{**key, "container": "app",
                                **usage_stats([0.1, 0.15, 0.2, 0.25, 0.3], [300 * MIB, 400 * MIB, 450 * MIB, 500 * MIB, 512 * MIB]),
                                "samples": hours * 12, "hours_covered": hours, "oom_kills": 0.0, "restarts": 0.0,
                                "cpu_throttled_ratio": 0.0, "pods_seen": 2.0}]),
    }
    end_ts = pd.Timestamp(end, tz="UTC")
    snap = Snapshot(tables=tables)
    snap.meta.update(window_start=(end_ts - pd.Timedelta(days=days)).isoformat(), window_end=end_ts.isoformat(),
                     step_seconds=300, clusters=[name], pricing={"source": "aws", "date": end, "region": "r1", "notes": []})
    return snap.validate()


def config(**fleet) -> Config:
    c = Config()
    return dataclasses.replace(c, pricing=dataclasses.replace(PricingConfig(), cpu_ram_price_ratio=4.0),
                               fleet=dataclasses.replace(FleetConfig(), **fleet))


def current(analysis, name: str) -> float:
    by = {r["cluster"]: r for r in analysis.summary["by_cluster"]}
    return by[name]["usd_per_month_current"]


def test_three_clusters_one_missing_merge_into_one_report(tmp_path):
    week = tmp_path / "2026-W47"
    cluster("eu", replicas=2).write(week / "eu" / "snapshot")
    # us: a CronJob seen on a 7-day window, running half a pod on average (84 pod-hours / 168 h)
    cluster("us", kind="CronJob", replicas=1, days=7, pod_hours=84.0).write(week / "us" / "snapshot")
    cfg = config(clusters=("eu", "us", "ap"))
    snap = load_input(week, cfg)
    analysis = analyze(snap, cfg)

    assert current(analysis, "eu") == pytest.approx(2 * POD_USD_PER_MONTH)  # 2 pods x 43.80 = 87.60
    # put on the fleet's 14-day window, us still runs half a pod: 0.5 x 43.80 = 21.90 (not 10.95)
    assert current(analysis, "us") == pytest.approx(0.5 * POD_USD_PER_MONTH)
    assert analysis.summary["totals"]["usd_per_month_current"] == pytest.approx(2.5 * POD_USD_PER_MONTH)  # 109.50
    # the node bill: one 0.16 USD/h node per cluster, each for its whole window: 2 x 0.16 x 730 = 233.60
    assert analysis.summary["totals"]["node_usd_per_month"] == pytest.approx(2 * 0.16 * 730)
    # each cluster's figures are what it gets alone
    for name, alone in (("eu", cluster("eu", replicas=2)), ("us", cluster("us", kind="CronJob", replicas=1, days=7, pod_hours=84.0))):
        solo = analyze(alone, cfg).summary["by_cluster"][0]
        merged = {r["cluster"]: r for r in analysis.summary["by_cluster"]}[name]
        assert merged["savings_usd_per_month"] == pytest.approx(solo["savings_usd_per_month"])

    fleet = analysis.summary["fleet"]
    assert [c["name"] for c in fleet["clusters"]] == ["eu", "us"]
    assert [m["cluster"] for m in fleet["missing"]] == ["ap"] and "[fleet] clusters" in fleet["missing"][0]["reason"]
    assert fleet["tables_not_loaded"] == ["usage_daily", "usage_histograms"]
    assert [(r["team"], r["containers"]) for r in analysis.summary["by_team"]] == [("storefront", 2)]  # one team, two clusters
    assert analysis.summary["backtest"]["skipped"].startswith("skipped for a fleet report")


def test_fleet_report_lists_the_missing_cluster_and_exits_3_only_when_a_threshold_says_so(tmp_path):
    week = tmp_path / "2026-W47"
    for name in ("eu", "us"):
        cluster(name).write(week / name / "snapshot")
    (tmp_path / "fleet.toml").write_text('[report]\ncharts = false\n[pricing]\ncpu_ram_price_ratio = 4.0\n[fleet]\nclusters = ["eu", "us", "ap"]\n')
    assert main(["report", "--quiet", "--config", str(tmp_path / "fleet.toml"), "--snapshot", str(week)]) == 0
    out = week / "_fleet"
    report = (out / "report.md").read_text()
    assert report.startswith("# rightsize fleet report 2026-W47")
    assert "Missing or stale clusters" in report and "ap" in report and "No backtest: skipped for a fleet report" in report
    summary = json.loads((out / "summary.json").read_text())
    assert [r["cluster"] for r in summary["by_cluster"]] == ["eu", "us"]
    assert summary["totals"]["usd_per_month_current"] == pytest.approx(2 * 2 * POD_USD_PER_MONTH)  # 175.20

    (tmp_path / "fleet.toml").write_text(
        '[pricing]\ncpu_ram_price_ratio = 4.0\n[fleet]\nclusters = ["eu", "us", "ap"]\n[thresholds]\nfail_on_missing_clusters = 0\n')
    assert main(["report", "--quiet", "--config", str(tmp_path / "fleet.toml"), "--snapshot", str(week)]) == 3
    assert "1 cluster(s) missing or stale in the fleet report: ap" in (out / "report.md").read_text()


def test_stale_incomplete_and_last_weeks_clusters_are_missing_not_errors(tmp_path):
    cluster("eu").write(tmp_path / "2026-W46" / "eu" / "snapshot")
    cluster("gone").write(tmp_path / "2026-W46" / "gone" / "snapshot")
    week = tmp_path / "2026-W47"
    cluster("eu", end="2026-11-23").write(week / "eu" / "snapshot")
    cluster("late", end="2026-11-16").write(week / "late" / "snapshot")  # a week older than the newest
    (week / "broken" / "snapshot").mkdir(parents=True)
    (week / "broken" / "snapshot" / "usage.parquet").write_bytes(b"half an upload")
    (week / ".eu.lock").write_text("")  # not a cluster
    snap = load_input(week, config(max_age=3 * 86400.0))
    missing = {m["cluster"]: m["reason"] for m in snap.meta["fleet"]["missing"]}
    assert set(missing) == {"late", "broken", "gone"}
    assert missing["late"].startswith("stale: its window ended 2026-11-16") and "7.0 days" in missing["late"]
    assert "no complete snapshot" in missing["broken"]
    assert "previous" not in missing["gone"] and str(tmp_path / "2026-W46") in snap.meta["fleet"]["expected_from"]
    assert set(snap.tables["containers"]["cluster"]) == {"eu"}  # nothing of a missing cluster counts
    assert any(w["code"] == "cluster_missing" and "'late'" in w["message"] for w in snap.meta["warnings"])


def test_a_cluster_in_two_snapshots_is_refused(tmp_path):
    cluster("eu").write(tmp_path / "a" / "snapshot")
    cluster("eu").write(tmp_path / "b" / "snapshot")
    with pytest.raises(SnapshotError, match="cluster 'eu' is in two snapshots of the fleet"):
        load_input(tmp_path, config())


def test_a_fleet_snapshot_is_never_written_back(tmp_path):
    cluster("eu").write(tmp_path / "eu" / "snapshot")
    snap = load_input(tmp_path, config())
    with pytest.raises(SnapshotError, match="read without usage_daily, usage_histograms"):
        snap.write(tmp_path / "merged")
    assert not (tmp_path / "merged").exists()


def test_a_policy_that_needs_histograms_loads_them(tmp_path):
    cluster("eu").write(tmp_path / "eu" / "snapshot")
    cfg = config()
    cfg = dataclasses.replace(cfg, policies={**cfg.policies, "production": dataclasses.replace(
        cfg.policies["production"], cpu_request_percentile="p97")})
    assert load_input(tmp_path, cfg).meta["fleet"]["tables_not_loaded"] == ["usage_daily"]
    assert load_input(tmp_path, config()).meta["fleet"]["tables_not_loaded"] == ["usage_daily", "usage_histograms"]


def test_a_run_folder_is_one_snapshot_not_a_fleet(tmp_path):
    cluster("eu").write(tmp_path / "2026-W47" / "snapshot")
    (tmp_path / "2026-W47" / "patches").mkdir()
    snap = load_input(tmp_path / "2026-W47", config())
    assert "fleet" not in snap.meta and not snap.tables["usage"].empty
    with pytest.raises(SnapshotError, match="no snapshot folder here"):
        load_input(tmp_path / "empty", config())


def test_fleet_flag_needs_the_week_in_the_layout():
    from rightsize.cli import _this_weeks_fleet
    from rightsize.config import ReportConfig
    from rightsize.errors import ConfigError

    c = Config()
    with pytest.raises(ConfigError, match=r"--fleet needs \[report\] layout with \{week\} before \{cluster\}"):
        _this_weeks_fleet(dataclasses.replace(c, report=dataclasses.replace(ReportConfig(), layout="{cluster}/{week}")))
    week = _this_weeks_fleet(c, pd.Timestamp("2026-11-18", tz="UTC").to_pydatetime())
    assert week.as_posix() == "reports/2026-W47"


def test_a_fleet_report_html_lists_at_most_the_cap_of_a_long_table(tmp_path, monkeypatch):
    from rightsize.emit import view

    week = tmp_path / "2026-W47"
    for name in ("eu", "us"):
        snap = cluster(name)
        snap.tables["usage"]["oom_kills"] = 3.0  # both containers at OOM risk
        snap.write(week / name / "snapshot")
    cfg = config()
    snap = load_input(week, cfg)
    analysis = analyze(snap, cfg)
    monkeypatch.setattr(view, "FLEET_DETAIL_ROWS", 1)
    built = view.build_view(analysis.summary, analysis, cfg, snapshot=snap)
    sections = {s.anchor: s for s in built.sections}
    risk = sections["oom-throttled"]
    assert len(risk.tables[0].rows) == 1 and "lists the first 1 of 2 containers at risk" in risk.intro
    assert "2 container(s) were OOM-killed" in risk.intro  # the count is of all of them
    every = sections["details"].tables[-1]
    assert len(every.rows) == 1 and "The 1 containers with the largest savings of 2" in every.title
