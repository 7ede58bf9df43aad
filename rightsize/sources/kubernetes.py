"""Workload inventory from the Kubernetes API, read-only, through the official ``kubernetes`` client.

One paginated list call per kind (limit/continue) across all namespaces, or per namespace when
[prometheus] namespaces selects some; never one call per workload. Lists are read as raw JSON so the
API and manifests sources hand the same camelCase dicts to k8s_objects.build_tables.

Failures: an unreachable server or a rejected token ends the run (SourceError, one line); a 403 or 404
on one kind is recorded with snapshot.warn, naming the kind and what its absence disables, and the
other kinds are still read.
"""
from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from ..config import Config
from ..errors import SourceError
from ..snapshot import Snapshot, conform
from .k8s_objects import Options, build_tables

# Order matters: Pod comes after the kinds that own pods, so _pod_filter knows which of them were listed.
# kind -> (API class, all-namespaces list method, namespaced list method or None if cluster-scoped,
#          what is lost when the kind cannot be listed)
KINDS: dict[str, tuple[type, str, str | None, str]] = {
    "Namespace": (k8s.CoreV1Api, "list_namespace", None,
                  "namespace labels: policy selection by namespace label and the team fallback"),
    "Node": (k8s.CoreV1Api, "list_node", None,
             "node inventory from the API (the metrics node table is used when present)"),
    "Deployment": (k8s.AppsV1Api, "list_deployment_for_all_namespaces", "list_namespaced_deployment",
                   "Deployments are missing from the inventory (rebuilt from ReplicaSets where those can be read)"),
    "StatefulSet": (k8s.AppsV1Api, "list_stateful_set_for_all_namespaces", "list_namespaced_stateful_set",
                    "StatefulSets are missing from the inventory (rebuilt from their pods where those can be read)"),
    "Rollout": (k8s.CustomObjectsApi, "list_cluster_custom_object", "list_namespaced_custom_object",
                "Argo Rollouts are missing from the inventory (rebuilt from their ReplicaSets where those can be read)"),
    "DaemonSet": (k8s.AppsV1Api, "list_daemon_set_for_all_namespaces", "list_namespaced_daemon_set",
                  "DaemonSets are missing from the inventory (rebuilt from their pods where those can be read)"),
    "ReplicaSet": (k8s.AppsV1Api, "list_replica_set_for_all_namespaces", "list_namespaced_replica_set",
                   "owner resolution of pods to Deployments, and standalone ReplicaSets"),
    "CronJob": (k8s.BatchV1Api, "list_cron_job_for_all_namespaces", "list_namespaced_cron_job",
                "CronJobs are missing from the inventory (rebuilt from their Jobs where those can be read)"),
    "Job": (k8s.BatchV1Api, "list_job_for_all_namespaces", "list_namespaced_job",
            "standalone Jobs, and owner resolution of Jobs to CronJobs"),
    "Pod": (k8s.CoreV1Api, "list_pod_for_all_namespaces", "list_namespaced_pod",
            "bare pods and pods of custom controllers are missing from the inventory"),
    "HorizontalPodAutoscaler": (k8s.AutoscalingV2Api, "list_horizontal_pod_autoscaler_for_all_namespaces",
                                "list_namespaced_horizontal_pod_autoscaler",
                                "HPA detection: requests an HPA scales on are not protected and not flagged"),
    "PodDisruptionBudget": (k8s.PolicyV1Api, "list_pod_disruption_budget_for_all_namespaces",
                            "list_namespaced_pod_disruption_budget",
                            "PDB resolution for spot suitability (every workload looks unprotected)"),
    "Service": (k8s.CoreV1Api, "list_service_for_all_namespaces", "list_namespaced_service",
                "the services table: cross-AZ fixes and load balancer findings"),
}

# Custom resources: the arguments of CustomObjectsApi's list calls. A 404 means the CRD is not installed
# (no Argo Rollouts in this cluster): nothing is missing, so no caveat.
CUSTOM = {"Rollout": {"group": "argoproj.io", "version": "v1alpha1", "plural": "rollouts"}}

RETRY_STATUSES = (429, 500, 502, 503, 504)


