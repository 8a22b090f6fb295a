"""A discrete-event engine in integer nanoseconds with generator processes, and its background lane.

A process is a generator. It yields an ``int`` to spend that many nanoseconds, or a waitable
(anything with ``add_waiter(callback)``) to block until the waitable wakes it. Plain callbacks can
be scheduled with :meth:`Engine.call_at`. Ties are broken by insertion order, so a run is fully
determined by its inputs.

The scheduling protocol
-----------------------
The engine alone owns its heap of ``(time, seq, callback, argument)`` and its insertion counter
``seq``: no other module reads or writes them. Everything else schedules through

- :meth:`Engine.call_at` / :meth:`Engine.call_in`: one callback at a time (a hot caller binds the
  method to a local or keeps it in its context tuple: one attribute load saved per call);
- :meth:`Engine.start`: a generator :class:`Process` (its int steps are pushed here, inline);
- :class:`DeadlineProcess`: a workload's process, cut at the run's duration between operations;
- :meth:`Engine.add_background`: the background page traffic, as the engine's *lane*.

The lane
--------
The rest of the kernel allocating and freeing data pages is what reuses a freed page-table page,
and it is most of a run's events: two Poisson streams, one allocating a page on a random CPU and
one freeing the oldest data page to a random CPU's list. Those events only change the allocator's
lists and schedule nothing, so they are not heap entries: :meth:`Engine.run` runs them in its own
loop, just before the first heap event they precede, in exactly the order the heap would have given
them (time, then the counter at the moment each was scheduled): results are the same bit for bit
as with one heap event each (``tests/test_determinism.py`` checks it against that plain version).
The loop inlines :meth:`explorer.sim.memory.Memory.alloc_data` and
:meth:`~explorer.sim.memory.Memory.free_oldest_data` (keep them in step) and
:func:`explorer.sim.streams.exp_gap`.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from heapq import heappop, heappush
from math import log
from random import Random
from types import GeneratorType
from typing import Any, Protocol

from explorer.sim.errors import OutOfMemory, PluginError, PluginMistake, SimulatorError, source_location
from explorer.sim.memory import DATA, FREE, Memory
from explorer.sim.streams import exp_gap

#: a time later than any event
NEVER = 1 << 100

__all__ = ["NEVER", "SERVICE_NAMES", "BackgroundLane", "DeadlineProcess", "Engine", "Mutex", "PluginError",
           "PluginMistake", "Process", "SimulatorError", "bad_yield_mistake", "name_service", "source_location"]


#: The names of kernel services whose generators are not Python generators (compiled by mypyc, whose
#: generator objects have no ``gi_code``), by their type: the service registers itself
#: (:func:`name_service`), so a plugin that yields one instead of running it is told which.
SERVICE_NAMES: dict[type, str] = {}


def name_service(gen: Any, name: str) -> None:
    """Record that generators of ``gen``'s type are the kernel service ``name`` (compiled ones only:
    a Python generator names itself through ``gi_code``)."""
    if type(gen) is not GeneratorType and type(gen) not in SERVICE_NAMES:
        SERVICE_NAMES[type(gen)] = name


def bad_yield_mistake(gen: Generator[Any, Any, Any], y: Any) -> PluginMistake:
    """What to tell the author of the generator (somewhere under ``gen``) that yielded ``y``.

    The location is left to the mistake (:meth:`PluginMistake.raised_at`): it is thrown into
    ``gen``, so it is raised at the ``yield`` that yielded ``y``, however deep under ``gen`` and
    whatever compiled generators are between."""
    name = y.gi_code.co_name if isinstance(y, GeneratorType) else SERVICE_NAMES.get(type(y))
    if name is not None:
        y.close()  # never started: closing it runs nothing
        return PluginMistake(None, f"yielded the generator {name}() instead of running it; write "
                                   f"`yield from k.{name}()` (a plain `yield` hands the kernel a generator that "
                                   "never runs: the work it stands for, such as the IOMMU flush, never happens)")
    shown = repr(y)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    hint = f"; write `yield int({shown})`" if isinstance(y, float) and y == y and abs(y) != float("inf") else ""
    return PluginMistake(None, f"yielded {shown} (a {type(y).__name__}), which the kernel cannot wait on: yield "
                               "an int, the nanoseconds of CPU time to spend (`yield 1000`), or run a kernel "
                               f"service with `yield from` (`yield from k.iommu_sva_invalidate_kva_range()`){hint}")


class BackgroundLane:
    """The background page traffic's state between two runs of :meth:`Engine.run` (see the module).

    Each of the two streams has one pending event: its time (``ta``: the next allocation, ``tf``:
    the next free) and the engine's counter when it was scheduled (``ca``, ``cf``), which places it
    among heap events of the same nanosecond. ``alloc_first`` breaks a tie between the two pending
    events themselves: the pending allocation was scheduled first iff the last lane event was a free.
    """

    __slots__ = ("alloc_first", "ca", "cf", "cpus", "events", "memory", "rate", "rng", "ta", "tf")

    def __init__(self, memory: Memory, rng: Random, rate: float, cpus: int, now: int, seq: int) -> None:
        self.memory = memory
        self.rng = rng
        self.rate = rate
        self.cpus = cpus
        if rate > 0:
            self.ta = now + exp_gap(rng, rate)
            self.tf = now + exp_gap(rng, rate)
        else:
            self.ta = self.tf = NEVER
        self.ca = self.cf = seq
        self.alloc_first = True
        #: lane events run so far
        self.events = 0

    @property
    def next_t(self) -> int:
        """Time of the lane's next event (:data:`NEVER` when it has none)."""
        return self.ta if self.ta < self.tf else self.tf


