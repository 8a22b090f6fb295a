"""Summaries of a sweep's results: per parameter point, each metric's mean and 95% confidence
interval over the seeds; and the best point for each metric.

A *parameter point* is one combination of the swept values: the rows that differ only in their
seed. The interval is Student's t: ``mean ± t(0.975, n-1) · s / √n`` with ``s`` the sample
standard deviation over the n seeds that finished ok (none with a single seed). Failed rows are
counted, never averaged.

A point is *unsafe* when any of its seeds recorded a violation of any kind (``unflushed_free``,
``use_after_free``, ``sleep_in_atomic``, ``leaked``, ...): it is never the best point for a metric,
however low its flushes; the summary says which kinds and in how many seeds.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from explorer.atomic import atomic_open
from explorer.sweep.points import is_param_column
from explorer.sweep.results import HEAD, JSON_ONLY
from explorer.units import human_duration
from explorer.violations import NAMES as VIOLATION_NAMES

#: The metrics the command line shows when none are named (the summary file has them all).
HEADLINE = (
    "flushes",
    "queue.peak",
    "queue.page_seconds",
    "latency_ns.p99",
    "iommu_stall_ns",
    "worker_cpu_ns",
    "violations.unflushed_free.total",
    "violations.use_after_free.total",
    "violations.leaked.total",
)

# Two-sided 95% quantiles of Student's t for 1..30 degrees of freedom.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)


def t975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom."""
    if df < 1:
        raise ValueError("df must be at least 1")
    if df <= len(_T975):
        return _T975[df - 1]
    # Cornish-Fisher expansion around the normal quantile: within 1e-4 beyond 30 degrees of freedom.
    z = 1.959964
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


@dataclass(frozen=True)
class Stat:
    n: int
    mean: float
    sd: float | None  # sample standard deviation (None with one value)
    ci95: float | None  # half-width of the 95% interval (None with one value)

    @property
    def low(self) -> float | None:
        return None if self.ci95 is None else self.mean - self.ci95

    @property
    def high(self) -> float | None:
        return None if self.ci95 is None else self.mean + self.ci95


def stat(values: Sequence[float]) -> Stat:
    n = len(values)
    if n == 0:
        raise ValueError("no values")
    mean = math.fsum(values) / n
    if n == 1:
        return Stat(1, mean, None, None)
    var = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    sd = math.sqrt(var)
    return Stat(n, mean, sd, t975(n - 1) * sd / math.sqrt(n))


