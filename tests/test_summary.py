"""summary.json money figures: unknown is null (never 0), and the node-level totals add up."""
from __future__ import annotations

import pandas as pd
import pytest

import rightsize as rs
from rightsize.api import analyze
from rightsize.config import Config


@pytest.fixture(scope="module")
def demo():
    snap = rs.load("demo")
    return snap, analyze(snap, Config())


def test_without_istio_data_cross_az_is_null_not_zero(demo):
    snap, _ = demo
    snap = rs.Snapshot(tables={**snap.tables, "traffic": snap.tables["traffic"].iloc[0:0]}, meta=snap.meta)
    totals = analyze(snap, Config()).summary["totals"]
    for key in ("cross_az_usd_per_month", "cross_az_usd_per_month_low", "cross_az_usd_per_month_high",
                "cross_az_saving_usd_per_month"):
        assert totals[key] is None, key
    assert totals["usd_per_month_current"] > 0  # the rest is still known


def test_without_services_load_balancers_are_null_and_without_nodes_node_figures_are_null(demo):
    snap, _ = demo
    no_services = rs.Snapshot(tables={**snap.tables, "services": snap.tables["services"].iloc[0:0]}, meta=snap.meta)
    assert analyze(no_services, Config()).summary["totals"]["load_balancer_usd_per_month"] is None
    no_nodes = rs.Snapshot(tables={**snap.tables, "nodes": snap.tables["nodes"].iloc[0:0]}, meta=snap.meta)
    totals = analyze(no_nodes, Config()).summary["totals"]
    for key in ("node_usd_per_month", "idle_usd_per_month", "bankable_savings_usd_per_month"):
        assert totals[key] is None, key


def test_cross_az_range_and_node_groups_add_up(demo):
    _, result = demo
    totals, cross, groups = result.summary["totals"], result.cross_az, result.node_groups
    assert totals["cross_az_usd_per_month_low"] == pytest.approx(cross["usd_per_month_low"].sum(), abs=1e-3)
    assert totals["cross_az_usd_per_month_low"] <= totals["cross_az_usd_per_month"] == totals["cross_az_usd_per_month_high"]
    listed = pd.DataFrame(result.summary["node_groups"])
    assert {"nodes_now", "nodes_after", "bankable_savings_usd_per_month", "best_instance_type"} <= set(listed.columns)
    assert totals["bankable_savings_usd_per_month"] == pytest.approx(groups["bankable_savings_usd_per_month"].sum(), abs=1e-3)
    assert totals["node_usd_per_month"] == pytest.approx(groups["usd_per_month"].sum(), abs=1e-3)
    # each group's bankable saving is its node count difference at its node price
    diff = (listed["nodes_now"] - listed["nodes_after"]) * groups["usd_per_node_month"]
    assert listed["bankable_savings_usd_per_month"].to_numpy() == pytest.approx(diff.to_numpy(), abs=1e-3)


def test_public_api_node_groups_match_the_analysis(demo):
    snap, result = demo
    pd.testing.assert_frame_equal(rs.node_groups(snap), result.node_groups)
