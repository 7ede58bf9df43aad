"""What one Kubernetes object says, read from its plain dict (the API's camelCase field names): metadata,
its pod template and controller, label selectors, int-or-percent values, an HPA's targets, a PDB, the pod
spec's spot, zone and volume facts, and its containers' requests and limits. Pure functions, no I/O;
k8s_objects.py turns whole sets of objects into snapshot rows with them.

Units follow the snapshot: CPU in cores, memory in bytes, time in seconds. An unset request or limit is
NaN, never 0. A quantity that does not parse raises SourceError naming the object and field.
"""
from __future__ import annotations

import math
from typing import Any, Iterable

from ..errors import SourceError
from ..gpu_resources import gpu_names
from ..quantity import parse_count, parse_cpu, parse_memory
from ..refs import WorkloadRef

CAPACITY_TYPE_KEYS = ("eks.amazonaws.com/capacityType", "karpenter.sh/capacity-type")
# Kubernetes defaults for a field left out of a manifest (the API server fills them in).
DEFAULT_GRACE_SECONDS = 30.0
DEFAULT_HPA_CPU_PERCENT = 80.0  # autoscaling/v2: no metrics means 80% average CPU utilization


def path_get(obj: Any, *path: str, default: Any = None) -> Any:
    """The value at ``path`` of nested dicts, ``default`` where a key is missing or a level is no dict."""
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
    """The pod template ({metadata, spec}) of a workload object; a Pod is its own template. A Rollout that
    references a Deployment (``spec.workloadRef``) carries that Deployment's template under the private key
    ``_template`` (set by k8s_objects.build_tables)."""
    kind = obj.get("kind")
    if kind == "Pod":
        return {"metadata": meta(obj), "spec": obj.get("spec") or {}}
    if kind == "CronJob":
        return path_get(obj, "spec", "jobTemplate", "spec", "template", default={}) or {}
    return path_get(obj, "spec", "template", default={}) or obj.get("_template") or {}


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


def capacity_value(values: Iterable[str]) -> set[str]:
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
            wanted |= capacity_value([pod_spec["nodeSelector"][key]])
    terms = path_get(pod_spec, "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution",
                 "nodeSelectorTerms", default=[]) or []
    for term in terms:
        for expr in term.get("matchExpressions") or []:
            if expr.get("key") not in CAPACITY_TYPE_KEYS:
                continue
            vals = capacity_value(expr.get("values") or [])
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
    terms = path_get(pod_spec, "affinity", "podAntiAffinity", "requiredDuringSchedulingIgnoredDuringExecution", default=[]) or []
    return any(t.get("topologyKey") in ZONE_KEYS for t in terms)


def volume_facts(pod_spec: dict, obj: dict) -> dict:
    vols = pod_spec.get("volumes") or []
    has_pvc = any("persistentVolumeClaim" in v or "ephemeral" in v for v in vols)
    has_pvc = has_pvc or bool(path_get(obj, "spec", "volumeClaimTemplates"))
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


def quantity_field(parse, value, where: str, field_name: str) -> float:
    if value is None:
        return math.nan
    try:
        return parse(value)
    except ValueError as exc:
        raise SourceError(f"{where}: {field_name}: {exc}") from None


def container_rows(obj: dict, pod_spec: dict, ident: dict) -> list[dict]:
    """One row per main and init container with requests/limits in cores and bytes (NaN = unset). An init
    container with ``restartPolicy: Always`` is a native sidecar (container_type "sidecar", KEP-753): it runs
    for the pod's whole life. ``init_order`` is the index in initContainers (NaN for main containers)."""
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
            sidecar = ctype == "init" and c.get("restartPolicy") == "Always"
            row = {
                **ident, "container": name, "container_type": "sidecar" if sidecar else ctype,
                "init_order": float(i) if ctype == "init" else math.nan,
                "cpu_request_cores": quantity_field(parse_cpu, req.get("cpu"), where, f"{f}.requests.cpu"),
                "cpu_limit_cores": quantity_field(parse_cpu, lim.get("cpu"), where, f"{f}.limits.cpu"),
                "memory_request_bytes": quantity_field(parse_memory, req.get("memory"), where, f"{f}.requests.memory"),
                "memory_limit_bytes": quantity_field(parse_memory, lim.get("memory"), where, f"{f}.limits.memory"),
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
            "gpu_request_count": quantity_field(parse_count, req.get(name), where, f"{field_name}.requests.{name}"),
            "gpu_limit_count": quantity_field(parse_count, lim.get(name), where, f"{field_name}.limits.{name}"),
            "_gpu_others": names[1:]}
