"""Week over week, the I/O shell: find and read an earlier report folder (its summary.json and
recommendations.csv). The deltas themselves are computed by the pure ``analysis.compare.compare``.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from ..analysis.compare import DELTA_METRICS, Comparison, compare  # noqa: F401  (re-exported)
from ..errors import RightsizeError
from ..schema import CONTAINER_KEY, RECOMMENDATION_COLUMNS

WEEK_DIR = re.compile(r"^\d{4}-W\d{2}$")


def load_previous(folder: str | Path) -> tuple[dict, pd.DataFrame]:
    """summary.json and recommendations.csv of an earlier report; RightsizeError names the missing file."""
    folder = Path(folder)
    summary_file, recs_file = folder / "summary.json", folder / "recommendations.csv"
    try:
        summary = json.loads(summary_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RightsizeError(f"{summary_file}: no summary.json to compare with (is {folder} a rightsize report folder?)") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise RightsizeError(f"{summary_file}: unreadable: {exc}") from None
    str_cols = {c.name: str for c in RECOMMENDATION_COLUMNS if c.dtype == "str"}
    try:
        recs = pd.read_csv(recs_file, dtype=str_cols, keep_default_na=False, na_values={
            c.name: [""] for c in RECOMMENDATION_COLUMNS if c.dtype != "str"})
    except FileNotFoundError:
        raise RightsizeError(f"{recs_file}: no recommendations.csv to compare with") from None
    except (OSError, ValueError) as exc:
        raise RightsizeError(f"{recs_file}: unreadable: {exc}") from None
    missing = [k for k in CONTAINER_KEY + ("status", "flags") if k not in recs.columns]
    if missing:
        raise RightsizeError(f"{recs_file}: missing column {missing[0]!r}; not a rightsize recommendations.csv")
    return summary, recs


def find_previous_dir(out_dir: str | Path) -> Path | None:
    """The latest sibling week folder (YYYY-Www) before ``out_dir`` that holds a summary.json."""
    out_dir = Path(out_dir)
    parent = out_dir.parent
    if not WEEK_DIR.match(out_dir.name) or not parent.is_dir():  # a custom --out has no "previous week"
        return None
    earlier = sorted(p for p in parent.iterdir()
                     if p.is_dir() and WEEK_DIR.match(p.name) and p.name < out_dir.name and (p / "summary.json").exists())
    return earlier[-1] if earlier else None
