"""The bundled offline price catalogue (rightsize/data/, see SOURCES.md there for origin and dates).

Three public data sets, loaded once per process and cached:

- ``ondemand_prices.csv``: Linux, shared tenancy, on-demand list prices in USD/hour. Only us-east-1 and
  the two GovCloud regions are covered; other regions are priced at us-east-1 list prices by the caller.
- ``instance_types.csv``: vCPUs and memory (GiB) per instance type.
- ``spot-advisor-data.json``: AWS's Spot Instance Advisor feed: per region and type, the average spot
  savings against on-demand (percent) and the monthly interruption-frequency bucket.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources

import pandas as pd

from ..errors import SourceError
from ..snapshot import Snapshot

#: Date of the on-demand list prices (karpenter's generated tables, see SOURCES.md).
ONDEMAND_PRICE_DATE = "2026-07-20"
#: Approximate date of the Spot Instance Advisor copy (the feed carries no timestamp).
SPOT_ADVISOR_DATE = "2025-06-28"
#: Region whose list prices stand in for regions the catalogue does not cover.
FALLBACK_REGION = "us-east-1"


@dataclass(frozen=True)
class Catalogue:
    """The offline data as DataFrames.

    ondemand: region, instance_type, usd_per_hour (USD/hour).
    shapes: instance_type, vcpu, memory_gib (GiB), arch, gpus.
    advisor: region, instance_type, spot_savings_percent (percent), interruption_bucket ('<5%', ...).
    """

    ondemand: pd.DataFrame
    shapes: pd.DataFrame
    advisor: pd.DataFrame

    @property
    def regions(self) -> frozenset[str]:
        """Regions with on-demand list prices."""
        return frozenset(self.ondemand["region"].unique())

    def price_region(self, region: str) -> str:
        """The catalogue region whose list prices are used for ``region`` (itself, or us-east-1)."""
        return region if region in self.regions else FALLBACK_REGION


def _data_file(name: str):
    return resources.files("rightsize").joinpath("data", name)


@functools.cache
def load_catalogue() -> Catalogue:
    """Load and cache the bundled catalogue; SourceError names a missing or broken file."""
    try:
        with _data_file("ondemand_prices.csv").open("r", encoding="utf-8") as f:
            ondemand = pd.read_csv(f, dtype={"region": str, "instance_type": str, "usd_per_hour": float})
        with _data_file("instance_types.csv").open("r", encoding="utf-8") as f:
            shapes = pd.read_csv(f, dtype={"instance_type": str, "vcpu": float, "memory_gib": float, "arch": str, "gpus": float})
        with _data_file("spot-advisor-data.json").open("r", encoding="utf-8") as f:
            raw = json.load(f)
    except (OSError, ValueError) as exc:
        raise SourceError(f"rightsize/data: bundled price catalogue unreadable: {exc}") from None
    try:
        labels = {r["index"]: r["label"] for r in raw["ranges"]}
        rows = [
            (region, itype, float(entry["s"]), labels.get(entry["r"], ""))
            for region, by_os in raw["spot_advisor"].items()
            for itype, entry in by_os.get("Linux", {}).items()
        ]
    except (KeyError, TypeError) as exc:
        raise SourceError(f"rightsize/data/spot-advisor-data.json: unexpected structure ({exc!r})") from None
    advisor = pd.DataFrame(rows, columns=["region", "instance_type", "spot_savings_percent", "interruption_bucket"])
    return Catalogue(ondemand=ondemand, shapes=shapes, advisor=advisor)


def instance_candidates(snapshot: Snapshot) -> pd.DataFrame:
    """List prices and shapes of every instance type of the catalogue (region, instance_type, vcpu,
    memory_gib, gpus, usd_per_hour) for every region of the snapshot's nodes and prices, for binpack's best type per
    family; regions the catalogue does not price use us-east-1's list prices (as pricing does)."""
    catalogue = load_catalogue()
    candidates = catalogue.ondemand.merge(catalogue.shapes[["instance_type", "vcpu", "memory_gib", "gpus"]], on="instance_type")
    regions = set(snapshot.tables["nodes"]["region"].fillna("").astype(str)) | set(
        (snapshot.meta.get("pricing") or {}).get("regions") or [])
    frames = [candidates[candidates["region"] == catalogue.price_region(r)].assign(region=r) for r in regions]
    return pd.concat(frames, ignore_index=True) if frames else candidates.iloc[0:0]
