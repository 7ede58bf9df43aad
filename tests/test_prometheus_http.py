"""Connection settings for Thanos Query / Grafana Mimir, checked on the wire.

Thanos and Mimir cannot run here, so a local recording HTTP server stands in for them (a stand-in,
not the real thing): it answers the Prometheus HTTP API with small canned results and records
every request, and the tests assert that each one carries the configured path prefix, headers,
credentials and query parameters. Query semantics are tested against real Prometheus and
VictoriaMetrics servers in test_prometheus_collect.py / test_victoriametrics.py.
"""
from __future__ import annotations

import base64
import dataclasses
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest

from promservers import make_config
from rightsize.config import Config
from rightsize.errors import ConfigError, SourceError
from rightsize.snapshot import Snapshot
from rightsize.sources import prometheus as P
from rightsize.sources.promql import Queries, check_matchers, quote, regex_alternation
from rightsize.targets import ClusterTarget


class Recorder(ThreadingHTTPServer):
    def __init__(self, prefix: str, fail_first: int = 0):
        super().__init__(("127.0.0.1", 0), Handler)
        self.prefix, self.fail_first = prefix, fail_first
        self.requests: list[dict] = []
        self.lock = threading.Lock()

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
        srv: Recorder = self.server
        with srv.lock:
            srv.requests.append({"path": parts.path, "headers": dict(self.headers), "params": params})
            fail = srv.fail_first > 0
            srv.fail_first -= 1
        if fail:
            return self._reply(502, {"status": "error", "error": "bad gateway"})
        api = parts.path[len(srv.prefix):] if parts.path.startswith(srv.prefix) else None
        if api == "/api/v1/status/buildinfo":
            return self._reply(200, {"status": "success", "data": {"version": "2.45.0", "revision": "stand-in", "goVersion": "go1.21"}})
        if api == "/api/v1/label/__name__/values":
            names = [getattr(Config().prometheus.metrics, f) for f in P._DISABLES]
            return self._reply(200, {"status": "success", "data": names})
        if api == "/api/v1/query":
            q = params.get("query", [""])[0]
            result = []
            if q.startswith("count by (namespace)"):
                result = [{"metric": {"namespace": "shop"}, "value": [0, "3"]}]
            return self._reply(200, {"status": "success", "data": {"resultType": "vector", "result": result}})
        if api == "/api/v1/query_range":
            return self._reply(200, {"status": "success", "data": {"resultType": "matrix", "result": []}})
        self._reply(404, {"status": "error", "error": "not found"})

    do_GET = do_POST = _handle

    def _reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def recorder(request):
    srv = Recorder(getattr(request, "param", "/prometheus"))
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _collect(url, **prom):
    cfg = make_config(url, 1_700_000_000, **prom)
    snap = Snapshot()
    P.collect_usage(cfg, ClusterTarget("c1", url, token_env=cfg.prometheus.token_env, headers=dict(cfg.prometheus.headers)),
                    snap, inventory_from_metrics=True, progress=lambda m: None)
    return snap


def test_mimir_and_thanos_settings_on_every_request(recorder, monkeypatch):
    monkeypatch.setenv("RIGHTSIZE_PROMETHEUS_TOKEN", "s3cret")
    snap = _collect(recorder.url, headers={"X-Scope-OrgID": "tenant-a"},
                    query_params={"partial_response": "false", "dedup": "true"})
    assert len(recorder.requests) >= 15  # buildinfo, metric names, sizing and every shard query
    for r in recorder.requests:
        assert r["path"].startswith("/prometheus/api/v1/"), r["path"]
        assert r["headers"].get("X-Scope-OrgID") == "tenant-a", r["path"]
        assert r["headers"].get("Authorization") == "Bearer s3cret", r["path"]
        assert r["params"].get("partial_response") == ["false"] and r["params"].get("dedup") == ["true"], r["path"]
    assert snap.meta["sources"]["prometheus:c1"]["requests"] == len(recorder.requests)
    assert any(r["path"].endswith("/query_range") for r in recorder.requests)  # the busiest-replica range queries too
    # this stand-in has no series API: shards are sized by the count query instead
    assert any(r["path"].endswith("/api/v1/series") for r in recorder.requests)
    assert any(r["params"].get("query", [""])[0].startswith("count by (namespace)") for r in recorder.requests)


