"""The whole run's trace, paged in from its file: a scrollable view of the lines a filter keeps.

The file (``Session(trace_file=True)``, see :class:`explorer.session.TraceFile`) only grows while
the run goes; it holds the raw records in blocks (:mod:`explorer.tracelines`), and the lines are
formatted here, as they are read. A :class:`TraceIndex` is a sparse index of the lines a filter
keeps: one entry per run of whole file blocks holding up to about :data:`BLOCK_LINES` kept lines or
:data:`BLOCK_BYTES` bytes of file, so its memory stays small however long the run (24 bytes an
entry), and a line is shown by reading its entry's blocks again (the last few entries cached).
Scanning, for a new filter or for what the run wrote since, is done in a thread worker: the screen
stays live, and a scan that a newer filter makes pointless is cancelled.
"""

from __future__ import annotations

import bisect
from array import array
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from explorer.tracelines import BLOCK_HEADER, decode_block

BLOCK_LINES = 256
BLOCK_BYTES = 256 * 1024
CHUNK = 1 << 20  # bytes scanned between two progress reports


def matches(line: str, words: Sequence[str]) -> bool:
    """Every word appears in ``line`` (case-insensitive) and no ``-word`` does."""
    low = line.lower()
    for w in words:
        if w.startswith("-") and len(w) > 1:
            if w[1:] in low:
                return False
        elif w not in low:
            return False
    return True


def _read_block(f: BinaryIO, pos: int, upto: int) -> tuple[int, list[str] | None]:
    """The file block at ``pos`` (``f`` is there): where the next one starts and its lines, None
    if it does not decode. A block that would pass ``upto`` (the file's length as the snapshot
    said: whole blocks) or a file shorter than that is damage: the rest up to ``upto`` is given up."""
    head = f.read(BLOCK_HEADER.size)
    if len(head) < BLOCK_HEADER.size:
        return upto, None
    length, _ = BLOCK_HEADER.unpack(head)
    end = pos + BLOCK_HEADER.size + length
    if end > upto:
        return upto, None
    payload = f.read(length)
    if len(payload) < length:
        return upto, None
    try:
        return end, decode_block(payload)
    except ValueError:
        return end, None


@dataclass
class TraceIndex:
    """Where the kept lines of ``path`` (those ``words`` match) are: entry ``b`` is the file blocks
    from byte ``starts[b]`` to ``ends[b]`` (the last one, still open, to ``scanned``) and its first
    kept line is number ``firsts[b]``; ``scanned`` bytes (whole blocks) have been read."""

    path: str
    words: tuple[str, ...]
    starts: array = field(default_factory=lambda: array("Q"))
    ends: array = field(default_factory=lambda: array("Q"))  # of the entries closed so far
    firsts: array = field(default_factory=lambda: array("Q"))
    count: int = 0  # kept lines in the scanned part
    scanned: int = 0
    widest: int = 0  # the longest kept line (in characters: the view's horizontal extent)
    total: int = 0  # every line in the scanned part, kept or not
    damaged: int = 0  # blocks skipped: they did not decode (or the file was shorter than said)
    _block_lines: int = 0
    _block_start: int = 0

    def extend(self, upto: int, cancelled: Callable[[], bool] = lambda: False,
               progress: Callable[[], None] | None = None) -> bool:
        """Scan the file from ``scanned`` up to byte ``upto`` (whole blocks only); False if
        ``cancelled()`` said stop on the way or the file is gone (the run was reset)."""
        if upto <= self.scanned:
            return True
        try:
            f = open(self.path, "rb")  # noqa: SIM115  # closed below; the file may be gone
        except OSError:
            return False
        with f:
            f.seek(self.scanned)
            pos = reported = self.scanned
            words = self.words
            while pos < upto:
                if cancelled():
                    return False
                end, lines = _read_block(f, pos, upto)
                if lines is None:
                    self.damaged += 1
                    f.seek(end)
                elif lines:
                    kept = [ln for ln in lines if matches(ln, words)] if words else lines
                    if kept:
                        if self._block_lines == 0:
                            self.starts.append(pos)
                            self.firsts.append(self.count)
                            self._block_start = pos
                        self._block_lines += len(kept)
                        self.count += len(kept)
                        self.widest = max(self.widest, max(map(len, kept)))
                    self.total += len(lines)
                pos = end
                if self._block_lines and (self._block_lines >= BLOCK_LINES or pos - self._block_start >= BLOCK_BYTES):
                    self.ends.append(pos)  # an entry is a few blocks to read again, at most
                    self._block_lines = 0
                self.scanned = pos
                if progress is not None and pos - reported >= CHUNK:
                    reported = pos
                    progress()
        return True

    def block_of(self, line: int) -> int:
        return bisect.bisect_right(self.firsts, line) - 1

    def read_block(self, b: int) -> list[str]:
        """The kept lines of entry ``b`` (read from the file again)."""
        start = self.starts[b]
        end = self.ends[b] if b < len(self.ends) else self.scanned
        want = (self.firsts[b + 1] if b + 1 < len(self.firsts) else self.count) - self.firsts[b]
        out: list[str] = []
        try:
            with open(self.path, "rb") as f:
                f.seek(start)
                pos = start
                while pos < end and len(out) < want:
                    pos, lines = _read_block(f, pos, end)
                    if lines is None:
                        f.seek(pos)
                        continue
                    out += [ln for ln in lines if matches(ln, self.words)] if self.words else lines
        except OSError:
            return []
        return out[:want]


