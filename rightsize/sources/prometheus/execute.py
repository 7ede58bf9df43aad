"""Running the queries: shards of namespaces, time chunks, a bounded pool, splits on failure.

Range queries are cut into time chunks of at most ``[prometheus] range_points`` points (series x
steps) and Prometheus' 11,000 steps, and namespaces are grouped into shards so that a chunk spans
at least a day where the budget allows: the server then holds one chunk's samples per query, and
rightsize one answer per worker. A task the server rejects for its sample limit or a timeout is
split (a range chunk in time first, then its namespaces) and retried; one that still fails stops
the run, or with ``allow_partial`` is recorded as missing.

Workers are daemon threads and the main thread waits in short slices, so a first Ctrl-C stops the
run at once instead of after the queries in flight.
"""
from __future__ import annotations

import queue
import threading
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, replace
from typing import Any, Callable

from ... import memory
from ...errors import SourceError
from .client import QueryFailed

MAX_RANGE_STEPS = 11_000  # Prometheus refuses a range query of more points per series
MIN_CHUNK_STEPS = 288  # a day at the 5-minute step: shorter chunks re-read the same TSDB chunks

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Task:
    """One request: ``name`` (what it fetches), its namespaces, for range queries the steps
    [first, first + steps) of the window grid, and for an inventory query the ``part`` it asks."""

    name: str
    namespaces: tuple[str, ...]
    first: int = 0
    steps: int = 0
    part: str = ""

    def halves(self) -> list["Task"]:
        """Two smaller tasks: the time span halved, or, at one step (or instant), the namespaces."""
        if self.steps > 1:
            h = self.steps // 2
            return [replace(self, steps=h), replace(self, first=self.first + h, steps=self.steps - h)]
        h = len(self.namespaces) // 2
        return [replace(self, namespaces=self.namespaces[:h]), replace(self, namespaces=self.namespaces[h:])]

    def splittable(self) -> bool:
        return self.steps > 1 or len(self.namespaces) > 1


def plan_shards(series_per_namespace: dict[str, float], steps: int, points: int) -> list[tuple[str, ...]]:
    """Groups of namespaces, each with at most ``points / min(steps, MIN_CHUNK_STEPS)`` series, so a
    chunk of a shard covers at least a day (or the whole window) within the points budget. A
    namespace larger than that is a shard of its own (its chunks are just shorter)."""
    budget = max(points / max(min(steps, MIN_CHUNK_STEPS), 1), 1.0)
    shards: list[tuple[str, ...]] = []
    current: list[str] = []
    load = 0.0
    for ns, n in sorted(series_per_namespace.items(), key=lambda kv: (-kv[1], kv[0])):
        if current and load + n > budget:
            shards.append(tuple(current))
            current, load = [], 0.0
        current.append(ns)
        load += n
    if current:
        shards.append(tuple(current))
    return shards


