"""Parsing and formatting of the units used in configs: durations, rates and sizes.

Durations are held as integer nanoseconds and rates as float events per second, so that the
simulator never sees a string. Formatting picks the largest unit that represents the value
exactly, so a value written by ``format_*`` parses back to the identical number.
"""

from __future__ import annotations

import math
import re

DURATION_UNITS: dict[str, int] = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
}
RATE_UNITS: dict[str, float] = {"/s": 1.0, "/ms": 1e3, "/us": 1e6}

#: A plain decimal number (the number of a duration, a rate, a speed), as a regular expression.
NUMBER = r"[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?"
_DURATION_RE = re.compile(rf"^\s*({NUMBER})\s*(ns|us|µs|ms|s)\s*$")
_RATE_RE = re.compile(rf"^\s*({NUMBER})\s*(/s|/ms|/us|hz|Hz|k/s|M/s)\s*$")


def _short(value: object, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters: an error message echoes what it was given,
    and that may be a megabyte."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + "...'"


class UnitError(ValueError):
    """A value that does not parse in the expected unit; the message lists the valid forms."""


def parse_duration(value: object) -> int:
    """Return ``value`` as integer nanoseconds.

    Accepts an integer (already nanoseconds) or a string such as ``"20us"``, ``"5ms"``,
    ``"1.5s"``. Fractions of a nanosecond are an error rather than silently rounded.
    """
    if isinstance(value, bool):
        raise UnitError(f"expected a duration such as '20us' or '5ms', got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise UnitError(f"a duration in plain numbers is nanoseconds and must be whole, got {value!r}")
    if isinstance(value, str):
        m = _DURATION_RE.match(value)
        if not m:
            raise UnitError(
                f"expected a duration such as '20us', '5ms' or '1s' (units: ns, us, ms, s), got {value!r}"
            )
        number, unit = m.groups()
        ns = float(number) * DURATION_UNITS[unit]
        if not math.isfinite(ns):  # "1e400ms": no int can hold it
            raise UnitError(f"{_short(value)} is too large for a duration")
        rounded = round(ns)
        if abs(ns - rounded) > 1e-6 * max(1.0, abs(ns)):
            raise UnitError(f"{value!r} is not a whole number of nanoseconds")
        return int(rounded)
    raise UnitError(f"expected a duration such as '20us' or '5ms', got {value!r}")


def format_duration(ns: int) -> str:
    """Format nanoseconds with the largest unit that is exact: 20000 -> ``"20us"``."""
    if ns == 0:
        return "0s"
    for unit, mult in (("s", 1_000_000_000), ("ms", 1_000_000), ("us", 1_000)):
        if ns % mult == 0:
            return f"{ns // mult}{unit}"
    return f"{ns}ns"


def human_duration(ns: float) -> str:
    """Format nanoseconds for display, rounded to three significant figures."""
    if ns < 1_000:
        return f"{ns:.0f}ns"
    if ns < 1_000_000:
        return f"{ns / 1_000:.3g}us"
    if ns < 1_000_000_000:
        return f"{ns / 1_000_000:.3g}ms"
    return f"{ns / 1_000_000_000:.3g}s"


_SECONDS_RE = re.compile(rf"^\s*({NUMBER})\s*(m|min|h)\s*$")


def parse_seconds(value: object) -> float:
    """Return a wall-clock time as float seconds (a sweep's ``--timeout``, for instance).

    Accepts a number (seconds), a numeric string (``"90"``: seconds), minutes or hours
    (``"2m"``, ``"2min"``, ``"1h"``) or any duration :func:`parse_duration` reads (``"60s"``,
    ``"500ms"``). Unlike :func:`parse_duration`, a plain number is seconds, not nanoseconds.
    """
    if isinstance(value, bool):
        raise UnitError(f"expected a time such as '60s', '2m' or 90 (seconds), got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(text)
        except ValueError:
            pass
        m = _SECONDS_RE.match(text)
        if m:
            number, unit = m.groups()
            return float(number) * (3600.0 if unit == "h" else 60.0)
        try:
            return parse_duration(text) / 1e9
        except UnitError:
            raise UnitError(
                f"expected a time such as '60s', '2m', '1h' or a number of seconds, got {value!r}"
            ) from None
    raise UnitError(f"expected a time such as '60s', '2m' or 90 (seconds), got {value!r}")


def format_seconds(seconds: float) -> str:
    """Format a wall-clock time in seconds for messages: 60.0 -> ``"60s"``, 1.5 -> ``"1.5s"``."""
    return f"{seconds:g}s"


def parse_rate(value: object) -> float:
    """Return ``value`` as events per second.

    Accepts a number (per second) or a string such as ``"2000/s"``, ``"5/ms"``, ``"50k/s"``.
    """
    if isinstance(value, bool):
        raise UnitError(f"expected a rate such as '2000/s', got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        m = _RATE_RE.match(value)
        if not m:
            raise UnitError(f"expected a rate such as '2000/s', '5/ms' or '50k/s', got {value!r}")
        number, unit = m.groups()
        mult = {"hz": 1.0, "Hz": 1.0, "k/s": 1e3, "M/s": 1e6}.get(unit) or RATE_UNITS[unit]
        return float(number) * mult
    raise UnitError(f"expected a rate such as '2000/s', got {value!r}")


def format_rate(per_s: float) -> str:
    """Format a rate so that :func:`parse_rate` gives back the identical float."""
    if float(per_s).is_integer():
        return f"{int(per_s)}/s"
    return f"{per_s!r}/s"
