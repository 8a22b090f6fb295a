"""A run you can start, pause, step, stop and reset; it yields :class:`Snapshot` objects.

The simulation runs in its own process (a ``forkserver`` context on Linux, ``spawn`` elsewhere),
so a face (the TUI, a script) stays responsive at full simulation speed and a plugin that hangs
can be stopped by terminating that process. What crosses the boundary is plain data only: the
validated config and the ``--plugins-dir`` folders go in (the child loads the plugins itself,
through the same discovery), commands go in over one pipe, and snapshots (plain dicts) come back
over another, a few times a second.

::

    s = Session(config, plugins_dirs=["./my-plugins"])
    s.start()
    s.run()                       # or s.step(), s.pause(), s.set_speed(1000.0)
    snap = s.wait(timeout=30)     # the final snapshot (finished or failed)
    s.close()

A snapshot's :meth:`Snapshot.metrics` is exactly what ``Simulation.metrics()`` returns (and what
``pgtable-explorer run --format json`` prints): the same config and seed give the same numbers
here, in the CLI and in a sweep worker, however the run was paced or stepped.

The faces never touch the simulator: they read snapshots. The reader thread (in the calling
process) keeps only the newest snapshot and calls ``on_update`` at most once per snapshot, so a
slow face never makes updates pile up; it simply samples :attr:`Session.latest` when it is ready.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import json
import multiprocessing as mp
import os
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Keys of a snapshot that describe the live state rather than the run's metrics.
LIVE_KEYS = frozenset({"now_ns", "end_ns", "duration_ns", "finished", "pending_list", "work_items"})

#: Session states. ``starting``: the process is coming up; ``paused``/``running``: as said;
#: ``finished``: the run reached its end; ``failed``: a plugin (or the simulator) raised, or the
#: process died; ``stopped``: :meth:`Session.stop` ended the process.
STATES = ("starting", "paused", "running", "finished", "failed", "stopped")

DEFAULT_STEP_NS = 10_000
DEFAULT_HZ = 10.0
DEFAULT_FULL_SPEED_HZ = 5.0  # snapshots per second when running as fast as possible


# --------------------------------------------------------------------------- plain data


@dataclass(frozen=True)
class RunError:
    """Why a run failed: which plugin raised what, with the traceback from the simulation process."""

    kind: str  # "strategy", "iommu", "workload", "simulator", "config", "process"
    name: str  # the plugin's registered name ("" when not a plugin)
    error: str  # "RuntimeError: deliberate failure"
    traceback: str = ""
    phase: str = "run"  # "build" (while constructing the simulation) or "run"

    @property
    def title(self) -> str:
        if self.kind in ("strategy", "iommu", "workload"):
            label = {"strategy": "strategy", "iommu": "IOMMU model", "workload": "workload"}[self.kind]
            if self.error.startswith("plugin mistake: "):  # PluginMistake: it says where and what to write
                return f"{label} {self.name!r}: {self.error[len('plugin mistake: '):]}"
            return f"{label} {self.name!r} raised {self.error}"
        return self.error

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "error": self.error, "traceback": self.traceback,
                "phase": self.phase}


@dataclass(frozen=True)
class Snapshot:
    """What a live view shows at one instant: the simulation's snapshot plus the session state."""

    seq: int
    state: str
    speed: float  # simulated microseconds per wall second; 0 = as fast as possible
    data: Mapping[str, Any]  # ``Simulation.snapshot()``: metrics + pending list + work items
    trace: tuple[str, ...] = ()  # the newest kernel trace lines, oldest first
    wall_s: float = 0.0  # wall-clock seconds the simulation process has spent advancing
    error: RunError | None = None

    @property
    def now_ns(self) -> int:
        return int(self.data.get("now_ns", 0))

    @property
    def end_ns(self) -> int:
        return int(self.data.get("end_ns", 0))

    @property
    def finished(self) -> bool:
        return bool(self.data.get("finished", False))

    @property
    def progress(self) -> float:
        end = self.end_ns
        return min(1.0, self.now_ns / end) if end else 0.0

    def metrics(self) -> dict[str, Any]:
        """The run's metrics (``Simulation.metrics()``), without the live-only keys."""
        return {k: v for k, v in self.data.items() if k not in LIVE_KEYS}


