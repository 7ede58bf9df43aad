"""Benchmark: one fleet report merged from many clusters' snapshots; prints figures, asserts nothing.

Builds ``--clusters`` snapshots (default 100) of about 1,000 containers each in a week folder: the demo
cluster's namespaces copied 29 times (35 x 29 = 1,015 containers), per-pod tables included, each written
with ``Snapshot.write`` under its own cluster name. Then runs, in a child process,

    rightsize report --snapshot <workdir>/2026-W47 --out <workdir>/out/fleet

and prints the wall time and the child's peak RSS (its VmHWM: the child's own, not what it inherited at
fork) against the targets (under 60 s and 2 GiB for 100 x 1,000), then the same run phase by phase (read
+ merge, analyze, write the report). The snapshots are kept in ``--workdir`` and reused by the next run
with the same sizes.

    python3 benchmarks/fleet_bench.py
    python3 benchmarks/fleet_bench.py --clusters 10 --workdir /tmp/fleet10
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rightsize.config import Config  # noqa: E402
from rightsize.demo import generate  # noqa: E402
from rightsize.snapshot import Snapshot  # noqa: E402
from rightsize.sources.aws import collect_prices  # noqa: E402

WEEK = "2026-W47"
NAMESPACED = {"workloads", "containers", "usage", "placement", "services", "namespaces", "usage_histograms", "usage_daily"}


def template(copies: int) -> Snapshot:
    """One cluster of ``copies`` copies of the demo's namespaces (cluster name 'template')."""
    demo = generate()
    collect_prices(Config(), demo, offline=True)
    tables: dict[str, list[pd.DataFrame]] = {name: [] for name in demo.tables}
    for i in range(copies):
        for name, df in demo.tables.items():
            if name == "series" or (name in ("nodes", "prices") and i > 0):
                continue
            part = df.copy()
            if name in NAMESPACED and "namespace" in part:
                part["namespace"] = part["namespace"].astype(str) + f"-{i}"
            if name == "traffic":
                part["source_namespace"] = part["source_namespace"] + f"-{i}"
                part["destination_namespace"] = part["destination_namespace"] + f"-{i}"
            tables[name].append(part)
    merged = {k: pd.concat(v, ignore_index=True) for k, v in tables.items() if v}
    for name in ("usage_histograms", "usage_daily"):  # as the collector keeps them: categorical names
        for col in ("cluster", "namespace", "kind", "workload", "container", "pod"):
            merged[name][col] = merged[name][col].astype("category")
    return Snapshot(tables=merged, meta=demo.meta).validate()


def build(workdir: Path, clusters: int, copies: int) -> Path:
    """The week folder with one snapshot per cluster (reused when it already has them all)."""
    week = workdir / WEEK
    stamp = workdir / "built.json"
    wanted = {"clusters": clusters, "copies": copies}
    if stamp.exists() and json.loads(stamp.read_text()) == wanted:
        print(f"reusing {clusters} cluster snapshots in {week}")
        return week
    t = time.perf_counter()
    base = template(copies)
    for i in range(clusters):
        name = f"cluster-{i:03d}"
        tables = {}
        for table, df in base.tables.items():
            df = df.copy()
            if "cluster" in df:
                if isinstance(df["cluster"].dtype, pd.CategoricalDtype):
                    df["cluster"] = df["cluster"].cat.rename_categories([name])
                else:
                    df["cluster"] = name
            tables[table] = df
        snap = Snapshot(tables=tables, meta={**base.meta, "clusters": [name], "warnings": list(base.meta["warnings"])})
        snap.write(week / name / "snapshot")
        if i == 0:
            size = sum(f.stat().st_size for f in (week / name / "snapshot").iterdir()) / 2**20
            print(f"one cluster: {len(base.containers):,} containers, {len(base.tables['usage_histograms']):,} histogram rows, "
                  f"{size:.1f} MiB on disk")
    stamp.write_text(json.dumps(wanted))
    print(f"built {clusters} cluster snapshots in {time.perf_counter() - t:.0f} s")
    return week


def vmhwm_mib() -> float:
    """Peak resident memory of this process since its exec (Linux /proc), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_report(week: str, out: str) -> None:
    """The CLI's fleet report in this (child) process; prints its exit code and peak memory as JSON."""
    from rightsize.cli import main as cli

    code = cli(["report", "--quiet", "--snapshot", week, "--out", out])
    print(json.dumps({"exit": code, "peak_mib": vmhwm_mib()}))


def phases(week: str, out: str) -> None:
    """Each phase of the fleet report on its own, in this (child) process."""
    from rightsize.api import analyze
    from rightsize.emit.report import write_report
    from rightsize.fleet import load_input

    config = Config()
    t = time.perf_counter()
    snap = load_input(week, config)
    print(f"  read + merge: {time.perf_counter() - t:.1f} s ({len(snap.containers):,} containers, "
          f"{len(snap.meta['fleet']['clusters'])} clusters) | peak RSS {vmhwm_mib():.0f} MiB")
    t = time.perf_counter()
    analysis = analyze(snap, config)
    print(f"  analyze: {time.perf_counter() - t:.1f} s | peak RSS {vmhwm_mib():.0f} MiB")
    t = time.perf_counter()
    write_report(snap, analysis, config, out)
    print(f"  report: {time.perf_counter() - t:.1f} s | peak RSS {vmhwm_mib():.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clusters", type=int, default=100)
    parser.add_argument("--copies", type=int, default=29, help="copies of the demo's 35 containers per cluster")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "rightsize-fleet-bench")
    parser.add_argument("--build-only", action="store_true", help="only build (or check) the cluster snapshots")
    parser.add_argument("--phases", nargs=2, metavar=("WEEK", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--run-report", nargs=2, metavar=("WEEK", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phases:
        return phases(*args.phases)
    if args.run_report:
        return run_report(*args.run_report)
    if args.build_only:
        build(args.workdir, args.clusters, args.copies)
        return
    # built in a child of its own: this process stays small, so the children measured below start small too
    subprocess.run([sys.executable, __file__, "--clusters", str(args.clusters), "--copies", str(args.copies),
                    "--workdir", str(args.workdir), "--build-only"], check=True)
    week, out = args.workdir / WEEK, args.workdir / "out"
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--run-report", str(week), str(out / "fleet")], cwd=ROOT,
                          capture_output=True, text=True)
    wall = time.perf_counter() - t
    result = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else {}
    if result.get("exit") not in (0, 3):
        sys.exit(f"rightsize report failed: {proc.stdout[-1000:]}{proc.stderr[-2000:]}")
    summary = json.loads((out / "fleet" / "summary.json").read_text())
    print(f"fleet report: {len(summary['by_cluster'])} clusters, {summary['totals']['containers']:,} containers: "
          f"{wall:.1f} s wall, peak RSS {result['peak_mib']:.0f} MiB (target < 60 s, < 2048 MiB)")
    print("phases (another child process):")
    subprocess.run([sys.executable, __file__, "--phases", str(week), str(out / "phases")], cwd=ROOT, check=True)


if __name__ == "__main__":
    main()
