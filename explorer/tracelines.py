"""Kernel trace lines and the session's trace file format: shared by the simulator (``run --trace``,
``Simulation.trace_lines``), the session's child (which writes the file) and the TUI (which reads it).

Standard library only, and no import of the simulator: the TUI may import it.

The trace file (``Session(trace_file=True)``) holds the raw records, not lines: formatting a line
costs a few microseconds and the child writes tens of thousands a simulated second, so the reader
formats only what it reads. The file is a run of blocks, each an 8-byte header (payload length and
item count, two little-endian ``uint32``) and a ``marshal``-ed list of items: a record
``(time_ns, event, fields)``, or a ``str`` that is a line as it is (a plugin's print, or a record
whose fields ``marshal`` cannot hold, formatted by the writer).
"""

from __future__ import annotations

import gc
import marshal
import struct
from typing import Any

#: A block's header: the payload's length in bytes, then its item count.
BLOCK_HEADER = struct.Struct("<II")

#: trace_line's format per (event, field names): a trace site writes the same fields in the same
#: order every time, so one %-format of the fields dict makes the line (the f-strings were a third
#: of a traced run's time)
_LINE_FORMATS: dict[tuple[str, tuple[str, ...]], str] = {}
_LINE_FORMATS_KEPT = 4096


def _line_format(what: str, keys: tuple[str, ...]) -> str:
    if not all(k.isidentifier() for k in keys):  # keyword names always are; a format would not parse
        return ""
    fmt = what.replace("%", "%%") + ": " + " ".join(f"{k}=%({k})s" for k in keys if k != "cpu")
    if len(_LINE_FORMATS) < _LINE_FORMATS_KEPT:
        _LINE_FORMATS[(what, keys)] = fmt
    return fmt


def trace_line(record: tuple[int, str, dict[str, Any]]) -> str:
    """One trace record as a kernel trace line: ``[003]     0.001234: flush_start: mms=16 source=...``."""
    t, what, fields = record
    keys = tuple(fields)
    fmt = _LINE_FORMATS.get((what, keys))
    if fmt is None:
        fmt = _line_format(what, keys)
    if not fmt:
        rest = " ".join(f"{k}={v}" for k, v in fields.items() if k != "cpu")
        return f"[{fields.get('cpu', 0):03d}] {t / 1e9:12.6f}: {what}: {rest}"
    # "%s" is str(), as "{}" is for every value a trace holds
    return f"[{fields.get('cpu', 0):03d}] {t / 1e9:12.6f}: " + fmt % fields


_UNSET = object()


def block_lines(items: list[Any]) -> list[str]:
    """The lines of a block's items, as the Log shows them: a record's :func:`trace_line`, a str
    as it is, a newline inside either made a space.

    trace_line's work inlined, a third cheaper: the reader formats every line of the run (to
    filter it, and for the widest). A record's ``[cpu] time: `` prefix is the previous record's
    when its time and cpu are the very same objects (the simulator's clock is one int for all that
    happens at an instant, and ``marshal`` keeps it one)."""
    out: list[str] = []
    append = out.append
    formats = _LINE_FORMATS
    last_t: Any = _UNSET
    last_cpu: Any = _UNSET
    prefix = ""
    for item in items:
        if type(item) is str:
            append(item.replace("\n", " "))
            continue
        t, what, fields = item
        keys = tuple(fields)
        fmt = formats.get((what, keys))
        if fmt is None:
            fmt = _line_format(what, keys)
        if not fmt:  # field names a %-format cannot hold: the long way
            append(trace_line(item).replace("\n", " "))
            continue
        cpu = fields.get("cpu", 0)
        if t is not last_t or cpu is not last_cpu:
            prefix = f"[{cpu:03d}] {t / 1e9:12.6f}: "
            last_t, last_cpu = t, cpu
        append((prefix + fmt % fields).replace("\n", " "))
    return out


def encode_block(items: list[Any]) -> bytes:
    """A block of the trace file: header and payload. A record ``marshal`` cannot hold (a field
    value of some other type) goes as its line instead: the file never stops a run."""
    try:
        payload = marshal.dumps(items)
    except ValueError:
        safe: list[Any] = []
        for item in items:
            try:
                marshal.dumps(item)
                safe.append(item)
            except ValueError:
                safe.append(trace_line(item))
        payload = marshal.dumps(safe)
    return BLOCK_HEADER.pack(len(payload), len(items)) + payload


def decode_block(payload: bytes) -> list[str]:
    """The lines of a block's payload; ValueError if it is not one (a damaged file)."""
    # A block is a thousand tuples and dicts that all live until formatted: the cyclic collector,
    # set off by them, would walk them (and the reader's whole heap) for nothing; it halved the read
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        items = marshal.loads(payload)
    except (EOFError, TypeError, ValueError) as exc:
        raise ValueError(f"not a trace block: {exc}") from exc
    finally:
        if paused:
            gc.enable()
    try:
        return block_lines(items)
    except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a trace block: {exc}") from exc


__all__ = ["BLOCK_HEADER", "block_lines", "decode_block", "encode_block", "trace_line"]
