"""What a GPU container's measured use fits: the facts the GPU rules (rules/gpu.py) read, per container at once.

- ``gpu_context``: per container, the GPU it runs on (the model of the nodes its pods ran on most, from
  their instance family, else GPU feature discovery's label, else DCGM's modelName), that GPU's memory
  (DCGM's frame buffer size where measured, else the catalogue's), how it can be shared, its on-demand
  price per GPU-hour, whether its nodes time-slice it, and the MIG resources nodes with that model offer.
- ``mig_fit``: the smallest MIG profile of that model holding a compute and a memory need.
- ``time_slices``: how many pods one GPU holds when each needs a given compute and memory share.
- ``smaller_gpus``: the cheaper GPU families whose memory holds a need, priced per GPU-hour from the
  snapshot's prices (collect prices one type of each family a cluster with GPUs could move to).

Compute needs are engine-active shares (0-1), memory needs bytes. A MIG profile's memory is the nominal
size of its name, in GB (10^9 bytes): slightly more than a slice's usable memory, which the memory margin
covers. Pure functions over the snapshot's tables: no I/O.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..gpu_catalogue import gpu_families, instance_family, mig_profiles
from ..gpu_resources import mig_profile, mig_resource
from ..quantity import GIB
from ..schema import WORKLOAD_KEY
from .cost import node_unit_prices
from .gpu_cost import MIG_SLICES, gpu_models, node_devices
from .price_split import type_shares

GB = 1e9


def gpu_context(snapshot, config, frame: pd.DataFrame) -> pd.DataFrame:
    """Per row of ``frame`` (WORKLOAD_KEY + gpu_model from DCGM + gpu_memory_total_bytes): gpu_family,
    gpu_model_name, gpu_memory_bytes, sharing, usd_per_gpu_hour_on_demand, time_sliced, mig_offered
    (the MIG resources nodes of that model offer, a frozenset). Aligned with ``frame``'s index."""
    keys = list(WORKLOAD_KEY)
    nodes = snapshot.tables["nodes"]
    devices = _devices(snapshot, config)
    pl = snapshot.tables["placement"][keys + ["node", "pod_hours"]].merge(devices, on=["cluster", "node"], how="inner")
    main = pl.sort_values("pod_hours").groupby(keys, as_index=False).last()
    got = frame[keys].merge(main, on=keys, how="left")
    got.index = frame.index
    dcgm = gpu_models(pd.Series("", index=frame.index), frame["gpu_model"].fillna("").astype(str))
    model = got["gpu_model"].fillna("").astype(str).where(lambda m: m != "", dcgm)
    table = gpu_families().drop_duplicates("gpu_model").set_index("gpu_model")
    listed = model.map(table["gpu_memory_gib"]) * GIB
    out = pd.DataFrame(index=frame.index)
    out["gpu_family"] = instance_family(got["instance_type"].fillna(""))
    out["gpu_model_name"] = model
    out["gpu_memory_bytes"] = frame["gpu_memory_total_bytes"].astype(float).fillna(listed)
    out["sharing"] = model.map(table["sharing"]).fillna("").astype(str)
    out["usd_per_gpu_hour_on_demand"] = got["usd_per_gpu_hour_on_demand"].astype(float)
    out["time_sliced"] = got["whole_device_share"].fillna(1.0).astype(float) < 1.0
    offered = _mig_offered(nodes, devices)
    out["mig_offered"] = [offered.get((c, m), frozenset()) for c, m in zip(frame["cluster"], model)]
    return out


def _devices(snapshot, config) -> pd.DataFrame:
    return node_devices(snapshot.tables["nodes"], node_unit_prices(snapshot, config))


def _mig_offered(nodes: pd.DataFrame, devices: pd.DataFrame) -> dict[tuple[str, str], frozenset]:
    """(cluster, GPU model) -> the MIG resources some node of that model advertises in its allocatable."""
    out: dict[tuple[str, str], set] = {}
    for cluster, model, res in zip(devices["cluster"], devices["gpu_model"], devices["resources"]):
        out.setdefault((cluster, model), set()).update(r for r, n in res.items() if mig_profile(r) and n > 0)
    return {k: frozenset(v) for k, v in out.items()}


def mig_fit(models: pd.Series, compute: np.ndarray, memory: np.ndarray) -> pd.DataFrame:
    """Per row, the MIG profile of its GPU model that holds ``compute`` (share of the GPU's engine, against
    the profile's SM slices / 7) and ``memory`` (bytes, against the profile's nominal GB) at the smallest
    share of the GPU (max of its SM and memory fractions): columns profile ('' none fits or no MIG),
    resource (nvidia.com/mig-...), share."""
    table = mig_profiles().assign(share=lambda t: np.maximum(t["sm_slices"] / MIG_SLICES, t["memory_eighths"] / 8.0))
    table = table.sort_values(["share", "sm_slices", "memory_gb"])
    out = pd.DataFrame({"profile": pd.Series("", index=models.index, dtype=object),
                        "resource": pd.Series("", index=models.index, dtype=object),
                        "share": pd.Series(np.nan, index=models.index, dtype=float)})
    for model, rows in table.groupby("gpu_model", sort=False):
        mine = (models == model).to_numpy()
        if not mine.any():
            continue
        fits = ((rows["sm_slices"].to_numpy()[None, :] / MIG_SLICES >= compute[mine, None])
                & (rows["memory_gb"].to_numpy()[None, :] * GB >= memory[mine, None]))
        first = np.where(fits.any(axis=1), fits.argmax(axis=1), -1)
        chosen = rows.iloc[np.maximum(first, 0)]
        idx = models.index[mine]
        out.loc[idx, "profile"] = np.where(first >= 0, chosen["profile"].to_numpy(), "")
        out.loc[idx, "share"] = np.where(first >= 0, chosen["share"].to_numpy(), np.nan)
    out["resource"] = pd.Series([mig_resource(p) if p else "" for p in out["profile"]], index=out.index, dtype=object)
    return out


