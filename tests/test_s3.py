"""s3:// outputs and inputs against moto's S3 (in process): snapshots and reports written and read back,
week over week from the previous week's key, interrupted uploads never read, one writer per prefix,
keys that stay inside their prefix, and the IAM policy in deploy/ covering exactly what rightsize calls."""
from __future__ import annotations

import fnmatch
import hashlib
import json
import time
from pathlib import Path

import boto3
import pandas as pd
import pytest

from rightsize import s3
from rightsize.s3 import objects
from rightsize.cli import main
from rightsize.config import Config
from rightsize.demo import generate
from rightsize.errors import SnapshotError
from rightsize.errors import LockedError
from rightsize.storage import output_lock, replace_folder
from rightsize.s3 import S3Error, S3Path
from rightsize.schema import TABLES
from rightsize.snapshot import Snapshot
from rightsize.sources.aws import collect_prices
from test_fleet import POD_USD_PER_MONTH, cluster

BUCKET = "acme-rightsize"
FAST = "[report]\ncharts = false\nbacktest_days = 0\n"  # the reports' content is tested elsewhere
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def bucket(monkeypatch, tmp_path):
    from moto import mock_aws

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "eu-west-1",
                        "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        yield S3Path(f"s3://{BUCKET}/rightsize")


@pytest.fixture(scope="module")
def demo():
    snap = generate()
    collect_prices(Config(), snap, offline=True)
    return snap


def keys(prefix: str = "") -> dict[str, bytes]:
    c = boto3.client("s3")
    pages = c.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return {o["Key"]: c.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for p in pages for o in p.get("Contents", [])}


def failing_after(monkeypatch, operation: str, calls: int):
    """Every S3 client rightsize makes fails its ``calls``-th ``operation`` (a crash at that point)."""
    made, count = objects.client, {"n": 0}

    def crash(**_):
        count["n"] += 1
        if count["n"] == calls:
            raise KeyboardInterrupt(f"interrupted at {operation} #{calls}")

    c = objects.new_client()
    c.meta.events.register(f"before-call.s3.{operation}", crash)
    monkeypatch.setattr(objects, "client", lambda: c)
    return lambda: monkeypatch.setattr(objects, "client", made)


def test_snapshot_written_to_s3_reads_back_and_its_manifest_matches_every_object(bucket, demo):
    target = bucket / "2026-W47" / "prod" / "snapshot"
    demo.write(target)
    back = Snapshot.read(str(target))
    for name in TABLES:
        pd.testing.assert_frame_equal(back.tables[name].reset_index(drop=True), demo.tables[name].reset_index(drop=True),
                                      check_dtype=False, check_like=True, check_categorical=False)
    objects = keys("rightsize/")
    manifest = json.loads(objects[f"{target.key}/_SUCCESS"])
    assert set(manifest["files"]) == {f"{t}.parquet" for t in TABLES} | {"meta.json"}
    for rel, entry in manifest["files"].items():
        body = objects[f"{target.key}/{rel}"]
        assert entry == {"sha256": "sha256:" + hashlib.sha256(body).hexdigest(), "bytes": len(body)}
    assert not [k for k in objects if "_temporary" in k or ".lock" in k]  # nothing left over
    # a fleet does not even download the per-pod tables
    slim = Snapshot.read(target, skip=("usage_histograms", "usage_daily"))
    assert slim.tables["usage_histograms"].empty and slim.meta["tables_not_loaded"] == ["usage_daily", "usage_histograms"]


def test_report_on_s3_and_week_over_week_from_the_previous_weeks_key(bucket, demo, tmp_path):
    demo.write(bucket / "snap")
    stricter = tmp_path / "stricter.toml"
    stricter.write_text(f"{FAST}[policies.production]\nmargin = 0.5\n")
    assert main(["report", "--quiet", "--config", str(stricter), "--snapshot", f"{bucket}/snap", "--out", f"{bucket}/2026-W46/prod"]) == 0
    # this week's job: output_dir on S3 and one folder per cluster; last week's report is found by its key
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[general]\ncluster_name = "prod"\n[report]\noutput_dir = "{bucket}"\nlayout = "{{week}}/{{cluster}}"\n'
                   'charts = false\nbacktest_days = 0\n')
    from rightsize.emit.report import default_report_dir

    out = default_report_dir(Config(report=type(Config().report)(output_dir=str(bucket), layout="{week}/{cluster}"),
                                    general=type(Config().general)(cluster_name="prod")))
    assert isinstance(out, S3Path) and out.parent.parent == bucket and out.name == "prod"
    assert main(["report", "--quiet", "--config", str(cfg), "--snapshot", f"{bucket}/snap"]) == 0
    objects = keys("rightsize/")
    before = json.loads(objects["rightsize/2026-W46/prod/summary.json"])
    now = json.loads(objects[f"{out.key}/summary.json"])
    wow = now["week_over_week"]
    assert wow["previous"] == "2026-W46"
    savings = {t["metric"]: t for t in wow["totals"]}["Savings available (USD/month)"]
    assert savings["previous"] == pytest.approx(before["totals"]["savings_usd_per_month"])
    assert savings["current"] == pytest.approx(now["totals"]["savings_usd_per_month"])
    assert savings["delta"] == pytest.approx(now["totals"]["savings_usd_per_month"] - before["totals"]["savings_usd_per_month"])
    assert savings["delta"] > 0  # a 50 % margin last week saved less than this week's 15 %
    assert {"report.md", "report.html", "recommendations.csv", "summary.json"} <= set(json.loads(objects[f"{out.key}/_SUCCESS"])["files"])


