"""What GPUs cost: each container's GPU devices at its nodes' GPU-hour prices, and the GPUs no pod requests.

A **device** is what a pod requests (gpu_resources.py). Its share of a physical GPU, priced at the node's
``usd_per_gpu_hour`` (price_split.py):

- ``nvidia.com/gpu`` / ``amd.com/gpu``: one GPU; on a node that advertises more of them than its type has
  GPUs (time-slicing or MPS replicas, or MIG's "single" strategy), GPUs / advertised devices;
- ``nvidia.com/mig-<g>g.<m>gb``: the larger of its SM share (g/7) and memory share (eighths/8) of that
  GPU model (rightsize/data/mig_profiles.csv): 1g.5gb on an A100 40 GB is max(1/7, 1/8) = 1/7; a profile
  the table does not know is priced at g/7.

The GPU model of a node comes from its instance family (rightsize/data/gpu_families.csv), else from GPU
feature discovery's product label. Money in USD, per hour or per month as the column says.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from ..gpu_resources import WHOLE_GPU_RESOURCES, mig_profile
from ..schema import WORKLOAD_KEY
from ..gpu_catalogue import gpu_families, instance_family, mig_profiles

MIG_SLICES = 7  # SM slices of every MIG-capable GPU AWS offers (A100, H100, H200)
_PRODUCT_MODELS = (("H200", "H200"), ("H100", "H100"), ("A100.*80", "A100-80GB"), ("A100", "A100-40GB"),
                   ("A10G", "A10G"), ("L40S", "L40S"), ("L4", "L4"), ("T4G", "T4G"), ("T4", "T4"), ("V100", "V100"))
_PRICE_COLS = ("usd_per_gpu_hour", "usd_per_gpu_hour_on_demand", "usd_per_gpu_hour_spot")


def gpu_models(instance_types: pd.Series, products: pd.Series | None = None) -> pd.Series:
    """The GPU model of each node or type ("A100-40GB", "A10G", ...): its family's in gpu_families.csv,
    else read from GPU feature discovery's ``nvidia.com/gpu.product`` value; '' unknown."""
    table = gpu_families().set_index("family")["gpu_model"]
    model = instance_family(instance_types).map(table)
    if products is not None:
        text = _text(products.reindex(instance_types.index)).str.upper()
        guess = pd.Series("", index=instance_types.index, dtype=object)
        for pattern, name in reversed(_PRODUCT_MODELS):  # the first pattern that matches wins
            guess = guess.where(~text.str.contains(pattern, regex=True), name)
        model = model.fillna(guess.where(guess != ""))
    return model.fillna("").astype(str)


def mig_share(resources: pd.Series, models: pd.Series) -> pd.Series:
    """Share of a GPU one device of each MIG resource takes on that model (NaN for a resource that is
    not MIG): max(sm_slices / 7, memory_eighths / 8), or g/7 for a profile the table does not list."""
    profiles = resources.map(mig_profile)
    table = mig_profiles()
    share = (np.maximum(table["sm_slices"] / MIG_SLICES, table["memory_eighths"] / 8.0)).to_numpy()
    known = pd.Series(share, index=pd.MultiIndex.from_frame(table[["gpu_model", "profile"]]))
    out = pd.Series(pd.MultiIndex.from_arrays([models, profiles]).map(known), index=resources.index, dtype=float)
    slices = profiles.str.extract(r"^(\d+)g\.", expand=False).astype(float) / MIG_SLICES
    return out.fillna(slices).where(profiles != "")


def node_devices(nodes: pd.DataFrame, node_prices: pd.DataFrame) -> pd.DataFrame:
    """Per node (cluster, node): gpus (of its type), gpu_model, whole_device_share (what one advertised
    nvidia.com/gpu is of a GPU: 1, or GPUs / advertised devices when time-sliced), allocatable_gpus
    (GPU-equivalents allocatable: whole devices x their share + MIG slices x theirs, at most the type's
    GPUs; the type's GPUs when the node's allocatable is unknown), the GPU-hour prices, and ``resources``
    (the node's allocatable GPU resources, a dict)."""
    cols = ["cluster", "node", "gpu_product", "allocatable_gpus", "gpu_resources_json"]
    own = nodes.reindex(columns=cols)
    out = node_prices[["cluster", "node", "instance_type", "gpus", *_PRICE_COLS]].merge(own, on=["cluster", "node"], how="left")
    out["gpu_model"] = gpu_models(out["instance_type"], out["gpu_product"])
    out["resources"] = [json.loads(t) if t else {} for t in _text(out["gpu_resources_json"])]
    advertised = out["allocatable_gpus"]
    sliced = (advertised.fillna(0.0) > out["gpus"]) & (out["gpus"] > 0)
    out["whole_device_share"] = (out["gpus"] / advertised.where(sliced)).where(sliced, 1.0)
    mig = [sum(n * float(_one_mig_share(r, m)) for r, n in res.items() if mig_profile(r))
           for res, m in zip(out["resources"], out["gpu_model"])]
    equivalents = advertised.fillna(0.0) * out["whole_device_share"] + np.asarray(mig, dtype=float)
    known = advertised.notna() | (_text(out["gpu_resources_json"]) != "")
    out["allocatable_gpus"] = np.minimum(equivalents, out["gpus"]).where(known, out["gpus"])
    return out.drop(columns=["gpu_product", "gpu_resources_json"])


