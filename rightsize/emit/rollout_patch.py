"""An Argo Rollout's resources patch: JSON6902 operations on its containers, addressed by position.

kustomize knows no schema for a custom resource, so a strategic-merge patch on a Rollout replaces its
whole container list (every image and every other container lost; rendered with kubectl kustomize, see
tests/test_rollouts.py). A JSON6902 patch changes only the values it names: each container is guarded by a
``test`` of its name at its position (the build fails if the containers moved since the snapshot), and each
value is an ``add`` of a leaf (which also replaces it). A map that does not exist yet is added whole only
where the object is known (its manifest): without it, a ``resources.requests`` or ``limits`` map that holds
no CPU or memory value may still hold other resources (ephemeral storage, GPUs), so that container is left
to a person rather than overwritten.
"""
from __future__ import annotations

import math

from .patch_body import container_resources
from .patch_model import LIST_NAME, PodSpecView, WorkloadPatch, container_spec, name_pattern, skip_row
from .patch_text import evidence_lines, yaml_text

POD_SPEC = "/spec/template/spec"
API = ("argoproj.io", "v1alpha1")


def rollout_patch(cluster: str, namespace: str, workload: str, rows: list[dict], view: PodSpecView | None,
                  doc: dict | None) -> tuple[WorkloadPatch, list[dict]]:
    """The patch of one Rollout (its rows already selected) and its JSON6902 operations. ``view``: the
    containers' order (its manifest, or the snapshot's list from the API); ``doc``: its manifest object, which
    says which resource maps exist. Without the order a container's position is unknown: no patch."""
    p = WorkloadPatch(cluster, namespace, "Rollout", workload, [], {})
    ops: list[dict] = []
    for r in sorted(rows, key=lambda r: (r["container_type"] != "init", r["container"])):
        list_name = LIST_NAME[r["container_type"]]
        names = view.order.get(list_name, []) if view else []
        if r["container"] not in names:
            why = (f"container not in Rollout {workload} as {view.where} has it" if view else
                   "container positions unknown (the kube-state-metrics inventory): a Rollout's patch names its "
                   "containers by position; collect with the Kubernetes API or manifests")
            p.missing.append(skip_row(r, why))
            continue
        spec = container_spec(doc, "Rollout", list_name, r["container"]) if doc is not None else None
        mine, why = container_ops(r, names.index(r["container"]), list_name, container_resources(r), spec)
        if why:
            p.missing.append(skip_row(r, why))
        elif mine:
            ops += mine
            p.rows.append(r)
    return p, ops


def rollout_file(p: WorkloadPatch, ops: list[dict], meta: dict) -> str:
    comments = [f"rightsize: resources of Argo Rollout {p.namespace}/{p.workload} as JSON6902 operations (kustomize "
                "would replace a custom resource's whole container list with a strategic merge); each test op fails "
                "the build if a container moved since the snapshot"] + evidence_lines(p, meta)
    return yaml_text(ops, comments)


def _known(value) -> bool:
    try:
        return not math.isnan(float(value))
    except (TypeError, ValueError):
        return False


def container_ops(row: dict, index: int, list_name: str, want: dict, spec: dict | None) -> tuple[list[dict], str]:
    """(JSON6902 ops, '' or why the container is left to a person) for one container at ``index`` of
    ``list_name``. ``want``: the resources to set (patches.container_resources); ``spec``: the container as
    its manifest has it, or None when only the snapshot's values are known."""
    base = f"{POD_SPEC}/{list_name}/{index}"
    ops: list[dict] = [{"op": "test", "path": f"{base}/name", "value": row["container"]}]
    have = None if spec is None else dict((spec.get("resources") or {}))
    for section in ("requests", "limits"):
        values = want.get(section) or {}
        if not values:
            continue
        if have is None:
            set_here = [res for res in ("cpu", "memory") if _known(row.get(f"{res}_{section[:-1]}_{_unit(res)}_current"))]
            if not set_here:
                return [], (f"its resources.{section} holds no CPU or memory value, and without its manifest rightsize "
                            "cannot tell whether it holds other resources a JSON6902 patch would overwrite: set "
                            f"{', '.join(f'{k} {v}' for k, v in values.items())} by hand")
            ops += [{"op": "add", "path": f"{base}/resources/{section}/{k}", "value": v} for k, v in values.items()]
        elif section in have:
            ops += [{"op": "add", "path": f"{base}/resources/{section}/{k}", "value": v} for k, v in values.items()]
        elif "resources" in (spec or {}) or have:
            ops.append({"op": "add", "path": f"{base}/resources/{section}", "value": dict(values)})
            have[section] = dict(values)
        else:
            ops.append({"op": "add", "path": f"{base}/resources", "value": {section: dict(values)}})
            have = {section: dict(values)}
            spec = {**(spec or {}), "resources": have}
    if row.get("cpu_limit_action") == "remove":
        limited = ("cpu" in ((have or {}).get("limits") or {})) if spec is not None else _known(row.get("cpu_limit_cores_current"))
        if limited:
            ops.append({"op": "remove", "path": f"{base}/resources/limits/cpu"})
    return (ops if len(ops) > 1 else []), ""


def _unit(resource: str) -> str:
    return "cores" if resource == "cpu" else "bytes"


def target(name: str, namespace: str | None) -> dict:
    """The kustomize patch target of one Rollout (names escaped: kustomize reads them as regular expressions)."""
    group, version = API
    t = {"group": group, "version": version, "kind": "Rollout", "name": name_pattern(name)}
    if namespace:
        t["namespace"] = name_pattern(namespace)
    return t
