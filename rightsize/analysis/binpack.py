"""Bankable savings: how many nodes the pods' requests need today and after the recommendations.

Request savings are not money until nodes go away. This module packs every node group's pods onto
that group's instance type, first-fit decreasing (FFD) on two dimensions (CPU cores, memory bytes), and
on GPU nodes a third (GPU devices: a MIG slice counts its share of a GPU, a time-sliced GPU each replica it
advertises; which MIG slices each node offers is not modelled), once with today's requests and once with
the recommended ones:

- a node holds its allocatable (capacity minus the kubelet's system and kube reserve and the eviction
  threshold) minus the requests of the DaemonSets that run on the group's nodes (one pod per node);
- a workload's pods go to the node groups it ran on, in proportion to its pod-hours there; its pod
  count is the pods it is costed at (cost.pods_for_cost: replicas, or the average pods that batch and
  autoscaled work ran) rounded up, with 5% slack so that rollout overlap (2.02 average pods) stays 2;
- zone-bound pods stay in the zones they ran in, in proportion to their pod-hours there, and are
  packed only onto nodes of that zone: workloads that must spread over zones (workloads.zone_spread)
  and workloads with a PersistentVolumeClaim (an EBS volume lives in one zone); other pods go anywhere.

min(nodes_now, nodes seen) - nodes_after, at the group's node price, is the bankable saving: what
cluster-autoscaler or Karpenter consolidation could remove once the recommendations are applied. The packing
starts from the nodes that exist: requests needing more nodes than ran cannot be true (requests above
allocatable), so the saving never exceeds the price of the nodes seen. It is an estimate: real
consolidation also honours PDBs, pod affinity, node selectors and taints, and stops at the group's
minimum size. The same packing on the other instance types of the family names the type that would
hold the recommended pods for the least money.

Units: cores, bytes, USD per month (``[general] hours_per_month``). Pure functions: no I/O.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from ..schema import NODE_GROUP_COLUMNS, WORKLOAD_KEY
from . import gpu_cost
from .cost import request_after, weighted_nodes
from .pod_request import effective_requests

GROUP = ["cluster", "node_group", "instance_type", "capacity_type"]
KEY = list(WORKLOAD_KEY)
SIZES = ["cpu_now", "mem_now", "cpu_after", "mem_after", "gpu_now", "gpu_after"]
CHURN = 0.05  # average pods this far above an integer still count as that integer (rollout overlap)


def pod_sizes(recommendations: pd.DataFrame) -> pd.DataFrame:
    """Per workload: one pod's requests now and after (cores, bytes) and the pods it is costed at (replicas).

    A pod's request is the scheduler's effective request (pod_request.effective_requests: main
    containers plus native sidecars, at least each init container's step); an unset request counts 0.
    After = the recommendation where the status is "change", else the current value."""
    r = recommendations
    frame = r[KEY + [c for c in ("container_type", "init_order") if c in r]].copy()
    frame["cpu_now"] = r["cpu_request_cores_current"].fillna(0.0)
    frame["mem_now"] = r["memory_request_bytes_current"].fillna(0.0)
    frame["cpu_after"] = request_after(r, "cpu_request_cores").fillna(0.0)
    frame["mem_after"] = request_after(r, "memory_request_bytes").fillna(0.0)
    frame["gpu_now"], frame["gpu_after"] = gpu_cost.gpu_devices(r)
    per_pod = effective_requests(frame, KEY, SIZES)
    pods = r.groupby(KEY)["replicas"].first().reset_index()
    out = per_pod.merge(pods, on=KEY, how="left")
    return out[KEY + SIZES + ["replicas"]]


def group_nodes(nodes: pd.DataFrame) -> pd.DataFrame:
    """Per node group (GROUP) of ``nodes`` (cost.weighted_nodes): nodes (each weighted by the share of
    the window it existed, as idle.csv), the median node's allocatable cores, bytes and GPU devices
    (``gpu_devices``, 0 without), the type's vCPUs, GiB and GPUs, USD per node-hour (mean over nodes weighted
    by hours), region, and its zones (sorted tuple)."""
    nodes = nodes.assign(**{c: nodes.get(c, pd.Series(0.0, index=nodes.index)) for c in ("gpu_devices", "gpus")})
    nodes[GROUP] = nodes[GROUP].fillna("")
    nodes["_price_w"] = nodes["usd_per_hour"] * nodes["weight"]
    g = nodes.groupby(GROUP, as_index=False).agg(
        nodes=("weight", "sum"), allocatable_cpu_cores=("allocatable_cpu_cores", "median"),
        allocatable_memory_bytes=("allocatable_memory_bytes", "median"), allocatable_gpus=("gpu_devices", "median"),
        gpus=("gpus", "median"), vcpu=("vcpu", "median"),
        memory_gib=("memory_gib", "median"), _price_w=("_price_w", lambda s: s.sum(min_count=len(s))),
        region=("region", "first"), zones=("zone", lambda z: tuple(sorted({str(v) for v in z if v}))))
    g["usd_per_hour"] = g["_price_w"] / g["nodes"].where(g["nodes"] > 0)
    return g.drop(columns="_price_w")


def _placed_groups(snapshot, nodes: pd.DataFrame) -> pd.DataFrame:
    """Placement rows with the node group of their node: KEY + GROUP + zone + pod_hours."""
    nodes = nodes[["cluster", "node", *GROUP[1:]]].fillna("")
    placement = snapshot.tables["placement"]
    pl = placement[KEY + ["node", "zone", "pod_hours"]].merge(nodes, on=["cluster", "node"], how="inner")
    pl["zone"] = pl["zone"].fillna("").astype(str)
    return pl[pl["pod_hours"] > 0].groupby(KEY + GROUP[1:] + ["zone"], as_index=False)["pod_hours"].sum()


def pods_per_group(placed: pd.DataFrame, sizes: pd.DataFrame, workloads: pd.DataFrame) -> pd.DataFrame:
    """Whole pods of each workload per node group and zone: its pod count split by its pod-hour shares,
    largest remainder first, so the parts add up to the workload's pods. Zone-bound workloads keep the
    zones they ran in: those that must spread over zones (workloads.zone_spread) and those with a
    PersistentVolumeClaim (a volume lives in one zone). Other pods get zone '' (any)."""
    sizes = sizes.assign(**{c: sizes.get(c, pd.Series(0.0, index=sizes.index)) for c in ("gpu_now", "gpu_after")})
    rows = placed.merge(sizes, on=KEY, how="inner")
    rows = rows[rows["replicas"].notna()].copy()
    pods = np.ceil((rows["replicas"] - CHURN).clip(lower=0.0))
    share = rows["pod_hours"] / rows.groupby(KEY)["pod_hours"].transform("sum")
    exact = pods * share
    rows["pods"] = np.floor(exact + 1e-9)
    missing = pods - rows.groupby(KEY)["pods"].transform("sum")
    rank = (exact - rows["pods"]).sort_values(ascending=False, kind="mergesort")
    rank = rank.groupby([rows.loc[rank.index, k] for k in KEY]).cumcount().reindex(rows.index)
    rows["pods"] += (rank < missing).astype(float)
    flags = workloads[KEY].copy()
    flags["_bound"] = False
    for col in ("zone_spread", "has_pvc"):
        if col in workloads:
            flags["_bound"] |= workloads[col].fillna(False).astype(bool)
    rows = rows.merge(flags.drop_duplicates(KEY), on=KEY, how="left")
    rows["zone"] = rows["zone"].where(rows["_bound"].fillna(False).astype(bool), "")
    rows = rows[rows["pods"] > 0]
    return rows.groupby(GROUP + ["kind", "namespace", "workload", "zone"] + SIZES, as_index=False)["pods"].sum()


class Shapes(NamedTuple):
    """Distinct pod shapes of a node group: one pod's cores, bytes and GPU devices, its zone ('' = any), how many."""

    cpu: np.ndarray
    mem: np.ndarray
    zone: np.ndarray
    pods: np.ndarray
    gpu: np.ndarray


