"""How each proposed change can land, and the urgent raises that can be applied in place now (pure).

Since Kubernetes 1.33 (beta, on by default; GA in 1.35) a running pod's CPU and memory can be changed
through its ``resize`` subresource without recreating it. Per change (status "change"):

- ``in_place``: in place without a restart: every CPU change, memory requests, and a memory limit that
  goes up, when the container's ``resizePolicy`` is NotRequired (Kubernetes' default; rightsize does not
  read the policy, so the text says so);
- ``in_place_restart``: a memory limit that goes down: in place with a container restart (``resizePolicy``
  memory RestartContainer); on 1.35 and later a NotRequired decrease is tried without one, best effort;
- ``rollout``: only by the template change of the pull request (a rollout): a classic init container
  (not resizable), a change that moves the pod's QoS class (a resize may not), an injected sidecar whose
  annotations only take effect on new pods, or a cluster older than 1.33.

The PR always carries the template change; in-place resizes only bring the urgent raises forward.
**Urgent raises** are the changes of OOM-risk or throttled containers that raise a request or limit:
``urgent_raises`` lists them per pod template container with only the raised values, and whether the
nodes they ran on had room for the extra requests (allocatable minus the requests placed there,
averaged over the window; the kubelet checks again and leaves a resize that does not fit pending).
Units: cores, bytes.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..schema import WORKLOAD_KEY
from .summary import flag_mask

IN_PLACE, RESTART, ROLLOUT = "in_place", "in_place_restart", "rollout"
FIRST_VERSION = (1, 33)  # InPlacePodVerticalScaling beta, on by default
NOT_REQUIRED_DECREASE = (1, 35)  # a memory limit decrease with NotRequired is attempted (best effort)
_FIELDS = {"cpu_request": "cpu_request_cores", "cpu_limit": "cpu_limit_cores", "memory_request": "memory_request_bytes",
           "memory_limit": "memory_limit_bytes"}


def _after(recs: pd.DataFrame, field: str) -> pd.Series:
    """The value once the change lands (cores or bytes; NaN unset); CPU limits follow cpu_limit_action."""
    cur, rec = recs[f"{field}_current"], recs[f"{field}_recommended"]
    if field == "cpu_limit_cores":
        action = recs["cpu_limit_action"]
        return rec.where(action == "set", cur.where(action != "remove", np.nan))
    return rec.where(rec.notna(), cur)


def qos_class(recs: pd.DataFrame, after: bool) -> pd.Series:
    """Per workload (WORKLOAD_KEY index): the pods' QoS class (Guaranteed, Burstable, BestEffort) now or after."""
    v = {k: (_after(recs, c) if after else recs[f"{c}_current"]) for k, c in _FIELDS.items()}
    guaranteed = (v["cpu_limit"].notna() & v["memory_limit"].notna()
                  & (v["cpu_request"].isna() | (v["cpu_request"] == v["cpu_limit"]))
                  & (v["memory_request"].isna() | (v["memory_request"] == v["memory_limit"])))
    nothing = pd.concat(v.values(), axis=1).isna().all(axis=1)
    frame = recs[list(WORKLOAD_KEY)].assign(_g=guaranteed, _none=nothing)
    grouped = frame.groupby(list(WORKLOAD_KEY), sort=False)
    g, none = grouped["_g"].all(), grouped["_none"].all()
    return pd.Series(np.where(g, "Guaranteed", np.where(none, "BestEffort", "Burstable")), index=g.index)


def landing(recs: pd.DataFrame, version: tuple[int, int] | None) -> pd.DataFrame:
    """Per row: ``resize`` (in_place, in_place_restart, rollout; '' for rows without a change) and ``resize_why``."""
    out = pd.DataFrame({"resize": "", "resize_why": ""}, index=recs.index, dtype=object)
    if recs.empty:
        return out
    change = recs["status"].eq("change")
    mem_down = _after(recs, "memory_limit_bytes") < recs["memory_limit_bytes_current"]  # a lower request is fine
    key = pd.MultiIndex.from_frame(recs[list(WORKLOAD_KEY)])
    moved = pd.Series(np.asarray(key.map(qos_class(recs, False) != qos_class(recs, True)), dtype=bool), index=recs.index)
    ctype = recs["container_type"].fillna("main")
    old = version is not None and version < FIRST_VERSION
    rules = [  # first match wins
        (ctype.eq("init"), ROLLOUT, "an init container that has run cannot be resized"),
        (ctype.eq("injected"), ROLLOUT, "its injector's annotations take effect on new pods"),
        (pd.Series(old, index=recs.index), ROLLOUT, f"in-place resize needs Kubernetes >= {FIRST_VERSION[0]}.{FIRST_VERSION[1]}"),
        (moved, ROLLOUT, "the change moves the pods' QoS class, which a resize may not"),
        (mem_down, RESTART, "the memory limit goes down: in place with resizePolicy memory RestartContainer (a container "
                            "restart); on Kubernetes >= 1.35 a NotRequired decrease is tried without one, best effort"),
        (pd.Series(True, index=recs.index), IN_PLACE, "CPU, memory requests, or a memory limit going up: in place without "
                                                      "a restart when the container's resizePolicy is NotRequired (the default)"),
    ]
    todo = change.copy()
    for mask, kind, why in rules:
        hit = todo & mask.fillna(False).astype(bool)
        out.loc[hit, "resize"], out.loc[hit, "resize_why"] = kind, why
        todo &= ~hit
    return out


