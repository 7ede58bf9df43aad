"""HTTP to a Prometheus-compatible API: auth, TLS, headers, retries, and answers read without waste.

One error type, :class:`QueryFailed`, says what failed, where, and whether the query may succeed
when made smaller (``splittable``: the server said timeout or too many samples, or did not answer
in time). Transport rules:

- connection errors and 429/500/502/504 are retried by urllib3 with exponential backoff
  (``[prometheus] retries``, ``backoff``), honouring Retry-After;
- 503 is retried the same way unless its body says timeout or samples: Prometheus answers 503
  for a query that ran out of time, and repeating that query would only fail again, so it is
  split instead;
- a read timeout is a timeout (split), never "cannot connect";
- a 200 answer that is not JSON, or a matrix cut off before its end, is an error naming it.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import re
import threading
import time
from typing import NamedTuple
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa
import requests
from pyarrow import csv as pa_csv
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ReadTimeoutError
from urllib3.util.retry import Retry

from ...config import Config
from ...errors import ConfigError
from ...quantity import format_duration as dur

_SPLITTABLE = re.compile(r"too many samples|max-samples|maxSamples|exceeds|timeout|timed out|deadline|cannot allocate|memory limit|limit", re.I)
_STATUS = re.compile(r"HTTP Status Code (\d+)")


class QueryFailed(Exception):
    """A request that failed; ``status`` is the HTTP status (0 when there was no answer)."""

    def __init__(self, message: str, splittable: bool, status: int = 0):
        super().__init__(message)
        self.splittable = splittable
        self.status = status


class RangeSeries(NamedTuple):
    key: tuple  # values of the requested labels ('' when absent)
    values: np.ndarray  # float64
    timestamps: np.ndarray | None = None  # unix seconds, when asked for


class Client:
    """prometheus-api-client over one requests session, with auth, TLS, headers, extra query params,
    retries and a request count. Every method raises QueryFailed."""

    def __init__(self, config: Config, url: str, token_env: str = "", headers: dict | None = None, aws_session=None):
        p = config.prometheus
        self.url = url.rstrip("/")
        self.params = {str(k): str(v) for k, v in p.query_params.items()}
        self.timeout, self.retries, self.backoff = p.timeout, p.retries, p.backoff
        self.headers = _headers(p, token_env, headers, self.url)
        self.auth = _auth(p, self.url, aws_session)
        self.session = requests.Session()
        self.session.verify = (p.ca_bundle or True) if p.verify_tls else False
        # 503 is handled in _retry_503 (it may mean "split me"); reads are not retried here: a read
        # timeout means the query is too heavy, and the caller splits it
        retry = Retry(total=p.retries, connect=p.retries, read=0, status=p.retries, backoff_factor=p.backoff,
                      status_forcelist=(429, 500, 502, 504), allowed_methods=("GET", "POST"), raise_on_status=False)
        adapter = HTTPAdapter(max_retries=retry, pool_maxsize=max(p.concurrency, 4))
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.api = PrometheusConnect(url=self.url, headers=self.headers, auth=self.auth, session=self.session,
                                     timeout=p.timeout, retry=retry, method="POST")
        self.requests = 0
        self.recorded: list | None = None  # every query's parameters, when a benchmark asks (to replay them)
        self._lock = threading.Lock()

    # --- the calls ----------------------------------------------------------------------------------
    def query(self, promql: str, at: float, what: str = "query") -> list[dict]:
        """Instant query at unix time ``at``: the result list of the answer."""
        self._record({"query": promql, "time": at})
        params = {"time": f"{at:.3f}", **self.params}
        return self._retry_503(what, lambda: self.api.custom_query(promql, params=params))

    def query_range(self, promql: str, start: float, end: float, step: float, labels: list[str],
                    what: str = "range query", timestamps: bool = False) -> list[RangeSeries]:
        """Range query over [start, end] (unix seconds) every ``step`` seconds, as :class:`RangeSeries`
        keyed by the values of ``labels``.

        Sent with the session directly rather than through prometheus-api-client, whose answer is
        the whole matrix as Python objects (about 230 bytes per point); :func:`parse_matrix` reads the
        values straight into numpy. The query goes in the POST body, so its length is not bounded
        by a proxy's URL limit."""
        self._record({"query": promql, "start": start, "end": end, "step": step})
        data = {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}", **self.params}

        def call():
            body = self._post("/api/v1/query_range", data, what)
            try:
                return parse_matrix(body, labels, timestamps)
            except ValueError as exc:
                raise QueryFailed(f"{self.url}: {what}: unreadable answer: {exc}", False, 200) from None

        return self._retry_503(what, call)

    def label_values(self, label: str, start: float, end: float, match: str = "") -> list[str]:
        self._record({"label": label})
        params = {"start": f"{start:.3f}", "end": f"{end:.3f}", **self.params}
        if match:
            params["match[]"] = match
        return self._retry_503(f"label values of {label}", lambda: self.api.get_label_values(label, params=params))

    def series(self, matches: list[str], start: float, end: float, what: str = "series") -> list[dict]:
        """Label sets of the series matching any of ``matches`` with samples in [start, end]: an index
        lookup, no sample is read."""
        self._record({"series": matches})
        t0, t1 = (dt.datetime.fromtimestamp(t, dt.timezone.utc) for t in (start, end))
        return self._retry_503(what, lambda: self.api.get_series(t0, t1, params={"match[]": list(matches), **self.params}))

    def server(self) -> str:
        """What answers, for the record: "prometheus 2.42.0", "victoriametrics", "Grafana Mimir 2.10", or
        "unknown" (from /api/v1/status/buildinfo; VictoriaMetrics answers it empty and names itself in
        an X-Server-Hostname header)."""
        self._record({"buildinfo": True})
        try:
            r = self.session.get(f"{self.url}/api/v1/status/buildinfo", headers=self.headers, auth=self.auth,
                                 params=self.params, timeout=self.timeout)
        except requests.exceptions.RequestException as exc:
            raise self.failure("buildinfo", exc) from None
        try:
            info = (r.json().get("data") or {}) if r.status_code == 200 else {}
        except ValueError:
            info = {}
        if "X-Server-Hostname" in r.headers and not info:
            return "victoriametrics"
        name = info.get("application") or ("prometheus" if "revision" in info or "goVersion" in info else "unknown")
        return f"{name} {info.get('version', '')}".strip()

    # --- plumbing -----------------------------------------------------------------------------------
    def _record(self, entry: dict) -> None:
        with self._lock:
            self.requests += 1
            if self.recorded is not None:
                self.recorded.append(entry)

    def _post(self, path: str, data: dict, what: str) -> bytes:
        try:
            r = self.session.post(f"{self.url}{path}", data=data, headers=self.headers, auth=self.auth, timeout=self.timeout)
        except requests.exceptions.RequestException as exc:
            raise self.failure(what, exc) from None
        if r.status_code != 200:
            raise _status_failure(self.url, what, r.status_code, r.text[:300])
        return r.content

    def _retry_503(self, what: str, call):
        """Run ``call``; a 503 that is not a timeout is retried with backoff, like the other 5xx."""
        for attempt in range(self.retries + 1):
            try:
                return call()
            except QueryFailed as exc:
                if exc.status != 503 or exc.splittable or attempt == self.retries:
                    raise
            except (PrometheusApiClientException, requests.exceptions.RequestException, ValueError) as exc:
                failed = self.failure(what, exc)
                if failed.status != 503 or failed.splittable or attempt == self.retries:
                    raise failed from None
            time.sleep(self.backoff * (2 ** attempt))
        raise AssertionError("unreachable")

    def failure(self, what: str, exc: Exception) -> QueryFailed:
        """The QueryFailed for an exception of requests or prometheus-api-client."""
        if isinstance(exc, PrometheusApiClientException):
            text = str(exc)
            m = _STATUS.search(text)
            return _status_failure(self.url, what, int(m.group(1)) if m else 0, text.split("(", 1)[-1][:300])
        if _is_read_timeout(exc):
            return QueryFailed(f"{self.url}: {what}: no answer within {dur(self.timeout)} (timeout)", True)
        if isinstance(exc, requests.exceptions.ConnectionError):
            return QueryFailed(f"{self.url}: {what}: cannot connect ({_short(exc)})", False)
        if isinstance(exc, ValueError):  # json: a 200 answer that is not JSON (a login page, a proxy)
            return QueryFailed(f"{self.url}: {what}: the answer is not valid JSON (cut off, or not the API: "
                               "is the URL the API's base, with its path prefix?)", False, 200)
        return QueryFailed(f"{self.url}: {what}: {_short(exc)}", False)


