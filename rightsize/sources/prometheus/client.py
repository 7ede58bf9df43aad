"""HTTP to a Prometheus-compatible API: auth, TLS, headers, retries, and answers read without waste.

One error type, :class:`QueryFailed`, says what failed, where, and whether the query may succeed
when made smaller (``splittable``: the server said timeout or too many samples, or did not answer
in time). Transport rules:

- connection errors and 429/500/502/504 are retried by urllib3 with exponential backoff
  (``[prometheus] retries``, ``backoff``), honouring Retry-After;
- 503 is retried the same way unless its body says timeout or samples: Prometheus answers 503
  for a query that ran out of time, and repeating that query would only fail again, so it is
  split instead;
- every request has a total deadline, ``[prometheus] timeout`` (connect and every read together: a
  server that drips its answer is cut off at the deadline), and past it is a timeout (split), never
  "cannot connect";
- an answer larger than ``[prometheus] max_answer_bytes`` is not read further: it is split like a
  timeout (or, when it cannot be split, fails naming the setting), so memory stays bounded;
- a 200 answer that is not JSON, a ``{"status":"error"}`` answer, or a matrix cut off before its end is
  an error naming it; 401/403 name the token's variable, 404 the path prefix, a failed DNS lookup the host.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import re
import socket
import threading
import time
from typing import NamedTuple
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa
import requests
from pyarrow import csv as pa_csv
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ReadTimeoutError
from urllib3.util.retry import Retry

from ...config import Config
from ...errors import ConfigError
from ...escape import clean_text
from ...settings import header_problem
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
    """The HTTP API over one requests session, with auth, TLS, headers, extra query params, retries and a
    request count; every request bounded in time and size (``_exchange``). Every method raises QueryFailed.
    (prometheus-api-client is not used: it reads every answer whole, with no deadline and no size bound.)"""

    def __init__(self, config: Config, url: str, token_env: str = "", headers: dict | None = None, aws_session=None):
        p = config.prometheus
        self.url = url.rstrip("/")
        self.params = {str(k): str(v) for k, v in p.query_params.items()}
        self.timeout, self.retries, self.backoff = p.timeout, p.retries, p.backoff
        self.max_bytes = int(p.max_answer_bytes)
        self.token_env = token_env or p.token_env
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
        self.requests = 0
        self.recorded: list | None = None  # every query's parameters, when a benchmark asks (to replay them)
        self._lock = threading.Lock()

    # --- the calls ----------------------------------------------------------------------------------
    def query(self, promql: str, at: float, what: str = "query") -> list[dict]:
        """Instant query at unix time ``at``: the result list of the answer."""
        self._record({"query": promql, "time": at})
        data = {"query": promql, "time": f"{at:.3f}", **self.params}
        return self._retry_503(what, lambda: self._data(self._post("/api/v1/query", data, what), what)["result"])

    def query_range(self, promql: str, start: float, end: float, step: float, labels: list[str],
                    what: str = "range query", timestamps: bool = False, deferred: bool = False):
        """Range query over [start, end] (unix seconds) every ``step`` seconds, as :class:`RangeSeries`
        keyed by the values of ``labels``; ``deferred``: the answer's bytes are read, and a function that
        parses them is returned (the caller parses where it likes, e.g. off the threads that wait on the server).

        The answer is read as bytes, never as Python objects per point (about 230 bytes each);
        :func:`parse_matrix` reads the
        values straight into numpy. The query goes in the POST body, so its length is not bounded
        by a proxy's URL limit."""
        self._record({"query": promql, "start": start, "end": end, "step": step})
        data = {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}", **self.params}
        body = self._retry_503(what, lambda: self._post("/api/v1/query_range", data, what))

        def parse() -> list[RangeSeries]:  # an unreadable answer is not retried: the server would say the same
            try:
                return parse_matrix(body, labels, timestamps)
            except ValueError as exc:
                raise QueryFailed(f"{self.url}: {what}: unreadable answer: {exc}", False, 200) from None

        return parse if deferred else parse()

    def label_values(self, label: str, start: float, end: float, match: str = "") -> list[str]:
        self._record({"label": label})
        params = {"start": f"{start:.3f}", "end": f"{end:.3f}", **self.params}
        if match:
            params["match[]"] = match
        what = f"label values of {label}"
        return self._retry_503(what, lambda: self._data(self._send("GET", f"/api/v1/label/{label}/values", what, params=params), what))

    def series(self, matches: list[str], start: float, end: float, what: str = "series") -> list[dict]:
        """Label sets of the series matching any of ``matches`` with samples in [start, end]: an index
        lookup, no sample is read."""
        self._record({"series": matches})
        data = {"match[]": list(matches), "start": f"{start:.3f}", "end": f"{end:.3f}", **self.params}
        return self._retry_503(what, lambda: self._data(self._send("GET", "/api/v1/series", what, params=data), what))

    def server(self) -> str:
        """What answers, for the record: "prometheus 2.42.0", "victoriametrics", "Grafana Mimir 2.10", or
        "unknown" (from /api/v1/status/buildinfo; VictoriaMetrics answers it empty and names itself in
        an X-Server-Hostname header)."""
        self._record({"buildinfo": True})
        status, headers, body = self._exchange("GET", "/api/v1/status/buildinfo", "buildinfo", params=self.params)
        try:
            info = (json.loads(body).get("data") or {}) if status == 200 else {}
        except (ValueError, AttributeError, RecursionError):
            info = {}
        info = info if isinstance(info, dict) else {}
        if "X-Server-Hostname" in headers and not info:
            return "victoriametrics"
        name = info.get("application") or ("prometheus" if "revision" in info or "goVersion" in info else "unknown")
        return clean_text(f"{name} {info.get('version', '')}".strip())

    def status(self, name: str) -> dict:
        """/api/v1/status/<name> (e.g. runtimeinfo: a Prometheus' storageRetention) as a dict; {} when the
        server does not serve it (VictoriaMetrics, Mimir) or answers anything but JSON success."""
        self._record({"status": name})
        try:
            r = self.session.get(f"{self.url}/api/v1/status/{name}", headers=self.headers, auth=self.auth,
                                 params=self.params, timeout=self.timeout)
            body = r.json() if r.status_code == 200 else {}
        except (requests.exceptions.RequestException, ValueError):
            return {}
        return (body.get("data") or {}) if isinstance(body, dict) and body.get("status") == "success" else {}

    # --- plumbing -----------------------------------------------------------------------------------
    def _record(self, entry: dict) -> None:
        with self._lock:
            self.requests += 1
            if self.recorded is not None:
                self.recorded.append(entry)

    def _post(self, path: str, data: dict, what: str) -> bytes:
        return self._send("POST", path, what, data=data)

    def _send(self, method: str, path: str, what: str, data: dict | None = None, params: dict | None = None) -> bytes:
        """The body of a 200 answer to one bounded request (``_exchange``); QueryFailed otherwise."""
        status, _headers, body = self._exchange(method, path, what, data, params)
        if status != 200:
            raise self._status(what, status, body[:300].decode("utf-8", "replace"))
        return body

    def _exchange(self, method: str, path: str, what: str, data: dict | None = None, params: dict | None = None):
        """One request, bounded: at most ``timeout`` in all (connect, headers and every read of the body),
        at most ``max_bytes`` of answer. (status, headers, body); QueryFailed when no whole answer came."""
        deadline = time.monotonic() + self.timeout
        try:
            r = self.session.request(method, f"{self.url}{path}", data=data, params=params, headers=self.headers,
                                     auth=self.auth, timeout=self.timeout, stream=True)
        except requests.exceptions.RequestException as exc:
            raise self.failure(what, exc) from None
        watchdog = threading.Timer(max(deadline - time.monotonic(), 0.0), _cut, (r,))
        watchdog.daemon = True
        watchdog.start()
        try:
            body = self._body(r, what)
        except (requests.exceptions.RequestException, OSError, ValueError) as exc:
            if time.monotonic() >= deadline - 0.05:
                raise self._timed_out(what) from None
            raise self.failure(what, exc) from None
        finally:
            watchdog.cancel()
            r.close()
        if time.monotonic() >= deadline:
            raise self._timed_out(what)
        return r.status_code, r.headers, body

    def _body(self, r, what: str) -> bytes:
        """The answer's bytes, refused past ``max_bytes`` (by its Content-Length, or as it arrives)."""
        length = r.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            raise self._too_big(what, int(length))
        body = bytearray()
        for chunk in r.iter_content(1 << 16):
            body += chunk
            if len(body) > self.max_bytes:
                raise self._too_big(what, len(body))
        return bytes(body)

    def _too_big(self, what: str, size: int) -> QueryFailed:
        return QueryFailed(f"{self.url}: {what}: the answer is larger than [prometheus] max_answer_bytes "
                           f"({self.max_bytes:,} bytes; {size:,} so far): split into smaller requests, or raise the setting",
                           True, 413)

    def _timed_out(self, what: str) -> QueryFailed:
        return QueryFailed(f"{self.url}: {what}: no whole answer within {dur(self.timeout)} (timeout)", True)

    def _data(self, body: bytes, what: str):
        """The ``data`` of a JSON answer whose status is success; QueryFailed naming anything else."""
        try:
            answer = json.loads(body)
        except (ValueError, RecursionError):
            raise QueryFailed(f"{self.url}: {what}: the answer is not valid JSON (cut off, or not the API: "
                              "is the URL the API's base, with its path prefix?)", False, 200) from None
        if not isinstance(answer, dict) or answer.get("status") != "success" or "data" not in answer:
            error = answer.get("error", "") if isinstance(answer, dict) else ""
            status = answer.get("status", "?") if isinstance(answer, dict) else type(answer).__name__
            raise QueryFailed(f"{self.url}: {what}: the server answered status {clean_text(status)!s}: "
                              f"{clean_text(str(error)[:300])}", bool(_SPLITTABLE.search(str(error))), 200)
        return answer["data"]

    def _status(self, what: str, status: int, text: str) -> QueryFailed:
        failed = _status_failure(self.url, what, status, clean_text(text.strip()))
        hint = ""
        if status in (401, 403):
            env = self.token_env
            hint = (f" (is {env} set? it is not set)" if env and not os.environ.get(env) else
                    f" (is {env} set to a valid token?)" if env else " (are the credentials right?)")
        if hint:
            failed.args = (failed.args[0] + hint,)
        return failed

    def _retry_503(self, what: str, call):
        """Run ``call``; a 503 that is not a timeout is retried with backoff, like the other 5xx."""
        for attempt in range(self.retries + 1):
            try:
                return call()
            except QueryFailed as exc:
                if exc.status != 503 or exc.splittable or attempt == self.retries:
                    raise
            except (requests.exceptions.RequestException, ValueError) as exc:
                failed = self.failure(what, exc)
                if failed.status != 503 or failed.splittable or attempt == self.retries:
                    raise failed from None
            time.sleep(self.backoff * (2 ** attempt))
        raise AssertionError("unreachable")

    def failure(self, what: str, exc: Exception) -> QueryFailed:
        """The QueryFailed for an exception of requests."""
        if _is_read_timeout(exc):
            return QueryFailed(f"{self.url}: {what}: no answer within {dur(self.timeout)} (timeout)", True)
        host = _unresolved(exc)
        if host:
            return QueryFailed(f"{self.url}: {what}: cannot resolve {host} (a typo in the URL, or no DNS for it here)", False)
        if isinstance(exc, requests.exceptions.InvalidHeader):
            return QueryFailed(f"{self.url}: {what}: {clean_text(_short(exc))}", False)
        if isinstance(exc, requests.exceptions.ConnectionError):
            return QueryFailed(f"{self.url}: {what}: cannot connect ({_short(exc)})", False)
        if isinstance(exc, ValueError):  # json: a 200 answer that is not JSON (a login page, a proxy)
            return QueryFailed(f"{self.url}: {what}: the answer is not valid JSON (cut off, or not the API: "
                               "is the URL the API's base, with its path prefix?)", False, 200)
        return QueryFailed(f"{self.url}: {what}: {clean_text(_short(exc))}", False)


