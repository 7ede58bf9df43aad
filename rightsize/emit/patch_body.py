"""The body of a workload's patch: a strategic merge naming its containers with their recommended values,
and the JSON6902 ops removing a CPU limit.

A container's entry in the patch is built by CONTAINER_EDITS, each a function of its recommendation row
returning fields of the container (``resources``, and the runtime variables whose memory setting moves
with them: ``env``, merged by name); the pod template can be edited beside the
containers by TEMPLATE_EDITS, functions of the workload's rows returning fields of the pod template (e.g.
an injector's annotations under ``metadata``). Adding an edit is adding a function to one of them.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Callable

from ..formatting import number
from ..quantity import format_cpu, format_memory
from ..refs import WorkloadRef
from .patch_model import INJECTED, LIST_NAME, PodSpecView, WorkloadPatch, api_version, pod_spec_path, skip_row


def container_resources(row) -> dict:
    """``resources`` of one container in Kubernetes notation: only the recommended values, nothing removed."""
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    cpu = number(row["cpu_request_cores_recommended"])
    mem = number(row["memory_request_bytes_recommended"])
    mem_limit = number(row["memory_limit_bytes_recommended"])
    cpu_limit = number(row["cpu_limit_cores_recommended"])
    if not math.isnan(cpu):
        requests["cpu"] = format_cpu(cpu)
    if not math.isnan(mem):
        requests["memory"] = format_memory(mem)
    if row["cpu_limit_action"] == "set" and not math.isnan(cpu_limit):
        limits["cpu"] = format_cpu(cpu_limit)
    if not math.isnan(mem_limit):
        limits["memory"] = format_memory(mem_limit)
    out: dict[str, dict] = {}
    if limits:
        out["limits"] = limits
    if requests:
        out["requests"] = requests
    return out


def _resources_edit(row: dict) -> dict:
    resources = container_resources(row)
    return {"resources": resources} if resources else {}


def _runtime_env_edit(row: dict) -> dict:
    """The runtime variables whose memory setting moves with the limit (runtime_env_json: JAVA_TOOL_OPTIONS with
    its other flags kept, GOMEMLIMIT, ...) as ``env``: a strategic merge replaces each by name, every other
    variable of the container stays."""
    text = row.get("runtime_env_json")
    if not isinstance(text, str) or not text:
        return {}
    return {"env": [{"name": k, "value": v} for k, v in sorted(json.loads(text).items())]}


def _gpu_edit(row: dict) -> dict:
    """A MIG slice the nodes offer in place of the whole GPU (rules/gpu.py, gpu_resource_recommended): the old
    resource set to null, which a strategic merge deletes (a no-op where the object does not set it), the slice
    in requests and limits (an extended resource's request equals its limit)."""
    new, old = str(row.get("gpu_resource_recommended") or ""), str(row.get("gpu_resource") or "")
    count = number(row.get("gpu_request_count_recommended"))
    if not new or new == old or math.isnan(count):
        return {}
    return {"resources": {part: {**({old: None} if old else {}), new: int(count)} for part in ("limits", "requests")}}


ContainerEdit = Callable[[dict], dict]  # a recommendation row -> fields of its container ({}: nothing)
TemplateEdit = Callable[[list[dict]], dict]  # the workload's patched rows -> fields of its pod template
CONTAINER_EDITS: list[ContainerEdit] = [_resources_edit, _runtime_env_edit, _gpu_edit]
TEMPLATE_EDITS: list[TemplateEdit] = []


def merged(a: dict, b: dict) -> dict:
    """``a`` with ``b`` merged in, mappings merged key by key (two edits may fill one mapping)."""
    out = dict(a)
    for k, v in b.items():
        out[k] = merged(out[k], v) if isinstance(out.get(k), dict) and isinstance(v, dict) else v
    return out


def container_entry(name: str, row: dict | None) -> dict:
    """A container's entry in the patch: its name, and what every CONTAINER_EDITS adds for its row (none
    without a row: a container named only to keep the list's order)."""
    entry: dict = {"name": name}
    for edit in CONTAINER_EDITS if row is not None else ():
        entry = merged(entry, edit(row))
    return entry


def _row_order(r: dict) -> tuple:
    return (LIST_NAME.get(r["container_type"]) != "initContainers", r["container_type"] == INJECTED, r["container"])


@dataclass
class _Parts:
    """What build_patch collects over the container lists of one workload."""

    ref: str
    kept: list[dict] = field(default_factory=list)
    missing: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    pod_spec: dict = field(default_factory=dict)
    ops: list[dict] = field(default_factory=list)


def build_patch(cluster: str, namespace: str, kind: str, workload: str, rows: list[dict],
                view: PodSpecView | None = None, *, name: str | None = None,
                patch_namespace: str | None = None, injectors: dict | None = None) -> WorkloadPatch:
    """The patch of one workload from its rows (dicts already filtered by ``select``).

    With ``view`` every container of a patched list is listed, in the object's order: kustomize's
    strategic merge puts the containers a patch names first, so naming them all keeps the order (which
    matters for init containers) and makes a JSON6902 index placed right after this patch exact.
    Without it, only the patched containers are named, init containers are not patched and CPU-limit
    removals are left to a person (noted). Rows naming a container the object does not have are
    moved to ``patch.missing`` with the reason.
    ``name``/``patch_namespace``: identity written into the body (overlay mode: as the overlay sees it).
    Injected sidecars (container_type "injected") become their injector's annotations on the pod template
    (``injectors``: config.injectors), never entries of a container list.
    """
    parts = _Parts(str(WorkloadRef(namespace, kind, workload)))
    ordered = sorted(rows, key=_row_order)
    annotations = injected_annotations(parts, [r for r in ordered if r["container_type"] == INJECTED], injectors or {})
    for list_name in ("initContainers", "containers"):
        sub = [r for r in ordered if LIST_NAME.get(r["container_type"]) == list_name]
        if sub and view and view.order.get(list_name):
            _known_order(parts, kind, workload, list_name, sub, view)
        elif sub:
            _unknown_order(parts, list_name, sub, view.where if view else "no manifest or container list in the snapshot")
    for row in parts.kept:
        parts.notes += _limit_conflicts(parts.ref, row) + _runtime_notes(parts.ref, row)
    kept = sorted(parts.kept, key=_row_order)
    template: dict = {"metadata": {"annotations": annotations}} if annotations else {}
    for edit in TEMPLATE_EDITS:
        template = merged(template, edit(kept))
    template = merged(template, {"spec": parts.pod_spec})  # metadata (if an edit wrote one) before spec
    body: dict = template
    for key in reversed(pod_spec_path(kind)[:-1]):
        body = {key: body}
    metadata = {"name": name or workload}
    ns = namespace if patch_namespace is None else patch_namespace
    if ns:
        metadata["namespace"] = ns
    body = {"apiVersion": api_version(kind), "kind": kind, "metadata": metadata, **body}
    return WorkloadPatch(cluster, namespace, kind, workload, kept, body,
                         remove_ops=parts.ops, notes=parts.notes, missing=parts.missing)


def injected_annotations(parts: _Parts, rows: list[dict], injectors: dict) -> dict[str, str]:
    """The pod template annotations sizing the injected sidecars ``rows`` (``[injectors.NAME]``); their rows go
    to ``parts.kept``, or to ``parts.missing`` with the reason; a value the injector has no annotation for,
    or a CPU limit to remove, is a note for a person."""
    out: dict[str, str] = {}
    for r in rows:
        inj = injectors.get(str(r.get("injector") or ""))
        if inj is None:
            parts.missing.append(skip_row(r, f"injected sidecar of injector {r.get('injector')!r}, which [injectors] does not declare"))
            continue
        values = {"cpu_request": number(r["cpu_request_cores_recommended"]), "memory_request": number(r["memory_request_bytes_recommended"]),
                  "memory_limit": number(r["memory_limit_bytes_recommended"]),
                  "cpu_limit": number(r["cpu_limit_cores_recommended"]) if r["cpu_limit_action"] == "set" else math.nan}
        mine = {}
        for what, v in values.items():
            if math.isnan(v):
                continue
            text = format_cpu(v) if what.startswith("cpu") else format_memory(v)
            if getattr(inj, what):
                mine[getattr(inj, what)] = text
            else:
                parts.notes.append(f"{parts.ref} container {r['container']}: {r['injector']} has no annotation for its "
                                   f"{what.replace('_', ' ')}; set it to {text} by hand")
        if r["cpu_limit_action"] == "remove":
            parts.notes.append(f"{parts.ref} container {r['container']}: remove its CPU limit annotation "
                               f"{inj.cpu_limit or '(none declared)'} by hand")
        if mine:
            out.update(mine)
            parts.kept.append(r)
        else:
            parts.missing.append(skip_row(r, f"injected sidecar ({r['injector']}): no annotation to write"))
    return out


def _known_order(parts: _Parts, kind: str, workload: str, list_name: str, sub: list[dict], view: PodSpecView) -> None:
    """One container list whose order ``view`` knows: every container named, in that order."""
    names = view.order[list_name]
    present = [r for r in sub if r["container"] in names]
    parts.missing += [skip_row(r, f"container not in {kind} {workload} as {view.where} has it")
                      for r in sub if r["container"] not in names]
    parts.kept += present
    by_name = {r["container"]: r for r in present}
    entries = [container_entry(n, by_name.get(n)) for n in names]
    ops = []
    for r in present:
        if r["cpu_limit_action"] != "remove":
            continue
        c = r["container"]
        if (list_name, c) in view.cpu_limited:
            ops += remove_ops(kind, list_name, names.index(c), c)
        else:
            parts.notes.append(f"{parts.ref} container {c}: CPU limit already unset in {view.where}; nothing to remove")
    parts.ops += ops
    if any(len(e) > 1 for e in entries) or ops:
        parts.pod_spec[list_name] = entries


def _unknown_order(parts: _Parts, list_name: str, sub: list[dict], where: str) -> None:
    """One container list whose order is unknown: init containers are not patched (a patch could reorder
    them), containers are named alone (kustomize lists them first) and a CPU-limit removal is left to a person."""
    if list_name == "initContainers":
        parts.missing += [skip_row(r, f"init container order unknown ({where}): a patch could reorder init containers")
                          for r in sub]
        return
    parts.kept += sub
    entries = [e for e in (container_entry(r["container"], r) for r in sub) if len(e) > 1]
    if entries:
        parts.pod_spec[list_name] = entries
        parts.notes.append(f"{parts.ref}: container order unknown ({where}); kustomize lists the patched containers first")
    for r in sub:
        if r["cpu_limit_action"] == "remove":
            parts.notes.append(f"{parts.ref} container {r['container']}: CPU limit removal not written, the container's "
                               f"position is unknown ({where}); remove `resources.limits.cpu` by hand")


def _limit_conflicts(ref: str, row) -> list[str]:
    """Notes for a recommended request above a limit the patch leaves as it is (the API server rejects that)."""
    notes = []
    cpu, cpu_limit = number(row["cpu_request_cores_recommended"]), number(row["cpu_limit_cores_current"])
    if row["cpu_limit_action"] not in ("set", "remove") and cpu > cpu_limit:
        notes.append(f"{ref} container {row['container']}: recommended CPU request {format_cpu(cpu)} is above its "
                     f"current CPU limit {format_cpu(cpu_limit)}, which the patch keeps; raise or remove the limit")
    mem, mem_limit = number(row["memory_request_bytes_recommended"]), number(row["memory_limit_bytes_current"])
    if math.isnan(number(row["memory_limit_bytes_recommended"])) and mem > mem_limit:
        notes.append(f"{ref} container {row['container']}: recommended memory request {format_memory(mem)} is above "
                     f"its current memory limit {format_memory(mem_limit)}, which the patch keeps; raise the limit")
    return notes


def _runtime_notes(ref: str, row) -> list[str]:
    """Notes for a runtime setting the patch cannot move: on the command line (the exact edit), or unknown."""
    action, runtime = row.get("runtime_setting_action", ""), row.get("runtime", "")
    if action == "by_hand":
        return [f"{ref} container {row['container']}: edit its {runtime} memory setting by hand (a patch cannot "
                f"rewrite command or args): {row.get('runtime_setting_edit', '')}"]
    if action == "unknown":
        return [f"{ref} container {row['container']}: its {runtime} memory setting is unknown from the spec (valueFrom, "
                "envFrom or the image's entrypoint): check that it moves with the new limit"]
    return []


def remove_ops(kind: str, list_name: str, index: int, container: str) -> list[dict]:
    """JSON6902 ops removing one container's CPU limit; the test op makes the build fail if the index is stale."""
    base = "/" + "/".join(pod_spec_path(kind)) + f"/{list_name}/{index}"
    return [{"op": "test", "path": f"{base}/name", "value": container},
            {"op": "remove", "path": f"{base}/resources/limits/cpu"}]
