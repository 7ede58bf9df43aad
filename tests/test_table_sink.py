"""table_sink.py: a snapshot table written chunk by chunk while collect runs (the real pyarrow writer and
reader, files in a temporary folder of the test's own)."""
import os
import subprocess
import sys
import tempfile

import pandas as pd
import pytest

from rightsize.snapshot import Snapshot
from rightsize.table_sink import TableSink, appended


@pytest.fixture
def own_tmp(tmp_path, monkeypatch):
    """The system's temporary folder, for this test: the test's own folder."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def histogram_rows(cluster: str, namespace: str, pods: list[str]) -> pd.DataFrame:
    n = len(pods)
    names = {"cluster": [cluster] * n, "namespace": [namespace] * n, "kind": ["Deployment"] * n, "workload": ["api"] * n,
             "container": ["app"] * n, "pod": pods, "basis": ["pod"] * n, "resource": ["cpu"] * n}
    frame = pd.DataFrame({k: pd.Categorical(v) for k, v in names.items()})
    return frame.assign(day=pd.Timestamp("2026-01-01", tz="UTC"), bucket=pd.Series(range(n), dtype="int16"),
                        count=pd.Series([5] * n, dtype="int32"))


def plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Names as strings and timestamps in nanoseconds: parquet has no second unit, and older pandas and
    pyarrow read a day written in seconds back in milliseconds (the same instants)."""
    frame = frame.astype({c: str for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)})
    return frame.astype({c: "datetime64[ns, UTC]" for c in frame.columns if isinstance(frame[c].dtype, pd.DatetimeTZDtype)})


def test_chunks_come_back_in_order_and_the_staging_folder_goes_with_the_table(own_tmp):
    """Chunks with the same categories are appended in order; the snapshot writes the staged file as its table
    (read back with its checksum); once nothing holds the table, its staging folder is gone."""
    sink = TableSink("usage_histograms")
    categories = ["p-1", "p-2", "p-3"]
    first, second = histogram_rows("c1", "shop", ["p-1", "p-2"]), histogram_rows("c1", "shop", ["p-3"])
    for chunk in (first, second):
        chunk["pod"] = chunk["pod"].cat.set_categories(categories)
        sink.write(chunk)
    folder = sink.folder
    lazy = sink.close()
    assert lazy.path.parent == folder and folder.parent == own_tmp
    expected = plain(pd.concat([first, second], ignore_index=True))
    pd.testing.assert_frame_equal(plain(lazy.load()), expected)
    snap = Snapshot()
    snap.tables["usage_histograms"] = lazy
    snap.write(own_tmp / "snapshot")
    pd.testing.assert_frame_equal(plain(Snapshot.read(own_tmp / "snapshot").tables["usage_histograms"]), expected)
    del sink, lazy, snap
    assert not folder.exists()


def test_nothing_written_gives_no_table(own_tmp):
    assert TableSink("usage_histograms").close() is None


def test_a_killed_runs_staging_folder_is_removed_by_the_next_sink_and_a_live_ones_kept(own_tmp):
    """A SIGKILL leaves the staged file behind: the next collection removes it when its process is gone."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = own_tmp / f"rightsize-staged-{int(dead.stdout)}-abc"
    live = own_tmp / f"rightsize-staged-{os.getpid()}-def"
    other = own_tmp / "rightsize-staged-notapid"
    for folder in (stale, live, other):
        folder.mkdir()
        (folder / "usage_histograms.parquet").write_bytes(b"x")
    TableSink("usage_histograms")
    assert not stale.exists() and live.exists() and other.exists()


def test_three_clusters_tables_are_appended_with_their_own_names_in_one_pass(own_tmp):
    """Each cluster's staged file has its own categories (other pods, another index width); appended in one pass
    (collect joins every cluster's file once, not one copy per cluster), every row keeps its names, in cluster
    order."""
    clusters = (("eu", ["a-1", "a-2"]), ("us", [f"b-{i}" for i in range(300)]), ("ap", ["c-1"]))
    tables = []
    for cluster, pods in clusters:
        sink = TableSink("usage_histograms")
        sink.write(histogram_rows(cluster, "shop", pods))
        tables.append(sink.close())
    both = appended("usage_histograms", *tables).load()
    assert both["cluster"].astype(str).tolist() == ["eu"] * 2 + ["us"] * 300 + ["ap"]
    assert both["pod"].astype(str).tolist() == ["a-1", "a-2"] + [f"b-{i}" for i in range(300)] + ["c-1"]
    assert both["bucket"].tolist() == [0, 1] + list(range(300)) + [0]


def test_an_unwritable_temporary_folder_is_a_clear_error(tmp_path, monkeypatch):
    """Collect stages the histograms in the system's temporary folder: one it cannot write is named, with the fix."""
    from rightsize.errors import RightsizeError

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    with pytest.raises(RightsizeError, match=r"missing: cannot stage the usage_histograms table .*set TMPDIR"):
        TableSink("usage_histograms")