def _cut(r) -> None:
    """The deadline passed while an answer was still arriving: shut its socket, so the read fails at once."""
    conn = getattr(r.raw, "connection", None) or getattr(r.raw, "_connection", None)
    sock = getattr(conn, "sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _unresolved(exc: BaseException) -> str:
    """The host name a failed DNS lookup in ``exc``'s chain was for, else ''."""
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, socket.gaierror) or "NameResolutionError" in type(exc).__name__:
            m = re.search(r"resolve '([^']+)'|host='([^']+)'", str(exc))
            return (m.group(1) or m.group(2)) if m else "the host"
        inner = getattr(exc, "reason", None) or (exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else None)
        exc = inner or exc.__cause__ or exc.__context__
        seen += 1
    return ""


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
    for name, value in hdrs.items():
        problem = header_problem(name, value)
        if problem:
            raise ConfigError(f"config: prometheus.headers: {problem}")
    token = _token(token_env or p.token_env, p.token_file) if p.auth != "sigv4" else ""  # SigV4 owns Authorization
    if token:
        problem = header_problem("Authorization", token)
        if problem:
            where = f"the environment variable {token_env or p.token_env}" if os.environ.get(token_env or p.token_env) else f"token_file {p.token_file}"
            raise ConfigError(f"config: the bearer token from {where} cannot be sent: {problem.split(': ', 1)[1]}")
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

