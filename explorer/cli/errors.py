"""The exit status of every command and the two errors a command raises to end with one.

Exit status: 0 success, 1 a run failed (a plugin raised, the run timed out, the simulator failed),
2 a user error (a bad file, key, value or plugin name; argparse errors are 2 as well), 130 (128 +
the signal) interrupted. The statuses are those of :data:`explorer.failures.FAILURES`, the one
table the TUI's error panel and a sweep's rows also use.
"""

from __future__ import annotations

from explorer.failures import INTERRUPTED, PLUGIN, USER, Failure

EXIT_OK = 0
EXIT_RUN_FAILED = PLUGIN.exit_status
EXIT_USAGE = USER.exit_status

PROG = "pgtable-explorer"


class UserError(Exception):
    """A mistake on the command line: printed as ``error: ...``, exit status 2."""


class RunFailed(Exception):
    """A run failed (a plugin raised, by default; ``failure`` says otherwise): printed with the
    traceback, exit status ``failure.exit_status`` (1)."""

    def __init__(self, message: str, traceback_text: str = "", failure: Failure = PLUGIN) -> None:
        super().__init__(message)
        self.traceback_text = traceback_text
        self.failure = failure


#: SIGINT's status (128 + 2); SIGTERM and SIGHUP end with 128 + their number.
EXIT_INTERRUPTED = INTERRUPTED.exit_status

__all__ = ["EXIT_INTERRUPTED", "EXIT_OK", "EXIT_RUN_FAILED", "EXIT_USAGE", "PROG", "RunFailed", "UserError"]
