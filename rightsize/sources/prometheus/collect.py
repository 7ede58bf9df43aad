"""One cluster's usage from a Prometheus-compatible API, pulled once per pod and reduced in rightsize.

Requests, in order (none grows with the number of workloads):
1. buildinfo and the metric names present in the window (what is missing disables what needs it);
2. the series API for pod owners, ReplicaSet / Job owners, pod placement and the working-set
   series (to size shards): label sets only, no sample read;
3. per shard and time chunk, each container instance's CPU rate and working set at the step
   (plain range queries), reduced as they arrive (usage.py);
4. per shard, one range query at a one-day step: each container instance's largest raw
   working-set sample and OOM kills per day; with runtime metrics, one at a one-hour step (runtime.py);
5. one instant query per shard for restarts and CFS throttling per container instance (and, for
   the kube-state-metrics inventory, requests and limits), one cluster-wide for nodes, Istio
   traffic (and HPAs and PDBs);
6. where the DCGM exporter serves GPU pods: their GPUs' engine activity and frame buffer in time
   chunks, the daily frame-buffer maxima and the GPUs' sizes, cluster-wide (gpu.py).
Requests 3 to 6 go to one pool of ``concurrency`` workers in the order of execute.ordered_tasks: the
cluster-wide query first, each shard's inventory requests spread among the range pulls.
"""
from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ...batch_groups import KINDS as BATCH_FIELDS
from ...batch_groups import ksm_label, label_keys
from ...sketch import usage_statistics
from ...usage_stats import DAY_SECONDS
from ...config import Config
from ...errors import SourceError
from ...quantity import format_duration as dur
from ...snapshot import Snapshot, conform
from .. import ksm
from . import cluster_tables, execute, families, gpu, runtime, sanity
from .client import Client, QueryFailed
from .coverage import coverage_of, record_coverage, span_times
from . import lifetimes
from .families import CORE, missing_text, read_by
from .promql import Queries, quote
from .usage import Grid, Partial, UsageAccumulator, reduce_chunk

_POD_KEY = ["namespace", "pod", "container"]


@dataclass
class Run:
    """What one cluster's collection knows as it goes."""

    config: Config
    cluster: str
    client: Client
    q: Queries
    grid: Grid
    log: callable
    missing: set = field(default_factory=set)  # metric names not found in the window
    owners: dict = field(default_factory=dict)  # (namespace, pod) -> (kind, workload)
    nodes_of: dict = field(default_factory=dict)  # (namespace, pod) -> node
    series_per_namespace: dict = field(default_factory=dict)
    shards: list = field(default_factory=list)
    runtime_present: set = field(default_factory=set)  # runtime metric names found in the window (runtime.py)
    dropped: Counter = field(default_factory=Counter)  # (namespace, pod, container) -> samples dropped (sanity.py)
    duplicates: str = ""  # the duplicate-scrape warning, if any (sanity.py)
    gpu: dict = field(default_factory=dict)  # the DCGM series' count and the GPU requests' rows (gpu.py)
    cluster_answer: object = None  # the cluster-wide instant query's result (or its QueryFailed)

    @property
    def labels(self):
        return self.config.prometheus.labels

    def has(self, field_name: str) -> bool:
        return getattr(self.config.prometheus.metrics, field_name) not in self.missing

    def namespaces(self, task_namespaces) -> list[str] | None:
        """Selector namespaces of a task: None when the task covers every namespace seen."""
        return None if set(task_namespaces) >= set(self.series_per_namespace) else list(task_namespaces)


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