_SERIES_AT = re.compile(rb'\{"metric":')
_VALUES_AT = re.compile(rb',"values":\[\[')
_HEAD = re.compile(rb'^\s*\{"status":"success",(?:"\w+":(?:true|false|null|"[^"]*"|[0-9.eE+-]+),)*'
                   rb'"data":\{"resultType":"matrix","result":\[')
_TAIL = re.compile(rb'\]\}(,"[a-zA-Z]+":.*)?\}\s*$', re.S)
# the points of every series as CSV lines ``t,"v",,``: "[" starts a line, "]" ends a field
_AS_LINES = bytes.maketrans(b"[]", b"\n,")


def parse_matrix(body: bytes, labels: list[str], timestamps: bool = False) -> list[RangeSeries]:
    """A query_range answer -> one :class:`RangeSeries` per series.

    Prometheus, Thanos, Mimir and VictoriaMetrics all write the matrix compactly as
    ``{"metric":{...},"values":[[t,"v"],...]}``. The series are found by their markers over the whole answer
    (``{"metric":`` and ``,"values":[[`` hold quotes, which a label value can only carry escaped), the label
    sets decoded by one json call, and every series' points read as the lines of one CSV by Arrow (about 40x
    faster than json.loads, and no Python object per point). The answer must be whole: it starts as a
    successful matrix, every series is followed by another or by the end of the result, and the JSON
    closes. Any other layout goes through json.loads. ValueError if unreadable, naming what is wrong."""
    if not body.lstrip().startswith(b"{"):
        raise ValueError(f"not JSON (starts with {body[:40]!r}); is the URL the API's base (with its path prefix)?")
    head = _HEAD.match(body)
    if not head:
        return _parse_matrix_json(body, labels, timestamps)
    found = _sections(body, head.end())
    if found is None:
        return _parse_matrix_json(body, labels, timestamps)
    metrics, sections = found
    try:
        keys = [tuple(m.get(lab, "") for lab in labels) for m in json.loads(b"[" + b",".join(metrics) + b"]")]
        times, values, counts = _points(sections)
    except (ValueError, pa.ArrowInvalid):  # a label set or a value json reads differently: let json say what it is
        return _parse_matrix_json(body, labels, timestamps)
    bounds = np.cumsum(np.r_[0, counts])
    return [RangeSeries(key, values[a:b], times[a:b] if timestamps else None)
            for key, a, b in zip(keys, bounds[:-1].tolist(), bounds[1:].tolist())]


