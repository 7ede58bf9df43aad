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


def test_readme_runtime_figures_are_the_demos():
    from rightsize.analysis.recommend import recommend
    from rightsize.analysis.rounding import round_memory_up

    recs = recommend(rs.load("demo"), Config()).pipe(lambda t: t.set_index(t["namespace"] + "/" + t["workload"]))
    mib = 2**20
    orders = re.search(r"`shop/orders`, a Spring Boot service with\s+`-Xmx2g` for a (\d+) MiB live set, goes from (\d+) MiB to "
                       r"(\d+) MiB \(-(\d+) %\) with `-Xmx(\d+)m", README)
    gateway = re.search(r"`shop/edge-gateway` from 2 GiB to a (\d+) MiB request and a (\d+) MiB limit with `GOMEMLIMIT` "
                        r"1800MiB -> (\d+)MiB", README)
    ledger = re.search(r"gets (\d+) MiB where the working-set rule alone would\s+give (\d+) MiB \(its max working set \+ the flat "
                       r"pattern's (\d+) %\), a (\d+) MiB heap for its (\d+) MiB live set \((\d+) %", README)
    assert orders and gateway and ledger, "README lost its sentences with the demo's runtimes"
    o, g, ld = recs.loc["shop/orders"], recs.loc["shop/edge-gateway"], recs.loc["payments/ledger-api"]
    req = o["memory_request_bytes_recommended"]
    assert [int(x) for x in orders.groups()] == [
        round(o["live_set_bytes"] / mib), o["memory_request_bytes_current"] / mib, req / mib,
        round(100 * (1 - req / o["memory_request_bytes_current"])), o["heap_bytes_recommended"] / mib]
    limit = g["memory_limit_bytes_recommended"]
    assert [int(x) for x in gateway.groups()] == [g["memory_request_bytes_recommended"] / mib, limit / mib, int(0.9 * limit // mib)]
    margin = Config().policy("production").margins["memory_flat"]
    by_working_set = round_memory_up(ld["memory_max_bytes"] * (1 + margin))
    assert ld["memory_pattern"] == "flat" and [int(x) for x in ledger.groups()] == [
        ld["memory_limit_bytes_recommended"] / mib, by_working_set / mib, round(100 * margin), 0.75 * by_working_set / mib,
        round(ld["live_set_bytes"] / mib), round(100 * ld["live_set_bytes"] / (0.75 * by_working_set))]
