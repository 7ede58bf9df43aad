"""Native sidecars (init containers with restartPolicy: Always, KEP-753) are long-running containers: the
inventories tell them from init containers, the pod's effective request follows the scheduler's formula,
and cost, idle and bin-packing use it."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from promdata import ContainerSpec, Dataset, PodSpec
from promservers import DATA_HOURS, dataset_end, make_config, start_prometheus
from rightsize.api import analyze
from rightsize.analysis.binpack import pod_sizes
from rightsize.analysis.pod_request import effective_requests
from rightsize.config import Config
from rightsize.quantity import GIB, MIB
from rightsize.sources.k8s_objects import container_rows
from rightsize.sources.ksm import inventory_containers

KEY = ["workload"]
NAN = math.nan


def _pod(*rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["workload", "container", "container_type", "init_order", "cpu", "mem"])


def test_effective_request_matches_kubernetes_formula_in_three_hand_computed_cases():
    """KEP-753: max(max_i(init_i + sidecars before i), sum(main) + sum(sidecars)), per resource."""
    frame = pd.concat([
        # 1. classic init only: main 100m + 200m = 300m < init 500m -> 500m; memory 64 + 128 = 192 > 32 -> 192
        _pod(("classic", "a", "main", NAN, 0.1, 64), ("classic", "b", "main", NAN, 0.2, 128), ("classic", "setup", "init", 0, 0.5, 32)),
        # 2. sidecar (index 0) before the init (index 1): it runs during the init's step:
        #    CPU: init step 100m + 300m = 400m > main + sidecar 250m + 100m = 350m -> 400m
        #    memory: init step 50 + 400 = 450 > 100 + 50 = 150 -> 450
        _pod(("before", "proxy", "sidecar", 0, 0.1, 50), ("before", "migrate", "init", 1, 0.3, 400), ("before", "app", "main", NAN, 0.25, 100)),
        # 3. the same sidecar after the init: the init runs alone (300m, 400) -> CPU 350m from the main phase, memory 400
        _pod(("after", "migrate", "init", 0, 0.3, 400), ("after", "proxy", "sidecar", 1, 0.1, 50), ("after", "app", "main", NAN, 0.25, 100)),
    ], ignore_index=True)
    got = effective_requests(frame, KEY, ["cpu", "mem"]).set_index("workload")
    assert got.loc["classic"].tolist() == pytest.approx([0.5, 192])
    assert got.loc["before"].tolist() == pytest.approx([0.4, 450])
    assert got.loc["after"].tolist() == pytest.approx([0.35, 400])


def test_unknown_init_order_counts_every_sidecar_in_each_init_step_and_unset_counts_zero():
    frame = _pod(("w", "proxy", "sidecar", NAN, 0.1, NAN), ("w", "migrate", "init", NAN, 0.3, 400), ("w", "app", "main", NAN, NAN, 100))
    got = effective_requests(frame, KEY, ["cpu", "mem"]).iloc[0]
    assert (got["cpu"], got["mem"]) == pytest.approx((0.4, 400))  # upper bound: 100m + 300m; memory: init step 0 + 400


def test_manifest_init_container_with_restart_policy_always_is_a_sidecar():
    spec = {"initContainers": [
        {"name": "istio-proxy", "restartPolicy": "Always", "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}},
        {"name": "migrate", "resources": {"requests": {"cpu": "500m"}}}],
        "containers": [{"name": "app", "resources": {"requests": {"cpu": "250m"}}}]}
    rows = container_rows({"kind": "Deployment", "metadata": {"name": "web"}}, spec, {"namespace": "shop"})
    got = {r["container"]: (r["container_type"], r["init_order"]) for r in rows}
    assert got["istio-proxy"] == ("sidecar", 0.0) and got["migrate"] == ("init", 1.0)
    assert got["app"][0] == "main" and math.isnan(got["app"][1])


def test_injected_sidecars_are_recognised_by_name_or_image_and_absence_from_the_spec():
    from rightsize.analysis.injectors import with_injected

    ident = {"cluster": "c", "namespace": "shop", "kind": "Deployment"}
    containers = pd.DataFrame([
        {**ident, "workload": "api", "container": "app", "container_type": "main", "image": "example/api:1"},
        {**ident, "workload": "api", "container": "istio-proxy", "container_type": "main", "image": ""},  # declared in the spec
        {**ident, "workload": "ksm", "container": "app", "container_type": "main", "image": "example/ksm:1"},
        {**ident, "workload": "ksm", "container": "envoy", "container_type": "main", "image": "gcr.io/istio/proxyv2:1.22"},
    ]).assign(init_order=NAN, cpu_request_cores=0.1, cpu_limit_cores=NAN, memory_request_bytes=NAN, memory_limit_bytes=NAN)
    workloads = pd.DataFrame([{**ident, "workload": "api", "source": "api"}, {**ident, "workload": "ksm", "source": "prometheus"}])
    usage = pd.DataFrame([{**ident, "workload": "api", "container": c} for c in ("app", "istio-proxy", "linkerd-proxy")]
                         + [{**ident, "workload": "gone", "container": "istio-proxy"}])
    out = with_injected(containers, usage, workloads, Config().injectors).set_index(["workload", "container"])
    assert out.loc[("api", "istio-proxy"), "container_type"] == "main"  # the spec declares it: not the injector's
    assert tuple(out.loc[("api", "linkerd-proxy"), ["container_type", "injector"]]) == ("injected", "linkerd")
    assert math.isnan(out.loc[("api", "linkerd-proxy"), "cpu_request_cores"])  # the injector's request: unknown
    assert tuple(out.loc[("ksm", "envoy"), ["container_type", "injector"]]) == ("injected", "istio")  # by image
    assert out.loc[("ksm", "app"), "container_type"] == "main"
    assert ("gone", "istio-proxy") not in out.index  # a workload the spec does not know gets no row


def test_kube_state_metrics_inventory_tells_sidecars_from_init_containers():
    usage = pd.DataFrame({"namespace": "shop", "kind": "Deployment", "workload": "web", "container": ["app", "proxy", "migrate"]})
    requests = pd.DataFrame([
        ("app", "request", "cpu", 0.25), ("proxy", "init_request", "cpu", 0.1), ("proxy", "init_info", "Always", 1.0),
        ("migrate", "init_request", "cpu", 0.5), ("migrate", "init_info", "", 1.0), ("proxy", "init_limit", "memory", 256 * MIB),
        ("app", "image", "example/web:2", 1.0),
    ], columns=["container", "stat", "resource", "value"]).assign(namespace="shop", kind="Deployment", workload="web")
    out = inventory_containers(requests, usage, "prod").set_index("container")
    assert out.loc["app", "container_type"] == "main" and out.loc["proxy", "container_type"] == "sidecar"
    assert out.loc["migrate", "container_type"] == "init"
    assert out.loc["proxy", "cpu_request_cores"] == 0.1 and out.loc["proxy", "memory_limit_bytes"] == 256 * MIB
    assert out["init_order"].isna().all()  # kube-state-metrics has no index: the order is unknown, not 0
    assert (out.loc["app", "image"], out.loc["migrate", "image"]) == ("example/web:2", "")


@pytest.mark.integration
def test_native_sidecar_from_a_real_prometheus_is_costed_and_sizes_the_pod(tmp_path):
    """kube-state-metrics series of a pod with a native sidecar and a classic init container, served by a
    real Prometheus: the Prometheus-only inventory types them, the sidecar gets a recommendation and a cost,
    the classic init container stays uncosted, and the pod's effective request counts the sidecar."""
    app = ContainerSpec("app", 0.2, 0.05, 200 * MIB, 20 * MIB, 0.5, NAN, 512 * MIB, 512 * MIB)
    proxy = ContainerSpec("istio-proxy", 0.02, 0.005, 40 * MIB, 5 * MIB, 0.1, NAN, 128 * MIB, 128 * MIB, init_restart_policy="Always")
    setup = ContainerSpec("migrate", 0.01, 0.0, 10 * MIB, 0.0, 1.0, NAN, 64 * MIB, NAN, init_restart_policy="Never")
    # an injected Istio proxy under another name, recognised by its image ([injectors.istio] images)
    mesh = ContainerSpec("mesh", 0.02, 0.005, 50 * MIB, 5 * MIB, 0.1, NAN, 128 * MIB, NAN, image="docker.io/istio/proxyv2:1.22.0")
    pods = [PodSpec("shop", f"web-1-{s}", "Deployment", "web", "ReplicaSet", "web-1", "Deployment", "web", node="node-a",
                    containers=[app, proxy, setup, mesh]) for s in ("a", "b")]
    dataset = Dataset(dataset_end(), DATA_HOURS, pods=pods)
    server = start_prometheus(dataset, tmp_path / "prom")
    try:
        from rightsize.collect import collect

        config = make_config(server.url, dataset.end)
        config = dataclasses.replace(config, kubernetes=dataclasses.replace(config.kubernetes, source="prometheus"),
                                     pricing=dataclasses.replace(config.pricing, source="offline"),
                                     policies={k: dataclasses.replace(v, min_history=3600.0, min_samples=10)
                                               for k, v in config.policies.items()})
        snapshot = collect(config, log=lambda _m: None)
    finally:
        server.stop()
    cont = snapshot.tables["containers"].set_index("container")
    assert cont.loc["istio-proxy", "container_type"] == "sidecar" and cont.loc["migrate", "container_type"] == "init"
    assert cont.loc["istio-proxy", "cpu_request_cores"] == pytest.approx(0.1)
    assert cont.loc["mesh", "image"] == "docker.io/istio/proxyv2:1.22.0" and cont.loc["app", "image"] == "example/app:1"
    recs = analyze(snapshot, config).recommendations.set_index("container")
    assert (recs.loc["mesh", "container_type"], recs.loc["mesh", "injector"]) == ("injected", "istio")
    assert recs.loc["app", "container_type"] == "main"
    proxy_row = recs.loc["istio-proxy"]
    assert proxy_row["status"] in ("change", "keep") and not math.isnan(proxy_row["cpu_request_cores_recommended"])
    # hand computation: the sidecar is costed like a main container of the same pod: cost = (cores x c + GiB x m)
    # x pods x 730 h with c = 7.5 m ([pricing] cpu_ram_price_ratio), so sidecar / app = (7.5 x 0.1 + 0.125) / (7.5 x 0.5 + 0.5)
    app_row = recs.loc["app"]
    assert app_row["usd_per_month_current"] > 0
    assert proxy_row["usd_per_month_current"] / app_row["usd_per_month_current"] == pytest.approx((0.75 + 0.125) / (3.75 + 0.5))
    assert recs.loc["migrate", "usd_per_month_current"] == 0  # a classic init container overlaps the pod's request
    sizes = pod_sizes(recs.reset_index()).iloc[0]
    # effective request now: main 500m + sidecar 100m + injected 100m = 700m < init step (order unknown: sidecar
    # counted) 100m + 1 core -> 1.1
    assert sizes["cpu_now"] == pytest.approx(1.1)
    # memory now: 512Mi + 128Mi + 128Mi = 768Mi > init step 128Mi + 64Mi
    assert sizes["mem_now"] == pytest.approx(768 * MIB)