def _sections(body: bytes, pos: int) -> tuple[list[memoryview], list[memoryview]] | None:
    """Each series' label set (JSON) and points section (``t,"v"],[t,"v"``) of a compact matrix answer whose
    result starts at ``pos``; None for another layout; ValueError when the answer is cut off."""
    starts = [m.start() for m in _SERIES_AT.finditer(body, pos)]
    marks = [m.start() for m in _VALUES_AT.finditer(body, pos)]
    if not starts:
        if not _TAIL.match(body, pos):
            raise ValueError(f"cut off after 0 series (the answer has {len(body)} bytes and does not close)")
        return [], []
    if starts[0] != pos or len(marks) not in (len(starts), len(starts) - 1):
        return None
    last = body.find(b"]]}", marks[-1]) if len(marks) == len(starts) else -1
    if last < 0:
        raise ValueError(f"cut off inside series {len(starts)} (the answer has {len(body)} bytes)")
    ends = np.array(starts[1:] + [last + 4], dtype=np.int64) - 4  # each series' "]]}" (and its ",")
    raw = np.frombuffer(body, dtype=np.uint8)
    joined = raw[ends[:-1, None] + np.arange(4)] if len(ends) > 1 else np.zeros((0, 4), np.uint8)
    if not (np.all(joined == np.frombuffer(b"]]},", np.uint8)) and np.all(np.array(marks) < ends)):
        return None
    after = last + 3 + (body.startswith(b",", last + 3))
    if not _TAIL.match(body, after):
        raise ValueError(f"cut off after {len(starts)} series (the answer has {len(body)} bytes and does not close)")
    head, tail, view = len(b'{"metric":'), len(b',"values":[['), memoryview(body)  # views: joined once, never copied apart
    metrics = [view[a + head:m] for a, m in zip(starts, marks)]
    return metrics, [view[m + tail:e] for m, e in zip(marks, ends.tolist())]


