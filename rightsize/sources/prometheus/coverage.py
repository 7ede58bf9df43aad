"""Coverage: the part of the window the server really has data for.

A server may keep fewer days than the window asks for (kube-prometheus-stack keeps 10 by default,
rightsize asks for 14); every per-hour figure (node bill, idle capacity, cross-AZ traffic, the average
pods of batch and autoscaled work) must then be divided by the hours observed, not the window's. The
coverage is measured at no extra request: the first and last step with any container sample come from
the usage pulls, and the nodes' from two parts of the cluster-wide instant query
(``Queries.coverage``: a subquery over one aggregated series of few series). ``rightsize doctor``
measures it the same way from the pod owners' series instead of the pulls.
"""
from __future__ import annotations

import datetime as dt

import pandas as pd

from ...snapshot import Snapshot
from .usage import Grid


def span_times(grid: Grid, span: tuple[int, int]) -> tuple[float, float] | None:
    """(first, last) unix seconds of a (first, last) step span; None for no sample."""
    return None if span[0] < 0 else (grid.first + span[0] * grid.step, grid.first + span[1] * grid.step)


def coverage_of(rows: pd.DataFrame) -> tuple[float, float] | None:
    """(first, last) step with data of the coverage parts of the cluster query (first_* / last_*); None without."""
    first = rows.loc[rows["stat"].str.startswith("first_"), "value"]
    last = rows.loc[rows["stat"].str.startswith("last_"), "value"]
    return (float(first.min()), float(last.max())) if len(first) and len(last) else None


def record_coverage(snapshot: Snapshot, cluster: str, grid: Grid, spans: list) -> dict | None:
    """meta.json ``coverage`` of ``cluster``: the first and last step at which the server has any sample of it
    (``spans``: (first, last) unix seconds measured from different series, None where none), as start (the
    first step's interval start), end and hours. A coverage shorter than the window by more than a step is a
    caveat: a server keeps fewer days than the window asks for (kube-prometheus-stack keeps 10 by default)."""
    spans = [sp for sp in spans if sp is not None]
    if not spans:
        return None
    first, last = max(min(sp[0] for sp in spans), grid.first), min(max(sp[1] for sp in spans), grid.end)
    hours, window_hours = (last - first + grid.step) / 3600.0, grid.n * grid.step / 3600.0
    coverage = {"start": _iso(first - grid.step), "end": _iso(last), "hours": hours, "window_hours": window_hours}
    snapshot.meta.setdefault("coverage", {})[cluster] = coverage
    if hours < window_hours - grid.step / 3600.0 - 1e-9:
        snapshot.warn("short_coverage", f"cluster {cluster}: the server has data for {hours / 24:.1f} of the {window_hours / 24:g} "
                      f"days of the window ({coverage['start'][:16]} to {coverage['end'][:16]} UTC; is its retention shorter "
                      "than [general] window?): the node bill, idle capacity, cross-AZ traffic and the pods batch and autoscaled "
                      "work ran are monthly rates over those days, and usage statistics cover only them",
                      affects="every per-hour figure; usage history")
    return coverage


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat()
