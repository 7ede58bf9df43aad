"""What rightsize sends over HTTP and how it treats bad answers, against a small server on 127.0.0.1.

The server here STANDS IN FOR A PROMETHEUS-COMPATIBLE API because the cases under test cannot be
produced on demand by a real one: it records every request (to check headers, auth, query params
and path prefixes as Mimir, Thanos and VictoriaMetrics cluster expect them), and it can answer 502
or 503 a set number of times, 503 "query timed out" for long ranges, answer too late, cut a matrix
off after its first series, answer an HTML page with status 200, or never answer. Its answers are
shaped like Prometheus' (buildinfo, label values, the series API, vectors and matrices). What
real servers compute is tested in test_prometheus_collect.py and test_victoriametrics.py.
"""
from __future__ import annotations

import base64
import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest

from promservers import make_config
from rightsize.config import Config
from rightsize.errors import ConfigError, SourceError
from rightsize.snapshot import Snapshot
from rightsize.sources import prometheus as P
from rightsize.sources.prometheus.client import _compress
from rightsize.sources.prometheus.families import FAMILIES
from rightsize.sources.prometheus.promql import Queries, check_matchers, quote, regex_alternation
from rightsize.targets import ClusterTarget

END = 1_700_000_040  # a multiple of the 60 s step
POD = {"namespace": "shop", "pod": "web-1", "container": "app"}


class StandIn(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, prefix: str):
        super().__init__(("127.0.0.1", 0), Handler)
        self.prefix = prefix
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.fail: dict[str, list] = {}  # api path -> answers to give first: (status, body) or "slow" / "hang"
        self.range_mode = "ok"  # ok | truncated | html | timeout-over-<seconds>

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{self.prefix}"


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _handle(self):
        parts = urlsplit(self.path)
        params = parse_qs(parts.query)
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            params.update(parse_qs(self.rfile.read(length).decode()))
        srv: StandIn = self.server
        api = parts.path[len(srv.prefix):] if parts.path.startswith(srv.prefix) else None
        with srv.lock:
            srv.requests.append({"path": parts.path, "headers": dict(self.headers), "params": params})
            planned = srv.fail.get(api) or []
            answer = planned.pop(0) if planned else None
        if answer == "hang":
            time.sleep(60)
            return
        if answer == "slow":
            time.sleep(3)
        elif answer:
            return self._reply(*answer)
        self._answer(srv, api, params)

    def _answer(self, srv, api, params):
        if api == "/api/v1/status/buildinfo":
            return self._reply(200, {"status": "success", "data": {"version": "2.45.0", "revision": "stand-in", "goVersion": "go1.21"}})
        if api == "/api/v1/label/__name__/values":
            return self._reply(200, {"status": "success", "data": [getattr(Config().prometheus.metrics, f) for f in (x.field for x in FAMILIES)]})
        if api == "/api/v1/series":
            return self._reply(200, {"status": "success", "data": [
                *({"__name__": "kube_pod_owner", **POD, "pod": f"web-{i}", "owner_kind": "StatefulSet", "owner_name": "web",
                   "owner_is_controller": "true"} for i in range(3)),
                *({"__name__": "container_memory_working_set_bytes", **POD, "pod": f"web-{i}"} for i in range(3))]})
        if api == "/api/v1/query":
            return self._reply(200, {"status": "success", "data": {"resultType": "vector", "result": []}})
        if api == "/api/v1/query_range":
            return self._range(srv, params)
        self._reply(404, {"status": "error", "error": "not found"})

    def _range(self, srv, params):
        start, end, step = (float(params[k][0]) for k in ("start", "end", "step"))
        if srv.range_mode.startswith("timeout-over-") and end - start > float(srv.range_mode.split("-")[-1]):
            return self._reply(503, {"status": "error", "errorType": "timeout", "error": "query timed out in expression evaluation"})
        if srv.range_mode == "html":
            return self._raw(200, b"<html><body>Please log in</body></html>", "text/html")
        ts = np.arange(start, end + 1, step)
        series = [{"metric": {**POD, "pod": f"web-{i}"}, "values": [[t, "0.5"] for t in ts]} for i in range(3)]
        body = json.dumps({"status": "success", "data": {"resultType": "matrix", "result": series}}, separators=(",", ":")).encode()
        if srv.range_mode == "truncated":
            body = body[:body.index(b"]]}") + 3]  # a whole first series, then nothing
        self._raw(200, body, "application/json")

    do_GET = do_POST = _handle

    def _reply(self, code, body):
        self._raw(code, json.dumps(body).encode(), "application/json")

    def _raw(self, code, data, ctype):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def server(request):
    srv = StandIn(getattr(request, "param", "/prometheus"))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _collect(url, **prom):
    cfg = make_config(url, END, window_hours=1, **prom)
    snap = Snapshot()
    P.collect_usage(cfg, ClusterTarget("c1", url, token_env=cfg.prometheus.token_env, headers=dict(cfg.prometheus.headers)),
                    snap, inventory_from_metrics=True, progress=lambda m: None)
    return snap


