"""Table schemas: the snapshot (between collect and analyze) and the analysis results (between analyze and emit).

Units are in the column names and fixed everywhere: CPU in cores, memory in bytes, money in USD,
time in UTC. An unset request/limit is NaN, never 0.
"""
from __future__ import annotations

from dataclasses import dataclass

from .usage_stats import CONTAINER_KEY, RESOURCES, WORKLOAD_KEY, usage_statistic_columns  # noqa: F401 - the tables' keys, re-exported


_CORE_STATISTICS = set(usage_statistic_columns(core_only=True))  # required columns; GPU ones are optional

@dataclass(frozen=True)
class Column:
    name: str
    dtype: str  # "str", "float", "int", "bool", "datetime"
    description: str
    required: bool = True  # must be present in the table; optional columns are added as NaN/"" when missing
    nullable: bool = True  # NaN allowed (for str: empty string allowed)
    non_negative: bool = False


def _c(name, dtype, description, **kw) -> Column:
    return Column(name, dtype, description, **kw)


_IDENTITY = [
    _c("cluster", "str", "Cluster name", nullable=False),
    _c("namespace", "str", "Namespace", nullable=False),
    _c("kind", "str", "Controller kind: Deployment, StatefulSet, DaemonSet, CronJob, Job, Pod, ...", nullable=False),
    _c("workload", "str", "Controller name (Pod name for bare pods)", nullable=False),
]
_CONTAINER = _IDENTITY + [_c("container", "str", "Container name", nullable=False)]

RUNTIME_SPEC_COLUMNS = _CONTAINER + [
    _c("runtime", "str", "'jvm', 'go', 'node' or 'dotnet'", nullable=False),
    _c("runtime_source", "str", "What told the runtime: the program ('command[0] java'), a variable ('env GOMEMLIMIT') or the image"),
    _c("image", "str", "Container image as written"),
    _c("memory_setting", "str", "The setting that bounds the runtime's memory, as the runtime names it: -Xmx, "
       "-XX:MaxRAMPercentage (also the JVM's default 25 %), -XX:MaxRAM, GOMEMLIMIT, --max-old-space-size, "
       "DOTNET_GCHeapHardLimit(Percent); '' none"),
    _c("memory_setting_bytes", "float", "Its value when absolute (JVM heap max, GOMEMLIMIT, V8 old space, .NET hard limit), bytes", non_negative=True),
    _c("memory_setting_percent", "float", "Its value when a share of the container's memory limit, percent", non_negative=True),
    _c("memory_setting_where", "str", "Where it is set: 'env JAVA_TOOL_OPTIONS', 'command[1]', 'args[0]', 'JVM default'"),
    _c("memory_setting_token", "str", "The setting as written there (e.g. '-Xmx3g', '1800MiB', '0x4B')"),
    _c("initial_heap_bytes", "float", "JVM initial heap (-Xms), bytes (NaN unset)", non_negative=True),
    _c("initial_heap_where", "str", "Where -Xms is set"),
    _c("initial_heap_token", "str", "-Xms as written"),
    _c("gogc_percent", "float", "GOGC, percent (inf = off, NaN unset)"),
    _c("env_json", "str", "The container's literal runtime variables (JAVA_TOOL_OPTIONS, GOMEMLIMIT, ...) as a JSON "
       "object, as written: a patch rewrites one setting inside them and keeps the rest"),
    _c("uncertain", "str", "Carriers whose value is unknown (valueFrom, envFrom, an image's entrypoint) that could "
       "override the setting, '; ' separated ('' = the setting is certain)"),
    _c("problems", "str", "Settings that do not parse, or are set where the runtime does not read them ('; ' separated)"),
]

RUNTIME_HOURLY_COLUMNS = _CONTAINER + [
    _c("pod", "str", "Pod", nullable=False),
    _c("hour", "datetime", "Start of the hour bin, counted back from the window end: the bin is (hour, hour + 1 h]", nullable=False),
    _c("runtime", "str", "'jvm', 'go', 'node' or 'dotnet': whose metrics these are", nullable=False),
    _c("heap_used_min_bytes", "float", "Lowest heap in use in the hour (JVM: heap pools summed; its minima are "
       "the heap after collection), bytes", non_negative=True, required=False),
    _c("heap_used_max_bytes", "float", "Highest heap in use in the hour (JVM heap pools, Go heap in use, V8 heap "
       "used, .NET GC heap), bytes", non_negative=True, required=False),
    _c("heap_committed_max_bytes", "float", "Highest committed heap in the hour (JVM, V8 heap total, .NET), bytes", non_negative=True, required=False),
    _c("runtime_max_bytes", "float", "The runtime's own memory maximum as it reports it (JVM heap max, Go "
       "GOMEMLIMIT, .NET GC total available memory), bytes", non_negative=True, required=False),
    _c("live_set_max_bytes", "float", "JVM heap in use after the last full collection (Micrometer "
       "jvm_gc_live_data_size_bytes), highest in the hour, bytes", non_negative=True, required=False),
    _c("non_heap_max_bytes", "float", "JVM: highest working set minus committed heap in the hour (everything but "
       "the heap: metaspace, code, threads, direct buffers, native; below 0 while committed heap is not yet touched), bytes", required=False),
    _c("non_heap_pools_max_bytes", "float", "JVM: highest non-heap pools in use in the hour (metaspace, code cache, "
       "compressed class space), bytes", non_negative=True, required=False),
]

