"""Kubernetes objects -> snapshot rows (workloads, containers, services, namespaces, nodes).

Pure functions, no I/O: both the API source (JSON lists) and the manifests source (YAML documents)
hand over plain dicts with the API's camelCase field names, so one code path reads both.

Units follow the snapshot: CPU in cores, memory in bytes, time in seconds/hours. An unset request or
limit is NaN, never 0. A quantity that does not parse raises SourceError naming the object and field.

An object may carry the private key ``_source_file`` (set by the manifests loader) so the workload row
records the file it came from.
"""
from __future__ import annotations

import datetime as dt
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import pandas as pd

from ..config import Config
from ..errors import SourceError
from ..gpu_resources import WHOLE_GPU_RESOURCES, gpu_names
from ..quantity import parse_count, parse_cpu, parse_memory
from ..refs import WorkloadRef
from ..snapshot import conform, empty_table

# Kinds that define pods; ReplicaSets and Jobs are mostly resolved to their Deployment / CronJob.
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job", "ReplicaSet", "Pod")
OTHER_KINDS = ("HorizontalPodAutoscaler", "PodDisruptionBudget", "Service", "Namespace", "Node")
READ_KINDS = WORKLOAD_KINDS + OTHER_KINDS

CAPACITY_TYPE_KEYS = ("eks.amazonaws.com/capacityType", "karpenter.sh/capacity-type")
TOPOLOGY_ANNOTATIONS = ("service.kubernetes.io/topology-mode", "service.kubernetes.io/topology-aware-hints")
LB_INTERNAL_ANNOTATION = "service.beta.kubernetes.io/aws-load-balancer-internal"
LB_SCHEME_ANNOTATION = "service.beta.kubernetes.io/aws-load-balancer-scheme"
LB_TYPE_ANNOTATION = "service.beta.kubernetes.io/aws-load-balancer-type"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"  # set by NVIDIA GPU feature discovery

# Kubernetes defaults for a field left out of a manifest (the API server fills them in).
DEFAULT_GRACE_SECONDS = 30.0
DEFAULT_HPA_CPU_PERCENT = 80.0  # autoscaling/v2: no metrics means 80% average CPU utilization

Warn = Callable[[str, str, str], None]


# --- small readers ---------------------------------------------------------------------------------

def _get(obj: Any, *path: str, default: Any = None) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return default
        obj = obj.get(key)
        if obj is None:
            return default
    return obj


def meta(obj: dict) -> dict:
    return obj.get("metadata") or {}


def describe(obj: dict, kind: str | None = None) -> str:
    """'namespace/Kind/name' plus the manifest file when known, for error messages."""
    m = meta(obj)
    ns = m.get("namespace") or ""
    ref = str(WorkloadRef(ns, kind or obj.get("kind", "?"), m.get("name", "?")))
    src = obj.get("_source_file")
    return f"{ref} ({src})" if src else ref


def controller_of(obj: dict) -> tuple[str, str] | None:
    """(kind, name) of the controlling owner reference, or None for an object nobody owns."""
    refs = meta(obj).get("ownerReferences") or []
    for ref in refs:
        if ref.get("controller"):
            return ref.get("kind", ""), ref.get("name", "")
    return (refs[0].get("kind", ""), refs[0].get("name", "")) if refs else None


def pod_template(obj: dict) -> dict:
    """The pod template ({metadata, spec}) of a workload object; a Pod is its own template."""
    kind = obj.get("kind")
    if kind == "Pod":
        return {"metadata": meta(obj), "spec": obj.get("spec") or {}}
    if kind == "CronJob":
        return _get(obj, "spec", "jobTemplate", "spec", "template", default={}) or {}
    return _get(obj, "spec", "template", default={}) or {}


# --- label selectors -------------------------------------------------------------------------------

def selector_matches(selector: dict | None, labels: dict | None) -> bool:
    """Kubernetes LabelSelector semantics: matchLabels AND every matchExpression. An empty selector ({})
    matches everything; a missing one (None) matches nothing."""
    if selector is None:
        return False
    labels = {k: str(v) for k, v in (labels or {}).items()}
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != str(v):
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), [str(v) for v in expr.get("values") or []]
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def map_selector_matches(selector: dict | None, labels: dict | None) -> bool:
    """Service-style selector (a plain map): every pair must match; empty or missing matches nothing."""
    if not selector:
        return False
    labels = {k: str(v) for k, v in (labels or {}).items()}
    return all(labels.get(k) == str(v) for k, v in selector.items())


