"""The whole run's trace in a file (``Session(trace_file=True)``): the child's trace sink that
writes every line as it happens, and the private folders the files live in.

The child writes; the face reads the file (``explorer.tui.widgets.trace_view``), never the pipe,
and learns from each snapshot how far the file goes (:class:`explorer.session.data.TraceFile`).
Standard library only (the trace line's format comes from ``explorer.sim.build``, in the child).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections import deque
from pathlib import Path
from typing import Any

#: Where a session's whole-run trace file stops growing: a disk is not filled by a run left going
#: at full speed; the face says where it stopped.
TRACE_FILE_LIMIT = 1 << 30

TRACE_DIR_PREFIX = "pgtable-explorer-trace-"


def new_trace_dir() -> str:
    """A private folder (0700) for one session's trace files, named by this program's PID; the
    folders of programs that are gone without cleaning up go first."""
    remove_stale_trace_dirs()
    return tempfile.mkdtemp(prefix=f"{TRACE_DIR_PREFIX}{os.getpid()}-")


def remove_stale_trace_dirs() -> None:
    """The trace folders of sessions whose program is gone without cleaning up (a terminal closed
    under it, a kill -9): ``pgtable-explorer-trace-PID-*`` of this user where no process PID runs."""
    root = Path(tempfile.gettempdir())
    with contextlib.suppress(OSError):
        for d in root.glob(f"{TRACE_DIR_PREFIX}*-*"):
            pid = d.name[len(TRACE_DIR_PREFIX):].split("-", 1)[0]
            try:
                if not pid.isdigit() or d.is_symlink() or d.stat().st_uid != os.getuid():
                    continue
                os.kill(int(pid), 0)  # still running (or another user's): keep it
            except ProcessLookupError:
                shutil.rmtree(d, ignore_errors=True)
            except OSError:
                continue


def remove_run_files(trace_dir: str) -> None:
    """The files of the runs of a process that has ended (a new one starts)."""
    for old in Path(trace_dir).glob("run-*.log"):
        with contextlib.suppress(OSError):
            old.unlink()


class FileTrace(deque):  # type: ignore[type-arg]
    """The kernel's trace sink in a session with a trace file: the newest records kept (the
    snapshots' tail) and every record written to the file as a trace line as it happens."""

    def __init__(self, maxlen: int, trace_dir: str, limit: int = TRACE_FILE_LIMIT) -> None:
        super().__init__(maxlen=maxlen)
        from explorer.sim.build import trace_line

        fd, self.path = tempfile.mkstemp(prefix="run-", suffix=".log", dir=trace_dir)
        self.line = trace_line
        self.file: Any = os.fdopen(fd, "w", encoding="utf-8", buffering=1 << 16)
        self.lines = 0
        self.size = 0
        self.limit = limit
        self.capped_at_ns = -1

    def append(self, record: Any, /) -> None:
        super().append(record)
        self.write(self.line(record), record[0])

    def write(self, text: str, now_ns: int = 0) -> None:
        """One line to the file (also a plugin's print(), where it happened among the events)."""
        if self.capped_at_ns >= 0 or self.file is None:
            return
        data = text.replace("\n", " ") + "\n"
        size = len(data) if data.isascii() else len(data.encode("utf-8"))
        if self.size + size > self.limit:
            self.capped_at_ns = now_ns
            return
        self.file.write(data)
        self.lines += 1
        self.size += size

    def flush(self) -> dict[str, Any]:
        """Everything written so far on disk; what the snapshot says of the file."""
        with contextlib.suppress(OSError, ValueError, AttributeError):
            self.file.flush()
        return {"path": self.path, "lines": self.lines, "size": self.size,
                "capped": self.capped_at_ns >= 0, "capped_at_ns": max(0, self.capped_at_ns)}

    def close(self, remove: bool = True) -> None:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            self.file.close()
        self.file = None
        if remove:
            with contextlib.suppress(OSError):
                os.unlink(self.path)


class OutputLines(deque):  # type: ignore[type-arg]
    """A plugin's printed lines (the newest kept); with a trace file, also written there."""

    tee: FileTrace | None = None

    def append(self, line: Any, /) -> None:
        super().append(line)
        if self.tee is not None:
            self.tee.write(str(line))