def api_client(config: Config, context: str = "") -> k8s.ApiClient:
    """An ApiClient from the kubeconfig (with ``context``) or, in a pod, the service account.

    Retries connection errors and 5xx answers with urllib3's Retry (exponential backoff)."""
    kcfg = config.kubernetes
    cfg = k8s.Configuration()
    kubeconfig = os.path.expanduser(kcfg.kubeconfig) if kcfg.kubeconfig else ""
    default_file = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or os.path.expanduser("~/.kube/config")
    try:
        if kubeconfig or Path(default_file).exists() or "KUBERNETES_SERVICE_HOST" not in os.environ:
            path = kubeconfig or default_file
            if not Path(path).exists():
                raise SourceError(
                    f"kubernetes: no kubeconfig at {path} and not running in a cluster "
                    "(set [kubernetes] kubeconfig, KUBECONFIG, or use --manifests)")
            k8s_config.load_kube_config(config_file=path, context=context or kcfg.context or None,
                                        client_configuration=cfg, persist_config=False)
        else:
            k8s_config.load_incluster_config(client_configuration=cfg)
    except ConfigException as exc:
        raise SourceError(f"kubernetes: cannot load credentials: {str(exc).splitlines()[0]}") from None
    cfg.retries = urllib3.Retry(
        total=kcfg.retries, connect=kcfg.retries, read=kcfg.retries, status=kcfg.retries,
        backoff_factor=kcfg.backoff, status_forcelist=RETRY_STATUSES, allowed_methods=("GET",),
        raise_on_status=False, respect_retry_after_header=True,
    )
    return k8s.ApiClient(cfg)


class Lister:
    """Pages through list calls, counting them (pages; urllib3 retries of one page are not counted)."""

    def __init__(self, api: k8s.ApiClient, page_size: int, timeout: float):
        self.api, self.page_size, self.timeout = api, page_size, timeout
        self.requests = 0
        self.host = api.configuration.host

    def list(self, kind: str, namespaces: tuple = (), keep: Callable[[dict], bool] | None = None) -> list[dict]:
        """Every object of ``kind`` (raw JSON dicts, with kind set), following continue tokens.

        ``keep`` filters each page as it arrives, so a big pod list is never held whole in memory."""
        cls, all_ns, per_ns, _ = KINDS[kind]
        api, custom = cls(self.api), CUSTOM.get(kind, {})
        if per_ns and namespaces:
            calls = [(getattr(api, per_ns), {**custom, "namespace": ns}) for ns in namespaces]
        else:
            calls = [(getattr(api, all_ns), dict(custom))]
        items: list[dict] = []
        for method, kwargs in calls:
            items.extend(self._pages(method, kwargs, keep))
        for item in items:
            item["kind"] = kind  # list items carry no kind of their own
        return items

    def _pages(self, method: Callable, kwargs: dict, keep: Callable[[dict], bool] | None) -> list[dict]:
        items: list[dict] = []
        token, restarted = None, False
        while True:
            try:
                body = self._get(method, kwargs, token)
            except ApiException as exc:
                if exc.status == 410 and token and not restarted:
                    # the continue token expired mid-list: start over once from a fresh snapshot
                    items, token, restarted = [], None, True
                    continue
                raise
            for item in body.get("items") or []:
                if keep is None or keep(item):
                    _slim(item)
                    items.append(item)
            token = (body.get("metadata") or {}).get("continue")
            if not token:
                return items

    def _get(self, method: Callable, kwargs: dict, token: str | None) -> dict:
        self.requests += 1
        resp = method(**kwargs, limit=self.page_size, _continue=token, _preload_content=False,
                      _request_timeout=self.timeout)
        try:
            return json.loads(resp.data)
        except ValueError:
            raise SourceError(f"kubernetes: {self.host}: answer to a list call is not JSON") from None


def _slim(item: dict) -> None:
    """Drop the bulky metadata nothing downstream reads (server-side apply bookkeeping, kubectl's copy)."""
    m = item.get("metadata") or {}
    m.pop("managedFields", None)
    (m.get("annotations") or {}).pop("kubectl.kubernetes.io/last-applied-configuration", None)


def _pod_filter(listed: set[str]) -> Callable[[dict], bool]:
    """Keep only pods that can add a workload: bare pods and pods whose owner kind was not listed
    (custom controllers, or a kind the API refused). Pods of listed ReplicaSets, Jobs, StatefulSets and
    DaemonSets add nothing their owner does not."""
    def keep(pod: dict) -> bool:
        refs = (pod.get("metadata") or {}).get("ownerReferences") or []
        owner = next((r for r in refs if r.get("controller")), refs[0] if refs else None)
        return owner is None or owner.get("kind") not in listed
    return keep


