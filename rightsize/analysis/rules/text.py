"""The rules' reason texts, one per row at once (vectorised): CPU in millicores, memory in MiB, percentages."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ...quantity import MIB


def _finite(values: np.ndarray) -> np.ndarray:
    """Values fit for text: unknown or infinite -> 0 (their rows' masks leave them out), and within int64."""
    return np.clip(np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0), -1e15, 1e15)


def cpu_text(cores: np.ndarray) -> pd.Series:
    return pd.Series(np.round(_finite(cores) * 1000).astype(np.int64)).astype(str) + "m"


def mem_text(num_bytes: np.ndarray) -> pd.Series:
    return pd.Series(np.ceil(_finite(num_bytes) / MIB).astype(np.int64)).astype(str) + "Mi"


def pct_text(fraction: np.ndarray) -> pd.Series:
    return pd.Series(np.round(_finite(fraction) * 100).astype(np.int64)).astype(str) + "%"


def num_text(values: np.ndarray, digits: int = 1) -> pd.Series:
    rounded = np.round(_finite(values), digits)
    return pd.Series(rounded.astype(np.int64) if digits == 0 else rounded).astype(str)


def ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return a / b


def joined(a, b) -> pd.Series:
    """Element-wise a + b of two arrays of text (numpy < 2 has no string addition; pandas' works on objects)."""
    return pd.Series(np.asarray(a, dtype=object)) + pd.Series(np.asarray(b, dtype=object))


def join(parts: list[tuple[np.ndarray, object]], n: int, sep: str) -> np.ndarray:
    """Per row, the texts whose mask is True, joined by ``sep`` (element-wise concatenation of object arrays, on
    the rows of each mask only: a recommendation has a hundred possible reasons, each row a few)."""
    out = np.full(n, "", dtype=object)
    for mask, text in parts:
        rows = np.flatnonzero(np.asarray(mask, dtype=bool))
        if not len(rows):
            continue
        if isinstance(text, pd.Series):
            texts = text.to_numpy(dtype=object)[rows]
        elif isinstance(text, np.ndarray):
            texts = text[rows].astype(object)
        else:
            texts = np.full(len(rows), text, dtype=object)
        here = out[rows]
        out[rows] = here + np.where(here != "", sep, "").astype(object) + texts
    return out
