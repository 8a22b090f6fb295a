"""The files a command writes for the user (``-o``, ``--trace``, sweep ``--out`` and its plot):
checked before any work starts, written whole (:mod:`explorer.atomic`) or straight into a stream.

The rules, the same for every command (docs/cli.md, "Output files"):

- ``-`` is standard output.
- A regular file, or a path that does not exist yet, is replaced atomically: a temporary file
  beside it, renamed over it at the end; a failure (a full disk, Ctrl-C, SIGTERM) keeps the old file.
- A character device, a FIFO, a socket or anything under ``/dev/`` is written straight into,
  never replaced (``-o /dev/null`` must not turn the machine's ``/dev/null`` into a file).
- A symlink is followed: its target is replaced, the link stays.
- An output that is one of the command's inputs (the same file, by inode) is refused, as are two
  outputs that are the same regular file.

A command calls :func:`check_outputs` before it loads plugins or runs anything, then writes with
:func:`write_text` or :func:`open_output`. Every failure is an :class:`OutputError`: the CLI prints
it as ``error: ...`` and exits 2.

Standard library only: the CLI imports this before anything heavy.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

from explorer import atomic
from explorer.sim.engine import SimulatorError  # standard library only

#: The name of standard output as an output path.
STDOUT = "-"


class OutputError(Exception):
    """An output that cannot (or must not) be written: a user error (CLI exit status 2)."""

    def __init__(self, option: str, path: str, cause: str) -> None:
        self.option = option
        self.path = path
        self.cause = cause
        where = f"{option} {path}" if option else path
        super().__init__(f"{where}: {cause}")


class OutputLost(SimulatorError):
    """A streamed output (``--trace``) failed mid-run. A :class:`SimulatorError`, so the wrappers
    around plugin code let it through instead of blaming the plugin that was running; it ends the
    run, and :func:`open_output` turns it back into its :class:`OutputError`."""

    def __init__(self, error: OutputError) -> None:
        self.error = error
        super().__init__(str(error))


@dataclass(frozen=True)
class Output:
    """One output a command will write: the option that named it (for messages) and its path."""

    option: str
    path: str | None


@dataclass(frozen=True)
class Input:
    """One file a command reads (a config): an output must not be it."""

    label: str
    path: str | None


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


def check_output(out: Output) -> None:
    """Raise :class:`OutputError` unless ``out`` can be written: its folder exists and takes a new
    file (tried, not guessed from the mode bits: a read-only file system or an ACL says no too), a
    stream is writable, and it is not a folder."""
    path = out.path
    if path is None or path == STDOUT:
        return
    if path == "":
        raise OutputError(out.option, repr(path), "an empty file name")
    if atomic.is_stream(path):
        if not os.path.exists(path):
            raise OutputError(out.option, path, "no such device or file")
        if not os.access(path, os.W_OK):
            raise OutputError(out.option, path, "permission denied")
        return
    target = atomic.target_of(path)
    if target.is_dir():
        raise OutputError(out.option, path, "is a folder; give a file name")
    folder = target.parent
    if not folder.is_dir():  # never created: a mistyped folder is a mistake to report, not to make
        nearest = next((p for p in (folder, *folder.parents) if p.exists()), None)
        if nearest is not None and not nearest.is_dir():
            raise OutputError(out.option, path, f"{nearest} is not a folder")
        raise OutputError(out.option, path, f"the folder {folder} does not exist (create it first)")
    if target.exists() and not os.access(target, os.W_OK):
        raise OutputError(out.option, path, "the file is read-only (permission denied)")
    with atomic.signals_held():  # a signal now must not leave the probe behind
        try:
            fd, probe = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".probe", dir=folder)
        except OSError as exc:
            raise OutputError(out.option, path, f"cannot write in {folder}: {_why(exc)}") from None
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(probe)


def check_outputs(outputs: Sequence[Output], inputs: Sequence[Input] = ()) -> None:
    """Before a command does any work: every output can be written (:func:`check_output`), none
    is one of ``inputs`` (the same file by inode: ``run C.toml -o C.toml`` would destroy the
    config), and no two name the same regular file."""
    read = [(i, _identity(i.path)) for i in inputs if i.path and i.path != STDOUT]
    seen: list[tuple[Output, tuple[int, int]]] = []
    for out in outputs:
        if out.path is None or out.path == STDOUT:
            continue
        check_output(out)
        ident = _identity(out.path)
        if ident is None:
            continue
        for inp, other in read:
            if other == ident:
                raise OutputError(out.option, out.path, f"is {inp.label} ({inp.path}): writing it would "
                                  "destroy the input; give another file name")
        if atomic.is_stream(out.path):
            continue  # two outputs into /dev/null are fine
        for prev, other in seen:
            if other == ident:
                raise OutputError(out.option, out.path, f"is the same file as {prev.option} {prev.path}: "
                                  "one would replace the other")
        seen.append((out, ident))
    # A new file named twice (neither exists yet): compare where they would land.
    fresh = [(o, atomic.target_of(o.path)) for o in outputs
             if o.path and o.path != STDOUT and _identity(o.path) is None]
    for i, (a, pa) in enumerate(fresh):
        for b, pb in fresh[:i]:
            if pa == pb:
                raise OutputError(a.option, a.path or "", f"is the same file as {b.option} {b.path}: "
                                  "one would replace the other")


@contextlib.contextmanager
def open_output(path: str, option: str = "--output", *, binary: bool = False) -> Iterator[IO[Any]]:
    """Open an output for writing by the rules of this module; an ``OSError`` while opening,
    writing or committing it becomes an :class:`OutputError` naming it (and the old file stays)."""
    if path == STDOUT:
        stream: Any = sys.stdout
        if stream is None:  # started with `>&-`
            raise OutputError("", "standard output", "closed; redirect it (to a file or /dev/null)"
                              + (f" or give {option} FILE" if option else ""))
        yield stream.buffer if binary else stream
        stream.flush()
        return
    try:
        with atomic.atomic_open(path, binary=binary) as f:
            yield f
    except OutputLost as exc:
        raise exc.error from None
    except OSError as exc:
        raise OutputError(option, path, f"cannot write: {_why(exc)}") from None


def stream_writer(f: IO[str], path: str, option: str) -> Callable[[str], None]:
    """A ``write`` for output streamed while a simulation runs (``Simulation.trace_to``): an
    ``OSError`` (a full disk) raises :class:`OutputLost`, which ends the run without blaming a
    plugin, and the old file is kept."""
    write = f.write

    def write_or_stop(text: str) -> None:
        try:
            write(text)
        except OSError as exc:
            raise OutputLost(OutputError(option, path, f"cannot write: {_why(exc)}")) from None

    return write_or_stop


def write_text(path: str | None, text: str, option: str = "--output") -> None:
    """Write ``text`` to the output ``path`` (``None`` or ``-``: standard output; ``option`` is
    the option that can name a file instead, "" when there is none)."""
    with open_output(STDOUT if path is None else path, option) as f:
        f.write(text)


def write_bytes(path: str, data: bytes, option: str = "--output") -> None:
    """Write ``data`` to the output ``path`` (``-``: standard output)."""
    with open_output(path, option, binary=True) as f:
        f.write(data)
