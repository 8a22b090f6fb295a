"""The sweep screen's state: the axes the user marked on the config tree, the seeds, the results file,
and the sweep that runs (pure data, no Textual).

``explorer.sweep`` is imported only when a sweep is planned or started, never at start-up. An axis
is the text the user typed, read exactly as the CLI reads it: ``64,128,256`` is ``--grid
KEY=64,128,256`` and ``1:1000:4:log`` is ``--range KEY=1:1000:4:log``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from explorer.plugins import Registry
    from explorer.sweep import Axis, PointResult, Progress, Sweep, SweepPlan


def axis_kind(text: str) -> str:
    """``range`` for ``START:STOP:STEPS[:lin|log]`` (no comma, three or four fields), else ``grid``."""
    text = text.strip()
    return "range" if "," not in text and text.count(":") in (2, 3) else "grid"


@dataclass(frozen=True)
class AxisSpec:
    """One swept key and its values as typed."""

    key: str
    text: str

    @property
    def kind(self) -> str:
        return axis_kind(self.text)

    @property
    def spec(self) -> tuple[str, str]:
        """As :func:`explorer.sweep.plan_sweep` takes it: ``("grid", "KEY=V1,V2")``."""
        return (self.kind, f"{self.key}={self.text.strip()}")

    @property
    def flag(self) -> str:
        """The CLI flag that says the same: ``--grid KEY=V1,V2``."""
        kind, text = self.spec
        return f"--{kind} {text}"


def parse_axis(key: str, text: str, config: Mapping[str, Any], registry: Registry, check_limit: int = 200) -> Axis:
    """The parsed axis (its values), or :class:`explorer.sweep.SweepError` saying what is wrong."""
    from explorer.sweep import SweepError, expand, make_axes

    if not text.strip():
        raise SweepError("give the values: V1,V2,... or START:STOP:STEPS[:log]")
    axis = make_axes(config, registry, [AxisSpec(key, text).spec])[0]
    if len(axis.values) <= check_limit:  # each value must make a valid config (cheap for a short axis)
        expand(config, registry, [axis])
    return axis


@dataclass
class SweepState:
    """Everything the sweep screen shows, kept by the app so it outlives the screen."""

    axes: list[AxisSpec] = field(default_factory=list)
    seeds: int = 1
    workers: int | None = None  # local worker processes; None: one per CPU, as the CLI's default
    out: str | None = None  # the CSV results file (JSON Lines beside it); None: in memory only
    # the sweep that runs (or ran last)
    plan: SweepPlan | None = None
    sweep: Sweep | None = None
    results: list[PointResult] = field(default_factory=list)
    progress: Progress | None = None
    running: bool = False
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def set_axis(self, key: str, text: str) -> None:
        """Add the axis, or replace the values of the axis on the same key (keeping its place)."""
        new = AxisSpec(key, text.strip())
        for i, a in enumerate(self.axes):
            if a.key == key:
                self.axes[i] = new
                return
        self.axes.append(new)

    def remove_axis(self, key: str) -> None:
        self.axes = [a for a in self.axes if a.key != key]

    def axis(self, key: str) -> AxisSpec | None:
        return next((a for a in self.axes if a.key == key), None)

    def worker_count(self) -> int:
        """The local worker processes a sweep started now uses."""
        if self.workers is not None:
            return self.workers
        from explorer.sweep.executors import default_workers

        return default_workers()

    def specs(self) -> list[tuple[str, str]]:
        return [a.spec for a in self.axes]

    def plan_for(self, config: Mapping[str, Any], registry: Registry) -> SweepPlan:
        """The points of these axes over ``config`` (raises ``SweepError``)."""
        from explorer.sweep import plan_sweep

        return plan_sweep(config, registry, self.specs(), seeds=self.seeds)

    def cli(self, sets: Sequence[str] = ()) -> str:
        """The ``pgtable-explorer sweep`` arguments that run the same axes."""
        parts = [a.flag for a in self.axes]
        if self.seeds > 1:
            parts.append(f"--seeds {self.seeds}")
        if self.workers is not None:
            parts.append(f"--workers {self.workers}")
        return " ".join([*sets, *parts])

    def stop(self, wait: float = 0.0) -> None:
        """Stop the running sweep (from any thread); wait up to ``wait`` s for it to close."""
        sweep = self.sweep
        if sweep is not None and self.running:
            sweep.stop()
            if wait:
                self.done.wait(wait)
