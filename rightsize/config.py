"""Configuration: every key declared once below; load + validate config.toml into frozen dataclasses.

Every key is optional. ``rightsize config`` prints the documented defaults, and the shipped
config.toml is exactly that output (a test keeps them equal).
"""
from __future__ import annotations

import dataclasses
import os
import tomllib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .refs import FORMS as WORKLOAD_FORMS
from .refs import WorkloadRef
from .settings import fields_of, key_rows, parse_value, render_toml, section, setting, table_list, table_map

from .usage_stats import BASES, DEFAULT_BASIS, StatisticName

MAX_WINDOW_SECONDS = 3650 * 86400.0  # ten years: beyond any store's retention, and within what datetimes hold


@dataclass(frozen=True)
class GeneralConfig:
    cluster_name: str = setting("default", "Name of the cluster when only one is collected (part of every identity).", kind="str")
    window: float = setting("14d", "Usage window looked back from now.", kind="duration", unit="seconds", positive=True, maximum=MAX_WINDOW_SECONDS)
    step: float = setting("5m", "Resolution at which each pod's usage is read inside the window: its CPU rate and working set at every step; every statistic is computed from those samples. Keep it equal to [prometheus] rate_window so the CPU rate windows tile the window exactly (every sample counted once); memory maxima are taken from every raw sample whatever the step. At most window.", kind="duration", unit="seconds", minimum=1)
    hours_per_month: float = setting(730.0, "Hours used to turn hourly prices into monthly figures.", kind="float", unit="hours", minimum=1)
    lock_wait: float = setting("60s", "How long a run waits for another rightsize process writing the same output folder (a lock file beside the folder) before it fails naming that process; 0 = fail at once.", kind="duration", unit="seconds", minimum=0)
    lock_lease: float = setting("2m", "The lease of a lock on an s3:// output (an object beside its prefix): the run holding it rewrites it every quarter of this (30 s) while it lives, and a lock not rewritten for this long is a dead run's and is taken over (S3 has no kernel to release a lock), so a killed run blocks the next one for at most this long.", kind="duration", unit="seconds", positive=True)