TABLES: dict[str, list[Column]] = {
    "namespaces": [
        _c("cluster", "str", "Cluster name", nullable=False),
        _c("namespace", "str", "Namespace", nullable=False),
        _c("labels_json", "str", "Namespace labels as a JSON object"),
    ],
    "workloads": _IDENTITY + [
        _c("replicas", "float", "Desired replicas (DaemonSet: nodes it runs on; CronJob/Job: parallelism)", non_negative=True),
        _c("hpa", "bool", "Scaled by a HorizontalPodAutoscaler"),
        _c("hpa_min_replicas", "float", "HPA minReplicas", required=False, non_negative=True),
        _c("hpa_max_replicas", "float", "HPA maxReplicas", required=False, non_negative=True),
        _c("hpa_cpu_target_percent", "float", "HPA target CPU utilization, percent of request; NaN when not on CPU", required=False),
        _c("hpa_memory_target_percent", "float", "HPA target memory utilization, percent of request; NaN when not on memory", required=False),
        _c("hpa_metrics", "str", "HPA metric types, comma separated (e.g. 'Resource:cpu,External')", required=False),
        _c("hpa_name", "str", "Name of the HPA that scales the workload ('' unknown or none)", required=False),
        _c("hpa_cpu_target_path", "str", "JSON pointer of the HPA's CPU averageUtilization in the object as read "
           "(e.g. /spec/metrics/0/resource/target/averageUtilization); '' unknown", required=False),
        _c("hpa_memory_target_path", "str", "JSON pointer of the HPA's memory averageUtilization; '' unknown", required=False),
        _c("hpa_unknown", "bool", "HPAs could not be read (no kube_horizontalpodautoscaler_* series, or listing them was "
           "forbidden): hpa False says nothing", required=False),
        _c("pdb", "bool", "Covered by a PodDisruptionBudget"),
        _c("pdb_unknown", "bool", "PDBs could not be read (no kube_poddisruptionbudget_* series, or listing them was "
           "forbidden): pdb False says nothing", required=False),
        _c("pdb_min_available_pods", "float", "PDB minAvailable resolved to pods (NaN when not set)", required=False, non_negative=True),
        _c("pdb_max_unavailable_pods", "float", "PDB maxUnavailable resolved to pods (NaN when not set)", required=False, non_negative=True),
        _c("pdb_disruptions_allowed", "float", "Pods the PDB lets be evicted at once at the current replicas", required=False),
        _c("has_pvc", "bool", "Mounts a PersistentVolumeClaim (or has volumeClaimTemplates)"),
        _c("has_empty_dir", "bool", "Mounts an emptyDir on disk (not medium: Memory)"),
        _c("has_memory_empty_dir", "bool", "Mounts an emptyDir with medium: Memory", required=False),
        _c("has_host_path", "bool", "Mounts a hostPath"),
        _c("termination_grace_seconds", "float", "terminationGracePeriodSeconds (30 when unset)", non_negative=True),
        _c("capacity_affinity", "str", "Capacity type the pod spec pins: 'spot', 'on-demand' or '' (none)", required=False),
        _c("tolerates_spot", "bool", "Tolerates a spot taint", required=False),
        _c("update_max_unavailable", "str", "Rolling update maxUnavailable as written", required=False),
        _c("update_max_surge", "str", "Rolling update maxSurge as written", required=False),
        _c("team", "str", "Owning team (from the configured team label)", required=False),
        _c("ignore", "bool", "Opted out of recommendations by annotation or config", required=False),
        _c("spot_preference", "str", "Spot annotation: 'in', 'out' or ''", required=False),
        _c("policy_override", "str", "Policy named by annotation, or ''", required=False),
        _c("source", "str", "Where the spec came from: api, manifests, prometheus, demo"),
        _c("source_file", "str", "Manifest file the workload came from ('' otherwise)", required=False),
        _c("resolved_by", "str", "How pods whose ReplicaSet/Job could not be listed were mapped to this workload: pod-template-hash, selector, job name ('' = not needed)", required=False),
        _c("checkpoints", "bool", "Says it checkpoints its work ([kubernetes] checkpoint_annotation, as an annotation or label, "
           "\"true\"): a training job that resumes after an interruption, so spot suits it", required=False),
        _c("zone_spread", "bool", "Pods must spread over zones (topologySpreadConstraints on topology.kubernetes.io/zone with DoNotSchedule, or required pod anti-affinity per zone)", required=False),
    ],
    "containers": _CONTAINER + [
        _c("container_type", "str", "'main', 'init' (runs to completion before the main containers) or 'sidecar' (a native "
           "sidecar: an init container with restartPolicy: Always, running for the pod's whole life, KEP-753)", nullable=False),
        _c("init_order", "float", "Index in the pod's initContainers (init and sidecar; NaN for main containers, or when the "
           "inventory does not know the order, as kube-state-metrics)", required=False, non_negative=True),
        _c("image", "str", "Container image where the inventory records it ('' unknown)", required=False),
        _c("cpu_request_cores", "float", "Current CPU request, cores (NaN = unset)", non_negative=True),
        _c("cpu_limit_cores", "float", "Current CPU limit, cores (NaN = unset)", non_negative=True),
        _c("memory_request_bytes", "float", "Current memory request, bytes (NaN = unset)", non_negative=True),
        _c("memory_limit_bytes", "float", "Current memory limit, bytes (NaN = unset)", non_negative=True),
        _c("gpu_resource", "str", "GPU extended resource the container asks for: nvidia.com/gpu, amd.com/gpu or a MIG "
           "slice such as nvidia.com/mig-1g.5gb ('' none; see gpu_resources.py)", required=False),
        _c("gpu_request_count", "float", "Devices of gpu_resource requested (the limit when only the limit is set; NaN = none)",
           required=False, non_negative=True),
        _c("gpu_limit_count", "float", "Devices of gpu_resource in the limit (NaN = none)", required=False, non_negative=True),
    ],
    "usage": _CONTAINER + [
        *[_c(name, "float", description, non_negative=True, required=(name, description) in _CORE_STATISTICS)
          for name, description in usage_statistic_columns()],
        _c("cpu_mean_cores", "float", "Mean CPU usage over every pod's steps, cores", non_negative=True, required=False),
        _c("memory_mean_bytes", "float", "Mean working set over every pod's steps, bytes", non_negative=True, required=False),
        _c("gpu_engine_mean_ratio", "float", "Mean GPU engine active over every pod's steps (0-1; NaN: no GPU usage measured)",
           non_negative=True, required=False),
        _c("gpu_memory_mean_bytes", "float", "Mean GPU frame buffer used over every pod's steps, bytes", non_negative=True,
           required=False),
        _c("gpu_memory_total_bytes", "float", "Frame buffer of the container's GPUs (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE, "
           "the largest), bytes", non_negative=True, required=False),
        _c("gpu_model", "str", "GPU model DCGM reports (its modelName label, e.g. 'NVIDIA A100-SXM4-40GB'; '' unknown)", required=False),
        _c("gpu_engine_metric", "str", "The metric gpu_engine_* come from: DCGM_FI_PROF_GR_ENGINE_ACTIVE, or "
           "DCGM_FI_DEV_GPU_UTIL where profiling metrics are off ('' none)", required=False),
        _c("samples", "float", "Steps of the window with data from any pod", non_negative=True),
        _c("pod_samples", "float", "Steps with data summed over pods (the pooled sample count)", non_negative=True, required=False),
        _c("hours_covered", "float", "Hours of the window with data (samples x step)", non_negative=True),
        _c("oom_kills", "float", "OOM kills seen in the window (NaN without the metrics to tell)", non_negative=True),
        _c("restarts", "float", "Container restarts in the window", non_negative=True),
        _c("cpu_throttled_ratio", "float", "Share of CFS periods throttled over the window (NaN without CFS data)"),
        _c("cpu_throttled_seconds", "float", "Throttled time over the window, seconds, summed over the container's pods "
           "(increase of container_cpu_cfs_throttled_seconds_total; the kernel adds it up per CPU, so it approximates "
           "the CPU-seconds the limit held back); NaN when the metric is missing", required=False, non_negative=True),
        _c("pods_seen", "float", "Distinct pods seen in the window", non_negative=True),
    ],
    "usage_histograms": _CONTAINER + [
        _c("pod", "str", "Pod (basis 'pod'); '' for basis 'busiest'"),
        _c("basis", "str", "'pod': that pod's samples; 'busiest': the busiest replica's value at each step", nullable=False),
        _c("resource", "str", "'cpu' (cores), 'memory' (bytes), 'gpu_engine' (ratio 0-1) or 'gpu_memory' (bytes)", nullable=False),
        _c("day", "datetime", "Start of the 24 h bin, counted back from the window end: the bin is (day, day + 24 h]", nullable=False),
        _c("bucket", "int", "Log bucket: values in (floor x 1.02^(b-1), floor x 1.02^b], floor 0.1m cores / 64 KiB; "
           "bucket 0 = [0, floor] (see sketch.py)", non_negative=True),
        _c("count", "int", "Steps whose value fell in the bucket", non_negative=True),
    ],
    "usage_daily": _CONTAINER + [
        _c("pod", "str", "Pod", nullable=False),
        _c("day", "datetime", "Start of the 24 h bin, as in usage_histograms", nullable=False),
        _c("cpu_samples", "int", "Steps with a CPU value", non_negative=True),
        _c("cpu_mean_cores", "float", "Mean CPU usage over those steps, cores", non_negative=True),
        _c("cpu_max_cores", "float", "Largest step value, cores", non_negative=True),
        _c("memory_samples", "int", "Steps with a working-set value", non_negative=True),
        _c("memory_mean_bytes", "float", "Mean working set over those steps, bytes", non_negative=True),
        _c("memory_max_bytes", "float", "Largest raw working-set sample of the day (finer than the step), bytes", non_negative=True),
        _c("oom_kills", "float", "OOM kills that day (NaN without the metrics to tell)", non_negative=True),
        _c("restarts", "float", "Container restarts that day, OOM kills included (NaN without the metrics to tell, or "
           "collected before this column existed)", required=False, non_negative=True),
        *[_c(f"{res.name}_{what}", dtype, f"{text} ({res.description})", non_negative=True, required=False)
          for res in RESOURCES.values() if not res.core
          for what, dtype, text in (("samples", "int", "Steps with a value"), (f"mean_{res.unit}", "float", "Mean over those steps"),
                                    (f"max_{res.unit}", "float", "Largest value of the day"))],
    ],
    "nodes": [
        _c("cluster", "str", "Cluster name", nullable=False),
        _c("node", "str", "Node name", nullable=False),
        _c("instance_type", "str", "EC2 instance type ('' unknown)"),
        _c("zone", "str", "Availability zone ('' unknown)"),
        _c("region", "str", "Region ('' unknown)"),
        _c("capacity_type", "str", "'on-demand', 'spot' or '' (unknown)"),
        _c("node_group", "str", "Node group / node pool ('' unknown)", required=False),
        _c("allocatable_cpu_cores", "float", "Allocatable CPU, cores", non_negative=True),
        _c("allocatable_memory_bytes", "float", "Allocatable memory, bytes", non_negative=True),
        _c("hours_seen", "float", "Hours of the window the node existed", non_negative=True),
        _c("capacity_gpus", "float", "Whole GPUs in the node's capacity (nvidia.com/gpu + amd.com/gpu; NaN unknown)",
           required=False, non_negative=True),
        _c("allocatable_gpus", "float", "Whole GPUs allocatable (nvidia.com/gpu + amd.com/gpu; MIG slices are in "
           "gpu_resources_json; NaN unknown)", required=False, non_negative=True),
        _c("gpu_resources_json", "str", "Every GPU resource allocatable on the node, whole GPUs and MIG slices, as a JSON "
           "object of counts, e.g. {\"nvidia.com/gpu\": 4, \"nvidia.com/mig-1g.5gb\": 14} ('' unknown)", required=False),
        _c("gpu_product", "str", "GPU model from GPU feature discovery's nvidia.com/gpu.product label ('' unknown)", required=False),
    ],
    "placement": _IDENTITY + [
        _c("node", "str", "Node the pods ran on", nullable=False),
        _c("zone", "str", "Zone of that node ('' unknown)"),
        _c("pod_hours", "float", "Pod-hours of this workload on this node over the window", non_negative=True),
    ],
    "traffic": [
        _c("cluster", "str", "Cluster name", nullable=False),
        _c("source_namespace", "str", "Source namespace", nullable=False),
        _c("source_workload", "str", "Source workload name", nullable=False),
        _c("destination_namespace", "str", "Destination namespace", nullable=False),
        _c("destination_workload", "str", "Destination workload name", nullable=False),
        _c("source_zone", "str", "Measured source zone ('' unknown)", required=False),
        _c("destination_zone", "str", "Measured destination zone ('' unknown)", required=False),
        _c("request_bytes", "float", "Bytes client -> server over the window (TCP received + HTTP request bytes)", required=False, non_negative=True),
        _c("response_bytes", "float", "Bytes server -> client over the window (TCP sent + HTTP response bytes)", required=False, non_negative=True),
        _c("bytes", "float", "Bytes exchanged over the window, both directions (request + response)", non_negative=True),
    ],
    "services": [
        _c("cluster", "str", "Cluster name", nullable=False),
        _c("namespace", "str", "Namespace", nullable=False),
        _c("service", "str", "Service name", nullable=False),
        _c("type", "str", "ClusterIP, NodePort, LoadBalancer, ExternalName"),
        _c("selector_json", "str", "Pod selector as a JSON object"),
        _c("workload", "str", "Workload the selector matches ('' unknown)", required=False),
        _c("kind", "str", "Kind of that workload", required=False),
        _c("ports", "str", "Ports, comma separated as port/protocol", required=False),
        _c("topology_mode", "str", "service.kubernetes.io/topology-mode annotation ('' none)", required=False),
        _c("traffic_distribution", "str", "spec.trafficDistribution ('' none)", required=False),
        _c("internal_traffic_policy", "str", "spec.internalTrafficPolicy", required=False),
        _c("load_balancer_internal", "bool", "Annotated as an internal load balancer", required=False),
        _c("load_balancer_class", "str", "spec.loadBalancerClass or the AWS LB type annotation", required=False),
    ],
    "prices": [
        _c("instance_type", "str", "EC2 instance type", nullable=False),
        _c("region", "str", "Region", nullable=False),
        _c("zone", "str", "Zone for spot prices; '' for on-demand or region-wide"),
        _c("capacity_type", "str", "'on-demand' or 'spot'", nullable=False),
        _c("usd_per_hour", "float", "Price, USD/hour (after configured discounts)", non_negative=True),
        _c("vcpu", "float", "vCPUs of the type", non_negative=True),
        _c("memory_gib", "float", "Memory of the type, GiB", non_negative=True),
        _c("gpus", "float", "GPUs of the type (0 none; NaN unknown)", required=False, non_negative=True),
        _c("interruption_bucket", "str", "Spot Advisor interruption frequency (<5%, 5-10%, ...) or ''", required=False),
        _c("spot_savings_percent", "float", "Spot Advisor savings against on-demand, percent", required=False),
        _c("price_source", "str", "aws, offline, offline-estimate, override"),
    ],
    "series": _CONTAINER + [
        _c("timestamp", "datetime", "Step timestamp, UTC", nullable=False),
        _c("cpu_cores", "float", "CPU usage of the busiest replica, cores"),
        _c("memory_bytes", "float", "Working set of the busiest replica, bytes"),
    ],
    # --- runtimes (JVM, Go, Node.js, .NET): their memory settings from the spec, their memory from metrics ---
    "runtimes": RUNTIME_SPEC_COLUMNS,
    "runtime_hourly": RUNTIME_HOURLY_COLUMNS,
}

