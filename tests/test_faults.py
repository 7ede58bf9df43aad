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

Covered elsewhere (other owners): truncated range answers, missing cAdvisor / kube-state-metrics series,
`--series` matching nothing, 503 / timeouts / non-JSON answers (the usage collection's tests), and
cross_az_usd_per_month null without Istio data (the summary's tests).
"""
import http.server
import json
import math
import os
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


# --- 1. security: nothing is written outside --out ------------------------------------------------

@pytest.mark.integration
def test_workload_label_with_dotdot_writes_nothing_outside_out(tmp_path):
    """kube-state-metrics names a Deployment '../../escape': a real Prometheus serves it, `rightsize run`
    takes the inventory from the metrics; that workload gets no patch (with a warning), the others do."""
    pods = [PodSpec("shop", "evil-1-a", "Deployment", "../../escape", "ReplicaSet", "evil-1", "Deployment", "../../escape",
                    containers=[ContainerSpec("app", 0.2, 0.05, 200 * MIB, 20 * MIB, 2.0, math.nan, GIB, GIB)]),
            PodSpec("shop", "web-1-a", "Deployment", "web", "ReplicaSet", "web-1", "Deployment", "web",
                    containers=[ContainerSpec("app", 0.2, 0.05, 200 * MIB, 20 * MIB, 2.0, math.nan, GIB, GIB)])]
    dataset = Dataset(dataset_end(), DATA_HOURS, pods=pods)
    server = start_prometheus(dataset, tmp_path / "prom")
    try:
        cfg = tmp_path / "config.toml"
        cfg.write_text(f'[general]\ncluster_name = "prod"\nwindow = "24h"\n[prometheus]\nurl = "{server.url}"\n'
                       f'end = "{make_config(server.url, dataset.end).prometheus.end}"\n[kubernetes]\nsource = "prometheus"\n'
                       '[pricing]\nsource = "offline"\n[policies.production]\nmin_history = "12h"\n')
        out = tmp_path / "a" / "b" / "week"
        proc = rightsize("run", "--config", cfg, "--out", out)
    finally:
        server.stop()
    assert proc.returncode == 0, proc.stderr
    assert not list(tmp_path.rglob("*escape*")), "a file was written from the '../' name"
    assert "workload '../../escape' is not a valid Kubernetes name" in proc.stderr and "no patch written" in proc.stderr
    caveats = json.loads((out / "summary.json").read_text())["warnings"]
    assert any(w["code"] == "invalid_names" and "shop/Deployment/../../escape" in w["message"] for w in caveats)
    assert (out / "patches" / "prod" / "shop" / "deployment-web.yaml").is_file()
    assert "../../escape" in (out / "patches" / "PATCHES.md").read_text()  # listed as skipped, with the reason


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
        text = lock.read_text() if lock.exists() else ""
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


# --- 5. config that passed --check and failed later ------------------------------------------------

BAD_CONFIGS = {
    "step_0s": ('[general]\nstep = "0s"\n', "general.step: must be greater than 0, got '0s'"),
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