@dataclass(frozen=True)
class MetricNames:
    cpu_usage: str = setting("container_cpu_usage_seconds_total", "cAdvisor CPU counter (seconds).", kind="str")
    memory_working_set: str = setting("container_memory_working_set_bytes", "cAdvisor working set gauge (bytes).", kind="str")
    cpu_throttled_periods: str = setting("container_cpu_cfs_throttled_periods_total", "cAdvisor throttled CFS periods counter.", kind="str")
    cpu_periods: str = setting("container_cpu_cfs_periods_total", "cAdvisor CFS periods counter.", kind="str")
    cpu_throttled_seconds: str = setting("container_cpu_cfs_throttled_seconds_total", "cAdvisor throttled time counter (seconds): the CPU time a limit held back.", kind="str")
    resource_requests: str = setting("kube_pod_container_resource_requests", "kube-state-metrics container requests.", kind="str")
    resource_limits: str = setting("kube_pod_container_resource_limits", "kube-state-metrics container limits.", kind="str")
    container_info: str = setting("kube_pod_container_info", "kube-state-metrics container info: its image label lets [injectors] images recognise an injected sidecar (Prometheus-only inventory).", kind="str")
    init_resource_requests: str = setting("kube_pod_init_container_resource_requests", "kube-state-metrics init container requests (native sidecars among them).", kind="str")
    init_resource_limits: str = setting("kube_pod_init_container_resource_limits", "kube-state-metrics init container limits.", kind="str")
    init_container_info: str = setting("kube_pod_init_container_info", "kube-state-metrics init container info: its restart_policy label (Always = a native sidecar) needs kube-state-metrics 2.10 or later.", kind="str")
    pod_owner: str = setting("kube_pod_owner", "kube-state-metrics pod owner.", kind="str")
    replicaset_owner: str = setting("kube_replicaset_owner", "kube-state-metrics ReplicaSet owner.", kind="str")
    job_owner: str = setting("kube_job_owner", "kube-state-metrics Job owner (CronJob resolution).", kind="str")
    pod_info: str = setting("kube_pod_info", "kube-state-metrics pod info (node).", kind="str")
    pod_start_time: str = setting("kube_pod_start_time", "kube-state-metrics pod start time (unix seconds): pod lifetimes.", kind="str")
    pod_completion_time: str = setting("kube_pod_completion_time", "kube-state-metrics pod completion time (unix seconds): lifetimes of finished pods.", kind="str")
    pod_labels: str = setting("kube_pod_labels", "kube-state-metrics pod labels (only those its --metric-labels-allowlist allows): batch-framework groups.", kind="str")
    node_labels: str = setting("kube_node_labels", "kube-state-metrics node labels.", kind="str")
    node_allocatable: str = setting("kube_node_status_allocatable", "kube-state-metrics node allocatable (CPU, memory, GPUs).", kind="str")
    node_capacity: str = setting("kube_node_status_capacity", "kube-state-metrics node capacity (read for GPUs).", kind="str")
    last_terminated_reason: str = setting("kube_pod_container_status_last_terminated_reason", "kube-state-metrics last termination reason.", kind="str")
    restarts: str = setting("kube_pod_container_status_restarts_total", "kube-state-metrics restarts counter.", kind="str")
    hpa_spec_target: str = setting("kube_horizontalpodautoscaler_spec_target_metric", "kube-state-metrics HPA target metric.", kind="str")
    hpa_info: str = setting("kube_horizontalpodautoscaler_info", "kube-state-metrics HPA info (scale target).", kind="str")
    pdb_desired_healthy: str = setting("kube_poddisruptionbudget_status_desired_healthy", "kube-state-metrics PDB desired healthy pods.", kind="str")
    pdb_expected_pods: str = setting("kube_poddisruptionbudget_status_expected_pods", "kube-state-metrics PDB expected pods.", kind="str")
    gpu_engine_active: str = setting("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "NVIDIA DCGM exporter: share of the time a GPU's graphics/compute engine was active (ratio 0-1; a profiling metric, off on some GPUs and setups).", kind="str")
    gpu_utilization: str = setting("DCGM_FI_DEV_GPU_UTIL", "NVIDIA DCGM exporter: GPU utilization (percent 0-100), read where the profiling metric is missing.", kind="str")
    gpu_fb_used: str = setting("DCGM_FI_DEV_FB_USED", "NVIDIA DCGM exporter: frame buffer (GPU memory) used, MiB.", kind="str")
    gpu_fb_free: str = setting("DCGM_FI_DEV_FB_FREE", "NVIDIA DCGM exporter: frame buffer free, MiB (used + free = the GPU's memory).", kind="str")
    istio_tcp_sent: str = setting("istio_tcp_sent_bytes_total", "Istio TCP bytes sent during the response (server -> client).", kind="str")
    istio_tcp_received: str = setting("istio_tcp_received_bytes_total", "Istio TCP bytes received during the request (client -> server).", kind="str")
    istio_request_bytes: str = setting("istio_request_bytes_sum", "Istio HTTP/gRPC request body and header bytes (sum of the histogram).", kind="str")
    istio_response_bytes: str = setting("istio_response_bytes_sum", "Istio HTTP/gRPC response body and header bytes (sum of the histogram).", kind="str")


@dataclass(frozen=True)
class LabelNames:
    namespace: str = setting("namespace", "Namespace label.", kind="str")
    pod: str = setting("pod", "Pod label.", kind="str")
    container: str = setting("container", "Container label.", kind="str")
    node: str = setting("node", "Node label (kube_pod_info, kube_node_*).", kind="str")
    zone: str = setting("label_topology_kubernetes_io_zone", "Zone label on kube_node_labels.", kind="str")
    region: str = setting("label_topology_kubernetes_io_region", "Region label on kube_node_labels.", kind="str")
    instance_type: str = setting("label_node_kubernetes_io_instance_type", "Instance type label on kube_node_labels.", kind="str")
    capacity_type_eks: str = setting("label_eks_amazonaws_com_capacity_type", "EKS managed node group capacity type label.", kind="str")
    capacity_type_karpenter: str = setting("label_karpenter_sh_capacity_type", "Karpenter capacity type label.", kind="str")
    node_group: str = setting("label_eks_amazonaws_com_nodegroup", "EKS managed node group label on kube_node_labels: a node's group when it has it.", kind="str")
    node_pool: str = setting("label_karpenter_sh_nodepool", "Karpenter NodePool label on kube_node_labels: a node's group when it has no EKS node group label.", kind="str")
    gpu_model: str = setting("modelName", "GPU model label on the DCGM exporter's series (its pod labels are namespace, pod and container as above, or exported_namespace, exported_pod, exported_container when Prometheus scrapes the exporter with honor_labels off: both are read).", kind="str")
    gpu_product: str = setting("label_nvidia_com_gpu_product", "GPU model label on kube_node_labels (NVIDIA GPU feature discovery's nvidia.com/gpu.product; kube-state-metrics exports it when --metric-labels-allowlist names it).", kind="str")
    source_workload: str = setting("source_workload", "Istio source workload label.", kind="str")
    source_namespace: str = setting("source_workload_namespace", "Istio source namespace label.", kind="str")
    destination_workload: str = setting("destination_workload", "Istio destination workload label.", kind="str")
    destination_namespace: str = setting("destination_workload_namespace", "Istio destination namespace label.", kind="str")
    source_zone: str = setting("source_zone", "Zone of the source pod on traffic metrics, when the mesh adds it.", kind="str")
    destination_zone: str = setting("destination_zone", "Zone of the destination pod on traffic metrics, when present.", kind="str")
    owner_kind: str = setting("owner_kind", "Owner kind label on kube_pod_owner / kube_replicaset_owner / kube_job_owner.", kind="str")
    owner_name: str = setting("owner_name", "Owner name label on the same metrics.", kind="str")
    replicaset: str = setting("replicaset", "ReplicaSet name label on kube_replicaset_owner.", kind="str")
    job: str = setting("job_name", "Job name label on kube_job_owner.", kind="str")


@dataclass(frozen=True)
class RuntimeMetricNames:
    jvm_memory_used: str = setting("jvm_memory_used_bytes", "JVM memory in use by area (heap, nonheap) and pool id (Micrometer / Spring Boot Actuator, Prometheus client_java 1.x).", kind="str")
    jvm_memory_committed: str = setting("jvm_memory_committed_bytes", "JVM memory committed by area and pool id (Micrometer).", kind="str")
    jvm_memory_max: str = setting("jvm_memory_max_bytes", "JVM memory maximum by area and pool id (Micrometer; -1 for a pool without one).", kind="str")
    jvm_gc_live_data: str = setting("jvm_gc_live_data_size_bytes", "JVM heap in use after the last full collection (Micrometer): the live set.", kind="str")
    jmx_memory_used: str = setting("jvm_memory_bytes_used", "JVM memory in use by area (the JMX exporter, client_java 0.x hotspot metrics).", kind="str")
    jmx_memory_committed: str = setting("jvm_memory_bytes_committed", "JVM memory committed by area (the JMX exporter).", kind="str")
    jmx_memory_max: str = setting("jvm_memory_bytes_max", "JVM memory maximum by area (the JMX exporter).", kind="str")
    go_heap_inuse: str = setting("go_memstats_heap_inuse_bytes", "Go heap in use (client_golang).", kind="str")
    go_memory_limit: str = setting("go_gc_gomemlimit_bytes", "Go's soft memory limit, GOMEMLIMIT (client_golang; math.MaxInt64 when unset).", kind="str")
    node_heap_used: str = setting("nodejs_heap_size_used_bytes", "V8 heap in use (prom-client).", kind="str")
    node_heap_total: str = setting("nodejs_heap_size_total_bytes", "V8 heap allocated (prom-client).", kind="str")
    dotnet_heap_size: str = setting("dotnet_gc_heap_size_bytes", ".NET GC heap by generation (prometheus-net.DotNetRuntime).", kind="str")
    dotnet_total_available: str = setting("dotnet_gc_memory_total_available_bytes", "Memory the .NET GC may use: its hard limit when one is set (prometheus-net.DotNetRuntime).", kind="str")
    otel_dotnet_heap_size: str = setting("process_runtime_dotnet_gc_heap_size_bytes", ".NET GC heap by generation (OpenTelemetry runtime instrumentation).", kind="str")
    otel_dotnet_committed: str = setting("process_runtime_dotnet_gc_committed_memory_size_bytes", ".NET GC committed memory (OpenTelemetry runtime instrumentation).", kind="str")


@dataclass(frozen=True)
class PrometheusConfig:
    url: str = setting("http://127.0.0.1:9090", "Base URL of the Prometheus-compatible API, with any path prefix (e.g. /prometheus for Mimir). No credentials in it: use username + password_env, or token_env / token_file.", kind="url")
    token_env: str = setting("RIGHTSIZE_PROMETHEUS_TOKEN", "Environment variable holding a bearer token (never put the token in this file).", kind="str")
    token_file: str = setting("", "File holding a bearer token (e.g. a mounted service account token).", kind="str")
    username: str = setting("", "Basic auth user name.", kind="str")
    password_env: str = setting("RIGHTSIZE_PROMETHEUS_PASSWORD", "Environment variable holding the basic auth password.", kind="str")
    auth: str = setting("none", "Request signing: none, or sigv4 for Amazon Managed Service for Prometheus (AMP): every request is signed with botocore's SigV4 signer (service aps) using the default AWS credential chain (environment, profile, IRSA web identity, EKS Pod Identity), or the role in role_arn assumed from it. With sigv4, url is the workspace's https://aps-workspaces.REGION.amazonaws.com/workspaces/ID and no token or basic auth is sent.", kind="str", choices=("none", "sigv4"))
    region: str = setting("", "AWS region of the AMP workspace for sigv4; empty takes it from the url (aps-workspaces.REGION.amazonaws.com), else from the AWS environment (AWS_REGION, profile).", kind="str")
    role_arn: str = setting("", "IAM role to assume (STS AssumeRole, credentials refreshed before they expire) for sigv4, e.g. a role in the account of the workspace; empty signs with the default credential chain itself.", kind="str")
    headers: dict = setting({}, "Extra HTTP headers, e.g. {\"X-Scope-OrgID\" = \"tenant-a\"} for Mimir.", kind="dict")
    query_params: dict = setting({}, "Extra query parameters on every request, e.g. {partial_response = \"false\", dedup = \"true\"} for Thanos.", kind="dict")
    ca_bundle: str = setting("", "CA bundle file for TLS; empty uses the system store.", kind="str")
    verify_tls: bool = setting(True, "Verify the server's TLS certificate.", kind="bool")
    timeout: float = setting("5m", "Timeout of one HTTP request.", kind="duration", unit="seconds", positive=True)
    retries: int = setting(3, "Retries on connection errors and 5xx answers, with exponential backoff.", kind="int", minimum=0)
    backoff: float = setting(0.5, "Backoff factor between retries.", kind="float", unit="seconds", minimum=0)
    concurrency: int = setting(2, "Requests in flight at once (keep at or below the server's cores).", kind="int", minimum=1)
    rate_window: float = setting("5m", "Window of rate() over the CPU counter.", kind="duration", unit="seconds", minimum=1)
    compression: str = setting("auto", "gzip asks the server to compress answers (a range query's answer shrinks 3-4x, which matters over a slow link, but compressing costs the server about 1 s of CPU per 15 MB); none is faster on a fast network. auto: none for loopback and in-cluster service addresses (no dot in the host, or ending in .svc / .cluster.local), gzip otherwise.", kind="str", choices=("auto", "gzip", "none"))
    max_answer_bytes: float = setting("256Mi", "Largest answer one request may bring (a memory quantity): a larger one is not read further and is split like a timeout (smaller time chunks, then namespaces), or fails naming this setting when it cannot be split, so a runaway answer cannot take the process' memory. A range query of range_points points is about 30 bytes a point (18 MB at the default).", kind="memory", unit="bytes", positive=True)
    range_points: int = setting(600_000, "Points one range query may return (container series x steps): each pod's usage is pulled in time chunks and namespace shards of at most this many points, so the server holds one chunk per request (Prometheus about 160 bytes per point while it answers) and rightsize one answer per worker (about 30 bytes per point). Keep it under the server's per-query sample limit (Prometheus --query.max-samples, 50000000 by default; VictoriaMetrics -search.maxSamplesPerQuery).", kind="int", minimum=1000)
    istio_reporter: str = setting("destination", "Which Istio proxy's counts are read: both sidecars report every request, so one reporter is used for every metric family (destination: the server side, as Kiali does; source: the client side, which also sees calls to services outside the mesh).", kind="str", choices=("destination", "source"))
    container_filter: str = setting('container!="",container!="POD"', "Label matchers that select real containers in cAdvisor and kube-state-metrics series.", kind="str")
    scrape_labels: tuple = setting(["job", "instance", "service", "endpoint", "metrics_path", "prometheus", "prometheus_replica"], "Labels that only tell scrapes apart: series of one container that differ only in these (a kubelet scraped by two jobs) are one series seen twice, counted once (the max of the duplicates), with a warning naming the jobs.", kind="list")
    namespaces: tuple = setting([], "Only these namespaces (empty = all).", kind="list")
    exclude_namespaces: tuple = setting(["kube-system"], "Namespaces never collected.", kind="list")
    cluster_label: str = setting("", "Label that names the cluster on every series in a multi-cluster store (e.g. \"cluster\"); empty = one cluster.", kind="str")
    clusters: tuple = setting([], "With cluster_label: the clusters to collect (empty = discover from the label's values).", kind="list")
    end: str = setting("", "End of the usage window as an RFC 3339 UTC time (e.g. \"2026-11-16T00:00:00Z\"); empty = now. Makes a run reproducible.", kind="time")
    metrics: MetricNames = section(MetricNames, "Metric names, as cAdvisor, kube-state-metrics and Istio export them.")
    labels: LabelNames = section(LabelNames, "Label names.")
    runtime_metrics: RuntimeMetricNames = section(RuntimeMetricNames, "Metric names of the runtimes' own memory (JVM, Go, Node.js, .NET), read per pod when present (see README \"Runtimes\").")


@dataclass(frozen=True)
class KubernetesConfig:
    source: str = setting("auto", "Where workload specs come from: auto (api if a kubeconfig or service account is found, else prometheus), api, manifests, or prometheus (kube-state-metrics only).", kind="str", choices=("auto", "api", "manifests", "prometheus"))
    kubeconfig: str = setting("", "Kubeconfig file; empty uses KUBECONFIG / ~/.kube/config, or the in-cluster service account.", kind="str")
    context: str = setting("", "Kubeconfig context; empty uses the current one.", kind="str")
    manifests: str = setting("", "Folder or YAML file of manifests (kubectl kustomize / helm template output works).", kind="str")
    page_size: int = setting(500, "Objects per list call (pagination).", kind="int", minimum=1)
    ignore_annotation: str = setting("rightsize.io/ignore", "Annotation that opts a workload out when \"true\".", kind="str")
    policy_annotation: str = setting("rightsize.io/policy", "Annotation that picks a policy for one workload.", kind="str")
    spot_annotation: str = setting("rightsize.io/spot", "Annotation with \"true\" (opt in) or \"false\" (opt out) of spot.", kind="str")
    checkpoint_annotation: str = setting("rightsize.io/checkpoints", "Annotation or label that says a workload checkpoints its work (\"true\"): a GPU training job that resumes after a spot interruption, which makes spot suit it.", kind="str")
    team_label: str = setting("team", "Label naming the owning team, used to group reports.", kind="str")
    timeout: float = setting("60s", "Timeout of one API list call.", kind="duration", unit="seconds", positive=True)
    retries: int = setting(3, "Retries of an API call on connection errors and 5xx answers, with exponential backoff.", kind="int", minimum=0)
    backoff: float = setting(0.5, "Backoff factor between API retries.", kind="float", unit="seconds", minimum=0)
    default_namespace: str = setting("default", "Namespace of a manifest object that names none.", kind="str")


@dataclass(frozen=True)
class BatchGroupsConfig:
    argo_workflows: tuple = setting(["workflows.argoproj.io/workflow"], "Pod labels naming an Argo Workflows pod's group (kind ArgoWorkflow): the workflow's name without its run suffix (the CronWorkflow's timestamp or generateName's 5 characters), then the template from the pod's name (<workflow>-<template>-<id>); empty = not grouped.", kind="list")
    airflow: tuple = setting(["dag_id", "task_id"], "Pod labels naming an Airflow KubernetesPodOperator pod's group (kind AirflowTask); empty = not grouped.", kind="list")
    spark: tuple = setting(["spark-app-name", "spark-role"], "Pod labels naming a Spark driver's or executor's group (kind SparkApplication); empty = not grouped.", kind="list")
    tekton: tuple = setting(["tekton.dev/task"], "Pod labels naming a Tekton TaskRun pod's group (kind TektonTask); empty = not grouped.", kind="list")


@dataclass(frozen=True)
class PricingConfig:
    source: str = setting("auto", "auto (AWS if credentials are found, else offline), aws, or offline (bundled list prices).", kind="str", choices=("auto", "aws", "offline"))
    region: str = setting("", "AWS region; empty takes it from the nodes' topology.kubernetes.io/region label.", kind="str")
    cache_dir: str = setting("~/.cache/rightsize", "Where AWS price answers are cached.", kind="str")
    cache_ttl: float = setting("7d", "How long cached prices are used (0 = no cache).", kind="duration", unit="seconds", minimum=0)
    max_attempts: int = setting(5, "Attempts per AWS call; botocore's standard retry mode backs off on throttling and transient errors.", kind="int", minimum=1)
    connect_timeout: float = setting("5s", "Time to open a connection to an AWS endpoint.", kind="duration", unit="seconds", positive=True)
    read_timeout: float = setting("20s", "Time to wait for an AWS answer once connected.", kind="duration", unit="seconds", positive=True)
    deadline: float = setting("1m", "Time the whole live price lookup may take; past it, source = \"auto\" uses the bundled offline prices (flagged in the report) and \"aws\" fails.", kind="duration", unit="seconds", positive=True)
    cpu_ram_price_ratio: float = setting(7.5, "How many times more one vCPU-hour costs than one GiB-hour when a node's price is split: price = vCPUs x c + GiB x m with c = ratio x m (OpenCost's default CPU 0.031611 and RAM 0.004237 USD/hour give about 7.46).", kind="float", minimum=0.01)
    on_demand_discount: float = setting(0.0, "Discount on on-demand prices (Savings Plans, RIs, EDP), as a fraction 0..1.", kind="float", minimum=0, maximum=1)
    spot_discount: float = setting(0.0, "Extra discount on spot prices, as a fraction 0..1.", kind="float", minimum=0, maximum=1)
    instance_prices: dict = setting({}, "Explicit on-demand USD/hour per instance type, e.g. {\"m5.large\" = 0.07}; wins over every source.", kind="float_dict")
    spot_instance_prices: dict = setting({}, "Explicit spot USD/hour per instance type.", kind="float_dict")
    gpu_usd_per_hour: dict = setting({}, "Explicit USD per GPU-hour per GPU instance type, e.g. {\"p4d.24xlarge\" = 1.5}: the GPU part of a node of that type costs its GPUs x this (its spot price the same share of the spot price), CPU and memory the rest. Applied when analyzing (no new collect needed).", kind="float_dict")
    gpu_reference_types: dict = setting({}, "The general-purpose instance type whose unit prices CPU and memory take on the nodes of a GPU family, by family, e.g. {g7e = \"m7i.xlarge\"}; merged over the declared table (rightsize/data/gpu_families.csv: the general-purpose family on the same host processor). A GPU family in neither uses m7i.xlarge and the report says so.", kind="dict")
    gpu_discount: float = setting(0.0, "Extra discount on the GPU part of GPU instances' prices (a GPU-specific commitment or private rate), as a fraction 0..1, on top of on_demand_discount / spot_discount. Applied when analyzing.", kind="float", minimum=0, maximum=1)
    inter_az_usd_per_gb: float = setting(0.01, "Inter-AZ transfer price in each direction (a crossing byte pays it twice).", kind="float", unit="USD/GB", minimum=0)
    load_balancer_usd_per_hour: float = setting(0.0225, "Fixed hourly price of one NLB/ALB.", kind="float", unit="USD/hour", minimum=0)


@dataclass(frozen=True)
class Policy:
    production: bool = setting(True, "Containers under this policy count as production: [thresholds] fail_on_production_oom_risk, the report and spot read it from here (never from namespace names).", kind="bool")
    cpu_request_percentile: str = setting("p95", "Usage statistic the CPU request is based on: max or any percentile pNN (p50, p90, p95, p99 are precomputed; others, e.g. p97 or p99.5, come from the snapshot's histograms).", kind="statistic")
    memory_request_percentile: str = setting("max", "Usage statistic the memory request is based on (as cpu_request_percentile).", kind="statistic")
    per_replica: str = setting(DEFAULT_BASIS, "How the replicas of a container are combined: pooled (every replica's samples in one distribution, as VPA does; does not grow with the replica count), max_over_pods (each pod's own statistic, the largest over pods, as KRR does), busiest (the busiest replica at each step; grows with the replica count).", kind="str", choices=tuple(BASES))
    usage_half_life: float = setting("0s", "Weigh recent days more: each day's samples count 0.5 ^ (age / this), as VPA decays its histogram (VPA uses 24h); 0s = every sample of the window counts the same.", kind="duration", unit="seconds")
    margin: float = setting(0.15, "Headroom added on top of the statistic, as a fraction, for every usage pattern that margins does not name.", kind="float", minimum=0)
    margins: dict = setting({}, "Headroom per usage pattern (flat, diurnal, bursty, growing: analysis/patterns.py), as fractions, keyed cpu_flat, cpu_diurnal, cpu_bursty, memory_flat, memory_diurnal, memory_bursty, memory_growing (a growing working set's projected peak gets memory_growing); a pattern it leaves out gets margin. production and non_production come with the margins the backtest chose (README: How margins were chosen); a policy table, what-if or --policy that sets margin without margins uses that margin for every pattern.", kind="margins")
    cpu_limit: str = setting("unset", "CPU limit: unset (recommend none; an existing one is kept proportional), proportional (keep the current limit:request ratio), factor (request x cpu_limit_factor), remove (recommend removing it).", kind="str", choices=("unset", "proportional", "factor", "remove"))
    cpu_limit_factor: float = setting(4.0, "CPU limit = request x this, with cpu_limit = \"factor\".", kind="float", minimum=1)
    memory_limit: str = setting("request", "Memory limit: request (equal to the request), margin (the request holds the statistic and its floors without the margin, the limit = the statistic x (1 + its pattern's margin), never below the request: the margin guards against OOM kills where it kills, at the limit, and the scheduler reserves no more than the observed peak), factor (request x memory_limit_factor), proportional.", kind="str", choices=("request", "margin", "factor", "proportional"))
    memory_limit_factor: float = setting(2.0, "Memory limit = request x this, with memory_limit = \"factor\".", kind="float", minimum=1)
    min_cpu: float = setting("10m", "Smallest CPU request recommended.", kind="cpu", unit="cores", minimum=0)
    min_memory: float = setting("16Mi", "Smallest memory request recommended.", kind="memory", unit="bytes", minimum=0)
    max_cpu: float = setting("", "Largest CPU request; empty = the largest node's allocatable.", kind="cpu", unit="cores", positive=True)
    max_memory: float = setting("", "Largest memory request; empty = the largest node's allocatable.", kind="memory", unit="bytes", positive=True)
    min_history: float = setting("3d", "Less usage history than this gives no recommendation.", kind="duration", unit="seconds", minimum=0)
    min_samples: int = setting(100, "Fewer samples than this gives no recommendation.", kind="int", minimum=1)
    full_confidence_history: float = setting("7d", "History at which the margin stops being widened for short histories (confidence 'high' from here).", kind="duration", unit="seconds", positive=True)
    medium_confidence_history: float = setting("5d", "History from which confidence is 'medium' (below it: 'low'). At most full_confidence_history.", kind="duration", unit="seconds", minimum=0)
    confidence_multiplier: float = setting(1.0, "VPA-style widening for short histories: requests x ((1 + this/days) / (1 + this/full_days)) ^ confidence_exponent.", kind="float", minimum=0)
    confidence_exponent: float = setting(1.0, "Exponent of that widening factor.", kind="float", minimum=0)
    memory_request_covers_max: bool = setting(True, "Memory request >= the observed max working set (production: limit = request, so the request must hold the peak). Off for non-production, where only the limit must cover the peak and requests pack nodes.", kind="bool")
    oom_bump_factor: float = setting(1.2, "OOM-killed containers get memory >= peak x this ...", kind="float", minimum=1)
    oom_bump_min: float = setting("100Mi", "... and >= peak + this (VPA's bump: the floor of the OOM rule, not the whole rule).", kind="memory", unit="bytes", minimum=0)
    oom_escalation: float = setting(1.5, "An OOM-killed container's observed peak and current limit are lower bounds of its demand: a spike gets memory >= that bound x (1 + this x ln(1 + kills per week per replica)), so 1 kill in 2 weeks gives x1.6 and 1 a week or more reaches oom_max_factor. Chosen on benchmarks/recommend_bench.py --sweep: spikes there reach 1.2-1.8x the limit whatever the kill rate, and 1.5 is the smallest value that leaves none of them below.", kind="float", minimum=0)
    oom_max_factor: float = setting(2.0, "Cap of that escalation, times the lower bound (a leak is projected instead, capped only by the largest node).", kind="float", minimum=1)
    oom_horizon: float = setting("7d", "How long new memory should hold: an OOM-killed leak (working set climbing to the limit between restarts) and a growing working set (analysis/growth.py) are projected over their pods' life, at most this long (the weekly run's cadence).", kind="duration", unit="seconds")
    memory_growth_limit: str = setting("unset", "A container whose working set grows with its pods' age and that has no memory limit today: unset leaves it without one (flag memory_growth, with the growth in MiB/day and the projected peak), projected sets the limit to the projected peak over oom_horizon (x 1 + its margin). unset by default: a projection is an estimate, and a limit below the real climb would OOM-kill a container that never died; its request holds the projected peak where memory_request_covers_max. A growing container with a limit today gets a limit at least its projected peak (an OOM-killed one: the OOM rule's own leak projection).", kind="str", choices=("unset", "projected"))
    throttling_threshold: float = setting(0.05, "Share of CFS periods throttled above which a container counts as throttled: its CPU usage is a lower bound of its demand, the limit is raised or removed. 5% rather than kube-prometheus' 25% alert: from 5% on the p95 the request is sized from is the limit itself (censored), and 1 period in 20 already stalls every request that spans it by up to 100 ms minus the quota.", kind="float", minimum=0, maximum=1)
    throttled_limit_action: str = setting("raise", "What to do with the CPU limit of a throttled container.", kind="str", choices=("raise", "remove"))
    throttled_limit_raise: float = setting(0.5, "A throttled CPU limit that is raised grows by at least this fraction of the current limit.", kind="float", minimum=0)
    throttled_excess_default: float = setting(0.5, "Without container_cpu_cfs_throttled_seconds_total, the CPU a throttled container wanted above its limit in a throttled period is taken as this fraction of the limit (with it, it is measured).", kind="float", minimum=0)
    cpu_limit_covers_max: bool = setting(False, "A recommended CPU limit is never below the observed max CPU usage (always never below the p99). On for non-production, where limits are request x cpu_limit_factor and a build's peak must not be throttled.", kind="bool")
    allow_hpa_request_change: bool = setting(False, "Size a request an HPA scales on like any other and leave the HPA's target alone (the scaling point moves with the request); wins over hpa_request.", kind="bool")
    hpa_request: str = setting("co_adjust", "A request an HPA scales on (CPU or memory utilization): co_adjust changes it together with the HPA's target so the scaling point stays (target x old pod request = new target x new pod request; the HPA change is its own patch), keep leaves it as it is.", kind="str", choices=("co_adjust", "keep"))
    hpa_target_min: float = setting(50.0, "Lowest HPA target utilization co_adjust proposes, percent (below it the scaling point rises instead).", kind="float", unit="percent", minimum=1, maximum=100)
    hpa_target_max: float = setting(90.0, "Highest HPA target utilization co_adjust proposes, percent (above it the request is raised to keep the scaling point).", kind="float", unit="percent", minimum=1, maximum=100)
    change_threshold: float = setting(0.10, "Do not propose changes smaller than this fraction ...", kind="float", minimum=0)
    change_threshold_cpu: float = setting("10m", "... or smaller than this CPU ...", kind="cpu", unit="cores", minimum=0)
    change_threshold_memory: float = setting("32Mi", "... or smaller than this memory.", kind="memory", unit="bytes", minimum=0)
    # runtimes (README "Runtimes"): a JVM's heap and a Go, Node.js or .NET runtime limit move with the memory limit
    heap_target_occupancy: float = setting(0.7, "JVM with runtime metrics: heap = the live set's p99 (heap in use after a full collection) / this, so the heap is this full after a collection at the live set's p99.", kind="float", minimum=0.05, maximum=1)
    go_memory_limit_share: float = setting(0.9, "Go: GOMEMLIMIT = this share of the recommended memory limit, where a literal GOMEMLIMIT is set (the rest is memory outside Go's accounting).", kind="float", minimum=0.05, maximum=1)
    node_heap_share: float = setting(0.75, "Node.js: --max-old-space-size = this share of the recommended memory limit, where NODE_OPTIONS sets it (V8's other spaces, buffers and native memory live outside it).", kind="float", minimum=0.05, maximum=1)
    dotnet_heap_share: float = setting(0.75, ".NET: DOTNET_GCHeapHardLimit = this share of the recommended memory limit, where it is set (.NET's own default in a container is 75 %).", kind="float", minimum=0.05, maximum=1)
    # GPUs (README "GPUs"): the rules of analysis/rules/gpu.py
    gpu_idle_below: float = setting(0.05, "A GPU container whose engine active p95 (every replica's samples over the window) is below this share of the time is idle: its GPUs can go.", kind="float", minimum=0, maximum=1)
    gpu_memory_margin: float = setting(0.2, "Headroom above the peak frame buffer (GPU memory) that a MIG slice, a time-sliced share or a smaller GPU must hold, as a fraction (running out of GPU memory kills the process).", kind="float", minimum=0)
    gpu_time_slices: int = setting(4, "Most pods time-slicing or MPS puts on one GPU that has no MIG (T4, L4, A10G, L40S): a GPU's compute is shared, its memory is not isolated.", kind="int", minimum=2)
    gpu_smaller_below: float = setting(0.5, "A smaller (cheaper) GPU is proposed only when the engine active p95 is below this share: a smaller GPU is usually slower, so run a benchmark before moving.", kind="float", minimum=0, maximum=1)

    def __post_init__(self) -> None:
        # A policy built in code (the non-production default, the API, tests) holds parsed statistics too.
        for name in ("cpu_request_percentile", "memory_request_percentile"):
            object.__setattr__(self, name, StatisticName(getattr(self, name)))


def _default_policies() -> dict:
    # margins per usage pattern: the smallest the backtest found safe (README "How margins were chosen")
    return {
        "production": Policy(memory_limit="margin", margins=dict(cpu_flat=0.0, cpu_diurnal=0.0, cpu_bursty=0.0, memory_flat=0.25, memory_diurnal=0.25,
                                                           memory_bursty=0.25, memory_growing=0.05)),
        "non_production": Policy(
            production=False, cpu_request_percentile="p50", memory_request_percentile="p90",
            cpu_limit="factor", memory_limit="factor", memory_request_covers_max=False, cpu_limit_covers_max=True,
            margins=dict(cpu_flat=0.0, cpu_diurnal=0.0, cpu_bursty=0.0, memory_flat=0.0, memory_diurnal=0.0, memory_bursty=0.05, memory_growing=0.3)),
    }


def policy_values(values: dict) -> dict:
    """Values set on a policy (config table, what-if, --policy): margin without margins is that margin for every pattern."""
    return {**values, "margins": {}} if "margin" in values and "margins" not in values else values


@dataclass(frozen=True)
class Injector:
    containers: tuple = setting([], "Names (shell globs) of the container the injector adds to each pod, e.g. [\"istio-proxy\"]. A container so named that the workload's spec (API or manifests) does not declare is the injector's: it is sized through the annotations below on the pod template, never patched into the containers list (kustomize would add a container without an image). With the kube-state-metrics inventory, which knows no spec, the name alone decides.", kind="list")
    images: tuple = setting([], "Images (shell globs) of that container, for an inventory that records images.", kind="list")
    cpu_request: str = setting("", "Pod template annotation that sets the injected container's CPU request (empty: the injector has none).", kind="str")
    cpu_limit: str = setting("", "Annotation for its CPU limit.", kind="str")
    memory_request: str = setting("", "Annotation for its memory request.", kind="str")
    memory_limit: str = setting("", "Annotation for its memory limit.", kind="str")
    global_setting: str = setting("", "Where the injector's mesh-wide default resources are set, named in PATCHES.md's mesh-wide summary.", kind="str")


def _default_injectors() -> dict:
    return {
        "istio": Injector(containers=("istio-proxy",), images=("*/proxyv2:*", "*/proxyv2"),
                          cpu_request="sidecar.istio.io/proxyCPU", cpu_limit="sidecar.istio.io/proxyCPULimit",
                          memory_request="sidecar.istio.io/proxyMemory", memory_limit="sidecar.istio.io/proxyMemoryLimit",
                          global_setting="Istio's values.global.proxy.resources (istiod Helm values or IstioOperator)"),
        "linkerd": Injector(containers=("linkerd-proxy",), images=("*/linkerd/proxy:*",),
                            cpu_request="config.linkerd.io/proxy-cpu-request", cpu_limit="config.linkerd.io/proxy-cpu-limit",
                            memory_request="config.linkerd.io/proxy-memory-request",
                            memory_limit="config.linkerd.io/proxy-memory-limit",
                            global_setting="Linkerd's proxy.resources (linkerd-control-plane Helm values)"),
    }


@dataclass(frozen=True)
class PolicyRule:
    policy: str = setting("non_production", "Policy applied to the namespaces this rule matches.", kind="str")
    namespaces: tuple = setting([], "Namespace name patterns (shell globs).", kind="list")
    namespace_labels: dict = setting({}, "Namespace labels that must all match.", kind="dict")


@dataclass(frozen=True)
class WorkloadOverride:
    workload: str = setting("", f"The workload: {WORKLOAD_FORMS} (kind case-insensitive; without the cluster it applies in every cluster).", kind="str")
    policy: str = setting("", "Policy for this workload; empty keeps the namespace's policy.", kind="str")
    ignore: bool = setting(False, "Skip this workload entirely.", kind="bool")


@dataclass(frozen=True)
class RecommendConfig:
    default_policy: str = setting("production", "Policy for namespaces no rule matches.", kind="str")
    non_production_namespaces: tuple = setting(["dev", "dev-*", "*-dev", "staging", "staging-*", "*-staging", "test", "test-*", "*-test", "ci", "ci-*", "preview-*"], "Shortcut: namespaces (globs) that get the non_production policy.", kind="list")
    non_production_labels: dict = setting({}, "Shortcut: namespace labels that mark non-production, e.g. {environment = \"staging\"}.", kind="dict")
    over_provisioned_factor: float = setting(2.0, "A request more than this times the recommendation is flagged over-provisioned.", kind="float", minimum=1)
    self_check_days: int = setting(7, "After recommending, replay this many last days of the window against the recommendation (the backtest's replay, on the same snapshot): a memory limit their largest raw sample reaches, or a CPU limit they sit at more than the policy's throttling_threshold of the pod-steps, is raised to the smallest value that passes (flag raised_by_backtest, with the evidence). 0 = no self-check.", kind="int", minimum=0)


@dataclass(frozen=True)
class SpotConfig:
    max_grace_seconds: float = setting(120.0, "Termination grace above this does not fit the 2-minute spot notice.", kind="float", unit="seconds", minimum=0)
    ready_score: int = setting(70, "Score at or above which a workload is spot-ready (if nothing blocks it).", kind="int", minimum=0, maximum=100)
    already_on_spot_share: float = setting(0.9, "Share of a workload's pod-hours on spot nodes from which it counts as already on spot.", kind="float", minimum=0, maximum=1)


@dataclass(frozen=True)
class CrossAzConfig:
    top_n: int = setting(10, "Pairs shown in the report.", kind="int", minimum=1)
    min_usd_per_month: float = setting(1.0, "Pairs cheaper than this are left out of the top list.", kind="float", unit="USD/month", minimum=0)
    kubernetes_version: str = setting("", "Cluster's Kubernetes version (e.g. \"1.31\") for the fix text; empty = from the snapshot, else both fixes are named.", kind="str")
    min_endpoints_per_zone: float = setting(3.0, "Endpoints per zone below which topology-aware routing is flagged as fragile (no overload protection).", kind="float", unit="pods", minimum=0)


@dataclass(frozen=True)
class ReportConfig:
    output_dir: str = setting("reports", "Root folder, or an S3 prefix (s3://bucket/prefix); each run writes <output_dir>/<layout>/, e.g. reports/2026-W47/.", kind="str")
    layout: str = setting("{week}", "Folder of each run below output_dir, from {week} (ISO year-week, e.g. 2026-W47) and {cluster} ([general] cluster_name). One job per cluster writing to one bucket: \"{week}/{cluster}\"; the previous week's report is found by the {week} part.", kind="str")
    top_n: int = setting(10, "Rows in the report's top lists.", kind="int", minimum=1)
    charts: bool = setting(True, "Draw matplotlib charts into report.html.", kind="bool")
    backtest_days: int = setting(7, "Days at the end of the window the report's backtest replays against a recommendation made without them (backtest.csv, the report's backtest section); 0 = no backtest in the report (rightsize backtest still runs it).", kind="int", minimum=0)


@dataclass(frozen=True)
class ThresholdConfig:
    fail_on_production_oom_risk: bool = setting(False, "Exit 3 when any production container is at OOM risk.", kind="bool")
    fail_on_savings_usd_per_month: float = setting(float("inf"), "Exit 3 when total monthly savings exceed this (inf = never).", kind="float", unit="USD/month", minimum=0, infinite=True)
    fail_on_missing_clusters: float = setting(float("inf"), "Exit 3 when more clusters than this are missing or stale in a fleet report (inf = never; 0 = every expected cluster must be there).", kind="float", unit="clusters", minimum=0, infinite=True)


@dataclass(frozen=True)
class FleetConfig:
    clusters: tuple = setting([], "Clusters a fleet report expects (rightsize report --snapshot on a folder or S3 prefix of cluster snapshots); one without a complete snapshot is listed as missing. Empty: those of the previous week's folder are expected.", kind="list")
    max_age: float = setting("3d", "A cluster snapshot whose window ended more than this before the newest one of the fleet is stale: listed as missing and left out of the totals; 0 = never stale.", kind="duration", unit="seconds", minimum=0)


@dataclass(frozen=True)
class PatchConfig:
    layout: str = setting("{cluster}/{namespace}", "Folder of each patch below patches/, from {cluster} and {namespace}.", kind="str")
    include_init_containers: bool = setting(True, "Patch init containers too when they have a recommendation.", kind="bool")
    resources: tuple = setting([], "Resources each generated kustomization.yaml lists (paths relative to its folder, {cluster} and {namespace} allowed), e.g. [\"../../../deploy/{namespace}\"]; empty = patches only, add your base yourself.", kind="list")
    overlay_folder: str = setting("rightsize", "Folder inside an overlay (--overlay) that holds rightsize's patch files.", kind="str")
    kustomize_command: str = setting("kubectl kustomize", "Command that renders a kustomization folder (its path is appended), e.g. \"kustomize build\": for --overlay and its check, and for a manifests folder holding a kustomization.yaml (replaces [kubernetes] kustomize_command, still read with a warning).", kind="str")
    kustomize_timeout: float = setting("2m", "Time one kustomize render may take (--overlay, manifests).", kind="duration", unit="seconds", positive=True)


@dataclass(frozen=True)
class NotifyConfig:
    url_env: str = setting("", "Environment variable holding the chat webhook's URL (the URL is a secret: never put it in this file); empty = no notification. report and run post the week's summary (money, OOM risks, the top changes, a link to the report) once the report is written; a post that still fails after its retries exits 1 and leaves the report as written.", kind="str")
    format: str = setting("slack", "Payload of the webhook: slack (an incoming webhook: blocks with plain-text names), teams (a Teams Workflows webhook: an Adaptive Card), or generic (the figures as JSON, for any receiver).", kind="str", choices=("slack", "teams", "generic"))
    report_url: str = setting("", "Link to the report in the message, from {week} and {cluster}, e.g. \"https://reports.example.internal/{week}/{cluster}/report.html\"; empty = the report folder's path.", kind="str")
    top_n: int = setting(5, "Changes (largest savings) and OOM risks listed in the message.", kind="int", minimum=0)
    timeout: float = setting("10s", "Timeout of one webhook request.", kind="duration", unit="seconds", positive=True)
    retries: int = setting(3, "Retries of the webhook on connection errors, 429 and 5xx answers (Retry-After honoured), with exponential backoff.", kind="int", minimum=0)
    backoff: float = setting(1.0, "Backoff factor between webhook retries.", kind="float", unit="seconds", minimum=0)


@dataclass(frozen=True)
class ClusterEntry:
    name: str = setting("", "Cluster name (required).", kind="str")
    prometheus_url: str = setting("", "This cluster's metrics URL; empty uses [prometheus] url with cluster_label.", kind="optional_url")
    token_env: str = setting("", "Environment variable with this cluster's bearer token.", kind="str")
    headers: dict = setting({}, "Extra headers for this cluster's metrics requests.", kind="dict")
    label_value: str = setting("", "Value of [prometheus] cluster_label for this cluster; empty = name.", kind="str")
    context: str = setting("", "Kubeconfig context for this cluster.", kind="str")
    manifests: str = setting("", "Manifests for this cluster.", kind="str")


@dataclass(frozen=True)
class Config:
    general: GeneralConfig = section(GeneralConfig, "General settings.")
    prometheus: PrometheusConfig = section(PrometheusConfig, "The Prometheus-compatible metrics API (Prometheus, Thanos Query, Mimir, VictoriaMetrics).")
    kubernetes: KubernetesConfig = section(KubernetesConfig, "Workload specs: Kubernetes API or manifests.")
    batch_groups: BatchGroupsConfig = section(BatchGroupsConfig, "Pods that batch frameworks start without a Kubernetes controller (Argo Workflows, Airflow's KubernetesPodOperator, Spark, Tekton) are grouped by these pod labels into one workload per template or task, costed at the pods they ran like CronJobs. With kube-state-metrics, its --metric-labels-allowlist=pods=[...] must export them.")
    pricing: PricingConfig = section(PricingConfig, "Prices (AWS or the bundled offline catalogue) and the cost model.")
    recommend: RecommendConfig = section(RecommendConfig, "Which policy applies where.")
    policies: dict = table_map(Policy, "Recommendation policies by name; production and non_production exist by default.", _default_policies)
    injectors: dict = table_map(Injector, "Sidecar injectors by name (istio and linkerd exist by default; add e.g. [injectors.vault] with containers = [\"vault-agent\"] and the vault.hashicorp.com/agent-requests-cpu family): how an injected container is recognised and which pod template annotations size it.", _default_injectors, item="Injector")
    policy_rules: tuple = table_list(PolicyRule, "Extra rules mapping namespaces to policies, first match wins (before the shortcuts in [recommend]).")
    overrides: tuple = table_list(WorkloadOverride, "Per-workload overrides.")
    spot: SpotConfig = section(SpotConfig, "Spot suitability.")
    cross_az: CrossAzConfig = section(CrossAzConfig, "Cross-AZ traffic cost.")
    report: ReportConfig = section(ReportConfig, "Reports.")
    thresholds: ThresholdConfig = section(ThresholdConfig, "CI thresholds: exit code 3 when a finding crosses one.")
    patches: PatchConfig = section(PatchConfig, "Kustomize patches.")
    fleet: FleetConfig = section(FleetConfig, "Fleet reports: one report merged from the snapshots of many clusters.")
    notify: NotifyConfig = section(NotifyConfig, "Delivery: the week's summary posted to a chat webhook (Slack, Teams or generic JSON).")
    clusters: tuple = table_list(ClusterEntry, "Several clusters in one run, each with its own metrics and specs.")

    def policy(self, name: str) -> Policy:
        """The policy called ``name``; ConfigError when it is not declared."""
        try:
            return self.policies[name]
        except KeyError:
            raise ConfigError(f"config: unknown policy {name!r}; declared: {', '.join(sorted(self.policies))}") from None


def _build(cls, raw: dict, where: str, path: str, base: Any = None):
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: [{where}] must be a table, got {raw!r}")
    declared = {f.name: f for f in fields_of(cls)}
    unknown = sorted(set(raw) - set(declared))
    if unknown:
        raise ConfigError(
            f"{path}: unknown key {unknown[0]!r} in [{where or 'top level'}]; known keys: {', '.join(sorted(declared))}"
        )
    values = {}
    for name, value in raw.items():
        f = declared[name]
        kind = f.metadata["kind"]
        key = f"{where}.{name}" if where else name
        if kind == "section":
            values[name] = _build(f.metadata["cls"], value, key, path, getattr(base, name) if base else None)
        elif kind == "table_map":
            if not isinstance(value, dict):
                raise ConfigError(f"{path}: [{key}] must be a table of tables")
            merged = dict(getattr(base, name) if base else f.default_factory())
            for sub, subraw in value.items():
                merged[sub] = _build(f.metadata["cls"], subraw, f"{key}.{sub}", path, merged.get(sub))
            values[name] = merged
        elif kind == "table_list":
            if not isinstance(value, list):
                raise ConfigError(f"{path}: {key} must be an array of tables ([[{key}]])")
            values[name] = tuple(_build(f.metadata["cls"], item, f"{key}[{i}]", path) for i, item in enumerate(value))
        else:
            try:
                values[name] = parse_value(f.metadata, value)
            except ValueError as exc:
                raise ConfigError(f"{path}: {key}: {exc}") from None
    start = base if base is not None else cls()
    return dataclasses.replace(start, **(policy_values(values) if cls is Policy else values))


# Renamed keys: (section, old key) -> (section, key). A file that still sets the old key loads as if it set
# the new one, with a ConfigDeprecationWarning; setting both to different values is an error.
DEPRECATED_KEYS = {("kubernetes", "kustomize_command"): ("patches", "kustomize_command")}


class ConfigDeprecationWarning(FutureWarning):
    """A config file uses a deprecated key (FutureWarning: Python shows it to end users by default)."""


def _renamed(raw: dict, path: str) -> dict:
    """``raw`` with every deprecated key moved to its new place (one warning each)."""
    for (old_sec, old_key), (new_sec, new_key) in DEPRECATED_KEYS.items():
        old, new = raw.get(old_sec), raw.get(new_sec, {})
        if not isinstance(old, dict) or old_key not in old or not isinstance(new, dict):
            continue  # absent, or a malformed section that _build reports
        if new_key in new and new[new_key] != old[old_key]:
            raise ConfigError(f"{path}: {old_sec}.{old_key} is a deprecated name of {new_sec}.{new_key} and the two "
                              f"differ ({old[old_key]!r} vs {new[new_key]!r}); keep only {new_sec}.{new_key}")
        raw = {**raw, old_sec: {k: v for k, v in old.items() if k != old_key}, new_sec: {new_key: old[old_key], **new}}
        warnings.warn(f"{path}: {old_sec}.{old_key} is deprecated, use {new_sec}.{new_key} (read as that for now)",
                      ConfigDeprecationWarning, stacklevel=3)
    return raw


def load_config(path: str | os.PathLike | None, *, required: bool = False) -> Config:
    """Load and validate a config file. A missing file gives the defaults unless ``required``.

    Raises ConfigError naming the file, the key and what was expected.
    """
    if path is None:
        return Config()
    p = Path(path)
    if not p.exists():
        if required:
            raise ConfigError(f"{p}: config file not found")
        return Config()
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
                          "save the config as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read config: {exc.strerror}") from None
    config = _build(Config, _renamed(raw, str(p)), "", str(p))
    _check_references(config, str(p))
    check_consistency(config, str(p))
    return config


