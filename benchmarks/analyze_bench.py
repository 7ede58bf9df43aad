"""Benchmark: analyze, report and patch on a large synthetic snapshot; prints figures, asserts nothing.

The demo cluster is copied into many namespaces (and clusters) with its numbers and its per-pod tables
(usage_histograms, usage_daily: the density the demo has), so the tables have the shapes of a real
fleet. The snapshot is written once (kept in --workdir), then each command runs alone in a child
process of this tree (and, with --baseline, of an older revision), as a user would run it:

    python3 benchmarks/analyze_bench.py                                   # 100 copies of the demo: 3,500 containers
    python3 benchmarks/analyze_bench.py --copies 600 --baseline 1eb3d4d --repeat 3 --workdir /tmp/b21k
    python3 benchmarks/analyze_bench.py --copies 600 --self-check --repeat 3   # what the self-check costs analyze
    python3 benchmarks/analyze_bench.py --copies 1 --clusters 1 --self-check    # ... on the demo itself

Prints per command (analyze, report, patch): wall time, peak RSS, and each stage inside it (reading
the snapshot, analysis, report, patches); the sizes of report.html and report.md.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from collect_bench import baseline_tree, cli_child  # noqa: E402
from rightsize.config import Config  # noqa: E402
from rightsize.demo import generate  # noqa: E402
from rightsize.snapshot import Snapshot  # noqa: E402
from rightsize.sources.aws import collect_prices  # noqa: E402

NAMESPACED = {"workloads", "containers", "usage", "placement", "services", "namespaces", "series", "usage_histograms", "runtimes",
              "runtime_hourly",
              "usage_daily"}


def fleet(copies: int, clusters: int) -> Snapshot:
    """``copies`` copies of the demo's namespaces, spread over ``clusters`` clusters, per-pod tables included."""
    demo = generate()
    tables: dict[str, list[pd.DataFrame]] = {name: [] for name in demo.tables}
    for i in range(copies):
        cluster = f"c{i % clusters}"
        for name, df in demo.tables.items():
            if name == "series" or (name in ("nodes", "prices") and i >= clusters):
                continue
            part = df.copy()
            for col in ("cluster", "namespace"):
                if col in part and isinstance(part[col].dtype, pd.CategoricalDtype):
                    part[col] = part[col].astype(object)
            if "cluster" in part:
                part["cluster"] = cluster
            if name in NAMESPACED and "namespace" in part:
                part["namespace"] = part["namespace"] + f"-{i}"
            if name == "traffic":
                part["source_namespace"] = part["source_namespace"] + f"-{i}"
                part["destination_namespace"] = part["destination_namespace"] + f"-{i}"
            tables[name].append(part)
    out = {}
    for k, v in tables.items():
        if not v:
            continue
        frame = pd.concat(v, ignore_index=True)
        if k in ("usage_histograms", "usage_daily"):  # as collect writes them: names as categoricals
            for col in frame.columns:
                if frame[col].dtype == object:
                    frame[col] = frame[col].astype("category")
        out[k] = frame
    snap = Snapshot(tables=out, meta=demo.meta)
    snap.meta["clusters"] = sorted({f"c{i % clusters}" for i in range(copies)})
    return snap.validate()


def build(args, folder: Path) -> None:
    t = time.perf_counter()
    snap = fleet(args.copies, args.clusters)
    collect_prices(Config(), snap, offline=True)
    snap.write(folder)
    size = sum(f.stat().st_size for f in folder.glob("*.parquet")) / 2**20
    print(f"built snapshot: {len(snap.containers):,} containers, {len(snap.workloads):,} workloads, "
          f"{len(snap.usage_histograms):,} histogram rows, {len(snap.usage_daily):,} daily rows, {size:.0f} MiB of parquet "
          f"in {time.perf_counter() - t:.1f} s", flush=True)


def run_commands(snapshot: Path, out: Path, tree: str) -> dict:
    """analyze (into the run folder beside the snapshot, where it saves its analysis: emit/saved.py), then report
    and patch on that snapshot, as a weekly job runs them; the snapshot is hard-linked into the run folder."""
    results = {}
    run = out / "run"
    run.mkdir(parents=True, exist_ok=True)
    shutil.copytree(snapshot, run / "snapshot", copy_function=os.link)
    for command, extra in (("analyze", []), ("report", ["--out", str(out / "report")]),
                           ("patch", ["--out", str(out / "patches")])):
        results[command] = cli_child(None, tree, [command, "--snapshot", str(run / "snapshot"), "--quiet", *extra])
    results["html"] = (out / "report" / "report.html").stat().st_size
    results["md"] = (out / "report" / "report.md").stat().st_size
    results["open"] = open_seconds(out / "report" / "report.html")
    shutil.rmtree(out, ignore_errors=True)
    return results


OPEN_PROBE = """<script>(function(){function done(){var p=document.createElement('pre');p.id='opened';
p.textContent=JSON.stringify({ms:performance.now(),rows:document.querySelectorAll('table.paged tbody').length});
document.body.appendChild(p);}
if(window.rightsizeTablesPending&&window.rightsizeTablesPending()===0)done();else document.addEventListener('rightsize-tables-ready',done);
})();</script></body>"""


