"""Kubernetes objects -> snapshot rows (workloads, containers, services, namespaces, nodes, runtimes).

Pure functions, no I/O: both the API source (JSON lists) and the manifests source (YAML documents)
hand over plain dicts with the API's camelCase field names, so one code path reads both. What one object says is read with k8s_fields.py. Units follow the snapshot: CPU in cores, memory in bytes,
time in seconds/hours. An unset request or limit is NaN, never 0.

An object may carry the private key ``_source_file`` (set by the manifests loader) so the workload row
records the file it came from.
"""
from __future__ import annotations

import datetime as dt
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterable

import pandas as pd

from ..batch_groups import assign, label_keys
from ..config import Config
from ..errors import SourceError
from ..gpu_resources import WHOLE_GPU_RESOURCES, gpu_names
from ..quantity import parse_count, parse_cpu, parse_memory
from ..refs import WorkloadRef
from ..snapshot import conform, empty_table
from .k8s_fields import (CAPACITY_TYPE_KEYS, DEFAULT_GRACE_SECONDS, capacity_affinity, capacity_value, container_rows,
                         controller_of, describe, hpa_summary, map_selector_matches, meta, path_get, pod_template,
                         quantity_field, resolve_pdb, selector_matches, tolerates_spot, update_strategy, volume_facts,
                         zone_spread)
from .runtime_specs import runtime_rows, warn_runtime_settings

# Kinds that define pods; ReplicaSets and Jobs are mostly resolved to their Deployment / CronJob.
# Argo Rollouts (argoproj.io/v1alpha1 Rollout) own ReplicaSets and pods like a Deployment.
WORKLOAD_KINDS = ("Deployment", "Rollout", "StatefulSet", "DaemonSet", "CronJob", "Job", "ReplicaSet", "Pod")
CONTROLLER_KINDS = ("Deployment", "Rollout", "StatefulSet", "DaemonSet", "CronJob")
OTHER_KINDS = ("HorizontalPodAutoscaler", "PodDisruptionBudget", "Service", "Namespace", "Node")
READ_KINDS = WORKLOAD_KINDS + OTHER_KINDS

TOPOLOGY_ANNOTATIONS = ("service.kubernetes.io/topology-mode", "service.kubernetes.io/topology-aware-hints")
LB_INTERNAL_ANNOTATION = "service.beta.kubernetes.io/aws-load-balancer-internal"
LB_SCHEME_ANNOTATION = "service.beta.kubernetes.io/aws-load-balancer-scheme"
LB_TYPE_ANNOTATION = "service.beta.kubernetes.io/aws-load-balancer-type"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"  # set by NVIDIA GPU feature discovery

Warn = Callable[[str, str, str], None]


# --- owner resolution ------------------------------------------------------------------------------

@dataclass
class Owners:
    """Who controls each ReplicaSet and Job, so pods and ReplicaSets resolve to Deployments / CronJobs; and
    the listed Deployments (with selectors) and CronJobs, to resolve pods whose ReplicaSet / Job was not listed."""

    replicasets: dict[tuple[str, str], tuple[str, str] | None] = field(default_factory=dict)
    jobs: dict[tuple[str, str], tuple[str, str] | None] = field(default_factory=dict)
    deployments: dict[str, list[tuple[str, dict]]] = field(default_factory=dict)
    cronjobs: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def from_objects(cls, objects: Iterable[dict]) -> "Owners":
        owners = cls()
        for o in objects:
            key = (meta(o).get("namespace") or "default", meta(o).get("name", ""))
            if o.get("kind") == "ReplicaSet":
                owners.replicasets[key] = controller_of(o)
            elif o.get("kind") == "Job":
                owners.jobs[key] = controller_of(o)
            elif o.get("kind") == "Deployment":
                owners.deployments.setdefault(key[0], []).append((key[1], path_get(o, "spec", "selector")))
            elif o.get("kind") == "CronJob":
                owners.cronjobs.setdefault(key[0], set()).add(key[1])
        for listed in owners.deployments.values():
            listed.sort(key=lambda d: -len(d[0]))  # "web-api" before "web" for a ReplicaSet "web-api-5d9f"
        return owners

    def resolve(self, namespace: str, kind: str, name: str) -> tuple[str, str]:
        """The top controller of (kind, name): ReplicaSet -> Deployment, Job -> CronJob, else itself.

        A ReplicaSet or Job whose owner is unknown (not listed) stays itself."""
        table = self.replicasets if kind == "ReplicaSet" else self.jobs if kind == "Job" else None
        if table is not None:
            owner = table.get((namespace, name))
            if owner and owner[0] and owner[1]:
                return owner
        return kind, name

    def unlisted(self, pod: dict, namespace: str, kind: str, name: str) -> tuple[str, str, str] | None:
        """(kind, name, how) of the Deployment / CronJob behind a pod whose ReplicaSet / Job was not listed
        (403/404), or None. A Deployment names its ReplicaSets <deployment>-<pod-template-hash> and stamps
        the hash on their pods; failing the label, a listed Deployment whose name prefixes the ReplicaSet's
        and whose selector matches the pod. A CronJob names its Jobs <cronjob>-<scheduled minute>."""
        labels = meta(pod).get("labels") or {}
        if kind == "ReplicaSet" and (namespace, name) not in self.replicasets:
            for label, owner in (("rollouts-pod-template-hash", "Rollout"), ("pod-template-hash", "Deployment")):
                digest = str(labels.get(label, ""))
                if digest and name.endswith("-" + digest):
                    return owner, name[: -len(digest) - 1], label
            for deployment, selector in self.deployments.get(namespace, []):
                if name.startswith(deployment + "-") and selector_matches(selector, labels):
                    return "Deployment", deployment, "selector"
        if kind == "Job" and (namespace, name) not in self.jobs:
            prefix, _, suffix = name.rpartition("-")
            if suffix.isdigit() and prefix in self.cronjobs.get(namespace, ()):
                return "CronJob", prefix, "job name"
        return None


