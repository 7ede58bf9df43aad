"""The weekly report folder: report.md, report.html, CSVs, summary.json, thresholds, terminal summary."""
from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import io
import json
import re

import pandas as pd
import pytest
from rich.console import Console

from analysis_factory import make_analysis, make_snapshot
from rightsize.analysis import Analysis
from rightsize.analysis.summary import summarize
from rightsize.analysis.thresholds import crossed_thresholds
from rightsize.config import Config, ThresholdConfig
from rightsize.emit.markdown import SECTIONS
from rightsize.emit.report import default_report_dir, week_label, write_report
from rightsize.emit.terminal import print_summary
from rightsize.errors import RightsizeError
from rightsize.schema import (CROSS_AZ_COLUMNS, IDLE_COLUMNS, LOAD_BALANCER_COLUMNS, RECOMMENDATION_COLUMNS,
                              SPOT_COLUMNS)

FILES = ("report.md", "report.html", "recommendations.csv", "spot.csv", "cross_az.csv", "load_balancers.csv",
         "idle.csv", "summary.json")


def no_charts(config: Config | None = None) -> Config:
    """Charts cost seconds to draw; tests that do not look at them switch them off."""
    config = config or Config()
    return dataclasses.replace(config, report=dataclasses.replace(config.report, charts=False))


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("report")
    analysis = make_analysis()
    return write_report(make_snapshot(analysis), analysis, Config(), tmp_path / "2026-W47")


def _md_total(md: str, label: str) -> float:
    m = re.search(r"^\| " + re.escape(label) + r" \| (-?)\$([\d,]+\.\d\d) \|$", md, re.M)
    assert m, f"no totals row {label!r} in report.md"
    return float(m.group(2).replace(",", "")) * (-1 if m.group(1) else 1)


def test_every_file_is_written(report):
    for name in FILES:
        assert (report.out_dir / name).stat().st_size > 0, name
    assert set(FILES) <= set(report.paths)


def test_totals_in_markdown_equal_the_sums_of_the_csvs(report):
    out = report.out_dir
    md = (out / "report.md").read_text()
    recs = pd.read_csv(out / "recommendations.csv")
    spot = pd.read_csv(out / "spot.csv")
    changes = recs["status"] == "change"
    current = recs["usd_per_month_current"].sum()
    savings = recs.loc[changes, "savings_usd_per_month"].sum()
    assert _md_total(md, "Current cost of requests") == pytest.approx(current, abs=0.005)
    assert _md_total(md, "**Savings available (net of increases)**") == pytest.approx(savings, abs=0.005)
    assert _md_total(md, "Cost after recommendations") == pytest.approx(current - savings, abs=0.005)
    assert _md_total(md, "of which increases (OOM risk, throttling)") == pytest.approx(
        -recs.loc[changes & (recs["savings_usd_per_month"] < 0), "savings_usd_per_month"].sum(), abs=0.005)
    assert _md_total(md, "Idle node capacity (not requested)") == pytest.approx(
        pd.read_csv(out / "idle.csv")["idle_usd_per_month"].sum(), abs=0.005)
    assert _md_total(md, "Spot savings, ready workloads") == pytest.approx(
        spot.loc[spot["verdict"] == "ready", "savings_usd_per_month"].sum(), abs=0.005)
    assert _md_total(md, "Cross-AZ transfer") == pytest.approx(pd.read_csv(out / "cross_az.csv")["usd_per_month"].sum(), abs=0.005)
    assert _md_total(md, "Load balancers") == pytest.approx(pd.read_csv(out / "load_balancers.csv")["usd_per_month"].sum(), abs=0.005)
    # the factory's hand-computed figures, so a wrong sum in both CSV and summary would still fail
    assert current == pytest.approx(514.0) and savings == pytest.approx(172.0)


