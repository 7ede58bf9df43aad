"""Live AWS prices: the Price List Query API through botocore's Stubber (moto has no Pricing backend),
EC2 (DescribeInstanceTypes, DescribeSpotPriceHistory) through moto's EC2 backend, the disk cache,
and the failure paths (no credentials, AccessDenied)."""
from __future__ import annotations

import contextlib
import dataclasses
import json

import boto3
import pandas as pd
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from rightsize.analysis import cost
from rightsize.config import Config, PricingConfig
from rightsize.errors import SourceError
from rightsize.quantity import GIB
from rightsize.snapshot import Snapshot
from rightsize import aws_client
from rightsize.sources import price_cache, price_list
from rightsize.sources.aws import collect_prices
from rightsize.sources.price_list import (fetch_inter_az_price, fetch_instance_shapes, fetch_ondemand_prices,
                                          fetch_spot_prices, ondemand_filters, pricing_endpoint_region)

_AWS_ENV_CLEARED = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN")


@pytest.fixture
def fake_credentials(monkeypatch, tmp_path):
    """Dummy keys (moto and the Stubber never send them anywhere) and no instance-metadata lookups."""
    for name in _AWS_ENV_CLEARED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))


@pytest.fixture
def no_credentials(monkeypatch, tmp_path):
    for name in _AWS_ENV_CLEARED + ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))


def _config(tmp_path, **pricing) -> Config:
    pricing.setdefault("cache_dir", str(tmp_path / "cache"))
    return dataclasses.replace(Config(), pricing=dataclasses.replace(PricingConfig(), **pricing))


def _snapshot() -> Snapshot:
    nodes = pd.DataFrame({
        "cluster": "c1", "node": ["od-1", "spot-1"], "instance_type": ["m5.large", "c6i.2xlarge"],
        "zone": ["us-east-1a", "us-east-1b"], "region": "us-east-1", "capacity_type": ["on-demand", "spot"],
        "node_group": ["general", "spot"], "allocatable_cpu_cores": [1.9, 7.9],
        "allocatable_memory_bytes": [7 * GIB, 15 * GIB], "hours_seen": 24.0,
    })
    return Snapshot(tables={"nodes": nodes})


# --- Price List answers shaped like the real API (aws_v1: PriceList is a list of JSON strings) ---------

def _ec2_product(itype: str, usd: str, sku: str, region: str = "us-east-1") -> str:
    rate = f"{sku}.JRTCKXETXF.6YS6EN2CT7"
    return json.dumps({
        "product": {
            "productFamily": "Compute Instance",
            "attributes": {
                "instanceType": itype, "regionCode": region, "location": "US East (N. Virginia)",
                "operatingSystem": "Linux", "tenancy": "Shared", "preInstalledSw": "NA",
                "capacitystatus": "Used", "marketoption": "OnDemand", "licenseModel": "No License required",
                "usagetype": f"BoxUsage:{itype}", "operation": "RunInstances", "servicecode": "AmazonEC2",
                "vcpu": "2", "memory": "8 GiB",
            },
            "sku": sku,
        },
        "serviceCode": "AmazonEC2",
        "terms": {
            "OnDemand": {
                f"{sku}.JRTCKXETXF": {
                    "priceDimensions": {rate: {
                        "unit": "Hrs", "endRange": "Inf", "beginRange": "0", "appliesTo": [], "rateCode": rate,
                        "description": f"${usd} per On Demand Linux {itype} Instance Hour",
                        "pricePerUnit": {"USD": usd},
                    }},
                    "sku": sku, "effectiveDate": "2026-11-01T00:00:00Z", "offerTermCode": "JRTCKXETXF",
                    "termAttributes": {},
                },
            },
            # Reserved terms come in the same item and must be ignored.
            "Reserved": {
                f"{sku}.4NA7Y494T4": {
                    "priceDimensions": {f"{sku}.4NA7Y494T4.6YS6EN2CT7": {
                        "unit": "Hrs", "pricePerUnit": {"USD": "0.0010000000"}, "rateCode": "x", "appliesTo": [],
                        "description": "reserved", "beginRange": "0", "endRange": "Inf"}},
                    "sku": sku, "effectiveDate": "2026-11-01T00:00:00Z", "offerTermCode": "4NA7Y494T4",
                    "termAttributes": {"LeaseContractLength": "1yr", "OfferingClass": "standard", "PurchaseOption": "No Upfront"},
                },
            },
        },
        "version": "20261101000000",
        "publicationDate": "2026-11-01T00:00:00Z",
    })


