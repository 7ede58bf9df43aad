"""The statistics registry (usage_stats) and the sketch's reducers, against exact numpy computations on the same samples."""
from __future__ import annotations

import copy
import pickle

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rightsize import sketch as S
from rightsize import usage_stats as U
from rightsize.analysis import statistics as A
from rightsize.sources.prometheus.client import RangeSeries
from rightsize.sources.prometheus.usage import Grid, UsageAccumulator, reduce_chunk


def exact(values: np.ndarray, q: float) -> float:
    """The member at rank floor(q x (n - 1)), the rank the sketch reads."""
    v = np.sort(values)
    return float(v[int(np.floor(q * (len(v) - 1) + 1e-9))])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=5e3, allow_nan=False), min_size=1, max_size=300),
       st.sampled_from([0.5, 0.9, 0.95, 0.99, 1.0]), st.sampled_from(["cpu", "memory"]))
def test_sketch_reads_any_quantile_within_its_stated_error(values, q, resource):
    scale = 1.0 if resource == "cpu" else 2.0**20
    x = np.asarray(values) * scale
    _, got = S.grouped_quantiles(np.zeros(len(x), dtype=int), S.bucket_of(x, resource), np.ones(len(x)), [q], resource)
    want = exact(x, q)
    floor = U.RESOURCES[resource].floor
    if want <= floor:
        assert got[0, 0] == floor / 2  # below the floor: read as half of it (0.05m cores / 32 KiB)
    else:
        assert abs(got[0, 0] / want - 1) <= S.RELATIVE_ERROR + 1e-12


def test_many_groups_at_once_match_one_at_a_time():
    rng = np.random.default_rng(7)
    groups = [rng.lognormal(-1, 0.7, size=n) for n in (1, 2, 50, 999)]
    gid = np.concatenate([np.full(len(v), i) for i, v in enumerate(groups)])
    x = np.concatenate(groups)
    ids, got = S.grouped_quantiles(gid[::-1], S.bucket_of(x[::-1], "cpu"), np.ones(len(x)), [0.5, 0.99], "cpu")
    assert list(ids) == [0, 1, 2, 3]
    for i, v in enumerate(groups):
        for j, q in enumerate((0.5, 0.99)):
            assert abs(got[i, j] / exact(v, q) - 1) <= S.RELATIVE_ERROR


def test_statistic_names():
    assert U.parse_statistic("p95") == 0.95 and U.parse_statistic("p99.9") == pytest.approx(0.999)
    assert U.parse_statistic("max") == 1.0
    for bad in ("p0", "p100", "95", "P95", "mean", "p-5"):
        with pytest.raises(ValueError):
            U.parse_statistic(bad)
    typed = U.StatisticName("p99.5")  # parsed once: the name as text, with its quantile
    assert typed == "p99.5" and f"{typed}" == "p99.5" and typed.quantile == pytest.approx(0.995)
    assert U.StatisticName(typed) is typed and copy.deepcopy(typed) is typed
    assert pickle.loads(pickle.dumps(typed)).quantile == typed.quantile
    with pytest.raises(ValueError, match="not a usage statistic: 'p100'"):
        U.StatisticName("p100")
    assert U.usage_column("cpu", "p95") == "cpu_pooled_p95_cores"
    assert U.usage_column("memory", "p50", "busiest") == "memory_busiest_p50_bytes"
    assert U.usage_column("memory", "max", "busiest") == "memory_max_bytes"  # the max is the same on every basis


# --- the reducers over per-pod samples ----------------------------------------------------------------

