"""The snapshot contract: round trip, validation errors that name table and column, atomic writes."""
import json
import math

import numpy as np
import pandas as pd
import pytest

from rightsize.demo import generate
from rightsize.errors import SnapshotError
from rightsize.schema import TABLES
from rightsize.snapshot import Snapshot, conform


def test_round_trip_keeps_every_table_and_meta(tmp_path):
    snap = generate()
    snap.warn("missing_metric", "no Istio metrics", affects="traffic")
    snap.write(tmp_path / "snap")
    back = Snapshot.read(tmp_path / "snap")

    def plain(df):  # the per-pod tables' names come back as categoricals: the same values, stored once each
        return df.reset_index(drop=True).astype({c: str for c in df.columns if isinstance(df[c].dtype, pd.CategoricalDtype)})

    for name in TABLES:
        pd.testing.assert_frame_equal(plain(back.tables[name]), plain(snap.tables[name]), check_dtype=False, check_like=True)
    assert back.meta["warnings"] == [{"code": "missing_metric", "message": "no Istio metrics", "affects": "traffic"}]
    assert back.meta["window_end"] == snap.meta["window_end"]


def test_unset_requests_stay_nan_not_zero(tmp_path):
    snap = generate()
    snap.write(tmp_path / "s")
    c = Snapshot.read(tmp_path / "s").containers
    admin = c[(c.workload == "legacy-admin")].iloc[0]
    assert math.isnan(admin.cpu_request_cores) and math.isnan(admin.memory_request_bytes)


def test_missing_required_column_is_named(tmp_path):
    snap = generate()
    snap.tables["usage"] = snap.usage.drop(columns=["cpu_pooled_p95_cores"])
    with pytest.raises(SnapshotError, match=r"table 'usage': missing required column 'cpu_pooled_p95_cores'"):
        snap.validate()


def test_negative_quantity_is_rejected_with_column():
    df = pd.DataFrame([{"cluster": "c", "namespace": "n", "kind": "Deployment", "workload": "w", "container": "app",
                        "container_type": "main", "cpu_request_cores": -1.0, "cpu_limit_cores": np.nan,
                        "memory_request_bytes": 1.0, "memory_limit_bytes": np.nan}])
    with pytest.raises(SnapshotError, match=r"table 'containers': column 'cpu_request_cores' has negative values"):
        conform("containers", df)


def test_wrong_type_is_rejected_with_column():
    df = pd.DataFrame([{"cluster": "c", "node": "n1", "instance_type": "m5.large", "zone": "a", "region": "r",
                        "capacity_type": "spot", "allocatable_cpu_cores": "lots", "allocatable_memory_bytes": 1.0, "hours_seen": 1.0}])
    with pytest.raises(SnapshotError, match=r"table 'nodes': column 'allocatable_cpu_cores' should be float"):
        conform("nodes", df)


def test_empty_identity_is_rejected():
    df = TABLES and pd.DataFrame([{"cluster": "c", "namespace": "", "kind": "Deployment", "workload": "w",
                                   "container": "a", "container_type": "main", "cpu_request_cores": 1.0,
                                   "cpu_limit_cores": 1.0, "memory_request_bytes": 1.0, "memory_limit_bytes": 1.0}])
    with pytest.raises(SnapshotError, match="column 'namespace' has empty values"):
        conform("containers", df)


def test_read_errors_name_the_path(tmp_path):
    with pytest.raises(SnapshotError, match="no snapshot folder"):
        Snapshot.read(tmp_path / "missing")
    (tmp_path / "s").mkdir()
    with pytest.raises(SnapshotError, match="meta.json: missing"):
        Snapshot.read(tmp_path / "s")
    generate().write(tmp_path / "ok")
    (tmp_path / "ok" / "usage.parquet").write_bytes(b"not parquet")
    with pytest.raises(SnapshotError, match=r"usage.parquet: checksum mismatch"):
        Snapshot.read(tmp_path / "ok")
    meta = json.loads((tmp_path / "ok" / "meta.json").read_text())
    del meta["checksums"], meta["digest"]  # a snapshot from before checksums: the damage is found by the parquet reader
    (tmp_path / "ok" / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(SnapshotError, match=r"usage.parquet: cannot read table 'usage'"):
        Snapshot.read(tmp_path / "ok")
    meta["schema_version"] = 99
    (tmp_path / "ok" / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(SnapshotError, match="schema_version 99"):
        Snapshot.read(tmp_path / "ok")


def test_unwritable_target_fails_cleanly(tmp_path):
    # A regular file where a folder should be: fails for root too (unlike a read-only folder).
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    with pytest.raises(SnapshotError, match=r"blocker/snap: cannot write snapshot"):
        generate().write(blocker / "snap")


def test_failed_write_leaves_previous_snapshot_intact(tmp_path):
    """The new snapshot passes validate() and every table is written before the failure (its meta.json
    cannot be serialised: a self-referencing list): the previous snapshot must still read back whole,
    with its own tables, and no temporary folder may be left behind."""
    target = tmp_path / "snap"
    old = generate()
    old.tables["usage"] = old.usage.iloc[:5]
    old.write(target)
    broken = generate()
    loop: list = []
    loop.append(loop)
    broken.meta["notes"] = loop
    broken.validate()  # the failure comes after the tables are written, not from validation
    with pytest.raises(ValueError, match="Circular reference"):
        broken.write(target)
    back = Snapshot.read(target)  # checksums verified: no table of the broken write replaced an old one
    assert len(back.usage) == 5 and len(back.containers) == len(old.containers)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snap"]  # no temp folders left behind


def test_snapshot_read_without_its_large_tables_cannot_be_written_back(tmp_path):
    generate().write(tmp_path / "snap")
    light = Snapshot.read(tmp_path / "snap", skip=("usage_histograms", "usage_daily"))
    assert light.meta["tables_not_loaded"] == ["usage_daily", "usage_histograms"] and light.tables["usage_daily"].empty
    with pytest.raises(SnapshotError, match="read without usage_daily, usage_histograms; writing it would lose them"):
        light.write(tmp_path / "snap")
    assert len(Snapshot.read(tmp_path / "snap").tables["usage_histograms"])  # the full one is untouched


def test_streamed_batch_with_a_negative_count_is_rejected_with_column(tmp_path):
    """A per-pod histogram table read in batches (LazyTable) is checked batch by batch: a negative count in a
    later batch is named with its table and column; a batch whose values are all at or above 0 passes."""
    from rightsize.snapshot import LazyTable

    hist = generate().tables["usage_histograms"].reset_index(drop=True)
    hist["count"] = hist["count"].astype("int32")
    bad = hist.copy()
    bad.loc[len(bad) - 1, "count"] = -3
    for frame, name in ((hist, "good.parquet"), (bad, "bad.parquet")):
        frame.to_parquet(tmp_path / name, index=False, row_group_size=1000)
    good = LazyTable("usage_histograms", tmp_path / "good.parquet", "snap")
    assert sum(t.num_rows for t in good.batches(rows=1000)) == len(hist)
    with pytest.raises(SnapshotError, match=r"table 'usage_histograms'.*column 'count' has negative values"):
        list(LazyTable("usage_histograms", tmp_path / "bad.parquet", "snap").batches(rows=1000))
