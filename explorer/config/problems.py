"""What is wrong with a config: :class:`Problem` (file, key, line and column, message),
:class:`ConfigError` carrying every problem found, and how they are printed (capped, escaped)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config (or, as a warning, worth knowing).

    ``key`` is dotted (``workload[1].rate``, ``strategy.params.batch``), empty for the file as a
    whole. ``line``/``col`` (1-based) are set only for TOML syntax errors, together with the text
    of the offending ``source_line``.
    """

    file: str
    key: str
    message: str
    line: int | None = None
    col: int | None = None
    source_line: str | None = None

    def __str__(self) -> str:
        file = shown(self.file)
        if self.line is not None:
            where = f"{file}:{self.line}" + (f":{self.col}" if self.col is not None else "")
            out = f"{where}: {capped(self.message)}"
            if self.source_line is not None:
                line, col = self.source_line, self.col
                if col is not None and col > MAX_SHOWN // 2:  # show the part of a long line around the column
                    line, col = line[col - MAX_SHOWN // 2:], MAX_SHOWN // 2 + 1
                out += f"\n    {_escaped(capped(line))}"
                if col is not None:
                    pad = "".join("\t" if ch == "\t" else " " for ch in _escaped(line[: col - 1]))
                    out += f"\n    {pad}^"
            return out
        if self.key:
            return f"{file}: {shown(capped(self.key))}: {capped(self.message)}"
        return f"{file}: {capped(self.message)}"


#: The longest key, value or message shown in a problem; the rest is cut ("... (N more characters)").
MAX_SHOWN = 300

#: The most problems listed; then "... and N more problems".
MAX_PROBLEMS = 20


def capped(text: str, limit: int = MAX_SHOWN) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out: a config with a
    megabyte value must not echo a megabyte back."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def shown(text: str) -> str:
    """``text`` safe to print on a terminal: as is when every character is printable, else
    quoted and escaped by ``repr`` (a key with an ANSI or OSC escape must not reach the terminal raw)."""
    return text if text.isprintable() else repr(text)


def _escaped(line: str) -> str:
    """A source line safe to print: control characters escaped, tabs kept (the caret lines up)."""
    return "".join(ch if ch.isprintable() or ch == "\t" else repr(ch)[1:-1] for ch in line)


def problem_lines(problems: Sequence[Problem], limit: int = MAX_PROBLEMS) -> list[str]:
    """The problems to print: the first ``limit``, then how many more there are."""
    lines = [str(p) for p in problems[:limit]]
    if len(problems) > limit:
        more = len(problems) - limit
        lines.append(f"... and {more} more problem{'s' if more != 1 else ''}")
    return lines


class ConfigError(Exception):
    """A config that cannot be used; :attr:`problems` holds every problem found, not just the first."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(problem_lines(self.problems))


class ConfigWarning(UserWarning):
    """Emitted (when the caller collects no warnings itself) for a plugin version mismatch."""


class Collector:
    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []

    def add(self, key: str, message: str) -> None:
        self.problems.append(Problem(self.source, key, message))

    def warn(self, key: str, message: str) -> None:
        self.warnings.append(Problem(self.source, key, message))


def join_key(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def workload_key(workloads: Sequence[object], i: int, key: str = "") -> str:
    """How messages name the ``i``-th workload's ``key``: ``workload.LABEL.KEY`` (the name in its
    table, ``name#1`` for a second source of that name, as ``workload_labels`` counts), which
    ``--set`` takes back and the TUI lists; ``workload[I].KEY`` only while the table has no name
    to go by."""
    def name(w: object) -> str | None:
        n = w.get("name") if isinstance(w, Mapping) else None
        return n if isinstance(n, str) else None

    mine = name(workloads[i])
    if mine is None:
        prefix = f"workload[{i}]"
    else:
        before = sum(1 for w in workloads[:i] if name(w) == mine)
        prefix = f"workload.{mine}" + (f"#{before}" if before else "")
    return f"{prefix}.{key}" if key else prefix


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