def test_summary_json_matches_the_csvs_and_its_schema(report):
    summary = json.loads((report.out_dir / "summary.json").read_text())
    recs = pd.read_csv(report.out_dir / "recommendations.csv")
    assert summary["schema_version"] == 1
    assert summary["totals"]["containers"] == len(recs)
    assert summary["containers_by_status"]["change"] == int((recs["status"] == "change").sum())
    assert summary["containers_by_flag"]["oom_risk"] == int(recs["flags"].fillna("").str.contains("oom_risk").sum())
    by_ns = {r["namespace"]: r for r in summary["by_namespace"]}
    assert by_ns["shop"]["savings_usd_per_month"] == pytest.approx(143.0)
    assert sum(r["usd_per_month_current"] for r in summary["by_team"]) == pytest.approx(summary["totals"]["usd_per_month_current"])
    assert summary["pricing"] == {"source": "offline", "date": "2026-10-01", "region": "us-east-1",
                                  "notes": "bundled on-demand list prices; spot from the Spot Advisor"}
    assert {w["code"] for w in summary["warnings"]} == {"estimated_price", "missing_metric"}
    assert summary["thresholds_crossed"] == []


def test_csvs_keep_schema_columns_and_unset_stays_empty(report):
    for name, cols in (("recommendations.csv", RECOMMENDATION_COLUMNS), ("spot.csv", SPOT_COLUMNS),
                       ("cross_az.csv", CROSS_AZ_COLUMNS), ("load_balancers.csv", LOAD_BALANCER_COLUMNS),
                       ("idle.csv", IDLE_COLUMNS)):
        header = (report.out_dir / name).read_text().splitlines()[0].split(",")
        assert header[: len(cols)] == [c.name for c in cols], name
    recs = pd.read_csv(report.out_dir / "recommendations.csv")
    ledger = recs[recs["workload"] == "ledger"].iloc[0]
    assert pd.isna(ledger["cpu_request_cores_recommended"])  # no recommendation is empty, never 0


def test_markdown_has_every_section_and_the_caveats(report):
    md = (report.out_dir / "report.md").read_text()
    headings = re.findall(r"^## (.+)$", md, re.M)
    for _, title in SECTIONS:
        assert any(h.startswith(title) or h == f"Top 10 savings" for h in headings), title
    assert headings[2] == "Top 10 savings"
    assert "Prices: offline (us-east-1), dated 2026-10-01" in md
    assert "Missing metrics: container_cpu_cfs_throttled_periods_total." in md
    assert "Partial data: demo: 2 of 40 namespace shards timed out." in md
    assert "m7g.large price estimated from its family (affects: cost)" in md
    for f in ("recommendations.csv", "spot.csv", "cross_az.csv", "load_balancers.csv", "summary.json"):
        assert f"- `{f}`: " in md
    assert "](" not in md  # no relative links: they 404 in a GitHub job summary
    # content of the lists
    assert "`shop/frontend/app`" in md.split("## Top 10 savings")[1].split("##")[0]
    risky = md.split("## OOM risk and throttled containers")[1].split("##")[0]
    assert "`shop/cart/app`" in risky and "`payments/api/app`" in risky and "41%" in risky
    assert "`shop/search`" in md.split("## Spot candidates")[1].split("##")[0]
    assert "| shop/frontend → shop/search | 1,980 | 66% | estimated | $39.60 |" in md
    assert "internet-facing without the internal annotation" in md
    assert "_No earlier report found" in md


def test_markdown_stays_small_for_a_large_estate(tmp_path):
    analysis = make_analysis()
    recs = analysis.recommendations
    big = pd.concat([recs.assign(workload=recs["workload"] + f"-{i}") for i in range(600)], ignore_index=True)
    analysis.recommendations = big  # 4,800 containers
    result = write_report(make_snapshot(analysis), analysis, no_charts(), tmp_path / "big")
    md = (result.out_dir / "report.md").read_text()
    assert len(md.encode()) < 100 * 1024  # GitHub's step summary limit is 1 MiB
    top = md.split("## Top 10 savings")[1].split("##")[0]
    assert top.count("\n| `") == 10
    assert "more changes that save money in `recommendations.csv`" in top


