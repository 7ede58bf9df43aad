"""Rules for growing memory and usage patterns: the growth fit, each container's pattern and margins, the
projected peak as a floor, and no memory limit introduced below a growth (analysis/growth.py, patterns.py)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ...quantity import MIB
from ...schema import CONTAINER_KEY
from .. import growth as growth_mod
from .. import patterns as patterns_mod
from ...usage_stats import DAY_SECONDS
from .base import Rows, rule, usage_columns
from .text import mem_text, num_text, pct_text

_GROWTH = ("growth_rate", "growth_life", "growth_age", "growth_z", "growth_days", "growth_projected", "growing",
           "growth_known")


def _fit(rows: Rows) -> pd.DataFrame:
    """growth.fit of the snapshot's daily rows, one row per row of the frame (NaN where unknown)."""
    snap = rows.snapshot
    daily = None if "usage_daily" in (snap.meta.get("tables_not_loaded") or []) else snap.tables.get("usage_daily")
    keys = pd.DataFrame({k: rows.column(k).astype(str) for k in CONTAINER_KEY})
    if daily is None or daily.empty:
        return keys.assign(**{c: np.nan for c in growth_mod.COLUMNS[:-1]}, growing=False, _known=False)
    mine = daily.merge(keys.drop_duplicates(), on=list(CONTAINER_KEY)) if len(keys) < 1000 else daily  # explain: one workload
    fit = growth_mod.fit(mine, float(snap.meta.get("step_seconds") or 300), pd.Timestamp(snap.meta["window_end"]))
    out = keys.merge(fit.assign(_known=True), on=list(CONTAINER_KEY), how="left")
    out["growing"] = out["growing"].astype("boolean").fillna(False).astype(bool)
    out["_known"] = out["_known"].astype("boolean").fillna(False).astype(bool)
    return out


@rule(after="eligibility", reads=tuple(CONTAINER_KEY) + ("rec", "ignored") + usage_columns("memory", ("max",)),
      writes=_GROWTH, settings=("oom_horizon",), flags=("memory_growth",))
def memory_growth(rows: Rows) -> None:
    """Growing memory: a working set that rises with its pods' age, projected over their life (growth.py).

    Per container, the daily maxima of each pod (cut at rollouts and restarts, whole days only) against
    the pod's age: Theil-Sen's slope, Mann-Kendall's test pooled over the pods (z >= 2.33), at least 3
    whole days in one pod, and a climb over one life (at most oom_horizon) of at least 5 % of the level.
    The projection: running pods climb until their expected life ends (the median life of the pods the
    window saw start and end; unbounded when none ended), at most oom_horizon, and pods replaced within
    it climb again from the base; never below the window's max.

    Reason: "working set grows <r>Mi/day of pod age (<n> whole days, z <z>); pods live <l>: projected peak
    <p> within <h>d".
    Flag: memory_growth.
    """
    v = rows.v
    fit = _fit(rows)
    horizon = rows.pf("oom_horizon") / DAY_SECONDS
    peak = rows.stat("memory", "max")
    growing = fit["growing"].to_numpy(dtype=bool) & growth_mod.material(fit, horizon)
    fit["growing"] = growing
    projected = growth_mod.project(fit, horizon, peak)
    life = fit["growth_life_days"].to_numpy(dtype=float)
    v.update(growth_rate=np.where(growing, fit["growth_bytes_per_day"].to_numpy(dtype=float), np.nan),
             growth_life=np.where(growing, life, np.nan), growth_age=fit["growth_age_days"].to_numpy(dtype=float),
             growth_z=fit["growth_z"].to_numpy(dtype=float), growth_days=fit["growth_days"].to_numpy(dtype=float),
             growth_projected=projected, growing=growing, growth_known=fit["_known"].to_numpy(dtype=bool))
    lives = np.where(np.isfinite(life), "pods live " + num_text(life).to_numpy(dtype=object) + "d",
                     "no pod ended in the window").astype(object)
    rows.reason(v["rec"] & growing, "working set grows " + num_text(v["growth_rate"] / MIB) + "Mi/day of pod age ("
                + num_text(v["growth_days"], 0) + " whole days, z " + num_text(v["growth_z"]) + "); " + pd.Series(lives)
                + ": projected peak " + mem_text(projected) + " within " + num_text(horizon) + "d")
    rows.flag(~v["ignored"] & growing, "memory_growth")