class TraceView(ScrollView, can_focus=True):
    """Lines from a :class:`TraceIndex` (the file) or from a list (a session without a file),
    drawn only as they scroll into view. It follows the end while it is scrolled to the end."""

    DEFAULT_CSS = """
    TraceView { height: 1fr; background: $surface; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.index: TraceIndex | None = None
        self.shown_count = 0  # the kept lines the index had when last shown (the worker goes on)
        self.list_lines: list[str] = []
        self.placeholder = ""
        self._cache: OrderedDict[tuple[int, int], list[str]] = OrderedDict()

    # -- what it shows
    @property
    def count(self) -> int:
        return self.shown_count if self.index is not None else len(self.list_lines)

    def line(self, i: int) -> str:
        """The ``i``-th line shown (from 0)."""
        if self.index is None:
            return self.list_lines[i]
        idx = self.index
        b = idx.block_of(i)
        if b < 0:
            return ""
        first = idx.firsts[b]
        n = (idx.firsts[b + 1] if b + 1 < len(idx.firsts) else self.shown_count) - first
        key = (b, n)  # the last block grows while the run goes: a new count is a new read
        lines = self._cache.get(key)
        if lines is None:
            lines = idx.read_block(b)
            self._cache[key] = lines
            while len(self._cache) > 8:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return lines[i - first] if i - first < len(lines) else ""

    def show_index(self, index: TraceIndex) -> None:
        """Show the kept lines ``index`` has found so far (called again as it finds more)."""
        if index is not self.index:
            self._cache.clear()
        follow = self.index is not index or self._at_end()
        self.index = index
        self.shown_count = index.count
        self._resized(index.widest, follow)

    def show_lines(self, lines: Sequence[str]) -> None:
        follow = self.index is not None or self._at_end()
        self.index = None
        self._cache.clear()
        self.list_lines = list(lines)
        self._resized(max((len(x) for x in self.list_lines), default=0), follow)

    def all_lines(self) -> list[str]:
        """Every line shown (reads the whole index: for tests and small traces)."""
        return [self.line(i) for i in range(self.count)]

    def _at_end(self) -> bool:
        return self.scroll_offset.y >= self.max_scroll_y - 1

    def _resized(self, widest: int, follow: bool) -> None:
        self.virtual_size = Size(max(widest, 1), self.count)
        if follow:  # once the new size is laid out (the end is where it will be then)
            self.call_after_refresh(self.scroll_end, animate=False, x_axis=False)
        self.refresh()

    # -- drawing
    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        i = scroll_y + y
        width = self.scrollable_content_region.width
        style = self.rich_style
        if self.count == 0:
            text = self.placeholder if y == 0 else ""
            return Strip([Segment(text, style + Style(dim=True))]).crop_extend(0, width, style)
        if i >= self.count:
            return Strip.blank(width, style)
        return Strip([Segment(self.line(i), style)]).crop_extend(scroll_x, scroll_x + width, style)
