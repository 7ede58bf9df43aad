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

STEP = 60  # seconds between CPU / working-set samples (--scrape)
SLOW = 240  # seconds between kube-state-metrics / CFS samples (the scrape interval when that is longer)
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
    rows = {"containers": [], "owner": [], "info": [], "rs": [], "node": [], "alloc": [], "requests": [], "limits": []}
    workload, replica = [], []  # per container row: its (cluster, deployment, container) id and replica index
    for c in range(clusters):
        extra = {"cluster": f"c{c}"} if clusters > 1 else {}
        seen_rs = set()
        for ns, pod, rs, dep, node, names, r in layout(containers, f"c{c}"):
            rows["containers"] += [{**extra, "namespace": ns, "pod": pod, "container": n} for n in names]
            for n in names:  # kube-state-metrics requests (CPU, memory) and a memory limit of each container
                rows["requests"] += [{**extra, "namespace": ns, "pod": pod, "container": n, "resource": res, "unit": unit}
                                     for res, unit in (("cpu", "core"), ("memory", "byte"))]
                rows["limits"].append({**extra, "namespace": ns, "pod": pod, "container": n, "resource": "memory", "unit": "byte"})
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
            rows["alloc"] += [{**extra, "node": f"node-{i}", "resource": res} for res in ("cpu", "memory")]

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

    def requests(k, ts):  # row 2i is container i's CPU request (1.5 x its level), 2i + 1 its memory request
        cont, memory_row = k // 2, k % 2 == 1
        v = np.where(memory_row, np.round(level[cont] * 2**28 * 1.5), np.round(level[cont] * 1.5, 3))
        return np.broadcast_to(v[:, None], (len(k), len(ts)))

    def limits(k, ts):  # the memory limit: twice the request
        return np.broadcast_to(np.round(level[k] * 2**28 * 3)[:, None], (len(k), len(ts)))

    def allocatable(k, ts):  # row 2i is node i's CPU (cores), 2i + 1 its memory (bytes): an m5.2xlarge
        return np.broadcast_to(np.where(k % 2 == 1, 32_000_000_000.0, 7.9)[:, None], (len(k), len(ts)))

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
        group("kube_node_status_allocatable", "alloc", SLOW, allocatable),
        group("kube_pod_container_resource_requests", "requests", SLOW, requests),
        group("kube_pod_container_resource_limits", "limits", SLOW, limits),
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
    from rightsize.quantity import format_duration
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


def run_plain(args) -> None:
    """Child process: a plain per-pod pull, to compare the server's cost with: the CPU-rate and working-set range
    queries of the collection's own plan (its shards and time chunks, the same concurrency), each answer parsed and
    reduced as the collection does; no inventory, daily or cluster-wide query. With ``--families all``, also every
    other per-pod series the collection reads, pulled the same plain way at the same step (counters as a rate over
    the rate window: restarts and the three CFS counters; gauges as they are: requests, limits, init requests and
    limits, container and init-container info, last terminated reason, pod start and completion times), so it
    touches the same data a collection does. One JSON line."""
    import dataclasses
    import datetime as dt

    from rightsize.config import Config
    from rightsize.quantity import format_duration
    from rightsize.snapshot import Snapshot
    from rightsize.sources import prometheus as P
    from rightsize.sources.prometheus import execute, labels, run as run_mod, usage
    from rightsize.targets import ClusterTarget

    c = Config()
    p = dataclasses.replace(c.prometheus, url=args.url, end=dt.datetime.fromtimestamp(args.end, dt.timezone.utc).isoformat(),
                            concurrency=args.concurrency, timeout=1800.0, compression=args.compression)
    cfg = dataclasses.replace(c, general=dataclasses.replace(c.general, window=args.days * 86400.0, step=args.step or c.general.step),
                              prometheus=p)
    t0 = time.time()
    client = P.Client(cfg, args.url)
    r = run_mod.start(cfg, ClusterTarget("c0", args.url), Snapshot(), client, lambda m: None, False, False)
    labels.read_labels(r)
    shards = execute.plan_shards(r.series_per_namespace, r.grid.n, p.range_points)
    extra = _plain_families(r.q.cfg.metrics) if args.families == "all" else {}
    tasks = [t for shard in shards for res in ("cpu", "memory", *extra) for t in execute.range_tasks(
        res, shard, sum(r.series_per_namespace[ns] for ns in shard), r.grid.n, p.range_points)]
    key = [r.labels.namespace, r.labels.pod, r.labels.container]

    def fetch(task):
        t = r.grid.first + task.first * r.grid.step
        if task.name in extra:
            sel = r.q.sel(extra[task.name][0], r.namespaces(task.namespaces), containers=extra[task.name][2])
            query = f"rate({sel}[{format_duration(r.q.cfg.rate_window)}])" if extra[task.name][1] else sel
            parse = client.query_range(query, t, t + (task.steps - 1) * r.grid.step, r.grid.step, key, timestamps=True, deferred=True)
            return execute.Later(lambda: len(parse()))
        parse = client.query_range(r.q.usage(task.name, r.namespaces(task.namespaces)), t, t + (task.steps - 1) * r.grid.step,
                                   r.grid.step, key, timestamps=True, deferred=True)
        return execute.Later(lambda: usage.reduce_chunk(parse(), task.name, r.grid, r.owners))

    execute.run(tasks, fetch, lambda task, part: None, concurrency=p.concurrency, allow_partial=False, log=lambda m: None)
    print(json.dumps({"wall_seconds": time.time() - t0, "requests": client.requests, "peak_rss_bytes": _peak_rss()}))


