"""In-place resize: how each change can land, and resize/ scripts for the urgent raises, checked with the
real kubectl. `kubectl patch --dry-run=client` still reads the pod from a server, and no Kubernetes API
server runs here: a stand-in HTTP server (below) answers discovery, the pod list and the pod, and records
every request, so the test also shows that a dry run never writes (no PATCH reaches it)."""
from __future__ import annotations

import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest

from binaries import needs_kubectl
from patchfixtures import rec, recs
from rightsize.analysis.resize import IN_PLACE, RESTART, ROLLOUT, landing, urgent_raises
from rightsize.emit.resize import patch_body, resize_files

NS = "shop"


def _pod(name: str, owner_kind: str, owner: str, phase: str = "Running") -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NS, "uid": f"u-{name}", "resourceVersion": "1",
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": owner_kind, "name": owner, "uid": "o", "controller": True}]},
            "spec": {"nodeName": "n1", "containers": [{"name": "app", "image": "example/cart:1",
                                                       "resources": {"requests": {"cpu": "500m", "memory": "512Mi"},
                                                                     "limits": {"memory": "512Mi"}}}]},
            "status": {"phase": phase}}


PODS = [_pod("cart-5d8f7c9b4-abcde", "ReplicaSet", "cart-5d8f7c9b4"), _pod("cart-5d8f7c9b4-fghij", "ReplicaSet", "cart-5d8f7c9b4"),
        _pod("cart-admin-66b-zzzzz", "ReplicaSet", "cart-admin-66b"),  # another Deployment's pod: not resized
        _pod("cart-5d8f7c9b4-done1", "ReplicaSet", "cart-5d8f7c9b4", phase="Succeeded")]