EXTERNAL = [
    re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.I),
    re.compile(r"<script[^>]*\bsrc\s*=", re.I),
    re.compile(r"<link\b", re.I),
    re.compile(r"@import", re.I),
    re.compile(r"url\(\s*['\"]?(?:https?:)?//", re.I),
    re.compile(r"<(?:iframe|object|embed)\b", re.I),
]


def test_html_is_self_contained_and_embeds_the_charts(report):
    page = (report.out_dir / "report.html").read_text()
    for pattern in EXTERNAL:
        assert not pattern.search(page), pattern.pattern
    assert "http://" not in page and "https://" not in page
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 6
    assert all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
    assert len(re.findall(r"<img\b", page)) == 6  # every image is one of the embedded ones
    assert "<script>" in page and "<style>" in page


def test_html_has_every_section_and_filterable_detail_tables(report):
    page = (report.out_dir / "report.html").read_text()
    for anchor, _ in SECTIONS:
        assert f'<section id="{anchor}">' in page, anchor
    assert '<section id="details">' in page and '<section id="charts">' in page
    assert 'id="recs-table" class="sortable expandable"' in page and 'data-table="recs-table"' in page
    for ns in ("shop", "payments", "staging"):
        assert f'<option value="{ns}">' in page
    assert 'id="team-table"' in page and 'id="ns-table"' in page
    assert page.count("<tr>") >= 8 + 3 + 2  # every container, namespaces and teams are there


def test_html_escapes_names(tmp_path):
    analysis = make_analysis()
    analysis.recommendations.loc[0, "reason"] = "<script>alert(1)</script>"
    result = write_report(make_snapshot(analysis), analysis, no_charts(), tmp_path / "x")
    page = (result.out_dir / "report.html").read_text()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_charts_can_be_switched_off(tmp_path):
    analysis = make_analysis()
    page = (write_report(make_snapshot(analysis), analysis, no_charts(), tmp_path / "x").out_dir / "report.html").read_text()
    assert "data:image/png" not in page and '<section id="charts">' not in page


def test_empty_analysis_still_writes_a_readable_report(tmp_path):
    full = make_analysis()
    empty = Analysis(**{f: getattr(full, f).iloc[0:0] for f in
                        ("recommendations", "spot", "cross_az", "load_balancers", "idle", "node_prices")})
    result = write_report(make_snapshot(full), empty, Config(), tmp_path / "x")
    md = (result.out_dir / "report.md").read_text()
    assert "_No proposed change lowers cost._" in md and "_No Service of type LoadBalancer._" in md
    # nothing collected is unknown, not $0.00 (summary.json: null)
    assert "| Current cost of requests | n/a |" in md and result.summary["totals"]["usd_per_month_current"] is None
    assert "data:image/png" not in (result.out_dir / "report.html").read_text()


def _config(**thresholds) -> Config:
    return dataclasses.replace(Config(), thresholds=ThresholdConfig(**thresholds))


def test_thresholds_name_production_oom_risks_only():
    analysis = make_analysis()
    summary = summarize(analysis, make_snapshot(analysis), Config())
    assert crossed_thresholds(summary, analysis, Config()) == []  # nothing configured
    msgs = crossed_thresholds(summary, analysis, _config(fail_on_production_oom_risk=True))
    assert len(msgs) == 1
    assert "1 production container(s) at OOM risk: shop/Deployment/cart:app" in msgs[0]
    assert "staging" not in msgs[0]  # staging/worker is non-production
    # only the non-production OOM risk left: nothing crossed
    recs = analysis.recommendations
    analysis.recommendations = recs.assign(flags=recs["flags"].where(recs["namespace"] == "staging", ""))
    assert crossed_thresholds(summary, analysis, _config(fail_on_production_oom_risk=True)) == []


def test_savings_threshold():
    analysis = make_analysis()
    summary = summarize(analysis, make_snapshot(analysis), Config())
    msgs = crossed_thresholds(summary, analysis, _config(fail_on_savings_usd_per_month=100.0))
    assert msgs == ["monthly savings USD 172.00 exceed USD 100.00 (thresholds.fail_on_savings_usd_per_month)"]
    assert crossed_thresholds(summary, analysis, _config(fail_on_savings_usd_per_month=172.0)) == []


