"""A child process for tests/test_faults.py: writes the snapshot at argv[1] to the s3:// location argv[2]
under the output lock, as `rightsize collect --out s3://...` does (same lock, same commit), without a
metrics server. argv[3]: the config (its [general] lock_lease and lock_wait)."""
import dataclasses
import datetime as dt
import sys

from rightsize.config import load_config
from rightsize.snapshot import Snapshot
from rightsize.storage import location, output_lock

snap = Snapshot.read(sys.argv[1])
snap.meta["created_at"] = dt.datetime.now(dt.timezone.utc).isoformat()  # tells each write apart
config = load_config(sys.argv[3])
target = location(sys.argv[2])
with output_lock(target, wait_seconds=config.general.lock_wait, lease_seconds=config.general.lock_lease,
                 command="rightsize collect", log=lambda m: print(m, file=sys.stderr)):
    snap.write(target)