class StandIn:
    """A stand-in for the Kubernetes API server: just what kubectl get/patch --dry-run=client read."""

    def __init__(self):
        self.requests: list[tuple[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, code, body):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                outer.requests.append(("GET", self.path))
                path = self.path.split("?")[0]
                pods = {p["metadata"]["name"]: p for p in PODS}
                if path == "/api":
                    return self._send(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
                if path == "/apis":
                    return self._send(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": []})
                if path == "/api/v1":
                    return self._send(200, {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                        {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod", "verbs": ["get", "list", "patch"]},
                        {"name": "pods/resize", "singularName": "", "namespaced": True, "kind": "Pod", "verbs": ["get", "patch", "update"]}]})
                if path == f"/api/v1/namespaces/{NS}/pods":
                    return self._send(200, {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": PODS})
                parts = path.split("/")
                if path.startswith(f"/api/v1/namespaces/{NS}/pods/") and parts[6] in pods:
                    return self._send(200, pods[parts[6]])
                return self._send(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404})

            def do_PATCH(self):
                outer.requests.append(("PATCH", self.path))
                self._send(500, {"kind": "Status", "status": "Failure", "code": 500})

            def log_message(self, *_args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def kubeconfig(self, path):
        path.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: standin, cluster: {{server: "{self.url}"}}}}]
users: [{{name: u, user: {{token: t}}}}]
contexts: [{{name: c, context: {{cluster: standin, user: u, namespace: {NS}}}}}]
current-context: c
""")
        return path


@pytest.fixture
def standin():
    s = StandIn()
    yield s
    s.server.shutdown()
    s.server.server_close()


def _oom_cart():
    return rec(NS, "Deployment", "cart", "app", cpu=("500m", "400m"), memory=("512Mi", "768Mi"), memory_limit=("512Mi", "768Mi"),
               flags="oom_risk", savings=-12.0)


def test_each_change_says_how_it_can_land():
    rows = recs(
        rec(NS, "Deployment", "a", "app", cpu=("1", "250m"), memory=("1Gi", "1Gi")),                        # CPU only
        rec(NS, "Deployment", "b", "app", memory=("1Gi", "512Mi"), memory_limit=("1Gi", "512Mi")),          # limit down
        rec(NS, "Deployment", "c", "app", cpu_limit=("1", None), cpu_limit_action="remove",                 # Guaranteed -> Burstable
            cpu=("1", "1"), memory=("1Gi", "1Gi"), memory_limit=("1Gi", "1Gi")),
        rec(NS, "Deployment", "d", "migrate", container_type="init"),
        rec(NS, "Deployment", "e", "istio-proxy", container_type="injected"),
        _oom_cart(),
        rec(NS, "Deployment", "f", "app", status="keep"),
    )
    got = landing(rows, (1, 34))
    assert list(got["resize"]) == [IN_PLACE, RESTART, ROLLOUT, ROLLOUT, ROLLOUT, IN_PLACE, ""]
    assert "QoS class" in got["resize_why"][2] and "init container" in got["resize_why"][3]
    old = landing(rows, (1, 32))
    assert set(old["resize"][rows["status"] == "change"]) == {ROLLOUT}
    assert "needs Kubernetes >= 1.33" in old["resize_why"][0]


def test_urgent_raises_keep_only_the_raised_values_and_check_node_room():
    rows = recs(_oom_cart(), rec(NS, "Deployment", "web", "app", cpu=("1", "250m")))  # web: not urgent
    room = pd.DataFrame([{"cluster": "c1", "namespace": NS, "kind": "Deployment", "workload": "cart",
                          "free_cpu_cores": 1.0, "free_memory_bytes": 400 * 2**20, "pods_per_node": 2.0}])
    got = urgent_raises(rows, room, (1, 35))
    assert list(got["workload"]) == ["cart"]
    r = got.iloc[0]
    assert np.isnan(r["new_cpu_request"])  # CPU goes down: not part of an urgent raise
    assert (r["new_memory_request"], r["new_memory_limit"]) == (768 * 2**20, 768 * 2**20)
    # 2 pods on the node x 256Mi more = 512Mi > 400Mi free
    assert r["extra_memory_bytes"] == 256 * 2**20 and not pd.isna(r["room"]) and not bool(r["room"])
    assert patch_body([r.to_dict()]) == {"spec": {"containers": [
        {"name": "app", "resources": {"requests": {"memory": "768Mi"}, "limits": {"memory": "768Mi"}}}]}}


@needs_kubectl
def test_resize_script_is_accepted_by_kubectl_patch_dry_run(standin, tmp_path, kubectl):
    raises = urgent_raises(recs(_oom_cart()), pd.DataFrame(columns=["cluster", "namespace", "kind", "workload", "free_cpu_cores",
                                                                     "free_memory_bytes", "pods_per_node"]), None)
    files = resize_files(raises)
    script = tmp_path / "cart.sh"
    script.write_text(files["resize/shop-deployment-cart.sh"])
    assert "| `shop-deployment-cart.sh` | app | request memory 768Mi; limit memory 768Mi | unknown | in place |" in files["resize/README.md"]
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "KUBECONFIG": str(standin.kubeconfig(tmp_path / "kubeconfig")), "HOME": str(tmp_path)}
    (tmp_path / "kubectl").symlink_to(kubectl)
    proc = subprocess.run(["bash", str(script), "--dry-run"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    # this kubectl prints "patched" for a client-side dry run too; that nothing was sent is checked below
    assert sorted(proc.stdout.split("\n")[:-1]) == ["pod/cart-5d8f7c9b4-abcde patched",
                                                     "pod/cart-5d8f7c9b4-fghij patched"]
    assert not [r for r in standin.requests if r[0] != "GET"]  # nothing written
    # the object kubectl would send: only the raised values changed
    out = subprocess.run([kubectl, "patch", "pod", "cart-5d8f7c9b4-abcde", "-n", NS, "--subresource", "resize", "--type", "strategic",
                          "-p", json.dumps(patch_body(raises.to_dict("records"))), "--dry-run=client", "-o", "json"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)["spec"]["containers"][0]["resources"]
    assert res == {"requests": {"cpu": "500m", "memory": "768Mi"}, "limits": {"memory": "768Mi"}}
