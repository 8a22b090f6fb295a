"""The whole run's trace in a file (``Session(trace_file=True)``): the child's trace sink that
writes every record as it happens, and the private folders the files live in.

The child writes the raw records in blocks (the format: :mod:`explorer.tracelines`); the face
reads the file (``explorer.tui.widgets.trace_view``), never the pipe, formats the lines it
shows, and learns from each snapshot how far the file goes (whole blocks:
:class:`explorer.session.data.TraceFile`). Standard library only.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections import deque
from pathlib import Path
from typing import Any

from explorer.tracelines import encode_block

#: Where a session's whole-run trace file stops growing: a disk is not filled by a run left going
#: at full speed; the face says where it stopped.
TRACE_FILE_LIMIT = 1 << 30

TRACE_DIR_PREFIX = "pgtable-explorer-trace-"

#: Records a block of the file holds at most (a flush writes a shorter one): few enough that the
#: Log reads a block quickly, enough that ``marshal`` runs rarely.
BLOCK_ITEMS = 1024


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
    for old in Path(trace_dir).glob("run-*.trace"):
        with contextlib.suppress(OSError):
            old.unlink()


class FileTrace(deque):  # type: ignore[type-arg]
    """The kernel's trace sink in a session with a trace file: the newest records kept (the
    snapshots' tail) and every record written to the file as it happens, raw.

    The records go in blocks of :data:`BLOCK_ITEMS` (and at every :meth:`flush`), ``marshal``-ed
    as they are (the format: :mod:`explorer.tracelines`): a record costs the simulator a list
    append, and the reader formats the lines it reads. A line written here (a plugin's print)
    keeps its place among the records."""

    def __init__(self, maxlen: int, trace_dir: str, limit: int = TRACE_FILE_LIMIT,
                 block_items: int = BLOCK_ITEMS) -> None:
        super().__init__(maxlen=maxlen)
        fd, self.path = tempfile.mkstemp(prefix="run-", suffix=".trace", dir=trace_dir)
        self.file: Any = os.fdopen(fd, "wb", buffering=1 << 16)
        self.items: list[Any] = []  # not written yet
        self.block_items = block_items
        self.lines = 0  # items written (a line each when read)
        self.size = 0  # bytes written: whole blocks
        self.limit = limit
        self.capped_at_ns = -1

    def append(self, record: Any, /) -> None:
        deque.append(self, record)
        items = self.items
        items.append(record)
        if len(items) >= self.block_items:
            self._write_block()

    def write(self, text: str, now_ns: int = 0) -> None:
        """One line to the file (also a plugin's print(), where it happened among the events)."""
        self.items.append(text)
        if len(self.items) >= self.block_items:
            self._write_block(now_ns)

    def _write_block(self, now_ns: int = 0) -> None:
        items, self.items = self.items, []
        if self.capped_at_ns >= 0 or self.file is None or not items:
            return
        data = encode_block(items)
        if self.size + len(data) > self.limit:
            # the cap falls on a block: the file ends at the block before, and the run is said to
            # have stopped being traced at the first record of this one
            self.capped_at_ns = next((it[0] for it in items if isinstance(it, tuple)), now_ns)
            return
        try:
            self.file.write(data)
        except (OSError, ValueError):  # a full disk (or a closed file) ends the trace, not the run
            self.capped_at_ns = now_ns
            return
        self.lines += len(items)
        self.size += len(data)

    def flush(self) -> dict[str, Any]:
        """Everything written so far on disk, the last block too; what the snapshot says of the file."""
        self._write_block(self[-1][0] if self else 0)
        with contextlib.suppress(OSError, ValueError, AttributeError):
            self.file.flush()
        return {"path": self.path, "lines": self.lines, "size": self.size,
                "capped": self.capped_at_ns >= 0, "capped_at_ns": max(0, self.capped_at_ns)}

    def close(self, remove: bool = True) -> None:
        if not remove:  # the face reads it still: what the run wrote last goes too
            with contextlib.suppress(Exception):
                self._write_block(self[-1][0] if self else 0)
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
