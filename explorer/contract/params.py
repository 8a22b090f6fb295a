"""Declared parameters: :class:`Param` drives config validation, the TUI's forms, ``--help``,
the docs and the JSON Schema."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from explorer.units import UnitError, format_duration, format_rate, parse_duration, parse_rate

ParamType = Literal["int", "float", "bool", "str", "choice", "duration", "rate"]


class ParamError(ValueError):
    """A parameter value that is of the wrong type or out of range."""


@dataclass(frozen=True)
class Param:
    """One declared parameter of a plugin or of the kernel model.

    The same declaration drives config validation, the TUI's forms, ``--help``, the docs and the
    JSON Schema. ``default`` is written the way a user would write it in TOML (``"20us"``).
    ``min``/``max`` are in canonical units (nanoseconds, events per second).
    """

    name: str
    type: ParamType
    default: Any
    help: str = ""
    unit: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    #: An optional further check of the converted value (a ``str`` holding a script, say): returns
    #: the value to keep, or raises :class:`ParamError` saying what is wrong and what is valid.
    check: Callable[[Any], Any] | None = field(default=None, compare=False, repr=False)

    def parse(self, value: Any) -> Any:
        """Return ``value`` in canonical form, or raise :class:`ParamError` saying why not."""
        try:
            out = self._convert(value)
        except UnitError as exc:
            raise ParamError(str(exc)) from None
        if self.check is not None:
            out = self.check(out)
        if self.type in ("float", "rate") and not math.isfinite(out):
            raise ParamError(f"expected a finite value, got {value!r}")
        if self.type in ("int", "float", "duration", "rate"):
            if self.min is not None and out < self.min:
                raise ParamError(f"{self.show(out)} is below the minimum {self.show(self.min)}")
            if self.max is not None and out > self.max:
                raise ParamError(f"{self.show(out)} is above the maximum {self.show(self.max)}")
        return out

    def _convert(self, value: Any) -> Any:
        t = self.type
        if t == "bool":
            if isinstance(value, bool):
                return value
            words = {"y": True, "yes": True, "true": True, "on": True, "1": True}
            words |= {"n": False, "no": False, "false": False, "off": False, "0": False}
            if isinstance(value, str) and value.lower() in words:
                return words[value.lower()]
            raise ParamError(f"expected true or false, got {value!r}")
        if t == "int":
            if isinstance(value, bool):
                raise ParamError(f"expected an integer, got {value!r}")
            if isinstance(value, int):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
            if isinstance(value, str):
                try:
                    return int(value.replace("_", ""))
                except ValueError:
                    pass
            raise ParamError(f"expected an integer, got {value!r}")
        if t == "float":
            if isinstance(value, bool):
                raise ParamError(f"expected a number, got {value!r}")
            if isinstance(value, (int, float)):
                if not math.isfinite(value):
                    raise ParamError(f"expected a finite number, got {value!r}")
                return float(value)
            if isinstance(value, str):
                try:
                    return float(value)
                except ValueError:
                    pass
            raise ParamError(f"expected a number, got {value!r}")
        if t == "str":
            if isinstance(value, str):
                return value
            raise ParamError(f"expected a string, got {value!r}")
        if t == "choice":
            if isinstance(value, str) and value in self.choices:
                return value
            raise ParamError(f"expected one of {', '.join(self.choices)}; got {value!r}")
        if t == "duration":
            return parse_duration(value)
        if t == "rate":
            return parse_rate(value)
        raise ParamError(f"unknown parameter type {t!r}")  # pragma: no cover - declaration bug

    def canonical_default(self) -> Any:
        """The default in canonical form (nanoseconds, per second, ...)."""
        # Parsed once per declaration: every validation and every build asks for it (a sweep's or
        # a hunt's thousands of runs), and a declaration is frozen. A default that does not parse
        # is not kept, so it raises every time; nor is a value a check made mutable.
        try:
            return self.__dict__["_canonical_default"]
        except KeyError:
            value = self.parse(self.default)
            if type(value) in (int, float, str, bool):
                self.__dict__["_canonical_default"] = value
            return value

    def to_toml(self, value: Any) -> Any:
        """The canonical ``value`` as it is written to a TOML file (parses back identically)."""
        if self.type == "duration":
            return format_duration(int(value))
        if self.type == "rate":
            return format_rate(float(value))
        return value

    def show(self, value: Any) -> str:
        """A canonical value as a user reads it."""
        if self.type in ("duration", "rate"):
            return str(self.to_toml(value))
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float) and value.is_integer() and self.type != "float":
            return str(int(value))
        return str(value)

    def describe_type(self) -> str:
        """The type as shown in help: ``duration``, ``choice (uniform|adversarial)`` ..."""
        if self.type == "choice":
            return f"choice ({'|'.join(self.choices)})"
        return self.type
