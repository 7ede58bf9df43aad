"""Margins that earn their slack: the backtest's frontier of slack against safety, per usage pattern.

``rightsize backtest --sweep`` (and benchmarks/recommend_bench.py --sweep) recommends from the window
without its last days once per candidate margin, every pattern of every policy at that margin, and
replays those days (backtest.py). Per policy, resource and usage pattern (patterns.py, as the training
days classify each container) and candidate margin:

- ``slack``: (request - usage) / request over the test days' pod-steps, weighted by request x steps;
- ``predicted_ooms``: containers whose test-day peak reaches the recommended memory limit (memory);
- ``throttled``: containers at the recommended CPU limit more than the policy's throttling_threshold of
  their pod-steps (CPU);
- ``over_request``: the share of the pattern's pod-steps above the recommended request.

The chosen margin (:func:`choose`) is the smallest that keeps predicted OOM kills and throttled containers
at 0 and the steps over request within the policy's share: what its request statistic leaves above it
(p95: 5 %; max: none), and one candidate more where predicted OOM kills decided it; a heavier-tailed pattern's
margin is never below a lighter one's (flat, diurnal, bursty; README: How the margins were chosen). Pure
functions of DataFrames; the frontier costs one recommendation per candidate.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from ..usage_stats import MARGIN_KEYS, parse_statistic

CANDIDATES = (0.0, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.175, 0.2, 0.25, 0.3, 0.4)
HEADROOM = 1  # candidates above the smallest passing one where predicted OOM kills decided it
TAIL_ORDER = ("flat", "diurnal", "bursty")  # lighter to heavier tail: a margin never below a lighter pattern's
_KEYS = ["policy", "resource", "pattern"]


def with_margin(config, margin: float):
    """``config`` with every policy's margin, for every pattern, at ``margin``."""
    policies = {name: dataclasses.replace(p, margin=margin, margins={k: margin for k in MARGIN_KEYS})
                for name, p in config.policies.items()}
    return dataclasses.replace(config, policies=policies)


def frontier(train, test, config, candidates=CANDIDATES) -> pd.DataFrame:
    """One row per policy, resource, pattern and candidate margin (module docstring): containers, slack,
    predicted_ooms, throttled, over_request (share of pod-steps), share (the policy's allowed share)."""
    from . import backtest, recommend

    frames = []
    for m in candidates:
        recs = recommend.recommend(train, with_margin(config, m))
        bt = backtest.replay(backtest.settings_of(recs), test)
        frames.append(_figures(recs, bt, config).assign(margin=m))
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return out.sort_values(_KEYS + ["margin"], kind="stable").reset_index(drop=True)


def _figures(recs: pd.DataFrame, bt: pd.DataFrame, config) -> pd.DataFrame:
    """Per policy, resource and pattern the replay's figures of one candidate."""
    rec = recs["status"].isin(["change", "keep"]).to_numpy()
    parts = []
    for res, unit in (("cpu", "cores"), ("memory", "bytes")):
        steps = bt[f"{res}_pod_steps"].fillna(0.0).to_numpy()
        req = bt[f"{res}_request_{unit}"].to_numpy(dtype=float)
        known = rec & (steps > 0) & (req > 0)
        frame = pd.DataFrame({
            "policy": recs["policy"], "resource": res, "pattern": recs[f"{res}_pattern"].replace("", "unknown"),
            "_req": np.where(known, req * steps, 0.0),
            "_use": np.where(known, bt[f"{res}_mean_{unit}"].to_numpy(dtype=float) * steps, 0.0),
            "_steps": np.where(known, steps, 0.0),
            "_over": np.where(known, np.nan_to_num(bt[f"{res}_share_over_request"].to_numpy(dtype=float)) * steps, 0.0),
            "_oom": known & bt["predicted_oom"].to_numpy(dtype=bool) if res == "memory" else False,
            "_thr": known & (bt["cpu_share_at_limit"].to_numpy(dtype=float) > _threshold(recs, config)) if res == "cpu" else False,
            "_n": known})
        parts.append(frame[frame["_n"]])
    g = pd.concat(parts, ignore_index=True).groupby(_KEYS, sort=True)
    out = g.agg(containers=("_n", "sum"), predicted_ooms=("_oom", "sum"), throttled=("_thr", "sum"), _req=("_req", "sum"),
                _use=("_use", "sum"), _steps=("_steps", "sum"), _over=("_over", "sum")).reset_index()
    with np.errstate(divide="ignore", invalid="ignore"):
        out["slack"] = np.where(out["_req"] > 0, 1 - out["_use"] / out["_req"], np.nan)
        out["over_request"] = np.where(out["_steps"] > 0, out["_over"] / out["_steps"], np.nan)
    out["share"] = [_share(config, p, r, pat) for p, r, pat in zip(out["policy"], out["resource"], out["pattern"])]
    return out.drop(columns=["_req", "_use", "_steps", "_over"]).astype({"containers": "int64", "predicted_ooms": "int64",
                                                                          "throttled": "int64"})


