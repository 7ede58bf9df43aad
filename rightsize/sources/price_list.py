"""The AWS price APIs as rightsize calls them: the Price List Query API (on-demand and inter-AZ prices) and
EC2 (spot prices, instance shapes), their endpoints, credentials, errors and deadlines. Each lookup takes a
ready client (tests feed them Stubber / moto clients); the cache and the prices table are aws.py's.
"""
from __future__ import annotations

import datetime as dt
import json
import threading
from typing import Any, Callable, Iterable

from ..aws_client import client_config
from ..errors import SourceError
from .price_catalogue import FALLBACK_REGION


#: The IAM permission each API call needs, for AccessDenied messages.
PERMISSIONS = {
    "GetProducts": "pricing:GetProducts",
    "DescribeSpotPriceHistory": "ec2:DescribeSpotPriceHistory",
    "DescribeInstanceTypes": "ec2:DescribeInstanceTypes",
}


_ACCESS_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedAccess",
                  "AuthFailure", "UnrecognizedClientException", "InvalidClientTokenId", "ExpiredToken",
                  "ExpiredTokenException"}


# DescribeInstanceTypes accepts at most 100 types per request.
_DESCRIBE_TYPES_CHUNK = 100


class AwsUnavailable(SourceError):
    """A live AWS lookup failed (no credentials, denied, unreachable); the message says why.

    ``unreachable`` is True when the endpoint could not be reached at all (no point asking it again).
    """

    def __init__(self, message: str, unreachable: bool = False):
        super().__init__(message)
        self.unreachable = unreachable


def pricing_endpoint_region(region: str, session=None) -> str | None:
    """Region of the Price List Query API endpoint to use for ``region``; None when its partition has none.

    Follows the mapping well-known tools (Karpenter) use: ap-* -> ap-south-1, eu-* -> eu-central-1,
    otherwise us-east-1; other partitions use whatever endpoint botocore knows for them.
    """
    import boto3

    session = session or boto3.Session()
    partition = session.get_partition_for_region(region) if region else "aws"
    available = session.get_available_regions("pricing", partition_name=partition)
    if not available:
        return None
    for prefix, endpoint in (("ap-", "ap-south-1"), ("eu-", "eu-central-1"), ("us-", "us-east-1")):
        if region.startswith(prefix) and endpoint in available:
            return endpoint
    return "us-east-1" if "us-east-1" in available else sorted(available)[0]


def _describe_client_error(exc: Exception, operation: str, region: str) -> str:
    from botocore.exceptions import ClientError, NoCredentialsError, PartialCredentialsError

    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return f"AWS {operation} ({region}): no AWS credentials found ({exc})"
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        msg = exc.response.get("Error", {}).get("Message", "")
        if code in _ACCESS_DENIED:
            return (f"AWS {operation} ({region}) denied ({code}): the credentials need the IAM permission "
                    f"{PERMISSIONS.get(operation, operation)}")
        return f"AWS {operation} ({region}) failed: {code}: {msg}"
    return f"AWS {operation} ({region}) failed: {exc}"


def _unavailable(exc: Exception, operation: str, region: str) -> AwsUnavailable:
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import ReadTimeoutError

    # An endpoint that accepts connections but never answers is as unreachable as one that refuses them.
    return AwsUnavailable(_describe_client_error(exc, operation, region),
                          unreachable=isinstance(exc, (BotoConnectionError, ReadTimeoutError)))