def _reason(exc: ApiException) -> str:
    try:
        message = json.loads(exc.body or "{}").get("message", "")
    except (ValueError, AttributeError):
        message = ""
    return message or exc.reason or ""


def read_objects(lister: Lister, namespaces: tuple, warn: Callable[[str, str, str], None]) -> tuple[list[dict], dict]:
    """List every kind in KINDS. Returns (objects, counts per kind); kinds that answer 403/404 are warned
    about and skipped; anything else that fails ends the run with SourceError."""
    objects: list[dict] = []
    counts: dict[str, Any] = {}
    listed: set[str] = set()
    for kind, (_, _, _, loses) in KINDS.items():
        try:
            items = lister.list(kind, namespaces, keep=_pod_filter(listed) if kind == "Pod" else None)
        except ApiException as exc:
            if exc.status == 401:
                raise SourceError(
                    f"kubernetes: {lister.host}: 401 Unauthorized listing {kind}s: the token is invalid or expired "
                    "(refresh the kubeconfig credentials)") from None
            if exc.status == 404 and kind in CUSTOM:
                counts[kind] = "not installed"  # the CRD does not exist: there are none
                continue
            if exc.status in (403, 404):
                what = "forbidden" if exc.status == 403 else "not served by this API server"
                warn(f"kubernetes_{'forbidden' if exc.status == 403 else 'not_found'}",
                     f"listing {kind}s is {what} ({exc.status}: {_reason(exc)}); continuing without them",
                     loses)
                counts[kind] = f"http {exc.status}"
                continue
            raise SourceError(f"kubernetes: {lister.host}: listing {kind}s failed with HTTP {exc.status}: {_reason(exc)}") from None
        except urllib3.exceptions.HTTPError as exc:
            cause = getattr(exc, "reason", None) or exc
            raise SourceError(f"kubernetes: cannot reach the API server at {lister.host}: {cause}") from None
        except OSError as exc:
            raise SourceError(f"kubernetes: cannot reach the API server at {lister.host}: {exc}") from None
        objects.extend(items)
        counts[kind] = len(items)
        listed.add(kind)
    return objects, counts


def collect_inventory(config: Config, target, snapshot: Snapshot, *, api: k8s.ApiClient | None = None) -> None:
    """Fill snapshot workloads, containers, services, namespaces and runtimes for ``target`` from the API; nodes too
    when the snapshot has none for this cluster yet. Rows of this cluster already present are replaced.

    ``target`` is a rightsize.targets.ClusterTarget (name, context). ``api`` overrides the client (tests)."""
    api = api or api_client(config, getattr(target, "context", ""))
    lister = Lister(api, config.kubernetes.page_size, config.kubernetes.timeout)
    namespaces = tuple(config.prometheus.namespaces)
    objects, counts = read_objects(lister, namespaces, snapshot.warn)

    opts = Options(
        cluster=target.name, source="api", config=config, now=dt.datetime.now(dt.timezone.utc),
        window_hours=config.general.window / 3600.0, namespaces=namespaces,
        exclude_namespaces=tuple(config.prometheus.exclude_namespaces),
    )
    tables = build_tables(objects, opts, snapshot.warn)
    # a kind the API refused is unknown, not absent: its rows must not read "no HPA" / "no PDB"
    for kind, column in (("HorizontalPodAutoscaler", "hpa_unknown"), ("PodDisruptionBudget", "pdb_unknown")):
        tables["workloads"][column] = isinstance(counts.get(kind), str)

    for name in ("workloads", "containers", "services", "namespaces", "runtimes"):
        _replace_cluster_rows(snapshot, name, target.name, tables[name])
    nodes = snapshot.tables["nodes"]
    if not (nodes["cluster"] == target.name).any() and not tables["nodes"].empty:
        _replace_cluster_rows(snapshot, "nodes", target.name, tables["nodes"])

    # one key per cluster: collect.merge_into combines per-cluster snapshots with dict.update
    snapshot.meta.setdefault("sources", {})[f"kubernetes_api:{target.name}"] = {
        "server": lister.host, "list_requests": lister.requests, "objects": counts,
    }


def _replace_cluster_rows(snapshot: Snapshot, name: str, cluster: str, new: pd.DataFrame) -> None:
    old = snapshot.tables[name]
    kept = old[old["cluster"] != cluster]
    frames = [f for f in (kept, new) if not f.empty]
    merged = pd.concat(frames, ignore_index=True) if frames else new
    snapshot.tables[name] = conform(name, merged)