_IDLE_STREAM = Random(0)


class Engine:
    """Heap of ``(time, seq, callback, argument)``; ``run(until)`` dispatches in order (module doc)."""

    __slots__ = ("_events", "_heap", "_lane", "_seq", "now")

    def __init__(self) -> None:
        self.now = 0
        self._events = 0
        self._heap: list[tuple[int, int, Callable[[Any], None], Any]] = []
        self._seq = 0
        # idle until add_background; an idle lane never draws, so all share one stream (seeding
        # one is a few microseconds, a sizeable part of a short run's set-up)
        self._lane = BackgroundLane(Memory(0, 1), _IDLE_STREAM, 0.0, 1, 0, 0)

    def call_at(self, t: int, fn: Callable[[Any], None], arg: Any = None) -> None:
        """Call ``fn(arg)`` at simulated time ``t`` (not before ``now``)."""
        self._seq += 1
        heappush(self._heap, (t, self._seq, fn, arg))

    def call_in(self, dt: int, fn: Callable[[Any], None], arg: Any = None) -> None:
        """Call ``fn(arg)`` ``dt`` nanoseconds from now."""
        self._seq += 1
        heappush(self._heap, (self.now + dt, self._seq, fn, arg))

    def clear(self) -> None:
        """Drop every queued event (a finished run's :meth:`~explorer.sim.build.Simulation.close`)."""
        self._heap.clear()

    @property
    def events(self) -> int:
        """Events dispatched so far (lane events included)."""
        return self._events + self._lane.events

    def add_background(self, memory: Memory, rng: Random, rate: float, cpus: int) -> BackgroundLane:
        """Start the background page traffic on ``memory``: an allocation and a free at ``rate`` per
        second each, on CPUs drawn from ``rng`` (which draws the CPU, then the gap, per event)."""
        self._lane = BackgroundLane(memory, rng, rate, cpus, self.now, self._seq)
        return self._lane

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
        """Time of the next event, heap or lane (None when there is none)."""
        t = self._heap[0][0] if self._heap else None
        lane_t = self._lane.next_t
        if lane_t < NEVER and (t is None or lane_t < t):
            t = lane_t
        return t

    def run(self, until: int) -> None:
        """Dispatch every event with time <= ``until``; ``now`` ends at ``until``."""
        self._loop(until, None)

    def run_until_true(self, until: int, done: Callable[[], bool]) -> bool:
        """Like :meth:`run`, but stop right after the first event that makes ``done()`` true.

        Returns whether ``done()`` became true; ``now`` is then that event's time, so where a run
        stops does not depend on how it was stepped. (Lane events never change ``done()``.)
        """
        if done():
            return True
        return self._loop(until, done) or done()

    def _loop(self, until: int, done: Callable[[], bool] | None) -> bool:
        """The run loop, heap and lane merged (the only one): True if it stopped on ``done()``.

        Between two heap events, the lane events ordered before the second run in an inner loop per
        stream (the earlier of the two streams' events, strictly before the other's and before the
        heap event, needs no tie rule). The lane's state stays in locals for the whole call and is
        written back when it returns or raises.
        """
        heap = self._heap
        pop = heappop
        lane = self._lane
        mem = lane.memory
        state = mem.state
        free_lists = mem.free_lists
        npages = mem.pages
        ring = mem.data_ring
        rnd = lane.rng.random
        rate = lane.rate
        cpus = lane.cpus
        lta, lca, ltf, lcf, af = lane.ta, lane.ca, lane.tf, lane.cf, lane.alloc_first
        lane_t = lta if lta < ltf else ltf
        n = 0
        ln = 0
        stopped = False
        last = False
        try:
            while True:
                if heap and heap[0][0] <= until:
                    t, s, fn, arg = pop(heap)
                    if t < lane_t:
                        self.now = t
                        fn(arg)
                        n += 1
                        if done is not None and done():
                            stopped = True
                            break
                        continue
                elif lane_t <= until and lane_t < NEVER:  # no heap event left up to until: the lane's last ones
                    last = True
                    t = until + 1
                    s = 0
                else:
                    break
                # The lane events ordered before the heap event (t, s), each scheduled when the last
                # heap event ended (counter c). The free count moves with the data pages: +1 for
                # each one freed, -1 for each one allocated.
                c = self._seq
                # the data pages' ring in locals for the batch (heap events change it between batches)
                head = mem.data_head
                count = mem.data_count
                d0 = count
                while True:
                    if lta < ltf or (lta == ltf and af):
                        if lta >= t and (lta > t or lca >= s):
                            break
                        lim = ltf if ltf < t else t
                        while True:
                            # Memory.alloc_data(cpu), inlined; a free page has no owner
                            fl = free_lists[int(rnd() * cpus)]
                            if fl:
                                page = fl.pop()
                            elif mem.zone_next < npages:  # the zone's next page
                                page = mem.zone_next
                                mem.zone_next = page + 1
                            else:
                                donor = max(free_lists, key=len)
                                if not donor:
                                    self.now = lta
                                    mem.free_count -= count - d0
                                    mem.data_head = head
                                    mem.data_count = count
                                    raise OutOfMemory("no free page left in the simulated machine")
                                page = donor.pop()
                            state[page] = DATA
                            tail = head + count
                            if tail >= npages:
                                tail -= npages
                            ring[tail] = page
                            count += 1
                            lta += int(-log(1.0 - rnd()) / rate * 1e9) + 1  # exp_gap, inlined
                            ln += 1
                            if lta >= lim:
                                break
                        lca = c
                        af = False
                    else:
                        if ltf >= t and (ltf > t or lcf >= s):
                            break
                        lim = lta if lta < t else t
                        while True:
                            # Memory.free_oldest_data(cpu), inlined; a data page has no owner
                            cpu = int(rnd() * cpus)
                            if count:
                                page = ring[head]
                                head += 1
                                if head == npages:
                                    head = 0
                                count -= 1
                                state[page] = FREE
                                free_lists[cpu].append(page)
                            ltf += int(-log(1.0 - rnd()) / rate * 1e9) + 1  # exp_gap, inlined
                            ln += 1
                            if ltf >= lim:
                                break
                        lcf = c
                        af = True
                mem.free_count -= count - d0
                mem.data_head = head
                mem.data_count = count
                lane_t = lta if lta < ltf else ltf
                if last:
                    break
                self.now = t
                fn(arg)
                n += 1
                if done is not None and done():
                    stopped = True
                    break
        finally:
            lane.ta, lane.ca, lane.tf, lane.cf, lane.alloc_first = lta, lca, ltf, lcf, af
            lane.events += ln
            self._events += n
        if not stopped and self.now < until:
            self.now = until
        return stopped


