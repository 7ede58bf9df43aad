"""The backtest: recommend from the earlier part of the window, replay the last days against it.

Had you applied the recommendation computed without the last ``test_days`` days, what would those
days have looked like? Per container and per policy (and for today's requests, the reference):

- ``cpu_share_over_request``: share of the test days' pod-steps (every replica's 5-minute CPU) above
  the CPU request: what the scheduler did not reserve;
- ``cpu_share_at_limit``: share of pod-steps at or above the CPU limit (throttled; 0 without a limit);
- ``memory_peak_bytes`` against the memory limit: ``predicted_oom`` when the largest raw working-set
  sample of the test days reaches it (``predicted_oom_day``: the first such day); ``oom_kills``: the kills
  observed in the test days under today's limits, and ``memory_censored`` when there were any (its peak
  there is a lower bound: whether a higher limit holds cannot be replayed, and a kill between two scrapes
  leaves no sample at the limit, so today's replay can predict fewer kills than happened);
- ``cpu_slack`` / ``memory_slack``: (request - usage) / request averaged over the pod-steps, the
  relative slack Google's Autopilot paper reports (23 % for Autopiloted jobs, 46 % for manual limits);
- a JVM's heap (``heap_bytes``): ``predicted_heap_oom`` when the test days' live set outgrows it (a Java
  OutOfMemoryError, not a container OOM kill); where the recommendation changes the heap, the container's
  demand is that heap plus the test days' non-heap peak (heap-aware, ``memory_heap_aware``).

Everything comes from the snapshot's per-pod histograms and daily rows (statistics.py): no query.
Limits of the replay, said in the report: the test days were themselves collected under today's
limits, so a throttled or OOM-killed container's test usage is censored the same way; the training
part's restarts and CFS throttling are the window's (they have no daily breakdown).
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..memory import release
from ..sketch import (MAX_BUCKET, bucket_value, cell_sums_in_ranges, daily_statistics, factorize, group_sum,
                      usage_statistics)
from ..usage_stats import CONTAINER_KEY, DAY_SECONDS, RESOURCES
from .cells import COLUMNS, chunks, sum_over_days

KEYS = list(CONTAINER_KEY)  # pandas reads a tuple as one key
TEST_DAYS = 7
OVER_REQUEST_SHARE = 0.05  # a container above its request more often than this is counted in the rollups
_TODAY = "today"
_NB = MAX_BUCKET + 1


def can_backtest(snapshot, test_days: int = TEST_DAYS, min_train_days: float = 3.0) -> str:
    """'' when the snapshot holds enough to backtest, else why not."""
    if "usage_histograms" in (snapshot.meta.get("tables_not_loaded") or []):
        return ("skipped for a fleet report, which does not load the per-pod tables (usage_histograms, usage_daily); "
                "run `rightsize backtest` on a cluster's snapshot")
    if not snapshot.rows("usage_histograms"):
        return "the snapshot has no per-pod histograms (collected before they existed, or no usage)"
    window = snapshot.window_hours() or 0.0
    hours = min([snapshot.observed_hours(c) or 0.0 for c in snapshot.meta.get("clusters") or []] or [window])
    if hours < (test_days + min_train_days) * 24:
        what = f"the window ({window / 24:.1f} d)" if hours >= window else f"the data ({hours / 24:.1f} d of the {window / 24:.1f} d window)"
        return f"{what} is shorter than {test_days} d to replay plus {min_train_days:g} d to learn from"
    return ""


def split(snapshot, test_days: int = TEST_DAYS, keep_days: bool = False, names: bool = True, check_days: int = 0):
    """(training snapshot, TestDays): the training snapshot's usage is recomputed from the days before the
    last ``test_days`` (its window ends there), its runtimes' hours are those days'; the test days are
    reduced for the replay. Both are left in the snapshots' caches for the recommendations' self-check
    (rules/selfcheck.py): the test days as ``snapshot``'s last ``test_days``, and with ``check_days`` the
    training snapshot's own last ``check_days`` (all its days unless ``keep_days``).

    The histogram table is streamed (Snapshot.batches: 100 M rows at 20,000 containers are never held)
    and summed over days (cells.sum_over_days): per pod for the training part (per pod and day with
    ``keep_days``, which a decayed statistic needs), per container for the test part. The training
    snapshot's histograms are those sums (without a day column unless ``keep_days``, and without the
    container and pod names unless ``names``: only a policy asking for a statistic the usage table does
    not carry reads them again)."""
    from ..snapshot import Snapshot

    end = pd.Timestamp(snapshot.meta["window_end"])
    cut = end - pd.Timedelta(seconds=test_days * DAY_SECONDS)
    sums = sum_over_days(snapshot.batches("usage_histograms", COLUMNS), cut, keep_days, names)
    release()  # the stream's running sums, freed: not under the peak of what follows
    train_h = sums.train
    daily, hours = snapshot.tables["usage_daily"], snapshot.tables["runtime_hourly"]
    in_test_d, in_test_r = daily["day"] >= cut, hours["hour"] >= cut
    train_d, test_d = daily[~in_test_d].reset_index(drop=True), daily[in_test_d].reset_index(drop=True)
    # the test days first: a recommendation of ``snapshot`` under way in another thread waits for them
    test = TestDays.of(sums.test, test_d, hours[in_test_r].reset_index(drop=True), ids=sums.test_ids)
    sums.test, sums.test_ids, test_d = None, (), None  # reduced into ``test``: not held under the training statistics
    _publish(snapshot, ("last_days", test_days), test)
    usage = _training_usage(snapshot, train_h, train_d, sums.ids)
    release()
    tables = {**snapshot.tables, "usage": usage, "usage_histograms": train_h, "usage_daily": train_d,
              "runtime_hourly": hours[~in_test_r].reset_index(drop=True)}
    meta = {**snapshot.meta, "window_end": cut.isoformat()}
    train = Snapshot(tables=tables, meta=meta)
    if check_days:
        since = cut - pd.Timedelta(seconds=check_days * DAY_SECONDS)
        recent = (train_h["day"] >= since).to_numpy() if "day" in train_h else None  # None: every training day
        hist, group = (train_h, sums.ids.group) if recent is None else (train_h[recent], sums.ids.group[recent])  # no copy of all
        train.cache[("last_days", check_days)] = TestDays.of(
            hist, train_d[train_d["day"] >= since].reset_index(drop=True), ids=(group, sums.ids.groups))
    return train, test


def _publish(snapshot, key, value) -> None:
    """Leave ``value`` in the snapshot's cache under ``key``, and hand it to whoever waits for it there (a Future
    put there by analysis.analyze while this runs in its worker thread)."""
    waiting = snapshot.cache.get(key)
    snapshot.cache[key] = value
    if isinstance(waiting, Future):
        waiting.set_result(value)


def last_days(snapshot, days: int) -> "TestDays | None":
    """The snapshot's last ``days`` days reduced for a replay (as :func:`split`'s test days): left in the
    snapshot's cache by split (waited for while a split in another thread makes them: a Future there), else
    computed (one pass over the histograms, the earlier days' cells not summed) and cached. None when its
    per-pod histograms were not loaded or are empty."""
    key = ("last_days", days)
    waiting = snapshot.cache.get(key)
    if isinstance(waiting, Future) and waiting.result() is None:  # None: that split did not run (it cannot backtest)
        del snapshot.cache[key]
    if key not in snapshot.cache:
        if "usage_histograms" in (snapshot.meta.get("tables_not_loaded") or []) or not snapshot.rows("usage_histograms"):
            return None
        cut = pd.Timestamp(snapshot.meta["window_end"]) - pd.Timedelta(seconds=days * DAY_SECONDS)
        daily = snapshot.tables["usage_daily"]
        sums = sum_over_days(snapshot.batches("usage_histograms", COLUMNS), cut, train=False)
        snapshot.cache[key] = TestDays.of(sums.test, daily[daily["day"] >= cut].reset_index(drop=True), ids=sums.test_ids)
    return snapshot.cache[key]


def _training_usage(snapshot, hist: pd.DataFrame, daily: pd.DataFrame, ids=None) -> pd.DataFrame:
    """The usage table of the training days: statistics recomputed, OOM kills of those days; restarts and
    CFS throttling are the window's (no daily breakdown). With ``ids`` (cells.sum_over_days) the
    histogram statistics are computed a range of containers at a time (cells.chunks)."""
    step = float(snapshot.meta.get("step_seconds") or 300)
    if ids is None:
        usage = usage_statistics(hist, daily, step)
    else:
        parts = _two_at_a_time(lambda h, i: usage_statistics(h, daily.iloc[0:0], step, ids=i), chunks(hist, ids))
        usage = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        idx = pd.MultiIndex.from_frame(usage[KEYS])
        usage = usage.assign(**_aligned(daily_statistics(daily, KEYS), idx))
    window = snapshot.tables["usage"].set_index(KEYS)
    idx = pd.MultiIndex.from_frame(usage[KEYS])
    cols = ("restarts", "cpu_throttled_ratio", "cpu_throttled_seconds")
    found = _aligned(window[[c for c in cols if c in window]], idx)
    usage = usage.assign(**{c: found.get(c, np.nan) for c in cols})
    kills = daily.groupby(KEYS, observed=True)["oom_kills"].sum(min_count=1)
    usage["oom_kills"] = _aligned(kills.to_frame(), idx)["oom_kills"]
    return usage


def _aligned(table: pd.DataFrame, idx: pd.MultiIndex) -> dict:
    """Each column of ``table`` (indexed by KEYS, one row a container) for the containers of ``idx``, as floats
    (NaN where it has none): one alignment of the table, not a lookup of tuples per column."""
    rows = table.index.get_indexer(idx)
    return {c: np.where(rows >= 0, table[c].to_numpy(dtype=float, na_value=np.nan)[np.maximum(rows, 0)], np.nan)
            if len(table) else np.full(len(idx), np.nan) for c in table.columns}


def _two_at_a_time(fn, items) -> list:
    """[fn(*item) for item in items], two items at once: one in a helper thread, the next in this one (numpy's
    kernels release the GIL; the analysis' other thread has often finished by then). At most two items are
    held at once, so the working set is two chunks', not all of them."""
    out = []
    with ThreadPoolExecutor(1, thread_name_prefix="chunk") as pool:
        items = iter(items)
        for first in items:
            helper = pool.submit(fn, *first)
            second = next(items, None)
            mine = fn(*second) if second is not None else None
            out.append(helper.result())
            if second is not None:
                out.append(mine)
    return out


# --- the replay ----------------------------------------------------------------------------------------

@dataclass
class TestDays:
    """The test days reduced once for every policy replayed against them: per container (an integer id,
    ``keys`` the id -> KEYS table), each resource's pooled pod-step histogram as cumulative
    counts over its buckets, and the daily figures (mean usage, pod-steps, memory peak, OOM kills).
    A replay then costs one lookup per container and policy, never a merge of the histogram rows. ``runtime``:
    the test days' runtime_hourly rows (a JVM's live set and non-heap there)."""

    keys: pd.DataFrame
    cells: dict  # resource -> (code = id x buckets + bucket, sorted; counts of the cells before each one, per id its total)
    daily: pd.DataFrame  # indexed by id
    day_peaks: pd.DataFrame  # id, day, memory_max_bytes: each container's largest raw sample of each test day
    runtime: pd.DataFrame | None = None  # the test days' runtime_hourly rows (a JVM's live set and non-heap there)
    runtime_ids: np.ndarray | None = None  # the id of each of ``runtime``'s rows (joined on it, not on the names)

    @classmethod
    def of(cls, hist: pd.DataFrame, daily: pd.DataFrame, runtime: pd.DataFrame | None = None, ids=None) -> "TestDays":
        """``ids``: (container id per row of ``hist``, the id -> KEYS table) when ``hist`` has no names."""
        cid_h, keys = ids if ids is not None else factorize(hist, KEYS)
        cid_h = np.asarray(cid_h, dtype=np.int32 if len(keys) < 2**31 else np.int64)
        cid_d, keys = _ids_in(daily, keys)
        cid_r, keys = _ids_in(runtime, keys) if runtime is not None else (None, keys)
        if runtime is not None:  # what the replay reads of it
            runtime = runtime[[c for c in ["hour", *_RUNTIME_PEAKS] if c in runtime]]
        pod = (hist["basis"] == "pod").to_numpy() if "basis" in hist else None  # None: the reduced test days (pod only)
        cells = {}
        for res in RESOURCES:
            mine = (hist["resource"] == res).to_numpy()
            mine = mine & pod if pod is not None else mine
            uniq, counts = cell_sums_in_ranges(cid_h, hist["bucket"].to_numpy(), hist["count"].to_numpy(), mine, len(keys))
            cells[res] = (uniq, np.concatenate([[0.0], np.cumsum(counts)]), np.bincount(uniq // _NB, weights=counts,
                                                                                           minlength=len(keys)))
        n = len(keys)
        per = pd.DataFrame(index=np.arange(n))
        for res, unit in (("cpu", "cores"), ("memory", "bytes")):
            samples = np.bincount(cid_d, weights=daily[f"{res}_samples"].to_numpy(dtype=float), minlength=n)
            used = group_sum(cid_d, (daily[f"{res}_mean_{unit}"] * daily[f"{res}_samples"]).to_numpy(dtype=float), n)
            with np.errstate(divide="ignore", invalid="ignore"):
                per[f"{res}_mean_{unit}"] = np.where(samples > 0, used / samples, np.nan)
        peak = np.full(n, -np.inf)
        np.fmax.at(peak, cid_d, daily["memory_max_bytes"].to_numpy(dtype=float))
        per["memory_peak_bytes"] = np.where(np.isinf(peak), np.nan, peak)
        kills = daily["oom_kills"].to_numpy(dtype=float)
        counted = np.bincount(cid_d, weights=~np.isnan(kills), minlength=n)
        per["oom_kills"] = np.where(counted > 0, np.bincount(cid_d, weights=np.nan_to_num(kills), minlength=n), np.nan)
        days = pd.DataFrame({"id": cid_d, "day": daily["day"].array, "memory_max_bytes": daily["memory_max_bytes"].to_numpy(dtype=float)})
        return cls(keys, cells, per, days.groupby(["id", "day"], as_index=False)["memory_max_bytes"].max(), runtime, cid_r)

    def first_day_at(self, ids: np.ndarray, limit: np.ndarray) -> pd.Series:
        """Per row, the first test day whose largest raw working-set sample reaches ``limit`` (NaT: none)."""
        rows = pd.DataFrame({"id": ids, "_limit": limit, "_row": np.arange(len(ids))})
        hit = self.day_peaks.merge(rows[rows["id"] >= 0], on="id")
        first = hit[hit["memory_max_bytes"] >= hit["_limit"]].groupby("_row")["day"].min()
        return pd.Series(pd.to_datetime(first.reindex(range(len(ids))).to_numpy(), utc=True))

    def ids(self, settings: pd.DataFrame) -> np.ndarray:
        """The id of each settings row's container (-1 when the test days have none of it)."""
        return _lookup(settings, self.keys)

    def lowest_limit(self, ids: np.ndarray, resource: str, share) -> np.ndarray:
        """Per row, the smallest limit (cores or bytes, a bucket's representative value) that the pooled
        pod-steps reach at most ``share`` of the time (counted as :meth:`share_above` counts, not strict);
        NaN without steps."""
        code, before, total = self.cells[resource]
        known = (ids >= 0) & (len(total) > 0)
        safe = np.where(known, ids, 0)
        n = np.where(known, total[safe] if len(total) else 0.0, 0.0)
        start, end = np.searchsorted(code, safe * _NB), np.searchsorted(code, (safe + 1) * _NB)
        # the first cell below which at least (1 - share) of the steps lie: those at or above it are at most share
        k = np.minimum(np.searchsorted(before, before[start] + (1.0 - np.asarray(share, dtype=float)) * n - 1e-9), end)
        if not len(code):
            return np.full(len(ids), np.nan)
        last = code[np.maximum(end - 1, 0)] % _NB
        bucket = np.where(k < end, code[np.minimum(k, len(code) - 1)] % _NB, last + 1)
        return np.where(known & (n > 0), bucket_value(bucket, resource), np.nan)

    def share_above(self, ids: np.ndarray, resource: str, threshold: np.ndarray, strict: bool):
        """(share of the pooled pod-steps whose bucket lies above ``threshold``, pod-steps) per row;
        read to the sketch's resolution (a bucket counts when its representative value is above; with
        ``strict`` False, at or above)."""
        code, before, total = self.cells[resource]
        known = ids >= 0
        n = np.where(known, total[np.maximum(ids, 0)] if len(total) else 0.0, 0.0)
        t = np.nan_to_num(np.asarray(threshold, dtype=float), nan=np.inf)
        first = np.searchsorted(_values(resource), t, side="right" if strict else "left")  # first bucket counted
        start = np.searchsorted(code, np.maximum(ids, 0) * _NB)
        cut = np.searchsorted(code, np.maximum(ids, 0) * _NB + first)
        hit = np.where(known, n - (before[cut] - before[start]), 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(n > 0, hit / n, np.nan), n


_RUNTIME_PEAKS = ["live_set_max_bytes", "heap_used_min_bytes", "non_heap_max_bytes", "non_heap_pools_max_bytes"]


def _lookup(frame: pd.DataFrame, keys: pd.DataFrame) -> np.ndarray:
    """The id (row of the id -> KEYS table ``keys``) of each of ``frame``'s rows' container, -1 where it has none."""
    if frame.empty:
        return np.zeros(0, dtype=np.int64)
    found = frame[KEYS].astype(str).merge(keys.assign(_id=np.arange(len(keys))), on=KEYS, how="left")["_id"]
    return found.fillna(-1).to_numpy(dtype=np.int64)


def _ids_in(frame: pd.DataFrame, keys: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    """(the id of each of ``frame``'s rows under the id -> KEYS table ``keys``, int64; ``keys`` with a new id
    appended for each container of ``frame`` it lacks, e.g. one with daily rows but no histogram cells)."""
    cid, fkeys = factorize(frame, KEYS)
    known = fkeys.merge(keys.assign(_id=np.arange(len(keys))), on=KEYS, how="left")["_id"].to_numpy(dtype=float, copy=True)
    new = np.isnan(known)
    known[new] = len(keys) + np.arange(new.sum())
    return known.astype(np.int64)[cid], pd.concat([keys, fkeys[new]], ignore_index=True)


def _values(resource: str) -> np.ndarray:
    """The representative value of every bucket, ascending."""
    return bucket_value(np.arange(_NB), resource)


def replay(settings: pd.DataFrame, hist: pd.DataFrame | TestDays, daily: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per container of ``settings`` (KEYS + cpu_request_cores, cpu_limit_cores,
    memory_request_bytes, memory_limit_bytes, optionally heap_bytes and heap_changed; NaN = unset) the test
    days' figures (module docstring). ``hist`` and ``daily``: the test days' rows, or ``hist`` the TestDays
    already reduced from them (with their runtime hours, a JVM's heap is replayed too: :func:`heap_aware`)."""
    test = hist if isinstance(hist, TestDays) else TestDays.of(hist, daily)
    ids = test.ids(settings)
    per = test.daily.reindex(ids)  # -1: a container without test days gets NaN everywhere
    out = settings.copy()
    for res, unit in (("cpu", "cores"), ("memory", "bytes")):
        req, lim = settings[f"{res}_request_{unit}"], settings[f"{res}_limit_{unit}"]
        over, n = test.share_above(ids, res, req.to_numpy(dtype=float), strict=True)
        out[f"{res}_share_over_request"] = np.where(req.notna(), over, np.nan)
        at, _ = test.share_above(ids, res, lim.to_numpy(dtype=float), strict=False)
        out[f"{res}_share_at_limit"] = np.where(lim.notna(), at, 0.0)
        mean = per[f"{res}_mean_{unit}"].to_numpy(dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"{res}_slack"] = np.where(req > 0, 1.0 - mean / req.to_numpy(dtype=float), np.nan)
        out[f"{res}_mean_{unit}"] = mean
        out[f"{res}_pod_steps"] = n
    peak = per["memory_peak_bytes"].to_numpy(dtype=float)
    out["memory_peak_bytes"] = peak
    limit = settings["memory_limit_bytes"].to_numpy(dtype=float)
    out["predicted_oom"] = ~np.isnan(limit) & (np.nan_to_num(peak, nan=-1.0) >= limit)
    out["predicted_oom_day"] = test.first_day_at(ids, limit).set_axis(out.index)
    # OOM-killed in the test days under today's limit: their peak there is a lower bound, so the replay
    # cannot tell whether a higher limit would have held
    out["oom_kills"] = per["oom_kills"].to_numpy(dtype=float)
    out["memory_censored"] = np.nan_to_num(out["oom_kills"].to_numpy(dtype=float)) > 0
    days = test.day_peaks["day"].drop_duplicates().sort_values().array  # sorted as datetimes, not Timestamp objects
    return heap_aware(out, settings, test.runtime, days, ids, test.runtime_ids)


def heap_aware(out: pd.DataFrame, settings: pd.DataFrame, runtime: pd.DataFrame | None, days=(), ids=None,
               runtime_ids=None) -> pd.DataFrame:
    """A JVM's replay with the heap it would run with (``heap_bytes``). A Java OutOfMemoryError is predicted when
    the test days' live set (live data, else the heap's troughs) outgrows the heap: the heap fills, not the
    container. Where the heap changes (``heap_changed``) the working set was measured under another heap, so
    the container's demand is the heap at its maximum plus the test days' non-heap peak, a container OOM kill
    is predicted when that reaches the limit (on the first test day whose hour first does), and the
    working-set slack and shares are unknown (NaN). ``ids``, ``runtime_ids``: each settings row's and runtime hour's
    container id (TestDays'), the hours joined on them (not on names: a million hours at 20,000 containers); None:
    found here from the names."""
    heap = settings["heap_bytes"].to_numpy(dtype=float) if "heap_bytes" in settings else np.full(len(settings), np.nan)
    changed = settings["heap_changed"].to_numpy(dtype=bool) if "heap_changed" in settings else np.zeros(len(settings), bool)
    out["heap_bytes"] = heap
    out["predicted_heap_oom"] = False
    out["memory_heap_aware"] = False
    if runtime is None or runtime.empty or np.isnan(heap).all():
        return out
    if ids is None:
        runtime_ids, keys = factorize(runtime, KEYS)
        ids = _lookup(settings, keys)
    peaks = runtime[_RUNTIME_PEAKS].groupby(runtime_ids).max()
    per = peaks.reindex(ids)  # -1 (no such container in the test days): NaN
    live = per["live_set_max_bytes"].fillna(per["heap_used_min_bytes"]).to_numpy(dtype=float)
    non_heap = per["non_heap_max_bytes"].fillna(per["non_heap_pools_max_bytes"]).to_numpy(dtype=float)
    out["predicted_heap_oom"] = ~np.isnan(heap) & (np.nan_to_num(live, nan=-1.0) > heap)
    aware = changed & ~np.isnan(heap) & ~np.isnan(non_heap)
    demand = heap + np.fmax(non_heap, 0.0)
    limit = settings["memory_limit_bytes"].to_numpy(dtype=float)
    out["memory_peak_bytes"] = np.where(aware, demand, out["memory_peak_bytes"])
    out["predicted_oom"] = np.where(aware, ~np.isnan(limit) & (demand >= limit), out["predicted_oom"])
    first = _first_day(runtime, runtime_ids, ids, heap, limit, aware, days)
    out["predicted_oom_day"] = out["predicted_oom_day"].where(~aware, first.set_axis(settings.index))
    for col in ("memory_share_over_request", "memory_share_at_limit", "memory_slack", "memory_mean_bytes"):
        out[col] = np.where(aware, np.nan, out[col])
    out["memory_heap_aware"] = aware
    return out


def _first_day(runtime: pd.DataFrame, runtime_ids: np.ndarray, ids: np.ndarray, heap: np.ndarray, limit: np.ndarray,
               rows: np.ndarray, days) -> pd.Series:
    """Per settings row (of container ``ids``, ``heap`` and ``limit`` in bytes) in ``rows``, the test day (of
    ``days``, starts of the 24 h bins) of the first hour of ``runtime`` (rows of container ``runtime_ids``) whose
    non-heap peak plus ``heap`` reaches ``limit`` (NaT: none)."""
    want = pd.DataFrame({"_id": ids, "_heap": heap, "_limit": limit, "_row": np.arange(len(ids))})[rows]
    hours = pd.DataFrame({"_id": runtime_ids, "hour": runtime["hour"].array, "_non_heap": runtime["non_heap_max_bytes"].fillna(
        runtime["non_heap_pools_max_bytes"]).clip(lower=0.0).to_numpy(dtype=float)}).merge(want[want["_id"] >= 0], on="_id")
    first = hours[hours["_heap"] + hours["_non_heap"] >= hours["_limit"]].groupby("_row")["hour"].min()
    out = pd.Series(pd.NaT, index=range(len(ids)), dtype="datetime64[ns, UTC]")
    if len(first) and len(days):
        at = np.searchsorted(pd.DatetimeIndex(days).asi8, pd.DatetimeIndex(first.to_numpy()).asi8, side="right") - 1
        out.loc[first.index] = pd.DatetimeIndex(days)[np.maximum(at, 0)]
    return out


# --- policies side by side ------------------------------------------------------------------------------

def settings_of(recommendations: pd.DataFrame) -> pd.DataFrame:
    """What a recommendation would set: recommended values where it has them, today's elsewhere (no
    recommendation keeps what is there; a CPU limit left unset or removed is no limit)."""
    r = recommendations
    out = r[KEYS].copy()
    for res, unit in (("cpu", "cores"), ("memory", "bytes")):
        for kind in ("request", "limit"):
            cur, new = r[f"{res}_{kind}_{unit}_current"], r[f"{res}_{kind}_{unit}_recommended"]
            out[f"{res}_{kind}_{unit}"] = new.where(r["status"].isin(["change", "keep"]) & new.notna(), cur)
    gone = r["cpu_limit_action"].isin(["remove", "keep_unset"]) & r["status"].isin(["change", "keep"])
    out.loc[gone, "cpu_limit_cores"] = np.nan
    if "heap_bytes_current" in r:  # the heap a JVM runs with: the patched one (an -Xmx, or a share of the new limit)
        applied = r["status"].isin(["change", "keep"]) & r["runtime_setting_action"].isin(["patch", "follows_limit"])
        now, jvm = r["heap_bytes_current"], r["runtime"] == "jvm"
        out["heap_bytes"] = r["heap_bytes_recommended"].where(applied & jvm, now).where(jvm)
        out["heap_changed"] = (out["heap_bytes"] - now).abs().fillna(0) >= 2**20
    return out


def today_settings(recommendations: pd.DataFrame) -> pd.DataFrame:
    """Today's requests and limits of the same containers."""
    out = recommendations[KEYS].copy()
    for res, unit in (("cpu", "cores"), ("memory", "bytes")):
        for kind in ("request", "limit"):
            out[f"{res}_{kind}_{unit}"] = recommendations[f"{res}_{kind}_{unit}_current"]
    if "heap_bytes_current" in recommendations:
        out["heap_bytes"] = recommendations["heap_bytes_current"].where(recommendations["runtime"] == "jvm")
        out["heap_changed"] = False
    return out


def compare(recommendations: dict[str, pd.DataFrame], test: TestDays) -> pd.DataFrame:
    """One replay per policy label (recommendations made from the training days) plus "today", stacked
    with a ``policy`` column; only containers with usage in the test days (reduced once in ``test``: each
    policy's replay is a lookup)."""
    first = next(iter(recommendations.values()))
    runs = {_TODAY: today_settings(first), **{label: settings_of(r) for label, r in recommendations.items()}}
    frames = []
    for label, settings in runs.items():
        frame = replay(settings, test)
        frames.append(frame.assign(policy=label)[["policy"] + list(frame.columns)])
    out = pd.concat(frames, ignore_index=True)
    return out[out["cpu_pod_steps"].fillna(0) + out["memory_pod_steps"].fillna(0) > 0].reset_index(drop=True)


def rollup(bt: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Per group and policy: containers, request-weighted slack (CPU, memory: sum over containers of
    (request - mean usage) x pod-steps / sum of request x pod-steps), predicted OOM kills and Java
    OutOfMemoryErrors, and containers above their CPU request more than OVER_REQUEST_SHARE of the time."""
    keys = ["policy"] + list(by)
    df = bt.assign(
        _cpu_req=bt["cpu_request_cores"] * bt["cpu_pod_steps"], _cpu_use=bt["cpu_mean_cores"] * bt["cpu_pod_steps"],
        _mem_req=bt["memory_request_bytes"] * bt["memory_pod_steps"], _mem_use=bt["memory_mean_bytes"] * bt["memory_pod_steps"],
        _over=bt["cpu_share_over_request"] > OVER_REQUEST_SHARE)
    known_cpu, known_mem = df["cpu_slack"].notna(), df["memory_slack"].notna()
    df["_cpu_req"], df["_cpu_use"] = df["_cpu_req"].where(known_cpu, 0.0), df["_cpu_use"].where(known_cpu, 0.0)
    df["_mem_req"], df["_mem_use"] = df["_mem_req"].where(known_mem, 0.0), df["_mem_use"].where(known_mem, 0.0)
    if "predicted_heap_oom" not in df:
        df["predicted_heap_oom"] = False
    g = df.groupby(keys, sort=False, observed=True)
    out = g.agg(containers=("cpu_slack", "size"), predicted_ooms=("predicted_oom", "sum"), over_request=("_over", "sum"),
                censored=("memory_censored", "sum"), predicted_heap_ooms=("predicted_heap_oom", "sum"),
                _cr=("_cpu_req", "sum"), _cu=("_cpu_use", "sum"), _mr=("_mem_req", "sum"), _mu=("_mem_use", "sum"))
    with np.errstate(divide="ignore", invalid="ignore"):
        out["cpu_slack"] = np.where(out["_cr"] > 0, 1 - out["_cu"] / out["_cr"], np.nan)
        out["memory_slack"] = np.where(out["_mr"] > 0, 1 - out["_mu"] / out["_mr"], np.nan)
    out = out.drop(columns=["_cr", "_cu", "_mr", "_mu"]).reset_index()
    return out.astype({"containers": "int64", "predicted_ooms": "int64", "over_request": "int64", "censored": "int64",
                       "predicted_heap_ooms": "int64"})


def by_namespace(bt: pd.DataFrame) -> pd.DataFrame:
    """:func:`rollup` per cluster and namespace, "today" first within each namespace (as every view shows it)."""
    by = rollup(bt, ["cluster", "namespace"])
    return by.assign(_today=by["policy"] != "today").sort_values(["cluster", "namespace", "_today"], kind="stable").drop(columns="_today")


def predicted_ooms(bt: pd.DataFrame) -> pd.DataFrame:
    """The predicted OOM kills, named: policy, the container, the first day its peak reaches the limit, the
    limit and the peak (bytes), and the kills observed under today's limits; by policy, then day."""
    cols = ["policy"] + KEYS + ["predicted_oom_day", "memory_limit_bytes", "memory_peak_bytes", "oom_kills"]
    rows = bt[bt["predicted_oom"].astype(bool)][cols]
    return rows.sort_values(["policy", "predicted_oom_day"] + KEYS, kind="stable").reset_index(drop=True)


def observed_kills(bt: pd.DataFrame) -> pd.DataFrame:
    """The containers OOM-killed in the test days (under today's limits), with ``predicted``: whether
    replaying today's limits predicts a kill for them (a kill between two scrapes leaves no sample at the
    limit, so the replay can miss it)."""
    today = bt[bt["policy"] == _TODAY]
    killed = today[today["oom_kills"].fillna(0) > 0]
    return killed[KEYS + ["oom_kills", "predicted_oom"]].rename(columns={"predicted_oom": "predicted"}).reset_index(drop=True)


def summary(bt: pd.DataFrame, test_days: int) -> dict:
    """summary.json's "backtest": per policy the fleet figures of :func:`rollup`."""
    fleet = rollup(bt, [])
    policies = {row["policy"]: {"containers": int(row["containers"]), "cpu_slack": _float(row["cpu_slack"]),
                                "memory_slack": _float(row["memory_slack"]), "predicted_ooms": int(row["predicted_ooms"]),
                                "predicted_heap_ooms": int(row["predicted_heap_ooms"]),
                                "oom_killed_in_test_days": int(row["censored"]),
                                "containers_over_request": int(row["over_request"])}
                for row in fleet.to_dict("records")}
    return {"test_days": test_days, "over_request_share": OVER_REQUEST_SHARE, "policies": policies}


def _float(v) -> float | None:
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else float(v)
