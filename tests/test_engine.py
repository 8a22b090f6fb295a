"""The event engine, the workqueue's schedule_work() semantics and the streaming metrics."""

from __future__ import annotations

from typing import Any

import pytest

from explorer.sim.engine import Engine, Mutex
from explorer.sim.metrics import LogHistogram, TimeSeries
from explorer.sim.workqueue import Timer, WorkItem
from explorer.units import UnitError, format_duration, format_rate, parse_duration, parse_rate


def test_events_run_in_time_then_insertion_order() -> None:
    eng = Engine()
    seen: list[str] = []
    eng.call_at(20, seen.append, "b")
    eng.call_at(10, seen.append, "a")
    eng.call_at(20, seen.append, "c")
    eng.call_at(30, seen.append, "late")
    eng.run(25)
    assert seen == ["a", "b", "c"]
    assert eng.now == 25
    assert eng.events == 3


def test_generator_process_delays_and_return_value() -> None:
    eng = Engine()
    log: list[tuple[int, str]] = []
    done: list[Any] = []

    def proc():
        log.append((eng.now, "start"))
        yield 5
        log.append((eng.now, "mid"))
        yield 7
        return "ok"

    eng.start(proc(), done.append)
    eng.run(100)
    assert log == [(0, "start"), (5, "mid")]
    assert done == ["ok"]


def test_mutex_serialises_in_fifo_order() -> None:
    eng = Engine()
    m = Mutex("m")
    order: list[tuple[str, int]] = []

    def user(name: str, hold: int):
        yield from m.lock()
        order.append((name, eng.now))
        yield hold
        m.unlock(eng)

    eng.start(user("a", 10))
    eng.start(user("b", 5))
    eng.start(user("c", 1))
    eng.run(1000)
    assert order == [("a", 0), ("b", 10), ("c", 15)]
    assert not m.held


class _StubKernel:
    """Just what WorkItem and Timer need: an engine, the delay, and a kworker that runs `hold` ns."""

    def __init__(self, delay: int, hold: int) -> None:
        self.engine = Engine()
        self.workqueue_delay = delay
        self.hold = hold
        self.starts: list[int] = []
        self.cpus: list[int] = []
        self.timers: list[int] = []
        self.tracer = None  # the kernel's trace sink: off

    def wait_for_cpu(self, work: WorkItem) -> bool:
        return False  # every CPU is free: the kworker runs once woken

    def run_work(self, work: WorkItem) -> None:
        self.starts.append(self.engine.now)
        self.cpus.append(work.cpu)

        def body():
            yield self.hold
        self.engine.start(body(), lambda _: work.done())

    def run_timer(self, timer: Timer) -> None:
        self.timers.append(self.engine.now)


def test_schedule_work_on_pending_item_is_a_no_op() -> None:
    k = _StubKernel(delay=10, hold=100)
    w = WorkItem(k, "w", lambda ctx: None)  # type: ignore[arg-type]
    assert w.schedule(0) is True
    assert w.state == "pending"
    assert w.schedule(0) is False
    k.engine.run(1000)
    assert k.starts == [10]
    assert w.runs == 1
    assert w.state == "idle"


def test_schedule_work_while_running_runs_again_straight_after() -> None:
    k = _StubKernel(delay=10, hold=100)
    w = WorkItem(k, "w", lambda ctx: None)  # type: ignore[arg-type]
    w.schedule(0)
    k.engine.run(50)  # started at 10, runs until 110
    assert w.state == "running"
    assert w.schedule(0) is True
    assert w.state == "running+pending"
    assert w.schedule(0) is False  # already pending
    k.engine.run(10_000)
    # worker_thread() loops while its pool has work: the second run starts the instant the first
    # ends (10 + 100), with no second scheduling delay (which would have made it 120).
    assert k.starts == [10, 110]
    assert w.runs == 2


def test_idle_item_is_queued_on_the_calling_cpu_a_running_one_on_its_own() -> None:
    k = _StubKernel(delay=10, hold=100)
    w = WorkItem(k, "w", lambda ctx: None)  # type: ignore[arg-type]
    w.schedule(3)  # system_wq is per-CPU: CPU 3's kworker runs it
    k.engine.run(50)
    w.schedule(5)  # running on CPU 3: __queue_work() keeps it on the pool it runs on
    k.engine.run(10_000)
    assert k.cpus == [3, 3]
    w.schedule(5)  # idle again: now CPU 5's
    k.engine.run(20_000)
    assert k.cpus == [3, 3, 5]
    assert k.starts[2] == 10_000 + 10


def test_timer_cancel() -> None:
    k = _StubKernel(delay=0, hold=0)
    t1 = Timer(k, lambda ctx: None, 0, "s")  # type: ignore[arg-type]
    t2 = Timer(k, lambda ctx: None, 0, "s")  # type: ignore[arg-type]
    k.engine.call_at(10, t1.fire)
    k.engine.call_at(20, t2.fire)
    assert t2.cancel() is True
    assert t2.cancel() is False
    k.engine.run(100)
    assert k.timers == [10]
    assert not t1.armed


def test_histogram_is_exact_for_small_values_and_bounded_above() -> None:
    h = LogHistogram()
    for v in range(1, 61):  # exact region
        h.record(v)
    assert h.percentile(50) == 30
    assert h.percentile(99) == 60
    assert h.summary()["min"] == 1
    big = LogHistogram()
    values = [1000 + 37 * i for i in range(1000)]
    for v in values:
        big.record(v)
    exact_p99 = sorted(values)[989]
    assert exact_p99 <= big.percentile(99) <= exact_p99 * (1 + 1 / 64)
    assert big.percentile(100) == big.max == max(values)
    assert len(big.buckets) < 400


def test_time_series_memory_is_fixed_however_long_the_run() -> None:
    ts = TimeSeries(size=16, width=10, mode="max")
    for t in range(0, 100_000, 7):
        ts.add(t, t % 1000)
    assert len(ts.bins) <= 16
    assert max(ts.bins) == 999
    s = TimeSeries(size=8, width=10, mode="sum")
    for t in range(0, 10_000, 10):
        s.add(t, 1)
    assert sum(s.bins) == 1000  # merging bins keeps the total


@pytest.mark.parametrize(
    ("text", "ns"),
    [("20us", 20_000), ("5ms", 5_000_000), ("1.5s", 1_500_000_000), ("250ns", 250), (1234, 1234)],
)
def test_durations_parse_and_format_back(text: Any, ns: int) -> None:
    assert parse_duration(text) == ns
    assert parse_duration(format_duration(ns)) == ns


def test_rates_parse_and_format_back() -> None:
    assert parse_rate("2000/s") == 2000.0
    assert parse_rate("5/ms") == 5000.0
    assert parse_rate("50k/s") == 50_000.0
    for r in (2000.0, 0.1, 123.456):
        assert parse_rate(format_rate(r)) == r


@pytest.mark.parametrize("bad", ["20", "fast", "1.5ns", "-3us", True])
def test_bad_durations_say_what_is_expected(bad: Any) -> None:
    with pytest.raises(UnitError):
        parse_duration(bad)
