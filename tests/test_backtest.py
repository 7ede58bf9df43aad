"""The backtest: the split of the window, the replay's figures against hand computations, the policies
side by side, the CLI and the report, and the split on a real Prometheus."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import rightsize as rs
from rightsize.analysis import backtest as B
from rightsize.sketch import RELATIVE_ERROR
from rightsize.demo import generate
from rightsize.errors import ConfigError
from rightsize.snapshot import Snapshot, new_meta
from rightsize.sources.prometheus.client import RangeSeries
from rightsize.sources.prometheus.usage import Grid, UsageAccumulator, reduce_chunk

STEP = 300.0
END = 1_800_000_000.0 // 86400 * 86400  # a UTC midnight
PER_DAY = int(86400 // STEP)
KEY = ("c1", "ns", "Deployment", "app", "main")


def _snapshot(cpu: np.ndarray, mem: np.ndarray, kills_on_day: dict[int, int] | None = None) -> Snapshot:
    """One container of ``len(cpu)`` pods; ``cpu``/``mem`` are pods x steps (cores / bytes, NaN = no pod),
    through the collector's reducer; the requests and limits: 500m / 400m limit, 1Gi / 1Gi."""
    grid = Grid.of(END, cpu.shape[1] * STEP, STEP)
    owners = {("ns", f"p{i}"): ("Deployment", "app") for i in range(len(cpu))}
    acc, ts = UsageAccumulator(grid), grid.first + np.arange(grid.n) * STEP
    raw = []
    for res, x in (("cpu", cpu), ("memory", mem)):
        acc.add(reduce_chunk([RangeSeries(("ns", f"p{i}", "main"), row[~np.isnan(row)], ts[~np.isnan(row)])
                              for i, row in enumerate(x)], res, grid, owners))
    for i, row in enumerate(mem):
        for d in np.unique(grid.day(np.flatnonzero(~np.isnan(row)))):
            on_day = grid.day(np.arange(grid.n)) == d
            raw.append({"namespace": "ns", "pod": f"p{i}", "container": "main", "day": int(d),
                        "memory_max_bytes": float(np.nanmax(row[on_day])), "oom_kills": float((kills_on_day or {}).get(int(d), 0))})
    hist, daily = acc.histograms("c1", owners), acc.daily("c1", owners, pd.DataFrame(raw))
    from rightsize.sketch import usage_statistics

    usage = usage_statistics(hist, daily, STEP).assign(restarts=0.0, cpu_throttled_ratio=np.nan, oom_kills=0.0)
    ident = dict(zip(("cluster", "namespace", "kind", "workload", "container"), KEY))
    containers = pd.DataFrame([{**ident, "container_type": "main", "cpu_request_cores": 0.5, "cpu_limit_cores": 0.4,
                                "memory_request_bytes": 2.0**30, "memory_limit_bytes": 2.0**30}])
    workloads = pd.DataFrame([{**{k: ident[k] for k in ("cluster", "namespace", "kind", "workload")}, "replicas": float(len(cpu)),
                               "hpa": False, "pdb": False, "has_pvc": False, "has_empty_dir": False, "has_host_path": False,
                               "termination_grace_seconds": 30.0, "source": "test"}])
    start = pd.Timestamp(END - grid.n * STEP, unit="s", tz="UTC")
    meta = new_meta(window_start=start.isoformat(), window_end=pd.Timestamp(END, unit="s", tz="UTC").isoformat(), step_seconds=STEP)
    return Snapshot(tables={"usage": usage, "usage_histograms": hist, "usage_daily": daily, "containers": containers,
                            "workloads": workloads}, meta=meta).validate()


def _days(*levels: float, pods: int = 2) -> np.ndarray:
    """pods x steps: each day at its level (cores), pod i a little above pod 0."""
    row = np.concatenate([np.full(PER_DAY, v) for v in levels])
    return np.vstack([row * (1 + 0.1 * i) for i in range(pods)])


