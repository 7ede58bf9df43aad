"""The notebook's plots (``rs.plot_usage``, ``rs.plot_cross_az_matrix``) and the report's charts re-exported,
apart from the API façade (api.py) they draw from. matplotlib is imported when a plot is drawn, and the
report's charts (rightsize.emit.charts) when first used."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .analysis import Analysis
from .api import ConfigLike, PolicyLike, _recommendations_of, cross_az, recommend, workload_ref
from .errors import ConfigError, RightsizeError
from .quantity import GIB, MIB
from .refs import WorkloadRef
from .snapshot import Snapshot

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def plot_usage(snapshot: Snapshot, workload: str, recommendations: "pd.DataFrame | Analysis | None" = None, *,
               container: str | None = None, config: ConfigLike = None, policy: PolicyLike = None) -> "Figure":
    """One workload's usage over time (the snapshot's ``series`` table) against its current and recommended
    requests and limits.

    One row of plots per container: CPU in cores (left) and working set in MiB or GiB (right), the busiest
    replica at each step. ``workload`` as in :func:`workload_ref`. ``recommendations`` defaults to
    ``recommend(snapshot, policy, config)``. RightsizeError when the snapshot has no series for it (collect
    them with ``rightsize collect --series NAMESPACE/KIND/NAME`` or :func:`fetch_series`).
    """
    from matplotlib.figure import Figure

    key = workload_ref(snapshot, workload)
    label = str(WorkloadRef(*key[1:]))
    series = _rows_of(snapshot.tables["series"], key)
    if container is not None:
        series = series[series["container"] == container]
    if series.empty:
        what = f"container {container!r} of {label}" if container else label
        raise RightsizeError(
            f"{what}: no usage series in this snapshot; fetch them with "
            f"`rightsize collect --series {label}` or rightsize.fetch_series(...)"
        )
    recs = _rows_of(_recommendations_of(recommendations) if recommendations is not None
                    else recommend(snapshot, policy=policy, config=config), key)
    current = _rows_of(snapshot.tables["containers"], key)
    names = sorted(series["container"].unique())
    fig = Figure(figsize=(12, 3.2 * len(names)), layout="constrained")
    axes = fig.subplots(len(names), 2, squeeze=False)
    peak_memory = float(series["memory_bytes"].max())
    mem_unit, mem_factor = ("GiB", GIB) if peak_memory >= GIB else ("MiB", MIB)
    for row, name in zip(axes, names):
        s = series[series["container"] == name].sort_values("timestamp")
        cur = current[current["container"] == name]
        rec = recs[recs["container"] == name]
        for ax, resource, column, unit, factor in (
            (row[0], "cpu", "cpu_cores", "cores", 1.0),
            (row[1], "memory", "memory_bytes", mem_unit, mem_factor),
        ):
            _usage_axis(ax, s, cur, rec, resource, column, unit, factor)
            ax.set_title(f"{label} · {name} · {'CPU' if resource == 'cpu' else 'memory'}", fontsize=10)
    return fig


def _usage_axis(ax, s: pd.DataFrame, cur: pd.DataFrame, rec: pd.DataFrame, resource: str, column: str, unit: str,
                factor: float) -> None:
    """One container's usage of one resource against its current and recommended request and limit."""
    # usage on top: it often sits right at a limit (OOM-killed or throttled containers)
    ax.plot(s["timestamp"], s[column] / factor, color="tab:blue", linewidth=0.8, zorder=3,
            label="usage (busiest replica)")
    base = "cpu_{}_cores" if resource == "cpu" else "memory_{}_bytes"
    levels = (
        ("current", _first(cur, base.format("request")), _first(cur, base.format("limit")), "tab:gray"),
        ("recommended", _first(rec, base.format("request") + "_recommended"),
         _first(rec, base.format("limit") + "_recommended"), "tab:green"),
    )
    for which, request, limit, colour in levels:
        # a limit equal to its request would hide behind it: draw one line labelled as both
        same = not np.isnan(request) and not np.isnan(limit) and bool(np.isclose(request, limit))
        if not np.isnan(request):
            ax.axhline(request / factor, color=colour, linestyle="-", linewidth=1.4,
                       label=f"{which} request = limit" if same else f"{which} request")
        if not np.isnan(limit) and not same:
            ax.axhline(limit / factor, color=colour, linestyle="--", linewidth=1.4, label=f"{which} limit")
    ax.set_ylabel(unit)
    # room above the highest line, so a recommended request or limit is not drawn on the frame
    values = [float(s[column].max())] + [v for _, req, lim, _ in levels for v in (req, lim) if not np.isnan(v)]
    ax.set_ylim(0, max(values) / factor * 1.15 or 1.0)
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    ax.legend(fontsize=7, loc="best", framealpha=0.8)


