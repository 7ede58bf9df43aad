"""Usage patterns (analysis/patterns.py) and the margin each policy gives them: the classifier on hand-made
percentiles and on generated containers of known pattern, margins per pattern in the requests, a margin set
alone meaning that margin for every pattern, unknown pattern keys refused."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import rightsize as rs
from cluster_truth import container, layout, snapshot_of
from recommend_tables import config_with, ctr, one, snap
from rightsize.analysis import patterns
from rightsize.analysis.recommend import recommend
from rightsize.config import Config, load_config
from rightsize.errors import ConfigError
from rightsize.quantity import MIB
from rightsize.analysis.rounding import round_cpu_up


def test_the_classifier_by_hand():
    # p50, p90, p99 (cores): flat noise, a wide swing, a heavy tail, unknown
    p50, p90, p99 = [1.0, 1.0, 1.0, np.nan], [1.3, 1.8, 1.3], [1.6, 2.0, 4.0]
    got = patterns.classify("cpu", p50, p90 + [1.0], p99 + [1.0])
    assert list(got) == ["flat", "diurnal", "bursty", ""]
    # memory's thresholds are tighter: p90 1.08 x p50 is flat, 1.2 x is a swing, a p99 1.3 x p90 over a flat body bursts
    mem = patterns.classify("memory", [100, 100, 100, 100], [108, 120, 101, 101], [110, 125, 131, 102], [False, False, False, True])
    assert list(mem) == ["flat", "diurnal", "bursty", "growing"]


def test_generated_containers_get_their_pattern():
    specs = [c for c in layout(300, seed=5) if c.memory_pattern in ("flat", "bursty", "diurnal") and c.replicas == 1
             and c.kind == "Deployment" and c.container == "app"][:24]
    recs = recommend(snapshot_of(specs), Config()).set_index("workload")
    for c in specs:
        assert recs.loc[c.workload, "memory_pattern"] == c.memory_pattern, c
        cpu = {"weekly": "diurnal"}.get(c.cpu_pattern, c.cpu_pattern)
        assert recs.loc[c.workload, "cpu_pattern"] == cpu, c


def test_each_pattern_gets_its_policys_margin():
    cfg = config_with(margins={"cpu_flat": 0.05, "cpu_bursty": 0.4, "memory_flat": 0.1}, memory_limit="margin")
    flat = ctr("flat", cpu=(0.2, 0.22, 0.23, 0.24, 0.25), memory=(200 * MIB, 205 * MIB, 206 * MIB, 207 * MIB, 208 * MIB))
    bursty = ctr("bursty", cpu=(0.1, 0.12, 0.2, 0.6, 0.7))
    recs = recommend(snap(flat, bursty), cfg)
    f, b = one(recs, "flat"), one(recs, "bursty")
    assert (f["cpu_pattern"], b["cpu_pattern"]) == ("flat", "bursty")
    assert f["cpu_request_cores_recommended"] == pytest.approx(float(round_cpu_up(0.23 * 1.05)))
    assert b["cpu_request_cores_recommended"] == pytest.approx(float(round_cpu_up(0.2 * 1.4)))
    # production puts the memory margin on the limit: the request holds the max, the limit 208 MiB x 1.1 = 228.8 -> 229 MiB
    assert f["memory_request_bytes_recommended"] == 208 * MIB and f["memory_limit_bytes_recommended"] == 229 * MIB
    assert "+5% (flat)" in f["reason"] and "+40% (bursty)" in b["reason"] and "208Mi (flat: limit +10%)" in f["reason"]
    # a pattern the table leaves out (memory bursty) gets the policy's margin (15 %)
    assert b["memory_pattern"] == "flat" or "limit +15%" in b["reason"]
    # memory_limit = request: the margin on both
    both = one(recommend(snap(flat, bursty), config_with(margins={"memory_flat": 0.1}, memory_limit="request")), "flat")
    assert both["memory_request_bytes_recommended"] == both["memory_limit_bytes_recommended"] == 229 * MIB
    assert "208Mi +10% (flat)" in both["reason"]


def test_production_by_default_reserves_the_max_and_puts_the_margin_on_the_limit():
    """The margin guards against an OOM kill, which happens at the limit; the request holds the observed max.
    A growing working set keeps its margin on the request (it may have no limit above it)."""
    flat = ctr("flat", memory=(200 * MIB, 205 * MIB, 206 * MIB, 207 * MIB, 208 * MIB))
    prod = Config().policy("production")
    assert prod.memory_limit == "margin" and prod.margins["memory_flat"] == 0.25
    f = one(recommend(snap(flat), Config()), "flat")
    assert f["memory_pattern"] == "flat"
    assert f["memory_request_bytes_recommended"] == 208 * MIB  # the max, whole MiB
    assert f["memory_limit_bytes_recommended"] == 260 * MIB  # 208 MiB x 1.25
    # the self-check and every floor still see the limit: below the max neither goes
    assert f["memory_limit_bytes_recommended"] >= f["memory_max_bytes"] and f["memory_request_bytes_recommended"] >= f["memory_max_bytes"]


def test_a_margin_set_alone_is_the_margin_of_every_pattern(tmp_path):
    bursty = ctr("bursty", cpu=(0.1, 0.12, 0.2, 0.6, 0.7))
    s = snap(bursty)
    default = one(rs.recommend(s), "bursty")
    assert default["cpu_pattern"] == "bursty"
    # a what-if, a config file and --policy all mean "25 % everywhere" when only margin is set
    what_if = one(rs.recommend(s, policy={"margin": 0.25}), "bursty")
    assert what_if["cpu_request_cores_recommended"] == pytest.approx(float(round_cpu_up(0.2 * 1.25)))
    path = tmp_path / "config.toml"
    path.write_text("[policies.production]\nmargin = 0.25\n")
    assert load_config(path).policy("production").margins == {}
    path.write_text("[policies.production]\nmargin = 0.25\nmargins = {cpu_bursty = 0.5}\n")
    assert load_config(path).policy("production").margins == {"cpu_bursty": 0.5}
    # a policy of one's own has no pattern margins unless it sets them
    path.write_text("[policies.batch]\nmargin = 0.3\n")
    assert load_config(path).policy("batch").margins == {}
    assert dataclasses.replace(Config().policy("production"), margins={}).margins == {}


def test_the_chosen_margin_keeps_kills_at_zero_with_headroom_and_steps_over_request_within_the_share():
    import pandas as pd

    from rightsize.analysis.margins import choose

    rows = [("production", "memory", "flat", m, 100, ooms, 0, 0.0, 0.0) for m, ooms in ((0.0, 9), (0.1, 1), (0.2, 0), (0.3, 0))]
    rows += [("production", "cpu", "bursty", m, 50, 0, 0, over, 0.05) for m, over in ((0.0, 0.07), (0.05, 0.049), (0.1, 0.03))]
    rows += [("production", "cpu", "flat", m, 50, 0, 1, 0.0, 0.05) for m in (0.0, 0.1)]  # throttled at every margin
    rows += [("production", "memory", "bursty", m, 50, ooms, 0, 0.0, 0.0) for m, ooms in ((0.0, 3), (0.1, 0))]
    rows += [("production", "memory", "diurnal", m, 50, 0, 0, over, 0.0) for m, over in ((0.0, 0.01), (0.1, 0.0), (0.2, 0.0))]
    table = pd.DataFrame(rows, columns=["policy", "resource", "pattern", "margin", "containers", "predicted_ooms", "throttled",
                                        "over_request", "share"])
    chosen = choose(table).set_index(["resource", "pattern"])["chosen"]
    # memory flat: 0.2 is the first without a kill and kills decided it, so one candidate more
    assert chosen[("memory", "flat")] == 0.3
    # steps over request decided this: the smallest that passes (cpu flat: none passes, and a lighter one cannot say it does)
    assert chosen[("cpu", "bursty")] == 0.05 and np.isnan(chosen[("cpu", "flat")])
    # diurnal (0.1 alone) and bursty (0.1 alone: no more to take) are heavier-tailed than flat: its 0.3
    assert chosen[("memory", "diurnal")] == 0.3 and chosen[("memory", "bursty")] == 0.3
    alone = choose(table[table["pattern"] != "flat"]).set_index(["resource", "pattern"])["chosen"]
    assert alone[("memory", "diurnal")] == 0.1 and alone[("memory", "bursty")] == 0.1


def test_a_heavier_tailed_pattern_never_gets_less_margin_than_a_lighter_one():
    """Seed 31's kill, in small: a bursty working set 0.2 % over a limit at its pattern's own margin, which a
    handful of bursty containers had let come out below flat's. The same cluster's frontier as the sweep sees it."""
    import pandas as pd

    from rightsize.analysis.margins import choose

    rows = [("production", "memory", "flat", m, 400, ooms, 0.2 + m / 2) for m, ooms in ((0.15, 3), (0.2, 0), (0.25, 0), (0.3, 0))]
    rows += [("production", "memory", "diurnal", m, 100, ooms, 0.3 + m / 2) for m, ooms in ((0.15, 1), (0.2, 0), (0.25, 0), (0.3, 0))]
    rows += [("production", "memory", "bursty", m, 20, 0, 0.4 + m / 2) for m in (0.15, 0.2, 0.25, 0.3)]
    rows += [("production", "memory", "growing", m, 5, 0, 0.35) for m in (0.0, 0.05)]
    rows += [("non_production", "memory", "bursty", m, 20, ooms, 0.1) for m, ooms in ((0.0, 1), (0.05, 0), (0.1, 0))]
    table = pd.DataFrame(rows, columns=["policy", "resource", "pattern", "margin", "containers", "predicted_ooms", "slack"]).assign(
        throttled=0, over_request=0.0, share=0.0)
    got = choose(table).set_index(["policy", "pattern"])
    # flat: 0.2 passes, a kill at 0.15 asks one more: 0.25; diurnal the same; bursty passed from 0.15 on, yet gets flat's 0.25
    assert got.loc[("production", "flat"), "chosen"] == 0.25
    assert got.loc[("production", "diurnal"), "chosen"] == 0.25
    assert got.loc[("production", "bursty"), "chosen"] == 0.25
    assert got.loc[("production", "bursty"), "slack"] == pytest.approx(0.4 + 0.25 / 2)  # the figures of the row it took
    # growing is sized on its projection, not in the order; another policy is its own
    assert got.loc[("production", "growing"), "chosen"] == 0.0
    assert got.loc[("non_production", "bursty"), "chosen"] == 0.1


@pytest.mark.parametrize("text, message", [
    ("margins = {cpu_growing = 0.1}", "policies.production.margins: unknown usage pattern 'cpu_growing'"),
    ("margins = {memory_flat = -0.1}", "policies.production.margins: memory_flat must be at least 0"),
    ("margins = {memory_flat = \"lots\"}", "policies.production.margins: expected a table of margins"),
])
def test_bad_margins_are_refused_naming_the_key(tmp_path, text, message):
    path = tmp_path / "config.toml"
    path.write_text(f"[policies.production]\n{text}\n")
    with pytest.raises(ConfigError, match=message):
        load_config(path)
    with pytest.raises(ConfigError, match="margins"):
        rs.recommend(snap(ctr()), policy={"margins": {"cpu_growing": 0.1}})
