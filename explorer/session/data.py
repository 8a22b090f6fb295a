"""What crosses the session's process boundary, as plain data: the snapshot a face reads, the error
of a failed run, the session states and the defaults of the child's pacing. Standard library only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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

    kind: str  # "strategy", "iommu", "workload", "plugin", "simulator", "config", "process"
    name: str  # the plugin's registered name ("" when not a plugin)
    error: str  # "RuntimeError: deliberate failure"
    traceback: str = ""
    phase: str = "run"  # "build" (while constructing the simulation) or "run"
    #: what kind of failure it is: a name in :data:`explorer.failures.FAILURES` (the panel's title)
    failure: str = "simulator"

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
                "phase": self.phase, "failure": self.failure}


@dataclass(frozen=True)
class TraceFile:
    """The whole run's kernel trace in a private temporary file, as raw records in blocks (the
    format: :mod:`explorer.tracelines`; a reader formats the lines): its first ``size`` bytes are
    whole blocks of ``lines`` items, a line each, written when the snapshot was taken (the file only
    grows while the run goes; a reset starts another). ``capped``: it stopped growing before
    ``explorer.session.tracefile.TRACE_FILE_LIMIT`` bytes, at simulated time ``capped_at_ns`` (the
    first record of the block that did not fit)."""

    path: str
    lines: int
    size: int
    capped: bool = False
    capped_at_ns: int = 0


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
    trace_file: TraceFile | None = None  # the whole run's trace so far (``Session(trace_file=True)``)

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


__all__ = ["DEFAULT_FULL_SPEED_HZ", "DEFAULT_HZ", "DEFAULT_STEP_NS", "LIVE_KEYS", "STATES", "RunError", "Snapshot"]
