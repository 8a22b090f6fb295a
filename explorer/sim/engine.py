"""A discrete-event engine in integer nanoseconds with generator processes.

A process is a generator. It yields an ``int`` to spend that many nanoseconds, or a waitable
(anything with ``add_waiter(callback)``) to block until the waitable wakes it. Plain callbacks can
be scheduled with :meth:`Engine.call_at`. Ties are broken by insertion order, so a run is fully
determined by its inputs.

A *lane* (:meth:`Engine.set_lane`) is a stream of events that only change state of their own and
schedule nothing (the background page traffic): instead of one heap entry each, the lane's events
are run in a tight loop just before the next heap event that follows them, in exactly the order
they would have had in the heap (see :class:`Lane`).
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable, Generator
from heapq import heappop, heappush
from types import GeneratorType
from typing import Any, Protocol

#: a time later than any event
NEVER = 1 << 100


class SimulatorError(Exception):
    """The run stopped for a reason the simulator itself names (a plugin raised, the machine ran out
    of pages). The wrappers around plugin code let these through instead of blaming the plugin."""


class PluginError(SimulatorError):
    """A plugin raised while the simulation ran: the run failed (CLI exit status 1)."""

    def __init__(self, kind: str, name: str, exc: BaseException) -> None:
        self.kind = kind
        self.name = name
        #: a :class:`PluginMistake` says itself where and what: no exception type in front of it
        self.error = str(exc) if isinstance(exc, PluginMistake) else f"{type(exc).__name__}: {exc}"
        self.traceback_text = "".join(traceback.format_exception(exc))
        super().__init__(self.summary)

    @property
    def summary(self) -> str:
        """``strategy 'x' raised ValueError: ...``, or for a misuse of the kernel API
        ``strategy 'x': FILE:LINE: yielded ...`` (the CLI prints it after ``error:``)."""
        if self.error.startswith(PluginMistake.PREFIX):
            return f"{self.kind} {self.name!r}: {self.error[len(PluginMistake.PREFIX):]}"
        return f"{self.kind} {self.name!r} raised {self.error}"


class PluginMistake(Exception):
    """A plugin used the kernel API wrongly (yielded something the engine cannot wait on, or called
    a kernel service without ``yield from``). Raised *in the plugin's frame* where possible, so the
    plugin's wrapper blames the plugin; the message names the file and line and what to write."""

    PREFIX = "plugin mistake: "

    def __init__(self, where: str, what: str) -> None:
        super().__init__(f"{self.PREFIX}{where}: {what}")


def source_location(filename: str, line: int) -> str:
    """``plugins/x.py:12`` (relative to the working directory when the file is under it)."""
    try:
        rel = os.path.relpath(filename)
    except ValueError:  # another drive (Windows)
        rel = filename
    return f"{filename if rel.startswith('..') else rel}:{line}"


def _innermost(gen: Any) -> Any:
    """The generator that actually yielded: follow ``yield from`` down from ``gen``."""
    while True:
        sub = getattr(gen, "gi_yieldfrom", None)
        if sub is None or getattr(sub, "gi_frame", None) is None:
            return gen
        gen = sub


def bad_yield_mistake(gen: Generator[Any, Any, Any], y: Any) -> PluginMistake:
    """What to tell the author of the generator (somewhere under ``gen``) that yielded ``y``."""
    inner = _innermost(gen)
    frame = getattr(inner, "gi_frame", None)
    where = source_location(frame.f_code.co_filename, frame.f_lineno) if frame is not None else "?"
    if isinstance(y, GeneratorType):
        name = y.gi_code.co_name
        y.close()  # never started: closing it runs nothing
        return PluginMistake(where, f"yielded the generator {name}() instead of running it; write "
                                    f"`yield from k.{name}()` (a plain `yield` hands the kernel a generator that "
                                    "never runs: the work it stands for, such as the IOMMU flush, never happens)")
    shown = repr(y)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    hint = f"; write `yield int({shown})`" if isinstance(y, float) and y == y and abs(y) != float("inf") else ""
    return PluginMistake(where, f"yielded {shown} (a {type(y).__name__}), which the kernel cannot wait on: yield "
                                "an int, the nanoseconds of CPU time to spend (`yield 1000`), or run a kernel "
                                f"service with `yield from` (`yield from k.iommu_sva_invalidate_kva_range()`){hint}")


class Lane(Protocol):
    """Events kept out of the heap, run by the engine in their exact heap order.

    Each lane event was, in effect, scheduled at some moment of the run; its place among heap
    events at the same nanosecond is that moment, which the lane records as the engine's
    ``_seq`` counter at the time (``c``): it comes before a heap event of the same time iff
    ``c < seq`` of that event. A lane event may change only state that is read by heap events
    (never schedule events, never end a run), so running it late, just before the next heap
    event, is the same as running it on time.
    """

    #: ``advance(t, seq)``: run every lane event ordered before a heap event ``(t, seq)`` and
    #: return the time of the lane's next event (a plain function: it is called very often)
    advance: Callable[[int, int], int]

    #: optional (``getattr``; may be None): ``run_heap(until)`` does all of :meth:`Engine.run`,
    #: the heap's events and the lane's in the same order as ``run`` calling ``advance``, and
    #: keeps ``now`` and the event count the same way; it saves a call per heap event

    @property
    def next_t(self) -> int:
        """Time of the lane's next event (:data:`NEVER` when it has none)."""
        ...

    @property
    def events(self) -> int:
        """How many lane events have run."""
        ...