# --------------------------------------------------------------------------- export helpers


def flatten_metrics(
    metrics: Mapping[str, Any], *, skip: Sequence[str] = ("series", "examples")
) -> list[tuple[str, Any]]:
    """Scalar metrics as ``(dotted.key, value)`` rows: nested tables joined with dots, lists of
    tables indexed (``iommus[0].entries``). ``skip`` leaves out bulky keys (time series, examples)."""
    rows: list[tuple[str, Any]] = []

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, Mapping):
            for k, v in node.items():
                walk(v, f"{prefix}.{k}" if prefix else str(k))
        elif isinstance(node, (list, tuple)):
            for i, v in enumerate(node):
                walk(v, f"{prefix}[{i}]")
        else:
            rows.append((prefix, node))

    for key, value in metrics.items():
        if key in skip:
            continue
        walk(value, key)
    return rows


def metrics_csv(metrics: Mapping[str, Any]) -> str:
    """The scalar metrics as CSV text with a ``metric,value`` header."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["metric", "value"])
    for key, value in flatten_metrics(metrics):
        if isinstance(value, bool):
            value = "true" if value else "false"
        w.writerow([key, value])
    return buf.getvalue()


# --------------------------------------------------------------------------- the child process


@contextlib.contextmanager
def _real_stdio() -> Iterator[None]:
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
def _without_main() -> Iterator[None]:
    """Start children without re-importing the caller's ``__main__`` (a script, ``pytest``, the
    console script): the child's entry point lives here, and importing someone's main module in
    the simulation process is slow at best and runs its top-level code at worst."""
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


class _Output(io.TextIOBase):
    """Where a plugin's print() goes in the simulation process: kept lines, shown in the trace."""

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