# --- int-or-percent (PDB, rolling update) ----------------------------------------------------------

def scaled_int_or_percent(value: Any, total: float, *, round_up: bool = True) -> float:
    """An IntOrString resolved against ``total`` pods: "50%" of 5 -> 3 (rounded up, as the disruption
    controller does for both minAvailable and maxUnavailable). NaN when a percent meets unknown total."""
    if value is None or value == "":
        return math.nan
    if isinstance(value, str) and value.strip().endswith("%"):
        pct = float(value.strip()[:-1])
        if total is None or (isinstance(total, float) and math.isnan(total)):
            return math.nan
        raw = pct * total / 100.0
        # float noise (e.g. 0.29*100) must not bump an exact integer up
        raw = round(raw, 9)
        return float(math.ceil(raw) if round_up else math.floor(raw))
    return float(int(value))


def resolve_pdb(pdb: dict, replicas: float) -> tuple[float, float, float]:
    """(min_available_pods, max_unavailable_pods, disruptions_allowed) of one PDB at ``replicas`` healthy pods.

    Mirrors the disruption controller: minAvailable -> desiredHealthy = minAvailable;
    maxUnavailable -> desiredHealthy = expected - maxUnavailable; allowed = healthy - desiredHealthy.
    """
    spec = pdb.get("spec") or {}
    min_av = scaled_int_or_percent(spec.get("minAvailable"), replicas)
    max_un = scaled_int_or_percent(spec.get("maxUnavailable"), replicas)
    if math.isnan(replicas):
        return min_av, max_un, math.nan
    if not math.isnan(max_un):
        desired = max(0.0, replicas - max_un)
    elif not math.isnan(min_av):
        desired = min_av
    else:  # neither set: policy/v1 defaults to minAvailable 1
        desired = 1.0
    return min_av, max_un, max(0.0, replicas - desired)


# --- HPA -------------------------------------------------------------------------------------------

def hpa_summary(hpa: dict) -> dict:
    """min/max replicas, CPU and memory utilization targets (percent of request), metric types, the HPA's
    name and the JSON pointer of each target (so a patch can move it; '' when the target is a default)."""
    spec = hpa.get("spec") or {}
    metrics = spec.get("metrics")
    cpu = mem = math.nan
    paths = {"cpu": "", "memory": ""}
    kinds: list[str] = []
    if metrics is None and "targetCPUUtilizationPercentage" in spec:  # autoscaling/v1
        cpu = float(spec["targetCPUUtilizationPercentage"])
        paths["cpu"] = "/spec/targetCPUUtilizationPercentage"
        kinds.append("Resource:cpu")
    elif not metrics:
        cpu = DEFAULT_HPA_CPU_PERCENT
        kinds.append("Resource:cpu")
    for i, m in enumerate(metrics or []):
        mtype = m.get("type", "")
        if mtype in ("Resource", "ContainerResource"):
            field_name = "resource" if mtype == "Resource" else "containerResource"
            body = m.get(field_name) or {}
            name = body.get("name", "")
            target = body.get("target") or {}
            util = target.get("averageUtilization")
            kinds.append(f"{mtype}:{name}")
            if util is not None and target.get("type", "Utilization") == "Utilization":
                if name == "cpu" and math.isnan(cpu):
                    cpu = float(util)
                    paths["cpu"] = f"/spec/metrics/{i}/{field_name}/target/averageUtilization"
                elif name == "memory" and math.isnan(mem):
                    mem = float(util)
                    paths["memory"] = f"/spec/metrics/{i}/{field_name}/target/averageUtilization"
        else:
            kinds.append(mtype)
    return {
        "hpa_name": str(meta(hpa).get("name") or ""),
        "hpa_cpu_target_path": paths["cpu"],
        "hpa_memory_target_path": paths["memory"],
        "hpa_min_replicas": float(spec.get("minReplicas", 1)),
        "hpa_max_replicas": float(spec["maxReplicas"]) if spec.get("maxReplicas") is not None else math.nan,
        "hpa_cpu_target_percent": cpu,
        "hpa_memory_target_percent": mem,
        "hpa_metrics": ",".join(dict.fromkeys(kinds)),
    }