@rule(after="memory_growth", reads=("policy", "growing") + usage_columns("cpu", ("p50", "p90", "p99"), "pooled")
      + usage_columns("memory", ("p50", "p90", "p99"), "pooled"),
      writes=("cpu_pattern", "mem_pattern", "cpu_margin", "mem_margin"), settings=("margin", "margins"))
def usage_pattern(rows: Rows) -> None:
    """Usage pattern and margins: flat, diurnal, bursty or growing per resource, and the policy's margin for it.

    The pattern of each resource from its pooled percentiles (patterns.py): bursty when the tail from p90 to
    p99 is heavy, flat when p90 is close to p50, diurnal otherwise; memory that grows with pod age is
    growing. The margin is the policy's margins entry for the pattern (e.g. cpu_bursty), else margin.

    Reason: none (the CPU and memory reasons name the margin).
    Flag: none.
    """
    v = rows.v
    for res, key in (("cpu", "cpu"), ("memory", "mem")):
        p50, p90, p99 = (rows.stat(res, q, "pooled") for q in ("p50", "p90", "p99"))
        pattern = patterns_mod.classify(res, p50, p90, p99, v["growing"] if res == "memory" else None)
        v[f"{key}_pattern"] = pattern
        v[f"{key}_margin"] = _margins(rows, res, pattern)


def _margins(rows: Rows, resource: str, pattern: np.ndarray) -> np.ndarray:
    """Per row its policy's margin for (resource, pattern): the margins entry, else margin."""
    out = rows.pf("margin").copy()
    codes, names = pd.factorize(rows.v["policy"])
    tables = rows.setting("margins").to_numpy()
    for i in range(len(names)):  # one pass per policy (a handful), vectorised over its rows
        mine = codes == i
        table = tables[np.flatnonzero(mine)[0]] or {}
        for pat, value in table.items():
            if pat.startswith(resource + "_"):
                out[mine & (pattern == pat[len(resource) + 1:])] = float(value)
    return out


@rule(after="oom_demand", reads=("growing", "growth_projected", "mem_margin", "oom", "floor_req", "floor_lim", "rec"),
      writes=("floor_req", "floor_lim", "growth_floor"), settings=("memory_request_covers_max",))
def growth_demand(rows: Rows) -> None:
    """Growing memory's floor: the projected peak x (1 + memory_growing margin) for the limit, and the request.

    A growing container that was not OOM-killed (those keep the OOM rule's own leak projection) gets a
    limit floor of its projected peak x (1 + its margin), and so does its request where
    memory_request_covers_max (production: the request holds the peak).

    Reason: "memory raised to the projected peak <p> +<m>%".
    Flag: none (memory_growth says it grows).
    """
    v = rows.v
    mine = v["growing"] & ~v["oom"] & ~np.isnan(v["growth_projected"])
    floor = np.where(mine, v["growth_projected"] * (1 + v["mem_margin"]), np.nan)
    covers = rows.pb("memory_request_covers_max")
    v.update(growth_floor=floor, floor_lim=np.fmax(v["floor_lim"], floor),
             floor_req=np.where(mine & covers, np.fmax(v["floor_req"], floor), v["floor_req"]))
    rows.reason(v["rec"] & mine, "memory raised to the projected peak " + mem_text(v["growth_projected"]) + " +"
                + pct_text(v["mem_margin"]))


@rule(after="memory_limit", reads=("growing", "growth_projected", "mem_lim", "rec", "memory_limit_bytes"),
      writes=("mem_lim", "mem_action"), settings=("memory_growth_limit",))
def growing_memory_limit(rows: Rows) -> None:
    """No memory limit introduced below a growth: a growing container without one keeps none (by policy).

    A container whose working set grows and that has no memory limit today never dies of it; a limit at a
    projection that falls short of the real climb would OOM-kill it. With memory_growth_limit = unset
    (the default) it keeps no limit (memory_limit_action keep_unset); with projected it gets the
    projected peak x (1 + margin) (the floor growth_demand set). Every other row: set where a limit is
    recommended, none without a recommendation.

    Reason: "memory limit left unset: none today and the working set grows".
    Flag: none (memory_growth).
    """
    v = rows.v
    unset = v["growing"] & np.isnan(rows.num("memory_limit_bytes")) & (rows.ps("memory_growth_limit") == "unset")
    lim = np.where(unset, np.nan, v["mem_lim"])
    v.update(mem_lim=lim, mem_action=np.where(unset, "keep_unset", np.where(np.isnan(lim), "none", "set")).astype(object))
    rows.reason(v["rec"] & unset, "memory limit left unset: none today and the working set grows")
