"""Check: two folders `rightsize analyze` wrote (CSVs, summary.json, analysis/*.parquet and *.json) hold the same content.

    rightsize analyze --snapshot S --out /tmp/before      # with the older tree's rightsize
    rightsize analyze --snapshot S --out /tmp/after       # with this tree's
    python3 benchmarks/analysis_identical.py /tmp/before /tmp/after

Every file is compared byte for byte first; a parquet file that differs in bytes is read back and its
table compared with pandas ``equals`` (the writer's metadata left out), also after sorting by its key
columns, to tell a change of row order from a change of content. Prints one line per file and exits 1
when any content differs (a change of row order alone is named, and counts as a difference too).
"""
from __future__ import annotations

import sys
from pathlib import Path

KEYS = ["policy", "cluster", "namespace", "kind", "workload", "container"]


def compare_parquet(a: Path, b: Path) -> str:
    """'same table', 'same rows, other order', or what differs."""
    import pandas as pd

    x, y = pd.read_parquet(a), pd.read_parquet(b)
    if list(x.columns) != list(y.columns):
        return f"columns differ: {sorted(set(x.columns) ^ set(y.columns))}"
    if x.dtypes.astype(str).tolist() != y.dtypes.astype(str).tolist():
        return "dtypes differ: " + ", ".join(f"{c} {x[c].dtype}/{y[c].dtype}" for c in x if x[c].dtype != y[c].dtype)
    if x.equals(y):
        return "same table"
    keys = [k for k in KEYS if k in x]
    if keys and len(x) == len(y):
        xs = x.sort_values(keys, kind="stable").reset_index(drop=True)
        ys = y.sort_values(keys, kind="stable").reset_index(drop=True)
        if xs.equals(ys):
            return "same rows, other order"
    cols = [c for c in x if len(x) == len(y) and not x[c].reset_index(drop=True).equals(y[c].reset_index(drop=True))]
    return f"content differs ({len(x)} vs {len(y)} rows; columns {cols[:8]})"


def main() -> int:
    a, b = Path(sys.argv[1]), Path(sys.argv[2])
    names = sorted({p.relative_to(a) for p in a.rglob("*") if p.is_file()} | {p.relative_to(b) for p in b.rglob("*") if p.is_file()})
    bad = 0
    for name in names:
        pa_, pb = a / name, b / name
        if not pa_.exists() or not pb.exists():
            print(f"{name}: only in {'the second' if pa_.exists() is False else 'the first'} folder")
            bad += 1
        elif pa_.read_bytes() == pb.read_bytes():
            print(f"{name}: identical bytes")
        elif name.suffix == ".parquet":
            verdict = compare_parquet(pa_, pb)
            print(f"{name}: {verdict}")
            bad += verdict != "same table"
        else:
            print(f"{name}: bytes differ")
            bad += 1
    print(f"{bad} difference(s) in {len(names)} files")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