def _transfer_product(usd: str) -> str:
    return json.dumps({
        "product": {"productFamily": "Data Transfer", "sku": "DT1", "attributes": {
            "transferType": "IntraRegion", "fromRegionCode": "us-east-1", "toRegionCode": "us-east-1",
            "usagetype": "USE1-DataTransfer-Regional-Bytes", "servicecode": "AWSDataTransfer"}},
        "serviceCode": "AWSDataTransfer",
        "terms": {"OnDemand": {"DT1.JRTCKXETXF": {"priceDimensions": {"DT1.JRTCKXETXF.6YS6EN2CT7": {
            "unit": "GB", "pricePerUnit": {"USD": usd}, "rateCode": "DT1.JRTCKXETXF.6YS6EN2CT7", "appliesTo": [],
            "description": f"${usd} per GB - US East (Northern Virginia) data transfer within region",
            "beginRange": "0", "endRange": "Inf"}}, "sku": "DT1", "offerTermCode": "JRTCKXETXF",
            "effectiveDate": "2026-11-01T00:00:00Z", "termAttributes": {}}}},
        "version": "20261101000000", "publicationDate": "2026-11-01T00:00:00Z",
    })


def _ec2_params(itype: str, token: str | None = None) -> dict:
    params = {"ServiceCode": "AmazonEC2", "Filters": ondemand_filters("us-east-1", itype), "FormatVersion": "aws_v1"}
    if token:
        params["NextToken"] = token
    return params


def _page(items: list[str], token: str | None = None) -> dict:
    page = {"FormatVersion": "aws_v1", "PriceList": items}
    if token:
        page["NextToken"] = token
    return page


def _transfer_params() -> dict:
    return {"ServiceCode": "AWSDataTransfer", "FormatVersion": "aws_v1", "Filters": [
        {"Type": "TERM_MATCH", "Field": "transferType", "Value": "IntraRegion"},
        {"Type": "TERM_MATCH", "Field": "fromRegionCode", "Value": "us-east-1"},
        {"Type": "TERM_MATCH", "Field": "toRegionCode", "Value": "us-east-1"}]}


def _queue_live_pricing(stub: Stubber) -> None:
    """The answers one live run needs, in call order: types sorted, then the transfer price."""
    stub.add_response("get_products", _page([_ec2_product("c6i.2xlarge", "0.3400000000", "SKUC6I")]), _ec2_params("c6i.2xlarge"))
    # m5.large over three pages: an empty first page, then the same price under two SKUs.
    stub.add_response("get_products", _page([], "tok-1"), _ec2_params("m5.large"))
    stub.add_response("get_products", _page([_ec2_product("m5.large", "0.0960000000", "SKUA")], "tok-2"), _ec2_params("m5.large", "tok-1"))
    stub.add_response("get_products", _page([_ec2_product("m5.large", "0.0960000000", "SKUB")]), _ec2_params("m5.large", "tok-2"))
    stub.add_response("get_products", _page([_transfer_product("0.0100000000")]), _transfer_params())


def _count_calls(client) -> list[str]:
    calls: list[str] = []
    client.meta.events.register("before-call.*.*", lambda model, **_: calls.append(model.name))
    return calls


