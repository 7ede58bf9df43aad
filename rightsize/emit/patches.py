"""Kustomize patches for review: one strategic-merge patch per workload, touching only ``resources``.

``write_patches`` writes, below ``out_dir``, one folder per ``[patches] layout`` (``{cluster}/{namespace}``)
holding one patch file per workload, a kustomization.yaml listing them under ``patches:`` with explicit
targets, and ``PATCHES.md`` (a pull-request body: what was patched, what was skipped and why).

Patches never remove a field. The one exception is a CPU limit the policy says to remove
(``cpu_limit_action == "remove"``): that is an explicit JSON6902 ``remove`` op in its own file, guarded by
a ``test`` op on the container's name, and written only when the container's position is known (from
the workload's manifest here, from the rendered overlay in overlay mode).

The helpers below (selection, patch bodies, evidence comments, YAML text) are shared with overlay mode.
Everything is written into a temporary folder beside ``out_dir`` and moved into place, so a failure
never leaves half a patch set.
"""
from __future__ import annotations

import functools
import io
import math
import os
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from ..analysis.summary import flag_mask
from ..errors import ConfigError, RightsizeError
from ..atomic import inside
from ..folders import k8s_name_problem, layout_problem, replace_folder, safe_component
from ..s3 import S3Path, location
from ..quantity import format_cpu, format_duration, format_memory
from ..refs import WorkloadRef
from ..schema import WORKLOAD_KEY
from .formatting import cpu_limit_change, usd

# Kinds whose pod template kustomize merges by container name (built-in schema). Anything else (bare
# Pods, custom resources such as Rollouts) would get its container list replaced by a strategic-merge
# patch, so it is skipped with that reason.
KIND_API: dict[str, tuple[str, str]] = {
    "Deployment": ("apps", "v1"),
    "StatefulSet": ("apps", "v1"),
    "DaemonSet": ("apps", "v1"),
    "ReplicaSet": ("apps", "v1"),
    "Job": ("batch", "v1"),
    "CronJob": ("batch", "v1"),
    "ReplicationController": ("", "v1"),
}
POD_SPEC_PATH: dict[str, tuple[str, ...]] = {"CronJob": ("spec", "jobTemplate", "spec", "template", "spec")}
DEFAULT_POD_SPEC_PATH = ("spec", "template", "spec")
LIST_NAME = {"main": "containers", "init": "initContainers"}

SKIP_COLUMNS = ["cluster", "namespace", "kind", "workload", "container", "container_type", "status", "reason"]
ONE_OFF_JOB = ("one-off Job: its pod template is immutable, so no patch; for the next run, change the manifest "
               "that creates it (its saving is not in the total)")
HPA_API = ("autoscaling", "HorizontalPodAutoscaler")


class PatchError(RightsizeError):
    """Patches cannot be written (unwritable target, ambiguous workload, bad layout)."""


@dataclass
class PatchResult:
    """What ``write_patches`` wrote.

    ``written``: every file (patches, kustomizations, PATCHES.md), final paths.
    ``kustomizations``: the kustomization.yaml files. ``patched``: the recommendation rows written into
    a patch. ``skipped``: rows not patched, with ``reason`` saying why (SKIP_COLUMNS).
    ``notes``: caveats also listed in PATCHES.md (e.g. a CPU limit removal left to a person).
    """

    out_dir: Path
    written: list[Path] = field(default_factory=list)
    kustomizations: list[Path] = field(default_factory=list)
    patched: pd.DataFrame = field(default_factory=pd.DataFrame)
    skipped: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SKIP_COLUMNS))
    notes: list[str] = field(default_factory=list)
    markdown: Path | None = None
    warnings: list[str] = field(default_factory=list)  # kustomizations without resources; workloads refused (names not Kubernetes names)


@dataclass
class WorkloadPatch:
    """The patch of one workload: the strategic-merge body plus any JSON6902 CPU-limit removal ops.

    ``rows``: the recommendation rows (dicts) it carries; ``missing``: rows left out (SKIP_COLUMNS dicts).
    """

    cluster: str
    namespace: str
    kind: str
    workload: str
    rows: list[dict]
    body: dict
    remove_ops: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    missing: list[dict] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return str(WorkloadRef(self.namespace, self.kind, self.workload))

    @property
    def stem(self) -> str:
        return f"{self.kind.lower()}-{self.workload}"


# --- selection --------------------------------------------------------------------------------------

def _has(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values, errors="coerce").notna()


