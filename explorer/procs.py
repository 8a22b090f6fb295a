"""Every process the tool starts, started one way: the start method, the forkserver's preload list,
the stdio of parents and children, and stopping a pool at once.

- The simulation process of a :class:`~explorer.session.Session`, the local workers of a sweep
  (:mod:`explorer.sweep.executors`) and of a hunt (:mod:`explorer.hunt`) all come from
  :func:`context`: ``forkserver`` on Linux (a clean, thread-free parent with the simulator already
  imported, and safe with the threads of a running UI), ``spawn`` elsewhere; never plain ``fork``
  of a threaded parent.
- The forkserver is one per program, and its preload list is read once, when it starts: whoever
  started it first used to decide what every later child found imported. :data:`PRELOAD` is the one
  list, set by :func:`context` before anything can start the forkserver.
- A running Textual app replaces ``sys.stdout``/``sys.stderr`` with objects that have no file
  descriptor: :func:`real_stdio` gives multiprocessing real ones while it starts its helper
  processes, :func:`start_helpers` starts them from the UI thread, and :func:`capture_stdio` keeps a
  child's prints off the terminal the UI draws on.

``run --timeout`` starts no process (``explorer.runguard`` uses SIGALRM in the process itself);
a Dask ``LocalCluster`` starts its own, through Dask.

Standard library only.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
import sys
from collections import deque
from collections.abc import Iterator
from multiprocessing.context import BaseContext
from typing import Any

#: What the forkserver imports once, so no child pays for it: the session's child loop, the sweep's
#: and the hunt's worker entry points (with them the plugin loader and the simulator).
PRELOAD = ("explorer.session.child", "explorer.sweep.worker", "explorer.hunt.search")


def start_method() -> str:
    """``forkserver`` on Linux, else ``spawn`` (macOS has a forkserver, but ``spawn`` is its default
    for a reason: system frameworks that do not survive a fork)."""
    if sys.platform.startswith("linux") and "forkserver" in multiprocessing.get_all_start_methods():
        return "forkserver"
    return "spawn"


def context() -> BaseContext:
    """The multiprocessing context every child process of the tool is started with."""
    method = start_method()
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        # A no-op once the forkserver runs; the same list whoever calls first.
        with contextlib.suppress(Exception):
            ctx.set_forkserver_preload(list(PRELOAD))
    return ctx


@contextlib.contextmanager
def real_stdio() -> Iterator[None]:
    """Give multiprocessing real stdio while it starts helper processes.

    A running Textual app replaces ``sys.stdout``/``sys.stderr`` with objects whose ``fileno()``
    is -1, which the resource tracker cannot pass on to the process it spawns.
    """
    saved = sys.stdout, sys.stderr
    try:
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            try:
                ok = stream is not None and stream.fileno() >= 0
            except Exception:
                ok = False
            if not ok:
                setattr(sys, name, getattr(sys, f"__{name}__", None) or open(os.devnull, "w"))  # noqa: SIM115
        yield
    finally:
        sys.stdout, sys.stderr = saved


@contextlib.contextmanager
def without_main() -> Iterator[None]:
    """Start children without re-importing the caller's ``__main__`` (a script, ``pytest``, the
    console script): the child's entry point lives in the tool, and importing someone's main module
    in the child is slow at best and runs its top-level code at worst."""
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved: dict[str, Any] = {k: main.__dict__[k] for k in ("__file__", "__spec__") if k in main.__dict__}
    try:
        main.__dict__.pop("__file__", None)
        main.__dict__["__spec__"] = None
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved)


def start_process(process: Any) -> None:
    """``process.start()`` with real stdio and without the caller's ``__main__`` (see above)."""
    with real_stdio(), without_main():
        process.start()


def start_helpers(ctx: BaseContext | None) -> None:
    """Start multiprocessing's helper processes (the resource tracker, and the forkserver when
    ``ctx`` uses one) from the calling thread with real stdio: a running Textual app's
    ``sys.stderr`` has no file descriptor to hand on, and a worker thread must not swap it. Processes
    started later, from any thread, then need no stdio of their own."""
    from multiprocessing import resource_tracker

    with real_stdio(), without_main():
        resource_tracker.ensure_running()
        if ctx is not None and ctx.get_start_method() == "forkserver":
            from multiprocessing import forkserver

            forkserver.ensure_running()
        elif ctx is None:
            multiprocessing.get_context()


class CapturedOutput(io.TextIOBase):
    """Where a child's ``print()`` goes: complete lines, kept as ``[stdout] ...`` in ``lines``."""

    def __init__(self, lines: deque[str], stream: str) -> None:
        self.lines = lines
        self.stream = stream
        self.partial = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.partial += text
        *done, self.partial = self.partial.split("\n")
        for line in done:
            self.lines.append(f"[{self.stream}] {line}")
        return len(text)


def _null_fds() -> None:
    """File descriptors 1 and 2 to /dev/null (what C code or a subprocess of a plugin writes)."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.close(devnull)


def capture_stdio(lines: deque[str]) -> None:
    """Keep this (child) process off the terminal a UI draws on: Python-level prints are kept in
    ``lines`` (``[stdout] ...``, ``[stderr] ...``), anything lower goes to /dev/null."""
    _null_fds()
    sys.stdout = CapturedOutput(lines, "stdout")
    sys.stderr = CapturedOutput(lines, "stderr")


def silence_stdio() -> None:
    """Send this (child) process's stdout and stderr, Python's and the file descriptors, to /dev/null."""
    _null_fds()
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
    sys.stderr = sys.stdout


def process_pool(workers: int, initializer: Any = None) -> Any:
    """A :class:`~concurrent.futures.ProcessPoolExecutor` of ``workers`` processes from :func:`context`."""
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(max_workers=workers, mp_context=context(), initializer=initializer)


def kill_pool(pool: Any, join: float = 5.0) -> None:
    """Stop a process pool now, without waiting for the work it holds: kill its processes (the only
    way to stop a plugin that loops) and reap them."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    for p in procs:
        with contextlib.suppress(Exception):  # already gone
            p.kill()
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        with contextlib.suppress(Exception):
            p.join(timeout=join)


__all__ = [
    "PRELOAD",
    "CapturedOutput",
    "capture_stdio",
    "context",
    "kill_pool",
    "process_pool",
    "real_stdio",
    "silence_stdio",
    "start_helpers",
    "start_method",
    "start_process",
    "without_main",
]