def test_idle_and_bin_packing_count_the_sidecar_in_the_pod():
    """Two pods of one workload on one node: idle's requested CPU is the effective pod request x pods."""
    from rightsize.analysis.cost import idle_costs
    from rightsize.snapshot import Snapshot, new_meta

    ident = {"cluster": "c", "namespace": "shop", "kind": "Deployment", "workload": "web"}
    containers = pd.DataFrame([
        {**ident, "container": "app", "container_type": "main", "init_order": NAN, "cpu_request_cores": 0.25, "memory_request_bytes": 100 * MIB},
        {**ident, "container": "proxy", "container_type": "sidecar", "init_order": 0.0, "cpu_request_cores": 0.1, "memory_request_bytes": 50 * MIB},
        {**ident, "container": "migrate", "container_type": "init", "init_order": 1.0, "cpu_request_cores": 0.3, "memory_request_bytes": 400 * MIB},
    ]).assign(cpu_limit_cores=NAN, memory_limit_bytes=NAN)
    meta = new_meta(window_start="2026-11-02T00:00:00+00:00", window_end="2026-11-03T00:00:00+00:00", step_seconds=300, clusters=["c"])
    nodes = pd.DataFrame([{"cluster": "c", "node": "n1", "instance_type": "m5.xlarge", "zone": "a", "region": "us-east-1",
                           "capacity_type": "on-demand", "node_group": "g", "allocatable_cpu_cores": 4.0,
                           "allocatable_memory_bytes": 16 * GIB, "hours_seen": 24.0}])
    placement = pd.DataFrame([{**ident, "node": "n1", "zone": "a", "pod_hours": 48.0}])
    snap = Snapshot(tables={"containers": containers, "nodes": nodes, "placement": placement,
                            "workloads": pd.DataFrame(), "usage": pd.DataFrame()}, meta=meta)
    idle = idle_costs(snap, Config()).iloc[0]
    # per pod: CPU max(250m + 100m, 100m + 300m) = 400m; memory max(150Mi, 450Mi) = 450Mi; two pods all day
    assert idle["requested_cpu_cores"] == pytest.approx(0.8)
    assert idle["requested_memory_bytes"] == pytest.approx(900 * MIB)
    recs = containers.rename(columns={"cpu_request_cores": "cpu_request_cores_current", "memory_request_bytes": "memory_request_bytes_current"})
    recs = recs.assign(cpu_request_cores_recommended=[0.2, 0.05, 0.3], memory_request_bytes_recommended=[100 * MIB, 50 * MIB, 400 * MIB],
                       status=["change", "change", "keep"], replicas=2.0)
    sizes = pod_sizes(recs).iloc[0]
    assert (sizes["cpu_now"], sizes["cpu_after"]) == pytest.approx((0.4, 0.35))  # after: 50m + 300m init step > 250m
    assert sizes["mem_after"] == pytest.approx(450 * MIB)
    assert np.isclose(sizes["replicas"], 2.0)
