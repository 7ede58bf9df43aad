"""The API source, through the real `kubernetes` client (kubeconfig, Configuration, urllib3 retries).

There is no API server on this machine: a small HTTP server on 127.0.0.1 STANDS IN FOR THE KUBERNETES
API SERVER. It serves Kubernetes-shaped JSON list responses for the paths the client calls, honours
limit/continue, answers 403 for one kind and 500 once for another, and records every request so the
tests can assert what the client really sent.
"""
from __future__ import annotations

import dataclasses
import json
import socket
import threading
from pathlib import Path
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from rightsize.config import Config
from rightsize.errors import SourceError
from rightsize.snapshot import Snapshot
from rightsize.sources.kubernetes import collect_inventory
from rightsize.targets import ClusterTarget

TEMPLATE = {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "app", "resources": {"requests": {"cpu": "200m", "memory": "128Mi"}}}]}}


def _deploy(name, app):
    return {"metadata": {"name": name, "namespace": "shop", "annotations": {}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": app}},
                     "template": {**TEMPLATE, "metadata": {"labels": {"app": app}}}},
            "status": {"replicas": 2}}


def _owned(name, kind, owner, **extra):
    return {"metadata": {"name": name, "namespace": "shop",
                         "ownerReferences": [{"apiVersion": "v1", "kind": kind, "name": owner, "uid": "u", "controller": True}]},
            **extra}


# path -> items; every path is a real list endpoint of the Kubernetes API
ITEMS = {
    "/api/v1/namespaces": [{"metadata": {"name": "shop", "labels": {"team": "commerce"}}},
                           {"metadata": {"name": "kube-system"}}],
    "/api/v1/nodes": [{"metadata": {"name": "n1", "labels": {"node.kubernetes.io/instance-type": "m6i.large",
                                                             "topology.kubernetes.io/zone": "eu-west-1a",
                                                             "karpenter.sh/capacity-type": "on-demand"}},
                       "status": {"allocatable": {"cpu": "2", "memory": "8Gi"}}}],
    # five Deployments, served two per page: the client must follow two continue tokens
    "/apis/apps/v1/deployments": [_deploy(f"web-{i}", f"web-{i}") for i in range(5)],
    "/apis/apps/v1/statefulsets": [{"metadata": {"name": "db", "namespace": "shop"},
                                    "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "db"}},
                                             "template": {**TEMPLATE, "metadata": {"labels": {"app": "db"}}}}}],
    "/apis/apps/v1/daemonsets": [],
    "/apis/apps/v1/replicasets": [_owned("web-0-5d9f", "Deployment", "web-0", spec={"replicas": 2, "template": TEMPLATE})],
    "/apis/batch/v1/cronjobs": [{"metadata": {"name": "nightly", "namespace": "shop"},
                                 "spec": {"schedule": "0 2 * * *", "jobTemplate": {"spec": {"template": TEMPLATE}}}}],
    "/apis/batch/v1/jobs": [_owned("nightly-2891", "CronJob", "nightly", spec={"template": TEMPLATE})],
    "/api/v1/pods": [
        _owned("web-0-5d9f-abc", "ReplicaSet", "web-0-5d9f", spec=TEMPLATE["spec"]),
        _owned("nightly-2891-xyz", "Job", "nightly-2891", spec=TEMPLATE["spec"]),
        {"metadata": {"name": "debug", "namespace": "shop"}, "spec": TEMPLATE["spec"]},
        {"metadata": {"name": "coredns-1", "namespace": "kube-system"}, "spec": TEMPLATE["spec"]},
    ],
    "/apis/autoscaling/v2/horizontalpodautoscalers": [
        {"metadata": {"name": "web-1", "namespace": "shop"},
         "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web-1"}, "minReplicas": 2, "maxReplicas": 6,
                  "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]}}],
    "/apis/policy/v1/poddisruptionbudgets": [],
    "/api/v1/services": [{"metadata": {"name": "web-0", "namespace": "shop",
                                       "annotations": {"service.kubernetes.io/topology-mode": "Auto"}},
                          "spec": {"type": "ClusterIP", "selector": {"app": "web-0"}, "ports": [{"port": 80, "protocol": "TCP"}],
                                   "trafficDistribution": "PreferClose", "internalTrafficPolicy": "Local"}}],
}


