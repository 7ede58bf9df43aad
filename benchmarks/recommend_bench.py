"""Benchmark: recommendations against known true demand, today's rule (a git revision) beside the new one.

tests/censored_truth.py generates containers with known demand (spike OOMs at 1.2-1.8x the memory
limit, leaks to the limit, CPU throttled with hidden demand, bursty, diurnal, weekly, CronJobs) and
the usage table a real collection would write from them (working set and CPU never above their
limits, throttled share and seconds). Both rules recommend from that table; the truth scores them:

- OOM-killed containers whose recommended memory limit is still below their true peak (goal 0);
- throttled containers (> 5% of CFS periods) left with a CPU limit below their true p95 demand (goal 0);
- relative slack of the recommended requests against the true demand, (request - demand) / request
  averaged over every 5-minute step (Autopilot's measure; negative = demand above the request), for
  today's requests, the old rule and the new one.

    python3 benchmarks/recommend_bench.py                       # 100 containers per scenario, old = merge-base with main
    python3 benchmarks/recommend_bench.py --per-scenario 300 --baseline 80fbd65
    python3 benchmarks/recommend_bench.py --no-baseline         # the new rule only
    python3 benchmarks/recommend_bench.py --sweep               # how the OOM escalation's settings were chosen

With ``--cluster N`` it runs on a generated cluster of N containers instead (tests/cluster_truth.py:
replicas, rollouts, restarts, DaemonSets, CronJobs, flat / diurnal / bursty / weekly / growing usage, per-pod
histograms written by the collector's reducer): the backtest (recommend from the first 7 days, replay the
last 7) of today's requests and of the recommendation, this tree beside a git revision, with every
predicted OOM kill named and what the self-check raised; with ``--sweep`` the margin frontier per policy,
resource and usage pattern (slack against predicted OOMs and steps over request), the chosen margins.

    python3 benchmarks/recommend_bench.py --cluster 1000 --seed 7 --baseline e1f88be
    python3 benchmarks/recommend_bench.py --cluster 10000 --seed 26 --sweep --no-baseline   # how margins were chosen
    python3 benchmarks/recommend_bench.py --cluster 1000 --seed 7 --slack --no-baseline     # where the slack comes from

Prints figures, asserts nothing.
"""
from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from censored_truth import SCENARIOS, generate  # noqa: E402
from rightsize.analysis.recommend import recommend  # noqa: E402
from rightsize.config import Config  # noqa: E402

KEY = ["cluster", "namespace", "kind", "workload", "container"]
OLD_RUNNER = """
import sys
import pandas as pd
from rightsize.analysis.recommend import recommend
from rightsize.config import Config
from rightsize.snapshot import Snapshot
recommend(Snapshot.read(sys.argv[1]), Config()).to_parquet(sys.argv[2])
"""
OLD_BACKTEST = """
import sys
from rightsize.analysis import run_backtest
from rightsize.config import Config
from rightsize.snapshot import Snapshot
table, why = run_backtest(Snapshot.read(sys.argv[1], lazy=("usage_histograms",)), Config(), 7)
assert not why, why
table.to_parquet(sys.argv[2])
"""


def baseline_revision(wanted: str | None) -> str:
    rev = wanted or subprocess.run(["git", "merge-base", "HEAD", "main"], cwd=ROOT, capture_output=True, text=True,
                                   check=True).stdout.strip()
    return subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()


def old_recommendations(snapshot, revision: str, workdir: Path) -> pd.DataFrame:
    """Recommendations of the rightsize package as it is at ``revision``, in a separate interpreter."""
    snapshot.write(workdir / "snapshot")
    return run_old(OLD_RUNNER, workdir / "snapshot", revision, workdir)


