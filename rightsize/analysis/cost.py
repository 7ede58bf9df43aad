"""The cost model: pure functions over snapshot tables (no network, no disk), all vectorised.

Node prices are split into a price per vCPU-hour and a price per GiB-hour the way OpenCost does it:
with a CPU:RAM price ratio r (pricing.cpu_ram_price_ratio), a node of V vCPUs and G GiB costing P
USD/hour gives

    P = V * c + G * m,  c = r * m   =>   m = P / (r * V + G),  c = r * m

OpenCost's default unit prices, CPU 0.031611 and RAM 0.004237 USD/hour, have a ratio of about 7.46;
the default r = 7.5 follows them. A GPU node's price has a third part, the GPUs: its CPU and memory
take the unit prices of a general-purpose type on the same processor, the GPUs the rest
(price_split.py). A container costs its requests at the unit prices of the nodes
its pods ran on (weighted by pod-hours), times its pods (pods_for_cost: replicas, or the average pods
that batch and autoscaled work ran), times general.hours_per_month (730).
Money is in USD, CPU in cores (= vCPUs), memory in bytes unless a column says GiB.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..batch_groups import BATCH_GROUP_KINDS
from ..quantity import GIB
from ..schema import CONTAINER_KEY, IDLE_COLUMNS, WORKLOAD_KEY
from . import gpu_cost
from .pod_request import effective_requests
from .price_split import split_nodes, split_price  # noqa: F401  (split_price: the one CPU:RAM split, used here and by callers)

COST_COLUMNS = ["usd_per_month_current", "usd_per_month_recommended", "savings_usd_per_month"]
# Statuses whose recommendation is not applied: their recommended cost is the current cost.


def _node_regions(nodes: pd.DataFrame, snapshot, config) -> pd.Series:
    if config.pricing.region:
        return pd.Series(config.pricing.region, index=nodes.index, dtype=object)
    # Nodes without a region label: the same choice collect_prices made (the most common region).
    region = nodes["region"].fillna("").astype(str)
    known = region[region != ""]
    priced = (snapshot.meta.get("pricing") or {}).get("regions") or [""]
    fill = known.mode().iloc[0] if not known.empty else priced[0]
    return region.where(region != "", fill)


def node_unit_prices(snapshot, config) -> pd.DataFrame:
    """Per node: its hourly price and that price split into USD per vCPU-hour and USD per GiB-hour.

    Columns: cluster, node, instance_type, zone, capacity_type, usd_per_hour, usd_per_vcpu_hour,
    usd_per_gib_hour, price_source, plus region, node_group, vcpu, memory_gib (of the type; the node's
    allocatable when the type's shape is unknown), hours_seen, usd_per_hour_on_demand and
    usd_per_hour_spot (the same node at the type's on-demand and spot price, for spot estimates) and
    their splits; gpus (of the type), usd_per_gpu_hour (and _on_demand, _spot: NaN without GPUs) and
    gpu_price_basis: a GPU node's price is split in three (price_split.py). Spot nodes are priced at
    their zone's spot price, else the region-wide estimate, else on-demand (price_source says so). An
    unpriced type gives NaN, never 0.
    """
    nodes = snapshot.tables["nodes"]
    prices = snapshot.tables["prices"]
    out = nodes[["cluster", "node", "instance_type", "zone", "capacity_type", "hours_seen",
                 "allocatable_cpu_cores", "allocatable_memory_bytes"]].copy()
    out["node_group"] = nodes["node_group"] if "node_group" in nodes.columns else ""
    out["region"] = _node_regions(nodes, snapshot, config)

    out = _with_list_prices(out, prices)
    spot_price = out["_spot_zone"].fillna(out["_spot_region"]).fillna(out["_spot_mean"])
    spot_src = out["_src_zone"].where(out["_spot_zone"].notna(),
                                      out["_src_region"].where(out["_spot_region"].notna(), out["_src_mean"]))
    is_spot = out["capacity_type"] == "spot"
    use_spot = is_spot & spot_price.notna()
    out["usd_per_hour_spot"] = spot_price
    out["usd_per_hour"] = out["usd_per_hour_on_demand"].where(~use_spot, spot_price)
    od_src = out["_src_od"].fillna("")
    src = od_src.where(~use_spot, spot_src.fillna(""))
    src = src.where(~(is_spot & ~use_spot & out["usd_per_hour"].notna()), od_src + " (on-demand: no spot price)")
    out["price_source"] = src.where(out["usd_per_hour"].notna(), "unknown")

    # The split needs the machine's shape; a type missing from every shape source falls back to the
    # node's allocatable (slightly smaller), which is better than no unit price at all.
    out["vcpu"] = out["vcpu"].fillna(out["allocatable_cpu_cores"])
    out["memory_gib"] = out["memory_gib"].fillna(out["allocatable_memory_bytes"] / GIB)
    out = split_nodes(out, prices, config)  # per vCPU-, GiB- and (GPU nodes) GPU-hour, see price_split.py
    cols = ["cluster", "node", "instance_type", "zone", "capacity_type", "usd_per_hour", "usd_per_vcpu_hour",
            "usd_per_gib_hour", "price_source", "region", "node_group", "vcpu", "memory_gib", "hours_seen",
            "allocatable_cpu_cores", "allocatable_memory_bytes",
            "usd_per_hour_on_demand", "usd_per_vcpu_hour_on_demand", "usd_per_gib_hour_on_demand",
            "usd_per_hour_spot", "usd_per_vcpu_hour_spot", "usd_per_gib_hour_spot",
            "gpus", "usd_per_gpu_hour", "usd_per_gpu_hour_on_demand", "usd_per_gpu_hour_spot", "gpu_price_basis"]
    return out[cols].reset_index(drop=True)


def _with_list_prices(out: pd.DataFrame, prices: pd.DataFrame) -> pd.DataFrame:
    """Nodes with their type's on-demand price and shape, and its spot prices (the zone's, the region-wide
    one, the mean over zones), each with its price source, in underscore columns."""
    od = (prices[prices["capacity_type"] == "on-demand"]
          .drop_duplicates(["instance_type", "region"])
          [["instance_type", "region", "usd_per_hour", "vcpu", "memory_gib", "price_source"]]
          .rename(columns={"usd_per_hour": "usd_per_hour_on_demand", "price_source": "_src_od"}))
    spot = prices[prices["capacity_type"] == "spot"]
    spot_zone = (spot[spot["zone"] != ""].drop_duplicates(["instance_type", "region", "zone"])
                 [["instance_type", "region", "zone", "usd_per_hour", "price_source"]]
                 .rename(columns={"usd_per_hour": "_spot_zone", "price_source": "_src_zone"}))
    spot_region = (spot[spot["zone"] == ""].drop_duplicates(["instance_type", "region"])
                   [["instance_type", "region", "usd_per_hour", "price_source"]]
                   .rename(columns={"usd_per_hour": "_spot_region", "price_source": "_src_region"}))
    # A type with only zonal spot prices still gets a region-wide figure (mean over zones) for nodes
    # whose zone has none.
    zone_mean = (spot_zone.groupby(["instance_type", "region"], as_index=False)
                 .agg(_spot_mean=("_spot_zone", "mean"), _src_mean=("_src_zone", "first")))
    return (out.merge(od, on=["instance_type", "region"], how="left")
            .merge(spot_zone, on=["instance_type", "region", "zone"], how="left")
            .merge(spot_region, on=["instance_type", "region"], how="left")
            .merge(zone_mean, on=["instance_type", "region"], how="left"))


_UNIT_COLS = ["usd_per_vcpu_hour", "usd_per_gib_hour", "usd_per_vcpu_hour_on_demand", "usd_per_gib_hour_on_demand",
              "usd_per_vcpu_hour_spot", "usd_per_gib_hour_spot"]
_OUT_NAMES = {"usd_per_vcpu_hour": "usd_per_core_hour", "usd_per_vcpu_hour_on_demand": "usd_per_core_hour_on_demand",
              "usd_per_vcpu_hour_spot": "usd_per_core_hour_spot"}


def _weighted(frame: pd.DataFrame, keys: list[str], weight: str, cols: list[str]) -> pd.DataFrame:
    """Weighted mean of ``cols`` per ``keys``, each over the rows where that column is known."""
    work = frame[keys].copy()
    for col in cols:
        known = frame[col].notna()
        work[f"{col}__wx"] = (frame[col] * frame[weight]).where(known, 0.0)
        work[f"{col}__w"] = frame[weight].where(known, 0.0)
    sums = work.groupby(keys, as_index=False, sort=False).sum()
    out = sums[keys].copy()
    for col in cols:
        out[col] = sums[f"{col}__wx"] / sums[f"{col}__w"].replace(0.0, np.nan)
    return out


def cluster_average_unit_prices(snapshot, config, node_prices: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per cluster: on-demand USD per core-hour and per GiB-hour averaged over its nodes (weighted by hours seen)."""
    nodes = node_prices if node_prices is not None else node_unit_prices(snapshot, config)
    frame = nodes.assign(_w=nodes["hours_seen"].fillna(1.0).clip(lower=0.0))
    avg = _weighted(frame, ["cluster"], "_w", ["usd_per_vcpu_hour_on_demand", "usd_per_gib_hour_on_demand"])
    return avg.rename(columns={"usd_per_vcpu_hour_on_demand": "usd_per_core_hour",
                               "usd_per_gib_hour_on_demand": "usd_per_gib_hour"})


def workload_unit_prices(snapshot, config) -> pd.DataFrame:
    """Per workload (WORKLOAD_KEY): USD per core-hour and per GiB-hour of the nodes its pods ran on.

    Weighted by placement pod_hours. Also: the same at on-demand and at spot prices of those nodes'
    types (``*_on_demand``, ``*_spot``), spot_share (share of pod-hours on spot nodes),
    unknown_price_share (share of pod-hours on nodes without a price; the averages use the rest) and
    price_basis: "placement", or "cluster_average" for workloads with no placement (the cluster's
    average on-demand unit prices).
    """
    nodes = node_unit_prices(snapshot, config)
    placement = snapshot.tables["placement"]
    keys = list(WORKLOAD_KEY)
    pl = placement[keys + ["node", "pod_hours"]].merge(
        nodes[["cluster", "node", "capacity_type", *_UNIT_COLS]], on=["cluster", "node"], how="left")
    pl = pl[pl["pod_hours"] > 0]
    result = _weighted(pl, keys, "pod_hours", _UNIT_COLS)
    shares = pl.assign(_spot=pl["pod_hours"].where(pl["capacity_type"] == "spot", 0.0),
                       _unknown=pl["pod_hours"].where(pl["usd_per_vcpu_hour"].isna(), 0.0))
    shares = shares.groupby(keys, as_index=False, sort=False)[["pod_hours", "_spot", "_unknown"]].sum()
    result = result.merge(shares, on=keys, how="left")
    result["spot_share"] = result["_spot"] / result["pod_hours"]
    result["unknown_price_share"] = result["_unknown"] / result["pod_hours"]
    result["price_basis"] = "placement"
    result = result.drop(columns=["_spot", "_unknown", "pod_hours"]).rename(columns=_OUT_NAMES)

    workloads = snapshot.tables["workloads"][keys].drop_duplicates()
    missing = workloads.merge(result[keys], on=keys, how="left", indicator=True)
    missing = missing[missing["_merge"] == "left_only"].drop(columns="_merge")
    if not missing.empty:
        avg = cluster_average_unit_prices(snapshot, config, nodes)
        missing = missing.merge(avg, on="cluster", how="left")
        missing["price_basis"] = "cluster_average"
        missing["spot_share"] = np.nan
        missing["unknown_price_share"] = np.where(missing["usd_per_core_hour"].isna(), 1.0, 0.0)
        result = pd.concat([result, missing], ignore_index=True)
    cols = keys + ["usd_per_core_hour", "usd_per_gib_hour", "price_basis", "spot_share", "unknown_price_share",
                   "usd_per_core_hour_on_demand", "usd_per_gib_hour_on_demand",
                   "usd_per_core_hour_spot", "usd_per_gib_hour_spot"]
    return result.reindex(columns=cols).reset_index(drop=True)


# costed at the pods they ran: Jobs, CronJobs and the groups of pods batch frameworks start (batch_groups.py)
BATCH_KINDS = ("Job", "CronJob") + BATCH_GROUP_KINDS


def average_pods(snapshot) -> pd.DataFrame:
    """Per workload (WORKLOAD_KEY): average_pods = placement pod-hours / the hours its cluster was observed
    (Snapshot.observed_hours: the window, or less when the server keeps fewer days), the pods it really ran.

    Only clusters with placement rows appear (elsewhere the average is unknown); a workload of such a
    cluster that is missing from placement ran no pod in the window (0.0, e.g. a CronJob that did not fire).
    """
    keys = list(WORKLOAD_KEY)
    placement = snapshot.tables.get("placement")
    if placement is None or placement.empty:
        return pd.DataFrame({**{k: pd.Series(dtype=object) for k in keys}, "average_pods": pd.Series(dtype=float)})
    avg = placement.groupby(keys, as_index=False)["pod_hours"].sum()
    avg["average_pods"] = avg["pod_hours"] / snapshot.hours_of(avg["cluster"])
    return avg[avg["average_pods"].notna()][keys + ["average_pods"]]


def pods_for_cost(snapshot, frame: pd.DataFrame) -> pd.DataFrame:
    """The pods each row of ``frame`` (WORKLOAD_KEY + ``replicas`` from the inventory) is costed at.

    Returns columns replicas, average_pods, estimated (bool), aligned with ``frame``:
    - Jobs and CronJobs: the average pods they ran (pod-hours / window hours), whatever the inventory
      says (parallelism, pods alive at collection time); unknown (NaN) without placement;
    - HPA-scaled workloads: the average pods seen (the HPA moved them during the window), else the
      inventory's replicas, else minReplicas;
    - replicas the spec cannot state (NaN: a DaemonSet from manifests): the average pods seen when > 0.
    ``estimated`` marks rows costed at the average. One home for "how many pods": idle and bin-packing
    count the same pod-hours.
    """
    keys = list(WORKLOAD_KEY)
    work = snapshot.tables["workloads"]
    extra = [c for c in ("hpa", "hpa_min_replicas") if c in work.columns]
    rows = frame[keys].merge(work[keys + extra].drop_duplicates(keys), on=keys, how="left")
    averages = average_pods(snapshot)
    rows = rows.merge(averages, on=keys, how="left")
    known = rows["cluster"].isin(set(averages["cluster"])).to_numpy()
    avg = np.where(known, rows["average_pods"].fillna(0.0).to_numpy(dtype=float), np.nan)
    spec = frame["replicas"].to_numpy(dtype=float, na_value=np.nan)
    hpa = rows["hpa"].fillna(False).to_numpy(dtype=bool) if "hpa" in rows else np.zeros(len(rows), dtype=bool)
    min_reps = rows["hpa_min_replicas"].to_numpy(dtype=float, na_value=np.nan) if "hpa_min_replicas" in rows else np.full(len(rows), np.nan)
    batch = rows["kind"].isin(BATCH_KINDS).to_numpy()
    seen = np.nan_to_num(avg) > 0
    use_avg = (batch & known) | (hpa & seen) | (np.isnan(spec) & seen)
    replicas = np.where(use_avg, avg, np.where(hpa & np.isnan(spec), min_reps, spec))
    replicas = np.where(batch & ~known, np.nan, replicas)
    return pd.DataFrame({"replicas": replicas, "average_pods": avg, "estimated": use_avg}, index=frame.index)


def _join_notes(*parts: pd.Series) -> pd.Series:
    frame = pd.concat(parts, axis=1).fillna("")
    return frame.apply(lambda col: col.where(col == "", col + "; ")).sum(axis=1).str.rstrip("; ")


def add_costs(recommendations: pd.DataFrame, snapshot, config) -> pd.DataFrame:
    """The recommendations with usd_per_month_current, usd_per_month_recommended, savings_usd_per_month.

    cost = (cpu cores x USD/core-hour + memory GiB x USD/GiB-hour) x replicas x hours_per_month.
    An unset current request costs 0 (the scheduler reserves nothing for it); a NaN recommendation,
    or a row whose status is keep / ignored / no_recommendation, keeps the current value (no change).
    Init containers cost 0: their requests overlap the main containers' in the pod's effective request.
    Unknown unit price -> NaN costs. A ``cost_note`` column says which of these applied.
    """
    keys = list(WORKLOAD_KEY)
    recs = recommendations.copy()
    if recs.empty:
        for col in COST_COLUMNS:
            recs[col] = pd.Series(dtype=float)
        recs["cost_note"] = pd.Series(dtype=object)
        return recs
    units = workload_unit_prices(snapshot, config)[keys + ["usd_per_core_hour", "usd_per_gib_hour", "price_basis"]]
    merged = recs[keys].merge(units, on=keys, how="left")
    merged.index = recs.index
    no_units = merged["price_basis"].isna()
    if no_units.any():
        avg = cluster_average_unit_prices(snapshot, config)
        fill = merged.loc[no_units, ["cluster"]].merge(avg, on="cluster", how="left")
        fill.index = merged.index[no_units]
        merged.loc[no_units, "usd_per_core_hour"] = fill["usd_per_core_hour"]
        merged.loc[no_units, "usd_per_gib_hour"] = fill["usd_per_gib_hour"]
        merged.loc[no_units, "price_basis"] = "cluster_average"

    cpu_cur = recs["cpu_request_cores_current"]
    mem_cur = recs["memory_request_bytes_current"]
    cpu_rec, mem_rec = request_after(recs, "cpu_request_cores"), request_after(recs, "memory_request_bytes")
    init = recs["container_type"].eq("init") if "container_type" in recs.columns else pd.Series(False, index=recs.index)
    factor = recs["replicas"] * config.general.hours_per_month * (~init).astype(float)
    c, m = merged["usd_per_core_hour"], merged["usd_per_gib_hour"]
    recs = add_gpu_costs(recs, snapshot, config, factor)
    recs["usd_per_month_current"] = (cpu_cur.fillna(0.0) * c + mem_cur.fillna(0.0) / GIB * m) * factor + recs["gpu_usd_per_month_current"]
    recs["usd_per_month_recommended"] = ((cpu_rec.fillna(0.0) * c + mem_rec.fillna(0.0) / GIB * m) * factor
                                         + recs["gpu_usd_per_month_recommended"])
    # An injected sidecar's requests are set by its injector, not the spec: unknown is not 0.
    injected = recs["container_type"].eq("injected") & cpu_cur.isna() & mem_cur.isna() if "container_type" in recs.columns \
        else pd.Series(False, index=recs.index)
    recs.loc[injected, "usd_per_month_current"] = np.nan
    recs["savings_usd_per_month"] = recs["usd_per_month_current"] - recs["usd_per_month_recommended"]

    empty = pd.Series("", index=recs.index, dtype=object)
    unset = (cpu_cur.isna() | mem_cur.isna()) & ~injected
    batch = recs["kind"].isin(BATCH_KINDS)
    recs["cost_note"] = _join_notes(
        empty.where(~unset, "no current request: costed as 0 requested"),
        empty.where(merged["price_basis"] != "cluster_average", "no placement: cluster average unit prices"),
        empty.where(~(c.isna() | m.isna()), "price unknown"),
        empty.where(~init, "init container: not costed"),
        empty.where(~injected, "injected sidecar: its current requests come from the injector, not the spec: current cost unknown"),
        empty.where(~(batch & recs["replicas"].notna()), "batch: costed at the average pods it ran (pod-hours / window hours)"),
        empty.where(~recs["replicas"].isna(), "pods unknown (a batch workload without placement): cost unknown"),
        recs.pop("_gpu_note"),
    )
    return recs


GPU_COLUMNS = ("gpu_resource", "gpu_request_count_current", "gpu_resource_recommended", "gpu_request_count_recommended")


def with_gpu_requests(recs: pd.DataFrame, snapshot) -> pd.DataFrame:
    """``recs`` with GPU_COLUMNS: the containers table's GPU resource and count where the recommendations
    do not carry them yet; the recommended resource '' (no GPU change) and count = current."""
    if all(c in recs.columns for c in GPU_COLUMNS):
        return recs
    keys = list(CONTAINER_KEY)
    cont = snapshot.tables["containers"].reindex(columns=keys + ["gpu_resource", "gpu_request_count"]).drop_duplicates(keys)
    got = recs[keys].merge(cont, on=keys, how="left")
    out = recs.copy()
    out["gpu_resource"] = got["gpu_resource"].astype(object).fillna("").astype(str).to_numpy()
    out["gpu_request_count_current"] = got["gpu_request_count"].to_numpy(dtype=float, na_value=np.nan)
    out["gpu_resource_recommended"] = ""
    out["gpu_request_count_recommended"] = out["gpu_request_count_current"]
    return out


def add_gpu_costs(recs: pd.DataFrame, snapshot, config, factor: pd.Series) -> pd.DataFrame:
    """``recs`` with gpu_usd_per_month_current and _recommended (devices x the USD per hour of one device
    on the nodes its pods ran on (gpu_cost.py) x ``factor``, pods x hours per month; 0 without GPUs,
    NaN when a GPU has no price), gpu_savings_usd_per_month (current x (1 - gpu_share_after) for a GPU
    action, patched or report-only), gpu_usd_per_month_used (current x engine active mean) and
    ``_gpu_note``. The recommended devices are the recommended resource and count where a patch sets one
    (gpu_resource_recommended), else today's."""
    recs = with_gpu_requests(recs, snapshot)
    devices = gpu_cost.node_devices(snapshot.tables["nodes"], node_unit_prices(snapshot, config))
    after = recs["gpu_resource_recommended"].where(recs["gpu_resource_recommended"] != "", recs["gpu_resource"])
    count_after = recs["gpu_request_count_recommended"].where(recs["gpu_resource_recommended"] != "", recs["gpu_request_count_current"])
    for suffix, resource, count in (("current", recs["gpu_resource"], recs["gpu_request_count_current"]),
                                    ("recommended", after, count_after)):
        price = gpu_cost.container_device_prices(snapshot, recs.assign(gpu_resource=resource), devices)["usd_per_gpu_device_hour"]
        usd = count.fillna(0.0) * price * factor
        recs[f"gpu_usd_per_month_{suffix}"] = usd.where((resource != "") & (count.fillna(0) > 0), 0.0)
        if suffix == "current":
            recs["_gpu_note"] = gpu_cost.gpu_price_notes(resource, count, price)
    current = recs["gpu_usd_per_month_current"]
    acting = recs["gpu_action"].isin(GPU_ACTIONS) if "gpu_action" in recs else pd.Series(False, index=recs.index)
    share = recs["gpu_share_after"] if "gpu_share_after" in recs else pd.Series(np.nan, index=recs.index)
    recs["gpu_savings_usd_per_month"] = (current * (1.0 - share)).where(acting, current * 0.0)
    used = recs["gpu_engine_mean_ratio"] if "gpu_engine_mean_ratio" in recs else pd.Series(np.nan, index=recs.index)
    recs["gpu_usd_per_month_used"] = (current * used).where(current != 0, 0.0)
    return recs


# The GPU actions that change what a container's GPUs cost (rules/gpu.py): idle releases them, a share or a
# smaller GPU costs gpu_share_after of today's.
GPU_ACTIONS = ("idle", "share_mig", "share_time_slicing", "smaller_gpu")


def request_after(recs: pd.DataFrame, res: str) -> pd.Series:
    """``res`` ("cpu_request_cores" or "memory_request_bytes") of each container once the
    recommendations are applied: the recommended value where the status is "change" (every row when
    there is no status) and there is one, else the current one. Cores or bytes; NaN = unset."""
    current, proposed = recs[f"{res}_current"], recs[f"{res}_recommended"]
    change = recs["status"].eq("change") if "status" in recs.columns else pd.Series(True, index=recs.index)
    return proposed.where(change & proposed.notna(), current)


def weighted_nodes(snapshot, config) -> pd.DataFrame:
    """:func:`node_unit_prices` with ``weight``: the share of the hours its cluster was observed that each
    node existed (at most 1; 1 when unknown), as idle.csv and the bin-packing count nodes, and
    ``observed_hours`` (its cluster's)."""
    nodes = node_unit_prices(snapshot, config)
    nodes["observed_hours"] = _observed_hours(snapshot, nodes)
    nodes["weight"] = (nodes["hours_seen"] / nodes["observed_hours"]).clip(upper=1.0).fillna(1.0)
    return nodes


def node_requests(snapshot, config) -> pd.DataFrame:
    """Per node (:func:`weighted_nodes`): what its pods request and what is idle.

    requested_cpu_cores / requested_memory_bytes: requests of the pods placed on the node, weighted by
    pod-hours over the hours observed (a pod's request is the scheduler's effective request,
    pod_request.effective_requests: main containers plus native sidecars, at least each init container's
    step; unset counts 0); allocatable_* weighted by the share of that time the node existed; usd_per_month:
    its share of the node bill (the whole node price x weight); idle_usd_per_month: allocatable not requested,
    priced at the node's per-vCPU-hour, per-GiB-hour and per-GPU-hour prices (never below 0: requests above
    allocatable are analysis.consistency's finding); allocatable_gpus / requested_gpus / gpu_idle_usd_per_month:
    the same for GPUs, in GPU-equivalents (gpu_cost.gpu_idle), the idle ones in idle_usd_per_month too."""
    hpm = config.general.hours_per_month
    nodes = weighted_nodes(snapshot, config)

    containers = snapshot.tables["containers"]
    keys = list(WORKLOAD_KEY)
    cont = containers.assign(_cpu=containers["cpu_request_cores"], _mem=containers["memory_request_bytes"])
    per_pod = effective_requests(cont, keys, ["_cpu", "_mem"])

    placement = snapshot.tables["placement"]
    pl = placement.merge(per_pod, on=keys, how="left").fillna({"_cpu": 0.0, "_mem": 0.0})
    pl["_cpu_h"], pl["_mem_h"] = pl["_cpu"] * pl["pod_hours"], pl["_mem"] * pl["pod_hours"]
    req = pl.groupby(["cluster", "node"], as_index=False)[["_cpu_h", "_mem_h"]].sum()
    nodes = nodes.merge(req, on=["cluster", "node"], how="left").fillna({"_cpu_h": 0.0, "_mem_h": 0.0})
    nodes["requested_cpu_cores"] = nodes["_cpu_h"] / nodes["observed_hours"]
    nodes["requested_memory_bytes"] = nodes["_mem_h"] / nodes["observed_hours"]
    alloc_cpu = nodes["allocatable_cpu_cores"] * nodes["weight"]
    alloc_mem = nodes["allocatable_memory_bytes"] * nodes["weight"]
    idle_cpu = (alloc_cpu - nodes["requested_cpu_cores"]).clip(lower=0.0)
    idle_gib = (alloc_mem - nodes["requested_memory_bytes"]).clip(lower=0.0) / GIB
    nodes["allocatable_cpu_cores"], nodes["allocatable_memory_bytes"] = alloc_cpu, alloc_mem
    nodes["usd_per_month"] = nodes["usd_per_hour"] * nodes["weight"] * hpm
    nodes["idle_usd_per_month"] = (idle_cpu * nodes["usd_per_vcpu_hour"] + idle_gib * nodes["usd_per_gib_hour"]) * hpm
    nodes["nodes"] = nodes["weight"]
    devices = gpu_cost.node_devices(snapshot.tables["nodes"], nodes)
    gpus = gpu_cost.gpu_idle(snapshot, devices, nodes[["cluster", "node", "weight", "observed_hours"]], hpm)
    nodes = nodes.merge(gpus, on=["cluster", "node"], how="left")
    nodes["idle_usd_per_month"] += nodes["gpu_idle_usd_per_month"]  # GPUs no pod requests, at their GPU-hour price
    return nodes.drop(columns=["_cpu_h", "_mem_h"])


def idle_costs(snapshot, config, nodes: pd.DataFrame | None = None) -> pd.DataFrame:
    """Idle cost per (cluster, node_group, instance_type, capacity_type), schema IDLE_COLUMNS: the nodes of
    :func:`node_requests` (``nodes``, computed when not given) summed per group."""
    nodes = node_requests(snapshot, config) if nodes is None else nodes.copy()
    group = ["cluster", "node_group", "instance_type", "capacity_type"]
    sums = ["nodes", "allocatable_cpu_cores", "requested_cpu_cores", "allocatable_memory_bytes",
            "requested_memory_bytes", "allocatable_gpus", "requested_gpus", "usd_per_month", "idle_usd_per_month",
            "gpu_idle_usd_per_month"]
    nodes[group] = nodes[group].fillna("")
    out = nodes.groupby(group, as_index=False, sort=True).agg(
        **{c: (c, "sum") for c in sums[:7]},
        # min_count=1 keeps an unpriced group NaN instead of 0.
        **{c: (c, lambda s: s.sum(min_count=len(s))) for c in sums[7:]},
    )
    return out[[c.name for c in IDLE_COLUMNS]]


def _observed_hours(snapshot, nodes: pd.DataFrame) -> np.ndarray:
    """Hours each node's cluster was observed (Snapshot.hours_of); without a recorded window, the longest
    hours seen (else 1)."""
    hours = snapshot.hours_of(nodes["cluster"])
    seen = nodes["hours_seen"].max() if not nodes.empty else np.nan
    return np.where(np.isnan(hours), float(seen) if seen and seen > 0 else 1.0, hours)