def resolve_identity(obj: dict, owners: Owners) -> tuple[str, str, int, str]:
    """(kind, name, priority, how) of the workload an object stands for. Lower priority wins when several
    objects resolve to one workload: the controller itself (0), a ReplicaSet/Job it owns (1), a pod (2).
    ``how`` says how a pod whose ReplicaSet/Job was not listed was mapped ('' when it was not)."""
    kind, name = obj.get("kind", ""), meta(obj).get("name", "")
    ns = meta(obj).get("namespace") or "default"
    if kind in CONTROLLER_KINDS:
        return kind, name, 0, ""
    if kind in ("ReplicaSet", "Job"):
        owner = controller_of(obj)
        if owner is None:
            return kind, name, 0, ""
        return (*owners.resolve(ns, kind, name), 1, "")
    # Pod
    owner = controller_of(obj)
    if owner is None:
        return "Pod", name, 0, ""
    inferred = owners.unlisted(obj, ns, *owner)
    if inferred:
        return inferred[0], inferred[1], 2, inferred[2]
    okind, oname = owners.resolve(ns, *owner)
    return okind, oname, 2, ""


# --- the whole conversion --------------------------------------------------------------------------

@dataclass
class Options:
    """What build_tables needs beyond the objects: identity, config-named keys and the collection scope."""

    cluster: str
    source: str  # "api" or "manifests"
    config: Config
    now: dt.datetime | None = None
    window_hours: float = math.nan
    namespaces: tuple = ()
    exclude_namespaces: tuple = ()


def _in_scope(ns: str, opts: Options) -> bool:
    if opts.namespaces and ns not in opts.namespaces:
        return False
    return ns not in opts.exclude_namespaces


def _replicas(obj: dict) -> float:
    kind, spec, status = obj.get("kind"), obj.get("spec") or {}, obj.get("status") or {}
    if kind == "DaemonSet":
        n = status.get("desiredNumberScheduled")
        return float(n) if n is not None else math.nan  # manifests cannot know the node count
    if kind == "CronJob":
        return float(path_get(obj, "spec", "jobTemplate", "spec", "parallelism", default=1))
    if kind == "Job":
        return float(spec.get("parallelism", 1))
    if kind == "Pod":
        return 1.0
    return float(spec["replicas"]) if spec.get("replicas") is not None else math.nan


