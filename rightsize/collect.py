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

from .version import __version__
from .config import Config
from .escape import clean_text
from .errors import ConfigError, RightsizeError, SourceError
from .refs import WorkloadRef, refs_text
from .schema import TABLES
from .snapshot import Snapshot, new_meta
from .table_sink import appended
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


def merge_into(target: Snapshot, part: Snapshot, streamed: dict[str, list]) -> None:
    """Append ``part``'s tables and caveats to ``target`` (clusters are disjoint by identity); a table ``part``
    streamed to a staged file (the per-pod histograms) is added to ``streamed`` instead, for
    :func:`join_streamed` to write once, however many clusters there are."""
    for name in TABLES:
        if part.tables.lazy(name) is not None:
            streamed.setdefault(name, []).append(part.tables.lazy(name))
            continue
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
    if part.meta.get("coverage"):
        target.meta.setdefault("coverage", {}).update(part.meta["coverage"])


def join_streamed(target: Snapshot, streamed: dict[str, list]) -> None:
    """Each streamed table of the clusters as one staged file (one cluster's file as it is)."""
    for name, parts in streamed.items():
        target.tables[name] = parts[0] if len(parts) == 1 else appended(name, *parts)


def read_manifests(config: Config, target: ClusterTarget, log: Log) -> tuple[dict, list]:
    """The manifests tables of ``target`` and their caveats; SourceError names the file and object at fault."""
    from .sources.manifests import load_manifests

    manifests = target.manifests or config.kubernetes.manifests
    log(f"[{target.name}] reading manifests from {manifests}")
    warnings: list = []
    return load_manifests(manifests, config, target.name, warnings=warnings), warnings


def collect_cluster(config: Config, target: ClusterTarget, source: str, *, allow_partial: bool, log: Log,
                    manifests_read: tuple[dict, list] | None = None) -> Snapshot:
    """Collect one cluster into a fresh snapshot (manifests, then usage, then specs from the API).

    ``manifests_read``: the target's manifests already read by read_manifests (before any query)."""
    from .sources import prometheus

    part = Snapshot(meta=new_meta())
    if source == "manifests":
        tables, warnings = manifests_read or read_manifests(config, target, log)
        for name, df in tables.items():
            part.tables[name] = df
        for w in warnings:
            part.warn(**w)
    # Usage before the API: Prometheus fills the nodes table, and the API source only fills nodes when it is empty.
    log(f"[{target.name}] querying usage from {target.prometheus_url}")
    prometheus.collect_usage(config, target, part, allow_partial=allow_partial,
                             inventory_from_metrics=(source == "prometheus"), progress=log)
    if source == "manifests":
        check_manifest_usage(part, target.manifests or config.kubernetes.manifests, target, allow_partial=allow_partial, log=log)
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
    source = inventory_source(config, manifests)
    preflight(config, targets, source)
    # Manifests are parsed before any query: a YAML error must not cost a whole collection.
    read = {t.name: read_manifests(config, t, log) for t in targets} if source == "manifests" else {}
    if config.prometheus.cluster_label and not config.clusters and not config.prometheus.clusters:
        from .sources.prometheus import discover_clusters

        names = discover_clusters(config, config.prometheus.url)
        if not names:
            raise SourceError(f"{config.prometheus.url}: no series carry the cluster label {config.prometheus.cluster_label!r}")
        base = targets[0]
        targets = [ClusterTarget(name=n, prometheus_url=base.prometheus_url, token_env=base.token_env, headers=base.headers,
                                 label_value=n, context=context, manifests=manifests) for n in names]
        log(f"discovered clusters: {', '.join(names)}")
    _check_series_clusters(refs, targets)
    failed: list[str] = []
    streamed: dict[str, list] = {}  # per table streamed to staged files, each cluster's file
    for target in targets:
        try:
            part = collect_cluster(config, target, source, allow_partial=allow_partial, log=log,
                                   manifests_read=read.get(target.name))
        except RightsizeError as exc:
            if len(targets) == 1:
                raise
            failed.append(target.name)
            snapshot.warn("cluster_failed", f"cluster {target.name!r} was not collected: {exc}", affects=target.name)
            log(f"[{target.name}] FAILED: {exc}")
            continue
        merge_into(snapshot, part, streamed)
        snapshot.meta["clusters"].append(target.name)
        if refs:
            _collect_series(config, target, refs, snapshot)
    join_streamed(snapshot, streamed)
    drop_invalid_names(snapshot, log)
    if failed:
        snapshot.meta["partial"]["clusters"] = failed
        if len(failed) == len(targets):
            raise SourceError(f"no cluster could be collected ({', '.join(failed)})")
    from .sources.aws import collect_prices

    log("looking up prices")
    collect_prices(config, snapshot, progress=log)
    return snapshot.validate()


