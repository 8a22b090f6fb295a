"""explorer.api.CommandQueue and FlushTally: the ring the vendor models share, and the kernel's fan-out
over the SVA-bound mms (numbers derived by hand)."""

from __future__ import annotations

from explorer.api import CommandQueue, FlushTally


def _one_mm(q: CommandQueue, tally: FlushTally) -> None:
    """Two invalidations (130 ns each) and a completion wait (20 ns), after 100 ns of writing."""
    q.catch_up(tally.t)
    ready = q.room(tally.t, 3)
    if ready > tally.t:
        tally.stall(ready)
    tally.t += 100
    tally.effective = q.push(tally.t, 130)
    q.push(tally.t, 130)
    tally.count("INV", 2)
    done = q.push(tally.t, 20)
    tally.count("WAIT")
    tally.wait(done)


def test_a_full_ring_stalls_and_commands_complete_in_order() -> None:
    q = CommandQueue(4)
    assert [q.push(0, 10) for _ in range(4)] == [10, 20, 30, 40]
    assert q.room(5, 1) == 10  # full: the first command's completion frees an entry
    assert q.room(5, 3) == 30 and q.peak == 4


def test_the_shortcut_for_identical_mms_equals_running_each() -> None:
    fast, slow = CommandQueue(64), CommandQueue(64)
    t_fast = fast.flush_each_mm(FlushTally(1000), 5, lambda t: _one_mm(fast, t))
    t_slow = FlushTally(1000)
    for _ in range(5):  # what flush_each_mm does when the ring is busy
        _one_mm(slow, t_slow)
    slow.waits += t_slow.waits
    # what a model reads and reports: the flush's cost, the queue's waits and peak occupancy...
    cost = t_fast.cost(1000, "kernel")
    assert cost == t_slow.cost(1000, "kernel")
    assert (fast.waits, fast.peak) == (slow.waits, slow.peak) == (5, 3)
    # ...and when the hardware gets to the next command: a command queued at the flush's start
    # completes only after all five mms (the ring executes in order), one queued at its end at once
    end = 1000 + 5 * 380
    assert fast.push(1000, 10) == slow.push(1000, 10) == end + 10
    assert fast.push(end + 100, 10) == slow.push(end + 100, 10) == end + 110
    assert (cost.duration_ns, cost.wait_ns, cost.commands) == (5 * 380, 5 * 280, {"INV": 10, "WAIT": 5})
    # the entries drop when the last mm's first invalidation completes: 4 mms, then 100 + 130 ns
    assert cost.effective_ns == 4 * 380 + 230


def test_a_busy_ring_stalls_the_submitter_and_runs_every_mm() -> None:
    def busy() -> CommandQueue:  # another submitter fills the ring with 4 x 300 ns at t = 1000
        return CommandQueue(4, bg_burst=4, bg_period=1000, bg_exec=300)

    q = busy()
    one = q.flush_each_mm(FlushTally(1000), 1, lambda t: _one_mm(q, t))
    # room for 3 once the third burst command completes (1900); the invalidations queue behind the
    # burst (done at 2200): 2330, 2460, the wait 2480
    assert (one.stalls, one.stall_ns, one.t, one.wait_ns, one.effective) == (1, 900, 2480, 480, 2330)
    q = busy()
    two = q.flush_each_mm(FlushTally(1000), 2, lambda t: _one_mm(q, t))
    assert two.waits == 2 == q.waits and two.commands == {"INV": 4, "WAIT": 2} and two.t > 2480
