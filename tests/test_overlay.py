"""Overlay mode (rightsize patch --overlay) against real `kubectl kustomize` on tests/fixtures/kustomize."""
from __future__ import annotations

import pytest
from ruamel.yaml import YAML

from binaries import needs_kubectl
from patchfixtures import (by_id, config, container, copy_fixtures, kustomize, read_only, rec, recs,
                           snapshot, without_resources)
from rightsize.emit.overlay import apply_to_overlay
from rightsize.emit.render_check import check_render
from rightsize.kustomize import KustomizeError
from rightsize.emit.patches import PatchError

pytestmark = needs_kubectl


def _prod_recs():
    # Names and namespace as the cluster sees them: after the overlay's prefix, suffix and namespace.
    return recs(
        rec("shop", "Deployment", "prod-web-eu", "app", memory_limit=("1Gi", "512Mi"), cpu_limit=("1", "1500m"),
            cpu_limit_action="set", flags="over_provisioned"),
        rec("shop", "Deployment", "prod-web-eu", "proxy", status="keep", reason="change 4% < 10%"),
        rec("shop", "Deployment", "prod-web-eu", "ghost"),
        rec("shop", "Deployment", "prod-api-eu", "app", cpu=("2", "1"), memory=("2Gi", "1Gi"), cpu_limit=("2", None),
            cpu_limit_action="remove", flags="throttled"),
        rec("shop", "StatefulSet", "prod-db-eu", "init-perms", container_type="init", cpu=("100m", "20m"),
            memory=("64Mi", "32Mi")),
        rec("shop", "StatefulSet", "prod-db-eu", "postgres", cpu=("1", "600m"), memory=("4Gi", "3Gi"),
            memory_limit=("4Gi", "3Gi")),
        rec("shop", "CronJob", "prod-report-eu", "extract", cpu=("1", "300m"), memory=("1Gi", "600Mi"),
            memory_limit=("1Gi", "600Mi"), cpu_limit=("2", None), cpu_limit_action="remove"),
        rec("shop", "CronJob", "prod-report-eu", "migrate", container_type="init", cpu=("200m", "50m"),
            memory=("256Mi", "128Mi")),
        rec("shop", "Deployment", "legacy", "app"),
        rec("shop", "Deployment", "legacy", "sidecar", status="keep"),
        rec("shop", "Deployment", "prod-api-eu", "sidecar", status="no_recommendation", reason="no usage data"),
    )


def _is_subsequence(lines, of):
    it = iter(of)
    return all(line in it for line in lines)


def test_prod_overlay_gets_only_resource_changes_and_keeps_its_kustomization(tmp_path):
    root = copy_fixtures(tmp_path)
    prod = root / "overlays" / "prod"
    kfile = prod / "kustomization.yaml"
    original = kfile.read_text()
    before = by_id(kustomize(prod))

    result = apply_to_overlay(_prod_recs(), snapshot(), config(), prod)

    # The patched overlay builds, and differs from the unpatched render only in the targeted resources.
    after = by_id(kustomize(prod))
    assert set(after) == set(before)
    targeted = {("Deployment", "shop", "prod-web-eu"): {(False, "app")},
                ("Deployment", "shop", "prod-api-eu"): {(False, "app")},
                ("StatefulSet", "shop", "prod-db-eu"): {(False, "postgres"), (True, "init-perms")},
                ("CronJob", "shop", "prod-report-eu"): {(False, "extract"), (True, "migrate")}}
    for key, doc in before.items():
        ctrs = targeted.get(key, set())
        assert without_resources(doc, ctrs) == without_resources(after[key], ctrs), key
        for init, name in ctrs:
            assert container(doc, name, init)["resources"] != container(after[key], name, init)["resources"], (key, name)
    web, api = after[("Deployment", "shop", "prod-web-eu")], after[("Deployment", "shop", "prod-api-eu")]
    assert container(web, "app")["resources"] == {"requests": {"cpu": "250m", "memory": "512Mi"},
                                                  "limits": {"cpu": "1.5", "memory": "512Mi"}}
    assert web["spec"]["replicas"] == 4  # the hand-written patch still applies
    assert container(api, "app")["resources"] == {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}
    report = after[("CronJob", "shop", "prod-report-eu")]
    assert container(report, "extract")["resources"]["limits"] == {"memory": "600Mi"}  # CPU limit removed explicitly
    assert container(report, "migrate", init=True)["resources"]["limits"] == {"cpu": "500m", "memory": "256Mi"}

    # What was reported rather than patched.
    assert list(result.not_in_overlay["workload"]) == ["legacy"]
    reasons = dict(zip(result.skipped["container"], result.skipped["reason"]))
    assert reasons["proxy"].startswith("below the change threshold")
    assert reasons["ghost"].startswith("container not in Deployment prod-web-eu")
    assert reasons["sidecar"] == "no recommendation: no usage data"
    assert "legacy" not in set(result.skipped["workload"])  # a workload of another overlay is not listed as skipped
    assert set(result.patched["workload"]) == {"prod-web-eu", "prod-api-eu", "prod-db-eu", "prod-report-eu"}
    assert "+            cpu: 250m" in result.diff and "-            cpu: 400m" in result.diff
    assert "legacy" in result.markdown and "not rendered by overlay" in result.markdown

    # kustomization.yaml: every original line (comments included) kept in order; last week's rightsize
    # entry updated in place; new entries appended with their JSON6902 removal right after them.
    text = kfile.read_text()
    assert _is_subsequence(original.splitlines(), text.splitlines())
    k = YAML(typ="safe", pure=True).load(text)
    paths = [e["path"] for e in k["patches"]]
    assert paths == ["replicas.yaml", "rightsize/deployment-prod-web-eu.yaml", "rightsize/cronjob-prod-report-eu.yaml",
                     "rightsize/cronjob-prod-report-eu.cpu-limit.yaml", "rightsize/deployment-prod-api-eu.yaml",
                     "rightsize/deployment-prod-api-eu.cpu-limit.yaml", "rightsize/statefulset-prod-db-eu.yaml"]
    # Targets name objects as the overlay receives them, before its own prefix/suffix/namespace.
    assert k["patches"][4]["target"] == {"group": "apps", "version": "v1", "kind": "Deployment", "name": "api"}
    assert text.index("env: prod  # used by the cost report") > text.index("statefulset-prod-db-eu.yaml")
    assert "\n\nlabels:" in text  # the blank line before the next key stays there
    existing = (prod / "rightsize" / "deployment-prod-web-eu.yaml").read_text()
    assert "cpu: 250m" in existing and "400m" not in existing.split("apiVersion")[1]
    assert not [p for p in (root / "overlays").iterdir() if p.name.startswith(".")]  # staging copy gone

    # A second run with the same recommendations changes nothing and duplicates nothing.
    again = apply_to_overlay(_prod_recs(), snapshot(), config(), prod)
    assert again.diff == ""
    assert kfile.read_text() == text


