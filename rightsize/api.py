"""The public Python API: load a snapshot, run each analysis under a policy, plot. Nothing here needs a cluster.

Units are the snapshot's everywhere: CPU in cores, memory in bytes, money in USD per month (hourly
prices x ``[general] hours_per_month``, 730 by default), timestamps in UTC. An unset request or
limit is NaN, never 0.

Every function takes an optional ``config``: a :class:`rightsize.config.Config`, a path to a
config.toml, or None for the defaults. Functions that recommend also take a ``policy``:

- ``None``: each namespace gets the policy the config assigns it (production / non_production ...);
- a policy name (``"production"``): that declared policy for every workload;
- a :class:`rightsize.config.Policy`: that policy for every workload;
- a dict of overrides (``{"margin": 0.25, "cpu_request_percentile": "p99"}``, quantities in
  Kubernetes notation or base units): applied on top of every declared policy, so namespaces keep
  their own policy with those keys changed.

A snapshot without prices is priced from the bundled offline catalogue (the snapshot passed in is
not modified).
"""
from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Union

import pandas as pd

from .analysis import Analysis
from .config import Config, Policy, PrometheusConfig, load_config, policy_values
from .errors import ConfigError, RightsizeError
from .quantity import parse_duration
from .refs import WorkloadRef, refs_text
from .schema import WORKLOAD_KEY
from .settings import fields_of, parse_value
from .snapshot import Snapshot

PolicyLike = Union[Policy, str, Mapping[str, Any], None]
ConfigLike = Union[Config, str, "os.PathLike[str]", None]  # a Config, a config.toml path, or the defaults

# The plots and the report's charts are rightsize.plots' (``rs.plot_usage``...): ``from rightsize.api import *``
# does not load matplotlib.
__all__ = [
    "load", "analyze", "recommend", "costs", "spot", "cross_az", "load_balancers", "node_groups", "totals", "what_if",
    "backtest", "margin_sweep", "formatted", "fetch_series", "workload_ref",
    "Analysis", "Config", "Policy", "Snapshot", "load_config",
]

DEMO = "demo"
_UNIFORM_LABEL = "custom"


# --- loading ---------------------------------------------------------------------------------------

def load(path: str | os.PathLike[str], *, config: ConfigLike = None) -> Snapshot:
    """Read a snapshot folder (written by ``rightsize collect``), or build the demo snapshot with ``"demo"``.

    The demo snapshot is generated deterministically and priced from the bundled offline price list,
    so it needs no network (a folder named demo reads as ``Path("demo")`` or ``"./demo"``). An
    ``s3://bucket/prefix`` works too, and a folder (or prefix) of several clusters' snapshots is merged
    into one fleet snapshot without the per-pod tables (see rightsize.fleet). Raises SnapshotError
    naming the folder, table or column at fault.
    """
    if isinstance(path, str) and path == DEMO:
        from . import demo
        from .sources.aws import collect_prices

        snapshot = demo.generate()
        collect_prices(_config(config), snapshot, offline=True)
        return snapshot
    from .fleet import load_input

    return load_input(path, _config(config))


# --- analyses --------------------------------------------------------------------------------------

def analyze(snapshot: Snapshot, config: ConfigLike = None, *, backtest: bool = True,
            while_backtest: Callable[["Analysis"], None] | None = None) -> "Analysis":
    """Run every analysis (recommendations, costs, spot, cross-AZ, load balancers, idle) like ``rightsize analyze``;
    ``backtest`` False leaves the report's backtest out (``rightsize patch`` does not need it). ``while_backtest``:
    called with the analysis whose tables but the backtest are final, while the backtest runs (analysis.analyze).

    Returns an :class:`rightsize.analysis.Analysis` whose tables follow schema.RECOMMENDATION_COLUMNS,
    SPOT_COLUMNS, CROSS_AZ_COLUMNS, LOAD_BALANCER_COLUMNS and IDLE_COLUMNS (money in USD/month).
    """
    from .analysis import analyze as run
    from .sources.price_catalogue import instance_candidates

    cfg = _config(config)
    priced = _priced(snapshot, cfg)
    return run(priced, cfg, instance_candidates(priced), backtest=backtest, while_backtest=while_backtest)


