"""Policy choice per container: overrides > annotation > policy_rules > non-production shortcuts > default."""
import dataclasses
import json

import pandas as pd
import pytest

from rightsize.analysis.policy import assign_policies, namespace_labels, policy_params
from rightsize.analysis.recommend import recommend
from rightsize.config import Config, Policy, PolicyRule, RecommendConfig, WorkloadOverride
from rightsize.errors import ConfigError
from recommend_tables import ctr, one, snap, uniform_margins


def frame(*rows):
    """(namespace, kind, workload, policy_override) rows, cluster c1."""
    return pd.DataFrame([{"cluster": "c1", "namespace": ns, "kind": k, "workload": w, "policy_override": ann}
                         for ns, k, w, ann in rows])


def namespaces(**labels):
    return pd.DataFrame([{"cluster": "c1", "namespace": ns, "labels_json": json.dumps(lbl)} for ns, lbl in labels.items()])


def cfg(**kw):
    policies = dict(Config().policies)
    policies["batch"] = Policy(cpu_request_percentile="p90")
    return dataclasses.replace(Config(), policies=policies, **kw)


def test_default_policy_and_non_production_globs():
    f = frame(("shop", "Deployment", "a", ""), ("staging-eu", "Deployment", "a", ""), ("ci-runners", "Deployment", "a", ""),
              ("devops", "Deployment", "a", ""), ("payments-dev", "Deployment", "a", ""))
    out = assign_policies(f, namespaces(), Config())
    # the default globs name whole words: "devops" is a team's namespace, not a dev environment
    assert out["policy"].tolist() == ["production", "non_production", "non_production", "production", "non_production"]
    assert "staging-*" in out["policy_source"][1]


def test_non_production_label_shortcut():
    c = dataclasses.replace(Config(), recommend=RecommendConfig(non_production_namespaces=(),
                                                                non_production_labels={"environment": "staging"}))
    f = frame(("web-stg", "Deployment", "a", ""), ("web", "Deployment", "a", ""))
    out = assign_policies(f, namespaces(**{"web-stg": {"environment": "staging"}, "web": {"environment": "production"}}), c)
    assert out["policy"].tolist() == ["non_production", "production"]


def test_default_policy_is_configurable():
    c = dataclasses.replace(cfg(), recommend=RecommendConfig(default_policy="batch"))
    assert assign_policies(frame(("shop", "Deployment", "a", "")), namespaces(), c)["policy"][0] == "batch"


def test_policy_rules_by_glob_and_label_first_match_wins_and_beat_shortcuts():
    rules = (
        PolicyRule(policy="batch", namespaces=("staging-batch*",)),
        PolicyRule(policy="production", namespaces=("staging*",), namespace_labels={"tier": "gold"}),
        PolicyRule(policy="batch", namespace_labels={"tier": "gold"}),
        PolicyRule(policy="batch"),  # names nothing: matches nothing
    )
    c = cfg(policy_rules=rules)
    f = frame(("staging-batch-1", "Job", "a", ""), ("staging-gold", "Deployment", "a", ""), ("staging-x", "Deployment", "a", ""),
              ("shop", "Deployment", "a", ""), ("other", "Deployment", "a", ""))
    ns = namespaces(**{"staging-gold": {"tier": "gold"}, "shop": {"tier": "gold"}})
    out = assign_policies(f, ns, c)
    assert out["policy"].tolist() == ["batch", "production", "non_production", "batch", "production"]
    assert out["policy_source"][0].startswith("policy_rules[0]")
    assert out["policy_source"][3].startswith("policy_rules[2]")


def test_annotation_beats_rules_and_unknown_annotation_is_noted():
    c = cfg(policy_rules=(PolicyRule(policy="batch", namespaces=("shop",)),))
    f = frame(("shop", "Deployment", "a", "non_production"), ("shop", "Deployment", "b", "nonsense"))
    out = assign_policies(f, namespaces(), c)
    assert out["policy"].tolist() == ["non_production", "batch"]
    assert "annotation" in out["policy_source"][0]
    assert "nonsense" in out["policy_note"][1] and out["policy_note"][0] == ""


def test_config_override_beats_annotation_matches_kind_case_insensitively_and_by_cluster():
    c = cfg(overrides=(
        WorkloadOverride(workload="shop/deployment/a", policy="batch"),
        WorkloadOverride(workload="shop/Deployment/a", policy="production"),  # later entry: loses
        WorkloadOverride(workload="c2/shop/Deployment/b", policy="batch"),   # other cluster: no match
        WorkloadOverride(workload="shop/Deployment/c", ignore=True),
    ))
    f = frame(("shop", "Deployment", "a", "non_production"), ("shop", "Deployment", "b", ""), ("shop", "Deployment", "c", ""))
    out = assign_policies(f, namespaces(), c)
    assert out["policy"].tolist() == ["batch", "production", "production"]
    assert out["ignored_by_config"].tolist() == [False, False, True]
    assert out["policy_source"][0].startswith("overrides[0]")


def test_namespace_labels_tolerate_bad_json():
    ns = pd.DataFrame([{"cluster": "c1", "namespace": "a", "labels_json": "{not json"},
                       {"cluster": "c1", "namespace": "b", "labels_json": ""},
                       {"cluster": "c1", "namespace": "c", "labels_json": '{"x": 1}'}])
    assert namespace_labels(ns) == {("c1", "a"): {}, ("c1", "b"): {}, ("c1", "c"): {"x": "1"}}


def test_policy_params_align_with_rows_and_reject_unknown():
    s = pd.Series(["non_production", "production", "non_production"], index=[10, 11, 12])
    p = policy_params(Config(), s)
    assert list(p.index) == [10, 11, 12]
    assert p["cpu_request_percentile"].tolist() == ["p50", "p95", "p50"]
    assert p["memory_limit"].tolist() == ["factor", "margin", "factor"]
    with pytest.raises(ConfigError, match="unknown policy 'nope'"):
        policy_params(Config(), pd.Series(["nope"]))