def range_tasks(name: str, shard: tuple[str, ...], series: float, steps: int, points: int) -> list[Task]:
    """The time chunks of one shard: ``steps`` cut into the fewest chunks of series x chunk steps <=
    ``points``, all of about the same length (no short remainder costing a request of its own)."""
    longest = int(max(1, min(MAX_RANGE_STEPS, steps, points // max(series, 1.0))))
    n = -(-steps // longest)
    bounds = [round(i * steps / n) for i in range(n + 1)]
    return [Task(name, shard, a, b - a) for a, b in zip(bounds[:-1], bounds[1:])]


def ordered_tasks(shards: list[tuple[str, ...]], series: dict[str, float], inventory_parts: list[tuple[str, str]],
                  resources: list[str], steps: int, points: int, first: list[Task] = ()) -> list[Task]:
    """Every request of a collection in the order the pool takes them: the cluster-wide inventory first (and
    the ``first`` tasks: the runtimes' hourly query, also the server's work), then each shard's inventory
    requests (one per (name, part) of ``inventory_parts``: the daily maxima and OOM kills, restarts and
    throttling per pod) interleaved with the range pulls of ``resources``, so that while one worker waits on
    an inventory query (the server's work) another reads a range answer (rightsize's): no stage waits for
    another, and the number of requests stays that of the data, not of the workloads."""
    inventory, ranges = [], []
    for shard in shards:
        inventory += [Task(name, shard, part=part) for name, part in inventory_parts]
        for res in resources:
            ranges += range_tasks(res, shard, sum(series[ns] for ns in shard), steps, points)
    tasks = [Task("cluster", ())] + list(first)
    share = max(len(ranges) / max(len(inventory), 1), 1.0)
    for i, task in enumerate(inventory):  # one inventory request, then its share of the range pulls
        tasks.append(task)
        tasks += ranges[int(i * share):int((i + 1) * share)]
    return tasks + ranges[int(len(inventory) * share):]


class _DaemonPool:
    """A fixed number of daemon worker threads: nothing waits for them when the run is interrupted."""

    def __init__(self, workers: int):
        self._queue: queue.Queue = queue.Queue()
        for _ in range(workers):
            threading.Thread(target=self._work, daemon=True).start()
        self._workers = workers

    def submit(self, fn: Callable, *args) -> Future:
        fut: Future = Future()
        self._queue.put((fut, fn, args))
        return fut

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            fut, fn, args = item
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn(*args))
            except BaseException as exc:  # handed to the main thread, which decides
                fut.set_exception(exc)

    def close(self) -> None:
        for _ in range(self._workers):
            self._queue.put(None)


@dataclass(frozen=True)
class Later:
    """A fetched answer's remaining work (parsing and reducing it), done by :func:`run`'s own thread: the worker
    that fetched it is free at once for the next request, so the server keeps ``concurrency`` requests while
    rightsize reads the answers."""

    finish: Callable[[], Any]


@dataclass
class Outcome:
    failed: set  # namespaces whose data is missing
    errors: list[str]
    splits: int


def run(tasks: list[Task], fetch: Callable[[Task], Any], consume: Callable[[Task, Any], None], *,
        concurrency: int, allow_partial: bool, log: Progress) -> Outcome:
    """Run ``fetch(task)`` on a pool of ``concurrency`` workers and hand each result to
    ``consume(task, result)`` in this thread, as it arrives (a :class:`Later` result finished here first).
    As many tasks again wait in the pool's queue, so a worker starts its next request as soon as it has
    read an answer: at most ``concurrency`` requests in flight, and 2 x ``concurrency`` answers held.
    Splittable failures are split and retried; others raise SourceError, or with ``allow_partial`` are
    recorded in the Outcome."""
    memory.for_streaming()
    bar = getattr(log, "bar", None) or (lambda done, total: None)
    pending, running = list(tasks), {}
    outcome, done, total = Outcome(set(), [], 0), 0, len(tasks)
    pool = _DaemonPool(concurrency)
    try:
        while pending or running:
            while pending and len(running) < 2 * concurrency:
                task = pending.pop(0)
                running[pool.submit(fetch, task)] = task
            finished, _ = wait(list(running), timeout=0.25, return_when=FIRST_COMPLETED)
            for fut in finished:
                task = running.pop(fut)
                try:
                    result = fut.result()
                    consume(task, result.finish() if isinstance(result, Later) else result)
                except QueryFailed as exc:
                    if exc.splittable and task.splittable():
                        outcome.splits += 1
                        total += 1
                        log(f"{task.name} too large for the server, splitting: {exc}")
                        pending[:0] = task.halves()
                        continue
                    if not allow_partial:
                        raise SourceError(f"{exc} (query {task.name}, namespaces {', '.join(task.namespaces) or 'all'}); "
                                          "rerun with --allow-partial to keep the other namespaces") from None
                    outcome.failed.update(task.namespaces)
                    outcome.errors.append(f"{task.name}: {exc}")
                done += 1
                log(f"{task.name}{' ' + task.part if task.part else ''} for {len(task.namespaces)} namespace(s) done ({done}/{total})")
                bar(done, total)
    finally:
        for fut in running:
            fut.cancel()
        pool.close()
        memory.for_tables()
    return outcome