def recommend(snapshot: Snapshot, policy: PolicyLike = None, config: ConfigLike = None) -> pd.DataFrame:
    """Per-container recommendations with their cost, one row per container (schema.RECOMMENDATION_COLUMNS).

    Requests/limits in cores and bytes (``*_current`` vs ``*_recommended``; NaN = unset or no
    recommendation, see ``status``/``reason``/``cpu_limit_action``), money in USD/month.
    ``policy``: see the module docstring.
    """
    from .analysis import cost
    from .analysis import recommend as rec

    cfg, label = _with_policy(_config(config), policy)
    priced = _priced(snapshot, cfg)
    recs = cost.add_costs(rec.recommend(priced, cfg), priced, cfg)
    if label is not None:
        recs = recs.assign(policy=label)
    return recs


def costs(snapshot: Snapshot, config: ConfigLike = None, by: str | Sequence[str] | None = None,
          policy: PolicyLike = None) -> pd.DataFrame:
    """Monthly cost of current vs recommended requests, USD/month.

    ``by=None``: one row per container (identity, team, policy, status, replicas and the three USD/month
    columns), largest saving first. ``by="namespace"`` (or ``"team"``, or a list of columns): rolled up
    with ``analysis.summary.rollup``, the same figures as the report's per-namespace and per-team tables
    (savings of the proposed changes; containers without a price counted in containers_without_price and
    left out of the money, which is NaN for a group with no price at all), and the GPU dollars requested,
    used and saved (README "GPUs"; 0 for a group without GPUs, used NaN where no GPU of it was measured).
    """
    from .analysis.summary import gpu_sums, rollup

    recs = recommend(snapshot, policy=policy, config=config)
    if by is None:
        cols = [c for c in (*WORKLOAD_KEY, "container", "container_type", "team", "policy", "status", "replicas",
                            "usd_per_month_current", "usd_per_month_recommended", "savings_usd_per_month") if c in recs]
        return recs[cols].sort_values("savings_usd_per_month", ascending=False, na_position="last").reset_index(drop=True)
    keys = [by] if isinstance(by, str) else list(by)
    unknown = [k for k in keys if k not in recs.columns]
    if unknown:
        raise ConfigError(f"costs(by=...): unknown column {unknown[0]!r}; e.g. namespace, team, cluster, kind, policy")
    return rollup(recs, keys, sums=gpu_sums(recs))


GPU_COLUMNS = ("gpu_resource", "gpu_request_count_current", "gpu_model", "gpu_engine_p95_ratio", "gpu_engine_mean_ratio",
               "gpu_memory_peak_bytes", "gpu_memory_bytes", "gpu_action", "gpu_target", "gpu_resource_recommended",
               "gpu_share_after", "gpu_evidence", "gpu_usd_per_month_current", "gpu_usd_per_month_used", "gpu_savings_usd_per_month")


