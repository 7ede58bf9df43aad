"""Which clusters one run collects, and where each one's metrics and specs come from."""
from __future__ import annotations

from dataclasses import dataclass, field

from .config import Config


@dataclass(frozen=True)
class ClusterTarget:
    """One cluster to collect.

    ``label_value`` is the value of ``[prometheus] cluster_label`` that selects this cluster's series in a
    shared multi-cluster store ('' = no cluster matcher, the whole server is this one cluster).
    """

    name: str
    prometheus_url: str
    token_env: str = ""
    headers: dict = field(default_factory=dict)
    label_value: str = ""
    context: str = ""
    manifests: str = ""


def cluster_targets(config: Config, *, manifests: str = "", context: str = "") -> list[ClusterTarget]:
    """The clusters of this run: the [[clusters]] entries, or the clusters named in [prometheus] clusters
    (with cluster_label), or the single cluster [general] cluster_name. Discovery of clusters from the
    label's values happens in the Prometheus source (it needs a query)."""
    p = config.prometheus
    if config.clusters:
        return [
            ClusterTarget(
                name=c.name,
                prometheus_url=c.prometheus_url or p.url,
                token_env=c.token_env or p.token_env,
                headers={**p.headers, **c.headers},
                label_value=(c.label_value or c.name) if (p.cluster_label and not c.prometheus_url) else c.label_value,
                context=c.context or context,
                manifests=c.manifests or manifests,
            )
            for c in config.clusters
        ]
    if p.cluster_label and p.clusters:
        return [ClusterTarget(name=n, prometheus_url=p.url, token_env=p.token_env, headers=dict(p.headers),
                              label_value=n, context=context, manifests=manifests) for n in p.clusters]
    return [ClusterTarget(name=config.general.cluster_name, prometheus_url=p.url, token_env=p.token_env,
                          headers=dict(p.headers), context=context, manifests=manifests)]