# --- pod spec facts --------------------------------------------------------------------------------

def _capacity_value(values: Iterable[str]) -> set[str]:
    out = set()
    for v in values:
        v = str(v).lower().replace("_", "-")
        if v in ("spot", "on-demand"):
            out.add(v)
    return out


def capacity_affinity(pod_spec: dict) -> str:
    """'spot' / 'on-demand' when nodeSelector or required node affinity pins the EKS or Karpenter capacity
    type to exactly one of them, else ''. Preferred affinity does not pin, so it is not counted."""
    wanted: set[str] = set()
    for key in CAPACITY_TYPE_KEYS:
        if key in (pod_spec.get("nodeSelector") or {}):
            wanted |= _capacity_value([pod_spec["nodeSelector"][key]])
    terms = _get(pod_spec, "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution",
                 "nodeSelectorTerms", default=[]) or []
    for term in terms:
        for expr in term.get("matchExpressions") or []:
            if expr.get("key") not in CAPACITY_TYPE_KEYS:
                continue
            vals = _capacity_value(expr.get("values") or [])
            if expr.get("operator") == "In":
                wanted |= vals
            elif expr.get("operator") == "NotIn":
                wanted |= {"spot", "on-demand"} - vals
    return wanted.pop() if len(wanted) == 1 else ""


def tolerates_spot(pod_spec: dict) -> bool:
    """True when a toleration names spot capacity (key or value mentions spot) or tolerates every taint."""
    for t in pod_spec.get("tolerations") or []:
        key, value = str(t.get("key") or ""), str(t.get("value") or "")
        if not key and t.get("operator") == "Exists":
            return True
        if "spot" in key.lower() or "spot" in value.lower():
            return True
    return False


ZONE_KEYS = ("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone")


def zone_spread(pod_spec: dict) -> bool:
    """True when the scheduler must spread the pods over zones: a topologySpreadConstraint on the zone key
    with DoNotSchedule, or required pod anti-affinity per zone. ScheduleAnyway and preferred anti-affinity
    are hints the scheduler (and consolidation) may drop, so they do not count."""
    for c in pod_spec.get("topologySpreadConstraints") or []:
        if c.get("topologyKey") in ZONE_KEYS and c.get("whenUnsatisfiable", "DoNotSchedule") == "DoNotSchedule":
            return True
    terms = _get(pod_spec, "affinity", "podAntiAffinity", "requiredDuringSchedulingIgnoredDuringExecution", default=[]) or []
    return any(t.get("topologyKey") in ZONE_KEYS for t in terms)


def volume_facts(pod_spec: dict, obj: dict) -> dict:
    vols = pod_spec.get("volumes") or []
    has_pvc = any("persistentVolumeClaim" in v or "ephemeral" in v for v in vols)
    has_pvc = has_pvc or bool(_get(obj, "spec", "volumeClaimTemplates"))
    empty = [v["emptyDir"] or {} for v in vols if "emptyDir" in v]
    return {
        "has_pvc": has_pvc,
        "has_empty_dir": any((e.get("medium") or "") != "Memory" for e in empty),
        "has_memory_empty_dir": any((e.get("medium") or "") == "Memory" for e in empty),
        "has_host_path": any("hostPath" in v for v in vols),
    }


def update_strategy(obj: dict) -> tuple[str, str]:
    """(maxUnavailable, maxSurge) as written, with the API server's defaults for fields left out."""
    kind, spec = obj.get("kind"), obj.get("spec") or {}
    if kind == "Deployment":
        s = spec.get("strategy") or {}
        if s.get("type") == "Recreate":
            return "100%", "0"
        ru = s.get("rollingUpdate") or {}
        return str(ru.get("maxUnavailable", "25%")), str(ru.get("maxSurge", "25%"))
    if kind in ("StatefulSet", "DaemonSet"):
        s = spec.get("updateStrategy") or {}
        if s.get("type") == "OnDelete":
            return "", ""
        ru = s.get("rollingUpdate") or {}
        surge = str(ru.get("maxSurge", "0")) if kind == "DaemonSet" else ""
        return str(ru.get("maxUnavailable", 1)), surge
    return "", ""


