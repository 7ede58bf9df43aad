"""Inputs checked for consistency: what cannot be true, or is not covered, is reported with its size.

- requests above a node's allocatable (the scheduler cannot place that: the requests are not what ran);
- pods on nodes without node metrics (their requests are in no node's bill);
- nodes without a price (the node bill leaves them out);
- the requests' cost above the node bill, explained by its parts (:func:`requests_vs_bill`).

Each finding is a caveat {code, message, affects} with its size (cores, GiB, pod-hours, USD/month).
Pure functions over the analysis' tables; money in USD/month, CPU in cores, memory in bytes.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..quantity import GIB
from ..schema import WORKLOAD_KEY
from .summary import flag_mask

TOLERANCE = 0.02  # requests within 2 % of allocatable are rounding (pod-hours vs node hours), not a finding


def caveats(snapshot, nodes: pd.DataFrame, hours_per_month: float) -> list[dict]:
    """Caveats of requests above allocatable, pods on unknown nodes and nodes without prices.
    ``nodes``: cost.node_requests."""
    return (_above_allocatable(nodes, hours_per_month) + _unknown_nodes(snapshot, nodes)
            + _unpriced_nodes(nodes))


def _excess(nodes: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Per node, the cores and bytes requested beyond its (weighted) allocatable; 0 within TOLERANCE."""
    over_cpu = nodes["requested_cpu_cores"] - nodes["allocatable_cpu_cores"]
    over_mem = nodes["requested_memory_bytes"] - nodes["allocatable_memory_bytes"]
    cpu = over_cpu.where(over_cpu > TOLERANCE * nodes["allocatable_cpu_cores"], 0.0).fillna(0.0)
    mem = over_mem.where(over_mem > TOLERANCE * nodes["allocatable_memory_bytes"], 0.0).fillna(0.0)
    return cpu, mem


def _above_allocatable(nodes: pd.DataFrame, hpm: float) -> list[dict]:
    cpu, mem = _excess(nodes)
    bad = (cpu > 0) | (mem > 0)
    out = []
    for cluster, rows in nodes[bad].groupby("cluster", sort=True):
        every = nodes[nodes["cluster"] == cluster]
        usd = ((cpu[rows.index] * rows["usd_per_vcpu_hour"] + mem[rows.index] / GIB * rows["usd_per_gib_hour"]) * hpm).sum()
        groups = every.assign(_g=every["node_group"].fillna("").replace("", "n/a")).groupby("_g")[
            ["requested_cpu_cores", "allocatable_cpu_cores", "requested_memory_bytes", "allocatable_memory_bytes"]].sum()
        share = np.maximum(groups["requested_cpu_cores"] / groups["allocatable_cpu_cores"],
                           groups["requested_memory_bytes"] / groups["allocatable_memory_bytes"])
        worst = ", ".join(f"{g} {s:.0%}" for g, s in share[share > 1 + TOLERANCE].sort_values(ascending=False).head(5).items())
        out.append({"code": "requests_above_allocatable", "affects": "node bill, idle capacity, bankable savings", "message":
                    f"cluster {cluster}: pods request more than their nodes' allocatable on {len(rows)} of {len(every)} node(s): "
                    f"{every['requested_cpu_cores'].sum():,.1f} cores against {every['allocatable_cpu_cores'].sum():,.1f} "
                    f"allocatable (+{cpu[rows.index].sum():,.1f} cores and +{mem[rows.index].sum() / GIB:,.1f} GiB beyond the nodes, "
                    f"{usd:,.0f} USD/month at their prices; requested / allocatable: {worst or 'within the groups'}). The scheduler "
                    "cannot place that, so these are not the requests that ran (changed during the window, or pods counted "
                    "under two workloads): idle capacity counts none there, and bankable savings start from the nodes that ran"})
    return out


def _unknown_nodes(snapshot, nodes: pd.DataFrame) -> list[dict]:
    placement = snapshot.tables.get("placement")
    if placement is None or placement.empty or nodes.empty:
        return []
    known = placement[["cluster", "node"]].merge(nodes[["cluster", "node"]].assign(_known=True), on=["cluster", "node"], how="left")
    off = placement[known["_known"].isna().to_numpy() & placement["cluster"].isin(set(nodes["cluster"])).to_numpy()]
    out = []
    for cluster, rows in off.groupby("cluster", sort=True):
        total = placement.loc[placement["cluster"] == cluster, "pod_hours"].sum()
        names = sorted(rows["node"].astype(str).unique())
        out.append({"code": "pods_on_unknown_nodes", "affects": "node bill, idle capacity, bin-packing", "message":
                    f"cluster {cluster}: {rows['pod_hours'].sum():,.1f} pod-hours ({rows['pod_hours'].sum() / total:.1%} of all) ran "
                    f"on {len(names)} node(s) without node metrics (no kube_node_labels series: {', '.join(names[:5])}"
                    f"{' ...' if len(names) > 5 else ''}): their requests are in no node's bill, idle capacity or bin-packing, "
                    "and a workload that ran only there has no price"})
    return out


def _unpriced_nodes(nodes: pd.DataFrame) -> list[dict]:
    bad = nodes[nodes["usd_per_hour"].isna()]
    out = []
    for cluster, rows in bad.groupby("cluster", sort=True):
        types = sorted({t if t else "no instance type label: see kube-state-metrics' --metric-labels-allowlist"
                        for t in rows["instance_type"].fillna("").astype(str)})
        out.append({"code": "nodes_without_price", "affects": "node bill, idle capacity, bankable savings", "message":
                    f"cluster {cluster}: {len(rows)} node(s) have no price ({', '.join(types[:5])}), {rows['weight'].sum():,.1f} "
                    "node(s) over the time observed: their groups' node bill and idle capacity are unknown, and the requests "
                    "of pods that ran only there have no price"})
    return out