_BYTES_REPR = re.compile(r"""^b(['"])(.*)\1\)?$""", re.S)


def _status_failure(url: str, what: str, status: int, text: str) -> QueryFailed:
    splittable = status in (422, 503) and bool(_SPLITTABLE.search(text))
    text = text.strip()
    shown = _BYTES_REPR.match(text)  # prometheus-api-client quotes the body as bytes: b'404 page not found\n')
    text = shown.group(2).replace("\\n", " ").strip() if shown else text
    hint = ("; is [prometheus] url the API's base with its path prefix (e.g. https://mimir/prometheus, "
            "http://vmselect:8481/select/0/prometheus), without /api/v1?" if status == 404 else "")
    return QueryFailed(f"{url}: {what}: HTTP {status}: {text}{hint}", splittable, status)


def _is_read_timeout(exc: Exception) -> bool:
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, ReadTimeoutError)


def _auth(p, url: str, aws_session=None):
    """requests' auth of every call: SigV4 for AMP (``auth = "sigv4"``), basic auth, or none. ``aws_session``:
    a boto3 Session whose credentials sign (default: the default credential chain)."""
    if p.auth == "sigv4":
        from .sigv4 import sigv4_auth

        return sigv4_auth(url, p.region, p.role_arn, aws_session)
    return (p.username, os.environ.get(p.password_env, "")) if p.username else None


