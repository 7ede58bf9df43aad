"""Recommendation rules declare what they read and write: a rule added from here runs in the pipeline and shows in
explain; a declaration that does not match the pipeline or what the rule does is refused, naming the rule."""
import re

import numpy as np
import pytest

from rightsize.analysis import rules as rules_pkg
from rightsize.analysis.explain import explain
from rightsize.analysis.recommend import PIPELINE, compute
from rightsize.analysis.rules.base import INPUTS, Rows, RuleError, rule
from rightsize.analysis.rules.text import num_text
from rightsize.config import Config
from rightsize.quantity import GIB, MIB
from recommend_tables import ctr, one, snap, uniform_margins

CFG = uniform_margins()  # one 15 % margin for every usage pattern (test_patterns.py tests the pattern margins)
ORDER = ["assign_policy", "eligibility", "memory_growth", "usage_pattern", "confidence", "hpa_scope", "cpu_throttling",
         "cpu_request", "memory_request", "runtime_memory", "oom_demand", "growth_demand", "memory_floor", "hpa_coadjust",
         "memory_limit", "growing_memory_limit", "cpu_limit", "self_check", "one_off_job", "status", "provisioning_flags",
         "runtime_setting", "gpu_facts", "gpu_idle", "gpu_share", "gpu_smaller", "gpu_outcome"]


@rule(after="memory_limit", reads=("mem_lim", "rec", "oom_kills"), writes=("mem_lim",), flags=("whole_gib_limit",))
def whole_gib_memory_limit(rows: Rows) -> None:
    """Whole GiB limits: a memory limit over 1 GiB is rounded up to whole GiB (a test's rule).

    Reason: "memory limit rounded up to <n> GiB". Flag: whole_gib_limit.
    """
    v = rows.v
    big = v["rec"] & (v["mem_lim"] > GIB)
    v["mem_lim"] = np.where(big, np.ceil(v["mem_lim"] / GIB) * GIB, v["mem_lim"])
    rows.reason(big, "memory limit rounded up to " + num_text(v["mem_lim"] / GIB, 0) + " GiB")
    rows.flag(big, "whole_gib_limit")


def test_a_rule_added_in_a_test_file_runs_in_the_pipeline_and_shows_in_explain():
    pipeline = PIPELINE.with_rules(whole_gib_memory_limit)
    after = ORDER.index("memory_limit") + 1
    assert pipeline.names == ORDER[:after] + ["whole_gib_memory_limit"] + ORDER[after:]
    s = snap(ctr("big", memory=(1100 * MIB,) * 4 + (1200 * MIB,), memory_request=2 * GIB, memory_limit=2 * GIB),
             ctr("small"))
    plain, extended = compute(s, CFG), compute(s, CFG, pipeline=pipeline)
    big, big_plain = one(extended, "big"), one(plain, "big")
    # 1200 MiB x 1.15 = 1380 MiB rounded up to 1392 MiB (16 MiB steps from 1 GiB) by memory_floor; limit = request
    assert big_plain["memory_limit_bytes_recommended"] == 1392 * MIB
    assert big["memory_limit_bytes_recommended"] == 2 * GIB  # rounded up to whole GiB by the new rule
    assert big["memory_request_bytes_recommended"] == 1392 * MIB  # untouched
    assert "whole_gib_limit" in big["flags"].split(",") and "memory limit rounded up to 2 GiB" in big["reason"]
    small = one(extended, "small")
    assert small.drop(labels=["_rules"]).equals(one(plain, "small").drop(labels=["_rules"]))
    text = explain(s, CFG, "shop/Deployment/big", pipeline=pipeline)
    assert "whole_gib_memory_limit: Whole GiB limits: a memory limit over 1 GiB is rounded up" in text
    assert "memory limit rounded up to 2 GiB" in text
    assert "whole_gib_memory_limit" not in explain(s, CFG, "shop/Deployment/small", pipeline=pipeline)
    assert "whole_gib_memory_limit" not in explain(s, CFG, "shop/Deployment/big")


def test_the_pipeline_order_is_the_documented_one():
    assert PIPELINE.names == ORDER
    assert ", ".join(ORDER) in re.sub(r"\s+", " ", rules_pkg.__doc__)
    assert all(r.purpose and r.doc for r in PIPELINE)


def test_every_rule_reads_only_inputs_or_what_an_earlier_rule_wrote():
    written = set()
    for r in PIPELINE:
        assert r.reads <= INPUTS | written, r.name
        written |= r.writes
    assert PIPELINE.outputs <= INPUTS | written


def _declared(**kw):
    def build(fn):
        return rule(**kw)(fn)
    return build


def test_a_read_no_earlier_rule_writes_is_refused_when_the_pipeline_is_built():
    @_declared(after="eligibility", reads=("mem_req",), writes=("early",))
    def too_early(rows):
        """Reads the memory request before any rule made it."""
        rows.v["early"] = rows.v["mem_req"]

    with pytest.raises(RuleError, match="rule too_early reads mem_req: no input column and no earlier rule writes it"):
        PIPELINE.with_rules(too_early)