def requests_vs_bill(recs: pd.DataFrame, nodes: pd.DataFrame, unit_prices: pd.DataFrame, totals: dict,
                     hours_per_month: float) -> dict[str, float] | None:
    """Why today's requests cost more or less than the requested share of the node bill, in parts (USD/month):

    - ``requests``: the requests' cost (summary totals); ``requested_share``: node bill - idle capacity;
    - ``above_allocatable``: requests beyond their nodes' allocatable (in the requests, not in the bill);
    - ``off_nodes``: the share of a workload's requests that ran on nodes without metrics or price, or
      without placement (priced at its other nodes' unit prices, in no bill); a workload that ran only on
      such nodes has no price at all (summary ``containers_without_price``) and is in neither side;
    - ``replicas_over_ran``: spec replicas above the pods that really ran (placement pod-hours);
    - ``reserved``: the kubelet's and system reserve (capacity - allocatable): in the bill, requested by no pod;
    - ``other``: the rest (init containers, when pods ran, rounding), so that requests = requested_share +
      above_allocatable + off_nodes + replicas_over_ran - reserved + other.
    None when either side is unknown. ``unit_prices``: cost.workload_unit_prices."""
    bill, idle, cost = totals.get("node_usd_per_month"), totals.get("idle_usd_per_month"), totals.get("usd_per_month_current")
    if any(v is None or (isinstance(v, float) and np.isnan(v)) for v in (bill, idle, cost)) or not len(recs):
        return None
    priced = nodes[nodes["usd_per_hour"].notna()]
    cpu, mem = _excess(priced)
    above = float(((cpu * priced["usd_per_vcpu_hour"] + mem / GIB * priced["usd_per_gib_hour"]) * hours_per_month).sum())
    reserved = float((((priced["vcpu"] * priced["weight"] - priced["allocatable_cpu_cores"]) * priced["usd_per_vcpu_hour"]
                       + (priced["memory_gib"] * priced["weight"] - priced["allocatable_memory_bytes"] / GIB)
                       * priced["usd_per_gib_hour"]) * hours_per_month).clip(lower=0.0).sum())
    keys = list(WORKLOAD_KEY)
    share = recs[keys].merge(unit_prices[keys + ["price_basis", "unknown_price_share"]].drop_duplicates(keys), on=keys, how="left")
    off = np.where(share["price_basis"].eq("placement").to_numpy(), share["unknown_price_share"].fillna(0.0).to_numpy(), 1.0)
    current = pd.to_numeric(recs["usd_per_month_current"], errors="coerce").fillna(0.0).to_numpy()
    ran = recs["average_pods"].to_numpy(dtype=float, na_value=np.nan)
    reps = recs["replicas"].to_numpy(dtype=float, na_value=np.nan)
    spec = ~flag_mask(recs, "replicas_estimated").to_numpy() & ~np.isnan(ran) & (np.nan_to_num(reps) > 0)
    over = np.where(spec, current * (1 - off) * (1 - np.nan_to_num(ran) / np.where(spec, reps, 1.0)), 0.0)
    parts = {"requests": float(cost), "requested_share": float(bill - idle), "above_allocatable": above,
             "off_nodes": float((current * off).sum()), "replicas_over_ran": float(over.sum()), "reserved": reserved}
    parts["other"] = (parts["requests"] - parts["requested_share"] - above - parts["off_nodes"] - parts["replicas_over_ran"]
                      + reserved)
    return parts


_PARTS = (("above_allocatable", "requested beyond their nodes' allocatable"),
          ("off_nodes", "requested by pods on nodes without metrics or a price (or without placement)"),
          ("replicas_over_ran", "of spec replicas above the pods that ran"),
          ("other", "other (init containers, when pods ran)"))


def parts_text(parts: dict, money) -> str:
    """The requests-vs-bill difference in words, its parts formatted by ``money`` (a number -> text)."""
    diff = parts["requests"] - parts["requested_share"]
    listed = [f"{money(parts[k])} {what}" for k, what in _PARTS if abs(parts[k]) >= 0.5]
    reserve = (f"; the kubelet's and system reserve ({money(parts['reserved'])}) is in the bill but no pod can request it"
               if parts["reserved"] >= 0.5 else "")
    return (f"Today's requests cost {money(parts['requests'])}/month, {money(abs(diff))} {'more' if diff >= 0 else 'less'} than "
            f"the requested share of the node bill ({money(parts['requested_share'])})"
            + (f": {', '.join(listed)}" if listed else "") + reserve + ".")


def above_bill(parts: dict | None, node_bill: float | None) -> list[dict]:
    """A caveat when the requests' cost is above the node bill itself, with the parts that explain it."""
    if not parts or node_bill is None or parts["requests"] <= node_bill + 0.5:
        return []
    return [{"code": "requests_above_bill", "affects": "current cost of requests, savings", "message":
             f"the requests' cost is above the node bill ({parts['requests'] - node_bill:,.0f} USD/month more than "
             f"{node_bill:,.0f}). " + parts_text(parts, lambda v: f"{v:,.0f} USD")}]