def _headers(p, token_env: str, headers: dict | None, url: str) -> dict:
    hdrs = {str(k): str(v) for k, v in (headers if headers is not None else p.headers).items()}
    token = _token(token_env or p.token_env, p.token_file) if p.auth != "sigv4" else ""  # SigV4 owns Authorization
    if token:
        hdrs["Authorization"] = f"Bearer {token}"
    if not _compress(p.compression, url):
        hdrs.setdefault("Accept-Encoding", "identity")
    return hdrs


def _compress(setting: str, url: str) -> bool:
    """Whether to ask for gzip: on ``auto``, not when the server is on this machine or in-cluster."""
    if setting != "auto":
        return setting == "gzip"
    host = (urlsplit(url).hostname or "").lower()
    try:
        if ipaddress.ip_address(host).is_loopback:
            return False
    except ValueError:
        pass
    near = host == "localhost" or "." not in host or host.endswith((".svc", ".cluster.local"))
    return not near


def _short(exc: Exception) -> str:
    text = str(exc)
    m = re.search(r"\[Errno -?\d+\] ([^'\"\)]+)|(Connection refused|Connection reset by peer|Name or service not known|Max retries exceeded)", text)
    if m:
        return (m.group(1) or m.group(2)).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _token(env: str, path: str) -> str:
    if env and os.environ.get(env):
        return os.environ[env].strip()
    if path:
        try:
            with open(os.path.expanduser(path)) as f:
                return f.read().strip()
        except OSError as exc:
            raise ConfigError(f"config: prometheus.token_file: cannot read {path}: {exc.strerror}") from None
    return ""


# --- reading a matrix answer -----------------------------------------------------------------------

_SERIES_START = b'{"metric":'
_VALUES_START = b',"values":['
_HEAD = re.compile(rb'^\s*\{"status":"success",(?:"\w+":(?:true|false|null|"[^"]*"|[0-9.eE+-]+),)*'
                   rb'"data":\{"resultType":"matrix","result":\[')