def _threshold(recs: pd.DataFrame, config) -> np.ndarray:
    return np.array([config.policy(p).throttling_threshold if p in config.policies else np.inf for p in recs["policy"]])


def _share(config, policy: str, resource: str, pattern: str = "") -> float:
    """The share of steps a policy's request leaves above it: 1 - the quantile of its statistic (max: 0).
    Unbounded (inf) where the margin does not move the request: memory with memory_limit = margin puts it on
    the limit, so the steps over that request are its statistic's, shown but not the margin's to choose (a
    growing working set's request still carries its margin over the projection)."""
    p = config.policies.get(policy)
    if p is None:
        return 0.0
    if resource == "memory" and p.memory_limit == "margin" and pattern != "growing":
        return np.inf
    return 1.0 - parse_statistic(p.cpu_request_percentile if resource == "cpu" else p.memory_request_percentile)


def choose(table: pd.DataFrame) -> pd.DataFrame:
    """Per policy, resource and pattern the chosen margin (``chosen``, NaN when no candidate passes) with its
    figures: the smallest candidate whose replay has no predicted OOM kill, no throttled container and at most
    the policy's share of steps over request; HEADROOM candidates more (when they pass too) where the candidate
    below it failed on predicted OOM kills: a kill is the costly failure, and the tail of one cluster is not
    the next one's (on an independent cluster of 10,000 containers the smallest passing margins left 4 kills);
    then no pattern below a lighter-tailed one of its policy and resource (:func:`_no_lighter_above`)."""
    t = table.sort_values(_KEYS + ["margin"], kind="stable").reset_index(drop=True)
    ok = (t["predicted_ooms"] == 0) & (t["throttled"] == 0) & (t["over_request"].fillna(0) <= t["share"] + 1e-9)
    group = t.groupby(_KEYS, sort=False).ngroup()
    first = ok & (ok.astype(int).groupby(group).cumsum() == 1)
    killed_below = t["predicted_ooms"].groupby(group).shift(1).fillna(0) > 0
    up_passes = ok.groupby(group).shift(-HEADROOM, fill_value=False).astype(bool)
    rows = np.flatnonzero(first) + HEADROOM * (killed_below & up_passes)[first].to_numpy()
    picked = t.iloc[rows][_KEYS + ["margin"]]
    out = t[_KEYS].drop_duplicates().merge(picked, on=_KEYS, how="left")
    out["margin"] = _no_lighter_above(out)
    chosen = out.merge(t, on=_KEYS + ["margin"], how="left").rename(columns={"margin": "chosen"})
    return chosen.reset_index(drop=True)


def _no_lighter_above(picked: pd.DataFrame) -> pd.Series:
    """Each pattern's margin raised to at least that of every lighter-tailed pattern of its policy and resource
    (TAIL_ORDER). Next week's excess over this week's max is mostly what no pattern shows (a new pod's own
    level after a rollout, the height of the next burst), and a heavier tail adds to it, never takes from it:
    on 11,345 production working sets of four generated clusters the test week's peak over the training max
    had the same tail in every pattern (99.9th percentile 1.13-1.15, largest 1.16-1.19). A pattern with fewer
    containers shows less of that tail, so its own smallest passing margin comes out lower (bursty's 17.5 %
    against flat's 25 % on the 10,000 of seed 26), and the cluster of seed 31 then had a bursty kill 0.2 %
    over its limit. The raised margin's figures are its frontier row where that candidate was replayed."""
    rank = picked["pattern"].map({p: i for i, p in enumerate(TAIL_ORDER)})
    ordered = picked.assign(_rank=rank).sort_values(["policy", "resource", "_rank"], kind="stable", na_position="last")
    lighter = ordered["margin"].where(ordered["_rank"].notna())
    floor = lighter.groupby([ordered["policy"], ordered["resource"]]).cummax()
    own = ordered["margin"]  # NaN (no candidate passed) stays NaN: a lighter pattern's margin does not say it passes
    raised = np.where(ordered["_rank"].notna() & own.notna(), np.fmax(own, floor), own)
    return pd.Series(raised, index=ordered.index).reindex(picked.index)
