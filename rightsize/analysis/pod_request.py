"""A pod's effective request from its containers, as the scheduler computes it (pure; KEP-753).

Kubernetes (pkg/api/v1/resource, since sidecar containers, KEP-753), per resource:

    InitContainerUse(i) = sum(restartable init containers with index < i) + init container i
    InitContainersUse   = max over init containers i of InitContainerUse(i)
    ContainersUse       = sum(regular containers) + sum(restartable init containers)
    PodRequest          = max(InitContainersUse, ContainersUse)

A restartable init container (``restartPolicy: Always``, a *native sidecar*, container_type
"sidecar") starts before the init containers that follow it and runs for the pod's whole life, so it
counts in those init containers' step and with the main containers. For a restartable container i
InitContainerUse(i) is a partial sum of ContainersUse, so only classic init containers can raise the max.

When the order of init containers is unknown (``init_order`` NaN: the kube-state-metrics inventory
has no index), every sidecar is counted in every classic init container's step: the largest request
the scheduler could make of that pod (an upper bound, never an understatement).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

LONG_RUNNING = ("main", "sidecar", "injected")  # container types that run for the pod's whole life


def long_running(container_type: pd.Series) -> pd.Series:
    """True for main containers and native sidecars (empty / missing type = main); False for classic init."""
    return container_type.fillna("main").replace("", "main").isin(LONG_RUNNING)


def effective_requests(frame: pd.DataFrame, keys: list[str], sizes: list[str]) -> pd.DataFrame:
    """One row per group of ``keys`` (a workload: its pods are alike) with each column of ``sizes`` (cores,
    bytes; NaN counts 0) as the pod's effective request. ``frame``: one row per container with ``keys``,
    ``sizes``, ``container_type`` ('main', 'init', 'sidecar') and, optionally, ``init_order`` (the index in
    initContainers; NaN = unknown)."""
    ctype = frame["container_type"].fillna("main").replace("", "main") if "container_type" in frame else \
        pd.Series("main", index=frame.index)
    order = pd.to_numeric(frame["init_order"], errors="coerce") if "init_order" in frame else pd.Series(np.nan, index=frame.index)
    values = frame[sizes].apply(pd.to_numeric, errors="coerce").fillna(0.0)
    group = pd.MultiIndex.from_frame(frame[keys])
    containers_use = values[ctype.isin(LONG_RUNNING).to_numpy()].groupby(group[ctype.isin(LONG_RUNNING).to_numpy()]).sum()
    init_use = _init_use(values, ctype, order, group)
    out = containers_use.combine(init_use, np.fmax, fill_value=0.0) if len(init_use) else containers_use
    out = out.reindex(group.unique()).fillna(0.0)
    out.index.names = keys
    return out.reset_index()


def _init_use(values: pd.DataFrame, ctype: pd.Series, order: pd.Series, group: pd.MultiIndex) -> pd.DataFrame:
    """Per group, max over classic init containers of (its request + the sidecars started before it)."""
    init = (ctype == "init").to_numpy()
    if not init.any():
        return pd.DataFrame(columns=values.columns)
    sidecar = (ctype == "sidecar").to_numpy()
    gid = pd.Series(group.factorize()[0], index=values.index)
    # sidecars before each init container: those of its group with a smaller index; unknown order on
    # either side counts the sidecar (the upper bound, see the module docstring)
    side = pd.DataFrame({"gid": gid[sidecar], "s_order": order[sidecar]}).join(values[sidecar])
    inits = pd.DataFrame({"gid": gid[init], "i_order": order[init], "row": np.flatnonzero(init)})
    pairs = inits.merge(side, on="gid", how="inner")
    before = pairs["s_order"].isna() | pairs["i_order"].isna() | (pairs["s_order"] < pairs["i_order"])
    prior = pairs[before].groupby("row")[list(values.columns)].sum()
    own = values[init].set_axis(inits["row"].to_numpy())
    use = own.add(prior.reindex(own.index).fillna(0.0))
    return use.groupby(group[init]).max()
