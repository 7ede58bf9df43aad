"""Benchmark: collect usage from a synthetic TSDB of configurable size; prints figures, asserts nothing.

    python3 benchmarks/collect_bench.py --baseline 80fbd65          # 1,000 containers x 14 d at 60 s, Prometheus,
                                                                    # this tree beside the given git revision
    python3 benchmarks/collect_bench.py --containers 10000 --workdir /tmp/b10k
    python3 benchmarks/collect_bench.py --engine victoriametrics --clusters 3

Prints, per engine and per code under test (this tree, and with --baseline an older revision of
the rightsize package, each against a freshly started server):
- wall time of the collection, HTTP requests, peak RSS of the rightsize process (the collection
  runs in a child process so the data generator's memory is not counted);
- the server's own cost, from /proc/<pid> of the server the benchmark started: CPU seconds
  (utime + stime) during the collection, its RSS before and the peak growth over it;
- accuracy against the truth: every statistic compared with an exact computation from the
  generator's own samples (pooled, max over pods and busiest replica p50-p99, the raw memory max),
  and the default CPU statistic against the true pooled p95 by replica count.

Data: Deployments of 1 to 6 replicas (cycled), pods of 2 containers, 20 namespaces, 50 nodes; each
workload container has a level (0.01 to 2 cores), its replicas +-10 % around it, and in one
Deployment in seven the first replica runs twice as hot. CPU and working set are sampled every
60 s (the expensive part); kube-state-metrics series and the CFS / restart counters every 240 s
(inside Prometheus' 5 min lookback) to keep the build time sane on 2 cores. Every sample is a pure
function of (series, timestamp): noise comes from a hash, and the CPU counter is a running sum of
integer millicore-seconds, so it comes out the same whether summed over 14 days at once or 2 h at
a time, and the truth is computed from the same functions.
Prometheus gets the data through promtool, streamed: one OpenMetrics file per aligned 2 h block
is generated while promtool (two processes) backfills the previous ones, and each file is deleted
once consumed. 1,000 containers x 14 d is 62 M samples: about 100 s to build on 2 cores, growing
linearly with --containers; the merged blocks stay in --workdir for the next run.
VictoriaMetrics gets the same samples through /api/v1/import (JSON lines), far faster to load.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

STEP = 60  # seconds between CPU / working-set samples
SLOW = 240  # seconds between kube-state-metrics / CFS samples
BLOCK = 7200  # promtool block length, seconds


REPLICAS = (1, 2, 3, 4, 6, 2, 3, 2)  # replicas per Deployment, cycled


def layout(containers: int, cluster: str):
    """Yield (namespace, pod, replicaset, deployment, node, [container names], replica index): Deployments
    of 1 to 6 replicas (cycled), pods of 2 containers, 20 namespaces, 50 nodes; ``containers``
    container instances (pods x 2) in all."""
    pods = max(containers // 2, 1)
    i = dep = 0
    while i < pods:
        for r in range(min(REPLICAS[dep % len(REPLICAS)], pods - i)):
            yield f"ns-{dep % 20:02d}", f"app-{dep}-rs-{r}", f"app-{dep}-rs", f"app-{dep}", f"node-{i % 50}", ["main", "sidecar"], r
            i += 1
        dep += 1


@dataclass
class Group:
    """One metric's series: row i has labels[i] and its values are seeded by keys[i].

    fn(keys, timestamps) -> matrix (rows x timestamps). For a counter, fn gives the increments and
    the samples are their running sum; samples are fn's numbers divided by ``scale``."""
    name: str
    labels: list
    keys: np.ndarray
    step: int
    fn: Callable
    counter: bool = False
    scale: int = 1