# Tables a snapshot may leave empty (their absence is recorded in meta.json warnings).
OPTIONAL_TABLES = {"namespaces", "traffic", "services", "series", "placement", "prices", "usage_histograms", "usage_daily",
                   "runtimes", "runtime_hourly"}

# --- analysis results (analyze -> emit) ------------------------------------------------------------

RECOMMENDATION_COLUMNS: list[Column] = _CONTAINER + [
    _c("container_type", "str", "'main', 'init', 'sidecar' (native sidecar: init container with restartPolicy: Always) or "
       "'injected' (added to each pod by an injector such as Istio; sized by annotations on the pod template)"),
    _c("init_order", "float", "Index in initContainers (NaN: a main container, or unknown)"),
    _c("injector", "str", "For container_type 'injected' (a sidecar its injector adds to each pod, not in the spec): the "
       "[injectors] entry whose annotations size it; '' otherwise"),
    _c("team", "str", "Owning team"),
    _c("policy", "str", "Policy applied"),
    _c("production", "bool", "The applied policy is a production one (Policy.production): CI thresholds, report and spot read this"),
    _c("status", "str", "'change' (patch proposed), 'keep' (below the change threshold), 'no_recommendation', 'ignored'"),
    _c("reason", "str", "Why: the reason for no recommendation, or the notes that shaped the recommendation"),
    _c("confidence", "str", "'high', 'medium', 'low' (history-based); '' without a recommendation"),
    _c("flags", "str", "Comma separated: gpu_unmeasured, gpu_idle, gpu_share, gpu_smaller (rules/gpu.py), oom_risk, throttled, hpa, low_confidence, no_limit, no_request, over_provisioned, under_provisioned, replicas_estimated (costed at the average pods run, pod-hours / window hours: Jobs, CronJobs, HPA-scaled work, replicas unknown from the spec), memory_leak (OOM-killed after climbing to the limit), memory_growth (the working set grows with pod age: see memory_growth_bytes_per_day), raised_by_backtest (the self-check raised a limit), demand_hidden (throttled: usage at the limit is a lower bound of the demand), one_off_job (a Job's pod template is immutable: no patch, savings apply to the next run), imbalanced_replicas (the hottest pod's CPU p95 over 1.5 x every replica's pooled p95: a leader or hot shard; per_replica = max_over_pods sizes for it), heap_full (a JVM's live set fills its heap: a lower bound, never lowered), runtime_spec_only (a runtime known from its spec only: no runtime metrics), runtime_setting_unknown (its setting's value is unknown from the spec), runtime_by_hand (its setting is on the command line: edit it by hand)"),
    _c("replicas", "float", "Pods used for cost: the spec's replicas; for Jobs, CronJobs, HPA-scaled workloads and replicas the spec cannot state, the average pods run (pod-hours / window hours)"),
    _c("average_pods", "float", "Average pods running over the window, pod-hours / window hours (NaN without placement)"),
    _c("cpu_request_cores_current", "float", "Current CPU request, cores (NaN = unset)"),
    _c("cpu_request_cores_recommended", "float", "Recommended CPU request, cores (NaN = no recommendation)"),
    _c("cpu_limit_cores_current", "float", "Current CPU limit, cores (NaN = unset)"),
    _c("cpu_limit_cores_recommended", "float", "Recommended CPU limit, cores (NaN = leave unset / remove, see cpu_limit_action)"),
    _c("cpu_limit_action", "str", "'set', 'keep_unset', 'remove', 'none' (no recommendation)"),
    _c("memory_request_bytes_current", "float", "Current memory request, bytes"),
    _c("memory_request_bytes_recommended", "float", "Recommended memory request, bytes"),
    _c("memory_limit_bytes_current", "float", "Current memory limit, bytes"),
    _c("memory_limit_bytes_recommended", "float", "Recommended memory limit, bytes (NaN = no recommendation, or leave unset: see memory_limit_action)"),
    _c("memory_limit_action", "str", "'set', 'keep_unset' (a growing working set and no limit today: none is introduced, flag memory_growth), 'none' (no recommendation)"),
    _c("cpu_change_percent", "float", "Change of the CPU request, percent of current (NaN when unset)"),
    _c("memory_change_percent", "float", "Change of the memory request, percent of current"),
    _c("cpu_basis", "str", "Statistic the CPU request is based on (e.g. p95)"),
    _c("cpu_basis_cores", "float", "Its value, cores"),
    _c("memory_basis", "str", "Statistic the memory request is based on"),
    _c("memory_basis_bytes", "float", "Its value, bytes"),
    _c("memory_max_bytes", "float", "Observed max working set, bytes"),
    _c("hours_covered", "float", "Hours of history"),
    _c("samples", "float", "Samples of history"),
    _c("pods_seen", "float", "Pods seen"),
    _c("restarts", "float", "Restarts in the window"),
    _c("oom_kills", "float", "OOM kills in the window"),
    _c("cpu_throttled_ratio", "float", "Throttled share of CFS periods"),
    _c("cpu_throttled_seconds", "float", "Throttled time over the window, seconds (NaN when the metric is missing)"),
    _c("cpu_demand_estimate_cores", "float", "CPU demand at the request's statistic estimated above a throttling limit "
       "(usage there is a lower bound), cores; NaN when the demand was not hidden"),
    _c("memory_demand_estimate_bytes", "float", "Memory an OOM-killed container is estimated to need (its observed peak "
       "and current limit are lower bounds, escalated with the kill evidence), bytes; NaN without OOM kills"),
    _c("oom_pattern", "str", "'spike' or 'leak' for OOM-killed containers (from the working set's shape), '' otherwise"),
    _c("cpu_pattern", "str", "Usage pattern of the CPU (analysis/patterns.py): 'flat', 'diurnal' or 'bursty' ('' without usage); its margin sized the request"),
    _c("memory_pattern", "str", "Usage pattern of the working set: 'flat', 'diurnal', 'bursty' or 'growing' ('' without usage)"),
    _c("memory_growth_bytes_per_day", "float", "A growing working set's climb per day of pod age, bytes/day (Theil-Sen over each pod's daily maxima; NaN when it does not grow)"),
    _c("memory_projected_bytes", "float", "A growing working set's projected peak over the pods' expected life, at most oom_horizon, bytes (NaN when it does not grow)"),
    _c("raised_by_backtest", "str", "What the self-check raised ('memory limit', 'CPU limit', both, '' nothing): replaying the window's last days, the recommended value would have been OOM-killed or throttled beyond the policy's threshold"),
    _c("self_check_memory_peak_bytes", "float", "The self-check's evidence: the largest raw working-set sample of the window's last days, bytes (NaN unknown or not run)"),
    _c("self_check_cpu_share_at_limit", "float", "The self-check's evidence: share of the last days' pod-steps at or above the recommended CPU limit before any raise (NaN: no CPU limit, no histograms, or not run)"),
    _c("hpa_cpu_target_percent_current", "float", "HPA target CPU utilization today, percent of request (NaN: not on CPU)"),
    _c("hpa_cpu_target_percent_recommended", "float", "HPA target CPU utilization that keeps the scaling point with the "
       "recommended requests, percent (NaN: no change proposed)"),
    _c("hpa_memory_target_percent_current", "float", "HPA target memory utilization today, percent of request"),
    _c("hpa_memory_target_percent_recommended", "float", "HPA target memory utilization with the recommended requests, percent"),
    _c("usd_per_month_current", "float", "Cost of current requests x replicas, USD/month (NaN unknown price)"),
    _c("usd_per_month_recommended", "float", "Cost of recommended requests x replicas, USD/month"),
    _c("savings_usd_per_month", "float", "current - recommended, USD/month"),
    _c("gpu_resource", "str", "GPU resource the container asks for today: nvidia.com/gpu, amd.com/gpu, a MIG slice ('' none)"),
    _c("gpu_request_count_current", "float", "Devices of gpu_resource requested today (NaN none)"),
    _c("gpu_model", "str", "GPU model its pods ran on (A100-40GB, A10G, L4, ...; '' unknown or no GPU)"),
    _c("gpu_engine_p95_ratio", "float", "GPU engine active p95, every replica's samples pooled, 0-1 (the busiest of a pod's GPUs; NaN not measured)"),
    _c("gpu_engine_mean_ratio", "float", "GPU engine active mean over the window, 0-1 (what 'used' GPU dollars count)"),
    _c("gpu_memory_peak_bytes", "float", "Largest GPU frame buffer used by a pod's fullest GPU, raw samples, bytes"),
    _c("gpu_memory_bytes", "float", "Frame buffer of its GPU, bytes (DCGM's, else the catalogue's)"),
    _c("gpu_action", "str", "GPU recommendation: '' (no GPU), 'unmeasured' (no DCGM data), 'idle', 'share_mig', "
       "'share_time_slicing', 'smaller_gpu', 'keep' (see README 'GPUs')"),
    _c("gpu_target", "str", "What the GPU action proposes: 'no GPU', 'MIG 1g.5gb', 'time-slicing 4 per GPU', 'L4 (g6.xlarge)'"),
    _c("gpu_resource_recommended", "str", "GPU resource the patch sets (a MIG slice the nodes offer); '' = no GPU patch (report only)"),
    _c("gpu_request_count_recommended", "float", "Devices after the change (today's without a GPU patch)"),
    _c("gpu_share_after", "float", "The container's GPU cost after the GPU action, as a share of today's (0 idle; NaN no action)"),
    _c("gpu_evidence", "str", "What the GPU action rests on: engine active p95, frame buffer peak and size, GPU model, days"),
    _c("gpu_usd_per_month_current", "float", "Cost of its GPU devices today, USD/month (in usd_per_month_current; 0 without GPUs)"),
    _c("gpu_usd_per_month_recommended", "float", "Cost of its GPU devices after a GPU patch, USD/month (in usd_per_month_recommended)"),
    _c("gpu_usd_per_month_used", "float", "GPU dollars actually used: current x engine active mean, USD/month (NaN not measured)"),
    _c("gpu_savings_usd_per_month", "float", "What the GPU action saves, patched or report-only: current x (1 - gpu_share_after), USD/month"),
] + [  # runtimes (JVM, Go, Node.js, .NET): the setting that moves with the memory limit
    _c("runtime", "str", "'jvm', 'go', 'node', 'dotnet' (from the spec, else from its metrics), '' none seen"),
    _c("runtime_evidence", "str", "What is known of it: 'spec and metrics', 'spec only', 'metrics only'"),
    _c("runtime_setting", "str", "The setting that bounds the runtime's memory and where, e.g. '-Xmx (env JAVA_TOOL_OPTIONS)'"),
    _c("heap_bytes_current", "float", "The runtime's maximum today: JVM heap max (-Xmx, or the percentage of today's "
       "limit), GOMEMLIMIT, V8 old space, .NET hard limit; bytes (NaN unknown)"),
    _c("heap_bytes_recommended", "float", "The same after the recommendation (the patched or by-hand setting, or the "
       "percentage of the recommended limit), bytes; NaN: unchanged or unknown"),
    _c("runtime_setting_action", "str", "'patch' (a variable rewritten in the patch), 'by_hand' (command/args: "
       "runtime_setting_edit says the exact edit), 'follows_limit' (a percentage), 'none', 'unknown' (its value is "
       "unknown from the spec), '' (no runtime or no recommendation)"),
    _c("runtime_setting_edit", "str", "The exact change, e.g. env JAVA_TOOL_OPTIONS: \"-Xmx2g -Dx\" -> \"-Xmx754m -Dx\""),
    _c("runtime_env_json", "str", "The container variables the patch sets, as a JSON object ('' none)"),
    _c("live_set_bytes", "float", "JVM live set: p99 over pod-hours of the heap in use after collection (live data, "
       "else the heap's hourly troughs), bytes"),
    _c("non_heap_bytes", "float", "JVM non-heap peak: working set minus committed heap (else the non-heap pools), bytes"),
    _c("heap_occupancy", "float", "JVM: live set / the heap after the recommendation (target: heap_target_occupancy)"),
]