def _check_references(config: Config, path: str) -> None:
    for i, rule in enumerate(config.policy_rules):
        if rule.policy not in config.policies:
            raise ConfigError(f"{path}: policy_rules[{i}].policy: unknown policy {rule.policy!r}")
    for i, o in enumerate(config.overrides):
        if o.policy and o.policy not in config.policies:
            raise ConfigError(f"{path}: overrides[{i}].policy: unknown policy {o.policy!r}")
        WorkloadRef.parse(o.workload, what=f"{path}: overrides[{i}].workload")
    for name, pol in config.policies.items():
        if pol.hpa_target_min > pol.hpa_target_max:
            raise ConfigError(f"{path}: policies.{name}.hpa_target_min ({pol.hpa_target_min:g}) is above "
                              f"hpa_target_max ({pol.hpa_target_max:g})")
    if config.recommend.default_policy not in config.policies:
        raise ConfigError(f"{path}: recommend.default_policy: unknown policy {config.recommend.default_policy!r}")
    for i, c in enumerate(config.clusters):
        if not c.name:
            raise ConfigError(f"{path}: clusters[{i}].name is required")
    _check_cluster_names(config, path)


def _check_cluster_names(config: Config, path: str) -> None:
    """Cluster names become folder names, identities and report text: each must be a valid name, once."""
    from .names import cluster_name_problem

    named = [("general.cluster_name", config.general.cluster_name)]
    named += [(f"clusters[{i}].name", c.name) for i, c in enumerate(config.clusters)]
    named += [(f"prometheus.clusters[{i}]", n) for i, n in enumerate(config.prometheus.clusters)]
    named += [(f"fleet.clusters[{i}]", n) for i, n in enumerate(config.fleet.clusters)]
    for key, name in named:
        problem = cluster_name_problem(name)
        if problem:
            raise ConfigError(f"{path}: {key}: {problem}")
    for group in ("clusters[", "prometheus.clusters[", "fleet.clusters["):
        seen: dict[str, str] = {}
        for key, name in named:
            if key.startswith(group):
                if name in seen:
                    raise ConfigError(f"{path}: {key}: cluster {name!r} is listed twice (also {seen[name]}); "
                                      "its containers would count twice")
                seen[name] = key


