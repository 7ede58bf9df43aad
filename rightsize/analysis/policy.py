"""Which recommendation policy applies to each container, and that policy's settings per row.

Precedence, first that applies wins:
1. a ``[[overrides]]`` entry naming the workload (config),
2. the workload's policy annotation (``policy_override`` column, from [kubernetes] policy_annotation),
3. ``[[policy_rules]]`` in order (namespace globs and/or namespace labels from the namespaces table),
4. the [recommend] non-production shortcuts (namespace globs, namespace labels),
5. [recommend] default_policy.

Namespaces and config entries are few, so the loops here run over them, never over containers;
rows get their policy through vectorised masks and merges.
"""
from __future__ import annotations

import dataclasses
import json
from fnmatch import fnmatchcase

import numpy as np
import pandas as pd

from ..config import Config, Policy
from ..refs import WorkloadRef
from ..settings import fields_of

NON_PRODUCTION = "non_production"


def namespace_labels(namespaces: pd.DataFrame) -> dict[tuple[str, str], dict[str, str]]:
    """(cluster, namespace) -> labels, from the namespaces table's labels_json ('' or bad JSON = no labels)."""
    out: dict[tuple[str, str], dict[str, str]] = {}
    if namespaces is None or namespaces.empty:
        return out
    for cluster, ns, raw in namespaces[["cluster", "namespace", "labels_json"]].itertuples(index=False):
        try:
            labels = json.loads(raw) if raw else {}
        except (TypeError, ValueError):
            labels = {}
        out[(cluster, ns)] = {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}
    return out


def _labels_match(wanted: dict, labels: dict) -> bool:
    return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())


def _globs_match(globs, name: str) -> bool:
    return any(fnmatchcase(name, g) for g in globs)


def namespace_policy(cluster: str, namespace: str, labels: dict, config: Config) -> tuple[str, str]:
    """(policy, why) for one namespace from policy_rules, the non-production shortcuts, or the default."""
    for i, rule in enumerate(config.policy_rules):
        # A rule matches when every criterion it names matches; a rule naming nothing matches nothing.
        if not rule.namespaces and not rule.namespace_labels:
            continue
        if rule.namespaces and not _globs_match(rule.namespaces, namespace):
            continue
        if rule.namespace_labels and not _labels_match(rule.namespace_labels, labels):
            continue
        return rule.policy, f"policy_rules[{i}] matches namespace {namespace!r}"
    rc = config.recommend
    for g in rc.non_production_namespaces:
        if fnmatchcase(namespace, g):
            return NON_PRODUCTION, f"namespace {namespace!r} matches non-production pattern {g!r}"
    if _labels_match(rc.non_production_labels, labels):
        shown = ", ".join(f"{k}={v}" for k, v in rc.non_production_labels.items())
        return NON_PRODUCTION, f"namespace {namespace!r} has non-production labels {shown}"
    return rc.default_policy, "default policy"


def assign_policies(frame: pd.DataFrame, namespaces: pd.DataFrame, config: Config) -> pd.DataFrame:
    """Policy per row of ``frame`` (needs the WORKLOAD_KEY columns and ``policy_override``).

    Returns a DataFrame aligned with ``frame`` with columns:
      policy (str), policy_source (str: why this policy), ignored_by_config (bool),
      policy_note (str: e.g. an unknown policy annotation that was ignored; '' otherwise).
    """
    n = len(frame)
    labels = namespace_labels(namespaces)
    pairs = frame[["cluster", "namespace"]].drop_duplicates()
    ns_rows = []
    for cluster, ns in pairs.itertuples(index=False):
        pol, why = namespace_policy(cluster, ns, labels.get((cluster, ns), {}), config)
        ns_rows.append((cluster, ns, pol, why))
    ns_table = pd.DataFrame(ns_rows, columns=["cluster", "namespace", "policy", "policy_source"])
    base = frame[["cluster", "namespace"]].merge(ns_table, on=["cluster", "namespace"], how="left")
    policy = base["policy"].fillna(config.recommend.default_policy).to_numpy(dtype=object).copy()
    source = base["policy_source"].fillna("default policy").to_numpy(dtype=object).copy()
    note = np.full(n, "", dtype=object)

    annotated = frame["policy_override"].fillna("").astype(str).to_numpy(dtype=object) if n else np.array([], dtype=object)
    has_ann = annotated != ""
    known = np.isin(annotated, list(config.policies))
    use_ann = has_ann & known
    policy[use_ann] = annotated[use_ann]
    source[use_ann] = "workload annotation " + config.kubernetes.policy_annotation
    bad_ann = has_ann & ~known
    if bad_ann.any():
        note[bad_ann] = np.array(
            [f"unknown policy {a!r} in annotation {config.kubernetes.policy_annotation} ignored" for a in annotated[bad_ann]],
            dtype=object,
        )

    ignored = np.zeros(n, dtype=bool)
    # First matching override wins: apply in reverse so earlier entries overwrite later ones.
    for i in reversed(range(len(config.overrides))):
        o = config.overrides[i]
        mask = WorkloadRef.parse(o.workload, what=f"overrides[{i}].workload").mask(frame)
        if o.policy:
            policy[mask] = o.policy
            source[mask] = f"overrides[{i}] ({o.workload})"
        if o.ignore:
            ignored |= mask
    return pd.DataFrame(
        {"policy": policy.astype(str), "policy_source": source.astype(str), "ignored_by_config": ignored,
         "policy_note": note.astype(str)},
        index=frame.index,
    )


def policy_params(config: Config, policies: pd.Series) -> pd.DataFrame:
    """Every Policy setting as a column, one row per entry of ``policies`` (aligned with its index).

    Unknown names raise ConfigError through Config.policy.
    """
    names = list(dict.fromkeys(policies.tolist()))
    fields = [f.name for f in fields_of(Policy)]
    table = pd.DataFrame([dataclasses.asdict(config.policy(name)) for name in names], index=names, columns=fields)
    if not names:
        table = pd.DataFrame({f: pd.Series(dtype=object) for f in fields})
    for f in fields_of(Policy):
        if f.metadata["kind"] == "statistic":  # kept as parsed (StatisticName: the name and its quantile)
            table[f.name] = pd.Series([getattr(config.policy(n), f.name) for n in names], index=names, dtype=object)
    out = table.reindex(policies.to_numpy())
    out.index = policies.index
    return out
