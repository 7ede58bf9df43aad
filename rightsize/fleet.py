"""A fleet: one report from the snapshots of many clusters, in a local folder or under an S3 prefix.

Teams with many clusters run one rightsize job per cluster, close to its Prometheus, each writing its
run folder to one place (``[report] output_dir = "s3://bucket/rightsize"``, ``layout =
"{week}/{cluster}"``), and one light job reads the week's folder:

    rightsize report --snapshot s3://bucket/rightsize/2026-W48/

Each child of that folder is a cluster's run folder (``NAME/snapshot/``) or a snapshot itself
(``NAME/meta.json``); names starting with '.' or '_' (locks, temporary uploads, the fleet report's own
``_fleet`` folder) are not clusters. The snapshots are merged into one (clusters are disjoint by
identity) and analysed as one: fleet totals, per cluster, per team, top lists across the fleet.

- The per-pod tables (``usage_histograms``, ``usage_daily``) are the bulk of a snapshot and a fleet
  report does not need them: they are not loaded (the report's backtest says it was skipped), except
  the histograms when a policy asks for a statistic the usage table does not carry (a p97, a decay).
- A cluster the fleet expects (``[fleet] clusters``, else those of the previous week's folder) with no
  complete snapshot, one whose snapshot cannot be read, and one whose window ended more than ``[fleet]
  max_age`` before the newest are listed as missing and left out; ``[thresholds]
  fail_on_missing_clusters`` turns that into exit 3.
- Windows of different lengths keep their own hours: meta.json ``coverage`` records each cluster's, and
  every average (pods, nodes, bytes per month) divides a cluster's pod-hours, node hours and traffic by them, so it
  stays its own.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Callable

import pandas as pd

from .errors import SnapshotError
from .escape import clean_text
from .schema import TABLES
from .snapshot import Snapshot, new_meta
from .storage import Location, children, has_file, location, started, store
from .usage_stats import policies_need_histograms

PER_POD_TABLES = ("usage_histograms", "usage_daily")
FLEET_REPORT = "_fleet"  # where a fleet report goes by default: not a cluster name (EKS names start with a letter or digit)
_PRICE_KEY = ["instance_type", "region", "zone", "capacity_type"]


@dataclass
class Entry:
    """One child of the fleet folder: ``snapshot`` is where its snapshot is, '' ``reason`` when usable."""

    name: str
    snapshot: Location | None
    reason: str = ""
    snap: Snapshot | None = None
    window_end: pd.Timestamp | None = None


@dataclass
class Fleet:
    root: Location
    entries: list[Entry] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)
    expected_from: str = ""  # "[fleet] clusters", or the previous week's folder


# --- where the snapshots are ---------------------------------------------------------------------------

def _children(root) -> list[str]:
    return [n for n in children(root) if not n.startswith((".", "_"))]


def is_snapshot(loc) -> bool:
    """True when ``loc`` holds a (complete) snapshot: meta.json, on S3 named by its _SUCCESS manifest."""
    return has_file(loc, "meta.json")


def _started(loc) -> bool:
    """Something was written at ``loc`` (an upload that may not have completed)."""
    return started(loc)


def discover(root) -> list[Entry]:
    """The cluster entries below ``root``: complete snapshots, and folders where one was started but is
    not complete (listed as missing with the reason)."""
    entries = []
    for name in _children(root):
        run, own = root / name / "snapshot", root / name
        if is_snapshot(run):
            entries.append(Entry(name, run))
        elif is_snapshot(own):
            entries.append(Entry(name, own))
        elif _started(run):
            entries.append(Entry(name, None, f"{run}: no complete snapshot (an upload or a run did not finish)"))
    return entries


def previous_names(root) -> tuple[list[str], str]:
    """Cluster entries of the latest earlier week folder beside ``root`` (when ``root`` is a week folder),
    and that folder."""
    from .emit.compare import WEEK_DIR, _week_names

    if not WEEK_DIR.match(root.name):
        return [], ""
    for week in sorted((w for w in _week_names(root.parent) if w < root.name), reverse=True):
        names = [e.name for e in discover(root.parent / week) if e.snapshot is not None]
        if names:
            return names, str(root.parent / week)
    return [], ""


def needs_histograms(config) -> bool:
    """A policy asks for a statistic the usage table does not carry (computed from the histograms)."""
    return policies_need_histograms(config.policies.values())


# --- reading and merging -------------------------------------------------------------------------------

def load_input(path, config=None, *, per_pod_tables: bool = False, log: Callable[[str], None] = lambda _m: None,
               when_used: bool = False) -> Snapshot:
    """The snapshot at ``path`` (or in the run folder ``path``/snapshot), or the fleet below it merged into
    one (see the module docstring). ``per_pod_tables``: load a fleet's usage_histograms and usage_daily too
    (the backtest needs them). One cluster's per-pod histograms are read when used (the backtest streams them,
    nothing else needs them whole); with ``when_used`` every table is (Snapshot.read's ``lazy``)."""
    lazy = tuple(TABLES) if when_used else PER_POD_TABLES[:1]
    loc = location(path)
    if is_snapshot(loc):
        return Snapshot.read(loc, lazy=lazy)
    if is_snapshot(loc / "snapshot"):  # one run's folder (report, snapshot/, patches/)
        return Snapshot.read(loc / "snapshot", lazy=lazy)
    entries = discover(loc)
    if not entries:
        return Snapshot.read(loc)  # its own error: no snapshot here
    skip = () if per_pod_tables else PER_POD_TABLES[1:] if config is not None and needs_histograms(config) else PER_POD_TABLES
    if config is not None and config.fleet.clusters:
        expected, expected_from = list(config.fleet.clusters), "[fleet] clusters"
    else:
        expected, expected_from = previous_names(loc)
    max_age = config.fleet.max_age if config is not None else 0.0
    fleet = Fleet(loc, entries, expected, expected_from)
    _read_entries(fleet, skip, log)
    _mark_stale(fleet, max_age)
    return merge(fleet, skip)


def _read_entries(fleet: Fleet, skip: tuple[str, ...], log) -> None:
    """Read every entry's snapshot; from S3 several at once (each is a dozen requests, latency-bound)."""
    from concurrent.futures import ThreadPoolExecutor

    todo = [e for e in fleet.entries if e.snapshot is not None]
    workers = store(fleet.root).parallel_reads
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda e: _read_entry(e, skip, log), todo))


