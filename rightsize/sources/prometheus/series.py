"""Drill-down: the usage time series of a few chosen workloads, for a notebook (never for all)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ...config import Config
from ...errors import ConfigError, SourceError
from ...refs import FORMS, WorkloadRef
from ...schema import TABLES
from ...snapshot import Snapshot, conform
from .client import Client, QueryFailed
from .assemble import append
from .labels import owners_of, series_frames
from .run import window_end
from .execute import MAX_RANGE_STEPS
from .promql import Queries, regex_alternation
from .usage import Grid


def fetch_series(config: Config, target=None, refs=None, *, snapshot: Snapshot | None = None,
                 step: float | None = None) -> pd.DataFrame:
    """Busiest-replica CPU (cores) and working set (bytes) per container of the chosen workloads, at
    ``step`` seconds (default ``[general] step``) over the window, in the snapshot ``series`` table format. ``refs``: (namespace,
    kind, workload) tuples, refs.WorkloadRef or their text (NAMESPACE/KIND/NAME; kind case-insensitive). Each pod's samples are pulled plainly and
    the busiest replica is taken here. ConfigError when a reference matches no workload."""
    from ...targets import cluster_targets

    target = target or cluster_targets(config)[0]
    wanted = _parse(refs)
    p = config.prometheus
    client = Client(config, target.prometheus_url, target.token_env, target.headers)
    grid = Grid.of(window_end(config), config.general.window, step or config.general.step)
    q = Queries(p, config.general.window, config.general.step, target.label_value if p.cluster_label else "")
    namespaces = sorted({r.namespace for r in wanted})
    try:
        owners = _owners(client, q, namespaces, grid, config)
        pods = _pods_of(owners, wanted, target.name)
        frames = [_resource(client, q, res, namespaces, pods, grid, owners) for res in ("cpu", "memory")]
    except QueryFailed as exc:
        raise SourceError(str(exc)) from None
    out = frames[0].merge(frames[1], on=["namespace", "kind", "workload", "container", "timestamp"], how="outer")
    out["cluster"] = target.name
    hits = [ref.mask(out) for ref in wanted]
    absent = [str(ref) for ref, hit in zip(wanted, hits) if not hit.any()]
    out = out[np.logical_or.reduce(hits)]
    if absent:
        raise ConfigError(f"--series: no usage found for {', '.join(absent)} in the window at {client.url} "
                          "(check NAMESPACE/KIND/NAME: kind as the controller's, e.g. Deployment, CronJob)")
    out["timestamp"] = pd.to_datetime(out["timestamp"], unit="s", utc=True)
    out = conform("series", out[[c.name for c in TABLES["series"]]])
    if snapshot is not None:
        append(snapshot, "series", out)
    return out


def _parse(refs) -> list[WorkloadRef]:
    parsed = [r if isinstance(r, WorkloadRef) else WorkloadRef.parse(r if isinstance(r, str) else "/".join(r), what="series")
              for r in refs or []]
    if not parsed:
        raise ConfigError(f"series: name at least one workload ({FORMS})")
    return parsed


def _owners(client, q, namespaces, grid, config) -> dict:
    L, m = config.prometheus.labels, config.prometheus.metrics
    found = client.series(q.owners_and_series(namespaces)[:3], grid.end - config.general.window, grid.end)
    return owners_of(series_frames(found), L, m)


def _pods_of(owners: dict, wanted: list[WorkloadRef], cluster: str) -> list[str]:
    """The pods of ``cluster`` whose owner is one of the wanted workloads."""
    frame = pd.DataFrame([(cluster, ns, pod, kind, workload) for (ns, pod), (kind, workload) in owners.items()],
                         columns=["cluster", "namespace", "pod", "kind", "workload"])
    if frame.empty:
        return []
    return sorted(set(frame.loc[np.logical_or.reduce([ref.mask(frame) for ref in wanted]), "pod"]))


def _resource(client, q, res, namespaces, pods, grid, owners) -> pd.DataFrame:
    """One resource's busiest replica per container and step, from the range answers of the wanted pods only."""
    L = q.cfg.labels
    col = "cpu_cores" if res == "cpu" else "memory_bytes"
    frames = []
    query = q.usage(res, namespaces, extra=f"{L.pod}=~{regex_alternation(pods)}") if pods else ""
    for i in range(0, grid.n if pods else 0, MAX_RANGE_STEPS):
        t0 = grid.first + i * grid.step
        t1 = grid.first + (min(grid.n, i + MAX_RANGE_STEPS) - 1) * grid.step
        for s in client.query_range(query, t0, t1, grid.step, [L.namespace, L.pod, L.container],
                                    what=f"{res} series", timestamps=True):
            kind, workload = owners.get(s.key[:2], ("", ""))
            frames.append(pd.DataFrame({"namespace": s.key[0], "kind": kind, "workload": workload, "container": s.key[2],
                                        "timestamp": s.timestamps, col: s.values}))
    if not frames:
        return pd.DataFrame(columns=["namespace", "kind", "workload", "container", "timestamp", col])
    f = pd.concat(frames, ignore_index=True)
    f = f[(f["workload"] != "") & ~np.isnan(f[col])]
    return f.groupby(["namespace", "kind", "workload", "container", "timestamp"], as_index=False)[col].max()
