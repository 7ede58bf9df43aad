"""GPU resource names (gpu_resources.py) and the kube-state-metrics GPU inventory (sources/ksm.py)."""
from __future__ import annotations

import json
import math
import re

import pandas as pd
import pytest

from rightsize import gpu_resources as gr
from rightsize.sources import ksm


@pytest.mark.parametrize("label, name", [
    ("nvidia_com_gpu", "nvidia.com/gpu"), ("amd_com_gpu", "amd.com/gpu"),
    ("nvidia_com_mig_1g_5gb", "nvidia.com/mig-1g.5gb"), ("nvidia_com_mig_7g_141gb", "nvidia.com/mig-7g.141gb"),
    ("cpu", ""), ("memory", ""), ("nvidia_com_gpu_shared", ""), ("hugepages_2Mi", ""),
])
def test_kube_state_metrics_names_read_back(label, name):
    """kube-state-metrics replaces every character outside [a-zA-Z0-9_] of a resource name with '_'."""
    assert gr.from_ksm(label) == name
    if name:
        assert gr.is_gpu_resource(name)
        assert re.fullmatch(gr.KSM_PATTERN, label)


def test_mig_names_and_preference():
    assert gr.mig_profile("nvidia.com/mig-3g.20gb") == "3g.20gb" and gr.mig_profile("nvidia.com/gpu") == ""
    assert gr.mig_resource("1g.10gb") == "nvidia.com/mig-1g.10gb"
    assert gr.gpu_names({"cpu": "1", "nvidia.com/mig-1g.5gb": 1}, {"nvidia.com/gpu": 1, "example.com/fpga": 1}) == [
        "nvidia.com/gpu", "nvidia.com/mig-1g.5gb"]
    assert gr.count("2") == 2.0 and math.isnan(gr.count(None))
    with pytest.raises(ValueError, match="whole number"):
        gr.count("0.5")


def test_inventory_containers_from_kube_state_metrics_gpu_rows():
    usage = pd.DataFrame({"namespace": "ml", "kind": "Deployment", "workload": ["a", "b", "c"], "container": "app"})
    rows = pd.DataFrame([
        ("a", "request", "cpu", 1.0), ("a", "request", "nvidia_com_gpu", 2.0), ("a", "limit", "nvidia_com_gpu", 2.0),
        ("b", "limit", "nvidia_com_mig_1g_5gb", 1.0),  # only a limit (a request equals it)
        ("c", "request", "memory", 2.0 ** 30),
    ], columns=["workload", "stat", "resource", "value"]).assign(namespace="ml", kind="Deployment", container="app")
    out = ksm.inventory_containers(rows, usage, "c1").set_index("workload")
    assert (out.loc["a", "gpu_resource"], out.loc["a", "gpu_request_count"], out.loc["a", "gpu_limit_count"]) == (
        "nvidia.com/gpu", 2.0, 2.0)
    assert (out.loc["b", "gpu_resource"], out.loc["b", "gpu_request_count"]) == ("nvidia.com/mig-1g.5gb", 1.0)
    assert out.loc["c", "gpu_resource"] == "" and math.isnan(out.loc["c", "gpu_request_count"])
    assert out.loc["a", "cpu_request_cores"] == 1.0


def test_node_gpus_from_kube_state_metrics():
    alloc = pd.DataFrame({"node": ["g1", "g1", "g1", "g1", "c1"],
                          "resource": ["cpu", "nvidia_com_gpu", "nvidia_com_mig_1g_5gb", "nvidia_com_mig_3g_20gb", "cpu"],
                          "value": [95.0, 4.0, 14.0, 4.0, 2.0]})
    cap = pd.DataFrame({"node": ["g1", "g1"], "resource": ["nvidia_com_gpu", "nvidia_com_mig_1g_5gb"], "value": [4.0, 14.0]})
    out = ksm.node_gpus(alloc, cap, pd.Series(["g1", "c1"]), "node")
    assert list(out["allocatable_gpus"]) == [4.0, 0.0] and list(out["capacity_gpus"]) == [4.0, 0.0]
    assert json.loads(out["gpu_resources_json"][0]) == {"nvidia.com/gpu": 4.0, "nvidia.com/mig-1g.5gb": 14.0,
                                                        "nvidia.com/mig-3g.20gb": 4.0}
    # without the metric the count is unknown, never 0
    out = ksm.node_gpus(alloc.iloc[0:0], cap.iloc[0:0], pd.Series(["g1"]), "node", known=False, capacity_known=False)
    assert math.isnan(out["allocatable_gpus"][0]) and out["gpu_resources_json"] == [""]
