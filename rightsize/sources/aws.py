"""Prices for the snapshot: live from AWS (boto3) or from the bundled offline catalogue.

Live (pricing.source = "aws", or "auto" when credentials are found):
- on-demand Linux prices from the Price List Query API (``pricing`` client, which has endpoints in a
  few regions only: ap-* regions use ap-south-1, eu-* use eu-central-1, the rest of the partition
  us-east-1; the China partition cn-northwest-1; GovCloud has none, so it uses the catalogue, which
  covers both GovCloud regions);
- current spot prices per availability zone from ``ec2.describe_spot_price_history``;
- vCPU and memory from ``ec2.describe_instance_types``;
- the inter-AZ transfer price from AWSDataTransfer (IntraRegion), else the documented USD 0.01/GB
  each way.
Only the instance types the snapshot's nodes use are looked up, and every answer is cached on disk
(pricing.cache_dir, pricing.cache_ttl) so a weekly run makes a handful of calls.

Offline: list prices of the catalogue (price_catalogue.py); spot = on-demand x (1 - Spot Advisor
savings %), region-wide, marked "offline-estimate".

The API calls are price_list.py's, the disk cache price_cache.py's; this module decides what to ask,
falls back per failed lookup and builds the prices table.
"""
from __future__ import annotations

import datetime as dt
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from ..aws_client import client_config
from ..errors import SourceError
from ..schema import TABLES
from ..snapshot import conform, empty_table
from ..gpu_catalogue import gpu_alternatives, gpu_reference_types
from .price_cache import PriceCache
from .price_catalogue import FALLBACK_REGION, ONDEMAND_PRICE_DATE, SPOT_ADVISOR_DATE, load_catalogue
from .price_list import (NO_CREDENTIALS, AwsUnavailable, fetch_instance_shapes, fetch_inter_az_price, fetch_ondemand_prices,
                         fetch_spot_prices, has_credentials, pricing_endpoint_region, within)

#: AWS's documented inter-AZ price, USD per GB in each direction.
DOCUMENTED_INTER_AZ_USD_PER_GB = 0.01


# --- live collection for one region -------------------------------------------------------------------


@dataclass
class _Live:
    ondemand: dict[str, float | None] = field(default_factory=dict)
    spot: dict[str, dict[str, float]] = field(default_factory=dict)
    shapes: dict[str, tuple[float, ...] | None] = field(default_factory=dict)
    inter_az: float | None = None
    failures: dict[str, str] = field(default_factory=dict)  # component -> message
    calls: int = 0
    fetched_at: float | None = None


class _RegionLookup:
    """The live lookups of one region: clients made on first use, answers from the cache where fresh.
    Once AWS cannot be reached, the other lookups are not tried (each would wait out its retries)."""

    def __init__(self, region: str, *, session, clients: dict, cache: PriceCache | None, max_attempts: int,
                 strict: bool, pricing):
        self.region, self.session, self.clients, self.cache, self.strict = region, session, clients, cache, strict
        self.conf = client_config(max_attempts, pricing.connect_timeout, pricing.read_timeout)
        self.data = cache.load(region) if cache else {}
        self.made: dict[str, Any] = {}
        self.unreachable: list[str] = []
        self.result = _Live()

    def client(self, name: str):
        if name in self.clients:
            return self.clients[name]
        if name not in self.made:
            if name == "pricing":
                endpoint = pricing_endpoint_region(self.region, self.session)
                self.made[name] = self.session.client("pricing", region_name=endpoint, config=self.conf)
            else:
                self.made[name] = self.session.client("ec2", region_name=self.region, config=self.conf)
        return self.made[name]

    def component(self, kind: str, names: list[str], fetch: Callable[[list[str]], dict]) -> dict:
        """The answers for ``names``: cached where fresh, the rest fetched in one lookup (and cached)."""
        cache, result = self.cache, self.result
        values: dict = {}
        missing = []
        for n in names:
            ok, v = cache.fresh(self.data, kind, n) if cache else (False, None)
            if ok:
                values[n] = v
            else:
                missing.append(n)
        if missing and self.unreachable:
            result.failures[kind] = self.unreachable[0]
            return values
        if missing:
            try:
                got = fetch(missing)
            except AwsUnavailable as exc:
                if self.strict:
                    raise
                result.failures[kind] = str(exc)
                if exc.unreachable:
                    self.unreachable.append(str(exc))
                return values
            result.calls += 1
            for n in missing:
                v = got.get(n)
                values[n] = v
                if cache:
                    cache.store(self.data, kind, n, list(v) if isinstance(v, tuple) else v)
        return values