def _read_entry(e: Entry, skip: tuple[str, ...], log) -> None:
    log(f"reading {e.snapshot}")
    try:
        e.snap = Snapshot.read(e.snapshot, skip=skip)
    except SnapshotError as exc:  # one cluster's bad snapshot is that cluster missing, not the fleet failing
        e.reason = f"unreadable: {exc}"
        return
    end = e.snap.meta.get("window_end")
    e.window_end = pd.Timestamp(end) if end else None
    if e.window_end is None:
        e.reason = f"{e.snapshot}: meta.json records no window_end"


def _mark_stale(fleet: Fleet, max_age: float) -> None:
    ends = [e.window_end for e in fleet.entries if not e.reason and e.window_end is not None]
    if not ends or not max_age:
        return
    newest = max(ends)
    for e in fleet.entries:
        if not e.reason and e.window_end is not None and (newest - e.window_end).total_seconds() > max_age:
            days = (newest - e.window_end).total_seconds() / 86400
            e.reason = (f"stale: its window ended {e.window_end.isoformat()}, {days:.1f} days before the newest "
                        f"snapshot of the fleet ([fleet] max_age)")


def merge(fleet: Fleet, skip: tuple[str, ...]) -> Snapshot:
    """One snapshot of the usable entries; meta ``fleet`` lists every cluster and the missing ones."""
    good = [e for e in fleet.entries if not e.reason]
    if not good:
        reasons = "; ".join(f"{e.name}: {e.reason}" for e in fleet.entries)
        raise SnapshotError(f"{fleet.root}: no cluster snapshot could be used ({reasons})")
    _check_disjoint(good)
    end = max(e.window_end for e in good)
    hours = max(e.snap.window_hours() or 0.0 for e in good)
    start = end - pd.Timedelta(hours=hours)
    tables = {name: _concat([e.snap.tables[name] for e in good]) for name in TABLES}
    meta = _merged_meta([e.snap.meta for e in good], start, end)
    meta["coverage"] = {c: v for e in good for c, v in _coverage(e).items()}
    tables["prices"] = _prices(tables["prices"], meta)
    meta["fleet"] = _fleet_meta(fleet, good, skip)
    if skip:
        meta["tables_not_loaded"] = sorted(skip)
    snap = Snapshot(tables=tables, meta=meta)
    lengths = sorted({round(e.snap.window_hours() or 0.0, 3) for e in good})
    if len(lengths) > 1:
        snap.warn("fleet_windows", f"the clusters' windows differ in length ({', '.join(f'{h / 24:g} d' for h in lengths)}): "
                  "each cluster's pod-hours, node hours and traffic are divided by its own hours", "fleet")
    for m in meta["fleet"]["missing"]:
        snap.warn("cluster_missing", f"cluster {m['cluster']!r} is missing from the fleet report: {m['reason']}", m["cluster"])
    return snap.validate()


def _fleet_meta(fleet: Fleet, good: list[Entry], skip: tuple[str, ...]) -> dict:
    """meta/summary.json ``fleet``: where it was read, each cluster read, each one missing and why."""
    found = {e.name for e in fleet.entries} | {c for e in good for c in _clusters_of(e)}
    clusters = [{"name": e.name, "clusters": _clusters_of(e), "snapshot": str(e.snapshot),
                 "window_end": e.window_end.isoformat(), "containers": int(len(e.snap.tables["containers"]))} for e in good]
    missing = [{"cluster": e.name, "reason": e.reason, "snapshot": str(e.snapshot or "")} for e in fleet.entries if e.reason]
    missing += [{"cluster": n, "reason": f"expected ({fleet.expected_from}) but there is no snapshot of it in {fleet.root}",
                 "snapshot": ""} for n in fleet.expected if n not in found]
    return {"root": str(fleet.root), "clusters": clusters, "missing": missing, "expected": list(fleet.expected),
            "expected_from": fleet.expected_from, "tables_not_loaded": sorted(skip)}


