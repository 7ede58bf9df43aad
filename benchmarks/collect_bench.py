"""Benchmark: collect usage from a synthetic TSDB of configurable size; prints figures, asserts nothing.

    python3 benchmarks/collect_bench.py                      # 1,000 containers x 14 d at 60 s, Prometheus
    python3 benchmarks/collect_bench.py --engine victoriametrics --clusters 3
    python3 benchmarks/collect_bench.py --containers 10000   # CPU heavy: roughly 20 min to build on 2 cores

Prints: wall time of the collection, peak RSS of the rightsize process (the collection runs in a
child process so the data generator's memory is not counted), HTTP requests, and the server's own
time for the same queries replayed one by one with plain HTTP calls (and, on Prometheus, the
samples the server touched, from ``stats=all``).

Data: pods of 2 containers, Deployments of 2 replicas, 20 namespaces, 50 nodes. CPU and working
set are sampled every 60 s (the expensive part); kube-state-metrics series and the CFS / restart
counters every 240 s (inside Prometheus' 5 min lookback) to keep the build time sane on 2 cores.
Every sample is a pure function of (series, timestamp): noise comes from a hash, not from a
random generator's state, and the CPU counter is a running sum of integer millicore-seconds, so
it comes out the same whether summed over 14 days at once or 2 h at a time.
Prometheus gets the data through promtool, streamed: one OpenMetrics file per aligned 2 h block
is generated while promtool (two processes) backfills the previous ones, and each file is deleted
once consumed, so at most three blocks sit on disk at a time. 1,000 containers x 14 d is 62 M
samples, 6.4 GiB of text in 169 files (0.1 GiB on disk at once): ~20 s of CPU to format and
~120 s of promtool CPU, about 100 s wall on 2 cores; the build grows linearly with --containers.
VictoriaMetrics gets the same samples through /api/v1/import (JSON lines, one line per series),
far faster to load. Before timing, the benchmark waits until Prometheus has compacted the 2 h
blocks (its CPU stays idle past the compactor's one-minute tick): about 3 min at 10,000
containers the first time, nothing later, since the merged blocks stay in --workdir.
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


def layout(containers: int, cluster: str):
    """Yield (namespace, pod, replicaset, deployment, node, [container names])."""
    pods = max(containers // 2, 1)
    for i in range(pods):
        dep = i // 2
        ns = f"ns-{dep % 20:02d}"
        yield ns, f"app-{dep}-rs-{i % 2}", f"app-{dep}-rs", f"app-{dep}", f"node-{i % 50}", ["main", "sidecar"]


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


def _level(keys):
    """Mean CPU of each container, cores."""
    return 0.01 + 1.99 * _noise(keys, [0], 1)


def _day(ts, phase=0.0):
    return np.sin(2 * np.pi * ts / 86400 + phase)[None, :]


def dataset(containers: int, clusters: int, days: float, end: int) -> Dataset:
    """Every series of the benchmark; ``containers`` per cluster, samples up to ``end`` (s)."""
    first = end - STEP * (int(days * 86400 // STEP) + 5)
    rows = {"containers": [], "owner": [], "info": [], "rs": [], "node": [], "alloc": []}
    for c in range(clusters):
        extra = {"cluster": f"c{c}"} if clusters > 1 else {}
        seen_rs = set()
        for ns, pod, rs, dep, node, names in layout(containers, f"c{c}"):
            rows["containers"] += [{**extra, "namespace": ns, "pod": pod, "container": n} for n in names]
            rows["owner"].append({**extra, "namespace": ns, "pod": pod, "owner_kind": "ReplicaSet", "owner_name": rs})
            rows["info"].append({**extra, "namespace": ns, "pod": pod, "node": node})
            if rs not in seen_rs:
                seen_rs.add(rs)
                rows["rs"].append({**extra, "namespace": ns, "replicaset": rs, "owner_kind": "Deployment", "owner_name": dep})
        for i in range(50):
            rows["node"].append({**extra, "node": f"node-{i}", "label_topology_kubernetes_io_zone": f"z{i % 3}",
                                 "label_node_kubernetes_io_instance_type": "m5.2xlarge"})
            rows["alloc"].append({**extra, "node": f"node-{i}", "resource": "cpu"})

    def cpu_millis(k, ts):
        return np.round(_level(k) * (1 + 0.3 * _day(ts) + 0.1 * _noise(k, ts, 2)) * STEP * 1000).astype(np.int64)

    def memory(k, ts):
        return np.round(_level(k) * 2**28 * (1 + 0.2 * _day(ts, 1.0) + 0.05 * _noise(k, ts, 3))).astype(np.int64)

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
    """Child process: collect every cluster, print one JSON line of figures."""
    import dataclasses
    import datetime as dt

    from rightsize.config import Config
    from rightsize.snapshot import Snapshot
    from rightsize.sources import prometheus as P
    from rightsize.targets import ClusterTarget

    c = Config()
    p = dataclasses.replace(c.prometheus, url=args.url, end=dt.datetime.fromtimestamp(args.end, dt.timezone.utc).isoformat(),
                            cluster_label="cluster" if args.clusters > 1 else "", concurrency=args.concurrency,
                            engine="auto", timeout=1800.0, percentiles_from=args.percentiles_from, compression=args.compression,
                            **({"max_samples": args.max_samples} if args.max_samples else {}))
    step = args.step or c.general.step
    cfg = dataclasses.replace(c, general=dataclasses.replace(c.general, window=args.days * 86400.0, step=step), prometheus=p)
    snap = Snapshot()
    queries = []
    t0 = time.time()
    total_requests = 0
    for i in range(args.clusters):
        target = ClusterTarget(f"c{i}", args.url, label_value=f"c{i}" if args.clusters > 1 else "")
        client = P.Client(cfg, args.url)
        client.recorded = queries
        P.collect_usage(cfg, target, snap, progress=lambda m: None, client=client)
        total_requests += client.requests
    wall = time.time() - t0
    rss = _peak_rss()
    print(json.dumps({"wall_seconds": wall, "peak_rss_bytes": rss, "requests": total_requests, "usage_rows": len(snap.tables["usage"]),
                      "gzip": P._compress(cfg.prometheus.compression, args.url),
                      "shards": [v.get("shards") for k, v in snap.meta["sources"].items()], "queries": queries}))


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


def replay(url: str, queries: list, engine: str, compress: bool = True) -> tuple[float, float]:
    """The same queries (instant and range), one by one, with plain HTTP: (seconds, samples touched or NaN).

    Each answer is read in full, with the same Accept-Encoding as the collection, but not parsed."""
    total, samples = 0.0, float("nan")
    headers = {} if compress else {"Accept-Encoding": "identity"}
    for q in queries:
        if "start" in q:
            path, params = "/api/v1/query_range", {"query": q["query"], "start": q["start"], "end": q["end"], "step": q["step"]}
        else:
            path, params = "/api/v1/query", {"query": q["query"], "time": q["time"]}
        if engine == "prometheus" and "time" in q:
            params["stats"] = "all"
        t0 = time.time()
        r = requests.post(url + path, data=params, headers=headers, timeout=1800)
        body = r.content
        total += time.time() - t0
        # not asked of range queries: their stats count a step-invariant subexpression (the owner map) once per step
        st = json.loads(body).get("data", {}).get("stats", {}) if "stats" in params else {}
        if st:
            samples = (samples if samples == samples else 0.0) + st.get("samples", {}).get("totalQueryableSamples", 0.0)
    return total, samples


def wait_for_compaction(server, quiet: float = 75.0, limit: float = 3600.0) -> None:
    """Wait until Prometheus has merged the backfilled 2 h blocks, i.e. its CPU use stays under a
    tenth of a core for ``quiet`` seconds (longer than the compactor's one-minute tick, which also
    delays the first compaction after start): compaction rewrites the whole TSDB and would otherwise
    compete with the timed queries for the 2 cores. The merged blocks stay on disk for the next run."""
    tick = os.sysconf("SC_CLK_TCK")

    def cpu_seconds() -> float:
        fields = open(f"/proc/{server.proc.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick  # utime + stime

    t0 = time.time()
    last, since = cpu_seconds(), time.time()
    while time.time() - t0 < limit:
        time.sleep(3)
        now = cpu_seconds()
        if now - last > 0.3:  # more than 0.1 core over the 3 s
            since = time.time()
        elif time.time() - since >= quiet:
            break
        last = now
    text = requests.get(server.url + "/metrics", timeout=30).text
    blocks = next((line.split()[-1] for line in text.splitlines() if line.startswith("prometheus_tsdb_blocks_loaded ")), "?")
    print(f"[prometheus] {blocks} blocks after {time.time() - t0:.0f} s waiting for compaction to finish", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--containers", type=int, default=1000)
    ap.add_argument("--days", type=float, default=14)
    ap.add_argument("--clusters", type=int, default=1, help="clusters in one store (cluster label), each with --containers")
    ap.add_argument("--engine", choices=("prometheus", "victoriametrics", "both"), default="prometheus")
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--step", type=float, default=0.0, help="query step in seconds (0 = [general] step's default); the data stays at 60 s")
    ap.add_argument("--percentiles-from", choices=("auto", "instant", "range"), default="auto", help="[prometheus] percentiles_from")
    ap.add_argument("--compression", choices=("auto", "gzip", "none"), default="auto",
                    help="[prometheus] compression (auto = none here: the server is on 127.0.0.1)")
    ap.add_argument("--max-samples", type=int, default=0,
                    help="[prometheus] max_samples for rightsize (0 = the config default); raise it with the server's limit for 10k containers")
    ap.add_argument("--skip-replay", action="store_true", help="do not time the bare queries (halves the run time)")
    ap.add_argument("--workdir", default="", help="keep data here (reused when it exists)")
    ap.add_argument("--run-collect", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--url", default="", help=argparse.SUPPRESS)
    ap.add_argument("--end", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.run_collect:
        return run_collect(args)
    from promservers import serve_prometheus, start_victoria

    work = Path(args.workdir or tempfile.mkdtemp(prefix="rightsize-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    meta = work / "bench.json"
    end = json.loads(meta.read_text())["end"] if meta.exists() else (int(time.time()) // 3600) * 3600 - 3600
    meta.write_text(json.dumps({"end": end}))
    engines = ["victoriametrics", "prometheus"] if args.engine == "both" else [args.engine]
    step = f"{args.step:g} s" if args.step else "default"
    print(f"{args.containers} containers x {args.days:g} d at 60 s x {args.clusters} cluster(s), query step {step}, "
          f"percentiles {args.percentiles_from}; data in {work}", flush=True)
    for engine in engines:
        sub = work / f"{engine}-{args.containers}-{args.days:g}-{args.clusters}"
        sub.mkdir(exist_ok=True)
        if engine == "prometheus":
            data = sub / "data"
            if not data.exists():
                build_prometheus(args, sub, end)
            limit = ["--query.max-samples=%d" % args.max_samples] if args.max_samples else []
            server = serve_prometheus(shutil.which("prometheus"), data, sub, extra_args=limit)
        else:
            fresh = not (sub / "vmdata").exists()
            server = start_victoria(None, sub)
            if fresh:
                load_victoria(args, server.url, end)
        try:
            if engine == "prometheus":
                wait_for_compaction(server)
            cmd = [sys.executable, __file__, "--run-collect", "--url", server.url, "--end", str(end), "--containers",
                   str(args.containers), "--days", str(args.days), "--clusters", str(args.clusters), "--concurrency", str(args.concurrency),
                   "--max-samples", str(args.max_samples), "--step", str(args.step), "--percentiles-from", args.percentiles_from,
                   "--compression", args.compression]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True)
            res = json.loads(out.stdout.strip().splitlines()[-1])
            server_s, samples = (replay(server.url, res["queries"], engine, res["gzip"]) if not args.skip_replay
                                 else (float("nan"), float("nan")))
            print(f"[{engine}] collect wall {res['wall_seconds']:.1f} s | peak RSS {res['peak_rss_bytes'] / 2**20:.0f} MiB | "
                  f"HTTP requests {res['requests']} | shards {res['shards']} | usage rows {res['usage_rows']}")
            print(f"[{engine}] same {len(res['queries'])} queries replayed one by one: {server_s:.1f} s server time"
                  + (f", {samples / 1e6:.0f} M samples touched by the instant queries" if samples == samples else "")
                  + f" | collect / serial server time = {res['wall_seconds'] / max(server_s, 1e-9):.2f}", flush=True)
        finally:
            server.stop()
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
