"""recommend_bench.py --cluster N: the backtest on a generated cluster, this tree beside a git revision.

The cluster (tests/cluster_truth.py) is generated once into the work folder and read back as a user's
snapshot is (per-pod histograms streamed). "Before" is the rightsize package at the baseline revision,
run in its own interpreter on the same snapshot. Prints figures, asserts nothing.
"""
from __future__ import annotations

import dataclasses
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
    if args.slack:
        slack_parts(snap, train, test, cfg)
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


def _policies(cfg: Config, **changes) -> Config:
    """``cfg`` with these settings changed in every policy (a callable gets the policy, for per-policy values)."""
    return dataclasses.replace(cfg, policies={name: dataclasses.replace(p, **{k: v(p) if callable(v) else v for k, v in changes.items()})
                                              for name, p in cfg.policies.items()})


def _kind(policy) -> str:
    return "production" if policy.production else "non_production"


def _slack(bt: pd.DataFrame, resource: str) -> float:
    unit = "cores" if resource == "cpu" else "bytes"
    steps, req = bt[f"{resource}_pod_steps"].fillna(0.0), bt[f"{resource}_request_{unit}"]
    ok = (steps > 0) & (req > 0)
    return 1 - (bt[f"{resource}_mean_{unit}"] * steps)[ok].sum() / (req * steps)[ok].sum()


def slack_parts(snap: Snapshot, train, test, cfg: Config) -> None:
    """Where the slack comes from: each line adds one part of the defaults, replayed on the test days; then the
    production memory over its request, and what other statistics would give. README: Where the slack comes from."""
    bare = _policies(cfg, change_threshold=0.0, change_threshold_cpu=0.0, change_threshold_memory=0.0, min_cpu=0.0,
                     min_memory=0.0, margins=lambda p: {k: 0.0 for k in p.margins})
    floors = _policies(bare, min_cpu=lambda p: cfg.policies[_kind(p)].min_cpu, min_memory=lambda p: cfg.policies[_kind(p)].min_memory)
    on_request = _policies(floors, memory_limit=lambda p: "request" if p.memory_limit == "margin" else p.memory_limit,
                           margins=lambda p: cfg.policies[_kind(p)].margins)
    steps = [("the statistic alone, knowing the test week (the 14 days, no margin, floor or change threshold)", bare, snap),
             ("the same from the training week only", bare, train), ("+ floors (min_cpu, min_memory)", floors, train),
             ("+ margins on request and limit (memory_limit = request)", on_request, train),
             ("+ the change threshold", _policies(cfg, memory_limit=lambda p: "request" if p.memory_limit == "margin" else p.memory_limit), train),
             ("the defaults (production: memory margin on the limit)", cfg, train),
             ("defaults, production CPU at p90", _policies(cfg, cpu_request_percentile=lambda p: "p90" if p.production else p.cpu_request_percentile), train),
             ("defaults, production CPU at p50", _policies(cfg, cpu_request_percentile=lambda p: "p50" if p.production else p.cpu_request_percentile), train)]
    rows = []
    for label, c, source in steps:
        recs = recommend.recommend(source, c)
        bt = backtest.compare({"r": recs}, test)
        bt = bt[bt["policy"] != "today"].drop(columns="policy").merge(recs[KEY + ["policy", "memory_pattern", "cpu_pattern"]], on=KEY)
        prod = bt[bt["policy"] == "production"]
        rows.append({"step": label, "CPU slack": f"{_slack(bt, 'cpu'):.1%} ({_slack(prod, 'cpu'):.1%})",
                     "memory slack": f"{_slack(bt, 'memory'):.1%} ({_slack(prod, 'memory'):.1%})",
                     "predicted OOM kills": int(bt["predicted_oom"].sum()),
                     "production CPU pod-steps over request": f"{_over(prod, 'cpu'):.1%}"})
    with pd.option_context("display.width", 250, "display.max_colwidth", 100):
        print("slack of all containers (production's in brackets), replayed on the test days:\n")
        print(pd.DataFrame(rows).to_string(index=False))
    recs = recommend.recommend(train, cfg)
    bt = backtest.compare({"r": recs}, test)
    bt = bt[bt["policy"] != "today"].drop(columns="policy").merge(recs[KEY + ["policy", "memory_pattern", "cpu_pattern"]], on=KEY)
    prod = bt[bt["policy"] == "production"]
    share = prod["memory_share_over_request"].fillna(0.0)
    print(f"\nproduction memory above its request: {_over(prod, 'memory'):.2%} of pod-steps; {int((share > 0).sum())} of {len(prod)} "
          f"containers at least once, {int((share > 0.05).sum())} more than 5 % of the time, at most "
          f"{np.nanmax(prod['memory_peak_bytes'] / prod['memory_request_bytes']) - 1:.0%} above")
    _rounding(recs, test)
    for res in ("cpu", "memory"):
        parts = ", ".join(f"{pat} {_slack(part, res):.1%} ({len(part)})" for pat, part in prod.groupby(f"{res}_pattern"))
        print(f"production {res} slack per pattern: {parts}")


def _over(bt: pd.DataFrame, resource: str) -> float:
    steps = bt[f"{resource}_pod_steps"].fillna(0.0)
    return (bt[f"{resource}_share_over_request"].fillna(0.0) * steps).sum() / steps.sum()


def _rounding(recs: pd.DataFrame, test) -> None:
    """What rounding to friendly steps costs: the production changes without a floor above their statistic (no
    growth, OOM or throttling) replayed at their unrounded statistic (at least min_cpu / min_memory) instead."""
    settings = backtest.settings_of(recs)
    r = recs.set_index(KEY).loc[pd.MultiIndex.from_frame(settings[KEY])]
    plain = ((r["policy"] == "production") & (r["status"] == "change")
             & ~r["flags"].str.contains("memory_growth|oom_risk|throttled")).to_numpy()
    exact = settings.assign(cpu_request_cores=np.where(plain, np.maximum(r["cpu_basis_cores"], 0.01), settings["cpu_request_cores"]),
                            memory_request_bytes=np.where(plain, np.maximum(r["memory_basis_bytes"], 16 * MIB),
                                                          settings["memory_request_bytes"]))
    rounded, unrounded = backtest.replay(settings, test), backtest.replay(exact, test)
    print(f"rounding to friendly steps costs {100 * (_slack(rounded, 'cpu') - _slack(unrounded, 'cpu')):.1f} points of CPU slack "
          f"and {100 * (_slack(rounded, 'memory') - _slack(unrounded, 'memory')):.1f} of memory slack (all containers)")