def _shapes(agg: pd.DataFrame, index=slice(None)) -> Shapes:
    return Shapes(agg["cpu"].to_numpy(float)[index], agg["mem"].to_numpy(float)[index], agg["zone"].to_numpy(object)[index],
                  agg["pods"].to_numpy(np.int64)[index], agg["gpu"].to_numpy(float)[index])


def shapes_of(items: pd.DataFrame) -> Shapes:
    """``items`` (cpu, mem, optionally gpu, zone, pods per row) summed per distinct shape; pods that request
    nothing dropped."""
    items = items.assign(gpu=items.get("gpu", pd.Series(0.0, index=items.index)))
    agg = items.groupby(["cpu", "mem", "gpu", "zone"], as_index=False, sort=False)["pods"].sum()
    return _shapes(agg[(agg["pods"] > 0) & ((agg["cpu"] > 0) | (agg["mem"] > 0) | (agg["gpu"] > 0))])


def pack(items: pd.DataFrame | Shapes, cpu: float, memory: float, gpu: float = np.inf) -> tuple[int, int]:
    """(nodes, oversized pods) first-fit decreasing needs for ``items`` on nodes of ``cpu`` cores, ``memory``
    bytes and ``gpu`` GPU devices free. ``items``: cpu, mem, gpu (one pod's request; gpu optional), zone
    ('' = any), pods (count), as a frame or as Shapes.

    Pods are sorted by their largest share of a node (CPU, memory or GPUs), biggest first, and each goes to the
    first open node it fits on. Identical pods are placed together: first-fit fills the earliest nodes
    up before the next, so each run of identical pods is a cumulative sum over the open nodes, and the
    loop runs over distinct pod shapes, not pods. A node opened for any-zone pods gets its zone from
    the first zone-bound pod placed on it. A pod bigger than an empty node takes a node of its own and is
    counted as oversized."""
    shapes = items if isinstance(items, Shapes) else shapes_of(items)
    if len(shapes.pods) == 0 or cpu <= 0 or memory <= 0:
        return 0, 0
    size = np.maximum(np.maximum(shapes.cpu / cpu, shapes.mem / memory), shapes.gpu / gpu)
    zone_rank = np.unique(shapes.zone.astype(str), return_inverse=True)[1]
    order = np.lexsort((-zone_rank, -shapes.mem, -shapes.cpu, -shapes.gpu, -size))
    cap = np.array([cpu, memory, gpu])
    free, zone = np.zeros((0, 3)), np.zeros(0, dtype=object)
    oversized = 0
    for need, z, k in zip(np.column_stack([shapes.cpu, shapes.mem, shapes.gpu])[order], shapes.zone[order], shapes.pods[order]):
        if (need > cap + 1e-9).any():
            oversized += int(k)
            continue
        if len(zone):
            room = np.min([_fits(free[:, d], need[d]) for d in range(3)], axis=0)
            if z:
                room = np.where((zone == z) | (zone == ""), room, 0.0)
            take = np.minimum(np.maximum(k - (np.cumsum(room) - room), 0.0), room)
            free = free - take[:, None] * need
            if z:
                zone = np.where((take > 0) & (zone == ""), z, zone).astype(object)
            k -= int(take.sum())
        if k > 0:
            per_node = int(min(min(_fits(cap[d], need[d]) for d in range(3)), k))
            new = -(-int(k) // per_node)
            counts = np.full(new, float(per_node))
            counts[-1] = k - per_node * (new - 1)
            free = np.concatenate([free, cap - counts[:, None] * need])
            zone = np.concatenate([zone, np.full(new, z, dtype=object)])
    return len(zone) + oversized, oversized


def _fits(free, need: float):
    """How many pods needing ``need`` fit into ``free`` (array or scalar; a zero need fits without limit)."""
    if need <= 0:
        return np.full(np.shape(free), 1e9) if np.ndim(free) else 1e9
    with np.errstate(invalid="ignore"):  # inf free (a dimension without a bound) / need
        return np.minimum(np.maximum(np.floor(np.asarray(free) / need + 1e-9), 0.0), 1e9)


def daemonset_overhead(placed: pd.DataFrame, sizes: pd.DataFrame) -> pd.DataFrame:
    """Per node group: the requests of one pod of every DaemonSet seen on its nodes (a pod per node)."""
    ds = placed[placed["kind"] == "DaemonSet"][KEY + GROUP[1:]].drop_duplicates().merge(sizes, on=KEY, how="inner")
    return ds.groupby(GROUP, as_index=False)[SIZES].sum()


def node_groups(snapshot, recommendations: pd.DataFrame, config, candidates: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per node group (schema.NODE_GROUP_COLUMNS): nodes now and after, their monthly cost, the
    bankable saving, and the instance type of the family that packs the recommended pods cheapest.

    ``candidates``: list prices of instance types (region, instance_type, vcpu, memory_gib, usd_per_hour),
    e.g. the bundled catalogue; without it no other type is tried."""
    columns = [c.name for c in NODE_GROUP_COLUMNS]
    if snapshot.tables["nodes"].empty or recommendations.empty:
        return pd.DataFrame({c.name: pd.Series(dtype=_DTYPES[c.dtype]) for c in NODE_GROUP_COLUMNS})
    nodes = weighted_nodes(snapshot, config)
    devices = gpu_cost.node_devices(snapshot.tables["nodes"], nodes)
    nodes = nodes.merge(devices[["cluster", "node"]].assign(gpu_devices=gpu_cost.device_units(devices)), on=["cluster", "node"],
                        how="left")
    groups = group_nodes(nodes)
    sizes = pod_sizes(recommendations)
    placed = _placed_groups(snapshot, nodes)
    overhead = daemonset_overhead(placed, sizes)
    groups = groups.merge(overhead, on=GROUP, how="left").fillna({c: 0.0 for c in SIZES})
    items = pods_per_group(placed[placed["kind"] != "DaemonSet"], sizes, snapshot.tables["workloads"])
    now, after = _shapes_by_group(items, "now"), _shapes_by_group(items, "after")
    pods = items.groupby(GROUP)["pods"].sum()
    families = _families(candidates)
    results = []
    for g in groups.to_dict("records"):
        key = tuple(g[c] for c in GROUP)
        results.append(_pack_group(g, now.get(key, _NO_SHAPES), after.get(key, _NO_SHAPES), float(pods.get(key, 0.0)),
                                   families.get((g["region"], str(g["instance_type"]).split(".")[0]))))
    out = groups.join(pd.DataFrame(results, index=groups.index))
    return _money(out, config.general.hours_per_month)[columns]


_NO_SHAPES = Shapes(np.zeros(0), np.zeros(0), np.zeros(0, dtype=object), np.zeros(0, dtype=np.int64), np.zeros(0))


def _shapes_by_group(items: pd.DataFrame, when: str) -> dict[tuple, Shapes]:
    """Shapes per node group for today's ("now") or the recommended ("after") requests, in one pass."""
    frame = items.rename(columns={f"cpu_{when}": "cpu", f"mem_{when}": "mem", f"gpu_{when}": "gpu"})
    frame = frame[(frame["pods"] > 0) & ((frame["cpu"] > 0) | (frame["mem"] > 0) | (frame["gpu"] > 0))]
    agg = frame.groupby(GROUP + ["cpu", "mem", "gpu", "zone"], as_index=False, sort=False)["pods"].sum()
    return {key: _shapes(agg, i) for key, i in agg.groupby(GROUP, sort=False).indices.items()}


class Family(NamedTuple):
    """Instance types of one family in one region: names, vCPUs, GiB, list price USD/hour, GPUs."""

    types: np.ndarray
    vcpu: np.ndarray
    memory_gib: np.ndarray
    usd_per_hour: np.ndarray
    gpus: np.ndarray


def _families(candidates: pd.DataFrame | None) -> dict[tuple, Family]:
    """Candidate types per (region, family), the family being the type's name before the dot (m5, r6g)."""
    if candidates is None or candidates.empty:
        return {}
    c = candidates.assign(_family=candidates["instance_type"].astype(str).str.split(".").str[0])
    types, vcpu = c["instance_type"].astype(str).to_numpy(object), c["vcpu"].to_numpy(float)
    gib, price = c["memory_gib"].to_numpy(float), c["usd_per_hour"].to_numpy(float)
    gpus = c.get("gpus", pd.Series(0.0, index=c.index)).fillna(0.0).to_numpy(float)
    return {key: Family(types[i], vcpu[i], gib[i], price[i], gpus[i])
            for key, i in c.groupby(["region", "_family"], sort=False).indices.items()}


def _pack_group(g: dict, now: Shapes, after: Shapes, pods: float, family: pd.DataFrame | None) -> dict:
    now_cap = (g["allocatable_cpu_cores"] - g["cpu_now"], g["allocatable_memory_bytes"] - g["mem_now"])
    after_cap = (g["allocatable_cpu_cores"] - g["cpu_after"], g["allocatable_memory_bytes"] - g["mem_after"])
    if min(*now_cap, *after_cap) <= 0 or not np.isfinite(min(*now_cap, *after_cap)):
        return {"pods": pods, "nodes_now": np.nan, "nodes_after": np.nan, "best_instance_type": "",
                "best_nodes_after": np.nan, "best_usd_per_hour": np.nan,
                "note": "DaemonSets request more than a node's allocatable (or allocatable unknown): not packed"}
    gpus = g["allocatable_gpus"] if g["allocatable_gpus"] > 0 else np.inf  # no GPUs (or unknown): not a bound
    nodes_now, over_now = pack(now, *now_cap, gpus - g["gpu_now"])
    nodes_after, over_after = pack(after, *after_cap, gpus - g["gpu_after"])
    notes = []
    if over_now or over_after:
        notes.append(f"{max(over_now, over_after)} pod(s) larger than a node's free allocatable: one node each")
    if not pods:
        notes.append("no pods placed on this group besides DaemonSets")
    return {"pods": pods, "nodes_now": float(nodes_now), "nodes_after": float(nodes_after),
            **_best_type(g, after, nodes_after, family), "note": "; ".join(notes)}


def _best_type(g: dict, after: Shapes, nodes_after: int, family: Family | None) -> dict:
    """The instance type of the group's family holding the recommended pods (and the DaemonSets) for the
    least money. A candidate's price is its list price scaled by the group's own price over its type's
    list price (carrying over region, discounts and spot); its allocatable is its capacity times the
    share of capacity the group's nodes leave allocatable. Types whose lower bound (total requests over
    one node's room) already costs more than the best so far are not packed."""
    none = {"best_instance_type": "", "best_nodes_after": np.nan, "best_usd_per_hour": np.nan}
    itype = str(g["instance_type"])
    own = np.flatnonzero(family.types == itype) if family is not None else []
    if len(own) == 0 or len(after.pods) == 0 or not (family.usd_per_hour[own[0]] > 0) or not (g["usd_per_hour"] > 0):
        return none
    price = family.usd_per_hour * (g["usd_per_hour"] / family.usd_per_hour[own[0]])
    cpu_room = family.vcpu * g["allocatable_cpu_cores"] / g["vcpu"] - g["cpu_after"]
    mem_room = family.memory_gib * g["allocatable_memory_bytes"] / g["memory_gib"] - g["mem_after"]
    # GPU devices: the type's GPUs x the devices one of the group's GPUs offers (time-slicing); no bound without GPUs
    gpu_room = family.gpus * g["allocatable_gpus"] / g["gpus"] - g["gpu_after"] if g["allocatable_gpus"] > 0 else \
        np.full(len(family.types), np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = np.maximum.reduce([(after.cpu * after.pods).sum() / cpu_room, (after.mem * after.pods).sum() / mem_room,
                                   (after.gpu * after.pods).sum() / gpu_room])
    lower = np.where((cpu_room > 0) & (mem_room > 0) & (gpu_room > 0), np.ceil(bound - 1e-9) * price, np.inf)
    best = (itype, nodes_after * price[own[0]], nodes_after)
    for i in np.argsort(lower, kind="stable"):
        if not lower[i] < best[1]:
            break
        n, over = pack(after, cpu_room[i], mem_room[i], gpu_room[i])
        if not over and n * price[i] < best[1]:
            best = (family.types[i], n * price[i], n)
    return {"best_instance_type": best[0], "best_nodes_after": float(best[2]),
            "best_usd_per_hour": best[1] / best[2] if best[2] else 0.0}


def _money(out: pd.DataFrame, hours_per_month: float) -> pd.DataFrame:
    """Monthly figures of the packing. It starts from the nodes that exist: today's requests needing more
    nodes than ran is impossible input (requests above allocatable, consistency.py), so the savings are
    counted from the nodes seen and can never exceed their price."""
    node_month = out["usd_per_hour"] * hours_per_month
    start = np.minimum(out["nodes_now"], out["nodes"])
    out["zones"] = out["zones"].map(",".join)
    out["usd_per_node_month"] = node_month
    out["daemonset_cpu_cores"], out["daemonset_memory_bytes"] = out["cpu_after"], out["mem_after"]
    out["allocatable_gpus"] = out["allocatable_gpus"].fillna(0.0)
    out["usd_per_month"] = out["nodes"] * node_month
    out["usd_per_month_now"] = start * node_month
    out["usd_per_month_after"] = out["nodes_after"] * node_month
    out["bankable_savings_usd_per_month"] = out["usd_per_month_now"] - out["usd_per_month_after"]
    out["consolidation_usd_per_month"] = out["usd_per_month"] - out["usd_per_month_now"]
    beyond = out["nodes_now"] > out["nodes"] + 1e-9
    note = ("today's requests need " + out["nodes_now"].map("{:g}".format) + " node(s) but "
            + out["nodes"].map("{:.3g}".format) + " ran: requests above allocatable; savings start from the nodes that ran")
    out["note"] = np.where(beyond, np.where(out["note"] != "", out["note"] + "; " + note, note), out["note"])
    out["best_usd_per_month_after"] = out["best_nodes_after"] * out["best_usd_per_hour"] * hours_per_month
    return out


_DTYPES = {"str": "object", "float": "float64", "bool": "bool", "int": "int64"}