def urgent_raises(recs: pd.DataFrame, room: pd.DataFrame, version: tuple[int, int] | None) -> pd.DataFrame:
    """The urgent raises that can land in place: one row per container (OOM risk or throttled, in place
    or in place with a restart) with only the raised values (``new_<field>``, NaN when that value is not
    raised), the extra requests per pod (``extra_cpu_cores``, ``extra_memory_bytes``) and ``room``
    (True / False / NA unknown) from ``room`` (node_room)."""
    land = landing(recs, version)
    urgent = (flag_mask(recs, "oom_risk") | flag_mask(recs, "throttled")) & land["resize"].isin([IN_PLACE, RESTART])
    rows = recs[urgent].copy()
    raised = False
    for name, col in _FIELDS.items():
        new, cur = _after(rows, col), rows[f"{col}_current"]
        up = new.notna() & (cur.isna() | (new > cur)) if "limit" in name else new.notna() & (new > cur.fillna(0.0))
        rows[f"new_{name}"] = new.where(up)
        raised = up | raised
    rows = rows[raised].assign(resize=land.loc[rows[raised].index, "resize"])
    rows["extra_cpu_cores"] = (rows["new_cpu_request"] - rows["cpu_request_cores_current"].fillna(0.0)).fillna(0.0)
    rows["extra_memory_bytes"] = (rows["new_memory_request"] - rows["memory_request_bytes_current"].fillna(0.0)).fillna(0.0)
    need = rows.groupby(list(WORKLOAD_KEY))[["extra_cpu_cores", "extra_memory_bytes"]].transform("sum")
    fits = rows[list(WORKLOAD_KEY)].merge(room, on=list(WORKLOAD_KEY), how="left")
    fits.index = rows.index
    ok = (fits["free_cpu_cores"] >= need["extra_cpu_cores"] * fits["pods_per_node"]) & \
         (fits["free_memory_bytes"] >= need["extra_memory_bytes"] * fits["pods_per_node"])
    rows["room"] = ok.astype(object).where(fits["free_cpu_cores"].notna(), pd.NA)
    return rows


def node_room(snapshot, recs: pd.DataFrame) -> pd.DataFrame:
    """Per workload, the tightest of the nodes its pods ran on: free allocatable (cores, bytes: allocatable
    minus the effective requests placed there, weighted by pod-hours over the window) and the workload's
    average pods on that node. Empty without nodes or placement."""
    from .pod_request import effective_requests

    cols = list(WORKLOAD_KEY) + ["free_cpu_cores", "free_memory_bytes", "pods_per_node"]
    nodes, placement = snapshot.tables.get("nodes"), snapshot.tables.get("placement")
    hours = snapshot.window_hours()
    if nodes is None or placement is None or nodes.empty or placement.empty or not hours:
        return pd.DataFrame(columns=cols)
    keys = list(WORKLOAD_KEY)
    frame = recs[keys + [c for c in ("container_type", "init_order") if c in recs]].assign(
        cpu=recs["cpu_request_cores_current"], mem=recs["memory_request_bytes_current"])
    pods = placement.merge(effective_requests(frame, keys, ["cpu", "mem"]), on=keys, how="left").fillna({"cpu": 0.0, "mem": 0.0})
    pods["per_node"] = pods["pod_hours"] / hours
    used = pods.assign(c=pods["cpu"] * pods["per_node"], m=pods["mem"] * pods["per_node"]).groupby(["cluster", "node"])[["c", "m"]].sum()
    free = nodes.set_index(["cluster", "node"])[["allocatable_cpu_cores", "allocatable_memory_bytes"]].join(used, how="left").fillna(0.0)
    free = (free["allocatable_cpu_cores"] - free["c"]).rename("free_cpu_cores").to_frame().join(
        (free["allocatable_memory_bytes"] - free["m"]).rename("free_memory_bytes")).reset_index()
    on = pods.merge(free, on=["cluster", "node"], how="inner")
    on["_slack"] = on["free_memory_bytes"] / on["per_node"].clip(lower=1e-9)
    tightest = on.sort_values("_slack", kind="stable").drop_duplicates(keys)
    return tightest.rename(columns={"per_node": "pods_per_node"})[cols].reset_index(drop=True)