def test_crossed_thresholds_reach_the_result_and_the_report(tmp_path):
    analysis = make_analysis()
    result = write_report(make_snapshot(analysis), analysis, no_charts(_config(fail_on_production_oom_risk=True)), tmp_path / "x")
    assert len(result.crossed) == 1
    assert "**CI thresholds crossed** (exit code 3):" in (result.out_dir / "report.md").read_text()
    assert json.loads((result.out_dir / "summary.json").read_text())["thresholds_crossed"] == result.crossed


def test_default_report_dir_uses_the_iso_week():
    config = Config()
    assert default_report_dir(config, dt.datetime(2026, 11, 18, tzinfo=dt.timezone.utc)).as_posix() == "reports/2026-W47"
    # 1 January 2027 is a Friday: still ISO week 53 of 2026
    assert week_label(dt.datetime(2027, 1, 1)) == "2026-W53"
    assert week_label(dt.datetime(2027, 1, 4)) == "2027-W01"


def test_write_report_defaults_to_the_week_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    analysis = make_analysis()
    result = write_report(make_snapshot(analysis), analysis, no_charts(), now=dt.datetime(2026, 11, 18))
    assert result.out_dir.as_posix() == "reports/2026-W47" and (tmp_path / "reports/2026-W47/report.md").exists()


def test_unwritable_output_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    analysis = make_analysis()
    with pytest.raises(RightsizeError, match="cannot create report folder"):
        write_report(make_snapshot(analysis), analysis, no_charts(), blocker / "2026-W47")


def test_terminal_summary_fits_one_screen(report):
    buf = io.StringIO()
    console = Console(file=buf, width=100, force_terminal=False)
    print_summary(report.summary, report_dir=str(report.out_dir), crossed=["x crossed"], console=console)
    text = buf.getvalue()
    assert "Savings available" in text and "$172.00" in text and "$514.00" in text
    assert "2 at OOM risk" in text and "threshold crossed: x crossed" in text
    assert len(text.splitlines()) <= 25


def test_report_of_the_demo_snapshot(tmp_path):
    """End to end on the bundled demo (real analyses, offline prices): the totals still add up."""
    from rightsize.api import analyze
    from rightsize.demo import generate
    from rightsize.sources.aws import collect_prices

    config = no_charts()
    snapshot = generate()
    collect_prices(config, snapshot, offline=True)
    analysis = analyze(snapshot, config)
    result = write_report(snapshot, analysis, config, tmp_path / "2026-W47")
    md = (result.out_dir / "report.md").read_text()
    recs = pd.read_csv(result.out_dir / "recommendations.csv")
    changes = (recs["status"] == "change") & ~recs["flags"].fillna("").str.contains("one_off_job")
    assert _md_total(md, "Current cost of requests") == pytest.approx(recs["usd_per_month_current"].sum(), abs=0.005)
    assert _md_total(md, "**Savings available (net of increases)**") == pytest.approx(
        recs.loc[changes, "savings_usd_per_month"].sum(), abs=0.005)
    assert _md_total(md, "Cross-AZ transfer") == pytest.approx(
        pd.read_csv(result.out_dir / "cross_az.csv")["usd_per_month"].sum(), abs=0.005)
    for _, title in SECTIONS:
        assert f"## {title}" in md or title == "Top savings"
    assert "`shop/search/app` | OOM risk" in md  # the demo's OOM-killed container
    assert "Prices: offline (us-east-1), dated" in md


