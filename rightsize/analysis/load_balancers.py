"""Load balancers: the fixed monthly cost of one AWS load balancer per Service of type LoadBalancer.

Each such Service gets its own NLB (or classic ELB) billed per hour whether or not it carries
traffic. HTTP(S) Services in one namespace can share one ingress (one ALB, or an ALB
IngressGroup), which saves n - 1 load balancers per group. Internet-facing load balancers
without the internal annotation are listed as a risk: they may expose something by accident.

Usage-based LCU/NLCU charges are not estimated (no per-LB traffic data); the fixed hourly
price is what consolidation removes. Money in USD/month. Pure functions: no I/O.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..config import Config
from ..schema import LOAD_BALANCER_COLUMNS
from ..snapshot import Snapshot

HTTP_PORTS = {80, 443, 8080, 8443}
GROUP = ["cluster", "namespace", "scheme"]
RISK_INTERNET_FACING = (
    "internet-facing: no internal annotation (service.beta.kubernetes.io/aws-load-balancer-scheme: internal "
    "or aws-load-balancer-internal: \"true\"); check it should be public"
)


def load_balancer_costs(snapshot: Snapshot, config: Config) -> pd.DataFrame:
    """One row per Service of type LoadBalancer: fixed cost per month, scheme, HTTP, consolidation, risk.

    Columns: schema.LOAD_BALANCER_COLUMNS, sorted by cluster, namespace, service.
    A Service is a consolidation candidate when it serves HTTP(S) and at least one other HTTP(S)
    load balancer of the same scheme exists in its namespace.
    """
    columns = [c.name for c in LOAD_BALANCER_COLUMNS]
    services = snapshot.tables.get("services")
    if services is None or services.empty:
        return _empty(columns)
    lbs = services[services["type"].astype(str).str.lower() == "loadbalancer"].copy()
    if lbs.empty:
        return _empty(columns)
    internal = _bool_column(lbs, "load_balancer_internal")
    out = pd.DataFrame({
        "cluster": lbs["cluster"].astype(str),
        "namespace": lbs["namespace"].astype(str),
        "service": lbs["service"].astype(str),
        "workload": _str_column(lbs, "workload"),
        "scheme": np.where(internal, "internal", "internet-facing"),
        "usd_per_month": config.pricing.load_balancer_usd_per_hour * config.general.hours_per_month,
        "http": is_http(_str_column(lbs, "ports")).to_numpy(),
    }, index=lbs.index)
    http_in_group = out["http"].astype(int).groupby([out[c] for c in GROUP]).transform("sum")
    out["consolidation_candidate"] = out["http"] & (http_in_group >= 2)
    out["risk"] = np.where(internal, "", RISK_INTERNET_FACING)
    out = out.sort_values(["cluster", "namespace", "service"], kind="mergesort")
    return out[columns].reset_index(drop=True)


def is_http(ports: pd.Series) -> pd.Series:
    """True where a ports string ("443/TCP,9000/TCP" or with an appProtocol "8000/TCP/http") serves HTTP(S).

    HTTP(S) means a well-known web port (80, 443, 8080, 8443) or an appProtocol naming http/https/h2c.
    """
    entries = ports.fillna("").astype(str).str.split(",").explode().str.strip()
    parts = entries.str.split("/", n=1, expand=True).reindex(columns=[0, 1])
    port = pd.to_numeric(parts[0], errors="coerce")
    rest = parts[1].astype(object).where(parts[1].notna(), "").astype(str).str.lower()
    web = port.isin(HTTP_PORTS) | rest.str.contains(r"(?:^|/)(?:https?|h2c|kubernetes\.io/h2c|http2)\b", regex=True)
    return web.groupby(level=0).any().reindex(ports.index, fill_value=False).astype(bool)


def _str_column(df: pd.DataFrame, name: str) -> pd.Series:
    if name not in df:
        return pd.Series("", index=df.index, dtype=object)
    return df[name].fillna("").astype(str)


def _bool_column(df: pd.DataFrame, name: str) -> pd.Series:
    if name not in df:
        return pd.Series(False, index=df.index)
    return df[name].fillna(False).astype(bool)


def _empty(columns: list[str]) -> pd.DataFrame:
    declared = {c.name: c.dtype for c in LOAD_BALANCER_COLUMNS}
    numbers = {"load_balancers", "http_load_balancers", "saving_usd_per_month"}
    pandas = {"str": "object", "float": "float64", "bool": "bool"}
    return pd.DataFrame({
        c: pd.Series(dtype=pandas[declared[c]] if c in declared else ("float64" if c in numbers else "object"))
        for c in columns
    })