def gpu(snapshot: Snapshot, config: ConfigLike = None, by: str | Sequence[str] | None = None,
        policy: PolicyLike = None) -> pd.DataFrame:
    """GPUs, USD/month (README "GPUs").

    ``by=None``: one row per container that asks for GPUs: its GPU resource, count and model, the DCGM evidence
    (engine active p95 and mean, 0-1; frame buffer peak and size, bytes), the GPU action (idle, share_mig,
    share_time_slicing, smaller_gpu, keep, unmeasured) with its target, and the GPU dollars requested, used and
    saved; largest saving first. ``by="namespace"`` (or ``"team"``, or a list of columns): those dollars summed
    per group. ``by="node_group"``: per node group, its GPU-equivalents allocatable and requested, and the
    dollars of the idle ones (idle.csv's columns).
    """
    from .analysis import cost
    from .analysis.summary import GPU_SUMS

    cfg = _config(config)
    if by == "node_group":
        idle = cost.idle_costs(_priced(snapshot, cfg), cfg)
        return idle[idle["allocatable_gpus"] > 0][["cluster", "node_group", "instance_type", "capacity_type", "nodes",
                                                   "allocatable_gpus", "requested_gpus", "gpu_idle_usd_per_month"]].reset_index(drop=True)
    recs = recommend(snapshot, policy=policy, config=cfg)
    recs = recs[recs["gpu_resource"] != ""]
    if by is None:
        cols = [*WORKLOAD_KEY, "container", "team", *GPU_COLUMNS]
        return recs[cols].sort_values("gpu_savings_usd_per_month", ascending=False, na_position="last").reset_index(drop=True)
    keys = [by] if isinstance(by, str) else list(by)
    if any(k not in recs.columns for k in keys):
        raise ConfigError(f"gpu(by=...): unknown column {next(k for k in keys if k not in recs.columns)!r}; "
                          "e.g. namespace, team, cluster, node_group")
    return recs.groupby(keys, as_index=False)[list(GPU_SUMS)].sum(min_count=1).sort_values(
        "gpu_usd_per_month_current", ascending=False).reset_index(drop=True)


def spot(snapshot: Snapshot, config: ConfigLike = None, policy: PolicyLike = None) -> pd.DataFrame:
    """Spot suitability per workload (schema.SPOT_COLUMNS): score 0-100, verdict, reasons, changes needed,
    and the on-demand vs spot cost of its recommended requests in USD/month."""
    from .analysis import spot as spot_mod

    cfg = _config(config)
    recs = recommend(snapshot, policy=policy, config=cfg)
    return spot_mod.spot_suitability(_priced(snapshot, cfg), recs, cfg)


def cross_az(snapshot: Snapshot, config: ConfigLike = None) -> pd.DataFrame:
    """Inter-AZ transfer cost per workload pair (schema.CROSS_AZ_COLUMNS): GB/month, crossing share,
    USD/month for both directions, and the suggested fix."""
    from .analysis import cross_az as cross_az_mod

    cfg = _config(config)
    return cross_az_mod.cross_az_costs(_priced(snapshot, cfg), cfg)


def load_balancers(snapshot: Snapshot, config: ConfigLike = None) -> pd.DataFrame:
    """Fixed cost of each LoadBalancer Service in USD/month, consolidation candidates and exposure risks
    (schema.LOAD_BALANCER_COLUMNS)."""
    from .analysis import load_balancers as lb

    cfg = _config(config)
    return lb.load_balancer_costs(_priced(snapshot, cfg), cfg)


def node_groups(snapshot: Snapshot, config: ConfigLike = None, policy: PolicyLike = None) -> pd.DataFrame:
    """Per node group (schema.NODE_GROUP_COLUMNS): nodes today, nodes first-fit decreasing needs for today's
    and for the recommended requests, their USD/month, the bankable saving and the cheapest instance type
    of the family. ``policy``: see the module docstring."""
    from .analysis import binpack
    from .sources.price_catalogue import instance_candidates

    cfg = _config(config)
    priced = _priced(snapshot, cfg)
    recs = recommend(priced, policy=policy, config=cfg)
    return binpack.node_groups(priced, recs, cfg, instance_candidates(priced))


def totals(recommendations: "pd.DataFrame | Analysis") -> pd.Series:
    """Headline figures of a recommendation table (``recommend(...)`` or ``analyze(...).recommendations``),
    computed by ``analysis.summary.totals`` as the report's summary.json "totals" are.

    Counts of containers by outcome and flag; requested CPU (cores) and memory (bytes) of the main
    containers summed over replicas, now and after applying every proposed change (rows that are not
    ``status == "change"`` keep their current request; an unset request counts as nothing requested);
    cost now, after (``usd_per_month_recommended``), the net saving of the changes and its gross and
    increase parts in USD/month, over the priced containers: the others are counted in
    ``containers_without_price`` (NaN money when none is priced).
    """
    from .analysis.summary import totals as compute_totals

    return pd.Series(compute_totals(_recommendations_of(recommendations)), name="total", dtype="float64")