def _quiet_child_stdio(lines: deque[str]) -> None:
    """Keep the simulation process off the terminal the UI draws on: Python-level prints are
    captured (and shown as ``[stdout] ...`` lines in the trace), anything lower goes to /dev/null."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.close(devnull)
    sys.stdout = _Output(lines, "stdout")
    sys.stderr = _Output(lines, "stderr")


def _mp_context() -> Any:
    """forkserver where it exists (fast, and safe with the threads of a running UI), else spawn."""
    methods = mp.get_all_start_methods()
    if "forkserver" in methods and sys.platform.startswith("linux"):
        ctx = mp.get_context("forkserver")
        with contextlib.suppress(Exception):
            ctx.set_forkserver_preload(["explorer.session.client", "explorer.plugins", "explorer.sim.build"])
        return ctx
    return mp.get_context("spawn")


class _Child:
    """The loop in the simulation process: commands in, snapshots out."""

    def __init__(self, cmd: Any, out: Any, config: dict[str, Any], opts: dict[str, Any]) -> None:
        self.cmd = cmd
        self.out = out
        self.opts = opts
        self.config = config
        self.sim: Any = None
        self.state = "paused"
        self.speed = float(opts.get("speed", config.get("run", {}).get("speed", 0.0)) or 0.0)
        self.step_ns = int(opts.get("step_ns", DEFAULT_STEP_NS))
        self.period = 1.0 / float(opts.get("hz", DEFAULT_HZ))
        # As fast as possible, fewer snapshots: each costs the run (metrics built and sent) and the
        # face (received and drawn) on the same cores, and the numbers move too fast to read anyway.
        self.full_period = max(self.period, 1.0 / float(opts.get("full_speed_hz", DEFAULT_FULL_SPEED_HZ)))
        self.trace_size = int(opts.get("trace_size", 2000))
        self.trace_tail = int(opts.get("trace_tail", 300))
        self.want_trace = bool(opts.get("want_trace", True))  # False while no face shows the trace
        self.pending_limit = int(opts.get("pending_limit", 50))
        self.seq = 0
        self.error: dict[str, Any] | None = None
        self.wall = 0.0
        self.chunk_ns = 100_000  # adaptive slice of simulated time at full speed
        self.anchor_wall = 0.0
        self.anchor_sim = 0
        self.registry: Any = None
        self.output: deque[str] = deque(maxlen=200)
        self.output_seen = 0

    # -- plumbing
    def send(self, kind: str, payload: Any = None) -> None:
        self.out.send((kind, payload))

    def snapshot(self) -> None:
        data: dict[str, Any] = {}
        trace: list[str] = []
        if self.sim is not None:
            try:
                data = self.sim.snapshot(pending_limit=self.pending_limit)
            except Exception as exc:  # an IOMMU model's metrics() may raise
                self.fail(exc)
                return
            trace = self.trace() if self.want_trace else []
        trace += list(self.output)
        self.seq += 1
        self.send(
            "snapshot",
            {"seq": self.seq, "state": self.state, "speed": self.speed, "data": data, "trace": trace,
             "wall_s": self.wall, "error": self.error},
        )

    def trace(self) -> list[str]:
        """The newest ``trace_tail`` trace lines; only those are formatted (not all ``trace_size`` kept)."""
        if not self.trace_tail:
            return []
        tracer = getattr(getattr(self.sim, "kernel", None), "tracer", None)
        if not isinstance(tracer, deque):
            return list(self.sim.trace_lines()[-self.trace_tail :])
        from explorer.sim.build import trace_line

        n = len(tracer)
        return [trace_line(rec) for rec in itertools.islice(tracer, max(0, n - self.trace_tail), n)]

    def fail(self, exc: BaseException, phase: str = "run") -> None:
        from explorer.sim.engine import PluginError

        if isinstance(exc, PluginError):
            err = {"kind": exc.kind, "name": exc.name, "error": exc.error, "traceback": exc.traceback_text}
        else:
            kind = "config" if type(exc).__name__ in ("BuildError", "ConfigError") else "simulator"
            err = {"kind": kind, "name": "", "error": f"{type(exc).__name__}: {exc}",
                   "traceback": "".join(traceback.format_exception(exc))}
        err["phase"] = phase
        self.error = err
        self.state = "failed"
        self.seq += 1
        data: dict[str, Any] = {}
        if self.sim is not None:
            with contextlib.suppress(Exception):
                data = self.sim.snapshot(pending_limit=self.pending_limit)
        trace = []
        if self.sim is not None:
            with contextlib.suppress(Exception):
                trace = self.trace()
        self.send(
            "snapshot",
            {"seq": self.seq, "state": self.state, "speed": self.speed, "data": data, "trace": trace,
             "wall_s": self.wall, "error": err},
        )

    # -- building
    def build(self) -> None:
        from explorer.sim.build import Simulation

        self.sim = None
        self.error = None
        self.wall = 0.0
        self.state = "paused"
        self.chunk_ns = 100_000
        try:
            if self.registry is None:
                from explorer.plugins import load_registry

                self.registry = load_registry(self.opts.get("plugins_dirs", ()),
                                              entry_points=self.opts.get("entry_points"),
                                              pinned=self.opts.get("pinned"))
            self.sim = Simulation(self.config, self.registry)
            if self.trace_size:
                self.sim.enable_trace(self.trace_size)
        except Exception as exc:
            self.fail(exc, phase="build")
            return
        self.snapshot()

    # -- running
    def advance(self, until: int) -> bool:
        """Advance to ``until``; False when the run failed."""
        t0 = time.perf_counter()
        try:
            self.sim.advance(until)
        except Exception as exc:
            self.wall += time.perf_counter() - t0
            self.fail(exc)
            return False
        self.wall += time.perf_counter() - t0
        if self.sim.finished:
            self.state = "finished"
        return True

    def reanchor(self) -> None:
        self.anchor_wall = time.monotonic()
        self.anchor_sim = self.sim.now if self.sim is not None else 0

    def handle(self, msg: tuple[str, Any]) -> bool:
        """Apply one command; False to exit."""
        op, arg = msg
        if op == "stop":
            return False
        if op == "reset":
            if arg is not None:
                self.config = arg
            self.build()
            return True
        if op == "reload":  # the plugins changed: load them again, then start over
            self.config = arg["config"]
            self.opts["pinned"] = arg.get("pinned") or {}
            self.registry = None
            self.build()
            return True
        if op == "speed":
            self.speed = max(0.0, float(arg))
            self.chunk_ns = 100_000
            self.reanchor()
            self.snapshot()
            return True
        if op == "step_size":
            self.step_ns = max(1, int(arg))
            return True
        if op == "view":
            self.want_trace = bool(arg.get("trace", True))
            return True
        if self.sim is None or self.state in ("failed", "finished"):
            if op in ("run", "pause", "step", "snapshot"):
                self.snapshot()
            return True
        if op == "run":
            self.state = "running"
            self.reanchor()
            self.snapshot()
        elif op == "pause":
            self.state = "paused"
            self.snapshot()
        elif op == "step":
            self.state = "paused"
            n = int(arg) if arg else self.step_ns
            if self.advance(self.sim.now + n):
                self.snapshot()
        elif op == "snapshot":
            self.snapshot()
        return True

    def loop(self) -> None:
        self.build()
        last_sent = time.monotonic()
        while True:
            if self.state != "running":
                timeout: float | None = None  # idle: block until a command arrives
            else:
                timeout = 0.0 if self.speed <= 0 else min(self.period / 2, 0.05)
            if self.cmd.poll(timeout):
                while True:
                    try:
                        msg = self.cmd.recv()
                    except EOFError:
                        return
                    if not self.handle(msg):
                        return
                    if not self.cmd.poll(0):
                        break
                continue
            if self.state != "running":
                continue
            now_wall = time.monotonic()
            if self.speed > 0:
                target = self.anchor_sim + int((now_wall - self.anchor_wall) * self.speed * 1000)
                if target > self.sim.now + self.chunk_ns:  # falling behind: cap, and forget the debt
                    target = self.sim.now + self.chunk_ns
                    self.anchor_sim, self.anchor_wall = target, now_wall
                if target > self.sim.now:
                    t0 = time.perf_counter()
                    if not self.advance(target):
                        continue
                    self._adapt(time.perf_counter() - t0, budget=self.period / 2)
            else:
                t0 = time.perf_counter()
                if not self.advance(self.sim.now + self.chunk_ns):
                    continue
                self._adapt(time.perf_counter() - t0, budget=0.02)
            now_wall = time.monotonic()
            if self.state != "running" or now_wall - last_sent >= (self.full_period if self.speed <= 0
                                                                   else self.period):
                self.snapshot()
                last_sent = now_wall

    def _adapt(self, took: float, budget: float) -> None:
        """Size the next slice of simulated time so one advance takes about ``budget`` seconds."""
        if took < budget / 4:
            self.chunk_ns = min(self.chunk_ns * 2, 10**12)
        elif took > budget:
            self.chunk_ns = max(1_000, self.chunk_ns // 2)


def _child_main(cmd: Any, out: Any, config: dict[str, Any], opts: dict[str, Any]) -> None:
    """Entry point of the simulation process."""
    child = _Child(cmd, out, config, opts)
    if opts.get("quiet", True):
        _quiet_child_stdio(child.output)
    try:
        child.loop()
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        pass
    finally:
        with contextlib.suppress(Exception):
            out.close()


# --------------------------------------------------------------------------- the session


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
        self._ctx = _mp_context()
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
                                         traceback.format_exc()))

    def _start(self, run: bool) -> Session:
        if self.alive:
            return self
        self._generation += 1
        gen = self._generation
        cmd_r, cmd_w = self._ctx.Pipe(duplex=False)
        out_r, out_w = self._ctx.Pipe(duplex=False)
        opts = dict(self.opts, speed=self._speed, step_ns=self.step_ns)
        proc = self._ctx.Process(
            target=_child_main, args=(cmd_r, out_w, self.config, opts), daemon=True,
            name=f"pgtable-explorer-sim{('-' + self.label) if self.label else ''}",
        )
        with self._lock:
            self._shared.state = "starting"
            self._shared.error = None
            self._shared.latest = None
            self._shared.last_msg = time.monotonic()
        with _real_stdio(), _without_main():
            proc.start()
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
                s.error = RunError("process", "", f"the simulation process exited unexpectedly (exit code {code})")
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


__all__ = [
    "LIVE_KEYS",
    "STATES",
    "RunError",
    "Session",
    "Snapshot",
    "flatten_metrics",
    "metrics_csv",
    "run_to_end",
]
