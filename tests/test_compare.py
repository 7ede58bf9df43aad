"""Week over week on two hand-made weeks (tests/analysis_factory.py: week 1 follows week 0)."""
from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest

from analysis_factory import make_analysis, make_snapshot
from rightsize.analysis.summary import summarize
from rightsize.config import Config
from rightsize.emit.compare import compare, find_previous_dir, load_previous
from rightsize.emit.report import write_report
from rightsize.errors import RightsizeError

CONFIG = dataclasses.replace(Config(), report=dataclasses.replace(Config().report, charts=False))


def _summary(analysis):
    return summarize(analysis, make_snapshot(analysis), CONFIG)


@pytest.fixture(scope="module")
def weeks():
    a0, a1 = make_analysis(0), make_analysis(1)
    return a0, _summary(a0), a1, _summary(a1)


def _refs(df):
    return sorted(df["namespace"] + "/" + df["workload"] + "/" + df["container"])


def test_deltas_of_totals(weeks):
    a0, s0, a1, s1 = weeks
    c = compare(s1, a1.recommendations, s0, a0.recommendations, "2026-W46")
    d = c.totals.set_index("metric")
    # frontend now requests what was recommended ($120 -> $35), cart's memory was raised ($30 -> $42)
    assert d.loc["Current cost of requests (USD/month)", "previous"] == pytest.approx(514.0)
    assert d.loc["Current cost of requests (USD/month)", "current"] == pytest.approx(441.0)
    assert d.loc["Current cost of requests (USD/month)", "delta"] == pytest.approx(-73.0)
    assert d.loc["Savings available (USD/month)", "delta"] == pytest.approx(-73.0)
    assert d.loc["Cost after recommendations (USD/month)", "delta"] == pytest.approx(0.0)
    assert d.loc["Containers with a proposed change", "delta"] == -2
    assert d.loc["Containers at OOM risk", "delta"] == 0


def test_new_and_resolved_oom_risks(weeks):
    a0, s0, a1, s1 = weeks
    c = compare(s1, a1.recommendations, s0, a0.recommendations)
    assert _refs(c.new_oom_risks) == ["shop/search/app"]
    assert c.new_oom_risks["oom_kills"].tolist() == [2.0]
    assert _refs(c.resolved_oom_risks) == ["shop/cart/app"]
    assert c.resolved_oom_risks["now"].tolist() == ["no OOM risk"]
    # the staging OOM risk persists: neither new nor resolved
    assert "staging/worker/app" not in _refs(c.new_oom_risks) + _refs(c.resolved_oom_risks)


def test_a_container_that_disappeared_counts_as_resolved_gone(weeks):
    a0, s0, a1, s1 = weeks
    recs = a1.recommendations[a1.recommendations["workload"] != "worker"]
    c = compare(s1, recs, s0, a0.recommendations)
    gone = c.resolved_oom_risks.set_index("workload")["now"]
    assert gone["worker"] == "gone" and gone["cart"] == "no OOM risk"


def test_applied_recommendations(weeks):
    a0, s0, a1, s1 = weeks
    c = compare(s1, a1.recommendations, s0, a0.recommendations)
    assert _refs(c.applied) == ["shop/cart/app", "shop/frontend/app"]
    row = c.applied.set_index("workload").loc["frontend"]
    assert row["cpu_request_cores_before"] == 1.0 and row["cpu_request_cores_now"] == 0.25
    # unchanged containers with a pending change are not "applied"
    assert "search" not in set(c.applied["workload"]) and "staging" not in set(c.applied["namespace"])


def test_applied_tolerates_rounding_but_not_a_different_value(weeks):
    a0, s0, a1, s1 = weeks
    recs = a1.recommendations.copy()
    i = recs.index[recs["workload"] == "frontend"][0]
    recs.loc[i, "cpu_request_cores_current"] = 0.251  # 251m vs the recommended 250m: applied
    assert "frontend" in set(compare(s1, recs, s0, a0.recommendations).applied["workload"])
    recs.loc[i, "cpu_request_cores_current"] = 0.3  # someone picked another value: not applied
    assert "frontend" not in set(compare(s1, recs, s0, a0.recommendations).applied["workload"])


