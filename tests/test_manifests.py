"""The manifests source over real `kubectl kustomize` output of tests/fixtures/k8s (base + prod overlay)."""
from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import pytest

from binaries import needs_kubectl
from rightsize.config import Config
from rightsize.errors import ConfigError, SourceError
from rightsize.kustomize import KustomizeError, render
from rightsize.snapshot import conform
from rightsize.sources.manifests import load_manifests

FIXTURES = Path(__file__).parent / "fixtures" / "k8s"
OVERLAY = FIXTURES / "overlays" / "prod"


def one(df, **where):
    sel = df
    for k, v in where.items():
        sel = sel[sel[k] == v]
    assert len(sel) == 1, f"expected one row for {where}, got {len(sel)}"
    return sel.iloc[0]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, kubectl) -> Path:
    out = tmp_path_factory.mktemp("rendered") / "prod.yaml"
    out.write_text(render(OVERLAY, Config()))
    return out


@pytest.mark.integration
@needs_kubectl
def test_kustomize_output_file(rendered):
    warnings: list = []
    tables = load_manifests(rendered, Config(), "prod", warnings=warnings)
    assert set(tables) == {"workloads", "containers", "services", "namespaces", "runtimes"}
    for name, df in tables.items():
        conform(name, df)

    wl = tables["workloads"]
    assert sorted(zip(wl["kind"], wl["workload"])) == [
        ("CronJob", "nightly-report"), ("DaemonSet", "log-agent"), ("Deployment", "web"), ("StatefulSet", "db")]
    assert set(wl["namespace"]) == {"shop"} and set(wl["source"]) == {"manifests"}
    assert set(wl["source_file"]) == {str(rendered)}

    web = one(wl, workload="web")
    # the overlay leaves replicas to the HPA (min 3); PDB minAvailable 50% of 3 rounds up to 2
    assert web["replicas"] == 3 and web["hpa"] and web["hpa_cpu_target_percent"] == 65
    assert web["hpa_metrics"] == "Resource:cpu,External"
    assert web["pdb_min_available_pods"] == 2 and web["pdb_disruptions_allowed"] == 1
    assert web["tolerates_spot"] and web["has_empty_dir"] and web["termination_grace_seconds"] == 45
    assert (web["update_max_unavailable"], web["update_max_surge"]) == ("0", "1")
    assert web["team"] == "storefront"

    db = one(wl, workload="db")
    # the overlay's JSON patch set 5 replicas; PDB maxUnavailable 1 by matchExpressions
    assert db["replicas"] == 5 and db["pdb_max_unavailable_pods"] == 1 and db["pdb_disruptions_allowed"] == 1
    assert db["has_pvc"] and db["capacity_affinity"] == "on-demand"
    assert db["team"] == "commerce"  # from the Namespace object's label

    agent = one(wl, workload="log-agent")
    assert agent["ignore"] and agent["has_host_path"] and agent["has_memory_empty_dir"]
    assert math.isnan(agent["replicas"])  # a DaemonSet's pod count needs the cluster's nodes
    assert one(wl, workload="nightly-report")["spot_preference"] == "in"

    c = tables["containers"]
    app = one(c, workload="web", container="app")
    assert app["cpu_request_cores"] == pytest.approx(0.3)  # the overlay's strategic-merge patch
    assert app["memory_request_bytes"] == 256 * 1024**2 and app["memory_limit_bytes"] == 512 * 1024**2
    assert math.isnan(app["cpu_limit_cores"])
    assert one(c, workload="web", container="migrate")["container_type"] == "init"
    assert math.isnan(one(c, workload="web", container="sidecar")["cpu_request_cores"])
    assert one(c, workload="nightly-report")["memory_request_bytes"] == 1024**3

    svc = tables["services"]
    lb = one(svc, service="web")
    assert lb["workload"] == "web" and lb["type"] == "LoadBalancer" and lb["load_balancer_internal"]
    assert lb["topology_mode"] == "Auto" and json.loads(lb["selector_json"]) == {"app": "web"}
    assert one(svc, service="db")["traffic_distribution"] == "PreferClose"
    assert json.loads(one(tables["namespaces"], namespace="shop")["labels_json"])["environment"] == "production"

    assert [w["code"] for w in warnings] == ["manifests_kinds_skipped"]
    assert "ConfigMap (1)" in warnings[0]["message"]


@pytest.mark.integration
@needs_kubectl
def test_kustomization_folder_is_rendered_and_origin_recorded():
    tables = load_manifests(OVERLAY, Config(), "prod")
    wl = tables["workloads"]
    # buildMetadata: [originAnnotations] lets each workload point at the base file it came from
    assert Path(one(wl, workload="web")["source_file"]).resolve() == (FIXTURES / "base" / "web.yaml").resolve()
    assert Path(one(wl, workload="db")["source_file"]).resolve() == (FIXTURES / "base" / "db.yaml").resolve()