@dataclass
class Dataset:
    groups: list
    first: int  # first and last timestamp, seconds
    end: int

    def times(self, step: int, lo: int, hi: int) -> np.ndarray:
        """Sample timestamps (s) of a series sampled every ``step`` seconds, within [lo, hi)."""
        a = -(-max(lo, self.first) // step) * step
        return np.arange(a, min(hi, self.end + 1), step, dtype=np.int64)


def _noise(keys: np.ndarray, ts, salt: int) -> np.ndarray:
    """Uniform [0, 1) noise, rows = keys, columns = ts. A hash rather than a random generator, so
    a sample does not depend on which block of timestamps it is generated with."""
    with np.errstate(over="ignore"):
        x = keys.astype(np.uint64)[:, None] * np.uint64(0x9E3779B97F4A7C15)
        x = x ^ (np.asarray(ts, dtype=np.uint64)[None, :] + np.uint64(salt << 40))
        for shift, mult in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB)):
            x = (x ^ (x >> np.uint64(shift))) * np.uint64(mult)
        x ^= x >> np.uint64(31)
    return (x >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _levels(workload: np.ndarray, replica: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Mean CPU of each container row, cores: one level per workload container (0.01 to 2 cores),
    each replica within +-10 % of it, and in one Deployment in seven the first replica a leader
    running twice as hot (the imbalance that makes max-over-pods and busiest differ from pooled)."""
    base = 0.01 + 1.99 * _noise(workload, [0], 1)[:, 0]
    pod = 1 + 0.2 * (_noise(rows, [0], 5)[:, 0] - 0.5)
    leader = ((workload // 2) % 7 == 0) & (replica == 0)
    return base * pod * np.where(leader, 2.0, 1.0)


def _day(ts, phase=0.0):
    return np.sin(2 * np.pi * ts / 86400 + phase)[None, :]


def dataset(containers: int, clusters: int, days: float, end: int) -> Dataset:
    """Every series of the benchmark; ``containers`` per cluster, samples up to ``end`` (s)."""
    first = end - STEP * (int(days * 86400 // STEP) + 5)
    rows = {"containers": [], "owner": [], "info": [], "rs": [], "node": [], "alloc": []}
    workload, replica = [], []  # per container row: its (cluster, deployment, container) id and replica index
    for c in range(clusters):
        extra = {"cluster": f"c{c}"} if clusters > 1 else {}
        seen_rs = set()
        for ns, pod, rs, dep, node, names, r in layout(containers, f"c{c}"):
            rows["containers"] += [{**extra, "namespace": ns, "pod": pod, "container": n} for n in names]
            workload += [(c * 10**6 + int(dep.split("-")[1])) * 2 + j for j in range(len(names))]
            replica += [r] * len(names)
            rows["owner"].append({**extra, "namespace": ns, "pod": pod, "owner_kind": "ReplicaSet", "owner_name": rs})
            rows["info"].append({**extra, "namespace": ns, "pod": pod, "node": node})
            if rs not in seen_rs:
                seen_rs.add(rs)
                rows["rs"].append({**extra, "namespace": ns, "replicaset": rs, "owner_kind": "Deployment", "owner_name": dep})
        for i in range(50):
            rows["node"].append({**extra, "node": f"node-{i}", "label_topology_kubernetes_io_zone": f"z{i % 3}",
                                 "label_node_kubernetes_io_instance_type": "m5.2xlarge"})
            rows["alloc"].append({**extra, "node": f"node-{i}", "resource": "cpu"})

    level = _levels(np.array(workload), np.array(replica), np.arange(len(workload)))

    def cpu_millis(k, ts):
        return np.round(level[k][:, None] * (1 + 0.3 * _day(ts) + 0.1 * _noise(k, ts, 2)) * STEP * 1000).astype(np.int64)

    def memory(k, ts):
        return np.round(level[k][:, None] * 2**28 * (1 + 0.2 * _day(ts, 1.0) + 0.05 * _noise(k, ts, 3))).astype(np.int64)

    def periods(k, ts):  # 100 ms CFS periods, counted from the first sample
        return np.broadcast_to((ts - first) * 10, (len(k), len(ts)))

    def throttled(k, ts):
        return np.round(periods(k, ts) * 0.3 * _noise(k, [0], 4)).astype(np.int64)

    def const(v):
        return lambda k, ts: np.full((len(k), len(ts)), v)

    def group(name, kind, step, fn, **kw):
        return Group(name, rows[kind], np.arange(len(rows[kind])), step, fn, **kw)

    return Dataset([
        group("container_cpu_usage_seconds_total", "containers", STEP, cpu_millis, counter=True, scale=1000),
        group("container_memory_working_set_bytes", "containers", STEP, memory),
        group("container_cpu_cfs_periods_total", "containers", SLOW, periods),
        group("container_cpu_cfs_throttled_periods_total", "containers", SLOW, throttled),
        group("kube_pod_container_status_restarts_total", "containers", SLOW, const(0)),
        group("kube_pod_owner", "owner", SLOW, const(1)),
        group("kube_pod_info", "info", SLOW, const(1)),
        group("kube_replicaset_owner", "rs", SLOW, const(1)),
        group("kube_node_labels", "node", SLOW, const(1)),
        group("kube_node_status_allocatable", "alloc", SLOW, const(7.9)),
    ], first, end)


def samples(g: Group, keys: np.ndarray, ts: np.ndarray, carry: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """(values: rows x ts, carry for the next block). A counter's carry is its last integer
    value per row; integer sums are exact, so any cut into blocks gives the same samples."""
    v = g.fn(keys, ts)
    if g.counter:
        v = np.cumsum(v, axis=1) + (np.zeros(len(keys), np.int64) if carry is None else carry)[:, None]
        carry = v[:, -1] if v.shape[1] else carry
    return (v / g.scale if g.scale != 1 else v), carry


def check_blockwise() -> None:
    """Generating 2 h blocks must give exactly the samples of one whole-window pass (what
    VictoriaMetrics is loaded with); cheap enough to run before every Prometheus build."""
    ds = dataset(6, 2, 0.3, 10 * 86400 + 3600)
    lows = range(ds.first // BLOCK * BLOCK, ds.end + 1, BLOCK)
    for g in ds.groups:
        whole, _ = samples(g, g.keys, ds.times(g.step, ds.first, ds.end + 1))
        carry, parts = None, []
        for lo in lows:
            part, carry = samples(g, g.keys, ds.times(g.step, lo, lo + BLOCK), carry)
            parts.append(part)
        assert np.array_equal(whole, np.concatenate(parts, axis=1)), g.name


def _heads(g: Group) -> list[str]:
    return [g.name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "} " for labels in g.labels]


def write_block(ds: Dataset, heads: dict, lo: int, path: Path, carry: dict) -> int:
    """Write the samples in [lo, lo + BLOCK) as OpenMetrics; returns bytes written. One group is
    one metric family, written whole, because OpenMetrics forbids interleaving families."""
    with open(path, "w") as f:
        for g in ds.groups:
            ts = ds.times(g.step, lo, lo + BLOCK)
            if not len(ts):
                continue
            vals, carry[g.name] = samples(g, g.keys, ts, carry.get(g.name))
            tails = [f" {t}\n" for t in ts.tolist()]
            # The head is the separator of one join per series: the per-sample work left in
            # Python is a single f-string, which is what bounds the generator's speed.
            f.writelines(h + h.join([f"{v}{t}" for v, t in zip(row, tails)]) for h, row in zip(heads[g.name], vals.tolist()))
        f.write("# EOF\n")
        return f.tell()


def build_prometheus(args, work: Path, end: int) -> Path:
    """OpenMetrics one aligned 2 h block at a time, each backfilled by promtool (2 at a time) while
    the next is generated, and deleted once consumed.

    promtool re-reads its whole input once per 2 h block it writes, so a single 14-day file costs
    168 full parses; one file per block costs one."""
    check_blockwise()
    t0 = time.time()
    ds = dataset(args.containers, args.clusters, args.days, end)
    heads = {g.name: _heads(g) for g in ds.groups}
    blocks = work / "data"
    lows = range(ds.first // BLOCK * BLOCK, end + 1, BLOCK)

    def backfill(path):
        subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", "-q", str(path), str(blocks)], check=True,
                       stdout=subprocess.DEVNULL)
        os.unlink(path)

    carry, running, gen_s, total, peak = {}, {}, 0.0, 0, 0
    with ThreadPoolExecutor(2) as pool:
        for i, lo in enumerate(lows):
            t = time.time()
            path = work / f"block-{i:04d}.om"
            size = write_block(ds, heads, lo, path, carry)
            gen_s += time.time() - t
            total += size
            peak = max(peak, size + sum(running.values()))
            running[pool.submit(backfill, path)] = size
            while len(running) > 2:  # two promtools busy and this file queued: wait, keeping disk use bounded
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    fut.result()
                    del running[fut]
            if (i + 1) % max(len(lows) // 10, 1) == 0:
                print(f"  block {i + 1}/{len(lows)}: {time.time() - t0:.0f} s, {total / 2**30:.1f} GiB generated", flush=True)
        for fut in running:
            fut.result()
    print(f"generated {total / 2**30:.1f} GiB of OpenMetrics in {len(lows)} files ({gen_s:.0f} s of generation, at most "
          f"{peak / 2**30:.2f} GiB on disk at once); generated and backfilled in {time.time() - t0:.0f} s", flush=True)
    return blocks


def load_victoria(args, url: str, end: int) -> None:
    """Same samples as build_prometheus, one whole-window JSON line per series."""
    t0 = time.time()
    ds = dataset(args.containers, args.clusters, args.days, end)

    def post(body):
        requests.post(url + "/api/v1/import", data=body.encode(), timeout=600).raise_for_status()

    pending = []
    with ThreadPoolExecutor(2) as pool:
        for g in ds.groups:
            ts = ds.times(g.step, ds.first, end + 1)
            stamps = json.dumps((ts * 1000).tolist())
            for a in range(0, len(g.keys), 50):  # 50 fast series: a ~25 MB body
                vals, _ = samples(g, g.keys[a:a + 50], ts)
                body = "\n".join('{"metric":' + json.dumps({"__name__": g.name, **labels}) + ',"values":' + json.dumps(row)
                                 + ',"timestamps":' + stamps + "}" for labels, row in zip(g.labels[a:a + 50], vals.tolist()))
                pending.append(pool.submit(post, body))
                if len(pending) > 3:  # back-pressure: never more than a few bodies in memory
                    pending.pop(0).result()
        for f in pending:
            f.result()

    requests.get(url + "/internal/force_flush", timeout=60)
    time.sleep(2)
    print(f"loaded VictoriaMetrics in {time.time() - t0:.0f} s", flush=True)


def run_collect(args) -> None:
    """Child process (the code under test only: this tree, or --tree's): collect every cluster, print
    one JSON line of figures and the usage rows the accuracy check needs."""
    if args.tree:
        sys.path.insert(0, args.tree)
    import dataclasses
    import datetime as dt

    from rightsize.config import Config
    from rightsize.snapshot import Snapshot
    from rightsize.sources import prometheus as P
    from rightsize.targets import ClusterTarget

    c = Config()
    p = dataclasses.replace(c.prometheus, url=args.url, end=dt.datetime.fromtimestamp(args.end, dt.timezone.utc).isoformat(),
                            cluster_label="cluster" if args.clusters > 1 else "", concurrency=args.concurrency,
                            timeout=1800.0, compression=args.compression)
    if args.range_points:
        p = dataclasses.replace(p, range_points=args.range_points)
    step = args.step or c.general.step
    cfg = dataclasses.replace(c, general=dataclasses.replace(c.general, window=args.days * 86400.0, step=step), prometheus=p)
    snap, queries, total_requests = Snapshot(), [], 0
    t0 = time.time()
    for i in range(args.clusters):
        target = ClusterTarget(f"c{i}", args.url, label_value=f"c{i}" if args.clusters > 1 else "")
        client = P.Client(cfg, args.url)
        client.recorded = queries
        P.collect_usage(cfg, target, snap, progress=lambda m: None, client=client)
        total_requests += client.requests
    wall = time.time() - t0
    u = snap.tables["usage"]
    stats = [col for col in u.columns if col.startswith(("cpu_", "memory_")) and col.endswith(("_cores", "_bytes"))]
    print(json.dumps({"wall_seconds": wall, "peak_rss_bytes": _peak_rss(), "requests": total_requests, "usage_rows": len(u),
                      "usage": u[["cluster", "namespace", "workload", "container"] + stats].to_dict("list"),
                      "snapshot_tables": {k: len(v) for k, v in snap.tables.items() if len(v)}, "queries": queries}))


def _peak_rss() -> int:
    """Peak RSS of this process in bytes. VmHWM, not ru_maxrss: Linux carries ru_maxrss across
    execve, so a child started by a big parent would report the parent's peak."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# --- the truth ---------------------------------------------------------------------------------------

def truth(ds: Dataset, days: float, step: int, rows: int = 0) -> "pd.DataFrame":
    """Exact statistics of the window's samples per (cluster, namespace, deployment, container), from the
    generator's own numbers: CPU = (C(t) - C(t - 300 s)) / 300 s at every step t (what rate() over 5m
    gives on a 60 s grid), working set = the sample at t, the memory max over every raw sample.
    Quantiles as the member at rank floor(q x (n - 1)). ``rows`` > 0 checks only the workloads of
    the first ``rows`` container rows (the 10,000-container run)."""
    import pandas as pd

    cpu_g, mem_g = ds.groups[0], ds.groups[1]
    labels = pd.DataFrame(cpu_g.labels)
    labels["workload"] = labels["pod"].str.rsplit("-rs-", n=1).str[0]
    if "cluster" not in labels:
        labels["cluster"] = "c0"  # run_collect names a single cluster c0
    keys = ["cluster", "namespace", "workload", "container"]
    wanted = labels.iloc[:rows] if rows else labels
    wanted = labels.merge(wanted[keys].drop_duplicates(), on=keys)
    end = ds.end
    grid = end - step * np.arange(int(days * 86400 // step) - 1, -1, -1)
    out = []
    for key, grp in wanted.groupby(keys, sort=False):
        idx = grp.index.to_numpy()
        ts = ds.times(STEP, ds.first, end + 1)
        counter, _ = samples(cpu_g, idx, ts)
        mem, _ = samples(mem_g, idx, ts)
        at = np.searchsorted(ts, grid)
        cpu = (counter[:, at] - counter[:, at - RATE_STEPS]) / (RATE_STEPS * STEP)
        window = ts > end - days * 86400
        row = dict(zip(keys, key))
        for name, per_pod in (("cpu", cpu), ("memory", mem[:, at])):
            for q in (0.5, 0.9, 0.95, 0.99):
                row[f"{name}_pooled_{q}"] = _rank(per_pod.ravel(), q)
                row[f"{name}_max_over_pods_{q}"] = max(_rank(p, q) for p in per_pod)
                row[f"{name}_busiest_{q}"] = _rank(per_pod.max(axis=0), q)
        row["memory_max_open"] = float(mem[:, window].max())
        row["memory_max_closed"] = float(mem[:, ts >= end - days * 86400].max())
        row["replicas"] = len(idx)
        out.append(row)
    return pd.DataFrame(out)


RATE_STEPS = 5  # rate_window (5 m) in 60 s samples


def _rank(values: np.ndarray, q: float) -> float:
    v = np.sort(values)
    return float(v[int(np.floor(q * (len(v) - 1) + 1e-9))])


def accuracy(res: dict, exact: "pd.DataFrame", new: bool) -> list[str]:
    """Lines comparing the collected statistics with the exact ones."""
    import pandas as pd

    u = pd.DataFrame(res["usage"])
    m = exact.merge(u, on=["cluster", "namespace", "workload", "container"], how="left")
    lines = []
    if new:
        for basis in ("pooled", "max_over_pods", "busiest"):
            errs = np.concatenate([np.abs(m[f"{r}_{basis}_p{int(q * 100)}_{unit}"] / m[f"{r}_{basis}_{q}"] - 1)
                                   for r, unit in (("cpu", "cores"), ("memory", "bytes")) for q in (0.5, 0.9, 0.95, 0.99)])
            lines.append(f"{basis:>13} p50-p99, CPU and memory: {np.mean(errs <= 0.01):.1%} of {len(errs)} values within 1% "
                         f"(worst {np.nanmax(errs):.3%}; sketch bound 0.99%)")
        exact_max = (m["memory_max_bytes"] == m["memory_max_open"]) | (m["memory_max_bytes"] == m["memory_max_closed"])
        lines.append(f"memory max (raw samples): exact for {exact_max.sum()} of {len(m)} containers")
        got_p95 = m["cpu_pooled_p95_cores"]
    else:
        got_p95 = m["cpu_p95_cores"]  # the old default: p95 of the busiest replica at each step
    err = (got_p95 / m["cpu_pooled_0.95"] - 1)
    lines.append(f"default CPU statistic vs the true pooled p95: within 3% for {np.mean(err.abs() <= 0.03):.0%} of "
                 f"{len(m)} containers (median {err.median():+.1%}, worst {err.max():+.0%})")
    for reps in sorted(m["replicas"].unique()):
        e = err[m["replicas"] == reps]
        lines.append(f"    {reps} replica(s): median {e.median():+.1%} over {len(e)} containers")
    return lines


# --- the servers ------------------------------------------------------------------------------------

class Watch:
    """CPU seconds and RSS of a server process from /proc, sampled every 50 ms while a run goes on.
    RSS is all resident memory; RssAnon leaves out the mapped TSDB files (page cache the kernel can
    drop), which is the part that makes a server run out of memory."""

    def __init__(self, pid: int):
        self.pid, self.tick = pid, os.sysconf("SC_CLK_TCK")
        self.peak = self.start_rss = self._rss()
        self.peak_anon = self.start_anon = self._rss("RssAnon:")
        self.start_cpu = self._cpu()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _rss(self, field: str = "VmRSS:") -> int:
        for line in open(f"/proc/{self.pid}/status"):
            if line.startswith(field):
                return int(line.split()[1]) * 1024
        return 0

    def _cpu(self) -> float:
        fields = open(f"/proc/{self.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self.tick  # utime + stime

    def _poll(self):
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self._rss())
            self.peak_anon = max(self.peak_anon, self._rss("RssAnon:"))

    def stop(self) -> tuple[float, int, int, int]:
        """(CPU seconds, RSS at the start, peak RSS growth, peak anonymous RSS growth), seconds and bytes."""
        self._stop.set()
        self._thread.join()
        return self._cpu() - self.start_cpu, self.start_rss, self.peak - self.start_rss, self.peak_anon - self.start_anon


def wait_idle(server, quiet: float, limit: float = 3600.0) -> float:
    """Wait until the server's CPU stays under a tenth of a core for ``quiet`` seconds; returns the wait.
    After a backfill this is Prometheus merging its 2 h blocks (the compactor ticks every minute),
    which would otherwise compete with the timed queries for the 2 cores."""
    w, t0 = Watch(server.proc.pid), time.time()
    last, since = w._cpu(), time.time()
    while time.time() - t0 < limit:
        time.sleep(1)
        now = w._cpu()
        if now - last > 0.1:
            since = time.time()
        elif time.time() - since >= quiet:
            break
        last = now
    w.stop()
    return time.time() - t0


def start_server(engine: str, sub: Path, args, end: int):
    """A freshly started server on the benchmark's data (built or loaded the first time)."""
    from promservers import serve_prometheus, start_victoria

    if engine == "prometheus":
        data = sub / "data"
        if not data.exists():
            build_prometheus(args, sub, end)
            server = serve_prometheus(shutil.which("prometheus"), data, sub)
            print(f"[prometheus] compacted the backfilled blocks in {wait_idle(server, 75):.0f} s", flush=True)
            server.stop()
        return serve_prometheus(shutil.which("prometheus"), data, sub)
    fresh = not (sub / "vmdata").exists()
    server = start_victoria(None, sub)
    if fresh:
        load_victoria(args, server.url, end)
        server.stop()
        server = start_victoria(None, sub)
    return server


def measure(engine: str, sub: Path, args, end: int, tree: str) -> dict:
    """One collection (this tree, or the one in ``tree``) against a freshly started server."""
    server = start_server(engine, sub, args, end)
    try:
        wait_idle(server, 5, limit=120)
        cmd = [sys.executable, __file__, "--run-collect", "--url", server.url, "--end", str(end), "--containers",
               str(args.containers), "--days", str(args.days), "--clusters", str(args.clusters), "--concurrency", str(args.concurrency),
               "--step", str(args.step), "--compression", args.compression, "--tree", tree,
               "--range-points", str(args.range_points)]
        watch = Watch(server.proc.pid)
        out = subprocess.run(cmd, capture_output=True, text=True)
        cpu, rss0, growth, anon = watch.stop()
        if out.returncode:
            raise SystemExit(f"collect failed ({tree or 'this tree'}): {out.stderr[-2000:]}")
        res = json.loads(out.stdout.strip().splitlines()[-1])
        res.update(server_cpu_seconds=cpu, server_rss_start=rss0, server_rss_growth=growth, server_anon_growth=anon)
        return res
    finally:
        server.stop()


def baseline_tree(rev: str) -> str:
    """The rightsize package as of git revision ``rev``, unpacked into a temporary folder."""
    folder = tempfile.mkdtemp(prefix="rightsize-baseline-")
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "rightsize"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
    return folder


def report(engine: str, label: str, res: dict, exact, new: bool) -> None:
    print(f"[{engine}] {label}: collect wall {res['wall_seconds']:.1f} s | {res['requests']} HTTP requests | rightsize peak RSS "
          f"{res['peak_rss_bytes'] / 2**20:.0f} MiB | server CPU {res['server_cpu_seconds']:.1f} s | server RSS "
          f"{res['server_rss_start'] / 2**20:.0f} MiB at start, +{res['server_rss_growth'] / 2**20:.0f} MiB at its peak "
          f"(+{res['server_anon_growth'] / 2**20:.0f} MiB anonymous) | "
          f"{res['usage_rows']} usage rows", flush=True)
    if new:
        print(f"[{engine}] {label}: snapshot tables {res['snapshot_tables']}")
    if exact is not None:
        for line in accuracy(res, exact, new):
            print(f"[{engine}] {label}: {line}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--containers", type=int, default=1000)
    ap.add_argument("--days", type=float, default=14)
    ap.add_argument("--clusters", type=int, default=1, help="clusters in one store (cluster label), each with --containers")
    ap.add_argument("--engine", choices=("prometheus", "victoriametrics", "both"), default="prometheus")
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--step", type=float, default=0.0, help="query step in seconds (0 = [general] step's default); the data stays at 60 s")
    ap.add_argument("--compression", choices=("auto", "gzip", "none"), default="auto",
                    help="[prometheus] compression (auto = none here: the server is on 127.0.0.1)")
    ap.add_argument("--range-points", type=int, default=0, help="[prometheus] range_points (0 = the default)")
    ap.add_argument("--baseline", default="", help="also measure the rightsize of this git revision (e.g. 80fbd65), side by side")
    ap.add_argument("--accuracy-rows", type=int, default=2000, help="container rows whose workloads are checked against the truth (0 = all)")
    ap.add_argument("--workdir", default="", help="keep data here (reused when it exists)")
    ap.add_argument("--run-collect", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--tree", default="", help=argparse.SUPPRESS)
    ap.add_argument("--url", default="", help=argparse.SUPPRESS)
    ap.add_argument("--end", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.run_collect:
        return run_collect(args)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="rightsize-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    meta = work / "bench.json"
    end = json.loads(meta.read_text())["end"] if meta.exists() else (int(time.time()) // 3600) * 3600 - 3600
    meta.write_text(json.dumps({"end": end}))
    engines = ["victoriametrics", "prometheus"] if args.engine == "both" else [args.engine]
    print(f"{args.containers} containers x {args.days:g} d at 60 s x {args.clusters} cluster(s), query step "
          f"{args.step or 300:g} s; data in {work}", flush=True)
    t0 = time.time()
    exact = truth(dataset(args.containers, args.clusters, args.days, end), args.days, int(args.step or 300), args.accuracy_rows)
    print(f"exact statistics of {len(exact)} containers computed from the generator in {time.time() - t0:.0f} s", flush=True)
    old = baseline_tree(args.baseline) if args.baseline else ""
    for engine in engines:
        sub = work / f"{engine}-{args.containers}-{args.days:g}-{args.clusters}"
        sub.mkdir(exist_ok=True)
        if old:
            report(engine, f"baseline {args.baseline}", measure(engine, sub, args, end, old), exact, new=False)
        report(engine, "this tree", measure(engine, sub, args, end, ""), exact, new=True)
    if old:
        shutil.rmtree(old, ignore_errors=True)
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
