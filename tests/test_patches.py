"""Patch generation (rightsize patch): files, targets, evidence, PATCHES.md, and a real kustomize build."""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import re

import pytest
from ruamel.yaml import YAML

from binaries import needs_kubectl
from patchfixtures import (FIXTURES, by_id, config, container, kustomize, read_only, rec, recs, snapshot,
                           without_resources)
from rightsize.emit.patches import PatchError, select, write_patches
from rightsize.errors import ConfigError



def _load(path: Path):
    return YAML(typ="safe", pure=True).load(path.read_text())


def _estate() -> pd.DataFrame:
    return recs(
        rec("shop", "Deployment", "web", "app", memory_limit=("1Gi", "512Mi"), cpu_limit=("1", "1500m"),
            cpu_limit_action="set", flags="over_provisioned"),
        rec("shop", "Deployment", "web", "proxy", status="keep", reason="change 4% < 10%"),
        rec("shop", "Deployment", "api", "app", cpu=("2", "1"), memory=("2Gi", "1Gi"), memory_limit=("2Gi", "1Gi"),
            cpu_limit=("2", None), cpu_limit_action="remove", flags="throttled"),
        rec("shop", "StatefulSet", "db", "init-perms", container_type="init", cpu=("100m", "20m"), memory=("64Mi", "32Mi")),
        rec("shop", "CronJob", "report", "extract", cpu=("1", "300m"), memory=("1Gi", "600Mi"),
            memory_limit=("1Gi", "600Mi"), cpu_limit=("2", "2"), savings=float("nan")),
        rec("shop", "CronJob", "report", "migrate", container_type="init", cpu=("200m", "50m"), memory=("256Mi", "128Mi")),
        rec("shop", "CronJob", "report", "upload", status="no_recommendation",
            reason="too little history (2.0 d < 3 d)", cpu=("250m", None), memory=("512Mi", None)),
        rec("shop", "Pod", "debug", "sh"),
        rec("shop", "Deployment", "batch", "app", status="ignored", reason="annotation rightsize.io/ignore"),
    )


def _manifest_snapshot(base: Path):
    """Workloads read from manifests: source_file tells where each object (and its container order) is."""
    files = {"web": "web.yaml", "api": "api.yaml", "db": "db.yaml", "report": "report.yaml"}
    kinds = {"web": "Deployment", "api": "Deployment", "db": "StatefulSet", "report": "CronJob"}
    wl = pd.DataFrame([{"cluster": "c1", "namespace": "shop", "kind": kinds[n], "workload": n, "source": "manifests",
                        "source_file": str(base / f)} for n, f in files.items()])
    return snapshot(wl)


def test_select_keeps_skipped_rows_apart_with_their_reason():
    to_patch, skipped = select(_estate(), config())
    assert set(to_patch["workload"] + "/" + to_patch["container"]) == {
        "web/app", "api/app", "db/init-perms", "report/extract", "report/migrate"}
    why = dict(zip(skipped["workload"] + "/" + skipped["container"], skipped["reason"]))
    assert why["web/proxy"] == "below the change threshold: change 4% < 10%"
    assert why["report/upload"] == "no recommendation: too little history (2.0 d < 3 d)"
    assert why["batch/app"].startswith("opted out")
    assert "kind Pod is not patched" in why["debug/sh"]

    _, skipped = select(_estate(), config(include_init_containers=False))
    assert "include_init_containers" in dict(zip(skipped["container"], skipped["reason"]))["migrate"]


def _api_snapshot():
    """Workloads read from the Kubernetes API: container rows in spec order. Deployment api is absent."""
    spec = {("Deployment", "web"): [("app", "main", 1.0), ("proxy", "main", None)],
            ("StatefulSet", "db"): [("postgres", "main", None), ("init-perms", "init", None)],
            ("CronJob", "report"): [("extract", "main", 2.0), ("upload", "main", None), ("migrate", "init", 0.5)]}
    wl = pd.DataFrame([{"cluster": "c1", "namespace": "shop", "kind": k, "workload": w, "source": "api", "source_file": ""}
                       for k, w in spec])
    ct = pd.DataFrame([{"cluster": "c1", "namespace": "shop", "kind": k, "workload": w, "container": c,
                        "container_type": t, "cpu_limit_cores": lim} for (k, w), cs in spec.items() for c, t, lim in cs])
    s = snapshot(wl)
    s.tables["containers"] = ct
    return s


