"""Files written whole or not at all: a temporary file in the same folder, fsynced, then renamed.

Every file the explorer writes for the user (configs, run output, exports, traces, sweep results)
goes through here, so an interrupted write (Ctrl-C, a full disk, a plugin that raises halfway
through a streamed trace) never leaves a half-written file or destroys the old one.

Only a regular file (or a path that does not exist yet) is replaced that way. A path that names
something else is written *into*, never replaced: a character device (``/dev/null``, a terminal),
a FIFO, a socket, and anything under ``/dev/`` or ``/proc/`` (``/dev/stdout``, ``/dev/fd/3``). A
symlink is followed: its target is replaced and the link stays a link.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


def default_mode() -> int:
    """The permission bits a new file gets from ``open()`` under the current umask."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _mode_for(path: Path) -> int:
    """Keep the mode of the file being replaced; a new file gets the umask's."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return default_mode()


#: Paths written straight whatever they resolve to: ``/dev/stdout`` may resolve to the regular file
#: the shell redirected standard output to, and replacing that file would lose what else goes there.
STREAM_PREFIXES = ("/dev/", "/proc/")


def target_of(path: str | os.PathLike[str]) -> Path:
    """The file a write to ``path`` changes: a symlink's final target (which may not exist yet)."""
    return Path(os.path.realpath(path))


def is_stream(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is written into rather than replaced: it names a device, a FIFO, a
    socket or anything under ``/dev/`` or ``/proc/`` (see the module docstring)."""
    text = os.fspath(path)
    if text.startswith(STREAM_PREFIXES) or os.path.abspath(text).startswith(STREAM_PREFIXES):
        return True
    try:
        st = os.stat(text)
    except OSError:
        return False
    return not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode))


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP for the duration of the block (in the main thread, where
    Python runs its handlers), so their KeyboardInterrupt comes after the block, not inside it."""
    import signal
    import threading

    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextlib.contextmanager
def _open_stream(path: str | os.PathLike[str], binary: bool, newline: str | None) -> Iterator[IO[Any]]:
    f: IO[Any]
    with (open(path, "wb") if binary else open(path, "w", encoding="utf-8", newline=newline)) as f:
        yield f


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], binary: bool = False, mode: int | None = None,
                newline: str | None = None) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; when the block ends normally it replaces
    ``path`` (fsynced, with ``mode`` or the old file's permissions); when it raises, ``path`` is
    untouched and the temporary file is removed.

    A device, FIFO or ``/dev/...`` path is opened and written directly instead (:func:`is_stream`);
    a symlink's target is replaced, not the link."""
    if is_stream(path):
        with _open_stream(path, binary, newline) as stream:
            yield stream
        return
    target = target_of(path)
    tmp: str | None = None
    try:
        with signals_held():  # a Ctrl-C or SIGTERM right after the file is made still finds it to remove
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        f: IO[Any]
        with (os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline=newline)) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _mode_for(target) if mode is None else mode)
        os.replace(tmp, target)
    except BaseException:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        raise


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_open(path) as f:
        f.write(text)


def write_bytes(path: str | os.PathLike[str], data: bytes, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, binary=True, mode=mode) as f:
        f.write(data)
