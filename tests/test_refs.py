"""WorkloadRef: the one parser and formatter of workload references, and the places that read them."""
from __future__ import annotations

import pandas as pd
import pytest

from rightsize.config import load_config
from rightsize.errors import ConfigError
from rightsize.refs import WorkloadRef, refs_text


@pytest.mark.parametrize("text, ref", [
    ("shop/Deployment/web", WorkloadRef("shop", "Deployment", "web")),
    ("eu-1/shop/Deployment/web", WorkloadRef("shop", "Deployment", "web", cluster="eu-1")),
    # a cluster named by its EKS ARN keeps its ':' (only the last segment may carry the container)
    ("arn:aws:eks:eu-west-1:1:cluster-prod/shop/Deployment/web",
     WorkloadRef("shop", "Deployment", "web", cluster="arn:aws:eks:eu-west-1:1:cluster-prod")),
    ("  shop/Deployment/web  ", WorkloadRef("shop", "Deployment", "web")),
])
def test_parse_and_format_round_trip(text, ref):
    assert WorkloadRef.parse(text) == ref
    assert WorkloadRef.parse(str(ref)) == ref
    assert str(ref) == text.strip()


def test_short_and_container_forms_only_where_asked():
    assert WorkloadRef.parse("shop/web", short=True) == WorkloadRef("shop", "", "web")
    with_container = WorkloadRef.parse("eu/shop/Deployment/web:app", container=True)
    assert with_container == WorkloadRef("shop", "Deployment", "web", cluster="eu", container="app")
    assert str(with_container) == "eu/shop/Deployment/web:app" and str(with_container.workload()) == "eu/shop/Deployment/web"
    with pytest.raises(ConfigError, match=r"^--explain: expected NAMESPACE/KIND/NAME or CLUSTER/NAMESPACE/KIND/NAME "
                                          r"\(or NAMESPACE/NAME\), got 'shop/web:app'$"):
        WorkloadRef.parse("shop/web:app", what="--explain", short=True)
    with pytest.raises(ConfigError, match=r"optionally followed by :CONTAINER, got 'shop/Deployment/web:'"):
        WorkloadRef.parse("shop/Deployment/web:", container=True)


@pytest.mark.parametrize("text", ["web", "shop/web", "a/b/c/d/e", "shop//web", "/shop/Deployment/web", ""])
def test_malformed_references_name_what_and_the_forms(text):
    with pytest.raises(ConfigError) as err:
        WorkloadRef.parse(text, what="--series")
    assert str(err.value) == f"--series: expected NAMESPACE/KIND/NAME or CLUSTER/NAMESPACE/KIND/NAME, got {text!r}"


def test_mask_matches_kind_case_insensitively_and_cluster_and_container_only_when_named():
    frame = pd.DataFrame({"cluster": ["eu", "us", "eu", "eu"], "namespace": "shop",
                          "kind": pd.Categorical(["Deployment", "Deployment", "StatefulSet", "Deployment"]),
                          "workload": ["web", "web", "web", "api"], "container": ["app", "app", "app", "app"]})
    assert WorkloadRef.parse("shop/deployment/web").mask(frame).tolist() == [True, True, False, False]
    assert WorkloadRef.parse("us/shop/Deployment/web").mask(frame).tolist() == [False, True, False, False]
    assert WorkloadRef.parse("shop/web", short=True).mask(frame).tolist() == [True, True, True, False]
    assert WorkloadRef.parse("shop/Deployment/web:proxy", container=True).mask(frame).tolist() == [False] * 4
    assert refs_text(frame, cluster=True, container=True).tolist() == [
        str(WorkloadRef.of(r)) for r in frame.to_dict("records")]


def test_config_overrides_are_checked_at_load_with_the_forms(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[[overrides]]\nworkload = "shop/Deployment/web/extra/part"\nignore = true\n')
    with pytest.raises(ConfigError, match=rf"^{path}: overrides\[0\].workload: expected NAMESPACE/KIND/NAME or "
                                          r"CLUSTER/NAMESPACE/KIND/NAME, got 'shop/Deployment/web/extra/part'$"):
        load_config(path)
    path.write_text('[[overrides]]\nworkload = "eu/shop/deployment/web"\nignore = true\n')
    assert load_config(path).overrides[0].workload == "eu/shop/deployment/web"

