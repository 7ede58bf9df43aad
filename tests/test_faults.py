"""The fault catalogue: one test per fault or bad input that issue 18 found, with what rightsize does now.

Each test runs the real command line in a subprocess (exit code and stderr are what a user sees) against
real parts where the case involves them: a real Prometheus (tests/promservers.py), real kubectl
kustomize, real signals and real OS write errors. Stand-ins are used only where the real thing cannot
run here, and each one's docstring says why.

| case | what happens now |
| --- | --- |
| workload label with '../' in kube-state-metrics | no patch for it, warning, nothing outside --out (exit 0) |
| report write fails midway | earlier report intact, exit 1 "cannot write report ... (nothing was written)" |
| SIGTERM while drawing charts | earlier report intact, no temp folders, exit 143 |
| two runs into one folder | second fails at once (exit 1) naming the holder's pid, host and start time, or waits |
| a flipped bit in a parquet table | exit 1 "<file>: checksum mismatch" |
| manifests: no container has usage | exit 1 naming the manifests and the URL; some: warning in the report, exit 0 |
| step/window "0s", end = "yesterday", url = "not a url", min_cpu = "-100m", step > window | exit 2 from `config --check` and from every command, same message |
| credentials in a URL | exit 2, refused, points to username + password_env, password never printed |
| AWS endpoint that never answers | auto: offline prices after pricing.deadline, flagged; aws: exit 1 before any Prometheus query |
| YAML error / nameless container in manifests | exit 1 naming file (and object) before any Prometheus query |
| patch --overlay whose base lacks every workload | exit 1 with the reason, overlay untouched |
| a runtime setting that does not parse (-Xmx2gb) | exit 0, a named caveat (container, where, form expected), no floor from it |

Issue 27 (hostile input and hard kills), below in sections "issue 27": SIGKILL at chosen points of report,
patch and run (all old or all new) and of an S3 commit; planted lock symlinks / hard links; symlinked and
mount-point --out; the umask; a dripping server and a runaway answer; 401 / 404 / DNS / status-error /
unsendable headers; non-regular tables, hostile meta.json, an edited money field (digest), a fleet's renamed
copy, a corrupt earlier report; config NaN / Inf / bounds / files / cluster names / non-UTF-8; duplicate
scrapes, bad samples, an all-NaN exporter and zero containers on a real Prometheus; names with control
characters on a real run's stderr and stdout. Names through every writer:
tests/test_names_property.py. The random kill loop: benchmarks/kill_loop.py.

Covered elsewhere (other owners): truncated range answers, missing cAdvisor / kube-state-metrics series,
`--series` matching nothing, 503 / timeouts / non-JSON answers (the usage collection's tests),
cross_az_usd_per_month null without Istio data (the summary's tests), a server keeping fewer days than the
window (test_coverage.py), missing metric families and forbidden API lists (test_unknown_is_not_no.py,
test_doctor.py), and impossible input such as requests above allocatable (test_consistency.py).
"""
import dataclasses
import http.server
import json
import math
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from promdata import ContainerSpec, Dataset, PodSpec
from promservers import DATA_HOURS, dataset_end, make_config, prom_dataset, prom_server, start_prometheus  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
MIB, GIB = 2**20, 2**30