def test_split_learns_from_the_earlier_days_only(tmp_path):
    snap = _snapshot(_days(0.1, 0.1, 0.1, 0.1, 0.6), _days(2.0**28, 2.0**28, 2.0**28, 2.0**28, 2.0**29))
    train, test = B.split(snap, test_days=1)
    u = train.tables["usage"].iloc[0]
    assert u["cpu_pooled_p99_cores"] == pytest.approx(0.11, rel=RELATIVE_ERROR)  # the busy last day is not in it
    assert u["samples"] == 4 * PER_DAY and u["memory_max_bytes"] == 1.1 * 2**28
    assert train.meta["window_end"] == pd.Timestamp(END - 86400, unit="s", tz="UTC").isoformat()
    # the test day only: its 2 x 288 pod-steps per resource, its peak
    assert test.cells["cpu"][2].tolist() == [2 * PER_DAY] and test.daily["memory_peak_bytes"].tolist() == [1.1 * 2**29]
    # the same split when the histograms stream from the file, in batches smaller than the table
    from rightsize import snapshot as S

    folder = snap.write(tmp_path / "snap")
    lazy = S.Snapshot.read(folder, lazy=("usage_histograms",))
    original, S.BATCH_ROWS = S.BATCH_ROWS, 7
    try:
        train2, test2 = B.split(lazy, test_days=1)
    finally:
        S.BATCH_ROWS = original
    assert lazy.tables.lazy("usage_histograms") is not None  # streamed, never read whole
    pd.testing.assert_frame_equal(train2.tables["usage"], train.tables["usage"])
    assert test2.cells["cpu"][2].tolist() == test.cells["cpu"][2].tolist()


