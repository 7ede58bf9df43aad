"""Charts: the drawn bars carry the analysis' numbers; PNG output; empty data gives no chart."""
from __future__ import annotations

import matplotlib
import numpy as np
import pytest

from analysis_factory import make_analysis, make_snapshot
from rightsize.config import Config
from rightsize.emit import charts

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def data():
    a = make_analysis()
    return a, make_snapshot(a)


def _bars(ax):
    return [p for p in ax.patches if isinstance(p, matplotlib.patches.Rectangle)]


def test_charts_draw_headless_whatever_the_backend_setting():
    """A report run in cron or CI may inherit MPLBACKEND naming a GUI backend and have no display. The charts
    are drawn on the Agg canvas without pyplot (no global figures, no backend needed), and loading them
    switches matplotlib to Agg, so pyplot used afterwards by a caller does not try to open a window either.
    Run in a fresh interpreter, where nothing has chosen a backend yet."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from analysis_factory import make_analysis, make_snapshot\n"
        "from rightsize.config import Config\n"
        "from rightsize.emit import charts\n"
        "a = make_analysis()\n"
        "pngs = charts.render_all(a, make_snapshot(a), Config())\n"
        "print('matplotlib.pyplot' in sys.modules, sorted(n for n, p in pngs.items() if p[:8] == b'\\x89PNG\\r\\n\\x1a\\n'))\n"
        "import matplotlib.pyplot as plt\n"
        "plt.figure()\n"
        "print(plt.get_backend().lower())\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["MPLBACKEND"] = "TkAgg"
    proc = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent)], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"False {sorted(name for name, _ in charts.CHARTS)}", "agg"]


def test_savings_by_namespace_bars_are_the_rollup(data):
    a, _ = data
    fig = charts.savings_by_namespace(a.recommendations)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    widths = dict(zip(labels, [b.get_width() for b in _bars(ax)]))
    assert widths == pytest.approx({"shop": 143.0, "staging": 34.0, "payments": -5.0})
    colors = {lab: b.get_facecolor() for lab, b in zip(labels, _bars(ax))}
    assert colors["payments"] != colors["shop"]  # an increase is drawn in another colour
    assert charts.png_bytes(fig)[:8] == PNG


def test_requested_vs_used_sums_requests_times_replicas(data):
    a, snap = data
    fig = charts.requested_vs_used(a.recommendations, snap.tables["usage"])
    cpu_ax, mem_ax = fig.axes[:2]
    labels = [t.get_text() for t in cpu_ax.get_yticklabels()]
    n = len(labels)
    requested = [b.get_width() for b in _bars(cpu_ax)[:n]]
    # shop: frontend 1 core x 3 + search 2 x 2 + cart 0.5 x 2 = 8 cores
    assert dict(zip(labels, requested))["shop"] == pytest.approx(8.0)
    recommended = dict(zip(labels, [b.get_width() for b in _bars(cpu_ax)[n:2 * n]]))
    # ledger has no recommendation: its current request counts (not 0)
    assert recommended["payments"] == pytest.approx(0.6 * 2 + 0.1 * 2 + 1.0)
    mem_requested = dict(zip(labels, [b.get_width() for b in _bars(mem_ax)[:n]]))
    assert mem_requested["staging"] == pytest.approx((1024 + 128) / 1024)
    used = dict(zip(labels, [b.get_width() for b in _bars(cpu_ax)[2 * n:3 * n]]))
    usage = snap.tables["usage"]
    shop = usage[usage["namespace"] == "shop"].merge(a.recommendations[["workload", "container", "namespace", "replicas"]])
    assert used["shop"] == pytest.approx((shop["cpu_pooled_p95_cores"] * shop["replicas"]).sum())


def test_ratio_histogram_counts_every_container(data):
    a, snap = data
    fig = charts.request_usage_ratios(a.recommendations, snap.tables["usage"])
    ax = fig.axes[0]
    heights = sum(b.get_height() for b in _bars(ax))
    assert heights == 16  # 8 containers x (CPU, memory)
    assert ax.get_xscale() == "log"


def test_spot_readiness_counts_verdicts(data):
    a, _ = data
    ax = charts.spot_readiness(a.spot).axes[0]
    counts = dict(zip([t.get_text() for t in ax.get_xticklabels()], [b.get_height() for b in _bars(ax)]))
    assert counts == {"ready": 2, "ready with changes": 1, "not suitable": 1, "not applicable": 1}
    texts = " ".join(t.get_text() for t in ax.texts)
    assert "$25/mo" in texts and "$90/mo" in texts


def test_cross_az_bars_are_sorted_costs(data):
    a, _ = data
    ax = charts.cross_az_by_pair(a.cross_az).axes[0]
    widths = [b.get_width() for b in _bars(ax)]
    assert widths == pytest.approx([0.53, 15.0, 39.6])  # largest on top
    assert ax.get_yticklabels()[-1].get_text() == "shop/frontend\n→ shop/search"


def test_top_workload_percentiles_draw_requests_and_percentiles(data):
    a, snap = data
    fig = charts.top_workload_percentiles(a.recommendations, snap.tables["usage"], top_n=3)
    axes = fig.axes
    assert len(axes) == 6  # 3 containers x (CPU, memory)
    first = axes[0]
    assert first.get_ylabel() == "shop/frontend/app"  # the largest saving first
    xs = sorted(float(np.asarray(l.get_xdata())[0]) for l in first.lines)
    usage = snap.tables["usage"].set_index(["workload", "container", "namespace"]).loc[("frontend", "app", "shop")]
    expected = sorted([usage[c] for c in ("cpu_pooled_p50_cores", "cpu_pooled_p90_cores", "cpu_pooled_p95_cores", "cpu_pooled_p99_cores", "cpu_max_cores")] + [1.0, 0.25])
    assert xs == pytest.approx(expected)


def test_empty_inputs_give_no_chart(data):
    a, _ = data
    empty = a.recommendations.iloc[0:0]
    assert charts.savings_by_namespace(empty) is None
    assert charts.requested_vs_used(empty) is None
    assert charts.request_usage_ratios(empty) is None
    assert charts.spot_readiness(a.spot.iloc[0:0]) is None
    assert charts.cross_az_by_pair(a.cross_az.iloc[0:0]) is None
    assert charts.top_workload_percentiles(a.recommendations, None) is None


def test_render_all_returns_png_for_every_chart(data):
    a, snap = data
    pngs = charts.render_all(a, snap, Config())
    assert list(pngs) == [name for name, _ in charts.CHARTS]
    assert all(p[:8] == PNG for p in pngs.values())
