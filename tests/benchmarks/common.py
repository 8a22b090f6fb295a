"""Shared helpers of the benchmark suite: timing, subprocesses, the result record."""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
BIN = Path(PYTHON).parent


def na(reason: str) -> str:
    """A figure that could not be measured, with why (bench.json keeps it as this string)."""
    return f"n/a ({reason})"


def is_na(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("n/a")


@dataclass
class Figure:
    """One line of the table: a key of bench.json, its value and, when there is one, its target."""

    key: str
    label: str
    value: Any
    unit: str = ""
    target: str = ""  # e.g. ">= 3", "< 0.15"
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def met(self) -> bool | None:
        if not self.target or is_na(self.value) or not isinstance(self.value, int | float):
            return None
        op, _, num = self.target.partition(" ")
        bound = float(num)
        return {">=": self.value >= bound, "<": self.value < bound, "<=": self.value <= bound,
                ">": self.value > bound}[op]


def env_for_subprocess() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PGTABLE_EXPLORER_NO_ENTRYPOINTS", "1")
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_python(code: str, *args: str, timeout: float = 600) -> str:
    """Run ``code`` in a fresh interpreter (from the checkout) and return its standard output."""
    out = subprocess.run([PYTHON, "-c", code, *args], cwd=ROOT, env=env_for_subprocess(), capture_output=True,
                         text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"subprocess failed ({out.returncode}): {out.stderr.strip()[-2000:]}")
    return out.stdout


def wall(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds of this process, result) of one call."""
    c0, w0 = time.process_time(), time.perf_counter()
    res = fn()
    return time.perf_counter() - w0, time.process_time() - c0, res


def alternate(a: Callable[[], Any], b: Callable[[], Any], rounds: int) -> dict[str, list[float]]:
    """Time ``a`` and ``b`` alternately (a, b, b, a, a, b, ...): wall and CPU seconds of each call."""
    out: dict[str, list[float]] = {"a_wall": [], "a_cpu": [], "b_wall": [], "b_cpu": []}
    for i in range(rounds):
        order = (("a", a), ("b", b)) if i % 2 == 0 else (("b", b), ("a", a))
        for name, fn in order:
            w, c, _ = wall(fn)
            out[f"{name}_wall"].append(w)
            out[f"{name}_cpu"].append(c)
    return out


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def percentile(xs: Sequence[float], p: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(xs)
    if not s:
        return float("nan")
    k = max(0, min(len(s) - 1, -(-len(s) * p // 100) - 1))
    return s[int(k)]


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    load = None
    with contextlib.suppress(OSError):
        load = os.getloadavg()[0]
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gb": mem_gb,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "os": f"{platform.system()} {platform.release()}",
        "load_before": round(load, 2) if load is not None else None,
        # which simulator core the figures are of (explorer/compiled.py): the child processes the
        # sections start inherit PGTABLE_EXPLORER_PURE, so they run the same one
        "core": _core(),
    }


def _core() -> str:
    from explorer import compiled

    return compiled.summary()
