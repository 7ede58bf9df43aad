"""The metric families a collection reads: for each, once, what its absence disables and how to get it.

collect's missing-metric caveats (meta.json ``missing_metrics`` and the report's data caveats) and
``rightsize doctor`` both read :data:`FAMILIES`, so a family is named the same way everywhere. Each entry
names a field of ``[prometheus.metrics]`` (the metric name is configurable), where the metric comes from,
what a run loses without it, and a hint to get it. Unknown is never "no": a feature whose family is
missing leaves its figures unknown and its rows say so.
"""
from __future__ import annotations

from dataclasses import dataclass

CADVISOR = "cAdvisor (the kubelet's /metrics/cadvisor endpoint)"
KSM = "kube-state-metrics"
ISTIO = "Istio's sidecars"


@dataclass(frozen=True)
class Family:
    """One metric family: ``field`` of MetricNames, its exporter, what its absence ``disables``, a ``hint``.

    ``core``: a collection cannot run without it. ``inventory_only``: read only when workload specs come
    from kube-state-metrics ([kubernetes] source = "prometheus"); with the Kubernetes API or manifests the
    same facts come from there."""

    field: str
    source: str
    disables: str
    hint: str
    core: bool = False
    inventory_only: bool = False


_KSM_SCRAPED = "kube-state-metrics: is it installed and scraped?"
FAMILIES: tuple[Family, ...] = (
    Family("cpu_usage", CADVISOR, "CPU usage statistics (usage table)", "is the kubelet's cAdvisor endpoint scraped?", core=True),
    Family("memory_working_set", CADVISOR, "memory usage statistics (usage table)",
           "is the kubelet's cAdvisor endpoint scraped?", core=True),
    Family("pod_owner", KSM, "owner resolution: no usage row can be attributed to a workload", _KSM_SCRAPED, core=True),
    Family("cpu_throttled_periods", CADVISOR, "CPU throttling ratio: throttled containers are found only when their usage "
           "sits at the limit", "cAdvisor exports CFS counters only for containers with a CPU limit; also check that no "
           "relabeling rule drops container_cpu_cfs_*"),
    Family("cpu_periods", CADVISOR, "CPU throttling ratio: throttled containers are found only when their usage sits at "
           "the limit", "as container_cpu_cfs_throttled_periods_total"),
    Family("cpu_throttled_seconds", CADVISOR, "throttled CPU time (the demand hidden by a CPU limit is assumed, not measured)",
           "as container_cpu_cfs_throttled_periods_total"),
    Family("restarts", KSM, "restart counts and OOM kill detection", _KSM_SCRAPED),
    Family("last_terminated_reason", KSM, "OOM kill detection: OOM-killed containers are not protected",
           "kube-state-metrics' pod metrics (on by default)"),
    Family("replicaset_owner", KSM, "Deployment and Argo Rollout resolution (pods show as owned by their ReplicaSet)",
           "kube-state-metrics' replicasets resource (on by default)"),
    Family("job_owner", KSM, "CronJob resolution (pods show as owned by their Job)", "kube-state-metrics' jobs resource (on by default)"),
    Family("pod_info", KSM, "placement: pod-hours per node and zone (batch costs, idle, bin-packing, cross-AZ zones)",
           _KSM_SCRAPED),
    Family("pod_start_time", KSM, "exact pod lifetimes: short batch pods are timed from their raw samples instead",
           "kube-state-metrics' pod metrics (kube_pod_start_time, on by default)"),
    Family("pod_completion_time", KSM, "exact pod lifetimes: short batch pods are timed from their raw samples instead",
           "kube-state-metrics' pod metrics (kube_pod_completion_time; some distributions deny-list it: allow it again)"),
    Family("pod_labels", KSM, "grouping of pods that batch frameworks start (Argo Workflows, Airflow, Spark, Tekton): "
           "each run shows as a workload of its own",
           "kube-state-metrics exports pod labels only when allowed: --metric-labels-allowlist=pods=[...] with the labels "
           "of [batch_groups]"),
    Family("node_labels", KSM, "the nodes table: node bill, idle capacity, bin-packing, spot capacity, cross-AZ zones",
           "kube-state-metrics exports node labels only when allowed: --metric-labels-allowlist=nodes=[topology.kubernetes.io/zone,"
           "topology.kubernetes.io/region,node.kubernetes.io/instance-type,karpenter.sh/nodepool,karpenter.sh/capacity-type,"
           "eks.amazonaws.com/nodegroup,eks.amazonaws.com/capacityType]"),
    Family("node_allocatable", KSM, "node allocatable CPU, memory and GPUs: idle capacity and bin-packing", _KSM_SCRAPED),
    Family("resource_requests", KSM, "current requests (the Prometheus-only inventory)", _KSM_SCRAPED, inventory_only=True),
    Family("resource_limits", KSM, "current limits (the Prometheus-only inventory)", _KSM_SCRAPED, inventory_only=True),
    Family("container_info", KSM, "injected sidecars recognised by their image ([injectors]) in the Prometheus-only inventory",
           _KSM_SCRAPED, inventory_only=True),
    Family("init_resource_requests", KSM, "init containers' and native sidecars' requests (the Prometheus-only inventory)",
           _KSM_SCRAPED, inventory_only=True),
    Family("init_resource_limits", KSM, "init containers' and native sidecars' limits (the Prometheus-only inventory)",
           _KSM_SCRAPED, inventory_only=True),
    Family("init_container_info", KSM, "telling native sidecars from init containers (the Prometheus-only inventory)",
           "its restart_policy label needs kube-state-metrics 2.10 or later", inventory_only=True),
    Family("hpa_info", KSM, "HPA detection: HPA co-adjustment is off and every workload's HPA is unknown",
           "kube-state-metrics' horizontalpodautoscalers resource (on by default: check --resources)", inventory_only=True),
    Family("hpa_spec_target", KSM, "HPA target utilization: HPA co-adjustment is off",
           "kube-state-metrics' horizontalpodautoscalers resource (on by default: check --resources)", inventory_only=True),
    Family("pdb_expected_pods", KSM, "PDB detection: spot rows say the PDB is unknown",
           "kube-state-metrics' poddisruptionbudgets resource (on by default: check --resources)", inventory_only=True),
    Family("istio_tcp_received", ISTIO, "traffic between workloads (TCP requests): cross-AZ figures are unknown",
           "no Istio mesh, or its metrics are not scraped: cross-AZ cost needs a mesh's byte counters"),
    Family("istio_tcp_sent", ISTIO, "traffic between workloads (TCP responses): cross-AZ figures are unknown",
           "as istio_tcp_received_bytes_total"),
    Family("istio_request_bytes", ISTIO, "traffic between workloads (HTTP requests): cross-AZ figures are unknown",
           "as istio_tcp_received_bytes_total"),
    Family("istio_response_bytes", ISTIO, "traffic between workloads (HTTP responses): cross-AZ figures are unknown",
           "as istio_tcp_received_bytes_total"),
)
CORE = tuple(f.field for f in FAMILIES if f.core)


def read_by(inventory_from_metrics: bool) -> tuple[Family, ...]:
    """The families a collection reads: all of them with the kube-state-metrics inventory, else those not
    ``inventory_only``."""
    return tuple(f for f in FAMILIES if inventory_from_metrics or not f.inventory_only)


def missing_text(family: Family, metric: str, cluster: str) -> str:
    """The caveat of one missing family, as collect records it and doctor prints it."""
    return f"cluster {cluster}: metric {metric} not found in the window; disables {family.disables} (hint: {family.hint})"