def rightsize(*args, env=None, check=None, preexec_fn=None):
    proc = subprocess.run([sys.executable, "-m", "rightsize.cli", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=600, env=env, preexec_fn=preexec_fn)
    if check is not None:
        assert proc.returncode == check, proc.stderr + proc.stdout
    return proc


def start(*args, env=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "rightsize.cli", *map(str, args)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=env)


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A demo run: its snapshot and a complete earlier report to damage or overwrite."""
    out = tmp_path_factory.mktemp("demo") / "out"
    rightsize("demo", "--quiet", "--out", out, check=0)
    return out


class _Recorder(http.server.BaseHTTPRequestHandler):
    paths: list = []

    def do_GET(self):  # noqa: N802 - http.server's naming
        self.paths.append(self.path)
        self.send_error(503)

    do_POST = do_GET

    def log_message(self, *args):
        pass


@pytest.fixture
def recording_server():
    """A stand-in Prometheus that records every request and answers none usefully: the cases below
    must fail before any query, which only a server that counts requests can show."""
    _Recorder.paths = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Recorder.paths
    server.shutdown()


@pytest.fixture
def silent_endpoint():
    """A stand-in AWS endpoint on 127.0.0.1 that accepts connections and never answers: the network
    fault of issue 18 (a hung endpoint), which no real AWS service can be made to do here."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                pass

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    stop.set()
    for c in held:
        c.close()
    sock.close()


def aws_env(tmp_path, endpoint: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
               AWS_ENDPOINT_URL=endpoint, AWS_EC2_METADATA_DISABLED="true",
               AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"))
    return env


def against(dataset, tmp_path: Path, name: str, *args, general: str = "", prometheus: str = "", extra: str = ""):
    """Run ``rightsize ARGS --config C`` against a real Prometheus serving ``dataset``: cluster prod, a 24-hour
    window ending at the data's end, the kube-state-metrics inventory, offline prices; ``general`` and
    ``prometheus`` are lines added to those tables, ``extra`` further tables."""
    server = start_prometheus(dataset, tmp_path / name)
    try:
        cfg = tmp_path / f"{name}.toml"
        cfg.write_text(f'[general]\ncluster_name = "prod"\nwindow = "24h"\n{general}[prometheus]\nurl = "{server.url}"\n{prometheus}'
                       f'end = "{make_config(server.url, dataset.end).prometheus.end}"\n[kubernetes]\nsource = "prometheus"\n'
                       f'[pricing]\nsource = "offline"\n{extra}')
        return rightsize(*args, "--config", cfg)
    finally:
        server.stop()


# --- 1. security: nothing is written outside --out ------------------------------------------------

@pytest.mark.integration
def test_workload_label_with_dotdot_writes_nothing_outside_out(tmp_path):
    """kube-state-metrics names a Deployment '../../escape': a real Prometheus serves it, `rightsize run`
    takes the inventory from the metrics; that workload gets no patch (with a warning), the others do."""
    pods = [PodSpec("shop", "evil-1-a", "Deployment", "../../escape", "ReplicaSet", "evil-1", "Deployment", "../../escape",
                    containers=[ContainerSpec("app", 0.2, 0.05, 200 * MIB, 20 * MIB, 2.0, math.nan, GIB, GIB)]),
            PodSpec("shop", "web-1-a", "Deployment", "web", "ReplicaSet", "web-1", "Deployment", "web",
                    containers=[ContainerSpec("app", 0.2, 0.05, 200 * MIB, 20 * MIB, 2.0, math.nan, GIB, GIB)])]
    out = tmp_path / "a" / "b" / "week"
    proc = against(Dataset(dataset_end(), DATA_HOURS, pods=pods), tmp_path, "prom", "run", "--out", out,
                   extra='[policies.production]\nmin_history = "12h"\n')
    assert proc.returncode == 0, proc.stderr
    assert not list(tmp_path.rglob("*escape*")), "a file was written from the '../' name"
    assert "workload '../../escape'" in proc.stderr and "not a valid Kubernetes name" in proc.stderr
    caveats = json.loads((out / "summary.json").read_text())["warnings"]
    assert any(w["code"] == "invalid_names" and "workload '../../escape'" in w["message"] for w in caveats)
    assert (out / "patches" / "prod" / "shop" / "deployment-web.yaml").is_file()
    assert "../../escape" not in (out / "recommendations.csv").read_text()  # left out where it entered


@pytest.mark.integration
def test_names_with_control_characters_reach_the_terminal_and_logs_escaped(tmp_path):
    """Issue 27: names reached stderr and the terminal raw (a newline forged a log line, ESC[2J cleared the
    screen). A real Prometheus serves a container label holding ESC sequences and a workload label holding a
    newline (OpenMetrics' \\n escape); `rightsize run`'s stderr and stdout carry neither, and the warning
    names both, escaped."""
    app = ContainerSpec("app", 0.2, 0.05, 200 * MIB, 20 * MIB, 2.0, math.nan, GIB, GIB)
    pods = [PodSpec("shop", "evil-1-a", "Deployment", "evil\\n12:00:00 all clean", "ReplicaSet", "evil-1", "Deployment",
                    "evil\\n12:00:00 all clean", containers=[app]),
            PodSpec("shop", "web-1-a", "Deployment", "web", "ReplicaSet", "web-1", "Deployment", "web",
                    containers=[app, dataclasses.replace(app, name="app\x1b[2J\x1b[31m")])]
    proc = against(Dataset(dataset_end(), DATA_HOURS, pods=pods), tmp_path, "prom", "run", "--out", tmp_path / "week",
                   extra='[policies.production]\nmin_history = "12h"\n')
    assert proc.returncode == 0, proc.stderr
    shown = proc.stderr + proc.stdout
    assert "\x1b" not in shown and "\r" not in shown
    assert not [line for line in shown.splitlines() if line.startswith("12:00:00 all clean")]  # no forged log line
    # named as data (a repr of the escaped text): "container 'app\\\\x1b[2J...'", "workload 'evil\\\\x0a12:00:00 ...'"
    assert re.search(r"container 'app(\\)+x1b\[2J(\\)+x1b\[31m'", proc.stderr), proc.stderr
    assert re.search(r"workload 'evil(\\)+x0a12:00:00 all clean'", proc.stderr), proc.stderr
    assert (tmp_path / "week" / "patches" / "prod" / "shop" / "deployment-web.yaml").is_file()  # its valid container


# --- 2. data loss: a report is replaced whole or not at all ----------------------------------------

def test_report_failing_midway_keeps_the_earlier_report(demo, tmp_path):
    """report.html (the largest file, written last) hits the process's file size limit: a real OS write
    error (EFBIG) at the point where a full disk would strike; a full disk itself needs mount rights."""
    before = files_of(demo)
    html_size = (demo / "report.html").stat().st_size
    assert html_size > 2 * max(len(v) for k, v in before.items() if not k.endswith(".html") and "/" not in k)

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
        limit_bytes = html_size // 2
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    proc = rightsize("report", "--snapshot", demo / "snapshot", "--out", demo, preexec_fn=limit)
    assert proc.returncode == 1, proc.stderr
    assert f"{demo / 'report.html'}: cannot write report file: File too large (nothing was written)" in proc.stderr
    assert files_of(demo) == before  # every file as it was, none half new
    assert [p.name for p in demo.parent.iterdir() if p.name.startswith(".out.") and p.is_dir()] == []


def test_sigterm_while_drawing_charts_keeps_the_earlier_report(demo):
    """A real SIGTERM, sent when the command says it is drawing charts."""
    before = files_of(demo)
    proc = start("report", "--snapshot", demo / "snapshot", "--out", demo)
    for line in proc.stderr:
        if "drawing charts" in line:
            proc.send_signal(signal.SIGTERM)
            break
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err  # 0 would mean the signal came too late to test anything
    assert "terminated (SIGTERM); earlier outputs were left as they were" in err
    assert files_of(demo) == before
    assert [p.name for p in demo.parent.iterdir() if p.name.startswith(".out.") and p.is_dir()] == []


# --- 3. silent wrong results -----------------------------------------------------------------------

def _lock_config(tmp_path, wait: str) -> Path:
    cfg = tmp_path / f"lock-{wait}.toml"
    cfg.write_text(f'[general]\nlock_wait = "{wait}"\n')
    return cfg


def _wait_for_holder(out: Path, proc: subprocess.Popen) -> dict:
    lock = out.with_name(f".{out.name}.lock")
    for _ in range(300):
        text = lock.read_text().strip() if lock.exists() else ""
        if text:
            return json.loads(text)
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("the first run never took the lock")


def test_second_run_into_the_same_folder_fails_naming_the_holder(tmp_path):
    """Two real processes. `rightsize demo` stands in for `rightsize run` (same lock, same writes, no
    Prometheus needed): every command that writes takes the lock of its output folder the same way."""
    out = tmp_path / "week"
    first = start("demo", "--quiet", "--out", out)
    holder = _wait_for_holder(out, first)
    second = rightsize("demo", "--quiet", "--config", _lock_config(tmp_path, "0s"), "--out", out)
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert second.returncode == 1
    assert f"another rightsize run is writing here: pid {first.pid} on " in second.stderr
    assert f"started {holder['started_at']}" in second.stderr and "rightsize demo" in second.stderr
    snapshot_rows = len(pd.read_parquet(out / "snapshot" / "containers.parquet"))
    assert len(pd.read_csv(out / "recommendations.csv")) == snapshot_rows


def test_second_run_waits_for_the_first_and_both_complete(tmp_path):
    """Two real processes; with lock_wait the second waits, then writes a complete folder of its own."""
    out = tmp_path / "week"
    first = start("demo", "--quiet", "--out", out)
    _wait_for_holder(out, first)
    second = rightsize("demo", "--config", _lock_config(tmp_path, "5m"), "--out", out)
    first.communicate(timeout=300)
    assert first.returncode == 0 and second.returncode == 0, second.stderr
    assert f"being written by pid {first.pid}" in second.stderr and "waiting up to 300 s" in second.stderr
    meta = json.loads((out / "snapshot" / "meta.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    assert summary["totals"]["containers"] == len(pd.read_parquet(out / "snapshot" / "containers.parquet"))
    assert meta["checksums"]  # the snapshot of the run that finished last, whole


def test_flipped_bit_in_a_table_is_an_error_naming_the_file(demo, tmp_path):
    snap = tmp_path / "snapshot"
    subprocess.run(["cp", "-r", str(demo / "snapshot"), str(snap)], check=True)
    table = snap / "workloads.parquet"
    data = bytearray(table.read_bytes())
    data[len(data) // 2] ^= 0x01
    table.write_bytes(bytes(data))
    proc = rightsize("report", "--snapshot", snap, "--out", tmp_path / "r")
    assert proc.returncode == 1
    assert f"{table}: checksum mismatch" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "r" / "report.md").exists()


# --- 4. missing inputs -----------------------------------------------------------------------------

MANIFEST = """apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - name: {container}
        image: x:1
        resources: {{requests: {{cpu: "1", memory: 1Gi}}}}
"""


def _prom_config(tmp_path, url: str, end: str) -> Path:
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[general]\nwindow = "24h"\n[prometheus]\nurl = "{url}"\nend = "{end}"\n'
                   '[pricing]\nsource = "offline"\n[policies.production]\nmin_history = "12h"\n')
    return cfg


def test_manifests_with_no_usage_at_all_are_an_error(prom_server, prom_dataset, tmp_path):
    """Real Prometheus; manifests of another cluster: every figure would be 'no usage data'."""
    manifests = tmp_path / "other.yaml"
    manifests.write_text(MANIFEST.format(name="billing", namespace="finance", container="app"))
    cfg = _prom_config(tmp_path, prom_server.url, make_config(prom_server.url, prom_dataset.end).prometheus.end)
    proc = rightsize("collect", "--config", cfg, "--manifests", manifests, "--out", tmp_path / "s")
    assert proc.returncode == 1
    assert f"none of the 1 containers in the manifests {manifests} has usage data at {prom_server.url}" in proc.stderr
    assert "finance/Deployment/billing:app" in proc.stderr and not (tmp_path / "s").exists()


def test_manifests_with_some_containers_without_usage_warn_in_the_report(prom_server, prom_dataset, tmp_path):
    """Real Prometheus; one container of the manifests runs (shop/web/app), one does not (new or scaled to zero):
    a normal week, so exit 0, and the report says which ones got no recommendation and why."""
    manifests = tmp_path / "m.yaml"
    manifests.write_text(MANIFEST.format(name="web", namespace="shop", container="app") + "---\n"
                         + MANIFEST.format(name="newcomer", namespace="shop", container="app"))
    cfg = _prom_config(tmp_path, prom_server.url, make_config(prom_server.url, prom_dataset.end).prometheus.end)
    out = tmp_path / "week"
    proc = rightsize("run", "--config", cfg, "--manifests", manifests, "--out", out)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    caveat = [w for w in summary["warnings"] if w["code"] == "usage_missing"]
    assert caveat and "1 of 2 containers in the manifests have no usage data" in caveat[0]["message"]
    assert "shop/Deployment/newcomer:app" in caveat[0]["message"]
    recs = pd.read_csv(out / "recommendations.csv")
    assert recs.loc[recs.workload == "newcomer", "reason"].str.contains("no usage data").all()


def test_a_runtime_setting_that_does_not_parse_is_named_and_never_guessed(prom_server, prom_dataset, tmp_path):
    """Real Prometheus; shop/web's app runs a JVM whose JAVA_TOOL_OPTIONS holds -Xmx2gb (the JVM refuses it): exit 0,
    named in the report's caveats, and no floor from a setting it cannot run with (its memory comes from its
    working set, where a guessed default heap of 25 % would have asked for four times its peak)."""
    manifests = tmp_path / "m.yaml"
    manifests.write_text(MANIFEST.format(name="web", namespace="shop", container="app").replace(
        "image: x:1", "image: x:1\n        env: [{name: JAVA_TOOL_OPTIONS, value: '-XX:+UseG1GC -Xmx2gb'}]"))
    cfg = _prom_config(tmp_path, prom_server.url, make_config(prom_server.url, prom_dataset.end).prometheus.end)
    out = tmp_path / "week"
    proc = rightsize("run", "--config", cfg, "--manifests", manifests, "--out", out)
    assert proc.returncode == 0, proc.stderr
    warnings = {w["code"]: w["message"] for w in json.loads((out / "summary.json").read_text())["warnings"]}
    assert "shop/Deployment/web:app: env JAVA_TOOL_OPTIONS: -Xmx2gb: '2gb' is not a JVM size" in warnings["runtime_setting_malformed"]
    recs = pd.read_csv(out / "recommendations.csv").set_index("container")
    app = recs.loc["app"]
    assert app["runtime"] == "jvm" and "runtime_setting_unknown" in app["flags"]
    # the working set's rule (margin widened for a day of history), no floor of a guessed default heap (4 x the peak)
    assert "memory from max" in app["reason"] and "never below" not in app["reason"]
    assert app["memory_request_bytes_recommended"] < 2.5 * app["memory_max_bytes"]


# --- 5. config that passed --check and failed later ------------------------------------------------

BAD_CONFIGS = {
    "step_0s": ('[general]\nstep = "0s"\n', "general.step: must be at least 1s, got '0s'"),
    # issue 27: values that passed every check and broke a run, or tracebacks
    "step_1ms": ('[general]\nstep = "1ms"\n', "general.step: must be at least 1s, got '1ms'"),
    "window_100000000d": ('[general]\nwindow = "100000000d"\n', "general.window: must be at most 3650d, got '100000000d'"),
    "margin_nan": ('[policies.production]\nmargin = nan\n', "policies.production.margin: expected a number, got nan (not a number)"),
    "margin_inf": ('[policies.production]\nmargin = inf\n', "policies.production.margin: must be finite, got inf"),
    "hours_per_month_nan": ('[general]\nhours_per_month = nan\n', "general.hours_per_month: expected a number, got nan"),
    "price_nan": ('[pricing]\ninstance_prices = {"m5.large" = nan}\n', "pricing.instance_prices: expected a table of numbers"),
    "change_threshold_inf": ('[policies.production]\nchange_threshold = inf\n', "policies.production.change_threshold: must be finite"),
    "token_file_missing": ('[prometheus]\ntoken_file = "/nonexistent/token"\n', "prometheus.token_file: /nonexistent/token: no such file"),
    "empty_cluster_name": ('[general]\ncluster_name = ""\n', "general.cluster_name: empty; a cluster needs a name"),
    "cluster_name_dotdot": ('[general]\ncluster_name = "../../evil"\n', "general.cluster_name: '../../evil' is not a valid cluster name"),
    "duplicate_clusters": ('[[clusters]]\nname = "eu"\n[[clusters]]\nname = "eu"\n', "clusters[1].name: cluster 'eu' is listed twice"),
    "window_0s": ('[general]\nwindow = "0s"\n', "general.window: must be greater than 0, got '0s'"),
    "end_yesterday": ('[prometheus]\nend = "yesterday"\n', "prometheus.end: not an RFC 3339 time: 'yesterday'"),
    "url_not_a_url": ('[prometheus]\nurl = "not a url"\n', "prometheus.url: not a URL with http:// or https:// and a host"),
    "min_cpu_negative": ('[policies.production]\nmin_cpu = "-100m"\n', "policies.production.min_cpu: must be at least 0, got '-100m'"),
    "step_over_window": ('[general]\nwindow = "1h"\nstep = "2h"\n', "general.step (7200 s) must be at most general.window (3600 s)"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_config_check_rejects_what_a_run_would(case, tmp_path):
    text, message = BAD_CONFIGS[case]
    cfg = tmp_path / "config.toml"
    cfg.write_text(text)
    check = rightsize("config", "--check", "--config", cfg)
    run = rightsize("collect", "--config", cfg, "--manifests", tmp_path / "absent", "--out", tmp_path / "s")
    assert check.returncode == 2 and run.returncode == 2
    assert check.stderr.strip() == run.stderr.strip()
    assert check.stderr.startswith(f"rightsize: error: {cfg}: {message}")


def test_a_config_that_is_not_utf8_is_an_error_naming_it(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_bytes(b'[general]\ncluster_name = "caf\xe9"\n')
    proc = rightsize("config", "--check", "--config", cfg)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{cfg}: not UTF-8 text (byte 0xe9 at offset" in proc.stderr


@pytest.mark.parametrize("table", ["[prometheus]\nurl", "[[clusters]]\nname = \"eu\"\nprometheus_url"])
def test_credentials_in_a_url_are_refused_without_echoing_the_password(table, tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'{table} = "http://admin:s3cret-pw@prometheus:9090"\n')
    proc = rightsize("config", "--check", "--config", cfg)
    assert proc.returncode == 2
    assert "credentials in a URL are refused" in proc.stderr and "password_env" in proc.stderr
    assert "'http://***@prometheus:9090'" in proc.stderr
    assert "s3cret-pw" not in proc.stderr + proc.stdout and "admin" not in proc.stderr


# --- 7. AWS that never answers ---------------------------------------------------------------------

def test_aws_endpoint_that_never_answers_falls_back_to_offline_prices(demo, silent_endpoint, tmp_path):
    """pricing.source = "auto": the live lookup is abandoned at pricing.deadline and the bundled prices
    are used, flagged in meta.json's warnings and pricing notes (the old code waited 364 s)."""
    from rightsize.config import load_config
    from rightsize.snapshot import Snapshot
    from rightsize.sources.aws import collect_prices

    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[pricing]\nsource = "auto"\ncache_dir = "{tmp_path / "cache"}"\nconnect_timeout = "1s"\n'
                   'read_timeout = "1s"\nmax_attempts = 1\ndeadline = "3s"\n')
    snap = Snapshot.read(demo / "snapshot")
    lines: list[str] = []
    saved = dict(os.environ)
    os.environ.update(aws_env(tmp_path, silent_endpoint))
    try:
        began = time.monotonic()
        collect_prices(load_config(cfg), snap, progress=lines.append)
        elapsed = time.monotonic() - began
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert elapsed < 30  # the deadline held (3 s); not a speed figure: without it this waits minutes
    codes = {w["code"] for w in snap.meta["warnings"]}
    assert {"prices_ondemand_offline", "prices_spot_offline"} <= codes
    assert snap.meta["pricing"]["source"] == "offline"
    assert set(snap.tables["prices"]["price_source"]) <= {"offline", "offline-estimate"}
    assert any("asking AWS for" in line for line in lines) and any("offline prices used" in line for line in lines)


def test_aws_source_that_cannot_answer_fails_before_any_prometheus_query(recording_server, silent_endpoint, tmp_path):
    """pricing.source = "aws": one cheap GetProducts call before any query; the recording stand-in
    Prometheus shows that no query was made."""
    url, requests_seen = recording_server
    manifests = tmp_path / "m.yaml"
    manifests.write_text(MANIFEST.format(name="web", namespace="shop", container="app"))
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[prometheus]\nurl = "{url}"\n[pricing]\nsource = "aws"\nconnect_timeout = "1s"\nread_timeout = "1s"\n')
    proc = rightsize("collect", "--config", cfg, "--manifests", manifests, "--out", tmp_path / "s",
                     env=aws_env(tmp_path, silent_endpoint))
    assert proc.returncode == 1
    assert 'pricing.source = "aws": checked before any query: AWS GetProducts' in proc.stderr
    assert requests_seen == [] and not (tmp_path / "s").exists()


# --- 8. late or vague errors -----------------------------------------------------------------------

def test_yaml_error_in_manifests_is_found_before_any_query(recording_server, tmp_path):
    url, requests_seen = recording_server
    manifests = tmp_path / "broken.yaml"
    manifests.write_text("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web\n")
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[prometheus]\nurl = "{url}"\n[pricing]\nsource = "offline"\n')
    proc = rightsize("collect", "--config", cfg, "--manifests", manifests, "--out", tmp_path / "s")
    assert proc.returncode == 1
    assert f"{manifests}: document 1" in proc.stderr and "not valid YAML" in proc.stderr
    assert requests_seen == []


def test_container_without_a_name_names_the_file_and_workload(recording_server, tmp_path):
    url, requests_seen = recording_server
    manifests = tmp_path / "m.yaml"
    manifests.write_text(MANIFEST.format(name="web", namespace="shop", container="app").replace("- name: app\n        image", "- image"))
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[prometheus]\nurl = "{url}"\n[pricing]\nsource = "offline"\n')
    proc = rightsize("collect", "--config", cfg, "--manifests", manifests, "--out", tmp_path / "s")
    assert proc.returncode == 1
    assert f"shop/Deployment/web ({manifests}): containers[0] has no name" in proc.stderr
    assert requests_seen == []


def test_patch_overlay_whose_base_lacks_every_workload_fails(demo, kubectl, tmp_path):
    """Real kubectl kustomize renders an overlay of a base that holds none of the demo's workloads."""
    base, overlay = tmp_path / "base", tmp_path / "overlay"
    base.mkdir()
    overlay.mkdir()
    (base / "d.yaml").write_text(MANIFEST.format(name="unrelated", namespace="elsewhere", container="app"))
    (base / "kustomization.yaml").write_text("resources: [d.yaml]\n")
    (overlay / "kustomization.yaml").write_text("resources: [../base]\n")
    before = files_of(overlay)
    proc = rightsize("patch", "--snapshot", demo / "snapshot", "--overlay", overlay, "--out", tmp_path / "p")
    assert proc.returncode == 1
    assert "the overlay renders none of the" in proc.stderr and "wrong overlay, wrong cluster, or its base lacks them" in proc.stderr
    assert files_of(overlay) == before


# --- building blocks every output path goes through ------------------------------------------------

def test_output_names_are_checked_and_contained(tmp_path):
    from rightsize.errors import RightsizeError
    from rightsize.atomic import inside
    from rightsize.folders import is_k8s_name, safe_component

    assert is_k8s_name("web") and is_k8s_name("api.v2-1") and not is_k8s_name("../x") and not is_k8s_name("Web")
    assert not is_k8s_name("a" * 254) and not is_k8s_name("")
    assert safe_component("prod-eu_1") == "prod-eu_1"
    assert safe_component("../etc") == "%2E.%2Fetc" and safe_component("a/b") == "a%2Fb" and safe_component("..") == "%2E."
    assert inside(tmp_path, "prod/shop/deployment-web.yaml") == tmp_path / "prod/shop/deployment-web.yaml"
    (tmp_path / "link").symlink_to("/tmp")
    for rel in ("../x.yaml", "/etc/passwd", "a/../../x", "link/x.yaml"):
        with pytest.raises(RightsizeError, match="would be written outside"):
            inside(tmp_path, rel)


def test_fetch_series_refuses_credentials_in_its_url():
    """The notebook API takes a URL directly: the same check as the config file, before any request."""
    import rightsize as rs
    from rightsize.errors import ConfigError

    with pytest.raises(ConfigError, match=r"'http://\*\*\*@prometheus:9090': credentials in a URL are refused") as err:
        rs.fetch_series("http://admin:s3cret-pw@prometheus:9090", ["shop/Deployment/web"])
    assert "s3cret-pw" not in str(err.value)


# --- issue 27: locks and swaps that a kill cannot hurt ----------------------------------------------

KILL_CHILD = """
import os, signal, sys
from pathlib import Path
calls = {{"n": 0}}
real = os.{function}
def killing(*args, **kwargs):
    if {condition}:
        calls["n"] += 1
        if calls["n"] == {at}:
            os.kill(os.getpid(), signal.SIGKILL)
    return real(*args, **kwargs)
os.{function} = killing
from rightsize.cli import main
sys.exit(main({argv!r}))
"""


def killed_at(argv: list, condition: str, at: int = 1, function: str = "rename") -> subprocess.CompletedProcess:
    """Run ``rightsize ARGV`` in a child that SIGKILLs itself at the ``at``-th call of ``os.FUNCTION`` for which
    ``condition`` (over ``args``) holds: a real kill at a chosen point of a real write."""
    code = KILL_CHILD.format(function=function, condition=condition, at=at, argv=[str(a) for a in argv])
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("point", ["between the two renames", "after the swap", "while staging"])
def test_sigkill_during_the_swap_leaves_the_earlier_report_or_the_new_one(demo, tmp_path, point):
    """SIGKILL at three points of `report`'s swap: the folder is whole (the earlier one after the next start's
    recovery, or the new one), never emptied, and the next run completes."""
    out = tmp_path / "out"
    subprocess.run(["cp", "-a", str(demo), str(out)], check=True)
    before = files_of(out)
    condition = {"between the two renames": "Path(args[1]).name == 'out'",
                 "after the swap": "False",
                 "while staging": "Path(args[1]).name == 'report.html'"}[point]
    function = "rename" if point != "while staging" else "replace"
    if point == "after the swap":  # the kill lands in the removal of the swapped-out folder
        condition, function = "'.out.old' in str(args[0])", "rmdir"
    proc = killed_at(["report", "--quiet", "--snapshot", out / "snapshot", "--out", out], condition, function=function)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    from rightsize.folders import recover

    recover(out)  # what the next start does first
    after = files_of(out)
    if point == "after the swap":
        assert set(after) == set(before)  # the new report, whole
    else:
        assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.lock", "out"]  # no staging or old folder left behind
    assert rightsize("report", "--quiet", "--snapshot", out / "snapshot", "--out", out).returncode == 0
    assert set(files_of(out)) == set(before)


def test_a_planted_lock_symlink_or_hard_link_is_refused_and_its_target_untouched(demo, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    out = tmp_path / "week"
    (tmp_path / ".week.lock").symlink_to(victim)
    proc = rightsize("report", "--snapshot", demo / "snapshot", "--out", out)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"{tmp_path / '.week.lock'}: cannot open the lock file of {out}: it is a symbolic link; refused" in proc.stderr
    assert victim.read_text() == "precious\n" and not out.exists()
    (tmp_path / ".week.lock").unlink()
    os.link(victim, tmp_path / ".week.lock")
    proc = rightsize("report", "--snapshot", demo / "snapshot", "--out", out)
    assert proc.returncode == 1 and "is a hard link (2 names); refused" in proc.stderr
    assert victim.read_text() == "precious\n"


def test_a_lock_file_is_never_truncated(tmp_path):
    from rightsize.folders import lock_path, output_lock

    out = tmp_path / "week"
    with output_lock(out, wait_seconds=0, command="rightsize run"):
        held = lock_path(out).read_bytes()
        assert json.loads(held)["command"] == "rightsize run" and len(held) == 1024  # written in place, padded
    assert not lock_path(out).exists()  # removed when the run ends, never truncated while another may read it


def test_a_symlinked_out_is_written_where_it_points_and_a_dangling_one_refused(demo, tmp_path):
    real = tmp_path / "real"
    subprocess.run(["cp", "-a", str(demo), str(real)], check=True)
    (real / "notes.txt").write_text("kept")
    link = tmp_path / "link"
    link.symlink_to(real)
    assert rightsize("report", "--quiet", "--snapshot", real / "snapshot", "--out", link).returncode == 0
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert (real / "report.md").is_file() and (real / "notes.txt").read_text() == "kept"
    assert (real / "snapshot" / "meta.json").is_file()  # the target's files were not moved out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    proc = rightsize("report", "--snapshot", real / "snapshot", "--out", dangling)
    assert proc.returncode == 1 and "a symbolic link to" in proc.stderr and "does not exist; refused" in proc.stderr
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_output_folders_follow_the_umask(demo, tmp_path, umask):
    out = tmp_path / "week"
    proc = rightsize("report", "--quiet", "--snapshot", demo / "snapshot", "--out", out, preexec_fn=lambda: os.umask(umask))
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask


def test_a_mount_point_is_staged_inside_itself(demo, tmp_path):
    """A real tmpfs mounted at --out (needs root: skipped elsewhere). A mount point cannot be renamed: it
    is staged inside itself, and a kill in its swap is rolled forward at the next start."""
    out = tmp_path / "mnt"
    out.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "rightsize-test", str(out)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        assert rightsize("report", "--quiet", "--snapshot", demo / "snapshot", "--out", out).returncode == 0
        first = files_of(out)
        assert "report.md" in first and os.path.ismount(out)
        proc = killed_at(["report", "--quiet", "--snapshot", demo / "snapshot", "--out", out],
                         "Path(args[1]).name == 'report.html' and '.staging' not in str(args[1])")
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        from rightsize.folders import recover

        recover(out)
        assert set(files_of(out)) == set(first) and os.path.ismount(out)
        assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []
    finally:
        subprocess.run(["umount", str(out)], check=False)


# --- issue 27: bounded transport ---------------------------------------------------------------------

class RawServer:
    """A stand-in HTTP server on 127.0.0.1 speaking raw HTTP/1.1 from a socket, so it can misbehave in ways
    no real Prometheus can be made to: drip its answer a byte a second, or send a runaway answer of any size
    without a Content-Length. ``answer(sock)`` writes the whole reply."""

    def __init__(self, answer):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.answer, self.stop = answer, threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn):
        try:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, rest = data.partition(b"\r\n\r\n")
            length = int(next((l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")), b"0"))
            while len(rest) < length:
                rest += conn.recv(65536)
            self.answer(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.stop.set()
        self.sock.close()


def _drip(conn):
    body = b'{"status":"success","data":{"resultType":"matrix","result":[]}}'
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
    for b in body:
        conn.sendall(bytes([b]))
        time.sleep(1.0)


def test_an_answer_dripping_a_byte_a_second_ends_at_the_timeout(tmp_path):
    """The whole request is bounded by [prometheus] timeout (connect and every read together): a server
    that keeps each read alive with one byte a second is cut off at the deadline, as a timeout (split)."""
    from rightsize.sources.prometheus.client import Client, QueryFailed

    server = RawServer(_drip)
    try:
        client = Client(make_config(server.url, 1_700_000_040, timeout=2.0, retries=0), server.url)
        began = time.monotonic()
        with pytest.raises(QueryFailed, match=r"no whole answer within 2s \(timeout\)") as failed:
            client.query_range("up", 1_700_000_000, 1_700_000_040, 60, ["pod"])
        assert time.monotonic() - began < 2 + 1  # the bound the issue sets: timeout + 1 s
        assert failed.value.splittable
    finally:
        server.close()


def _runaway(conn):
    """A matrix that never ends (sent until the client stops reading), no Content-Length: 668 MB and more."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
                 b'{"status":"success","data":{"resultType":"matrix","result":[')
    series = b'{"metric":{"pod":"p"},"values":[' + b",".join(b'[1700000000,"0.5"]' for _ in range(5000)) + b"]},"
    for _ in range(8000):  # 8000 x 95 kB = 760 MB at most
        conn.sendall(series)


OVERSIZE_CHILD = """
import sys
sys.path.insert(0, {tests!r})
from promservers import make_config
from rightsize.sources.prometheus.client import Client, QueryFailed
client = Client(make_config({url!r}, 1_700_000_040, retries=0), {url!r})
try:
    client.query_range("up", 1_700_000_000, 1_700_000_040, 60, ["pod"])
except QueryFailed as exc:
    print("splittable" if exc.splittable else "final", exc)
"""


def test_an_over_size_answer_is_refused_as_splittable_and_memory_stays_under_1_gib(tmp_path):
    """With the default max_answer_bytes (256Mi) a runaway answer is not read further; the child's peak RSS
    (its own, from wait4) stays under 1 GiB. Before: 668 MB took the process to 7.1 GiB."""
    server = RawServer(_runaway)
    try:
        code = OVERSIZE_CHILD.format(tests=str(ROOT / "tests"), url=server.url)
        proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = proc.stdout.read(), proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        server.close()
    assert os.waitstatus_to_exitcode(status) == 0, err
    assert out.startswith("splittable") and "larger than [prometheus] max_answer_bytes (268,435,456 bytes" in out, out + err
    assert usage.ru_maxrss * 1024 < GIB, f"peak RSS {usage.ru_maxrss / 1024:.0f} MiB"


def _answering(status: int, body: bytes):
    def answer(conn):
        conn.sendall(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                     % (status, len(body)) + body)
    return answer


def _collect_config(tmp_path, url: str, extra: str = "") -> Path:
    cfg = tmp_path / "collect.toml"
    cfg.write_text(f'[prometheus]\nurl = "{url}"\nretries = 0\ntimeout = "10s"\n{extra}\n[kubernetes]\nsource = "prometheus"\n'
                   '[pricing]\nsource = "offline"\n')
    return cfg


@pytest.mark.parametrize("case", ["401 without the token", "404 (no path prefix)", "200 with status error"])
def test_http_failures_name_their_likely_cause(tmp_path, case):
    status, body, expected = {
        "401 without the token": (401, b"Unauthorized", "HTTP 401: Unauthorized (is RIGHTSIZE_PROMETHEUS_TOKEN set? it is not set)"),
        "404 (no path prefix)": (404, b"404 page not found", "HTTP 404: 404 page not found; is [prometheus] url the API's base with its path prefix"),
        "200 with status error": (200, b'{"status":"error","errorType":"bad_data","error":"parse error"}',
                                  "the server answered status error: parse error"),
    }[case]
    server = RawServer(_answering(status, body))
    try:
        env = {k: v for k, v in os.environ.items() if k != "RIGHTSIZE_PROMETHEUS_TOKEN"}
        proc = rightsize("collect", "--config", _collect_config(tmp_path, server.url), "--out", tmp_path / "snap", env=env)
    finally:
        server.close()
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert server.url in proc.stderr and expected in proc.stderr, proc.stderr
    assert not (tmp_path / "snap").exists()


def test_a_host_that_does_not_resolve_is_named(tmp_path):
    proc = rightsize("collect", "--config", _collect_config(tmp_path, "http://no-such-prometheus.invalid:9090"),
                     "--out", tmp_path / "snap")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "cannot resolve no-such-prometheus.invalid" in proc.stderr and "Max retries" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("headers", ['{"X-Scope-OrgID" = "tenant\\r\\nX-Evil: 1"}', '{"X-Scope-OrgID" = "tenant-é€"}'])
def test_a_header_that_cannot_be_sent_is_named_by_config_check_and_collect(tmp_path, headers):
    cfg = _collect_config(tmp_path, "http://127.0.0.1:9", f"headers = {headers}")
    for args in (("config", "--check"), ("collect", "--out", tmp_path / "snap")):
        proc = rightsize(*args, "--config", cfg)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert "prometheus.headers: header 'X-Scope-OrgID'" in proc.stderr and "tenant" not in proc.stderr, proc.stderr


def test_a_token_that_cannot_be_sent_names_its_variable(tmp_path):
    env = {**os.environ, "RIGHTSIZE_PROMETHEUS_TOKEN": "tøken€\n"}
    proc = rightsize("collect", "--config", _collect_config(tmp_path, "http://127.0.0.1:9"), "--out", tmp_path / "s", env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "the bearer token from the environment variable RIGHTSIZE_PROMETHEUS_TOKEN cannot be sent" in proc.stderr


# --- issue 27: hostile snapshots, reports and fleets ------------------------------------------------

def _copy(demo: Path, tmp_path: Path) -> Path:
    snap = tmp_path / "snapshot"
    subprocess.run(["cp", "-a", str(demo / "snapshot"), str(snap)], check=True)
    return snap


@pytest.mark.parametrize("kind", ["symlink to /dev/zero", "FIFO"])
def test_a_table_that_is_not_a_regular_file_is_refused(demo, tmp_path, kind):
    snap = _copy(demo, tmp_path)
    table = snap / "usage.parquet"
    table.unlink()
    if kind == "FIFO":
        os.mkfifo(table)
    else:
        table.symlink_to("/dev/zero")
    proc = rightsize("report", "--snapshot", snap, "--out", tmp_path / "r")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"{table}: not a regular file (a FIFO, a device, or a link to one); refused" in proc.stderr


# short ids: the test id is in PYTEST_CURRENT_TEST, and a 400,000-character one is over the kernel's limit for
# one environment string (every subprocess the test starts fails with E2BIG, as with pytest 8.0)
@pytest.mark.parametrize("content", ["[1, 2, 3]", "[" * 200_000 + "]" * 200_000, "\xff\xfe not utf-8"],
                         ids=["an array", "nested 200,000 deep", "not utf-8"])
def test_a_meta_json_that_is_not_an_object_is_an_error_naming_it(demo, tmp_path, content):
    snap = _copy(demo, tmp_path)
    (snap / "meta.json").write_bytes(content.encode("latin-1"))
    proc = rightsize("report", "--snapshot", snap, "--out", tmp_path / "r")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"{snap / 'meta.json'}: " in proc.stderr


MONEY_EDITS = {"window_start": lambda m: {**m, "window_start": "2026-11-15T00:00:00+00:00"},
               "step_seconds": lambda m: {**m, "step_seconds": m["step_seconds"] * 2},
               "clusters": lambda m: {**m, "clusters": m["clusters"] + ["other"]},
               "pricing": lambda m: {**m, "pricing": {**m["pricing"], "region": "eu-west-1"}}}


@pytest.mark.parametrize("field", sorted(MONEY_EDITS))
def test_an_edited_money_field_in_meta_json_is_found_by_its_digest(demo, tmp_path, field):
    """Before: moving window_start moved the current cost from $1,992 to $6,544, exit 0. Each field that changes
    money (window, step, clusters, prices) is covered by meta.json's digest."""
    snap = _copy(demo, tmp_path)
    meta = json.loads((snap / "meta.json").read_text())
    (snap / "meta.json").write_text(json.dumps(MONEY_EDITS[field](meta)))
    proc = rightsize("report", "--snapshot", snap, "--out", tmp_path / "r")
    assert proc.returncode == 1 and "its digest does not match its window_start, window_end" in proc.stderr, proc.stderr
    assert not (tmp_path / "r").exists()


def test_a_fleet_refuses_a_renamed_copy_of_a_cluster(demo, tmp_path):
    fleet = tmp_path / "2026-W48"
    for name in ("prod", "prod-copy"):
        subprocess.run(["mkdir", "-p", str(fleet / name)], check=True)
        subprocess.run(["cp", "-a", str(demo / "snapshot"), str(fleet / name / "snapshot")], check=True)
    proc = rightsize("report", "--snapshot", fleet, "--out", tmp_path / "r")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "is in two snapshots of the fleet" in proc.stderr and "would count twice" in proc.stderr


@pytest.mark.parametrize("corrupt", ['{"totals": ', "[1]", '{"totals": []}'])
def test_a_corrupt_earlier_report_is_a_caveat_and_the_comparison_is_skipped(demo, tmp_path, corrupt):
    reports = tmp_path / "reports"
    subprocess.run(["mkdir", "-p", str(reports)], check=True)
    subprocess.run(["cp", "-a", str(demo), str(reports / "2026-W46")], check=True)
    (reports / "2026-W46" / "summary.json").write_text(corrupt)
    proc = rightsize("report", "--snapshot", demo / "snapshot", "--out", reports / "2026-W47")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "week over week skipped" in proc.stderr
    summary = json.loads((reports / "2026-W47" / "summary.json").read_text())
    assert "week_over_week" not in summary
    assert any(w["code"] == "comparison_skipped" for w in summary["warnings"])
    assert "week over week skipped" in (reports / "2026-W47" / "report.md").read_text()


# --- issue 27: data sanity on a real Prometheus --------------------------------------------------------

def _sanity_pods() -> list:
    app = lambda cpu: ContainerSpec("app", cpu, 0.05, 200 * MIB, 20 * MIB, 0.5, 1.0, GIB, GIB, throttle_ratio=0.1)  # noqa: E731
    return [PodSpec("shop", f"web-1-{x}", "Deployment", "web", "ReplicaSet", "web-1", "Deployment", "web", containers=[app(0.3)])
            for x in "ab"] + [PodSpec("shop", "api-1-a", "Deployment", "api", "ReplicaSet", "api-1", "Deployment", "api",
                                      containers=[app(0.1)])]


def _collect_snapshot(dataset, tmp_path, name: str):
    from rightsize.snapshot import Snapshot

    proc = against(dataset, tmp_path, name, "collect", "--out", tmp_path / f"{name}-snap",
                   general='step = "1m"\n', prometheus='rate_window = "5m"\n')
    assert proc.returncode == 0, proc.stderr
    return Snapshot.read(tmp_path / f"{name}-snap"), proc.stderr


@pytest.mark.integration
def test_a_kubelet_scraped_by_two_jobs_gives_the_statistics_of_one_scrape(tmp_path):
    """Before: duplicate cAdvisor series multiplied usage with no warning. Now the duplicates count once
    (documented rule: series that differ only in [prometheus] scrape_labels are one series) and a warning
    names the jobs."""
    once, _ = _collect_snapshot(Dataset(dataset_end(), DATA_HOURS, pods=_sanity_pods()), tmp_path, "once")
    twice, err = _collect_snapshot(Dataset(dataset_end(), DATA_HOURS, pods=_sanity_pods(), scrape_jobs=("kubelet", "cadvisor")),
                                   tmp_path, "twice")
    key = ["namespace", "kind", "workload", "container"]
    a, b = (s.tables["usage"].sort_values(key).reset_index(drop=True) for s in (once, twice))
    assert len(a) == 2
    pd.testing.assert_frame_equal(a, b, check_like=True)
    warning = [w for w in twice.meta["warnings"] if w["code"] == "duplicate_series"]
    assert warning and "jobs 'cadvisor', 'kubelet'" in warning[0]["message"] and "counted once" in warning[0]["message"]
    assert "jobs 'cadvisor', 'kubelet'" in err
    assert not [w for w in once.meta["warnings"] if w["code"] == "duplicate_series"]


@pytest.mark.integration
def test_nan_infinite_and_negative_samples_are_dropped_one_by_one_with_the_pod_named(tmp_path):
    """Before: one pod with a negative working set aborted the whole collection (even with --allow-partial),
    +Inf gave a traceback, NaN vanished silently. Now each bad sample is dropped and counted, the pod named."""
    poison = {"api-1-a": {100: -1.0, 200: float("inf"), 300: float("nan"), 400: float("-inf")}}
    clean, _ = _collect_snapshot(Dataset(dataset_end(), DATA_HOURS, pods=_sanity_pods()), tmp_path, "clean")
    snap, err = _collect_snapshot(Dataset(dataset_end(), DATA_HOURS, pods=_sanity_pods(), poison=poison), tmp_path, "bad")
    usage = snap.tables["usage"].set_index("workload")
    assert set(usage.index) == {"web", "api"}  # the bad pod's workload is still there
    warning = [w for w in snap.meta["warnings"] if w["code"] == "samples_dropped"]
    # four step samples of the range queries, and the day whose raw maximum was +Inf
    assert warning and "shop/api-1-a (app): 5" in warning[0]["message"], snap.meta["warnings"]
    assert "shop/api-1-a" in err
    # its other samples still count: the memory max is the clean one (the -1 and the infinities are gone)
    assert usage.loc["api", "memory_max_bytes"] == clean.tables["usage"].set_index("workload").loc["api", "memory_max_bytes"]


def test_zero_containers_found_is_an_error_with_hints(prom_server, prom_dataset, tmp_path):
    """Before: a namespace typo gave "found 0 containers" and exit 0."""
    cfg = tmp_path / "typo.toml"
    cfg.write_text(f'[prometheus]\nurl = "{prom_server.url}"\nend = "{make_config(prom_server.url, prom_dataset.end).prometheus.end}"\n'
                   'namespaces = ["shpo"]\n[general]\nwindow = "24h"\n[kubernetes]\nsource = "prometheus"\n[pricing]\nsource = "offline"\n')
    proc = rightsize("collect", "--config", cfg, "--out", tmp_path / "snap")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "found 0 containers with usage in namespaces 'shpo'" in proc.stderr and "a typo?" in proc.stderr
    assert not (tmp_path / "snap").exists()


@pytest.mark.integration
def test_an_exporter_answering_only_nan_is_zero_containers_and_an_error(tmp_path):
    """Before: all-NaN answers gave "found 0 containers" and exit 0. A real Prometheus whose every cAdvisor sample
    is NaN: exit 1 with the empty server's hints (NaN named among them), no snapshot written; with one pod of
    three NaN, the other two are collected and the NaN pod's samples counted in the warning."""
    pods = _sanity_pods()
    everything = Dataset(dataset_end(), DATA_HOURS, pods=pods, nan_pods=tuple(p.pod for p in pods))
    proc = against(everything, tmp_path, "prom", "collect", "--out", tmp_path / "snap")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "found 0 containers with usage in any namespace" in proc.stderr and "Every sample may also have been NaN" in proc.stderr
    assert not (tmp_path / "snap").exists()
    one, err = _collect_snapshot(Dataset(dataset_end(), DATA_HOURS, pods=pods, nan_pods=("api-1-a",)), tmp_path, "one")
    assert set(one.tables["usage"]["workload"]) == {"web"}
    warning = [w["message"] for w in one.meta["warnings"] if w["code"] == "samples_dropped"]
    assert warning and "shop/api-1-a (app)" in warning[0], one.meta["warnings"]


def test_sigkill_during_patch_and_sigterm_or_sigkill_during_run_leave_all_old_or_all_new(demo, prom_server, prom_dataset, tmp_path):
    """`patch` killed between the two renames; `run` terminated (SIGTERM) while writing its patches and
    killed (SIGKILL) in its one swap: each time every output of the folder is the earlier one (after the
    next start's recovery). Before: SIGTERM between run's stages left a new snapshot and report beside the
    old patches."""
    from rightsize.folders import recover

    out = tmp_path / "out"
    subprocess.run(["cp", "-a", str(demo), str(out)], check=True)
    before = files_of(out)
    proc = killed_at(["patch", "--quiet", "--snapshot", out / "snapshot", "--out", out / "patches"], "Path(args[1]).name == 'patches'")
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    recover(out / "patches")
    assert {k: v for k, v in files_of(out).items() if not k.endswith(".lock")} == before

    cfg = _prom_config(tmp_path, prom_server.url, make_config(prom_server.url, prom_dataset.end).prometheus.end)
    week = tmp_path / "week"
    assert rightsize("run", "--quiet", "--config", cfg, "--out", week).returncode == 0
    earlier = files_of(week)
    # SIGTERM while the patches are written (after the snapshot and the report were staged)
    code = KILL_CHILD.replace("os.kill(os.getpid(), signal.SIGKILL)", "os.kill(os.getpid(), signal.SIGTERM)").format(
        function="mkdir", condition="'.patches.staging' in str(args[0])", at=1,
        argv=["run", "--quiet", "--config", str(cfg), "--out", str(week)])
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 128 + signal.SIGTERM and "earlier outputs were left as they were" in proc.stderr, proc.stderr
    assert files_of(week) == earlier
    # SIGKILL between the two renames of the run folder
    proc = killed_at(["run", "--quiet", "--config", cfg, "--out", week], "Path(args[1]).name == 'week'")
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    recover(week)
    assert files_of(week) == earlier


def _s3_keys(env: dict, prefix: str) -> list[str]:
    import boto3

    c = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1", aws_access_key_id="testing",
                     aws_secret_access_key="testing")
    return [o["Key"] for o in c.list_objects_v2(Bucket="acme", Prefix=prefix).get("Contents", [])]


S3_KILL_CHILD = """
import os, signal, sys
import rightsize.s3.commit as s3
real = s3.{function}
def killing(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
s3.{function} = killing
from rightsize.cli import main
sys.exit(main({argv!r}))
"""


def test_sigkill_in_an_s3_commit_leaves_a_readable_snapshot_and_the_next_run_waits_at_most_the_lease(demo, tmp_path, monkeypatch):
    """A real SIGKILL of `rightsize collect`-like writes to moto's S3 server (an HTTP endpoint in this
    process that outlives the killed child; moto cannot run as real S3 here): killed before the pointer switch,
    the earlier snapshot reads back; killed after it, the new one; the dead run's lock blocks the next run
    for at most [general] lock_lease. Before: 1 of 26 kills left no _SUCCESS, and the lock held for 6 h."""
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    from rightsize.s3 import objects
    from rightsize.snapshot import Snapshot

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with socket.socket() as probe:  # a free port: moto 5.0 has no get_host_and_port() to ask for port 0's
        probe.bind(("127.0.0.1", 0))
        host, port = probe.getsockname()
    server = ThreadedMotoServer(ip_address=host, port=port)
    server.start()
    try:
        env = {**aws_env(tmp_path, f"http://{host}:{port}")}
        boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1", aws_access_key_id="testing",
                     aws_secret_access_key="testing").create_bucket(Bucket="acme")
        cfg = tmp_path / "lease.toml"
        cfg.write_text('[general]\nlock_lease = "3s"\nlock_wait = "15s"\n')  # a lock held past the lease would fail it
        target = "s3://acme/w/snapshot"

        def read(target):
            for name, value in env.items():  # undone after the test: a leaked endpoint breaks later S3 tests
                monkeypatch.setenv(name, value)
            objects._CLIENTS.clear()
            return Snapshot.read(target)

        child = ROOT / "tests" / "s3_writer.py"
        assert child.is_file()
        first = subprocess.run([sys.executable, str(child), str(demo / "snapshot"), target, str(cfg)], env=env, cwd=ROOT,
                               capture_output=True, text=True, timeout=300)
        assert first.returncode == 0, first.stderr
        earlier = read(target).meta["created_at"]
        for function, expect in (("_switch", "earlier"), ("_settle", "new")):
            code = S3_KILL_CHILD.format(function=function, argv=[])
            proc = subprocess.run([sys.executable, "-c", code.replace("from rightsize.cli import main\nsys.exit(main([]))",
                                   f"sys.argv = ['x', {str(demo / 'snapshot')!r}, {target!r}, {str(cfg)!r}]\n"
                                   f"exec(open({str(child)!r}).read())")], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
            assert proc.returncode == -signal.SIGKILL, proc.stderr
            now = read(target).meta["created_at"]
            assert (now == earlier) if expect == "earlier" else (now != earlier), (function, now, earlier)
            earlier = now
            # the dead run's lock is still there; the next run takes it over within the lease (3 s, well within lock_wait 15 s: a loaded runner starts Python slowly)
            assert [k for k in _s3_keys(env, "w/.snapshot.lock/")], "the killed run left no lock to test with"
            nxt = subprocess.run([sys.executable, str(child), str(demo / "snapshot"), target, str(cfg)], env=env, cwd=ROOT,
                                 capture_output=True, text=True, timeout=300)
            assert nxt.returncode == 0, nxt.stderr
            assert not _s3_keys(env, "w/.snapshot.lock/")
            earlier = read(target).meta["created_at"]
    finally:
        server.stop()


def test_the_lock_file_is_removed_on_exit_and_a_waiter_holds_the_next_one(tmp_path):
    """A lock file is gone once its holder is done (also after an error), and a run that was waiting on the
    removed file takes the lock on the new one: two waiters never both hold it."""
    import threading

    from rightsize.errors import LockedError
    from rightsize.folders import lock_path, output_lock

    folder = tmp_path / "week"
    with output_lock(folder, wait_seconds=0):
        assert lock_path(folder).exists()
    assert not lock_path(folder).exists()
    with pytest.raises(RuntimeError), output_lock(folder, wait_seconds=0):
        raise RuntimeError("a failed run")
    assert not lock_path(folder).exists()

    holding, release, done = threading.Event(), threading.Event(), threading.Event()

    def waiter():
        with output_lock(folder, wait_seconds=30):
            holding.set()
            release.wait(30)
        done.set()

    with output_lock(folder, wait_seconds=0):
        thread = threading.Thread(target=waiter)
        thread.start()
        time.sleep(0.5)  # the waiter has opened the file this holder is about to remove
        assert not holding.is_set()
    assert holding.wait(30)
    with pytest.raises(LockedError):
        with output_lock(folder, wait_seconds=0):
            pass
    release.set()
    assert done.wait(30)
    thread.join()
    assert not lock_path(folder).exists()


def test_a_lock_in_a_state_folder_leaves_nothing_beside_the_folder(tmp_path):
    from rightsize.folders import output_lock

    overlay = tmp_path / "repo" / "overlays" / "prod"
    overlay.mkdir(parents=True)
    state = tmp_path / "state" / "overlay.lock"
    with output_lock(overlay, wait_seconds=0, lock_file=state):
        assert state.exists() and sorted(p.name for p in overlay.parent.iterdir()) == ["prod"]
    assert not state.exists()


def test_duplicate_snapshot_rows_are_an_error_naming_the_table(demo, tmp_path):
    """Before: a traceback (pandas' InvalidIndexError). The table is rewritten with one row twice and its
    checksum and digest updated, as a tool editing the snapshot would: only the duplicate is wrong."""
    from rightsize.atomic import file_sha256
    from rightsize.snapshot import meta_digest

    snap = _copy(demo, tmp_path)
    table = snap / "containers.parquet"
    df = pd.read_parquet(table)
    pd.concat([df, df.iloc[:1]], ignore_index=True).to_parquet(table, index=False)
    meta = json.loads((snap / "meta.json").read_text())
    meta["checksums"]["containers.parquet"] = file_sha256(table)
    meta["digest"]["sha256"] = meta_digest(meta)
    (snap / "meta.json").write_text(json.dumps(meta))
    proc = rightsize("report", "--snapshot", snap, "--out", tmp_path / "r")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "table 'containers' lists 2 rows of the same container" in proc.stderr and "count twice" in proc.stderr


def test_yaml_nested_100000_levels_is_an_error_naming_the_file(recording_server, tmp_path):
    deep = tmp_path / "deep.yaml"
    deep.write_text("a:\n  - " + "[" * 100_000 + "]" * 100_000 + "\n")
    cfg = _collect_config(tmp_path, recording_server[0])
    proc = rightsize("collect", "--config", cfg, "--manifests", deep, "--out", tmp_path / "s")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"{deep}: document 1: nested too deeply" in proc.stderr
    assert recording_server[1] == []  # before any query