def test_recommend_uses_the_chosen_policy_per_row():
    s = snap(ctr("web", namespace="shop"), ctr("web", namespace="staging"), ctr("api", namespace="shop", policy_override="non_production"))
    r = recommend(s, uniform_margins())
    assert r.set_index(["namespace", "workload"])["policy"].to_dict() == {
        ("shop", "web"): "production", ("staging", "web"): "non_production", ("shop", "api"): "non_production"}
    # the non-production policy really changed the numbers: CPU from p50 (100m) not p95 (200m)
    staging = r[r["namespace"] == "staging"].iloc[0]
    assert staging["cpu_basis"] == "p50" and staging["cpu_request_cores_recommended"] == pytest.approx(0.12)
    prod = one(r[r["namespace"] == "shop"], "web")
    assert prod["cpu_basis"] == "p95" and prod["cpu_request_cores_recommended"] == pytest.approx(0.23)


def test_recommend_honours_config_ignore_override():
    c = dataclasses.replace(Config(), overrides=(WorkloadOverride(workload="shop/Deployment/web", ignore=True),))
    r = recommend(snap(ctr("web")), c)
    assert r["status"][0] == "ignored" and "config override" in r["reason"][0]


def test_production_is_decided_once_by_the_policy_ab_test_case():
    """`ab-test` matches the non-production glob `*-test`, but [[policy_rules]] maps it to production:
    the CI threshold must count its OOM risk, and spot must not call it non-production."""
    from rightsize.api import analyze
    from rightsize.analysis.thresholds import crossed_thresholds
    from rightsize.config import ThresholdConfig

    c = dataclasses.replace(cfg(policy_rules=(PolicyRule(policy="production", namespaces=("ab-test",)),)),
                            thresholds=ThresholdConfig(fail_on_production_oom_risk=True))
    rows = [ctr("web", namespace="ab-test", oom_kills=2, restarts=2), ctr("web", namespace="qa-test", oom_kills=1, restarts=1)]
    result = analyze(snap(*rows), c)
    recs = result.recommendations.set_index("namespace")
    assert recs.loc["ab-test", "policy"] == "production" and bool(recs.loc["ab-test", "production"])
    assert recs.loc["qa-test", "policy"] == "non_production" and not bool(recs.loc["qa-test", "production"])
    messages = crossed_thresholds(result.summary, result, c)
    assert len(messages) == 1 and "1 production container(s) at OOM risk: ab-test/Deployment/web:app" in messages[0]
    spot = result.spot.set_index("namespace")
    assert not spot.loc["ab-test", "non_production"] and spot.loc["qa-test", "non_production"]


def test_a_declared_policy_can_be_non_production():
    policies = dict(Config().policies)
    policies["sandbox"] = Policy(production=False)
    c = dataclasses.replace(Config(), policies=policies,
                            policy_rules=(PolicyRule(policy="sandbox", namespaces=("playground",)),))
    r = recommend(snap(ctr("web", namespace="playground"), ctr("web", namespace="shop")), c).set_index("namespace")
    assert r.loc["playground", "policy"] == "sandbox" and not bool(r.loc["playground", "production"])
    assert bool(r.loc["shop", "production"])


@pytest.fixture(scope="module")
def priced_demo():
    from rightsize import api

    return api.load("demo")


SANDBOX = '[policies.sandbox]\nproduction = false\n'


@pytest.mark.parametrize("rules, crossed", [
    ("", ["shop/Deployment/search:app", "data/CronJob/nightly-report:report"]),
    # a rule by namespace name to a declared non-production policy: shop's OOM risk no longer fails CI
    (SANDBOX + '[[policy_rules]]\npolicy = "sandbox"\nnamespaces = ["sh*"]\n', ["data/CronJob/nightly-report:report"]),
    # a rule by namespace label (data and shop are labelled environment=production, team=data for data only)
    (SANDBOX + '[[policy_rules]]\npolicy = "sandbox"\nnamespace_labels = {team = "data"}\n', ["shop/Deployment/search:app"]),
    # first match wins: shop goes to production by the first rule although the second would make it a sandbox
    (SANDBOX + '[[policy_rules]]\npolicy = "production"\nnamespaces = ["shop"]\n'
     '[[policy_rules]]\npolicy = "sandbox"\nnamespaces = ["shop", "data"]\n', ["shop/Deployment/search:app"]),
    (SANDBOX + '[[policy_rules]]\npolicy = "sandbox"\nnamespaces = ["shop", "data"]\n', []),
], ids=["default", "by-name", "by-label", "first-match", "none-left"])
def test_oom_threshold_follows_the_policy_rules_of_the_config_file(priced_demo, tmp_path, rules, crossed):
    """[thresholds] fail_on_production_oom_risk with [[policy_rules]], both read from one config file: the
    threshold counts the OOM risks (demo: shop/search and data/nightly-report) of the containers whose
    assigned policy is a production one, and nothing else."""
    from rightsize import api
    from rightsize.analysis.thresholds import crossed_thresholds
    from rightsize.config import load_config

    path = tmp_path / "config.toml"
    path.write_text("[thresholds]\nfail_on_production_oom_risk = true\n" + rules)
    config = load_config(path, required=True)
    analysis = api.analyze(priced_demo, config)
    messages = crossed_thresholds(analysis.summary, analysis, config)
    if not crossed:
        assert messages == []
        return
    assert messages == [f"{len(crossed)} production container(s) at OOM risk: {', '.join(crossed)} "
                        "(thresholds.fail_on_production_oom_risk)"]
