"""Real metrics servers for the tests: `prometheus` and `victoria-metrics` binaries on 127.0.0.1.

Each server gets a free port and its own storage folder. Prometheus is backfilled with
``promtool tsdb create-blocks-from openmetrics``; VictoriaMetrics takes the same samples through
its /api/v1/import/prometheus endpoint. A missing binary skips the test with the reason, except
under CI (environment variable CI set), where it fails: CI installs the binaries.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

import binaries

PROMETHEUS = os.environ.get("RIGHTSIZE_PROMETHEUS_BIN", "prometheus")
PROMTOOL = os.environ.get("RIGHTSIZE_PROMTOOL_BIN", "promtool")
VICTORIA = os.environ.get("RIGHTSIZE_VICTORIA_BIN", "victoria-metrics")


def need_binary(name: str) -> str:
    return binaries.need_binary(name, f"install Debian's {'victoria-metrics' if 'victoria' in name else 'prometheus'} package")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, proc: subprocess.Popen, url: str, log: Path, kind: str):
        self.proc, self.url, self.log, self.kind = proc, url, log, kind

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def tail(self) -> str:
        try:
            return self.log.read_text()[-2000:]
        except OSError:
            return ""


def _wait_ready(server: Server, path: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.kind} exited: {server.tail()}")
        try:
            if requests.get(server.url + path, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"{server.kind} not ready after {timeout}s: {server.tail()}")


# dataset id -> (the dataset, its backfilled blocks), so a dataset is backfilled once per session; the
# dataset is kept alive here so that its id is never reused by another one
_BLOCKS: dict[int, tuple] = {}


def start_prometheus(dataset, workdir: Path, *, max_samples: int | None = None, extra_args=()) -> Server:
    """Backfill ``dataset`` (tests.promdata.Dataset) into a fresh TSDB and serve it."""
    prom, promtool = need_binary(PROMETHEUS), need_binary(PROMTOOL)
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / "data"
    blocks = _BLOCKS.get(id(dataset), (None, None))[1]
    if blocks is None or not blocks.exists():
        blocks = workdir / "blocks"
        backfill(promtool, dataset.openmetrics_lines(), workdir, blocks)
        _BLOCKS[id(dataset)] = (dataset, blocks)
    # every server gets its own copy of the backfilled blocks (it compacts and writes into its folder)
    shutil.copytree(blocks, data)
    return serve_prometheus(prom, data, workdir, max_samples=max_samples, extra_args=extra_args)


BLOCK_SECONDS = 7200  # promtool writes 2 h blocks


def backfill(promtool: str, lines, workdir: Path, blocks: Path) -> None:
    """OpenMetrics ``lines`` (each ending with its timestamp in seconds) backfilled into ``blocks``: one file
    per aligned 2 h block, two promtools at a time. promtool re-reads its whole input once per 2 h block it
    writes, so one file of 14 days costs 168 full parses; a file per block costs one."""
    from concurrent.futures import ThreadPoolExecutor

    files: dict[int, object] = {}
    try:
        for line in lines:
            block = int(line.rsplit(" ", 1)[1]) // BLOCK_SECONDS
            f = files.get(block)
            if f is None:
                f = files[block] = open(workdir / f"block-{block}.om", "w")
            f.write(line)
    finally:
        for f in files.values():
            f.write("# EOF\n")
            f.close()

    def run(block: int) -> None:
        path = workdir / f"block-{block}.om"
        subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", "-q", str(path), str(blocks)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        path.unlink()

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(run, sorted(files)))


def serve_prometheus(prom: str, data: Path, workdir: Path, *, max_samples=None, extra_args=()) -> Server:
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = workdir / "prometheus.yml"
    cfg.write_text("global:\n  scrape_interval: 1h\nscrape_configs: []\n")
    args = [prom, f"--config.file={cfg}", f"--storage.tsdb.path={data}", f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=10y", "--log.level=warn", *extra_args]
    if max_samples:
        args.append(f"--query.max-samples={max_samples}")
    log = workdir / f"prometheus-{port}.log"
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(log, "w"), start_new_session=True)
    server = Server(proc, f"http://127.0.0.1:{port}", log, "prometheus")
    _wait_ready(server, "/-/ready")
    return server


def start_victoria(dataset, workdir: Path, extra_args=()) -> Server:
    """Start victoria-metrics with its own storage and import ``dataset`` (Prometheus text format)."""
    vm = need_binary(VICTORIA)
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = workdir / f"victoria-{port}.log"
    args = [vm, f"-storageDataPath={workdir / 'vmdata'}", f"-httpListenAddr=127.0.0.1:{port}", "-retentionPeriod=100y",
            "-search.disableCache", "-loggerLevel=ERROR", *extra_args]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(log, "w"), start_new_session=True)
    server = Server(proc, f"http://127.0.0.1:{port}", log, "victoria-metrics")
    _wait_ready(server, "/health")
    if dataset is not None:
        for chunk in dataset.prometheus_text_chunks():
            r = requests.post(server.url + "/api/v1/import/prometheus", data=chunk.encode(), timeout=120)
            r.raise_for_status()
        flush(server)
    return server


def flush(server: Server) -> None:
    """Make imported samples searchable now (VictoriaMetrics buffers them for about a second)."""
    requests.get(server.url + "/internal/force_flush", timeout=30)
    time.sleep(1.5)


# --- shared fixtures (import them into a test module to use them) ---------------------------------

WINDOW_HOURS = 24  # the usage window the tests collect
DATA_HOURS = WINDOW_HOURS + 1  # one extra hour so every pod's first rate() window is full


def dataset_end() -> int:
    """A whole hour at least an hour ago: old enough for VictoriaMetrics' latency offset, fixed per run."""
    return (int(time.time()) // 3600) * 3600 - 3600


@pytest.fixture(scope="session")
def prom_dataset():
    from promdata import Dataset

    return Dataset(dataset_end(), DATA_HOURS)


@pytest.fixture(scope="session")
def prom_server(prom_dataset, tmp_path_factory):
    server = start_prometheus(prom_dataset, tmp_path_factory.mktemp("prometheus"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def vm_server(prom_dataset, tmp_path_factory):
    server = start_victoria(prom_dataset, tmp_path_factory.mktemp("victoria"))
    yield server
    server.stop()


def make_config(url: str, end: int, window_hours: float = WINDOW_HOURS, **prometheus):
    """Config for the generated data: WINDOW_HOURS window at 60 s, ending at the data's end, fast retries."""
    import dataclasses
    import datetime as dt

    from rightsize.config import Config

    c = Config()
    settings = {"retries": 1, "backoff": 0.05, "timeout": 60.0, **prometheus}
    p = dataclasses.replace(c.prometheus, url=url, end=dt.datetime.fromtimestamp(end, dt.timezone.utc).isoformat(), **settings)
    return dataclasses.replace(c, general=dataclasses.replace(c.general, window=window_hours * 3600.0, step=60.0), prometheus=p)