def _live_region(region: str, types: list[str], *, session, clients: dict, cache: PriceCache | None,
                 max_attempts: int, strict: bool, pricing) -> _Live:
    """Live prices of ``types`` in ``region``, from the cache where fresh. With ``strict`` a failure raises;
    otherwise it is recorded per component (ondemand, spot, shapes, inter_az) for an offline fallback."""
    look = _RegionLookup(region, session=session, clients=clients, cache=cache, max_attempts=max_attempts,
                         strict=strict, pricing=pricing)
    result = look.result
    pricing_ok = bool(clients.get("pricing")) or pricing_endpoint_region(region, session) is not None
    if pricing_ok:
        result.ondemand = look.component("ondemand", types, lambda miss: fetch_ondemand_prices(look.client("pricing"), region, miss))
        if "ondemand" not in result.failures:  # a denied Price List would only be denied again
            inter = look.component("inter_az", ["IntraRegion"],
                                   lambda _: {"IntraRegion": fetch_inter_az_price(look.client("pricing"), region)})
            result.inter_az = inter.get("IntraRegion")
    else:
        result.failures["ondemand"] = (f"the AWS partition of {region} has no Price List Query API endpoint; "
                                       f"on-demand prices come from the bundled catalogue")
    result.spot = look.component("spot", types, lambda miss: fetch_spot_prices(look.client("ec2"), miss))
    shapes = look.component("shapes", types, lambda miss: fetch_instance_shapes(look.client("ec2"), miss))
    result.shapes = {t: (tuple(v) if v else None) for t, v in shapes.items()}
    if cache:
        err = cache.save(region, look.data)
        if err:
            result.failures["cache"] = err
        result.fetched_at = cache.oldest(look.data)
    return result


# --- building the prices table ------------------------------------------------------------------------

_SHAPE = ("instance_type", "vcpu", "memory_gib", "gpus")


def _types_by_region(nodes: pd.DataFrame, config_region: str, warn) -> dict[str, list[str]]:
    if nodes.empty:
        return {}
    itypes = nodes["instance_type"].fillna("").astype(str)
    if config_region:
        regions = pd.Series(config_region, index=nodes.index)
    else:
        regions = nodes["region"].fillna("").astype(str)
        known = regions[regions != ""]
        if (regions == "").any():
            fill = known.mode().iloc[0] if not known.empty else FALLBACK_REGION
            names = ", ".join(nodes.loc[regions == "", "node"].astype(str).head(5))
            warn("region_unknown", f"nodes without a region label priced in {fill} ({names})", "prices")
            regions = regions.where(regions != "", fill)
    frame = pd.DataFrame({"region": regions, "instance_type": itypes})
    frame = frame[frame["instance_type"] != ""]
    return {r: sorted(g["instance_type"].unique()) for r, g in frame.groupby("region")}


def _with_gpu_references(types_by_region: dict[str, list[str]], nodes: pd.DataFrame, pricing) -> dict[str, list[str]]:
    """The types to price per region; where some are GPU types (the catalogue gives them GPUs, or their
    nodes advertise some), also the smallest GPU type of each family rightsize may suggest moving to (a
    "smaller GPU", analysis/gpu_fit.py), and every GPU type's general-purpose reference type (its unit
    prices split the GPU nodes' price, analysis/price_split.py)."""
    shapes = load_catalogue().shapes
    cat = shapes.set_index("instance_type")["gpus"]
    advertised = set(nodes.loc[nodes.get("allocatable_gpus", pd.Series(0.0, index=nodes.index)).fillna(0) > 0, "instance_type"])
    out = {}
    for region, types in types_by_region.items():
        gpu_types = [t for t in types if cat.get(t, 0) > 0 or t in advertised]
        if gpu_types:
            gpu_types = sorted(set(gpu_types) | set(gpu_alternatives(shapes)))
        series = pd.Series(gpu_types, dtype=object)
        refs = gpu_reference_types(series, pricing.gpu_reference_types)["reference_type"] if len(series) else []
        out[region] = sorted(set(types) | set(gpu_types) | set(refs))
    return out


def _advisor_for(region: str, types: list[str]) -> pd.DataFrame:
    adv = load_catalogue().advisor
    return adv[(adv["region"] == region) & adv["instance_type"].isin(types)][
        ["instance_type", "spot_savings_percent", "interruption_bucket"]]


