"""The calling side of a session: :class:`Session` starts the simulation process
(:mod:`explorer.session.child`), sends it commands and keeps the newest snapshot it sends back."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from explorer import procs
from explorer.session.child import child_main
from explorer.session.data import DEFAULT_FULL_SPEED_HZ, DEFAULT_HZ, DEFAULT_STEP_NS, RunError, Snapshot, TraceFile
from explorer.session.tracefile import new_trace_dir, remove_run_files


@dataclass
class _Shared:
    latest: Snapshot | None = None
    state: str = "starting"
    error: RunError | None = None
    last_msg: float = 0.0
    count: int = 0


class Session:
    """One run in its own process. Thread-safe for one controlling thread plus the reader thread.

    ``on_update(session)`` is called from the reader thread after each snapshot arrives (use
    ``App.post_message``/``call_from_thread`` there, never touch widgets).
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        plugins_dirs: Sequence[str | os.PathLike[str]] = (),
        *,
        speed: float | None = None,
        step_ns: int = DEFAULT_STEP_NS,
        hz: float = DEFAULT_HZ,
        full_speed_hz: float = DEFAULT_FULL_SPEED_HZ,
        trace_size: int = 2000,
        trace_tail: int = 300,
        pending_limit: int = 50,
        stall_after: float = 2.0,
        entry_points: bool | None = None,
        on_update: Callable[[Session], None] | None = None,
        label: str = "",
        trace_file: bool = False,
    ) -> None:
        self.config: dict[str, Any] = json.loads(json.dumps(config))  # plain data, detached
        self.plugins_dirs = tuple(str(Path(d).resolve()) for d in plugins_dirs)
        if entry_points is None:
            from explorer.plugins import NO_ENTRYPOINTS_ENV

            entry_points = os.environ.get(NO_ENTRYPOINTS_ENV, "") in ("", "0")
        self._speed = float(self.config["run"].get("speed", 0.0) if speed is None else speed)
        self.step_ns = int(step_ns)
        self.opts = {
            "plugins_dirs": self.plugins_dirs,
            "entry_points": entry_points,
            "speed": self._speed,
            "step_ns": self.step_ns,
            "hz": hz,
            "full_speed_hz": full_speed_hz,
            "trace_size": trace_size,
            "trace_tail": trace_tail,
            "pending_limit": pending_limit,
        }
        self.stall_after = stall_after
        self.on_update = on_update
        self.label = label
        # trace_file: every trace line of the run also goes to a file in a private folder (0700),
        # removed with the session (or when the program ends); each run (reset) has its own file.
        self.trace_dir: str | None = None
        if trace_file:
            self.trace_dir = new_trace_dir()
            self.opts["trace_dir"] = self.trace_dir
            self._remove_trace_dir = weakref.finalize(self, shutil.rmtree, self.trace_dir, True)
        self._ctx: Any = procs.context()  # Process and Pipe: what BaseContext does not declare
        self._proc: Any = None
        self._cmd: Any = None
        self._reader: threading.Thread | None = None
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._shared = _Shared()
        self._generation = 0
        self._last_cmd = time.monotonic()
        # Held while the process starts (which may be in a background thread, see start()); commands
        # and stop() wait for a start in flight instead of racing it.
        self._start_lock = threading.RLock()

    # -- state
    @property
    def latest(self) -> Snapshot | None:
        """The newest snapshot (None until the process has built the simulation)."""
        return self._shared.latest

    @property
    def state(self) -> str:
        return self._shared.state

    @property
    def error(self) -> RunError | None:
        return self._shared.error

    @property
    def speed(self) -> float:
        return self._speed

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def stalled(self) -> bool:
        """Running, but no snapshot for ``stall_after`` seconds: a plugin may hang (use :meth:`stop`)."""
        s = self._shared
        if s.state not in ("running", "starting") or not self.alive:
            return False
        last = max(s.last_msg, self._last_cmd)
        return time.monotonic() - last > self.stall_after

    # -- lifecycle
    def start(self, run: bool = False, background: bool = False) -> Session:
        """Start the simulation process (paused, unless ``run``).

        ``background``: return at once and start the process from a thread (starting a process
        takes 0.1 s or more the first time, while the forkserver comes up): a UI draws its first
        frame meanwhile. Commands sent before the process is up wait for it, in order.
        """
        if background:
            gate = threading.Event()  # set once the thread holds the start lock: commands queue behind it
            threading.Thread(target=self._start_in_thread, args=(run, gate), daemon=True,
                             name="pgtable-explorer-session-start").start()
            gate.wait()
            return self
        with self._start_lock:
            return self._start(run)

    def _start_in_thread(self, run: bool, gate: threading.Event) -> None:
        with self._start_lock:
            gate.set()
            try:
                self._start(run)
            except Exception as exc:  # cannot start a process at all: say so as a failure
                self._set_error(RunError("process", "", f"cannot start the simulation process: {exc}",
                                         traceback.format_exc(), failure="process"))

    def _start(self, run: bool) -> Session:
        if self.alive:
            return self
        self._generation += 1
        gen = self._generation
        if self.trace_dir:  # a new process: the files of the runs of the old one go
            remove_run_files(self.trace_dir)
        cmd_r, cmd_w = self._ctx.Pipe(duplex=False)
        out_r, out_w = self._ctx.Pipe(duplex=False)
        opts = dict(self.opts, speed=self._speed, step_ns=self.step_ns)
        proc = self._ctx.Process(
            target=child_main, args=(cmd_r, out_w, self.config, opts), daemon=True,
            name=f"pgtable-explorer-sim{('-' + self.label) if self.label else ''}",
        )
        with self._lock:
            self._shared.state = "starting"
            self._shared.error = None
            self._shared.latest = None
            self._shared.last_msg = time.monotonic()
        procs.start_process(proc)
        cmd_r.close()
        out_w.close()
        self._proc = proc
        self._cmd = cmd_w
        self._reader = threading.Thread(target=self._read, args=(out_r, proc, gen), daemon=True,
                                        name="pgtable-explorer-session-reader")
        self._reader.start()
        self._last_cmd = time.monotonic()
        if run:
            self.run()
        return self

    def _read(self, conn: Any, proc: Any, gen: int) -> None:
        while True:
            try:
                kind, payload = conn.recv()
            except (EOFError, OSError):
                break
            except Exception as exc:  # an unpicklable payload: a bug; report it, keep reading
                self._set_error(RunError("simulator", "", f"{type(exc).__name__}: {exc}", traceback.format_exc()))
                continue
            if kind != "snapshot":
                continue
            err = payload.get("error")
            snap = Snapshot(
                seq=payload["seq"], state=payload["state"], speed=payload["speed"], data=payload["data"],
                trace=tuple(payload["trace"]), wall_s=payload["wall_s"], error=RunError(**err) if err else None,
                trace_file=TraceFile(**payload["trace_file"]) if payload.get("trace_file") else None,
            )
            with self._cond:
                if gen != self._generation:
                    return
                s = self._shared
                s.latest = snap
                s.state = snap.state
                s.error = snap.error
                s.last_msg = time.monotonic()
                s.count += 1
                self._cond.notify_all()
            self._notify()
        with contextlib.suppress(Exception):
            conn.close()
        # The process is gone: an unexpected exit is a failure.
        proc.join(timeout=2)
        with self._cond:
            if gen != self._generation:
                return
            s = self._shared
            if s.state not in ("stopped", "finished", "failed"):
                code = proc.exitcode
                s.state = "failed"
                s.error = RunError("process", "", f"the simulation process exited unexpectedly (exit code {code})",
                                   failure="process")
            elif s.state == "finished":
                pass
            self._cond.notify_all()
        self._notify()

    def _set_error(self, err: RunError) -> None:
        with self._cond:
            self._shared.error = err
            self._shared.state = "failed"
            self._cond.notify_all()
        self._notify()

    def _notify(self) -> None:
        cb = self.on_update
        if cb is not None:
            with contextlib.suppress(Exception):
                cb(self)

    def _send(self, op: str, arg: Any = None) -> None:
        with self._start_lock:  # after a start in flight
            if self._cmd is None or not self.alive:
                return
            try:
                self._cmd.send((op, arg))
            except (BrokenPipeError, OSError):
                return
        self._last_cmd = time.monotonic()

    # -- commands
    def run(self) -> None:
        """Run (at the current speed) until paused, finished or failed."""
        if not self.alive:
            self.start()
        self._send("run")

    def pause(self) -> None:
        self._send("pause")

    def toggle(self) -> None:
        """Run if paused, pause if running."""
        if self.state == "running":
            self.pause()
        else:
            self.run()

    def step(self, ns: int | None = None) -> None:
        """Advance one batch of events (``step_ns`` of simulated time), then pause."""
        if not self.alive:
            self.start()
        self._send("step", ns)

    def set_speed(self, us_per_s: float) -> None:
        """Simulated microseconds per wall second; 0 runs as fast as possible."""
        self._speed = max(0.0, float(us_per_s))
        self._send("speed", self._speed)

    def set_step(self, ns: int) -> None:
        self.step_ns = max(1, int(ns))
        self._send("step_size", self.step_ns)

    def request_snapshot(self) -> None:
        self._send("snapshot")

    def set_view(self, *, trace: bool) -> None:
        """Say what the face shows: without ``trace`` the snapshots leave out the trace lines
        (formatting and sending them costs the run; the kernel keeps tracing, so the lines are
        there again, history included, with the next snapshot after ``trace=True``)."""
        if self.opts.get("want_trace", True) == trace:
            return
        self.opts["want_trace"] = trace
        self._send("view", {"trace": trace})

    def reset(self, config: Mapping[str, Any] | None = None) -> None:
        """Start over from time zero (with ``config`` if given), paused.

        A process that is gone or does not answer is replaced by a new one.
        """
        if config is not None:
            self.config = json.loads(json.dumps(config))
        with self._start_lock:
            self._reset()

    def reload_plugins(self, config: Mapping[str, Any] | None = None, pinned: Mapping[str, str] | None = None,
                       run: bool = False) -> None:
        """Load the plugins again (the ``--plugins-dir`` files as they are now, except the ``pinned``
        ones: path -> the source to use instead) and start over from time zero (with ``config``
        if given); running again at once with ``run``."""
        if config is not None:
            self.config = json.loads(json.dumps(config))
        self.opts["pinned"] = dict(pinned or {})
        with self._start_lock:
            if self.alive and not self.stalled:
                with self._lock:
                    self._shared.state = "starting"
                    self._shared.error = None
                self._send("reload", {"config": self.config, "pinned": self.opts["pinned"]})
            else:  # a new process loads the plugins afresh (with the pinned ones from opts)
                self.stop()
                self.start()
        if run:
            self.run()

    def _reset(self) -> None:
        if self.alive and not self.stalled:
            with self._lock:
                self._shared.state = "starting"
                self._shared.error = None
            self._send("reset", self.config)
            return
        self.stop()
        self.start()

    def stop(self, timeout: float = 1.0) -> bool:
        """End the process: ask it, then terminate, then kill. True if it had to be forced."""
        with self._start_lock:
            return self._stop(timeout)

    def _stop(self, timeout: float) -> bool:
        proc = self._proc
        forced = False
        if proc is not None:
            with self._cond:  # the reader must not take the exit it is about to see for a crash
                self._generation += 1
            self._send("stop")
            proc.join(timeout)
            if proc.is_alive():
                forced = True
                proc.terminate()
                proc.join(1.0)
                if proc.is_alive():
                    proc.kill()
                    proc.join(1.0)
        if self._cmd is not None:
            with contextlib.suppress(Exception):
                self._cmd.close()
        with self._cond:
            self._generation += 1  # ignore whatever the old reader still delivers
            if self._shared.state not in ("finished", "failed") or forced:
                self._shared.state = "stopped"
            self._cond.notify_all()
        self._proc = None
        self._cmd = None
        return forced

    close = stop

    def __enter__(self) -> Session:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- waiting (scripts and tests; a UI uses on_update instead)
    def wait_for(self, predicate: Callable[[Session], bool], timeout: float = 30.0) -> bool:
        """Block until ``predicate(self)`` holds after a snapshot arrives, or ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.25))
        return True

    def wait(self, timeout: float = 30.0) -> Snapshot | None:
        """Block until the run is finished, failed or stopped; return the newest snapshot."""
        self.wait_for(lambda s: s.state in ("finished", "failed", "stopped"), timeout)
        return self.latest

    def snapshots(self, timeout: float = 30.0) -> Iterator[Snapshot]:
        """Yield each new snapshot as it arrives until the run ends (or ``timeout`` without one)."""
        seen = 0
        while True:
            ok = self.wait_for(lambda s, seen=seen: s._shared.count > seen, timeout)  # type: ignore[misc]
            if not ok:
                return
            seen = self._shared.count
            snap = self.latest
            if snap is not None:
                yield snap
            if self.state in ("finished", "failed", "stopped"):
                return


def run_to_end(
    config: Mapping[str, Any], plugins_dirs: Sequence[str] = (), timeout: float = 300.0
) -> Snapshot | None:
    """Run a config to its end at full speed in a session; return the final snapshot."""
    s = Session(config, plugins_dirs, speed=0.0, trace_size=0, trace_tail=0)
    try:
        s.start(run=True)
        return s.wait(timeout)
    finally:
        s.stop()


__all__ = ["Session", "run_to_end"]
