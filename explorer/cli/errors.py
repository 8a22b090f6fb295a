"""The exit status of every command and the two errors a command raises to end with one.

Exit status: 0 success, 1 a run failed (a plugin raised), 2 a user error (a bad file, key, value or
plugin name; argparse errors are 2 as well), 130 (128 + the signal) interrupted.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_RUN_FAILED = 1
EXIT_USAGE = 2

PROG = "pgtable-explorer"


class UserError(Exception):
    """A mistake on the command line: printed as ``error: ...``, exit status 2."""


class RunFailed(Exception):
    """A plugin raised during a run: printed with the plugin's traceback, exit status 1."""

    def __init__(self, message: str, traceback_text: str = "") -> None:
        super().__init__(message)
        self.traceback_text = traceback_text


#: SIGINT's status (128 + 2); SIGTERM and SIGHUP end with 128 + their number.
EXIT_INTERRUPTED = 130

__all__ = ["EXIT_INTERRUPTED", "EXIT_OK", "EXIT_RUN_FAILED", "EXIT_USAGE", "PROG", "RunFailed", "UserError"]
