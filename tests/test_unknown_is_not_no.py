"""Nothing unmeasured is stated as a fact: missing metric families and forbidden API lists leave their
facts unknown, named in the caveats with what they disable, and the rows they affect say "unknown".

- a real Prometheus without HPA, PDB and Istio series (tests/promdata.py, workload_extras off), read with
  the kube-state-metrics inventory;
- the Kubernetes API through the real client against tests/test_kubernetes_api.py's stand-in server
  (there is no API server here), which refuses PodDisruptionBudgets (403) and does not serve HPAs (404).
"""
from __future__ import annotations

import dataclasses

import pytest

from promdata import Dataset
from promservers import DATA_HOURS, WINDOW_HOURS, dataset_end, make_config, start_prometheus
from rightsize.api import analyze
from rightsize.analysis.spot import spot_suitability
from rightsize.collect import collect
from rightsize.emit.view import caveats
from rightsize.snapshot import Snapshot
from rightsize.sources.kubernetes import collect_inventory
from rightsize.targets import ClusterTarget
from test_kubernetes_api import ITEMS, StandInApiServer, _config, _kubeconfig

FAMILIES = {"kube_horizontalpodautoscaler_info": "HPA", "kube_poddisruptionbudget_status_expected_pods": "PDB",
            "istio_tcp_received_bytes_total": "cross-AZ", "istio_request_bytes_sum": "cross-AZ"}


@pytest.mark.integration
def test_no_hpa_pdb_or_istio_series_is_unknown_not_no(tmp_path):
    end = dataset_end()
    server = start_prometheus(Dataset(end, DATA_HOURS, workload_extras=False), tmp_path)
    try:
        cfg = make_config(server.url, end, WINDOW_HOURS)
        cfg = dataclasses.replace(cfg, pricing=dataclasses.replace(cfg.pricing, source="offline"),
                                  kubernetes=dataclasses.replace(cfg.kubernetes, source="prometheus"))
        snapshot = collect(cfg, log=lambda m: None)
    finally:
        server.stop()
    analysis = analyze(snapshot, cfg)
    lines = caveats(analysis.summary)
    for metric, what in FAMILIES.items():
        named = [line for line in lines if metric in line]
        assert named and what in named[-1] and "hint:" in named[-1], metric
    assert analysis.summary["totals"]["cross_az_usd_per_month"] is None  # unknown, never 0
    # web runs 2 replicas: its spot row says the PDB is unknown, no row states "no PDB" as a fact
    spot = analysis.spot.set_index("workload")
    assert "PDB unknown" in spot.loc["web", "reasons"]
    assert not analysis.spot["reasons"].str.contains("no PDB").any()
    recs = analysis.recommendations
    deployments = recs[recs["kind"].isin(["Deployment", "StatefulSet"]) & (recs["status"] != "ignored")]
    assert deployments["reason"].str.contains("HPA unknown").all() and not recs["flags"].str.contains("hpa").any()


def test_forbidden_api_lists_are_unknown_not_no(tmp_path):
    items = {path: rows for path, rows in ITEMS.items() if "horizontalpodautoscalers" not in path}  # HPAs: 404
    with StandInApiServer(items=items) as server:  # PDBs: 403
        config = _config(_kubeconfig(tmp_path, server.url))
        snap = Snapshot()
        collect_inventory(config, ClusterTarget(name="prod", prometheus_url="", context="test-ctx"), snap)
    wl = snap.tables["workloads"]
    assert wl["pdb_unknown"].all() and wl["hpa_unknown"].all() and not wl["pdb"].any()
    codes = {w["code"]: w for w in snap.meta["warnings"]}
    assert "PDB" in codes["kubernetes_forbidden"]["affects"] and "HPA" in codes["kubernetes_not_found"]["affects"]
    spot = spot_suitability(snap, snap.tables["containers"].iloc[0:0].assign(usd_per_month_current=[]), config)
    web = spot[spot["workload"] == "web-0"].iloc[0]
    assert "PDB unknown" in web["reasons"] and "no PDB" not in web["reasons"] and web["changes_needed"] == ""
