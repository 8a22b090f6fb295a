"""``python -m tests.benchmarks`` (``make bench``): every benchmark, one table, and ``bench.json``.

    python -m tests.benchmarks [--quick] [--only simpy,engine,scale,startup,tui,parallel,hunt,short] [--output FILE]

Benchmarks print figures; they never pass or fail (``make test`` does not run them). A figure that
cannot be measured here (no SimPy, no TUI yet, no pseudo-terminal) is reported as ``n/a (why)``.
Every comparison is a ratio of two sides measured in the same run, alternating the two.
See docs/performance.md for what each figure means and the latest table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.benchmarks import (
    bench_engine,
    bench_hunt,
    bench_parallel,
    bench_scale,
    bench_short,
    bench_simpy,
    bench_startup,
    bench_tui,
)
from tests.benchmarks.common import ROOT, Figure, is_na, machine, na

SECTIONS: dict[str, tuple[str, Callable[[bool], list[Figure]], tuple[str, ...]]] = {
    "simpy": ("1. against SimPy", bench_simpy.run, ("simpy_check", "simpy_ratio")),
    "engine": ("2. engine floor", bench_engine.run, ("engine_vs_heapq",)),
    "scale": ("3. scale", bench_scale.run, ("rss_growth_100x",)),
    "startup": ("4. start-up", bench_startup.run, ("version_s", "run_help_s", "tui_first_frame_s")),
    "tui": ("5. under the TUI", bench_tui.run, ("tui_throughput_ratio", "tui_key_p95_ms")),
    "parallel": ("6. parallel", bench_parallel.run, ("parallel_speedup_2",)),
    "hunt": ("7. hunt", bench_hunt.run, ("hunt_s_before-fix",)),
    "short": ("8. short runs", bench_short.run, ("short_runs_per_s", "short_setup_share")),
}


def _fmt(f: Figure) -> str:
    v = f.value
    if isinstance(v, float):
        v = f"{v:.4g}"
    return f"{v}{(' ' + f.unit) if f.unit and not is_na(f.value) else ''}"


def table(figures: list[tuple[str, Figure]]) -> str:
    rows = [("", "figure", "value", "target", "met")]
    notes = []
    for section, f in figures:
        met = f.met()
        rows.append((section, f.label, _fmt(f), f.target, "" if met is None else ("yes" if met else "NO")))
        if f.note:
            notes.append(f"  {f.key}: {f.note}")
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    widths[2] = min(widths[2], 48)
    lines = []
    last = None
    for r in rows:
        sec = r[0] if r[0] != last else ""
        last = r[0]
        value = r[2] if len(r[2]) <= widths[2] else r[2][: widths[2] - 1] + "…"
        lines.append(f"{sec:<{widths[0]}}  {r[1]:<{widths[1]}}  {value:>{widths[2]}}  {r[3]:<{widths[3]}}  {r[4]}")
        if r is rows[0]:
            lines.append("-" * len(lines[0]))
    return "\n".join(lines) + "\n\nnotes:\n" + "\n".join(notes)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.benchmarks", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shorter runs, fewer repetitions (a smoke test)")
    ap.add_argument("--only", default="", help="comma-separated sections: " + ",".join(SECTIONS))
    ap.add_argument("--output", default=str(ROOT / "bench.json"), help="where to write the figures (bench.json)")
    args = ap.parse_args(argv)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()] or list(SECTIONS)
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        ap.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")

    started = time.perf_counter()
    info = machine()
    print(f"pgtable-explorer benchmarks on {info['cpu']} ({info['cpus']} CPUs), Python {info['python']}, "
          f"load {info['load_before']}, simulator core: {info['core']}", flush=True)
    figures: list[tuple[str, Figure]] = []
    timings: dict[str, float] = {}
    for name in chosen:
        title, fn, keys = SECTIONS[name]
        print(f"{title} ...", end=" ", flush=True)
        t = time.perf_counter()
        try:
            got = fn(args.quick)
        except Exception as exc:  # a benchmark that breaks reports why, the others still run
            traceback.print_exc()
            got = [Figure(k, k, na(f"{type(exc).__name__}: {exc}")) for k in keys]
        timings[name] = round(time.perf_counter() - t, 1)
        print(f"{timings[name]:.0f} s", flush=True)
        figures += [(title, f) for f in got]

    print()
    print(table(figures))
    out: dict[str, Any] = {}
    if Path(args.output).exists() and args.only:
        try:  # --only refreshes some figures and keeps the rest
            out = json.loads(Path(args.output).read_text())
        except (OSError, ValueError):
            out = {}
    for _, f in figures:
        out[f.key] = f.value
        out.update(f.extra)
        out.setdefault("notes", {})[f.key] = f.note
        if f.target:
            out.setdefault("targets", {})[f.key] = f.target
    out["machine"] = info
    out["quick"] = args.quick
    out["section_seconds"] = {**out.get("section_seconds", {}), **timings}
    out["generated"] = time.strftime("%Y-%m-%d %H:%M:%S")
    out["took_s"] = round(time.perf_counter() - started, 1)
    Path(args.output).write_text(json.dumps(out, indent=2, default=str) + "\n")
    print(f"\nwrote {args.output} ({out['took_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
