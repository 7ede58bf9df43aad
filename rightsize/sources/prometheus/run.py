"""One cluster's collection as it goes (``Run``), and its start: the server answers, the window is
placed, and the metric families present are checked (a core one missing is an error, the rest caveats)."""
from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

from ...config import Config
from ...errors import SourceError
from ...quantity import format_duration as dur
from ...snapshot import Snapshot
from . import families, runtime
from .client import Client, QueryFailed
from .families import CORE, missing_text, read_by
from .promql import Queries, quote
from .usage import Grid


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
    cluster_answer: object = None  # the cluster-wide instant query's result (or its QueryFailed)

    @property
    def labels(self):
        return self.config.prometheus.labels

    def has(self, field_name: str) -> bool:
        return getattr(self.config.prometheus.metrics, field_name) not in self.missing

    def namespaces(self, task_namespaces) -> list[str] | None:
        """Selector namespaces of a task: None when the task covers every namespace seen."""
        return None if set(task_namespaces) >= set(self.series_per_namespace) else list(task_namespaces)


def window_end(config: Config) -> float:
    """End of the window as unix seconds, floored to the step: [prometheus] end, or now."""
    step = max(int(config.general.step), 1)
    if config.prometheus.end:
        t = dt.datetime.fromisoformat(config.prometheus.end.replace("Z", "+00:00"))
        now = (t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)).timestamp()
    else:
        now = dt.datetime.now(dt.timezone.utc).timestamp()
    return float(int(now) // step * step)


def start(config, target, snapshot, client, log, allow_partial, inventory: bool) -> Run:
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
    missing = {getattr(m, f.field) for f in families.FAMILIES} - present
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
