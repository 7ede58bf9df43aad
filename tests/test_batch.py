"""Batch costed right, on a real Prometheus: short CronJob pods and the pods batch frameworks start.

The store holds two clusters of the same CronJobs (tests/promdata.py cronjob_cluster: 5-, 10- and
20-minute pods every 30, 45 and 60 minutes, off the 5-minute grid, scraped every 60 s): "with" has
kube-state-metrics' kube_pod_start_time / kube_pod_completion_time, "without" has neither. "with" also
runs Argo Workflows, Airflow, Spark and Tekton pods (promdata.framework_pods) with the labels and owners
those frameworks set. The truth of each pod's life is the generator's; average pods = pod-hours / window.
"""
from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from promdata import Clusters, Dataset, cronjob_cluster, framework_pods
from promservers import dataset_end, make_config, start_prometheus
from rightsize.api import analyze
from rightsize.collect import collect

pytestmark = pytest.mark.integration
WINDOW_HOURS = 24
DROPPED = ("kube_pod_start_time", "kube_pod_completion_time")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    end = dataset_end()
    hours = WINDOW_HOURS + 1
    with_times = Dataset(end, hours, cronjob_cluster(hours) + framework_pods(hours), cluster_label="cluster", cluster="with")
    without = Dataset(end, hours, cronjob_cluster(hours), cluster_label="cluster", cluster="without", drop=DROPPED)
    server = start_prometheus(Clusters(with_times, without), tmp_path_factory.mktemp("prometheus-batch"))
    yield end, server, {"with": with_times, "without": without}
    server.stop()


def run(server, end: int, step: float):
    cfg = make_config(server.url, end, WINDOW_HOURS, cluster_label="cluster", clusters=("with", "without"))
    policies = {name: dataclasses.replace(p, min_history=3600.0, min_samples=5) for name, p in cfg.policies.items()}
    cfg = dataclasses.replace(cfg, general=dataclasses.replace(cfg.general, step=step), policies=policies,
                              pricing=dataclasses.replace(cfg.pricing, source="offline"),
                              kubernetes=dataclasses.replace(cfg.kubernetes, source="prometheus"))
    snapshot = collect(cfg, log=lambda m: None)
    return snapshot, analyze(snapshot, cfg)


@pytest.fixture(scope="module", params=[60.0, 300.0], ids=["step-60s", "step-5m"])
def collected(request, store):
    end, server, data = store
    return request.param, data, *run(server, end, request.param)


def true_average_pods(data: Dataset, end: int) -> dict[str, float]:
    """Per workload: the seconds of each pod's life inside the window (end - 24 h, end], over 24 h."""
    w0 = end - WINDOW_HOURS * 3600
    out: dict[str, float] = {}
    for p in data.pods:
        s, e = data._life(p)
        start, stop = data.ts[s] - data.interval, data.ts[e - 1]
        out[p.workload] = out.get(p.workload, 0.0) + max(min(stop, end) - max(start, w0), 0) / (WINDOW_HOURS * 3600)
    return out


@pytest.mark.parametrize("cluster", ["with", "without"])
def test_short_cronjob_pods_are_costed_at_the_pods_they_ran(collected, cluster):
    step, data, snapshot, analysis = collected
    truth = true_average_pods(data[cluster], data[cluster].end)
    recs = analysis.recommendations
    got = recs[(recs["cluster"] == cluster) & (recs["kind"] == "CronJob")].groupby("workload")["average_pods"].first()
    assert sorted(got.index) == ["every-10m", "every-20m", "every-5m"]
    for workload, average in got.items():
        assert average == pytest.approx(truth[workload], rel=0.05), (workload, step)
    timed = snapshot.meta["sources"][f"prometheus:{cluster}"]["lifetimes"]
    assert timed["scrape_interval_seconds"] == pytest.approx(60, rel=0.01)
    if cluster == "with":
        assert timed["pods_timed_by_completion"] == len([p for p in data[cluster].pods if p.completes and p.end > 60])
    else:
        assert "pods_timed_by_completion" not in timed and timed["pods_timed_by_samples"] > 100


