"""The nodes and traffic tables of one cluster, from the rows of the cluster-wide instant query (collect.py):
each node's instance type, zone, capacity type, allocatable and hours seen; bytes per workload pair."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from .run import Run


def nodes(run: Run, rows: pd.DataFrame) -> pd.DataFrame:
    """The nodes table: one row per node of the node_labels rows, with its hours seen and allocatable."""
    L = run.labels
    lab = rows[rows["stat"] == "node_labels"].drop_duplicates(L.node, keep="last")
    if lab.empty:
        return pd.DataFrame()
    hours = rows[rows["stat"] == "node_hours"].groupby(L.node)["value"].max()
    alloc = rows[rows["stat"] == "node_allocatable"].pivot_table(index=L.node, columns="resource", values="value", aggfunc="max")
    out = pd.DataFrame({
        "cluster": run.cluster, "node": lab[L.node], "instance_type": lab[L.instance_type], "zone": lab[L.zone],
        # an EKS managed node group, else a Karpenter NodePool: both without configuration
        "region": lab[L.region], "node_group": lab[L.node_group].where(lab[L.node_group] != "", lab[L.node_pool]),
        "capacity_type": _capacity(lab[L.capacity_type_eks], lab[L.capacity_type_karpenter]),
    })
    out["hours_seen"] = out["node"].map(hours).fillna(0.0)
    for res, col in (("cpu", "allocatable_cpu_cores"), ("memory", "allocatable_memory_bytes")):
        out[col] = out["node"].map(alloc[res]) if res in alloc else np.nan
    return out.reset_index(drop=True)


def _capacity(eks: pd.Series, karpenter: pd.Series) -> pd.Series:
    """EKS says ON_DEMAND / SPOT, Karpenter on-demand / spot; '' when neither label is set."""
    raw = eks.where(eks != "", karpenter).str.lower().str.replace("_", "-")
    return raw.where(raw.isin(["spot", "on-demand"]), "")


def traffic(run: Run, rows: pd.DataFrame) -> pd.DataFrame:
    """Bytes per workload pair over the window: request (client -> server) and response
    (server -> client) directions, TCP and HTTP/gRPC summed per direction; ``bytes`` is both."""
    L = run.labels
    cols = [L.source_namespace, L.source_workload, L.destination_namespace, L.destination_workload, L.source_zone, L.destination_zone]
    t = rows[rows["stat"].isin(["tcp_request", "tcp_response", "http_request", "http_response"])]
    t = t[(t[L.source_workload] != "") & (t[L.destination_workload] != "")]
    if t.empty:
        return pd.DataFrame()
    t = t.assign(direction=np.where(t["stat"].str.endswith("request"), "request_bytes", "response_bytes"))
    wide = t.pivot_table(index=cols, columns="direction", values="value", aggfunc="sum").reset_index()
    wide.columns.name = None
    for c in ("request_bytes", "response_bytes"):
        wide[c] = wide[c].fillna(0.0) if c in wide else 0.0
    wide["bytes"] = wide["request_bytes"] + wide["response_bytes"]
    wide = wide.rename(columns=dict(zip(cols, ["source_namespace", "source_workload", "destination_namespace",
                                               "destination_workload", "source_zone", "destination_zone"])))
    wide["cluster"] = run.cluster
    return wide