class StandInApiServer:
    """Stands in for a Kubernetes API server (see the module docstring)."""

    def __init__(self, forbidden=("/apis/policy/v1/poddisruptionbudgets",), fail_once=("/apis/apps/v1/statefulsets",),
                 status_for_all: int | None = None, expire_continue_once=(), items: dict | None = None):
        self.items = ITEMS if items is None else items  # path -> list items served there
        self.requests: list[tuple[str, dict, str]] = []
        self.forbidden, self.fail_once, self.status_for_all = set(forbidden), set(fail_once), status_for_all
        self.expire_continue_once = set(expire_continue_once)
        self._failed: set[str] = set()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                outer.requests.append((url.path, query, self.headers.get("Authorization", "")))
                status, body = outer.answer(url.path, query)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def answer(self, path: str, query: dict) -> tuple[int, dict]:
        if self.status_for_all:
            return self.status_for_all, _status(self.status_for_all, "Unauthorized")
        if path in self.forbidden:
            return 403, _status(403, f'poddisruptionbudgets.policy is forbidden: User "system:serviceaccount:rs:rightsize" cannot list resource')
        if path in self.fail_once and path not in self._failed:
            self._failed.add(path)
            return 500, _status(500, "etcdserver: request timed out")
        if query.get("continue") and path in self.expire_continue_once:
            self.expire_continue_once.discard(path)
            return 410, _status(410, "The provided continue parameter is too old to display a consistent list result.")
        parts = path.strip("/").split("/")
        if "namespaces" in parts[:-1] and len(parts) >= 4:  # /api[s]/.../namespaces/<ns>/<resource>
            at = parts.index("namespaces")
            namespace, cluster_path = parts[at + 1], "/" + "/".join(parts[:at] + parts[at + 2:])
            items = [i for i in self.items.get(cluster_path, []) if i["metadata"].get("namespace") == namespace]
        elif path in self.items:
            items = self.items[path]
        else:
            return 404, _status(404, "the server could not find the requested resource")
        start = int(query.get("continue", "0") or 0)
        limit = int(query.get("limit", len(items)) or len(items))
        page = items[start:start + limit]
        meta = {"resourceVersion": "42"}
        if start + limit < len(items):
            meta["continue"] = str(start + limit)
        return 200, {"kind": "List", "apiVersion": "v1", "metadata": meta, "items": json.loads(json.dumps(page))}

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def calls(self, path: str) -> list[dict]:
        return [q for p, q, _ in self.requests if p == path]


def _status(code: int, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "code": code}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _kubeconfig(tmp_path, server_url: str, token: str = "t0ken") -> str:
    # two contexts: the current one points at a dead port, so only --context reaches the stand-in
    path = tmp_path / "kubeconfig"
    path.write_text(f"""apiVersion: v1
kind: Config
current-context: elsewhere
clusters:
- name: test
  cluster: {{server: "{server_url}"}}
- name: dead
  cluster: {{server: "http://127.0.0.1:{_free_port()}"}}
users:
- name: reader
  user: {{token: {token}}}
contexts:
- name: test-ctx
  context: {{cluster: test, user: reader}}
- name: elsewhere
  context: {{cluster: dead, user: reader}}
""")
    return str(path)


def _config(kubeconfig: str, **kube) -> Config:
    cfg = Config()
    return dataclasses.replace(cfg, kubernetes=dataclasses.replace(
        cfg.kubernetes, kubeconfig=kubeconfig, page_size=2, backoff=0.0, timeout=10.0, **kube))


