"""Where the points run: local worker processes, or a Dask cluster.

An executor runs *tasks* (plain data, see :mod:`explorer.sweep.worker`) and reports *outcomes*;
the retry policy, the results files and the progress are the runner's. An outcome names the
worker that ran (or was running) its task; a retry carries it as ``avoid``, which the local
executor honours (Dask's scheduler places retries itself, see :meth:`DaskExecutor.submit`).

A task may carry ``"timeout"``: wall-clock seconds the attempt may take. An attempt that exceeds
it is reported as a failed :class:`Outcome` with the error :func:`timeout_error` (the runner then
retries it like any failure). The local executor kills the worker process and starts a fresh one;
Dask cancels the task and restarts the worker through its nanny when it has one (a Python thread
cannot be stopped from outside, see :meth:`DaskExecutor.poll`).

- :class:`LocalExecutor`: ``workers`` processes on this machine, each its own single-process
  :class:`~concurrent.futures.ProcessPoolExecutor` holding one point at a time. A worker that dies
  takes down only the point it was running, which is known exactly; a fresh process replaces it.
- :class:`DaskExecutor`: a ``distributed`` client, connected to an existing scheduler
  (``tcp://HOST:PORT``) or to a ``LocalCluster`` it starts on the loopback interface.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor
from concurrent.futures import wait as futures_wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from explorer import procs
from explorer.sweep.points import SweepError
from explorer.sweep.worker import init_local_worker, init_quiet_worker, run_point, worker_info
from explorer.units import format_seconds

DASK_MISSING = (
    "Dask is not installed. Install the optional extra into this environment:\n"
    "    pip install 'pgtable-explorer[dask]'\n"
    "(or: pip install 'dask[distributed]'), then run the sweep again."
)


@dataclass
class Outcome:
    """One finished attempt at a task."""

    task: dict[str, Any]
    status: str  # "ok" | "failed"
    metrics: dict[str, Any] | None
    error: str | None
    traceback: str | None
    worker: str  # where it ran: a retry avoids it
    wall_s: float = 0.0
    died: bool = False  # the worker died (rather than the point failing inside a live worker)
    #: a failed attempt's kind of failure (:mod:`explorer.failures`): by default "process" when the
    #: worker died, else "simulator" (what the worker could not report itself)
    failure: str | None = None

    def __post_init__(self) -> None:
        if self.status != "ok" and self.failure is None:
            self.failure = "process" if self.died else "simulator"

    @classmethod
    def from_record(cls, task: dict[str, Any], rec: Mapping[str, Any], worker: str | None = None) -> Outcome:
        return cls(task, rec["status"], rec.get("metrics"), rec.get("error"), rec.get("traceback"),
                   worker or str(rec.get("worker", "?")), float(rec.get("wall_s", 0.0)), failure=rec.get("failure"))


def timeout_error(seconds: float) -> str:
    """The error of an attempt that ran longer than its task's ``timeout``."""
    return f"timed out after {format_seconds(seconds)}"


def task_timeout(task: Mapping[str, Any]) -> float | None:
    t = task.get("timeout")
    return float(t) if t is not None else None