def test_missing_start_and_completion_times_are_named(collected):
    _step, _data, snapshot, _analysis = collected
    assert set(DROPPED) <= set(snapshot.meta["missing_metrics"])  # "without" lacks them; the caveat names them
    text = " ".join(w["message"] for w in snapshot.meta["warnings"] if w["code"] == "missing_metric")
    assert "kube_pod_completion_time" in text and "raw samples" in text


def test_pods_of_batch_frameworks_are_grouped_by_template_or_task(collected):
    step, data, _snapshot, analysis = collected
    recs = analysis.recommendations
    mine = recs[(recs["cluster"] == "with") & (recs["namespace"] == "pipelines")]
    groups = set(zip(mine["kind"], mine["workload"], mine["container"]))
    assert groups == {("ArgoWorkflow", "etl.extract", "main"), ("ArgoWorkflow", "etl.extract", "wait"),
                      ("ArgoWorkflow", "etl.load", "main"), ("ArgoWorkflow", "etl.load", "wait"),
                      ("AirflowTask", "daily_sales.load", "base"),
                      ("SparkApplication", "pi.driver", "spark-kubernetes-driver"),
                      ("SparkApplication", "pi.executor", "spark-kubernetes-executor"), ("TektonTask", "build", "step-build")}
    truth = true_average_pods(data["with"], data["with"].end)
    average = mine.groupby("workload")["average_pods"].first()
    for workload in ("etl.extract", "daily_sales.load", "pi.driver", "pi.executor", "build"):
        assert average[workload] == pytest.approx(truth[workload], rel=0.05), (workload, step)
    # costed like CronJobs (at the pods they ran), with a recommendation per group, and never patched
    assert mine["flags"].str.contains("replicas_estimated").all()
    assert (mine["status"] != "no_recommendation").all()
    assert pd.notna(mine["usd_per_month_current"]).all()


def test_the_api_inventory_groups_the_same_pods():
    """The same frameworks' pods as the Kubernetes API lists them (finished ones too: when no run is alive,
    they still define the group): the groups the kube-state-metrics inventory finds."""
    from rightsize.config import Config
    from rightsize.sources.k8s_objects import Options, build_tables

    def pod(name, labels, owner=None, phase="Succeeded", container="main"):
        refs = [{"kind": owner[0], "name": owner[1], "controller": True}] if owner else []
        return {"kind": "Pod", "metadata": {"name": name, "namespace": "pipelines", "labels": labels, "ownerReferences": refs},
                "spec": {"containers": [{"name": container, "resources": {"requests": {"cpu": "250m"}}}]},
                "status": {"phase": phase}}

    wf = "etl-1761156000"
    pods = [pod(f"{wf}-extract-3155092536", {"workflows.argoproj.io/workflow": wf}, ("Workflow", wf)),
            pod("etl-x7k2p-load-12", {"workflows.argoproj.io/workflow": "etl-x7k2p"}, ("Workflow", "etl-x7k2p"), phase="Running"),
            pod("daily-sales-load-0001ab", {"dag_id": "daily_sales", "task_id": "load"}, container="base"),
            pod("pi-0001-exec-1", {"spark-app-name": "pi", "spark-role": "executor"}, ("Pod", "pi-0001-driver"),
                container="spark-kubernetes-executor"),
            pod("build-run-0001-pod", {"tekton.dev/task": "build"}, ("TaskRun", "build-run-0001"), container="step-build"),
            pod("finished-bare", {}, None)]  # a finished bare pod with no framework label: no workload, as before
    wl = build_tables(pods, Options("c", "api", Config()))["workloads"]
    assert sorted(zip(wl["kind"], wl["workload"])) == [
        ("AirflowTask", "daily_sales.load"), ("ArgoWorkflow", "etl.extract"), ("ArgoWorkflow", "etl.load"),
        ("SparkApplication", "pi.executor"), ("TektonTask", "build")]