def test_round_trip_through_the_report_folders(tmp_path):
    a0, a1 = make_analysis(0), make_analysis(1)
    write_report(make_snapshot(a0), a0, CONFIG, tmp_path / "2026-W46")
    result = write_report(make_snapshot(a1), a1, CONFIG, tmp_path / "2026-W47")  # previous found automatically
    assert result.comparison is not None and result.comparison.previous_label == "2026-W46"
    wow = json.loads((result.out_dir / "summary.json").read_text())["week_over_week"]
    assert wow["previous"] == "2026-W46"
    assert [r["workload"] for r in wow["new_oom_risks"]] == ["search"]
    md = (result.out_dir / "report.md").read_text()
    section = md.split("## Week over week")[1].split("\n## ")[0]
    assert "Compared with **2026-W46**." in section
    assert "| Current cost of requests | $514.00 | $441.00 | -$73.00 |" in section
    assert "**New OOM risks: 1**" in section and "- `shop/search/app`" in section
    assert "- `shop/cart/app` (no OOM risk)" in section
    assert "**Recommendations applied: 2**" in section
    page = (result.out_dir / "report.html").read_text()
    assert "Compared with <b>2026-W46</b>" in page


def test_load_previous_keeps_unset_as_nan_and_names_as_strings(tmp_path):
    a0 = make_analysis(0)
    write_report(make_snapshot(a0), a0, CONFIG, tmp_path / "2026-W46")
    summary, recs = load_previous(tmp_path / "2026-W46")
    assert summary["totals"]["savings_usd_per_month"] == pytest.approx(172.0)
    ledger = recs[recs["workload"] == "ledger"].iloc[0]
    assert np.isnan(ledger["cpu_request_cores_recommended"]) and ledger["confidence"] == ""
    assert recs["flags"].tolist()[0] == "over_provisioned"


def test_load_previous_names_the_missing_file(tmp_path):
    with pytest.raises(RightsizeError, match=r"summary\.json"):
        load_previous(tmp_path)
    (tmp_path / "summary.json").write_text("{}")
    with pytest.raises(RightsizeError, match=r"recommendations\.csv"):
        load_previous(tmp_path)


def test_find_previous_dir(tmp_path):
    for name, with_summary in (("2026-W44", True), ("2026-W45", True), ("2026-W46", False), ("2026-W48", True),
                               ("notes", True)):
        (tmp_path / name).mkdir()
        if with_summary:
            (tmp_path / name / "summary.json").write_text("{}")
    assert find_previous_dir(tmp_path / "2026-W47") == tmp_path / "2026-W45"  # W46 has no report, W48 is later
    assert find_previous_dir(tmp_path / "2026-W44") is None
    assert find_previous_dir(tmp_path / "custom-out") is None  # --out elsewhere: compare only with --compare
    assert find_previous_dir(tmp_path / "missing" / "2026-W47") is None


def test_find_previous_dir_keeps_the_folders_after_the_week(tmp_path):
    """[report] layout = "{week}/{cluster}": last week's report of the same cluster, whatever else is there."""
    for week, cluster in (("2026-W45", "prod"), ("2026-W46", "prod"), ("2026-W47", "staging")):
        (tmp_path / week / cluster).mkdir(parents=True)
        (tmp_path / week / cluster / "summary.json").write_text("{}")
    assert find_previous_dir(tmp_path / "2026-W48" / "prod") == tmp_path / "2026-W46" / "prod"
    assert find_previous_dir(tmp_path / "2026-W46" / "prod") == tmp_path / "2026-W45" / "prod"
    assert find_previous_dir(tmp_path / "2026-W48" / "dev") is None


def _lines_joined(md: str) -> list[str]:
    """Lines of report.md where a heading or a list title runs into other text, or two list items share a line."""
    bad = []
    lines = md.splitlines()
    for i, line in enumerate(lines):
        title = re.search(r"\*\*[^*|]+: \d[\d,]*\*\*", line)
        if ("## " in line and not line.startswith("#")) or (title and title.start() > 0) or line.count("- `") > 1 \
                or (line.startswith("- `") and "**" in line) or (line.startswith("#") and i and lines[i - 1].strip()):
            bad.append(line)
    return bad


def test_report_md_never_joins_a_heading_to_a_list_item(tmp_path, monkeypatch):
    """Every list of the week-over-week section filled, and capped at one item so the "...and N more" line
    shows too: each heading, list title and item stays on a line of its own (report.md is the CI job
    summary; a joined line there reads as one garbled item)."""
    from rightsize.emit import view

    a0, a1 = make_analysis(0), make_analysis(1)
    write_report(make_snapshot(a0), a0, CONFIG, tmp_path / "2026-W46")
    md = (write_report(make_snapshot(a1), a1, CONFIG, tmp_path / "2026-W47").out_dir / "report.md").read_text()
    assert "- `shop/cart/app` (no OOM risk)\n\n**Recommendations applied: 2**\n\n- `shop/frontend/app`\n- `shop/cart/app`\n" in md
    assert _lines_joined(md) == []
    monkeypatch.setattr(view.ItemList.__init__, "__defaults__", (1,) + view.ItemList.__init__.__defaults__[1:])
    capped = (write_report(make_snapshot(a1), a1, CONFIG, tmp_path / "2026-W48", compare_dir=tmp_path / "2026-W46").out_dir
              / "report.md").read_text()
    assert "_…and 1 more in `recommendations.csv`._" in capped and _lines_joined(capped) == []
    assert _lines_joined("- `a`**Resolved OOM risks: 1**\n- `b`- `c`\ntext ## Top\n") == [
        "- `a`**Resolved OOM risks: 1**", "- `b`- `c`", "text ## Top"]  # the check finds what the bug did