class Engine:
    """Heap of ``(time, seq, callback, argument)``; ``run(until)`` dispatches in order."""

    __slots__ = ("_events", "_heap", "_lane", "_seq", "now")

    def __init__(self) -> None:
        self.now = 0
        self._events = 0
        self._heap: list[tuple[int, int, Callable[[Any], None], Any]] = []
        self._seq = 0
        self._lane: Lane | None = None

    def call_at(self, t: int, fn: Callable[[Any], None], arg: Any = None) -> None:
        """Call ``fn(arg)`` at simulated time ``t`` (not before ``now``)."""
        self._seq += 1
        heappush(self._heap, (t, self._seq, fn, arg))

    def call_in(self, dt: int, fn: Callable[[Any], None], arg: Any = None) -> None:
        self._seq += 1
        heappush(self._heap, (self.now + dt, self._seq, fn, arg))

    @property
    def events(self) -> int:
        """Events dispatched so far (lane events included)."""
        return self._events + (self._lane.events if self._lane is not None else 0)

    def set_lane(self, lane: Lane | None) -> None:
        """Run ``lane``'s events in order with the heap's (one lane; set it before running)."""
        self._lane = lane

    def start(
        self,
        gen: Generator[Any, Any, Any],
        on_done: Callable[[Any], None] | None = None,
    ) -> Process:
        """Start a generator process now (its first step runs at once)."""
        p = Process(self, gen, on_done)
        p.resume(None)
        return p

    def next_time(self) -> int | None:
        t = self._heap[0][0] if self._heap else None
        if self._lane is not None and self._lane.next_t < NEVER and (t is None or self._lane.next_t < t):
            t = self._lane.next_t
        return t

    def run(self, until: int) -> None:
        """Dispatch every event with time <= ``until``; ``now`` ends at ``until``."""
        lane = self._lane
        if lane is not None:
            run_heap = getattr(lane, "run_heap", None)
            if run_heap is not None:  # the lane runs this very loop itself, with its events merged in
                run_heap(until)
                return
        heap = self._heap
        pop = heappop
        advance = lane.advance if lane is not None else None
        lane_t = NEVER if lane is None else lane.next_t
        n = 0
        try:
            while heap and heap[0][0] <= until:
                t, s, fn, arg = pop(heap)
                if t >= lane_t:
                    lane_t = advance(t, s)  # type: ignore[misc]
                self.now = t
                fn(arg)
                n += 1
            if lane_t <= until:
                advance(until + 1, 0)  # type: ignore[misc]
        finally:
            self._events += n
        if self.now < until:
            self.now = until

    def run_until_true(self, until: int, done: Callable[[], bool]) -> bool:
        """Like :meth:`run`, but stop right after the first event that makes ``done()`` true.

        Returns whether ``done()`` became true; ``now`` is then that event's time, so where a run
        stops does not depend on how it was stepped. (Lane events never change ``done()``.)
        """
        if done():
            return True
        heap = self._heap
        lane = self._lane
        advance = lane.advance if lane is not None else None
        lane_t = NEVER if lane is None else lane.next_t
        n = 0
        try:
            while heap and heap[0][0] <= until:
                t, s, fn, arg = heappop(heap)
                if t >= lane_t:
                    lane_t = advance(t, s)  # type: ignore[misc]
                self.now = t
                fn(arg)
                n += 1
                if done():
                    return True
            if lane_t <= until:
                advance(until + 1, 0)  # type: ignore[misc]
        finally:
            self._events += n
        if self.now < until:
            self.now = until
        return done()


class Process:
    """Drives one generator: ints are delays, other yielded objects are waited on."""

    __slots__ = ("_wake", "engine", "gen", "on_done")

    def __init__(self, engine: Engine, gen: Generator[Any, Any, Any], on_done: Callable[[Any], None] | None) -> None:
        self.engine = engine
        self.gen = gen
        self.on_done = on_done
        self._wake = self.resume  # one bound method, not a new one per step

    def resume(self, value: Any = None) -> None:
        try:
            y = self.gen.send(value)
        except StopIteration as stop:
            if self.on_done is not None:
                self.on_done(stop.value)
            return
        if type(y) is int:
            eng = self.engine
            eng._seq += 1
            heappush(eng._heap, (eng.now + y, eng._seq, self._wake, None))
        else:
            add = getattr(y, "add_waiter", None)  # checked only here, off the int fast path
            if add is None:
                self.bad_yield(y)
            else:
                add(self._wake)

    def bad_yield(self, y: Any) -> None:
        """``y`` is neither a delay nor a waitable: raise a :class:`PluginMistake` at the plugin's
        ``yield`` (thrown into the generator, so the wrapper around the plugin names it). A generator
        that swallows it and yields again carries on from that yield."""
        mistake = bad_yield_mistake(self.gen, y)
        try:
            y = self.gen.throw(mistake)
        except StopIteration as stop:
            if self.on_done is not None:
                self.on_done(stop.value)
            return
        if type(y) is int:
            self.engine.call_in(y, self._wake)
        else:
            add = getattr(y, "add_waiter", None)
            if add is None:
                self.bad_yield(y)
            else:
                add(self._wake)


class Mutex:
    """A sleeping lock: ``yield from mutex.lock()`` blocks (in FIFO order) while it is held."""

    __slots__ = ("_waiters", "held", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self.held = False
        self._waiters: list[Callable[[Any], None]] = []

    def add_waiter(self, wake: Callable[[Any], None]) -> None:
        self._waiters.append(wake)

    def lock(self) -> Generator[Any, Any, None]:
        while self.held:
            yield self
        self.held = True

    def unlock(self, engine: Engine) -> None:
        self.held = False
        if self._waiters:
            wake = self._waiters.pop(0)
            engine.call_in(0, wake)
