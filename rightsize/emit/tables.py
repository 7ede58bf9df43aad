"""Data files of a report: one CSV per analysis table plus summary.json.

Columns keep the schema's names and units (schema.RECOMMENDATION_COLUMNS etc.); unset / unknown
values are empty cells, never 0. Files are written to a temporary name and renamed, so a reader
never sees half a file.
"""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import bytes_sha256, write_text_atomic
from ..errors import RightsizeError
from ..escape import csv_cell
from ..schema import (BACKTEST_COLUMNS, CROSS_AZ_COLUMNS, IDLE_COLUMNS, LOAD_BALANCER_COLUMNS, NODE_GROUP_COLUMNS, RECOMMENDATION_COLUMNS,
                      SPOT_COLUMNS)

# file name -> (Analysis attribute, schema columns)
TABLE_FILES = {
    "recommendations.csv": ("recommendations", RECOMMENDATION_COLUMNS),
    "spot.csv": ("spot", SPOT_COLUMNS),
    "cross_az.csv": ("cross_az", CROSS_AZ_COLUMNS),
    "load_balancers.csv": ("load_balancers", LOAD_BALANCER_COLUMNS),
    "idle.csv": ("idle", IDLE_COLUMNS),
    "node_groups.csv": ("node_groups", NODE_GROUP_COLUMNS),
    "backtest.csv": ("backtest", BACKTEST_COLUMNS),
}
SUMMARY_FILE = "summary.json"


def ordered(df: pd.DataFrame, columns) -> pd.DataFrame:
    """Schema columns first (missing ones as empty), extra columns after."""
    names = [c.name for c in columns]
    out = df.copy()
    for n in names:
        if n not in out.columns:
            out[n] = pd.NA
    return out[names + [c for c in out.columns if c not in names]]


def table_csv(df: pd.DataFrame, columns) -> str:
    """The one CSV writer: every text cell that a spreadsheet would run as a formula is neutralised
    (escape.csv_cell, OWASP's rule), checked once per distinct value. A file with a carriage return in a cell
    quotes every cell: the csv module quotes only for the line terminator ("\n"), and a lone CR left bare
    ends the row in most readers, so the rest of the name would start a cell of its own (a name "\r=x")."""
    out = ordered(df, columns)
    text = [c for c in out.columns if pd.api.types.is_string_dtype(out[c]) or isinstance(out[c].dtype, pd.CategoricalDtype)]
    bare_cr = False
    if text:
        out = out.copy()
        for c in text:
            values = out[c].astype(object)
            distinct = [v for v in pd.unique(values) if isinstance(v, str)]
            bare_cr = bare_cr or any("\r" in v for v in distinct)
            mapped = values.map({v: csv_cell(v) for v in distinct})
            out[c] = mapped.where(mapped.notna(), values)
    floats = [c for c in out.columns if out[c].dtype == np.float64] if not bare_cr else []
    if floats:  # (QUOTE_ALL writes Python's repr of each float: left to pandas)
        out = out.assign(**{c: _float_texts(out[c].to_numpy()) for c in floats})
    return out.to_csv(index=False, quoting=csv.QUOTE_ALL if bare_cr else csv.QUOTE_MINIMAL)


def _float_texts(values: np.ndarray) -> np.ndarray:
    """A float64 column as to_csv writes it unquoted (numpy's str of each value; NaN kept, for the empty cell),
    each distinct value formatted once: at 20,000 containers most cells repeat a few hundred values, and
    formatting every float is most of to_csv's time. Distinct by their bits, so -0.0 stays apart from 0.0."""
    codes, uniques = pd.factorize(values.view(np.int64))
    out = uniques.view(np.float64).astype(str).astype(object)[codes]
    out[np.isnan(values)] = np.nan
    return out


def table_texts(analysis, names=None) -> dict[str, str]:
    """{CSV name: its text} of the analysis' tables named (TABLE_FILES' names; default: all), for write_tables'
    ``texts``: rendered ahead, e.g. while the backtest runs (analysis.analyze's while_backtest)."""
    return {name: table_csv(getattr(analysis, attr), columns) for name, (attr, columns) in TABLE_FILES.items()
            if names is None or name in names}


def write_tables(analysis, snapshot, config, out_dir: str | os.PathLike, *, summary: dict | None = None,
                 copies: dict[str, tuple[Path, str]] | None = None, texts: dict[str, str] | None = None) -> dict[str, Path]:
    """Write every CSV and summary.json into ``out_dir`` (created if missing); returns {file name: path}.

    ``summary``: the summary.json content when the caller already has it (the report adds its
    thresholds and week-over-week parts); otherwise ``analysis.summary`` or a fresh summarize().
    ``copies``: {CSV name: (path, sha256)} of CSVs already written from this analysis (emit/saved.saved_csvs):
    each is copied when its bytes still have that digest, else written anew.
    ``texts``: {CSV name: text} already rendered from this analysis (table_texts), written as they are.
    """
    from ..analysis.summary import summarize

    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RightsizeError(f"{out_dir}: cannot create output folder: {exc.strerror or exc}") from None
    if summary is None:
        summary = analysis.summary or summarize(analysis, snapshot, config)
    paths: dict[str, Path] = {}
    for name, (attr, columns) in TABLE_FILES.items():
        data = (texts or {}).get(name)
        data = data if data is not None else _checked_bytes(*(copies or {}).get(name, (None, "")))
        paths[name] = write_text_atomic(out_dir / name, data if data is not None else table_csv(getattr(analysis, attr), columns))
    paths[SUMMARY_FILE] = write_text_atomic(out_dir / SUMMARY_FILE, json.dumps(summary, indent=2, sort_keys=False) + "\n")
    return paths


def _checked_bytes(path: Path | None, digest: str) -> bytes | None:
    """The bytes of ``path`` when their sha256 is ``digest`` ('sha256:<hex>'), else None (none, unreadable, changed)."""
    if path is None:
        return None
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    return data if bytes_sha256(data) == digest else None
