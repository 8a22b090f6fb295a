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

from explorer.session.client import Session, run_to_end
from explorer.session.data import LIVE_KEYS, STATES, RunError, Snapshot, TraceFile

__all__ = [
    "LIVE_KEYS",
    "STATES",
    "RunError",
    "Session",
    "Snapshot",
    "TraceFile",
    "run_to_end",
]