def _parse(parse, value, where: str, field_name: str) -> float:
    if value is None:
        return math.nan
    try:
        return parse(value)
    except ValueError as exc:
        raise SourceError(f"{where}: {field_name}: {exc}") from None


def container_rows(obj: dict, pod_spec: dict, ident: dict) -> list[dict]:
    """One row per main and init container with requests/limits in cores and bytes (NaN = unset)."""
    rows = []
    where = describe(obj)
    for ctype, key in (("main", "containers"), ("init", "initContainers")):
        for i, c in enumerate(pod_spec.get(key) or []):
            name = (c.get("name") or "") if isinstance(c, dict) else ""
            if not name:
                raise SourceError(f"{where}: {key}[{i}] has no name (every container needs one)")
            res = c.get("resources") or {}
            req, lim = res.get("requests") or {}, res.get("limits") or {}
            f = f"{key}[{name}].resources"
            row = {
                **ident, "container": name, "container_type": ctype,
                "cpu_request_cores": _parse(parse_cpu, req.get("cpu"), where, f"{f}.requests.cpu"),
                "cpu_limit_cores": _parse(parse_cpu, lim.get("cpu"), where, f"{f}.limits.cpu"),
                "memory_request_bytes": _parse(parse_memory, req.get("memory"), where, f"{f}.requests.memory"),
                "memory_limit_bytes": _parse(parse_memory, lim.get("memory"), where, f"{f}.limits.memory"),
            }
            row.update(_gpu_columns(req, lim, where, f))
            # Kubernetes copies a limit into an unset request; the API shows that, a manifest does not.
            for res in ("cpu_request_cores", "memory_request_bytes", "gpu_request_count"):
                limit = res.replace("request", "limit")
                if math.isnan(row[res]) and not math.isnan(row[limit]):
                    row[res] = row[limit]
            rows.append(row)
    return rows


