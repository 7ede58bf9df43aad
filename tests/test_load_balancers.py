"""Load balancer cost, risk and consolidation on hand-made Services and on the demo snapshot."""
from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from rightsize import demo
from rightsize.analysis import load_balancers as lb
from rightsize.config import Config
from rightsize.schema import LOAD_BALANCER_COLUMNS
from rightsize.snapshot import Snapshot, new_meta

PRICE = 0.0225 * 730  # default USD/hour x hours per month


def svc(name: str, namespace: str = "web", type_: str = "LoadBalancer", ports: str = "443/TCP",
        internal: bool = False, workload: str | None = None) -> dict:
    return {"cluster": "c", "namespace": namespace, "service": name, "type": type_, "selector_json": "{}",
            "workload": name if workload is None else workload, "kind": "Deployment", "ports": ports,
            "load_balancer_internal": internal}


def snapshot(*services: dict) -> Snapshot:
    tables = {"services": pd.DataFrame(list(services))} if services else {}
    return Snapshot(tables=tables, meta=new_meta()).validate()


def by_name(df: pd.DataFrame) -> pd.DataFrame:
    return df.set_index(["namespace", "service"])


def test_only_load_balancer_services_with_fixed_monthly_price():
    out = lb.load_balancer_costs(snapshot(svc("a"), svc("b", type_="ClusterIP"), svc("c", type_="NodePort")), Config())
    assert list(out.columns) == [c.name for c in LOAD_BALANCER_COLUMNS]
    assert list(out.service) == ["a"]
    assert out.iloc[0].usd_per_month == pytest.approx(PRICE)


def test_price_is_overridable():
    base = Config()
    cfg = dataclasses.replace(base, pricing=dataclasses.replace(base.pricing, load_balancer_usd_per_hour=0.03),
                              general=dataclasses.replace(base.general, hours_per_month=720.0))
    out = lb.load_balancer_costs(snapshot(svc("a")), cfg)
    assert out.iloc[0].usd_per_month == pytest.approx(0.03 * 720)


def test_internet_facing_without_internal_annotation_is_a_risk():
    out = by_name(lb.load_balancer_costs(snapshot(svc("public"), svc("private", internal=True)), Config()))
    assert out.loc[("web", "public"), "scheme"] == "internet-facing"
    assert "internet-facing" in out.loc[("web", "public"), "risk"]
    assert "aws-load-balancer-scheme" in out.loc[("web", "public"), "risk"]
    assert out.loc[("web", "private"), "scheme"] == "internal"
    assert out.loc[("web", "private"), "risk"] == ""


@pytest.mark.parametrize("ports,http", [
    ("80/TCP", True), ("443/TCP", True), ("8080/TCP", True), ("8443/TCP", True),
    ("5432/TCP", False), ("53/UDP,9000/TCP", False), ("9000/TCP/http", True), ("9000/TCP/https", True),
    ("9000/TCP/kubernetes.io/h2c", True), ("5432/TCP,443/TCP", True), ("", False),
])
def test_http_detection(ports, http):
    assert bool(lb.is_http(pd.Series([ports])).iloc[0]) is http


def test_http_services_in_one_namespace_are_consolidation_candidates():
    out = lb.load_balancer_costs(snapshot(
        svc("a"), svc("b", ports="80/TCP"), svc("c", ports="8443/TCP"),  # three public HTTP LBs in web
        svc("db", ports="5432/TCP"),  # not HTTP: stays
        svc("lonely", namespace="other"),  # only HTTP LB of its namespace
        svc("intern", internal=True),  # internal cannot share the public one
    ), Config())
    got = by_name(out)
    assert got.loc[("web", "a"), "consolidation_candidate"]
    assert got.loc[("web", "c"), "consolidation_candidate"]
    assert not got.loc[("web", "db"), "consolidation_candidate"]
    assert not got.loc[("other", "lonely"), "consolidation_candidate"]
    assert not got.loc[("web", "intern"), "consolidation_candidate"]


def test_missing_services_give_no_rows_not_zero_cost_rows():
    snap = snapshot()
    out = lb.load_balancer_costs(snap, Config())
    assert out.empty and list(out.columns) == [c.name for c in LOAD_BALANCER_COLUMNS]
    # Services present but none of type LoadBalancer is a real answer (no load balancers), not missing input.
    snap = snapshot(svc("a", type_="ClusterIP"))
    assert lb.load_balancer_costs(snap, Config()).empty


def test_demo_snapshot():
    out = lb.load_balancer_costs(demo.generate(), Config())
    got = by_name(out)
    assert len(out) == 5
    assert got.loc[("payments", "webhooks"), "scheme"] == "internal"
    assert got.loc[("shop", "frontend"), "risk"] != ""
    assert got.loc[("shop", "ads"), "consolidation_candidate"]
    assert not got.loc[("staging", "frontend"), "consolidation_candidate"]