def window_end(config: Config) -> float:
    """End of the window as unix seconds, floored to the step: [prometheus] end, or now."""
    step = max(int(config.general.step), 1)
    if config.prometheus.end:
        t = dt.datetime.fromisoformat(config.prometheus.end.replace("Z", "+00:00"))
        now = (t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)).timestamp()
    else:
        now = dt.datetime.now(dt.timezone.utc).timestamp()
    return float(int(now) // step * step)


def collect_usage(config: Config, target, snapshot: Snapshot, *, allow_partial: bool = False,
                  inventory_from_metrics: bool = False, progress=None, client: Client | None = None) -> None:
    """Fill usage, usage_histograms, usage_daily, nodes, placement, traffic (and workloads /
    containers with ``inventory_from_metrics``) for one cluster. Units: cores, bytes, hours.
    Raises SourceError (one line, with the URL) when the server cannot be reached, a core metric is
    missing, or a shard fails, unless ``allow_partial`` (then meta.json "partial" says what is missing)."""
    log = progress or (lambda msg: None)
    run = _start(config, target, snapshot, client, log, allow_partial, inventory_from_metrics)
    _read_labels(run)
    acc, raw, per_pod, outcome, runtime_frames = _pull(run, inventory_from_metrics, allow_partial)
    _record_partial(run, snapshot, outcome)
    raw_daily = gpu.finish(run, acc, outcome, None if raw is None else raw.drop(columns="raw_samples"), snapshot)
    hist = _drop(acc.histograms(run.cluster, run.owners), outcome.failed)
    oom_known = raw is not None and run.has("restarts") and run.has("last_terminated_reason")
    daily = _drop(acc.daily(run.cluster, run.owners, raw_daily, oom_known, raw is not None and run.has("restarts")),
                  outcome.failed)
    usage = gpu.usage_columns(run, _usage(run, hist, daily, oom_known, per_pod))
    _append(snapshot, "usage", usage)
    _append(snapshot, "usage_histograms", hist)
    _append(snapshot, "usage_daily", daily)
    _append(snapshot, "runtime_hourly", runtime.collected(run, snapshot, runtime_frames, outcome.failed, inventory_from_metrics))
    cluster_rows = _cluster_rows(run, inventory_from_metrics, allow_partial, snapshot)
    record_coverage(snapshot, run.cluster, run.grid, [span_times(run.grid, acc.span), coverage_of(cluster_rows)])
    nodes = cluster_tables.nodes(run, cluster_rows)
    gpu.record_missing(run, snapshot, nodes)
    _append(snapshot, "nodes", nodes)
    placement, timed = _placement(run, acc, nodes, raw, per_pod)
    _append(snapshot, "placement", _drop(placement, outcome.failed))
    _append(snapshot, "traffic", cluster_tables.traffic(run, cluster_rows))
    if inventory_from_metrics:
        _inventory(run, snapshot, usage, acc, per_pod, cluster_rows)
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


# --- start: server, metrics present -----------------------------------------------------------------

def _start(config, target, snapshot, client, log, allow_partial, inventory: bool) -> Run:
    p = config.prometheus
    client = client or Client(config, target.prometheus_url, target.token_env, target.headers)
    end = window_end(config)
    grid = Grid.of(end, config.general.window, config.general.step)
    start = end - config.general.window
    match = f"{{{p.cluster_label}={quote(target.label_value)}}}" if p.cluster_label and target.label_value else ""
    try:
        engine = client.server()
        present = set(client.label_values("__name__", start, end, match=match))
    except QueryFailed as exc:
        raise SourceError(f"cannot query metrics: {exc}") from None
    snapshot.meta.setdefault("versions", {})[f"metrics_engine:{target.name}"] = engine
    q = Queries(p, config.general.window, config.general.step, target.label_value if p.cluster_label else "")
    run = Run(config, target.name, client, q, grid, log, runtime_present=runtime.present_names(p.runtime_metrics, present))
    run.missing = _record_missing(config, snapshot, present, target.name, inventory)
    _check_core(run, snapshot, present, match, allow_partial)
    log(f"[{target.name}] {engine} at {client.url}; window {dur(config.general.window)} ending "
        f"{dt.datetime.fromtimestamp(end, dt.timezone.utc).isoformat()}, {grid.n} steps of {dur(grid.step)}")
    return run


def _record_missing(config, snapshot, present: set[str], cluster: str, inventory: bool) -> set[str]:
    """The metric names not found in the window; each family this collection reads that is missing is
    named in meta.json ``missing_metrics`` and in a caveat with what it disables and a hint (families.py)."""
    m = config.prometheus.metrics
    missing = {getattr(m, f) for f in [f.field for f in families.FAMILIES] + list(gpu.DISABLES)} - present  # DCGM: gpu.record_missing
    for family in read_by(inventory):
        name = getattr(m, family.field)
        if name not in missing:
            continue
        if name not in snapshot.meta.setdefault("missing_metrics", []):
            snapshot.meta["missing_metrics"].append(name)
        snapshot.warn("missing_metric", missing_text(family, name, cluster), affects=family.disables)
    return missing


def _check_core(run: Run, snapshot: Snapshot, present: set[str], match: str, allow_partial: bool) -> None:
    """CPU usage, working set and pod owners are what every recommendation needs: without one the
    result would be wrong, so it is an error (or, with allow_partial, a flagged partial result)."""
    m = run.config.prometheus.metrics
    gone = [getattr(m, f) for f in CORE if getattr(m, f) in run.missing]
    if not gone:
        return
    hints = []
    if not present:
        hints.append("no metric at all: is the URL the API's base, with its path prefix (e.g. /prometheus for Mimir, "
                     "/select/0/prometheus for VictoriaMetrics cluster)?")
    if match:
        hints.append(f"every query is restricted to {match[1:-1]}: is [prometheus] cluster_label / the cluster name right?")
    if m.pod_owner in gone:
        hints.append("kube_pod_owner comes from kube-state-metrics: is it installed and scraped?")
    if {m.cpu_usage, m.memory_working_set} & set(gone):
        hints.append("container_* metrics come from the kubelet's cAdvisor endpoint: is it scraped?")
    text = f"{run.client.url}: cluster {run.cluster}: no {', '.join(gone)} in the window; " + " ".join(hints)
    if not allow_partial:
        raise SourceError(text)
    snapshot.warn("missing_core_metric", text, affects="usage")
    snapshot.meta.setdefault("partial", {}).setdefault("metrics", []).extend(f"{run.cluster}/{g}" for g in gone)


# --- labels: owners, placement, sizes ------------------------------------------------------------------

def _read_labels(run: Run) -> None:
    """Owners, pod nodes and container series per namespace from one series-API request."""
    L, m = run.labels, run.config.prometheus.metrics
    start = run.grid.end - run.config.general.window
    keys = label_keys(run.config)
    firsts = tuple(dict.fromkeys(ksm_label(getattr(run.config.batch_groups, f)[0]) for f in BATCH_FIELDS
                                 if getattr(run.config.batch_groups, f))) if run.has("pod_labels") else ()
    try:
        found = run.client.series(run.q.owners_and_series(group_labels=firsts) + run.q.gpu_series(), start, run.grid.end,
                                  what="series (owners, placement, sizes, GPUs)")
    except QueryFailed as exc:
        raise SourceError(f"cannot read pod owners: {exc}") from None
    frame = ksm.series_frames(found)
    run.duplicates = sanity.scrape_duplicates(found, m.memory_working_set, [L.namespace, L.pod, L.container],
                                              run.config.prometheus.scrape_labels)
    run.owners = ksm.owners_of(frame, L, m)
    groups = ksm.batch_groups(frame(m.pod_labels, [L.namespace, L.pod] + [ksm_label(k) for k in keys]).rename(
        columns={L.namespace: "namespace", L.pod: "pod"}), run.config)
    run.owners.update({(a, b): (c, d) for a, b, c, d in groups.itertuples(index=False, name=None)})
    gpu.read_series(run, found)
    info = frame(m.pod_info, [L.namespace, L.pod, L.node])
    run.nodes_of = {(a, b): c for a, b, c in info.itertuples(index=False, name=None)}
    wss = frame(m.memory_working_set, [L.namespace, L.pod, L.container]).drop_duplicates()
    wss = wss[wss[L.namespace] != ""]
    run.series_per_namespace = {str(k): float(v) for k, v in wss[L.namespace].value_counts().items()}


# --- the pulls --------------------------------------------------------------------------------------

def _pull(run: Run, inventory: bool, allow_partial: bool):
    """Run every per-shard request; returns (accumulator, daily raw rows or None, per-pod rows, outcome, runtime chunks)."""
    p = run.config.prometheus
    run.shards = execute.plan_shards(run.series_per_namespace, run.grid.n, p.range_points)
    run.log(f"[{run.cluster}] {int(sum(run.series_per_namespace.values()))} container series in "
            f"{len(run.series_per_namespace)} namespaces -> {len(run.shards)} shard(s)")
    tasks = execute.ordered_tasks(run.shards, run.series_per_namespace, run.has("memory_working_set") or run.has("restarts"),
                                  [r for r, m in (("cpu", "cpu_usage"), ("memory", "memory_working_set")) if run.has(m)],
                                  run.grid.n, p.range_points, first=runtime.tasks(run)) + gpu.tasks(run)
    acc = UsageAccumulator(run.grid)
    rows: dict[str, list] = {"daily": [], "per_pod": [], "cluster": [], "runtime": []}

    def consume(task, result):
        if isinstance(result, Partial):
            acc.add(result)
        else:
            (run.gpu if task.name.startswith("gpu") else rows).setdefault(task.name, []).append(result)

    outcome = execute.run(tasks, lambda t: _fetch(run, t, inventory), consume, concurrency=p.concurrency,
                          allow_partial=allow_partial, log=run.log)
    raw = _daily_rows(rows["daily"]) if run.has("memory_working_set") or run.has("restarts") else None
    per_pod = pd.concat(rows["per_pod"], ignore_index=True) if rows["per_pod"] else pd.DataFrame(
        columns=_POD_KEY + ["stat", "resource", "value"])
    run.cluster_answer = rows["cluster"][0] if rows["cluster"] else None
    return acc, raw, per_pod, outcome, rows["runtime"]


def _fetch(run: Run, task: execute.Task, inventory: bool):
    L, nss = run.labels, run.namespaces(task.namespaces)
    key = [L.namespace, L.pod, L.container]
    if task.name.startswith("gpu"):
        return gpu.fetch(run, task)
    if task.name == "cluster":
        # the nodes' first and last step: with the containers' (from the pulls) the coverage of the window
        coverage_of = (run.config.prometheus.metrics.node_labels,) if run.has("node_labels") else ()
        try:  # its failure is the cluster tables' only (see _cluster_rows), never the run's
            return run.client.query(run.q.cluster(inventory, coverage_of), run.grid.end, what="nodes, traffic, HPAs and PDBs")
        except QueryFailed as exc:
            return exc
    if task.name in ("cpu", "memory"):
        t0 = run.grid.first + task.first * run.grid.step
        result = run.client.query_range(run.q.usage(task.name, nss), t0, t0 + (task.steps - 1) * run.grid.step,
                                        run.grid.step, key, what=f"{task.name} usage", timestamps=True)
        return reduce_chunk(sanity.clean_samples(result, run.dropped), task.name, run.grid, run.owners)
    if task.name == "daily":
        return sanity.clean_rows(_fetch_daily(run, nss, key), run.dropped, _POD_KEY)
    if task.name == "runtime":
        return runtime.fetch(run, task, nss, key)
    m = run.config.prometheus.metrics
    times = tuple(getattr(m, f) for f in ("pod_start_time", "pod_completion_time") if run.has(f))
    result = run.client.query(run.q.per_pod(nss, inventory, times), run.grid.end, what="restarts and throttling per pod")
    return sanity.clean_rows(_rows(result, key + ["stat", "resource"], ["namespace", "pod", "container", "stat", "resource"]),
                             run.dropped, _POD_KEY)


def _fetch_daily(run: Run, nss, key) -> pd.DataFrame:
    """Whole days back from the window end in one range query at a one-day step; the rest of a
    window that is not whole days (its oldest, partial day) in one instant query of that length."""
    g, window = run.grid, run.config.general.window
    full = int(window // DAY_SECONDS)
    rest = window - full * DAY_SECONDS
    frames = []
    if full:
        res = run.client.query_range(run.q.daily(nss, DAY_SECONDS), g.end - (full - 1) * DAY_SECONDS, g.end, DAY_SECONDS,
                                     key + ["stat"], what="daily maxima and OOM kills", timestamps=True)
        for s in res:
            day = np.rint((g.end - s.timestamps) / DAY_SECONDS).astype(np.int64)
            frames.append(pd.DataFrame({"namespace": s.key[0], "pod": s.key[1], "container": s.key[2], "stat": s.key[3],
                                        "day": day, "value": s.values}))
    if rest >= g.step:
        res = run.client.query(run.q.daily(nss, rest), g.end - full * DAY_SECONDS, what="oldest partial day")
        f = _rows(res, key + ["stat"], ["namespace", "pod", "container", "stat"])
        frames.append(f.assign(day=full))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=_POD_KEY + ["stat", "day", "value"])


def _rows(result: list[dict], labels: list[str], names: list[str]) -> pd.DataFrame:
    """Instant-vector result -> DataFrame with the given labels (renamed to ``names``) and ``value``."""
    rows = [[r["metric"].get(lab, "") for lab in labels] + [float(r["value"][1])] for r in result]
    return pd.DataFrame(rows, columns=names + ["value"])


def _daily_rows(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """namespace, pod, container, day, memory_max_bytes, restarts, oom_kills, raw_samples (raw working-set
    samples) from the daily query rows."""
    if not frames:
        return pd.DataFrame(columns=_POD_KEY + ["day", "memory_max_bytes", "restarts", "oom_kills", "raw_samples"])
    d = pd.concat(frames, ignore_index=True)
    wide = d.pivot_table(index=_POD_KEY + ["day"], columns="stat", values="value", aggfunc="max").reset_index()
    wide.columns.name = None
    wide = wide.rename(columns={"memory_max": "memory_max_bytes"})
    for c in ("memory_max_bytes", "restarts", "oom_kills", "raw_samples"):
        if c not in wide:
            wide[c] = np.nan
    wide["oom_kills"] = wide["oom_kills"].round()
    wide["restarts"] = wide["restarts"].round()
    return wide[_POD_KEY + ["day", "memory_max_bytes", "restarts", "oom_kills", "raw_samples"]]


def _record_partial(run: Run, snapshot: Snapshot, outcome: execute.Outcome) -> None:
    if outcome.splits:
        run.log(f"[{run.cluster}] {outcome.splits} split(s) after the server rejected a request")
    if not outcome.failed:
        return
    listed = snapshot.meta.setdefault("partial", {}).setdefault("namespaces", [])
    for ns in sorted(outcome.failed):
        if f"{run.cluster}/{ns}" not in listed:
            listed.append(f"{run.cluster}/{ns}")
    snapshot.warn("partial", f"cluster {run.cluster}: no usage for namespaces {', '.join(sorted(outcome.failed))}: "
                  f"{outcome.errors[0]}", affects=", ".join(sorted(outcome.failed)))


# --- the tables ------------------------------------------------------------------------------------------

def _with_owners(run: Run, frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` (namespace, pod columns) with the pod's owning ``kind`` and ``workload``
    ('' for a pod without an owner series)."""
    out = frame.copy()
    owner = [run.owners.get(k, ("", "")) for k in zip(out["namespace"], out["pod"])]
    out["kind"] = [o[0] for o in owner]
    out["workload"] = [o[1] for o in owner]
    return out


def _drop(frame: pd.DataFrame, namespaces: set) -> pd.DataFrame:
    """Rows of namespaces whose data is incomplete are left out: partial data is never shown as whole."""
    if not namespaces or "namespace" not in frame:
        return frame
    return frame[~frame["namespace"].isin(namespaces)].reset_index(drop=True)


def _usage(run: Run, hist: pd.DataFrame, daily: pd.DataFrame, oom_known: bool, per_pod: pd.DataFrame) -> pd.DataFrame:
    """The usage table: every registry statistic per container, plus restarts, OOM kills and CFS
    throttling summed over its pods (NaN when the metrics behind them are missing)."""
    usage = usage_statistics(hist, daily, run.grid.step)
    key = ["namespace", "kind", "workload", "container"]
    pp = _with_owners(run, per_pod)
    per = pp[pp["resource"] == ""].pivot_table(index=key, columns="stat", values="value", aggfunc="sum")
    idx = pd.MultiIndex.from_frame(usage[key])

    def summed(stat, known):
        if not known:
            return np.full(len(usage), np.nan)
        col = per[stat] if stat in per else pd.Series(dtype=float)
        return idx.map(col).to_numpy(dtype=float, na_value=np.nan)

    usage["restarts"] = np.nan_to_num(summed("restarts", run.has("restarts")), nan=0.0) if run.has("restarts") else np.nan
    periods = summed("cfs_periods", run.has("cpu_periods") and run.has("cpu_throttled_periods"))
    throttled = summed("cfs_throttled_periods", run.has("cpu_periods") and run.has("cpu_throttled_periods"))
    with np.errstate(invalid="ignore", divide="ignore"):
        usage["cpu_throttled_ratio"] = np.where(periods > 0, throttled / periods, np.nan)
    usage["cpu_throttled_seconds"] = summed("cfs_throttled_seconds", run.has("cpu_throttled_seconds"))
    if oom_known and len(daily):
        usage["oom_kills"] = idx.map(daily.groupby(key)["oom_kills"].sum()).to_numpy(dtype=float, na_value=0.0)
    else:
        usage["oom_kills"] = np.nan
    usage["cluster"] = run.cluster
    return usage


def _cluster_rows(run: Run, inventory: bool, allow_partial: bool, snapshot: Snapshot) -> pd.DataFrame:
    """The cluster-wide instant query's rows: every label the parts use, ``stat`` and ``value``."""
    L = run.labels
    labels = sorted({L.node, L.zone, L.region, L.instance_type, L.capacity_type_eks, L.capacity_type_karpenter, L.node_group, L.node_pool,
                     L.gpu_product, "resource", L.source_namespace, L.source_workload, L.destination_namespace, L.destination_workload,
                     L.source_zone, L.destination_zone, L.namespace, "horizontalpodautoscaler", "scaletargetref_kind",
                     "scaletargetref_name", "metric_name", "metric_target_type", "poddisruptionbudget", "stat"})
    result = run.cluster_answer  # asked at the start of the pulls, in the same pool
    if isinstance(result, QueryFailed):
        exc = result
        if not allow_partial:
            raise SourceError(f"{exc}; rerun with --allow-partial to keep the rest") from None
        snapshot.warn("partial", f"cluster {run.cluster}: nodes and traffic failed: {exc}", affects="nodes, traffic")
        snapshot.meta.setdefault("partial", {}).setdefault("cluster_tables", []).append(run.cluster)
        return pd.DataFrame(columns=labels + ["value"])
    return _rows(result or [], labels, labels)


def _placement(run: Run, acc: UsageAccumulator, nodes: pd.DataFrame, raw: pd.DataFrame | None,
               per_pod: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Pod-hours per (workload, node): each pod's lifetime in the window (lifetimes.py: its start and
    completion times, else its raw samples x the scrape interval, else its steps with a sample), from the
    same pulls as the usage; the node from kube_pod_info. And how many pods were timed how (for meta.json)."""
    f, timed = lifetimes.pod_lifetimes(acc, raw, per_pod, run.config.prometheus.metrics, run.grid)
    if f.empty:
        return pd.DataFrame(), timed
    f = _with_owners(run, f)
    f["node"] = [run.nodes_of.get((ns, pod), "") for ns, pod in zip(f["namespace"], f["pod"])]
    f = f[(f["workload"] != "") & (f["node"] != "")]
    out = f.groupby(["namespace", "kind", "workload", "node"], as_index=False)["pod_hours"].sum()
    zones = dict(zip(nodes["node"], nodes["zone"])) if len(nodes) else {}
    out["zone"] = out["node"].map(zones).astype(object).fillna("")
    out["cluster"] = run.cluster
    return out, timed


def _inventory(run: Run, snapshot: Snapshot, usage: pd.DataFrame, acc: UsageAccumulator, per_pod: pd.DataFrame,
               rows: pd.DataFrame) -> None:
    """Workloads and containers from kube-state-metrics (Prometheus-only mode)."""
    L = run.labels
    key = ["namespace", "kind", "workload", "container"]
    req = _with_owners(run, per_pod[per_pod["stat"].isin(["request", "limit", "init_request", "init_limit", "init_info", "image"])])
    containers = ksm.inventory_containers(req[req["workload"] != ""], usage[key], run.cluster)
    alive = [k[:2] for k, last in zip(acc.series, acc.last) if last == run.grid.n - 1]
    at_end = _with_owners(run, pd.DataFrame(sorted(set(alive)), columns=["namespace", "pod"]))
    pods = at_end.groupby(["namespace", "kind", "workload"]).size().rename("pods").reset_index() if len(at_end) else pd.DataFrame(
        columns=["namespace", "kind", "workload", "pods"])
    rows = rows.rename(columns={L.namespace: "namespace"})
    hpa = rows[rows["stat"] == "hpa_info"].rename(columns={"scaletargetref_kind": "kind", "scaletargetref_name": "workload"})
    hpa = hpa[["namespace", "horizontalpodautoscaler", "kind", "workload"]]
    target = rows[rows["stat"] == "hpa_target"].rename(columns={"value": "target"})
    target = target[["namespace", "horizontalpodautoscaler", "metric_name", "metric_target_type", "target"]]
    pdbs = rows[rows["stat"] == "pdb_expected"][["namespace", "poddisruptionbudget"]]
    # the cluster query failed (allow_partial): HPAs and PDBs are unknown too
    answered = run.cluster not in snapshot.meta.get("partial", {}).get("cluster_tables", [])
    workloads = ksm.inventory_workloads(containers, pods, hpa, target, pdbs, run.cluster,
                                        hpa_known=answered and run.has("hpa_info") and run.has("hpa_spec_target"),
                                        pdb_known=answered and run.has("pdb_expected_pods"))
    _append(snapshot, "containers", containers)
    _append(snapshot, "workloads", workloads)
    if len(pdbs):
        snapshot.warn("pdb_by_name", f"cluster {run.cluster}: PDBs matched to workloads by name (kube-state-metrics has no PDB selector)",
                      affects="spot suitability")
    snapshot.warn("inventory_from_metrics", f"cluster {run.cluster}: workload specs from kube-state-metrics: volumes, grace periods and "
                  "spot affinity are unknown (assumed none / 30 s)", affects="spot suitability")


def _append(snapshot: Snapshot, table: str, df: pd.DataFrame | None) -> None:
    if df is None or not len(df):
        return
    df = conform(table, df, copy=False)
    cur = snapshot.tables.get(table)
    snapshot.tables[table] = df if cur is None or not len(cur) else pd.concat([cur, df], ignore_index=True)
