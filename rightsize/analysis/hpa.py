"""HPA co-adjustment: change a request an HPA scales on together with the HPA's target (pure).

An HPA on CPU (or memory) utilization compares the pods' usage with ``target`` percent of the pod's
request, summed over its containers (init containers do not count). The usage per pod at which it
scales out, the *scaling point*, is target x pod request. Changing the request alone moves that
point; changing both keeps it:

    new target = old target x old pod request / new pod request

clamped to [lo, hi] percent. Above ``hi`` (the request shrank a lot: the pods use far less than the
HPA lets them) the requests are raised to scaling point / hi instead, so the point still holds.
Below ``lo`` (the request grew a lot: the pods use more than the scaling point, so the HPA is
likely pinned at maxReplicas) the target is ``lo`` and the scaling point rises with the request;
a request is never sized below the usage.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def pod_sums(groups: np.ndarray, counted: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the sum of ``values`` over the counted rows of its group, and whether every counted row of
    the group has a positive value (an HPA needs a request on every container)."""
    frame = pd.DataFrame({"g": groups, "v": np.where(counted, values, 0.0),
                          "bad": counted & ~(np.nan_to_num(values, nan=0.0) > 0), "n": counted})
    agg = frame.groupby("g").agg(v=("v", "sum"), bad=("bad", "any"), n=("n", "sum"))
    total = agg["v"].reindex(groups).to_numpy(dtype=float)
    complete = (~agg["bad"] & (agg["n"] > 0)).reindex(groups).to_numpy(dtype=bool)
    return total, complete


def co_adjust(target: np.ndarray, old_total: np.ndarray, new_total: np.ndarray, lo: np.ndarray,
              hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(target that keeps the scaling point, clamped to [lo, hi]; factor >= 1 the requests must grow by
    to keep it where the clamp is ``hi``). Percent and pod totals in any one unit."""
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = target * old_total / new_total
    factor = np.where(raw > hi, raw / hi, 1.0)
    return np.clip(raw, lo, hi), factor


def final_target(target: np.ndarray, old_total: np.ndarray, new_total: np.ndarray, lo: np.ndarray,
                 hi: np.ndarray) -> np.ndarray:
    """The whole-percent target for the requests as rounded (averageUtilization is an integer)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = target * old_total / new_total
    return np.clip(np.floor(raw + 0.5), np.ceil(lo), np.floor(hi))
