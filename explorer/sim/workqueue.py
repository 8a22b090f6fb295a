"""The system workqueue with the kernel's ``schedule_work()`` semantics, and one-shot timers.

``system_wq`` is per-CPU. ``schedule_work()`` on a pending item does nothing and returns False. On
an idle item it makes the item pending on the calling CPU, and that CPU's kworker starts it after
the scheduling delay, once the CPU is free to run it (see :meth:`Kernel.cpu_blocked`: without full
preemption a kworker cannot run until the task that woke it leaves the CPU). On a running item it
makes it pending again **on the CPU where it is executing** (``__queue_work()`` keeps a running item
on its last pool, so a work function never runs twice concurrently), and that kworker runs it again
straight after the current run: ``worker_thread()`` loops while its pool has work, so there is no
second wake-up and no second scheduling delay.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from explorer.sim.engine import Engine


class Kernel(Protocol):
    """What work items and timers use of :class:`explorer.sim.kernel.Kernel`. A protocol, not the
    class: with the kernel compiled (the compiled core) an attribute typed with the class would
    check its type at run time, and the workqueue is tested against a stub kernel."""

    @property
    def engine(self) -> Engine: ...
    @property
    def workqueue_delay(self) -> int: ...
    @property
    def tracer(self) -> Any: ...
    def trace(self, event: str, /, **fields: Any) -> None: ...
    def wait_for_cpu(self, work: WorkItem) -> bool: ...
    def run_work(self, work: WorkItem) -> None: ...
    def work_done(self, work: WorkItem) -> None: ...
    def run_timer(self, timer: Timer) -> None: ...


class WorkItem:
    """A ``struct work_struct``: a function plus the PENDING bit and whether a kworker runs it."""

    __slots__ = ("cpu", "func", "kernel", "name", "oneshot", "pending", "running", "runs")

    def __init__(self, kernel: Kernel, name: str, func: Callable[..., Any]) -> None:
        self.kernel = kernel
        self.name = name
        self.func = func
        self.pending = False
        self.running = False
        self.runs = 0
        self.cpu = 0
        self.oneshot = False  # freed by its own work function once it has run (v3's kzalloc'd item)

    @property
    def state(self) -> str:
        if self.running:
            return "running+pending" if self.pending else "running"
        return "pending" if self.pending else "idle"

    def schedule(self, cpu: int) -> bool:
        if self.pending:
            return False
        self.pending = True
        if not self.running:
            # Idle: queued on the calling CPU's pool (system_wq is per-CPU). A running item stays
            # on the CPU it runs on and is picked up again by that worker in done().
            self.cpu = cpu
            self.kernel.engine.call_in(self.kernel.workqueue_delay, self._woken)
        return True

    def _woken(self, _: Any = None) -> None:
        """The CPU's kworker is woken: it runs the item now, or as soon as the CPU lets it."""
        if not self.kernel.wait_for_cpu(self):
            self._start()

    def _start(self, _: Any = None) -> None:
        self.pending = False
        self.running = True
        self.runs += 1
        self.kernel.run_work(self)

    def done(self) -> None:
        self.running = False
        if self.pending:
            # worker_thread() finds the item on its own pool again: it runs it at once, on this CPU.
            self._start()
        elif self.oneshot:
            self.kernel.work_done(self)


class Timer:
    """An armed one-shot timer whose function runs in atomic (softirq) context."""

    __slots__ = ("_armed", "cpu", "expires", "func", "id", "kernel", "source")

    def __init__(self, kernel: Kernel, func: Callable[..., Any], cpu: int, source: str, expires: int = 0,
                 id: int = 0) -> None:
        self.kernel = kernel
        self.func = func
        self.cpu = cpu
        self.source = source
        self.expires = expires  # when it fires (ns), for the trace
        self.id = id  # names it in the trace: timer_start, timer_fire and timer_cancel carry it
        self._armed = True

    @property
    def armed(self) -> bool:
        return self._armed

    def cancel(self) -> bool:
        was = self._armed
        self._armed = False
        k = self.kernel
        if was and k.tracer is not None:
            k.trace("timer_cancel", cpu=self.cpu, timer=self.id, source=self.source,
                    remaining_ns=self.expires - k.engine.now)
        return was

    def fire(self, _: Any = None) -> None:
        if self._armed:
            self._armed = False
            if self.kernel.tracer is not None:
                self.kernel.trace("timer_fire", cpu=self.cpu, timer=self.id, source=self.source)
            self.kernel.run_timer(self)