def check_files(config: Config, path: str = "config") -> None:
    """The files the config names (token, CA bundle, kubeconfig, manifests) exist and can be read: checked by
    `config --check` and before a collection starts, so a run fails on them before any query."""
    p, k = config.prometheus, config.kubernetes
    files = [("prometheus.token_file", p.token_file, False), ("prometheus.ca_bundle", p.ca_bundle, False),
             ("kubernetes.kubeconfig", k.kubeconfig, False), ("kubernetes.manifests", k.manifests, True)]
    files += [(f"clusters[{i}].manifests", c.manifests, True) for i, c in enumerate(config.clusters)]
    for key, name, folder_ok in files:
        if not name:
            continue
        target = Path(os.path.expanduser(name))
        if not (target.is_file() or (folder_ok and target.is_dir())):
            raise ConfigError(f"{path}: {key}: {name}: no such {'file or folder' if folder_ok else 'file'}")
        if not os.access(target, os.R_OK):
            raise ConfigError(f"{path}: {key}: {name}: cannot be read (permission denied)")


def check_consistency(config: Config, path: str = "config") -> None:
    """Checks across keys, so that `config --check` rejects what a run would reject later."""
    from .folders import layout_problem, overlay_folder_problem
    from .settings import label_matchers_problem, name_problem

    g = config.general
    if g.step > g.window:
        raise ConfigError(f"{path}: general.step ({g.step:g} s) must be at most general.window ({g.window:g} s)")
    for name, pol in config.policies.items():
        key = f"policies.{name}"
        for lo, hi in (("min_cpu", "max_cpu"), ("min_memory", "max_memory"),
                       ("medium_confidence_history", "full_confidence_history")):
            if getattr(pol, lo) > getattr(pol, hi):  # False when the maximum is unset (NaN)
                raise ConfigError(f"{path}: {key}.{lo} must be at most {key}.{hi}")
    problems = [("report.layout", layout_problem(config.report.layout, ("week", "cluster"), "output_dir")),
                ("patches.layout", layout_problem(config.patches.layout)),
                ("patches.overlay_folder", overlay_folder_problem(config.patches.overlay_folder)),
                ("notify.report_url", layout_problem(config.notify.report_url, ("week", "cluster"), "its URL")),
                ("prometheus.container_filter", label_matchers_problem(config.prometheus.container_filter))]
    problems += [(f"prometheus.metrics.{f.name}", name_problem(getattr(config.prometheus.metrics, f.name), metric=True))
                 for f in fields_of(MetricNames)]
    problems += [(f"prometheus.labels.{f.name}", name_problem(getattr(config.prometheus.labels, f.name)))
                 for f in fields_of(LabelNames)]
    problems += [(f"prometheus.runtime_metrics.{f.name}", name_problem(getattr(config.prometheus.runtime_metrics, f.name), metric=True))
                 for f in fields_of(RuntimeMetricNames)]
    if config.prometheus.cluster_label:
        problems.append(("prometheus.cluster_label", name_problem(config.prometheus.cluster_label)))
    problems += [(f"prometheus.scrape_labels[{i}]", name_problem(n)) for i, n in enumerate(config.prometheus.scrape_labels)]
    problems += _aws_problems(config)
    problems += _header_problems(config)
    for key, problem in problems:
        if problem:
            raise ConfigError(f"{path}: {key}: {problem}")


