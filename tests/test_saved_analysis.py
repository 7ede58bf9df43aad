"""The analysis `rightsize analyze` saves for report and patch (emit/saved.py): taken only for the same snapshot,
config and version, byte-identical outputs either way, and anything torn or foreign computed again."""
import filecmp
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from rightsize.analysis import Analysis
from rightsize.api import analyze, load
from rightsize.config import Config
from rightsize.emit.saved import CSV_KEY, FOLDER, KEY_FILE, analysis_key, read_saved, saved_csvs, write_saved
from rightsize.emit.tables import TABLE_FILES, table_csv, write_tables
from rightsize.snapshot import Snapshot

ROOT = Path(__file__).resolve().parents[1]
READ = "analysis read from"


def rightsize(*args):
    proc = subprocess.run([sys.executable, "-m", "rightsize.cli", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run folder holding the demo's snapshot, analysed with `rightsize analyze` (which saves the analysis)."""
    base = tmp_path_factory.mktemp("saved")
    load("demo").write(base / "run" / "snapshot")
    rightsize("analyze", "--snapshot", base / "run" / "snapshot")
    return base / "run"


def same_tree(a: Path, b: Path) -> None:
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    _, mismatch, errors = filecmp.cmpfiles(a, b, [str(f) for f in files], shallow=False)
    assert not mismatch and not errors, mismatch


def test_report_and_patch_from_the_saved_analysis_are_byte_identical(run_dir, tmp_path):
    assert (run_dir / FOLDER / KEY_FILE).is_file()
    saved = {cmd: rightsize(cmd, "--snapshot", run_dir / "snapshot", "--out", tmp_path / f"{cmd}-saved")
             for cmd in ("report", "patch")}
    assert all(READ in proc.stderr for proc in saved.values())
    fresh = tmp_path / "fresh"  # the same snapshot with no analysis beside it: computed by each command
    shutil.copytree(run_dir / "snapshot", fresh / "snapshot")
    for cmd in ("report", "patch"):
        proc = rightsize(cmd, "--snapshot", fresh / "snapshot", "--out", tmp_path / f"{cmd}-fresh")
        assert READ not in proc.stderr and "no saved analysis" in proc.stderr
        same_tree(tmp_path / f"{cmd}-saved", tmp_path / f"{cmd}-fresh")


def test_a_changed_config_computes_again(run_dir, tmp_path):
    cfg = tmp_path / "margin.toml"
    cfg.write_text("[recommend]\nself_check_days = 0\n[[policy_rules]]\npolicy = \"production\"\nnamespaces = [\"stag*\"]\nnamespace_labels = {team = \"web\"}\n")
    proc = rightsize("patch", "--snapshot", run_dir / "snapshot", "--config", cfg, "--out", tmp_path / "p")
    assert READ not in proc.stderr and "computed from another config" in proc.stderr
    # the same config file in another process: the same key (nothing in it depends on the process)
    folder = tmp_path / "run"
    shutil.copytree(run_dir / "snapshot", folder / "snapshot")
    rightsize("analyze", "--snapshot", folder / "snapshot", "--config", cfg)
    again = rightsize("patch", "--snapshot", folder / "snapshot", "--config", cfg, "--out", tmp_path / "p2")
    assert READ in again.stderr
    same_tree(tmp_path / "p", tmp_path / "p2")


def test_a_changed_snapshot_computes_again(run_dir, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(run_dir, folder)
    snap = Snapshot.read(folder / "snapshot")
    snap.tables["usage"].loc[0, "samples"] += 1  # one figure of one container: a new snapshot
    shutil.rmtree(folder / "snapshot")
    snap.write(folder / "snapshot")
    proc = rightsize("report", "--snapshot", folder / "snapshot", "--out", tmp_path / "r")
    assert READ not in proc.stderr and "computed from another snapshot" in proc.stderr


@pytest.mark.parametrize("damage", ["truncated", "edited", "missing", "bad key"])
def test_a_torn_or_edited_saved_analysis_computes_again_with_a_warning(run_dir, tmp_path, damage):
    folder = tmp_path / "run"
    shutil.copytree(run_dir, folder)
    victim = folder / FOLDER / ("recommendations.parquet" if damage != "bad key" else KEY_FILE)
    data = victim.read_bytes()
    if damage == "truncated":
        victim.write_bytes(data[: len(data) // 2])
    elif damage == "edited":
        victim.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])
    elif damage == "missing":
        victim.unlink()
    else:
        victim.write_text("{not json")
    proc = rightsize("patch", "--snapshot", folder / "snapshot", "--out", tmp_path / "p")
    assert READ not in proc.stderr and "warning: saved analysis not used" in proc.stderr
    expected = tmp_path / "expected"
    rightsize("patch", "--snapshot", run_dir / "snapshot", "--out", expected)
    same_tree(tmp_path / "p", expected)


def test_report_copies_the_csvs_analyze_wrote_only_while_their_bytes_match_the_key(run_dir, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(run_dir, folder)
    sums = json.loads((folder / FOLDER / KEY_FILE).read_text())[CSV_KEY]
    assert sorted(sums) == sorted(TABLE_FILES) and sorted(saved_csvs(folder)) == sorted(TABLE_FILES)
    original = (folder / "spot.csv").read_bytes()
    (folder / "spot.csv").write_bytes(original + b"tampered,row\n")  # e.g. edited by hand after analyze
    (folder / "idle.csv").unlink()
    rightsize("report", "--snapshot", folder / "snapshot", "--out", tmp_path / "report")
    for name in TABLE_FILES:  # the edited and the missing one written anew, the others copied: the same bytes
        assert (tmp_path / "report" / name).read_bytes() == (run_dir / name).read_bytes(), name


def test_write_tables_uses_a_copy_only_when_its_digest_matches(tmp_path):
    analysis = analyze(load("demo"))
    source = tmp_path / "beside.csv"
    source.write_bytes(b"copied\n")
    good = "sha256:" + hashlib.sha256(b"copied\n").hexdigest()
    write_tables(analysis, None, Config(), tmp_path / "a", summary={}, copies={"spot.csv": (source, good)})
    assert (tmp_path / "a" / "spot.csv").read_bytes() == b"copied\n"  # the copy, not the table: proof it was used
    write_tables(analysis, None, Config(), tmp_path / "b", summary={}, copies={"spot.csv": (source, "sha256:" + "0" * 64),
                                                                           "idle.csv": (tmp_path / "gone.csv", good)})
    for name, (attr, columns) in TABLE_FILES.items():
        assert (tmp_path / "b" / name).read_text() == table_csv(getattr(analysis, attr), columns), name


def test_the_saved_tables_read_back_equal_with_their_dtypes(tmp_path):
    snap = load("demo")
    snap.meta.update(checksums={"usage.parquet": "sha256:0"}, digest={"sha256": "x"})  # as a written snapshot has
    result = analyze(snap)
    key = analysis_key(snap, Config())
    write_saved(result, key, tmp_path)
    back, why, fault = read_saved(tmp_path, key)
    assert isinstance(back, Analysis) and why == "" and not fault
    for name in ("recommendations", "spot", "cross_az", "backtest", "node_groups", "idle", "load_balancers", "node_prices"):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(result, name), check_exact=True)
    assert back.summary == json.loads(json.dumps(result.summary)) and back.warnings == result.warnings
    assert back.backtest_note == result.backtest_note
    other = {**key, "config_sha256": "0" * 64}
    assert read_saved(tmp_path, other)[:2] == (None, f"{tmp_path / FOLDER} was computed from another config")


def test_no_key_without_checksums():
    assert analysis_key(load("demo"), Config()) is None  # generated in memory: nothing to match a saved one to


def test_the_tables_beside_the_backtest_are_rendered_while_it_runs_with_the_bytes_of_the_finished_analysis(tmp_path):
    """analyze's while_backtest (the CLI's CsvsAhead) sees every table final but the backtest, which it has not yet:
    its CSVs are those of the finished analysis, and write_tables writes them as given (the summary, made beside the
    backtest too, is the one made from the finished analysis)."""
    from rightsize.analysis.summary import merged_warnings, summarize
    from rightsize.emit.saved import CsvsAhead

    snap, ahead, backtest_rows = load("demo"), CsvsAhead(), []

    def early(analysis):
        backtest_rows.append(len(analysis.backtest))
        ahead(analysis)

    result = analyze(snap, while_backtest=early)
    assert backtest_rows == [0] and len(result.backtest) > 0  # called once, before the backtest's result
    assert sorted(ahead.texts) == sorted(set(TABLE_FILES) - {"backtest.csv"})
    for name, text in ahead.texts.items():
        attr, columns = TABLE_FILES[name]
        assert text == table_csv(getattr(result, attr), columns), name
    expected = summarize(result, snap, Config())
    expected.update(requests_vs_bill=result.requests_vs_bill, warnings=merged_warnings(result, snap))
    assert json.dumps(result.summary) == json.dumps(expected)  # the same content, keys in the same order
    assert result.summary["backtest"]["predicted_ooms"] is not None
    write_tables(result, snap, Config(), tmp_path, texts={"spot.csv": "given\n"})
    assert (tmp_path / "spot.csv").read_text() == "given\n"  # the text given, not the table: proof it was used
