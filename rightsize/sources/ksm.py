"""The kube-state-metrics inventory: pod owners, and workloads and containers when no API or manifests
are used (``[kubernetes] source = "prometheus"``). Pure functions over label sets and query rows.

Owners come from the series API (label sets, no samples): Pod -> ReplicaSet -> Deployment,
Pod -> Job -> CronJob, StatefulSet / DaemonSet / other direct controllers, bare Pods (kind Pod,
workload = the pod's name), and ReplicaSets / Jobs without a parent (their own kind and name).
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from ..batch_groups import assign, ksm_label, label_keys
from ..gpu_resources import WHOLE_GPU_RESOURCES, from_ksm, gpu_names

_OWNER_COLUMNS = ["namespace", "pod", "kind", "workload"]


def resolve_owners(pod_owner: pd.DataFrame, rs_owner: pd.DataFrame, job_owner: pd.DataFrame) -> pd.DataFrame:
    """One row per pod: namespace, pod, kind, workload.

    ``pod_owner``: namespace, pod, owner_kind, owner_name, owner_is_controller (kube_pod_owner);
    ``rs_owner``: namespace, replicaset, owner_kind, owner_name (kube_replicaset_owner);
    ``job_owner``: namespace, job_name, owner_kind, owner_name (kube_job_owner). A pod with several
    owner series keeps its controller (then the first by name), so a pod is never counted twice."""
    if pod_owner.empty:
        return pd.DataFrame(columns=_OWNER_COLUMNS)
    p = pod_owner.sort_values(["owner_is_controller", "owner_kind", "owner_name"], ascending=[False, True, True])
    p = p.drop_duplicates(["namespace", "pod"]).reset_index(drop=True)
    kind, workload = p["owner_kind"].to_numpy(dtype=object).copy(), p["owner_name"].to_numpy(dtype=object).copy()
    bare = np.isin(kind, ["<none>", ""])
    kind[bare], workload[bare] = "Pod", p.loc[bare, "pod"].to_numpy(dtype=object)
    for mid, parents, label in (("ReplicaSet", rs_owner, "replicaset"), ("Job", job_owner, "job_name")):
        mine = kind == mid
        if not mine.any() or parents.empty:
            continue
        up = parents[~parents["owner_kind"].isin(["<none>", ""])].drop_duplicates(["namespace", label])
        up = up.set_index(["namespace", label])
        idx = pd.MultiIndex.from_arrays([p["namespace"], p["owner_name"]])
        pk = idx.map(up["owner_kind"]).to_numpy(dtype=object)
        pn = idx.map(up["owner_name"]).to_numpy(dtype=object)
        hit = mine & pd.notna(pk)
        kind[hit], workload[hit] = pk[hit], pn[hit]
    return pd.DataFrame({"namespace": p["namespace"], "pod": p["pod"], "kind": kind, "workload": workload})


def batch_groups(pod_labels: pd.DataFrame, config) -> pd.DataFrame:
    """namespace, pod, kind, workload of the pods whose ``kube_pod_labels`` (``pod_labels``: namespace,
    pod and kube-state-metrics' label_* columns) carry every label of a [batch_groups] framework."""
    keys = label_keys(config)
    pods = pod_labels.rename(columns={ksm_label(k): k for k in keys})
    for k in keys:
        if k not in pods:
            pods[k] = ""
    out = pd.concat([pods[["namespace", "pod"]], assign(pods, config)], axis=1)
    return out[out["kind"] != ""].drop_duplicates(["namespace", "pod"]).reset_index(drop=True)


def inventory_containers(requests: pd.DataFrame, usage: pd.DataFrame, cluster: str) -> pd.DataFrame:
    """The containers table from kube-state-metrics: every container with usage, with its requests and
    limits (largest over its pods; NaN = unset). ``requests``: namespace, kind, workload, container,
    stat ('request' | 'limit', 'init_request' | 'init_limit' for init containers, 'init_info' with the
    restart policy in ``resource``), resource ('cpu' | 'memory'), value (cores / bytes). A container of
    kube_pod_init_container_* is 'init', or 'sidecar' when its restart policy is Always (a native
    sidecar); kube-state-metrics has no init container index, so ``init_order`` stays unknown. Rows of stat
    'image' carry kube_pod_container_info's image in ``resource`` (column ``image``, '' unknown)."""
    key = ["namespace", "kind", "workload", "container"]
    out = usage[key].drop_duplicates().reset_index(drop=True)
    requests = requests.assign(original_stat=requests["stat"], stat=requests["stat"].str.removeprefix("init_")) if len(requests) else requests
    names = {("request", "cpu"): "cpu_request_cores", ("limit", "cpu"): "cpu_limit_cores",
             ("request", "memory"): "memory_request_bytes", ("limit", "memory"): "memory_limit_bytes"}
    for (stat, res), col in names.items():
        rows = requests[(requests["stat"] == stat) & (requests["resource"] == res)] if len(requests) else requests
        best = rows.groupby(key)["value"].max() if len(rows) else pd.Series(dtype=float)
        out[col] = pd.MultiIndex.from_frame(out[key]).map(best).to_numpy(dtype=float, na_value=np.nan) if len(out) else []
    out = out.assign(**_gpu_requests(requests, out[key], key))
    out["cluster"] = cluster
    out["container_type"] = _container_types(requests, out[key])
    out["init_order"] = np.nan
    images = requests[requests["stat"] == "image"] if len(requests) else requests
    best = images.groupby(key)["resource"].first() if len(images) else pd.Series(dtype=object)
    out["image"] = pd.Series(pd.MultiIndex.from_frame(out[key]).map(best), index=out.index, dtype=object).fillna("") if len(out) else ""
    return out


def _gpu_requests(requests: pd.DataFrame, containers: pd.DataFrame, key: list[str]) -> dict:
    """gpu_resource, gpu_request_count, gpu_limit_count per row of ``containers`` from the request and
    limit rows whose ``resource`` is a sanitised GPU name (the first GPU resource of a container, as
    the API inventory picks it; largest over its pods)."""
    n = len(containers)
    out = {"gpu_resource": np.full(n, "", dtype=object), "gpu_request_count": np.full(n, np.nan),
           "gpu_limit_count": np.full(n, np.nan)}
    if not n or not len(requests):
        return out
    gpu = requests[requests["stat"].isin(["request", "limit"])]
    gpu = gpu.assign(name=gpu["resource"].map(from_ksm))
    gpu = gpu[gpu["name"] != ""]
    if gpu.empty:
        return out
    first = gpu.groupby(key)["name"].agg(lambda s: gpu_names(dict.fromkeys(s))[0])
    idx = pd.MultiIndex.from_frame(containers[key])
    chosen = pd.Series(idx.map(first), index=containers.index).fillna("").astype(str)
    out["gpu_resource"] = chosen.to_numpy(dtype=object)
    mine = gpu.merge(pd.DataFrame({**{k: containers[k] for k in key}, "name": chosen}), on=key + ["name"])
    for stat, col in (("request", "gpu_request_count"), ("limit", "gpu_limit_count")):
        best = mine[mine["stat"] == stat].groupby(key)["value"].max()
        out[col] = idx.map(best).to_numpy(dtype=float, na_value=np.nan) if len(best) else np.full(n, np.nan)
    out["gpu_request_count"] = np.where(np.isnan(out["gpu_request_count"]), out["gpu_limit_count"], out["gpu_request_count"])
    return out


def node_gpus(allocatable: pd.DataFrame, capacity: pd.DataFrame, nodes: pd.Series, node_label: str, *,
              known: bool = True, capacity_known: bool = True) -> dict:
    """capacity_gpus, allocatable_gpus (whole GPUs) and gpu_resources_json (every GPU resource
    allocatable) per node of ``nodes``, from kube_node_status_{allocatable,capacity} rows (``node_label``,
    ``resource``, ``value``). A node without GPU rows has 0 GPUs when the metric was found, NaN
    (and '' for the JSON) when it was not."""
    out = {}
    for part, rows, have in (("allocatable", allocatable, known), ("capacity", capacity, capacity_known)):
        g = rows.assign(name=rows["resource"].map(from_ksm)) if len(rows) else rows.assign(name=pd.Series(dtype=object))
        g = g[g["name"] != ""]
        whole = g[g["name"].isin(WHOLE_GPU_RESOURCES)].groupby(node_label)["value"].sum()
        out[f"{part}_gpus"] = nodes.map(whole).fillna(0.0 if have else np.nan).to_numpy(dtype=float)
        if part == "allocatable":
            per_node = {n: dict(zip(f["name"], f["value"])) for n, f in g.groupby(node_label)}
            out["gpu_resources_json"] = [json.dumps(per_node.get(n, {}), sort_keys=True) if have else "" for n in nodes]
    return out


def _container_types(requests: pd.DataFrame, containers: pd.DataFrame) -> np.ndarray:
    """'main', 'init' or 'sidecar' per row of ``containers``, from the init containers' series."""
    kinds = np.full(len(containers), "main", dtype=object)
    if not len(requests) or not len(containers):
        return kinds
    key = list(containers.columns)
    init = requests[requests["original_stat"].str.startswith("init_")] if "original_stat" in requests else requests.iloc[0:0]
    idx = pd.MultiIndex.from_frame(containers)
    kinds[idx.isin(pd.MultiIndex.from_frame(init[key]))] = "init"
    always = init[(init["original_stat"] == "init_info") & (init["resource"] == "Always")]
    kinds[idx.isin(pd.MultiIndex.from_frame(always[key]))] = "sidecar"
    return kinds


def inventory_workloads(containers: pd.DataFrame, pods_at_end: pd.DataFrame, hpa_info: pd.DataFrame,
                        hpa_target: pd.DataFrame, pdbs: pd.DataFrame, cluster: str, *, hpa_known: bool = True,
                        pdb_known: bool = True) -> pd.DataFrame:
    """The workloads table from kube-state-metrics.

    ``pods_at_end``: namespace, kind, workload, pods (pods with a sample at the window end; 0 for a
    workload that ran earlier, e.g. a finished Job: cost then comes from pod-hours, see analysis).
    ``hpa_info``: namespace, horizontalpodautoscaler, kind, workload; ``hpa_target``: namespace,
    horizontalpodautoscaler, metric_name, metric_target_type, target; ``pdbs``: namespace,
    poddisruptionbudget (kube-state-metrics exports no PDB selector: matched by name). ``hpa_known`` /
    ``pdb_known`` false (their metrics are missing): every row's hpa_unknown / pdb_unknown is set, since
    hpa / pdb False then says nothing."""
    key = ["namespace", "kind", "workload"]
    wl = containers[key].drop_duplicates().merge(pods_at_end, on=key, how="left")
    wl = wl.rename(columns={"pods": "replicas"})
    wl["replicas"] = wl["replicas"].fillna(0.0).astype(float)
    wl = wl.assign(cluster=cluster, has_pvc=False, has_empty_dir=False, has_host_path=False,
                   termination_grace_seconds=30.0, source="prometheus")
    idx = pd.MultiIndex.from_frame(wl[key])
    wl["hpa"] = idx.isin(pd.MultiIndex.from_frame(hpa_info[key])) if len(hpa_info) else False
    if len(hpa_info):  # its name, for the HPA patch (the target's place in the spec is not in the metrics)
        names = hpa_info.drop_duplicates(key).set_index(key)["horizontalpodautoscaler"]
        wl["hpa_name"] = pd.Series(idx.map(names), index=wl.index, dtype=object).fillna("").astype(str)
    if len(hpa_target) and len(hpa_info):
        t = hpa_target[hpa_target["metric_target_type"] == "utilization"].merge(hpa_info, on=["namespace", "horizontalpodautoscaler"])
        for res in ("cpu", "memory"):
            per = t[t["metric_name"] == res].groupby(key)["target"].max()
            wl[f"hpa_{res}_target_percent"] = idx.map(per).to_numpy(dtype=float, na_value=np.nan)
        kinds = t.groupby(key)["metric_name"].agg(lambda s: ",".join(f"Resource:{x}" for x in sorted(s)))
        wl["hpa_metrics"] = pd.Series(idx.map(kinds), index=wl.index, dtype=object).fillna("").astype(str)
    wl["pdb"] = pd.MultiIndex.from_frame(wl[["namespace", "workload"]]).isin(
        pd.MultiIndex.from_frame(pdbs[["namespace", "poddisruptionbudget"]])) if len(pdbs) else False
    wl["hpa_unknown"], wl["pdb_unknown"] = not hpa_known, not pdb_known
    return wl