# --- tests ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("region, endpoint", [
    ("us-east-1", "us-east-1"), ("us-west-2", "us-east-1"), ("sa-east-1", "us-east-1"),
    ("eu-west-1", "eu-central-1"), ("eu-north-1", "eu-central-1"),
    ("ap-southeast-2", "ap-south-1"), ("ap-northeast-1", "ap-south-1"),
    ("cn-north-1", "cn-northwest-1"), ("us-gov-west-1", None),
])
def test_pricing_endpoint_region(region, endpoint):
    assert pricing_endpoint_region(region, boto3.Session()) == endpoint


def test_ondemand_prices_parsed_across_pages(fake_credentials):
    client = boto3.client("pricing", region_name="us-east-1")
    with Stubber(client) as stub:
        _queue_live_pricing(stub)
        got = fetch_ondemand_prices(client, "us-east-1", ["c6i.2xlarge", "m5.large"])
        assert fetch_inter_az_price(client, "us-east-1") == pytest.approx(0.01)
        stub.assert_no_pending_responses()
    assert got == {"c6i.2xlarge": pytest.approx(0.34), "m5.large": pytest.approx(0.096)}


def test_two_distinct_prices_for_one_type_is_an_error(fake_credentials):
    client = boto3.client("pricing", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_response("get_products", _page([_ec2_product("m5.large", "0.0960000000", "SKUA")], "tok-1"), _ec2_params("m5.large"))
        stub.add_response("get_products", _page([_ec2_product("m5.large", "0.1010000000", "SKUB")]), _ec2_params("m5.large", "tok-1"))
        with pytest.raises(SourceError, match=r"m5\.large.*2 distinct.*0\.096, 0\.101"):
            fetch_ondemand_prices(client, "us-east-1", ["m5.large"])


def test_type_without_product_is_none(fake_credentials):
    client = boto3.client("pricing", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_response("get_products", _page([]), _ec2_params("zz9.mega"))
        assert fetch_ondemand_prices(client, "us-east-1", ["zz9.mega"]) == {"zz9.mega": None}


@mock_aws
def test_instance_shapes_from_describe_instance_types(fake_credentials):
    ec2 = boto3.client("ec2", region_name="us-east-1")
    shapes = fetch_instance_shapes(ec2, ["m5.large", "r5.2xlarge", "p4d.24xlarge", "zz9.mega"])
    # Only the requested types come back; an unknown name does not sink the known ones.
    assert set(shapes) == {"m5.large", "r5.2xlarge", "p4d.24xlarge", "zz9.mega"}
    assert shapes["m5.large"] == (2.0, 8.0, 0.0) and shapes["r5.2xlarge"] == (8.0, 64.0, 0.0)
    assert shapes["p4d.24xlarge"] == (96.0, 1152.0, 8.0)  # GpuInfo.Gpus[].Count summed
    assert shapes["zz9.mega"] is None


@mock_aws
def test_spot_prices_per_type_and_zone(fake_credentials):
    ec2 = boto3.client("ec2", region_name="us-east-1")
    calls = _count_calls(ec2)
    spot = fetch_spot_prices(ec2, ["m5.large", "c6i.2xlarge"])
    # moto's spot prices are placeholders: check the selection and structure, not the values.
    assert set(spot) == {"m5.large", "c6i.2xlarge"}
    zones = {z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]}
    for by_zone in spot.values():
        assert by_zone and set(by_zone) <= zones
        assert all(isinstance(p, float) and p > 0 for p in by_zone.values())
    assert calls[0] == "DescribeSpotPriceHistory"


@mock_aws
def test_live_collection_then_cache_makes_no_calls(fake_credentials, tmp_path):
    config = _config(tmp_path, source="aws")
    ec2 = boto3.client("ec2", region_name="us-east-1")
    pricing = boto3.client("pricing", region_name="us-east-1")
    ec2_calls, pricing_calls = _count_calls(ec2), _count_calls(pricing)
    snap = _snapshot()
    with Stubber(pricing) as stub:
        _queue_live_pricing(stub)
        collect_prices(config, snap, clients={"pricing": pricing, "ec2": ec2})
        stub.assert_no_pending_responses()
    assert set(ec2_calls) == {"DescribeSpotPriceHistory", "DescribeInstanceTypes"}
    assert len(pricing_calls) == 5

    prices = snap.tables["prices"]
    od = prices[prices["capacity_type"] == "on-demand"].set_index("instance_type")
    assert od.loc["m5.large", "usd_per_hour"] == pytest.approx(0.096) and od.loc["m5.large", "price_source"] == "aws"
    assert (od.loc["c6i.2xlarge", "vcpu"], od.loc["c6i.2xlarge", "memory_gib"]) == (8.0, 16.0)
    spot = prices[prices["capacity_type"] == "spot"]
    assert set(spot["instance_type"]) == {"m5.large", "c6i.2xlarge"}
    assert (spot["zone"] != "").all() and (spot["price_source"] == "aws").all()
    assert spot["interruption_bucket"].ne("").all()  # advisor data joined on live rows too
    meta = snap.meta["pricing"]
    assert meta["source"] == "aws" and meta["inter_az_usd_per_gb"] == pytest.approx(0.01)
    assert any("AWSDataTransfer" in n for n in meta["notes"])
    # The spot node is priced at the spot price of its own zone.
    nodes = cost.node_unit_prices(snap, config).set_index("node")
    zone_price = spot[(spot["instance_type"] == "c6i.2xlarge") & (spot["zone"] == "us-east-1b")]["usd_per_hour"].iloc[0]
    assert nodes.loc["spot-1", "usd_per_hour"] == pytest.approx(zone_price)

    # Second run: everything from the cache; the Stubber has nothing queued, so any call would fail.
    ec2_calls.clear()
    pricing_calls.clear()
    again = _snapshot()
    with Stubber(pricing):
        collect_prices(config, again, clients={"pricing": pricing, "ec2": ec2})
    assert ec2_calls == [] and pricing_calls == []
    pd.testing.assert_frame_equal(again.tables["prices"], prices)


@mock_aws
def test_expired_cache_is_refetched(fake_credentials, tmp_path, monkeypatch):
    config = _config(tmp_path, source="aws", cache_ttl=3600.0)
    ec2 = boto3.client("ec2", region_name="us-east-1")
    pricing = boto3.client("pricing", region_name="us-east-1")
    with Stubber(pricing) as stub:
        _queue_live_pricing(stub)
        collect_prices(config, _snapshot(), clients={"pricing": pricing, "ec2": ec2})
    later = price_cache.time.time() + 7200
    monkeypatch.setattr(price_cache.time, "time", lambda: later)
    calls = _count_calls(ec2)
    with Stubber(pricing) as stub:
        _queue_live_pricing(stub)
        collect_prices(config, _snapshot(), clients={"pricing": pricing, "ec2": ec2})
        stub.assert_no_pending_responses()
    assert "DescribeInstanceTypes" in calls


def test_no_credentials_falls_back_to_offline(no_credentials, tmp_path):
    snap = _snapshot()
    collect_prices(_config(tmp_path), snap)
    assert snap.meta["pricing"]["source"] == "offline"
    assert any(w["code"] == "prices_offline" and "credentials" in w["message"] for w in snap.meta["warnings"])
    assert set(snap.tables["prices"]["price_source"]) == {"offline", "offline-estimate"}


def test_no_credentials_with_source_aws_is_an_error(no_credentials, tmp_path):
    with pytest.raises(SourceError, match="no AWS credentials"):
        collect_prices(_config(tmp_path, source="aws"), _snapshot())


def test_access_denied_names_the_permission(fake_credentials, tmp_path):
    pricing = boto3.client("pricing", region_name="us-east-1")
    with Stubber(pricing) as stub:
        stub.add_client_error("get_products", service_error_code="AccessDeniedException",
                              service_message="User is not authorized to perform: pricing:GetProducts", http_status_code=400)
        with pytest.raises(SourceError, match=r"denied.*pricing:GetProducts"):
            collect_prices(_config(tmp_path, source="aws"), _snapshot(), clients={"pricing": pricing})


@mock_aws
def test_access_denied_on_spot_history_in_auto_mode_estimates_spot(fake_credentials, tmp_path):
    pricing = boto3.client("pricing", region_name="us-east-1")
    ec2 = boto3.client("ec2", region_name="us-east-1")
    snap = _snapshot()
    with Stubber(pricing) as pstub, Stubber(ec2) as estub:
        _queue_live_pricing(pstub)
        estub.add_client_error("describe_spot_price_history", service_error_code="UnauthorizedOperation",
                               service_message="You are not authorized to perform this operation.", http_status_code=403)
        estub.add_response("describe_instance_types", {"InstanceTypes": [
            {"InstanceType": "c6i.2xlarge", "VCpuInfo": {"DefaultVCpus": 8}, "MemoryInfo": {"SizeInMiB": 16384}},
            {"InstanceType": "m5.large", "VCpuInfo": {"DefaultVCpus": 2}, "MemoryInfo": {"SizeInMiB": 8192}}]},
            {"InstanceTypes": ["c6i.2xlarge", "m5.large"]})
        collect_prices(_config(tmp_path), snap, clients={"pricing": pricing, "ec2": ec2})
    warning = next(w for w in snap.meta["warnings"] if w["code"] == "prices_spot_offline")
    assert "ec2:DescribeSpotPriceHistory" in warning["message"]
    prices = snap.tables["prices"].set_index(["instance_type", "capacity_type"])
    assert prices.loc[("m5.large", "on-demand"), "price_source"] == "aws"
    assert prices.loc[("m5.large", "spot"), "price_source"] == "offline-estimate"
    assert prices.loc[("m5.large", "spot"), "usd_per_hour"] == pytest.approx(0.096 * (1 - 0.66))
    assert snap.meta["pricing"]["source"] == "aws+offline"


def test_govcloud_has_no_pricing_endpoint_and_uses_the_catalogue(fake_credentials, tmp_path):
    ec2 = boto3.client("ec2", region_name="us-gov-west-1")
    snap = _snapshot()
    snap.tables["nodes"]["region"] = "us-gov-west-1"
    with Stubber(ec2) as stub:
        stub.add_response("describe_spot_price_history", {"SpotPriceHistory": [
            {"AvailabilityZone": "us-gov-west-1a", "InstanceType": "m5.large", "ProductDescription": "Linux/UNIX",
             "SpotPrice": "0.040000", "Timestamp": pd.Timestamp("2026-11-20", tz="UTC").to_pydatetime()}]})
        stub.add_response("describe_instance_types", {"InstanceTypes": [
            {"InstanceType": "c6i.2xlarge", "VCpuInfo": {"DefaultVCpus": 8}, "MemoryInfo": {"SizeInMiB": 16384}},
            {"InstanceType": "m5.large", "VCpuInfo": {"DefaultVCpus": 2}, "MemoryInfo": {"SizeInMiB": 8192}}]})
        collect_prices(_config(tmp_path, source="aws"), snap, clients={"ec2": ec2})
    prices = snap.tables["prices"].set_index(["instance_type", "capacity_type"])
    assert prices.loc[("m5.large", "on-demand"), "usd_per_hour"] == pytest.approx(0.121)
    assert prices.loc[("m5.large", "on-demand"), "price_source"] == "offline"
    assert prices.loc[("m5.large", "spot"), "usd_per_hour"] == pytest.approx(0.04)


def test_unreachable_aws_in_auto_mode_tries_once_then_goes_offline(fake_credentials, tmp_path):
    import socket

    from botocore.config import Config as BotoConfig

    with socket.socket() as s:  # a port nothing listens on: connections are refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = BotoConfig(retries={"mode": "standard", "max_attempts": 1}, connect_timeout=2)
    url = f"http://127.0.0.1:{port}"
    pricing = boto3.client("pricing", region_name="us-east-1", endpoint_url=url, config=conf)
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=url, config=conf)
    pricing_calls, ec2_calls = _count_calls(pricing), _count_calls(ec2)
    snap = _snapshot()
    collect_prices(_config(tmp_path), snap, clients={"pricing": pricing, "ec2": ec2})
    # The first refused connection stops the other lookups (each would wait out its retries).
    assert len(pricing_calls) == 1 and ec2_calls == []
    assert {w["code"] for w in snap.meta["warnings"]} >= {"prices_ondemand_offline", "prices_spot_offline"}
    assert snap.meta["pricing"]["source"] == "offline"
    od = snap.tables["prices"].set_index(["instance_type", "capacity_type"])
    assert od.loc[("m5.large", "on-demand"), "usd_per_hour"] == pytest.approx(0.096)


