"""Config: one declaration per key drives validation, the documented config.toml and the key list."""
import math
import tomllib
from pathlib import Path

import pytest

from rightsize.config import Config, help_for_keys, load_config, render_config
from rightsize.errors import ConfigError
from rightsize.quantity import MIB

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path, text):
    p = tmp_path / "config.toml"
    p.write_text(text)
    return p


def test_missing_file_gives_defaults_unless_required(tmp_path):
    assert load_config(tmp_path / "nope.toml") == Config()
    with pytest.raises(ConfigError, match="nope.toml: config file not found"):
        load_config(tmp_path / "nope.toml", required=True)


def test_good_config_parses_quantities_durations_and_merges_policies(tmp_path):
    cfg = load_config(write(tmp_path, """
[general]
window = "7d"
step = "30s"
[prometheus]
headers = {"X-Scope-OrgID" = "team-a"}
[policies.production]
min_cpu = "25m"
min_memory = "64Mi"
[policies.batch]
cpu_request_percentile = "p90"
margin = 0.3
[[policy_rules]]
policy = "batch"
namespaces = ["batch-*"]
"""))
    assert cfg.general.window == 7 * 86400
    assert cfg.general.step == 30
    assert cfg.prometheus.headers == {"X-Scope-OrgID": "team-a"}
    prod = cfg.policy("production")
    assert prod.min_cpu == pytest.approx(0.025)
    assert prod.min_memory == 64 * MIB
    assert prod.cpu_request_percentile == "p95"  # untouched keys keep their defaults
    assert cfg.policy("non_production").cpu_request_percentile == "p50"  # default policy still there
    assert cfg.policy("batch").margin == 0.3
    # statistics are parsed once, where the config is read (or a Policy is built in code)
    assert cfg.policy("batch").cpu_request_percentile.quantile == pytest.approx(0.90)
    assert cfg.policy("non_production").memory_request_percentile.quantile == pytest.approx(0.90)
    assert cfg.policy_rules[0].namespaces == ("batch-*",)
    assert math.isnan(prod.max_cpu)  # "" = unset, never 0


@pytest.mark.parametrize("text, message", [
    ("[general]\nwindow = 14\nhours_per_month = \"x\"", "general.hours_per_month: expected a number, got 'x'"),
    ("[policies.production]\nmargin = true", "policies.production.margin: expected a number"),
    ("[general]\nbogus = 1", "unknown key 'bogus' in [general]"),
    ("surprise = 1", "unknown key 'surprise' in [top level]"),
    ("[policies.production]\nmin_memory = \"12 apples\"", "policies.production.min_memory: not a memory quantity: '12 apples'"),
    ("[policies.production]\nmin_cpu = \"fast\"", "policies.production.min_cpu: not a CPU quantity: 'fast'"),
    ("[policies.production]\ncpu_request_percentile = \"q42\"", "not a usage statistic: 'q42' (expected max or pNN"),
    ("[policies.production]\nper_replica = \"sum\"", "expected one of 'pooled', 'max_over_pods', 'busiest'"),
    ("[pricing]\non_demand_discount = 1.5", "pricing.on_demand_discount: must be at most 1"),
    ("[general]\nwindow = \"fortnight\"", "general.window: not a duration: 'fortnight'"),
    ("[[policy_rules]]\npolicy = \"nonexistent\"", "policy_rules[0].policy: unknown policy 'nonexistent'"),
    ("[[overrides]]\nworkload = \"just-a-name\"", "overrides[0].workload: expected NAMESPACE/KIND/NAME"),
    ("[general\n", "not valid TOML"),
    ("[policies.production]\nhpa_target_min = 95.0", "policies.production.hpa_target_min (95) is above hpa_target_max (90)"),
    ("[policies.production]\nhpa_request = \"move\"", "expected one of 'co_adjust', 'keep'"),
])
def test_bad_config_names_file_key_and_expectation(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value)
    assert message in str(err.value)
    assert err.value.exit_code == 2


def test_shipped_config_toml_is_the_rendered_declarations():
    shipped = (ROOT / "config.toml").read_text()
    assert shipped == render_config(), "config.toml is stale: regenerate it with `rightsize config > config.toml`"
    assert load_config(ROOT / "config.toml") == Config()


def test_rendered_config_round_trips_a_non_default_config(tmp_path):
    cfg = load_config(write(tmp_path, "[policies.production]\nmin_cpu = \"15m\"\n[pricing]\ninstance_prices = {\"m5.large\" = 0.07}\n"))
    again = load_config(write(tmp_path, render_config(cfg)))
    assert again == cfg


def test_every_key_is_documented_in_key_list_and_toml():
    rows = help_for_keys()
    keys = {k for k, *_ in rows}
    assert "policies.production.margin" in keys and "prometheus.metrics.cpu_usage" in keys
    assert all(text.strip() for _, _, _, text in rows)
    rendered = tomllib.loads(render_config())
    assert rendered["policies"]["production"]["margin"] == 0.15
    assert rendered["prometheus"]["metrics"]["cpu_usage"] == "container_cpu_usage_seconds_total"
