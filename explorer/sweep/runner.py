"""Running a sweep: hand the points to an executor, retry failures once elsewhere, write each
finished point, report progress, stop cleanly.

The engine is a generator of finished points, so any face can drive it::

    sweep = Sweep(plan, registry, LocalExecutor(4), out="results.csv")
    for result in sweep:          # each point as it finishes (resumed ones first)
        show(result)              # a TUI: from a worker thread; sweep.stop() from the UI thread
    report = sweep.report()

or ``sweep.run(on_result=..., on_progress=...)``. Either way the sweep closes itself: workers
stopped, results files rewritten in point order.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from explorer import __version__
from explorer.documents import flatten_metrics
from explorer.sweep.executors import Executor, LocalExecutor, Outcome
from explorer.sweep.points import Point, SweepError, SweepPlan
from explorer.sweep.results import ResultsFiles, body_of, latest, make_record
from explorer.sweep.worker import CacheFolderError, check_cache_folder, make_bundle

if TYPE_CHECKING:
    from explorer.plugins import Registry

#: A point is tried at most this many times: once, and once more on another worker.
MAX_ATTEMPTS = 2


@dataclass
class PointResult:
    """One finished point (after its retry, if it needed one)."""

    point: Point
    status: str  # "ok" | "failed"
    record: dict[str, Any]  # its results row (with "config"; see explorer.sweep.results)
    metrics: dict[str, Any] | None = None  # the full metrics, series included (None if resumed/failed)
    error: str | None = None
    traceback: str | None = None
    attempts: int = 1
    worker: str = ""
    wall_s: float = 0.0
    resumed: bool = False  # found finished in the results file, not run now

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class Progress:
    """Where a sweep is: what a progress bar shows."""

    total: int
    skipped: int = 0  # finished in an earlier run (--resume)
    done: int = 0  # finished ok in this run
    failed: int = 0  # failed in this run (after the retry)
    running: int = 0
    retries: int = 0
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None

    @property
    def finished(self) -> int:
        return self.skipped + self.done + self.failed

    @property
    def remaining(self) -> int:
        return self.total - self.finished

    @property
    def elapsed(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    @property
    def rate(self) -> float:
        """Points finished per second in this run."""
        e = self.elapsed
        return (self.done + self.failed) / e if e > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds until the last point finishes, at the rate so far (None before the first)."""
        r = self.rate
        if self.remaining == 0:
            return 0.0
        return self.remaining / r if r > 0 else None


@dataclass
class SweepReport:
    total: int
    ok: int
    failed: int
    skipped: int
    stopped: bool  # stopped (stop() or Ctrl-C) before every point finished
    elapsed: float
    records: list[dict[str, Any]]  # every row, in point order (as in the final files)
    out: Path | None = None
    notes: list[str] = field(default_factory=list)


def bundle_for(registry: Registry) -> dict[str, Any]:
    """The plugins the workers must load to match ``registry``: its ``--plugins-dir`` folders as
    files, and entry points when it loaded any."""
    entry_points = any(p.origin == "installed package" for p in [*registry.plugins, *registry.failures])
    return make_bundle(registry.plugins_dirs, entry_points=entry_points)