def _paths(srv, api):
    return [r for r in srv.requests if r["path"].endswith(api)]


def test_mimir_and_thanos_settings_on_every_request(server, monkeypatch):
    monkeypatch.setenv("RIGHTSIZE_PROMETHEUS_TOKEN", "s3cret")
    snap = _collect(server.url, headers={"X-Scope-OrgID": "tenant-a"}, query_params={"partial_response": "false", "dedup": "true"})
    # buildinfo, names, series, CPU and working set, then the tagged queries: the cluster-wide one, and one
    # request per part of the daily (4) and per-pod inventory queries, each part asked once
    tagged = [r["params"]["query"][0] for r in server.requests if '"stat", "' in r["params"].get("query", [""])[0]]
    assert len(server.requests) == snap.meta["sources"]["prometheus:c1"]["requests"] == 5 + len(tagged)
    assert len(tagged) == len(set(tagged)) >= 1 + 4 + 4
    for r in server.requests:
        assert r["path"].startswith("/prometheus/api/v1/"), r["path"]
        assert r["headers"].get("X-Scope-OrgID") == "tenant-a", r["path"]
        assert r["headers"].get("Authorization") == "Bearer s3cret", r["path"]
        assert r["params"].get("partial_response") == ["false"] and r["params"].get("dedup") == ["true"], r["path"]
    # CPU and working set per pod; the raw maxima of a window shorter than a day come from an instant query
    assert len(_paths(server, "/query_range")) == 2
    assert len(snap.tables["usage"]) == 1 and snap.tables["usage"]["pods_seen"].iloc[0] == 3


def test_token_file_and_basic_auth(server, tmp_path, monkeypatch):
    monkeypatch.delenv("RIGHTSIZE_PROMETHEUS_TOKEN", raising=False)
    token = tmp_path / "token"
    token.write_text("from-file\n")
    _collect(server.url, token_file=str(token))
    assert {r["headers"].get("Authorization") for r in server.requests} == {"Bearer from-file"}
    server.requests.clear()
    monkeypatch.setenv("RIGHTSIZE_PROMETHEUS_PASSWORD", "pw")
    _collect(server.url, username="alice")
    assert {r["headers"].get("Authorization") for r in server.requests} == {"Basic " + base64.b64encode(b"alice:pw").decode()}


def test_5xx_answers_are_retried(server):
    server.fail["/api/v1/series"] = [(502, {"status": "error", "error": "bad gateway"})] * 2
    snap = _collect(server.url, retries=3)
    assert len(_paths(server, "/api/v1/series")) == 3  # the same request, repeated
    assert len(snap.tables["usage"]) == 1


def test_503_without_timeout_is_retried_with_backoff_not_split(server):
    server.fail["/api/v1/query_range"] = [(503, {"status": "error", "error": "service unavailable"})] * 2
    started = time.monotonic()
    snap = _collect(server.url, retries=3, backoff=0.2, concurrency=1)
    assert time.monotonic() - started >= 0.2 + 0.4  # backoff 0.2 s, then 0.4 s
    assert snap.meta["sources"]["prometheus:c1"]["splits"] == 0 and len(snap.tables["usage"]) == 1


def test_503_timeout_is_split_not_retried(server):
    server.range_mode = "timeout-over-1800"  # a range of more than 30 minutes "times out"
    snap = _collect(server.url, retries=3)
    spans = [float(r["params"]["end"][0]) - float(r["params"]["start"][0]) for r in _paths(server, "/query_range")
             if r["params"]["step"] == ["60"]]
    assert max(spans) > 1800 and min(spans) <= 1800
    assert snap.meta["sources"]["prometheus:c1"]["splits"] >= 2
    assert snap.tables["usage"]["samples"].iloc[0] == 60  # every step still read once


def test_persistent_5xx_is_a_one_line_error(server):
    server.fail["/api/v1/series"] = [(500, {"status": "error", "error": "boom"})] * 100
    with pytest.raises(SourceError) as err:
        _collect(server.url, retries=1)
    assert server.url in str(err.value) and "HTTP 500" in str(err.value) and "\n" not in str(err.value)


def test_read_timeout_is_a_timeout_not_a_connection_error(server):
    server.fail["/api/v1/series"] = ["slow"]
    with pytest.raises(SourceError) as err:
        _collect(server.url, timeout=1.0, retries=0)
    assert "no answer within 1s (timeout)" in str(err.value) and "cannot connect" not in str(err.value)