def default_workers() -> int:
    """The CPUs this process may run on (``os.sched_getaffinity``), else ``os.cpu_count()``."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _signal_text(code: int | None) -> str:
    if code is None:
        return "it died"
    if code < 0:
        try:
            return f"it was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"it was killed by signal {-code}"
    return f"it exited with status {code}"


class Executor:
    """The interface the runner drives."""

    name = "executor"

    def start(self) -> None:
        """Start the workers (may take a moment: processes, a cluster)."""

    def free_slots(self) -> list[str | None]:
        """Where a task may be submitted now: local worker names, or ``None`` for "anywhere"."""
        raise NotImplementedError

    def submit(self, task: dict[str, Any], slot: str | None) -> None:
        raise NotImplementedError

    def poll(self, timeout: float) -> list[Outcome]:
        """Wait up to ``timeout`` seconds for at least one attempt to finish; return those finished."""
        raise NotImplementedError

    def running(self) -> int:
        """Tasks submitted and not yet reported."""
        raise NotImplementedError

    def workers(self) -> list[str]:
        """The names of the workers (a retry goes to another one)."""
        raise NotImplementedError

    def close(self) -> None:
        """Stop everything at once (tasks still running are abandoned)."""

    def describe(self) -> str:
        return self.name

    def __enter__(self) -> Executor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- local processes


class _Slot:
    def __init__(self, name: str, ctx: multiprocessing.context.BaseContext,
                 initializer: Callable[[], None] = init_local_worker) -> None:
        self.name = name
        self.ctx = ctx
        self.initializer = initializer
        self.pool: ProcessPoolExecutor | None = None
        self.future: Future[dict[str, Any]] | None = None
        self.task: dict[str, Any] | None = None
        self.process: Any = None
        self.started = 0.0  # time.monotonic() when the task was submitted
        self.deadline: float | None = None  # when its timeout expires (None: no timeout)

    def ensure(self) -> ProcessPoolExecutor:
        if self.pool is None:
            self.pool = ProcessPoolExecutor(max_workers=1, mp_context=self.ctx, initializer=self.initializer)
        return self.pool

    def pid(self) -> int | None:
        return getattr(self.process, "pid", None)

    def kill(self) -> None:
        """Stop this worker now (its point is abandoned)."""
        pool, self.pool = self.pool, None
        if pool is not None:
            procs.kill_pool(pool)


class LocalExecutor(Executor):
    """``workers`` processes on this machine (default: one per CPU); ``quiet``: their stdout and
    stderr go nowhere (under a UI that draws on the terminal), else to this process's."""

    name = "local"

    def __init__(self, workers: int | None = None, quiet: bool = False) -> None:
        self.n = workers if workers is not None else default_workers()
        if self.n < 1:
            raise SweepError(f"--workers must be at least 1, got {self.n}")
        self.ctx = procs.context()  # the one start method and preload list of every child
        initializer = init_quiet_worker if quiet else init_local_worker
        self.slots = [_Slot(f"local-{i}", self.ctx, initializer) for i in range(self.n)]

    def describe(self) -> str:
        return f"{self.n} local worker process{'es' if self.n != 1 else ''}"

    def workers(self) -> list[str]:
        return [s.name for s in self.slots]

    def free_slots(self) -> list[str | None]:
        return [s.name for s in self.slots if s.future is None]

    def running(self) -> int:
        return sum(1 for s in self.slots if s.future is not None)

    def busy_pids(self) -> dict[int, int]:
        """``{pid: point index}`` of the workers running a point now (for tests and diagnostics)."""
        out = {}
        for s in self.slots:
            pid = s.pid()
            if s.future is not None and s.task is not None and pid is not None:
                out[pid] = s.task["index"]
        return out

    def submit(self, task: dict[str, Any], slot: str | None) -> None:
        s = next(x for x in self.slots if x.name == slot) if slot else next(x for x in self.slots if x.future is None)
        assert s.future is None
        for _ in range(2):
            pool = s.ensure()
            try:
                s.future = pool.submit(run_point, task)
            except BrokenProcessPool:  # it died while idle: start a fresh one
                s.kill()
                continue
            break
        else:  # pragma: no cover - a fresh pool refusing work
            raise SweepError(f"cannot start a worker process for {s.name}")
        s.task = task
        s.started = time.monotonic()
        limit = task_timeout(task)
        s.deadline = s.started + limit if limit is not None else None
        children = list(getattr(pool, "_processes", {}).values())
        s.process = children[0] if children else None

    def poll(self, timeout: float) -> list[Outcome]:
        busy = {s.future: s for s in self.slots if s.future is not None}
        if not busy:
            return []
        deadlines = [s.deadline for s in busy.values() if s.deadline is not None]
        if deadlines:  # wake up in time to stop the first attempt that runs over
            timeout = max(0.0, min(timeout, min(deadlines) - time.monotonic()))
        done, _ = futures_wait(list(busy), timeout=timeout, return_when=FIRST_COMPLETED)
        out: list[Outcome] = []
        now = time.monotonic()
        for fut, s in busy.items():
            if fut in done or fut.done() or s.deadline is None or now < s.deadline:
                continue
            # Over its time: kill the process (the only way to stop a plugin that loops) and
            # let the next submit start a fresh one.
            task = s.task
            assert task is not None
            s.future = None
            s.task = None
            s.deadline = None
            s.kill()
            out.append(Outcome(task, "failed", None, timeout_error(task_timeout(task) or 0.0), None, s.name,
                               now - s.started, failure="timeout"))
        for fut in done:
            s = busy[fut]
            task = s.task
            assert task is not None
            s.future = None
            s.task = None
            s.deadline = None
            try:
                rec = fut.result()
            except BrokenProcessPool:
                code = None
                if s.process is not None:
                    with contextlib.suppress(Exception):
                        s.process.join(timeout=5)
                        code = s.process.exitcode
                s.kill()
                out.append(Outcome(task, "failed", None,
                                   f"worker died while running this point ({_signal_text(code)})",
                                   None, s.name, 0.0, died=True))
                continue
            except Exception as exc:  # the result could not come back (e.g. it did not pickle)
                out.append(Outcome(task, "failed", None, f"{type(exc).__name__}: {exc}", None, s.name))
                continue
            out.append(Outcome.from_record(task, rec, worker=s.name))
        return out

    def close(self) -> None:
        for s in self.slots:
            s.kill()
            s.future = None
            s.task = None
            s.deadline = None


