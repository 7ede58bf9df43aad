"""The labels of one cluster's series, from one series-API request: pod owners (kube-state-metrics,
batch-framework groups), pod placement, and the working-set series per namespace (to size shards)."""
from __future__ import annotations

import pandas as pd

from ...batch_groups import KINDS as BATCH_FIELDS
from ...batch_groups import ksm_label, label_keys
from ...errors import SourceError
from .. import ksm
from . import sanity
from .client import QueryFailed
from .run import Run


def series_frames(found: list[dict]):
    """``frame(metric, labels)``: the label values of the series-API answer ``found`` for one metric,
    one row per series ('' for a missing label)."""
    by_name: dict[str, list[dict]] = {}
    for s in found:
        by_name.setdefault(s.get("__name__", ""), []).append(s)

    def frame(metric: str, cols: list[str]) -> pd.DataFrame:
        rows = by_name.get(metric, [])
        return pd.DataFrame([[r.get(c, "") for c in cols] for r in rows], columns=cols) if rows else pd.DataFrame(columns=cols)

    return frame


def owners_of(frame, L, m) -> dict[tuple, tuple]:
    """(namespace, pod) -> (kind, workload) from the kube-state-metrics owner series (Pod ->
    ReplicaSet -> Deployment, Job -> CronJob); ``frame`` from :func:`series_frames`."""
    def renamed(metric, labels, cols):
        f = frame(metric, labels)
        f.columns = cols
        return f

    owners = ksm.resolve_owners(
        renamed(m.pod_owner, [L.namespace, L.pod, L.owner_kind, L.owner_name, "owner_is_controller"],
                ["namespace", "pod", "owner_kind", "owner_name", "owner_is_controller"]),
        renamed(m.replicaset_owner, [L.namespace, L.replicaset, L.owner_kind, L.owner_name], ["namespace", "replicaset", "owner_kind", "owner_name"]),
        renamed(m.job_owner, [L.namespace, L.job, L.owner_kind, L.owner_name], ["namespace", "job_name", "owner_kind", "owner_name"]))
    return {(a, b): (c, d) for a, b, c, d in owners.itertuples(index=False, name=None)}


def read_labels(run: Run) -> None:
    """Owners, pod nodes and container series per namespace from one series-API request."""
    L, m = run.labels, run.config.prometheus.metrics
    start = run.grid.end - run.config.general.window
    keys = label_keys(run.config)
    firsts = tuple(dict.fromkeys(ksm_label(getattr(run.config.batch_groups, f)[0]) for f in BATCH_FIELDS
                                 if getattr(run.config.batch_groups, f))) if run.has("pod_labels") else ()
    try:
        found = run.client.series(run.q.owners_and_series(group_labels=firsts), start, run.grid.end,
                                  what="series (owners, placement, sizes)")
    except QueryFailed as exc:
        raise SourceError(f"cannot read pod owners: {exc}") from None
    frame = series_frames(found)
    run.duplicates = sanity.scrape_duplicates(found, m.memory_working_set, [L.namespace, L.pod, L.container],
                                              run.config.prometheus.scrape_labels)
    run.owners = owners_of(frame, L, m)
    groups = ksm.batch_groups(frame(m.pod_labels, [L.namespace, L.pod] + [ksm_label(k) for k in keys]).rename(
        columns={L.namespace: "namespace", L.pod: "pod"}), run.config)
    run.owners.update({(a, b): (c, d) for a, b, c, d in groups.itertuples(index=False, name=None)})
    info = frame(m.pod_info, [L.namespace, L.pod, L.node])
    run.nodes_of = {(a, b): c for a, b, c in info.itertuples(index=False, name=None)}
    wss = frame(m.memory_working_set, [L.namespace, L.pod, L.container]).drop_duplicates()
    wss = wss[wss[L.namespace] != ""]
    run.series_per_namespace = {str(k): float(v) for k, v in wss[L.namespace].value_counts().items()}