def test_read_timeout_on_a_range_chunk_splits_it(server):
    server.fail["/api/v1/query_range"] = ["slow"]
    snap = _collect(server.url, timeout=1.0, concurrency=1)
    assert snap.meta["sources"]["prometheus:c1"]["splits"] == 1 and len(snap.tables["usage"]) == 1


def test_truncated_range_answer_is_an_error(server):
    server.range_mode = "truncated"
    with pytest.raises(SourceError) as err:
        _collect(server.url)
    assert "cut off after 1 series" in str(err.value)


def test_html_answer_says_it_is_not_json(server):
    server.range_mode = "html"
    with pytest.raises(SourceError) as err:
        _collect(server.url)
    assert "not JSON" in str(err.value) and "path prefix" in str(err.value)


def test_first_ctrl_c_stops_at_once(server, tmp_path):
    """rightsize collect waits on a range query the server never answers; SIGINT ends it within a
    second or two, not after the query's 5-minute timeout."""
    server.fail["/api/v1/query_range"] = ["hang"] * 10
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[prometheus]\nurl = "{server.url}"\nend = "2023-11-14T22:14:00Z"\n[kubernetes]\nsource = "prometheus"\n'
                   '[pricing]\nsource = "offline"\n[general]\nwindow = "1h"\nstep = "1m"\n')
    env = {**os.environ, "CI": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "rightsize.cli", "collect", "--config", str(cfg), "--out", str(tmp_path / "snap")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=Path(__file__).parent.parent)
    deadline = time.monotonic() + 60
    while not _paths(server, "/query_range") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _paths(server, "/query_range"), "the collection never reached its range queries"
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    sent = time.monotonic()
    _, err = proc.communicate(timeout=120)
    # The hanging query would hold it for its 5-minute timeout; the bound tells "at once" from that with room
    # for a loaded runner (a quiet machine stops in well under a second; 3 s flaked at load 15).
    assert time.monotonic() - sent < 30, err
    assert proc.returncode == 130 and "interrupted" in err
    assert not (tmp_path / "snap").exists()


@pytest.mark.parametrize("server", ["/select/0/prometheus"], indirect=True)
def test_victoriametrics_cluster_style_prefix(server):
    _collect(server.url)
    assert all(r["path"].startswith("/select/0/prometheus/api/v1/") for r in server.requests)


def test_label_values_are_escaped():
    assert quote('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'
    assert regex_alternation(["shop", "a.b", "x|y", 'q"']) == '"shop|a\\\\.b|x\\\\|y|q\\""'
    cfg = Config().prometheus
    q = Queries(dataclasses.replace(cfg, namespaces=('evil"} or vector(1)',), exclude_namespaces=()), 3600, 60)
    # the quote is escaped for the string, the regex metacharacters for RE2: one literal value
    assert q.sel("m") == 'm{namespace=~"evil\\"\\\\}\\\\ or\\\\ vector\\\\(1\\\\)"}'
    assert q.sel("m", ["a", "b"]) == 'm{namespace=~"a|b"}'


def test_container_filter_must_be_label_matchers():
    assert check_matchers('container!="",container!="POD"', "container_filter")
    for bad in ('container!=""} or vector(1)', 'container=~"a"}[5m]', "x"):
        with pytest.raises(ConfigError):
            check_matchers(bad, "container_filter")
    with pytest.raises(ConfigError):
        Queries(dataclasses.replace(Config().prometheus, container_filter="1) or (1"), 3600, 60)


def test_cluster_label_selects_one_cluster():
    cfg = dataclasses.replace(Config().prometheus, cluster_label="cluster")
    q = Queries(cfg, 3600, 60, cluster_value='prod"eu')
    assert q.sel("m", ["a"]) == 'm{cluster="prod\\"eu",namespace=~"a"}'


def test_compression_auto_gzip_only_for_distant_servers(server):
    _collect(server.url)  # 127.0.0.1: compressing would cost more than it saves
    assert server.requests and all(r["headers"].get("Accept-Encoding") == "identity" for r in server.requests)
    server.requests.clear()
    _collect(server.url, compression="gzip")
    assert server.requests and all("gzip" in r["headers"].get("Accept-Encoding", "") for r in server.requests)
    for url, gzip in (("http://prometheus-server.monitoring.svc:9090", False), ("http://prometheus:9090", False),
                      ("http://[::1]:9090", False), ("https://thanos.example.com", True), ("https://10.2.3.4:9090", True)):
        assert _compress("auto", url) is gzip, url
    assert _compress("none", "https://thanos.example.com") is False
