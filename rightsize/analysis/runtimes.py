"""Memory that knows the runtime: a JVM's heap and a Go, Node.js or .NET runtime limit move with the container's
memory limit (pure functions over the snapshot's runtimes and runtime_hourly tables; units bytes, percent).

**Statistics** (per container, over its pod-hours): the JVM's *live set* is the heap in use after a full
collection, Micrometer's ``jvm_gc_live_data_size_bytes`` where present, else the hourly minima of the heap in
use (the troughs of its saw-tooth: an upper bound of the live set, so the heap comes out larger, never
smaller); its p99 over pod-hours (the value at rank ceil(0.99 (n - 1))). *Non-heap* is the highest working set
minus the committed heap of any pod-hour (everything outside the heap: metaspace, code, thread stacks, direct
buffers, native), else, without a working set join, the non-heap pools (metaspace, code cache; threads and
native memory not counted, and the reason says so). The runtime's own maximum (heap max, GOMEMLIMIT, .NET's
available memory) is the latest hour's, largest over pods.

**The JVM** (runtime metrics present): heap = live set p99 / ``heap_target_occupancy``; an absolute heap
(-Xmx) carried by a literal variable changes in the same patch; the limit is heap + non-heap x (1 + margin),
never below heap + non-heap. A heap fixed elsewhere (command or args: a person edits them; a value unknown
from the spec) stays, and so does the floor it sets (heap + non-heap). A percentage (MaxRAMPercentage, also
the JVM's default 25) moves with the limit: the limit L gives the heap p x L >= live / occupancy and leaves
(1 - p) x L >= non-heap x (1 + margin). A live set at 90 % of today's heap or more means the heap is full:
its live set is a lower bound (the risk there is a Java OutOfMemoryError, not a container OOM kill), so the
heap is never lowered. **Spec only** (no JVM metrics): today's rule on the working set, never below the
heap maximum (absolute), or the observed peak / p (a percentage: the heap it implies still holds the most
the container ever used); the reason says non-heap is unknown.

**Go, Node.js, .NET**: the limit from the working set as today; a setting carried by a literal variable
(GOMEMLIMIT, NODE_OPTIONS' --max-old-space-size, DOTNET_GCHeapHardLimit) is set to a share of it
(``go_memory_limit_share``, ``node_heap_share``, ``dotnet_heap_share``), and the limit holds the runtime's
observed heap peak x (1 + margin) / share; a setting on the command line is left to a person (the exact
edit is given) and, unchanged, floors the limit; a percentage follows the limit.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from .. import runtimes as rt
from ..schema import CONTAINER_KEY
from .rounding import round_memory_up

MIB = float(2**20)
HEAP_FULL = 0.9  # a live set at this share of the heap maximum or more: the heap is full (censored)
MIN_HEAP = 16 * MIB
KEY = list(CONTAINER_KEY)


# --- statistics of runtime_hourly ----------------------------------------------------------------------

def statistics(hourly: pd.DataFrame) -> pd.DataFrame:
    """Per container: runtime, pod_hours, live_set_bytes (p99) and live_set_source, non_heap_bytes (peak) and
    non_heap_source, heap_used_max_bytes, metrics_max_bytes (the runtime's own maximum, latest hour)."""
    cols = ["runtime", "pod_hours", "live_set_bytes", "live_set_source", "non_heap_bytes", "non_heap_source",
            "heap_used_max_bytes", "metrics_max_bytes"]
    if hourly is None or hourly.empty:
        return pd.DataFrame(columns=KEY + cols)
    # one integer id per container (in order of first row), grouped on instead of six text keys per pod-hour
    cid = hourly.groupby(KEY, sort=False, observed=True, dropna=False).ngroup().to_numpy()
    first = np.unique(cid, return_index=True)[1]
    names = {k: hourly[k].iloc[first].astype(str).to_numpy() for k in KEY + ["runtime"]}  # categoricals, NaN: as text
    h = hourly.assign(_cid=cid)
    g = h.groupby("_cid", sort=True)
    out = g.agg(pod_hours=("hour", "size"), heap_used_max_bytes=("heap_used_max_bytes", "max"))
    out.insert(0, "runtime", names["runtime"])
    live = g["live_set_max_bytes"].quantile(0.99, interpolation="higher")
    troughs = g["heap_used_min_bytes"].quantile(0.99, interpolation="higher")
    out["live_set_bytes"] = live.where(live.notna(), troughs)
    out["live_set_source"] = np.where(live.notna(), "live data after full collections",
                                      np.where(troughs.notna(), "heap troughs (hourly minima of the heap in use)", ""))
    joined, pools = g["non_heap_max_bytes"].max(), g["non_heap_pools_max_bytes"].max()
    out["non_heap_bytes"] = joined.where(joined.notna(), pools).clip(lower=0.0)
    out["non_heap_source"] = np.where(joined.notna(), "working set minus committed heap",
                                      np.where(pools.notna(), "non-heap pools only (threads, direct buffers and native "
                                               "memory not seen)", ""))
    known = h[h["runtime_max_bytes"].notna()]
    latest = known[known["hour"] == known.groupby("_cid")["hour"].transform("max")]
    out["metrics_max_bytes"] = latest.groupby("_cid")["runtime_max_bytes"].max().reindex(out.index)
    jvm_only = out["runtime"] != "jvm"
    out.loc[jvm_only, ["live_set_bytes", "non_heap_bytes"]] = np.nan
    out.loc[jvm_only, ["live_set_source", "non_heap_source"]] = ""
    return out.reset_index(drop=True).assign(**{k: names[k] for k in KEY})[KEY + cols]


# --- one frame per recommendation row ------------------------------------------------------------------

SPEC_COLUMNS = ["runtime", "runtime_source", "memory_setting", "memory_setting_bytes", "memory_setting_percent",
                "memory_setting_where", "memory_setting_token", "initial_heap_bytes", "initial_heap_where",
                "initial_heap_token", "env_json", "uncertain", "problems"]


def frame(snapshot, keys: pd.DataFrame) -> pd.DataFrame:
    """For each row of ``keys`` (CONTAINER_KEY columns, in order): its spec (runtimes table) and statistics
    (runtime_hourly), plus ``rt`` (the runtime, '' none), ``evidence`` ('spec and metrics', 'spec only',
    'metrics only', '') and ``carrier`` of its setting: 'env' (a literal variable a patch rewrites), 'line'
    (command or args: a person edits them), 'default' (the JVM's 25 %), 'follows' (a resourceFieldRef to the
    limit), 'unknown' (a carrier of unknown value could override it), '' (no setting)."""
    spec = snapshot.tables.get("runtimes")
    spec = spec[KEY + SPEC_COLUMNS] if spec is not None and len(spec) else pd.DataFrame(columns=KEY + SPEC_COLUMNS)
    stats = statistics(snapshot.tables.get("runtime_hourly")).rename(columns={"runtime": "metrics_runtime"})
    base = keys[KEY].astype(str).reset_index(drop=True)
    f = base.merge(spec.astype({k: str for k in KEY}).drop_duplicates(KEY), on=KEY, how="left")
    f = f.merge(stats, on=KEY, how="left")
    for c in ("runtime", "metrics_runtime", "memory_setting", "memory_setting_where", "memory_setting_token", "env_json",
              "uncertain", "problems", "initial_heap_where", "initial_heap_token", "live_set_source", "non_heap_source"):
        f[c] = f[c].fillna("").astype(str)
    for c in ("memory_setting_bytes", "memory_setting_percent", "initial_heap_bytes", "pod_hours", "live_set_bytes",
              "non_heap_bytes", "heap_used_max_bytes", "metrics_max_bytes"):
        f[c] = pd.to_numeric(f[c], errors="coerce").astype(float)
    f["rt"] = np.where(f["runtime"] != "", f["runtime"], f["metrics_runtime"])
    spec_known, metrics = f["runtime"] != "", f["pod_hours"].fillna(0) > 0
    f["evidence"] = np.select([spec_known & metrics, spec_known, metrics], ["spec and metrics", "spec only", "metrics only"], "")
    where = f["memory_setting_where"]
    f["carrier"] = np.select(
        [f["uncertain"] != "", f["memory_setting"] == "", f["memory_setting_token"] == "resourceFieldRef limits.memory",
         where.str.startswith("env "), where == "JVM default", where.str.startswith(("command", "args"))],
        ["unknown", "", "follows", "env", "default", "line"], "unknown")
    f.index = keys.index
    return f


CERTAIN = ("env", "line", "default", "follows")


def share_of(f: pd.DataFrame, go: np.ndarray, node: np.ndarray, dotnet: np.ndarray) -> np.ndarray:
    """Per row, the share of the limit its runtime's setting gets (NaN for the JVM and no runtime)."""
    r = f["rt"].to_numpy()
    return np.select([r == "go", r == "node", r == "dotnet"], [go, node, dotnet], np.nan)


def percent(f: pd.DataFrame) -> np.ndarray:
    """A certain setting's share of the limit (0-1; NaN when absolute, unknown or none)."""
    certain = f["carrier"].isin(CERTAIN).to_numpy()
    return np.where(certain, f["memory_setting_percent"].to_numpy(dtype=float), np.nan) / 100


def heap_now(f: pd.DataFrame, limit: np.ndarray) -> np.ndarray:
    """The runtime's maximum today, bytes: an absolute setting (when certain), a percentage of today's limit,
    else what its metrics report (a JVM's heap max, GOMEMLIMIT, .NET's available memory); NaN unknown."""
    certain = f["carrier"].isin(CERTAIN).to_numpy()
    absolute = np.where(certain, f["memory_setting_bytes"].to_numpy(dtype=float), np.nan)
    share = percent(f) * limit
    return np.where(np.isnan(absolute), np.where(np.isnan(share), f["metrics_max_bytes"].to_numpy(dtype=float), share),
                    absolute)


# --- the JVM -------------------------------------------------------------------------------------------

def jvm_plan(f: pd.DataFrame, limit: np.ndarray, peak: np.ndarray, margin: np.ndarray, widen: np.ndarray,
             occupancy: np.ndarray) -> dict[str, np.ndarray]:
    """The JVM rule (module docstring) per row: ``measured`` (live set and non-heap known), ``spec_only``,
    ``heap_now``, ``heap_need`` (live / occupancy), ``heap_suggested`` (the heap it recommends, rounded up),
    ``heap_new`` (the heap after the patch: the suggestion where ``move``, today's elsewhere), ``full`` (the
    heap is full: never lowered), ``target`` (the limit it asks for, margin included), ``floor`` (the limit it
    never goes below) and ``percent``; NaN where the rule does not apply."""
    jvm = f["rt"].to_numpy() == "jvm"
    live, non_heap = f["live_set_bytes"].to_numpy(dtype=float), f["non_heap_bytes"].to_numpy(dtype=float)
    measured = jvm & ~np.isnan(live) & ~np.isnan(non_heap)
    pct, now = percent(f), heap_now(f, limit)
    absolute = ~np.isnan(now) & np.isnan(pct)
    with np.errstate(invalid="ignore", divide="ignore"):
        need = live / occupancy
        full = measured & absolute & (live >= HEAP_FULL * now)
        suggested = np.where(measured & absolute, round_memory_up(np.fmax(np.where(full, np.fmax(need, now), need), MIN_HEAP)), np.nan)
    move = measured & absolute & (f["carrier"].to_numpy() == "env")
    new = np.where(move, suggested, now)
    nh_margin = non_heap * (1 + margin) * widen
    with np.errstate(invalid="ignore", divide="ignore"):
        by_pct_target = np.fmax(need / pct, nh_margin / (1 - pct))
        by_pct_floor = np.fmax(need / pct, non_heap / (1 - pct))
        spec_pct_floor = peak / pct
    on_pct = measured & ~np.isnan(pct)
    target = np.where(measured & absolute, new + nh_margin, np.where(on_pct, by_pct_target, np.nan))
    floor = np.where(measured & absolute, new + non_heap, np.where(on_pct, by_pct_floor, np.nan))
    spec_only = jvm & ~measured & (absolute | ~np.isnan(pct))
    floor = np.where(spec_only, np.where(absolute, now, spec_pct_floor), floor)
    nan = np.where(jvm, 0.0, np.nan)
    return {"measured": measured, "spec_only": spec_only, "heap_now": now + nan, "heap_need": np.where(measured, need, np.nan),
            "heap_suggested": suggested, "heap_new": new + nan, "full": full, "move": move, "target": target, "floor": floor,
            "percent": pct + nan}


# --- Go, Node.js, .NET ---------------------------------------------------------------------------------

def limit_floor(f: pd.DataFrame, limit: np.ndarray, margin: np.ndarray, share: np.ndarray) -> dict[str, np.ndarray]:
    """Go, Node.js and .NET: the floor of the limit (NaN none) and whether the setting moves with it (``move``:
    a literal variable, patched to share x the new limit). The limit holds the runtime's heap peak x (1 +
    margin) at the share (or the percentage) its setting gets; a setting no patch changes floors it as it is."""
    other = np.isin(f["rt"].to_numpy(), ["go", "node", "dotnet"])
    carrier = f["carrier"].to_numpy()
    absolute = ~np.isnan(f["memory_setting_bytes"].to_numpy(dtype=float))
    move = other & absolute & (carrier == "env")
    pct = np.where(other, percent(f), np.nan)
    peak = f["heap_used_max_bytes"].to_numpy(dtype=float) * (1 + margin)
    with np.errstate(invalid="ignore", divide="ignore"):
        guard = np.where(move, peak / share, np.where(~np.isnan(pct), peak / pct, np.nan))
    fixed = np.where(other & ~move & np.isnan(pct), heap_now(f, limit), np.nan)
    return {"move": move, "floor": np.fmax(guard, fixed), "guard": guard, "fixed": fixed}


# --- the setting after, and the edit that makes it -----------------------------------------------------

ACTIONS = ("patch", "by_hand", "follows_limit", "none", "unknown")


def settings_after(f: pd.DataFrame, heap_suggested: np.ndarray, limit_new: np.ndarray, share: np.ndarray) -> pd.DataFrame:
    """Per row: heap_bytes_recommended (the runtime's maximum the recommendation sets), runtime_setting_action
    ('patch': a variable the patch rewrites; 'by_hand': command or args, the exact edit given;
    'follows_limit': a percentage; 'none'; 'unknown'; '' no runtime), runtime_setting_edit (the change as
    text) and runtime_env_json (the variables the patch sets, as JSON; '' none). ``heap_suggested``: the
    JVM's suggested heap (NaN where its rule does not size one); ``limit_new``: the recommended limit."""
    r, carrier = f["rt"].to_numpy(), f["carrier"].to_numpy()
    now = f["memory_setting_bytes"].to_numpy(dtype=float)
    follows = percent(f) * limit_new
    other = np.floor(share * limit_new / MIB) * MIB
    value = np.where(~np.isnan(follows), follows, np.where(r == "jvm", heap_suggested, other))
    differs = ~np.isnan(value) & ~np.isnan(now) & (np.abs(np.nan_to_num(value) - np.nan_to_num(now)) >= MIB)
    action = np.select([r == "", carrier == "unknown", ~np.isnan(follows), differs & (carrier == "env"),
                        differs & (carrier == "line")], ["", "unknown", "follows_limit", "patch", "by_hand"], "none")
    keep = np.isin(action, ["patch", "by_hand", "follows_limit"])
    out = pd.DataFrame({"heap_bytes_recommended": np.where(keep, value, np.nan), "runtime_setting_action": action,
                        "runtime_setting_edit": "", "runtime_env_json": ""}, index=f.index)
    changed = np.flatnonzero(np.isin(action, ["patch", "by_hand"]))  # the changed settings only: a text rewrite each
    # the few columns _edit reads, as plain dicts (a row of the whole frame walks every column, its timestamps too)
    rows = f.iloc[changed][_EDIT_COLUMNS].to_dict("records")
    edits = [_edit(row, float(value[i])) for row, i in zip(rows, changed)]
    out.iloc[changed, 2] = [e[0] for e in edits]
    out.iloc[changed, 3] = [e[1] for e in edits]
    return out


_EDIT_COLUMNS = ["memory_setting_bytes", "memory_setting", "memory_setting_token", "memory_setting_where", "initial_heap_token",
                 "initial_heap_bytes", "initial_heap_where", "env_json"]


def _edit(row: dict, value: float) -> tuple[str, str]:
    """(the exact edit as text, the patched variables as JSON or '') for one row whose setting changes; an -Xms
    above the new heap comes down with it (the JVM refuses to start otherwise)."""
    setting = rt.Setting("", row["memory_setting_bytes"], "bytes", row["memory_setting"], row["memory_setting_token"],
                         row["memory_setting_where"])
    token = rt.new_token(setting, value)
    xms = row["initial_heap_token"] if row["initial_heap_bytes"] > value else ""
    xms_new = f"-Xms{rt.format_jvm_size(value)}"
    if not setting.where.startswith("env "):
        edits = [f'{setting.where}: "{setting.token}" -> "{token}"']
        if xms:
            edits.append(f'{row["initial_heap_where"]}: "{xms}" -> "{xms_new}" (above the new heap)')
        return "; ".join(edits), ""
    env = json.loads(row["env_json"] or "{}")
    name, new = setting.where[len("env "):], dict(env)
    new[name] = rt.replace_token(env[name], setting.token, token) if setting.flag.startswith("-") else token
    by_hand = ""
    if xms and row["initial_heap_where"].startswith("env "):
        var = row["initial_heap_where"][len("env "):]
        new[var] = rt.replace_token(new[var], xms, xms_new)
    elif xms:
        by_hand = f'; by hand, {row["initial_heap_where"]}: "{xms}" -> "{xms_new}" (above the new heap)'
    changed = {k: v for k, v in new.items() if env.get(k) != v}
    return "; ".join(f'env {k}: "{env[k]}" -> "{v}"' for k, v in changed.items()) + by_hand, json.dumps(changed, sort_keys=True)


def caveats(recommendations: pd.DataFrame, meta: dict) -> list[dict]:
    """A caveat per runtime whose containers are known from their spec only: the families the collection did not
    find name what is missing (meta.json sources -> runtime_metrics)."""
    if recommendations.empty or "runtime_evidence" not in recommendations:
        return []
    found: dict[str, set] = {}
    for source in (meta.get("sources") or {}).values():
        for runtime, families in ((source or {}).get("runtime_metrics") or {}).items() if isinstance(source, dict) else ():
            found.setdefault(runtime, set()).update(families.get("found") or [])
            found.setdefault(f"{runtime}:missing", set()).update(families.get("missing") or [])
    out = []
    spec_only = recommendations[recommendations["runtime_evidence"] == "spec only"]
    for runtime, rows in spec_only.groupby("runtime", sort=True):
        names = sorted(found.get(f"{runtime}:missing", set()) - found.get(runtime, set()))
        why = (f"none of {', '.join(names)} was found in the window" if names and not found.get(runtime)
               else f"its metrics were found for other pods only ({', '.join(sorted(found.get(runtime, set()))) or 'none read'})")
        shown = ", ".join(f"{r.namespace}/{r.kind}/{r.workload}:{r.container}" for r in rows.head(5).itertuples())
        out.append({"code": "runtime_metrics_missing",
                    "message": f"{len(rows)} {runtime} container(s) have no {runtime} metrics ({why}): sized from their "
                               f"spec's setting as a floor, non-heap unknown: {shown}" + (" ..." if len(rows) > 5 else ""),
                    "affects": "runtime-aware memory (see README \"Runtimes\")"})
    return out