_CSV = dict(read_options=pa_csv.ReadOptions(column_names=["t", "v", "x", "y"]),
            convert_options=pa_csv.ConvertOptions(column_types={"t": pa.float64(), "v": pa.float64()}, include_columns=["t", "v"],
                                                  null_values=[], quoted_strings_can_be_null=False, strings_can_be_null=False))


def _points(sections: list[memoryview]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Timestamps and values of every series' ``t,"v"],[t,"v"`` section, in order, and each section's number
    of points: the points become the lines ``t,"v",,`` of one CSV by a byte translation (Arrow's reader: C,
    multi-threaded, reads "NaN" and "+Inf"). ValueError when the points are not the sections' ``[``s + 1."""
    if not sections:
        return np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.int64)
    text = (b",,\n".join(sections) + b",,").translate(_AS_LINES)
    lines = np.flatnonzero(np.frombuffer(text, dtype=np.uint8) == 10)
    ends = np.cumsum([len(s) + 3 for s in sections]) - 3  # each section's end in ``text``
    counts = np.diff(np.r_[0, np.searchsorted(lines, ends) + 1])
    table = pa_csv.read_csv(pa.py_buffer(text), **_CSV)
    times, values = (np.concatenate([c.to_numpy() for c in table.column(name).chunks]) for name in ("t", "v"))
    if len(values) != int(counts.sum()):
        raise ValueError(f"{len(values)} points read, {int(counts.sum())} expected")
    return times, values, counts


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