def test_an_interrupted_upload_is_never_read_as_complete(bucket, monkeypatch, tmp_path):
    target = bucket / "2026-W47" / "prod" / "snapshot"
    first = cluster("prod")
    first.meta["created_at"] = "2026-11-16T06:00:00+00:00"
    first.write(target)
    second = cluster("prod")
    second.meta["created_at"] = "2026-11-23T06:00:00+00:00"

    restore = failing_after(monkeypatch, "PutObject", 3)  # while the files go to _temporary/
    with pytest.raises(KeyboardInterrupt):
        second.write(target)
    restore()
    assert Snapshot.read(target).meta["created_at"] == "2026-11-16T06:00:00+00:00"  # the earlier version, whole

    files = len(keys(f"{target.key}/")) - 1  # the tables and meta.json (and _SUCCESS)
    restore = failing_after(monkeypatch, "PutObject", files + 2)  # the pointer switch itself: never made
    with pytest.raises(KeyboardInterrupt):
        second.write(target)
    restore()
    assert Snapshot.read(target).meta["created_at"] == "2026-11-16T06:00:00+00:00"  # the earlier _SUCCESS is readable

    restore = failing_after(monkeypatch, "CopyObject", 4)  # after the switch: some files copied to their plain keys
    with pytest.raises(KeyboardInterrupt):
        second.write(target)
    restore()
    assert json.loads(keys()[f"{target.key}/_SUCCESS"])["format"] == "rightsize-pointer/1"
    assert Snapshot.read(target).meta["created_at"] == "2026-11-23T06:00:00+00:00"  # the new version, whole

    # a first upload that never committed: no _SUCCESS, nothing read, the fleet names the cluster as missing
    eu = bucket / "2026-W47" / "eu" / "snapshot"
    restore = failing_after(monkeypatch, "PutObject", 3)
    with pytest.raises(KeyboardInterrupt):
        cluster("eu").write(eu)
    restore()
    with pytest.raises(SnapshotError, match=r"no complete snapshot here: no _SUCCESS manifest"):
        Snapshot.read(eu)
    assert not keys(f"{eu.key}/")  # its leftovers were removed
    (tmp_path / "fast.toml").write_text(FAST + '[fleet]\nclusters = ["prod", "eu"]\n')
    assert main(["report", "--quiet", "--config", str(tmp_path / "fast.toml"), "--snapshot", str(bucket / "2026-W47")]) == 0
    summary = json.loads(keys()[f"{(bucket / '2026-W47' / '_fleet').key}/summary.json"])
    assert [m["cluster"] for m in summary["fleet"]["missing"]] == ["eu"]

    second.write(target)  # the next run commits
    assert Snapshot.read(target).meta["created_at"] == "2026-11-23T06:00:00+00:00"
    assert not [k for k in keys("rightsize/") if "_temporary" in k]


def test_a_changed_object_is_named_and_nothing_is_read(bucket, demo):
    target = bucket / "snap"
    demo.write(target)
    boto3.client("s3").put_object(Bucket=BUCKET, Key=f"{target.key}/usage.parquet", Body=b"PAR1 not the table")
    with pytest.raises(SnapshotError, match=r"s3://acme-rightsize/rightsize/snap/usage.parquet: does not match .*_SUCCESS"):
        Snapshot.read(target)


def test_keys_stay_inside_their_prefix(bucket, tmp_path):
    with pytest.raises(S3Error, match=r"'\.\.' is not allowed"):
        bucket / "../elsewhere"
    with pytest.raises(S3Error, match="not an S3 bucket name"):
        S3Path("s3://Not_A_Bucket/x")
    # a manifest naming a file outside the folder: never downloaded outside the reader's temporary folder
    evil = {"format": s3.MANIFEST_FORMAT, "files": {"../../escaped.txt": {"sha256": "sha256:00", "bytes": 1}}}
    boto3.client("s3").put_object(Bucket=BUCKET, Key="rightsize/evil/_SUCCESS", Body=json.dumps(evil).encode())
    with pytest.raises(S3Error, match="would be written outside"):
        s3.download(bucket / "evil", tmp_path / "in", what="snapshot")
    assert not (tmp_path / "escaped.txt").exists()


