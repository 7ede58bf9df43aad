"""resize/: scripts that apply the urgent raises (OOM risk, throttling) to the running pods in place, now,
while the pull request with the template change waits for review (analysis/resize.py says which).

One bash script per workload, for a person to read and run (rightsize itself never writes to a
cluster): it finds the workload's running pods by their owner, and for each one runs
``kubectl patch pod POD --subresource resize`` with only the raised values; ``--dry-run`` passes
``--dry-run=client`` to kubectl. After a real resize it reports a pod whose resize the kubelet left
pending (``PodResizePending``: Deferred or Infeasible, no room on the node). README.md lists the scripts,
each raise, and the node-room check made from the snapshot. Every name is shell-quoted.
"""
from __future__ import annotations

import json
import math
import shlex

import pandas as pd

from ..folders import k8s_name_problem, safe_component
from ..quantity import format_cpu, format_memory
from ..refs import WorkloadRef
from ..schema import WORKLOAD_KEY
from .. import formatting as fmt

FOLDER = "resize"
LIST = {"main": "containers", "sidecar": "initContainers", "injected": "containers"}
_OWNER = {  # how a pod names its controller: (owner kind, owner-name pattern for grep -E, from the workload name)
    "Deployment": ("ReplicaSet", "{name}-[a-z0-9]+"),
    "StatefulSet": ("StatefulSet", "{name}"),
    "DaemonSet": ("DaemonSet", "{name}"),
    "ReplicaSet": ("ReplicaSet", "{name}"),
    "Job": ("Job", "{name}"),
    "CronJob": ("Job", "{name}-[0-9]+"),
}


def _resources(r: dict) -> dict:
    requests, limits = {}, {}
    for key, target, form in (("new_cpu_request", requests, format_cpu), ("new_memory_request", requests, format_memory)):
        if not _nan(r[key]):
            target[key.split("_")[1]] = form(float(r[key]))
    for key, form in (("new_cpu_limit", format_cpu), ("new_memory_limit", format_memory)):
        if not _nan(r[key]):
            limits[key.split("_")[1]] = form(float(r[key]))
    return {k: v for k, v in (("requests", requests), ("limits", limits)) if v}


def _nan(v) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def patch_body(rows: list[dict]) -> dict:
    """The resize subresource's strategic-merge body: the raised resources of each container, by list."""
    spec: dict[str, list] = {}
    for r in rows:
        spec.setdefault(LIST[r["container_type"]], []).append({"name": r["container"], "resources": _resources(r)})
    return {"spec": spec}


def script(namespace: str, kind: str, workload: str, rows: list[dict]) -> str:
    """The bash script that resizes the running pods of one workload (module docstring)."""
    owner_kind, pattern = _OWNER[kind]
    ref = str(WorkloadRef(namespace, kind, workload))
    why = "; ".join(sorted({f"{r['container']}: {', '.join(fmt.words(f) for f in fmt.flag_words(r['flags']) if f in ('oom_risk', 'throttled'))}"
                            for r in rows}))
    q = shlex.quote
    lines = [
        "#!/usr/bin/env bash",
        f"# rightsize: urgent raise of {ref} ({why}), in place on the running pods.",
        "# The pull request carries the same change in the pod template; new pods get it from there.",
        "# Usage: bash THIS_FILE [--dry-run]   (needs kubectl >= 1.32 and Kubernetes >= 1.33)",
        "set -euo pipefail",
        'dry=""; [ "${1:-}" = "--dry-run" ] && dry="--dry-run=client"',
        f"ns={q(namespace)}",
        f"patch={q(json.dumps(patch_body(rows), separators=(',', ':')))}",
        f"owner_kind={q(owner_kind)}",
        f"owner_name={q('^' + pattern.format(name=workload.replace('.', '[.]')) + '$')}",
        "pods=$(kubectl get pods -n \"$ns\" -o jsonpath='{range .items[*]}{.metadata.name} "
        "{.metadata.ownerReferences[0].kind} {.metadata.ownerReferences[0].name} {.status.phase}{\"\\n\"}{end}' |",
        "  awk -v k=\"$owner_kind\" -v n=\"$owner_name\" '$2 == k && $3 ~ n && $4 == \"Running\" {print $1}')",
        f"[ -n \"$pods\" ] || {{ echo \"no running pod of {ref} found\" >&2; exit 1; }}",
        "for pod in $pods; do",
        "  kubectl patch pod \"$pod\" -n \"$ns\" --subresource resize --type strategic -p \"$patch\" $dry",
        "done",
        "[ -z \"$dry\" ] || exit 0",
        "sleep 5",
        "for pod in $pods; do",
        "  pending=$(kubectl get pod \"$pod\" -n \"$ns\" -o jsonpath='{.status.conditions[?(@.type==\"PodResizePending\")].reason}')",
        "  [ -z \"$pending\" ] || echo \"$pod: resize pending ($pending): the node has no room now; the pull request's rollout applies it\" >&2",
        "done",
    ]
    return "\n".join(lines) + "\n"