def _plain_families(m) -> dict[str, tuple[str, bool, bool]]:
    """The other per-pod series a collection reads (``m``: the metrics' names): name -> (metric, is a counter, has a
    container label)."""
    counters = {"restarts": m.restarts, "cfs_periods": m.cpu_periods, "cfs_throttled_periods": m.cpu_throttled_periods,
                "cfs_throttled_seconds": m.cpu_throttled_seconds}
    gauges = {"requests": m.resource_requests, "limits": m.resource_limits, "init_requests": m.init_resource_requests,
              "init_limits": m.init_resource_limits, "info": m.container_info, "init_info": m.init_container_info,
              "terminated": m.last_terminated_reason}
    pods = {"start_time": m.pod_start_time, "completion_time": m.pod_completion_time}
    return {**{k: (v, True, True) for k, v in counters.items()}, **{k: (v, False, True) for k, v in gauges.items()},
            **{k: (v, False, False) for k, v in pods.items()}}


def watched_child(server, argv: list[str], what: str) -> dict:
    """This script run as a child with ``argv`` while the server's CPU and RSS are watched: the child's JSON line
    with the server's figures added (server_cpu_seconds, server_rss_start, server_rss_growth, server_anon_growth)."""
    watch = Watch(server.proc.pid)
    out = subprocess.run([sys.executable, __file__, *argv], capture_output=True, text=True)
    cpu, rss0, growth, anon = watch.stop()
    if out.returncode:
        raise SystemExit(f"{what} failed: {out.stderr[-2000:]}")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res.update(server_cpu_seconds=cpu, server_rss_start=rss0, server_rss_growth=growth, server_anon_growth=anon)
    return res


def measure_plain(sub: Path, args, end: int) -> dict:
    """The plain pull (run_plain) against a freshly started Prometheus: its wall and the server's CPU and RSS."""
    server = start_server("prometheus", sub, args, end)
    try:
        wait_idle(server, 5, limit=120)
        res = watched_child(server, ["--run-plain", "--url", server.url, "--end", str(end), "--days", str(args.days),
                                     "--concurrency", str(args.concurrency), "--step", str(args.step), "--compression",
                                     args.compression, "--families", args.families], "plain pull")
        mib = 2**20
        print(f"[plain pull, {args.families} families] {res['wall_seconds']:.1f} s wall, {res['requests']} requests | server CPU {res['server_cpu_seconds']:.1f} "
              f"s, RSS {res['server_rss_start'] / mib:.0f} MiB at start, peak {(res['server_rss_start'] + res['server_rss_growth']) / mib:.0f} "
              f"MiB (+{res['server_anon_growth'] / mib:.0f} MiB anonymous)", flush=True)
        return res
    finally:
        server.stop()


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


