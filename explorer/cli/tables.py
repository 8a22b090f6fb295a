"""The text tables of ``run`` and ``compare`` (and the alignment and number formats other commands
use): what a terminal shows, in colour when it is one. The JSON forms are :mod:`explorer.documents`."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from explorer.documents import dig
from explorer.violations import BY_NAME, NAMES, describe_differences, unsafe_reasons

if TYPE_CHECKING:
    from explorer.plugins import Registry


def scenario_line(scenario: Mapping[str, Any], color: bool) -> list[str]:
    import textwrap

    text = f"scenario  {scenario['name']}" + (f": {scenario['description']}" if scenario.get("description") else "")
    lines = textwrap.wrap(text, 100, subsequent_indent=" " * 10)
    head = f"scenario  {scenario['name']}"
    return [bold(head, color) + lines[0][len(head):], *lines[1:]]


def use_color(output: str | None) -> bool:
    return output in (None, "-") and sys.stdout is not None and sys.stdout.isatty() and "NO_COLOR" not in os.environ


def red(text: str, color: bool) -> str:
    return f"\033[31m{text}\033[0m" if color else text


def bold(text: str, color: bool) -> str:
    return f"\033[1m{text}\033[0m" if color else text


def visible_len(text: str) -> int:
    import re

    return len(re.sub(r"\033\[[0-9;]*m", "", text))


def align(rows: Sequence[Sequence[str]], right: Sequence[bool], indent: str = "  ", gap: str = "  ") -> list[str]:
    widths = [0] * max(len(r) for r in rows)
    for r in rows:
        for i, cell in enumerate(r):
            widths[i] = max(widths[i], visible_len(cell))
    out = []
    for r in rows:
        cells = []
        for i, cell in enumerate(r):
            pad = " " * (widths[i] - visible_len(cell))
            cells.append(pad + cell if (right[i] if i < len(right) else True) else cell + pad)
        out.append((indent + gap.join(cells)).rstrip())
    return out


def num(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if v == 0:
            return "0"
        return f"{v:.3g}"
    return str(v)


def rate(v: Any) -> str:
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return "-"
    return f"{int(v):,}/s" if float(v).is_integer() else f"{v:.3g}/s"


def dur(v: Any) -> str:
    from explorer.units import human_duration

    return "-" if v is None else human_duration(float(v))


def by_source(v: Any) -> str:
    if not isinstance(v, Mapping):
        return ""
    parts = [f"{src} {n:,}" for src, n in sorted((v.get("by_source") or {}).items()) if n]
    return ", ".join(parts)


def describe_config(
    config: Mapping[str, Any], metrics: Mapping[str, Any], registry: Registry | None = None
) -> list[str]:
    k, io, st = config["kernel"], config["iommu"], config["strategy"]
    from explorer.units import format_duration

    # values as the user writes them (10ms, not 10000000): the declaring plugin formats its own
    declared = {p.name: p for p in getattr(registry.strategies.get(st["name"]), "params", ())} if registry else {}
    params = ", ".join(f"{key}={declared[key].show(val) if key in declared else val}"
                       for key, val in st["params"].items())
    strategy = st["name"] + (f" ({params})" if params else "")
    afree = metrics.get("async_kernel_pgtable_free")
    lines = [
        f"strategy  {strategy}",
        f"iommu     {io['model']}: {io['count']} IOMMU(s), {io['sva_mms']} SVA mm(s), probes "
        f"{rate(io['probe_rate'])} ({io['probe_target']})" + ("" if metrics.get("sva_present", True) else
                                                                   " - no SVA mm bound"),
        f"kernel    {k['arch']}, {k['cpus']} CPUs, IOMMU_SVA={'y' if k['iommu_sva'] else 'n'}, "
        f"ASYNC_KERNEL_PGTABLE_FREE={k['async_kernel_pgtable_free']}"
        + (f" ({'y' if afree else 'n'})" if afree is not None and k["async_kernel_pgtable_free"] == "auto" else ""),
        "workload  " + (", ".join(f"{w['name']} {rate(w.get('rate'))}" for w in config["workload"]) or "(none)"),
        f"run       {format_duration(config['run']['duration'])} simulated (+ up to "
        f"{format_duration(config['run']['drain'])} drain), seed {config['run']['seed']}, "
        f"{num(metrics.get('events'))} events",
    ]
    return lines


def format_run_table(
    config: Mapping[str, Any], metrics: Mapping[str, Any], scenario: Mapping[str, Any] | None, color: bool,
    registry: Registry | None = None,
) -> str:
    out: list[str] = []
    if scenario:
        out += scenario_line(scenario, color)
    out += describe_config(config, metrics, registry)
    out.append("")

    kfreed = metrics.get("kernel_tables_freed") or 0
    flushes = metrics.get("flushes")
    per = f"{flushes / kfreed:.2f} per kernel table freed" if isinstance(flushes, int) and kfreed else ""
    queue = metrics.get("queue") or {}
    rows = [
        ["kernel tables freed", num(metrics.get("kernel_tables_freed")),
         f"of {num(metrics.get('kernel_tables_unlinked'))} unlinked" if "kernel_tables_unlinked" in metrics else ""],
        ["user tables freed", num(metrics.get("user_tables_freed")), "never enter a strategy"],
        ["IOMMU flushes", num(flushes), per],
        ["worker runs", num(metrics.get("worker_runs")), ""],
        ["queue peak", num(queue.get("peak")), "tables waiting at once"],
        ["queue page-seconds", num(queue.get("page_seconds")), "memory held while waiting"],
    ]
    out.append(bold("Frees", color))
    out += align(rows, [False, True, False])
    out.append("")

    lat, caller = metrics.get("latency_ns") or {}, metrics.get("caller_ns") or {}
    rows = [["", "p50", "p99", "max"],
            ["unlink -> free", dur(lat.get("p50")), dur(lat.get("p99")), dur(lat.get("max"))],
            ["caller in free path", dur(caller.get("p50")), dur(caller.get("p99")), dur(caller.get("max"))]]
    out.append(bold("Latency", color))
    out += align(rows, [False, True, True, True])
    out.append("")

    violations = metrics.get("violations") or {}
    rows = []
    total_bad = 0
    for name in NAMES:
        v = violations.get(name)
        total = v.get("total", 0) if isinstance(v, Mapping) else v
        total_bad += total or 0
        cell = num(total)
        rows.append([red(name, color) if total else name, red(cell, color) if total else cell,
                     by_source(v) or ("" if total else BY_NAME[name].help)])
    for name, v in violations.items():  # anything the checker adds later
        if name not in NAMES:
            total = v.get("total", 0) if isinstance(v, Mapping) else v
            total_bad += total or 0
            rows.append([name, red(num(total), color) if total else num(total), by_source(v)])
    swq = metrics.get("stale_walk_queued")
    swq_total = swq.get("total") if isinstance(swq, Mapping) else swq
    rows.append(["stale_walk_queued", num(swq_total), "harmless: the page was still queued, not yet freed"])
    out.append(bold("Violations", color) + ("  none" if not total_bad else red(f"  {total_bad:,} in total", color)))
    out += align(rows, [False, True, False])
    by_context = (violations.get("unflushed_free") or {}).get("by_context") if isinstance(violations, Mapping) else None
    if by_context:
        out.append("  unflushed frees by freeing context: "
                   + ", ".join(f"{ctx} {n:,}" for ctx, n in sorted(by_context.items())))
    out.append(bold("Verdict", color) + ("  safe: no violation of any kind" if not total_bad
                                           else red("  unsafe", color) + " (see docs/checker.md)"))

    if scenario and scenario.get("expected"):
        out.append("")
        out.append(bold("Expected", color) + f"  {scenario['expected']}")
        for c in scenario.get("checks", []):
            mark = "ok  " if c["ok"] else ("??  " if c["ok"] is None else red("FAIL", color))
            value = c["value"]
            if isinstance(value, list):  # the sources other than the expected one
                got = ("also " + ", ".join(value)) if value else "no other source"
            else:
                got = num(value)
            out.append(f"  {mark} {c['metric']} {c['expect']} (got {got})")
    return "\n".join(out) + "\n"


# (label, metric path, lower is better, formatter)
COMPARE_ROWS: tuple[tuple[str, str, bool, Callable[[Any], str]], ...] = (
    ("violations (all kinds)", "@violations", True, num),
    ("kernel tables freed", "kernel_tables_freed", False, num),
    ("user tables freed", "user_tables_freed", False, num),
    ("IOMMU flushes", "flushes", True, num),
    ("flushes per kernel table", "@flushes_per_table", True, lambda v: "-" if v is None else f"{v:.2f}"),
    ("IOMMU commands", "@commands", True, num),
    ("flush time (all CPUs)", "flush_time_ns", True, dur),
    ("one flush p50", "flush_ns.p50", True, dur),
    ("one flush max", "flush_ns.max", True, dur),
    ("IOMMU queue-full stalls", "iommu_queue_stalls", True, num),
    ("worker runs", "worker_runs", False, num),
    ("worker CPU time", "worker_cpu_ns", True, dur),
    ("queue peak", "queue.peak", True, num),
    ("queue page-seconds", "queue.page_seconds", True, num),
    ("latency p50", "latency_ns.p50", True, dur),
    ("latency p99", "latency_ns.p99", True, dur),
    ("latency max", "latency_ns.max", True, dur),
    ("caller p50", "caller_ns.p50", True, dur),
    ("caller p99", "caller_ns.p99", True, dur),
    ("caller max", "caller_ns.max", True, dur),
    *((name, f"violations.{name}", True, num) for name in NAMES),
    ("stale_walk_queued (harmless)", "stale_walk_queued", False, num),
    ("events", "events", False, num),
)


def row_value(metrics: Mapping[str, Any], path: str) -> Any:
    if path == "@violations":
        v = metrics.get("violations")
        if not isinstance(v, Mapping):
            return None
        return sum((x.get("total", 0) if isinstance(x, Mapping) else x) or 0 for x in v.values())
    if path == "@commands":
        commands = metrics.get("iommu_commands")
        return sum(commands.values()) if isinstance(commands, Mapping) else None
    if path == "@flushes_per_table":
        f, k = metrics.get("flushes"), metrics.get("kernel_tables_freed")
        return f / k if isinstance(f, (int, float)) and isinstance(k, (int, float)) and k else None
    return dig(metrics, path)


def format_compare_table(columns: Sequence[Mapping[str, Any]], color: bool,
                         workload: Mapping[str, Any] | None = None) -> str:
    """The compare table: a verdict row (✓ safe / ✗ unsafe), then each metric; ``*`` marks the best
    value among the *safe* columns only (an unsafe variant is never best, however few flushes it
    issued), where at least two safe columns differ. ``workload`` (the compare document's) adds a
    warning when the columns did not unlink the same tables."""
    header = ["", *(str(c["label"]) for c in columns)]
    reasons = [list(c["unsafe_reasons"]) if "unsafe_reasons" in c else unsafe_reasons(c["metrics"])
               for c in columns]
    rows: list[list[str]] = [header]
    rows.append(["verdict", *((red("✗ unsafe", color) + " ") if r else "✓ safe " for r in reasons)])
    safe = [not r for r in reasons]
    for label, path, lower, fmt in COMPARE_ROWS:
        values = [row_value(c["metrics"], path) for c in columns]
        numeric = [v for v, ok in zip(values, safe, strict=True)
                   if ok and isinstance(v, (int, float)) and not isinstance(v, bool)]
        best = min(numeric) if lower and len(numeric) > 1 and len(set(numeric)) > 1 else None
        cells = [label]
        for v, ok in zip(values, safe, strict=True):
            cell = fmt(v)
            is_bad = path.startswith(("violations.", "@violations")) and isinstance(v, (int, float)) and v > 0
            if is_bad:
                cell = red(cell, color)
            cells.append(cell + ("*" if ok and best is not None and v == best else " "))
        rows.append(cells)
    lines = align(rows, [False, *([True] * len(columns))], indent="", gap="   ")
    lines.insert(1, "-" * max(visible_len(line) for line in lines))
    lines.append("")
    lines.append("* best (lower is better) among the safe columns, where they differ")
    for c, r in zip(columns, reasons, strict=True):
        if r:
            lines.append(red("✗", color) + f" {c['label']} is unsafe: {', '.join(r)}")
    diff = (workload or {}).get("unlinked_by_source")
    if diff:
        lines.append("! the columns did not see the same workload: tables unlinked by source differ ("
                     + describe_differences(diff, list((workload or {}).get("compared", ()))) + "); a strategy "
                     "that blocks its callers (sync) slows the sources down, so compare per table, not totals")
    return "\n".join(lines) + "\n"