def test_token_file_and_basic_auth(recorder, tmp_path, monkeypatch):
    monkeypatch.delenv("RIGHTSIZE_PROMETHEUS_TOKEN", raising=False)
    token = tmp_path / "token"
    token.write_text("from-file\n")
    _collect(recorder.url, token_file=str(token))
    assert {r["headers"].get("Authorization") for r in recorder.requests} == {"Bearer from-file"}
    recorder.requests.clear()
    monkeypatch.setenv("RIGHTSIZE_PROMETHEUS_PASSWORD", "pw")
    _collect(recorder.url, username="alice")
    expected = "Basic " + base64.b64encode(b"alice:pw").decode()
    assert {r["headers"].get("Authorization") for r in recorder.requests} == {expected}


def test_5xx_answers_are_retried(recorder):
    recorder.fail_first = 2
    snap = _collect(recorder.url, retries=3)
    assert recorder.requests[0]["path"] == recorder.requests[2]["path"]  # the same request, repeated
    assert snap.meta["sources"]["prometheus:c1"]["shards"] == 1


def test_persistent_5xx_is_a_one_line_error(recorder):
    recorder.fail_first = 10**6
    with pytest.raises(SourceError) as err:
        _collect(recorder.url, retries=1)
    assert recorder.url in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("recorder", ["/select/0/prometheus"], indirect=True)
def test_victoriametrics_cluster_style_prefix(recorder):
    _collect(recorder.url)
    assert all(r["path"].startswith("/select/0/prometheus/api/v1/") for r in recorder.requests)


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


def test_compression_auto_gzip_only_for_distant_servers(recorder):
    _collect(recorder.url)  # 127.0.0.1: compressing would cost more than it saves
    assert recorder.requests and all(r["headers"].get("Accept-Encoding") == "identity" for r in recorder.requests)
    recorder.requests.clear()
    _collect(recorder.url, compression="gzip")
    assert recorder.requests and all("gzip" in r["headers"].get("Accept-Encoding", "") for r in recorder.requests)
    for url, gzip in (("http://prometheus-server.monitoring.svc:9090", False), ("http://prometheus:9090", False),
                      ("http://[::1]:9090", False), ("https://thanos.example.com", True), ("https://10.2.3.4:9090", True)):
        assert P._compress("auto", url) is gzip, url
    assert P._compress("none", "https://thanos.example.com") is False


def _matrix(series, **dump):
    return json.dumps({"status": "success", "data": {"resultType": "matrix", "result": series}}, **dump).encode()


def test_parse_matrix_reads_values_straight_into_numpy():
    series = [{"metric": {"namespace": "shop", "workload": "odd ]] {\"metric\": name", "container": "app"},
               "values": [[1700000000, "0.25"], [1700000300, "1e-07"], [1700000600, "NaN"], [1700000900, "+Inf"]]},
              {"metric": {"namespace": "data", "workload": "db"}, "values": [[1700000000, "3"]]}]
    for body in (_matrix(series, separators=(",", ":")), _matrix(series, indent=2)):  # compact, and the json fallback
        got = P.parse_matrix(body, ["namespace", "workload", "container"])
        assert [s.key for s in got] == [("shop", 'odd ]] {"metric": name', "app"), ("data", "db", "")]
        np.testing.assert_array_equal(got[0].values, [0.25, 1e-07, np.nan, np.inf])
        assert got[0].values.dtype == np.float64 and list(got[1].values) == [3.0]
        assert got[0].timestamps is None  # not parsed unless asked for
        timed = P.parse_matrix(body, ["namespace"], timestamps=True)
        assert list(timed[0].timestamps) == [1700000000, 1700000300, 1700000600, 1700000900]
        assert list(timed[1].timestamps) == [1700000000] and list(timed[1].values) == [3.0]
    assert P.parse_matrix(_matrix([], separators=(",", ":")), ["namespace"]) == []
    with pytest.raises(ValueError):
        P.parse_matrix(b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"2"]}]}}', ["a"])
