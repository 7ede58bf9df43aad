"""recommend_bench.py --cluster N: the backtest on a generated cluster, this tree beside a git revision.

The cluster (tests/cluster_truth.py) is generated once into the work folder and read back as a user's
snapshot is (per-pod histograms streamed). "Before" is the rightsize package at the baseline revision,
run in its own interpreter on the same snapshot. Prints figures, asserts nothing.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from cluster_truth import generate, layout
from rightsize.analysis import backtest_split, backtest, margins, recommend
from rightsize.emit.terminal import frontier_text
from rightsize.config import Config
from rightsize.quantity import MIB
from rightsize.snapshot import Snapshot

KEY = ["cluster", "namespace", "kind", "workload", "container"]


def snapshot_at(n: int, seed: int, workdir: str) -> tuple[Path, Snapshot]:
    """The generated cluster's snapshot, written once into ``workdir`` and read back with its histograms lazy."""
    path = Path(workdir or f"/tmp/rightsize-cluster-{n}-{seed}")
    if not (path / "meta.json").exists():
        t0 = time.perf_counter()
        snap, _ = generate(n, seed)
        snap.write(path)
        print(f"generated {n} containers (seed {seed}) in {time.perf_counter() - t0:.0f} s -> {path}")
    return path, Snapshot.read(path, lazy=("usage_histograms",))


def run_cluster(args, revision: str | None) -> None:
    path, snap = snapshot_at(args.cluster, args.seed, args.workdir)
    truth = pd.DataFrame([vars(c) for c in layout(args.cluster, args.seed)]).assign(cluster="gen")
    cfg = Config()
    t0 = time.perf_counter()
    train, test = backtest_split(snap, cfg, 7)
    split_s = time.perf_counter() - t0
    if args.sweep:
        sweep(train, test, cfg, args.cluster, args.seed)
        return
    t0 = time.perf_counter()
    recs = recommend.recommend(train, cfg)
    bt = backtest.compare({"recommended": recs}, test)
    print(f"{args.cluster} containers (seed {args.seed}), 14 days: recommend from the first 7, replay the last 7 "
          f"(split {split_s:.1f} s, recommend + replay {time.perf_counter() - t0:.1f} s)\n")
    runs = {"after": bt}
    if revision:
        with tempfile.TemporaryDirectory(prefix="rightsize-26-old-") as tmp:
            runs[f"before ({revision})"] = backtest_rows(path, revision, Path(tmp))
    print_rollups(runs)
    for label, table in runs.items():
        print_ooms(label, table, snap, truth)
    print_raised(recs)
    print_patterns(runs, recs, truth)


def backtest_rows(path: Path, revision: str, workdir: Path) -> pd.DataFrame:
    """The backtest table of the rightsize package at ``revision`` on the snapshot at ``path``."""
    from recommend_bench import OLD_BACKTEST, run_old

    return run_old(OLD_BACKTEST, path, revision, workdir)


def print_rollups(runs: dict) -> None:
    rows = []
    for label, table in runs.items():
        for r in backtest.rollup(table, []).to_dict("records"):
            t = table[table["policy"] == r["policy"]]
            over = (t["cpu_share_over_request"].fillna(0) * t["cpu_pod_steps"].fillna(0)).sum() / t["cpu_pod_steps"].fillna(0).sum()
            rows.append({"code": label, "requests": r["policy"], "containers": r["containers"],
                         "predicted OOM kills": r["predicted_ooms"], "OOM-killed in the test days": r["censored"],
                         "CPU slack": f"{r['cpu_slack']:.1%}", "memory slack": f"{r['memory_slack']:.1%}",
                         "containers over CPU request > 5 %": r["over_request"], "CPU pod-steps over request": f"{over:.1%}"})
    with pd.option_context("display.width", 250, "display.max_columns", 20):
        print(pd.DataFrame(rows).to_string(index=False))