def plot_cross_az_matrix(data: "pd.DataFrame | Snapshot | Analysis", config: ConfigLike = None, *,
                         value: str = "usd_per_month") -> "Figure":
    """Heatmap of inter-AZ cost between workloads: sources as rows, destinations as columns, cells in
    USD/month (or another numeric cross-AZ column via ``value``, e.g. ``cross_az_gb_per_month``).

    ``data`` is a cross-AZ table (:func:`cross_az`), an Analysis, or a Snapshot (analysed with ``config``).
    """
    from matplotlib.figure import Figure

    if isinstance(data, Snapshot):
        table = cross_az(data, config=config)
    elif isinstance(data, pd.DataFrame):
        table = data
    else:
        table = data.cross_az
    if value not in table.columns:
        raise ConfigError(f"plot_cross_az_matrix: unknown column {value!r}; e.g. usd_per_month, cross_az_gb_per_month")
    src = table["source_namespace"].astype(str) + "/" + table["source_workload"].astype(str)
    dst = table["destination_namespace"].astype(str) + "/" + table["destination_workload"].astype(str)
    matrix = (pd.DataFrame({"source": src, "destination": dst, "value": table[value].astype(float)})
              .pivot_table(index="source", columns="destination", values="value", aggfunc="sum"))
    if not matrix.empty:
        matrix = matrix.loc[matrix.sum(axis=1).sort_values(ascending=False).index,
                            matrix.sum(axis=0).sort_values(ascending=False).index]
    rows, cols = matrix.shape
    fig = Figure(figsize=(max(6.0, 0.7 * cols + 3), max(3.0, 0.45 * rows + 2)), layout="constrained")
    ax = fig.subplots()
    unit = "USD/month" if value.startswith("usd") else value
    if matrix.empty:
        ax.text(0.5, 0.5, "no cross-AZ traffic in this snapshot", ha="center", va="center")
        ax.set_axis_off()
        return fig
    image = ax.imshow(matrix.to_numpy(), cmap="Oranges", aspect="auto")
    ax.set_xticks(range(cols), matrix.columns, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(rows), matrix.index, fontsize=8)
    ax.set_xlabel("destination")
    ax.set_ylabel("source")
    ax.set_title(f"Cross-AZ traffic cost ({unit})")
    top = float(np.nanmax(matrix.to_numpy()))
    for (i, j), cell in np.ndenumerate(matrix.to_numpy()):
        if not np.isnan(cell):
            ax.text(j, i, f"{cell:,.0f}" if cell >= 10 else f"{cell:.1f}", ha="center", va="center", fontsize=7,
                    color="white" if cell > 0.6 * top else "black")
    fig.colorbar(image, ax=ax, label=unit)
    return fig


# The report's charts (rightsize.emit.charts), each taking analysis tables and returning a Figure, or None
# when there is nothing to draw. Re-exported here, imported only when first used (matplotlib is slow to load):
# rightsize/__init__.py forwards them the same way.
REPORT_CHARTS = (
    "savings_by_namespace", "requested_vs_used", "request_usage_ratios", "spot_readiness", "cross_az_by_pair",
    "top_workload_percentiles",
)


def __getattr__(name: str) -> Any:
    if name in REPORT_CHARTS:
        from .emit import charts

        return getattr(charts, name)
    raise AttributeError(f"module 'rightsize.plots' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(REPORT_CHARTS))


def _rows_of(table: pd.DataFrame, key: tuple[str, str, str, str]) -> pd.DataFrame:
    cluster, namespace, kind, name = key
    return table[WorkloadRef(namespace, kind, name, cluster=cluster).mask(table)]


def _first(rows: pd.DataFrame, column: str) -> float:
    if column not in rows.columns or rows.empty:
        return float("nan")
    return float(rows[column].iloc[0])
