"""The one storage interface (rightsize/storage.py) answers the same for a local folder and an s3:// prefix
(moto's S3, in process): the same writes give the same sub-folders, committed files, local copies and
refusals, and a half-done write is "started" but never "has the file"."""
from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from rightsize import storage
from rightsize.errors import RightsizeError, SnapshotError

BUCKET = "acme-storage"


@pytest.fixture(params=["local", "s3"])
def root(request, monkeypatch, tmp_path):
    if request.param == "local":
        yield storage.location(str(tmp_path / "out"))
        return
    from moto import mock_aws

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "eu-west-1",
                        "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        yield storage.location(f"s3://{BUCKET}/rightsize")


def files(*names: str):
    def fill(tmp: Path) -> None:
        for name in names:
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_text(f"content of {name}\n")
    return fill


def test_the_same_writes_read_back_the_same_from_either_store(root):
    week = root / "2026-W47"
    storage.replace_folder(week / "prod", files("summary.json", "sub/a.txt"), what="report")
    storage.replace_folder(week / "dev", files("summary.json"), what="report")
    storage.write_file(week / "prod", "backtest.csv", "a,b\n", "backtest")  # the folder's other files kept
    assert storage.children(week) == ["dev", "prod"]
    assert storage.children(root / "nowhere") == []
    assert storage.has_file(week / "prod", "summary.json") and storage.has_file(week / "prod", "backtest.csv")
    assert not storage.has_file(week / "prod", "report.md") and not storage.has_file(root / "nowhere", "summary.json")
    assert storage.started(week / "prod") and not storage.started(root / "nowhere")
    with storage.local_copy(week / "prod", what="report", keep=lambda rel: rel != "backtest.csv") as local:
        assert (local / "sub" / "a.txt").read_text() == "content of sub/a.txt\n"
        assert (local / "summary.json").is_file()
    # a replace without keep_others drops what the new content lacks
    storage.replace_folder(week / "prod", files("summary.json"), what="report")
    assert not storage.has_file(week / "prod", "backtest.csv")


def test_a_failed_fill_commits_nothing_and_errors_name_the_location_not_a_copy(root):
    folder = root / "w" / "prod"
    storage.replace_folder(folder, files("summary.json"), what="report")

    def broken(tmp: Path) -> None:
        (tmp / "summary.json").write_text("new")
        raise SnapshotError(f"{tmp}: broken on purpose")

    with pytest.raises(SnapshotError, match=r"broken on purpose") as err:
        storage.replace_folder(folder, broken, what="report", error=SnapshotError)
    assert str(folder) in str(err.value)
    with storage.local_copy(folder, what="report") as local:
        assert (local / "summary.json").read_text() == "content of summary.json\n"
    with pytest.raises(RightsizeError) as err, storage.local_copy(folder, what="report") as local:
        raise RightsizeError(f"{local / 'summary.json'}: unreadable")
    assert str(err.value) == f"{folder / 'summary.json'}: unreadable"


def test_a_folder_that_is_not_rightsizes_is_named_and_the_same_place_is_recognised(root):
    ours, theirs = root / "patches", root / "theirs"
    assert storage.lacks(ours, "PATCHES.md") == ""  # absent: ours to write
    storage.replace_folder(ours, files("PATCHES.md", "shop/api.yaml"), what="patches")
    storage.replace_folder(theirs, files("notes.txt"), what="something else")
    assert storage.lacks(ours, "PATCHES.md") == ""
    assert storage.lacks(theirs, "PATCHES.md").startswith("no PATCHES.md")
    assert storage.same(ours, storage.location(str(ours))) and not storage.same(ours, theirs)
    assert not storage.same(ours, Path("/tmp") / "patches")


def test_every_location_has_one_store_and_its_lock_is_held_for_the_block(root):
    store = storage.store(root)
    assert store is (storage.S3 if str(root).startswith("s3://") else storage.LOCAL)
    assert store.parallel_reads >= 1 and store.copies_to_read == (store is storage.S3)
    with storage.output_lock(root / "w", wait_seconds=0, command="rightsize test", lease_seconds=60):
        with pytest.raises(RightsizeError, match="another rightsize run is writing here"):
            with storage.output_lock(root / "w", wait_seconds=0, lease_seconds=60):
                pass
    with storage.output_lock(root / "w", wait_seconds=0, lease_seconds=60):  # released: taken again
        pass


def test_a_malformed_s3_output_dir_is_a_config_error_naming_the_key(tmp_path):
    from rightsize.config import load_config
    from rightsize.errors import ConfigError

    bad = tmp_path / "bad.toml"
    bad.write_text('[report]\noutput_dir = "s3://Not_A_Bucket/rightsize"\n')
    with pytest.raises(ConfigError, match=r"report\.output_dir.*not an S3 bucket name"):
        load_config(bad)
    good = tmp_path / "good.toml"
    good.write_text('[report]\noutput_dir = "~/reports"\n')  # a local folder is never refused here
    assert load_config(good).report.output_dir == "~/reports"