def test_collect_inventory_through_the_real_client(tmp_path):
    with StandInApiServer() as server:
        config = _config(_kubeconfig(tmp_path, server.url))
        snap = Snapshot()
        collect_inventory(config, ClusterTarget(name="prod", prometheus_url="", context="test-ctx"), snap)

    # pagination: 5 Deployments at limit=2 -> three requests, the 2nd and 3rd carry the server's tokens
    deploy_calls = server.calls("/apis/apps/v1/deployments")
    assert [q.get("continue") for q in deploy_calls] == [None, "2", "4"]
    assert all(q["limit"] == "2" for q in deploy_calls)
    # the 500 was retried by the client and the second answer used
    assert len(server.calls("/apis/apps/v1/statefulsets")) == 2
    # the kubeconfig's token was sent
    assert all(auth == "Bearer t0ken" for _, _, auth in server.requests)

    wl = snap.tables["workloads"]
    kinds = sorted(zip(wl["kind"], wl["workload"]))
    assert kinds == sorted([("Deployment", f"web-{i}") for i in range(5)] + [
        ("StatefulSet", "db"), ("CronJob", "nightly"), ("Pod", "debug")])
    # owner resolution: the ReplicaSet's pod and the Job's pod added no workloads; kube-system is excluded
    assert set(wl["cluster"]) == {"prod"} and set(wl["source"]) == {"api"}
    web1 = wl[wl["workload"] == "web-1"].iloc[0]
    assert web1["hpa"] and web1["hpa_cpu_target_percent"] == 70
    assert not wl["pdb"].any()
    c = snap.tables["containers"]
    assert len(c) == len(wl) and (c["cpu_request_cores"] == 0.2).all()

    # the 403 is reported, naming the kind and what is lost, and nothing else failed
    warn = [w for w in snap.meta["warnings"] if w["code"] == "kubernetes_forbidden"]
    assert len(warn) == 1 and "PodDisruptionBudgets" in warn[0]["message"] and "403" in warn[0]["message"]
    assert "PDB" in warn[0]["affects"]

    assert list(snap.tables["services"]["workload"]) == ["web-0"]
    # the routing the cross-AZ estimate applies, as the API serves it
    svc = snap.tables["services"].iloc[0]
    assert (svc["traffic_distribution"], svc["topology_mode"], svc["internal_traffic_policy"]) == ("PreferClose", "Auto", "Local")
    assert snap.tables["namespaces"]["namespace"].tolist() == ["shop"]
    assert snap.tables["nodes"].iloc[0]["capacity_type"] == "on-demand"
    src = snap.meta["sources"]["kubernetes_api:prod"]
    assert src["objects"]["PodDisruptionBudget"] == "http 403" and src["objects"]["Deployment"] == 5
    # pods of listed ReplicaSets and Jobs are dropped page by page: only the two bare pods are kept
    assert src["objects"]["Pod"] == 2
    assert src["list_requests"] == len(server.requests) - 1  # the retry of the 500 is urllib3's, not a new list call
    snap.validate()


def test_rows_of_other_clusters_kept_and_metrics_nodes_win(tmp_path):
    with StandInApiServer(forbidden=()) as server:
        config = _config(_kubeconfig(tmp_path, server.url))
        snap = Snapshot()
        target = ClusterTarget(name="a", prometheus_url="", context="test-ctx")
        collect_inventory(config, target, snap)
        nodes_before = snap.tables["nodes"].copy()
        nodes_before.loc[:, "instance_type"] = "from-prometheus"
        snap.tables["nodes"] = nodes_before
        collect_inventory(config, ClusterTarget(name="b", prometheus_url="", context="test-ctx"), snap)
        collect_inventory(config, target, snap)  # again: replaces cluster a's rows, does not duplicate them
    wl = snap.tables["workloads"]
    assert (wl["cluster"] == "a").sum() == (wl["cluster"] == "b").sum() == 8
    nodes = snap.tables["nodes"]
    assert nodes[nodes["cluster"] == "a"]["instance_type"].tolist() == ["from-prometheus"]
    assert nodes[nodes["cluster"] == "b"]["instance_type"].tolist() == ["m6i.large"]


def test_expired_token_is_one_clear_error(tmp_path):
    with StandInApiServer(status_for_all=401) as server:
        config = _config(_kubeconfig(tmp_path, server.url))
        with pytest.raises(SourceError, match=r"401 Unauthorized .* token is invalid or expired"):
            collect_inventory(config, ClusterTarget(name="prod", prometheus_url="", context="test-ctx"), Snapshot())


def test_server_error_after_retries_is_reported(tmp_path):
    with StandInApiServer(status_for_all=503) as server:
        config = _config(_kubeconfig(tmp_path, server.url), retries=2)
        with pytest.raises(SourceError, match=r"listing Namespaces failed with HTTP 503"):
            collect_inventory(config, ClusterTarget(name="prod", prometheus_url="", context="test-ctx"), Snapshot())
    assert len(server.requests) == 3  # first try + 2 retries


def test_unreachable_api_server(tmp_path):
    # the kubeconfig's current context points at a port nobody listens on
    config = _config(_kubeconfig(tmp_path, "http://127.0.0.1:9"), retries=0)
    with pytest.raises(SourceError, match=r"cannot reach the API server at http://127\.0\.0\.1:\d+"):
        collect_inventory(config, ClusterTarget(name="prod", prometheus_url=""), Snapshot())