def device_units(devices: pd.DataFrame) -> pd.Series:
    """GPU devices a node offers pods (node_devices rows), in whole-device units: its GPU-equivalents over
    the share one advertised device is of a GPU (a time-sliced GPU counts each replica; a MIG slice its
    share); 0 without GPUs."""
    return (devices["allocatable_gpus"] / devices["whole_device_share"]).fillna(0.0)


def gpu_devices(recs: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Each container's GPU devices today and after a GPU patch (the recommended resource where one is set),
    in whole-device units (device_units): a whole GPU 1, a MIG slice its share of its model's GPU; 0 without."""
    none = pd.Series(0.0, index=recs.index)
    if "gpu_resource" not in recs:
        return none, none
    model = _text(recs.get("gpu_model", pd.Series("", index=recs.index)))
    patched = _text(recs.get("gpu_resource_recommended", pd.Series("", index=recs.index))) != ""
    count = recs.get("gpu_request_count_current", pd.Series(np.nan, index=recs.index)).fillna(0.0)
    count_after = recs.get("gpu_request_count_recommended", count).where(patched, count).fillna(0.0)
    out = []
    for resource, n in ((_text(recs["gpu_resource"]), count),
                        (_text(recs.get("gpu_resource_recommended", recs["gpu_resource"])).where(patched, _text(recs["gpu_resource"])),
                         count_after)):
        out.append((n * mig_share(resource, model).fillna(1.0)).where(resource != "", 0.0))
    return out[0], out[1]


def _text(values: pd.Series) -> pd.Series:
    """Strings, '' where missing (a column absent from an older snapshot comes back as NaN floats)."""
    return values.astype(object).where(values.notna(), "").astype(str)


def _one_mig_share(resource: str, model: str) -> float:
    return float(mig_share(pd.Series([resource]), pd.Series([model])).iloc[0])


def device_share(resource: pd.Series, model: pd.Series, whole_share: pd.Series) -> pd.Series:
    """Share of a GPU one device of ``resource`` takes on a node (aligned Series): whole_share for a
    whole GPU, mig_share for a slice; NaN without a GPU resource."""
    whole = resource.isin(WHOLE_GPU_RESOURCES)
    return whole_share.where(whole, mig_share(resource, model))


def container_device_prices(snapshot, rows: pd.DataFrame, devices: pd.DataFrame) -> pd.DataFrame:
    """Per row of ``rows`` (CONTAINER_KEY + gpu_resource): the USD per hour of one of its devices, over the
    nodes its pods ran on weighted by pod-hours (``usd_per_gpu_device_hour`` and _on_demand, _spot), the
    GPU model and ``gpu_devices_per_gpu``; without placement, the cluster's GPU nodes averaged (a whole
    GPU: share 1). NaN where no node it ran on has a GPU price."""
    keys = list(WORKLOAD_KEY)
    want = rows[keys + ["container", "gpu_resource"]].reset_index(drop=True).assign(_row=lambda d: d.index)
    want = want[want["gpu_resource"] != ""]
    pl = snapshot.tables["placement"][keys + ["node", "pod_hours"]]
    per = want.merge(pl[pl["pod_hours"] > 0], on=keys).merge(devices, on=["cluster", "node"], how="left")
    per["_share"] = device_share(per["gpu_resource"], per["gpu_model"], per["whole_device_share"])
    out_cols = [f"usd_per_gpu_device_hour{s}" for s in ("", "_on_demand", "_spot")]
    for col, price in zip(out_cols, _PRICE_COLS):
        per[col] = per[price] * per["_share"]
    known = per[out_cols[0]].notna()
    w = per["pod_hours"].where(known, 0.0)
    sums = per.assign(**{c: per[c].fillna(0.0) * w for c in out_cols}, _w=w).groupby("_row")[out_cols + ["_w"]].sum()
    result = pd.DataFrame(index=pd.RangeIndex(len(rows)), columns=out_cols + ["gpu_model"], dtype=float)
    result[out_cols] = (sums[out_cols].div(sums["_w"].replace(0.0, np.nan), axis=0)).reindex(result.index)
    model = per.sort_values("pod_hours").groupby("_row")["gpu_model"].last()
    result["gpu_model"] = model.reindex(result.index).fillna("").astype(str)
    unplaced = want[~want["_row"].isin(per["_row"])]
    if len(unplaced):
        avg = devices[devices["gpus"] > 0].groupby("cluster")[["usd_per_gpu_hour_on_demand"]].mean()
        price = unplaced["cluster"].map(avg["usd_per_gpu_hour_on_demand"]).where(unplaced["gpu_resource"].isin(WHOLE_GPU_RESOURCES))
        for col in out_cols:
            result.loc[unplaced["_row"].to_numpy(), col] = price.to_numpy(dtype=float)
    result.index = rows.index
    return result


def gpu_idle(snapshot, devices: pd.DataFrame, weights: pd.DataFrame, hours_per_month: float) -> pd.DataFrame:
    """Per node (cluster, node): allocatable_gpus (GPU-equivalents x the share of the observed hours it existed),
    requested_gpus (the GPU-equivalents its pods requested, pod-hours / its cluster's observed hours) and
    gpu_idle_usd_per_month (allocatable not requested x usd_per_gpu_hour x hours_per_month). ``weights``:
    cluster, node, weight, observed_hours (cost.weighted_nodes)."""
    keys = list(WORKLOAD_KEY)
    cont = snapshot.tables["containers"]
    cont = cont.reindex(columns=keys + ["container_type", "gpu_resource", "gpu_request_count"])
    # a table without the GPU columns (hand-made, or written before them): no GPU, as strings
    cont = cont.assign(gpu_resource=cont["gpu_resource"].astype(object).fillna("").astype(str))
    cont = cont[(cont["gpu_resource"] != "") & (cont["gpu_request_count"].fillna(0) > 0)]
    pl = snapshot.tables["placement"][keys + ["node", "pod_hours"]].merge(cont, on=keys)
    pl = pl.merge(devices[["cluster", "node", "gpu_model", "whole_device_share"]], on=["cluster", "node"], how="left")
    pl["_gpus"] = pl["gpu_request_count"] * device_share(pl["gpu_resource"], pl["gpu_model"], pl["whole_device_share"]).fillna(1.0)
    main = pl[pl["container_type"] != "init"].groupby(keys + ["node", "pod_hours"], as_index=False)["_gpus"].sum()
    init = pl[pl["container_type"] == "init"].groupby(keys + ["node", "pod_hours"], as_index=False)["_gpus"].max()
    per_pod = pd.concat([main, init]).groupby(keys + ["node", "pod_hours"], as_index=False)["_gpus"].max()
    per_pod["_gpu_h"] = per_pod["_gpus"] * per_pod["pod_hours"]
    gpu_hours = per_pod.groupby(["cluster", "node"])["_gpu_h"].sum()
    out = devices[["cluster", "node", "allocatable_gpus", "usd_per_gpu_hour"]].merge(weights, on=["cluster", "node"], how="left")
    out["allocatable_gpus"] = out["allocatable_gpus"].fillna(0.0) * out["weight"].fillna(1.0)
    idx = pd.MultiIndex.from_frame(out[["cluster", "node"]])
    out["requested_gpus"] = idx.map(gpu_hours).to_numpy(dtype=float, na_value=0.0) / out["observed_hours"].to_numpy(dtype=float)
    idle = (out["allocatable_gpus"] - out["requested_gpus"]).clip(lower=0.0)
    out["gpu_idle_usd_per_month"] = np.where(idle > 0, idle * out["usd_per_gpu_hour"] * hours_per_month, 0.0)
    return out[["cluster", "node", "allocatable_gpus", "requested_gpus", "gpu_idle_usd_per_month"]]


def gpu_price_notes(resource: pd.Series, count: pd.Series, price: pd.Series) -> pd.Series:
    """'' or why a container's GPU cost is unknown (it asks for GPUs its nodes' prices cannot price)."""
    asks = (resource.fillna("") != "") & (count.fillna(0) > 0)
    return pd.Series(np.where(asks & price.isna(), "GPU price unknown (no priced GPU node under it)", ""), index=resource.index)