SPOT_COLUMNS: list[Column] = _IDENTITY + [
    _c("team", "str", "Owning team"),
    _c("score", "float", "Spot suitability 0-100"),
    _c("verdict", "str", "'ready', 'ready_with_changes', 'not_suitable', 'not_applicable' (DaemonSet), 'already_on_spot'"),
    _c("reasons", "str", "Every reason behind the score, '; ' separated"),
    _c("changes_needed", "str", "What to change to become ready, '; ' separated ('' none)"),
    _c("replicas", "float", "Replicas"),
    _c("spot_share", "float", "Share of the workload's pod-hours already on spot nodes (NaN unknown)"),
    _c("interruption_bucket", "str", "Worst Spot Advisor interruption bucket of its instance types ('' unknown)"),
    _c("usd_per_month_on_demand", "float", "Cost of its (recommended) requests at on-demand prices, USD/month"),
    _c("usd_per_month_spot", "float", "Same at spot prices of the same instance types, USD/month"),
    _c("savings_usd_per_month", "float", "on_demand - spot, USD/month (NaN unknown)"),
    _c("non_production", "bool", "In a non-production namespace (whole environment can move to spot)"),
]

CROSS_AZ_COLUMNS: list[Column] = [
    _c("cluster", "str", "Cluster"),
    _c("source_namespace", "str", "Source namespace"),
    _c("source_workload", "str", "Source workload"),
    _c("destination_namespace", "str", "Destination namespace"),
    _c("destination_workload", "str", "Destination workload"),
    _c("gb_per_month", "float", "Traffic between the pair projected to a month, GB"),
    _c("crossing_fraction", "float", "Share of the bytes that cross zones (measured or expected)"),
    _c("measured", "bool", "True when zones came from the metrics, False when estimated from placement"),
    _c("cross_az_gb_per_month", "float", "GB/month crossing zones"),
    _c("usd_per_month", "float", "Inter-AZ cost, both directions, USD/month: the point estimate (see assumption)"),
    _c("usd_per_month_low", "float", "Low end: traffic without measured zones stays in-zone wherever the destination has endpoints there, USD/month"),
    _c("usd_per_month_high", "float", "High end: traffic without measured zones spreads uniformly over endpoints, USD/month (= usd_per_month)"),
    _c("assumption", "str", "Routing behind usd_per_month: measured zones, node-local, same zone (topology hint), or uniform (no hint / routing unknown)"),
    _c("fix", "str", "Suggested fix (trafficDistribution / topology-mode / spread)"),
    _c("saving_usd_per_month", "float", "Saving if the traffic stayed in-zone, USD/month"),
    _c("destination_zones", "str", "Zones the destination runs in, comma separated"),
    _c("destination_covers_source_zones", "bool", "Destination has endpoints in every zone of the source"),
    _c("caveat", "str", "Caveats of the fix"),
]

