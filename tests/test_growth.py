"""Growing memory (analysis/growth.py): per-pod daily maxima against pod age, cut at rollouts and restarts;
Theil-Sen's slope and Mann-Kendall's test by hand on small tables; steady, diurnal and bursty working sets are
not called growing; the projection over the pods' life."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rightsize.analysis import growth
from rightsize.quantity import MIB

END = pd.Timestamp("2026-11-16T00:00:00Z")
STEP = 300
FULL = 288  # 5-minute steps in a day


def rows(pod: str, maxima, first: int = 0, samples=None, restarts=None, workload: str = "web", days: int = 14) -> list[dict]:
    """usage_daily rows of one pod: ``maxima`` (MiB) on window days first, first + 1, ... (day 0 = the window's
    first day of ``days``); ``samples`` per day (default whole days), ``restarts`` per day (default none)."""
    out = []
    for i, m in enumerate(maxima):
        k = first + i
        out.append({"cluster": "c1", "namespace": "shop", "kind": "Deployment", "workload": workload, "container": "app",
                    "pod": pod, "day": END - pd.Timedelta(days=days - k), "memory_samples": (samples or [FULL] * len(maxima))[i],
                    "memory_max_bytes": m * MIB, "oom_kills": 0.0, "restarts": float((restarts or [0] * len(maxima))[i])})
    return out


def fit(*pods: list[dict]) -> pd.Series:
    table = growth.fit(pd.DataFrame([r for p in pods for r in p]), STEP, END)
    assert len(table) == 1
    return table.iloc[0]


def test_theil_sen_slope_and_mann_kendall_z_by_hand():
    # one pod older than the window, 4 whole days: maxima 100, 110, 125, 130 MiB at ages 1, 2, 3, 4 (+ unknown)
    r = fit(rows("web-1", [100, 110, 125, 130], first=10))
    # pairwise slopes (MiB/day): 10, 12.5, 10, 15, 10, 5 -> median 10
    assert r["growth_bytes_per_day"] == pytest.approx(10 * MIB)
    # S = 6 concordant pairs, var = 4 x 3 x 13 / 18 = 8.667, z = (6 - 1) / sqrt(8.667) = 1.698: not significant
    assert r["growth_z"] == pytest.approx(5 / np.sqrt(4 * 3 * 13 / 18))
    assert r["growth_days"] == 4 and not r["growing"]
    assert r["growth_life_days"] == np.inf  # no pod ended in the window


def test_a_steady_climb_over_the_window_grows_and_is_projected_over_the_horizon():
    # 14 whole days climbing 20 MiB/day from 300 MiB, one pod running throughout (started before the window)
    r = fit(rows("web-1", [300 + 20 * k for k in range(14)]))
    assert r["growing"] and r["growth_bytes_per_day"] == pytest.approx(20 * MIB)
    assert r["growth_z"] > growth.Z_MIN
    level = (300 + 20 * 13) * MIB  # the fitted level at the window end
    assert r["growth_level_bytes"] == pytest.approx(level)
    # no pod ended: the running pod climbs the whole horizon (7 days)
    assert growth.project(r.to_frame().T, 7.0, level)[0] == pytest.approx(level + 7 * 20 * MIB)
    assert growth.project(r.to_frame().T, 30.0, level)[0] == pytest.approx(level + 30 * 20 * MIB)


def test_rollouts_cut_the_climb_and_give_the_pods_life():
    # weekly rollouts at the start of day 3 and day 10: the middle pod lives 7 whole days, the pods climb
    # 30 MiB/day from 200 MiB, so a life peaks at 200 + 30 x 7 = 410 MiB
    first = rows("web-a", [200 + 30 * (k + 4) for k in range(3)])  # started 4 days before the window
    middle = rows("web-b", [200 + 30 * (k + 1) for k in range(7)], first=3)
    last = rows("web-c", [200 + 30 * (k + 1) for k in range(4)], first=10)
    r = fit(first, middle, last)
    assert r["growing"] and r["growth_bytes_per_day"] == pytest.approx(30 * MIB)
    assert r["growth_life_days"] == pytest.approx(7.0)  # the one life the window saw start and end
    assert r["growth_base_bytes"] == pytest.approx(200 * MIB)
    # the running pod (age 4) climbs 3 more days; its successor climbs from the base over a whole life
    assert growth.project(r.to_frame().T, 7.0, 0.0)[0] == pytest.approx((200 + 30 * 7) * MIB)
    # a climb across pods (a new pod starts low again) is never fitted: the slope is the pods' own
    assert r["growth_days"] == 14


def test_a_restart_starts_a_new_climb_and_its_day_is_left_out():
    # one pod, restarted on day 7 (its max that day holds the old life's peak): two climbs of 10 MiB/day
    maxima = [100 + 10 * k for k in range(7)] + [170] + [105 + 10 * k for k in range(6)]
    r = fit(rows("web-1", maxima, restarts=[0] * 7 + [1] + [0] * 6))
    assert r["growth_bytes_per_day"] == pytest.approx(10 * MIB)
    assert r["growth_days"] == 13  # the restart day is in no segment
    assert r["growth_life_days"] == np.inf  # the first climb started before the window: its length is unknown


def test_daily_restarts_leave_nothing_to_fit():
    r = fit(rows("web-1", [400] * 14, restarts=[1] * 14))
    assert r["growth_days"] == 0 and not r["growing"]


@pytest.mark.parametrize("maxima", [
    [500] * 14,  # steady
    [500 + 5 * (k % 2) for k in range(14)],  # a daily swing has the same peak every day
    [500, 720, 510, 505, 690, 515, 500, 700, 495, 510, 680, 505, 500, 710],  # bursty: peaks both ways
    [500, 490, 505, 495, 500, 700, 710, 500, 495, 505, 500, 690, 700, 505],  # weekly: weekends higher, then down
])
def test_steady_diurnal_bursty_and_weekly_working_sets_do_not_grow(maxima):
    r = fit(rows("web-1", maxima))
    assert not r["growing"]


def test_a_warm_up_on_the_pods_first_partial_day_is_left_out():
    # pods replaced every 3.5 days: each first day holds 6 h of a warm-up (lower max), then flat days
    pods = [rows(f"web-{i}", [250, 400, 401, 399], first=3 * i, samples=[72, FULL, FULL, FULL]) for i in range(4)]
    r = fit(*pods)
    assert not r["growing"]  # the first (partial) day of every pod is left out: the rest is flat


def test_project_is_nan_where_nothing_grows_and_never_below_the_peak():
    r = fit(rows("web-1", [300 + 20 * k for k in range(14)]))
    frame = pd.DataFrame([r, r.copy()]).reset_index(drop=True)
    frame.loc[1, "growing"] = False
    out = growth.project(frame, 7.0, [2000 * MIB, 2000 * MIB])
    assert out[0] == 2000 * MIB and np.isnan(out[1])


def test_material_needs_a_climb_of_five_percent_of_the_level_over_a_life():
    slow = fit(rows("web-1", [1000 + 0.5 * k for k in range(14)]))  # 0.5 MiB/day: significant but 0.35 % a week
    assert slow["growing"] and not growth.material(slow.to_frame().T, 7.0)[0]
    fast = fit(rows("web-1", [1000 + 10 * k for k in range(14)]))  # 10 MiB/day: 6 % a week
    assert growth.material(fast.to_frame().T, 7.0)[0]


def test_containers_are_fitted_apart_and_unknown_days_are_skipped():
    a = rows("web-1", [300 + 20 * k for k in range(14)])
    b = rows("api-1", [300] * 14, workload="api")
    b[3]["memory_max_bytes"] = np.nan  # a day without a raw maximum
    table = growth.fit(pd.DataFrame(a + b), STEP, END).set_index("workload")
    assert table.loc["web", "growing"] and not table.loc["api", "growing"]
    assert table.loc["api", "growth_days"] == 13


def test_the_fit_is_theil_sen_and_mann_kendall_over_every_pair_of_each_segment():
    """The demo's daily rows: the fit's slope and z (its pairs formed one gap at a time, growth._pair_slopes)
    equal, to the last bit, the median of the slopes and the sum of the signs of every pair of points of one
    segment taken one by one, per container."""
    from itertools import combinations
    from statistics import median

    from rightsize.analysis import growth as G
    from rightsize.demo import generate

    snap = generate()
    args = (snap.tables["usage_daily"], 300.0, pd.Timestamp(snap.meta["window_end"]))
    fitted, pts = G.fit(*args), G.segments(*args)
    slopes, signs, variance = {}, {}, {}
    for (seg, cid), g in pts.groupby(["seg", "cid"], sort=True):
        xy = list(zip(g["age"], g["y"]))
        for (x0, y0), (x1, y1) in combinations(xy, 2):
            slope = (y1 - y0) / (x1 - x0) if x1 != x0 else (np.nan if y1 == y0 else np.inf * np.sign(y1 - y0))
            slopes.setdefault(cid, []).extend([] if np.isnan(slope) else [slope])
            signs[cid] = signs.get(cid, 0.0) + (0.0 if np.isnan(slope) else float(np.sign(y1 - y0)))
        n = len(xy)
        variance[cid] = variance.get(cid, 0.0) + n * (n - 1) * (2 * n + 5) / 18.0
    assert len(slopes) > 10 and fitted["growing"].any()
    for cid, values in slopes.items():
        s, v = signs[cid], variance[cid]
        assert fitted["growth_bytes_per_day"].iloc[cid] == median(values)
        assert fitted["growth_z"].iloc[cid] == pytest.approx((s - np.sign(s)) / np.sqrt(v), rel=1e-12)