def run_old(script: str, snapshot_path: Path, revision: str, workdir: Path) -> pd.DataFrame:
    """``script`` (argv: snapshot folder, output parquet) run by the rightsize package as it is at ``revision``."""
    archive = subprocess.run(["git", "archive", "--format=tar", revision, "rightsize"], cwd=ROOT,
                             capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(workdir / "old", filter="data")
    out = workdir / "old.parquet"
    subprocess.run([sys.executable, "-c", script, str(snapshot_path), str(out)], check=True, cwd=workdir,
                   env={"PYTHONPATH": str(workdir / "old"), "PATH": "/usr/bin:/bin"})
    return pd.read_parquet(out)


def requests_or_current(recs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Requests as they would be after applying: the recommendation, else today's value."""
    cpu = recs["cpu_request_cores_recommended"].fillna(recs["cpu_request_cores_current"]).to_numpy(dtype=float)
    mem = recs["memory_request_bytes_recommended"].fillna(recs["memory_request_bytes_current"]).to_numpy(dtype=float)
    return cpu, mem


def limits_after(recs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(CPU limit, memory limit) after applying: removed = inf, unset = inf, no recommendation = today's."""
    action = recs["cpu_limit_action"].to_numpy()
    cur_cpu = recs["cpu_limit_cores_current"].to_numpy(dtype=float)
    cpu = np.where(action == "set", recs["cpu_limit_cores_recommended"].to_numpy(dtype=float),
                   np.where(action == "remove", np.inf, cur_cpu))
    cpu = np.where(np.isnan(cpu), np.inf, cpu)
    mem = recs["memory_limit_bytes_recommended"].fillna(recs["memory_limit_bytes_current"]).to_numpy(dtype=float)
    return cpu, np.where(np.isnan(mem), np.inf, mem)


def slack(requests: np.ndarray, demand: np.ndarray) -> np.ndarray:
    """Per container: mean over the steps it ran of (request - demand) / request."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nanmean((requests[:, None] - demand) / requests[:, None], axis=1)


def over(requests: np.ndarray, demand: np.ndarray) -> np.ndarray:
    """Per container: share of the steps it ran with the demand above the request."""
    with np.errstate(invalid="ignore"):
        return (demand > requests[:, None]).sum(axis=1) / np.maximum((~np.isnan(demand)).sum(axis=1), 1)


def score(name: str, recs: pd.DataFrame, truth: pd.DataFrame, usage: pd.DataFrame, series: dict) -> pd.DataFrame:
    """Per container: left below its true memory peak / CPU p95, and slack of CPU and memory requests."""
    seen = usage[KEY + ["oom_kills", "cpu_throttled_ratio"]].rename(
        columns={"oom_kills": "oom_kills_u", "cpu_throttled_ratio": "cpu_throttled_ratio_u"})
    df = truth.merge(recs, on=KEY, how="left", validate="one_to_one").merge(seen, on=KEY, how="left")
    cpu_lim, mem_lim = limits_after(df)
    cpu_req, mem_req = requests_or_current(df)
    out = df[KEY + ["scenario"]].copy()
    out["oom_killed"] = df["oom_kills_u"].to_numpy() > 0
    out["throttled"] = df["cpu_throttled_ratio_u"].fillna(0).to_numpy() > 0.05
    out["memory_below_truth"] = mem_lim < df["true_memory_peak_bytes"].to_numpy()
    out["cpu_limit_below_p95"] = cpu_lim < df["true_cpu_p95_cores"].to_numpy()
    out["cpu_slack"], out["memory_slack"] = np.nan, np.nan
    for scenario, (cpu_steps, mem_steps) in ((s, series[s]) for s in SCENARIOS if s in series):
        rows = np.nonzero(out["scenario"].to_numpy() == scenario)[0]
        out.loc[out.index[rows], "cpu_slack"] = slack(cpu_req[rows], cpu_steps)
        out.loc[out.index[rows], "memory_slack"] = slack(mem_req[rows], mem_steps)
        out.loc[out.index[rows], "cpu_over_request"] = over(cpu_req[rows], cpu_steps)
    out["memory_limit_over_truth"] = mem_lim / df["true_memory_peak_bytes"].to_numpy()
    out["rule"] = name
    return out


def current_as_recs(snapshot) -> pd.DataFrame:
    """Today's values as if they were a recommendation, for the 'today' slack column."""
    c = snapshot.tables["containers"]
    return c[KEY].assign(
        cpu_request_cores_recommended=c["cpu_request_cores"], cpu_request_cores_current=c["cpu_request_cores"],
        memory_request_bytes_recommended=c["memory_request_bytes"], memory_request_bytes_current=c["memory_request_bytes"],
        cpu_limit_cores_recommended=c["cpu_limit_cores"], cpu_limit_cores_current=c["cpu_limit_cores"],
        cpu_limit_action="none", memory_limit_bytes_recommended=c["memory_limit_bytes"],
        memory_limit_bytes_current=c["memory_limit_bytes"])


def print_summary(scores: pd.DataFrame) -> None:
    rules = list(dict.fromkeys(scores["rule"]))
    rows = []
    for scenario in list(SCENARIOS) + ["all"]:
        part = scores if scenario == "all" else scores[scores["scenario"] == scenario]
        row = {"scenario": scenario, "n": len(part) // len(rules)}
        for rule in rules:
            r = part[part["rule"] == rule]
            if rule != "today":
                oom, thr = r[r["oom_killed"]], r[r["throttled"]]
                row[f"OOM below truth {rule}"] = f"{int(oom['memory_below_truth'].sum())}/{len(oom)}"
                row[f"throttled limit<p95 {rule}"] = f"{int(thr['cpu_limit_below_p95'].sum())}/{len(thr)}"
            row[f"CPU slack {rule}"] = f"{r['cpu_slack'].mean():+.0%}"
            row[f"CPU steps over request {rule}"] = f"{r['cpu_over_request'].mean():.1%}"
            row[f"mem slack {rule}"] = f"{r['memory_slack'].mean():+.0%}"
        rows.append(row)
    table = pd.DataFrame(rows).set_index("scenario")
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(table.T.to_string())


def print_oom_detail(scores: pd.DataFrame, truth: pd.DataFrame, usage: pd.DataFrame, limits: pd.Series) -> None:
    """Spike and leak OOMs by how far the truth went past the limit and by kills a week: left below / total."""
    ratio = truth.set_index(KEY)["true_memory_peak_bytes"] / limits
    kills = usage.set_index(KEY)["oom_kills"] / 2.0
    s = scores[scores["oom_killed"] & (scores["rule"] != "today")].set_index(KEY)
    s = s.assign(need=pd.cut(ratio.reindex(s.index), [1.0, 1.2, 1.4, 1.6, 1.8, 2.2, 2.6]),
                 kills=pd.cut(kills.reindex(s.index), [0, 0.5, 2, 10, 1000], labels=["<=0.5/wk", "0.5-2", "2-10", ">10"]))
    pivot = s.groupby(["scenario", "need", "rule"], observed=True)["memory_below_truth"].agg(
        lambda x: f"{int(x.sum())}/{len(x)}").unstack("rule")
    print("\nOOM-killed containers left below their true peak, by true peak / limit (left / total):")
    print(pivot.to_string())
    over = s.groupby(["scenario", "rule"])["memory_limit_over_truth"].median().unstack("rule")
    print("\nmedian recommended memory limit / true peak of the OOM-killed:")
    print(over.round(2).to_string())
    pivot = s.groupby(["scenario", "kills", "rule"], observed=True)["memory_below_truth"].agg(
        lambda x: f"{int(x.sum())}/{len(x)}").unstack("rule")
    print("\nby OOM kills a week:")
    print(pivot.to_string())


def sweep(per_scenario: int, seed: int) -> None:
    """How the OOM escalation's two settings trade OOM-killed containers left below their peak for memory."""
    snapshot, truth, _ = generate(per_scenario, seed=seed, scenarios=("spike_oom", "leak_oom"))
    kills = snapshot.tables["usage"][KEY + ["oom_kills"]]
    print(f"OOM escalation sweep, {per_scenario} spike and {per_scenario} leak OOM containers (seed {seed}):")
    print("oom_escalation oom_max_factor | spikes left below | leaks left below | median limit / true peak")
    for escalation in (0.6, 0.9, 1.2, 1.5, 2.0):
        for max_factor in (1.8, 2.0, 2.2):
            cfg = Config()
            policies = {k: dataclasses.replace(p, oom_escalation=escalation, oom_max_factor=max_factor)
                        for k, p in cfg.policies.items()}
            recs = recommend(snapshot, dataclasses.replace(cfg, policies=policies))
            df = recs.merge(truth, on=KEY).merge(kills, on=KEY, suffixes=("", "_u"))
            df = df[df["oom_kills_u"] > 0]
            below = df["memory_limit_bytes_recommended"] < df["true_memory_peak_bytes"]
            ratio = df["memory_limit_bytes_recommended"] / df["true_memory_peak_bytes"]
            spikes, leaks = df["scenario"] == "spike_oom", df["scenario"] == "leak_oom"
            print(f"{escalation:14.1f} {max_factor:14.1f} | {int(below[spikes].sum()):>6}/{int(spikes.sum()):<10} | "
                  f"{int(below[leaks].sum()):>5}/{int(leaks.sum()):<10} | {ratio.median():.2f}")


def per_pod_tables(snapshot, series) -> None:
    """Add usage_histograms and usage_daily to the benchmark's snapshot: every container's observed steps
    (one pod each) through the collector's reducer, as a real collection would have written them."""
    from rightsize.sources.prometheus.client import RangeSeries
    from rightsize.sources.prometheus.usage import Grid, UsageAccumulator, reduce_chunk

    end = pd.Timestamp(snapshot.meta["window_end"]).timestamp()
    names = snapshot.tables["containers"][KEY]
    grid = Grid.of(end, 14 * 86400.0, 300.0)
    ts = grid.first + np.arange(grid.n) * 300.0
    acc, owners, raw = UsageAccumulator(grid), {}, []
    kills = snapshot.tables["usage"].set_index("workload")["oom_kills"]
    for scenario in dict.fromkeys(w.rsplit("-", 1)[0] for w in names["workload"]):
        cpu, mem, mem_max = series[f"observed:{scenario}"]
        rows = names[names["workload"].str.rsplit("-", n=1).str[0] == scenario]
        for resource, values in (("cpu", cpu), ("memory", mem)):
            result = [RangeSeries(("bench", w, "app"), v[~np.isnan(v)], ts[~np.isnan(v)])
                      for w, v in zip(rows["workload"], values)]
            owners.update({("bench", w): (k, w) for w, k in zip(rows["workload"], rows["kind"])})
            acc.add(reduce_chunk(result, resource, grid, owners))
        day = grid.day(np.arange(grid.n))
        for w, m in zip(rows["workload"], mem_max):
            # the generator counts kills over the window; they come evenly spread over its days here
            per_day = np.diff(np.floor(np.linspace(0, float(kills.get(w, 0.0)), grid.days + 1)))
            for d in np.unique(day[~np.isnan(m)]):
                raw.append({"namespace": "bench", "pod": w, "container": "app", "day": int(d),
                            "memory_max_bytes": float(np.nanmax(np.where(day == d, m, np.nan))), "oom_kills": per_day[d]})
    snapshot.tables["usage_histograms"] = acc.histograms("bench", owners)
    snapshot.tables["usage_daily"] = acc.daily("bench", owners, pd.DataFrame(raw))


def backtest_against_truth(snapshot, truth, series, test_days: int = 7) -> None:
    """The backtest's predictions for the last ``test_days`` (from the censored data) beside what the
    true demand says would have happened under the same recommendation."""
    from rightsize.analysis import run_backtest

    per_pod_tables(snapshot, series)
    bt, why = run_backtest(snapshot, Config(), test_days)
    if why:
        print(f"no backtest: {why}")
        return
    rec = bt[bt["policy"] == "recommended"].set_index(KEY)
    steps = test_days * 288
    rows = []
    for scenario in SCENARIOS:
        cpu, mem = series[scenario]
        names = truth[truth["scenario"] == scenario][KEY]
        r = rec.reindex(pd.MultiIndex.from_frame(names))
        cpu_t, mem_t = cpu[:, -steps:], mem[:, -steps:]
        req, lim, mlim = (r[c].to_numpy(float)[:, None] for c in ("cpu_request_cores", "cpu_limit_cores", "memory_limit_bytes"))
        running = ~np.isnan(cpu_t)
        with np.errstate(invalid="ignore"):
            over = np.nansum(cpu_t > req, axis=1) / np.maximum(running.sum(axis=1), 1)
            at_limit = np.where(np.isnan(lim[:, 0]), 0.0, np.nansum(cpu_t >= lim, axis=1) / np.maximum(running.sum(axis=1), 1))
        true_oom = np.nanmax(np.where(np.isnan(mem_t), -np.inf, mem_t), axis=1) >= mlim[:, 0]
        rows.append({"scenario": scenario,
                     "OOMs predicted (+ censored) / true": f"{int(r['predicted_oom'].sum())} (+{int(r['memory_censored'].sum())}) / {int(true_oom.sum())}",
                     "over request >5% predicted / true": f"{int((r['cpu_share_over_request'] > 0.05).sum())} / {int((over > 0.05).sum())}",
                     "CPU at limit, predicted / true (mean share)": f"{r['cpu_share_at_limit'].mean():.1%} / {at_limit.mean():.1%}",
                     "CPU slack predicted / true": f"{r['cpu_slack'].mean():+.0%} / {np.nanmean(1 - np.nanmean(cpu_t, axis=1) / req[:, 0]):+.0%}"})
    print(f"\nbacktest: the new rule's recommendation made without the last {test_days} days, replayed on the censored "
          "data (predicted) and scored against the true demand of those days (true):")
    print(pd.DataFrame(rows).set_index("scenario").to_string())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-scenario", type=int, default=100)
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--baseline", default=None, help="git revision of today's rule (default: merge-base of HEAD and main)")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--sweep", action="store_true", help="only the OOM escalation sweep (oom_escalation x oom_max_factor)")
    ap.add_argument("--backtest", action="store_true", help="also the backtest's predictions against what the truth says")
    ap.add_argument("--slack", action="store_true", help="with --cluster: where the slack comes from, one part at a time")
    ap.add_argument("--cluster", type=int, default=0, help="a generated cluster of this many containers (tests/cluster_truth.py)")
    ap.add_argument("--workdir", default="", help="where --cluster keeps its snapshot (default: /tmp/rightsize-cluster-N-SEED)")
    args = ap.parse_args()
    if args.cluster:
        from cluster_bench import run_cluster

        run_cluster(args, None if args.no_baseline else baseline_revision(args.baseline))
        return
    if args.sweep:
        sweep(args.per_scenario, args.seed)
        return
    snapshot, truth, series = generate(args.per_scenario, seed=args.seed, keep_series=True)
    usage = snapshot.tables["usage"]
    scores = [score("today", current_as_recs(snapshot), truth, usage, series)]
    names = []
    if not args.no_baseline:
        rev = baseline_revision(args.baseline)
        with tempfile.TemporaryDirectory() as tmp:
            scores.append(score(f"old@{rev}", old_recommendations(snapshot, rev, Path(tmp)), truth, usage, series))
        names.append(f"old = {rev}")
    scores.append(score("new", recommend(snapshot, Config()), truth, usage, series))
    all_scores = pd.concat(scores, ignore_index=True)
    print(f"{len(truth)} containers ({args.per_scenario} per scenario, seed {args.seed}); {'; '.join(names + ['new = working tree'])}")
    print("slack = mean over 5-minute steps of (request - true demand) / request; 'today' = the current requests\n")
    print_summary(all_scores)
    limits = snapshot.tables["containers"].set_index(KEY)["memory_limit_bytes"]
    print_oom_detail(all_scores, truth, usage, limits)
    if args.backtest:
        backtest_against_truth(snapshot, truth, series)


if __name__ == "__main__":
    main()
