"""The analysis `rightsize analyze` saves beside its tables, so `report` and `patch` need not recompute it.

The folder ``analysis/`` inside analyze's output holds each Analysis table as parquet and the rest
(summary, warnings, requests against the bill, the backtest's note) as JSON, plus ``key.json``: the
key it was computed for (the snapshot's meta.json digest and table checksums, the effective config,
the rightsize version) and the sha256 of every other file, and of each CSV analyze wrote beside the folder
(``csv``): `report` copies a CSV whose bytes still match instead of writing it again (seconds at 20,000
containers). It is written in the same staged folder as
analyze's CSVs, so it lands whole or not at all. A reader takes it only when the key is the one it
would compute and every file matches its digest: anything else (no folder, another snapshot or
config, a torn or edited file) returns None with the reason, and the caller recomputes. Parquet and
JSON only: reading a saved analysis runs no code from the folder.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from pathlib import Path
from typing import Callable

import pandas as pd

from ..analysis import Analysis
from ..atomic import bytes_sha256, file_sha256, write_text_atomic
from ..errors import RightsizeError
from ..storage import local_copy
from ..version import __version__
from .tables import TABLE_FILES

FOLDER = "analysis"
KEY_FILE = "key.json"
CSV_KEY = "csv"  # key.json: {CSV file name: its sha256}, of the CSVs beside analysis/
EXTRAS_FILE = "extras.json"
FORMAT = 1
_TABLES = tuple(f.name for f in dataclasses.fields(Analysis) if f.type in ("pd.DataFrame", pd.DataFrame))
_EXTRAS = tuple(f.name for f in dataclasses.fields(Analysis) if f.name not in _TABLES)


def analysis_key(snapshot, config) -> dict | None:
    """What a saved analysis must have been computed from, or None when it cannot be told (a snapshot with no
    recorded checksums or digest, e.g. the demo generated in memory, or a fleet merged from several)."""
    meta = snapshot.meta
    if meta.get("fleet") or not meta.get("checksums") or not meta.get("digest"):
        return None
    # the whole meta as read (warnings and tables left out by the reader too), not only the money fields
    snap = hashlib.sha256(json.dumps(meta, sort_keys=True, default=str).encode()).hexdigest()
    cfg = hashlib.sha256(repr(config).encode()).hexdigest()
    return {"format": FORMAT, "rightsize": __version__, "snapshot_sha256": snap, "config_sha256": cfg}


def write_analysis(analysis: Analysis, snapshot, config, key: dict | None, folder: Path,
                   texts: dict[str, str] | None = None) -> None:
    """analyze's output into ``folder`` (staged): the CSVs and summary.json, and the analysis saved for ``key``
    (none when None: a snapshot it could not be matched to). ``texts``: CSVs already rendered (tables.table_texts)."""
    from .tables import write_tables

    write_tables(analysis, snapshot, config, folder, texts=texts)
    if key is not None:
        write_saved(analysis, key, folder)


class CsvsAhead:
    """analysis.analyze's while_backtest: renders {CSV name: text} (``texts``) of every table but the backtest, for
    write_analysis' ``texts``: seconds at 20,000 containers the main thread would otherwise spend after the backtest,
    waiting for it meanwhile."""

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}

    def __call__(self, analysis: Analysis) -> None:
        from .tables import table_texts

        self.texts.update(table_texts(analysis, [name for name in TABLE_FILES if name != "backtest.csv"]))


def write_saved(analysis: Analysis, key: dict, folder: Path) -> None:
    """Write ``analysis`` under ``folder``/analysis/ (a staged folder: the caller swaps it in whole)."""
    target = Path(folder) / FOLDER
    target.mkdir(parents=True, exist_ok=True)
    files = {}
    objects = {}
    for name in _TABLES:
        df = getattr(analysis, name)
        objects[name] = [str(c) for c in df.columns if df[c].dtype == object]
        buffer = io.BytesIO()
        df.to_parquet(buffer)
        files[f"{name}.parquet"] = buffer.getvalue()
    extras = {name: getattr(analysis, name) for name in _EXTRAS}
    files[EXTRAS_FILE] = json.dumps({"extras": extras, "object_columns": objects}).encode()
    for name, data in files.items():
        write_text_atomic(target / name, data)
    sums = {name: bytes_sha256(data) for name, data in files.items()}
    csvs = {name: file_sha256(Path(folder) / name) for name in TABLE_FILES if (Path(folder) / name).is_file()}
    write_text_atomic(target / KEY_FILE, json.dumps({**key, "files": sums, CSV_KEY: csvs}, indent=1) + "\n")


def saved_csvs(folder) -> dict[str, tuple[Path, str]]:
    """The CSVs analyze wrote beside the analysis it saved in the local ``folder``, with the sha256 key.json holds
    of each: {name: (path, digest)}; none for an S3 folder, a key.json of an earlier format or one unreadable."""
    try:
        sums = json.loads((Path(folder) / FOLDER / KEY_FILE).read_text()).get(CSV_KEY) or {}
    except (OSError, ValueError, AttributeError):
        return {}
    return {name: (Path(folder) / name, sums[name]) for name in TABLE_FILES
            if isinstance(sums.get(name), str) and (Path(folder) / name).is_file()}


def read_saved(folder: Path, key: dict) -> tuple[Analysis | None, str, bool]:
    """The analysis saved under ``folder``/analysis/ for ``key``; else None, why it was not taken ('' when there
    is none at all) and whether that is a fault to warn of (a torn, edited or unreadable file) rather than a
    saved analysis of another snapshot or config."""
    target = Path(folder) / FOLDER
    if not (target / KEY_FILE).is_file():
        return None, "", False
    try:
        saved = json.loads((target / KEY_FILE).read_text())
        changed = [k for k in key if saved.get(k) != key[k]]
        if changed:
            return None, f"{target} was computed from another {_what(changed)}", False
        sums = saved["files"]
        expected = {f"{n}.parquet" for n in _TABLES} | {EXTRAS_FILE}
        bad = sorted(n for n in expected if sums.get(n) != _digest(target / n))
        if bad:
            return None, f"{target / bad[0]} does not match its digest in {KEY_FILE} (torn or edited)", True
        return _load(target), "", False
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return None, f"{target} cannot be read ({type(exc).__name__}: {exc})", True


def _digest(path: Path) -> str:
    return file_sha256(path) if path.is_file() else "missing"


def find_saved(folders: list, key: dict | None, log: Callable[[str], None],
               warn: Callable[[str], None]) -> tuple[Analysis | None, dict[str, tuple[Path, str]]]:
    """The analysis saved for ``key`` in the first of ``folders`` (local or S3) that holds it, else None, and the CSVs
    beside it (saved_csvs); ``log`` says which was read, or why none was (another snapshot or config, none saved),
    ``warn`` names a torn or edited one."""
    reasons = [] if key is not None else ["no saved analysis can be matched to a fleet's merged snapshot or one without checksums"]
    for folder in folders if key is not None else []:
        try:
            with local_copy(folder, what="saved analysis", keep=lambda rel: rel.startswith(f"{FOLDER}/")) as here:
                analysis, why, fault = read_saved(here, key)
        except (RightsizeError, OSError) as exc:
            analysis, why, fault = None, f"{folder}: {exc}", False  # e.g. an S3 folder analyze never wrote
        if analysis is not None:
            log(f"analysis read from {folder}/{FOLDER} (saved by rightsize analyze for this snapshot and config)")
            return analysis, saved_csvs(folder) if isinstance(folder, Path) else {}
        if fault:
            warn(f"saved analysis not used: {why}; computing it again")
        reasons += [why] if why else []
    log("computing the analysis" + (f" ({'; '.join(reasons)})" if reasons else " (no saved analysis; `rightsize analyze` saves one)"))
    return None, {}


def _what(changed: list[str]) -> str:
    names = {"snapshot_sha256": "snapshot", "config_sha256": "config", "rightsize": "rightsize version", "format": "format"}
    return " and ".join(names.get(k, k) for k in changed)


def _load(target: Path) -> Analysis:
    extras = json.loads((target / EXTRAS_FILE).read_text())
    values = dict(extras["extras"])
    for name in _TABLES:
        df = pd.read_parquet(target / f"{name}.parquet")
        # parquet reads a column of Python strings back as the string dtype: restore the object columns
        object_columns = extras["object_columns"][name]
        values[name] = df.astype({c: object for c in object_columns}) if object_columns else df
    return Analysis(**values)
