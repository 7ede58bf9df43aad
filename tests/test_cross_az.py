"""Cross-AZ traffic cost on hand-made tables (every rule) and on the demo snapshot."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from rightsize import demo
from rightsize.analysis import cross_az
from rightsize.config import Config
from rightsize.schema import CROSS_AZ_COLUMNS
from rightsize.snapshot import Snapshot, new_meta

WINDOW_HOURS = 10.0  # the hand-made snapshots cover 10 hours, so a month is 73 windows at 730 h/month


def config(**sections) -> Config:
    base = Config()
    changes = {name: dataclasses.replace(getattr(base, name), **values) for name, values in sections.items()}
    return dataclasses.replace(base, **changes)


def placement_rows(workload: str, zones: dict[str, float], namespace: str = "ns") -> list[dict]:
    return [{"cluster": "c", "namespace": namespace, "kind": "Deployment", "workload": workload,
             "node": f"node-{zone}", "zone": zone, "pod_hours": hours} for zone, hours in zones.items()]


def traffic_row(src: str, dst: str, gb: float, src_zone: str = "", dst_zone: str = "") -> dict:
    return {"cluster": "c", "source_namespace": "ns", "source_workload": src, "destination_namespace": "ns",
            "destination_workload": dst, "source_zone": src_zone, "destination_zone": dst_zone, "bytes": gb * 1e9}


def service_row(name: str, traffic_distribution: str = "", topology_mode: str = "", workload: str | None = None) -> dict:
    return {"cluster": "c", "namespace": "ns", "service": name, "type": "ClusterIP", "selector_json": "{}",
            "workload": name if workload is None else workload, "kind": "Deployment", "ports": "8080/TCP",
            "topology_mode": topology_mode, "traffic_distribution": traffic_distribution}


def snapshot(traffic, placement=(), services=(), versions=None) -> Snapshot:
    tables = {"traffic": pd.DataFrame(list(traffic))}
    if placement:
        tables["placement"] = pd.DataFrame(list(placement))
    if services:
        tables["services"] = pd.DataFrame(list(services))
    meta = new_meta(window_start="2026-11-01T00:00:00+00:00", window_end="2026-11-01T10:00:00+00:00",
                    versions=versions or {})
    return Snapshot(tables=tables, meta=meta).validate()


def one(df: pd.DataFrame, src: str, dst: str) -> pd.Series:
    rows = df[(df.source_workload == src) & (df.destination_workload == dst)]
    assert len(rows) == 1, rows
    return rows.iloc[0]


def test_crossing_fraction_matches_hand_worked_example():
    # Source: 50% of pod-hours in a, 50% in b.  Destination: 25% a, 25% b, 50% c.
    # Same-zone probability = 0.5*0.25 + 0.5*0.25 + 0*0.5 = 0.25, so 75% of the bytes cross.
    # 100 GB in 10 h -> 7300 GB/month; 5475 GB cross; at 0.01 USD/GB each way: 5475 * 0.02 = 109.5 USD/month.
    snap = snapshot(
        [traffic_row("web", "api", 100)],
        placement_rows("web", {"a": 10, "b": 10}) + placement_rows("api", {"a": 5, "b": 5, "c": 10}),
    )
    row = one(cross_az.cross_az_costs(snap, Config()), "web", "api")
    assert row.crossing_fraction == pytest.approx(0.75)
    assert not row.measured
    assert row.gb_per_month == pytest.approx(7300)
    assert row.cross_az_gb_per_month == pytest.approx(5475)
    assert row.usd_per_month == pytest.approx(109.5)
    # The destination has endpoints in both source zones: the fix removes all of it.
    assert row.destination_covers_source_zones
    assert row.saving_usd_per_month == pytest.approx(109.5)
    assert row.destination_zones == "a,b,c"


def test_cost_counts_both_directions_at_the_configured_price():
    snap = snapshot([traffic_row("web", "api", 10)],
                    placement_rows("web", {"a": 10}) + placement_rows("api", {"b": 10}))
    row = one(cross_az.cross_az_costs(snap, config(pricing={"inter_az_usd_per_gb": 0.02})), "web", "api")
    assert row.crossing_fraction == pytest.approx(1.0)
    assert row.usd_per_month == pytest.approx(730 * 0.04)  # 730 GB/month crossing, 0.02 out + 0.02 in


def test_monthly_projection_uses_hours_per_month():
    snap = snapshot([traffic_row("web", "api", 10)],
                    placement_rows("web", {"a": 10}) + placement_rows("api", {"b": 10}))
    row = one(cross_az.cross_az_costs(snap, config(general={"hours_per_month": 720.0})), "web", "api")
    assert row.gb_per_month == pytest.approx(720)


def test_measured_zones_win_over_placement():
    # Placement alone would say 50% crosses; the metrics say 40 of 100 GB went a -> b.
    snap = snapshot(
        [traffic_row("web", "api", 60, "a", "a"), traffic_row("web", "api", 40, "a", "b")],
        placement_rows("web", {"a": 10, "b": 10}) + placement_rows("api", {"a": 10, "b": 10}),
    )
    row = one(cross_az.cross_az_costs(snap, Config()), "web", "api")
    assert row.measured
    assert row.crossing_fraction == pytest.approx(0.4)
    assert row.usd_per_month == pytest.approx(40 * 73 * 0.02)


def test_destination_not_covering_source_zones_is_flagged_and_fix_cannot_save():
    # Source spread over a, b, c; destination only in a: 2/3 crosses and stays crossing after the fix.
    snap = snapshot([traffic_row("web", "db", 30)],
                    placement_rows("web", {"a": 10, "b": 10, "c": 10}) + placement_rows("db", {"a": 10}))
    row = one(cross_az.cross_az_costs(snap, Config()), "web", "db")
    assert row.crossing_fraction == pytest.approx(2 / 3)
    assert not row.destination_covers_source_zones
    assert row.saving_usd_per_month == pytest.approx(0.0)
    assert "spread ns/db" in row.fix and "topology.kubernetes.io/zone" in row.fix
    assert "no endpoints in some of the source's zones" in row.caveat


def test_partial_cover_saves_only_the_covered_share():
    # Source a/b equal, destination a/c equal: expected crossing 1 - 0.5*0.5 = 0.75; after the fix only
    # traffic from b (0.5) still crosses, so the fix saves (0.75 - 0.5) / 0.75 of the cost.
    snap = snapshot([traffic_row("web", "api", 100)],
                    placement_rows("web", {"a": 10, "b": 10}) + placement_rows("api", {"a": 10, "c": 10}))
    row = one(cross_az.cross_az_costs(snap, Config()), "web", "api")
    assert row.crossing_fraction == pytest.approx(0.75)
    assert row.saving_usd_per_month == pytest.approx(row.usd_per_month * (0.25 / 0.75))
    assert not row.destination_covers_source_zones


@pytest.mark.parametrize("distribution,mode,expected", [
    ("PreferClose", "", "spec.trafficDistribution: PreferClose"),
    ("", "Auto", "service.kubernetes.io/topology-mode: Auto"),
])
def test_service_with_topology_hint_has_saving_already_applied(distribution, mode, expected):
    snap = snapshot([traffic_row("web", "api", 100)],
                    placement_rows("web", {"a": 10, "b": 10}) + placement_rows("api", {"a": 10, "b": 10}),
                    services=[service_row("api", distribution, mode)])
    row = one(cross_az.cross_az_costs(snap, Config()), "web", "api")
    assert row.fix.startswith("already applied: " + expected)
    assert row.saving_usd_per_month == 0.0
    # With the hint working and endpoints in both zones, nothing is expected to cross.
    assert row.crossing_fraction == pytest.approx(0.0)


def test_service_matched_by_name_when_selector_unresolved():
    snap = snapshot([traffic_row("web", "api", 100)],
                    placement_rows("web", {"a": 10}) + placement_rows("api", {"a": 5, "b": 5}),
                    services=[service_row("api", "PreferClose", workload="")])
    row = one(cross_az.cross_az_costs(snap, Config()), "web", "api")
    assert "already applied" in row.fix


@pytest.mark.parametrize("version,text", [
    ("1.34", "spec.trafficDistribution: PreferSameZone on Service ns/api"),
    ("1.31", "spec.trafficDistribution: PreferClose on Service ns/api"),
    ("v1.29.3", "annotate Service ns/api with service.kubernetes.io/topology-mode: Auto"),
    ("1.25", "service.kubernetes.io/topology-aware-hints: auto"),
])
def test_fix_text_follows_kubernetes_version(version, text):
    snap = snapshot([traffic_row("web", "api", 100)],
                    placement_rows("web", {"a": 10, "b": 10}) + placement_rows("api", {"a": 10, "b": 10}),
                    services=[service_row("api")])
    row = one(cross_az.cross_az_costs(snap, config(cross_az={"kubernetes_version": version})), "web", "api")
    assert text in row.fix
    assert "no overload protection" in row.caveat


def test_fix_text_from_snapshot_version_and_unknown_version():
    places = placement_rows("web", {"a": 10, "b": 10}) + placement_rows("api", {"a": 10, "b": 10})
    snap = snapshot([traffic_row("web", "api", 100)], places, versions={"kubernetes": "v1.30.2"})
    assert "topology-mode: Auto" in one(cross_az.cross_az_costs(snap, Config()), "web", "api").fix
    snap = snapshot([traffic_row("web", "api", 100)], places)
    fix = one(cross_az.cross_az_costs(snap, Config()), "web", "api").fix
    assert "PreferClose" in fix and "PreferSameZone from 1.34" in fix and "topology-mode: Auto on older" in fix
    assert "the Service in front of ns/api" in fix  # no Service known for the destination


def test_few_endpoints_per_zone_are_a_caveat():
    snap = snapshot([traffic_row("web", "api", 100), traffic_row("web", "big", 100)],
                    placement_rows("web", {"a": 10, "b": 10})
                    + placement_rows("api", {"a": 10, "b": 10})  # 1 pod per zone over the 10 h window
                    + placement_rows("big", {"a": 40, "b": 40}))  # 4 pods per zone
    out = cross_az.cross_az_costs(snap, Config())
    assert "averages few pods per zone: a (1.0), b (1.0)" in one(out, "web", "api").caveat
    assert "averages few pods" not in one(out, "web", "big").caveat


def test_unknown_placement_gives_nan_not_zero_and_sorts_last():
    snap = snapshot([traffic_row("web", "api", 100), traffic_row("web", "ghost", 500)],
                    placement_rows("web", {"a": 10}) + placement_rows("api", {"b": 10}))
    out = cross_az.cross_az_costs(snap, Config())
    assert list(out.destination_workload) == ["api", "ghost"]
    ghost = one(out, "web", "ghost")
    assert np.isnan(ghost.usd_per_month) and np.isnan(ghost.crossing_fraction)
    assert "placement of one side unknown" in ghost.caveat


def test_sorted_by_cost_desc_and_exact_columns():
    snap = snapshot([traffic_row("web", "small", 1), traffic_row("web", "large", 50), traffic_row("web", "mid", 10)],
                    placement_rows("web", {"a": 10}) + placement_rows("small", {"b": 10})
                    + placement_rows("large", {"b": 10}) + placement_rows("mid", {"b": 10}))
    out = cross_az.cross_az_costs(snap, Config())
    assert list(out.columns) == [c.name for c in CROSS_AZ_COLUMNS]
    assert list(out.destination_workload) == ["large", "mid", "small"]
    top = cross_az.top_pairs(out, config(cross_az={"top_n": 2, "min_usd_per_month": 0.0}))
    assert list(top.destination_workload) == ["large", "mid"]
    cheap_cut = cross_az.top_pairs(out, config(cross_az={"min_usd_per_month": 5.0}))
    assert list(cheap_cut.destination_workload) == ["large", "mid"]  # small = 73 GB * 0.02 = 1.46 USD


def test_several_rows_of_one_pair_are_summed():
    snap = snapshot([traffic_row("web", "api", 30), traffic_row("web", "api", 70)],
                    placement_rows("web", {"a": 10}) + placement_rows("api", {"b": 10}))
    out = cross_az.cross_az_costs(snap, Config())
    assert len(out) == 1 and out.iloc[0].gb_per_month == pytest.approx(7300)


def test_missing_traffic_says_so_instead_of_zeros():
    snap = Snapshot(meta=new_meta()).validate()
    out = cross_az.cross_az_costs(snap, Config())
    assert out.empty and list(out.columns) == [c.name for c in CROSS_AZ_COLUMNS]


def test_measured_zones_need_no_placement():
    snap = snapshot([traffic_row("web", "api", 1, "a", "b")])
    assert one(cross_az.cross_az_costs(snap, Config()), "web", "api").crossing_fraction == 1.0


def test_demo_snapshot():
    snap = demo.generate()
    out = cross_az.cross_az_costs(snap, Config())
    assert list(out.columns) == [c.name for c in CROSS_AZ_COLUMNS]
    assert len(out) == len(demo.TRAFFIC)
    assert out.usd_per_month.is_monotonic_decreasing
    assert (out.iloc[0].source_workload, out.iloc[0].destination_workload) == ("etl-worker", "kafka")
    redis = one(out, "cart", "redis")  # the demo's redis Service already has trafficDistribution: PreferClose
    assert redis.fix.startswith("already applied") and redis.saving_usd_per_month == 0
    postgres = one(out, "payments-api", "postgres")  # postgres runs in two zones, payments-api in three
    assert not postgres.destination_covers_source_zones
    assert 0 < postgres.saving_usd_per_month < postgres.usd_per_month


def test_measured_crossing_with_hint_already_set_keeps_the_measurement():
    # The hint is set but the metrics still show crossing (e.g. hints dropped): report it, no further saving.
    snap = snapshot([traffic_row("web", "api", 80, "a", "a"), traffic_row("web", "api", 20, "a", "b")],
                    services=[service_row("api", "PreferClose")])
    row = one(cross_az.cross_az_costs(snap, Config()), "web", "api")
    assert row.measured and row.crossing_fraction == pytest.approx(0.2)
    assert row.usd_per_month == pytest.approx(20 * 73 * 0.02)
    assert row.saving_usd_per_month == 0.0 and row.fix.startswith("already applied")


def test_tcp_pair_counts_request_and_response_bytes():
    """Istio's istio_tcp_received_bytes_total is the request direction (client -> server) and
    istio_tcp_sent_bytes_total the response direction; the traffic table's `bytes` is their sum and
    both directions pay the crossing."""
    row = traffic_row("web", "db", 0)
    row.update(request_bytes=30e9, response_bytes=70e9, bytes=30e9 + 70e9)
    snap = snapshot([row], placement_rows("web", {"a": 10}) + placement_rows("db", {"b": 10}))
    out = one(cross_az.cross_az_costs(snap, Config()), "web", "db")
    # (30 + 70) GB over a 10 h window -> x73 a month = 7300 GB, all crossing (a -> b), 0.01 out + 0.01 in:
    # 7300 x 0.02 = 146.00 USD/month (the response direction alone would have said 70 x 73 x 0.02 = 102.20)
    assert out.usd_per_month == pytest.approx(146.0)
    assert out.usd_per_month_low == pytest.approx(146.0) == out.usd_per_month_high  # nowhere in-zone to go


def test_range_without_hint_and_zone_aware_service_names_what_still_crosses():
    # Source evenly in a, b, c; destination in a and b only. 90 GB in 10 h -> 6570 GB/month.
    places = placement_rows("web", {"a": 10, "b": 10, "c": 10}) + placement_rows("api", {"a": 10, "b": 10})
    plain = one(cross_az.cross_az_costs(snapshot([traffic_row("web", "api", 90)], places, services=[service_row("api")]),
                                        Config()), "web", "api")
    # uniform: same zone with probability 1/3 x 1/2 + 1/3 x 1/2 = 1/3, so 2/3 cross: 6570 x 2/3 x 0.02 = 87.60
    # same zone where endpoints allow: only traffic from c crosses, 1/3: 6570 x 1/3 x 0.02 = 43.80
    assert plain.usd_per_month == pytest.approx(87.6) and plain.usd_per_month_high == pytest.approx(87.6)
    assert plain.usd_per_month_low == pytest.approx(43.8)
    assert plain.assumption == "uniform over endpoints (no topology hint on Service ns/api)"
    assert "PreferClose" in plain.fix and plain.saving_usd_per_month == pytest.approx(87.6 - 43.8)

    zone_aware = one(cross_az.cross_az_costs(
        snapshot([traffic_row("web", "api", 90)], places, services=[service_row("api", "PreferClose")]), Config()), "web", "api")
    # known routing: the range collapses to the same-zone figure, 43.80 USD/month
    assert zone_aware.usd_per_month == pytest.approx(43.8) == zone_aware.usd_per_month_low == zone_aware.usd_per_month_high
    assert zone_aware.assumption == "same zone where ns/api has endpoints: spec.trafficDistribution: PreferClose on Service ns/api"
    assert zone_aware.fix.startswith("already applied: spec.trafficDistribution: PreferClose on Service ns/api")
    assert "set spec.trafficDistribution" not in zone_aware.fix  # never recommend what is already set
    assert "still crossing: traffic from c (33%) of ns/web's pods, zones where ns/api has no endpoints" in zone_aware.fix
    assert zone_aware.saving_usd_per_month == 0.0

    unknown = one(cross_az.cross_az_costs(snapshot([traffic_row("web", "api", 90)], places), Config()), "web", "api")
    assert unknown.assumption == "uniform over endpoints (routing unknown: no Service known for ns/api)"


def test_node_local_service_never_crosses_zones():
    svc = {**service_row("api"), "internal_traffic_policy": "Local"}
    snap = snapshot([traffic_row("web", "api", 90)],
                    placement_rows("web", {"a": 10, "b": 10}) + placement_rows("api", {"a": 10, "b": 10}), services=[svc])
    row = one(cross_az.cross_az_costs(snap, Config()), "web", "api")
    assert row.usd_per_month == 0.0 and row.usd_per_month_low == 0.0 and row.saving_usd_per_month == 0.0
    assert row.assumption.startswith("node-local") and row.fix.startswith("none needed")


def test_zone_aware_service_covering_every_zone_has_nothing_left():
    snap = snapshot([traffic_row("web", "api", 90)],
                    placement_rows("web", {"a": 10, "b": 10}) + placement_rows("api", {"a": 10, "b": 10}),
                    services=[service_row("api", topology_mode="Auto")])
    row = one(cross_az.cross_az_costs(snap, Config()), "web", "api")
    assert row.usd_per_month == 0.0
    assert "nothing left to fix: ns/api has endpoints in every zone ns/web runs in" in row.fix