def test_staging_overlay_without_patches_list_gets_one(tmp_path):
    root = copy_fixtures(tmp_path)
    staging = root / "overlays" / "staging"
    original = (staging / "kustomization.yaml").read_text()
    r = recs(rec("shop-staging", "Deployment", "stg-web", "proxy", cpu=("100m", "20m"), memory=("128Mi", "64Mi")),
             rec("shop-staging", "CronJob", "stg-report", "upload", cpu=("250m", "100m"), memory=("512Mi", "256Mi")),
             rec("shop", "Deployment", "prod-web-eu", "app"))
    result = apply_to_overlay(r, snapshot(), config(), staging)
    text = (staging / "kustomization.yaml").read_text()
    assert text.startswith(original)  # untouched lines stay byte for byte; `patches:` is added at the end
    assert "\npatches:\n- path: rightsize/cronjob-stg-report.yaml" in text
    assert list(result.not_in_overlay["workload"]) == ["prod-web-eu"]
    after = by_id(kustomize(staging))
    report = after[("CronJob", "shop-staging", "stg-report")]
    assert [c["name"] for c in report["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]] == ["extract", "upload"]
    assert container(report, "upload")["resources"] == {"requests": {"cpu": "100m", "memory": "256Mi"}}
    assert container(after[("Deployment", "shop-staging", "stg-web")], "proxy")["resources"]["requests"]["cpu"] == "20m"


def test_overlay_errors_are_one_line_and_write_nothing(tmp_path):
    root = copy_fixtures(tmp_path)
    r = recs(rec("shop", "Deployment", "web", "app"))

    bare = root / "overlays" / "bare"
    bare.mkdir()
    with pytest.raises(PatchError, match=r"bare: no kustomization.yaml; not a kustomize overlay"):
        apply_to_overlay(r, snapshot(), config(), bare)

    broken = root / "overlays" / "broken"
    broken.mkdir()
    (broken / "kustomization.yaml").write_text("resources:\n- ../../base\n- missing.yaml\n")
    with pytest.raises(KustomizeError) as err:
        apply_to_overlay(r, snapshot(), config(), broken)
    assert "`kubectl kustomize` failed: " in str(err.value) and "missing.yaml" in str(err.value)
    assert "\n" not in str(err.value)

    # Two objects that both answer to shop/Deployment/web: one in namespace shop, one without a namespace.
    twins = root / "overlays" / "twins"
    twins.mkdir()
    (twins / "kustomization.yaml").write_text("# two webs\nresources:\n- ../../base\n- web-shop.yaml\n")
    (twins / "web-shop.yaml").write_text((root / "base" / "web.yaml").read_text().replace(
        "  name: web\n", "  name: web\n  namespace: shop\n", 1))
    with pytest.raises(PatchError, match=r"Deployment shop/web matches 2 objects"):
        apply_to_overlay(r, snapshot(), config(), twins)
    assert (twins / "kustomization.yaml").read_text() == "# two webs\nresources:\n- ../../base\n- web-shop.yaml\n"
    assert not (twins / "rightsize").exists()

    prod = root / "overlays" / "prod"
    with read_only(prod / "kustomization.yaml"):
        with pytest.raises(PatchError, match=r"kustomization.yaml: read-only; cannot add the patches"):
            apply_to_overlay(_prod_recs(), snapshot(), config(), prod)


def test_a_later_patch_overriding_ours_is_refused_and_nothing_is_written(tmp_path):
    root = copy_fixtures(tmp_path)
    prod = root / "overlays" / "prod"
    kfile = prod / "kustomization.yaml"
    (prod / "cpu.yaml").write_text("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n"
                                   "    spec:\n      containers:\n      - name: app\n        resources:\n"
                                   "          requests:\n            cpu: 300m\n")
    kfile.write_text(kfile.read_text().replace("\nlabels:", "  - path: cpu.yaml\n    target:\n      kind: Deployment\n"
                                               "      name: web\n\nlabels:"))
    original = kfile.read_text()
    old_patch = (prod / "rightsize" / "deployment-prod-web-eu.yaml").read_text()
    with pytest.raises(PatchError, match=r"prod-web-eu container app: cpu request renders as '300m'"):
        apply_to_overlay(_prod_recs(), snapshot(), config(), prod)
    assert kfile.read_text() == original
    assert (prod / "rightsize" / "deployment-prod-web-eu.yaml").read_text() == old_patch
    assert sorted(p.name for p in (prod / "rightsize").iterdir()) == ["deployment-prod-web-eu.yaml"]
    assert not [p for p in (root / "overlays").iterdir() if p.name.startswith(".")]


def test_render_check_allows_only_cpu_and_memory_of_the_targeted_containers():
    def deployment(image="nginx", cpu="1", storage="1Gi", side_cpu="100m"):
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"},
                "spec": {"template": {"spec": {"containers": [
                    {"name": "app", "image": image, "resources": {"requests": {"cpu": cpu, "ephemeral-storage": storage}}},
                    {"name": "side", "image": "envoy", "resources": {"requests": {"cpu": side_cpu}}}]}}}}

    key = ("apps/v1", "Deployment", "shop", "web")
    targeted = {key: {("containers", "app")}}
    check_render([deployment()], [deployment(cpu="250m")], targeted, "ov")  # the intended change passes
    for changed, where in [(deployment(image="nginx:2"), "containers[0].image"),
                           (deployment(storage="2Gi"), "ephemeral-storage"),
                           (deployment(side_cpu="50m"), "containers[1].resources")]:
        with pytest.raises(PatchError, match="not only resources of the targeted containers") as err:
            check_render([deployment()], [changed], targeted, "ov")
        assert where in str(err.value)


def _changed_lines(diff_text: str) -> list[str]:
    return [ln for ln in diff_text.splitlines() if ln[:1] in "+-" and not ln.startswith(("---", "+++"))]


def test_render_diff_is_per_object_and_matches_diff_u(tmp_path):
    """The printed diff has one unified diff per changed object, and its +/- lines are exactly those of
    GNU `diff -u` on that object's rendered YAML before and after (difflib's autojunk would rewrite
    whole objects instead)."""
    import re
    import shutil
    import subprocess

    from rightsize.kustomize import render

    if shutil.which("diff") is None:
        pytest.skip("GNU diff is not installed")
    root = copy_fixtures(tmp_path)
    prod = root / "overlays" / "prod"
    before = render(prod, config())
    result = apply_to_overlay(_prod_recs(), snapshot(), config(), prod)
    after = render(prod, config())

    headers = re.findall(r"^--- .*: (\S+ \S+) \(before\)$", result.diff, re.M)
    assert sorted(headers) == ["CronJob shop/prod-report-eu", "Deployment shop/prod-api-eu",
                               "Deployment shop/prod-web-eu", "StatefulSet shop/prod-db-eu"]

    def objects(text):
        docs = [c for c in re.split(r"(?m)^---[ \t]*\n", text) if c.strip()]
        return {"{kind} {metadata[namespace]}/{metadata[name]}".format(**YAML(typ="safe").load(c)): c for c in docs}

    objects_before, objects_after = objects(before), objects(after)
    total = 0
    for chunk, header in zip(result.diff.split("\n--- "), headers):
        (tmp_path / "a.yaml").write_text(objects_before[header])
        (tmp_path / "b.yaml").write_text(objects_after[header])
        gnu = subprocess.run(["diff", "-u", str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")],
                             capture_output=True, text=True).stdout
        ours = _changed_lines(chunk)
        assert ours == _changed_lines(gnu), header
        assert 0 < len(ours) < 20  # only the resources lines, not the whole object
        total += len(ours)
    assert total == len(_changed_lines(result.diff))