def select(recommendations: pd.DataFrame, config) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split recommendation rows into (rows to patch, skipped rows with the reason why).

    Only status "change" rows of a patchable kind with at least one value to write are patched.
    """
    recs = recommendations.reset_index(drop=True)
    if recs.empty:
        return recs.copy(), pd.DataFrame(columns=SKIP_COLUMNS)
    status = recs["status"].fillna("").astype(str)
    detail = recs["reason"].fillna("").astype(str)
    with_detail = np.where(detail != "", ": " + detail, "")
    why = pd.Series("", index=recs.index, dtype=object)
    why[status == "keep"] = "below the change threshold" + pd.Series(with_detail, index=recs.index)[status == "keep"]
    why[status == "ignored"] = "opted out" + pd.Series(with_detail, index=recs.index)[status == "ignored"]
    no_rec = status == "no_recommendation"
    why[no_rec] = "no recommendation" + pd.Series(with_detail, index=recs.index)[no_rec]
    other = ~status.isin(["change", "keep", "ignored", "no_recommendation"])
    why[other] = "status " + status[other].map(repr)

    change = status == "change"
    bad_kind = change & ~recs["kind"].isin(list(KIND_API))
    why[bad_kind] = ("kind " + recs.loc[bad_kind, "kind"].astype(str)
                     + " is not patched: a strategic merge would not merge its containers by name")
    ctype = recs.get("container_type", pd.Series("main", index=recs.index)).fillna("").replace("", "main")
    unknown_type = change & ~ctype.isin(list(LIST_NAME)) & (why == "")
    why[unknown_type] = "container_type " + ctype[unknown_type].map(repr) + " is neither main nor init"
    if not config.patches.include_init_containers:
        init = change & (ctype == "init") & (why == "")
        why[init] = "init container (patches.include_init_containers = false)"
    one_off = change & flag_mask(recs, "one_off_job") & (why == "")
    why[one_off] = ONE_OFF_JOB
    something = (_has(recs["cpu_request_cores_recommended"]) | _has(recs["memory_request_bytes_recommended"])
                 | _has(recs["memory_limit_bytes_recommended"])
                 | ((recs["cpu_limit_action"] == "set") & _has(recs["cpu_limit_cores_recommended"]))
                 | (recs["cpu_limit_action"] == "remove"))
    nothing = change & ~something & (why == "")
    why[nothing] = "no recommended value to write"

    skipped = recs.loc[why != ""].copy()
    skipped["reason"] = why[why != ""]
    skipped["container_type"] = ctype[why != ""]
    patch = recs.loc[why == ""].copy()
    patch["container_type"] = ctype[why == ""]
    dup = patch.duplicated(list(WORKLOAD_KEY) + ["container", "container_type"], keep=False)
    if dup.any():
        r = patch.loc[dup].iloc[0]
        raise PatchError(f"recommendations: container {r['namespace']}/{r['kind']}/{r['workload']} {r['container']} "
                         f"(cluster {r['cluster']}) appears {int(dup.sum())} times; cannot tell which to patch")
    return patch, skipped[[c for c in SKIP_COLUMNS if c in skipped.columns]].reset_index(drop=True)


# --- patch bodies -----------------------------------------------------------------------------------

def _num(value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return math.nan
    return v


def container_resources(row) -> dict:
    """``resources`` of one container in Kubernetes notation: only the recommended values, nothing removed."""
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    cpu = _num(row["cpu_request_cores_recommended"])
    mem = _num(row["memory_request_bytes_recommended"])
    mem_limit = _num(row["memory_limit_bytes_recommended"])
    cpu_limit = _num(row["cpu_limit_cores_recommended"])
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


def pod_spec_path(kind: str) -> tuple[str, ...]:
    return POD_SPEC_PATH.get(kind, DEFAULT_POD_SPEC_PATH)


def api_version(kind: str) -> str:
    group, version = KIND_API[kind]
    return f"{group}/{version}" if group else version


@dataclass
class PodSpecView:
    """What is known of a workload's containers: names in order per list and which have a CPU limit.

    ``where`` names the source for notes (a manifest, the rendered overlay, the snapshot's containers table).
    """

    order: dict[str, list[str]]
    cpu_limited: set[tuple[str, str]]
    where: str


def view_from_doc(doc: dict, kind: str, where: str) -> PodSpecView:
    spec: Any = doc
    for key in pod_spec_path(kind):
        spec = spec.get(key) if isinstance(spec, dict) else None
    order: dict[str, list[str]] = {}
    limited: set[tuple[str, str]] = set()
    for list_name in LIST_NAME.values():
        items = [c for c in ((spec or {}).get(list_name) or []) if isinstance(c, dict) and "name" in c]
        order[list_name] = [str(c["name"]) for c in items]
        limited |= {(list_name, str(c["name"])) for c in items if has_cpu_limit(c)}
    return PodSpecView(order, limited, where)


def view_from_containers(containers: pd.DataFrame, where: str) -> PodSpecView:
    """From snapshot ``containers`` rows of one workload, in table order (collectors list them in spec order)."""
    types = containers["container_type"].fillna("").replace("", "main")
    order = {LIST_NAME[t]: list(containers.loc[types == t, "container"].astype(str)) for t in LIST_NAME}
    limited = {(LIST_NAME.get(t, "containers"), str(c)) for t, c, lim
               in zip(types, containers["container"], containers["cpu_limit_cores"]) if pd.notna(lim)}
    return PodSpecView(order, limited, where)


def _row_order(r: dict) -> tuple:
    return (r["container_type"] != "init", r["container"])


def skip_row(r: dict, reason: str) -> dict:
    return {**{c: r.get(c, "") for c in SKIP_COLUMNS[:6]}, "status": "change", "reason": reason}


def build_patch(cluster: str, namespace: str, kind: str, workload: str, rows: list[dict],
                view: PodSpecView | None = None, *, name: str | None = None,
                patch_namespace: str | None = None) -> WorkloadPatch:
    """The patch of one workload from its rows (dicts already filtered by ``select``).

    With ``view`` every container of a patched list is listed, in the object's order: kustomize's
    strategic merge puts the containers a patch names first, so naming them all keeps the order (which
    matters for init containers) and makes a JSON6902 index placed right after this patch exact.
    Without it, only the patched containers are named, init containers are not patched and CPU-limit
    removals are left to a person (noted). Rows naming a container the object does not have are
    moved to ``patch.missing`` with the reason.
    ``name``/``patch_namespace``: identity written into the body (overlay mode: as the overlay sees it).
    """
    notes: list[str] = []
    ref = str(WorkloadRef(namespace, kind, workload))
    ordered = sorted(rows, key=_row_order)
    kept: list[dict] = []
    missing: list[dict] = []
    pod_spec: dict = {}
    ops: list[dict] = []
    for list_name in ("initContainers", "containers"):
        sub = [r for r in ordered if LIST_NAME[r["container_type"]] == list_name]
        if not sub:
            continue
        names = view.order.get(list_name, []) if view else []
        if names:
            present = [r for r in sub if r["container"] in names]
            missing += [skip_row(r, f"container not in {kind} {workload} as {view.where} has it")
                        for r in sub if r["container"] not in names]
            kept += present
            resources = {r["container"]: container_resources(r) for r in present}
            entries = []
            for n in names:
                entry: dict = {"name": n}
                if resources.get(n):
                    entry["resources"] = resources[n]
                entries.append(entry)
            for r in present:
                if r["cpu_limit_action"] != "remove":
                    continue
                c = r["container"]
                if (list_name, c) in view.cpu_limited:
                    ops += remove_ops(kind, list_name, names.index(c), c)
                else:
                    notes.append(f"{ref} container {c}: CPU limit already unset in {view.where}; nothing to remove")
            if any("resources" in e for e in entries) or ops:
                pod_spec[list_name] = entries
            continue
        where = view.where if view else "no manifest or container list in the snapshot"
        if list_name == "initContainers":
            missing += [skip_row(r, f"init container order unknown ({where}): a patch could reorder init containers")
                        for r in sub]
            continue
        kept += sub
        entries = [{"name": r["container"], "resources": container_resources(r)} for r in sub]
        entries = [e for e in entries if e["resources"]]
        if entries:
            pod_spec[list_name] = entries
            notes.append(f"{ref}: container order unknown ({where}); kustomize lists the patched containers first")
        for r in sub:
            if r["cpu_limit_action"] == "remove":
                notes.append(f"{ref} container {r['container']}: CPU limit removal not written, the container's "
                             f"position is unknown ({where}); remove `resources.limits.cpu` by hand")
    for row in kept:
        notes += _limit_conflicts(ref, row)
    body: dict = pod_spec
    for key in reversed(pod_spec_path(kind)):
        body = {key: body}
    metadata = {"name": name or workload}
    ns = namespace if patch_namespace is None else patch_namespace
    if ns:
        metadata["namespace"] = ns
    body = {"apiVersion": api_version(kind), "kind": kind, "metadata": metadata, **body}
    return WorkloadPatch(cluster, namespace, kind, workload, sorted(kept, key=_row_order), body,
                         remove_ops=ops, notes=notes, missing=missing)


def _limit_conflicts(ref: str, row) -> list[str]:
    """Notes for a recommended request above a limit the patch leaves as it is (the API server rejects that)."""
    notes = []
    cpu, cpu_limit = _num(row["cpu_request_cores_recommended"]), _num(row["cpu_limit_cores_current"])
    if row["cpu_limit_action"] not in ("set", "remove") and cpu > cpu_limit:
        notes.append(f"{ref} container {row['container']}: recommended CPU request {format_cpu(cpu)} is above its "
                     f"current CPU limit {format_cpu(cpu_limit)}, which the patch keeps; raise or remove the limit")
    mem, mem_limit = _num(row["memory_request_bytes_recommended"]), _num(row["memory_limit_bytes_current"])
    if math.isnan(_num(row["memory_limit_bytes_recommended"])) and mem > mem_limit:
        notes.append(f"{ref} container {row['container']}: recommended memory request {format_memory(mem)} is above "
                     f"its current memory limit {format_memory(mem_limit)}, which the patch keeps; raise the limit")
    return notes


def remove_ops(kind: str, list_name: str, index: int, container: str) -> list[dict]:
    """JSON6902 ops removing one container's CPU limit; the test op makes the build fail if the index is stale."""
    base = "/" + "/".join(pod_spec_path(kind)) + f"/{list_name}/{index}"
    return [{"op": "test", "path": f"{base}/name", "value": container},
            {"op": "remove", "path": f"{base}/resources/limits/cpu"}]


def container_spec(doc: dict, kind: str, list_name: str, container: str) -> dict | None:
    spec: Any = doc
    for key in pod_spec_path(kind):
        spec = spec.get(key) if isinstance(spec, dict) else None
    if not isinstance(spec, dict):
        return None
    for c in spec.get(list_name) or []:
        if isinstance(c, dict) and str(c.get("name")) == container:
            return c
    return None


def has_cpu_limit(container: dict | None) -> bool:
    limits = ((container or {}).get("resources") or {}).get("limits") or {}
    return "cpu" in limits


def target(kind: str, name: str, namespace: str | None) -> dict:
    """Explicit kustomize patch target. Names are regular expressions to kustomize, so dots are escaped."""
    group, version = KIND_API[kind]
    t = {"group": group, "version": version, "kind": kind, "name": _name_pattern(name)}
    if namespace:
        t["namespace"] = _name_pattern(namespace)
    return t


def _name_pattern(name: str) -> str:
    return re.escape(name).replace("\\-", "-")


# --- evidence ---------------------------------------------------------------------------------------

def _cpu_text(v) -> str:
    v = _num(v)
    return "unset" if math.isnan(v) else format_cpu(v)


def _mem_text(v) -> str:
    v = _num(v)
    return "unset" if math.isnan(v) else format_memory(v)


def _mem_basis_text(v) -> str:
    v = _num(v)
    if math.isnan(v):
        return "unknown"
    return f"{v / 2**20:.0f}Mi" if v >= 2**20 else f"{v:.0f}"


def _usd(v) -> str:
    v = _num(v)
    if math.isnan(v):
        return "unknown"
    return f"{usd(v)}/month" + (" (costs more)" if v < 0 else "")


def window_text(meta: dict) -> str:
    start, end = meta.get("window_start"), meta.get("window_end")
    if not start or not end:
        return "unknown"
    try:
        span = (pd.Timestamp(end) - pd.Timestamp(start)).total_seconds()
        return f"{start} .. {end} ({format_duration(span)})"
    except (ValueError, TypeError):
        return f"{start} .. {end}"


def cpu_limit_text(row) -> str:
    """The CPU limit change in the one wording of every report (formatting.cpu_limit_change)."""
    return cpu_limit_change(row["cpu_limit_action"], row["cpu_limit_cores_current"], row["cpu_limit_cores_recommended"])


def evidence_lines(patch: WorkloadPatch, meta: dict) -> list[str]:
    """Comment lines (without '#') stating the evidence behind every value in the patch."""
    saving = [_num(r["savings_usd_per_month"]) for r in patch.rows]
    known = [v for v in saving if not math.isnan(v)]
    total = _usd(sum(known)) if known else "unknown"
    lines = [
        f"rightsize: {patch.kind} {patch.namespace}/{patch.workload} (cluster {patch.cluster})",
        f"window: {window_text(meta)}",
        f"monthly saving: {total}" + (" (some containers unknown)" if known and len(known) < len(saving) else ""),
    ]
    for r in patch.rows:
        kind = "init container" if r["container_type"] == "init" else "container"
        hours = _num(r.get("hours_covered"))
        history = "" if math.isnan(hours) else f", {hours / 24:.1f} d of history"
        samples = _num(r.get("samples"))
        history += "" if math.isnan(samples) else f", {samples:.0f} samples"
        lines.append(f"{kind} {r['container']}: policy {r.get('policy', '') or '?'}, "
                     f"confidence {r.get('confidence', '') or '?'}{history}")
        cpu_basis = f"{r.get('cpu_basis', '') or '?'} {_cpu_text(r.get('cpu_basis_cores'))}"
        mem_basis = f"{r.get('memory_basis', '') or '?'} {_mem_basis_text(r.get('memory_basis_bytes'))}"
        lines += [
            f"  cpu request:    {_cpu_text(r['cpu_request_cores_current'])} → {_cpu_text(r['cpu_request_cores_recommended'])}"
            f"  (usage {cpu_basis})",
            f"  memory request: {_mem_text(r['memory_request_bytes_current'])} → {_mem_text(r['memory_request_bytes_recommended'])}"
            f"  (usage {mem_basis}"
            + ("" if r.get("memory_basis") == "max" else f", max {_mem_basis_text(r.get('memory_max_bytes'))}") + ")",
            f"  memory limit:   {_mem_text(r['memory_limit_bytes_current'])} → "
            + ("unset (kept: the working set grows)" if r.get("memory_limit_action") == "keep_unset"
               else _mem_text(r['memory_limit_bytes_recommended'])),
            f"  cpu limit:      {cpu_limit_text(r)}",
            f"  saving:         {_usd(r['savings_usd_per_month'])}",
        ]
        extra = []
        if _num(r.get("oom_kills")) > 0:
            extra.append(f"{_num(r['oom_kills']):.0f} OOM kills")
        if _num(r.get("cpu_throttled_ratio")) > 0:
            extra.append(f"throttled {_num(r['cpu_throttled_ratio']):.0%} of CFS periods")
        flags = str(r.get("flags", "") or "")
        lines.append(f"  flags:          {flags or 'none'}" + (f" ({'; '.join(extra)})" if extra else ""))
        if str(r.get("reason", "") or ""):
            lines.append(f"  notes:          {r['reason']}")
    for note in patch.notes:
        lines.append(f"note: {note}")
    return lines


# --- YAML text --------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _yaml() -> YAML:
    y = YAML()
    y.default_flow_style = False
    y.width = 4096
    y.indent(mapping=2, sequence=2, offset=0)
    return y


def yaml_text(data: Any, comments: Iterable[str] = ()) -> str:
    """YAML of ``data`` with ``comments`` as a leading '#' block."""
    buf = io.StringIO()
    _yaml().dump(data, buf)
    head = "".join(f"# {c}".rstrip() + "\n" for c in comments)
    return head + buf.getvalue()


def load_all(text: str, where: str) -> list[dict]:
    """Every mapping document of a YAML stream (safe loader)."""
    try:
        docs = list(YAML(typ="safe", pure=True).load_all(text))
    except YAMLError as exc:
        raise PatchError(f"{where}: not valid YAML: {str(exc).splitlines()[0]}") from None
    return [d for d in docs if isinstance(d, dict)]


def smp_file(patch: WorkloadPatch, meta: dict) -> str:
    return yaml_text(patch.body, evidence_lines(patch, meta))


def json6902_file(patch: WorkloadPatch) -> str:
    comments = [f"rightsize: remove the CPU limit of {patch.kind} {patch.namespace}/{patch.workload} "
                f"as the policy says (cpu_limit = remove); the test op fails the build if the container moved"]
    return yaml_text(patch.remove_ops, comments)


# --- HPA co-adjustment -------------------------------------------------------------------------------

@dataclass
class HpaPatch:
    """JSON6902 ops moving an HPA's target utilization with the workload's requests (analysis/hpa.py)."""

    name: str
    namespace: str
    ops: list[dict]
    changes: list[str]

    @property
    def stem(self) -> str:
        return f"hpa-{self.name}"


def hpa_patch(patch: WorkloadPatch, spec: dict | None, why_not: str = "") -> tuple[HpaPatch | None, list[str]]:
    """The HPA patch that goes with a workload patch, or notes for a person when the HPA's name or the place
    of its target is unknown (e.g. a kube-state-metrics inventory) or ``why_not`` says it is not written.
    Each target gets a ``test`` op on its current value, so the build fails if the HPA changed since the
    snapshot."""
    moves = []
    for res in ("cpu", "memory"):
        values = [(_num(r.get(f"hpa_{res}_target_percent_current")), _num(r.get(f"hpa_{res}_target_percent_recommended")))
                  for r in patch.rows]
        cur, new = next(((c, n) for c, n in values if not math.isnan(n)), (math.nan, math.nan))
        if not math.isnan(new) and new != cur:
            moves.append((res, cur, new))
    if not moves:
        return None, []
    name = str((spec or {}).get("hpa_name") or "")
    ops, changes, notes = [], [], []
    for res, cur, new in moves:
        path = str((spec or {}).get(f"hpa_{res}_target_path") or "")
        text = f"{res} {cur:.0f}% -> {new:.0f}%"
        if why_not or not name or not path:
            why = why_not or f"the HPA's {'name' if not name else 'target'} is not in the snapshot"
            notes.append(f"{patch.ref}: set its HPA's target {res} utilization {cur:.0f}% → {new:.0f}% together with "
                         f"this patch, or the scaling point moves ({why})")
            continue
        ops += [{"op": "test", "path": path, "value": int(cur)}, {"op": "replace", "path": path, "value": int(new)}]
        changes.append(text)
    return (HpaPatch(name, patch.namespace, ops, changes) if ops else None), notes


def hpa_file(hpa: HpaPatch, patch: WorkloadPatch) -> str:
    comments = [f"rightsize: HPA {hpa.namespace}/{hpa.name} of {patch.kind} {patch.workload}: target utilization "
                f"{', '.join(hpa.changes)}, so that target x pod request (the usage at which it scales) stays",
                "as the requests change in the workload's patch; the test ops fail the build if the HPA changed."]
    return yaml_text(hpa.ops, comments)


def hpa_target(hpa: HpaPatch) -> dict:
    group, kind = HPA_API
    t = {"group": group, "kind": kind, "name": _name_pattern(hpa.name)}  # any version: v1 and v2 have their own paths
    if hpa.namespace:
        t["namespace"] = _name_pattern(hpa.namespace)
    return t


# --- patches mode -----------------------------------------------------------------------------------

def _layout_folder(layout: str, cluster: str, namespace: str) -> str:
    """The patch folder of a workload; the cluster name (not bound by Kubernetes' naming rules) is encoded
    when it is not plain, the namespace was checked to be a Kubernetes name."""
    problem = layout_problem(layout)
    if problem:
        raise ConfigError(f"patches.layout: {problem}")
    folder = layout.format(cluster=safe_component(cluster), namespace=safe_component(namespace)) if layout else "."
    return posixpath.normpath(folder)


SPEC_SOURCES = ("api", "manifests", "demo")  # workloads whose container rows follow the pod spec's order


class _SpecIndex:
    """The snapshot's workloads and containers tables indexed by workload key, built once per run."""

    def __init__(self, snapshot):
        tables = getattr(snapshot, "tables", {}) or {}
        wl = tables.get("workloads")
        self.workloads: dict[tuple, list[dict]] = {}
        if wl is not None and not wl.empty:
            cols = [c for c in ("source", "source_file", "hpa_name", "hpa_cpu_target_path", "hpa_memory_target_path")
                    if c in wl.columns]
            for r in wl[list(WORKLOAD_KEY) + cols].to_dict("records"):
                self.workloads.setdefault(tuple(r[k] for k in WORKLOAD_KEY), []).append(r)
        ct = tables.get("containers")
        self.containers: dict[tuple, pd.DataFrame] = {}
        if ct is not None and not ct.empty:
            self.containers = {k: g for k, g in ct.groupby(list(WORKLOAD_KEY), sort=False)}
        self.cache: dict = {}


def _workload_view(index: _SpecIndex, config, key: tuple) -> PodSpecView | None:
    """Container order of one workload: its manifest (workloads.source_file) if readable, else the
    snapshot's containers rows when they came from the spec, else None (unknown)."""
    rows = index.workloads.get(key, [])
    files = [str(r.get("source_file") or "") for r in rows if str(r.get("source_file") or "")]
    if files:
        doc, where = _manifest_doc(files[0], key, config, index.cache)
        if doc is not None:
            return view_from_doc(doc, key[2], where)
    sources = {str(r.get("source") or "") for r in rows}
    if rows and sources <= set(SPEC_SOURCES) and key in index.containers:
        return view_from_containers(index.containers[key], "the snapshot's container list")
    return None


def _add_hpa_patch(p: WorkloadPatch, spec: dict | None, folder: str, files: dict, owners: dict, here: list,
                   entries: list) -> list[str]:
    """Write the HPA patch of a workload patch beside it (into ``files``, ``here``, ``entries``); its notes."""
    hpa, notes = hpa_patch(p, spec)
    if hpa is None:
        return notes
    rel = posixpath.normpath(posixpath.join(folder, f"{hpa.stem}.yaml"))
    if rel in owners:
        raise PatchError(f"patches: {p.cluster}/{p.ref} and {owners[rel]} both map to {rel}")
    owners[rel] = f"{p.cluster}/{p.ref}"
    files[rel] = hpa_file(hpa, p)
    here.append(f"{hpa.stem}.yaml")
    entries.append((f"{hpa.stem}.yaml", hpa_target(hpa)))
    return notes


def _hpa_spec(index: _SpecIndex, key: tuple) -> dict | None:
    """The snapshot's HPA facts of one workload (name, target paths), None when unknown."""
    rows = index.workloads.get(key, [])
    return rows[0] if rows else None


def _manifest_doc(source_file: str, key: tuple, config, cache: dict) -> tuple[dict | None, str]:
    """The workload's object in its manifest file; (None, why) when it cannot be found exactly once."""
    _, namespace, kind, workload = key
    source = Path(source_file)
    candidates = [source]
    manifests = getattr(config.kubernetes, "manifests", "")
    if manifests and not source.is_absolute():
        root = Path(manifests)
        candidates.append((root if root.is_dir() else root.parent) / source)
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        return None, f"manifest {source} not found"
    if path not in cache:
        try:
            cache[path] = load_all(path.read_text(encoding="utf-8"), str(path))
        except (OSError, PatchError):
            cache[path] = []
    docs = [d for d in cache[path] if d.get("kind") == kind
            and (d.get("metadata") or {}).get("name") == workload
            and (d.get("metadata") or {}).get("namespace") in (None, "", namespace)]
    if len(docs) != 1:
        return None, f"manifest {path} has {len(docs)} objects named {kind}/{workload}"
    return docs[0], f"manifest {path}"


def _kustomization(entries: list[tuple[str, dict]], resources: list[str], meta: dict) -> str:
    data: dict = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}
    if resources:
        data["resources"] = resources
    data["patches"] = [{"path": p, "target": t} for p, t in entries]
    comments = [
        "Generated by rightsize: resource patches for review (window " + window_text(meta) + ").",
        "Each patch changes only `resources` of the containers it names (an hpa-*.yaml only its HPA's target "
        "utilization); see PATCHES.md for the evidence.",
    ]
    if not resources:
        comments.append("Add the base these workloads come from under `resources:` (or copy the patches into your overlay).")
    return yaml_text(data, comments)


