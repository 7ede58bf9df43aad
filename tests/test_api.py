"""The public API (rightsize.api) on the demo snapshot and on small hand-made tables."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import rightsize as rs
import rightsize.api as api
import rightsize.plots as plots
from rightsize import demo
from rightsize.config import Config, Policy
from rightsize.errors import ConfigError, RightsizeError, SnapshotError
from rightsize.quantity import GIB, MIB
from rightsize.schema import CROSS_AZ_COLUMNS, LOAD_BALANCER_COLUMNS, RECOMMENDATION_COLUMNS, SPOT_COLUMNS
from rightsize.snapshot import Snapshot

from promservers import prom_dataset, prom_server  # noqa: F401  (session fixtures: a real Prometheus)

STRICTER = {"cpu_request_percentile": "p99", "margin": 0.25}
LOOSER = {"cpu_request_percentile": "p90", "margin": 0.05}


@pytest.fixture(scope="module")
def snap():
    return api.load("demo")


@pytest.fixture(scope="module")
def recs(snap):
    return api.recommend(snap)


def _names(columns) -> list[str]:
    return [c.name for c in columns]


# --- loading ---------------------------------------------------------------------------------------

def test_load_demo_is_priced_offline(snap):
    assert len(snap.tables["prices"]) > 0
    assert set(snap.tables["nodes"]["instance_type"]) <= set(snap.tables["prices"]["instance_type"])
    assert len(snap.tables["series"]) > 0


def test_load_reads_a_written_snapshot(tmp_path, snap):
    snap.write(tmp_path / "snap")
    again = api.load(tmp_path / "snap")
    pd.testing.assert_frame_equal(again.tables["containers"], snap.tables["containers"])
    assert len(again.tables["prices"]) == len(snap.tables["prices"])


def test_star_import_stays_light():
    import subprocess
    import sys

    code = "from rightsize.api import *; import sys; print('matplotlib' in sys.modules, callable(load), Policy.__name__)"
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root).stdout.split()
    assert out == ["False", "True", "Policy"]


def test_load_missing_folder_names_it(tmp_path):
    with pytest.raises(SnapshotError, match="nowhere"):
        api.load(tmp_path / "nowhere")


def test_config_path_is_accepted_and_validated(tmp_path, snap):
    bad = tmp_path / "config.toml"
    bad.write_text("[policies.production]\nmargin = -1\n")
    with pytest.raises(ConfigError, match="margin"):
        api.recommend(snap, config=bad)


# --- recommendations and policies ------------------------------------------------------------------

def test_recommend_has_the_schema_columns_and_costs(recs):
    assert set(_names(RECOMMENDATION_COLUMNS)) <= set(recs.columns)
    assert recs["usd_per_month_current"].notna().any()
    assert {"production", "non_production"} <= set(recs["policy"])


def test_unpriced_snapshot_is_priced_without_modifying_it():
    raw = demo.generate()
    assert raw.tables["prices"].empty
    recs = api.recommend(raw)
    assert recs["usd_per_month_current"].notna().any()
    assert raw.tables["prices"].empty


def test_policy_object_applies_to_every_workload(snap):
    wide = api.recommend(snap, policy=Policy(margin=0.5))
    narrow = api.recommend(snap, policy=Policy(margin=0.0))
    assert set(wide["policy"]) == {"custom"}
    both = wide["cpu_request_cores_recommended"].notna() & narrow["cpu_request_cores_recommended"].notna()
    assert both.sum() > 5
    assert (wide.loc[both, "cpu_request_cores_recommended"] >= narrow.loc[both, "cpu_request_cores_recommended"]).all()
    assert (wide.loc[both, "cpu_request_cores_recommended"] > narrow.loc[both, "cpu_request_cores_recommended"]).any()
    # non-production namespaces would use p50 under the config; a uniform Policy uses its p95
    staging = wide["namespace"].eq("staging") & wide["cpu_basis"].ne("")
    assert set(wide.loc[staging, "cpu_basis"]) == {"p95"}


def test_policy_name_picks_a_declared_policy(snap):
    recs = api.recommend(snap, policy="non_production")
    assert set(recs["policy"]) == {"non_production"}
    shop = recs["namespace"].eq("shop") & recs["cpu_basis"].ne("")
    assert set(recs.loc[shop, "cpu_basis"]) == {"p50"}
    with pytest.raises(ConfigError, match="unknown policy 'nope'"):
        api.recommend(snap, policy="nope")


def test_policy_dict_overrides_every_declared_policy(snap, recs):
    changed = api.recommend(snap, policy={"margin": 0.5, "min_cpu": "50m"})
    pd.testing.assert_series_equal(changed["policy"], recs["policy"])
    got = changed["cpu_request_cores_recommended"].dropna()
    assert (got >= 0.05 - 1e-9).all()
    with pytest.raises(ConfigError, match="unknown key 'margn'"):
        api.recommend(snap, policy={"margn": 0.5})
    with pytest.raises(ConfigError, match="cpu_request_percentile"):
        api.recommend(snap, policy={"cpu_request_percentile": "q42"})


def test_policy_of_a_wrong_type_is_refused(snap):
    with pytest.raises(ConfigError, match="expected a policy name"):
        api.recommend(snap, policy=42)  # type: ignore[arg-type]


# --- costs, totals, what-if ------------------------------------------------------------------------

def test_costs_per_container_and_rolled_up(snap, recs):
    per_container = api.costs(snap)
    assert len(per_container) == len(recs)
    saving = per_container["savings_usd_per_month"].dropna()
    assert saving.is_monotonic_decreasing
    by_ns = api.costs(snap, by="namespace")
    assert set(by_ns["namespace"]) == set(recs["namespace"])
    assert by_ns["usd_per_month_current"].sum() == pytest.approx(recs["usd_per_month_current"].sum())
    with pytest.raises(ConfigError, match="unknown column 'colour'"):
        api.costs(snap, by="colour")


def test_totals_by_hand():
    recs = pd.DataFrame({
        "container_type": ["main", "main", "main", "main", "init"],
        "status": ["change", "keep", "no_recommendation", "change", "change"],
        "flags": ["over_provisioned", "", "", "oom_risk,throttled", ""],
        "replicas": [2.0, 1.0, 3.0, 1.0, 2.0],
        "cpu_request_cores_current": [1.0, 0.5, np.nan, 0.1, 4.0],
        "cpu_request_cores_recommended": [0.25, 0.45, np.nan, 0.2, 1.0],
        "memory_request_bytes_current": [GIB, 256 * MIB, 128 * MIB, 64 * MIB, GIB],
        "memory_request_bytes_recommended": [512 * MIB, 250 * MIB, np.nan, 128 * MIB, 64 * MIB],
        "usd_per_month_current": [40.0, 5.0, 3.0, 1.0, 0.0],
        "usd_per_month_recommended": [10.0, 4.5, np.nan, 2.0, 0.0],
        "savings_usd_per_month": [30.0, 0.5, np.nan, -1.0, 0.0],
    })
    t = api.totals(recs)
    assert t["containers"] == 5 and t["changes"] == 3 and t["keep"] == 1 and t["no_recommendation"] == 1
    assert t["oom_risk"] == 1 and t["throttled"] == 1 and t["over_provisioned"] == 1 and t["under_provisioned"] == 0
    # unset counts as nothing requested; the init container's requests do not add to the pod's
    assert t["cpu_request_cores_current"] == pytest.approx(2.0 + 0.5 + 0.1)
    assert t["cpu_request_cores_after"] == pytest.approx(0.5 + 0.5 + 0.2)  # "keep" rows keep their request
    assert t["memory_request_bytes_after"] == pytest.approx(GIB + 256 * MIB + 3 * 128 * MIB + 128 * MIB)
    assert t["savings_usd_per_month"] == pytest.approx(29.0)  # only changes, the increase subtracted
    assert t["usd_per_month_recommended"] == pytest.approx(49.0 - 29.0)
    assert t["savings_gross_usd_per_month"] == pytest.approx(30.0) and t["increases_usd_per_month"] == pytest.approx(1.0)
    assert t["containers_without_price"] == 0
    # An unpriced container is counted and left out of the money, never costed as 0.
    unpriced = pd.concat([recs, recs.iloc[[0]].assign(usd_per_month_current=np.nan, usd_per_month_recommended=np.nan,
                                                         savings_usd_per_month=np.nan)], ignore_index=True)
    u = api.totals(unpriced)
    assert u["containers_without_price"] == 1 and u["containers"] == 6
    assert u["usd_per_month_current"] == pytest.approx(49.0) and u["savings_usd_per_month"] == pytest.approx(29.0)
    assert api.totals(recs.assign(usd_per_month_current=np.nan, savings_usd_per_month=np.nan)).isna()[
        ["usd_per_month_current", "usd_per_month_recommended", "savings_usd_per_month"]].all()


def _unpriced_demo(snap):
    """The demo with its r5.2xlarge prices dropped: the containers placed only there have no price."""
    copy = Snapshot(tables=dict(snap.tables), meta=dict(snap.meta))
    prices = snap.tables["prices"]
    copy.tables["prices"] = prices[prices["instance_type"] != "r5.2xlarge"].reset_index(drop=True)
    return copy


@pytest.mark.parametrize("priced", [True, False], ids=["priced", "partly-unpriced"])
def test_api_and_report_agree_on_the_demo(snap, priced):
    """rs.totals / rs.costs(by=...) / what_if and the report's summary.json come from the same rollup and
    totals: on the demo (and on the demo with some containers unpriced) they agree figure for figure."""
    s = snap if priced else _unpriced_demo(snap)
    analysis = api.analyze(s)
    summary = analysis.summary
    totals = api.totals(analysis)
    for key, value in summary["totals"].items():
        if key in totals.index:
            assert totals[key] == pytest.approx(value if value is not None else np.nan, abs=1e-4, nan_ok=True), key
    assert (summary["totals"]["containers_without_price"] > 0) is not priced
    for by, listed in ((["cluster", "namespace"], "by_namespace"), (["team"], "by_team"), (["cluster"], "by_cluster")):
        api_rows = api.costs(s, by=by).to_dict("records")
        assert len(api_rows) == len(summary[listed])
        for mine, theirs in zip(api_rows, summary[listed]):
            assert mine == {k: pytest.approx(v if v is not None else np.nan, abs=1e-4, nan_ok=True)
                            for k, v in theirs.items()}, listed
    row = api.what_if(s, {}).loc["baseline"]
    assert row["savings_usd_per_month"] == pytest.approx(summary["totals"]["savings_usd_per_month"], abs=1e-4)
    by_ns = api.what_if(s, {}, by="namespace")["baseline"]
    by_ns_report = pd.DataFrame(summary["by_namespace"]).groupby("namespace")["savings_usd_per_month"].sum()
    assert by_ns.sort_index().to_dict() == pytest.approx(by_ns_report.sort_index().to_dict(), abs=1e-4)


def test_what_if_side_by_side(snap, recs):
    table = api.what_if(snap, {"stricter": STRICTER, "looser": LOOSER})
    assert list(table.index) == ["baseline", "stricter", "looser"]
    # typed, unit-named columns: counts are integers, quantities and money floats
    assert table["containers"].dtype == "int64" and table["oom_risk"].dtype == "int64"
    assert table["memory_request_bytes_after"].dtype == "float64" and table["savings_usd_per_month"].dtype == "float64"
    assert table["containers"].nunique() == 1 and table.loc["baseline", "containers"] == len(recs)
    assert table["cpu_request_cores_current"].nunique() == 1
    assert table.loc["baseline", "savings_usd_per_month"] == pytest.approx(api.totals(recs)["savings_usd_per_month"])
    assert table.loc["stricter", "cpu_request_cores_after"] > table.loc["looser", "cpu_request_cores_after"]
    assert table.loc["looser", "savings_usd_per_month"] > table.loc["stricter", "savings_usd_per_month"]
    shown = api.formatted(table).to_html()
    saving = table.loc["baseline", "savings_usd_per_month"]
    assert f"${saving:,.2f}" in shown  # money with its sign
    mem = table.loc["baseline", "memory_request_bytes_current"] / 1024**3
    assert f"{mem:.2f}".rstrip("0").rstrip(".") + "Gi" in shown  # bytes as a quantity, not 1.8e+11


def test_dir_lists_the_lazy_api():
    import rightsize

    names = dir(rightsize)
    for name in ("load", "analyze", "what_if", "formatted", "plot_usage", "savings_by_namespace", "Config", "Snapshot"):
        assert name in names, name
    assert rightsize.formatted is api.formatted


def test_plot_usage_keeps_the_recommended_lines_inside_the_frame(snap, recs):
    fig = plots.plot_usage(snap, "shop/Deployment/search", recs)
    for ax in fig.axes:
        top = ax.get_ylim()[1]
        lines = [float(line.get_ydata()[0]) for line in ax.get_lines() if line.get_label().startswith("recommended")]
        assert lines and max(lines) < top * 0.95, (ax.get_title(), lines, top)


def test_what_if_by_namespace_and_with_policy_objects(snap):
    strict = dataclasses.replace(Policy(), cpu_request_percentile="p99", margin=0.25)
    table = api.what_if(snap, {"strict": strict, "prod": "production"}, baseline=False, by="namespace")
    assert list(table.columns) == ["strict", "prod"] and table.attrs["value"] == "savings_usd_per_month"
    assert "$" in api.formatted(table).to_html()
    assert set(table.index) >= {"shop", "payments", "data"}
    with pytest.raises(ConfigError, match="baseline"):
        api.what_if(snap, {"baseline": LOOSER})


# --- the other analyses ------------------------------------------------------------------------------

def test_spot_cross_az_load_balancers(snap):
    spot = api.spot(snap)
    assert set(_names(SPOT_COLUMNS)) <= set(spot.columns)
    assert "shop" in set(spot["namespace"])
    xaz = api.cross_az(snap)
    assert set(_names(CROSS_AZ_COLUMNS)) <= set(xaz.columns)
    assert (xaz["usd_per_month"] > 0).any()
    lbs = api.load_balancers(snap)
    assert set(_names(LOAD_BALANCER_COLUMNS)) <= set(lbs.columns)
    assert set(lbs["service"]) >= {"frontend", "ads", "legacy-admin", "webhooks"}


def test_analyze_matches_recommend(snap, recs):
    result = api.analyze(snap)
    pd.testing.assert_frame_equal(result.recommendations.reset_index(drop=True), recs.reset_index(drop=True))
    assert "totals" in result.summary


# --- plots -----------------------------------------------------------------------------------------

def test_workload_ref_forms(snap):
    assert api.workload_ref(snap, "shop/Deployment/frontend") == ("demo", "shop", "Deployment", "frontend")
    assert api.workload_ref(snap, "shop/deployment/frontend")[2] == "Deployment"
    assert api.workload_ref(snap, "payments/postgres") == ("demo", "payments", "StatefulSet", "postgres")
    assert api.workload_ref(snap, "demo/data/Deployment/etl-worker")[3] == "etl-worker"
    with pytest.raises(RightsizeError, match="not in this snapshot"):
        api.workload_ref(snap, "shop/Deployment/nope")
    with pytest.raises(RightsizeError, match="ambiguous"):
        _ambiguous(snap)
    with pytest.raises(RightsizeError, match="expected NAMESPACE/KIND/NAME"):
        api.workload_ref(snap, "frontend")


def _ambiguous(snap):
    # two clusters with the same namespace/name: the short form cannot choose
    other = snap.tables["workloads"].head(1).assign(cluster="other")
    two = Snapshot(tables={"workloads": pd.concat([snap.tables["workloads"].head(1), other])})
    name = snap.tables["workloads"].iloc[0]
    api.workload_ref(two, f"{name['namespace']}/{name['workload']}")


def _hlines(ax) -> dict[str, float]:
    """Horizontal reference lines of an axes by legend label."""
    return {line.get_label(): float(line.get_ydata()[0]) for line in ax.get_lines()
            if len(set(np.asarray(line.get_ydata(), dtype=float))) == 1 and not line.get_label().startswith("usage")}


def test_plot_usage_draws_series_and_requests(snap):
    recs = pd.DataFrame({
        "cluster": ["demo"], "namespace": ["shop"], "kind": ["Deployment"], "workload": ["frontend"], "container": ["web"],
        "cpu_request_cores_recommended": [0.3], "cpu_limit_cores_recommended": [np.nan],
        "memory_request_bytes_recommended": [512 * MIB], "memory_limit_bytes_recommended": [512 * MIB],
    })
    fig = plots.plot_usage(snap, "shop/Deployment/frontend", recs)
    cpu_ax, mem_ax = fig.axes[:2]
    series = snap.tables["series"]
    web = series[(series["namespace"] == "shop") & (series["workload"] == "frontend")]
    assert len(cpu_ax.get_lines()[0].get_xdata()) == len(web)
    assert np.allclose(cpu_ax.get_lines()[0].get_ydata(), web.sort_values("timestamp")["cpu_cores"])
    cpu = _hlines(cpu_ax)
    assert cpu["current request"] == pytest.approx(1.0)  # demo: 1 core, no CPU limit
    assert cpu["recommended request"] == pytest.approx(0.3)
    assert "current limit" not in cpu and "recommended limit" not in cpu
    assert mem_ax.get_ylabel() == "MiB"
    mem = _hlines(mem_ax)  # a limit equal to the request is one line, labelled as both
    assert mem == {"current request = limit": pytest.approx(1024.0), "recommended request = limit": pytest.approx(512.0)}


def test_plot_usage_limits_apart_from_requests_and_container_choice():
    key = {"cluster": "c", "namespace": "ns", "kind": "Deployment", "workload": "api"}
    times = pd.date_range("2026-11-01", periods=4, freq="h", tz="UTC")
    series = pd.concat([pd.DataFrame({**key, "container": name, "timestamp": times, "cpu_cores": cpu,
                                      "memory_bytes": [300 * MIB] * 4})
                        for name, cpu in (("app", [0.2, 0.4, 0.3, 0.5]), ("sidecar", [0.01] * 4))])
    containers = pd.DataFrame([
        {**key, "container": "app", "container_type": "main", "cpu_request_cores": 1.0, "cpu_limit_cores": 2.0,
         "memory_request_bytes": 512 * MIB, "memory_limit_bytes": 1024 * MIB},
        {**key, "container": "sidecar", "container_type": "main", "cpu_request_cores": np.nan, "cpu_limit_cores": np.nan,
         "memory_request_bytes": np.nan, "memory_limit_bytes": np.nan},
    ])
    snap = Snapshot(tables={"series": series, "containers": containers})
    recs = pd.DataFrame([{**key, "container": "app", "cpu_request_cores_recommended": 0.6, "cpu_limit_cores_recommended": 1.2,
                          "memory_request_bytes_recommended": 384 * MIB, "memory_limit_bytes_recommended": 384 * MIB}])
    fig = plots.plot_usage(snap, "ns/Deployment/api", recs)
    assert len(fig.axes) == 4
    assert _hlines(fig.axes[0]) == {"current request": 1.0, "current limit": 2.0,
                                    "recommended request": 0.6, "recommended limit": 1.2}
    assert _hlines(fig.axes[1]) == {"current request": 512.0, "current limit": 1024.0, "recommended request = limit": 384.0}
    assert _hlines(fig.axes[2]) == {} and _hlines(fig.axes[3]) == {}  # sidecar: nothing set, nothing recommended
    usage = fig.axes[0].get_lines()[0]
    assert usage.get_zorder() > max(line.get_zorder() for line in fig.axes[0].get_lines()[1:])
    one = plots.plot_usage(snap, "ns/api", recs, container="sidecar")
    assert len(one.axes) == 2 and "sidecar" in one.axes[0].get_title()
    with pytest.raises(RightsizeError, match="container 'nope'"):
        plots.plot_usage(snap, "ns/api", recs, container="nope")


def test_plot_usage_defaults_to_recommend_and_names_missing_series(snap, recs):
    fig = plots.plot_usage(snap, "payments/fraud-scorer")
    row = recs[(recs["workload"] == "fraud-scorer") & (recs["container"] == "model")].iloc[0]
    assert fig.axes[0].get_ylabel() == "cores" and fig.axes[1].get_ylabel() == "GiB"
    if not np.isnan(row["cpu_request_cores_recommended"]):
        assert _hlines(fig.axes[0])["recommended request"] == pytest.approx(row["cpu_request_cores_recommended"])
    with pytest.raises(RightsizeError, match="rightsize collect --series shop/Deployment/cart"):
        plots.plot_usage(snap, "shop/Deployment/cart", recs)


def test_plot_cross_az_matrix_cells():
    table = pd.DataFrame({
        "source_namespace": ["a", "a", "b"], "source_workload": ["x", "x", "y"],
        "destination_namespace": ["b", "c", "c"], "destination_workload": ["y", "z", "z"],
        "usd_per_month": [3.0, 10.0, 1.5], "cross_az_gb_per_month": [150.0, 500.0, 75.0],
    })
    fig = plots.plot_cross_az_matrix(table)
    ax = fig.axes[0]
    image = ax.get_images()[0].get_array()
    rows = [t.get_text() for t in ax.get_yticklabels()]
    cols = [t.get_text() for t in ax.get_xticklabels()]
    assert rows == ["a/x", "b/y"] and cols == ["c/z", "b/y"]  # busiest first
    assert image[0, 0] == 10.0 and image[0, 1] == 3.0 and image[1, 0] == 1.5 and np.ma.is_masked(image[1, 1])
    assert "USD/month" in ax.get_title()
    gb = plots.plot_cross_az_matrix(table, value="cross_az_gb_per_month")
    assert gb.axes[0].get_images()[0].get_array()[0, 0] == 500.0
    empty = plots.plot_cross_az_matrix(table.iloc[0:0])
    assert "no cross-AZ traffic" in empty.axes[0].texts[0].get_text()
    with pytest.raises(ConfigError, match="unknown column"):
        plots.plot_cross_az_matrix(table, value="nope")


def test_plot_cross_az_matrix_from_snapshot(snap):
    fig = plots.plot_cross_az_matrix(snap)
    assert len(fig.axes[0].get_images()) == 1
    assert "shop/frontend" in [t.get_text() for t in fig.axes[0].get_yticklabels()]


def test_report_charts_are_reexported_lazily(snap, recs):
    from rightsize.emit import charts

    for name in plots.REPORT_CHARTS:
        assert getattr(plots, name) is getattr(charts, name) is getattr(rs, name)
        assert name in dir(plots) and name not in api.__all__
    fig = plots.savings_by_namespace(recs)
    assert fig is not None and fig.axes
    with pytest.raises(AttributeError):
        plots.no_such_chart_function_here  # noqa: B018


# --- drill-down series from a real Prometheus -----------------------------------------------------

@pytest.mark.integration
def test_fetch_series_from_prometheus_into_a_snapshot(prom_server, prom_dataset, monkeypatch):
    from rightsize.sources.prometheus.client import Client

    asked = []
    real = Client.query_range
    monkeypatch.setattr(Client, "query_range", lambda self, promql, *a, **kw: asked.append(promql) or real(self, promql, *a, **kw))
    base = Config()
    end = pd.Timestamp(prom_dataset.end, unit="s", tz="UTC")
    config = dataclasses.replace(
        base, general=dataclasses.replace(base.general, window=12 * 3600.0),
        prometheus=dataclasses.replace(base.prometheus, url=prom_server.url, end=end.isoformat(), retries=1),
    )
    snap = Snapshot()
    rows = api.fetch_series(config, ["shop/Deployment/web"], snap, step="30m")
    assert set(rows["container"]) == {"app", "envoy"}
    assert set(rows["workload"]) == {"web"} and set(rows["kind"]) == {"Deployment"}
    app = rows[rows["container"] == "app"].sort_values("timestamp")
    assert (app["timestamp"].diff().dropna() == pd.Timedelta("30min")).all()
    assert app["timestamp"].max() <= end and app["timestamp"].min() >= end - pd.Timedelta("12h")
    # the generator's web/app: 0.20-0.25 cores +- 0.10 daily, ~300 MiB +- 50 MiB working set
    assert app["cpu_cores"].between(0.05, 0.6).all()
    assert app["memory_bytes"].between(200 * MIB, 400 * MIB).all()
    assert len(snap.tables["series"]) == len(rows)
    # only web's pods are read, not every pod of the namespace
    assert asked and all('pod=~"web' in q and "api" not in q and "legacy" not in q for q in asked), asked
    # a snapshot holding only series still plots (no requests known: usage lines only)
    fig = plots.plot_usage(snap, "shop/web", rows.iloc[0:0])
    assert [ax.get_title().split(" · ")[1:] for ax in fig.axes[:4]] == [["app", "CPU"], ["app", "memory"],
                                                                        ["envoy", "CPU"], ["envoy", "memory"]]

    # the URL form: default settings, a window looked back from now (the data ends an hour ago)
    by_url = api.fetch_series(prom_server.url, "data/StatefulSet/db", step="1h", window="6h")
    assert set(by_url["container"]) == {"postgres"} and by_url["memory_bytes"].gt(GIB).any()
    with pytest.raises(ConfigError, match="NAMESPACE/KIND/NAME"):
        api.fetch_series(prom_server.url, ["shop/web"])
    with pytest.raises(ConfigError, match="step"):
        api.fetch_series(prom_server.url, ["shop/Deployment/web"], step="soon")