def test_node_bill_and_how_savings_relate_to_it(report):
    """The node bill is shown, and the text relates requests, idle capacity and savings (factory: two node
    groups costing 560.64 + 80.00, idle 210.00 + 55.50, savings 172.00)."""
    md = (report.out_dir / "report.md").read_text()
    assert _md_total(md, "Node bill") == pytest.approx(560.64 + 80.00)
    node, idle = 560.64 + 80.00, 210.00 + 55.50
    assert f"The nodes cost ${node:,.0f}/month. Pods request ${node - idle:,.0f} of that capacity; " \
           f"${idle:,.0f} ({idle / node:.0%}) is allocatable capacity no pod requests (idle)." in md
    assert "lowers requests by $172/month" in md and "not amounts to add up" in md
    page = (report.out_dir / "report.html").read_text()
    assert "$641</div><div class=\"l\">Node bill / month" in page and "not amounts to add up" in page


def test_counts_add_up_with_ignored_containers(tmp_path):
    analysis = make_analysis()
    analysis.recommendations.loc[analysis.recommendations["workload"] == "ledger", "status"] = "ignored"
    result = write_report(make_snapshot(analysis), analysis, no_charts(), tmp_path / "x")
    md = (result.out_dir / "report.md").read_text()
    # 8 = 6 changes + 1 keep + 0 without a recommendation + 1 ignored
    assert "8 containers in 7 workloads = 6 with a proposed change + 1 fine as they are + 0 without a " \
           "recommendation + 1 ignored (opted out); 2 at OOM risk, 1 throttled." in md


def test_cpu_limit_shows_the_recommended_quantity_and_one_wording(tmp_path):
    analysis = make_analysis()
    recs = analysis.recommendations
    api = (recs["workload"] == "api") & (recs["container"] == "app")
    recs.loc[api, ["cpu_limit_action", "cpu_limit_cores_recommended"]] = ["set", 2.35]
    result = write_report(make_snapshot(analysis), analysis, no_charts(), tmp_path / "x")
    md = (result.out_dir / "report.md").read_text()
    assert "| `payments/api/app` | throttled | 0 | 41% | 512Mi | 500m → 2.35 |" in md
    page = (result.out_dir / "report.html").read_text()
    cells = re.findall(r'<td class="cpu-limit"[^>]*>([^<]*)</td>', page)
    assert "500m → 2.35" in cells and "leave unset" in cells
    assert not any(c.endswith("→ set") or "keep unset" in c for c in cells)


def test_report_md_stays_under_the_job_summary_cap_at_5000_workloads(tmp_path):
    """GitHub's job summary takes at most 1 MiB: at 5,000 workloads (5,720 containers) with many caveats,
    report.md stays well below, with every list capped and pointing at its file."""
    analysis = make_analysis()
    recs = analysis.recommendations
    big = pd.concat([recs.assign(workload=recs["workload"] + f"-with-a-long-name-{i:04d}",
                                 flags=recs["flags"].where(recs["flags"] != "", "oom_risk"))
                     for i in range(715)], ignore_index=True)
    analysis.recommendations = big
    analysis.warnings = [{"code": "partial", "message": "shard x" * 200 + str(i), "affects": "usage"} for i in range(500)]
    result = write_report(make_snapshot(analysis), analysis, no_charts(), tmp_path / "2026-W47")
    assert result.summary["totals"]["workloads"] == 715 * 7 >= 5000
    md = (result.out_dir / "report.md").read_text()
    assert len(md.encode()) <= 1024 * 1024
    risky = md.split("## OOM risk and throttled containers")[1].split("\n## ")[0]
    assert risky.count("\n| `") == 50 and "more containers in `recommendations.csv`" in risky
    assert "more caveats in summary.json" in md


def test_html_lists_every_container_by_savings_with_details(report):
    page = (report.out_dir / "report.html").read_text()
    table = page.split('id="recs-table"')[1].split("</table>")[0]
    assert '<th scope="col" class="n desc" aria-sort="descending">savings/month</th>' in table
    values = [float(v) for v in re.findall(r'data-v="(-?[\d.]+)">[+-]?-?\$[\d,.]+</td></tr>', table)]
    assert values == sorted(values, reverse=True) and len(values) == 8
    assert values[0] == pytest.approx(85.0)  # shop/frontend: $120 - $35
    assert table.count('<tr class="detail"') == 8 and "p95 x 1.15" in table