def test_plain_folder_records_each_file(tmp_path):
    (tmp_path / "apps").mkdir()
    for name in ("web.yaml", "db.yaml"):
        shutil.copy(FIXTURES / "base" / name, tmp_path / "apps" / name)
    (tmp_path / "apps" / "kustomization.yaml").write_text("resources: [web.yaml]\n")  # not an object: skipped
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "junk.yaml").write_text("not: [valid")
    tables = load_manifests(tmp_path, Config(), "dev")
    wl = tables["workloads"]
    assert one(wl, workload="web")["source_file"] == str(tmp_path / "apps" / "web.yaml")
    assert one(wl, workload="db")["source_file"] == str(tmp_path / "apps" / "db.yaml")
    assert set(wl["namespace"]) == {"default"}  # no namespace in the files: the configured default


def test_default_namespace_from_config(tmp_path):
    f = tmp_path / "db.yaml"
    shutil.copy(FIXTURES / "base" / "db.yaml", f)
    cfg = Config()
    cfg = dataclasses.replace(cfg, kubernetes=dataclasses.replace(cfg.kubernetes, default_namespace="data"))
    assert set(load_manifests(f, cfg, "dev")["workloads"]["namespace"]) == {"data"}


def test_list_documents_and_empty_documents(tmp_path):
    f = tmp_path / "list.yaml"
    f.write_text("---\n# helm template leaves empty documents\n---\napiVersion: v1\nkind: List\nitems:\n"
                 "- apiVersion: v1\n  kind: Pod\n  metadata: {name: debug, namespace: ops}\n"
                 "  spec: {containers: [{name: sh, resources: {requests: {cpu: 10m}}}]}\n")
    tables = load_manifests(f, Config(), "dev")
    assert one(tables["workloads"], kind="Pod")["workload"] == "debug"
    assert one(tables["containers"], workload="debug")["cpu_request_cores"] == pytest.approx(0.01)


def test_invalid_yaml_names_file_and_document(tmp_path):
    f = tmp_path / "broken.yaml"
    f.write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: [oops\n")
    with pytest.raises(SourceError, match=r"broken\.yaml: document 2 line \d+: not valid YAML"):
        load_manifests(f, Config(), "dev")


def test_non_kubernetes_document_names_file_and_document(tmp_path):
    f = tmp_path / "values.yaml"
    f.write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\nreplicaCount: 3\nimage: nginx\n")
    with pytest.raises(SourceError, match=r"values\.yaml: document 2: not a Kubernetes object"):
        load_manifests(f, Config(), "dev")
    g = tmp_path / "noname.yaml"
    g.write_text("apiVersion: apps/v1\nkind: Deployment\nmetadata: {}\n")
    with pytest.raises(SourceError, match=r"noname\.yaml: document 1: Deployment without metadata.name"):
        load_manifests(g, Config(), "dev")


def test_unknown_kinds_are_counted_not_fatal(tmp_path):
    f = tmp_path / "mixed.yaml"
    f.write_text("\n---\n".join([
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s1}",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s2}",
        "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata: {name: canary}",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c}]}",
    ]))
    warnings: list = []
    tables = load_manifests(f, Config(), "dev", warnings=warnings)
    assert list(tables["workloads"]["workload"]) == ["p"]
    assert warnings[0]["code"] == "manifests_kinds_skipped"
    assert "3 object(s)" in warnings[0]["message"] and "AnalysisTemplate (1)" in warnings[0]["message"]
    assert "Secret (2)" in warnings[0]["message"]


def test_bad_quantity_names_file_object_and_field(tmp_path):
    f = tmp_path / "web.yaml"
    f.write_text((FIXTURES / "base" / "web.yaml").read_text().replace("memory: 512Mi", "memory: 512MB!"))
    with pytest.raises(SourceError) as err:
        load_manifests(f, Config(), "dev")
    msg = str(err.value)
    assert "default/Deployment/web" in msg and str(f) in msg
    assert "containers[app].resources.limits.memory" in msg and "512MB!" in msg


def test_missing_path_and_failing_kustomize(tmp_path):
    with pytest.raises(SourceError, match="manifests not found"):
        load_manifests(tmp_path / "nope", Config(), "dev")
    (tmp_path / "kustomization.yaml").write_text("resources: [missing.yaml]\n")
    cfg = Config()
    cfg = dataclasses.replace(cfg, patches=dataclasses.replace(cfg.patches, kustomize_command="no-such-kustomize build"))
    with pytest.raises(ConfigError, match=r"\(holds a kustomization\): `no-such-kustomize` is not installed; install kubectl "
                                          r"or set \[patches\] kustomize_command"):
        load_manifests(tmp_path, cfg, "dev")


@pytest.mark.integration
@needs_kubectl
def test_kustomize_failure_is_one_line(tmp_path):
    (tmp_path / "kustomization.yaml").write_text("resources: [missing.yaml]\n")
    with pytest.raises(KustomizeError, match=r"`kubectl kustomize` failed: .*missing\.yaml") as err:
        load_manifests(tmp_path, Config(), "dev")
    assert "\n" not in str(err.value)