def file_name(namespace: str, kind: str, workload: str) -> str:
    return f"{namespace}-{kind.lower()}-{workload}.sh"


def resize_files(raises: pd.DataFrame) -> dict[str, str]:
    """{path below the patch folder: text}: one script per workload with an urgent raise, and README.md."""
    if raises.empty:
        return {}
    files: dict[str, str] = {}
    readme = ["# Urgent raises, in place", "",
              "Each script resizes the running pods of one workload now (`kubectl patch pod ... --subresource resize`), "
              "with only the values the raise increases; the pull request carries the same change in the pod template. "
              "rightsize never runs them: read, then `bash FILE --dry-run`, then `bash FILE`.", "",
              "| Script | Container | Raise | Node room (snapshot) | Lands |", "|---|---|---|---|---|"]
    names_ok = [not k8s_name_problem(namespace=n, workload=w) for n, w in zip(raises["namespace"], raises["workload"])]
    supported = raises[raises["kind"].isin(list(_OWNER)) & pd.Series(names_ok, index=raises.index, dtype=bool)]
    several = supported["cluster"].nunique() > 1  # each cluster's scripts in its own folder
    groups: dict[tuple, list[dict]] = {}
    for r in supported.to_dict("records"):  # once: to_dict per group of a wide table cost 55 ms a workload
        groups.setdefault(tuple(r[k] for k in WORKLOAD_KEY), []).append(r)
    for key, rows in sorted(groups.items()):
        cluster, ns, kind, name = key
        where = f"{safe_component(cluster)}/" if several else ""
        path = f"{FOLDER}/{where}{file_name(ns, kind, name)}"
        files[path] = script(ns, kind, name, rows)
        for r in rows:
            raise_text = "; ".join(f"{part[:-1]} " + ", ".join(f"{k} {v}" for k, v in values.items())
                                   for part, values in _resources(r).items())
            room = {True: "yes", False: "**no**: the resize will wait (Deferred) or fail (Infeasible)"}.get(r["room"], "unknown")
            lands = "in place" if r["resize"] == "in_place" else "in place, the container restarts"
            readme.append(f"| `{where}{file_name(ns, kind, name)}` | {r['container']} | {raise_text} | {room} | {lands} |")
    files[f"{FOLDER}/README.md"] = "\n".join(readme) + "\n"
    return files


def _version(snapshot, config):
    from ..analysis.cross_az import kubernetes_version

    return kubernetes_version(snapshot, config)


def urgent_files(recommendations: pd.DataFrame, snapshot, config) -> dict[str, str]:
    """resize/ for a set of recommendations: the scripts of their urgent raises (resize_files)."""
    from ..analysis.resize import node_room, urgent_raises

    if recommendations.empty:
        return {}
    return resize_files(urgent_raises(recommendations, node_room(snapshot, recommendations), _version(snapshot, config)))


def landing_lines(recommendations: pd.DataFrame, snapshot, config, with_scripts: bool) -> list[str]:
    """PATCHES.md's "How the changes can land": the changes counted by way (in place, with a restart, rollout)."""
    from ..analysis.resize import IN_PLACE, RESTART, ROLLOUT, landing

    if recommendations.empty:
        return []
    land = landing(recommendations, _version(snapshot, config))
    land = land[land["resize"] != ""]
    if land.empty:
        return []
    words = {IN_PLACE: "in place, no restart", RESTART: "in place with a container restart", ROLLOUT: "only by a rollout"}
    out = ["## How the changes can land", "",
           "Merging this PR rolls the pods out with the new template. On Kubernetes >= 1.33 a running pod can also be "
           "resized in place (`kubectl patch pod ... --subresource resize`):", ""]
    for kind in (IN_PLACE, RESTART, ROLLOUT):
        part = land[land["resize"] == kind]
        if len(part):
            reasons = "; ".join(f"{n} because {why}" if kind == ROLLOUT else why
                                for why, n in part["resize_why"].value_counts().items())
            out.append(f"- **{len(part)} {words[kind]}**: {reasons}")
    if with_scripts:
        out += ["", f"The urgent raises (OOM risk, throttling) have scripts in `{FOLDER}/` that apply them to the running "
                f"pods now, with a node-room check (`{FOLDER}/README.md`)."]
    return out + [""]