def _call(operation: str, region: str, fn: Callable[[], Any]) -> Any:
    """Run one AWS call; any AWS/network failure becomes AwsUnavailable naming the call."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return fn()
    except (ClientError, BotoCoreError) as exc:
        raise _unavailable(exc, operation, region) from None


def ondemand_filters(region: str, instance_type: str) -> list[dict]:
    """The Price List filters selecting one Linux, shared-tenancy, on-demand, no-software price."""
    terms = [("regionCode", region), ("instanceType", instance_type), ("operatingSystem", "Linux"),
             ("tenancy", "Shared"), ("preInstalledSw", "NA"), ("capacitystatus", "Used"), ("marketoption", "OnDemand")]
    return [{"Type": "TERM_MATCH", "Field": f, "Value": v} for f, v in terms]


def _usd_prices(item: dict, unit_prefix: str) -> set[float]:
    prices: set[float] = set()
    for term in item.get("terms", {}).get("OnDemand", {}).values():
        for dim in term.get("priceDimensions", {}).values():
            if not str(dim.get("unit", "")).lower().startswith(unit_prefix):
                continue
            usd = dim.get("pricePerUnit", {}).get("USD")
            if usd is not None:
                prices.add(float(usd))
    return prices


def fetch_ondemand_prices(pricing_client, region: str, instance_types: Iterable[str]) -> dict[str, float | None]:
    """On-demand USD/hour per type from GetProducts (paginated); None when the API has no such product.

    Raises SourceError when one type matches more than one distinct price (the filters no longer
    single out one product, so picking one would be a guess).
    """
    out: dict[str, float | None] = {}
    for itype in instance_types:
        pages = pricing_client.get_paginator("get_products").paginate(
            ServiceCode="AmazonEC2", Filters=ondemand_filters(region, itype), FormatVersion="aws_v1")
        prices: set[float] = set()

        def run():
            for page in pages:
                for raw in page.get("PriceList", []):
                    item = json.loads(raw) if isinstance(raw, str) else raw
                    attrs = item.get("product", {}).get("attributes", {})
                    if attrs.get("instanceType", itype) != itype:
                        continue
                    prices.update(_usd_prices(item, "hr"))

        _call("GetProducts", region, run)
        if len(prices) > 1:
            shown = ", ".join(f"{p:g}" for p in sorted(prices))
            raise SourceError(f"AWS Price List: {itype} in {region} has {len(prices)} distinct on-demand Linux prices "
                              f"({shown} USD/hour); refusing to pick one")
        out[itype] = prices.pop() if prices else None
    return out


def fetch_inter_az_price(pricing_client, region: str) -> float | None:
    """USD per GB for IntraRegion transfer in ``region`` (AWSDataTransfer); None unless exactly one price."""
    filters = [{"Type": "TERM_MATCH", "Field": "transferType", "Value": "IntraRegion"},
               {"Type": "TERM_MATCH", "Field": "fromRegionCode", "Value": region},
               {"Type": "TERM_MATCH", "Field": "toRegionCode", "Value": region}]
    pages = pricing_client.get_paginator("get_products").paginate(
        ServiceCode="AWSDataTransfer", Filters=filters, FormatVersion="aws_v1")
    prices: set[float] = set()

    def run():
        for page in pages:
            for raw in page.get("PriceList", []):
                prices.update(p for p in _usd_prices(json.loads(raw) if isinstance(raw, str) else raw, "gb") if p > 0)

    _call("GetProducts", region, run)
    return prices.pop() if len(prices) == 1 else None


def fetch_spot_prices(ec2_client, instance_types: Iterable[str], now: dt.datetime | None = None) -> dict[str, dict[str, float]]:
    """Current Linux/UNIX spot price, USD/hour, per type and availability zone: {type: {zone: price}}.

    StartTime=now makes the API return the price in effect now (the last change) per type and zone.
    """
    types = sorted(set(instance_types))
    out: dict[str, dict[str, float]] = {t: {} for t in types}
    if not types:
        return out
    now = now or dt.datetime.now(dt.timezone.utc)
    latest: dict[tuple[str, str], tuple[dt.datetime, float]] = {}
    region = ec2_client.meta.region_name

    def run():
        pages = ec2_client.get_paginator("describe_spot_price_history").paginate(
            InstanceTypes=types, ProductDescriptions=["Linux/UNIX"], StartTime=now)
        for page in pages:
            for rec in page.get("SpotPriceHistory", []):
                key = (rec["InstanceType"], rec["AvailabilityZone"])
                stamp = rec.get("Timestamp") or now
                if key not in latest or stamp > latest[key][0]:
                    latest[key] = (stamp, float(rec["SpotPrice"]))

    _call("DescribeSpotPriceHistory", region, run)
    for (itype, zone), (_, price) in latest.items():
        if itype in out:
            out[itype][zone] = price
    return out


def fetch_instance_shapes(ec2_client, instance_types: Iterable[str]) -> dict[str, tuple[float, float, float] | None]:
    """(vCPUs, memory GiB, GPUs) per type from DescribeInstanceTypes; None for types EC2 does not offer here."""
    from botocore.exceptions import ClientError

    types = sorted(set(instance_types))
    out: dict[str, tuple[float, float, float] | None] = {t: None for t in types}
    region = ec2_client.meta.region_name

    def describe(chunk: list[str]):
        for page in ec2_client.get_paginator("describe_instance_types").paginate(InstanceTypes=chunk):
            for it in page.get("InstanceTypes", []):
                gpus = float(sum(g.get("Count", 0) for g in (it.get("GpuInfo") or {}).get("Gpus", [])))
                out[it["InstanceType"]] = (float(it["VCpuInfo"]["DefaultVCpus"]), it["MemoryInfo"]["SizeInMiB"] / 1024.0, gpus)

    for i in range(0, len(types), _DESCRIBE_TYPES_CHUNK):
        chunk = types[i:i + _DESCRIBE_TYPES_CHUNK]
        try:
            describe(chunk)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "InvalidInstanceType":
                raise AwsUnavailable(_describe_client_error(exc, "DescribeInstanceTypes", region)) from None
            # One unknown name fails the whole request: ask again one by one to keep the known ones.
            for itype in chunk:
                try:
                    describe([itype])
                except ClientError as inner:
                    if inner.response.get("Error", {}).get("Code") != "InvalidInstanceType":
                        raise AwsUnavailable(_describe_client_error(inner, "DescribeInstanceTypes", region)) from None
        except Exception as exc:  # BotoCoreError (network, credentials)
            from botocore.exceptions import BotoCoreError

            if isinstance(exc, BotoCoreError):
                raise _unavailable(exc, "DescribeInstanceTypes", region) from None
            raise
    return out


NO_CREDENTIALS = ("pricing.source = \"aws\" but no AWS credentials were found "
                   "(environment, shared config/credentials files, SSO, instance or pod role)")


def require_credentials(config, session=None) -> None:
    """Fail fast (before a long collection) when pricing.source = "aws" and AWS cannot answer: no
    credentials, or the Price List endpoint does not answer one cheap GetProducts call (1 attempt,
    within the connect and read timeouts) or denies it."""
    if config.pricing.source != "aws":
        return
    import boto3

    session = session or boto3.Session()
    if not has_credentials(session):
        raise SourceError(NO_CREDENTIALS)
    region = config.pricing.region or FALLBACK_REGION
    endpoint = pricing_endpoint_region(region, session)
    if endpoint is None:
        return  # no Price List endpoint in this partition: the catalogue is used, nothing to check
    client = session.client("pricing", region_name=endpoint, config=client_config(1, config.pricing.connect_timeout, config.pricing.read_timeout))
    filters = ondemand_filters(region, "m5.large")
    probe = lambda: client.get_products(ServiceCode="AmazonEC2", Filters=filters, FormatVersion="aws_v1", MaxResults=1)  # noqa: E731
    try:
        within(config.pricing.connect_timeout + config.pricing.read_timeout + 5, lambda: _call("GetProducts", endpoint, probe),
               what=f"AWS GetProducts ({endpoint})")
    except AwsUnavailable as exc:
        raise SourceError(f"pricing.source = \"aws\": checked before any query: {exc}") from None


def within(seconds: float, fn: Callable[[], Any], *, what: str) -> Any:
    """``fn()``, or AwsUnavailable(unreachable) when it has not returned after ``seconds``.

    botocore bounds each attempt, not a whole lookup made of many calls and retries; the work runs in a
    daemon thread that is abandoned at the deadline (its late answers are not used)."""
    box: dict[str, Any] = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=run, daemon=True, name="rightsize-aws")
    worker.start()
    worker.join(max(seconds, 0.0))
    if worker.is_alive():
        raise AwsUnavailable(f"{what}: no answer within {seconds:g} s", unreachable=True)
    if "error" in box:
        raise box["error"]
    return box["value"]


def has_credentials(session) -> bool:
    try:
        return session.get_credentials() is not None
    except Exception:  # a broken profile counts as no usable credentials
        return False
