"""The collect stage: pull specs, usage and prices for every cluster of the run into one snapshot.

Each cluster is collected into a snapshot of its own and merged only when it completes, so a
failing cluster leaves no half rows behind; with several clusters the others still complete and
the failure is recorded in meta.json (the CLI then exits with the "partial" code).
"""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Callable

import pandas as pd

from . import __version__
from .config import Config
from .errors import ConfigError, RightsizeError, SourceError
from .schema import TABLES
from .snapshot import Snapshot, new_meta
from .targets import ClusterTarget, cluster_targets

Log = Callable[[str], None]


def window_bounds(config: Config, now: dt.datetime | None = None) -> tuple[dt.datetime, dt.datetime]:
    """Window end ([prometheus] end, or now, floored to the step) and start (end - window), UTC."""
    if now is None:
        from .sources.prometheus import window_end

        end = dt.datetime.fromtimestamp(window_end(config), dt.timezone.utc)
    else:
        step = max(int(config.general.step), 1)
        end = dt.datetime.fromtimestamp(int(now.timestamp()) // step * step, dt.timezone.utc)
    return end - dt.timedelta(seconds=config.general.window), end


def inventory_source(config: Config, manifests: str) -> str:
    """Where workload specs come from for this run: manifests, api or prometheus."""
    chosen = config.kubernetes.source
    if manifests:
        return "manifests"
    if chosen != "auto":
        if chosen == "manifests" and not config.kubernetes.manifests:
            raise ConfigError("config: kubernetes.source = \"manifests\" needs kubernetes.manifests or --manifests PATH")
        return chosen
    if config.kubernetes.manifests:
        return "manifests"
    in_cluster = bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
    kubeconfig = config.kubernetes.kubeconfig or os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    return "api" if in_cluster or Path(kubeconfig.split(os.pathsep)[0]).expanduser().exists() else "prometheus"


def merge_into(target: Snapshot, part: Snapshot) -> None:
    """Append ``part``'s tables and caveats to ``target`` (clusters are disjoint by identity)."""
    for name in TABLES:
        frames = [df for df in (target.tables[name], part.tables[name]) if len(df)]
        if frames:
            target.tables[name] = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    for w in part.meta["warnings"]:
        target.warn(**w)
    target.meta["missing_metrics"] = sorted(set(target.meta["missing_metrics"]) | set(part.meta.get("missing_metrics", [])))
    for key, value in part.meta.get("partial", {}).items():
        current = target.meta["partial"].setdefault(key, [])
        current.extend(v for v in value if v not in current)
    target.meta["sources"].update(part.meta.get("sources", {}))


def collect_cluster(config: Config, target: ClusterTarget, source: str, *, allow_partial: bool, log: Log) -> Snapshot:
    """Collect one cluster into a fresh snapshot (usage first, then specs)."""
    from .sources import prometheus

    part = Snapshot(meta=new_meta())
    manifests = target.manifests or config.kubernetes.manifests
    # Usage first: Prometheus fills the nodes table, and the API source only fills nodes when it is empty.
    log(f"[{target.name}] querying usage from {target.prometheus_url}")
    prometheus.collect_usage(config, target, part, allow_partial=allow_partial,
                             inventory_from_metrics=(source == "prometheus"), progress=log)
    if source == "manifests":
        from .sources.manifests import load_manifests

        log(f"[{target.name}] reading manifests from {manifests}")
        warnings: list = []
        tables = load_manifests(manifests, config, target.name, warnings=warnings)
        for name, df in tables.items():
            part.tables[name] = df
        for w in warnings:
            part.warn(**w)
    elif source == "api":
        from .sources.kubernetes import collect_inventory

        log(f"[{target.name}] listing workloads from the Kubernetes API")
        collect_inventory(config, target, part)
    part.meta["sources"][target.name] = {"workloads": source, "usage": target.prometheus_url}
    return part


def collect(config: Config, *, manifests: str = "", context: str = "", allow_partial: bool = False,
            series: tuple[str, ...] = (), log: Log = print, now: dt.datetime | None = None) -> Snapshot:
    """Run the collect stage for every cluster; raises SourceError when nothing could be collected.

    ``meta["partial"]["clusters"]`` lists clusters that failed while others completed.
    """
    refs = parse_series_refs(series)  # before any query: a typo should not cost a collection
    start, end = window_bounds(config, now)
    snapshot = Snapshot(meta=new_meta(window_start=start.isoformat(), window_end=end.isoformat(),
                                      step_seconds=config.general.step, versions={"rightsize": __version__}))
    targets = cluster_targets(config, manifests=manifests, context=context)
    if config.prometheus.cluster_label and not config.clusters and not config.prometheus.clusters:
        from .sources.prometheus import discover_clusters

        names = discover_clusters(config, config.prometheus.url)
        if not names:
            raise SourceError(f"{config.prometheus.url}: no series carry the cluster label {config.prometheus.cluster_label!r}")
        base = targets[0]
        targets = [ClusterTarget(name=n, prometheus_url=base.prometheus_url, token_env=base.token_env, headers=base.headers,
                                 label_value=n, context=context, manifests=manifests) for n in names]
        log(f"discovered clusters: {', '.join(names)}")
    source = inventory_source(config, manifests)
    preflight(config, targets, source)
    failed: list[str] = []
    for target in targets:
        try:
            part = collect_cluster(config, target, source, allow_partial=allow_partial, log=log)
        except RightsizeError as exc:
            if len(targets) == 1:
                raise
            failed.append(target.name)
            snapshot.warn("cluster_failed", f"cluster {target.name!r} was not collected: {exc}", affects=target.name)
            log(f"[{target.name}] FAILED: {exc}")
            continue
        merge_into(snapshot, part)
        snapshot.meta["clusters"].append(target.name)
        if refs:
            _collect_series(config, target, refs, snapshot)
    if failed:
        snapshot.meta["partial"]["clusters"] = failed
        if len(failed) == len(targets):
            raise SourceError(f"no cluster could be collected ({', '.join(failed)})")
    from .sources.aws import collect_prices

    log("looking up prices")
    collect_prices(config, snapshot)
    return snapshot.validate()


def preflight(config: Config, targets: list[ClusterTarget], source: str) -> None:
    """Cheap checks before any query, so a typo does not cost a whole collection."""
    if source == "manifests":
        for target in targets:
            path = target.manifests or config.kubernetes.manifests
            if not Path(path).exists():
                raise SourceError(f"{path}: manifests not found (--manifests or [kubernetes] manifests)")
    from .sources.aws import require_credentials

    require_credentials(config)


def parse_series_refs(refs: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """NAMESPACE/KIND/NAME strings of --series as tuples; ConfigError on a malformed one."""
    parsed = []
    for ref in refs:
        parts = ref.split("/")
        if len(parts) != 3 or not all(parts):
            raise ConfigError(f"--series {ref!r}: expected NAMESPACE/KIND/NAME")
        parsed.append(tuple(parts))
    return parsed


def _collect_series(config: Config, target: ClusterTarget, refs: list[tuple[str, str, str]], snapshot: Snapshot) -> None:
    from .sources.prometheus import fetch_series

    frame = fetch_series(config, target, refs)
    if len(frame):
        snapshot.tables["series"] = pd.concat([snapshot.tables["series"], frame], ignore_index=True) if len(snapshot.tables["series"]) else frame
