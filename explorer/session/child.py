"""The loop in the simulation process of a :class:`~explorer.session.Session`: commands in, snapshots out.

:func:`child_main` is the process's entry point (the forkserver preloads this module, see
:mod:`explorer.procs`). It loads the plugins itself, through the same discovery as the parent,
builds the ``Simulation`` and advances it in slices paced to the session's speed; only plain data
crosses the pipes.
"""

from __future__ import annotations

import contextlib
import itertools
import time
import traceback
from collections import deque
from typing import Any

from explorer.failures import PLUGIN, USER, classify_failure
from explorer.procs import capture_stdio
from explorer.runguard import culprit, ended_by
from explorer.session.data import DEFAULT_FULL_SPEED_HZ, DEFAULT_HZ, DEFAULT_STEP_NS
from explorer.session.tracefile import FileTrace, OutputLines


class Child:
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
        self.output: OutputLines = OutputLines(maxlen=200)
        self.output_seen = 0
        self.trace_dir: str | None = opts.get("trace_dir")
        self.trace_file: FileTrace | None = None

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
             "wall_s": self.wall, "error": self.error,
             "trace_file": self.trace_file.flush() if self.trace_file is not None else None},
        )

    def trace(self) -> list[str]:
        """The newest ``trace_tail`` trace lines; only those are formatted (not all ``trace_size`` kept)."""
        if not self.trace_tail:
            return []
        tracer = getattr(getattr(self.sim, "kernel", None), "tracer", None)
        if not isinstance(tracer, deque):
            return list(self.sim.trace_lines()[-self.trace_tail :])
        from explorer.tracelines import trace_line

        n = len(tracer)
        return [trace_line(rec) for rec in itertools.islice(tracer, max(0, n - self.trace_tail), n)]

    def fail(self, exc: BaseException, phase: str = "run") -> None:
        from explorer.sim.engine import PluginError

        failure = classify_failure(exc)  # the CLI's exit status and the sweep row's failure, for the same exc
        if isinstance(exc, PluginError):
            err = {"kind": exc.kind, "name": exc.name, "error": exc.error, "traceback": exc.traceback_text}
        elif failure is PLUGIN:  # plugin code ended the run (sys.exit()): name it as the CLI does
            who = culprit(exc, self.registry, self.config) if self.registry is not None else None
            err = {"kind": "plugin", "name": "", "traceback": "".join(traceback.format_exception(exc)),
                   "error": f"{who or 'plugin code'} {ended_by(exc)} during the run (a plugin must raise an exception "
                   "instead)"}
        elif failure is USER:  # a user mistake says what to change, as in the CLI: no traceback
            err = {"kind": "config", "name": "", "error": str(exc), "traceback": ""}
        else:
            err = {"kind": "simulator", "name": "", "error": f"{type(exc).__name__}: {exc}",
                   "traceback": "".join(traceback.format_exception(exc))}
        err["phase"] = phase
        err["failure"] = failure.name
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
             "wall_s": self.wall, "error": err,
             "trace_file": self.trace_file.flush() if self.trace_file is not None else None},
        )

    # -- building
    def build(self) -> None:
        from explorer.sim.build import Simulation

        if self.sim is not None:  # the last run is freed now, not whenever the collector gets to it
            self.sim.close()
        self.sim = None
        self.error = None
        self.wall = 0.0
        self.state = "paused"
        self.chunk_ns = 100_000
        if self.trace_file is not None:  # the last run's trace goes with it
            self.trace_file.close()
            self.trace_file = self.output.tee = None
        try:
            if self.registry is None:
                from explorer.plugins import load_registry

                self.registry = load_registry(self.opts.get("plugins_dirs", ()),
                                              entry_points=self.opts.get("entry_points"),
                                              pinned=self.opts.get("pinned"))
            self.sim = Simulation(self.config, self.registry)
            if self.trace_dir:  # the whole run to a file of its own
                self.trace_file = FileTrace(max(self.trace_size, self.trace_tail, 1), self.trace_dir)
                self.output.tee = self.trace_file
                self.sim.kernel.tracer = self.trace_file
            elif self.trace_size:
                self.sim.enable_trace(self.trace_size)
        except (Exception, SystemExit, GeneratorExit) as exc:  # plugin code may even call sys.exit()
            self.fail(exc, phase="build")
            return
        self.snapshot()

    # -- running
    def advance(self, until: int) -> bool:
        """Advance to ``until``; False when the run failed."""
        t0 = time.perf_counter()
        try:
            self.sim.advance(until)
        except (Exception, SystemExit, GeneratorExit) as exc:  # plugin code may even call sys.exit()
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


def child_main(cmd: Any, out: Any, config: dict[str, Any], opts: dict[str, Any]) -> None:
    """Entry point of the simulation process."""
    child = Child(cmd, out, config, opts)
    if opts.get("quiet", True):
        capture_stdio(child.output)
    try:
        child.loop()
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        pass
    finally:
        if child.trace_file is not None:  # the file stays for the face to read; the session removes it
            child.trace_file.close(remove=False)
        with contextlib.suppress(Exception):
            out.close()


__all__ = ["Child", "child_main"]
