"""Usage from a Prometheus-compatible API (Prometheus, Thanos Query, Mimir, VictoriaMetrics).

The server does the heavy lifting: per shard (a group of namespaces) a fixed set of queries
resolves owners, takes the busiest replica per container at each step and returns one row (or,
for the percentiles on Prometheus, one series) per container (see promql.py). Shards are sized
from one cheap series-count query so no query touches more than ``prometheus.max_samples``
samples; a query the server still rejects for its sample limit or a timeout is split in two and
retried, down to single namespaces. Shards run on a bounded thread pool and each answer is parsed
into a small DataFrame as soon as it arrives, so raw JSON is never held for more than
``concurrency`` queries at once.

Where the percentiles come from (``percentiles_from``): VictoriaMetrics' ``quantiles_over_time``
computes all of them in one pass over the busiest-replica subquery. Prometheus has no such
function, and the per-step owner join and max are the expensive part of the query (about 9 s per
evaluation for 1,000 containers x 14 d at 5 m on 2 cores), so there one range query per resource
asks for the busiest replica's value at each step and rightsize sorts the values itself: one join
per resource instead of one per percentile, and the same numbers (same steps, same interpolation).

Thanos Query, Grafana Mimir and VictoriaMetrics cluster (settings in ``[prometheus]``):
- Thanos Query: ``url = "https://thanos-query.example:9090"``; ``query_params = {partial_response =
  "false", dedup = "true"}`` so a store that is down fails the query instead of silently returning
  less data, and replicas of an HA pair are deduplicated.
- Mimir: ``url = "https://mimir.example/prometheus"`` (the API lives under the /prometheus path
  prefix); ``headers = {"X-Scope-OrgID" = "tenant-a"}`` selects the tenant; a bearer token comes
  from ``token_env`` / ``token_file``, never from the config file.
- VictoriaMetrics cluster: ``url = "https://vmselect.example:8481/select/0/prometheus"`` (tenant 0).
- Many clusters in one store: ``cluster_label = "cluster"``; every selector then carries
  ``cluster="<name>"`` and the clusters are discovered from the label's values.
Requirements: the ``@`` modifier (Prometheus >= 2.33 or an older one with
--enable-feature=promql-at-modifier; Thanos, Mimir and VictoriaMetrics support it) is used to
evaluate the owner map once per query instead of at every step.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import re
import sys
import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Callable, Iterable, Iterator, NamedTuple
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ..config import Config
from ..errors import ConfigError, SourceError
from ..schema import TABLES
from ..snapshot import Snapshot, conform
from .promql import QUANTILES, Queries, dur

Progress = Callable[[str], None]

# What each metric's absence disables (recorded in meta.json and the report).
_DISABLES = {
    "cpu_usage": "CPU usage statistics (usage table)",
    "memory_working_set": "memory usage statistics (usage table)",
    "cpu_throttled_periods": "CPU throttling ratio",
    "cpu_periods": "CPU throttling ratio",
    "resource_requests": "current requests from metrics (Prometheus-only inventory)",
    "resource_limits": "current limits from metrics (Prometheus-only inventory)",
    "pod_owner": "owner resolution: no usage row can be attributed to a workload",
    "replicaset_owner": "Deployment resolution (pods show as owned by their ReplicaSet)",
    "job_owner": "CronJob resolution (pods show as owned by their Job)",
    "pod_info": "placement (pod-hours per node and zone)",
    "node_labels": "nodes table (instance type, zone, capacity type)",
    "node_allocatable": "node allocatable CPU/memory",
    "last_terminated_reason": "OOM kill detection",
    "restarts": "restart counts and OOM kill detection",
    "hpa_spec_target": "HPA target utilization (Prometheus-only inventory)",
    "hpa_info": "HPA detection (Prometheus-only inventory)",
    "pdb_desired_healthy": "PDB detection (Prometheus-only inventory)",
    "pdb_expected_pods": "PDB detection (Prometheus-only inventory)",
    "istio_tcp_sent": "traffic between workloads (TCP)",
    "istio_request_bytes": "traffic between workloads (HTTP requests)",
    "istio_response_bytes": "traffic between workloads (HTTP responses)",
}
_INVENTORY_ONLY = {"resource_requests", "resource_limits", "hpa_spec_target", "hpa_info", "pdb_desired_healthy", "pdb_expected_pods"}

_SPLITTABLE = re.compile(r"too many samples|max-samples|maxSamples|exceeds|timeout|timed out|deadline|cannot allocate|memory limit|limit", re.I)
_STATUS = re.compile(r"HTTP Status Code (\d+)")


class QueryFailed(Exception):
    def __init__(self, message: str, splittable: bool):
        super().__init__(message)
        self.splittable = splittable


# --- HTTP -----------------------------------------------------------------------------------------

class Client:
    """prometheus-api-client with auth, TLS, headers, extra query params, retries, and a request count."""

    def __init__(self, config: Config, url: str, token_env: str = "", headers: dict | None = None):
        p = config.prometheus
        self.url = url.rstrip("/")
        self.params = {str(k): str(v) for k, v in p.query_params.items()}
        self.timeout = p.timeout
        hdrs = {str(k): str(v) for k, v in (headers if headers is not None else p.headers).items()}
        token = _token(token_env or p.token_env, p.token_file)
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        if not _compress(p.compression, self.url):
            hdrs.setdefault("Accept-Encoding", "identity")
        auth = None
        if p.username:
            auth = (p.username, os.environ.get(p.password_env, ""))
        session = requests.Session()
        session.verify = (p.ca_bundle or True) if p.verify_tls else False
        # 503 is left out: Prometheus answers 503 for a query timeout, which we split rather than repeat;
        # one read retry only, since a read timeout means the query is too heavy and gets split too
        retry = Retry(total=p.retries, connect=p.retries, read=min(p.retries, 1), status=p.retries, backoff_factor=p.backoff,
                      status_forcelist=(429, 500, 502, 504), allowed_methods=("GET", "POST"), raise_on_status=False)
        adapter = HTTPAdapter(max_retries=retry, pool_maxsize=max(p.concurrency, 4))
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self.session = session
        self.headers = hdrs
        self.auth = auth
        self.api = PrometheusConnect(url=self.url, headers=hdrs, auth=auth, session=session, timeout=p.timeout,
                                     retry=retry, method="POST")
        self.requests = 0
        self.recorded: list | None = None  # every query's parameters, when a benchmark asks (to replay them)
        self._lock = threading.Lock()

    def _count(self):
        with self._lock:
            self.requests += 1

    def _fail(self, what: str, exc: Exception) -> QueryFailed:
        if isinstance(exc, PrometheusApiClientException):
            text = str(exc)
            m = _STATUS.search(text)
            status = int(m.group(1)) if m else 0
            body = text.split("(", 1)[-1][:300]
            return QueryFailed(f"{self.url}: {what}: HTTP {status}: {body}", status in (422, 503) and bool(_SPLITTABLE.search(text)))
        if isinstance(exc, requests.exceptions.ReadTimeout):
            return QueryFailed(f"{self.url}: {what}: no answer within {dur(self.timeout)}", True)
        if isinstance(exc, requests.exceptions.ConnectionError):
            return QueryFailed(f"{self.url}: {what}: cannot connect ({_short(exc)})", False)
        return QueryFailed(f"{self.url}: {what}: {_short(exc)}", False)

    def query(self, promql: str, at: float, what: str = "query") -> list[dict]:
        """Instant query at unix time ``at``; QueryFailed on any failure."""
        self._count()
        if self.recorded is not None:
            self.recorded.append({"query": promql, "time": at})
        try:
            return self.api.custom_query(promql, params={"time": f"{at:.3f}", **self.params})
        except (PrometheusApiClientException, requests.exceptions.RequestException, ValueError) as exc:
            raise self._fail(what, exc) from None

    def query_range(self, promql: str, start: float, end: float, step: float, labels: list[str],
                    what: str = "range query", timestamps: bool = False) -> list["RangeSeries"]:
        """Range query over [start, end] (unix seconds) every ``step`` seconds, as :class:`RangeSeries`
        keyed by the values of ``labels``; QueryFailed on any failure.

        Sent with the session directly rather than through prometheus-api-client, whose answer is
        the whole matrix as Python objects (about 230 bytes per point: 470 MB for a 2 M point
        chunk); :func:`parse_matrix` reads the values straight into numpy. The query goes in the
        POST body, so its length is not bounded by a proxy's URL limit."""
        self._count()
        if self.recorded is not None:
            self.recorded.append({"query": promql, "start": start, "end": end, "step": step})
        data = {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}", **self.params}
        try:
            r = self.session.post(f"{self.url}/api/v1/query_range", data=data, headers=self.headers, auth=self.auth,
                                  timeout=self.timeout)
        except requests.exceptions.RequestException as exc:
            raise self._fail(what, exc) from None
        if r.status_code != 200:
            text = r.text[:300]
            raise QueryFailed(f"{self.url}: {what}: HTTP {r.status_code}: {text}",
                              r.status_code in (422, 503) and bool(_SPLITTABLE.search(text)))
        try:
            return parse_matrix(r.content, labels, timestamps)
        except ValueError as exc:
            raise QueryFailed(f"{self.url}: {what}: unreadable answer: {exc}", False) from None

    def label_values(self, label: str, start: float, end: float, match: str = "") -> list[str]:
        self._count()
        params = {"start": f"{start:.3f}", "end": f"{end:.3f}", **self.params}
        if match:
            params["match[]"] = match
        try:
            return self.api.get_label_values(label, params=params)
        except (PrometheusApiClientException, requests.exceptions.RequestException, ValueError) as exc:
            raise self._fail(f"label values of {label}", exc) from None

    def series(self, match: str, start: float, end: float) -> list[dict]:
        """Label sets of the series matching ``match`` with samples in [start, end] (an index lookup:
        no sample is read); QueryFailed on any failure."""
        self._count()
        try:
            return self.api.get_series(dt.datetime.fromtimestamp(start, dt.timezone.utc), dt.datetime.fromtimestamp(end, dt.timezone.utc),
                                       params={"match[]": match, **self.params})
        except (PrometheusApiClientException, requests.exceptions.RequestException, ValueError) as exc:
            raise self._fail("series", exc) from None

    def buildinfo(self) -> dict:
        """The server's /api/v1/status/buildinfo data ({} when the server has no such endpoint)."""
        self._count()
        try:
            r = self.session.get(f"{self.url}/api/v1/status/buildinfo", headers=self.headers, auth=self.auth,
                                 params=self.params, timeout=self.timeout)
        except requests.exceptions.RequestException as exc:
            raise self._fail("buildinfo", exc) from None
        if r.status_code != 200:
            return {}
        try:
            return r.json().get("data") or {}
        except ValueError:
            return {}


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