@mock_aws
def test_type_missing_from_the_price_list_takes_the_catalogue_price(fake_credentials, tmp_path):
    pricing = boto3.client("pricing", region_name="us-east-1")
    ec2 = boto3.client("ec2", region_name="us-east-1")
    snap = _snapshot()
    with Stubber(pricing) as stub:
        stub.add_response("get_products", _page([_ec2_product("c6i.2xlarge", "0.3400000000", "SKUC6I")]), _ec2_params("c6i.2xlarge"))
        stub.add_response("get_products", _page([]), _ec2_params("m5.large"))
        stub.add_response("get_products", _page([_transfer_product("0.0100000000")]), _transfer_params())
        collect_prices(_config(tmp_path, source="aws"), snap, clients={"pricing": pricing, "ec2": ec2})
    # on-demand rows only: the spot rows repeat (type, "spot") once per zone, and pandas < 3 answers a
    # lookup in a non-unique index with a Series even for a unique key
    od = snap.tables["prices"].query("capacity_type == 'on-demand'").set_index(["instance_type", "capacity_type"])
    assert od.loc[("c6i.2xlarge", "on-demand"), "price_source"] == "aws"
    assert od.loc[("m5.large", "on-demand"), "price_source"] == "offline"
    assert od.loc[("m5.large", "on-demand"), "usd_per_hour"] == pytest.approx(0.096)
    assert snap.meta["pricing"]["source"] == "aws+offline"