LOAD_BALANCER_COLUMNS: list[Column] = [
    _c("cluster", "str", "Cluster"),
    _c("namespace", "str", "Namespace"),
    _c("service", "str", "Service name"),
    _c("workload", "str", "Workload behind it ('' unknown)"),
    _c("scheme", "str", "'internet-facing' or 'internal'"),
    _c("usd_per_month", "float", "Fixed load balancer cost, USD/month"),
    _c("http", "bool", "Serves HTTP(S) ports (could share an ingress)"),
    _c("consolidation_candidate", "bool", "Could move behind a shared ingress"),
    _c("risk", "str", "e.g. internet-facing without the internal annotation ('' none)"),
]

IDLE_COLUMNS: list[Column] = [
    _c("cluster", "str", "Cluster"),
    _c("node_group", "str", "Node group ('' unknown)"),
    _c("instance_type", "str", "Instance type"),
    _c("capacity_type", "str", "on-demand / spot"),
    _c("nodes", "float", "Nodes in the group"),
    _c("allocatable_cpu_cores", "float", "Allocatable CPU, cores"),
    _c("requested_cpu_cores", "float", "CPU requested by pods on these nodes, cores (pod-hour weighted)"),
    _c("allocatable_memory_bytes", "float", "Allocatable memory, bytes"),
    _c("requested_memory_bytes", "float", "Memory requested, bytes"),
    _c("allocatable_gpus", "float", "Allocatable GPUs in GPU-equivalents (a MIG slice or a time-sliced replica counts its share of a GPU)"),
    _c("requested_gpus", "float", "GPU-equivalents requested by pods on these nodes (pod-hour weighted)"),
    _c("usd_per_month", "float", "Node cost, USD/month (NaN unknown price)"),
    _c("idle_usd_per_month", "float", "Cost of allocatable not requested (CPU, memory and GPUs), USD/month"),
    _c("gpu_idle_usd_per_month", "float", "Of which GPUs no pod requests, USD/month (at the GPU part of the node price)"),
]

