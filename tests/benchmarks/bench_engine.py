"""2. Engine floor: the bare event loop on a no-op model against a plain heapq loop, same process."""

from __future__ import annotations

from heapq import heappop, heappush
from typing import Any

from tests.benchmarks.common import Figure, alternate, median

N_ACTORS = 64
#: Fixed, varied delays so the heap sees a realistic mix of times (no two actors in lockstep).
DELAYS = [97 + (i * 7919) % 1009 for i in range(N_ACTORS)]


def _events_until(events: int) -> int:
    # Each actor fires about until / mean(DELAYS) times.
    return events * (sum(DELAYS) // len(DELAYS)) // N_ACTORS


def engine_callbacks(events: int) -> int:
    """The engine with plain callbacks that reschedule themselves (``call_in``)."""
    from explorer.sim.engine import Engine

    eng = Engine()
    call_in = eng.call_in

    def tick(i: int) -> None:
        call_in(DELAYS[i], tick, i)

    for i in range(N_ACTORS):
        eng.call_at(i, tick, i)
    eng.run(_events_until(events))
    return eng.events


def engine_processes(events: int) -> int:
    """The engine with generator processes that only wait (``yield delay``)."""
    from explorer.sim.engine import Engine

    eng = Engine()

    def actor(d: int) -> Any:
        while True:
            yield d

    for i in range(N_ACTORS):
        eng.start(actor(DELAYS[i]))
    eng.run(_events_until(events))
    return eng.events


def bare_heapq(events: int) -> int:
    """What pure Python can do: a heap of (time, seq, fn, arg), pop, call, push."""
    heap: list[tuple[int, int, Any, int]] = []
    seq = 0
    now = 0

    def tick(i: int) -> None:
        nonlocal seq
        seq += 1
        heappush(heap, (now + DELAYS[i], seq, tick, i))

    for i in range(N_ACTORS):
        seq += 1
        heappush(heap, (i, seq, tick, i))
    until = _events_until(events)
    n = 0
    while heap and heap[0][0] <= until:
        now, _, fn, arg = heappop(heap)
        fn(arg)
        n += 1
    return n


def run(quick: bool = False) -> list[Figure]:
    events = 200_000 if quick else 500_000
    counts: dict[str, int] = {}

    def side(name: str, fn: Any) -> Any:
        return lambda: counts.__setitem__(name, fn(events))

    rounds = 3
    t = alternate(side("engine", engine_callbacks), side("heapq", bare_heapq), rounds)
    eng_rate = counts["engine"] / median(t["a_wall"])
    bare_rate = counts["heapq"] / median(t["b_wall"])
    p = alternate(side("proc", engine_processes), side("heapq2", bare_heapq), rounds)
    proc_rate = counts["proc"] / median(p["a_wall"])
    bare_rate2 = counts["heapq2"] / median(p["b_wall"])
    return [
        Figure("engine_vs_heapq", "engine loop rate / bare heapq loop rate", round(eng_rate / bare_rate, 2), "",
               ">= 0.5", note=f"callbacks {eng_rate / 1e6:.2f} M ev/s vs heapq {bare_rate / 1e6:.2f} M ev/s",
               extra={"engine_events_per_s": round(eng_rate), "heapq_events_per_s": round(bare_rate)}),
        Figure("engine_processes_vs_heapq", "engine with generator processes / heapq",
               round(proc_rate / bare_rate2, 2), "",
               note=f"processes {proc_rate / 1e6:.2f} M ev/s vs heapq {bare_rate2 / 1e6:.2f} M ev/s",
               extra={"engine_process_events_per_s": round(proc_rate)}),
    ]
