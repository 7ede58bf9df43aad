"""Usage from a Prometheus-compatible API (Prometheus, Thanos Query, Mimir, VictoriaMetrics).

- client.py: HTTP (auth, TLS, retries, errors) and reading answers into numpy;
- promql.py: the queries (plain per-pod range queries, a few cheap instant queries);
- execute.py: shards, time chunks, the bounded pool, splits on failure;
- usage.py: each chunk reduced as it arrives into histograms and daily sums;
- collect.py: one cluster's collection, start to finish, in four steps: run.py (the start and the run's state),
  labels.py (owners and placement from the series API), pulls.py (the per-shard requests), assemble.py (the tables);
- series.py: drill-down series.

Thanos Query, Grafana Mimir and VictoriaMetrics cluster (settings in ``[prometheus]``):
- Thanos Query: ``query_params = {partial_response = "false", dedup = "true"}`` so a store that is
  down fails the query instead of silently returning less data, and HA replicas are deduplicated.
- Mimir: ``url = "https://mimir.example/prometheus"`` (the API's path prefix); ``headers =
  {"X-Scope-OrgID" = "tenant-a"}``; a bearer token from ``token_env`` / ``token_file``.
- VictoriaMetrics cluster: ``url = "https://vmselect.example:8481/select/0/prometheus"`` (tenant 0).
- Many clusters in one store: ``cluster_label = "cluster"``; every selector carries
  ``cluster="<name>"`` and the clusters are discovered from the label's values.
"""
from .client import Client, QueryFailed, RangeSeries, parse_matrix
from .collect import collect_usage, discover_clusters, window_end
from .execute import plan_shards
from .series import fetch_series

__all__ = ["Client", "QueryFailed", "RangeSeries", "parse_matrix", "collect_usage", "discover_clusters", "window_end",
           "plan_shards", "fetch_series"]