def _catalogue_rows(region: str, types: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(on-demand rows, estimated spot rows) for ``region`` from the catalogue."""
    cat = load_catalogue()
    price_region = cat.price_region(region)
    od = cat.ondemand[(cat.ondemand["region"] == price_region) & cat.ondemand["instance_type"].isin(types)]
    od = od[["instance_type", "usd_per_hour"]].merge(cat.shapes[list(_SHAPE)], on="instance_type", how="left")
    od = od.merge(_advisor_for(region, types), on="instance_type", how="left")
    od["region"], od["zone"], od["capacity_type"], od["price_source"] = region, "", "on-demand", "offline"
    spot = od[od["spot_savings_percent"].notna()].copy()
    spot["usd_per_hour"] = spot["usd_per_hour"] * (1 - spot["spot_savings_percent"] / 100.0)
    spot["capacity_type"], spot["price_source"] = "spot", "offline-estimate"
    return od, spot


def _live_rows(region: str, types: list[str], live: _Live) -> tuple[pd.DataFrame, pd.DataFrame]:
    cat = load_catalogue()
    # a cached answer of an older release has no GPU count: the catalogue's fills it
    shapes = pd.DataFrame([(t, *((live.shapes.get(t) or ()) + (math.nan,) * 3)[:3]) for t in types], columns=list(_SHAPE))
    if "shapes" in live.failures or shapes[list(_SHAPE[1:])].isna().any(axis=None):
        # EC2 did not answer for some types: the catalogue's shapes fill the gaps.
        backup = cat.shapes.set_index("instance_type")
        for col in _SHAPE[1:]:
            shapes[col] = shapes[col].fillna(shapes["instance_type"].map(backup[col]))
    adv = _advisor_for(region, types)
    if "ondemand" in live.failures:
        od, est = _catalogue_rows(region, types)
        od = od.drop(columns=list(_SHAPE[1:])).merge(shapes, on="instance_type", how="left")
    else:
        od = pd.DataFrame([(t, live.ondemand.get(t)) for t in types], columns=["instance_type", "usd_per_hour"])
        od = od[od["usd_per_hour"].notna()].merge(shapes, on="instance_type", how="left").merge(adv, on="instance_type", how="left")
        od["region"], od["zone"], od["capacity_type"], od["price_source"] = region, "", "on-demand", "aws"
        gaps = [t for t in types if t not in set(od["instance_type"])]
        if gaps:
            # The Price List has no product for these: the catalogue's list price is better than none.
            backup, _ = _catalogue_rows(region, gaps)
            od = pd.concat([od, backup], ignore_index=True) if not backup.empty else od
        est = None
    if "spot" in live.failures:
        if est is None:
            _, est = _catalogue_rows(region, types)
            # Estimate from the live on-demand price where there is one.
            est = est.drop(columns=["usd_per_hour"]).merge(od[["instance_type", "usd_per_hour"]], on="instance_type", how="inner")
            est["usd_per_hour"] = est["usd_per_hour"] * (1 - est["spot_savings_percent"] / 100.0)
        spot = est.drop(columns=list(_SHAPE[1:])).merge(shapes, on="instance_type", how="left")
    else:
        spot = pd.DataFrame([(t, z, p) for t in types for z, p in (live.spot.get(t) or {}).items()],
                            columns=["instance_type", "zone", "usd_per_hour"])
        spot = spot.merge(shapes, on="instance_type", how="left").merge(adv, on="instance_type", how="left")
        spot["region"], spot["capacity_type"], spot["price_source"] = region, "spot", "aws"
    return od, spot


def _apply_overrides(table: pd.DataFrame, pricing, types_by_region: dict[str, list[str]]) -> tuple[pd.DataFrame, list[str]]:
    """Explicit per-type prices win (price_source "override"); discounts scale every other price."""
    notes: list[str] = []
    cat = load_catalogue()
    out = table.copy()
    for cap, prices, discount in (("on-demand", pricing.instance_prices, pricing.on_demand_discount),
                                  ("spot", pricing.spot_instance_prices, pricing.spot_discount)):
        rows = out["capacity_type"] == cap
        overridden = rows & out["instance_type"].isin(list(prices))
        if discount:
            out.loc[rows & ~overridden, "usd_per_hour"] *= (1 - discount)
            notes.append(f"{cap} prices include the configured discount of {discount:.0%}")
        if not prices:
            continue
        out.loc[overridden, "usd_per_hour"] = out.loc[overridden, "instance_type"].map(prices)
        out.loc[overridden, "price_source"] = "override"
        extra = []
        for region, types in types_by_region.items():
            have = set(out.loc[(out["capacity_type"] == cap) & (out["region"] == region), "instance_type"])
            extra += [(t, region, prices[t]) for t in types if t in prices and t not in have]
        if extra:
            add = pd.DataFrame(extra, columns=["instance_type", "region", "usd_per_hour"])
            add = add.merge(cat.shapes[list(_SHAPE)], on="instance_type", how="left")
            add["zone"], add["capacity_type"], add["price_source"] = "", cap, "override"
            out = pd.concat([out, add], ignore_index=True)
        notes.append(f"explicit {cap} prices from the config for {', '.join(sorted(prices))}")
    return out, notes


def collect_prices(config, snapshot, *, offline: bool = False, session=None, clients: dict | None = None,
                   progress: Callable[[str], None] | None = None) -> None:
    """Fill snapshot.tables["prices"] and snapshot.meta["pricing"] for the instance types of the nodes.

    ``offline`` (or pricing.source = "offline") uses the bundled catalogue. "auto" goes live when AWS
    credentials are found and falls back to the catalogue per failed API with a warning; "aws" turns
    every failure into SourceError. ``session`` (a boto3 Session) and ``clients`` ({"pricing": ...,
    "ec2": ...}, ready clients) let callers and tests choose the AWS endpoints. The live lookup of all
    regions together gets ``pricing.deadline``; ``progress`` gets one line per region and per fallback.
    """
    pricing = config.pricing
    say = progress or (lambda _msg: None)
    deadline_at = time.monotonic() + pricing.deadline
    nodes = snapshot.tables["nodes"]
    types_by_region = _with_gpu_references(_types_by_region(nodes, pricing.region, snapshot.warn), nodes, pricing)
    strict = pricing.source == "aws" and not offline
    clients = dict(clients or {})
    mode, session = _price_mode(pricing, offline, session, clients, snapshot)
    frames, sources, notes, inter_az, fetched = [], set(), [], None, []
    cat = load_catalogue()
    for region, types in types_by_region.items():
        if mode == "offline":
            od, spot = _catalogue_rows(region, types)
            sources.add("offline")
        else:
            say(f"prices: asking AWS for {len(types)} instance types in {region} "
                f"(gives up after {pricing.deadline:g} s in all)")
            live = _live_within(deadline_at, region, types, session=session, clients=clients, cache=_cache(pricing),
                                max_attempts=pricing.max_attempts, strict=strict, pricing=pricing)
            _warn_live_failures(snapshot, region, live, say)
            od, spot = _live_rows(region, types, live)
            inter_az = live.inter_az if inter_az is None else inter_az
            fetched += [live.fetched_at] if live.fetched_at else []
            notes.append(f"{region}: {live.calls} AWS lookups made, the rest from the cache")
        sources.update(od["price_source"].unique())
        sources.update(spot["price_source"].unique())
        frames += [f for f in (od, spot) if not f.empty]
        if ("offline" in set(od["price_source"])) and region not in cat.regions:
            notes.append(f"the offline catalogue has no prices for {region}: us-east-1 list prices are used for it")
            snapshot.warn("prices_region_fallback",
                          f"no offline prices for {region}; priced at {FALLBACK_REGION} list prices", region)

    table = pd.concat(frames, ignore_index=True) if frames else empty_table("prices")
    table, override_notes = _apply_overrides(table, pricing, types_by_region)
    notes += override_notes
    _warn_unknown(snapshot, nodes, table, types_by_region)
    columns = [c.name for c in TABLES["prices"]]
    table = conform("prices", table.reindex(columns=columns))
    snapshot.tables["prices"] = table.sort_values(["region", "instance_type", "capacity_type", "zone"]).reset_index(drop=True)
    snapshot.meta["pricing"] = _pricing_meta(pricing, sources, notes, inter_az, fetched, sorted(types_by_region))
    snapshot.meta.setdefault("sources", {})["prices"] = snapshot.meta["pricing"]["source"]


def _price_mode(pricing, offline: bool, session, clients: dict, snapshot):
    """("offline" or "aws", the boto3 session for "aws"): offline when asked, or in auto mode without credentials."""
    if offline or pricing.source == "offline":
        return "offline", session
    import boto3

    session = session or boto3.Session()
    if clients:  # the caller's clients; the session serves any other
        return "aws", session
    if not has_credentials(session):
        if pricing.source == "aws":
            raise SourceError(NO_CREDENTIALS)
        snapshot.warn("prices_offline", "no AWS credentials found: using the bundled offline list prices", "prices")
        return "offline", session
    return "aws", session


def _cache(pricing) -> "PriceCache | None":
    if pricing.cache_dir and pricing.cache_ttl > 0:
        return PriceCache(Path(os.path.expanduser(pricing.cache_dir)), pricing.cache_ttl)
    return None


def _warn_live_failures(snapshot, region: str, live: "_Live", say: Callable[[str], None]) -> None:
    """One warning per live lookup that failed, naming what is used instead."""
    if live.failures.keys() - {"cache", "inter_az"}:
        say(f"prices: {region}: AWS lookups failed, bundled offline prices used for "
            f"{', '.join(sorted(live.failures.keys() - {'cache', 'inter_az'}))}")
    fallback = {"cache": "", "inter_az": "; the documented inter-AZ price is used instead"}
    for kind, message in live.failures.items():
        snapshot.warn(f"prices_{kind}_offline" if kind != "cache" else "price_cache",
                      message + fallback.get(kind, "; the bundled offline data is used instead"), "prices")


def _pricing_meta(pricing, sources: set, notes: list[str], inter_az: float | None, fetched: list[float],
                  regions: list[str]) -> dict:
    """meta.json "pricing": source, date, region(s), the inter-AZ price and the notes that say where prices came from."""
    default_inter_az = type(pricing)().inter_az_usd_per_gb
    if pricing.inter_az_usd_per_gb != default_inter_az:
        inter_az_value, inter_note = pricing.inter_az_usd_per_gb, "inter-AZ price from the config"
    elif inter_az is not None:
        inter_az_value, inter_note = inter_az, "inter-AZ price from the AWS Price List (AWSDataTransfer, IntraRegion)"
    else:
        inter_az_value = DOCUMENTED_INTER_AZ_USD_PER_GB
        inter_note = "inter-AZ price is AWS's documented USD 0.01/GB in each direction"
    notes = notes + [inter_note]
    live_used = "aws" in sources
    if "offline" in sources or "offline-estimate" in sources or not live_used:
        notes.insert(0, f"offline prices are AWS list prices as of {ONDEMAND_PRICE_DATE} (no discounts, Savings Plans or RIs)")
    if "offline-estimate" in sources:
        notes.append(f"spot prices are estimates: on-demand x (1 - Spot Instance Advisor savings), advisor data of about {SPOT_ADVISOR_DATE}")
    date = ONDEMAND_PRICE_DATE
    if live_used:
        when = dt.datetime.fromtimestamp(min(fetched), dt.timezone.utc) if fetched else dt.datetime.now(dt.timezone.utc)
        date = when.date().isoformat()
        notes.insert(0, f"live AWS prices as of {date} (the oldest answer used, cached answers included)")
    return {
        "source": "aws" if live_used and not (sources & {"offline", "offline-estimate"}) else ("aws+offline" if live_used else "offline"),
        "date": date,
        "region": pricing.region or (regions[0] if len(regions) == 1 else ",".join(regions)),
        "regions": regions,
        "inter_az_usd_per_gb": float(inter_az_value),
        "notes": notes,
    }


def _live_within(deadline_at: float, region: str, types: list[str], *, strict: bool, **kwargs) -> _Live:
    """_live_region bounded by the lookup's deadline; past it every component falls back (or, strict, fails)."""
    left = deadline_at - time.monotonic()
    try:
        if left <= 0:
            raise AwsUnavailable(f"AWS price lookup ({region}): deadline passed before this region", unreachable=True)
        return within(left, lambda: _live_region(region, types, strict=strict, **kwargs), what=f"AWS price lookup ({region})")
    except AwsUnavailable as exc:
        if strict:
            raise
        message = f"{exc} (pricing.deadline)"
        return _Live(failures={"ondemand": message, "spot": message, "shapes": message})


def _warn_unknown(snapshot, nodes: pd.DataFrame, table: pd.DataFrame, types_by_region: dict[str, list[str]]) -> None:
    for region, types in types_by_region.items():
        have = set(table.loc[(table["region"] == region) & (table["capacity_type"] == "on-demand")
                             & table["usd_per_hour"].notna(), "instance_type"])
        for itype in types:
            if itype in have:
                continue
            names = sorted(nodes.loc[nodes["instance_type"] == itype, "node"].astype(str))
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            if not names:  # a GPU type's reference: analysis falls back to the catalogue's list prices
                snapshot.warn("price_unknown", f"no price for {itype} in {region}, whose unit prices split the GPU nodes' "
                              "prices: the bundled catalogue's list prices are used for that split", itype)
                continue
            snapshot.warn("price_unknown", f"no price for instance type {itype} in {region}: the cost of its nodes "
                          f"({shown}) is unknown; set pricing.instance_prices to price it", itype)
