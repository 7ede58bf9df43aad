"""Rules for runtimes (JVM, Go, Node.js, .NET): memory that knows its runtime (analysis/runtimes.py has the math).

``runtime_memory`` runs after memory_request: a JVM with runtime metrics gets its memory from heap + non-heap
(its working set followed the old heap), every runtime its floors; the OOM rule and the floor come after it.
``runtime_setting`` runs after status: the runtime's own setting moves with the recommended limit as it stands.
The runtimes' tables (runtimes, runtime_hourly) are read from the snapshot, like the nodes' sizes.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ...schema import CONTAINER_KEY
from .. import runtimes
from .base import Rows, rule
from .text import mem_text as _mib
from .text import pct_text as _pct

MIB = 2.0**20
SHARES = ("go_memory_limit_share", "node_heap_share", "dotnet_heap_share")


def _obj(series: pd.Series) -> np.ndarray:
    return series.to_numpy(dtype=object)


@rule(after="memory_request", reads=tuple(CONTAINER_KEY) + ("memory_limit_bytes", "mem_pre", "mem_raw", "floor_lim", "floor_req",
                                                             "peak", "max_mem", "margin", "widen", "rec"),
      writes=("mem_pre", "mem_raw", "floor_lim", "floor_req", "rt_frame", "rt_jvm", "rt_share", "rt_other", "rt_measured"),
      settings=("heap_target_occupancy", "min_memory", "memory_request_covers_max") + SHARES,
      flags=("heap_full", "runtime_spec_only", "runtime_setting_unknown"))
def runtime_memory(rows: Rows) -> None:
    """Runtimes: a JVM's heap from its live set and its memory from heap + non-heap; every runtime's floors.

    A JVM with runtime metrics (live set and non-heap known): heap = live set p99 / heap_target_occupancy
    (moved in the patch where a literal variable carries an absolute heap; else today's heap stays), memory
    = heap + non-heap x (1 + margin), never below heap + non-heap; at a percentage (MaxRAMPercentage, the
    JVM's default 25) the limit holds live / occupancy / p and non-heap x (1 + margin) / (1 - p). A JVM known
    from its spec only keeps today's rule, never below its heap maximum (or the observed peak / p). Go,
    Node.js and .NET keep today's rule with a floor: the runtime's heap peak x (1 + margin) at the share of
    the limit its setting gets, and a setting no patch changes as it is (analysis/runtimes.py).

    Reason: "JVM heap: live set p99 <v> (<source>) / occupancy <p> = <v> ...", "JVM at <setting>: ...",
    "JVM <setting> (<where>), no JVM metrics: ...", "heap full: ...", "<runtime> setting unknown: ...".
    Flag: heap_full, runtime_spec_only, runtime_setting_unknown.
    """
    v = rows.v
    f = runtimes.frame(rows.snapshot, pd.DataFrame({k: rows.column(k) for k in CONTAINER_KEY}))
    limit, margin, widen, rec = rows.num("memory_limit_bytes"), v["margin"], v["widen"], v["rec"]
    jvm = runtimes.jvm_plan(f, limit, v["peak"], margin, widen, rows.pf("heap_target_occupancy"))
    share = runtimes.share_of(f, rows.pf("go_memory_limit_share"), rows.pf("node_heap_share"), rows.pf("dotnet_heap_share"))
    other = runtimes.limit_floor(f, limit, margin, share)
    covers, measured = rows.pb("memory_request_covers_max"), jvm["measured"] & rec
    # the working set followed the old heap: a measured JVM is sized from heap + non-heap instead
    pre = np.minimum(np.maximum(jvm["target"], rows.pf("min_memory")), v["max_mem"])
    v.update(mem_pre=np.where(measured, pre, v["mem_pre"]), mem_raw=np.where(measured, jvm["target"], v["mem_raw"]),
             floor_lim=np.where(measured, jvm["floor"], v["floor_lim"]),
             floor_req=np.where(measured, np.where(covers, jvm["floor"], np.nan), v["floor_req"]))
    floor = np.where(jvm["spec_only"], jvm["floor"], other["floor"])
    v.update(floor_lim=np.fmax(v["floor_lim"], floor), floor_req=np.where(covers, np.fmax(v["floor_req"], floor), v["floor_req"]),
             rt_frame=f, rt_jvm=jvm, rt_share=share, rt_other=other, rt_measured=measured)
    _memory_reasons(rows, f, jvm, other, measured)
    rows.flag(rec & jvm["full"], "heap_full")
    spec_only = (f["evidence"].to_numpy() == "spec only") & (f["rt"].to_numpy() != "")
    rows.flag(rec & spec_only, "runtime_spec_only")
    rows.flag(rec & (f["carrier"].to_numpy() == "unknown"), "runtime_setting_unknown")


def _memory_reasons(rows: Rows, f: pd.DataFrame, jvm: dict, other: dict, measured: np.ndarray) -> None:
    v, rec = rows.v, rows.v["rec"]
    setting = _obj(f["memory_setting"] + " (" + f["memory_setting_where"] + ")")
    absolute = measured & np.isnan(jvm["percent"])
    nh = f["non_heap_bytes"].to_numpy(dtype=float)
    live_txt = ("JVM heap: live set p99 " + _mib(f["live_set_bytes"]) + " (" + f["live_set_source"] + ") / occupancy "
                + _pct(rows.pf("heap_target_occupancy")) + " = " + _mib(jvm["heap_need"]))
    rows.reason(absolute, live_txt + np.where(jvm["move"], ", -Xmx " + _mib(jvm["heap_suggested"]) + " replaces "
                                             + _obj(f["memory_setting_token"]) + " in the same patch",
                                             "; today's heap " + _obj(_mib(jvm["heap_now"])) + " stays until "
                                             + setting + " changes") + "; non-heap peak " + _mib(nh) + " ("
                + f["non_heap_source"] + "); memory = heap " + _mib(jvm["heap_new"]) + " + non-heap x (1 + "
                + _pct(v["margin"]) + ") = " + _mib(jvm["target"]) + ", never below heap + non-heap " + _mib(jvm["floor"])
                + " (instead of the working set, which followed the old heap)")
    on_pct = measured & ~np.isnan(jvm["percent"])
    rows.reason(on_pct, "JVM heap at " + _pct(jvm["percent"]) + " of the limit (" + setting + "): live set p99 "
                + _mib(f["live_set_bytes"]) + " (" + f["live_set_source"] + ") / occupancy " + _pct(rows.pf("heap_target_occupancy"))
                + " / " + _pct(jvm["percent"]) + " = " + _mib(jvm["heap_need"] / jvm["percent"]) + "; non-heap peak "
                + _mib(nh) + " x (1 + " + _pct(v["margin"]) + ") / " + _pct(1 - jvm["percent"]) + " = "
                + _mib(nh * (1 + v["margin"]) * v["widen"] / (1 - jvm["percent"])) + "; limit >= " + _mib(jvm["target"]))
    rows.reason(rec & jvm["full"], "heap full: live set p99 " + _mib(f["live_set_bytes"]) + " is " + _pct(
        f["live_set_bytes"].to_numpy(dtype=float) / jvm["heap_now"]) + " of the heap " + _mib(jvm["heap_now"])
        + ": a lower bound (the risk is a Java OutOfMemoryError, not a container OOM kill); the heap is never lowered")
    spec_only = rec & jvm["spec_only"]
    rows.reason(spec_only, "JVM " + setting + ", no JVM metrics: sized from the working set, never below "
                + np.where(np.isnan(jvm["percent"]), "the heap maximum " + _obj(_mib(jvm["heap_now"])),
                           "the observed peak / " + _obj(_pct(jvm["percent"])) + " = " + _obj(_mib(jvm["floor"])))
                + " (non-heap unknown)")
    held = rec & ~np.isnan(other["floor"]) & (other["floor"] >= np.nan_to_num(v["mem_pre"], nan=np.inf))
    rows.reason(held, f["rt"].to_numpy(dtype=object) + " memory >= " + _obj(_mib(other["floor"])) + np.where(
        ~np.isnan(other["fixed"]), " (" + setting + " stays as it is: " + _obj(_mib(other["fixed"])) + ")",
        " (its heap peak " + _obj(_mib(f["heap_used_max_bytes"])) + " x (1 + margin) at its share of the limit)"))
    rows.reason(rec & (f["carrier"].to_numpy() == "unknown"), f["rt"].to_numpy(dtype=object) + " setting unknown from the spec: "
                + _obj(f["uncertain"]) + np.where(np.isnan(f["metrics_max_bytes"].to_numpy(dtype=float)), "",
                                                   "; the metrics say " + _obj(_mib(f["metrics_max_bytes"]))))


@rule(after="status", reads=("rt_frame", "rt_jvm", "rt_share", "rt_measured", "rec", "mem_lim", "margin", "widen"),
      writes=("rt_after",), flags=("runtime_by_hand",))
def runtime_setting(rows: Rows) -> None:
    """Runtime setting: the runtime's own memory setting moves with the recommended limit.

    A JVM's heap becomes the one runtime_memory sized (-Xmx inside JAVA_TOOL_OPTIONS and the like rewritten
    with every other flag kept, an -Xms above it lowered with it); GOMEMLIMIT, NODE_OPTIONS'
    --max-old-space-size and DOTNET_GCHeapHardLimit become go_memory_limit_share, node_heap_share and
    dotnet_heap_share of the limit. A variable with a literal value is rewritten in the patch; a flag on the
    command line is left to a person with the exact edit; a percentage follows the limit by itself.

    Reason: "<setting> <old> -> <new> in the patch", "edit by hand: <where>: <old> -> <new>", "<setting>
    follows the limit: <v>", "no GOMEMLIMIT: ...".
    Flag: runtime_by_hand.
    """
    v = rows.v
    f, jvm, rec = v["rt_frame"], v["rt_jvm"], v["rec"]
    after = runtimes.settings_after(f, np.where(v["rt_measured"], jvm["heap_suggested"], np.nan), v["mem_lim"], v["rt_share"])
    action = after["runtime_setting_action"].to_numpy()
    v["rt_after"] = after
    edit = _obj(after["runtime_setting_edit"])
    rows.reason(rec & (action == "patch"), "in the same patch: " + edit)
    rows.reason(rec & (action == "by_hand"), "edit by hand (the patch cannot): " + edit + np.where(
        f["rt"].to_numpy() == "jvm", "; until then the limit keeps today's heap + non-heap, after it "
        + _obj(_mib(jvm["heap_suggested"] + f["non_heap_bytes"].to_numpy(dtype=float) * (1 + v["margin"]) * v["widen"])) + " holds",
        ""))
    rows.reason(rec & (action == "follows_limit"), _obj(f["memory_setting"]) + " follows the limit: "
                + _obj(_mib(after["heap_bytes_recommended"])))
    no_limit = rec & (f["rt"].to_numpy() == "go") & (f["memory_setting"].to_numpy() == "") & (action == "none")
    rows.reason(no_limit, "no GOMEMLIMIT: Go's collector does not know the limit; GOMEMLIMIT="
                + _obj(pd.Series(np.floor(np.nan_to_num(v["rt_share"] * v["mem_lim"]) / MIB).astype(np.int64)).astype(str))
                + "MiB (" + _obj(_pct(v["rt_share"])) + " of it) would make it collect before the limit")
    rows.flag(rec & (action == "by_hand"), "runtime_by_hand")


OUTPUTS = ("rt_frame", "rt_jvm", "rt_after", "rt_other", "rt_measured", "rec")
OUTPUT_COLUMNS = ("runtime", "runtime_evidence", "runtime_setting", "heap_bytes_current", "heap_bytes_recommended",
                  "runtime_setting_action", "runtime_setting_edit", "runtime_env_json", "live_set_bytes", "non_heap_bytes",
                  "heap_occupancy")


def output(v: dict, limit_now: np.ndarray) -> dict[str, np.ndarray]:
    """The recommendation columns of the runtimes (schema.RUNTIME_RECOMMENDATION_COLUMNS), and the
    intermediates explain prints (``_rt_*``)."""
    f, jvm, after, rec = v["rt_frame"], v["rt_jvm"], v["rt_after"], v["rec"]
    where = f["memory_setting_where"].to_numpy(dtype=object)
    setting = np.where(f["memory_setting"] == "", "", f["memory_setting"].to_numpy(dtype=object) + " (" + where + ")")
    recommended = np.where(rec, after["heap_bytes_recommended"].to_numpy(dtype=float), np.nan)
    live = f["live_set_bytes"].to_numpy(dtype=float)
    heap_after = np.where(np.isnan(recommended), jvm["heap_now"], recommended)
    with np.errstate(invalid="ignore", divide="ignore"):
        occupancy = np.where(f["rt"] == "jvm", live / heap_after, np.nan)
    return {
        "runtime": f["rt"].to_numpy(), "runtime_evidence": f["evidence"].to_numpy(), "runtime_setting": setting,
        "heap_bytes_current": runtimes.heap_now(f, limit_now) + np.where(f["rt"] == "", np.nan, 0.0),
        "heap_bytes_recommended": recommended,
        "runtime_setting_action": np.where(rec, after["runtime_setting_action"].to_numpy(), ""),
        "runtime_setting_edit": np.where(rec, after["runtime_setting_edit"].to_numpy(), ""),
        "runtime_env_json": np.where(rec, after["runtime_env_json"].to_numpy(), ""),
        "live_set_bytes": live, "non_heap_bytes": f["non_heap_bytes"].to_numpy(dtype=float), "heap_occupancy": occupancy,
        "_rt_heap_need": jvm["heap_need"], "_rt_heap_new": jvm["heap_new"], "_rt_target": jvm["target"],
        "_rt_floor": np.where(np.isnan(jvm["floor"]), v["rt_other"]["floor"], jvm["floor"]), "_rt_percent": jvm["percent"],
        "_rt_live_source": f["live_set_source"].to_numpy(), "_rt_non_heap_source": f["non_heap_source"].to_numpy(),
        "_rt_measured": v["rt_measured"], "_rt_full": jvm["full"],
    }
