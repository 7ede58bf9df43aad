"""``rightsize doctor``: what a collection would find, before running one.

For each cluster of the config: the server and its engine, the coverage of the window (the first and last
step with node samples, else kube_pod_owner's: a server may keep fewer days than the window asks for), its
retention where the server tells it (Prometheus' runtimeinfo, the oldest sample of its TSDB when it scrapes
itself), how many nodes carry the labels the cost model reads, and every metric family of
sources/prometheus/families.py: present, or missing with what it disables and a hint. Three requests per
cluster (the metric names, one tagged instant query, runtimeinfo), none that reads usage samples.

Exit code: 0 when a collection can run (every core family present), 1 when a core family is missing or
the server cannot be reached (as collect would fail).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from .collect import inventory_source
from .config import Config
from .errors import EXIT_ERROR, EXIT_OK, SourceError
from .quantity import format_duration as dur
from .sources.prometheus import Client, QueryFailed, discover_clusters, window_end
from .sources.prometheus.families import FAMILIES, read_by
from .sources.prometheus.promql import Queries, quote
from .targets import ClusterTarget, cluster_targets


@dataclass
class Finding:
    """What doctor found for one cluster (times in unix seconds, NaN-free: None when unknown)."""

    cluster: str
    url: str
    engine: str = ""
    start: float = 0.0  # the window
    end: float = 0.0
    first: float | None = None  # coverage
    last: float | None = None
    retention: str = ""
    lowest: float | None = None  # prometheus_tsdb_lowest_timestamp_seconds
    nodes: dict = field(default_factory=dict)  # nodes, typed, zoned, grouped
    missing: list[str] = field(default_factory=list)  # FAMILIES fields not found
    inventory: str = ""  # where specs come from: api, manifests, prometheus


def examine(config: Config, log=lambda m: None) -> list[Finding]:
    """A Finding per cluster of the config; SourceError when a server cannot be reached."""
    targets = cluster_targets(config)
    p = config.prometheus
    if p.cluster_label and not config.clusters and not p.clusters:
        base = targets[0]
        targets = [ClusterTarget(n, base.prometheus_url, base.token_env, base.headers, label_value=n)
                   for n in discover_clusters(config, p.url)] or targets
    return [_examine(config, t, inventory_source(config, ""), log) for t in targets]


def _examine(config: Config, target: ClusterTarget, inventory: str, log) -> Finding:
    p, m = config.prometheus, config.prometheus.metrics
    client = Client(config, target.prometheus_url, target.token_env, target.headers)
    end = window_end(config)
    f = Finding(target.name, client.url, start=end - config.general.window, end=end, inventory=inventory)
    match = f"{{{p.cluster_label}={quote(target.label_value)}}}" if p.cluster_label and target.label_value else ""
    try:
        f.engine = client.server()
        present = set(client.label_values("__name__", f.start, end, match=match))
        q = Queries(p, config.general.window, config.general.step, target.label_value if p.cluster_label else "")
        rows = client.query(q.doctor(present), end, what="coverage and node labels")
    except QueryFailed as exc:
        raise SourceError(f"cannot query metrics: {exc}") from None
    log(f"[{target.name}] {f.engine} at {client.url}")
    f.missing = [fam.field for fam in FAMILIES if getattr(m, fam.field) not in present]
    values = {r["metric"].get("stat", ""): float(r["value"][1]) for r in rows}
    firsts = [values[k] for k in values if k.startswith("first_")]
    lasts = [values[k] for k in values if k.startswith("last_")]
    f.first, f.last = (min(firsts) if firsts else None), (max(lasts) if lasts else None)
    f.lowest = values.get("lowest")
    f.nodes = {k: int(values.get(k, 0)) for k in ("nodes", "typed", "zoned", "grouped")}
    f.retention = str(client.status("runtimeinfo").get("storageRetention") or "")
    return f


def _day(t: float | None) -> str:
    return "unknown" if t is None else dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%d %H:%M")


def report(findings: list[Finding], config: Config) -> tuple[str, int]:
    """The text doctor prints, and its exit code."""
    lines, code = [], EXIT_OK
    window_days = config.general.window / 86400
    m = config.prometheus.metrics
    for f in findings:
        lines.append(f"cluster {f.cluster}: {f.engine or 'unknown engine'} at {f.url}")
        lines.append(f"  window: {dur(config.general.window)} ending {_day(f.end)} UTC, step {dur(config.general.step)}")
        lines.append("  coverage: " + _coverage(f, config.general.step, window_days))
        lowest = f" ; oldest sample in its TSDB {_day(f.lowest)} UTC" if f.lowest else ""
        lines.append(f"  retention: {f.retention or 'unknown (the server does not say)'}{lowest}")
        if f.nodes.get("nodes"):
            n = f.nodes
            lines.append(f"  nodes: {n['nodes']}; with an instance type {n['typed']}, a zone {n['zoned']}, "
                         f"a node group or Karpenter NodePool {n['grouped']}")
        needed = {fam.field for fam in read_by(f.inventory == "prometheus")}
        lines.append(f"  metric families (workload specs from {f.inventory}):")
        for fam in FAMILIES:
            name = getattr(m, fam.field)
            if fam.field not in f.missing:
                lines.append(f"    ok       {name}")
            elif fam.field not in needed:
                lines.append(f"    missing  {name}: not needed (specs from {f.inventory})")
            else:
                lines.append(f"    MISSING  {name} ({fam.source}): disables {fam.disables}; hint: {fam.hint}")
                code = EXIT_ERROR if fam.core else code
    return "\n".join(lines), code


def _coverage(f: Finding, step: float, window_days: float) -> str:
    if f.first is None or f.last is None:
        return "no kube_pod_owner or node samples in the window"
    days = (f.last - f.first + step) / 86400
    text = f"data from {_day(f.first - step)} to {_day(f.last)} UTC: {days:.1f} of the {window_days:g} days"
    if days < window_days - step / 86400 - 1e-9:
        text += (" (the server keeps less than the window: per-hour figures will be rates over these days; shorten "
                 "[general] window or keep more days)")
    return text