# --------------------------------------------------------------------------- Dask


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise SweepError(DASK_MISSING) from None
    return distributed


class DaskExecutor(Executor):
    """Points as tasks on a Dask cluster.

    ``scheduler="tcp://HOST:PORT"`` connects to a running scheduler; ``local_workers=N`` starts a
    ``LocalCluster`` of N single-threaded worker processes listening on 127.0.0.1 only.
    Every worker must have the same pgtable-explorer installed (checked before the first point).
    """

    name = "dask"

    def __init__(self, scheduler: str | None = None, local_workers: int | None = None,
                 connect_timeout: float = 30.0) -> None:
        if (scheduler is None) == (local_workers is None):
            raise SweepError("give either a scheduler address or a number of local Dask workers")
        if local_workers is not None and local_workers < 1:
            raise SweepError(f"--dask-local must be at least 1, got {local_workers}")
        self.scheduler = scheduler
        self.local_workers = local_workers
        self.connect_timeout = connect_timeout
        self.dd = _import_distributed()
        self.cluster: Any = None
        self.client: Any = None
        self.futures: dict[Any, dict[str, Any]] = {}
        self._since: dict[Any, tuple[float, str]] = {}  # timed futures seen on a worker: (since, where)
        self._processing_at = 0.0
        self._done = threading.Event()
        self._token = uuid.uuid4().hex[:8]  # task keys of this sweep only, on a shared cluster
        self._capacity = 1
        self._checked_at = 0.0

    def describe(self) -> str:
        if self.local_workers is not None:
            n = self.local_workers
            return f"a Dask LocalCluster of {n} worker{'s' if n != 1 else ''} on 127.0.0.1"
        if self.client is None:
            return f"the Dask cluster at {self.scheduler}"
        n = len(self.workers())
        return f"the Dask cluster at {self.scheduler} ({n} worker{'s' if n != 1 else ''}, {self._capacity} threads)"

    def start(self) -> None:
        dd = self.dd
        try:
            if self.local_workers is not None:
                self.cluster = dd.LocalCluster(
                    n_workers=self.local_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                    dashboard_address=None, silence_logs=logging.CRITICAL,  # failures are in the results
                    # A task running (or queued) on a worker that dies is rescheduled once by
                    # Dask (it may not be the one that killed it), then fails as KilledWorker and
                    # the runner retries it once more elsewhere.
                    scheduler_kwargs={"allowed_failures": 1},
                )
                self.client = dd.Client(self.cluster, set_as_default=False)
            else:
                self.client = dd.Client(self.scheduler, timeout=self.connect_timeout, set_as_default=False)
        except OSError as exc:
            self.close()
            raise SweepError(f"cannot reach the Dask scheduler {self.scheduler}: {exc}") from None
        if self.local_workers is None:
            with contextlib.suppress(Exception):
                self.client.wait_for_workers(1, timeout=self.connect_timeout)
        self._check_workers()

    def _check_workers(self) -> None:
        from explorer import __version__

        try:
            infos = self.client.run(worker_info)
        except ImportError as exc:
            raise SweepError(f"the Dask workers cannot import pgtable-explorer ({exc}): install it on every "
                             "worker (pip install 'pgtable-explorer[dask]')") from None
        bad = {w: i["explorer"] for w, i in infos.items() if i.get("explorer") != __version__}
        if bad:
            listing = ", ".join(f"{w} has {v}" for w, v in sorted(bad.items()))
            raise SweepError(f"the Dask workers must run pgtable-explorer {__version__} like this machine: {listing}")
        self._refresh(force=True)

    def _refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked_at < 2.0:
            return
        self._checked_at = now
        client = self.client
        info = client.scheduler_info(n_workers=-1) if _takes_n_workers(client) else client.scheduler_info()
        ws = info.get("workers", {})
        self._workers = sorted(ws)
        self._capacity = max(1, sum(int(w.get("nthreads", 1)) for w in ws.values()))

    def workers(self) -> list[str]:
        return list(getattr(self, "_workers", []))

    def free_slots(self) -> list[str | None]:
        self._refresh()
        # keep every thread busy plus one queued each, and no more, so a stop cancels little
        room = 2 * self._capacity - len(self.futures)
        return [None] * max(0, room)

    def running(self) -> int:
        return len(self.futures)

    def submit(self, task: dict[str, Any], slot: str | None) -> None:
        # A retry is not pinned away from the worker of the first attempt: Dask never revisits a
        # task restricted to workers that have all gone (a dead worker comes back under another
        # address), so a pinned retry could wait forever. A worker that died is a new process
        # anyway; the scheduler places the retry where it sees fit.
        key = f"pgtable-explorer-{self._token}-point-{task['index']}-{task.get('attempt', 1)}"
        fut = self.client.submit(run_point, task, key=key, pure=False, retries=0)
        self.futures[fut] = task
        fut.add_done_callback(self._wake)

    def _wake(self, _fut: Any) -> None:  # called on the client's thread when a task ends
        self._done.set()

    def poll(self, timeout: float) -> list[Outcome]:
        if not self.futures:
            return []
        timed = any(task_timeout(t) is not None for t in self.futures.values())
        if timed:
            timeout = min(timeout, 0.5)
        if not any(f.done() for f in self.futures):
            self._done.wait(timeout)
        self._done.clear()  # a task ending from here on sets it again for the next poll
        out: list[Outcome] = self._expire() if timed else []
        for fut in [f for f in self.futures if f.done()]:
            task = self.futures.pop(fut)
            self._since.pop(fut, None)
            if fut.status == "finished":
                try:
                    rec = fut.result()
                except Exception as lost:  # pragma: no cover - lost between done() and result()
                    out.append(Outcome(task, "failed", None, f"{type(lost).__name__}: {lost}", None, "?"))
                    continue
                out.append(Outcome.from_record(task, rec))
                continue
            exc: BaseException | None = None
            with contextlib.suppress(Exception):
                exc = fut.exception(timeout=5)
            name = type(exc).__name__ if exc is not None else fut.status
            if name == "KilledWorker":
                last = getattr(exc, "last_worker", None)
                worker = str(getattr(last, "address", last) or "?")
                out.append(Outcome(task, "failed", None, f"worker died while running this point ({worker})",
                                   None, worker, died=True))
            else:
                out.append(Outcome(task, "failed", None, f"{name}: {exc}" if exc is not None else f"task {name}",
                                   None, "?", died=True))
            fut.release()
        return out

    def _expire(self) -> list[Outcome]:
        """Fail the attempts that have run longer than their ``timeout``.

        The clock of a point starts when the scheduler is first seen to have it processing on a
        worker (checked about twice a second), so it may include a short wait behind another
        point on that worker. An attempt over its time is cancelled; the Python thread running
        it cannot be stopped, so the worker is restarted through its nanny if it has one (Dask's
        ``restart_workers``), and otherwise keeps that thread busy until the plugin returns.
        """
        now = time.monotonic()
        if now - self._processing_at >= 0.5:
            self._processing_at = now
            where: dict[Any, str] = {}
            with contextlib.suppress(Exception):
                for worker, keys in self.client.processing().items():
                    for key in keys:
                        where[key] = str(worker)
            for fut, task in self.futures.items():
                if fut not in self._since and fut.key in where and task_timeout(task) is not None:
                    self._since[fut] = (now, where[fut.key])
        out: list[Outcome] = []
        stuck: set[str] = set()
        for fut, (since, worker) in list(self._since.items()):
            task = self.futures[fut]
            limit = task_timeout(task) or 0.0
            if fut.done() or now - since < limit:
                continue
            del self.futures[fut], self._since[fut]
            with contextlib.suppress(Exception):
                self.client.cancel([fut], force=True)
            out.append(Outcome(task, "failed", None, timeout_error(limit), None, worker, now - since,
                               failure="timeout"))
            stuck.add(worker)
        if stuck:
            self._restart(sorted(stuck))
        return out

    def _restart(self, workers: list[str]) -> None:
        """Restart these workers if a nanny watches them (a worker without one is left alone)."""
        with contextlib.suppress(Exception):
            client = self.client
            info = client.scheduler_info(n_workers=-1) if _takes_n_workers(client) else client.scheduler_info()
            ws = info.get("workers", {})
            nannied = [w for w in workers if ws.get(w, {}).get("nanny")]
            if nannied:
                client.restart_workers(nannied, timeout=self.connect_timeout, raise_for_error=False)
        with contextlib.suppress(Exception):
            self._refresh(force=True)

    def close(self) -> None:
        if self.client is not None and self.futures:
            with contextlib.suppress(Exception):
                self.client.cancel(list(self.futures), force=True)
        self.futures.clear()
        self._since.clear()
        for obj in (self.client, self.cluster):
            if obj is not None:
                with contextlib.suppress(Exception):
                    obj.close()
        self.client = self.cluster = None


def _takes_n_workers(client: Any) -> bool:
    import inspect

    try:
        return "n_workers" in inspect.signature(client.scheduler_info).parameters
    except (TypeError, ValueError):  # pragma: no cover
        return False


def make_executor(
    workers: int | None = None, scheduler: str | None = None, dask_local: int | None = None
) -> Executor:
    """The executor the command-line flags ask for (at most one of them)."""
    given = [x for x in (scheduler, dask_local) if x is not None]
    if len(given) > 1 or (given and workers is not None):
        raise SweepError("--workers, --scheduler and --dask-local are alternatives: give one")
    if scheduler is not None:
        if "://" not in scheduler:
            scheduler = "tcp://" + scheduler
        return DaskExecutor(scheduler=scheduler)
    if dask_local is not None:
        return DaskExecutor(local_workers=dask_local)
    return LocalExecutor(workers)