def _check_writable(out_dir: Path) -> None:
    if isinstance(out_dir, S3Path):
        return _check_s3(out_dir)
    parent = out_dir.parent
    if out_dir.exists() and not out_dir.is_dir():
        raise PatchError(f"{out_dir}: exists and is not a folder; cannot write patches there")
    probe = out_dir if out_dir.exists() else parent
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK) or (out_dir.exists() and not os.access(parent, os.W_OK)):
        raise PatchError(f"{out_dir}: read-only; cannot write patches (nothing was written)")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / "PATCHES.md").is_file():
        raise PatchError(f"{out_dir}: not empty and not a rightsize patch folder (no PATCHES.md); "
                         "refusing to replace it, pick another --out")


def _check_s3(out_dir: S3Path) -> None:
    """An s3:// patch folder is replaced whole: refuse a prefix holding something else than earlier patches."""
    from .. import s3

    manifest = s3.read_manifest(out_dir)
    if manifest is not None and "PATCHES.md" not in manifest["files"]:
        raise PatchError(f"{out_dir}: holds something else than rightsize patches (no PATCHES.md in its {s3.SUCCESS}); "
                         "refusing to replace it, pick another --out")


def patches_markdown(patched: list[tuple[WorkloadPatch, list[str]]], skipped: pd.DataFrame, notes: list[str],
                     meta: dict, title: str = "rightsize: resource patches for review", how_to: bool = True) -> str:
    """PATCHES.md: a pull-request body (at most 60,000 characters, see emit/patches_md.py)."""
    from .patches_md import patches_markdown as render

    return render(patched, skipped, notes, meta, window_text(meta), title=title, how_to=how_to)