# --- `rightsize run` and the other commands, stage by stage ------------------------------------------

STAGES = (  # (label, module, attribute): the functions `rightsize run` calls for each stage, timed where they are
    ("read snapshot", "rightsize.snapshot", "Snapshot.read"),
    ("collect", "rightsize.collect", "collect"),
    ("write snapshot", "rightsize.snapshot", "Snapshot.write"),
    ("analyze", "rightsize.analysis", "analyze"),
    ("read saved analysis", "rightsize.emit.saved", "read_saved"),  # report, patch: what analyze saved (none: a baseline)
    ("report", "rightsize.cli", "_write_report"),
    ("patch", "rightsize.cli", "_write_patches"),
    ("write report", "rightsize.emit.report", "write_report"),  # `run` writes its report and patches in one staged folder
    ("write patches", "rightsize.cli", "_patches_into"),
)


def _cpu_seconds() -> float:
    """User and system CPU seconds of this process and of its children it reaped (report's and patch's forked child)."""
    return sum(os.times()[:4])


def _clear_peak() -> None:
    """Reset this process' VmHWM to its current RSS (Linux >= 4.0), so the next read is one stage's peak."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def run_cli(args, argv: list[str]) -> None:
    """Child process: the rightsize CLI of this tree (or --tree's) with ``argv``; each stage's wall time and
    peak RSS are recorded around the function that does it (nothing else changes) and printed as one
    JSON line on stderr after the command."""
    if args.tree:
        sys.path.insert(0, args.tree)
    import functools
    import importlib

    stages: list[dict] = []

    def timed(label, fn):
        @functools.wraps(fn)
        def wrapper(*a, **kw):
            _clear_peak()
            t0 = time.time()
            try:
                return fn(*a, **kw)
            finally:
                stages.append({"stage": label, "start": t0, "wall": time.time() - t0, "peak_rss_bytes": _peak_rss()})
        return wrapper

    for label, module, attr in STAGES:
        try:
            owner = importlib.import_module(module)
        except ImportError:  # an older tree (--baseline) without this stage
            continue
        if "." in attr:
            owner, attr = getattr(owner, attr.split(".")[0]), attr.split(".")[1]
        setattr(owner, attr, timed(label, getattr(owner, attr)))
    try:  # the installed program (it skips the collection at exit), else an older tree's main
        from rightsize.__main__ import program

        sys.argv = ["rightsize", *argv]
    except ImportError:
        from rightsize.cli import main as cli_main

        program = functools.partial(cli_main, argv)

    t0, c0 = time.time(), _cpu_seconds()
    try:
        rc = program()
    finally:
        wall, cpu = time.time() - t0, _cpu_seconds() - c0  # CPU seconds: what a loaded machine does not inflate
    overall = max([s["peak_rss_bytes"] for s in stages] + [_peak_rss()])
    print("BENCH " + json.dumps({"rc": rc, "wall": wall, "cpu": cpu, "peak_rss_bytes": overall, "stages": stages}), file=sys.stderr)
    sys.exit(rc if rc in (0, 3, 4) else rc)


def run_config(args, url: str, end: int, path: Path) -> Path:
    """The config.toml of a benchmark run: the generated cluster, its window, the kube-state-metrics inventory."""
    import datetime as dt

    points = f"range_points = {args.range_points}\n" if args.range_points else ""
    step = f'step = "{int(args.step)}s"\n' if args.step else ""
    path.write_text(
        f'[general]\ncluster_name = "c0"\nwindow = "{int(args.days * 86400)}s"\n{step}'
        f'[prometheus]\nurl = "{url}"\nend = "{dt.datetime.fromtimestamp(end, dt.timezone.utc).isoformat()}"\n'
        f'timeout = "30m"\nconcurrency = {args.concurrency}\ncompression = "{args.compression}"\n{points}'
        '[kubernetes]\nsource = "prometheus"\n[pricing]\nsource = "offline"\n')
    return path


def cli_child(args, tree: str, argv: list[str]) -> dict:
    """Run one rightsize command in a child process; its BENCH line (stages, wall, peak RSS)."""
    cmd = [sys.executable, __file__, "--run-cli", "--tree", tree, "--", *argv]
    t0 = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True)
    process_wall = time.time() - t0
    lines = [line for line in out.stderr.splitlines() if line.startswith("BENCH ")]
    if not lines or json.loads(lines[-1][6:])["rc"] not in (0, 3, 4):
        raise SystemExit(f"rightsize {argv[0]} failed ({tree or 'this tree'}): {out.stderr[-3000:]}")
    # the command's own wall leaves out the interpreter's start, the imports and the exit: a user waits for them too
    return {**json.loads(lines[-1][6:]), "process_wall": process_wall}


def measure_run(sub: Path, args, end: int, tree: str) -> dict:
    """`rightsize run` against a freshly started Prometheus, then `analyze`, `report` and `patch` alone on
    the snapshot it wrote; the server's CPU and RSS over the run."""
    out = sub / "run-out"
    shutil.rmtree(out, ignore_errors=True)
    server = start_server("prometheus", sub, args, end)
    try:
        wait_idle(server, 5, limit=120)
        cfg = run_config(args, server.url, end, sub / "run-config.toml")
        watch = Watch(server.proc.pid)
        res = cli_child(args, tree, ["run", "--config", str(cfg), "--out", str(out), "--quiet"])
        res["server_cpu_seconds"], res["server_rss_start"], res["server_rss_growth"], res["server_anon_growth"] = watch.stop()
        res["server_rss_peak"] = res["server_rss_start"] + res["server_rss_growth"]
    finally:
        server.stop()
    res["alone"] = {}
    for command, extra in (("analyze", ["--out", str(out / "alone-analyze")]), ("report", ["--out", str(out / "alone-report")]),
                           ("patch", ["--out", str(out / "alone-patches")])):
        res["alone"][command] = cli_child(args, tree, [command, "--config", str(cfg), "--snapshot", str(out / "snapshot"),
                                                        "--quiet", *extra])
    res["report_html_bytes"] = (out / "report.html").stat().st_size
    shutil.rmtree(out, ignore_errors=True)
    return res


def print_run(label: str, res: dict) -> None:
    mib = 2**20
    print(f"[run] {label}: rightsize run {res['wall']:.1f} s wall ({res['process_wall']:.1f} s as a process: start, imports and exit "
          f"included), peak RSS {res['peak_rss_bytes'] / mib:.0f} MiB | server CPU "
          f"{res['server_cpu_seconds']:.1f} s, RSS {res['server_rss_start'] / mib:.0f} MiB at start, peak {res['server_rss_peak'] / mib:.0f} MiB "
          f"(+{res['server_anon_growth'] / mib:.0f} MiB anonymous) | report.html {res['report_html_bytes'] / mib:.1f} MiB", flush=True)
    for st in res["stages"]:
        print(f"[run] {label}:   {st['stage']:<15} {st['wall']:6.1f} s  peak RSS {st['peak_rss_bytes'] / mib:5.0f} MiB", flush=True)
    for command, r in res["alone"].items():
        print(f"[run] {label}: rightsize {command:<8} alone {r['wall']:6.1f} s ({r['process_wall']:.1f} s as a process)  peak RSS {r['peak_rss_bytes'] / mib:5.0f} MiB", flush=True)


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
        rate_steps = RATE_WINDOW // STEP
        cpu = (counter[:, at] - counter[:, at - rate_steps]) / (rate_steps * STEP)
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


RATE_WINDOW = 300  # seconds, [prometheus] rate_window


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
        return watched_child(server, ["--run-collect", "--url", server.url, "--end", str(end), "--containers", str(args.containers),
                                      "--days", str(args.days), "--clusters", str(args.clusters), "--concurrency",
                                      str(args.concurrency), "--step", str(args.step), "--compression", args.compression,
                                      "--tree", tree, "--range-points", str(args.range_points)],
                             f"collect ({tree or 'this tree'})")
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
    ap.add_argument("--scrape", type=int, default=60, choices=(60, 300), help="seconds between CPU / working-set samples")
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
    ap.add_argument("--command", choices=("collect", "run", "plain"), default="collect",
                    help="collect: the usage collection alone (with accuracy); run: `rightsize run` stage by stage, then "
                         "analyze, report and patch alone on its snapshot (Prometheus only); plain: a plain per-pod pull of "
                         "the same data (see --families), the server's cost to compare with")
    ap.add_argument("--families", choices=("usage", "all"), default="usage",
                    help="the plain pull's series: usage (the CPU-rate and working-set range queries only) or all (every "
                         "per-pod series the collection reads, each pulled plainly at the query step)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each measurement (each against a freshly started server)")
    ap.add_argument("--run-collect", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--run-cli", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--run-plain", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("cli_argv", nargs="*", help=argparse.SUPPRESS)
    ap.add_argument("--tree", default="", help=argparse.SUPPRESS)
    ap.add_argument("--url", default="", help=argparse.SUPPRESS)
    ap.add_argument("--end", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    global STEP, SLOW
    STEP, SLOW = args.scrape, max(SLOW, args.scrape)
    if args.run_collect:
        return run_collect(args)
    if args.run_cli:
        return run_cli(args, args.cli_argv)
    if args.run_plain:
        return run_plain(args)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="rightsize-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    meta = work / "bench.json"
    end = json.loads(meta.read_text())["end"] if meta.exists() else (int(time.time()) // 3600) * 3600 - 3600
    meta.write_text(json.dumps({"end": end}))
    engines = ["victoriametrics", "prometheus"] if args.engine == "both" else [args.engine]
    print(f"{args.containers} containers x {args.days:g} d at {STEP} s x {args.clusters} cluster(s), query step "
          f"{args.step or 300:g} s; data in {work}", flush=True)
    old = baseline_tree(args.baseline) if args.baseline else ""
    trees = ([(f"baseline {args.baseline}", old)] if old else []) + [("this tree", "")]
    if args.command == "plain":
        sub = work / (f"prometheus-{args.containers}-{args.days:g}-{args.clusters}" + (f"-s{STEP}" if STEP != 60 else ""))
        sub.mkdir(exist_ok=True)
        for _ in range(args.repeat):
            measure_plain(sub, args, end)
    elif args.command == "run":
        sub = work / (f"prometheus-{args.containers}-{args.days:g}-{args.clusters}" + (f"-s{STEP}" if STEP != 60 else ""))
        sub.mkdir(exist_ok=True)
        results: dict[str, list] = {label: [] for label, _ in trees}
        for i in range(args.repeat):
            for label, tree in trees:
                results[label].append(measure_run(sub, args, end, tree))
                print_run(f"{label} #{i + 1}", results[label][-1])
        for label, runs in results.items():
            print_run(f"{label} median of {len(runs)}", median_run(runs))
    else:
        t0 = time.time()
        exact = truth(dataset(args.containers, args.clusters, args.days, end), args.days, int(args.step or 300), args.accuracy_rows)
        print(f"exact statistics of {len(exact)} containers computed from the generator in {time.time() - t0:.0f} s", flush=True)
        for engine in engines:
            sub = work / (f"{engine}-{args.containers}-{args.days:g}-{args.clusters}" + (f"-s{STEP}" if STEP != 60 else ""))
            sub.mkdir(exist_ok=True)
            for label, tree in trees:
                for _ in range(args.repeat):
                    report(engine, label, measure(engine, sub, args, end, tree), exact, new=not tree)
    if old:
        shutil.rmtree(old, ignore_errors=True)
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


def median_run(runs: list[dict]) -> dict:
    """Every figure of several runs replaced by its median (stages matched by position)."""
    def med(values):
        return float(np.median(values))

    out = {k: med([r[k] for r in runs]) for k in ("wall", "process_wall", "peak_rss_bytes", "server_cpu_seconds", "server_rss_start",
                                                 "server_rss_peak", "server_anon_growth", "report_html_bytes")}
    out["stages"] = [{"stage": st["stage"], "wall": med([r["stages"][i]["wall"] for r in runs]),
                      "peak_rss_bytes": med([r["stages"][i]["peak_rss_bytes"] for r in runs])} for i, st in enumerate(runs[0]["stages"])]
    out["alone"] = {c: {k: med([r["alone"][c][k] for r in runs]) for k in ("wall", "process_wall", "peak_rss_bytes")}
                    for c in runs[0]["alone"]}
    return out

if __name__ == "__main__":
    main()
