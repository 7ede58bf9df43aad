"""analysis/cells.py: the per-pod histograms summed over days as they stream, checked against a plain pandas
groupby of the same rows, on the demo's histograms (as collect writes them, and shuffled: a table not in
series order), streamed in batches that cut series in the middle."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from rightsize.analysis import cells
from rightsize.analysis.cells import sum_over_days
from rightsize.sketch import cell_sums, factorize
from rightsize.demo import generate
from rightsize.usage_stats import CONTAINER_KEY

TEST_KEYS = list(CONTAINER_KEY) + ["resource", "bucket"]


@pytest.fixture(scope="module")
def demo():
    snap = generate()
    hist = snap.tables["usage_histograms"]
    # a few namespaces' rows (a few hundred series, all bases and resources): small batches stay quick
    few = hist["namespace"].isin(sorted(hist["namespace"].unique())[:3])
    return hist[few.to_numpy()].reset_index(drop=True), pd.Timestamp(snap.meta["window_end"]) - pd.Timedelta(days=7)


def _batches(frame: pd.DataFrame, rows: int):
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for at in range(0, len(frame), rows):
        yield table.slice(at, rows)


def _summed(frame: pd.DataFrame, keys: list[str]) -> pd.Series:
    """Counts per cell, names as plain strings: a cell split in two rows counts once, summed."""
    out = frame.astype({k: str for k in keys if k in frame and k not in ("day", "bucket")})
    return out.groupby(keys, observed=True)["count"].sum().sort_index()


@pytest.mark.parametrize("order", ["as written", "shuffled"])
@pytest.mark.parametrize("rows", [97, 5000, 10**7])
@pytest.mark.parametrize("keep_days", [False, True])
def test_sums_over_days_equal_a_plain_groupby(demo, order, rows, keep_days):
    hist, cut = demo
    if order == "shuffled":
        hist = hist.sample(frac=1, random_state=3).reset_index(drop=True)
    sums = sum_over_days(_batches(hist, rows), cut, keep_days)
    train_rows, test_rows = hist[hist["day"] < cut], hist[(hist["day"] >= cut) & (hist["basis"] == "pod")]
    train_keys = cells.NAMES + (["day"] if keep_days else []) + ["bucket"]
    expected = train_rows.assign(day=train_rows["day"].dt.as_unit("ns"))
    got = sums.train.assign(day=sums.train["day"].dt.as_unit("ns")) if keep_days else sums.train
    pd.testing.assert_series_equal(_summed(got, train_keys), _summed(expected, train_keys), check_dtype=False)
    pd.testing.assert_series_equal(_summed(sums.test, TEST_KEYS), _summed(test_rows, TEST_KEYS), check_dtype=False)
    # the grouping handed to the statistics names each cell's container and pod
    ids = sums.ids
    named = ids.groups.iloc[ids.group].reset_index(drop=True)
    for k in CONTAINER_KEY:
        assert (named[k] == sums.train[k].astype(str).reset_index(drop=True)).all()
    assert (ids.pods.iloc[ids.pod]["pod"].to_numpy() == sums.train["pod"].astype(str).to_numpy()).all()
    # the test cells' containers, found from the series' names: the ids and table a row-by-row factorize finds
    cid, keys = factorize(sums.test, list(CONTAINER_KEY))
    assert np.array_equal(sums.test_ids[0], cid)
    pd.testing.assert_frame_equal(sums.test_ids[1], keys)
    # each series' cells are merged within a batch: as many cells as distinct ones when the table is in order
    if order == "as written" and rows > len(hist):
        assert len(sums.train) == len(_summed(expected, train_keys)) and len(sums.test) == len(_summed(test_rows, TEST_KEYS))


@pytest.mark.parametrize("ordered", ["shuffled", "ascending", "runs"])
@pytest.mark.parametrize("spread", [40, 2048])
def test_cell_sums_are_those_of_a_sort(spread, ordered):
    """Dense (buckets close together) and sorted (far apart) paths, rows in any order, by id, or in runs of an id
    with each id in several runs (the backtest's training cells: a container's series come a resource and basis
    at a time; the spans then found without a groupby): the cells and counts np.unique gives."""
    rng = np.random.default_rng(7)
    cid = rng.integers(0, 300, 20_000).astype(np.int32)
    if ordered == "ascending":
        cid = np.sort(cid)
    elif ordered == "runs":  # four blocks, each by id (some ids missing from some blocks)
        cid = np.concatenate([np.sort(part) for part in np.array_split(cid, 4)])
    bucket = rng.integers(0, spread, 20_000).astype(np.int16)
    count = rng.integers(0, 5, 20_000).astype(np.int32)  # zero counts too: a cell is kept, as np.unique keeps it
    uniq, inverse = np.unique(cid.astype(np.int64) * 2048 + bucket, return_inverse=True)
    code, summed = cell_sums(cid, bucket, count)
    assert np.array_equal(code, uniq) and np.array_equal(summed, np.bincount(inverse, weights=count))
    empty = cell_sums(cid[:0], bucket[:0], count[:0])
    assert len(empty[0]) == 0 and len(empty[1]) == 0


@pytest.mark.parametrize("rows", [7, 500, 10**6])
def test_test_days_cells_by_ranges_of_ids_are_those_of_all_at_once(rows):
    """The backtest's pooled cells summed a range of container ids at a time (a few million rows each at 21k:
    sketch.cell_sums_in_ranges) are those of one cell_sums over the chosen rows: the same cells, order and sums,
    with ids in runs as the training cells come, some ids without rows, and zero counts."""
    from rightsize.sketch import cell_sums_in_ranges

    rng = np.random.default_rng(3)
    cid = np.concatenate([np.sort(part) for part in np.array_split(rng.integers(0, 400, 6_000), 3)]).astype(np.int32)
    bucket = rng.integers(0, 60, len(cid)).astype(np.int16)
    count = rng.integers(0, 4, len(cid)).astype(np.int32)
    mine = rng.random(len(cid)) < 0.7
    want = cell_sums(cid[mine], bucket[mine], count[mine])
    got = cell_sums_in_ranges(cid, bucket, count, mine, 450, rows=rows)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1]) and got[1].dtype == want[1].dtype
