"""Kill loop: SIGKILL at random points of `report`, `patch`, `run` and an S3 `collect`; prints the tally.

Each command first completes once (the "earlier output"), then is started again and killed with SIGKILL
after a random delay drawn over the length of a whole run, ``--kills`` times (50 by default). After each
kill the state is read as the next run sees it (``folders.recover`` first: what every command does
when it takes the lock), and the output must be either

- **earlier**: byte-identical to the earlier output, or
- **new**: complete (the same files as a whole run writes; a snapshot reads back with every checksum),

never anything else. Then the command runs again to its end (the next run): it must succeed, and on S3
it must not wait longer than the lease (``[general] lock_lease``, 10 s here) for the dead run's lock.

    python3 benchmarks/kill_loop.py                  # 50 kills of each command (about 30 minutes on 2 cores)
    python3 benchmarks/kill_loop.py --kills 5 --commands report patch

Real parts: the CLI in a subprocess, a real Prometheus for `run` (tests/promservers.py, a backfilled TSDB),
moto's S3 server in this process for `collect --out s3://` (a real HTTP endpoint that outlives the killed
child). Prints one line per command: kills, earlier, new, broken, the next run's longest wait.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from rightsize.folders import recover  # noqa: E402

BUCKET = "kill-loop"


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def cli(*args, env=None) -> list[str]:
    return [sys.executable, "-m", "rightsize.cli", *map(str, args)]


def timed(cmd, env=None) -> float:
    began = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode not in (0, 3, 4):
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr}")
    return time.monotonic() - began


def kill_after(cmd, delay: float, env=None) -> int:
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    return proc.returncode


def local_loop(name: str, cmd, out: Path, kills: int, rng: random.Random) -> dict:
    """Kill ``cmd`` (which writes ``out``) ``kills`` times; classify the folder after each kill."""
    full = timed(cmd)
    tally = {"command": name, "kills": 0, "finished first": 0, "earlier": 0, "new": 0, "broken": 0, "run s": round(full, 1)}
    for _ in range(kills):
        earlier = files_of(out)
        code = kill_after(cmd, rng.uniform(0.0, full * 1.1))
        recover(out)
        after = files_of(out) if out.exists() else {}
        if code != -signal.SIGKILL:
            tally["finished first"] += 1
        tally["kills"] += 1
        if after == earlier:
            tally["earlier"] += 1
        elif set(after) == set(earlier):
            tally["new"] += 1
        else:
            tally["broken"] += 1
            print(f"  {name}: broken folder: {sorted(set(after) ^ set(earlier))[:5]}", file=sys.stderr)
        print(f"  {json.dumps(tally)}", file=sys.stderr, flush=True)  # the tally so far, after every kill
        timed(cmd)  # the next run completes
    return tally


def s3_loop(kills: int, rng: random.Random, work: Path, prom_url: str, end: str) -> dict:
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_EC2_METADATA_DISABLED": "true"}
    os.environ.update(env)
    boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"]).create_bucket(Bucket=BUCKET)
    cfg = work / "s3.toml"
    cfg.write_text(_prom_toml(prom_url, end) + '[general]\nlock_lease = "10s"\nlock_wait = "60s"\nwindow = "24h"\nstep = "1m"\n')
    target = f"s3://{BUCKET}/w/snapshot"
    cmd = cli("collect", "--quiet", "--config", cfg, "--out", target)
    from rightsize.s3 import objects
    from rightsize.snapshot import Snapshot

    def state() -> tuple:
        objects._CLIENTS.clear()
        try:
            snap = Snapshot.read(target)
        except Exception as exc:  # noqa: BLE001 - any failure to read is "broken"
            return ("broken", str(exc)[:120])
        return ("ok", snap.meta["created_at"], json.dumps(snap.meta["checksums"], sort_keys=True))

    full = timed(cmd, env)
    tally = {"command": "collect --out s3://", "kills": 0, "finished first": 0, "earlier": 0, "new": 0, "broken": 0,
             "run s": round(full, 1), "longest next-run wait s": 0.0}
    try:
        for _ in range(kills):
            earlier = state()
            code = kill_after(cmd, rng.uniform(0.0, full * 1.1), env)
            now = state()
            tally["kills"] += 1
            tally["finished first"] += code != -signal.SIGKILL
            if now == earlier:
                tally["earlier"] += 1
            elif now[0] == "ok":
                tally["new"] += 1
            else:
                tally["broken"] += 1
                print(f"  s3: {now}", file=sys.stderr)
            print(f"  {json.dumps(tally)}", file=sys.stderr, flush=True)
            wait = timed(cmd, env) - full
            tally["longest next-run wait s"] = round(max(tally["longest next-run wait s"], wait), 1)
    finally:
        server.stop()
    return tally


def _prom_toml(url: str, end: str) -> str:
    return (f'[prometheus]\nurl = "{url}"\nend = "{end}"\nrate_window = "1m"\n[kubernetes]\nsource = "prometheus"\n'
            '[pricing]\nsource = "offline"\n[report]\ncharts = true\n')


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=50)
    ap.add_argument("--commands", nargs="+", default=["report", "patch", "run", "s3"], help="any of report, patch, run, s3")
    ap.add_argument("--seed", type=int, default=27)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="rightsize-27-kill-"))
    work.mkdir(parents=True, exist_ok=True)
    demo = work / "demo"
    if not demo.exists():
        timed(cli("demo", "--quiet", "--out", demo))
    def report(result: dict) -> None:
        print(json.dumps(result), flush=True)

    if "report" in args.commands:
        report(local_loop("report", cli("report", "--quiet", "--snapshot", demo / "snapshot", "--out", demo),
                                  demo, args.kills, rng))
    if "patch" in args.commands:
        report(local_loop("patch", cli("patch", "--quiet", "--snapshot", demo / "snapshot", "--out", demo / "patches"),
                                  demo / "patches", args.kills, rng))
    if {"run", "s3"} & set(args.commands):
        from promdata import Dataset
        from promservers import dataset_end, make_config, start_prometheus

        dataset = Dataset(dataset_end(), 24)
        # a fresh TSDB folder each time: a --workdir kept from an earlier loop holds the last one
        server = start_prometheus(dataset, Path(tempfile.mkdtemp(prefix="prom-", dir=work)))
        end = make_config(server.url, dataset.end).prometheus.end
        try:
            if "run" in args.commands:
                cfg = work / "run.toml"
                cfg.write_text(_prom_toml(server.url, end) + '[general]\nwindow = "24h"\nstep = "1m"\n')
                out = work / "run-out"
                report(local_loop("run", cli("run", "--quiet", "--config", cfg, "--out", out), out, args.kills, rng))
            if "s3" in args.commands:
                report(s3_loop(args.kills, rng, work, server.url, end))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
