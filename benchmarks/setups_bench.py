"""Benchmark: the right numbers on the setups people run; prints figures, asserts nothing.

    python3 benchmarks/setups_bench.py --baseline 1eb3d4d          # this tree beside a revision
    python3 benchmarks/setups_bench.py --cost --workdir /work/bench/25-1k   # what measuring coverage costs

Figures, each from a real Prometheus backfilled with the tests' generator (tests/promdata.py), the code
under test in a child process (this tree, and with --baseline the rightsize package of that revision):

- coverage: the same cluster with 14 days of samples ("full") and with only the last 7 ("half") under a
  14-day window (small_cluster at 5-minute samples): node bill, idle capacity and cross-AZ per month;
- batch: 5-, 10- and 20-minute CronJob pods (cronjob_cluster, scraped every 60 s), with and without
  kube_pod_start_time / kube_pod_completion_time, collected at 60 s and 5-minute steps: average pods
  costed against the truth of the generator.

With --cost: on collect_bench.py's 1,000-container x 14-day TSDB (built once into --workdir, about 100 s on
2 cores), the server's evaluation time and samples read (Prometheus' stats=all) of each way to find the
first and last sample of the window.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]


def child(args) -> None:
    """In the tree under test: collect and analyze, print the figures as one JSON line."""
    if args.tree:
        sys.path.insert(0, args.tree)
    import dataclasses
    import datetime as dt

    from rightsize.api import analyze
    from rightsize.collect import collect
    from rightsize.config import Config

    c = Config()
    p = dataclasses.replace(c.prometheus, url=args.url, end=dt.datetime.fromtimestamp(args.end, dt.timezone.utc).isoformat(),
                            cluster_label="cluster", clusters=tuple(args.clusters.split(",")), retries=1, timeout=600.0)
    policies = {n: dataclasses.replace(pol, min_history=3600.0, min_samples=5) for n, pol in c.policies.items()}
    cfg = dataclasses.replace(c, general=dataclasses.replace(c.general, window=args.hours * 3600.0, step=args.step),
                              prometheus=p, policies=policies, pricing=dataclasses.replace(c.pricing, source="offline"),
                              kubernetes=dataclasses.replace(c.kubernetes, source="prometheus"))
    snap = collect(cfg, log=lambda m: None)
    a = analyze(snap, cfg)
    recs = a.recommendations
    batch = recs[recs["kind"] == "CronJob"].groupby(["cluster", "workload"])["average_pods"].first()
    print(json.dumps({
        "node_bill": a.idle.groupby("cluster")["usd_per_month"].sum().to_dict(),
        "idle": a.idle.groupby("cluster")["idle_usd_per_month"].sum().to_dict(),
        "cross_az": a.cross_az.groupby("cluster")["usd_per_month"].sum().to_dict() if len(a.cross_az) else {},
        "average_pods": {f"{c}/{w}": v for (c, w), v in batch.items()},
    }))


def run_tree(tree: str, url: str, end: int, hours: float, step: float, clusters: str) -> dict:
    cmd = [sys.executable, __file__, "--child", "--url", url, "--end", str(end), "--hours", str(hours), "--step", str(step),
           "--clusters", clusters] + (["--tree", tree] if tree else [])
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def coverage(trees, work: Path) -> None:
    from promdata import Clusters, Dataset, small_cluster
    from promservers import dataset_end, start_prometheus

    end = dataset_end() // 300 * 300
    data = Clusters(Dataset(end, 14 * 24 + 1, small_cluster(), interval=300, cluster_label="cluster", cluster="full"),
                    Dataset(end, 7 * 24, small_cluster(), interval=300, cluster_label="cluster", cluster="half"))
    server = start_prometheus(data, work / "coverage")
    try:
        print("\n7 of 14 days in the server, 14-day window (USD/month; full = 14 days of data)")
        print(f"{'code':<22}{'figure':<12}{'full':>10}{'half':>10}{'half/full':>11}")
        for label, tree in trees:
            res = run_tree(tree, server.url, end, 14 * 24, 300.0, "full,half")
            for figure in ("node_bill", "idle", "cross_az"):
                full, half = res[figure].get("full", float("nan")), res[figure].get("half", float("nan"))
                print(f"{label:<22}{figure:<12}{full:>10,.2f}{half:>10,.2f}{half / full:>10.1%}")
    finally:
        server.stop()


def batch(trees, work: Path) -> None:
    from promdata import Clusters, Dataset, cronjob_cluster
    from promservers import dataset_end, start_prometheus

    end, hours = dataset_end(), 24
    data = {"with": Dataset(end, hours + 1, cronjob_cluster(hours + 1), cluster_label="cluster", cluster="with"),
            "without": Dataset(end, hours + 1, cronjob_cluster(hours + 1), cluster_label="cluster", cluster="without",
                               drop=("kube_pod_start_time", "kube_pod_completion_time"))}
    truth: dict[str, float] = {}
    d = data["with"]
    for p in d.pods:
        s, e = d._life(p)
        start, stop = d.ts[s] - d.interval, d.ts[e - 1]
        truth[p.workload] = truth.get(p.workload, 0.0) + max(min(stop, end) - max(start, end - hours * 3600), 0) / (hours * 3600)
    server = start_prometheus(Clusters(*data.values()), work / "batch")
    try:
        print("\nCronJob pods of 5, 10 and 20 minutes, scraped every 60 s: average pods costed vs the truth")
        print(f"{'code':<22}{'step':>6}  {'start/completion':<18}{'workload':<12}{'costed':>8}{'truth':>8}{'error':>8}")
        for label, tree in trees:
            for step in (60.0, 300.0):
                res = run_tree(tree, server.url, end, hours, step, "with,without")["average_pods"]
                for cluster in ("with", "without"):
                    for w in ("every-5m", "every-10m", "every-20m"):
                        got = res.get(f"{cluster}/{w}", float("nan"))
                        print(f"{label:<22}{step:>5.0f}s  {cluster + ' metrics':<18}{w:<12}{got:>8.3f}{truth[w]:>8.3f}"
                              f"{got / truth[w] - 1:>+8.1%}")
    finally:
        server.stop()


def cost(work: Path) -> None:
    """Each way to find the window's first and last sample, on collect_bench.py's 1,000-container TSDB."""
    import types

    import requests

    import collect_bench as cb

    meta = work / "bench.json"
    end = json.loads(meta.read_text())["end"] if meta.exists() else (cb.time.time() // 3600) * 3600 - 3600
    meta.write_text(json.dumps({"end": int(end)}))
    args = types.SimpleNamespace(containers=1000, clusters=1, days=14.0)
    sub = work / "prometheus-1000-14-1"
    sub.mkdir(parents=True, exist_ok=True)
    server = cb.start_server("prometheus", sub, args, int(end))
    queries = {
        "nodes: first step (count(kube_node_labels) subquery)": "min_over_time(timestamp(count(kube_node_labels))[14d:5m])",
        "pods: first step (count(kube_pod_owner) subquery)": "min_over_time(timestamp(count(kube_pod_owner))[14d:5m])",
        "containers: first step (count(working set) subquery)":
            'min_over_time(timestamp(count(container_memory_working_set_bytes{container!=""}))[14d:5m])',
        "self-metric prometheus_tsdb_lowest_timestamp_seconds": "min(prometheus_tsdb_lowest_timestamp_seconds)",
    }
    try:
        print("\nfinding the first sample of a 14-day window, 1,000 containers (the server's evaluation time, "
              "Prometheus stats=all; median of 3)")
        print(f"{'query':<58}{'eval s':>9}  answer")
        for label, q in queries.items():
            runs = []
            for _ in range(3):
                r = requests.get(server.url + "/api/v1/query", params={"query": q, "time": str(int(end)), "stats": "all"}, timeout=600)
                data = r.json()["data"]
                runs.append((data.get("stats", {}).get("timings", {}).get("evalTotalTime", float("nan")), bool(data["result"])))
            runs.sort()
            print(f"{label:<58}{runs[1][0]:>9.3f}  {'a value' if runs[1][1] else 'nothing (the server does not scrape itself)'}")
        print("the containers' first and last steps come from the usage pulls themselves: 0 extra requests, 0 samples")
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="", help="also run the rightsize of this git revision (e.g. 1eb3d4d)")
    ap.add_argument("--cost", action="store_true", help="measure the coverage queries on the 1,000-container TSDB instead")
    ap.add_argument("--workdir", default="", help="keep data here (the --cost TSDB is reused when it exists)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--tree", default="", help=argparse.SUPPRESS)
    ap.add_argument("--url", default="", help=argparse.SUPPRESS)
    ap.add_argument("--end", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--hours", type=float, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--step", type=float, default=300.0, help=argparse.SUPPRESS)
    ap.add_argument("--clusters", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="rightsize-setups-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.cost:
        return cost(work)
    from collect_bench import baseline_tree

    old = baseline_tree(args.baseline) if args.baseline else ""
    trees = ([(f"baseline {args.baseline}", old)] if old else []) + [("this tree", "")]
    try:
        coverage(trees, work)
        batch(trees, work)
    finally:
        if old:
            shutil.rmtree(old, ignore_errors=True)
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
