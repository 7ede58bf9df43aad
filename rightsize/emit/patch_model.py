"""The patch model shared by ``patch`` and ``patch --overlay``: which rows are patched (selection), the
workload patch and what is known of a workload's containers, and the kustomize targets of the kinds patched.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..analysis.summary import flag_mask
from ..batch_groups import BATCH_GROUP_KINDS
from ..errors import RightsizeError
from ..refs import WorkloadRef
from ..schema import WORKLOAD_KEY
from .bulk import records


# Kinds whose pod template kustomize merges by container name (built-in schema). Anything else (bare
# Pods, custom resources) would get its container list replaced by a strategic-merge patch, so it is
# skipped with that reason; an Argo Rollout gets JSON6902 operations instead (rollout_patch.py, `patch` only).
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


LIST_NAME = {"main": "containers", "init": "initContainers", "sidecar": "initContainers"}  # native sidecars are init containers
INJECTED = "injected"  # sized by its injector's annotations on the pod template (analysis/injectors.py), in no list


SKIP_COLUMNS = ["cluster", "namespace", "kind", "workload", "container", "container_type", "status", "reason"]


JSON6902_KINDS = ("Rollout",)
BATCH_GROUP = ("pods a batch framework starts: set the requests where it defines them (the workflow template, DAG task, "
               "Spark application or Tekton task); there is no Kubernetes object to patch")


ONE_OFF_JOB = ("one-off Job: its pod template is immutable, so no patch; for the next run, change the manifest "
               "that creates it (its saving is not in the total)")


class PatchError(RightsizeError):
    """Patches cannot be written (unwritable target, ambiguous workload, bad layout)."""


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
    namespaced: bool = False  # file name prefixed with the namespace (an overlay over namespaces sharing the name)

    @property
    def ref(self) -> str:
        return str(WorkloadRef(self.namespace, self.kind, self.workload))

    @property
    def stem(self) -> str:
        return f"{self.namespace + '-' if self.namespaced else ''}{self.kind.lower()}-{self.workload}"


def _has(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values, errors="coerce").notna()


def select(recommendations: pd.DataFrame, config, json6902: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split recommendation rows into (rows to patch, skipped rows with the reason why).

    Only status "change" rows of a patchable kind with at least one value to write are patched: the kinds of
    KIND_API, and with ``json6902`` (``patch``, not ``--overlay``) those of JSON6902_KINDS too.
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
    bad_kind = change & ~recs["kind"].isin(list(KIND_API) + (list(JSON6902_KINDS) if json6902 else []))
    why[bad_kind] = ("kind " + recs.loc[bad_kind, "kind"].astype(str)
                     + " is not patched: a strategic merge would not merge its containers by name")
    why[bad_kind & recs["kind"].isin(JSON6902_KINDS)] = "an Argo Rollout gets its patch from `rightsize patch`, not --overlay"
    why[bad_kind & recs["kind"].isin(BATCH_GROUP_KINDS)] = BATCH_GROUP
    ctype = recs.get("container_type", pd.Series("main", index=recs.index)).fillna("").replace("", "main")
    unknown_type = change & ~ctype.isin(list(LIST_NAME) + [INJECTED]) & (why == "")
    why[unknown_type] = "container_type " + ctype[unknown_type].map(repr) + " is not main, init, sidecar or injected"
    if not config.patches.include_init_containers:
        init = change & (ctype == "init") & (why == "")
        why[init] = "init container (patches.include_init_containers = false)"
    one_off = change & flag_mask(recs, "one_off_job") & (why == "")
    why[one_off] = ONE_OFF_JOB
    something = (_has(recs["cpu_request_cores_recommended"]) | _has(recs["memory_request_bytes_recommended"])
                 | _has(recs["memory_limit_bytes_recommended"])
                 | ((recs["cpu_limit_action"] == "set") & _has(recs["cpu_limit_cores_recommended"]))
                 | (recs["cpu_limit_action"] == "remove")
                 | (recs.get("runtime_env_json", pd.Series("", index=recs.index)).fillna("") != ""))
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
    for list_name in ("initContainers", "containers"):
        items = [c for c in ((spec or {}).get(list_name) or []) if isinstance(c, dict) and "name" in c]
        order[list_name] = [str(c["name"]) for c in items]
        limited |= {(list_name, str(c["name"])) for c in items if has_cpu_limit(c)}
    return PodSpecView(order, limited, where)


def view_from_containers(containers: list[dict], where: str) -> PodSpecView:
    """From snapshot ``containers`` rows (dicts) of one workload, in table order (collectors list them in spec
    order); init containers and native sidecars in their ``init_order``. Plain Python: a workload has a
    handful of rows, and pandas' per-call cost on them dominated writing 20,000 patches."""
    def list_of(r: dict):
        kind = r.get("container_type")
        return LIST_NAME.get("main" if pd.isna(kind) or kind == "" else kind)

    def init_rank(r: dict) -> float:
        v = r.get("init_order")
        return float("inf") if v is None or pd.isna(v) else float(v)

    rows = sorted(containers, key=init_rank) if any("init_order" in r for r in containers) else list(containers)
    order = {name: [str(r["container"]) for r in rows if list_of(r) == name] for name in ("initContainers", "containers")}
    limited = {(list_of(r), str(r["container"])) for r in rows
               if list_of(r) is not None and pd.notna(r.get("cpu_limit_cores"))}
    return PodSpecView(order, limited, where)


def skip_row(r: dict, reason: str) -> dict:
    return {**{c: r.get(c, "") for c in SKIP_COLUMNS[:6]}, "status": "change", "reason": reason}


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
    t = {"group": group, "version": version, "kind": kind, "name": name_pattern(name)}
    if namespace:
        t["namespace"] = name_pattern(namespace)
    return t


def name_pattern(name: str) -> str:
    return re.escape(name).replace("\\-", "-")


def group_rows(rows: pd.DataFrame) -> dict[tuple, list[dict]]:
    """Rows as dicts grouped by workload key, keys sorted (one pass; patches are written per workload)."""
    out: dict[tuple, list[dict]] = {}
    for r in records(rows):
        out.setdefault(tuple(r[k] for k in WORKLOAD_KEY), []).append(r)
    return dict(sorted(out.items()))


def add_skips(skipped: pd.DataFrame, extra: list[dict]) -> pd.DataFrame:
    if not extra:
        return skipped.reset_index(drop=True)
    more = pd.DataFrame(extra, columns=SKIP_COLUMNS)
    return more if skipped.empty else pd.concat([skipped, more], ignore_index=True)


def template_annotations(body: dict, kind: str) -> dict:
    """The pod template annotations a patch body or rendered object has ({} when none)."""
    node: Any = body
    for key in pod_spec_path(kind)[:-1] + ("metadata", "annotations"):
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


def has_edits(body: dict) -> bool:
    """Whether a patch body changes anything in its pod template (its containers, or the template itself)."""
    template: Any = body
    for key in pod_spec_path(body["kind"])[:-1]:
        template = template.get(key, {})
    return any(bool(v) for v in template.values())