@dataclass
class SummaryRow:
    """One parameter point: its swept values, how its seeds went, and its metrics' statistics."""

    params: dict[str, Any]
    seeds: list[Any]
    ok: int
    failed: int
    stats: dict[str, Stat] = field(default_factory=dict)
    #: violation kind -> how many of the seeds that finished ok recorded it
    unsafe: dict[str, int] = field(default_factory=dict)

    def label(self, show: Callable[[str, Any], str] | None = None) -> str:
        """``strategy.params.max_delay=200us kernel.cpus=8``: with ``show`` (see
        :func:`explorer.sweep.points.value_shower`) each value as a user writes it."""
        fmt = show or (lambda _k, v: str(v))
        return " ".join(f"{k}={fmt(k, v)}" for k, v in self.params.items() if v is not None) or "(base config)"

    @property
    def safe(self) -> bool:
        """No seed recorded a violation of any kind."""
        return not self.unsafe

    def unsafe_reasons(self) -> list[str]:
        """``["unflushed_free in 3/3 seeds", ...]`` (empty when safe)."""
        return [f"{kind} in {n}/{self.ok} seeds" for kind, n in self.unsafe.items()]


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def param_columns(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """The swept keys among the records' columns, in first-seen order."""
    out: list[str] = []
    for r in records:
        for k in r:
            if k not in out and is_param_column(k):
                out.append(k)
    return out


def metric_columns(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """The numeric metrics among the records' columns, in first-seen order."""
    out: list[str] = []
    seen: set[str] = set()
    for r in records:
        for k, v in r.items():
            if k in seen or k in HEAD or k in JSON_ONLY or k == "seed" or is_param_column(k):
                continue
            if _is_number(v):
                seen.add(k)
                out.append(k)
    return out


def summarize(records: Sequence[Mapping[str, Any]], metrics: Sequence[str] | None = None) -> list[SummaryRow]:
    """Group the records by their swept values (in order of first appearance) and summarise each
    metric (default: every numeric metric) over the seeds that finished ok."""
    keys = param_columns(records)
    names = list(metrics) if metrics is not None else metric_columns(records)
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for r in records:
        groups.setdefault(tuple(_hashable(r.get(k)) for k in keys), []).append(r)
    out = []
    for sig, rows in groups.items():
        ok = [r for r in rows if r.get("status") == "ok"]
        row = SummaryRow(dict(zip(keys, sig, strict=True)), [r.get("seed") for r in rows], len(ok), len(rows) - len(ok))
        row.unsafe = _violations_in(ok)
        for m in names:
            values = [float(r[m]) for r in ok if _is_number(r.get(m))]
            if values:
                row.stats[m] = stat(values)
        out.append(row)
    return out


def _violations_in(records: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Violation kind -> the number of ``records`` with a non-zero ``violations.KIND.total``, in the
    order of explorer.violations (then any other kind)."""
    seen: dict[str, int] = {}
    for r in records:
        for key, v in r.items():
            if key.startswith("violations.") and key.endswith(".total") and key.count(".") == 2 and _is_number(v) and v:
                kind = key.split(".")[1]
                seen[kind] = seen.get(kind, 0) + 1
    order = {name: i for i, name in enumerate(VIOLATION_NAMES)}
    return dict(sorted(seen.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))


def _hashable(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def best(rows: Sequence[SummaryRow], metric: str, maximize: bool = False) -> SummaryRow | None:
    """The *safe* parameter point with the lowest (``maximize``: highest) mean of ``metric``; ties
    go to the earlier point. An unsafe point (a violation in any seed) is never best."""
    cands = [r for r in rows if metric in r.stats and r.safe]
    if not cands:
        return None
    if maximize:
        return max(cands, key=lambda r: r.stats[metric].mean)
    return min(cands, key=lambda r: r.stats[metric].mean)


def write_summary_csv(rows: Sequence[SummaryRow], path: str | os.PathLike[str], metrics: Sequence[str]) -> None:
    """One line per parameter point: swept values, ``seeds``, ``ok``, ``failed``, then for each
    metric ``M.mean``, ``M.ci95`` (half-width; empty with one seed) and ``M.n``."""
    keys: list[str] = []
    for r in rows:
        keys.extend(k for k in r.params if k not in keys)
    header = [*keys, "seeds", "ok", "failed", "safe", "unsafe_reasons"]
    for m in metrics:
        header += [f"{m}.mean", f"{m}.ci95", f"{m}.n"]
    with atomic_open(path, newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        for r in rows:
            line: list[Any] = [_fmt_cell(r.params.get(k)) for k in keys]
            line += [len(r.seeds), r.ok, r.failed, "true" if r.safe else "false", "; ".join(r.unsafe_reasons())]
            for m in metrics:
                s = r.stats.get(m)
                line += [repr(s.mean), repr(s.ci95) if s.ci95 is not None else "", s.n] if s else ["", "", 0]
            w.writerow(line)


def _fmt_cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(v) if isinstance(v, float) else str(v)


def is_duration_metric(metric: str) -> bool:
    """``latency_ns.p99``, ``iommu_stall_ns``: nanoseconds, shown as durations."""
    return any(part.endswith("_ns") for part in metric.split("."))


def fmt_number(v: float, metric: str = "") -> str:
    """A mean or an interval for a terminal: durations with a unit (``3.74ms``), other numbers with
    four significant digits (integers below a million in full)."""
    if metric and is_duration_metric(metric):
        return human_duration(v)
    if v == int(v) and abs(v) < 1e6:
        return str(int(v))
    return f"{v:.4g}"


def fmt_stat(s: Stat | None, metric: str = "") -> str:
    if s is None:
        return "-"
    return fmt_number(s.mean, metric) + (f" ± {fmt_number(s.ci95, metric)}" if s.ci95 is not None else "")


def summary_json(rows: Sequence[SummaryRow], metrics: Sequence[str], maximize: Iterable[str] = ()) -> dict[str, Any]:
    """The summary as plain data (``sweep --json``)."""
    up = set(maximize)

    def stat_json(s: Stat) -> dict[str, Any]:
        return {"n": s.n, "mean": s.mean, "sd": s.sd, "ci95": s.ci95}

    points = [
        {"params": r.params, "seeds": r.seeds, "ok": r.ok, "failed": r.failed, "safe": r.safe,
         "unsafe_reasons": r.unsafe_reasons(),
         "metrics": {m: stat_json(r.stats[m]) for m in metrics if m in r.stats}}
        for r in rows
    ]
    bests = {}
    for m in metrics:
        b = best(rows, m, maximize=m in up)
        if b is not None:
            bests[m] = {"params": b.params, "goal": "max" if m in up else "min", **stat_json(b.stats[m])}
    return {"points": points, "best": bests}
