"""Bankable savings: how many nodes the pods' requests need today and after the recommendations.

Request savings are not money until nodes go away. This module packs every node group's pods onto
that group's instance type, first-fit decreasing (FFD) on two dimensions (CPU cores, memory bytes),
once with today's requests and once with the recommended ones:

- a node holds its allocatable (capacity minus the kubelet's system and kube reserve and the eviction
  threshold) minus the requests of the DaemonSets that run on the group's nodes (one pod per node);
- a workload's pods go to the node groups it ran on, in proportion to its pod-hours there; its pod
  count is the pods it is costed at (cost.pods_for_cost: replicas, or the average pods that batch and
  autoscaled work ran) rounded up, with 5% slack so that rollout overlap (2.02 average pods) stays 2;
- zone-bound pods stay in the zones they ran in, in proportion to their pod-hours there, and are
  packed only onto nodes of that zone: workloads that must spread over zones (workloads.zone_spread)
  and workloads with a PersistentVolumeClaim (an EBS volume lives in one zone); other pods go anywhere.

nodes_now - nodes_after, at the group's node price, is the bankable saving: what cluster-autoscaler or
Karpenter consolidation could remove once the recommendations are applied. It is an estimate: real
consolidation also honours PDBs, pod affinity, node selectors and taints, and stops at the group's
minimum size. The same packing on the other instance types of the family names the type that would
hold the recommended pods for the least money.

Units: cores, bytes, USD per month (``[general] hours_per_month``). Pure functions: no I/O.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..quantity import GIB
from ..schema import NODE_GROUP_COLUMNS, WORKLOAD_KEY
from .cost import node_unit_prices

GROUP = ["cluster", "node_group", "instance_type", "capacity_type"]
KEY = list(WORKLOAD_KEY)
SIZES = ["cpu_now", "mem_now", "cpu_after", "mem_after"]
CHURN = 0.05  # average pods this far above an integer still count as that integer (rollout overlap)


def pod_sizes(recommendations: pd.DataFrame) -> pd.DataFrame:
    """Per workload: one pod's requests now and after (cores, bytes), the pods it is costed at, its kind.

    A pod's request is the sum of its main containers' and at least its largest init container's (the
    scheduler's effective request); an unset request counts 0. After = the recommendation where the
    status is "change", else the current value."""
    r = recommendations
    change = r["status"].eq("change")
    frame = r[KEY].copy()
    frame["cpu_now"] = r["cpu_request_cores_current"].fillna(0.0)
    frame["mem_now"] = r["memory_request_bytes_current"].fillna(0.0)
    frame["cpu_after"] = r["cpu_request_cores_recommended"].where(change & r["cpu_request_cores_recommended"].notna(),
                                                                  r["cpu_request_cores_current"]).fillna(0.0)
    frame["mem_after"] = r["memory_request_bytes_recommended"].where(change & r["memory_request_bytes_recommended"].notna(),
                                                                     r["memory_request_bytes_current"]).fillna(0.0)
    sizes = ["cpu_now", "mem_now", "cpu_after", "mem_after"]
    init = r["container_type"].eq("init") if "container_type" in r else pd.Series(False, index=r.index)
    main = frame[~init].groupby(KEY)[sizes].sum()
    largest_init = frame[init].groupby(KEY)[sizes].max()
    per_pod = main.combine(largest_init, np.fmax, fill_value=0.0) if not largest_init.empty else main
    pods = r.groupby(KEY)["replicas"].first()
    out = per_pod.join(pods, how="left").reset_index()
    return out[KEY + sizes + ["replicas"]]


def group_nodes(snapshot, config) -> pd.DataFrame:
    """Per node group (GROUP): nodes (node-weeks weighted by the share of the window they existed, as
    idle.csv), the median node's allocatable cores and bytes, the type's vCPUs and GiB, USD per node-hour
    (mean over nodes weighted by hours), region, and its zones (sorted tuple)."""
    nodes = node_unit_prices(snapshot, config)
    hours = snapshot.window_hours() or float(nodes["hours_seen"].max() or 1.0)
    nodes[GROUP] = nodes[GROUP].fillna("")
    nodes["weight"] = (nodes["hours_seen"] / hours).clip(upper=1.0).fillna(1.0)
    nodes["_price_w"] = nodes["usd_per_hour"] * nodes["weight"]
    g = nodes.groupby(GROUP, as_index=False).agg(
        nodes=("weight", "sum"), allocatable_cpu_cores=("allocatable_cpu_cores", "median"),
        allocatable_memory_bytes=("allocatable_memory_bytes", "median"), vcpu=("vcpu", "median"),
        memory_gib=("memory_gib", "median"), _price_w=("_price_w", lambda s: s.sum(min_count=len(s))),
        region=("region", "first"), zones=("zone", lambda z: tuple(sorted({str(v) for v in z if v}))))
    g["usd_per_hour"] = g["_price_w"] / g["nodes"].where(g["nodes"] > 0)
    return g.drop(columns="_price_w")


def _placed_groups(snapshot, config) -> pd.DataFrame:
    """Placement rows with the node group of their node: KEY + GROUP + zone + pod_hours."""
    nodes = node_unit_prices(snapshot, config)[["cluster", "node", *GROUP[1:]]].fillna("")
    placement = snapshot.tables["placement"]
    pl = placement[KEY + ["node", "zone", "pod_hours"]].merge(nodes, on=["cluster", "node"], how="inner")
    pl["zone"] = pl["zone"].fillna("").astype(str)
    return pl[pl["pod_hours"] > 0].groupby(KEY + GROUP[1:] + ["zone"], as_index=False)["pod_hours"].sum()


def pods_per_group(placed: pd.DataFrame, sizes: pd.DataFrame, workloads: pd.DataFrame) -> pd.DataFrame:
    """Whole pods of each workload per node group and zone: its pod count split by its pod-hour shares,
    largest remainder first, so the parts add up to the workload's pods. Zone-bound workloads keep the
    zones they ran in: those that must spread over zones (workloads.zone_spread) and those with a
    PersistentVolumeClaim (a volume lives in one zone). Other pods get zone '' (any)."""
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


def pack(items: pd.DataFrame, cpu: float, memory: float) -> tuple[int, int]:
    """(nodes, oversized pods) first-fit decreasing needs for ``items`` on nodes of ``cpu`` cores and
    ``memory`` bytes free. ``items``: cpu, mem (one pod's request), zone ('' = any), pods (count).

    Pods are sorted by their larger share of a node (CPU or memory), biggest first, and each goes to the
    first open node it fits on. Identical pods are placed together: first-fit fills the earliest nodes
    up before the next, so each run of identical pods is a cumulative sum over the open nodes, and the
    loop runs over distinct pod shapes, not pods. A node opened for any-zone pods gets its zone from
    the first zone-bound pod placed on it. A pod bigger than an empty node takes a node of its own and is
    counted as oversized."""
    if items.empty or cpu <= 0 or memory <= 0:
        return 0, 0
    shapes = items.groupby(["cpu", "mem", "zone"], as_index=False)["pods"].sum()
    shapes = shapes[(shapes["pods"] > 0) & ((shapes["cpu"] > 0) | (shapes["mem"] > 0))]
    size = np.maximum(shapes["cpu"] / cpu, shapes["mem"] / memory)
    shapes = shapes.assign(_size=size).sort_values(["_size", "cpu", "mem", "zone"], ascending=False, kind="mergesort")
    free_cpu, free_mem, zone = np.zeros(0), np.zeros(0), np.zeros(0, dtype=object)
    oversized = 0
    for c, m, z, k in shapes[["cpu", "mem", "zone", "pods"]].itertuples(index=False):
        k = int(k)
        if c > cpu + 1e-9 or m > memory + 1e-9:
            oversized += k
            continue
        usable = (zone == z) | (zone == "") if z else np.ones(len(zone), dtype=bool)
        room = np.minimum(_fits(free_cpu, c), _fits(free_mem, m)) * usable
        before = np.cumsum(room) - room
        take = np.clip(k - before, 0, room)
        free_cpu, free_mem = free_cpu - take * c, free_mem - take * m
        zone = np.where((take > 0) & (zone == ""), z, zone).astype(object)
        rest = k - int(take.sum())
        if rest > 0:
            per_node = int(min(_fits(np.array([cpu]), c)[0], _fits(np.array([memory]), m)[0], rest))
            new = -(-rest // per_node)
            counts = np.full(new, per_node)
            counts[-1] = rest - per_node * (new - 1)
            free_cpu = np.concatenate([free_cpu, cpu - counts * c])
            free_mem = np.concatenate([free_mem, memory - counts * m])
            zone = np.concatenate([zone, np.full(new, z, dtype=object)])
    return len(free_cpu) + oversized, oversized


def _fits(free: np.ndarray, need: float) -> np.ndarray:
    """How many pods needing ``need`` fit into each ``free`` (a zero need fits without limit)."""
    if need <= 0:
        return np.full(len(free), 10**9, dtype=np.int64)
    return np.floor(free / need + 1e-9).clip(min=0).astype(np.int64)


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
    groups = group_nodes(snapshot, config)
    sizes = pod_sizes(recommendations)
    placed = _placed_groups(snapshot, config)
    overhead = daemonset_overhead(placed, sizes)
    groups = groups.merge(overhead, on=GROUP, how="left").fillna({c: 0.0 for c in SIZES})
    items = pods_per_group(placed[placed["kind"] != "DaemonSet"], sizes, snapshot.tables["workloads"])
    by_group = {key: frame for key, frame in items.groupby(GROUP)}
    results = [_pack_group(g, by_group.get(tuple(g[c] for c in GROUP), items.iloc[0:0]), candidates)
               for g in groups.to_dict("records")]
    out = groups.join(pd.DataFrame(results, index=groups.index))
    return _money(out, config.general.hours_per_month)[columns]


def _pack_group(g: dict, items: pd.DataFrame, candidates: pd.DataFrame | None) -> dict:
    now_cap = (g["allocatable_cpu_cores"] - g["cpu_now"], g["allocatable_memory_bytes"] - g["mem_now"])
    after_cap = (g["allocatable_cpu_cores"] - g["cpu_after"], g["allocatable_memory_bytes"] - g["mem_after"])
    now_items = items.rename(columns={"cpu_now": "cpu", "mem_now": "mem"})
    after_items = items.rename(columns={"cpu_after": "cpu", "mem_after": "mem"})
    nodes_now, over_now = pack(now_items, *now_cap)
    nodes_after, over_after = pack(after_items, *after_cap)
    best = _best_type(g, after_items, nodes_after, candidates)
    notes = []
    if over_now or over_after:
        notes.append(f"{max(over_now, over_after)} pod(s) larger than a node's free allocatable: one node each")
    if items.empty:
        notes.append("no pods placed on this group besides DaemonSets")
    return {"pods": float(items["pods"].sum()), "nodes_now": float(nodes_now), "nodes_after": float(nodes_after),
            **best, "note": "; ".join(notes)}


def _best_type(g: dict, after_items: pd.DataFrame, nodes_after: int, candidates: pd.DataFrame | None) -> dict:
    """The instance type of the group's family holding the recommended pods (and the DaemonSets) for the
    least money. A candidate's price is its list price scaled by the group's own price over its type's
    list price (carrying over region, discounts and spot); its allocatable is its capacity times the
    share of capacity the group's nodes leave allocatable."""
    none = {"best_instance_type": "", "best_nodes_after": np.nan, "best_usd_per_hour": np.nan}
    itype = str(g["instance_type"])
    if candidates is None or candidates.empty or "." not in itype or after_items.empty:
        return none
    family = candidates[(candidates["region"] == g["region"])
                        & (candidates["instance_type"].str.split(".").str[0] == itype.split(".")[0])]
    own = family[family["instance_type"] == itype]
    if own.empty or not (own["usd_per_hour"].iloc[0] > 0) or not (g["usd_per_hour"] > 0):
        return none
    scale = g["usd_per_hour"] / own["usd_per_hour"].iloc[0]
    cpu_share = g["allocatable_cpu_cores"] / g["vcpu"]
    mem_share = g["allocatable_memory_bytes"] / (g["memory_gib"] * GIB)
    best = ("", np.inf, np.inf)  # (type, USD per hour for all nodes, nodes)
    for t, vcpu, gib, price in family[["instance_type", "vcpu", "memory_gib", "usd_per_hour"]].itertuples(index=False):
        if t == itype:
            n, over = nodes_after, 0
        else:
            n, over = pack(after_items, vcpu * cpu_share - g["cpu_after"], gib * GIB * mem_share - g["mem_after"])
        total = n * price * scale
        if over or not np.isfinite(total):
            continue
        if (total, t != itype) < (best[1], best[0] != itype):
            best = (t, total, n)
    if not best[0]:
        return none
    return {"best_instance_type": best[0], "best_nodes_after": float(best[2]),
            "best_usd_per_hour": best[1] / best[2] if best[2] else 0.0}


def _money(out: pd.DataFrame, hours_per_month: float) -> pd.DataFrame:
    node_month = out["usd_per_hour"] * hours_per_month
    out["zones"] = out["zones"].map(",".join)
    out["usd_per_node_month"] = node_month
    out["daemonset_cpu_cores"], out["daemonset_memory_bytes"] = out["cpu_after"], out["mem_after"]
    out["usd_per_month"] = out["nodes"] * node_month
    out["usd_per_month_now"] = out["nodes_now"] * node_month
    out["usd_per_month_after"] = out["nodes_after"] * node_month
    out["bankable_savings_usd_per_month"] = out["usd_per_month_now"] - out["usd_per_month_after"]
    out["consolidation_usd_per_month"] = out["usd_per_month"] - out["usd_per_month_now"]
    out["best_usd_per_month_after"] = out["best_nodes_after"] * out["best_usd_per_hour"] * hours_per_month
    return out


_DTYPES = {"str": "object", "float": "float64", "bool": "bool", "int": "int64"}
