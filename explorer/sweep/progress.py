"""The sweep's progress bar on stderr: points done, failed, rate and time left.

On a terminal it redraws one line in place (at most ten times a second); into a file or a CI log it
prints a line at each tenth of the sweep instead.
"""

from __future__ import annotations

import sys
import time
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
    """``[#########...............]  37/100 points  2 failed  4.1/s  ETA 00:15``."""
    frac = p.finished / p.total if p.total else 1.0
    filled = round(frac * width)
    bar = "#" * filled + "." * (width - filled)
    parts = [f"[{bar}] {p.finished:>{len(str(p.total))}}/{p.total} points"]
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
    """Call with each :class:`Progress`; ``close()`` ends the line."""

    def __init__(self, stream: TextIO | None = None, *, interval: float = 0.1) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval
        self._last = 0.0
        self._last_decile = -1
        self._width = 0
        self._closed = False

    def __call__(self, p: Progress) -> None:
        if self._closed:
            return
        now = time.monotonic()
        final = p.ended is not None
        if self.tty:
            if not final and now - self._last < self.interval:
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
        decile = int(10 * p.finished / p.total) if p.total else 10
        if final or decile > self._last_decile:
            self._last_decile = decile
            self.stream.write(render(p) + "\n")
            self.stream.flush()
            if final:
                self._closed = True

    def close(self) -> None:
        if self.tty and not self._closed and self._width:
            self.stream.write("\n")
            self.stream.flush()
        self._closed = True