def open_seconds(html: Path) -> float:
    """Seconds from navigation start until report.html is drawn in headless Chromium, its paged tables
    decoded and their first pages drawn (the page's own clock, performance.now(), read by a probe script);
    NaN without chromium."""
    import json
    import re

    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import screenshot_report
    except ImportError:
        return float("nan")
    if not shutil.which("chromium") and not Path(screenshot_report.CHROMIUM).exists():
        return float("nan")
    probe = html.with_name("open-probe.html")
    probe.write_text(html.read_text().replace("</body>", OPEN_PROBE, 1))
    blank = html.with_name("blank.html")
    blank.write_text("<!DOCTYPE html><html><body>" + OPEN_PROBE)
    walls = {}
    for name, page in (("blank", blank), ("report", probe)):
        t = time.perf_counter()
        dom = screenshot_report.dump_dom(page, 1400, 1000, "--virtual-time-budget=30000")
        walls[name] = time.perf_counter() - t
    m = re.search(r'<pre id="opened">(.*?)</pre>', dom, re.S)
    if not m:
        return float("nan")
    # the browser's own start is the blank page's wall time: what is left is the report's
    print(f"  chromium: blank page {walls['blank']:.2f} s, report.html {walls['report']:.2f} s; the page's clock at "
          f"its tables drawn: {json.loads(m.group(1).replace('&quot;', chr(34)))['ms'] / 1000:.2f} s", flush=True)
    return walls["report"] - walls["blank"]


def show(label: str, runs: list[dict]) -> None:
    mib = 2**20

    def med(values):
        return float(np.median(values))

    total = med([sum(r[c]["wall"] for c in ("analyze", "report", "patch")) for r in runs])
    process = med([sum(r[c]["process_wall"] for c in ("analyze", "report", "patch")) for r in runs])
    peak = med([max(r[c]["peak_rss_bytes"] for c in ("analyze", "report", "patch")) for r in runs])
    print(f"[{label}] median of {len(runs)}: analyze + report + patch {total:.1f} s in all ({process:.1f} s as processes: "
          f"start, imports and exit included), peak RSS {peak / mib:.0f} MiB; "
          f"report.html {med([r['html'] for r in runs]) / mib:.2f} MiB (drawn in headless Chromium in "
          f"{med([r['open'] for r in runs]):.2f} s), report.md {med([r['md'] for r in runs]) / 1024:.0f} KiB")
    for c in ("analyze", "report", "patch"):
        stages = "; ".join(f"{st['stage']} {med([r[c]['stages'][i]['wall'] for r in runs]):.1f} s"
                           for i, st in enumerate(runs[0][c]["stages"]))
        print(f"[{label}]   {c:<8} {med([r[c]['wall'] for r in runs]):6.1f} s ({med([r[c]['process_wall'] for r in runs]):.1f} s as a "
              f"process; {med([r[c]['cpu'] for r in runs]):.1f} CPU-s, which a "
              f"loaded machine does not inflate as it does wall time), peak RSS "
              f"{med([r[c]['peak_rss_bytes'] for r in runs]) / mib:5.0f} MiB ({stages})", flush=True)


def self_check_cost(folder: Path, work: Path, repeat: int) -> None:
    """analyze and patch with the self-check (the default, [recommend] self_check_days = 7) and without it (0):
    the difference is what replaying the last days against every recommendation costs. analyze shares the
    pass over the histograms with the backtest's split; patch (no backtest) makes one of its own."""
    off = work / "no-self-check.toml"
    off.write_text("[recommend]\nself_check_days = 0\n")
    for command in ("analyze", "patch"):
        cpu = {}
        for label, extra in (("self-check on (7 days)", []), ("self-check off", ["--config", str(off)])):
            runs = [cli_child(None, "", [command, "--snapshot", str(folder), "--quiet", "--out", str(work / "out-sc"), *extra])
                    for _ in range(repeat)]
            shutil.rmtree(work / "out-sc", ignore_errors=True)
            cpu[label] = np.median([r["cpu"] for r in runs])
            stages = "; ".join(f"{st['stage']} {np.median([r['stages'][i]['wall'] for r in runs]):.2f} s"
                               for i, st in enumerate(runs[0]["stages"]))
            print(f"{command}, {label}: {cpu[label]:.2f} CPU-s, {np.median([r['wall'] for r in runs]):.2f} s wall, peak RSS "
                  f"{np.median([r['peak_rss_bytes'] for r in runs]) / 2**20:.0f} MiB ({stages}); median of {repeat}", flush=True)
        on, off_ = cpu.values()
        print(f"the self-check costs {command} {on - off_:+.2f} CPU-s ({(on - off_) / off_:+.0%}); CPU time, which a loaded machine "
              "does not inflate as it does wall time", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=100, help="copies of the demo's namespaces (35 containers each)")
    parser.add_argument("--clusters", type=int, default=3)
    parser.add_argument("--baseline", default="", help="also run the rightsize of this git revision (e.g. 1eb3d4d)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--workdir", default="", help="keep the snapshot here (reused when it exists)")
    parser.add_argument("--self-check", action="store_true", help="only: analyze with and without the self-check")
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="rightsize-analyze-bench-"))
    folder = work / f"snapshot-{args.copies}x{args.clusters}"
    if not (folder / "meta.json").exists():
        build(args, folder)
    if args.self_check:
        self_check_cost(folder, work, args.repeat)
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
        return
    old = baseline_tree(args.baseline) if args.baseline else ""
    trees = ([(f"baseline {args.baseline}", old)] if old else []) + [("this tree", "")]
    runs: dict[str, list] = {label: [] for label, _ in trees}
    for i in range(args.repeat):
        for label, tree in trees:
            runs[label].append(run_commands(folder, work / "out", tree))
            show(f"{label} #{i + 1}", runs[label][-1:])
    for label, _ in trees:
        show(label, runs[label])
    if old:
        shutil.rmtree(old, ignore_errors=True)
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