class Process:
    """Drives one generator: ints are delays, other yielded objects are waited on."""

    __slots__ = ("_step", "engine", "gen", "on_done")

    def __init__(self, engine: Engine, gen: Generator[Any, Any, Any], on_done: Callable[[Any], None] | None) -> None:
        self.engine = engine
        self.gen = gen
        self.on_done = on_done
        # A delay is queued as (this class's resume, the process): the heap calls step(process).
        # A bound method kept on the process would be a reference cycle, and every finished
        # process (a kworker run, a workload) would then wait for the cyclic collector.
        self._step: Callable[[Any], None] = type(self).resume  # type: ignore[assignment]

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
            heappush(eng._heap, (eng.now + y, eng._seq, self._step, self))
        else:
            add = getattr(y, "add_waiter", None)  # checked only here, off the int fast path
            if add is None:
                self.bad_yield(y)
            else:
                add(self.resume)

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
            self.engine.call_in(y, self._step, self)
        else:
            add = getattr(y, "add_waiter", None)
            if add is None:
                self.bad_yield(y)
            else:
                add(self.resume)


class _InOperation(Protocol):
    """What a :class:`DeadlineProcess` asks of its workload: whether an operation is under way."""

    @property
    def in_op(self) -> int: ...


class DeadlineProcess(Process):
    """A workload's process: runs until the run's duration, never cutting an operation in half.

    This is :meth:`Process.resume` with the workload's checks folded in (its errors become
    :class:`PluginError` naming ``label``, and a delay that would reach ``deadline`` while
    ``busy.in_op`` is 0 ends it) rather than a generator wrapped around the workload's: one
    generator frame fewer on every step of every workload, the hottest path of the kernel side.
    """

    __slots__ = ("busy", "deadline", "label")

    def __init__(self, engine: Engine, gen: Generator[Any, Any, Any], label: str, busy: _InOperation,
                 deadline: int) -> None:
        super().__init__(engine, gen, None)
        self.label = label
        self.busy = busy
        self.deadline = deadline

    def resume(self, value: Any = None) -> None:
        try:
            y = self.gen.send(value)
        except StopIteration:
            return
        except SimulatorError:
            raise
        except Exception as exc:
            raise PluginError("workload", self.label, exc) from exc
        if type(y) is int:
            eng = self.engine
            if not self.busy.in_op and eng.now + y >= self.deadline:
                self.gen.close()
                return
            eng._seq += 1
            heappush(eng._heap, (eng.now + y, eng._seq, self._step, self))
        else:
            add = getattr(y, "add_waiter", None)
            if add is not None:
                add(self.resume)
                return
            try:  # a strategy's mistake reaches here through `yield from`: its wrapper names it
                self.bad_yield(y)
            except SimulatorError:
                raise
            except Exception as exc:
                raise PluginError("workload", self.label, exc) from exc


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
