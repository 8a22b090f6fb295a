"""One vocabulary for why a run did not finish, used by every face: the CLI's exit status, the title
of the TUI's error panel and the ``failure`` of a sweep's result row all come from
:func:`classify_failure` and the table :data:`FAILURES`.

=============  ====  ==========================================================================
failure        exit  what happened
=============  ====  ==========================================================================
user           2     a mistake in the config, on the command line or in a file named there
                     (a bad value, ``kernel.pages`` too small for the workload, an output that
                     cannot be written): fix it and run again
plugin         1     a plugin raised, misused the kernel API or ended the run itself
                     (``sys.exit()``): its traceback names the line
timeout        1     the run went over its wall-clock limit (``run --timeout``, ``sweep --timeout``)
process        1     the process running the simulation died or could not start (killed, out of
                     the host's memory)
simulator      1     anything else: a bug in pgtable-explorer itself
interrupted    130   Ctrl-C (128 + the signal: SIGTERM and SIGHUP end with their own number)
=============  ====  ==========================================================================

The exception types are named here by their qualified names, looked up along the exception's MRO
(a subclass is what its nearest named base is): this module imports none of them, so every layer
can use it. ``tests/test_failures.py`` checks that each name still names a class and that the CLI,
a session and a sweep row classify the same failures the same way.

Standard library only.
"""

from __future__ import annotations

from typing import NamedTuple


class Failure(NamedTuple):
    """One kind of failure: its name, the CLI's exit status and the TUI's error-panel title."""

    name: str
    exit_status: int
    #: the border title of the TUI's error panel
    title: str
    #: what it means, in a sentence (docs, help)
    help: str


#: Every kind of failure, in the order the docs list them.
FAILURES: tuple[Failure, ...] = (
    Failure("user", 2, "the config cannot run", "a mistake in the config or on the command line: fix it and run again"),
    Failure("plugin", 1, "a plugin failed", "a plugin raised or ended the run: its traceback names the line"),
    Failure("timeout", 1, "the run timed out", "the run went over its wall-clock limit"),
    Failure("process", 1, "the simulation process died", "the process running the simulation died or could not start"),
    Failure("simulator", 1, "the simulator failed", "a bug in pgtable-explorer: please report it with the traceback"),
    Failure("interrupted", 130, "interrupted", "stopped by Ctrl-C or a signal"),
)
BY_NAME: dict[str, Failure] = {f.name: f for f in FAILURES}

USER, PLUGIN, TIMEOUT, PROCESS, SIMULATOR, INTERRUPTED = FAILURES

#: Exception types (``module.QualName``) and the failure they are. Anything not found along an
#: exception's MRO is a simulator bug.
EXCEPTIONS: dict[str, str] = {
    # the config asks for what the machine it describes cannot do, or names what does not exist
    "explorer.config.problems.ConfigError": "user",
    "explorer.sim.build.BuildError": "user",
    "explorer.sim.errors.OutOfMemory": "user",
    "explorer.contract.params.ParamError": "user",
    "explorer.units.UnitError": "user",
    "explorer.outputs.OutputError": "user",
    "explorer.outputs.OutputLost": "user",  # a --trace that could not be written: its OutputError
    "explorer.sweep.worker.WorkerSetupError": "user",  # the plugins on a worker differ from the sweep's
    # plugin code: an exception out of it, a misuse of the kernel API, or ending the program
    "explorer.sim.errors.PluginError": "plugin",
    "explorer.sim.errors.PluginMistake": "plugin",
    "builtins.SystemExit": "plugin",  # plugin code may not end the program; the tool itself never
    "builtins.GeneratorExit": "plugin",  # raises these during a run
    "explorer.runguard.RunTimeout": "timeout",
    "builtins.KeyboardInterrupt": "interrupted",
}


def classify_failure(exc: BaseException) -> Failure:
    """What kind of failure ``exc`` (raised by building or running a simulation) is."""
    for cls in type(exc).__mro__:
        name = EXCEPTIONS.get(f"{cls.__module__}.{cls.__qualname__}")
        if name is not None:
            return BY_NAME[name]
    return SIMULATOR


__all__ = ["BY_NAME", "EXCEPTIONS", "FAILURES", "Failure", "classify_failure"]
