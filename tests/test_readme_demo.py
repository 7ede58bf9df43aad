"""The README's figures of the demo are the demo's: recomputed here from the bundled demo snapshot, so a
change to the demo or the analysis that moves them fails until the README says the new figures."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import rightsize as rs
from rightsize.api import analyze
from rightsize.analysis.summary import summarize
from rightsize.config import Config
from rightsize.emit.view import _counts

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


@pytest.fixture(scope="module")
def demo_summary():
    snapshot = rs.load("demo")
    config = Config()
    return summarize(analyze(snapshot, config), snapshot, config)


def test_readme_counts_are_the_demos(demo_summary):
    quoted = re.search(r"the counts \(on the demo: `([^`]+)`\)", README)
    assert quoted, "README lost its sentence with the demo's counts"
    assert " ".join(quoted.group(1).split()) == _counts(demo_summary)[1]


def test_readme_backtest_figures_are_the_demos(demo_summary):
    m = re.search(r"On the demo: CPU slack (\d+) % \(today (\d+) %\), memory slack (\d+) % \((\d+) %\), (\d+) predicted\s+OOM "
                  r"kills \((\d+)\), and (\d+)\s+containers over their request more than 5 % of the time \((\d+)\)", README)
    assert m, "README lost its sentence with the demo's backtest"
    p = demo_summary["backtest"]["policies"]
    rec, today = p["recommended"], p["today"]
    assert [int(g) for g in m.groups()] == [
        round(rec["cpu_slack"] * 100), round(today["cpu_slack"] * 100), round(rec["memory_slack"] * 100),
        round(today["memory_slack"] * 100), rec["predicted_ooms"], today["predicted_ooms"],
        rec["containers_over_request"], today["containers_over_request"]]
