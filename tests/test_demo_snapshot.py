"""The demo generator covers every situation the issue asks for, deterministically."""
import json

import pandas as pd

from rightsize.demo import generate


def test_demo_is_deterministic():
    a, b = generate(), generate()
    for name in a.tables:
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name])


def test_demo_covers_the_required_situations():
    s = generate()
    w, c, u, n = s.workloads, s.containers, s.usage, s.nodes
    assert len(w) >= 25
    assert {"Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job"} <= set(w.kind)
    assert w[(w.kind == "StatefulSet")].has_pvc.all()
    labels = {r.namespace: json.loads(r.labels_json) for r in s.namespaces.itertuples()}
    envs = {v["environment"] for v in labels.values()}
    assert "production" in envs and {"staging", "ci"} & envs and len(labels) >= 3
    assert n.instance_type.nunique() >= 3 and (n.capacity_type == "spot").any() and n.zone.nunique() == 3
    # replicas spread over three zones
    spread = s.placement.groupby(["namespace", "workload"]).zone.nunique()
    assert (spread == 3).sum() >= 5
    merged = c.merge(u, on=["cluster", "namespace", "kind", "workload", "container"])
    assert ((merged.cpu_request_cores > 4 * merged.cpu_pooled_p95_cores)).any(), "over-provisioned"
    assert ((merged.cpu_request_cores < merged.cpu_pooled_p95_cores)).any(), "under-provisioned"
    assert (u.oom_kills > 0).any() and (u.cpu_throttled_ratio > 0.25).any()
    assert w.hpa.any()
    # traffic across zones between workloads that exist
    names = set(zip(w.namespace, w.workload))
    assert all((r.source_namespace, r.source_workload) in names and (r.destination_namespace, r.destination_workload) in names
               for r in s.traffic.itertuples())
    # percentiles are ordered as an aggregation would give them
    assert (u.cpu_pooled_p50_cores <= u.cpu_pooled_p95_cores).all() and (u.cpu_pooled_p95_cores <= u.cpu_max_cores * (1 + 0.0099)).all()
    assert (u.memory_pooled_p90_bytes <= u.memory_max_bytes * (1 + 0.0099)).all()