def _workload_row(obj: dict, kind: str, name: str, opts: Options, ns_labels: dict) -> dict:
    kcfg = opts.config.kubernetes
    tmpl = pod_template(obj)
    pod_spec = tmpl.get("spec") or {}
    m = meta(obj)
    ns = m.get("namespace") or "default"
    annotations = {**(path_get(tmpl, "metadata", "annotations", default={}) or {}), **(m.get("annotations") or {})}
    labels = {**(path_get(tmpl, "metadata", "labels", default={}) or {}), **(m.get("labels") or {})}
    grace = pod_spec.get("terminationGracePeriodSeconds")
    max_unavailable, max_surge = update_strategy(obj)
    spot = str(annotations.get(kcfg.spot_annotation, "")).strip().lower()
    return {
        "cluster": opts.cluster, "namespace": ns, "kind": kind, "workload": name,
        "replicas": _replicas(obj),
        "hpa": False, "pdb": False,
        **volume_facts(pod_spec, obj),
        "termination_grace_seconds": float(grace) if grace is not None else DEFAULT_GRACE_SECONDS,
        "capacity_affinity": capacity_affinity(pod_spec),
        "zone_spread": zone_spread(pod_spec),
        "tolerates_spot": tolerates_spot(pod_spec),
        "update_max_unavailable": max_unavailable,
        "update_max_surge": max_surge,
        "team": str(labels.get(kcfg.team_label) or ns_labels.get(kcfg.team_label) or ""),
        # only the annotation: [[overrides]] are applied at analyze time, so editing them needs no new collect
        "ignore": str(annotations.get(kcfg.ignore_annotation, "")).strip().lower() == "true",
        "spot_preference": {"true": "in", "false": "out"}.get(spot, ""),
        "checkpoints": str(annotations.get(kcfg.checkpoint_annotation, labels.get(kcfg.checkpoint_annotation, ""))).strip().lower() == "true",
        "policy_override": str(annotations.get(kcfg.policy_annotation, "")),
        "source": opts.source,
        "source_file": obj.get("_source_file", ""),
    }


def build_tables(objects: Iterable[dict], opts: Options, warn: Warn | None = None) -> dict[str, pd.DataFrame]:
    """Turn Kubernetes objects (any of READ_KINDS; others are ignored here) into snapshot tables
    workloads, containers, services, namespaces, nodes, runtimes — each conformed to schema.TABLES."""
    warn = warn or (lambda code, message, affects="": None)
    by_kind: dict[str, list[dict]] = {k: [] for k in READ_KINDS}
    for o in objects:
        if o.get("kind") in by_kind:
            ns = meta(o).get("namespace") or "default"
            if o["kind"] in ("Namespace", "Node") or _in_scope(ns, opts):
                by_kind[o["kind"]].append(o)

    namespace_labels = {meta(n).get("name", ""): meta(n).get("labels") or {} for n in by_kind["Namespace"]}
    owners = Owners.from_objects(by_kind["ReplicaSet"] + by_kind["Job"] + by_kind["Deployment"] + by_kind["CronJob"])
    _rollout_templates(by_kind)
    chosen, pod_counts, how = _choose(by_kind, owners, opts.config)
    _warn_inferred(chosen, how, warn)

    workloads, containers, runtimes = [], [], []
    for (ns, wkind, wname), (prio, o) in sorted(chosen.items()):
        row = _workload_row(o, wkind, wname, opts, namespace_labels.get(ns, {}))
        if prio == 1 and wkind == "CronJob":
            row["replicas"] = float(path_get(o, "spec", "parallelism", default=1))
        elif prio == 2:  # only pods seen: their count is the replica count
            row["replicas"] = float(pod_counts[(ns, wkind, wname)])
        row["resolved_by"] = ", ".join(sorted(how.get((ns, wkind, wname), ())))
        row["_labels"] = {k: str(v) for k, v in (path_get(pod_template(o), "metadata", "labels", default={}) or {}).items()}
        workloads.append(row)
        ident = {k: row[k] for k in ("cluster", "namespace", "kind", "workload")}
        containers.extend(container_rows(o, pod_template(o).get("spec") or {}, ident))
        runtimes.extend(runtime_rows(pod_template(o).get("spec") or {}, ident))
    resolved_indirectly = sum(1 for p, _ in chosen.values() if p > 0)
    if resolved_indirectly and opts.source == "api":
        warn("inventory_from_owned_objects",
             f"{resolved_indirectly} workload(s) were built from their ReplicaSets/Jobs/pods because the "
             "controller object itself was not listed (custom controller or missing permission)",
             "replicas and update strategy of those workloads are approximate")

    _apply_hpas(workloads, by_kind["HorizontalPodAutoscaler"], warn)
    for w in workloads:
        if math.isnan(w["replicas"]) and w["kind"] in ("Deployment", "StatefulSet", "ReplicaSet"):
            w["replicas"] = 1.0  # the API server's default for a manifest without replicas (and no HPA)
    _apply_pdbs(workloads, by_kind["PodDisruptionBudget"])

    index = LabelIndex(sorted(workloads, key=lambda w: (w["kind"], w["workload"])))
    services = [_service_row(s, opts, index) for s in by_kind["Service"]]
    seen_ns = {w["namespace"] for w in workloads} | {s["namespace"] for s in services}
    ns_rows = [{"cluster": opts.cluster, "namespace": n, "labels_json": json.dumps(namespace_labels.get(n, {}), sort_keys=True)}
               for n in sorted(set(namespace_labels) | seen_ns) if n in seen_ns or _in_scope(n, opts)]
    nodes = [_node_row(n, opts) for n in by_kind["Node"]]

    for w in workloads:
        w.pop("_labels", None)
    return {
        "workloads": _frame("workloads", workloads),
        "containers": _frame("containers", _warn_gpu_others(containers, warn)),
        "services": _frame("services", services),
        "namespaces": _frame("namespaces", ns_rows),
        "nodes": _frame("nodes", nodes),
        "runtimes": _frame("runtimes", warn_runtime_settings(runtimes, warn)),
    }


