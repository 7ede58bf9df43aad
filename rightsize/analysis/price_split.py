"""A node's hourly price split into unit prices: per vCPU-hour, per GiB-hour and, on GPU nodes, per GPU-hour.

A node of V vCPUs and G GiB costing P USD/hour is split the way OpenCost does it, with a CPU:RAM
price ratio r (``[pricing] cpu_ram_price_ratio``): P = V x c + G x m, c = r x m.

Splitting a GPU node's whole price by the CPU:RAM ratio (cost.split_price) would put the GPUs'
price on its vCPUs and GiB: a g5.xlarge (1.006 USD/h, 4 vCPU, 16 GiB, one A10G) would price its CPU
and memory at 5.2 times an m6a.xlarge of the same shape. So for an instance type with GPUs:

    CPU and memory part  = V x c_ref + G x m_ref
    GPU part             = P - (CPU and memory part),  per GPU: divided by the type's GPUs

where (c_ref, m_ref) = split_price(P_ref, V_ref, G_ref, ratio) are the unit prices of the
**reference type**: the general-purpose type on the same host processor (declared per family in
rightsize/data/gpu_families.csv, overridden by ``[pricing] gpu_reference_types``), at its on-demand
price in the same region. The parts are computed on the type's on-demand price and kept as a share
(``cpu_memory_share`` = CPU and memory part / P), so a spot node's price splits in the same
proportions. ``[pricing] gpu_usd_per_hour`` sets the GPU part outright (GPUs x that price; the rest
is CPU and memory), and ``[pricing] gpu_discount`` takes a fraction off the GPU part only.

Both prices come from the snapshot's prices table (the same source, region and discounts: collect prices
every reference type with the nodes' types). A GPU type whose reference has no price there keeps the
plain CPU:RAM split of its whole price, and a caveat says so. Money in USD per hour.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..gpu_catalogue import gpu_reference_types


def split_price(usd_per_hour, vcpu, memory_gib, ratio: float):
    """(USD per vCPU-hour, USD per GiB-hour) for nodes of ``vcpu`` vCPUs and ``memory_gib`` GiB at ``usd_per_hour``:
    P = V x c + G x m with c = ratio x m. Works on scalars, numpy arrays and Series; NaN in gives NaN out."""
    per_gib = usd_per_hour / (ratio * vcpu + memory_gib)
    return ratio * per_gib, per_gib


def type_shares(prices: pd.DataFrame, config) -> pd.DataFrame:
    """Per (instance_type, region) of the prices table's on-demand rows with GPUs: ``gpus``,
    ``cpu_memory_share`` (0..1), ``reference_type``, ``gpu_price_basis`` (how the split was made) and
    ``gpu_part_negative`` (the reference's CPU and memory cost more than the whole node: the GPU part
    is taken as 0). Empty when no priced type has GPUs."""
    pricing = config.pricing
    od = prices[(prices["capacity_type"] == "on-demand") & prices["usd_per_hour"].notna()]
    od = od.drop_duplicates(["instance_type", "region"])
    gpus = _gpus(od)
    gpu = od[gpus > 0].assign(gpus=gpus[gpus > 0])
    cols = ["instance_type", "region", "gpus", "cpu_memory_share", "reference_type", "gpu_price_basis", "gpu_part_negative"]
    if gpu.empty:
        return pd.DataFrame(columns=cols)
    gpu = gpu.join(gpu_reference_types(gpu["instance_type"], pricing.gpu_reference_types))
    ref = od[["instance_type", "region", "usd_per_hour", "vcpu", "memory_gib"]].rename(columns={
        "instance_type": "reference_type", "usd_per_hour": "_p_ref", "vcpu": "_v_ref", "memory_gib": "_g_ref"})
    gpu = gpu.merge(ref, on=["reference_type", "region"], how="left")
    c, m = split_price(gpu["_p_ref"], gpu["_v_ref"], gpu["_g_ref"], pricing.cpu_ram_price_ratio)
    share = (gpu["vcpu"] * c + gpu["memory_gib"] * m) / gpu["usd_per_hour"]
    basis = ("CPU and memory at " + gpu["reference_type"] + " unit prices").where(gpu["reference_declared"],
             "CPU and memory at " + gpu["reference_type"] + " unit prices (no reference declared for the family: assumed)")
    basis = basis.where(share.notna(), "no price for " + gpu["reference_type"] + ": the whole price split by the CPU:RAM ratio")
    explicit = gpu["instance_type"].map(pricing.gpu_usd_per_hour).astype(float)
    given = explicit.notna()
    share = share.where(~given, 1.0 - gpu["gpus"] * explicit / gpu["usd_per_hour"])
    basis = basis.where(~given, "GPU price from [pricing] gpu_usd_per_hour")
    gpu["gpu_part_negative"] = (share > 1.0).to_numpy()
    gpu["cpu_memory_share"], gpu["gpu_price_basis"] = share.clip(0.0, 1.0).fillna(1.0), basis
    return gpu[cols].reset_index(drop=True)


def _gpus(od: pd.DataFrame) -> pd.Series:
    """GPUs per row of the prices table (a snapshot written before GPUs were counted has none: 0)."""
    own = od["gpus"] if "gpus" in od.columns else pd.Series(np.nan, index=od.index)
    return pd.to_numeric(own).fillna(0.0).astype(float)


def split_nodes(nodes: pd.DataFrame, prices: pd.DataFrame, config) -> pd.DataFrame:
    """``nodes`` (node_unit_prices' frame: instance_type, region, vcpu, memory_gib and the price columns
    usd_per_hour, usd_per_hour_on_demand, usd_per_hour_spot) with each price split in three.

    Adds ``gpus`` (of the type), ``gpu_price_basis`` and, per price column with suffix '', '_on_demand',
    '_spot': ``usd_per_vcpu_hour``, ``usd_per_gib_hour`` and ``usd_per_gpu_hour`` (NaN without GPUs).
    A node without GPUs keeps the plain CPU:RAM split of its whole price; ``[pricing] gpu_discount``
    lowers the GPU part (and so the node's price columns)."""
    shares = type_shares(prices, config)
    out = nodes.merge(shares.drop(columns="reference_type"), on=["instance_type", "region"], how="left")
    out["gpus"] = pd.to_numeric(out["gpus"]).fillna(0.0).astype(float)
    share = pd.to_numeric(out["cpu_memory_share"]).fillna(1.0).astype(float)
    keep = 1.0 - config.pricing.gpu_discount
    gpus = out["gpus"].where(out["gpus"] > 0)
    for suffix in ("", "_on_demand", "_spot"):
        price = out[f"usd_per_hour{suffix}"]
        cpu_memory, gpu_part = price * share, price * (1.0 - share) * keep
        out[f"usd_per_hour{suffix}"] = cpu_memory + gpu_part
        out[f"usd_per_vcpu_hour{suffix}"], out[f"usd_per_gib_hour{suffix}"] = split_price(
            cpu_memory, out["vcpu"], out["memory_gib"], config.pricing.cpu_ram_price_ratio)
        out[f"usd_per_gpu_hour{suffix}"] = gpu_part / gpus
    out["gpu_price_basis"] = out["gpu_price_basis"].fillna("")
    return out.drop(columns=["cpu_memory_share"])


def caveats(prices: pd.DataFrame, nodes: pd.DataFrame, config) -> list[dict]:
    """Warnings about the split of the nodes' GPU types: a family without a declared reference (assumed),
    a reference without a price, a reference that costs more than the whole node."""
    shares = type_shares(prices, config)
    used = shares[shares["instance_type"].isin(set(nodes["instance_type"]))]
    out = []
    for row in used.itertuples(index=False):
        if "assumed" in row.gpu_price_basis:
            out.append({"code": "gpu_reference_assumed", "affects": "GPU and CPU/memory prices of " + row.instance_type,
                        "message": f"{row.instance_type}: no general-purpose reference type is declared for its family; its "
                                   f"CPU and memory are priced at {row.reference_type}'s unit prices (set [pricing] gpu_reference_types)"})
        if row.gpu_price_basis.startswith("no price for"):
            out.append({"code": "gpu_reference_unpriced", "affects": "GPU and CPU/memory prices of " + row.instance_type,
                        "message": f"{row.instance_type} in {row.region}: {row.reference_type}, whose unit prices split its price, "
                                   "has no price in the snapshot: its whole price is split by the CPU:RAM ratio (its GPUs "
                                   "unpriced, its CPU and memory overpriced)"})
        if row.gpu_part_negative:
            out.append({"code": "gpu_part_negative", "affects": "GPU prices of " + row.instance_type,
                        "message": f"{row.instance_type} in {row.region}: CPU and memory at {row.reference_type}'s unit prices "
                                   "cost more than the whole node; its GPU part is taken as 0"})
    return out