def test_replay_against_hand_computed_figures():
    """The last day: pod 0 at 0.6 cores half the day and 0.2 the other half, pod 1 always 0.2; memory 300 MiB
    and 700 MiB. Against a request of 400m (limit 600m) and 512 MiB (limit 600 MiB):"""
    MiB = 2.0**20
    cpu = np.vstack([np.r_[np.full(PER_DAY // 2, 0.6), np.full(PER_DAY // 2, 0.2)], np.full(PER_DAY, 0.2)])
    mem = np.vstack([np.full(PER_DAY, 300 * MiB), np.full(PER_DAY, 700 * MiB)])
    snap = _snapshot(cpu, mem)
    settings = pd.DataFrame([dict(zip(B.CONTAINER_KEY, KEY), cpu_request_cores=0.4, cpu_limit_cores=0.6,
                                  memory_request_bytes=512 * MiB, memory_limit_bytes=600 * MiB)])
    r = B.replay(settings, snap.tables["usage_histograms"], snap.tables["usage_daily"]).iloc[0]
    assert r["cpu_share_over_request"] == pytest.approx(0.25)  # 144 of 576 pod-steps at 0.6 > 0.4
    assert r["cpu_share_at_limit"] == pytest.approx(0.25)  # the same steps reach 0.6
    assert r["cpu_slack"] == pytest.approx(1 - (0.6 * 144 + 0.2 * 432) / 576 / 0.4)  # mean 0.3: slack 25%
    assert r["memory_share_over_request"] == pytest.approx(0.5)
    assert r["memory_slack"] == pytest.approx(1 - 500 / 512)
    assert r["memory_peak_bytes"] == 700 * MiB and r["predicted_oom"]  # 700 MiB >= the 600 MiB limit
    no_limit = B.replay(settings.assign(cpu_limit_cores=np.nan, memory_limit_bytes=np.nan),
                        snap.tables["usage_histograms"], snap.tables["usage_daily"]).iloc[0]
    assert no_limit["cpu_share_at_limit"] == 0.0 and not no_limit["predicted_oom"]


def test_rollup_weighs_slack_by_request_and_steps():
    bt = pd.DataFrame({"policy": ["p", "p"], "cluster": "c", "namespace": "n", "cpu_request_cores": [1.0, 3.0],
                       "cpu_mean_cores": [0.5, 0.0], "cpu_pod_steps": [10.0, 10.0], "cpu_slack": [0.5, 1.0],
                       "memory_request_bytes": [100.0, np.nan], "memory_mean_bytes": [50.0, 10.0], "memory_pod_steps": [10.0, 10.0],
                       "memory_slack": [0.5, np.nan], "predicted_oom": [True, False], "cpu_share_over_request": [0.1, 0.0],
                       "memory_censored": [False, True]})
    r = B.rollup(bt, []).iloc[0]
    assert r["cpu_slack"] == pytest.approx(1 - 5 / 40)  # (1 x 10 + 3 x 10) requested, 5 used
    assert r["memory_slack"] == pytest.approx(0.5)  # the container without a request is left out
    assert (r["containers"], r["predicted_ooms"], r["over_request"], r["censored"]) == (2, 1, 1, 1)


def test_policies_side_by_side_and_today():
    days = [0.1] * 7 + [0.15] * 7
    snap = _snapshot(_days(*days), _days(*([2.0**28] * 14)))
    table = rs.backtest(snap, {"p50": {"cpu_request_percentile": "p50", "margin": 0.0}}, test_days=7)
    assert list(table["policy"]) == ["today", "recommended", "p50"]
    today, rec = table.iloc[0], table.iloc[1]
    assert today["cpu_request_cores"] == 0.5 and today["cpu_slack"] == pytest.approx(1 - np.mean([0.15, 0.165]) / 0.5, rel=1e-9)
    # learnt from 0.1 / 0.11 cores, the last week at 0.15 / 0.165 runs above the request most of the time
    assert rec["cpu_request_cores"] < 0.15 and rec["cpu_share_over_request"] == pytest.approx(1.0)
    fleet = rs.backtest(snap, test_days=7, by=[]).set_index("policy")
    assert fleet.loc["recommended", "over_request"] == 1 and fleet.loc["today", "over_request"] == 0
    with pytest.raises(ConfigError, match="shorter than 7 d to replay plus 3 d"):
        rs.backtest(_snapshot(_days(0.1, 0.1), _days(1.0, 1.0)))
    with pytest.raises(ConfigError, match="reserved"):
        rs.backtest(snap, {"today": None})
    for days in (0, -2, 1.5):
        with pytest.raises(ConfigError, match="test_days must be a whole number of days, at least 1"):
            rs.backtest(snap, test_days=days)


def test_cli_and_report_on_the_demo(tmp_path):
    out = tmp_path / "demo"
    subprocess.run([sys.executable, "-m", "rightsize.cli", "demo", "--out", str(out)], check=True, capture_output=True)
    summary = json.loads((out / "summary.json").read_text())
    bt = pd.read_csv(out / "backtest.csv")
    policies = summary["backtest"]["policies"]
    assert set(policies) == {"today", "recommended"} and summary["backtest"]["test_days"] == 7
    assert policies["today"]["predicted_ooms"] == int(bt[bt.policy == "today"]["predicted_oom"].sum())
    # the recommendation the demo's backtest replays kills nothing (today's limits: the one kill observed)
    assert policies["recommended"]["predicted_ooms"] == 0 == int(bt[bt.policy == "recommended"]["predicted_oom"].sum())
    assert policies["today"]["predicted_ooms"] >= 1
    section = (out / "report.md").read_text().split("## Backtest: the last 7 days replayed", 1)[1].split("\n## ", 1)[0]
    raised = pd.read_csv(out / "recommendations.csv", dtype={"raised_by_backtest": str})["raised_by_backtest"].fillna("")
    if (raised != "").any():  # every raise of the self-check is named in the section
        assert f"**Raised by the self-check: {int((raised != '').sum())}**" in section
    else:
        assert "the self-check replayed the window's last days against it: nothing needed raising" in section
    proc = subprocess.run([sys.executable, "-m", "rightsize.cli", "backtest", "--snapshot", str(out / "snapshot"), "--out",
                           str(tmp_path / "bt"), "--policy", "cpu_request_percentile=p99,margin=0.25", "--days", "5"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    # the label may wrap anywhere in its 120-column table (where depends on the widest namespace)
    assert "the last 5 days replayed" in proc.stdout and "cpu_request_percentile=p" in proc.stdout
    assert "margin=0.25" in proc.stdout
    table = pd.read_csv(tmp_path / "bt" / "backtest.csv")
    assert set(table["policy"]) == {"today", "recommended", "cpu_request_percentile=p99,margin=0.25"}
    for days in ("0", "-2", "a week"):
        bad = subprocess.run([sys.executable, "-m", "rightsize.cli", "backtest", "--snapshot", str(out), "--days", days],
                             capture_output=True, text=True)
        assert bad.returncode == 2 and "--days" in bad.stderr and "at least 1" in bad.stderr, bad.stderr
    # the run folder itself as --snapshot: backtest.csv lands in it, never beside it
    (out / "backtest.csv").unlink()
    proc = subprocess.run([sys.executable, "-m", "rightsize.cli", "backtest", "--snapshot", str(out), "--days", "5"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (out / "backtest.csv").exists() and not (tmp_path / "backtest.csv").exists()
    # --sweep: the margin frontier, the smallest margin that passes marked, margins.csv beside
    proc = subprocess.run([sys.executable, "-m", "rightsize.cli", "backtest", "--snapshot", str(out), "--out", str(tmp_path / "sweep"),
                           "--sweep"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "production / memory / flat" in proc.stdout and "<-" in proc.stdout and "steps over request" in proc.stdout
    sweep = pd.read_csv(tmp_path / "sweep" / "margins.csv")
    for _key, part in sweep.groupby(["policy", "resource", "pattern"]):
        part = part.sort_values("margin").reset_index(drop=True)
        safe = part[(part["predicted_ooms"] == 0) & (part["throttled"] == 0) & (part["over_request"].fillna(0) <= part["share"] + 1e-9)]
        if not len(safe):
            assert not part["chosen"].any()
            continue
        i = safe.index[0]  # the smallest safe margin, one more where the one below it had predicted OOM kills
        i = min(i + 1, len(part) - 1) if i > 0 and part.loc[i - 1, "predicted_ooms"] > 0 else i
        assert part[part["chosen"]]["margin"].tolist() == [part.loc[i, "margin"]]


def test_backtest_needs_histograms():
    snap = generate()
    snap.tables["usage_histograms"] = snap.tables["usage_histograms"].iloc[0:0]
    with pytest.raises(ConfigError, match="no per-pod histograms"):
        rs.backtest(snap)


def test_predicted_ooms_are_named_and_today_is_set_beside_the_kills_seen():
    """Learnt from 7 days at 400 / 440 MiB, the recommended limit (~506 MiB) is reached on the test day at 800 /
    880 MiB: that prediction is named with its day, limit and peak. Today's 1 GiB limit predicts nothing, yet
    both pods were OOM-killed twice on another test day (a kill between scrapes leaves no sample at the
    limit): the report sets the two side by side."""
    from rightsize.api import analyze
    from rightsize.config import Config
    from rightsize.emit.view import build_view

    MiB = 2.0**20
    mem = _days(*([400 * MiB] * 11 + [800 * MiB] + [400 * MiB] * 2))
    snap = _snapshot(_days(*([0.1] * 14)), mem, kills_on_day={1: 2})
    table = rs.backtest(snap, test_days=7)
    named = B.predicted_ooms(table)
    assert list(named["policy"]) == ["recommended"]
    row = named.iloc[0]
    assert row["predicted_oom_day"] == pd.Timestamp(END - 3 * 86400, unit="s", tz="UTC")  # the bin (day, day + 24 h]
    assert row["memory_peak_bytes"] == pytest.approx(880 * MiB) and row["memory_limit_bytes"] < 880 * MiB
    seen = B.observed_kills(table)
    assert seen[["workload", "container", "oom_kills", "predicted"]].values.tolist() == [["app", "main", 4.0, False]]

    analysis = analyze(snap, Config())
    bt = analysis.summary["backtest"]
    assert [(p["policy"], p["workload"], p["predicted_oom_day"][:10]) for p in bt["predicted_ooms"]] == [
        ("recommended", "app", pd.Timestamp(END - 3 * 86400, unit="s").strftime("%Y-%m-%d"))]
    assert bt["observed_oom_kills"][0]["predicted"] is False and bt["policies"]["today"]["predicted_ooms"] == 0
    section = next(s for s in build_view(analysis.summary, analysis, Config()).sections if s.anchor == "backtest")
    assert "(today's limits: 0 predicted against 1 container(s) really OOM-killed in those days)" in section.intro
    lists = {l.title: l.items for l in section.lists}
    [(name, note)] = lists["Predicted OOM kills, recommended"]
    assert name == "ns/app/main" and note.startswith(pd.Timestamp(END - 3 * 86400, unit="s").strftime("%Y-%m-%d"))
    assert "peak 880Mi reaches the limit" in note
    assert lists["OOM-killed in those days, under today's limits"] == [
        ("ns/app/main", "4 kill(s); today's limits replayed: not predicted (the kill left no sample at the limit)")]


def test_training_statistics_computed_a_range_of_containers_at_a_time_are_the_same(monkeypatch):
    """The demo's training usage, its histogram cells reduced in chunks of a few containers, equals the
    usage reduced at once (same rows, same order, same figures)."""
    from rightsize.analysis import cells
    from rightsize.demo import generate

    snap = generate()
    whole, _test = B.split(snap, test_days=7)
    monkeypatch.setattr(cells, "CHUNK_ROWS", 900)
    chunked, _test = B.split(snap, test_days=7)
    assert len(list(cells.chunks(*_cells(snap)))) > 5
    pd.testing.assert_frame_equal(chunked.tables["usage"], whole.tables["usage"])


def _cells(snap):
    from rightsize.analysis import cells

    cut = pd.Timestamp(snap.meta["window_end"]) - pd.Timedelta(days=7)
    sums = cells.sum_over_days(snap.batches("usage_histograms", cells.COLUMNS), cut)
    return sums.train, sums.ids


def test_a_failing_pass_in_the_backtest_thread_reaches_the_caller(monkeypatch):
    """analysis.analyze runs the backtest in a worker thread while the recommendation's self-check waits for its
    test days: a pass that fails raises its own error in the caller (the waiting self-check is handed it), it
    does not hang nor turn into another error."""
    from rightsize.analysis import cells

    calls = []

    def broken(*_a, **_k):
        calls.append(1)
        raise RuntimeError("the pass broke")

    monkeypatch.setattr(B, "sum_over_days", broken)
    monkeypatch.setattr(cells, "sum_over_days", broken)
    with pytest.raises(RuntimeError, match="the pass broke"):
        rs.analyze(generate())
    assert len(calls) == 1  # the self-check was handed the backtest's error: it did not start a pass of its own


def test_the_self_check_reduces_its_days_itself_when_the_backtest_cannot_split():
    """A Future left in the cache by analysis.analyze and resolved with None (the backtest's split did not run)
    is dropped: last_days reduces the days itself, the figures those of a snapshot without the Future."""
    from concurrent.futures import Future

    snap, plain = generate(), generate()
    waiting = Future()
    snap.cache[("last_days", 7)] = waiting
    waiting.set_result(None)
    got, expected = B.last_days(snap, 7), B.last_days(plain, 7)
    assert not isinstance(snap.cache[("last_days", 7)], Future)
    pd.testing.assert_frame_equal(got.daily, expected.daily)
    pd.testing.assert_frame_equal(got.keys, expected.keys)
    for res in got.cells:
        assert all(np.array_equal(a, b) for a, b in zip(got.cells[res], expected.cells[res]))
