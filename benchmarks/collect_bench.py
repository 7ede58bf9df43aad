"""Benchmark: collect usage from a synthetic TSDB of configurable size; prints figures, asserts nothing.

    python3 benchmarks/collect_bench.py                      # 1,000 containers x 14 d at 60 s, Prometheus
    python3 benchmarks/collect_bench.py --engine victoriametrics --clusters 3
    python3 benchmarks/collect_bench.py --containers 10000   # CPU heavy: tens of minutes to build

Prints: wall time of the collection, peak RSS of the rightsize process (the collection runs in a
child process so the data generator's memory is not counted), HTTP requests, and the server's own
time for the same queries replayed one by one with plain HTTP calls (and, on Prometheus, the
samples the server touched, from ``stats=all``).

Data: pods of 2 containers, Deployments of 2 replicas, 20 namespaces. CPU and working set are
sampled every 60 s (the expensive part); kube-state-metrics series and the CFS / restart counters
every 240 s (inside Prometheus' 5 min lookback) to keep the build time sane on 2 cores.
Prometheus gets the data through promtool (OpenMetrics, two promtool processes in parallel);
VictoriaMetrics through /api/v1/import (JSON lines, one line per series, far faster to load).
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
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

SLOW = 240  # seconds between kube-state-metrics / CFS samples
BLOCK = 7200  # promtool block length, seconds


def layout(containers: int, cluster: str):
    """Yield (namespace, pod, replicaset, deployment, node, [container names])."""
    pods = max(containers // 2, 1)
    for i in range(pods):
        dep = i // 2
        ns = f"ns-{dep % 20:02d}"
        yield ns, f"app-{dep}-rs-{i % 2}", f"app-{dep}-rs", f"app-{dep}", f"node-{i % 50}", ["main", "sidecar"]


def series(containers: int, days: float, end: int, cluster: str, label: str):
    """Yield (name, labels dict, timestamps (s), values) for every series."""
    n = int(days * 86400 // 60) + 6
    ts = end - 60 * np.arange(n - 1, -1, -1, dtype=np.int64)
    slow = ts[ts % SLOW == 0]
    ones = np.ones(len(slow))
    extra = {label: cluster} if label else {}
    rng = np.random.default_rng(zlib.crc32(cluster.encode()))
    day = 2 * np.pi * ts / 86400
    seen_rs = set()
    for ns, pod, rs, dep, node, names in layout(containers, cluster):
        for c in names:
            base = {**extra, "namespace": ns, "pod": pod, "container": c}
            level = rng.uniform(0.01, 2.0)
            cpu = np.maximum(level * (1 + 0.3 * np.sin(day) + 0.1 * rng.random(n)), 0)
            yield "container_cpu_usage_seconds_total", base, ts, np.round(np.cumsum(cpu * 60), 3)
            yield "container_memory_working_set_bytes", base, ts, np.round(level * 2**28 * (1 + 0.2 * np.sin(day + 1) + 0.05 * rng.random(n)))
            periods = np.arange(len(slow)) * 2400.0
            yield "container_cpu_cfs_periods_total", base, slow, periods
            yield "container_cpu_cfs_throttled_periods_total", base, slow, np.round(periods * rng.uniform(0, 0.3))
            yield "kube_pod_container_status_restarts_total", base, slow, 0 * ones
        pl = {**extra, "namespace": ns, "pod": pod}
        yield "kube_pod_owner", {**pl, "owner_kind": "ReplicaSet", "owner_name": rs}, slow, ones
        yield "kube_pod_info", {**pl, "node": node}, slow, ones
        if rs not in seen_rs:
            seen_rs.add(rs)
            yield "kube_replicaset_owner", {**extra, "namespace": ns, "replicaset": rs, "owner_kind": "Deployment", "owner_name": dep}, slow, ones
    for i in range(50):
        yield "kube_node_labels", {**extra, "node": f"node-{i}", "label_topology_kubernetes_io_zone": f"z{i % 3}",
                                   "label_node_kubernetes_io_instance_type": "m5.2xlarge"}, slow, ones
        yield "kube_node_status_allocatable", {**extra, "node": f"node-{i}", "resource": "cpu"}, slow, 7.9 * ones


def _labels(name, labels):
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def build_prometheus(args, work: Path, end: int) -> Path:
    """OpenMetrics cut into one file per aligned 2 h block, then promtool on each (2 at a time).

    promtool re-reads its whole input once per 2 h block it writes, so a single 14-day file costs
    168 full parses; one file per block costs one."""
    t0 = time.time()
    first = end - int(args.days * 86400) - 600
    w0 = first // BLOCK * BLOCK
    bounds = np.arange(w0, end + BLOCK, BLOCK)
    files = [open(work / f"block-{i:04d}.om", "w") for i in range(len(bounds) - 1)]
    for c in range(args.clusters):
        for name, labels, ts, vals in series(args.containers, args.days, end, f"c{c}", "cluster" if args.clusters > 1 else ""):
            head = _labels(name, labels) + " "
            vs = vals.astype(np.int64).astype(str) if np.all(vals == np.round(vals)) else np.char.mod("%.3f", vals)
            tss = ts.astype(str)
            cuts = np.searchsorted(ts, bounds)
            for i in range(len(files)):
                a, b = cuts[i], cuts[i + 1]
                if b > a:
                    files[i].write("".join(f"{head}{v} {t}\n" for v, t in zip(vs[a:b], tss[a:b])))
    size = 0
    for f in files:
        f.write("# EOF\n")
        f.close()
        size += os.path.getsize(f.name)
    print(f"generated OpenMetrics in {time.time() - t0:.0f} s ({size / 2**30:.1f} GiB in {len(files)} files)", flush=True)
    t0 = time.time()
    blocks = work / "data"

    def backfill(path):
        subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", "-q", path, str(blocks)], check=True,
                       stdout=subprocess.DEVNULL)
        os.unlink(path)

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(backfill, [f.name for f in files]))
    print(f"promtool backfill in {time.time() - t0:.0f} s", flush=True)
    return blocks


def load_victoria(args, url: str, end: int) -> None:
    t0 = time.time()
    buf = []

    def post(body):
        requests.post(url + "/api/v1/import", data=body.encode(), timeout=600).raise_for_status()

    pending = []
    with ThreadPoolExecutor(2) as pool:
        for c in range(args.clusters):
            for name, labels, ts, vals in series(args.containers, args.days, end, f"c{c}", "cluster" if args.clusters > 1 else ""):
                buf.append(json.dumps({"metric": {"__name__": name, **labels}, "values": vals.tolist(), "timestamps": (ts * 1000).tolist()}))
                if len(buf) >= 200:
                    pending.append(pool.submit(post, "\n".join(buf)))
                    buf = []
                if len(pending) > 4:  # back-pressure: never more than a few bodies in memory
                    pending.pop(0).result()
        if buf:
            pending.append(pool.submit(post, "\n".join(buf)))
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
                            engine="auto", timeout=1800.0, **({"max_samples": args.max_samples} if args.max_samples else {}))
    cfg = dataclasses.replace(c, general=dataclasses.replace(c.general, window=args.days * 86400.0, step=args.step), prometheus=p)
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


def replay(url: str, queries: list, engine: str) -> tuple[float, float]:
    """The same instant queries, one by one, with plain HTTP: (seconds, samples touched or NaN)."""
    total, samples = 0.0, 0.0
    for q, at in queries:
        params = {"query": q, "time": at}
        if engine == "prometheus":
            params["stats"] = "all"
        t0 = time.time()
        r = requests.post(url + "/api/v1/query", data=params, timeout=1800)
        total += time.time() - t0
        body = r.json()
        st = body.get("data", {}).get("stats", {})
        samples += st.get("samples", {}).get("totalQueryableSamples", float("nan")) if st else float("nan")
    return total, samples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--containers", type=int, default=1000)
    ap.add_argument("--days", type=float, default=14)
    ap.add_argument("--clusters", type=int, default=1, help="clusters in one store (cluster label), each with --containers")
    ap.add_argument("--engine", choices=("prometheus", "victoriametrics", "both"), default="prometheus")
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--step", type=float, default=60.0, help="query step in seconds ([general] step); the data stays at 60 s")
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
    print(f"{args.containers} containers x {args.days:g} d at 60 s x {args.clusters} cluster(s), query step {args.step:g} s; data in {work}", flush=True)
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
                time.sleep(5)  # let startup compaction of the backfilled blocks settle before timing
            cmd = [sys.executable, __file__, "--run-collect", "--url", server.url, "--end", str(end), "--containers",
                   str(args.containers), "--days", str(args.days), "--clusters", str(args.clusters), "--concurrency", str(args.concurrency),
                   "--max-samples", str(args.max_samples), "--step", str(args.step)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True)
            res = json.loads(out.stdout.strip().splitlines()[-1])
            server_s, samples = replay(server.url, res["queries"], engine) if not args.skip_replay else (float("nan"), float("nan"))
            print(f"[{engine}] collect wall {res['wall_seconds']:.1f} s | peak RSS {res['peak_rss_bytes'] / 2**20:.0f} MiB | "
                  f"HTTP requests {res['requests']} | shards {res['shards']} | usage rows {res['usage_rows']}")
            print(f"[{engine}] same {len(res['queries'])} queries replayed one by one: {server_s:.1f} s server time"
                  + (f", {samples / 1e6:.0f} M samples touched" if samples == samples else "")
                  + f" | collect / serial server time = {res['wall_seconds'] / max(server_s, 1e-9):.2f}", flush=True)
        finally:
            server.stop()
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