def _warn_gpu_others(containers: list[dict], warn: Warn) -> list[dict]:
    """Say which containers name more than one GPU resource: only the first is costed and sized."""
    many = [c for c in containers if c.pop("_gpu_others", None)]
    if many:
        shown = ", ".join(f"{WorkloadRef(c['namespace'], c['kind'], c['workload'])}:{c['container']} "
                          f"({c['gpu_resource']} costed)" for c in many[:5])
        warn("gpu_resources_several", f"{len(many)} container(s) ask for more than one GPU resource (e.g. two MIG "
             f"profiles); only the first is costed and sized: {shown}", "GPU cost of those containers (a lower bound)")
    return containers


def _batch_groups(pods: list[dict], config: Config) -> dict[tuple[str, str], tuple[str, str]]:
    """(namespace, pod) -> (kind, name) of the pods a batch framework started ([batch_groups], batch_groups.py)."""
    keys = label_keys(config)
    if not pods or not keys:
        return {}
    rows = [{"pod": meta(p).get("name", ""), **{k: str((meta(p).get("labels") or {}).get(k, "")) for k in keys}} for p in pods]
    groups = assign(pd.DataFrame(rows), config)
    return {(meta(p).get("namespace") or "default", meta(p).get("name", "")): (k, n)
            for p, k, n in zip(pods, groups["kind"], groups["workload"]) if k}


def _choose(by_kind: dict[str, list[dict]], owners: Owners, config: Config):
    """One object per workload identity (the controller itself beats what it owns), the pods seen per
    identity, and per identity how pods of unlisted ReplicaSets / Jobs were mapped to it. Every pod lands
    on exactly one identity, so its cost is counted once. Pods a batch framework started are grouped by
    their labels (batch_groups.py), finished ones too: they define the group when none runs now."""
    chosen: dict[tuple[str, str, str], tuple[int, dict]] = {}
    pod_counts: Counter = Counter()
    how: dict[tuple[str, str, str], set[str]] = {}
    groups = _batch_groups(by_kind["Pod"], config)
    for kind in WORKLOAD_KINDS:
        for o in by_kind[kind]:
            ns = meta(o).get("namespace") or "default"
            group = groups.get((ns, meta(o).get("name", ""))) if kind == "Pod" else None
            if kind == "Pod" and not group and path_get(o, "status", "phase") in ("Succeeded", "Failed"):
                continue  # a finished pod holds no resources; its controller, if any, is listed anyway
            wkind, wname, prio, via = (*group, 2, "") if group else resolve_identity(o, owners)
            key = (ns, wkind, wname)
            if kind == "Pod":
                pod_counts[key] += 1
            if via:
                how.setdefault(key, set()).add(via)
            best = chosen.get(key)
            if best is None or prio < best[0] or (
                prio == best[0] == 1 and _replicas(o) > _replicas(best[1])  # newest-serving ReplicaSet
            ):
                chosen[key] = (prio, o)
    return chosen, pod_counts, how


