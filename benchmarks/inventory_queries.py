"""Benchmark: the collection's inventory queries and their alternatives on a real Prometheus; prints each one's
wall time, server CPU (from /proc) and answer size, the median of 3. Asserts nothing.

    python3 benchmarks/collect_bench.py --containers 1000 --workdir /tmp/b1k      # builds the TSDB once
    python3 benchmarks/inventory_queries.py --workdir /tmp/b1k

An alternative is kept only where it answers the same question: the series API reads no sample but gives
labels only; count_over_time counts scrapes, where node hours need the step's.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

import requests  # noqa: E402

from collect_bench import Watch, wait_idle  # noqa: E402
from promservers import serve_prometheus  # noqa: E402
from rightsize.config import Config  # noqa: E402
from rightsize.sources.prometheus.promql import Queries, tagged  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", required=True, help="collect_bench.py's --workdir (its Prometheus TSDB)")
    ap.add_argument("--containers", type=int, default=1000)
    args = ap.parse_args()
    work = Path(args.workdir)
    end = json.loads((work / "bench.json").read_text())["end"]
    sub = work / f"prometheus-{args.containers}-14-1"
    server = serve_prometheus(shutil.which("prometheus"), sub / "data", sub)
    try:
        wait_idle(server, 5, limit=120)
        c = Config(); q = Queries(c.prometheus, 14*86400, 300)
        K = q.pod_key; m = c.prometheus.metrics; W = q.W
        rst = q.sel(m.restarts, None, containers=True)
        alts = {
          "daily (range 1d step)": ("range", tagged(q.daily_parts(None, 86400))),
          "per_pod (one query of every part)": ("instant", tagged(q.per_pod_parts(None, True))),
          "cluster (as is)": ("instant", q.cluster(True)),
          "restarts max - min (before)": ("instant", f"max by ({K}) (max_over_time({rst}[{W}]) - min_over_time({rst}[{W}]))"),
          "restarts round(increase) (now)": ("instant", f"round(max by ({K}) (increase({rst}[{W}])))"),
          "cfs 3 increases": ("instant", tagged({k: f"sum by ({K}) (increase({q.sel(getattr(m, f), None, containers=True)}[{W}]))" for k, f in (("p","cpu_periods"),("t","cpu_throttled_periods"),("s","cpu_throttled_seconds"))})),
          "requests last_over_time": ("instant", f"max by ({K}, resource) (last_over_time({q.sel(m.resource_requests, None, containers=True)}[{W}]))"),
          "requests series API": ("series", q.sel(m.resource_requests, None, containers=True)),
          "wss max daily (1d range)": ("range", f"max by ({K}) (max_over_time({q.sel(m.memory_working_set, None, containers=True)}[1d]))"),
          "node_hours subquery": ("instant", f"count_over_time((max by (node) ({q.cluster_sel(m.node_labels)}))[{W}:{q.S}])"),
          "node_hours count_over_time": ("instant", f"max by (node) (count_over_time({q.cluster_sel(m.node_labels)}[{W}]))"),
        }
        for name, (kind, query) in alts.items():
            res = []
            for _ in range(3):
                w = Watch(server.proc.pid); t = time.time()
                if kind == "instant":
                    r = requests.post(server.url + "/api/v1/query", data={"query": query, "time": end}, timeout=600)
                elif kind == "range":
                    r = requests.post(server.url + "/api/v1/query_range", data={"query": query, "start": end - 13*86400, "end": end, "step": 86400}, timeout=600)
                else:
                    r = requests.post(server.url + "/api/v1/series", data={"match[]": query, "start": end - 14*86400, "end": end}, timeout=600)
                wall = time.time() - t; cpu = w.stop()[0]
                res.append((wall, cpu, len(r.content), r.status_code))
            res.sort()
            print(f"{name:<28} wall {res[1][0]:5.2f} s  server CPU {res[1][1]:5.2f} s  {res[1][2]/1e6:6.2f} MB  {res[1][3]}", flush=True)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
