"""The bundled offline catalogue and collect_prices(offline=True)."""
from __future__ import annotations

import dataclasses
import math

import pandas as pd
import pytest

from rightsize.analysis import cost
from rightsize.config import Config, PricingConfig
from rightsize.demo import generate
from rightsize.quantity import GIB
from rightsize.snapshot import Snapshot
from rightsize.sources.aws import collect_prices
from rightsize.sources.price_catalogue import ONDEMAND_PRICE_DATE, load_catalogue


def _config(**pricing) -> Config:
    return dataclasses.replace(Config(), pricing=dataclasses.replace(PricingConfig(), **pricing))


def _snapshot(rows: list[tuple]) -> Snapshot:
    """Nodes from (node, instance_type, zone, region, capacity_type)."""
    nodes = pd.DataFrame(rows, columns=["node", "instance_type", "zone", "region", "capacity_type"])
    nodes["cluster"] = "c1"
    nodes["node_group"] = "ng"
    nodes["allocatable_cpu_cores"] = 1.9
    nodes["allocatable_memory_bytes"] = 7.0 * GIB
    nodes["hours_seen"] = 24.0
    return Snapshot(tables={"nodes": nodes})


def test_catalogue_m5_large_us_east_1():
    cat = load_catalogue()
    od = cat.ondemand.set_index(["region", "instance_type"])["usd_per_hour"]
    assert od[("us-east-1", "m5.large")] == pytest.approx(0.096)
    shape = cat.shapes.set_index("instance_type").loc["m5.large"]
    assert (shape["vcpu"], shape["memory_gib"]) == (2, 8)
    adv = cat.advisor.set_index(["region", "instance_type"]).loc[("us-east-1", "m5.large")]
    # SOURCES.md's sanity check: {s: 66, r: 3}, and range 3 is "15-20%".
    assert adv["spot_savings_percent"] == 66 and adv["interruption_bucket"] == "15-20%"


def test_catalogue_is_loaded_once_and_knows_its_regions():
    assert load_catalogue() is load_catalogue()
    cat = load_catalogue()
    assert cat.regions == {"us-east-1", "us-gov-east-1", "us-gov-west-1"}
    assert cat.price_region("us-gov-west-1") == "us-gov-west-1"
    assert cat.price_region("eu-west-1") == "us-east-1"


def test_offline_prices_on_the_demo_snapshot():
    snap = generate()
    collect_prices(Config(), snap, offline=True)
    prices = snap.tables["prices"]
    # the nodes' types; with GPU nodes (p4d.24xlarge) also the smallest type of each GPU family a "smaller GPU"
    # may suggest, and every GPU type's general-purpose reference (m5.xlarge splits p4d.24xlarge's price)
    from rightsize.gpu_catalogue import gpu_alternatives, gpu_reference_types
    from rightsize.sources.price_catalogue import load_catalogue

    gpu_types = sorted({"p4d.24xlarge", *gpu_alternatives(load_catalogue().shapes)})
    refs = set(gpu_reference_types(pd.Series(gpu_types, dtype=object))["reference_type"])
    assert {"g6.xlarge", "g4dn.xlarge", "m5.xlarge", "m6a.xlarge"} <= set(gpu_types) | refs
    listed = set(load_catalogue().ondemand.query("region == 'us-east-1'")["instance_type"])  # p5e: no list price
    assert set(prices["instance_type"]) == {"m5.2xlarge", "r5.2xlarge", "c6i.2xlarge", "m6i.xlarge"} | (set(gpu_types) | refs) & listed
    assert len(set(gpu_types) - {"p4d.24xlarge"}) <= 17  # README: at most 17 more types per region
    od = prices[prices["capacity_type"] == "on-demand"].set_index("instance_type")
    assert od.loc["m5.2xlarge", "usd_per_hour"] == pytest.approx(0.384)
    assert od.loc["m5.2xlarge", "price_source"] == "offline"
    assert (od.loc["r5.2xlarge", "vcpu"], od.loc["r5.2xlarge", "memory_gib"]) == (8, 64)
    spot = prices[prices["capacity_type"] == "spot"].set_index("instance_type")
    c6i = spot.loc["c6i.2xlarge"]
    assert c6i["zone"] == "" and c6i["price_source"] == "offline-estimate"
    assert c6i["usd_per_hour"] == pytest.approx(0.34 * (1 - c6i["spot_savings_percent"] / 100))
    assert c6i["interruption_bucket"] in {"<5%", "5-10%", "10-15%", "15-20%", ">20%"}
    meta = snap.meta["pricing"]
    assert meta["source"] == "offline" and meta["date"] == ONDEMAND_PRICE_DATE and meta["region"] == "us-east-1"
    assert meta["inter_az_usd_per_gb"] == pytest.approx(0.01)
    assert any("list prices" in n and ONDEMAND_PRICE_DATE in n for n in meta["notes"])
    assert any("estimate" in n for n in meta["notes"])
    snap.validate()  # the table honours the schema