def test_terminal_summary_has_a_top_table(report):
    buf = io.StringIO()
    print_summary(report.summary, result=report, console=Console(file=buf, width=160, force_terminal=False))
    text = buf.getvalue()
    assert "Top 3 changes by savings" in text
    row = next(line for line in text.splitlines() if "frontend" in line and "shop" in line)
    assert "1 → 250m" in row and "1Gi → 384Mi" in row and "$85.00" in row and "over provisioned" in row
    assert "= 6 with a proposed change + 1 fine as they are" in text


def test_terminal_summary_in_a_non_tty_log_keeps_every_row_on_one_line(capsys, monkeypatch):
    """A CI log (stdout not a terminal, COLUMNS=80): the top changes table is as wide as it needs, so no
    name is folded into 8-character pieces ("namespac" / "e") and each change is one line."""
    import rightsize as rs
    from rightsize.api import analyze

    monkeypatch.setenv("COLUMNS", "80")
    snapshot = rs.load("demo")
    analysis = analyze(snapshot, no_charts())
    print_summary(analysis, snapshot, config=no_charts())
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if "│" in line and "→" in line]
    assert len(rows) == 10
    assert any(re.match(r"ci-runners\s+│ runner\s+│ runner\s+│", row) for row in rows)
    assert any("over provisioned, gpu share" in row for row in rows)  # the demo's GPU block: ml/embeddings
    assert not [line for line in out.splitlines() if re.match(r"^\S{1,2}\s+│", line)]  # no folded tails ("rs", "e")
    assert min(len(line) for line in rows) > 80


def test_the_report_names_what_the_self_check_raised_and_leaves_a_growing_limit_unset(tmp_path):
    analysis = make_analysis()
    recs = analysis.recommendations
    search = (recs["workload"] == "search").to_numpy()
    recs.loc[search, ["raised_by_backtest", "self_check_memory_peak_bytes"]] = ["memory limit", 3300 * 2**20]
    recs.loc[search, "flags"] = "raised_by_backtest"
    front = (recs["workload"] == "frontend") & (recs["namespace"] == "shop")
    recs.loc[front, ["memory_limit_action", "memory_limit_bytes_recommended", "flags"]] = ["keep_unset", float("nan"), "memory_growth"]
    result = write_report(make_snapshot(analysis), analysis, no_charts(), tmp_path / "x")
    md = (result.out_dir / "report.md").read_text()
    section = md.split("## Backtest", 1)[1].split("\n## ", 1)[0]
    assert "the self-check replayed the window's last days against it: it raised 1 container(s)" in section
    assert "**Raised by the self-check: 1**" in section and "`shop/search/app`" in section and "peaked at 3.22Gi" in section
    html = (result.out_dir / "report.html").read_text()
    assert "Raised by the self-check" in html
    # a growing working set without a limit today: "leave unset", never "n/a"
    row = next(line for line in md.splitlines() if line.startswith("| `shop/frontend/app`"))
    assert "leave unset" in row


def test_csv_floats_are_the_text_pandas_writes_each_distinct_value_formatted_once():
    """table_csv formats each distinct float once (emit.tables._float_texts): the same bytes as pandas' to_csv,
    messy values included (-0.0 beside 0.0, NaN as the empty cell, infinities, the smallest and largest floats)."""
    from collections import namedtuple

    import numpy as np

    from rightsize.emit.tables import table_csv

    values = [0.1 + 0.2, -0.0, 0.0, np.nan, np.inf, -np.inf, 1e16, 1e-5, 123456789.125, 5e-324, 2.5, 2.5, -0.0,
              1.7976931348623157e308, 1 / 3]
    df = pd.DataFrame({"cores": values, "name": [f"w{i % 3}" for i in range(len(values))], "n": range(len(values))})
    columns = [namedtuple("Column", "name")(c) for c in df.columns]
    text = table_csv(df, columns)
    assert text == df.to_csv(index=False)
    assert text.splitlines()[2:4] == ["-0.0,w1,1", "0.0,w2,2"] and text.splitlines()[4] == ",w0,3"
