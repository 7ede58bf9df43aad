"""PromQL / MetricsQL query building: label escaping and the fixed query set of one collection.

Every label value that goes into a selector passes through :func:`quote` (string literal) or
:func:`regex_alternation` (literal values inside ``=~``), so no namespace name or config value can
change the shape of a query.

The heavy queries are plain: each pod's CPU rate and working set at the step, as range queries,
with no join and no aggregation across pods (the server's cheap work is reading samples; per-step
joins and ``max by`` across replicas are its expensive work). Everything else is a handful of
instant queries that touch each series once (``increase``, ``last_over_time`` over the window), or
the series API (an index lookup that reads no sample). Owners, requests and statistics are joined
and computed in rightsize.

Engine differences that matter here (Prometheus vs VictoriaMetrics' MetricsQL):
- ``rate()``: Prometheus extrapolates to the window edges; MetricsQL does not extrapolate and uses
  the last sample *before* the window as the starting point. On a regular scrape grid both give
  (C(t) - C(t-window)) / window; they differ only where a series starts or stops inside the window.
- Range selectors: Prometheus 2.x windows are closed ``[t-w, t]``, MetricsQL's are left-open
  ``(t-w, t]``: a sample exactly on the left edge counts in Prometheus only (harmless for the
  maxima and increases taken here).
- Subqueries: we always write the step explicitly (``[1d:5m]``) so both engines evaluate the same grid.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ...config import PrometheusConfig
from ...errors import ConfigError
from ...gpu_resources import KSM_PATTERN as GPU_RESOURCES
from ...quantity import format_duration as dur
from ...settings import label_matchers_problem, name_problem



def quote(value: str) -> str:
    """``value`` as a double-quoted PromQL string literal (backslash, quote and newlines escaped)."""
    out = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{out}"'


def regex_literal(value: str) -> str:
    """``value`` escaped for RE2 so it matches only itself (Go's RE2 accepts ``\\`` before any punctuation)."""
    return re.sub(r"([\\.+*?()|\[\]{}^$#&~\-\s/])", r"\\\1", str(value))


def regex_alternation(values) -> str:
    """A quoted ``=~`` operand matching exactly the given literal values."""
    return quote("|".join(regex_literal(v) for v in values))


def check_matchers(text: str, key: str) -> str:
    """Validate a config fragment of label matchers (``a="x",b!~"y"``); ConfigError names the key."""
    problem = label_matchers_problem(text)
    if problem:
        raise ConfigError(f"config: prometheus.{key}: {problem}")
    return text.strip()


def check_name(value: str, key: str, metric: bool = False) -> str:
    problem = name_problem(value, metric)
    if problem:
        raise ConfigError(f"config: prometheus.{key}: {problem}")
    return value


@dataclass(frozen=True)
class Queries:
    """The fixed query set for one cluster; ``namespaces`` arguments select one shard (None = all)."""

    cfg: PrometheusConfig
    window: float  # seconds
    step: float  # seconds
    cluster_value: str = ""  # value of cfg.cluster_label selecting this cluster ('' = none)

    def __post_init__(self):
        m, lab = self.cfg.metrics, self.cfg.labels
        for k in m.__dataclass_fields__:
            check_name(getattr(m, k), f"metrics.{k}", metric=True)
        for k in lab.__dataclass_fields__:
            check_name(getattr(lab, k), f"labels.{k}")
        if self.cfg.cluster_label:
            check_name(self.cfg.cluster_label, "cluster_label")
        check_matchers(self.cfg.container_filter, "container_filter")

    # --- selectors --------------------------------------------------------------------------------
    def base(self, namespaces=None) -> str:
        """Matchers common to every selector: the cluster and the namespaces of this shard."""
        parts = []
        if self.cfg.cluster_label and self.cluster_value:
            parts.append(f"{self.cfg.cluster_label}={quote(self.cluster_value)}")
        ns = self.cfg.labels.namespace
        if namespaces is not None:
            parts.append(f"{ns}=~{regex_alternation(sorted(namespaces))}")
        else:
            if self.cfg.namespaces:
                parts.append(f"{ns}=~{regex_alternation(self.cfg.namespaces)}")
            if self.cfg.exclude_namespaces:
                parts.append(f"{ns}!~{regex_alternation(self.cfg.exclude_namespaces)}")
        return ",".join(parts)

    def sel(self, metric: str, namespaces=None, extra: str = "", containers: bool = False) -> str:
        parts = [p for p in (self.base(namespaces), self.cfg.container_filter.strip() if containers else "", extra) if p]
        return f"{metric}{{{','.join(parts)}}}"

    def cluster_sel(self, metric: str, extra: str = "") -> str:
        parts = [f"{self.cfg.cluster_label}={quote(self.cluster_value)}"] if self.cfg.cluster_label and self.cluster_value else []
        return f"{metric}{{{','.join(parts + ([extra] if extra else []))}}}"

    @property
    def W(self) -> str:
        return dur(self.window)

    @property
    def S(self) -> str:
        return dur(self.step)

    @property
    def pod_key(self) -> str:
        L = self.cfg.labels
        return f"{L.namespace}, {L.pod}, {L.container}"

    # --- the per-pod samples (range queries) ------------------------------------------------------
    def usage(self, resource: str, namespaces, extra: str = "") -> str:
        """Each container instance's CPU rate (cores) or working set (bytes) as a plain range query
        (``extra``: more label matchers, e.g. some pods). Duplicate series of one container (several
        cAdvisor label sets) are folded by rightsize."""
        m = self.cfg.metrics
        if resource == "cpu":
            return f"rate({self.sel(m.cpu_usage, namespaces, extra, containers=True)}[{dur(self.cfg.rate_window)}])"
        return self.sel(m.memory_working_set, namespaces, extra, containers=True)

    def daily_parts(self, namespaces, span: float) -> dict[str, str]:
        """Per container instance and per ``span`` seconds (evaluate at step = span): the largest raw
        working-set sample, its raw sample count (pod lifetimes, lifetimes.py), the restarts, and ``oom`` (1 where
        the last termination reason was OOMKilled in the span: that span's restarts are OOM kills, joined by
        pulls._daily_rows), by the ``stat`` each part is tagged with. Asked one part per request: the server's
        heap then holds one part's series over the window, not all of them (benchmarks/collect_bench.py)."""
        m, K = self.cfg.metrics, self.pod_key
        wss = self.sel(m.memory_working_set, namespaces, containers=True)
        rst = self.sel(m.restarts, namespaces, containers=True)
        oom = self.sel(m.last_terminated_reason, namespaces, containers=True, extra='reason="OOMKilled"')
        # OOM kills are the span's restarts of a container whose last termination reason was OOMKilled in
        # it, joined in rightsize: "restarts and on (...) (oom)" in PromQL would read the restarts counter a
        # second time (0.46 of 2.1 server CPU-seconds per shard at 10,000 containers). "> 0" skips the
        # 0-valued reason series older kube-state-metrics export; max folds duplicate exporters
        parts = {
            "memory_max": f"max by ({K}) (max_over_time({wss}[{dur(span)}]))",
            "raw_samples": f"max by ({K}) (count_over_time({wss}[{dur(span)}]))",
            # a restart starts a new working set: it resets the growth analysis/growth.py fits
            "restarts": f"max by ({K}) (increase({rst}[{dur(span)}]))",
            "oom": f"max by ({K}) (max_over_time({oom}[{dur(span)}])) > 0",
        }
        return parts

    # --- per container instance, over the window (instant queries) ---------------------------------
    def per_pod_parts(self, namespaces, inventory: bool, times: tuple[str, ...] = ()) -> dict[str, str]:
        """Restarts, CFS periods, throttled periods and seconds (and, for the kube-state-metrics
        inventory, requests and limits) per container instance over the window, and per pod the last
        value of each metric of ``times`` (kube_pod_start_time, kube_pod_completion_time: stat = the
        metric's name), by the ``stat`` each part is tagged with (one part per request, as :meth:`daily_parts`)."""
        m, K, W = self.cfg.metrics, self.pod_key, self.W

        def inc(metric):  # a series scraped twice (scrape_labels apart) counts once, then a container's series add up
            once = f"max without ({', '.join(self.cfg.scrape_labels)}) " if self.cfg.scrape_labels else ""
            return f"sum by ({K}) ({once}(increase({self.sel(metric, namespaces, containers=True)}[{W}])))"

        rst = self.sel(m.restarts, namespaces, containers=True)
        parts = {
            # one read of the counter (max_over_time - min_over_time read it twice: 0.44 against 0.22 server
            # CPU-seconds at 1,000 containers, benchmarks/collect_bench.py); increase() extrapolates to the
            # window's edges by a fraction of a scrape interval, so round() gives back the whole restarts
            "restarts": f"round(max by ({K}) (increase({rst}[{W}])))",
            "cfs_periods": inc(m.cpu_periods),
            "cfs_throttled_periods": inc(m.cpu_throttled_periods),
            "cfs_throttled_seconds": inc(m.cpu_throttled_seconds),
        }
        L = self.cfg.labels
        for metric in times:
            parts[metric] = f"max by ({L.namespace}, {L.pod}) (last_over_time({self.sel(metric, namespaces)}[{W}]))"
        if inventory:
            for stat, metric in (("request", m.resource_requests), ("limit", m.resource_limits),
                                 ("init_request", m.init_resource_requests), ("init_limit", m.init_resource_limits)):
                s = self.sel(metric, namespaces, containers=True, extra=f"resource=~{quote('cpu|memory|' + GPU_RESOURCES)}")
                parts[stat] = f"max by ({K}, resource) (last_over_time({s}[{W}]))"
            # a container's image, carried in the resource label (an injected sidecar's image, for [injectors])
            image = f"max by ({K}, image) (last_over_time({self.sel(m.container_info, namespaces, containers=True)}[{W}]))"
            parts["image"] = f'max by ({K}, resource) (label_replace({image}, "resource", "$1", "image", "(.*)"))'
            # an init container's restart policy, carried in the resource label (Always = a native sidecar)
            info = f"max by ({K}, restart_policy) (last_over_time({self.sel(m.init_container_info, namespaces, containers=True)}[{W}]))"
            parts["init_info"] = f'max by ({K}, resource) (label_replace({info}, "resource", "$1", "restart_policy", "(.*)"))'
        return parts

    # --- the runtimes' own memory (a range query at a one-hour step) --------------------------------
    def runtime(self, namespaces, present: set[str]) -> str:
        """Per container instance and hour (evaluate at step = 1h), tagged ``stat="<runtime>:<column>"`` (the
        columns of the runtime_hourly table): only the families in ``present`` (metric names found in the
        window). Every part reads raw samples over [1h]; pools are folded per pod with ``max by (pod key, pool)``
        (duplicate scrapes) and summed; non-heap is the hour's highest working set minus its lowest committed
        heap, for the pods with a JVM heap only. No subquery: the joins run once per hour, not per step."""
        parts = self.runtime_parts(namespaces, present)
        return tagged(parts) if parts else ""

    def runtime_parts(self, namespaces, present: set[str]) -> dict[str, str]:
        """The parts of :meth:`runtime` by tag."""
        parts: dict[str, str] = {}
        for runtime, build in (("jvm", self._jvm_parts), ("go", self._go_parts), ("node", self._node_parts),
                               ("dotnet", self._dotnet_parts)):
            parts.update({f"{runtime}:{col}": q for col, q in build(namespaces, present).items()})
        return parts

    def _hour(self, agg: str, metric: str, namespaces, extra: str = "", pool: str = "", over: str = "max",
              positive: bool = False) -> str:
        """``agg by (pod key)`` of each series' ``over``_over_time over the hour; with ``pool``, first the largest
        per (pod key, pool) so a pod scraped twice counts once; ``positive`` keeps values above 0 only."""
        K = self.pod_key
        inner = f"{over}_over_time({self.sel(metric, namespaces, extra)}[1h])"
        if pool:
            inner = f"max by ({K}, {pool}) ({inner})"
        return f"{agg} by ({K}) ({inner}{' > 0' if positive else ''})"

    def _either(self, present: set[str], *options: tuple[str, str]) -> str:
        """``a or b`` of the (metric, query) options whose metric is present ('' when none is)."""
        return " or ".join(f"({q})" for metric, q in options if metric in present)

    def _jvm_parts(self, namespaces, present: set[str]) -> dict[str, str]:
        r, K = self.cfg.runtime_metrics, self.pod_key
        heap, nonheap = 'area="heap"', 'area="nonheap"'

        def area(over, micrometer, jmx, where, positive=False):  # positive: Micrometer's max is -1 for a pool without one
            return self._either(present, (micrometer, self._hour("sum", micrometer, namespaces, where, "id", over, positive)),
                                (jmx, self._hour("max", jmx, namespaces, where, "", over, positive)))

        parts = {
            "heap_used_min_bytes": area("min", r.jvm_memory_used, r.jmx_memory_used, heap),
            "heap_used_max_bytes": area("max", r.jvm_memory_used, r.jmx_memory_used, heap),
            "heap_committed_max_bytes": area("max", r.jvm_memory_committed, r.jmx_memory_committed, heap),
            "runtime_max_bytes": area("max", r.jvm_memory_max, r.jmx_memory_max, heap, positive=True),
            "non_heap_pools_max_bytes": area("max", r.jvm_memory_used, r.jmx_memory_used, nonheap),
            "live_set_max_bytes": self._either(present, (r.jvm_gc_live_data, self._hour("max", r.jvm_gc_live_data, namespaces))),
        }
        committed = area("min", r.jvm_memory_committed, r.jmx_memory_committed, heap)
        if committed:  # the working set is a core metric (without it there is no collection)
            top = f"max by ({K}) (max_over_time({self.sel(self.cfg.metrics.memory_working_set, namespaces, containers=True)}[1h]))"
            parts["non_heap_max_bytes"] = f"{top} - on ({K}) ({committed})"
        return _present(parts)

    def _go_parts(self, namespaces, present: set[str]) -> dict[str, str]:
        r = self.cfg.runtime_metrics
        return _present({
            "heap_used_max_bytes": self._either(present, (r.go_heap_inuse, self._hour("max", r.go_heap_inuse, namespaces))),
            "runtime_max_bytes": self._either(present, (r.go_memory_limit, self._hour("max", r.go_memory_limit, namespaces))),
        })

    def _node_parts(self, namespaces, present: set[str]) -> dict[str, str]:
        r = self.cfg.runtime_metrics
        return _present({
            "heap_used_max_bytes": self._either(present, (r.node_heap_used, self._hour("max", r.node_heap_used, namespaces))),
            "heap_committed_max_bytes": self._either(present, (r.node_heap_total, self._hour("max", r.node_heap_total, namespaces))),
        })

    def _dotnet_parts(self, namespaces, present: set[str]) -> dict[str, str]:
        r = self.cfg.runtime_metrics
        return _present({
            "heap_used_max_bytes": self._either(
                present, (r.dotnet_heap_size, self._hour("sum", r.dotnet_heap_size, namespaces, pool="gc_generation")),
                (r.otel_dotnet_heap_size, self._hour("sum", r.otel_dotnet_heap_size, namespaces, pool="generation"))),
            "heap_committed_max_bytes": self._either(
                present, (r.otel_dotnet_committed, self._hour("max", r.otel_dotnet_committed, namespaces))),
            "runtime_max_bytes": self._either(
                present, (r.dotnet_total_available, self._hour("max", r.dotnet_total_available, namespaces))),
        })

    def owners_and_series(self, namespaces=None, group_labels: tuple[str, ...] = ()) -> list[str]:
        """Series-API matchers: pod owners, ReplicaSet and Job owners, pod placement (node), the
        working-set series (to size shards), and the pod labels of batch-framework pods (one matcher per
        ``group_labels`` entry: the kube-state-metrics label each framework's pods must carry). An index
        lookup: no sample is read."""
        m = self.cfg.metrics
        labels = [self.sel(m.pod_labels, namespaces, extra=f'{k}!=""') for k in group_labels]
        return [self.sel(m.pod_owner, namespaces), self.sel(m.replicaset_owner, namespaces), self.sel(m.job_owner, namespaces),
                self.sel(m.pod_info, namespaces), self.sel(m.memory_working_set, namespaces, containers=True), *labels]

    # --- GPUs: NVIDIA's DCGM exporter, cluster-wide (its namespace label may be the exporter's own) -----
    def gpu_series(self) -> list[str]:
        """Series-API matchers of the DCGM frame-buffer series: which pods have GPUs, their GPU models."""
        return [self.cluster_sel(self.cfg.metrics.gpu_fb_used)]

    def _gpu_pod_labels(self, expr: str) -> str:
        """``expr`` with the pod labels of the pod a GPU serves: the exporter's exported_namespace /
        exported_pod / exported_container where Prometheus renamed them (honor_labels off), else its own."""
        for lab in (self.cfg.labels.namespace, self.cfg.labels.pod, self.cfg.labels.container):
            expr = f'label_replace({expr}, "{lab}", "$1", "exported_{lab}", "(.+)")'
        return expr

    def gpu_usage(self, resource: str, engine_metric: str) -> str:
        """Each GPU's engine active (ratio: ``engine_metric``, DCGM_FI_DEV_GPU_UTIL read as percent / 100) or
        frame buffer used (MiB x 1048576 = bytes) as a plain range query, labelled with its pod; the GPUs of
        one pod (several series) are folded by rightsize, the busiest at each step."""
        m = self.cfg.metrics
        if resource == "gpu_engine":
            expr = self.cluster_sel(engine_metric) + (" / 100" if engine_metric == m.gpu_utilization else "")
        else:
            expr = f"{self.cluster_sel(m.gpu_fb_used)} * 1048576"
        return self._gpu_pod_labels(expr)

    def gpu_daily(self, span: float) -> str:
        """Per GPU and per ``span`` seconds (evaluate at step = span): the largest raw frame-buffer sample, bytes."""
        used = self.cluster_sel(self.cfg.metrics.gpu_fb_used)
        return self._gpu_pod_labels(f"max_over_time({used}[{dur(span)}]) * 1048576")

    def gpu_info(self) -> str:
        """Per pod and GPU model at the window's end: the frame buffer of its GPUs (used + free), bytes."""
        m, L, W = self.cfg.metrics, self.cfg.labels, self.W
        total = f"(last_over_time({self.cluster_sel(m.gpu_fb_used)}[{W}]) + last_over_time({self.cluster_sel(m.gpu_fb_free)}[{W}]))"
        return f"max by ({self.pod_key}, {L.gpu_model}) ({self._gpu_pod_labels(total + ' * 1048576')})"

    # --- cluster-wide (instant queries) -------------------------------------------------------------
    def coverage(self, metric: str, tag: str) -> dict[str, str]:
        """The first and last step of the window (unix seconds) at which ``metric`` has any series of this
        cluster, tagged ``first_<tag>`` / ``last_<tag>``: a subquery at the step over one aggregated series,
        which reads each of the metric's series once (cheap for a family of few series, such as the nodes')."""
        c = f"count({self.cluster_sel(metric)})"
        return {f"first_{tag}": f"min_over_time(timestamp({c})[{self.W}:{self.S}])",
                f"last_{tag}": f"max_over_time(timestamp({c})[{self.W}:{self.S}])"}

    def cluster(self, inventory: bool, coverage_of: tuple[str, ...] = ()) -> str:
        """Nodes (labels, hours, allocatable), Istio traffic, for the kube-state-metrics inventory HPAs and
        PDBs, and the coverage (first and last step with data) of each metric of ``coverage_of`` (tag: the
        metric's name), tagged by ``stat``."""
        L, m, W = self.cfg.labels, self.cfg.metrics, self.W
        node_labels = ", ".join([L.node, L.zone, L.region, L.instance_type, L.capacity_type_eks, L.capacity_type_karpenter,
                                 L.node_group, L.node_pool, L.gpu_product])
        nl = self.cluster_sel(m.node_labels)
        alloc = self.cluster_sel(m.node_allocatable, "resource=~" + quote("cpu|memory|" + GPU_RESOURCES))
        capacity = self.cluster_sel(m.node_capacity, "resource=~" + quote(GPU_RESOURCES))
        parts = {
            "node_labels": f"max by ({node_labels}) (last_over_time({nl}[{W}]))",
            "node_hours": f"count_over_time((max by ({L.node}) ({nl}))[{W}:{self.S}]) * {self.step / 3600.0!r}",
            "node_allocatable": f"max by ({L.node}, resource) (last_over_time({alloc}[{W}]))",
            "node_capacity": f"max by ({L.node}, resource) (last_over_time({capacity}[{W}]))",
        }
        parts.update(self.traffic())
        if inventory:
            parts.update(self.hpa_pdb())
        for metric in coverage_of:
            parts.update(self.coverage(metric, metric))
        return tagged(parts)

    def doctor(self, present: set[str]) -> str:
        """``rightsize doctor``'s one instant query, tagged by ``stat``: the coverage of the nodes (of the pod
        owners when no node labels are ``present``), the nodes carrying each label the cost model
        reads (nodes, typed, zoned, grouped: an EKS node group or a Karpenter NodePool), and the oldest sample
        of a Prometheus that scrapes itself (lowest)."""
        m, L, W = self.cfg.metrics, self.cfg.labels, self.W
        parts = {"lowest": "min(prometheus_tsdb_lowest_timestamp_seconds)"}
        # the nodes' few series are the cheap way to the coverage (0.03 s of the server at 1,000 containers x
        # 14 d, the pod owners' 0.6 s: benchmarks/setups_bench.py --cost); the pod owners without node labels
        if m.node_labels in present or m.pod_owner in present:
            metric, tag = (m.node_labels, "nodes") if m.node_labels in present else (m.pod_owner, "pods")
            parts.update(self.coverage(metric, tag))
        if m.node_labels not in present:
            return tagged(parts)

        def nodes(label: str = "") -> str:
            return f"max by ({L.node}) (last_over_time({self.cluster_sel(m.node_labels, f'{label}!=' + quote('') if label else '')}[{W}]))"

        parts.update(nodes=f"count({nodes()})", typed=f"count({nodes(L.instance_type)})", zoned=f"count({nodes(L.zone)})",
                     grouped=f"count({nodes(L.node_group)} or {nodes(L.node_pool)})")
        return tagged(parts)

    def traffic(self) -> dict[str, str]:
        """Istio bytes per workload pair over the window, each direction and protocol once: TCP
        received (client -> server, the request) and sent (server -> client, the response); HTTP/gRPC
        request and response byte sums. One reporter ([prometheus] istio_reporter) for every family,
        so no byte is counted by both proxies."""
        L, m = self.cfg.labels, self.cfg.metrics
        pair = ", ".join([L.source_namespace, L.source_workload, L.destination_namespace, L.destination_workload,
                          L.source_zone, L.destination_zone])
        reporter = f"reporter={quote(self.cfg.istio_reporter)}"
        out = {}
        for stat, metric in (("tcp_request", m.istio_tcp_received), ("tcp_response", m.istio_tcp_sent),
                             ("http_request", m.istio_request_bytes), ("http_response", m.istio_response_bytes)):
            out[stat] = f"sum by ({pair}) (increase({self.cluster_sel(metric, reporter)}[{self.W}]))"
        return out

    def hpa_pdb(self) -> dict[str, str]:
        m, L, W = self.cfg.metrics, self.cfg.labels, self.W
        hpa = "horizontalpodautoscaler"
        return {
            "hpa_info": f"max by ({L.namespace}, {hpa}, scaletargetref_kind, scaletargetref_name) (last_over_time({self.sel(m.hpa_info)}[{W}]))",
            "hpa_target": f"max by ({L.namespace}, {hpa}, metric_name, metric_target_type) (last_over_time({self.sel(m.hpa_spec_target)}[{W}]))",
            "pdb_expected": f"max by ({L.namespace}, poddisruptionbudget) (last_over_time({self.sel(m.pdb_expected_pods)}[{W}]))",
        }


def _present(parts: dict[str, str]) -> dict[str, str]:
    """The parts whose metrics were found ('' marks one that was not)."""
    return {k: v for k, v in parts.items() if v}


def tagged(parts: dict[str, str]) -> str:
    """One query answering several: each part labelled ``stat="<name>"`` (the parts' label sets then
    never collide, so ``or`` keeps them all)."""
    return " or ".join(f'label_replace({q}, "stat", "{name}", "", "")' for name, q in parts.items())
