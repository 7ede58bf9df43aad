"""Check: the demo's outputs of this tree are byte-identical to those of an earlier revision, apart from timings.

    python3 benchmarks/demo_identical.py --baseline 1eb3d4d

Runs `rightsize demo` with each tree's package (a child process each, offline, deterministic) and compares
every file of the two output folders byte for byte. What may differ, and how it is compared instead:
- timings: meta.json's ``created_at`` (the time the snapshot was written) is blanked on both sides; a
  parquet file is compared by its table (pyarrow's metadata records the writer's pandas version);
- report.html is compared without its inline stylesheet and script (the page's code, which this tree
  changed: long tables are drawn in the browser from embedded data); everything it shows must be the
  same bytes; a long table's embedded rows are decoded and counted against recommendations.csv;
- files listed with --changed-by-design: listed as changed, not counted as a difference.
Prints one line per difference and exits 1 when anything else differs.
"""
from __future__ import annotations

import argparse
import base64
import csv
import gzip
import io
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "benchmarks")]


def run_demo(tree: str, out: Path) -> None:
    env = {**os.environ, "PYTHONPATH": tree or str(ROOT)}
    code = "import sys; from rightsize.cli import main; sys.exit(main(['demo', '--out', sys.argv[1], '--quiet']))"
    done = subprocess.run([sys.executable, "-c", code, str(out)], env=env, capture_output=True, text=True, cwd=tempfile.gettempdir())
    if done.returncode not in (0, 3):
        raise SystemExit(f"demo failed ({tree or 'this tree'}): {done.stderr[-2000:]}")


def normalised(path: Path) -> bytes:
    if path.name == "report.html":
        text = re.sub(r"<style>.*?</style>", "<style/>", path.read_text(), flags=re.S)
        return re.sub(r"<script>\n.*?</script>", "<script/>", text, flags=re.S).encode()
    if path.name == "meta.json":
        meta = json.loads(path.read_text())
        meta["created_at"] = ""
        return json.dumps(meta, sort_keys=True).encode()
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        return repr(table.replace_schema_metadata(None).to_pydict()).encode()
    return path.read_bytes()


def embedded_rows(html: str) -> list[list[str]] | None:
    """The rows of report.html's every-container table, decoded from its embedded data (None without)."""
    m = re.search(r'<script type="application/gzip;base64" id="recs-data">([^<]*)</script>', html)
    if not m:
        return None
    data = json.loads(gzip.decompress(base64.b64decode(m.group(1))))
    return data["rows"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="1eb3d4d")
    ap.add_argument("--changed-by-design", default="", help="comma-separated file names allowed to differ")
    args = ap.parse_args()
    from collect_bench import baseline_tree

    old = baseline_tree(args.baseline)
    with tempfile.TemporaryDirectory(prefix="rightsize-demo-check-") as tmp:
        a, b = Path(tmp) / "before" / "demo", Path(tmp) / "after" / "demo"  # the same folder name: report titles name it
        run_demo(old, a)
        run_demo("", b)
        names = sorted({p.relative_to(a) for p in a.rglob("*") if p.is_file()} | {p.relative_to(b) for p in b.rglob("*") if p.is_file()})
        allowed = set(args.changed_by_design.split(","))
        bad = same = 0
        for rel in names:
            pa, pb = a / rel, b / rel
            if not pa.exists() or not pb.exists():
                print(f"only in {'after' if pb.exists() else 'before'}: {rel}")
                bad += 1
            elif normalised(pa) == normalised(pb):
                same += 1
            elif rel.name in allowed:
                print(f"changed by design: {rel}")
            else:
                print(f"DIFFERS: {rel}")
                if pa.suffix in (".csv", ".md", ".json"):
                    la, lb = pa.read_text().splitlines(), pb.read_text().splitlines()
                    for x, y in [(x, y) for x, y in zip(la, lb) if x != y][:3]:
                        print(f"  before: {x[:300]}\n  after:  {y[:300]}")
                bad += 1
        rows = embedded_rows((b / "report.html").read_text())
        if rows is not None:  # the every-container table is long enough to travel as data: all its rows are there
            recs = list(csv.reader(io.StringIO((b / "recommendations.csv").read_text())))
            print(f"report.html embeds {len(rows)} container rows; recommendations.csv has {len(recs) - 1}")
            bad += len(rows) != len(recs) - 1
        print(f"{same} of {len(names)} files byte-identical (timings apart; report.html without its inline code); "
              f"{bad} unexpected difference(s)")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