def test_missing_kubeconfig(tmp_path):
    config = _config(str(tmp_path / "nope"))
    with pytest.raises(SourceError, match="no kubeconfig at .*nope"):
        collect_inventory(config, ClusterTarget(name="prod", prometheus_url=""), Snapshot())


def test_unknown_context(tmp_path):
    config = _config(_kubeconfig(tmp_path, "http://127.0.0.1:9"))
    with pytest.raises(SourceError, match="cannot load credentials"):
        collect_inventory(config, ClusterTarget(name="prod", prometheus_url="", context="no-such-ctx"), Snapshot())


def test_rbac_grants_exactly_what_the_client_lists(tmp_path):
    from ruamel.yaml import YAML

    with StandInApiServer(forbidden=()) as server:
        collect_inventory(_config(_kubeconfig(tmp_path, server.url)),
                          ClusterTarget(name="prod", prometheus_url="", context="test-ctx"), Snapshot())
    requested = set()
    for path, _, _ in server.requests:
        parts = path.strip("/").split("/")  # api/v1/<res> or apis/<group>/<version>/<res>
        requested.add(("", parts[2]) if parts[0] == "api" else (parts[1], parts[3]))

    docs = list(YAML(typ="safe").load_all(Path(__file__).parent.parent.joinpath("deploy", "rbac.yaml").read_text()))
    role = next(d for d in docs if d["kind"] == "ClusterRole")
    granted = set()
    for rule in role["rules"]:
        assert sorted(rule["verbs"]) == ["get", "list"]  # read-only
        granted |= {(g, r) for g in rule["apiGroups"] for r in rule["resources"]}
    assert granted == requested
    binding = next(d for d in docs if d["kind"] == "ClusterRoleBinding")
    account = next(d for d in docs if d["kind"] == "ServiceAccount")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"][0]["name"] == account["metadata"]["name"]


def test_expired_continue_token_restarts_the_list_once(tmp_path):
    with StandInApiServer(forbidden=(), expire_continue_once=("/apis/apps/v1/deployments",)) as server:
        snap = Snapshot()
        collect_inventory(_config(_kubeconfig(tmp_path, server.url)),
                          ClusterTarget(name="prod", prometheus_url="", context="test-ctx"), snap)
    # first page, the 410 on its token, then a fresh full pass of three pages
    assert [q.get("continue") for q in server.calls("/apis/apps/v1/deployments")] == [None, "2", None, "2", "4"]
    deployments = snap.tables["workloads"].query("kind == 'Deployment'")["workload"]
    assert sorted(deployments) == [f"web-{i}" for i in range(5)]


def test_selected_namespaces_are_listed_one_by_one(tmp_path):
    with StandInApiServer(forbidden=()) as server:
        cfg = _config(_kubeconfig(tmp_path, server.url))
        cfg = dataclasses.replace(cfg, prometheus=dataclasses.replace(cfg.prometheus, namespaces=("shop",)))
        snap = Snapshot()
        collect_inventory(cfg, ClusterTarget(name="prod", prometheus_url="", context="test-ctx"), snap)
    paths = {p for p, _, _ in server.requests}
    assert "/apis/apps/v1/namespaces/shop/deployments" in paths and "/apis/apps/v1/deployments" not in paths
    assert "/api/v1/nodes" in paths  # cluster-scoped kinds are still listed once
    assert len(snap.tables["workloads"].query("kind == 'Deployment'")) == 5


def test_forbidden_replicasets_still_resolve_pods_to_deployments(tmp_path):
    # the pod carries the pod-template-hash label that a Deployment stamps on its ReplicaSet's pods
    pods = ITEMS["/api/v1/pods"]
    pods[0]["metadata"]["labels"] = {"app": "web", "pod-template-hash": "5d9f"}
    try:
        with StandInApiServer(forbidden=("/apis/apps/v1/replicasets",)) as server:
            snap = Snapshot()
            collect_inventory(_config(_kubeconfig(tmp_path, server.url)),
                              ClusterTarget(name="prod", prometheus_url="", context="test-ctx"), snap)
    finally:
        del pods[0]["metadata"]["labels"]
    wl = snap.tables["workloads"]
    assert "ReplicaSet" not in set(wl["kind"]) and (wl["workload"] == "web-0").sum() == 1
    assert any("ReplicaSets" in w["message"] for w in snap.meta["warnings"] if w["code"] == "kubernetes_forbidden")