def print_ooms(label: str, table: pd.DataFrame, snap: Snapshot, truth: pd.DataFrame) -> None:
    """Every predicted OOM kill of the recommendation, named: container, first test day at the limit, limit vs peak."""
    hit = table[(table["policy"] != "today") & table["predicted_oom"].astype(bool)]
    print(f"\n{label}: {len(hit)} predicted OOM kill(s) with the recommendation")
    if hit.empty:
        return
    daily = snap.tables["usage_daily"]
    daily = daily[daily["day"] >= pd.Timestamp(snap.meta["window_end"]) - pd.Timedelta(days=7)]
    peaks = daily.groupby(KEY + ["day"], observed=True)["memory_max_bytes"].max().reset_index()
    for r in hit.merge(truth[KEY + ["memory_pattern", "rollout_days", "restart_days", "memory_limit"]], on=KEY, how="left").itertuples():
        mine = peaks[(peaks["workload"] == r.workload) & (peaks["container"] == r.container) & (peaks["namespace"] == r.namespace)]
        first = mine[mine["memory_max_bytes"] >= r.memory_limit_bytes]["day"].min()
        print(f"  {r.namespace}/{r.kind}/{r.workload}:{r.container} ({r.memory_pattern}, rollouts every {r.rollout_days:g} d, "
              f"limit today {_mib(r.memory_limit)}): {str(first)[:10]} peak {_mib(r.memory_peak_bytes)} vs limit "
              f"{_mib(r.memory_limit_bytes)}{' (OOM-killed in the test days: censored)' if r.memory_censored else ''}")


def print_raised(recs: pd.DataFrame) -> None:
    raised = recs[recs["raised_by_backtest"] != ""]
    growing = recs["flags"].str.contains("memory_growth")
    print(f"\nthe recommendation (made from the first 7 days): {int(growing.sum())} growing working set(s) "
          f"({int((recs['memory_limit_action'] == 'keep_unset').sum())} left without a limit), "
          f"{len(raised)} value(s) raised by the self-check")
    for r in raised.itertuples():
        print(f"  {r.namespace}/{r.kind}/{r.workload}:{r.container}: {r.raised_by_backtest}")


def print_patterns(runs: dict, recs: pd.DataFrame, truth: pd.DataFrame) -> None:
    """Per generated memory pattern: containers, predicted OOMs and memory slack of the recommendation."""
    rows = []
    for label, table in runs.items():
        t = table[table["policy"] != "today"].merge(truth[KEY + ["memory_pattern"]], on=KEY)
        for pat, part in t.groupby("memory_pattern"):
            ok = part["memory_slack"].notna()
            req = (part["memory_request_bytes"] * part["memory_pod_steps"])[ok].sum()
            use = (part["memory_mean_bytes"] * part["memory_pod_steps"])[ok].sum()
            rows.append({"code": label, "memory pattern (generated)": pat, "containers": len(part),
                         "predicted OOMs": int(part["predicted_oom"].sum()), "memory slack": f"{1 - use / req:.1%}"})
    print()
    print(pd.DataFrame(rows).to_string(index=False))
    got = recs.merge(truth[KEY + ["memory_pattern"]], on=KEY, suffixes=("", "_generated"))
    print("\nmemory patterns found (columns) against those generated (rows), training days:")
    print(pd.crosstab(got["memory_pattern_generated"], got["memory_pattern"].replace("", "unknown")).to_string())


def sweep(train, test, cfg, n: int, seed: int) -> None:
    t0 = time.perf_counter()
    table = margins.frontier(train, test, cfg)
    print(f"margin frontier, {n} containers (seed {seed}): recommend from the first 7 days at every candidate margin, "
          f"replay the last 7 ({time.perf_counter() - t0:.0f} s)\n")
    print(frontier_text(table))
    chosen = margins.choose(table)
    print("\nchosen margins (smallest with 0 predicted OOM kills, 0 throttled and steps over request within the policy's share):")
    for policy, part in chosen.groupby("policy"):
        pairs = ", ".join(f"{r.resource}_{r.pattern} = {r.chosen:g}" for r in part.itertuples() if r.pattern != "unknown"
                          and not np.isnan(r.chosen))
        print(f"  [policies.{policy}] margins = {{{pairs}}}")


def _mib(v) -> str:
    return "none" if v is None or np.isnan(v) else f"{v / MIB:,.0f}Mi"