@pytest.mark.parametrize("kw, message", [
    (dict(after="nowhere"), r"rules placed after no known rule: odd \(after nowhere\)"),
    (dict(after="status", settings=("not_a_setting",)), "rule odd reads settings that are no Policy field: not_a_setting"),
    (dict(after="status", writes=("oom_kills",)), "rule odd writes input columns: oom_kills"),
    (dict(after=None), r"exactly one rule has no 'after' \(the first\)"),
])
def test_a_declaration_that_does_not_fit_the_pipeline_is_refused(kw, message):
    @_declared(**kw)
    def odd(rows):
        """A rule with a wrong declaration."""

    with pytest.raises(RuleError, match=message):
        PIPELINE.with_rules(odd)


def test_rules_after_the_same_rule_run_right_after_it_by_name_unless_they_share_values():
    @_declared(after="status", reads=("rec",), flags=("z",))
    def z_rule(rows):
        """Flags z."""
        rows.flag(rows.v["rec"], "z")

    @_declared(after="status", reads=("rec",), flags=("a",))
    def a_rule(rows):
        """Flags a."""
        rows.flag(rows.v["rec"], "a")

    names = PIPELINE.with_rules(z_rule, a_rule).names
    # the pipeline's own continuation after status (the GPU rules, rules/gpu.py) is the longest chain: it runs last
    at = names.index("status")
    assert names[at:at + 5] == ["status", "a_rule", "provisioning_flags", "runtime_setting", "z_rule"]
    # after memory_limit, before the rest of the pipeline (growing_memory_limit ... provisioning_flags), which may read it
    assert (PIPELINE.with_rules(whole_gib_memory_limit).names.index("whole_gib_memory_limit")
            == ORDER.index("growing_memory_limit"))

    @_declared(after="status", reads=("cpu_req",), writes=("cpu_req",))
    def doubles_cpu(rows):
        """Changes cpu_req, which provisioning_flags (also right after status) reads."""
        rows.v["cpu_req"] = rows.v["cpu_req"] * 2

    with pytest.raises(RuleError, match="rules doubles_cpu and provisioning_flags both run after status and share cpu_req"):
        PIPELINE.with_rules(doubles_cpu)

    @_declared(after="memory_limit", reads=("mem_lim",), writes=("mem_lim",))
    def halves_limit(rows):
        """Changes mem_lim, as whole_gib_memory_limit does right after memory_limit."""
        rows.v["mem_lim"] = rows.v["mem_lim"] / 2

    with pytest.raises(RuleError, match="rules halves_limit and whole_gib_memory_limit both run after memory_limit and "
                                        "share mem_lim: place one after the other"):
        PIPELINE.with_rules(whole_gib_memory_limit, halves_limit)


def test_a_running_rule_may_touch_only_what_it_declared():
    s = snap(ctr("web"))

    @_declared(after="status", reads=("rec",), writes=("note",))
    def sneaky(rows):
        """Reads a value it did not declare."""
        rows.v["note"] = rows.v["mem_req"]

    with pytest.raises(RuleError, match="rule sneaky uses 'mem_req' without declaring it in its reads"):
        compute(s, CFG, pipeline=PIPELINE.with_rules(sneaky))

    @_declared(after="status", reads=("rec",))
    def column_reader(rows):
        """Reads an input column it did not declare."""
        rows.num("oom_kills")

    with pytest.raises(RuleError, match="rule column_reader uses 'oom_kills' without declaring it in its reads"):
        compute(s, CFG, pipeline=PIPELINE.with_rules(column_reader))

    @_declared(after="status", reads=("rec",), writes=("note", "other"))
    def lazy(rows):
        """Declares a value it never sets."""
        rows.v["note"] = rows.v["rec"]

    with pytest.raises(RuleError, match="rule lazy declares other in its writes but did not set them"):
        compute(s, CFG, pipeline=PIPELINE.with_rules(lazy))

    @_declared(after="status", reads=("rec",))
    def flagger(rows):
        """Sets a flag it did not declare."""
        rows.flag(rows.v["rec"], "surprise")

    with pytest.raises(RuleError, match="rule flagger uses 'surprise' without declaring it in its flags"):
        compute(s, CFG, pipeline=PIPELINE.with_rules(flagger))

    @_declared(after="status", reads=("rec",))
    def setting_reader(rows):
        """Reads a policy setting it did not declare."""
        rows.pf("margin")

    with pytest.raises(RuleError, match="rule setting_reader uses 'margin' without declaring it in its settings"):
        compute(s, CFG, pipeline=PIPELINE.with_rules(setting_reader))


def test_a_rule_needs_a_docstring_saying_what_it_decides():
    with pytest.raises(RuleError, match="rule quiet: say what it decides in a docstring"):
        @_declared(after="status")
        def quiet(rows):
            pass
