"""The sweep's progress on stderr: points done, failed, rate and time left.

On a terminal, a bar redrawn in place (at most ten times a second), like ``run``'s. Into a file, a
pipe or a CI log there is no bar: a plain status line at most once a minute (so a long sweep still
shows it is alive, and a short one prints nothing), and a last one when the sweep ends if any was
printed. Either way the command's summary says how many points were ok and how many failed.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from explorer.sweep.runner import Progress


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def render(p: Progress, width: int = 24) -> str:
    """``[#########...............]  37/100 points  2 failed  4.1/s  ETA 00:15``; with
    ``width=0``, the same without the bar."""
    frac = p.finished / p.total if p.total else 1.0
    filled = round(frac * width)
    count = f"{p.finished:>{len(str(p.total))}}/{p.total} points"
    parts = [f"[{'#' * filled}{'.' * (width - filled)}] {count}" if width > 0 else count]
    if p.skipped:
        parts.append(f"{p.skipped} resumed")
    parts.append(f"{p.failed} failed")
    if p.retries:
        parts.append(f"{p.retries} retried")
    parts.append(f"{p.rate:.3g}/s" if p.rate else "-/s")
    if p.ended is None:
        parts.append(f"ETA {_clock(p.eta)}")
    else:
        parts.append(f"took {_clock(p.elapsed)}")
    return "  ".join(parts)


class ProgressBar:
    """Call with each :class:`Progress`; ``close()`` ends the line.

    ``interval``: the least time between two redraws on a terminal; ``every``: between two plain
    lines elsewhere (seconds of ``clock``)."""

    def __init__(self, stream: TextIO | None = None, *, interval: float = 0.1, every: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval
        self.every = every
        self.clock = clock
        self._last: float | None = None  # when the last line was drawn (or, off a terminal, the first call)
        self._lines = 0  # plain lines printed (off a terminal)
        self._width = 0
        self._closed = False

    def __call__(self, p: Progress) -> None:
        if self._closed:
            return
        now = self.clock()
        final = p.ended is not None
        if self.tty:
            if not final and self._last is not None and now - self._last < self.interval:
                return
            self._last = now
            line = render(p)
            pad = max(0, self._width - len(line))
            self._width = len(line)
            self.stream.write("\r" + line + " " * pad)
            if final:
                self.stream.write("\n")
                self._closed = True
            self.stream.flush()
            return
        if self._last is None:
            self._last = now
        if final:
            self._closed = True
            if not self._lines:  # a sweep shorter than `every`: nothing to add to its summary
                return
        elif now - self._last < self.every:
            return
        self._last = now
        self._lines += 1
        self.stream.write("sweep     " + render(p, width=0) + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and not self._closed and self._width:
            self.stream.write("\n")
            self.stream.flush()
        self._closed = True