def what_if(snapshot: Snapshot, policies: Mapping[str, PolicyLike], config: ConfigLike = None, *,
            baseline: bool = True, by: str | Sequence[str] | None = None,
            value: str = "savings_usd_per_month") -> pd.DataFrame:
    """Compare policies side by side (``baseline`` = the config's own policies first).

    ``policies`` maps a label to anything ``recommend(policy=...)`` takes. Without ``by``: one row per
    policy and one typed column per figure of :func:`totals`, named with its unit (counts as int64;
    ``cpu_request_cores_*`` in cores, ``memory_request_bytes_*`` in bytes, ``*usd_per_month*`` in USD).
    With ``by`` (e.g. ``"namespace"``): one row per group, one column per policy, ``value``: a figure of
    ``costs(by=...)`` (default the saving in USD/month, as there) or any other numeric recommendation
    column, summed. ``formatted(table)`` shows either with money and quantities formatted.
    """
    cfg = _config(config)
    runs: dict[str, PolicyLike] = {}
    if baseline:
        runs["baseline"] = None
    for label, pol in policies.items():
        if label in runs:
            raise ConfigError(f"what_if: policy label {label!r} is used twice (\"baseline\" is reserved)")
        runs[label] = pol
    priced = _priced(snapshot, cfg)
    results = {label: recommend(priced, policy=pol, config=cfg) for label, pol in runs.items()}
    if by is None:
        table = pd.DataFrame({label: totals(recs) for label, recs in results.items()}).T
        counts = [c for c in table.columns if not c.endswith(("_cores_current", "_cores_after", "_bytes_current",
                                                                "_bytes_after")) and "usd" not in c]
        table = table.astype({c: "int64" for c in counts})
        table.index.name = "policy"
        table.columns.name = "figure"
        return table
    from .analysis.summary import ROLLUP_FIGURES, rollup

    keys = [by] if isinstance(by, str) else list(by)
    columns = {}
    for label, recs in results.items():
        missing = [k for k in (*keys, value) if k not in recs.columns and k not in ROLLUP_FIGURES]
        if missing:
            raise ConfigError(f"what_if: unknown column {missing[0]!r}")
        groups = rollup(recs, keys, sums=() if value in ROLLUP_FIGURES else (value,))
        columns[label] = groups.set_index(keys)[value]
    table = pd.DataFrame(columns).sort_values(next(iter(columns)), ascending=False)
    table.columns.name = "policy"
    table.attrs["value"] = value  # the unit of every cell, for formatted()
    return table


def backtest(snapshot: Snapshot, policies: Mapping[str, PolicyLike] | None = None, config: ConfigLike = None, *,
             test_days: int = 7, by: str | Sequence[str] | None = None) -> pd.DataFrame:
    """Recommend from the window minus its last ``test_days`` days and replay those days against it.

    ``policies`` maps a label to anything ``recommend(policy=...)`` takes, compared with the config's own
    policies (labelled "recommended") and "today" (the current requests), which are always there.
    Without ``by``: one row per container and policy (schema.BACKTEST_COLUMNS: the shares of
    5-minute pod-steps above the CPU request and at the CPU limit, the slack (request - usage) /
    request, the test days' memory peak and whether it reaches the limit). With ``by`` (e.g.
    ``"namespace"``, or ``[]`` for the whole fleet): per group and policy, containers,
    request-weighted CPU and memory slack, predicted OOMs and containers above their CPU request
    more than 5 % of the time. ConfigError when the snapshot cannot be backtested (and why)."""
    from .analysis import backtest as bt
    from .analysis import run_backtest

    if isinstance(test_days, bool) or not isinstance(test_days, int) or test_days < 1:
        raise ConfigError(f"backtest: test_days must be a whole number of days, at least 1 (got {test_days!r})")
    cfg = _config(config)
    runs = {label: _with_policy(cfg, pol)[0] for label, pol in {"recommended": None, **(policies or {})}.items()}
    if "today" in runs:
        raise ConfigError('backtest: the policy label "today" is reserved for the current requests')
    table, why = run_backtest(snapshot, cfg, test_days, runs)
    if why:
        raise ConfigError(f"backtest: {why}")
    if by is None:
        return table
    return bt.rollup(table, [by] if isinstance(by, str) else list(by))


