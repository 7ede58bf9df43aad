"""Pods that batch frameworks start, grouped into one workload per template or task.

Argo Workflows, Airflow's KubernetesPodOperator, Spark and Tekton start pods bare or under a custom
resource of one run (a Workflow, a TaskRun, the Spark driver pod), so each run would be a workload of
its own with too little history for a recommendation. Their pods carry labels that name what they run
([batch_groups] says which); a pod with every label of a framework becomes part of one workload of that
framework's kind, named by the labels' values joined by '.', and is costed at the pods it ran, as a
CronJob is. Such workloads get recommendations but no patch: their requests live in the DAG, workflow or
task definition.

- Argo Workflows labels its pods ``workflows.argoproj.io/workflow`` with the run's name: the run suffix a
  CronWorkflow (``-<unix time>``) or generateName (``-`` and 5 characters) adds is removed, and the template
  comes from the pod's name (``<workflow>-<template>-<node id>``, Argo's pod names v2);
- Airflow's KubernetesPodOperator labels ``dag_id`` and ``task_id``; Spark (3.4+) ``spark-app-name`` and
  ``spark-role`` (driver, executor); Tekton ``tekton.dev/task``.

One function serves every inventory: the API and manifests (pod labels) and kube-state-metrics
(``kube_pod_labels``, whose label names are the keys sanitized: :func:`ksm_label`).
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

# [batch_groups] key -> the workload kind of its groups
KINDS = {"argo_workflows": "ArgoWorkflow", "airflow": "AirflowTask", "spark": "SparkApplication", "tekton": "TektonTask"}
BATCH_GROUP_KINDS = tuple(KINDS.values())
_RUN_SUFFIX = r"-(?:\d{6,}|[a-z0-9]{5})$"


def ksm_label(key: str) -> str:
    """The label kube-state-metrics exports a Kubernetes label as (``dag_id`` -> ``label_dag_id``,
    ``tekton.dev/task`` -> ``label_tekton_dev_task``)."""
    return "label_" + re.sub(r"[^a-zA-Z0-9_]", "_", key)


def label_keys(config) -> list[str]:
    """Every pod label [batch_groups] reads, in a stable order."""
    keys: list[str] = []
    for field in KINDS:
        keys += [k for k in getattr(config.batch_groups, field) if k not in keys]
    return keys


def assign(pods: pd.DataFrame, config) -> pd.DataFrame:
    """kind and workload of each pod of ``pods`` (a ``pod`` column and one column per label key of
    :func:`label_keys`, '' where a pod lacks the label); '' for pods no framework claims. The first
    framework (in [batch_groups] order) whose labels a pod all has wins."""
    kind = pd.Series("", index=pods.index, dtype=object)
    name = pd.Series("", index=pods.index, dtype=object)
    for field, group_kind in KINDS.items():
        keys = list(getattr(config.batch_groups, field))
        if not keys or not all(k in pods for k in keys):
            continue
        values = pods[keys].fillna("").astype(str)
        mine = (kind == "") & (values != "").all(axis=1)
        if not mine.any():
            continue
        if field == "argo_workflows":
            values = values.assign(**{keys[0]: _argo_template(values[keys[0]], pods["pod"].astype(str))})
        joined = values[mine].agg(".".join, axis=1)
        kind[mine], name[mine] = group_kind, joined
    return pd.DataFrame({"kind": kind, "workload": name}, index=pods.index)


def _argo_template(workflow: pd.Series, pod: pd.Series) -> pd.Series:
    """'<workflow without its run suffix>.<template>' from the workflow label and the pod's name."""
    base = workflow.str.replace(_RUN_SUFFIX, "", regex=True)
    own = np.array([p.startswith(w + "-") for p, w in zip(pod, workflow)], dtype=bool)
    rest = pd.Series([p[len(w) + 1:] for p, w in zip(pod, workflow)], index=pod.index, dtype=object)
    template = rest.str.replace(r"-?\d+$", "", regex=True).where(own, "")
    return base.where(template == "", base + "." + template)