class Sweep:
    """One sweep of a :class:`SweepPlan` on an :class:`Executor` (default: local processes).

    ``out`` names the CSV results file (the JSON Lines file goes beside it); ``None`` keeps the
    results in memory only. ``timeout`` is the wall-clock seconds one attempt at a point may take
    (``None``, the default: no limit); an attempt over it fails with the error
    ``"timed out after Ns"`` and is retried like any failure (see :mod:`explorer.sweep.executors`
    for how each executor stops it). The sweep starts and closes the executor itself.
    """

    poll_interval = 0.2  # how quickly stop() is noticed, in seconds

    def __init__(
        self,
        plan: SweepPlan,
        registry: Registry,
        executor: Executor | None = None,
        *,
        out: str | Path | None = None,
        resume: bool = False,
        overwrite: bool = False,
        on_progress: Callable[[Progress], None] | None = None,
        max_attempts: int = MAX_ATTEMPTS,
        bundle: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> None:
        if timeout is not None and not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0):
            raise SweepError(f"the timeout must be a positive number of seconds, got {timeout!r}")
        self.timeout = float(timeout) if timeout is not None else None
        self.plan = plan
        self.executor = executor if executor is not None else LocalExecutor()
        self.bundle = dict(bundle) if bundle is not None else bundle_for(registry)
        if self.bundle.get("dirs"):  # local workers load the plugins from there: refuse a folder they must not trust
            try:
                check_cache_folder()
            except CacheFolderError as exc:
                raise SweepError(str(exc)) from None
        self.files = ResultsFiles(out, resume=resume, overwrite=overwrite) if out is not None else None
        if self.files is not None:
            # Before anything starts: the folder must exist, existing results are never replaced
            # silently, and --resume takes only a results file.
            self.files.check_all()
        self.on_progress = on_progress
        self.max_attempts = max_attempts
        self.progress = Progress(total=len(plan.points))
        self.stopped = False
        self.interrupted = False
        self._stop = threading.Event()
        self._final: dict[int, dict[str, Any]] = {}
        self._previous: list[dict[str, Any]] = []
        self._started = False
        self._executor_started = False
        self._closed = False
        self._report: SweepReport | None = None

    # -- control ---------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop soon (from any thread): no new point starts, running ones are abandoned, finished
        ones are kept. Iteration ends within :attr:`poll_interval`."""
        self._stop.set()

    def __iter__(self) -> Iterator[PointResult]:
        return self.results()

    def run(self, on_result: Callable[[PointResult], None] | None = None) -> SweepReport:
        """Run to the end (or until stopped); call ``on_result`` for each finished point."""
        try:
            for r in self.results():
                if on_result is not None:
                    on_result(r)
        finally:
            self.close()
        return self.report()

    # -- the loop --------------------------------------------------------------------------------
    def _task(self, point: Point) -> dict[str, Any]:
        task = {"index": point.index, "id": point.id, "config": point.config, "bundle": self.bundle,
                "explorer": __version__, "attempt": 1}
        if self.timeout is not None:
            task["timeout"] = self.timeout
        return task

    def results(self) -> Iterator[PointResult]:
        """Yield each point as it finishes: first those already in the results file (``resumed``),
        then the others in the order they finish."""
        if self._started:
            raise RuntimeError("a Sweep runs once; make a new one")
        self._started = True
        try:
            previous = self.files.open() if self.files is not None else []
            self._previous = latest(previous)
            finished = {r.get("point_id"): r for r in self._previous if r.get("status") == "ok"}
            todo: deque[dict[str, Any]] = deque()
            for p in self.plan.points:
                old = finished.get(p.id)
                if old is None:
                    todo.append(self._task(p))
                    continue
                rec = make_record(p, body_of(old))
                self._final[p.index] = rec
                self.progress.skipped += 1
                yield PointResult(p, "ok", rec, attempts=int(rec.get("attempts") or 1), resumed=True)
            self.progress.started = time.monotonic()
            if todo and not self._stop.is_set():
                self.executor.start()
                self._executor_started = True
            self._emit()
            while (todo or self.executor.running()) and self._executor_started:
                if self._stop.is_set():
                    self.stopped = True
                    break
                self._fill(todo)
                for outcome in self.executor.poll(self.poll_interval):
                    res = self._handle(outcome, todo)
                    if res is not None:
                        yield res
                self._emit()
            if self._stop.is_set() and self.progress.remaining:
                self.stopped = True
        except KeyboardInterrupt:
            self.stopped = self.interrupted = True
            raise
        finally:
            self.close()

    def _fill(self, todo: deque[dict[str, Any]]) -> None:
        if not todo:
            return
        single = len(self.executor.workers()) <= 1
        for slot in self.executor.free_slots():
            if not todo:
                break
            pick = None
            for i, t in enumerate(todo):
                if slot is None or single or t.get("avoid") != slot:
                    pick = i
                    break
                if i >= 64:
                    break
            if pick is None:
                continue
            task = todo[pick]
            del todo[pick]
            self.executor.submit(task, slot)
        self.progress.running = self.executor.running()

    def _handle(self, o: Outcome, todo: deque[dict[str, Any]]) -> PointResult | None:
        task = o.task
        point = self.plan.points[task["index"]]
        attempt = int(task.get("attempt", 1))
        if o.status != "ok" and attempt < self.max_attempts:
            retry = {k: v for k, v in task.items() if k not in ("avoid", "first_error")}
            retry.update(attempt=attempt + 1, avoid=o.worker, first_error=o.error)
            todo.appendleft(retry)
            self.progress.retries += 1
            return None
        error = o.error
        if o.status != "ok" and task.get("first_error") and task["first_error"] != o.error:
            error = f"{o.error} (first attempt: {task['first_error']})"
        body = {
            "status": o.status,
            "error": error,
            "attempts": attempt,
            "metrics": flatten_metrics(o.metrics) if o.metrics is not None else None,
            "traceback": o.traceback,
            "failure": o.failure if o.status != "ok" else None,
        }
        rec = make_record(point, body)
        self._final[point.index] = rec
        if self.files is not None:
            self.files.append(rec)
        if o.status == "ok":
            self.progress.done += 1
        else:
            self.progress.failed += 1
        return PointResult(point, o.status, rec, metrics=o.metrics, error=error, traceback=o.traceback,
                           attempts=attempt, worker=o.worker, wall_s=o.wall_s)

    def _emit(self) -> None:
        self.progress.running = self.executor.running() if self._executor_started else 0
        if self.on_progress is not None:
            self.on_progress(self.progress)

    # -- the end ---------------------------------------------------------------------------------
    def records(self) -> list[dict[str, Any]]:
        """Every row, in point order: this run's and the results file's earlier ones (a point not
        run again keeps its earlier row; rows of points that are not in this sweep come last)."""
        by_id = {r.get("point_id"): r for r in self._previous}
        out = []
        for p in self.plan.points:
            rec = self._final.get(p.index)
            if rec is None and p.id in by_id:
                rec = make_record(p, body_of(by_id[p.id]))
            if rec is not None:
                out.append(rec)
        ids = {p.id for p in self.plan.points}
        out.extend(r for r in self._previous if r.get("point_id") not in ids)
        return out

    def close(self) -> None:
        """Stop the workers and write the final files (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._executor_started:
                self.executor.close()
        finally:
            self.progress.running = 0
            self.progress.ended = time.monotonic()
            if self.files is not None:
                try:
                    self.files.finalize(self.records())
                finally:
                    self.files.close()
            if self.on_progress is not None:
                self.on_progress(self.progress)

    def report(self) -> SweepReport:
        if self._report is None or not self._closed:
            recs = self.records()
            self._report = SweepReport(
                total=len(self.plan.points),
                ok=self.progress.done,
                failed=self.progress.failed,
                skipped=self.progress.skipped,
                stopped=self.stopped or self.progress.remaining > 0,
                elapsed=self.progress.elapsed,
                records=recs,
                out=self.files.csv_path if self.files is not None else None,
                notes=list(self.plan.notes),
            )
        return self._report