NODE_GROUP_COLUMNS: list[Column] = [
    _c("cluster", "str", "Cluster"),
    _c("node_group", "str", "Node group ('' unknown)"),
    _c("instance_type", "str", "Instance type"),
    _c("capacity_type", "str", "on-demand / spot"),
    _c("zones", "str", "Zones the group's nodes run in, comma separated"),
    _c("nodes", "float", "Nodes in the group over the window (a node counts by the share of the window it existed)"),
    _c("allocatable_cpu_cores", "float", "Allocatable CPU of one node, cores (median node)"),
    _c("allocatable_memory_bytes", "float", "Allocatable memory of one node, bytes (median node)"),
    _c("allocatable_gpus", "float", "GPU devices one node offers pods (median node; a MIG slice counts its share of a GPU, "
       "a time-sliced GPU each replica), packed as a third dimension; 0 without GPUs"),
    _c("daemonset_cpu_cores", "float", "CPU the DaemonSets on these nodes request per node, after the recommendations, cores"),
    _c("daemonset_memory_bytes", "float", "Memory the DaemonSets request per node, after the recommendations, bytes"),
    _c("pods", "float", "Pods packed onto the group (DaemonSets not counted)"),
    _c("nodes_now", "float", "Nodes first-fit decreasing needs for today's requests"),
    _c("nodes_after", "float", "Nodes it needs for the recommended requests"),
    _c("usd_per_node_month", "float", "Price of one node, USD/month (NaN unknown price)"),
    _c("usd_per_month", "float", "Node bill of the group today, USD/month (nodes x node price, as idle.csv)"),
    _c("usd_per_month_now", "float", "Cost of min(nodes_now, nodes): the packing starts from the nodes that ran, USD/month"),
    _c("usd_per_month_after", "float", "Cost of nodes_after, USD/month"),
    _c("bankable_savings_usd_per_month", "float", "usd_per_month_now - usd_per_month_after: what consolidation can remove once the recommendations are applied, never more than the nodes seen cost (negative: the recommendations need more nodes), USD/month"),
    _c("consolidation_usd_per_month", "float", "usd_per_month - usd_per_month_now: what consolidation could remove today without any change, USD/month"),
    _c("best_instance_type", "str", "Instance type of the same family that holds the recommended pods for the least money ('' none known)"),
    _c("best_nodes_after", "float", "Nodes of that type needed after the recommendations"),
    _c("best_usd_per_month_after", "float", "Their cost, USD/month"),
    _c("note", "str", "Caveats of the packing (oversized pods, no pods, today's requests needing more nodes than ran)"),
]