def _gpu_columns(req: dict, lim: dict, where: str, field_name: str) -> dict:
    """gpu_resource, gpu_request_count, gpu_limit_count of one container (the first GPU resource it
    names, see gpu_resources.gpu_names), and ``_gpu_others``: further GPU resources it names."""
    names = gpu_names(req, lim)
    if not names:
        return {"gpu_resource": "", "gpu_request_count": math.nan, "gpu_limit_count": math.nan, "_gpu_others": []}
    name = names[0]
    return {"gpu_resource": name,
            "gpu_request_count": _parse(parse_count, req.get(name), where, f"{field_name}.requests.{name}"),
            "gpu_limit_count": _parse(parse_count, lim.get(name), where, f"{field_name}.limits.{name}"),
            "_gpu_others": names[1:]}


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
                owners.deployments.setdefault(key[0], []).append((key[1], _get(o, "spec", "selector")))
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
            digest = str(labels.get("pod-template-hash", ""))
            if digest and name.endswith("-" + digest):
                return "Deployment", name[: -len(digest) - 1], "pod-template-hash"
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
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "CronJob"):
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
        return float(_get(obj, "spec", "jobTemplate", "spec", "parallelism", default=1))
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
    annotations = {**(_get(tmpl, "metadata", "annotations", default={}) or {}), **(m.get("annotations") or {})}
    labels = {**(_get(tmpl, "metadata", "labels", default={}) or {}), **(m.get("labels") or {})}
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
    workloads, containers, services, namespaces, nodes — each conformed to schema.TABLES."""
    warn = warn or (lambda code, message, affects="": None)
    by_kind: dict[str, list[dict]] = {k: [] for k in READ_KINDS}
    for o in objects:
        if o.get("kind") in by_kind:
            ns = meta(o).get("namespace") or "default"
            if o["kind"] in ("Namespace", "Node") or _in_scope(ns, opts):
                by_kind[o["kind"]].append(o)

    namespace_labels = {meta(n).get("name", ""): meta(n).get("labels") or {} for n in by_kind["Namespace"]}
    owners = Owners.from_objects(by_kind["ReplicaSet"] + by_kind["Job"] + by_kind["Deployment"] + by_kind["CronJob"])
    chosen, pod_counts, how = _choose(by_kind, owners)
    _warn_inferred(chosen, how, warn)

    workloads, containers = [], []
    for (ns, wkind, wname), (prio, o) in sorted(chosen.items()):
        row = _workload_row(o, wkind, wname, opts, namespace_labels.get(ns, {}))
        if prio == 1 and wkind == "CronJob":
            row["replicas"] = float(_get(o, "spec", "parallelism", default=1))
        elif prio == 2:  # only pods seen: their count is the replica count
            row["replicas"] = float(pod_counts[(ns, wkind, wname)])
        row["resolved_by"] = ", ".join(sorted(how.get((ns, wkind, wname), ())))
        row["_labels"] = {k: str(v) for k, v in (_get(pod_template(o), "metadata", "labels", default={}) or {}).items()}
        workloads.append(row)
        ident = {k: row[k] for k in ("cluster", "namespace", "kind", "workload")}
        containers.extend(container_rows(o, pod_template(o).get("spec") or {}, ident))
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
    _warn_gpu_others(containers, warn)
    return {
        "workloads": _frame("workloads", workloads),
        "containers": _frame("containers", containers),
        "services": _frame("services", services),
        "namespaces": _frame("namespaces", ns_rows),
        "nodes": _frame("nodes", nodes),
    }


def _warn_gpu_others(containers: list[dict], warn: Warn) -> None:
    """Say which containers name more than one GPU resource: only the first is costed and sized."""
    many = [c for c in containers if c.pop("_gpu_others", None)]
    if many:
        shown = ", ".join(f"{WorkloadRef(c['namespace'], c['kind'], c['workload'])}:{c['container']} "
                          f"({c['gpu_resource']} costed)" for c in many[:5])
        warn("gpu_resources_several", f"{len(many)} container(s) ask for more than one GPU resource (e.g. two MIG "
             f"profiles); only the first is costed and sized: {shown}", "GPU cost of those containers (a lower bound)")


def _choose(by_kind: dict[str, list[dict]], owners: Owners):
    """One object per workload identity (the controller itself beats what it owns), the pods seen per
    identity, and per identity how pods of unlisted ReplicaSets / Jobs were mapped to it. Every pod lands
    on exactly one identity, so its cost is counted once."""
    chosen: dict[tuple[str, str, str], tuple[int, dict]] = {}
    pod_counts: Counter = Counter()
    how: dict[tuple[str, str, str], set[str]] = {}
    for kind in WORKLOAD_KINDS:
        for o in by_kind[kind]:
            if kind == "Pod" and _get(o, "status", "phase") in ("Succeeded", "Failed"):
                continue  # a finished pod holds no resources; its controller, if any, is listed anyway
            ns = meta(o).get("namespace") or "default"
            wkind, wname, prio, via = resolve_identity(o, owners)
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
        ref = _get(h, "spec", "scaleTargetRef", default={}) or {}
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
        sel = _get(p, "spec", "selector")
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
    alloc = _get(node, "status", "allocatable", default={}) or {}
    where = describe(node)
    capacity = ""
    for key in CAPACITY_TYPE_KEYS:
        vals = _capacity_value([labels.get(key, "")])
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
        "allocatable_cpu_cores": _parse(parse_cpu, alloc.get("cpu"), where, "status.allocatable.cpu"),
        "allocatable_memory_bytes": _parse(parse_memory, alloc.get("memory"), where, "status.allocatable.memory"),
        "hours_seen": hours,
        **_node_gpus(node, where),
        "gpu_product": str(labels.get(GPU_PRODUCT_LABEL, "")),
    }


def _node_gpus(node: dict, where: str) -> dict:
    """capacity_gpus, allocatable_gpus (whole GPUs) and gpu_resources_json (every GPU resource allocatable)."""
    out = {}
    for part in ("capacity", "allocatable"):
        res = _get(node, "status", part, default={}) or {}
        counts = {n: _parse(parse_count, res[n], where, f"status.{part}.{n}") for n in gpu_names(res)}
        out[f"{part}_gpus"] = sum(v for n, v in counts.items() if n in WHOLE_GPU_RESOURCES)
        if part == "allocatable":
            out["gpu_resources_json"] = json.dumps(counts, sort_keys=True)
    return out
