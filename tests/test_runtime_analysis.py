"""Runtime-aware memory (analysis/runtimes.py) on hand-made tables: the statistics of runtime_hourly, the JVM's
heap and limit, the floors of Go, Node.js and .NET, and the exact edit of each setting, each by hand."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from rightsize.analysis import runtimes as R
from rightsize.snapshot import Snapshot

MIB, GIB = 2**20, 2**30
T0 = pd.Timestamp("2026-11-16T00:00Z")


def _key(workload, container="app", kind="Deployment"):
    return {"cluster": "c", "namespace": "ns", "kind": kind, "workload": workload, "container": container}


def _hours(workload, pod, runtime, n=10, **columns):
    rows = []
    for h in range(n):
        values = {c: (v[h] if isinstance(v, (list, np.ndarray)) else v) for c, v in columns.items()}
        rows.append({**_key(workload), "pod": pod, "runtime": runtime, "hour": T0 - pd.Timedelta(hours=h + 1), **values})
    return rows


def _spec(workload, runtime, **kw):
    base = {"runtime_source": "", "image": "", "memory_setting": "", "memory_setting_bytes": math.nan,
            "memory_setting_percent": math.nan, "memory_setting_where": "", "memory_setting_token": "",
            "initial_heap_bytes": math.nan, "initial_heap_where": "", "initial_heap_token": "", "gogc_percent": math.nan,
            "env_json": "{}", "uncertain": "", "problems": ""}
    return {**_key(workload), **base, "runtime": runtime, **kw}


def _snapshot(spec_rows, hourly_rows) -> Snapshot:
    snap = Snapshot()
    if spec_rows:
        snap.tables["runtimes"] = pd.DataFrame(spec_rows)
    if hourly_rows:
        snap.tables["runtime_hourly"] = pd.DataFrame(hourly_rows)
    return snap.validate()


def _frame(snap, workloads):
    return R.frame(snap, pd.DataFrame([_key(w) for w in workloads]))


# --- statistics -----------------------------------------------------------------------------------------

def test_live_set_is_the_p99_of_live_data_else_of_the_troughs():
    live = [500 * MIB] * 9 + [520 * MIB]  # 10 pod-hours; with a second pod 20
    rows = (_hours("a", "a-0", "jvm", live_set_max_bytes=live, heap_used_min_bytes=900 * MIB, non_heap_max_bytes=250 * MIB,
                   non_heap_pools_max_bytes=150 * MIB, runtime_max_bytes=2 * GIB)
            + _hours("a", "a-1", "jvm", live_set_max_bytes=[490 * MIB] * 10, heap_used_min_bytes=900 * MIB,
                     non_heap_max_bytes=[240 * MIB] * 9 + [270 * MIB], runtime_max_bytes=[1 * GIB] + [2 * GIB] * 9)
            + _hours("b", "b-0", "jvm", heap_used_min_bytes=list(np.arange(10) * 10 * MIB + 300 * MIB),
                     non_heap_pools_max_bytes=150 * MIB, runtime_max_bytes=GIB))
    stats = R.statistics(_snapshot([], rows).tables["runtime_hourly"]).set_index("workload")
    a, b = stats.loc["a"], stats.loc["b"]
    # 20 values, rank ceil(0.99 x 19) = 19 (the largest): 520 MiB; troughs (the heap's minima) are ignored here
    assert (a["live_set_bytes"], a["live_set_source"]) == (520 * MIB, "live data after full collections")
    assert (a["non_heap_bytes"], a["non_heap_source"]) == (270 * MIB, "working set minus committed heap")
    assert a["metrics_max_bytes"] == 2 * GIB  # the latest hour's, largest over pods (pod 1 said 1 GiB, pod 0 2 GiB)
    assert a["pod_hours"] == 20
    # no live data: the troughs' p99 (10 values, rank ceil(0.99 x 9) = 9): 390 MiB; no join: the pools, said
    assert (b["live_set_bytes"], b["live_set_source"]) == (390 * MIB, "heap troughs (hourly minima of the heap in use)")
    assert b["non_heap_bytes"] == 150 * MIB and b["non_heap_source"].startswith("non-heap pools only (threads")


def test_the_runtime_maximum_is_the_latest_hours():
    rows = _hours("a", "a-0", "jvm", runtime_max_bytes=[1 * GIB] + [3 * GIB] * 9)  # hour 0 (the latest) says 1 GiB
    stats = R.statistics(_snapshot([], rows).tables["runtime_hourly"])
    assert stats["metrics_max_bytes"].tolist() == [1 * GIB]  # the -Xmx was lowered mid-window: today's counts


def test_go_and_node_have_no_live_set_or_non_heap():
    rows = _hours("g", "g-0", "go", heap_used_max_bytes=300 * MIB, runtime_max_bytes=900 * MIB)
    s = R.statistics(_snapshot([], rows).tables["runtime_hourly"]).iloc[0]
    assert math.isnan(s["live_set_bytes"]) and math.isnan(s["non_heap_bytes"]) and s["heap_used_max_bytes"] == 300 * MIB


# --- the JVM --------------------------------------------------------------------------------------------

def _jvm_case(spec, live=512 * MIB, non_heap=300 * MIB, metrics=True):
    rows = _hours("a", "a-0", "jvm", live_set_max_bytes=live, non_heap_max_bytes=non_heap, runtime_max_bytes=2 * GIB) if metrics else []
    return _frame(_snapshot([_spec("a", "jvm", **spec)], rows), ["a"])


XMX_ENV = dict(memory_setting="-Xmx", memory_setting_bytes=2 * GIB, memory_setting_where="env JAVA_TOOL_OPTIONS",
               memory_setting_token="-Xmx2g", initial_heap_bytes=2 * GIB, initial_heap_where="env JAVA_TOOL_OPTIONS",
               initial_heap_token="-Xms2g", env_json=json.dumps({"JAVA_TOOL_OPTIONS": "-XX:+UseG1GC -Xmx2g -Xms2g -Dx=1"}))


def _plan(f, limit=2.5 * GIB, peak=2.3 * GIB):
    one = np.ones(len(f))
    return R.jvm_plan(f, limit * one, peak * one, 0.15 * one, one, 0.7 * one)


def test_heap_from_the_live_set_and_limit_from_heap_plus_non_heap_by_hand():
    p = _plan(_jvm_case(XMX_ENV))
    # heap: 512 MiB / 0.7 = 731.43 MiB -> 732 MiB (rounded up); limit: 732 + 300 x 1.15 = 1077 MiB; floor 732 + 300
    assert p["measured"][0] and p["move"][0] and not p["full"][0]
    assert p["heap_suggested"][0] == p["heap_new"][0] == 732 * MIB
    assert p["target"][0] == pytest.approx(1077 * MIB) and p["floor"][0] == 1032 * MIB


def test_a_heap_on_the_command_line_stays_and_keeps_its_floor():
    spec = {**XMX_ENV, "memory_setting_where": "args[0]", "env_json": "{}"}
    p = _plan(_jvm_case(spec))
    assert not p["move"][0] and p["heap_suggested"][0] == 732 * MIB and p["heap_new"][0] == 2 * GIB
    assert p["floor"][0] == 2 * GIB + 300 * MIB and p["target"][0] == pytest.approx(2 * GIB + 345 * MIB)


def test_a_full_heap_is_never_lowered():
    p = _plan(_jvm_case(XMX_ENV, live=1900 * MIB))  # 93 % of the 2 GiB heap: censored, the demand may be higher
    # 1900 / 0.7 = 2714.3 MiB -> 2720 MiB (16 MiB steps from 1 GiB), above today's 2 GiB
    assert p["full"][0] and p["heap_suggested"][0] == 2720 * MIB


def test_a_percentage_moves_with_the_limit():
    spec = dict(memory_setting="-XX:MaxRAMPercentage", memory_setting_percent=75.0, memory_setting_where="command[1]",
                memory_setting_token="-XX:MaxRAMPercentage=75.0")
    p = _plan(_jvm_case(spec, live=700 * MIB, non_heap=250 * MIB), limit=2 * GIB)
    # heap need 1000 MiB at 75 % -> 1333.3 MiB; non-heap 250 x 1.15 = 287.5 MiB in the other 25 % -> 1150 MiB
    assert p["target"][0] == pytest.approx(1000 / 0.75 * MIB) and p["floor"][0] == pytest.approx(1000 / 0.75 * MIB)
    assert p["heap_now"][0] == 1.5 * GIB and math.isnan(p["heap_suggested"][0])


def test_spec_only_keeps_todays_rule_with_the_heap_as_its_floor():
    p = _plan(_jvm_case(XMX_ENV, metrics=False))
    assert p["spec_only"][0] and not p["measured"][0] and p["floor"][0] == 2 * GIB and math.isnan(p["target"][0])
    default = dict(memory_setting="-XX:MaxRAMPercentage", memory_setting_percent=25.0, memory_setting_where="JVM default")
    p = _plan(_jvm_case(default, metrics=False), peak=600 * MIB)
    assert p["floor"][0] == 2400 * MIB  # the heap (25 % of the limit) must still hold the observed peak


def test_an_unknown_setting_uses_the_metrics_heap_max_and_is_not_moved():
    spec = {**XMX_ENV, "uncertain": "env _JAVA_OPTIONS (valueFrom secretKeyRef s/k)"}
    p = _plan(_jvm_case(spec))
    assert p["heap_now"][0] == 2 * GIB and not p["move"][0] and p["floor"][0] == 2 * GIB + 300 * MIB


# --- Go, Node.js, .NET ----------------------------------------------------------------------------------

def test_floors_of_the_other_runtimes():
    specs = [_spec("g", "go", memory_setting="GOMEMLIMIT", memory_setting_bytes=900 * MIB, memory_setting_where="env GOMEMLIMIT",
                   memory_setting_token="900MiB", env_json='{"GOMEMLIMIT": "900MiB"}'),
             _spec("n", "node", memory_setting="--max-old-space-size", memory_setting_bytes=4096 * MIB,
                   memory_setting_where="args[0]", memory_setting_token="--max-old-space-size=4096"),
             _spec("d", "dotnet", memory_setting="DOTNET_GCHeapHardLimitPercent", memory_setting_percent=75.0,
                   memory_setting_where="env DOTNET_GCHeapHardLimitPercent", memory_setting_token="0x4B")]
    hourly = (_hours("g", "g-0", "go", heap_used_max_bytes=360 * MIB) + _hours("n", "n-0", "node", heap_used_max_bytes=1 * GIB)
              + _hours("d", "d-0", "dotnet", heap_used_max_bytes=600 * MIB))
    f = _frame(_snapshot(specs, hourly), ["g", "n", "d"])
    share = R.share_of(f, np.full(3, 0.9), np.full(3, 0.75), np.full(3, 0.75))
    out = R.limit_floor(f, np.full(3, 2.0 * GIB), np.full(3, 0.15), share)
    assert out["move"].tolist() == [True, False, False]
    # Go: 360 MiB x 1.15 / 0.9 = 460 MiB; Node: its --max-old-space-size stays (args): 4 GiB; .NET: 600 x 1.15 / 0.75
    assert out["floor"] == pytest.approx([460 * MIB, 4096 * MIB, 920 * MIB])


def test_settings_after_with_the_exact_edits():
    specs = [_spec("a", "jvm", **XMX_ENV),
             _spec("b", "jvm", **{**XMX_ENV, "memory_setting_where": "command[1]", "initial_heap_where": "command[2]",
                                  "env_json": "{}"}),
             _spec("g", "go", memory_setting="GOMEMLIMIT", memory_setting_bytes=900 * MIB, memory_setting_where="env GOMEMLIMIT",
                   memory_setting_token="900MiB", env_json='{"GOGC": "50", "GOMEMLIMIT": "900MiB"}'),
             _spec("n", "node", memory_setting="--max-old-space-size", memory_setting_bytes=4096 * MIB,
                   memory_setting_where="env NODE_OPTIONS", memory_setting_token="--max-old-space-size=4096",
                   env_json='{"NODE_OPTIONS": "--enable-source-maps --max-old-space-size=4096"}'),
             _spec("d", "dotnet", memory_setting="DOTNET_GCHeapHardLimit", memory_setting_bytes=200 * MIB,
                   memory_setting_where="env DOTNET_GCHeapHardLimit", memory_setting_token="0xC800000",
                   env_json='{"DOTNET_GCHeapHardLimit": "0xC800000"}'),
             _spec("p", "jvm", memory_setting="-XX:MaxRAMPercentage", memory_setting_percent=75.0,
                   memory_setting_where="env JAVA_TOOL_OPTIONS", memory_setting_token="-XX:MaxRAMPercentage=75"),
             _spec("u", "go", uncertain="env GOMEMLIMIT (valueFrom configMapKeyRef c/k)"),
             _spec("x", "go")]
    names = ["a", "b", "g", "n", "d", "p", "u", "x"]
    f = _frame(_snapshot(specs, []), names)
    share = R.share_of(f, np.full(8, 0.9), np.full(8, 0.75), np.full(8, 0.75))
    heap = np.array([732, 732, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan]) * MIB
    limit = np.array([1088, 2400, 500, 1600, 512, 1344, 300, 300]) * MIB
    out = R.settings_after(f, heap, limit, share).set_index(f["workload"])
    assert out["runtime_setting_action"].to_dict() == {"a": "patch", "b": "by_hand", "g": "patch", "n": "patch", "d": "patch",
                                                       "p": "follows_limit", "u": "unknown", "x": "none"}
    a = out.loc["a"]
    assert a["runtime_setting_edit"] == 'env JAVA_TOOL_OPTIONS: "-XX:+UseG1GC -Xmx2g -Xms2g -Dx=1" -> "-XX:+UseG1GC -Xmx732m -Xms732m -Dx=1"'
    assert json.loads(a["runtime_env_json"]) == {"JAVA_TOOL_OPTIONS": "-XX:+UseG1GC -Xmx732m -Xms732m -Dx=1"}
    assert out.loc["b", "runtime_setting_edit"] == ('command[1]: "-Xmx2g" -> "-Xmx732m"; '
                                                    'command[2]: "-Xms2g" -> "-Xms732m" (above the new heap)')
    assert out.loc["b", "runtime_env_json"] == ""
    # GOMEMLIMIT = 0.9 x 500 MiB = 450 MiB (down to whole MiB); GOGC untouched and not in the patch
    assert json.loads(out.loc["g", "runtime_env_json"]) == {"GOMEMLIMIT": "450MiB"}
    assert out.loc["g", "heap_bytes_recommended"] == 450 * MIB
    assert json.loads(out.loc["n", "runtime_env_json"]) == {"NODE_OPTIONS": "--enable-source-maps --max-old-space-size=1200"}
    assert json.loads(out.loc["d", "runtime_env_json"]) == {"DOTNET_GCHeapHardLimit": "0x18000000"}  # 384 MiB
    assert out.loc["p", "heap_bytes_recommended"] == 1008 * MIB and out.loc["p", "runtime_env_json"] == ""  # 75 % of 1344
    assert math.isnan(out.loc["u", "heap_bytes_recommended"]) and out.loc["x", "runtime_setting_edit"] == ""


# --- the backtest, heap-aware ---------------------------------------------------------------------------

def test_backtest_replays_a_jvm_with_the_heap_it_would_run_with():
    from rightsize.analysis.backtest import heap_aware

    keys = [_key("a"), _key("b"), _key("c")]
    settings = pd.DataFrame([{**k, "memory_limit_bytes": lim, "heap_bytes": heap, "heap_changed": ch}
                             for k, lim, heap, ch in zip(keys, [1088 * MIB, 1088 * MIB, 2.5 * GIB],
                                                         [732 * MIB, 500 * MIB, 2 * GIB], [True, True, False])])
    out = settings[["cluster", "namespace", "kind", "workload", "container"]].assign(
        memory_peak_bytes=2.3 * GIB, predicted_oom=[True, True, False], memory_slack=-1.0, memory_share_over_request=0.9,
        memory_share_at_limit=0.5, memory_mean_bytes=2.2 * GIB, predicted_oom_day=pd.NaT)
    test_hours = (_hours("a", "a-0", "jvm", live_set_max_bytes=520 * MIB, non_heap_max_bytes=[300 * MIB] * 9 + [330 * MIB])
                  + _hours("b", "b-0", "jvm", live_set_max_bytes=520 * MIB, non_heap_max_bytes=300 * MIB)
                  + _hours("c", "c-0", "jvm", heap_used_min_bytes=[1.5 * GIB] * 9 + [2.1 * GIB], non_heap_max_bytes=300 * MIB))
    days = pd.DatetimeIndex([T0 - pd.Timedelta(days=1)])
    got = heap_aware(out, settings, _snapshot([], test_hours).tables["runtime_hourly"], days).set_index("workload")
    # a: 732 MiB heap + 330 MiB non-heap peak = 1062 MiB < 1088 MiB: no OOM kill, whatever the old working set said
    assert got.loc["a", "memory_peak_bytes"] == 1062 * MIB and not got.loc["a", "predicted_oom"]
    assert got.loc["a", "memory_heap_aware"] and math.isnan(got.loc["a", "memory_slack"])
    assert not got.loc["a", "predicted_heap_oom"] and pd.isna(got.loc["a", "predicted_oom_day"])
    # b: a 500 MiB heap for a 520 MiB live set: a Java OutOfMemoryError (not a container OOM kill: 800 MiB < limit)
    assert got.loc["b", "predicted_heap_oom"] and not got.loc["b", "predicted_oom"]
    # c: heap unchanged, so the working set stands; its troughs (2.1 GiB) outgrew its 2 GiB heap
    assert not got.loc["c", "memory_heap_aware"] and got.loc["c", "memory_peak_bytes"] == 2.3 * GIB
    assert got.loc["c", "predicted_heap_oom"] and got.loc["c", "memory_slack"] == -1.0
    # with a limit the heap plus a test hour's non-heap reaches, the OOM kill is predicted on that hour's day
    tight = settings.assign(memory_limit_bytes=[1050 * MIB, 1088 * MIB, 2.5 * GIB])
    got = heap_aware(out, tight, _snapshot([], test_hours).tables["runtime_hourly"], days).set_index("workload")
    assert got.loc["a", "predicted_oom"] and got.loc["a", "predicted_oom_day"] == days[0]


def test_runtimes_known_from_their_spec_only_are_a_caveat_naming_the_missing_families():
    recs = pd.DataFrame([{**_key("a"), "runtime": "jvm", "runtime_evidence": "spec only"},
                         {**_key("b"), "runtime": "jvm", "runtime_evidence": "spec and metrics"},
                         {**_key("g"), "runtime": "go", "runtime_evidence": "spec only"}])
    meta = {"sources": {"prometheus:c": {"runtime_metrics": {
        "jvm": {"found": ["jvm_memory_used_bytes"], "missing": ["jvm_memory_bytes_used"]},
        "go": {"found": [], "missing": ["go_memstats_heap_inuse_bytes", "go_gc_gomemlimit_bytes"]}}}, "c": {"workloads": "api"}}}
    out = {c["message"].split(" ")[1]: c["message"] for c in R.caveats(recs, meta)}
    assert set(out) == {"go", "jvm"}
    assert out["go"].startswith("1 go container(s) have no go metrics (none of go_gc_gomemlimit_bytes, "
                                "go_memstats_heap_inuse_bytes was found in the window)") and "ns/Deployment/g:app" in out["go"]
    assert "its metrics were found for other pods only (jvm_memory_used_bytes)" in out["jvm"] and "ns/Deployment/a:app" in out["jvm"]