def time_slices(compute: np.ndarray, memory: np.ndarray, gpu_memory: np.ndarray, most: int) -> np.ndarray:
    """Pods one GPU holds under time-slicing or MPS when each needs ``compute`` of its engine and ``memory``
    bytes of its frame buffer: min(1 / compute, GPU memory / memory), whole, at most ``most`` (0 unknown)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.floor(np.fmin(1.0 / compute, gpu_memory / memory) + 1e-9)
    return np.where(np.isfinite(k), np.clip(k, 1, most), 0).astype(int)


def smaller_gpus(snapshot, config) -> pd.DataFrame:
    """The GPU families rightsize may suggest (gpu_families.csv ``suggest``), each with its GPU model and
    memory (bytes), host architecture and on-demand USD per GPU-hour per region (its smallest priced type in
    the snapshot's prices, split as price_split.py does). Cheapest first."""
    prices = snapshot.tables["prices"]
    shares = type_shares(prices, config)
    od = prices[(prices["capacity_type"] == "on-demand") & prices["usd_per_hour"].notna()]
    per_gpu = shares.merge(od[["instance_type", "region", "usd_per_hour", "vcpu"]], on=["instance_type", "region"])
    per_gpu["usd_per_gpu_hour"] = per_gpu["usd_per_hour"] * (1.0 - per_gpu["cpu_memory_share"]) / per_gpu["gpus"]
    per_gpu["family"] = instance_family(per_gpu["instance_type"])
    per_gpu = per_gpu.sort_values(["gpus", "vcpu"]).drop_duplicates(["family", "region"])
    fam = gpu_families()
    fam = fam[fam["suggest"] == "yes"].assign(gpu_memory_bytes=lambda f: f["gpu_memory_gib"] * GIB)
    out = per_gpu.merge(fam[["family", "gpu_model", "gpu_memory_bytes", "host_arch"]], on="family")
    cols = ["region", "family", "instance_type", "gpu_model", "gpu_memory_bytes", "host_arch", "usd_per_gpu_hour"]
    return out[cols].sort_values(["usd_per_gpu_hour", "family"]).reset_index(drop=True)


def offered_text(resources: frozenset) -> str:
    """The MIG resources nodes offer, for a reason text ('none')."""
    return ", ".join(sorted(resources)) or "none"


def regions(snapshot, clusters: pd.Series) -> pd.Series:
    """Each row's region: its cluster's most common node region (the region the snapshot was priced in)."""
    nodes = snapshot.tables["nodes"]
    region = nodes.assign(region=nodes["region"].fillna("").astype(str))
    common = region[region["region"] != ""].groupby("cluster")["region"].agg(lambda s: s.mode().iloc[0])
    fallback = ((snapshot.meta.get("pricing") or {}).get("regions") or [""])[0]
    return clusters.map(common).fillna(fallback).astype(str).reset_index(drop=True)


def cheapest_holding(cands: pd.DataFrame, region: pd.Series, need: np.ndarray, price: np.ndarray,
                     model: pd.Series) -> pd.DataFrame:
    """Per row, the cheapest candidate GPU (smaller_gpus) of its region whose memory holds ``need`` bytes and
    that costs less per GPU-hour than ``price``, on the host architecture of its GPU ``model`` (x86_64 unless
    the model's family runs on arm64), another model than its own; '' family where none does."""
    arch = gpu_families().drop_duplicates("gpu_model").set_index("gpu_model")["host_arch"]
    rows = pd.DataFrame({"_row": np.arange(len(need)), "region": region.to_numpy(), "_need": need, "_price": price,
                         "_model": model.to_numpy(), "host_arch": model.map(arch).fillna("x86_64").to_numpy()})
    pairs = rows.dropna(subset=["_need", "_price"]).merge(cands, on=["region", "host_arch"])
    pairs = pairs[(pairs["gpu_memory_bytes"] >= pairs["_need"]) & (pairs["usd_per_gpu_hour"] < pairs["_price"])
                  & (pairs["gpu_model"] != pairs["_model"])]
    best = pairs.sort_values(["usd_per_gpu_hour", "family"]).drop_duplicates("_row").set_index("_row")
    cols = ["family", "instance_type", "gpu_model", "gpu_memory_bytes", "usd_per_gpu_hour"]
    out = best.reindex(range(len(need)))[cols]
    return out.fillna({c: "" for c in ("family", "instance_type", "gpu_model")})
