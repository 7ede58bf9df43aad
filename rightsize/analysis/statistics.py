"""Statistics a policy asks for that the usage table does not carry: another percentile, a decayed one,
computed from the snapshot's histograms with the sketch's reducers (rightsize/sketch.py) over the registry
(rightsize/usage_stats.py).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..sketch import histogram_statistics, ids_of
from ..usage_stats import CONTAINER_KEY, DAY_SECONDS, StatisticName, column_for, is_stored


def day_weights(days: pd.Series, end: pd.Timestamp, half_life_seconds: float | None) -> np.ndarray:
    """Weight of each day's samples: 1, or 0.5 ** (age / half-life) with age from the middle of the day
    to the window end (VPA decays its histogram the same way, per sample)."""
    if not half_life_seconds:
        return np.ones(len(days))
    age = (end - pd.to_datetime(days, utc=True)).dt.total_seconds().to_numpy() - DAY_SECONDS / 2
    return np.power(0.5, np.maximum(age, 0.0) / half_life_seconds)


def derived_statistics(hist: pd.DataFrame, needed: set[tuple[str, str, str, float]], end: pd.Timestamp | None) -> pd.DataFrame:
    """Per container, the columns (see :func:`column_for`) of every (resource, stat, basis, half-life)
    in ``needed`` that the usage table does not carry, from ``usage_histograms`` rows. Empty when
    nothing is needed; NaN for containers without histograms."""
    keys = list(CONTAINER_KEY)
    wanted = {n for n in needed if not is_stored(*n)}
    out = pd.DataFrame(columns=keys)
    if not wanted or hist.empty:
        return out.assign(**{column_for(*n): pd.Series(dtype=float) for n in wanted})
    ids = ids_of(hist, keys)
    for resource, stat, basis, half_life in sorted(wanted):
        weight = pd.Series(day_weights(hist["day"], end, half_life), index=hist.index) if half_life and end is not None else None
        q = StatisticName(stat).quantile
        stats = histogram_statistics(hist, keys, resource, [q], basis, weight, ids)
        stats = stats.rename(columns={q: column_for(resource, stat, basis, half_life)}).drop(columns="samples")
        out = stats if out.empty else out.merge(stats, on=keys, how="outer")
    return out
