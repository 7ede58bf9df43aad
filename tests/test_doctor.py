"""`rightsize doctor` against a real Prometheus: coverage, retention, nodes and every metric family.

The server holds 25 hours of tests/promdata.py's cluster without HPA, PDB and Istio series and without
kube_pod_start_time; the config asks for a 2-day window. A second server lacks kube_pod_owner (a core family).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from promdata import Dataset
from promservers import DATA_HOURS, dataset_end, make_config, start_prometheus, start_victoria

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[1]


def doctor(url: str, end: int, tmp_path: Path, source: str = "prometheus") -> subprocess.CompletedProcess:
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[general]\nwindow = "2d"\n[prometheus]\nurl = "{url}"\nend = "{make_config(url, end).prometheus.end}"\n'
                   f'[kubernetes]\nsource = "{source}"\n')
    return subprocess.run([sys.executable, "-m", "rightsize.cli", "doctor", "--config", str(cfg)], cwd=ROOT,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300)


def test_doctor_names_coverage_retention_and_each_missing_family(tmp_path):
    end = dataset_end()
    server = start_prometheus(Dataset(end, DATA_HOURS, drop=("kube_pod_start_time",), workload_extras=False), tmp_path / "p")
    try:
        proc = doctor(server.url, end, tmp_path)
        api = doctor(server.url, end, tmp_path, source="api")
    finally:
        server.stop()
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("cluster default: prometheus 2.") and f" at {server.url}\n" in out
    assert "coverage: data from" in out and ": 1.0 of the 2 days (the server keeps less than the window" in out
    assert "retention: 10y" in out  # the test server's --storage.tsdb.retention.time
    assert "nodes: 2; with an instance type 2, a zone 2, a node group or Karpenter NodePool 0" in out
    lines = {line.split()[1].rstrip(":"): line for line in out.splitlines() if line.startswith("    ")}
    assert lines["container_cpu_usage_seconds_total"].split()[0] == "ok"
    for metric, what in (("kube_horizontalpodautoscaler_info", "HPA"), ("kube_poddisruptionbudget_status_expected_pods", "PDB"),
                         ("istio_tcp_received_bytes_total", "cross-AZ"), ("kube_pod_start_time", "lifetimes")):
        assert lines[metric].startswith(f"    MISSING  {metric}") and what in lines[metric] and "hint:" in lines[metric], metric
    # with specs from the API, the HPA and PDB series are not needed; the rest still is
    api_lines = {line.split()[1].rstrip(":"): line for line in api.stdout.splitlines() if line.startswith("    ")}
    assert api.returncode == 0, api.stderr
    assert "not needed (specs from api)" in api_lines["kube_horizontalpodautoscaler_info"]
    assert api_lines["istio_tcp_received_bytes_total"].split()[0] == "MISSING"


def test_doctor_fails_when_a_collection_could_not_run(tmp_path):
    end = dataset_end()
    server = start_prometheus(Dataset(end, 2, drop=("kube_pod_owner",)), tmp_path / "p")
    try:
        proc = doctor(server.url, end, tmp_path)
    finally:
        server.stop()
    assert proc.returncode == 1
    assert "MISSING  kube_pod_owner (kube-state-metrics): disables owner resolution" in proc.stdout
    from promservers import free_port

    closed = doctor(f"http://127.0.0.1:{free_port()}", end, tmp_path)
    assert closed.returncode == 1 and "cannot connect" in closed.stderr and closed.stdout == ""


def test_doctor_on_victoriametrics(tmp_path):
    """The same checks on a real VictoriaMetrics: its coverage measured the same way, its retention unknown
    (it does not say) rather than guessed, and the missing families named."""
    end = dataset_end()
    server = start_victoria(Dataset(end, DATA_HOURS, drop=("kube_pod_start_time",), workload_extras=False), tmp_path / "vm")
    try:
        proc = doctor(server.url, end, tmp_path)
    finally:
        server.stop()
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith(f"cluster default: victoriametrics at {server.url}\n")
    assert ": 1.0 of the 2 days (the server keeps less than the window" in out and "retention: unknown" in out
    lines = {line.split()[1].rstrip(":"): line for line in out.splitlines() if line.startswith("    ")}
    assert lines["kube_pod_owner"].split()[0] == "ok"
    assert lines["kube_pod_start_time"].startswith("    MISSING  kube_pod_start_time") and "lifetimes" in lines["kube_pod_start_time"]