BACKTEST_COLUMNS: list[Column] = [
    _c("policy", "str", "'today' (the current requests and limits) or the policy whose recommendation, made without the test days, is replayed"),
    *_CONTAINER,
    _c("cpu_request_cores", "float", "CPU request replayed, cores (NaN = unset)"),
    _c("cpu_limit_cores", "float", "CPU limit replayed, cores (NaN = none)"),
    _c("memory_request_bytes", "float", "Memory request replayed, bytes"),
    _c("memory_limit_bytes", "float", "Memory limit replayed, bytes (NaN = none)"),
    _c("cpu_share_over_request", "float", "Share of the test days' pod-steps with CPU above the request (NaN without a request)"),
    _c("cpu_share_at_limit", "float", "Share of pod-steps with CPU at or above the limit (throttled); 0 without a limit"),
    _c("cpu_slack", "float", "(request - usage) / request over the pod-steps (NaN without a request)"),
    _c("cpu_mean_cores", "float", "Mean CPU usage over the test days' pod-steps, cores"),
    _c("cpu_pod_steps", "float", "Pod-steps of CPU data in the test days"),
    _c("memory_share_over_request", "float", "Share of pod-steps with the working set above the memory request"),
    _c("memory_share_at_limit", "float", "Share of pod-steps with the working set at or above the memory limit"),
    _c("memory_slack", "float", "(request - working set) / request over the pod-steps"),
    _c("memory_mean_bytes", "float", "Mean working set over the test days' pod-steps, bytes"),
    _c("memory_pod_steps", "float", "Pod-steps of working-set data in the test days"),
    _c("memory_peak_bytes", "float", "Largest raw working-set sample of the test days, bytes"),
    _c("predicted_oom", "bool", "That peak reaches the memory limit: the container would have been OOM-killed"),
    _c("predicted_oom_day", "datetime", "The first test day (start of the 24 h bin, UTC) whose peak reaches the limit (empty: none)"),
    _c("oom_kills", "float", "OOM kills observed in the test days under today's limits (NaN without the metrics to tell)"),
    _c("memory_censored", "bool", "OOM-killed in the test days under today's limit: the peak is a lower bound, a higher limit cannot be replayed"),
    _c("heap_bytes", "float", "JVM: the heap maximum replayed, bytes (NaN: not a JVM, or unknown)"),
    _c("predicted_heap_oom", "bool", "JVM: the test days' live set outgrows that heap (a Java OutOfMemoryError, not a container OOM kill)"),
    _c("memory_heap_aware", "bool", "JVM whose heap the recommendation changes: memory_peak_bytes is that heap plus the test days' "
       "non-heap peak (the working set was measured under another heap), memory slack and shares unknown"),
]

MARGIN_COLUMNS: list[Column] = [
    _c("policy", "str", "Policy the containers are under"),
    _c("resource", "str", "'cpu' or 'memory'"),
    _c("pattern", "str", "Usage pattern the training days give them: flat, diurnal, bursty, growing (analysis/patterns.py)"),
    _c("margin", "float", "Candidate margin, a fraction, applied to every pattern of every policy"),
    _c("containers", "int", "Containers of the pattern with a recommendation and test-day usage"),
    _c("predicted_ooms", "int", "Of them, predicted OOM kills in the replayed days (memory)"),
    _c("throttled", "int", "Of them, at the recommended CPU limit more than the policy's throttling_threshold (CPU)"),
    _c("slack", "float", "(request - usage) / request over their pod-steps, weighted by request x steps"),
    _c("over_request", "float", "Share of their pod-steps above the recommended request"),
    _c("share", "float", "The share the policy's request statistic leaves above it (p95: 0.05, max: 0)"),
    _c("chosen", "bool", "The smallest margin with no predicted OOM kill, no throttled container and over_request within share"),
]