def _rollout_templates(by_kind: dict[str, list[dict]]) -> None:
    """A Rollout with ``spec.workloadRef`` (no template of its own) runs the referenced Deployment's pod
    template: keep it on the Rollout (``_template``, read by pod_template)."""
    deployments = {(meta(d).get("namespace") or "default", meta(d).get("name", "")): d for d in by_kind["Deployment"]}
    for r in by_kind["Rollout"]:
        ref = path_get(r, "spec", "workloadRef", default={}) or {}
        if not path_get(r, "spec", "template") and ref.get("kind") == "Deployment":
            target = deployments.get((meta(r).get("namespace") or "default", ref.get("name", "")))
            if target is not None:
                r["_template"] = path_get(target, "spec", "template", default={}) or {}


def _warn_inferred(chosen: dict, how: dict, warn: Warn) -> None:
    """Say when pods were mapped without their ReplicaSet / Job, and when some could not be mapped at all."""
    if how:
        ways = Counter(v for vias in how.values() for v in vias)
        shown = ", ".join(f"{v} ({n})" for v, n in sorted(ways.items()))
        warn("owners_inferred",
             f"{len(how)} workload(s) had pods whose ReplicaSet/Job could not be listed; they were mapped to their "
             f"Deployment/CronJob by {shown} (workloads.resolved_by), each pod counted once",
             "owner resolution")
    stray = sorted(str(WorkloadRef(ns, k, n)) for (ns, k, n), (prio, o) in chosen.items()
                   if prio == 2 and k in ("ReplicaSet", "Job") and (controller_of(o) or ("", ""))[0] == k)
    if stray:
        warn("owners_unresolved",
             f"{len(stray)} workload(s) were rebuilt from pods whose ReplicaSet/Job could not be listed and whose "
             f"Deployment/CronJob was not found: {', '.join(stray[:5])}",
             "if a Deployment/CronJob owns them, their pods are costed under both names")


def _frame(name: str, rows: list[dict]) -> pd.DataFrame:
    if not rows:
        return empty_table(name)
    return conform(name, pd.DataFrame(rows))


def _apply_hpas(workloads: list[dict], hpas: list[dict], warn: Warn) -> None:
    index = {(w["namespace"], w["kind"], w["workload"]): w for w in workloads}
    unmatched = []
    for h in hpas:
        ref = path_get(h, "spec", "scaleTargetRef", default={}) or {}
        ns = meta(h).get("namespace") or "default"
        w = index.get((ns, ref.get("kind", ""), ref.get("name", "")))
        if w is None:
            unmatched.append(f"{ns}/{meta(h).get('name')}")
            continue
        summary = hpa_summary(h)
        w.update(hpa=True, **summary)
        spec_replicas = w["replicas"]
        if math.isnan(spec_replicas):  # manifests usually leave replicas to the HPA
            w["replicas"] = summary["hpa_min_replicas"]
    if unmatched:
        warn("hpa_target_not_found",
             f"{len(unmatched)} HorizontalPodAutoscaler(s) scale a workload that was not found: {', '.join(unmatched[:5])}",
             "those HPAs are ignored")


def _apply_pdbs(workloads: list[dict], pdbs: list[dict]) -> None:
    """Mark workloads whose pod labels a PDB selects; with several PDBs keep the most restrictive."""
    index = LabelIndex(workloads)
    for p in pdbs:
        ns = meta(p).get("namespace") or "default"
        sel = path_get(p, "spec", "selector")
        for w in index.candidates(ns, (sel or {}).get("matchLabels") or {}):
            if not selector_matches(sel, w["_labels"]):
                continue
            min_av, max_un, allowed = resolve_pdb(p, w["replicas"])
            if w["pdb"] and not (allowed < w.get("pdb_disruptions_allowed", math.inf)):
                continue
            w.update(pdb=True, pdb_min_available_pods=min_av, pdb_max_unavailable_pods=max_un,
                     pdb_disruptions_allowed=allowed)


class LabelIndex:
    """Workloads by namespace and by pod label pair, so matching N selectors stays near-linear."""

    def __init__(self, workloads: list[dict]):
        self.by_ns: dict[str, list[dict]] = {}
        self.by_pair: dict[tuple[str, str, str], list[dict]] = {}
        for w in workloads:
            self.by_ns.setdefault(w["namespace"], []).append(w)
            for k, v in w["_labels"].items():
                self.by_pair.setdefault((w["namespace"], k, v), []).append(w)

    def candidates(self, namespace: str, must_have: dict) -> list[dict]:
        """Workloads of ``namespace`` that could match a selector requiring the ``must_have`` label pairs
        (in their original order); the caller still checks the whole selector."""
        if not must_have:
            return self.by_ns.get(namespace, [])
        return min((self.by_pair.get((namespace, k, str(v)), []) for k, v in must_have.items()), key=len)