def write_patches(recommendations: pd.DataFrame, snapshot, config, out_dir: Path) -> PatchResult:
    """Write the patch folders, their kustomization.yaml and PATCHES.md into ``out_dir`` (replaced whole;
    an existing non-empty folder must be an earlier rightsize patch folder, i.e. hold PATCHES.md).

    Layout: ``out_dir/<patches.layout>/<kind>-<workload>.yaml`` (strategic merge), plus
    ``<kind>-<workload>.cpu-limit.yaml`` (JSON6902) when a CPU limit is removed, and
    ``out_dir/PATCHES.md``. Raises PatchError when ``out_dir`` is read-only or two workloads would
    share a patch file; nothing is written then.
    """
    out_dir = location(out_dir)
    meta = getattr(snapshot, "meta", {}) or {}
    to_patch, skipped = select(recommendations, config)

    files: dict[str, str] = {}  # relative posix path -> text
    folders: dict[str, list[tuple[str, dict]]] = {}
    folder_keys: dict[str, tuple[str, str]] = {}
    owners: dict[str, str] = {}
    index = _SpecIndex(snapshot)
    patched: list[tuple[WorkloadPatch, list[str]]] = []
    notes: list[str] = []
    warnings: list[str] = []
    extra_skips: list[dict] = []
    for key, rows in group_rows(to_patch).items():
        cluster, namespace, kind, workload = key
        bad = k8s_name_problem(namespace=namespace, workload=workload)
        if bad:  # e.g. a '../' in a kube-state-metrics label: no file name may be built from it
            extra_skips += [skip_row(r, f"{bad}; no patch written") for r in rows]
            warnings.append(f"{WorkloadRef(namespace, kind, workload, cluster=cluster)}: {bad}; no patch written")
            continue
        p = build_patch(cluster, namespace, kind, workload, rows, _workload_view(index, config, key))
        extra_skips += p.missing
        notes += p.notes
        folder = _layout_folder(config.patches.layout, cluster, namespace)
        names = [f"{p.stem}.yaml", f"{p.stem}.cpu-limit.yaml"]
        _claim(owners, folder, names, f"{cluster}/{p.ref}", config.patches.layout)
        entries = folders.setdefault(folder, [])
        folder_keys.setdefault(folder, (cluster, namespace))
        t = target(kind, workload, namespace)
        here = []
        # The JSON6902 removal follows the strategic merge, whose full container list fixes the indexes.
        if has_containers(p.body):
            here.append(names[0])
            files[posixpath.join(folder, names[0])] = smp_file(p, meta)
        if p.remove_ops:
            here.append(names[1])
            files[posixpath.join(folder, names[1])] = json6902_file(p)
        entries += [(n, t) for n in here]
        if here:
            notes += _add_hpa_patch(p, _hpa_spec(index, key), folder, files, owners, here, entries)
        if here:
            patched.append((p, [posixpath.join(folder, n) for n in here]))
        else:
            extra_skips += [skip_row(r, "nothing left to write") for r in p.rows]
    skipped = add_skips(skipped, extra_skips)
    empty = _add_kustomizations(files, folders, folder_keys, config, meta)
    files["PATCHES.md"] = patches_markdown(patched, skipped, notes, meta)

    _check_writable(out_dir)
    _replace_folder(out_dir, files)
    written = [out_dir / rel for rel in sorted(files)]
    return PatchResult(
        out_dir=out_dir,
        written=written,
        kustomizations=[p for p in written if p.name == "kustomization.yaml"],
        patched=pd.DataFrame([r for p, _ in patched for r in p.rows], columns=to_patch.columns),
        skipped=skipped.reset_index(drop=True),
        notes=notes,
        markdown=out_dir / "PATCHES.md",
        warnings=warnings + ([_no_resources_warning(out_dir, empty)] if empty else []),
    )