def _header_problems(config: Config) -> list[tuple[str, str]]:
    """(key, problem) of every header that HTTP cannot carry (a CR/LF, a character outside Latin-1)."""
    from .settings import header_problem

    out = [("prometheus.headers", header_problem(str(k), str(v))) for k, v in config.prometheus.headers.items()]
    out += [(f"clusters[{i}].headers", header_problem(str(k), str(v)))
            for i, c in enumerate(config.clusters) for k, v in c.headers.items()]
    return out


def _aws_problems(config: Config) -> list[tuple[str, str]]:
    """(key, problem) of the AMP signing and S3 output settings ('' when fine)."""
    from .aws_client import REGION, ROLE_ARN
    from .storage import S3Error, location

    p = config.prometheus
    sigv4 = p.auth == "sigv4"
    problems = [
        ("prometheus.region", f"{p.region!r} is not an AWS region like \"eu-west-1\"" if p.region and not REGION.fullmatch(p.region) else ""),
        ("prometheus.role_arn", f"{p.role_arn!r} is not an IAM role ARN like \"arn:aws:iam::123456789012:role/NAME\""
         if p.role_arn and not ROLE_ARN.fullmatch(p.role_arn) else ""),
        ("prometheus.role_arn", "is only used with auth = \"sigv4\"" if p.role_arn and not sigv4 else ""),
        ("prometheus.username", "auth = \"sigv4\" signs every request with AWS credentials: remove username (basic auth)"
         if sigv4 and p.username else ""),
        ("prometheus.token_file", "auth = \"sigv4\" signs every request with AWS credentials: remove token_file"
         if sigv4 and p.token_file else ""),
    ]
    try:
        location(config.report.output_dir)  # a malformed s3:// URL is refused here, before a run
    except S3Error as exc:
        problems.append(("report.output_dir", str(exc)))
    return problems


_INTRO = (
    "# rightsize configuration. Every key is optional; the values shown are the defaults.",
    "# Quantities use Kubernetes notation (\"250m\", \"512Mi\"), durations Prometheus notation (\"5m\", \"14d\").",
    "# Secrets never go here: tokens and passwords are read from the environment variables named below.",
)


def render_config(config: Config | None = None) -> str:
    """The documented config.toml: every key with its help, unit and (default) value."""
    return render_toml(config or Config(), _INTRO)


def help_for_keys() -> list[tuple[str, str, str, str]]:
    """(key, default, expected, help) for every scalar setting, for CLI help and the README."""
    return key_rows(Config())