def _pods(rng, steps=600, pods=3):
    """pods x steps of CPU (cores); pod 2 runs hot (a leader), pod 1 lives only through the second half."""
    base = np.array([0.2, 0.25, 0.6])[:pods, None]
    x = base * (1 + 0.3 * np.sin(np.arange(steps) / 50.0)[None, :]) + rng.random((pods, steps)) * 0.05
    x[1, : steps // 2] = np.nan
    return x


def _reduce(x: np.ndarray, step=300.0, end=1_800_000_000.0):
    """Feed the matrix through the collector's chunk reducer (two time chunks) and build the tables."""
    grid = Grid.of(end, x.shape[1] * step, step)
    owners = {("ns", f"p{i}"): ("Deployment", "app") for i in range(x.shape[0])}
    acc = UsageAccumulator(grid)
    for lo, hi in ((0, x.shape[1] // 3), (x.shape[1] // 3, x.shape[1])):
        ts = grid.first + np.arange(lo, hi) * step
        result = []
        for i, row in enumerate(x):
            keep = ~np.isnan(row[lo:hi])
            result.append(RangeSeries(("ns", f"p{i}", "c"), row[lo:hi][keep], ts[keep]))
        acc.add(reduce_chunk(result, "cpu", grid, owners))
        acc.add(reduce_chunk(result and [r._replace(values=r.values * 2**30) for r in result], "memory", grid, owners))
    return acc.histograms("k", owners), acc.daily("k", owners, None), grid


def test_pooled_max_over_pods_and_busiest_from_the_collector_reducer():
    x = _pods(np.random.default_rng(1))
    hist, daily, grid = _reduce(x)
    u = S.usage_statistics(hist, daily, grid.step).iloc[0]
    pooled = x[~np.isnan(x)]
    busiest = np.nanmax(x, axis=0)
    for q in (0.5, 0.9, 0.95, 0.99):
        name = f"p{int(q * 100)}"
        assert u[f"cpu_pooled_{name}_cores"] == pytest.approx(exact(pooled, q), rel=S.RELATIVE_ERROR)
        assert u[f"cpu_busiest_{name}_cores"] == pytest.approx(exact(busiest, q), rel=S.RELATIVE_ERROR)
        per_pod = max(exact(row[~np.isnan(row)], q) for row in x)
        assert u[f"cpu_max_over_pods_{name}_cores"] == pytest.approx(per_pod, rel=S.RELATIVE_ERROR)
    assert u["cpu_max_cores"] == np.nanmax(x)  # exact, not read from the sketch
    assert u["cpu_mean_cores"] == pytest.approx(np.nanmean(x), rel=1e-12)
    assert u["samples"] == x.shape[1] and u["pod_samples"] == (~np.isnan(x)).sum() and u["pods_seen"] == 3
    assert u["hours_covered"] == x.shape[1] * 300 / 3600
    # the hot pod decides max over pods and busiest; pooled stays below it: it does not grow with replicas
    assert u["cpu_pooled_p95_cores"] < u["cpu_max_over_pods_p95_cores"]


def test_max_over_pods_ignores_pods_with_too_few_samples():
    x = np.full((2, 200), 0.1)
    x[1, :] = np.nan
    x[1, 5:5 + S.MIN_POD_SAMPLES - 1] = 5.0  # a pod that lived through one start-up spike
    hist, daily, grid = _reduce(x)
    u = S.usage_statistics(hist, daily, grid.step).iloc[0]
    assert u["cpu_max_over_pods_p95_cores"] == pytest.approx(0.1, rel=S.RELATIVE_ERROR)
    assert u["cpu_busiest_p99_cores"] == pytest.approx(5.0, rel=S.RELATIVE_ERROR)  # the busiest basis does see it


def test_duplicate_series_fold_by_their_max_and_unowned_pods_are_reported():
    grid = Grid.of(6000.0, 600.0, 60.0)
    ts = grid.first + np.arange(10) * 60.0
    result = [RangeSeries(("ns", "p0", "c"), np.full(10, 1.0), ts), RangeSeries(("ns", "p0", "c"), np.full(10, 3.0), ts),
              RangeSeries(("ns", "ghost", "c"), np.full(10, 9.0), ts)]
    part = reduce_chunk(result, "cpu", grid, {("ns", "p0"): ("Deployment", "app")})
    assert part.series == [("ns", "p0", "c"), ("ns", "ghost", "c")] and part.unowned == {("ns", "ghost")}
    _s, _d, samples, sums, maxima = part.pod_days
    assert list(samples) == [10, 10] and list(maxima) == [3.0, 9.0] and sums[0] == 30.0  # one value per step: the max
    assert part.busy_cells[3].sum() == 10  # the unowned pod is not in any container's busiest value


def test_days_count_back_from_the_window_end():
    grid = Grid.of(10 * 86400.0, 2.5 * 86400, 3600.0)  # 60 steps, the oldest 12 in a partial third day
    idx = np.arange(grid.n)
    assert grid.days == 3
    assert list(np.bincount(grid.day(idx))) == [24, 24, 12]
    assert grid.day(np.array([grid.n - 1]))[0] == 0  # the window end belongs to the last 24 h
    assert grid.day_start(np.array([0]))[0] == pd.Timestamp(9 * 86400, unit="s", tz="UTC")


def test_recomputing_over_some_days_and_with_decay():
    """The backtest's training part is a subset of days; decay weighs recent days more."""
    x = np.vstack([np.r_[np.full(288, 0.1), np.full(288, 0.4)]])  # two days: quiet, then busy
    hist, daily, grid = _reduce(x)
    older = hist["day"] == hist["day"].min()
    u = S.usage_statistics(hist[older], daily[daily["day"] == daily["day"].min()], grid.step).iloc[0]
    assert u["cpu_pooled_p99_cores"] == pytest.approx(0.1, rel=S.RELATIVE_ERROR) and u["samples"] == 288
    end = pd.Timestamp(grid.end, unit="s", tz="UTC")
    w = pd.Series(A.day_weights(hist["day"], end, 3600.0), index=hist.index)  # a 1 h half-life: the last day dominates
    decayed = S.usage_statistics(hist, daily, grid.step, weight=w).iloc[0]
    assert decayed["cpu_pooled_p50_cores"] == pytest.approx(0.4, rel=S.RELATIVE_ERROR)
    flat = S.usage_statistics(hist, daily, grid.step).iloc[0]
    assert flat["cpu_pooled_p50_cores"] == pytest.approx(0.1, rel=S.RELATIVE_ERROR)  # rank floor(0.5 x 575) is day one's
    assert list(A.day_weights(hist["day"].iloc[:1], end, None)) == [1.0]


def test_empty_input_gives_an_empty_usage_table():
    hist, daily, grid = _reduce(np.full((1, 10), np.nan))
    out = S.usage_statistics(hist, daily, grid.step)
    assert out.empty and "cpu_pooled_p95_cores" in out.columns


def test_a_policy_picks_any_statistic_basis_and_decay():
    """cpu_request_percentile, per_replica and usage_half_life reach the recommendation: the basis value
    is the usage column, or the statistic recomputed from the snapshot's histograms."""
    import rightsize as rs

    snap = rs.load("demo")
    key = ["cluster", "namespace", "kind", "workload", "container"]
    usage = snap.tables["usage"].set_index(key)
    def production(recs):  # throttled containers are sized from their estimated demand instead
        return recs[(recs["policy"] == "production") & ~recs["flags"].str.contains("demand_hidden")].dropna(subset=["cpu_basis_cores"])

    busiest = rs.recommend(snap, policy={"per_replica": "busiest"}).set_index(key)
    prod = production(busiest)
    np.testing.assert_allclose(prod["cpu_basis_cores"], usage.loc[prod.index, "cpu_busiest_p95_cores"])
    p97 = rs.recommend(snap, policy={"cpu_request_percentile": "p97"}).set_index(key)
    prod = production(p97)
    hist = snap.tables["usage_histograms"]
    want = S.histogram_statistics(hist, key, "cpu", [0.97], "pooled").set_index(key)[0.97]
    np.testing.assert_allclose(prod["cpu_basis_cores"], want.loc[prod.index])
    assert (prod["cpu_basis_cores"] >= usage.loc[prod.index, "cpu_pooled_p95_cores"]).all()
    decayed = rs.recommend(snap, policy={"usage_half_life": "1d"}).set_index(key)
    end = pd.Timestamp(snap.meta["window_end"])
    weight = pd.Series(A.day_weights(hist["day"], end, 86400.0), index=hist.index)
    want = S.histogram_statistics(hist, key, "cpu", [0.95], "pooled", weight).set_index(key)[0.95]
    prod = production(decayed)
    np.testing.assert_allclose(prod["cpu_basis_cores"], want.loc[prod.index])
    assert "CPU from p95 (decayed)" in " ".join(prod["reason"])


def test_imbalanced_replicas_are_flagged():
    """A leader replica at 3x the others: the hottest pod's p95 is far above the pooled one."""
    import rightsize as rs
    from recommend_tables import ctr, snap as table_snapshot
    from rightsize.usage_stats import usage_column

    snap = table_snapshot(ctr(workload="leader", pods=3), ctr(workload="even", pods=3))
    u = snap.tables["usage"]
    leader = u["workload"] == "leader"
    u.loc[leader, usage_column("cpu", "p95", "max_over_pods")] = 3 * u.loc[leader, usage_column("cpu", "p95", "pooled")]
    flags = rs.recommend(snap).set_index("workload")["flags"]
    assert "imbalanced_replicas" in flags["leader"] and "imbalanced_replicas" not in flags["even"]