def _claim(owners: dict[str, str], folder: str, names: list[str], who: str, layout: str) -> None:
    """Record ``who`` writes ``names`` in ``folder``; PatchError when another workload maps there too."""
    for name in names:
        rel = posixpath.normpath(posixpath.join(folder, name))
        if rel in owners:
            raise PatchError(f"patches: {who} and {owners[rel]} both map to {rel} "
                             f"(patches.layout {layout!r}); the workload name matches two objects")
        owners[rel] = who


def _add_kustomizations(files: dict[str, str], folders: dict, folder_keys: dict, config, meta: dict) -> list[str]:
    """A kustomization.yaml in every folder with patches; the ones that list no resources."""
    empty: list[str] = []
    for folder, entries in folders.items():
        if not entries:
            continue
        cluster, namespace = folder_keys[folder]
        resources = [r.format(cluster=cluster, namespace=namespace) for r in config.patches.resources]
        files[posixpath.join(folder, "kustomization.yaml")] = _kustomization(entries, resources, meta)
        if not resources:
            empty.append(posixpath.join(folder, "kustomization.yaml"))
    return empty


def _no_resources_warning(out_dir: Path, empty: list[str]) -> str:
    example = out_dir / empty[0]
    return (f"{len(empty)} kustomization(s) list no resources (e.g. {example}): `kubectl kustomize` renders nothing "
            "from them until the base the workloads come from is listed; set [patches] resources "
            "(e.g. \"../../base/{namespace}\") or use --overlay")


def group_rows(rows: pd.DataFrame) -> dict[tuple, list[dict]]:
    """Rows as dicts grouped by workload key, keys sorted (one pass; patches are written per workload)."""
    out: dict[tuple, list[dict]] = {}
    for r in rows.to_dict("records"):
        out.setdefault(tuple(r[k] for k in WORKLOAD_KEY), []).append(r)
    return dict(sorted(out.items()))


def add_skips(skipped: pd.DataFrame, extra: list[dict]) -> pd.DataFrame:
    if not extra:
        return skipped.reset_index(drop=True)
    more = pd.DataFrame(extra, columns=SKIP_COLUMNS)
    return more if skipped.empty else pd.concat([skipped, more], ignore_index=True)


def has_containers(body: dict) -> bool:
    spec: Any = body
    for key in pod_spec_path(body["kind"]):
        spec = spec.get(key, {})
    return bool(spec)


def _replace_folder(out_dir: Path, files: dict[str, str]) -> None:
    """Write ``files`` into a temp folder beside ``out_dir``, then swap it in (no half-written state)."""
    def fill(tmp: Path) -> None:
        for rel, text in files.items():
            path = inside(tmp, rel, error=PatchError)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")

    replace_folder(out_dir, fill, what="patches", error=PatchError)