def test_patch_files_touch_only_resources_and_carry_the_evidence(tmp_path):
    out = tmp_path / "patches"
    result = write_patches(_estate(), _api_snapshot(), config(), out)

    folder = out / "c1" / "shop"
    assert sorted(p.name for p in folder.iterdir()) == [
        "cronjob-report.yaml", "deployment-api.yaml", "deployment-web.yaml", "kustomization.yaml", "statefulset-db.yaml"]
    assert result.kustomizations == [folder / "kustomization.yaml"]

    web = _load(folder / "deployment-web.yaml")
    # Every container of a patched list is named, in spec order, so kustomize keeps the order.
    assert web["spec"]["template"]["spec"]["containers"] == [
        {"name": "app", "resources": {"requests": {"cpu": "250m", "memory": "512Mi"},
                                      "limits": {"cpu": "1.5", "memory": "512Mi"}}},
        {"name": "proxy"}]
    cron = _load(folder / "cronjob-report.yaml")
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert set(cron["spec"]) == {"jobTemplate"}
    assert pod["containers"] == [{"name": "extract", "resources": {
        "requests": {"cpu": "300m", "memory": "600Mi"}, "limits": {"memory": "600Mi"}}}, {"name": "upload"}]
    assert pod["initContainers"] == [{"name": "migrate", "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}}}]
    db = _load(folder / "statefulset-db.yaml")
    assert "containers" not in db["spec"]["template"]["spec"]
    assert db["spec"]["template"]["spec"]["initContainers"][0]["name"] == "init-perms"

    text = (folder / "deployment-web.yaml").read_text()
    assert "# window: 2026-11-01T00:00:00+00:00 .. 2026-11-15T00:00:00+00:00 (14d)" in text
    assert "cpu request:    500m → 250m  (usage p95 217m)" in text
    assert "memory limit:   1Gi → 512Mi" in text
    assert "saving:         $12.50/month" in text and "flags:          over_provisioned" in text
    assert "saving:         unknown" in (folder / "cronjob-report.yaml").read_text()

    kust = _load(folder / "kustomization.yaml")
    targets = {e["path"]: e["target"] for e in kust["patches"]}
    assert targets["cronjob-report.yaml"] == {"group": "batch", "version": "v1", "kind": "CronJob",
                                              "name": "report", "namespace": "shop"}
    assert targets["statefulset-db.yaml"]["group"] == "apps" and targets["statefulset-db.yaml"]["kind"] == "StatefulSet"

    # api has no manifest and no container list: its CPU limit removal is left to a person, and said so.
    assert not (folder / "deployment-api.cpu-limit.yaml").exists()
    md = (out / "PATCHES.md").read_text()
    assert "**4 workloads patched** (5 containers)" in md
    assert "CPU limit removal not written" in md and "shop/Deployment/api" in md
    assert "| c1: shop/Deployment/web | proxy | keep | below the change threshold: change 4% < 10% |" in md
    assert "| c1: shop/CronJob/report | upload | no_recommendation | no recommendation: too little history" in md
    assert "kind Pod is not patched" in md
    assert set(result.skipped["workload"]) == {"web", "report", "debug", "batch"}


def test_container_order_unknown_leaves_init_containers_alone(tmp_path):
    r = recs(rec("shop", "CronJob", "report", "migrate", container_type="init"),
             rec("shop", "CronJob", "report", "extract"))
    # A snapshot whose containers came from metrics only: their order is not the spec's.
    s = snapshot(pd.DataFrame([{"cluster": "c1", "namespace": "shop", "kind": "CronJob", "workload": "report",
                                "source": "prometheus", "source_file": ""}]))
    result = write_patches(r, s, config(), tmp_path / "p")
    reasons = dict(zip(result.skipped["container"], result.skipped["reason"]))
    assert "init container order unknown" in reasons["migrate"]
    assert "extract" in set(result.patched["container"])
    assert any("container order unknown" in n for n in result.notes)


def _deployed_base(tmp_path: Path) -> tuple[Path, Path]:
    """The fixtures' base copied to tmp_path/base, an env folder deploy/shop rendering it into namespace shop;
    (base, the patch folder to write). Patches list ../../../deploy/{namespace} as their resource."""
    base = tmp_path / "base"
    shutil.copytree(FIXTURES / "base", base)
    env = tmp_path / "deploy" / "shop"
    env.mkdir(parents=True)
    (env / "kustomization.yaml").write_text("namespace: shop\nresources:\n- ../../base\n")
    return base, tmp_path / "patches"


@needs_kubectl
def test_generated_folder_builds_and_changes_only_targeted_resources(tmp_path):
    base, out = _deployed_base(tmp_path)
    env = tmp_path / "deploy" / "shop"
    result = write_patches(_estate(), _manifest_snapshot(base), config(resources=["../../../deploy/{namespace}"]), out)
    folder = out / "c1" / "shop"
    assert (folder / "deployment-api.cpu-limit.yaml").exists()  # position known from the manifest
    assert not result.notes

    before = by_id(kustomize(env))
    after = by_id(kustomize(folder))
    assert set(before) == set(after)
    targeted = {("Deployment", "shop", "web"): {(False, "app")}, ("Deployment", "shop", "api"): {(False, "app")},
                ("StatefulSet", "shop", "db"): {(True, "init-perms")},
                ("CronJob", "shop", "report"): {(False, "extract"), (True, "migrate")}}
    for key, doc in before.items():
        ctrs = targeted.get(key, set())
        assert without_resources(doc, ctrs) == without_resources(after[key], ctrs), key

    web = after[("Deployment", "shop", "web")]
    assert container(web, "app")["resources"] == {"requests": {"cpu": "250m", "memory": "512Mi"},
                                                  "limits": {"cpu": "1.5", "memory": "512Mi"}}
    api = after[("Deployment", "shop", "api")]
    assert [c["name"] for c in api["spec"]["template"]["spec"]["containers"]] == ["sidecar", "app"]
    assert container(api, "app")["resources"] == {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "1Gi"}}
    report = after[("CronJob", "shop", "report")]
    assert container(report, "extract")["resources"]["limits"] == {"cpu": "2", "memory": "600Mi"}
    assert container(report, "migrate", init=True)["resources"]["requests"] == {"cpu": "50m", "memory": "128Mi"}


def test_bad_layout_and_clashing_workloads_write_nothing(tmp_path):
    with pytest.raises(ConfigError, match=r"patches.layout: unknown placeholder \{team\}"):
        write_patches(_estate(), snapshot(), config(layout="{team}/{namespace}"), tmp_path / "p")
    with pytest.raises(ConfigError, match="must stay inside"):
        write_patches(_estate(), snapshot(), config(layout="../{namespace}"), tmp_path / "p")

    out = tmp_path / "p"
    out.mkdir()
    (out / "keep.txt").write_text("last week's patches")
    two_clusters = recs(rec("shop", "Deployment", "web", "app", cluster="eu"),
                        rec("shop", "Deployment", "web", "app", cluster="us"))
    with pytest.raises(PatchError, match="us/shop/Deployment/web and eu/shop/Deployment/web both map to shop/deployment-web.yaml"):
        write_patches(two_clusters, snapshot(), config(layout="{namespace}"), out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["p"]  # no temporary folder left behind

    with pytest.raises(PatchError, match="not a rightsize patch folder"):
        write_patches(_estate(), snapshot(), config(), out)  # never replaces a folder it did not write
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    write_patches(_estate(), snapshot(), config(), tmp_path / "q")
    write_patches(_estate().iloc[:1], snapshot(), config(), tmp_path / "q")  # its own folder: replaced whole
    assert sorted(p.name for p in (tmp_path / "q" / "c1" / "shop").iterdir()) == ["deployment-web.yaml", "kustomization.yaml"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p", "q"]


def test_read_only_target_is_a_clear_error(tmp_path):
    target = tmp_path / "ro"
    target.mkdir()
    (target / "old.yaml").write_text("x: 1\n")
    with read_only(target):
        with pytest.raises(PatchError) as err:
            write_patches(_estate(), snapshot(), config(), target)
    assert str(err.value) == f"{target}: read-only; cannot write patches (nothing was written)"
    assert [p.name for p in target.iterdir()] == ["old.yaml"]
    assert (target / "old.yaml").read_text() == "x: 1\n"


def _fleet(n_workloads: int) -> pd.DataFrame:
    """n workloads over 60 namespaces, 2 containers each, with long names and flags (the worst case for size)."""
    rows = []
    for i in range(n_workloads):
        ns = f"team-{i % 60:02d}-production-services"
        wl = f"service-{i:05d}-with-a-rather-long-deployment-name"
        rows.append(rec(ns, "Deployment", wl, "application-container", savings=1000.0 / (i + 1), flags="over_provisioned",
                        memory_limit=("1Gi", "512Mi")))
        rows.append(rec(ns, "Deployment", wl, "istio-proxy", status="keep", reason="change 4% < 10% (threshold 10%)"))
    return recs(*rows)


def test_patches_md_fits_a_pull_request_body_at_5000_workloads(tmp_path):
    """GitHub refuses PR bodies over 65,536 characters: PATCHES.md stays <= 60,000 at 5,000 workloads, lists
    the top changes by impact first, and says where the rest are."""
    result = write_patches(_fleet(5000), snapshot(), config(), tmp_path / "p")
    md = (tmp_path / "p" / "PATCHES.md").read_text()
    assert len(md) <= 60_000
    assert "**5000 workloads patched** (5000 containers)" in md and "5000 containers skipped" in md
    top = md.split("## Top 40 changes by impact")[1].split("\n## ")[0]
    amounts = [float(x.replace(",", "")) for x in re.findall(r"\| \+\$([\d,]+\.\d\d) \|", top)]
    assert len(amounts) == 40 and amounts == sorted(amounts, reverse=True)
    assert amounts[0] == pytest.approx(1000.0)  # service-00000: 1000 / 1
    assert "| `team-00-production-services/Deployment/service-00000-with-a-rather-long-deployment-name` " \
           "application-container | CPU 500m → 250m · memory 1Gi → 512Mi · memory limit 1Gi → 512Mi | +$1,000.00 |" in top
    folded = md.split("## The other changes, by namespace")[1].split("\n## ")[0]
    # the namespace with the most left to save after the top table comes first, rows named without it
    assert folded.startswith("\n\n<details><summary><b>team-40-production-services</b>: 83 container(s)")
    assert "| `Deployment/service-00040-with-a-rather-long-deployment-name` application-container |" in folded
    assert re.search(r"_\d[\d,]* more change\(s\) in \d+ namespace\(s\) do not fit a pull-request body", md)
    assert "more skipped container(s): see `recommendations.csv`" in md
    assert len(result.patched) == 5000  # every patch is still written; only the text is summarised


def test_patches_md_small_fleet_lists_everything(tmp_path):
    write_patches(_fleet(30), snapshot(), config(), tmp_path / "p")
    md = (tmp_path / "p" / "PATCHES.md").read_text()
    assert "## Changes by impact" in md and md.count("application-container |") == 30
    assert "do not fit" not in md and "more skipped" not in md


@needs_kubectl
def test_extra_edits_of_a_container_and_its_pod_template_go_into_the_same_patch(tmp_path, monkeypatch):
    """The patch body builder's extension point (patch_body.CONTAINER_EDITS / TEMPLATE_EDITS): an edit added
    from here (an env var per patched container, an annotation on the pod template) lands in the same
    strategic-merge patch as the resources, and real kustomize merges all of it into the base's objects."""
    from rightsize.emit import patch_body

    monkeypatch.setattr(patch_body, "CONTAINER_EDITS", patch_body.CONTAINER_EDITS + [
        lambda row: {"env": [{"name": "SIZED_BY", "value": "rightsize"}]} if row["container"] == "app" else {}])
    monkeypatch.setattr(patch_body, "TEMPLATE_EDITS", [
        lambda rows: {"metadata": {"annotations": {"example.com/containers": ",".join(r["container"] for r in rows)}}}])
    base, out = _deployed_base(tmp_path)
    write_patches(_estate(), _manifest_snapshot(base), config(resources=["../../../deploy/{namespace}"]), out)
    web = _load(out / "c1" / "shop" / "deployment-web.yaml")["spec"]["template"]
    assert list(web) == ["metadata", "spec"]
    assert web["spec"]["containers"][0] == {"name": "app", "resources": {
        "limits": {"cpu": "1.5", "memory": "512Mi"}, "requests": {"cpu": "250m", "memory": "512Mi"}},
        "env": [{"name": "SIZED_BY", "value": "rightsize"}]}
    assert web["spec"]["containers"][1] == {"name": "proxy"}  # named for the order only: no edit without a row
    rendered = by_id(kustomize(out / "c1" / "shop"))
    web_doc = rendered[("Deployment", "shop", "web")]
    assert web_doc["spec"]["template"]["metadata"]["annotations"]["example.com/containers"] == "app"
    app = container(web_doc, "app")
    assert {"name": "SIZED_BY", "value": "rightsize"} in app["env"] and app["resources"]["requests"]["cpu"] == "250m"
    assert "env" not in container(web_doc, "proxy")
    report = rendered[("CronJob", "shop", "report")]["spec"]["jobTemplate"]["spec"]["template"]
    assert report["metadata"]["annotations"]["example.com/containers"] == "migrate,extract"


def test_the_shared_tags_write_the_text_of_ruamel_own_safe_dumper():
    """patch_text's representer keeps one Tag per tag name (for speed): every kind of value a patch holds comes
    out as ruamel's plain safe representer writes it, twice in a row (the shared Tags keep no state)."""
    import io

    from ruamel.yaml.representer import SafeRepresenter

    from rightsize.emit import patch_text

    class Plain(SafeRepresenter):  # its own representer table: the None below stays out of ruamel's class
        pass

    doc = {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": None}},
         "env": [{"name": "JAVA_TOOL_OPTIONS", "value": "-Xmx384m -Dx=': #'"}, {"name": "N", "value": "0123"}]},
        {"name": "yes", "resources": {"requests": {"cpu": 1.5, "nvidia.com/gpu": 2, "on": True}}}]}}},
        "ops": [{"op": "remove", "path": "/spec/x"}, [], {}, "", "null", 1e-05]}
    buf = io.StringIO()
    patch_text.safe_dumper(Plain).dump(doc, buf)  # the patches' settings with ruamel's representer
    assert patch_text.yaml_text(doc) == buf.getvalue() == patch_text.yaml_text(doc)
    assert "memory: null" in buf.getvalue() and "'0123'" in buf.getvalue()


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_two_processes_write_what_one_writes(tmp_path, monkeypatch):
    """write_patches builds the second half of the folders in a forked child: the files, PATCHES.md and the result
    are those of one process doing it all (the split turned off)."""
    from rightsize.emit import patches

    estate = pd.concat([_fleet(120), _estate()], ignore_index=True)
    groups = list(patches.group_rows(patches.select(estate, config(), json6902=True)[0]).items())
    cut = patches._folder_cut(groups, config().patches.layout)
    assert 0 < cut < len(groups)
    two = write_patches(estate, snapshot(), config(), tmp_path / "two")
    monkeypatch.setattr(patches, "_folder_cut", lambda *_: 0)
    one = write_patches(estate, snapshot(), config(), tmp_path / "one")
    assert _tree(tmp_path / "two") == _tree(tmp_path / "one")
    assert len(_tree(tmp_path / "one")) == 120 + 3 + 61 + 1  # patches (web, api, report), kustomizations, PATCHES.md
    assert [p.relative_to(tmp_path / "two") for p in two.written] == [p.relative_to(tmp_path / "one") for p in one.written]
    pd.testing.assert_frame_equal(two.patched, one.patched)
    pd.testing.assert_frame_equal(two.skipped, one.skipped)
    assert two.notes == one.notes
    assert [w.replace("/two/", "/one/") for w in two.warnings] == one.warnings and len(one.warnings) == 1


def test_a_clash_in_the_childs_half_writes_nothing(tmp_path):
    """Two clusters' shop/web map to one file under layout {namespace}: found by the forked child (the clash is
    in the second half), raised by the parent with the same message, and nothing is written."""
    from rightsize.emit import patches

    rows = [rec(f"a{i}", "Deployment", "web", "app", cluster="eu") for i in range(10)]
    estate = recs(*rows, rec("zz", "Deployment", "web", "app", cluster="eu"), rec("zz", "Deployment", "web", "app", cluster="us"))
    groups = list(patches.group_rows(estate).items())
    assert 0 < patches._folder_cut(groups, "{namespace}") < 10  # zz's two workloads go to the child
    out = tmp_path / "p"
    with pytest.raises(PatchError, match=r"^patches: us/zz/Deployment/web and eu/zz/Deployment/web both map to "
                                         r"zz/deployment-web.yaml"):
        write_patches(estate, snapshot(), config(layout="{namespace}"), out)
    assert list(tmp_path.iterdir()) == []