def detect_engine(client: Client, configured: str) -> str:
    """'prometheus' or 'victoriametrics'. VictoriaMetrics' buildinfo reports a Prometheus-compatible
    version but no revision/goVersion fields; its query API also accepts MetricsQL-only functions."""
    if configured != "auto":
        return configured
    info = client.buildinfo()
    if "revision" in info or "goVersion" in info:
        return "prometheus"
    try:
        client.query('quantiles_over_time("phi", 0.5, vector(1)[1m:1m])', at=0, what="engine probe")
        return "victoriametrics"
    except QueryFailed:
        return "prometheus"


# --- time window ----------------------------------------------------------------------------------

def window_end(config: Config) -> float:
    """End of the window as unix seconds, floored to the step: [prometheus] end, or now."""
    step = max(int(config.general.step), 1)
    if config.prometheus.end:
        try:
            t = dt.datetime.fromisoformat(config.prometheus.end.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(f"config: prometheus.end: not an RFC 3339 time: {config.prometheus.end!r}") from None
        if t.tzinfo is None:
            t = t.replace(tzinfo=dt.timezone.utc)
        now = t.timestamp()
    else:
        now = dt.datetime.now(dt.timezone.utc).timestamp()
    return float(int(now) // step * step)


# --- parsing --------------------------------------------------------------------------------------

def _frame(result: list[dict], labels: Iterable[str], value: str = "value") -> pd.DataFrame:
    """Instant-vector result -> DataFrame with the given label columns and a float column."""
    labels = list(labels)
    rows = [[r["metric"].get(lab, "") for lab in labels] + [float(r["value"][1])] for r in result]
    return pd.DataFrame(rows, columns=labels + [value])


_SERIES_START = b'{"metric":'
_VALUES_START = b',"values":['
_QUOTED = re.compile(rb'"([^"]*)"')
_TIMESTAMP = re.compile(rb'\[([^,\[\]]+),')


class RangeSeries(NamedTuple):
    key: tuple  # values of the requested labels ('' when absent)
    values: np.ndarray  # float64
    timestamps: np.ndarray | None = None  # unix seconds, when asked for


def parse_matrix(body: bytes, labels: list[str], timestamps: bool = False) -> list[RangeSeries]:
    """A query_range answer -> one :class:`RangeSeries` per series.

    Prometheus, Thanos, Mimir and VictoriaMetrics all write the matrix compactly as
    ``{"metric":{...},"values":[[t,"v"],...]}``; the label set is decoded with json and the
    quoted values go straight into numpy, which is ~3x faster than json.loads and needs memory for
    one series at a time. Any other layout falls back to json.loads. ValueError if unreadable."""
    out: list[RangeSeries] = []
    pos = 0
    while True:
        i = body.find(_SERIES_START, pos)
        if i < 0:
            break
        j = body.find(_VALUES_START, i)
        k = body.find(b"]]", j)
        if j < 0 or k < 0:
            return _parse_matrix_json(body, labels, timestamps)
        try:
            metric = json.loads(body[i + len(_SERIES_START):j])
        except ValueError:
            return _parse_matrix_json(body, labels, timestamps)
        values = _QUOTED.findall(body, j + len(_VALUES_START), k + 1)
        times = _TIMESTAMP.findall(body, j + len(_VALUES_START), k + 1) if timestamps else None
        points = body.count(b"],[", j, k) + 1
        if len(values) != points or (times is not None and len(times) != points):
            return _parse_matrix_json(body, labels, timestamps)
        out.append(RangeSeries(tuple(metric.get(lab, "") for lab in labels), np.array(values).astype(float),
                               np.array(times).astype(float) if times is not None else None))
        pos = k
    if not out and b'"result":[]' not in body:
        return _parse_matrix_json(body, labels, timestamps)
    return out


def _parse_matrix_json(body: bytes, labels: list[str], timestamps: bool) -> list[RangeSeries]:
    data = json.loads(body)
    if data.get("status") != "success" or data.get("data", {}).get("resultType") != "matrix":
        raise ValueError(f"expected a successful matrix answer, got {str(data)[:200]}")
    out = []
    for r in data["data"]["result"]:
        points = np.asarray(r["values"], dtype=float).reshape(-1, 2)
        out.append(RangeSeries(tuple(r["metric"].get(lab, "") for lab in labels), points[:, 1],
                               points[:, 0] if timestamps else None))
    return out


# --- sharding -------------------------------------------------------------------------------------

def _series_per_namespace(client: Client, q: Queries, labels, start: float, end: float) -> dict[str, float]:
    """Container series (pod x container) per namespace in the window, to size the shards.

    From the series API, an index lookup that reads no sample (a count query would read 14 days of
    working set: ~9 s at 10,000 containers, before any shard can start); the count query is the
    fallback for a server or proxy that refuses the series API."""
    try:
        found = client.series(q.sel(q.cfg.metrics.memory_working_set, None, containers=True), start, end)
        pods = {(s.get(labels.namespace, ""), s.get(labels.pod, ""), s.get(labels.container, "")) for s in found}
        counts = pd.Series([ns for ns, _, _ in pods if ns], dtype=object).value_counts()
        return {str(ns): float(n) for ns, n in counts.items()}
    except QueryFailed:
        pass
    try:
        counts = _frame(client.query(q.series_count(), end, "series count"), [labels.namespace], "series")
    except QueryFailed as exc:
        raise SourceError(f"cannot size shards: {exc}") from None
    counts = counts[counts[labels.namespace] != ""]
    return dict(zip(counts[labels.namespace], counts["series"]))


def plan_shards(series_per_namespace: dict[str, float], steps: int, max_samples: int, factor: float = 3.0) -> list[list[str]]:
    """Groups of namespaces whose estimated samples per query stay under ``max_samples``.

    A query holds about ``factor`` x series x steps points at its peak (the per-pod series, the
    owner join and the result), which is what Prometheus counts against --query.max-samples."""
    budget = max_samples / (factor * max(steps, 1))
    shards: list[list[str]] = []
    current: list[str] = []
    load = 0.0
    for ns, n in sorted(series_per_namespace.items(), key=lambda kv: (-kv[1], kv[0])):
        if current and load + n > budget:
            shards.append(current)
            current, load = [], 0.0
        current.append(ns)
        load += n
    if current:
        shards.append(current)
    return shards


Fetch = Callable[[list[str]], pd.DataFrame]  # namespaces -> parsed answer; raises QueryFailed


class _Runner:
    """Runs (name, namespaces, fetch) tasks on a bounded pool, splitting on sample-limit / timeout."""

    def __init__(self, concurrency: int, log: Progress):
        self.concurrency, self.log = concurrency, log
        self.splits = 0
        # a log callable may also draw a progress bar (the CLI's on a terminal): bar(done, total)
        self._bar = getattr(log, "bar", None) or (lambda done, total: None)

    def run(self, tasks: list[tuple[str, list[str], Fetch]], allow_partial: bool) -> tuple[dict[str, list[pd.DataFrame]], set[str], list[str]]:
        """Returns (frames per task name, namespaces that failed, failure messages)."""
        frames: dict[str, list[pd.DataFrame]] = {}
        failed: set[str] = set()
        errors: list[str] = []
        pending = list(tasks)
        total = len(tasks)
        done = 0
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            running = {}
            while pending or running:
                while pending and len(running) < self.concurrency:
                    name, nss, fetch = pending.pop(0)
                    fut = pool.submit(fetch, nss)
                    running[fut] = (name, nss, fetch)
                finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for fut in finished:
                    name, nss, fetch = running.pop(fut)
                    try:
                        frame = fut.result()
                        frames.setdefault(name, []).append(frame)
                        done += 1
                        self.log(f"query {name} for {len(nss)} namespace(s) done ({done}/{total})")
                        self._bar(done, total)
                    except QueryFailed as exc:
                        if exc.splittable and len(nss) > 1:
                            half = len(nss) // 2
                            self.splits += 1
                            total += 1
                            self.log(f"query {name} too large for {len(nss)} namespaces, splitting: {exc}")
                            pending[:0] = [(name, nss[:half], fetch), (name, nss[half:], fetch)]
                            continue
                        if not allow_partial:
                            for f in running:
                                f.cancel()
                            raise SourceError(f"{exc} (query {name}, namespaces {', '.join(nss)}); "
                                              "rerun with --allow-partial to keep the other namespaces") from None
                        failed.update(nss)
                        errors.append(f"{name}: {exc}")
                        done += 1
                        self._bar(done, total)
        return frames, failed, errors


def _instant(client: Client, at: float, name: str, build: Callable[[list[str]], str], columns: list[str], value: str) -> Fetch:
    return lambda nss: _frame(client.query(build(nss), at, what=f"query {name}"), columns, value)


# Prometheus refuses a range query of more than 11,000 points per series
_MAX_RANGE_STEPS = 11_000


def range_chunks(client: Client, promql: str, start: float, end: float, step: float, labels: list[str],
                 chunk_steps: int, what: str, timestamps: bool = False) -> Iterator[list[RangeSeries]]:
    """One range query over [start, end], cut into consecutive chunks of at most ``chunk_steps``
    steps (and Prometheus's 11,000 points per series); every step is asked for exactly once. A
    chunk the server rejects for its sample limit or a timeout is halved and retried; at one step
    the QueryFailed goes up (so the runner can split the namespaces instead)."""
    n_steps = int(round((end - start) / step)) + 1
    chunk = max(1, min(_MAX_RANGE_STEPS, chunk_steps, n_steps))
    i = 0
    while i < n_steps:
        j = min(n_steps, i + chunk)
        try:
            result = client.query_range(promql, start + i * step, start + (j - 1) * step, step, labels, what, timestamps)
        except QueryFailed as exc:
            if exc.splittable and chunk > 1:
                chunk = max(1, chunk // 2)
                continue
            raise
        yield result
        i = j


def busiest_percentiles(client: Client, promql: str, resource: str, start: float, end: float, step: float,
                        points: int, series_hint: float, key: list[str]) -> pd.DataFrame:
    """Percentiles of the busiest replica per container from one range query (cut into time chunks).

    The server evaluates ``promql`` (the busiest replica's value per container at each step: rate,
    owner join and per-step max all happen there) once; only the sorting for the percentiles is
    done here, with the same linear interpolation between closest ranks as quantile_over_time.
    A chunk holds at most ``points`` points (``series_hint`` x steps), see :func:`range_chunks`.
    Units: cores (cpu) or bytes (memory).

    Returns one row per container: ``<resource>_p50..p99_<unit>``, plus ``cpu_max_cores`` for CPU
    (the max over the same steps) or ``samples`` (steps seen) for memory."""
    values: dict[tuple, list[np.ndarray]] = {}
    for result in range_chunks(client, promql, start, end, step, key, int(points // max(series_hint, 1.0)),
                               f"{resource} busiest replica"):
        for series in result:
            values.setdefault(series.key, []).append(series.values)
    unit = "cores" if resource == "cpu" else "bytes"
    cols = [f"{resource}_{name}_{unit}" for name, _ in QUANTILES]
    rows = []
    for k, parts in values.items():
        a = np.concatenate(parts)
        a = a[~np.isnan(a)]
        if not len(a):
            continue
        stats = list(np.quantile(a, [phi for _, phi in QUANTILES]))
        rows.append(list(k) + stats + [float(a.max()) if resource == "cpu" else float(len(a))])
    return pd.DataFrame(rows, columns=key + cols + ["cpu_max_cores" if resource == "cpu" else "samples"])


# --- the collect entry points ---------------------------------------------------------------------

def _progress(progress: Progress | None) -> tuple[Progress, Callable[[], None]]:
    if progress is not None:
        return progress, lambda: None
    if sys.stderr.isatty():
        from rich.console import Console

        console = Console(stderr=True)
        status = console.status("querying metrics")
        status.start()
        return (lambda msg: status.update(msg)), status.stop
    return (lambda msg: None), lambda: None


def discover_clusters(config: Config, url: str) -> list[str]:
    """Values of [prometheus] cluster_label seen in the window (sorted)."""
    label = config.prometheus.cluster_label
    if not label:
        return []
    client = Client(config, url)
    end = window_end(config)
    try:
        return sorted(v for v in client.label_values(label, end - config.general.window, end) if v)
    except QueryFailed as exc:
        raise SourceError(str(exc)) from None


def collect_usage(config: Config, target, snapshot: Snapshot, *, allow_partial: bool = False,
                  inventory_from_metrics: bool = False, progress: Progress | None = None, client: Client | None = None) -> None:
    """Fill usage, nodes, placement, traffic (and workloads/containers with ``inventory_from_metrics``)
    for one cluster. Units: cores, bytes, hours. Raises SourceError (one line, with the URL) when the
    server cannot be reached or a shard fails without ``allow_partial``."""
    log, stop = _progress(progress)
    try:
        _collect(config, target, snapshot, allow_partial, inventory_from_metrics, log, client)
    finally:
        stop()


def _collect(config, target, snapshot, allow_partial, inventory, log, client):
    p = config.prometheus
    client = client or Client(config, target.prometheus_url, target.token_env, target.headers)
    end = window_end(config)
    window, step = config.general.window, config.general.step
    start = end - window
    try:
        engine = detect_engine(client, p.engine)
        present = set(client.label_values("__name__", start, end, match=_match_arg(p, target)))
    except QueryFailed as exc:
        raise SourceError(f"cannot query metrics: {exc}") from None
    q = Queries(p, window, step, target.label_value if p.cluster_label else "", engine, pin_at=end)
    mode = p.percentiles_from if p.percentiles_from != "auto" else ("instant" if engine == "victoriametrics" else "range")
    snapshot.meta.setdefault("sources", {})
    snapshot.meta.setdefault("versions", {})[f"metrics_engine:{target.name}"] = engine
    missing = _record_missing(config, snapshot, present, inventory, target.name)
    log(f"[{target.name}] {engine} at {client.url}; window {dur(window)} ending {dt.datetime.fromtimestamp(end, dt.timezone.utc).isoformat()}")

    runner = _Runner(p.concurrency, log)
    shards: list[list[str]] = []
    series: dict[str, float] = {}
    m = p.metrics
    if m.memory_working_set not in missing and m.pod_owner not in missing:
        series = _series_per_namespace(client, q, p.labels, start, end)
        steps = int(window // step) + 1
        shards = plan_shards(series, steps, p.max_samples)
        log(f"[{target.name}] {int(sum(series.values()))} container series in {len(series)} namespaces -> {len(shards)} shard(s)")

    tasks: list[tuple[str, list[str], Fetch]] = []
    key = [p.labels.namespace, "kind", "workload", p.labels.container]
    if shards:
        if mode == "range":
            # the heaviest tasks go first so the light instant queries fill the pool around them
            for res in ("cpu", "memory"):
                if res == "cpu" and m.cpu_usage in missing:
                    continue
                fetch = (lambda r: lambda nss: busiest_percentiles(
                    client, q.range_queries(nss)[r], r, start, end, step, p.range_points,
                    sum(series.get(ns, 0.0) for ns in nss), key))(res)
                for shard in shards:
                    tasks.append((f"busiest:{res}", shard, fetch))
        for name in q.usage_queries(shards[0], mode):
            if name.startswith("cpu") and m.cpu_usage in missing:
                continue
            if name == "cpu_throttled_ratio" and (m.cpu_periods in missing or m.cpu_throttled_periods in missing):
                continue
            if name in ("restarts", "oom_kills") and m.restarts in missing:
                continue
            if name == "oom_kills" and m.last_terminated_reason in missing:
                continue
            build = (lambda n: lambda nss: q.usage_queries(nss, mode)[n])(name)
            if name.startswith("quantiles:"):
                fetch = _instant(client, end, name, build, key + ["phi"], name.split(":")[1])
            elif name == "memory_per_pod":
                fetch = _instant(client, end, name, build, key + [p.labels.pod], "memory_max_bytes")
            else:
                fetch = _instant(client, end, name, build, key, name)
            for shard in shards:
                tasks.append((name, shard, fetch))
        if m.pod_info not in missing:
            fetch = _instant(client, end, "placement", q.placement, [p.labels.namespace, "kind", "workload", p.labels.node], "pod_hours")
            for shard in shards:
                tasks.append(("placement", shard, fetch))
        if inventory:
            for name in ("requests", "limits"):
                metric = m.resource_requests if name == "requests" else m.resource_limits
                if metric in missing:
                    continue
                fetch = _instant(client, end, name, (lambda n: lambda nss: q.inventory_queries(nss)[n])(name), key + ["resource"], name)
                for shard in shards:
                    tasks.append((name, shard, fetch))
            fetch = _instant(client, end, "replicas", lambda nss: q.inventory_queries(nss)["replicas"], key[:3], "replicas")
            for shard in shards:
                tasks.append(("replicas", shard, fetch))
    frames, failed, errors = runner.run(tasks, allow_partial)
    if failed:
        snapshot.meta.setdefault("partial", {}).setdefault("namespaces", [])
        for ns in sorted(failed):
            label = f"{target.name}/{ns}"
            if label not in snapshot.meta["partial"]["namespaces"]:
                snapshot.meta["partial"]["namespaces"].append(label)
        snapshot.warn("partial", f"cluster {target.name}: no usage for namespaces {', '.join(sorted(failed))}: {errors[0]}",
                      affects=", ".join(sorted(failed)))
    if runner.splits:
        log(f"[{target.name}] {runner.splits} query split(s) after the server rejected a shard")

    usage = _usage_table(frames, key, target.name, p.labels, failed, step)
    _append(snapshot, "usage", usage)
    if "placement" in frames:
        pl = pd.concat(frames["placement"], ignore_index=True).rename(columns={p.labels.namespace: "namespace", p.labels.node: "node"})
        pl = pl[~pl["namespace"].isin(failed)]
    else:
        pl = None

    # cluster-wide tables: nodes, traffic, HPA/PDB
    nodes = _nodes(client, q, end, config, missing, target.name, allow_partial, snapshot)
    _append(snapshot, "nodes", nodes)
    if pl is not None and len(pl):
        zones = dict(zip(nodes["node"], nodes["zone"])) if len(nodes) else {}
        pl["zone"] = pl["node"].map(zones).astype(object).fillna("")
        pl["cluster"] = target.name
        _append(snapshot, "placement", pl[["cluster", "namespace", "kind", "workload", "node", "zone", "pod_hours"]])
    _append(snapshot, "traffic", _traffic(client, q, end, config, missing, target.name, allow_partial, snapshot))
    if inventory:
        _inventory(frames, client, q, end, config, missing, target.name, snapshot, key, failed, allow_partial)
    snapshot.meta["sources"][f"prometheus:{target.name}"] = {"url": client.url, "engine": engine, "shards": len(shards),
                                                             "requests": client.requests, "splits": runner.splits,
                                                             "percentiles": mode, "step_seconds": step}


def _match_arg(p, target) -> str:
    if p.cluster_label and target.label_value:
        from .promql import quote

        return f"{{{p.cluster_label}={quote(target.label_value)}}}"
    return ""


def _record_missing(config, snapshot, present: set[str], inventory: bool, cluster: str) -> set[str]:
    m = config.prometheus.metrics
    missing = set()
    for field, disables in _DISABLES.items():
        name = getattr(m, field)
        if name in present:
            continue
        if field in _INVENTORY_ONLY and not inventory:
            continue
        missing.add(name)
        if name not in snapshot.meta.setdefault("missing_metrics", []):
            snapshot.meta["missing_metrics"].append(name)
        snapshot.warn("missing_metric", f"cluster {cluster}: metric {name} not found in the window; disables {disables}", affects=disables)
    return missing


def _append(snapshot: Snapshot, table: str, df: pd.DataFrame | None) -> None:
    if df is None or not len(df):
        return
    df = conform(table, df)
    cur = snapshot.tables.get(table)
    snapshot.tables[table] = df if cur is None or not len(cur) else pd.concat([cur, df], ignore_index=True)


def _usage_table(frames, key, cluster, labels, failed, step: float) -> pd.DataFrame:
    cols = [c.name for c in TABLES["usage"]]
    parts = []
    for name, fs in frames.items():
        if name in ("placement", "requests", "limits", "replicas"):
            continue
        df = pd.concat(fs, ignore_index=True)
        if name.startswith("busiest:"):
            parts.append(df.groupby(key).max())
        elif name == "memory_per_pod":
            per = df.groupby(key)["memory_max_bytes"]
            parts += [per.max().to_frame(), per.size().rename("pods_seen").to_frame()]
        elif name.startswith("quantiles:"):
            res = name.split(":")[1]
            unit = "cores" if res == "cpu" else "bytes"
            names = {str(phi): f"{res}_{lab}_{unit}" for lab, phi in QUANTILES}
            df["phi"] = df["phi"].map(lambda v: names.get(str(float(v)), ""))
            df = df[df["phi"] != ""].pivot_table(index=key, columns="phi", values=res, aggfunc="max")
            parts.append(df)
        else:
            parts.append(df.groupby(key)[name].max().to_frame())
    if not parts:
        return pd.DataFrame(columns=cols)
    out = pd.concat(parts, axis=1).reset_index()
    out = out.rename(columns={labels.namespace: "namespace", labels.container: "container"})
    out = out[(out["namespace"] != "") & (out["workload"] != "") & ~out["namespace"].isin(failed)]
    out["cluster"] = cluster
    for c in cols:
        if c not in out.columns:
            out[c] = np.nan
    for c in ("oom_kills", "restarts"):
        # a container without restarts / OOM kills has no series in the answer: 0 when the query ran
        out[c] = out[c].fillna(0.0).round() if c in frames else np.nan
    out["hours_covered"] = out["samples"] * step / 3600.0
    return out


def _safe_query(client, promql, end, what, allow_partial, snapshot, cluster) -> list[dict]:
    try:
        return client.query(promql, end, what)
    except QueryFailed as exc:
        if not allow_partial:
            raise SourceError(f"{exc}; rerun with --allow-partial to keep the rest") from None
        snapshot.warn("partial", f"cluster {cluster}: {what} failed: {exc}", affects=what)
        return []


def _nodes(client, q, end, config, missing, cluster, allow_partial, snapshot) -> pd.DataFrame:
    L, m = config.prometheus.labels, config.prometheus.metrics
    if m.node_labels in missing:
        return pd.DataFrame()
    nq = q.node_queries()
    lab_cols = [L.node, L.zone, L.region, L.instance_type, L.capacity_type_eks, L.capacity_type_karpenter, L.node_group]
    nodes = _frame(_safe_query(client, nq["labels"], end, "node labels", allow_partial, snapshot, cluster), lab_cols, "one")
    if not len(nodes):
        return pd.DataFrame()
    nodes = nodes.drop_duplicates(L.node, keep="last")
    hours = _frame(_safe_query(client, nq["hours"], end, "node hours", allow_partial, snapshot, cluster), [L.node], "hours_seen")
    out = pd.DataFrame({
        "cluster": cluster, "node": nodes[L.node], "instance_type": nodes[L.instance_type], "zone": nodes[L.zone],
        "region": nodes[L.region], "node_group": nodes[L.node_group],
        "capacity_type": _capacity(nodes[L.capacity_type_eks], nodes[L.capacity_type_karpenter]),
    })
    out = out.merge(hours.rename(columns={L.node: "node"}), on="node", how="left")
    if m.node_allocatable not in missing:
        alloc = _frame(_safe_query(client, nq["allocatable"], end, "node allocatable", allow_partial, snapshot, cluster), [L.node, "resource"], "v")
        wide = alloc.pivot_table(index=L.node, columns="resource", values="v", aggfunc="max") if len(alloc) else pd.DataFrame()
        out["allocatable_cpu_cores"] = out["node"].map(wide["cpu"] if "cpu" in wide else {})
        out["allocatable_memory_bytes"] = out["node"].map(wide["memory"] if "memory" in wide else {})
    else:
        out["allocatable_cpu_cores"] = np.nan
        out["allocatable_memory_bytes"] = np.nan
    out["hours_seen"] = out["hours_seen"].fillna(0.0)
    return out


def _capacity(eks: pd.Series, karpenter: pd.Series) -> pd.Series:
    """EKS says ON_DEMAND / SPOT, Karpenter on-demand / spot; '' when neither label is set."""
    raw = eks.where(eks != "", karpenter).str.lower().str.replace("_", "-")
    return raw.where(raw.isin(["spot", "on-demand"]), "")


def _traffic(client, q, end, config, missing, cluster, allow_partial, snapshot) -> pd.DataFrame:
    L, m = config.prometheus.labels, config.prometheus.metrics
    cols = [L.source_namespace, L.source_workload, L.destination_namespace, L.destination_workload, L.source_zone, L.destination_zone]
    frames = []
    for key, metric in (("tcp", m.istio_tcp_sent), ("request", m.istio_request_bytes), ("response", m.istio_response_bytes)):
        if metric in missing:
            continue
        frames.append(_frame(_safe_query(client, q.traffic_queries()[key], end, f"traffic {metric}", allow_partial, snapshot, cluster), cols, "bytes"))
    if not frames:
        return pd.DataFrame()
    df = pd.concat(frames, ignore_index=True)
    df = df[(df[L.source_workload] != "") & (df[L.destination_workload] != "")]
    df = df.groupby(cols, as_index=False)["bytes"].sum()
    df = df.rename(columns=dict(zip(cols, ["source_namespace", "source_workload", "destination_namespace", "destination_workload",
                                           "source_zone", "destination_zone"])))
    df["cluster"] = cluster
    return df


def _inventory(frames, client, q, end, config, missing, cluster, snapshot, key, failed, allow_partial) -> None:
    """Workloads and containers from kube-state-metrics (Prometheus-only mode)."""
    L = config.prometheus.labels
    ren = {L.namespace: "namespace", L.container: "container"}
    reqs = pd.concat(frames.get("requests", [pd.DataFrame(columns=key + ["resource", "requests"])]), ignore_index=True)
    lims = pd.concat(frames.get("limits", [pd.DataFrame(columns=key + ["resource", "limits"])]), ignore_index=True)
    wide = []
    for df, col in ((reqs, "requests"), (lims, "limits")):
        if len(df):
            w = df.pivot_table(index=key, columns="resource", values=col, aggfunc="max")
            w.columns = [f"{'cpu' if r == 'cpu' else 'memory'}_{col[:-1]}_{'cores' if r == 'cpu' else 'bytes'}" for r in w.columns]
            wide.append(w)
    usage = snapshot.tables["usage"]
    usage = usage[usage["cluster"] == cluster]
    base = usage[["namespace", "kind", "workload", "container"]].set_index(["namespace", "kind", "workload", "container"])
    base.index.names = key
    containers = pd.concat([base] + wide, axis=1) if wide else base
    containers = containers[~containers.index.duplicated()].reset_index().rename(columns=ren)
    containers = containers[~containers["namespace"].isin(failed) & (containers["workload"] != "")]
    for c in ("cpu_request_cores", "cpu_limit_cores", "memory_request_bytes", "memory_limit_bytes"):
        if c not in containers:
            containers[c] = np.nan
    containers["cluster"] = cluster
    containers["container_type"] = "main"
    _append(snapshot, "containers", containers)

    reps = pd.concat(frames.get("replicas", [pd.DataFrame(columns=key[:3] + ["replicas"])]), ignore_index=True).rename(columns=ren)
    wl = containers[["namespace", "kind", "workload"]].drop_duplicates().merge(reps, on=["namespace", "kind", "workload"], how="left")
    wl["replicas"] = wl["replicas"].fillna(0.0)
    wl["cluster"] = cluster
    for c in ("has_pvc", "has_empty_dir", "has_host_path"):
        wl[c] = False
    wl["termination_grace_seconds"] = 30.0
    wl["hpa"] = False
    wl["pdb"] = False
    wl["source"] = "prometheus"
    m = config.prometheus.metrics
    hq = q.hpa_queries()
    if m.hpa_info not in missing:
        info = _frame(_safe_query(client, hq["info"], end, "HPA info", allow_partial, snapshot, cluster),
                      [L.namespace, "horizontalpodautoscaler", "scaletargetref_kind", "scaletargetref_name"], "one")
        info = info.rename(columns={L.namespace: "namespace", "scaletargetref_kind": "kind", "scaletargetref_name": "workload"})
        hit = wl.set_index(["namespace", "kind", "workload"]).index.isin(info.set_index(["namespace", "kind", "workload"]).index)
        wl["hpa"] = hit
        if m.hpa_spec_target not in missing and len(info):
            tgt = _frame(_safe_query(client, hq["target"], end, "HPA targets", allow_partial, snapshot, cluster),
                         [L.namespace, "horizontalpodautoscaler", "metric_name", "metric_target_type"], "target")
            tgt = tgt[tgt["metric_target_type"] == "utilization"].rename(columns={L.namespace: "namespace"})
            tgt = tgt.merge(info, on=["namespace", "horizontalpodautoscaler"])
            for res in ("cpu", "memory"):
                t = tgt[tgt["metric_name"] == res].groupby(["namespace", "kind", "workload"])["target"].max()
                wl[f"hpa_{res}_target_percent"] = wl.set_index(["namespace", "kind", "workload"]).index.map(t).astype(float)
            metrics = tgt.groupby(["namespace", "kind", "workload"])["metric_name"].agg(lambda s: ",".join(f"Resource:{x}" for x in sorted(s)))
            wl["hpa_metrics"] = wl.set_index(["namespace", "kind", "workload"]).index.map(metrics).fillna("").astype(str)
    if m.pdb_expected_pods not in missing:
        pdb = _frame(_safe_query(client, hq["pdb"], end, "PDB", allow_partial, snapshot, cluster), [L.namespace, "poddisruptionbudget"], "expected")
        # kube-state-metrics does not export a PDB's selector: match a PDB to the workload of the same name
        wl["pdb"] = pd.MultiIndex.from_frame(wl[["namespace", "workload"]]).isin(
            pd.MultiIndex.from_arrays([pdb[L.namespace], pdb["poddisruptionbudget"]]))
        snapshot.warn("pdb_by_name", f"cluster {cluster}: PDBs matched to workloads by name (kube-state-metrics has no PDB selector)",
                      affects="spot suitability")
    snapshot.warn("inventory_from_metrics", f"cluster {cluster}: workload specs from kube-state-metrics: volumes, grace periods and "
                  "spot affinity are unknown (assumed none / 30 s)", affects="spot suitability")
    _append(snapshot, "workloads", wl)


# --- drill-down series ----------------------------------------------------------------------------

def fetch_series(config: Config, target=None, refs=None, step_seconds: float = 300, *, snapshot: Snapshot | None = None) -> pd.DataFrame:
    """Busiest-replica CPU (cores) and working set (bytes) per container of the chosen workloads at
    ``step_seconds`` over the window, in the snapshot ``series`` table format. ``refs``: (namespace,
    kind, workload) tuples or 'NAMESPACE/KIND/NAME' strings. Requests: 2 per namespace group and
    time chunk (range queries are limited to 11,000 points per series), never per workload."""
    from ..targets import cluster_targets

    if refs is None and isinstance(target, (list, tuple)):
        target, refs = None, target
    target = target or cluster_targets(config)[0]
    parsed = [tuple(r.split("/")) if isinstance(r, str) else tuple(r) for r in refs or []]
    for r in parsed:
        if len(r) != 3:
            raise ConfigError(f"series: expected NAMESPACE/KIND/NAME, got {'/'.join(r)!r}")
    p = config.prometheus
    client = Client(config, target.prometheus_url, target.token_env, target.headers)
    end = window_end(config)
    start = end - config.general.window
    try:
        engine = detect_engine(client, p.engine)
    except QueryFailed as exc:
        raise SourceError(str(exc)) from None
    q = Queries(p, config.general.window, config.general.step, target.label_value if p.cluster_label else "", engine, pin_at=end)
    namespaces = sorted({r[0] for r in parsed})
    wanted = pd.DataFrame(parsed, columns=["namespace", "kind", "workload"]).drop_duplicates()
    L = p.labels
    labels = [L.namespace, "kind", "workload", L.container]
    frames = []
    for res, col in (("cpu", "cpu_cores"), ("memory", "memory_bytes")):
        rows = []
        try:
            for result in range_chunks(client, q.range_queries(namespaces)[res], start, end, step_seconds, labels,
                                       _MAX_RANGE_STEPS, f"{res} series", timestamps=True):
                rows += [pd.DataFrame({"namespace": s.key[0], "kind": s.key[1], "workload": s.key[2], "container": s.key[3],
                                       "timestamp": s.timestamps, col: s.values}) for s in result]
        except QueryFailed as exc:
            raise SourceError(str(exc)) from None
        if rows:
            frames.append(pd.concat(rows, ignore_index=True))
    if not frames:
        out = pd.DataFrame(columns=[c.name for c in TABLES["series"]])
    else:
        out = frames[0]
        for f in frames[1:]:
            out = out.merge(f, on=["namespace", "kind", "workload", "container", "timestamp"], how="outer")
        out = out.merge(wanted, on=["namespace", "kind", "workload"])
        out["timestamp"] = pd.to_datetime(out["timestamp"], unit="s", utc=True)
        out["cluster"] = target.name
        for c in ("cpu_cores", "memory_bytes"):
            if c not in out:
                out[c] = np.nan
    out = conform("series", out)
    if snapshot is not None:
        _append(snapshot, "series", out)
    return out