def test_unchanged_requests_are_never_applied(weeks):
    """A change proposed only for a limit (requests recommended as they are) and a container whose
    requests did not move are never "applied", whatever the tolerance would accept."""
    a0, s0, a1, s1 = weeks
    prev, cur = a0.recommendations.copy(), a0.recommendations.copy()  # nothing moved since last week
    assert compare(s1, cur, s0, prev).applied.empty
    i = prev.index[prev["workload"] == "frontend"][0]
    prev.loc[i, "cpu_request_cores_recommended"] = prev.loc[i, "cpu_request_cores_current"]  # a limit-only change
    prev.loc[i, "memory_request_bytes_recommended"] = prev.loc[i, "memory_request_bytes_current"]
    assert prev.loc[i, "status"] == "change" and compare(s1, cur, s0, prev).applied.empty
    rng = np.random.default_rng(7)
    for _ in range(20):  # any proposal at all, requests unchanged: never applied
        p = prev.copy()
        p["cpu_request_cores_recommended"] = p["cpu_request_cores_current"] * rng.uniform(0.95, 1.05, len(p))
        p["memory_request_bytes_recommended"] = p["memory_request_bytes_current"] * rng.uniform(0.95, 1.05, len(p))
        p["status"] = "change"
        assert compare(s1, p, s0, p).applied.empty


def test_node_bill_and_bankable_rows(weeks):
    a0, s0, a1, s1 = weeks
    s0 = {**s0, "totals": {**s0["totals"], "bankable_savings_usd_per_month": 120.0}}
    s1 = {**s1, "totals": {**s1["totals"], "bankable_savings_usd_per_month": 80.0}}
    d = compare(s1, a1.recommendations, s0, a0.recommendations).totals.set_index("metric")
    assert d.loc["Bankable savings (USD/month)", "delta"] == pytest.approx(-40.0)
    assert d.loc["Node bill (USD/month)", "current"] == pytest.approx(s1["totals"]["node_usd_per_month"])


def _covered(summary: dict, days: float | None, bill: float) -> dict:
    window = {**summary["window"], "hours": 14 * 24.0}
    if days is None:
        window.pop("coverage", None)
    else:
        window["coverage"] = [{"cluster": "demo", "hours": days * 24, "short": days < 14}]
    return {**summary, "window": window, "totals": {**summary["totals"], "node_usd_per_month": bill}}


def test_a_change_of_coverage_is_marked_not_reported_as_a_cost_change(weeks):
    """Reports that both measured their coverage compare per-hour figures as rates over their own days (7 then,
    14 now: a real change of the bill shows as one). A report that did not measure it (written before
    coverage was) beside a short one: the per-hour rows say the coverage changed instead of a cost change."""
    a0, s0, a1, s1 = weeks
    c = compare(_covered(s1, 14.0, 640.0), a1.recommendations, _covered(s0, 7.0, 630.0), a0.recommendations)
    d = c.totals.set_index("metric")
    assert d.loc["Days of data (shortest cluster)", "previous"] == 7.0 and d.loc["Days of data (shortest cluster)", "current"] == 14.0
    assert d.loc["Node bill (USD/month)", "delta"] == pytest.approx(10.0) and d.loc["Node bill (USD/month)", "note"] == ""
    assert "covered 7.0 days then and 14.0 now" in c.notes[0] and "compare" in c.notes[0]
    c = compare(_covered(s1, 7.0, 640.0), a1.recommendations, _covered(s0, None, 320.0), a0.recommendations)
    d = c.totals.set_index("metric")
    assert d.loc["Node bill (USD/month)", "note"] == "coverage changed" and np.isnan(d.loc["Node bill (USD/month)", "delta"])
    assert d.loc["Cross-AZ transfer (USD/month)", "note"] == "coverage changed"
    assert d.loc["Containers at OOM risk", "note"] == "" and d.loc["Load balancers (USD/month)", "note"] == ""  # not rates
    assert "did not measure its coverage" in c.notes[0]
    # neither report short of data (the earlier one is taken to have covered its window): nothing to mark
    c = compare(_covered(s1, 14.0, 640.0), a1.recommendations, _covered(s0, None, 630.0), a0.recommendations)
    assert c.notes == [] and (c.totals["note"] == "").all()
