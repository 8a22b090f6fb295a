"""The simulator's own errors: a run that stops for a reason the simulator names.

Shared by the engine, the memory model and the kernel (and re-exported by ``explorer.sim.engine``
and ``explorer.sim.memory``, where the faces import them from), so none of them has to import the
others for an exception class.
"""

from __future__ import annotations

import os
import traceback


class SimulatorError(Exception):
    """The run stopped for a reason the simulator itself names (a plugin raised, the machine ran out
    of pages). The wrappers around plugin code let these through instead of blaming the plugin."""


class PluginMistake(Exception):
    """A plugin used the kernel API wrongly (yielded something the engine cannot wait on, or called
    a kernel service without ``yield from``). Raised *in the plugin's frame* where possible, so the
    plugin's wrapper blames the plugin; the message names the file and line and what to write."""

    PREFIX = "plugin mistake: "

    def __init__(self, where: str | None, what: str) -> None:
        #: ``FILE:LINE``; ``None``: the line the mistake is raised at (see :meth:`raised_at`)
        self.where = where
        self.what = what
        super().__init__(f"{self.PREFIX}{where or '?'}: {what}")

    def raised_at(self) -> str:
        """Where this exception was raised: the innermost entry of its traceback outside the
        simulator's own modules (``?`` before it is raised). The engine throws a bad yield's mistake
        into the generator that yielded, so this is the plugin's ``yield`` line, found without
        walking the generators' ``gi_yieldfrom`` chain: a generator compiled by mypyc (the compiled
        core's kernel) has none, and the traceback entries mypyc adds for its compiled functions
        (relative file names of ``explorer/sim``) may come after the plugin's, so they are skipped."""
        tb = self.__traceback__
        innermost = outside = None
        while tb is not None:
            innermost = (tb.tb_frame.f_code.co_filename, tb.tb_lineno)
            if not _in_simulator(innermost[0]):
                outside = innermost
            tb = tb.tb_next
        found = outside or innermost
        return "?" if found is None else source_location(*found)

    def __str__(self) -> str:
        return f"{self.PREFIX}{self.where or self.raised_at()}: {self.what}"


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


class OutOfMemory(SimulatorError):
    """The simulated machine has no free page left: the config's ``kernel.pages`` is too small for
    what it runs. Never a plugin's fault, so the plugin wrappers let it through unwrapped."""


#: this package's folder (the simulator's modules) and the checkout's, which mypyc's traceback
#: entries are relative to
_SIM_DIR = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(os.path.dirname(_SIM_DIR))


def _in_simulator(filename: str) -> bool:
    path = filename if os.path.isabs(filename) else os.path.join(_ROOT, filename)
    return os.path.dirname(os.path.abspath(path)) == _SIM_DIR


def source_location(filename: str, line: int) -> str:
    """``plugins/x.py:12`` (relative to the working directory when the file is under it)."""
    try:
        rel = os.path.relpath(filename)
    except ValueError:  # another drive (Windows)
        rel = filename
    return f"{filename if rel.startswith('..') else rel}:{line}"
