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
from ..storage import children, has_file, local_copy, location

WEEK_DIR = re.compile(r"^\d{4}-W\d{2}$")


def load_previous(folder: str | Path) -> tuple[dict, pd.DataFrame]:
    """summary.json and recommendations.csv of an earlier report (a folder or an s3:// prefix);
    RightsizeError names the missing file."""
    folder = location(folder)
    with local_copy(folder, what="report", keep=lambda rel: rel in ("summary.json", "recommendations.csv")) as local:
        return _load_local(local)


def _load_local(folder: Path) -> tuple[dict, pd.DataFrame]:
    summary_file, recs_file = folder / "summary.json", folder / "recommendations.csv"
    try:
        summary = json.loads(summary_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RightsizeError(f"{summary_file}: no summary.json to compare with (is {folder} a rightsize report folder?)") from None
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: not JSON, not UTF-8
        raise RightsizeError(f"{summary_file}: unreadable: {'nested too deeply' if isinstance(exc, RecursionError) else exc}") from None
    if not isinstance(summary, dict) or not isinstance(summary.get("totals", {}), dict):
        raise RightsizeError(f"{summary_file}: not a rightsize summary.json (expected an object with totals)")
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
    """The same folder in the latest earlier week that holds a report: for ``reports/2026-W47`` the latest
    ``reports/YYYY-Www`` before it with a summary.json, for ``s3://b/rightsize/2026-W47/prod`` the latest
    ``s3://b/rightsize/YYYY-Www/prod`` with a committed one. None without a week folder in the path (a
    custom --out compares only with --compare)."""
    out = location(out_dir)
    parts = list(out.parts)
    weeks = [i for i, part in enumerate(parts) if WEEK_DIR.match(part)]
    if not weeks:
        return None
    week_dir = out
    for _ in range(len(parts) - 1 - weeks[-1]):
        week_dir = week_dir.parent
    suffix, root = "/".join(parts[weeks[-1] + 1:]), week_dir.parent
    for name in sorted(_week_names(root), reverse=True):
        if name < week_dir.name:
            candidate = root / name / suffix if suffix else root / name
            if _has_report(candidate):
                return candidate
    return None


def _week_names(root) -> list[str]:
    return [n for n in children(root) if WEEK_DIR.match(n)]


def _has_report(folder) -> bool:
    return has_file(folder, "summary.json")