def _merged_meta(metas: list[dict], start: pd.Timestamp, end: pd.Timestamp) -> dict:
    """meta.json of the merged snapshot: the fleet's window, every cluster, their caveats and prices."""
    meta = new_meta(window_start=start.isoformat(), window_end=end.isoformat())
    steps = {m.get("step_seconds") for m in metas}
    meta["step_seconds"] = steps.pop() if len(steps) == 1 else None  # unknown: history is then read from hours covered
    for m in metas:
        meta["clusters"] += [c for c in m.get("clusters") or [] if c not in meta["clusters"]]
        meta["sources"].update(m.get("sources") or {})
        meta["warnings"] += [w for w in m.get("warnings") or [] if w not in meta["warnings"]]
        meta["missing_metrics"] = sorted(set(meta["missing_metrics"]) | set(m.get("missing_metrics") or []))
        for key, value in (m.get("partial") or {}).items():
            current = meta["partial"].setdefault(key, [])
            current.extend(v for v in (value if isinstance(value, list) else [value]) if v not in current)
    versions = sorted({str((m.get("versions") or {}).get("rightsize", "?")) for m in metas})
    meta["versions"] = {"rightsize": ", ".join(versions)}
    meta["pricing"] = _merged_pricing([m.get("pricing") or {} for m in metas])
    return meta


def _merged_pricing(items: list[dict]) -> dict:
    """The clusters' price records as one: every source and region, the oldest date, every note once."""
    items = [p for p in items if p]
    if not items:
        return {}
    sources = sorted({str(p.get("source", "")) for p in items} - {""})
    regions = sorted({str(r) for p in items for r in (p.get("regions") or [p.get("region")]) if r})
    notes: list[str] = []
    for p in items:
        raw = p.get("notes") or []
        notes += [n for n in (raw if isinstance(raw, list) else [raw]) if n and n not in notes]
    dates = sorted(str(p["date"]) for p in items if p.get("date"))
    return {"source": "+".join(sources), "date": dates[0] if dates else "", "region": ",".join(regions),
            "regions": regions, "notes": notes}


def _check_disjoint(good: list[Entry]) -> None:
    """SnapshotError when two snapshots claim one cluster (in meta.json or in their rows), or hold the same
    usage data under other names (a renamed copy): its containers would count twice."""
    seen: dict[str, str] = {}
    data: dict[str, str] = {}
    for e in good:
        for cluster in _clusters_of(e):
            if cluster in seen and seen[cluster] != str(e.snapshot):
                raise SnapshotError(f"cluster {clean_text(cluster)!r} is in two snapshots of the fleet: {seen[cluster]} and "
                                    f"{e.snapshot}; its containers would count twice: remove one")
            seen[cluster] = str(e.snapshot)
        usage = (e.snap.meta.get("checksums") or {}).get("usage.parquet")
        if usage and not e.snap.tables["usage"].empty:
            if usage in data:
                raise SnapshotError(f"{data[usage]} and {e.snapshot} hold the same usage data (a copy under another name); "
                                    "its containers would count twice: remove one")
            data[usage] = str(e.snapshot)


def _clusters_of(e: Entry) -> list[str]:
    """Every cluster a snapshot claims: those meta.json names and those its rows name."""
    names = set(map(str, e.snap.meta.get("clusters") or []))
    return sorted(names | set(e.snap.tables["containers"]["cluster"].astype(str)))


def _coverage(e: Entry) -> dict:
    """meta.json ``coverage`` of an entry's clusters: as collected, else its own window (a snapshot from before
    coverage was measured), so each cluster's per-hour figures keep their own hours in the merged snapshot."""
    own = dict(e.snap.meta.get("coverage") or {})
    window = {"start": e.snap.meta.get("window_start"), "end": e.snap.meta.get("window_end"), "hours": e.snap.window_hours()}
    return {c: own.get(c) or window for c in _clusters_of(e)}


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    full = [f for f in frames if len(f)]
    if not full:
        return frames[0]
    return pd.concat(full, ignore_index=True) if len(full) > 1 else full[0]


def _prices(prices: pd.DataFrame, meta: dict) -> pd.DataFrame:
    """One row per priced (type, region, zone, capacity); clusters in one region priced the same type."""
    if prices.empty:
        return prices
    firsts = prices.drop_duplicates(_PRICE_KEY)
    spread = prices.groupby(_PRICE_KEY, dropna=False)["usd_per_hour"].agg(lambda s: s.max() - s.min())
    if (spread > 1e-9).any():
        odd = spread[spread > 1e-9].index[0]
        meta["warnings"].append({"code": "fleet_prices", "affects": "prices", "message":
                                 f"clusters priced {odd[0]} in {odd[1]} differently (collected on different days or "
                                 "from different sources); the first cluster's price is used for the whole fleet"})
    return firsts.reset_index(drop=True)
