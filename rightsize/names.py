"""Names are data: the one check of every name that enters from a cluster or a config.

Kubernetes allows only DNS-1123 names, but names reach rightsize through Prometheus labels, which
relabelling, multi-tenant stores and misconfiguration can fill with anything (a newline and
``$patch: delete``, an ESC sequence, ``=HYPERLINK(...)``, ``../``). So every name is checked where it
enters (collect): a namespace is a DNS-1123 label, a workload a DNS-1123 subdomain, a container a
DNS-1123 label, a team (a label value) and a cluster Kubernetes' label-value rule. A row with an invalid
name is skipped, with one warning naming it (escaped) and what it was; writers escape whatever they
print anyway (``escape.py``). A workload a batch framework's pods were grouped into (batch_groups.py) is
named by pod label values joined by '.', so it is checked as such (``daily_sales.load`` is right there).
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .batch_groups import BATCH_GROUP_KINDS
from .escape import clean_text

# RFC 1123 label: namespaces, container names (at most 63)
DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
# RFC 1123 subdomain: Deployments, StatefulSets, DaemonSets, Jobs, CronJobs (at most 253)
DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
# a label value (team labels, cluster names): empty, or alphanumerics at both ends with '-', '_', '.' inside
LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")

RULES = {  # column -> (pattern, longest, what it must be)
    "namespace": (DNS1123_LABEL, 63, "a DNS-1123 label (a-z, 0-9, '-', at most 63)"),
    "workload": (DNS1123_SUBDOMAIN, 253, "a DNS-1123 subdomain (a-z, 0-9, '-', '.', at most 253)"),
    "container": (DNS1123_LABEL, 63, "a DNS-1123 label (a-z, 0-9, '-', at most 63)"),
    "team": (LABEL_VALUE, 63, "a Kubernetes label value (letters, digits, '-', '_', '.', at most 63)"),
    "cluster": (LABEL_VALUE, 63, "a Kubernetes label value (letters, digits, '-', '_', '.', at most 63)"),
    "kind": (re.compile(r"[A-Za-z][A-Za-z0-9]*"), 63, "a Kubernetes kind (letters and digits)"),
    "group": (re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"), 253,
              "label values joined by '.' (letters, digits, '-', '_', '.', at most 253)"),
}
# the rule of each name column of the snapshot tables
COLUMN_RULES = {"namespace": "namespace", "kind": "kind", "workload": "workload", "container": "container",
                "source_namespace": "namespace", "source_workload": "workload",
                "destination_namespace": "namespace", "destination_workload": "workload"}


def valid(column: str, value: object) -> bool:
    """True when ``value`` is a valid name for ``column`` (namespace, workload, container, team, cluster)."""
    pattern, longest, _ = RULES[column]
    return isinstance(value, str) and len(value) <= longest and pattern.fullmatch(value) is not None


def cluster_name_problem(name: str) -> str:
    """'' when ``name`` may name a cluster (non-empty, a label value), else why not."""
    if not name:
        return "empty; a cluster needs a name"
    if not valid("cluster", name):
        return f"{clean_text(name)!r} is not a valid cluster name: {RULES['cluster'][2]}"
    return ""


def invalid_rows(table: pd.DataFrame, columns: tuple[str, ...] = tuple(COLUMN_RULES)) -> pd.Series:
    """A boolean mask of the rows of ``table`` with an invalid name in any of ``columns`` (those it has; each
    checked by its rule in COLUMN_RULES); checked once per distinct value and spread to the rows by their codes,
    with no string per row (a per-pod table has millions of rows and a few thousand names)."""
    bad = np.zeros(len(table), dtype=bool)
    for column in columns:
        if column not in table.columns or table.empty:
            continue
        codes, values = _distinct(table[column])
        rule = COLUMN_RULES.get(column, column)
        wrong = np.array([not (valid(rule, v) or (v == "" and column.startswith(("source_", "destination_"))))
                          for v in values], dtype=bool)[codes]
        if column == "workload" and "kind" in table.columns:
            grouped = table["kind"].isin(BATCH_GROUP_KINDS).to_numpy(dtype=bool)
            wrong = np.where(grouped, ~np.array([valid("group", v) for v in values], dtype=bool)[codes], wrong)
        bad |= wrong
    return pd.Series(bad, index=table.index)


def _distinct(column: pd.Series) -> tuple[np.ndarray, list]:
    """Per row the code of its value, and the distinct values as ``astype(str)`` gives them (a missing value
    included: 'nan', or NaN where pandas keeps it missing)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy()
        values = list(pd.Series(column.cat.categories, dtype=object).astype(str))
        if len(codes) and codes.min() < 0:
            codes = np.where(codes < 0, len(values), codes)
            values.append(pd.Series([np.nan], dtype=object).astype(str).iloc[0])
        return codes, values
    codes, uniques = pd.factorize(column, use_na_sentinel=False)
    return codes, list(pd.Series(uniques, dtype=object).astype(str))


def describe_invalid(table: pd.DataFrame, mask: pd.Series, columns: tuple[str, ...] = tuple(COLUMN_RULES), limit: int = 5) -> str:
    """The invalid names of the masked rows, escaped, e.g. "container 'app\\x0a$patch: delete'"."""
    seen: list[str] = []
    for column in columns:
        if column not in table.columns:
            continue
        rule = COLUMN_RULES.get(column, column)
        for v in pd.unique(table.loc[mask, column].astype(str)):
            if not valid(rule, v) and f"{column} {clean_text(v)!r}" not in seen:
                seen.append(f"{column} {clean_text(v)!r}")
    more = f" and {len(seen) - limit} more" if len(seen) > limit else ""
    return ", ".join(seen[:limit]) + more