def test_a_commit_removes_its_own_stale_files_and_never_foreign_ones(bucket):
    folder = bucket / "patches"
    boto3.client("s3").put_object(Bucket=BUCKET, Key=f"{folder.key}/notes-by-a-person.txt", Body=b"keep me")

    def files(*names):
        def fill(tmp):
            for n in names:
                (tmp / n).parent.mkdir(parents=True, exist_ok=True)
                (tmp / n).write_text(n)
        return fill

    replace_folder(folder, files("PATCHES.md", "shop/api.yaml", "shop/web.yaml"), what="patches")
    replace_folder(folder, files("PATCHES.md", "shop/api.yaml"), what="patches")
    assert sorted(k.split("/", 2)[2] for k in keys("rightsize/patches/")) == [
        "PATCHES.md", "_SUCCESS", "notes-by-a-person.txt", "shop/api.yaml"]
    replace_folder(folder, files("report.md"), what="report", keep_others=True)
    assert "rightsize/patches/shop/api.yaml" in keys("rightsize/patches/")


def test_a_second_writer_waits_then_names_the_first_and_a_dead_ones_lock_is_taken_over(bucket):
    out = bucket / "2026-W47" / "prod"
    with output_lock(out, wait_seconds=0, command="rightsize run", lease_seconds=3600):
        with pytest.raises(LockedError, match=r"another rightsize run is writing here: pid \d+ on .*`rightsize run`"):
            with output_lock(out, wait_seconds=0, command="rightsize report", lease_seconds=3600):
                pass
    assert not keys("rightsize/2026-W47/.prod.lock/")
    # a run that died holding the lock: its lock object stays until the lease is over
    boto3.client("s3").put_object(Bucket=BUCKET, Key="rightsize/2026-W47/.prod.lock/dead-run", Body=b"{}")
    with pytest.raises(LockedError):
        with output_lock(out, wait_seconds=0, lease_seconds=3600):
            pass
    time.sleep(2.1)
    with output_lock(out, wait_seconds=0, lease_seconds=1):
        assert len(keys("rightsize/2026-W47/.prod.lock/")) == 1  # ours; the dead run's is gone
    assert not keys("rightsize/2026-W47/.prod.lock/")


def test_fleet_from_s3_three_clusters_one_missing(bucket, tmp_path):
    week = bucket / "2026-W48"
    for name in ("eu", "us"):
        cluster(name).write(week / name / "snapshot")
    cfg = tmp_path / "fleet.toml"
    cfg.write_text(FAST + '[pricing]\ncpu_ram_price_ratio = 4.0\n[fleet]\nclusters = ["eu", "us", "ap"]\n')
    assert main(["report", "--quiet", "--config", str(cfg), "--snapshot", f"s3://{BUCKET}/rightsize/2026-W48/"]) == 0
    summary = json.loads(keys()["rightsize/2026-W48/_fleet/summary.json"])
    assert summary["totals"]["usd_per_month_current"] == pytest.approx(4 * POD_USD_PER_MONTH)  # 2 clusters x 2 pods x 43.80
    assert [m["cluster"] for m in summary["fleet"]["missing"]] == ["ap"]
    assert summary["fleet"]["clusters"][0]["snapshot"] == f"s3://{BUCKET}/rightsize/2026-W48/eu/snapshot"


# the IAM action each S3 API call needs (CopyObject also needs s3:GetObject on its source, checked below)
S3_ACTIONS = {"PutObject": ["s3:PutObject"], "GetObject": ["s3:GetObject"], "HeadObject": ["s3:GetObject"],
              "CopyObject": ["s3:PutObject"], "DeleteObject": ["s3:DeleteObject"], "DeleteObjects": ["s3:DeleteObject"]}


def allowed(policy: dict, action: str, resource: str, prefix: str | None = None) -> bool:
    for st in policy["Statement"]:
        actions, resources = st["Action"], st["Resource"]
        if st["Effect"] != "Allow" or not any(fnmatch.fnmatchcase(action, a) for a in actions):
            continue
        if not any(fnmatch.fnmatchcase(resource, r) for r in resources):
            continue
        like = st.get("Condition", {}).get("StringLike", {}).get("s3:prefix")
        if like is None or (prefix is not None and any(fnmatch.fnmatchcase(prefix, p) for p in like)):
            return True
    return False