@contextlib.contextmanager
def _pricing_api(answer):
    """A local HTTP server speaking the Pricing API's JSON protocol: ``answer(n)`` gives the (status, body) of
    the n-th request (from 1). Yields a client built with aws_client.client_config(attempts) and the requests seen."""
    import http.server
    import threading

    requests: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            requests.append(self.headers.get("X-Amz-Target", ""))
            status, body = answer(len(requests))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield (lambda attempts: boto3.client("pricing", region_name="us-east-1", endpoint_url=url,
                                             config=aws_client.client_config(attempts, 10, 60))), requests
    finally:
        server.shutdown()
        server.server_close()


_PRICE = {"FormatVersion": "aws_v1", "PriceList": [_ec2_product("m5.large", "0.0960000000", "SKUA")]}


def test_throttling_is_retried_with_the_standard_retry_mode(fake_credentials):
    """The first request is throttled; the client built with aws.client_config retries it and gets the price."""
    throttled = (400, {"__type": "ThrottlingException", "message": "Rate exceeded"})
    with _pricing_api(lambda n: throttled if n == 1 else (200, _PRICE)) as (client, requests):
        assert fetch_ondemand_prices(client(3), "us-east-1", ["m5.large"]) == {"m5.large": pytest.approx(0.096)}
    assert requests == ["AWSPriceListService.GetProducts"] * 2


def test_retries_stop_at_the_configured_attempts_in_standard_mode(fake_credentials):
    """An API that always answers 400 TooManyRequestsException: standard mode treats it as throttling (legacy
    mode, botocore's default, does not retry it at all) and gives up after exactly the attempts configured."""
    with _pricing_api(lambda n: (400, {"__type": "TooManyRequestsException", "message": "slow down"})) as (client, requests):
        with pytest.raises(price_list.AwsUnavailable, match="GetProducts .*TooManyRequestsException: slow down"):
            fetch_ondemand_prices(client(2), "us-east-1", ["m5.large"])
    assert len(requests) == 2