def _service_row(svc: dict, opts: Options, index: LabelIndex) -> dict:
    """One services row; the workload is the first (by kind, name) whose pod labels the selector matches."""
    m, spec = meta(svc), svc.get("spec") or {}
    ns = m.get("namespace") or "default"
    ann = m.get("annotations") or {}
    selector = spec.get("selector") or {}
    target = next((w for w in index.candidates(ns, selector) if map_selector_matches(selector, w["_labels"])), None)
    topology = next((str(ann[a]) for a in TOPOLOGY_ANNOTATIONS if ann.get(a)), "")
    internal_flag = str(ann.get(LB_INTERNAL_ANNOTATION, "")).strip().lower()
    ports = ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or [])
    return {
        "cluster": opts.cluster, "namespace": ns, "service": m.get("name", ""),
        "type": spec.get("type", "ClusterIP"),
        "selector_json": json.dumps(selector, sort_keys=True),
        "workload": target["workload"] if target else "",
        "kind": target["kind"] if target else "",
        "ports": ports,
        "topology_mode": topology,
        "traffic_distribution": spec.get("trafficDistribution", "") or "",
        "internal_traffic_policy": spec.get("internalTrafficPolicy", "Cluster") or "",
        # the legacy in-tree annotation took "true" or a CIDR such as 0.0.0.0/0; only "false" turns it off
        "load_balancer_internal": (internal_flag not in ("", "false"))
        or str(ann.get(LB_SCHEME_ANNOTATION, "")).strip().lower() == "internal",
        "load_balancer_class": spec.get("loadBalancerClass") or str(ann.get(LB_TYPE_ANNOTATION, "")),
    }


def _node_row(node: dict, opts: Options) -> dict:
    m = meta(node)
    labels = m.get("labels") or {}
    alloc = path_get(node, "status", "allocatable", default={}) or {}
    where = describe(node)
    capacity = ""
    for key in CAPACITY_TYPE_KEYS:
        vals = capacity_value([labels.get(key, "")])
        if vals:
            capacity = vals.pop()
            break
    hours = opts.window_hours
    created = m.get("creationTimestamp")
    if created and opts.now is not None:
        try:
            born = dt.datetime.fromisoformat(str(created).replace("Z", "+00:00"))
            age = max(0.0, (opts.now - born).total_seconds() / 3600.0)
            hours = age if math.isnan(hours) else min(hours, age)
        except ValueError:
            pass
    return {
        "cluster": opts.cluster, "node": m.get("name", ""),
        "instance_type": labels.get("node.kubernetes.io/instance-type") or labels.get("beta.kubernetes.io/instance-type", ""),
        "zone": labels.get("topology.kubernetes.io/zone") or labels.get("failure-domain.beta.kubernetes.io/zone", ""),
        "region": labels.get("topology.kubernetes.io/region") or labels.get("failure-domain.beta.kubernetes.io/region", ""),
        "capacity_type": capacity,
        "node_group": labels.get("eks.amazonaws.com/nodegroup") or labels.get("karpenter.sh/nodepool", ""),
        "allocatable_cpu_cores": quantity_field(parse_cpu, alloc.get("cpu"), where, "status.allocatable.cpu"),
        "allocatable_memory_bytes": quantity_field(parse_memory, alloc.get("memory"), where, "status.allocatable.memory"),
        "hours_seen": hours,
        **_node_gpus(node, where),
        "gpu_product": str(labels.get(GPU_PRODUCT_LABEL, "")),
    }


def _node_gpus(node: dict, where: str) -> dict:
    """capacity_gpus, allocatable_gpus (whole GPUs) and gpu_resources_json (every GPU resource allocatable)."""
    out = {}
    for part in ("capacity", "allocatable"):
        res = path_get(node, "status", part, default={}) or {}
        counts = {n: quantity_field(parse_count, res[n], where, f"status.{part}.{n}") for n in gpu_names(res)}
        out[f"{part}_gpus"] = sum(v for n, v in counts.items() if n in WHOLE_GPU_RESOURCES)
        if part == "allocatable":
            out["gpu_resources_json"] = json.dumps(counts, sort_keys=True)
    return out