def margin_sweep(snapshot: Snapshot, config: ConfigLike = None, *, test_days: int = 7) -> pd.DataFrame:
    """The margin frontier (analysis/margins.py): recommend from the window minus its last ``test_days`` days at
    every candidate margin and replay those days; one row per policy, resource ('cpu', 'memory'), usage
    pattern and margin: containers, slack, predicted_ooms, throttled, over_request (share of pod-steps above
    the request), share (what the policy's statistic allows above it) and ``chosen`` (True on the smallest
    margin with no predicted OOM kill, no throttled container and over_request within share). ConfigError
    when the snapshot cannot be backtested."""
    from .analysis import backtest_split, margins

    cfg = _config(config)
    split = backtest_split(snapshot, cfg, test_days)
    if isinstance(split, str):
        raise ConfigError(f"backtest: {split}")
    table = margins.frontier(*split, cfg)
    picked = margins.choose(table)[["policy", "resource", "pattern", "chosen"]]
    table = table.merge(picked, on=["policy", "resource", "pattern"], how="left")
    return table.assign(chosen=table["margin"] == table["chosen"])


def formatted(table: pd.DataFrame):
    """A notebook view of a rightsize table: money as '$1,234.56', CPU as '250m', memory as '1.5Gi', counts
    as '1,234', chosen by the unit in each column name (``*usd*``, ``*_cores*``, ``*_bytes*``) or, for a
    ``what_if(by=...)`` table, by the value it sums. Returns a pandas Styler; the data stay numbers."""
    from . import formatting as fmt

    def formatter(name: str, dtype):
        name = str(name)
        if "usd" in name:
            return fmt.usd
        if "_cores" in name:
            return fmt.cpu
        if "_bytes" in name:
            return fmt.memory
        return fmt.count if pd.api.types.is_numeric_dtype(dtype) else None

    unit = table.attrs.get("value")
    formats = {c: formatter(unit or c, table[c].dtype) for c in table.columns}
    return table.style.format({c: f for c, f in formats.items() if f is not None})


# --- workloads -------------------------------------------------------------------------------------

def workload_ref(snapshot: Snapshot, ref: str) -> tuple[str, str, str, str]:
    """Resolve ``NAMESPACE/KIND/NAME``, ``NAMESPACE/NAME`` (kind inferred) or ``CLUSTER/NAMESPACE/KIND/NAME``
    to a (cluster, namespace, kind, workload) key of the snapshot's workloads; RightsizeError when it
    matches none or several."""
    wanted = WorkloadRef.parse(ref, what=f"workload {ref!r}", short=True)
    tables = [snapshot.tables[t][list(WORKLOAD_KEY)] for t in ("workloads", "series")]
    known = pd.concat(tables, ignore_index=True).drop_duplicates()
    hits = known[wanted.mask(known)]
    if len(hits) == 0:
        raise RightsizeError(f"workload {ref!r}: not in this snapshot")
    if len(hits) > 1:
        options = ", ".join(refs_text(hits, cluster=True))
        raise RightsizeError(f"workload {ref!r}: ambiguous, matches {options}")
    return tuple(hits.iloc[0])  # type: ignore[return-value]


# --- time series -----------------------------------------------------------------------------------