def test_the_iam_policy_allows_every_call_rightsize_makes_and_writes_only_below_its_prefix(bucket, monkeypatch, tmp_path):
    policy = json.loads((ROOT / "deploy" / "iam-policy.json").read_text().replace("BUCKET", BUCKET).replace("PREFIX", "rightsize"))
    calls: list[tuple[str, dict]] = []
    c = objects.new_client()
    c.meta.events.register("provide-client-params.s3.*", lambda params, model, **_: calls.append((model.name, dict(params))))
    monkeypatch.setattr(objects, "client", lambda: c)
    cluster("prod").write(bucket / "2026-W47" / "prod" / "snapshot")
    (tmp_path / "fast.toml").write_text(FAST)
    fast = ["--quiet", "--config", str(tmp_path / "fast.toml")]
    assert main(["report", *fast, "--snapshot", str(bucket / "2026-W47" / "prod" / "snapshot"), "--out", str(bucket / "2026-W47" / "prod")]) == 0
    assert main(["report", *fast, "--snapshot", str(bucket / "2026-W47")]) == 0
    assert {name for name, _ in calls} >= {"PutObject", "GetObject", "CopyObject", "DeleteObjects", "ListObjectsV2"}
    for name, params in calls:
        bucket_arn = f"arn:aws:s3:::{params['Bucket']}"
        if name == "ListObjectsV2":
            assert allowed(policy, "s3:ListBucket", bucket_arn, params.get("Prefix", "")), params
            continue
        keys_of = [o["Key"] for o in params["Delete"]["Objects"]] if name == "DeleteObjects" else [params["Key"]]
        for key in keys_of:
            assert all(allowed(policy, action, f"{bucket_arn}/{key}") for action in S3_ACTIONS[name]), (name, key)
        if name == "CopyObject":
            source = params["CopySource"]
            assert allowed(policy, "s3:GetObject", f"arn:aws:s3:::{source['Bucket']}/{source['Key']}"), source
    # nothing writes outside the prefix, and AWS is otherwise only read
    writes = [st for st in policy["Statement"] if any(not a.split(":")[1].startswith(("Get", "List", "Describe", "Query"))
                                                      for a in st["Action"])]
    assert writes and all(r == f"arn:aws:s3:::{BUCKET}/rightsize/*" for st in writes for r in st["Resource"])
    assert not allowed(policy, "s3:PutObject", f"arn:aws:s3:::{BUCKET}/other/x")
    actions = {a for st in policy["Statement"] for a in st["Action"]}
    assert {"aps:QueryMetrics", "aps:GetSeries", "aps:GetLabels", "aps:GetMetricMetadata", "pricing:GetProducts",
            "ec2:DescribeSpotPriceHistory", "ec2:DescribeInstanceTypes"} <= actions and "*" not in actions


def test_fleet_flag_reads_this_weeks_folder_of_output_dir(bucket, tmp_path):
    import datetime as dt

    from rightsize.emit.report import week_label

    week = bucket / week_label(dt.datetime.now(dt.timezone.utc))
    cluster("eu").write(week / "eu" / "snapshot")
    cfg = tmp_path / "fleet.toml"
    cfg.write_text(f'[report]\ncharts = false\nbacktest_days = 0\noutput_dir = "{bucket}"\nlayout = "{{week}}/{{cluster}}"\n')
    assert main(["report", "--quiet", "--fleet", "--config", str(cfg)]) == 0
    summary = json.loads(keys()[f"{(week / '_fleet').key}/summary.json"])
    assert summary["fleet"]["root"] == str(week) and summary["clusters"] == ["eu"]
    assert main(["report", "--quiet", "--fleet", "--snapshot", str(week), "--config", str(cfg)]) == 2  # one or the other


def test_a_live_run_renews_its_lease_and_a_killed_ones_blocks_for_at_most_the_lease(bucket):
    out = bucket / "2026-W47" / "prod"
    with output_lock(out, wait_seconds=0, command="rightsize run", lease_seconds=2):
        time.sleep(3)  # longer than the lease: the holder rewrote its lock object meanwhile
        with pytest.raises(LockedError, match="`rightsize run`"):
            with output_lock(out, wait_seconds=0, lease_seconds=2):
                pass
    # a run killed while holding the lock: its object is never renewed, so the next run waits at most the lease
    boto3.client("s3").put_object(Bucket=BUCKET, Key="rightsize/2026-W47/.prod.lock/killed-run", Body=b'{"pid": 1}')
    with output_lock(out, wait_seconds=3, lease_seconds=2):
        assert [k.rsplit("/", 1)[1] for k in keys("rightsize/2026-W47/.prod.lock/")] != ["killed-run"]
    assert not keys("rightsize/2026-W47/.prod.lock/")
