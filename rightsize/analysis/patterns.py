"""Usage patterns: flat, diurnal, bursty or growing, per container and resource, from its histograms.

A policy's margin is chosen per pattern (benchmarks/recommend_bench.py --sweep, ``rightsize backtest
--sweep``): a flat working set needs little headroom over its max, a bursty CPU a lot over its p95.
The classifier reads the pooled percentiles the usage table holds (every replica's 5-minute samples,
from the per-pod histograms) and, for memory, the growth fit (growth.py):

- **growing** (memory): the working set rises with its pods' age (growth.py: significant and material);
- **bursty**: a heavy upper tail, the distance from p90 to p99 well beyond that from p50 to p90:
  ln(p99 / p90) >= max(BURSTY_TAIL x ln(p90 / p50), ln(TAIL_MIN)): rare excursions far above the body
  (a batch, a cache filling, traffic spikes), which a request at a percentile either misses or pays for;
- **flat**: a narrow body, p90 < FLAT x p50 (noise around a level);
- **diurnal**: the rest, a wide but light-tailed body: a regular swing (daily, weekly) or broad noise.
  The daily histograms hold no time of day, so a swing and broad noise are one class here; both repeat
  from one week to the next, which is what the margin has to cover.

Thresholds per resource (memory swings less than CPU). Pure numpy; '' where the statistics are unknown.
"""
from __future__ import annotations

import numpy as np

from ..usage_stats import PATTERNS  # noqa: F401 (the registry names them; classify says which applies)

FLAT = {"cpu": 1.6, "memory": 1.1}  # p90 / p50 below this: flat
TAIL_MIN = {"cpu": 1.25, "memory": 1.1}  # p99 / p90 at least this for a bursty tail ...
BURSTY_TAIL = 1.5  # ... and ln(p99 / p90) at least this many times ln(p90 / p50)


def classify(resource: str, p50, p90, p99, growing=None) -> np.ndarray:
    """The pattern of each row ('' when a percentile is unknown or not positive); ``growing`` (memory): rows
    whose working set grows with pod age (growth.py), which is their pattern whatever the shape."""
    p50, p90, p99 = (np.asarray(x, dtype=float) for x in (p50, p90, p99))
    known = (p50 > 0) & (p90 > 0) & (p99 > 0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        spread = np.log(np.where(known, p90 / p50, 1.0))
        tail = np.log(np.where(known, p99 / p90, 1.0))
    bursty = tail >= np.maximum(BURSTY_TAIL * spread, np.log(TAIL_MIN[resource]))
    out = np.where(bursty, "bursty", np.where(spread < np.log(FLAT[resource]), "flat", "diurnal")).astype(object)
    if growing is not None:
        out = np.where(np.asarray(growing, dtype=bool), "growing", out)
    return np.where(known, out, "").astype(object)