_TAIL = re.compile(rb'\]\}(,"[a-zA-Z]+":.*)?\}\s*$', re.S)


def parse_matrix(body: bytes, labels: list[str], timestamps: bool = False) -> list[RangeSeries]:
    """A query_range answer -> one :class:`RangeSeries` per series.

    Prometheus, Thanos, Mimir and VictoriaMetrics all write the matrix compactly as
    ``{"metric":{...},"values":[[t,"v"],...]}``: the label sets are decoded with json, and every
    series' points are read as the lines of one CSV by Arrow (about 40x faster than json.loads, and
    no Python object per point). The answer must be whole: it starts as a
    successful matrix, every series is followed by another or by the end of the result, and the JSON
    closes. Any other layout goes through json.loads. ValueError if unreadable, naming what is wrong."""
    if not body.lstrip().startswith(b"{"):
        raise ValueError(f"not JSON (starts with {body[:40]!r}); is the URL the API's base (with its path prefix)?")
    head = _HEAD.match(body)
    if not head:
        return _parse_matrix_json(body, labels, timestamps)
    keys, sections, counts = [], [], []
    pos = head.end()
    while body.startswith(_SERIES_START, pos):
        j = body.find(_VALUES_START, pos)
        k = body.find(b"]]}", j)
        if j < 0 or k < 0:
            raise ValueError(f"cut off inside series {len(keys) + 1} (the answer has {len(body)} bytes)")
        try:
            metric = json.loads(body[pos + len(_SERIES_START):j])
        except ValueError:
            return _parse_matrix_json(body, labels, timestamps)
        keys.append(tuple(metric.get(lab, "") for lab in labels))
        sections.append(body[j + len(_VALUES_START) + 1:k])
        counts.append(body.count(b"],[", j, k) + 1)
        pos = k + 3
        if body.startswith(b",", pos):
            pos += 1
    if not _TAIL.match(body, pos):
        raise ValueError(f"cut off after {len(keys)} series (the answer has {len(body)} bytes and does not close)")
    try:
        times, values = _points(sections)
    except pa.ArrowInvalid:  # a value that is not a number: let json say what it is
        return _parse_matrix_json(body, labels, timestamps)
    if len(values) != sum(counts):
        return _parse_matrix_json(body, labels, timestamps)
    bounds = np.cumsum([0] + counts)
    return [RangeSeries(key, values[a:b], times[a:b] if timestamps else None)
            for key, a, b in zip(keys, bounds[:-1], bounds[1:])]


_CSV = dict(read_options=pa_csv.ReadOptions(column_names=["t", "v"]),
            convert_options=pa_csv.ConvertOptions(column_types={"t": pa.float64(), "v": pa.float64()}, null_values=[],
                                                  quoted_strings_can_be_null=False, strings_can_be_null=False))


def _points(sections: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Timestamps and values of every series' ``t,"v"],[t,"v"`` section, in order: the points become
    the lines of one CSV (Arrow's reader: C, multi-threaded, reads "NaN" and "+Inf")."""
    if not sections:
        return np.zeros(0), np.zeros(0)
    table = pa_csv.read_csv(pa.py_buffer(b"\n".join(sections).replace(b"],[", b"\n")), **_CSV)
    return tuple(np.concatenate([c.to_numpy() for c in table.column(name).chunks]) for name in ("t", "v"))


def _parse_matrix_json(body: bytes, labels: list[str], timestamps: bool) -> list[RangeSeries]:
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise ValueError(f"not valid JSON ({exc}); the answer has {len(body)} bytes") from None
    if data.get("status") != "success" or data.get("data", {}).get("resultType") != "matrix":
        raise ValueError(f"expected a successful matrix answer, got {str(data)[:200]}")
    out = []
    for r in data["data"]["result"]:
        points = np.asarray(r["values"], dtype=float).reshape(-1, 2)
        out.append(RangeSeries(tuple(r["metric"].get(lab, "") for lab in labels), points[:, 1],
                               points[:, 0] if timestamps else None))
    return out
