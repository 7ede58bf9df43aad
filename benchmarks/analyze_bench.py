"""Benchmark: analyze + report + patches on a large synthetic snapshot; prints figures, asserts nothing.

The demo cluster is copied into many namespaces (and clusters) with its numbers, so the tables have
the shapes of a real fleet. Usage:

    python3 benchmarks/analyze_bench.py                      # 100 copies of the demo: 3,500 containers
    python3 benchmarks/analyze_bench.py --copies 600 --no-report
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rightsize.api import analyze  # noqa: E402
from rightsize.config import Config  # noqa: E402
from rightsize.demo import generate  # noqa: E402
from rightsize.emit.patches import write_patches  # noqa: E402
from rightsize.emit.report import write_report  # noqa: E402
from rightsize.snapshot import Snapshot  # noqa: E402
from rightsize.sources.aws import collect_prices  # noqa: E402

NAMESPACED = {"workloads", "containers", "usage", "placement", "services", "namespaces", "series"}


def fleet(copies: int, clusters: int) -> Snapshot:
    """``copies`` copies of the demo's namespaces, spread over ``clusters`` clusters."""
    demo = generate()
    tables: dict[str, list[pd.DataFrame]] = {name: [] for name in demo.tables}
    for i in range(copies):
        cluster = f"c{i % clusters}"
        for name, df in demo.tables.items():
            # the per-pod tables (usage_histograms, usage_daily) only feed the backtest: left out here, a
            # fleet this size has ~20 M histogram rows (collect_bench measures them)
            if name in ("series", "usage_histograms", "usage_daily") or (name in ("nodes", "prices") and i >= clusters):
                continue
            part = df.copy()
            if "cluster" in part:
                part["cluster"] = cluster
            if name in NAMESPACED and "namespace" in part:
                part["namespace"] = part["namespace"] + f"-{i}"
            if name == "traffic":
                part["source_namespace"] = part["source_namespace"] + f"-{i}"
                part["destination_namespace"] = part["destination_namespace"] + f"-{i}"
            tables[name].append(part)
    snap = Snapshot(tables={k: pd.concat(v, ignore_index=True) for k, v in tables.items() if v}, meta=demo.meta)
    snap.meta["clusters"] = sorted({f"c{i % clusters}" for i in range(copies)})
    return snap.validate()


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=100, help="copies of the demo's namespaces (35 containers each)")
    parser.add_argument("--clusters", type=int, default=3)
    parser.add_argument("--no-report", action="store_true", help="skip report.html/md and patches")
    args = parser.parse_args()
    config = Config()
    t = time.perf_counter()
    snap = fleet(args.copies, args.clusters)
    collect_prices(config, snap, offline=True)
    print(f"built snapshot: {len(snap.containers):,} containers, {len(snap.workloads):,} workloads, "
          f"{len(snap.traffic):,} traffic pairs in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    analysis = analyze(snap, config)
    print(f"analyze: {time.perf_counter() - t:.2f} s | peak RSS so far {peak_mib():.0f} MiB")
    if args.no_report:
        return
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        write_report(snap, analysis, config, Path(tmp) / "report")
        size = (Path(tmp) / "report" / "report.html").stat().st_size / 2**20
        md = (Path(tmp) / "report" / "report.md").stat().st_size / 1024
        print(f"report: {time.perf_counter() - t:.2f} s | report.html {size:.1f} MiB | report.md {md:.0f} KiB")
        t = time.perf_counter()
        result = write_patches(analysis.recommendations, snap, config, Path(tmp) / "patches")
        print(f"patches: {time.perf_counter() - t:.2f} s | {len(result.written):,} files")
    print(f"peak RSS: {peak_mib():.0f} MiB")


if __name__ == "__main__":
    main()
