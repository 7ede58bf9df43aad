"""Delivery: the webhook summary posted to a real local HTTP server, metrics.prom checked by promtool,
the Grafana dashboard reading only metrics that metrics.prom has."""
from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

import rightsize as rs
from analysis_factory import make_analysis, make_snapshot
from binaries import need_binary
from rightsize.config import Config, NotifyConfig
from rightsize.emit import metrics_prom
from rightsize.emit.notify import NotifyError, build_message, markdown_text, payload, post

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "deploy" / "grafana-dashboard.json"


class Receiver:
    """A webhook receiver on 127.0.0.1: answers each POST with the next status of ``statuses`` (then 200)
    and keeps every body it got."""

    def __init__(self, statuses=()):
        self.statuses, self.bodies = list(statuses), []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.bodies.append((self.path, self.headers.get("Content-Type"), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"upstream is down")

            def log_message(self, *_args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/T000/B000/secret-part"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(statuses=()):
        made.append(Receiver(statuses))
        return made[-1]

    yield make
    for r in made:
        r.close()


@pytest.fixture(scope="module")
def demo_snapshot(tmp_path_factory):
    path = tmp_path_factory.mktemp("delivery") / "snapshot"
    rs.load("demo").write(path)
    return path


def _cli(*args, env=None):
    import os

    return subprocess.run([sys.executable, "-m", "rightsize.cli", *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=600, env={**os.environ, **(env or {})})


def _config(tmp_path, **notify) -> Path:
    lines = ["[notify]"] + [f"{k} = {json.dumps(v)}" for k, v in notify.items()] + ["[report]", "charts = false", "backtest_days = 0"]
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_report_posts_the_summary_to_slack_after_a_retry(tmp_path, receiver, demo_snapshot):
    hook = receiver([503])  # the first attempt fails: urllib3 retries it
    cfg = _config(tmp_path, url_env="RS_TEST_WEBHOOK", format="slack", report_url="https://reports.example.internal/{week}/{cluster}/",
                  backoff=0)
    proc = _cli("report", "--snapshot", demo_snapshot, "--out", tmp_path / "out", "--config", cfg, env={"RS_TEST_WEBHOOK": hook.url})
    assert proc.returncode == 0, proc.stderr
    assert len(hook.bodies) == 2 and hook.bodies[0] == hook.bodies[1]
    path, ctype, raw = hook.bodies[-1]
    assert path == "/hooks/T000/B000/secret-part" and ctype == "application/json"
    body = json.loads(raw)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    savings = summary["totals"]["savings_usd_per_month"]
    texts = [b["text"]["text"] for b in body["blocks"] if "text" in b] + [f["text"] for b in body["blocks"] for f in b.get("fields", [])]
    assert f"Savings available: ${savings:,.2f}" in texts
    assert body["blocks"][0]["text"]["text"] == "rightsize report demo 2026-W47"
    oom = next(t for t in texts if t.startswith("OOM risks: "))
    assert oom.startswith(f"OOM risks: {summary['containers_by_flag']['oom_risk']}")
    recs = pd.read_csv(tmp_path / "out" / "recommendations.csv")
    top = recs[recs["status"] == "change"].sort_values("savings_usd_per_month", ascending=False).iloc[0]
    changes = next(t for t in texts if t.startswith("Proposed changes: "))
    assert f"{top['namespace']}/{top['kind']}/{top['workload']} {top['container']}" in changes.splitlines()[1]
    assert "Report: https://reports.example.internal/2026-W47/demo/" in texts
    # names are never Slack markup: every block that holds them is plain_text
    assert all(b["text"]["type"] == "plain_text" for b in body["blocks"] if "text" in b)
    assert "secret-part" not in proc.stderr + proc.stdout


def test_a_webhook_that_keeps_failing_exits_1_and_the_report_stays(tmp_path, receiver, demo_snapshot):
    hook = receiver([500, 500, 500])
    cfg = _config(tmp_path, url_env="RS_TEST_WEBHOOK", format="teams", retries=2, backoff=0)
    proc = _cli("report", "--snapshot", demo_snapshot, "--out", tmp_path / "out", "--config", cfg, env={"RS_TEST_WEBHOOK": hook.url})
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("rightsize: error: notify: the teams webhook in $RS_TEST_WEBHOOK answered HTTP 500 after 3 attempts")
    assert f"the report was written to {tmp_path / 'out'}" in last and "secret-part" not in proc.stderr
    assert len(hook.bodies) == 3
    assert (tmp_path / "out" / "report.md").stat().st_size > 0 and (tmp_path / "out" / "metrics.prom").exists()


def test_a_missing_webhook_variable_fails_before_any_work(tmp_path, demo_snapshot):
    cfg = _config(tmp_path, url_env="RS_TEST_WEBHOOK_UNSET")
    proc = _cli("report", "--snapshot", demo_snapshot, "--out", tmp_path / "out", "--config", cfg, env={"RS_TEST_WEBHOOK_UNSET": ""})
    assert proc.returncode == 2
    assert "notify.url_env: the environment variable RS_TEST_WEBHOOK_UNSET holds no webhook URL" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_an_unreachable_webhook_is_named_without_its_url(receiver):
    hook = receiver()
    url = hook.url
    hook.close()  # nothing listens there any more
    config = dataclasses.replace(Config(), notify=NotifyConfig(url_env="HOOK", retries=1, backoff=0, timeout=2.0))
    with pytest.raises(NotifyError) as err:
        post(url, {"text": "x"}, config)
    assert "could not be reached after 2 attempts" in str(err.value) and "secret-part" not in str(err.value)


def _hostile_analysis():
    analysis = make_analysis()
    recs = analysis.recommendations.copy()
    recs.loc[recs["namespace"] == "shop", "namespace"] = 'sh*op_"\\[x](y)'
    return dataclasses.replace(analysis, recommendations=recs)


def test_teams_and_generic_payloads_keep_names_as_data():
    analysis = _hostile_analysis()
    summary = {"totals": {"savings_usd_per_month": 1234.5}, "containers_by_status": {"change": 6}}
    message = build_message(summary, analysis.recommendations, "rightsize report demo 2026-W47", "https://r/x", 5)
    teams = payload(message, "teams")
    card = teams["attachments"][0]["content"]
    assert teams["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive" and card["type"] == "AdaptiveCard"
    texts = [b["text"] for b in card["body"] if b["type"] == "TextBlock"]
    hostile = [t for t in texts if "sh" in t and "op" in t]
    assert hostile and all(markdown_text('sh*op_"\\[x](y)') in t for t in hostile)
    assert markdown_text('a*b_c[d](e)\\') == 'a\\*b\\_c\\[d\\]\\(e\\)\\\\'
    generic = payload(message, "generic")
    assert generic["figures"]["savings_usd_per_month"] == 1234.5 and generic["figures"]["changes"] == 6
    assert any('sh*op_"\\[x](y)/Deployment/frontend app' in line for line in generic["top_changes"])
    # the frontend saves 120 - 35 = 85 USD/month: the largest change is listed first
    assert generic["top_changes"][0].endswith("(saves $85.00/month)")


def _promtool() -> str:
    return need_binary("promtool", "Debian's prometheus package ships promtool; scripts/test installs it")


def test_metrics_prom_passes_promtool_and_has_the_hand_computed_figures(tmp_path):
    analysis = _hostile_analysis()
    recs = analysis.recommendations
    recs.loc[recs["workload"] == "search", "usd_per_month_current"] = float("nan")  # unknown price: never a 0 sample
    text = metrics_prom.render(analysis, make_snapshot(make_analysis()))
    path = tmp_path / "metrics.prom"
    path.write_text(text)
    check = subprocess.run([_promtool(), "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.strip() == "" and check.stderr.strip() == ""  # no lint findings either
    assert text.endswith("# EOF\n")
    samples = dict(re.findall(r"^(\w+\{[^\n]*\}) (\S+)$", text, re.M))
    ns = 'cluster="demo",namespace="sh*op_\\"\\\\[x](y)"'
    # hand computation from analysis_factory: frontend saves 120 - 35, search's price unknown, cart costs 12 more
    assert float(samples[f"rightsize_savings_usd_per_month{{{ns}}}"]) == pytest.approx(85.0 - 12.0)
    assert float(samples[f"rightsize_cost_usd_per_month{{{ns}}}"]) == pytest.approx(120.0 + 30.0)
    assert samples[f"rightsize_containers{{{ns}}}"] == "3" and samples[f"rightsize_oom_risk_containers{{{ns}}}"] == "1"
    assert samples[f"rightsize_containers_without_price{{{ns}}}"] == "1"
    # payments: api (change), istio-proxy (keep), ledger (no recommendation) -> 2 of 3 recommended
    assert float(samples['rightsize_coverage_ratio{cluster="demo",namespace="payments"}']) == pytest.approx(2 / 3)
    assert float(samples['rightsize_idle_usd_per_month{cluster="demo",node_group="general"}']) == 210.0
    assert samples['rightsize_window_end_timestamp_seconds{cluster="demo"}'] == "1794787200"  # 2026-11-16T00:00:00Z


def test_metrics_prom_leaves_out_unknown_money():
    analysis = make_analysis()
    recs = analysis.recommendations.assign(usd_per_month_current=float("nan"))
    text = metrics_prom.render(dataclasses.replace(analysis, recommendations=recs, idle=analysis.idle.iloc[0:0]),
                               make_snapshot(make_analysis()))
    assert "rightsize_cost_usd_per_month{" not in text and "rightsize_savings_usd_per_month{" not in text
    assert "rightsize_idle_usd_per_month{" not in text
    assert 'rightsize_containers{cluster="demo",namespace="shop"} 3' in text


def test_the_grafana_dashboard_reads_only_metrics_that_metrics_prom_has():
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += [v["query"]["query"] if isinstance(v.get("query"), dict) else v.get("query", "")
              for v in dashboard.get("templating", {}).get("list", []) if v.get("type") == "query"]
    used = {m for e in exprs for m in re.findall(r"\brightsize_\w+", e)}
    written = set(metrics_prom.NAMESPACE_FAMILIES) | set(metrics_prom.NODE_GROUP_FAMILIES) | {metrics_prom.WINDOW_END}
    assert used and used <= written, used - written
    assert {"rightsize_savings_usd_per_month", "rightsize_idle_usd_per_month", "rightsize_oom_risk_containers",
            "rightsize_coverage_ratio"} <= used