def preflight(config: Config, targets: list[ClusterTarget], source: str) -> None:
    """Cheap checks before any query, so a typo or a missing AWS access does not cost a whole collection."""
    if source == "manifests":
        for target in targets:
            path = target.manifests or config.kubernetes.manifests
            if not Path(path).exists():
                raise SourceError(f"{path}: manifests not found (--manifests or [kubernetes] manifests)")
    from .sources.price_list import require_credentials

    require_credentials(config)


def drop_invalid_names(snapshot: Snapshot, log: Log) -> None:
    """Names are data: rows whose namespace, kind, workload or container (from metrics labels, say) is not
    a Kubernetes name are left out of every table, and a team label that is not a label value is cleared,
    each with one warning naming them, escaped (names.py). Kubernetes itself allows no other names; such
    values come from relabelling, multi-tenant stores or misconfiguration."""
    from .names import describe_invalid, invalid_rows, valid

    named, count = [], 0
    for name in list(snapshot.tables):
        if snapshot.tables.lazy(name) is not None:  # streamed by collect, its names checked as it was written
            continue
        table = snapshot.tables[name]
        if table.empty:
            continue
        bad = invalid_rows(table)
        if bad.any():
            named.append(describe_invalid(table, bad))
            count += int(bad.sum()) if name in ("workloads", "containers") else 0
            snapshot.tables[name] = table[~bad].reset_index(drop=True)
    if named:
        text = (f"rows with a name that is not a valid Kubernetes name were left out ({count} workload or container "
                f"rows): {'; '.join(dict.fromkeys(named))}")
        snapshot.warn("invalid_names", text, "every table")
        log(f"warning: {text}")
    workloads = snapshot.tables["workloads"]
    if "team" in workloads and not workloads.empty:
        teams = workloads["team"].fillna("").astype(str)
        wrong = ~teams.map({t: valid("team", t) for t in pd.unique(teams)}).astype(bool)
        if wrong.any():
            shown = ", ".join(repr(clean_text(t)) for t in pd.unique(teams[wrong])[:5])
            snapshot.tables["workloads"] = workloads.assign(team=teams.where(~wrong, ""))
            text = f"team label values that are not Kubernetes label values were cleared: {shown}"
            snapshot.warn("invalid_names", text, "teams")
            log(f"warning: {text}")


def check_manifest_usage(part: Snapshot, manifests: str, target: ClusterTarget, *, allow_partial: bool, log: Log) -> None:
    """Compare the manifests' main containers with the usage found for them.

    None matched: the manifests and the metrics describe different things (another cluster, a wrong
    cluster_label or namespace filter), and every figure of the report would be "no usage data", so
    it is an error (with --allow-partial: a flagged partial result). Some unmatched is normal (new,
    scaled to zero, a CronJob that did not run): a warning lists them and the report shows it.
    """
    key = ["cluster", "namespace", "kind", "workload", "container"]
    containers = part.tables["containers"]
    main = containers.loc[containers["container_type"].isin(["main", "sidecar"]), key].drop_duplicates()
    if main.empty:
        return
    seen = part.tables["usage"][key].drop_duplicates().assign(_seen=True)
    unmatched = main.merge(seen, on=key, how="left")["_seen"].isna().to_numpy()
    missing = main[unmatched]
    if missing.empty:
        return
    names = refs_text(missing, container=True).tolist()
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    if len(missing) == len(main):
        message = (f"none of the {len(main)} containers in the manifests {manifests} has usage data at "
                   f"{target.prometheus_url} (e.g. {shown}): check that the manifests are this cluster's, and "
                   f"[prometheus] url, cluster_label and namespaces")
        if not allow_partial:
            raise SourceError(f"[{target.name}] {message}")
        part.meta["partial"].setdefault("usage_missing", []).append(target.name)
        part.warn("usage_missing", message, target.name)
        log(f"[{target.name}] WARNING: {message}")
        return
    message = (f"{len(missing)} of {len(main)} containers in the manifests have no usage data in the window: {shown} "
               "(new, scaled to zero, or not running in this cluster); they get no recommendation")
    part.warn("usage_missing", message, target.name)
    log(f"[{target.name}] warning: {message}")


def parse_series_refs(refs: tuple[str, ...]) -> list[WorkloadRef]:
    """The workloads of --series (refs.WorkloadRef forms); ConfigError on a malformed one."""
    return [WorkloadRef.parse(ref, what="--series") for ref in refs]


def _check_series_clusters(refs: list[WorkloadRef], targets: list[ClusterTarget]) -> None:
    names = [t.name for t in targets]
    for ref in refs:
        if ref.cluster and ref.cluster not in names:
            raise ConfigError(f"--series {str(ref)!r}: no cluster {ref.cluster!r} is collected (clusters: {', '.join(names)})")


def _collect_series(config: Config, target: ClusterTarget, refs: list[WorkloadRef], snapshot: Snapshot) -> None:
    from .sources.prometheus import fetch_series

    mine = [r for r in refs if r.cluster in ("", target.name)]  # a CLUSTER/... reference names one cluster
    if not mine:
        return
    fetch_series(config, target, mine, snapshot=snapshot)
