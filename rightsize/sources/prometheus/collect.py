"""One cluster's usage from a Prometheus-compatible API, pulled once per pod and reduced in rightsize.

Requests, in order (none grows with the number of workloads):
1. buildinfo and the metric names present in the window (what is missing disables what needs it);
2. the series API for pod owners, ReplicaSet / Job owners, pod placement and the working-set
   series (to size shards): label sets only, no sample read;
3. per shard and time chunk, each container instance's CPU rate and working set at the step
   (plain range queries), reduced as they arrive (usage.py);
4. per shard, range queries at a one-day step: each container instance's largest raw working-set sample,
   its raw sample count, restarts and OOM kills per day, one request per part (the server's heap then
   holds one part's series over the window, not all of them: a third of its anonymous memory at 10,000
   containers); with runtime metrics, one at a one-hour step (runtime.py);
5. per shard, instant queries for restarts and CFS throttling per container instance (and, for the
   kube-state-metrics inventory, requests and limits), one request per part likewise; one cluster-wide
   for nodes, Istio traffic (and HPAs and PDBs);
6. where the DCGM exporter serves GPU pods: their GPUs' engine activity and frame buffer in time
   chunks, the daily frame-buffer maxima and the GPUs' sizes, cluster-wide (gpu.py).
Requests 3 to 6 go to one pool of ``concurrency`` workers in the order of execute.ordered_tasks: the
cluster-wide query first, each shard's inventory requests spread among the range pulls.
"""
from __future__ import annotations

from ...config import Config
from ...errors import SourceError
from ...snapshot import Snapshot
from . import assemble, cluster_tables, gpu, labels, pulls, runtime, sanity
from .client import Client, QueryFailed
from .coverage import coverage_of, record_coverage, span_times
from .run import start, window_end


def discover_clusters(config: Config, url: str) -> list[str]:
    """Values of [prometheus] cluster_label seen in the window (sorted)."""
    label = config.prometheus.cluster_label
    if not label:
        return []
    client = Client(config, url)
    end = window_end(config)
    try:
        return sorted(v for v in client.label_values(label, end - config.general.window, end) if v)
    except QueryFailed as exc:
        raise SourceError(str(exc)) from None


def collect_usage(config: Config, target, snapshot: Snapshot, *, allow_partial: bool = False,
                  inventory_from_metrics: bool = False, progress=None, client: Client | None = None) -> None:
    """Fill usage, usage_histograms, usage_daily, nodes, placement, traffic (and workloads /
    containers with ``inventory_from_metrics``) for one cluster. Units: cores, bytes, hours.
    Raises SourceError (one line, with the URL) when the server cannot be reached, a core metric is
    missing, or a shard fails, unless ``allow_partial`` (then meta.json "partial" says what is missing)."""
    log = progress or (lambda msg: None)
    run = start(config, target, snapshot, client, log, allow_partial, inventory_from_metrics)
    labels.read_labels(run)
    acc, raw, per_pod, outcome, runtime_frames = pulls.pull(run, inventory_from_metrics, allow_partial)
    pulls.record_partial(run, snapshot, outcome)
    raw_daily = gpu.finish(run, acc, outcome, None if raw is None else raw.drop(columns="raw_samples"), snapshot)
    oom_known = raw is not None and run.has("restarts") and run.has("last_terminated_reason")
    daily = assemble.drop(acc.daily(run.cluster, run.owners, raw_daily, oom_known, raw is not None and run.has("restarts")),
                          outcome.failed)
    hist, stats = assemble.histograms(run, acc, daily, outcome.failed)
    usage = gpu.usage_columns(run, assemble.usage_table(run, stats, daily, oom_known, per_pod))
    assemble.append(snapshot, "usage", usage)
    assemble.append(snapshot, "usage_histograms", hist)
    assemble.append(snapshot, "usage_daily", daily)
    assemble.append(snapshot, "runtime_hourly", runtime.collected(run, snapshot, runtime_frames, outcome.failed, inventory_from_metrics))
    cluster_rows = assemble.cluster_rows(run, inventory_from_metrics, allow_partial, snapshot)
    record_coverage(snapshot, run.cluster, run.grid, [span_times(run.grid, acc.span), coverage_of(cluster_rows)])
    nodes = cluster_tables.nodes(run, cluster_rows)
    gpu.record_missing(run, snapshot, nodes)
    assemble.append(snapshot, "nodes", nodes)
    placement, timed = assemble.placement(run, acc, nodes, raw, per_pod)
    assemble.append(snapshot, "placement", assemble.drop(placement, outcome.failed))
    assemble.append(snapshot, "traffic", cluster_tables.traffic(run, cluster_rows))
    if inventory_from_metrics:
        assemble.inventory(run, snapshot, usage, acc, per_pod, cluster_rows)
    if acc.unowned:
        some = ", ".join(sorted(f"{ns}/{pod}" for ns, pod in acc.unowned)[:5])
        snapshot.warn("unowned_pods", f"cluster {run.cluster}: {len(acc.unowned)} pod(s) have usage but no {config.prometheus.metrics.pod_owner} "
                      f"series, so no workload: their usage is left out (e.g. {some})", affects="usage")
    sanity.check_found(run, snapshot, usage, allow_partial)
    log(f"[{run.cluster}] found {len(usage)} containers in {usage[['namespace', 'kind', 'workload']].drop_duplicates().shape[0]} "
        f"workloads and {usage['namespace'].nunique()} namespaces; {run.client.requests} requests")
    snapshot.meta["sources"][f"prometheus:{run.cluster}"] = {
        "url": run.client.url, "engine": snapshot.meta["versions"].get(f"metrics_engine:{run.cluster}", ""),
        "requests": run.client.requests, "splits": outcome.splits, "step_seconds": run.grid.step,
        "shards": len(run.shards), "istio_reporter": config.prometheus.istio_reporter, "lifetimes": timed,
        "runtime_metrics": runtime.families(config.prometheus.runtime_metrics, run.runtime_present)}