def fetch_series(url_or_config: "str | Config", refs: "str | Sequence[str]", snapshot: Snapshot | None = None, *,
                 step: str | float | None = None, window: str | float | None = None) -> pd.DataFrame:
    """Fetch the usage series of chosen workloads from a Prometheus-compatible API at a coarse step.

    ``url_or_config``: the API's base URL (default settings otherwise), or a Config whose ``[prometheus]``
    section and ``[general] window`` are used. ``refs``: ``NAMESPACE/KIND/NAME`` of a few workloads (never
    all: the series are large). ``step``: seconds or a duration like ``"5m"`` (default ``[general] step``); ``window``: look-back from
    now (or ``[prometheus] end``), default the config's window (14 days).

    Returns rows of the snapshot's ``series`` table: per container, the busiest replica's CPU in cores and
    working set in bytes at each UTC step. With ``snapshot`` they are also appended to its ``series`` table,
    ready for :func:`plot_usage`. SourceError when the server fails, ConfigError for a malformed ref.
    """
    from .sources import prometheus

    if isinstance(url_or_config, Config):
        cfg = url_or_config
    else:
        from .settings import SettingError, parse_value

        try:  # the config file's URL check: scheme and host, and no credentials in it
            url = parse_value(next(f for f in dataclasses.fields(PrometheusConfig) if f.name == "url").metadata, str(url_or_config))
        except SettingError as exc:
            raise ConfigError(f"fetch_series: {exc}") from None
        cfg = dataclasses.replace(Config(), prometheus=dataclasses.replace(Config().prometheus, url=url))
    if window is not None:
        cfg = dataclasses.replace(cfg, general=dataclasses.replace(cfg.general, window=_duration("window", window)))
    refs = [refs] if isinstance(refs, str) else list(refs)
    if not refs:
        raise ConfigError("fetch_series: name at least one workload as NAMESPACE/KIND/NAME")
    return prometheus.fetch_series(cfg, None, refs, snapshot=snapshot, step=_duration("step", step) if step is not None else None)


# --- helpers ---------------------------------------------------------------------------------------

def _config(config: ConfigLike) -> Config:
    if config is None:
        return Config()
    if isinstance(config, Config):
        return config
    return load_config(config, required=True)


def _duration(name: str, value: str | float) -> float:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None
    if seconds <= 0:
        raise ConfigError(f"{name}: must be positive, got {value!r}")
    return seconds


def _policy_overrides(base: Policy, overrides: Mapping[str, Any]) -> Policy:
    declared = {f.name: f for f in fields_of(Policy)}
    values = {}
    for key, raw in overrides.items():
        if key not in declared:
            raise ConfigError(f"policy: unknown key {key!r}; known keys: {', '.join(sorted(declared))}")
        try:
            values[key] = parse_value(declared[key].metadata, raw)
        except ValueError as exc:
            raise ConfigError(f"policy: {key}: {exc}") from None
    return dataclasses.replace(base, **policy_values(values))


def _with_policy(config: Config, policy: PolicyLike) -> tuple[Config, str | None]:
    """The config to recommend with, and the label to write in the ``policy`` column (None = keep)."""
    if policy is None:
        return config, None
    if isinstance(policy, Mapping):
        policies = {name: _policy_overrides(p, policy) for name, p in config.policies.items()}
        return dataclasses.replace(config, policies=policies), None
    if isinstance(policy, str):
        chosen, label = config.policy(policy), policy
    elif isinstance(policy, Policy):
        chosen, label = policy, _UNIFORM_LABEL
    else:
        raise ConfigError(f"policy: expected a policy name, a Policy or a dict of overrides, got {type(policy).__name__}")
    # Every name the namespace rules, overrides and annotations can pick now resolves to the one policy.
    return dataclasses.replace(config, policies={name: chosen for name in config.policies}), label


def _priced(snapshot: Snapshot, config: Config) -> Snapshot:
    """The snapshot itself when it has prices; otherwise a copy priced from the offline catalogue."""
    if len(snapshot.tables["prices"]):
        return snapshot
    from .sources.aws import collect_prices

    priced = Snapshot(tables=dict(snapshot.tables), meta=copy.deepcopy(snapshot.meta))
    collect_prices(config, priced, offline=True)
    return priced


def _recommendations_of(data: "pd.DataFrame | Analysis") -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    recs = getattr(data, "recommendations", None)
    if not isinstance(recs, pd.DataFrame):
        raise RightsizeError(f"expected a recommendation table or an Analysis, got {type(data).__name__}")
    return recs


