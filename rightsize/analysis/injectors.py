"""Injected sidecars (Istio's istio-proxy, Linkerd's linkerd-proxy, a Vault agent, ...): recognised and
sized through their injector (pure; ``[injectors.NAME]`` in the config).

An injector adds its container to each pod when the pod is created, so the workload's spec (the API's
Deployment, the manifests) never declares it, and a strategic-merge patch naming it would *add* a
container without an image to the template. A container is the injector's (container_type
"injected") when its name or image matches ``[injectors.NAME]`` and the spec does not declare it:

- with an API or manifests inventory, the container has usage but no row in the spec's containers
  table: it gets a row here, current requests unknown (NaN: the injector's defaults or the template's
  annotations set them, neither of which the spec holds);
- with the kube-state-metrics inventory (no spec at all), a container matched by name or image.

Its recommendation is written as the injector's annotations on the pod template (emit/patches.py),
and ``mesh_summary`` proposes the mesh-wide default that fits most pods.
"""
from __future__ import annotations

import fnmatch

import numpy as np
import pandas as pd

from ..schema import CONTAINER_KEY, WORKLOAD_KEY

INJECTED = "injected"
ANNOTATION_FIELDS = ("cpu_request", "cpu_limit", "memory_request", "memory_limit")


def injector_of(names: pd.Series, images: pd.Series, injectors: dict) -> pd.Series:
    """The injector (its config name) whose container name or image globs match each row; '' for none.
    One glob test per distinct name and image, not per row."""
    name_list = [str(n) for n in names.tolist()]
    image_list = ["" if pd.isna(i) else str(i) for i in images.tolist()]
    out = [""] * len(name_list)
    for inj_name, inj in injectors.items():
        by_name = {n: any(fnmatch.fnmatchcase(n, g) for g in inj.containers) for n in set(name_list)}
        by_image = {i: bool(i) and any(fnmatch.fnmatchcase(i, g) for g in inj.images) for i in set(image_list)}
        out = [o or (inj_name if by_name[n] or by_image[i] else "") for o, n, i in zip(out, name_list, image_list)]
    return pd.Series(out, index=names.index, dtype=object)


def with_injected(containers: pd.DataFrame, usage: pd.DataFrame, workloads: pd.DataFrame, injectors: dict) -> pd.DataFrame:
    """The containers table with every injected container typed "injected" and named in ``injector``:
    rows added for injected containers that have usage and no spec row, and kube-state-metrics rows
    (workload source "prometheus") whose name or image matches. Other rows are unchanged."""
    out = containers.copy()
    out["injector"] = ""
    if not injectors:
        return out
    keys = list(CONTAINER_KEY)
    from_metrics = _from_metrics(out, workloads)
    images = out["image"] if "image" in out else pd.Series("", index=out.index)
    matched = injector_of(out["container"], images, injectors)
    retype = from_metrics & (matched != "") & out["container_type"].isin(["main", ""])
    out.loc[retype, "container_type"] = INJECTED
    out.loc[retype, "injector"] = matched[retype]
    if usage.empty:
        return out
    seen = usage[keys].drop_duplicates()
    known = seen.merge(out[keys].drop_duplicates(), on=keys, how="left", indicator=True)
    orphan = known.loc[known["_merge"] == "left_only", keys].reset_index(drop=True)
    theirs = injector_of(orphan["container"], pd.Series("", index=orphan.index), injectors)
    orphan = orphan[theirs != ""].assign(injector=theirs[theirs != ""], container_type=INJECTED, init_order=np.nan,
                                         cpu_request_cores=np.nan, cpu_limit_cores=np.nan, memory_request_bytes=np.nan,
                                         memory_limit_bytes=np.nan)
    spec_workloads = out[list(WORKLOAD_KEY)].drop_duplicates()
    orphan = orphan.merge(spec_workloads, on=list(WORKLOAD_KEY), how="inner")  # only workloads the spec knows
    return pd.concat([out, orphan], ignore_index=True) if len(orphan) else out


def _from_metrics(containers: pd.DataFrame, workloads: pd.DataFrame) -> pd.Series:
    """True for rows whose workload came from the kube-state-metrics inventory (no spec to compare with)."""
    if workloads.empty or "source" not in workloads:
        return pd.Series(False, index=containers.index)
    src = workloads.drop_duplicates(list(WORKLOAD_KEY)).set_index(list(WORKLOAD_KEY))["source"]
    got = pd.MultiIndex.from_frame(containers[list(WORKLOAD_KEY)]).map(src)
    return pd.Series(np.asarray(got, dtype=object) == "prometheus", index=containers.index)


def mesh_summary(recommendations: pd.DataFrame, share: float = 0.9) -> pd.DataFrame:
    """Per injector: the proxy resources that fit ``share`` (90 %) of its pods, as a mesh-wide default.

    Over the injected containers with a recommendation, weighted by pods (replicas, 1 when unknown): the
    ``share`` quantile of the recommended CPU request, memory request and memory limit (cores, bytes),
    how many workloads and pods that covers, and the workloads above it (which keep their annotation)."""
    cols = ["injector", "workloads", "pods", "cpu_request_cores", "memory_request_bytes", "memory_limit_bytes",
            "workloads_above", "share"]
    if recommendations.empty or "injector" not in recommendations:
        return pd.DataFrame(columns=cols)
    inj = recommendations[(recommendations["container_type"] == INJECTED) & recommendations["status"].isin(["change", "keep"])]
    rows = []
    for name, g in inj.groupby("injector", sort=True):
        pods = g["replicas"].fillna(1.0).clip(lower=0.0).to_numpy()
        values = {c: _weighted_quantile(g[f"{c}_recommended"].to_numpy(dtype=float), pods, share)
                  for c in ("cpu_request_cores", "memory_request_bytes", "memory_limit_bytes")}
        above = (g["cpu_request_cores_recommended"] > values["cpu_request_cores"]) | \
                (g["memory_request_bytes_recommended"] > values["memory_request_bytes"])
        rows.append({"injector": name, "workloads": int(g[list(WORKLOAD_KEY)].drop_duplicates().shape[0]),
                     "pods": float(pods.sum()), **values, "workloads_above": int(above.sum()), "share": share})
    return pd.DataFrame(rows, columns=cols)


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The smallest value whose cumulative weight reaches ``q`` of the total (NaN values left out)."""
    ok = ~np.isnan(values)
    values, weights = values[ok], weights[ok]
    if not len(values) or weights.sum() <= 0:
        return float("nan")
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order]) / weights.sum()
    return float(values[order][np.searchsorted(cum, q - 1e-12)])