def test_region_outside_the_catalogue_uses_us_east_1_and_says_so():
    snap = _snapshot([("n1", "m5.large", "eu-west-1a", "eu-west-1", "on-demand"),
                      ("n2", "m5.large", "eu-west-1b", "eu-west-1", "spot")])
    collect_prices(Config(), snap, offline=True)
    prices = snap.tables["prices"]
    od = prices[prices["capacity_type"] == "on-demand"].iloc[0]
    assert od["region"] == "eu-west-1" and od["usd_per_hour"] == pytest.approx(0.096)
    # The spot estimate uses the advisor's savings for eu-west-1 itself.
    adv = load_catalogue().advisor.set_index(["region", "instance_type"]).loc[("eu-west-1", "m5.large")]
    spot = prices[prices["capacity_type"] == "spot"].iloc[0]
    assert spot["usd_per_hour"] == pytest.approx(0.096 * (1 - adv["spot_savings_percent"] / 100))
    notes = " ".join(snap.meta["pricing"]["notes"])
    assert "eu-west-1" in notes and "us-east-1" in notes
    assert any(w["code"] == "prices_region_fallback" and "eu-west-1" in w["message"] for w in snap.meta["warnings"])


def test_govcloud_is_priced_from_its_own_list():
    snap = _snapshot([("n1", "m5.large", "us-gov-west-1a", "us-gov-west-1", "on-demand")])
    collect_prices(Config(), snap, offline=True)
    assert snap.tables["prices"].iloc[0]["usd_per_hour"] == pytest.approx(0.121)
    assert not any(w["code"] == "prices_region_fallback" for w in snap.meta["warnings"])


def test_unknown_instance_type_is_warned_and_costs_nan():
    snap = _snapshot([("n1", "m5.large", "us-east-1a", "us-east-1", "on-demand"),
                      ("n2", "zz9.mega", "us-east-1a", "us-east-1", "on-demand")])
    collect_prices(Config(), snap, offline=True)
    assert "zz9.mega" not in set(snap.tables["prices"]["instance_type"])
    warning = next(w for w in snap.meta["warnings"] if w["code"] == "price_unknown")
    assert "zz9.mega" in warning["message"] and "n2" in warning["message"]
    nodes = cost.node_unit_prices(snap, Config()).set_index("node")
    assert math.isnan(nodes.loc["n2", "usd_per_hour"]) and math.isnan(nodes.loc["n2", "usd_per_vcpu_hour"])
    assert nodes.loc["n2", "price_source"] == "unknown"
    assert nodes.loc["n1", "usd_per_hour"] == pytest.approx(0.096)


def test_config_region_wins_over_node_labels():
    snap = _snapshot([("n1", "m5.large", "x", "", "on-demand")])
    collect_prices(_config(region="us-gov-east-1"), snap, offline=True)
    row = snap.tables["prices"].iloc[0]
    assert row["region"] == "us-gov-east-1" and row["usd_per_hour"] == pytest.approx(0.121)


def test_overrides_and_discounts():
    snap = _snapshot([("n1", "m5.large", "us-east-1a", "us-east-1", "on-demand"),
                      ("n2", "c6i.2xlarge", "us-east-1a", "us-east-1", "spot")])
    config = _config(instance_prices={"m5.large": 0.07}, on_demand_discount=0.25,
                     spot_instance_prices={"c6i.2xlarge": 0.1}, spot_discount=0.5)
    collect_prices(config, snap, offline=True)
    p = snap.tables["prices"].set_index(["instance_type", "capacity_type"])
    assert p.loc[("m5.large", "on-demand"), "usd_per_hour"] == pytest.approx(0.07)
    assert p.loc[("m5.large", "on-demand"), "price_source"] == "override"
    assert p.loc[("c6i.2xlarge", "on-demand"), "usd_per_hour"] == pytest.approx(0.34 * 0.75)
    assert p.loc[("c6i.2xlarge", "spot"), "usd_per_hour"] == pytest.approx(0.1)
    assert p.loc[("c6i.2xlarge", "spot"), "price_source"] == "override"
    m5_spot_estimate = 0.096 * (1 - 66 / 100)
    assert p.loc[("m5.large", "spot"), "usd_per_hour"] == pytest.approx(m5_spot_estimate * 0.5)
    assert any("25%" in n for n in snap.meta["pricing"]["notes"])


def test_override_prices_a_type_the_catalogue_lacks():
    snap = _snapshot([("n1", "zz9.mega", "us-east-1a", "us-east-1", "on-demand")])
    collect_prices(_config(instance_prices={"zz9.mega": 1.5}), snap, offline=True)
    row = snap.tables["prices"].iloc[0]
    assert row["usd_per_hour"] == pytest.approx(1.5) and row["price_source"] == "override"
    assert not any(w["code"] == "price_unknown" for w in snap.meta["warnings"])


def test_no_nodes_gives_an_empty_valid_table():
    snap = Snapshot()
    collect_prices(Config(), snap, offline=True)
    assert snap.tables["prices"].empty
    assert snap.meta["pricing"]["source"] == "offline"
    snap.validate()
