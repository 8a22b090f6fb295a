"""The command line: ``run``, ``compare``, ``sweep``, ``plugins``, ``scenarios``, ``config``; no command opens the TUI.

Start-up is kept light: this module imports only the standard library at import time. The config
layer, the plugins, the simulator and Textual are imported inside the commands that need them, so
``--version`` and ``run --help`` stay fast.

Exit status: 0 success, 1 a run failed (a plugin raised), 2 a user error (a bad file, key, value or
plugin name; argparse errors are 2 as well).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from explorer import __version__
from explorer.documents import compare_document, dig, dumps_json, run_document, scenario_doc
from explorer.violations import KINDS, describe_differences, unsafe_reasons

if TYPE_CHECKING:
    from explorer.api import Param
    from explorer.config import Problem
    from explorer.plugins import Registry

EXIT_OK = 0
EXIT_RUN_FAILED = 1
EXIT_USAGE = 2

PROG = "pgtable-explorer"


class UserError(Exception):
    """A mistake on the command line: printed as ``error: ...``, exit status 2."""


class RunFailed(Exception):
    """A plugin raised during a run: printed with the plugin's traceback, exit status 1."""

    def __init__(self, message: str, traceback_text: str = "") -> None:
        super().__init__(message)
        self.traceback_text = traceback_text


# --------------------------------------------------------------------------- argument parsing


def _add_config_source(p: argparse.ArgumentParser, *, positional: bool = True) -> None:
    if positional:
        p.add_argument("config", nargs="?", metavar="CONFIG", help="a TOML config file")
        p.add_argument("--scenario", metavar="NAME", help="start from a scenario (see `scenarios`) instead of a file")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        dest="overrides",
        metavar="KEY=VALUE",
        help="override one value, e.g. kernel.cpus=4, strategy.params.batch=64, workload.vmalloc-huge.rate=1000/s "
        "(repeatable)",
    )
    p.add_argument("--seed", type=int, metavar="N", help="the seed (same as --set run.seed=N)")
    p.add_argument("--duration", metavar="TIME", help="simulated time, e.g. 50ms (same as --set run.duration=TIME)")


def _add_output(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format (default: table)")
    p.add_argument("--output", "-o", metavar="FILE",
                   help="write the output to FILE instead of standard output ('-': standard output; a file is "
                   "replaced whole, a device or FIFO written into, a symlink's target replaced)")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--plugins-dir",
        action="append",
        default=[],
        dest="sub_plugins_dirs",
        metavar="DIR",
        help="also load plugins from the .py files in DIR (repeatable)",
    )

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Simulate how the Linux kernel frees kernel page-table pages and flushes IOMMUs. "
        "Without a command, opens the interactive explorer (TUI).",
        epilog="Run `pgtable-explorer COMMAND --help` for a command's options. Exit status: 0 ok, 1 a run "
        "failed (a plugin raised), 2 a usage or config error.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument(
        "--plugins-dir",
        action="append",
        default=[],
        dest="plugins_dirs",
        metavar="DIR",
        help="also load plugins from the .py files in DIR (repeatable)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("run", parents=[common], help="run one simulation and print its metrics",
                       description="Run one simulation: from CONFIG, a --scenario, or the default "
                       "(linux-6.19), with overrides; print the metrics.")
    _add_config_source(p)
    _add_output(p)
    p.add_argument("--timeout", metavar="TIME",
                   help="wall-clock limit for the run: 60s, 2m, or a number of seconds (default: none); a run "
                   "over it fails (exit 1) naming the plugin it was in, for plugins that hang")
    p.add_argument("--trace", metavar="FILE",
                   help="also write the kernel trace of the whole run to FILE: every unlink, free, "
                   "flush, worker run and violation, one line each (kept when the run fails)")

    p = sub.add_parser(
        "compare",
        parents=[common],
        help="run several strategies, IOMMU models or configs on the same workload and seed",
        description="Run the same workload and seed under each --strategy (or each --iommu, or each "
        "CONFIG) and print one table with a column each; '*' marks the best value where lower is better.",
    )
    p.add_argument("configs", nargs="*", metavar="CONFIG",
                   help="the base config (with --strategy/--iommu) or the configs to compare")
    p.add_argument("--scenario", metavar="NAME", help="start from a scenario instead of a file")
    p.add_argument("--strategy", action="append", default=[], dest="strategies", metavar="NAME[:K=V,...]",
                   help="a strategy to compare, optionally with parameters, e.g. batched:batch=64 (repeatable)")
    p.add_argument("--iommu", action="append", default=[], dest="iommus", metavar="MODEL[:K=V,...]",
                   help="an IOMMU model to compare, optionally with parameters (repeatable)")
    _add_config_source(p, positional=False)
    _add_output(p)

    p = sub.add_parser("plugins", parents=[common], help="list the loaded plugins and those that failed to load")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--verbose", "-v", action="store_true", help="also list every parameter and where plugins live")

    p = sub.add_parser("scenarios", parents=[common], help="list the scenarios (named preset configs)")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("config", parents=[common], help="print, check and describe config files",
                       description="Print, check and describe config files.")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    c = csub.add_parser("default", parents=[common], help="print the default config (or a scenario's) as TOML")
    c.add_argument("--scenario", metavar="NAME", help="the config of this scenario")
    c.add_argument("--minimal", action="store_true", help="only what differs from the defaults")
    c = csub.add_parser("show", parents=[common], help="print the effective config of CONFIG with overrides")
    c.add_argument("config", metavar="CONFIG", help="a TOML config file")
    _add_config_source(c, positional=False)
    c.add_argument("--minimal", action="store_true", help="only what differs from the defaults")
    c = csub.add_parser("validate", parents=[common], help="check CONFIG: print 'ok' or every problem (exit 2)")
    c.add_argument("config", metavar="CONFIG", help="a TOML config file")
    c.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE",
                   help="also check these overrides")
    c = csub.add_parser("schema", parents=[common], help="print the JSON Schema of config files (for editors)")
    c.add_argument("--draft", choices=("2020-12", "7"), default="2020-12",
                   help="the JSON Schema draft to declare (the keywords used are the same; default: 2020-12)")

    from explorer.cli.sweep import add_sweep_parser  # standard library only, like this module

    add_sweep_parser(sub, common)
    from explorer.cli.plugin_new import add_plugin_parser  # standard library only, like this module

    add_plugin_parser(sub, common)

    from explorer.cli.hunt import add_hunt_parser  # standard library only, like this module

    add_hunt_parser(sub, common)

    p = sub.add_parser("tui", parents=[common], help="open the interactive explorer (the default)")
    p.add_argument("config", nargs="?", metavar="FILE.toml", help="a config file to open")
    p.add_argument("--scenario", metavar="NAME", help="open on a scenario (see `scenarios`) instead of a file")
    return parser


# --------------------------------------------------------------------------- helpers


def _err(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)


def _plugins_dirs(args: argparse.Namespace) -> list[str]:
    dirs = [*getattr(args, "plugins_dirs", []), *getattr(args, "sub_plugins_dirs", [])]
    for d in dirs:  # a typo in a folder name would otherwise run without the user's plugins
        if not os.path.isdir(d):
            raise UserError(f"--plugins-dir {d}: no such directory")
    return dirs


def _load_registry(args: argparse.Namespace, *, report_failures: bool = True) -> Registry:
    from explorer.plugins import load_registry

    dirs = _plugins_dirs(args)
    # A plugin's print() at import or in a registration hook must not land in the output
    # (`plugins --json`, `run --format json`): it goes to stderr, as during runs.
    with contextlib.redirect_stdout(sys.stderr):
        registry = load_registry(plugins_dirs=dirs)
    if report_failures:
        for info in registry.failures:
            _warn(f"plugin {info.name} ({info.origin}, {info.location}) failed to load: {info.error}")
    for info in registry.plugins:
        for text in info.warnings:
            _warn(f"plugin {info.name} ({info.location}): {text}")
    return registry


def _warn(text: str) -> None:
    """``warning: ...`` on stderr, the prefix on every line of a multi-line text."""
    for line in str(text).splitlines() or [""]:
        print(f"warning: {line}", file=sys.stderr)


def _print_warnings(warnings: Sequence[Problem]) -> None:
    for w in warnings:
        _warn(str(w))


def _overrides(args: argparse.Namespace) -> list[str]:
    out = list(getattr(args, "overrides", []) or [])
    if getattr(args, "seed", None) is not None:
        out.append(f"run.seed={args.seed}")
    if getattr(args, "duration", None) is not None:
        out.append(f"run.duration={args.duration}")
    return out


def _base_config(
    registry: Registry, path: str | None, scenario: str | None, warnings: list[Problem]
) -> tuple[dict[str, Any], str | None]:
    """The config from a file, a scenario, or the default; and the scenario it is (if any)."""
    from explorer.config import DEFAULT_SCENARIO, default_config, load_config

    if path and scenario:
        raise UserError("give a CONFIG file or --scenario, not both")
    if path:
        return load_config(path, registry, warnings=warnings), None
    if scenario is not None:  # --scenario '' is a mistake, not the default
        return default_config(registry, scenario), scenario
    return default_config(registry), (DEFAULT_SCENARIO if DEFAULT_SCENARIO in registry.scenarios else None)


def _effective_config(
    args: argparse.Namespace, registry: Registry, path: str | None, scenario: str | None
) -> tuple[dict[str, Any], str | None]:
    from explorer.config import apply_overrides

    warnings: list[Problem] = []
    config, scen = _base_config(registry, path, scenario, warnings)
    overrides = _overrides(args)
    if overrides:
        config = apply_overrides(config, overrides, registry, warnings=warnings)
    _print_warnings(warnings)
    return config, scen


def _write_output(text: str, output: str | None, option: str | None = None) -> None:
    """Write a command's output: to standard output, or to ``output`` by the rules of
    :mod:`explorer.outputs` (``-`` is standard output; devices and FIFOs are written into).
    ``option`` names the option that could have named a file (default: --output when one is given)."""
    from explorer.outputs import STDOUT, write_text

    write_text(output, text, option if option is not None else ("--output" if output is not None else ""))
    if output is not None and output != STDOUT:
        print(f"wrote {output}", file=sys.stderr)


class _Progress:
    """A one-line progress bar on stderr, drawn only when stderr is a terminal."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.label = label
        self.last = -1

    def __call__(self, fraction: float) -> None:
        if not self.enabled:
            return
        pct = max(0, min(100, int(fraction * 100)))
        if pct == self.last:
            return
        self.last = pct
        width = 30
        filled = pct * width // 100
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {pct:3d}%")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.last >= 0:
            self.stream.write("\r\033[K")
            self.stream.flush()
        self.last = -1


def _simulate(config: Mapping[str, Any], registry: Registry, progress: Callable[[float], None],
              trace: str | None = None, timeout: float | None = None) -> dict[str, Any]:
    import traceback

    from explorer.runguard import RunTimeout, culprit, ended_by, wall_clock_limit
    from explorer.sim.build import BuildError, build_simulation
    from explorer.sim.engine import PluginError, PluginMistake
    from explorer.sim.memory import OutOfMemory

    try:
        # A plugin's print() must not land in the output (`--format json | jq`): it goes to stderr.
        with contextlib.redirect_stdout(sys.stderr), wall_clock_limit(timeout):
            sim = build_simulation(config, registry)
            if trace is None:
                return sim.run(progress=progress)
            return _run_traced(sim, progress, trace)
    except PluginError as exc:
        if exc.error.startswith(PluginMistake.PREFIX):  # the message names the file and line: no traceback
            raise RunFailed(exc.summary) from None
        raise RunFailed(f"{exc.kind} {exc.name!r} raised: {getattr(exc, 'error', exc)}",
                        getattr(exc, "traceback_text", "")) from None
    except (BuildError, OutOfMemory) as exc:  # the config asks for more than the machine it describes
        raise UserError(str(exc)) from None
    except (SystemExit, GeneratorExit) as exc:  # plugin code may not end the program: a plugin failure
        who = culprit(exc, registry, config) or "plugin code"
        raise RunFailed(f"{who} {ended_by(exc)} during the run (a plugin must raise an exception instead)",
                        "".join(traceback.format_exception(exc))) from None
    except RunTimeout as exc:
        where = culprit(exc, registry, config)
        if where is None:  # the simulator's own work (a very large config), not a plugin: no traceback
            raise RunFailed(f"the run {exc}; it was still simulating (raise --timeout, or shorten run.duration "
                            "or lower the rates)") from None
        raise RunFailed(f"the run {exc}; it was in {where}", "".join(traceback.format_exception(exc))) from None


def _run_traced(sim: Any, progress: Callable[[float], None], path: str) -> dict[str, Any]:
    """Run ``sim`` streaming its trace to ``path`` (atomically). A run that fails still writes the
    trace up to the failure: that is when it is wanted most. A trace that cannot be written (a full
    disk) ends the run: the old file stays and the error names the trace, not a plugin."""
    from explorer.outputs import OutputLost, open_output, stream_writer
    from explorer.runguard import RunTimeout
    from explorer.sim.engine import SimulatorError

    failure: BaseException | None = None
    metrics: dict[str, Any] = {}
    with open_output(path, "--trace") as f:
        sim.trace_to(stream_writer(f, path, "--trace"))
        try:
            metrics = sim.run(progress=progress)
        except OutputLost:
            raise
        except (SimulatorError, RunTimeout, SystemExit, GeneratorExit) as exc:  # the trace up to the failure is kept
            failure = exc
    if path != "-":
        print(f"wrote the trace to {path}", file=sys.stderr)
    if failure is not None:
        raise failure
    return metrics


# --------------------------------------------------------------------------- text formatting


def _scenario_line(scenario: Mapping[str, Any], color: bool) -> list[str]:
    import textwrap

    text = f"scenario  {scenario['name']}" + (f": {scenario['description']}" if scenario.get("description") else "")
    lines = textwrap.wrap(text, 100, subsequent_indent=" " * 10)
    head = f"scenario  {scenario['name']}"
    return [_bold(head, color) + lines[0][len(head):], *lines[1:]]


def _use_color(output: str | None) -> bool:
    return output in (None, "-") and sys.stdout is not None and sys.stdout.isatty() and "NO_COLOR" not in os.environ


def _red(text: str, color: bool) -> str:
    return f"\033[31m{text}\033[0m" if color else text


def _bold(text: str, color: bool) -> str:
    return f"\033[1m{text}\033[0m" if color else text


def _visible_len(text: str) -> int:
    import re

    return len(re.sub(r"\033\[[0-9;]*m", "", text))


def _align(rows: Sequence[Sequence[str]], right: Sequence[bool], indent: str = "  ", gap: str = "  ") -> list[str]:
    widths = [0] * max(len(r) for r in rows)
    for r in rows:
        for i, cell in enumerate(r):
            widths[i] = max(widths[i], _visible_len(cell))
    out = []
    for r in rows:
        cells = []
        for i, cell in enumerate(r):
            pad = " " * (widths[i] - _visible_len(cell))
            cells.append(pad + cell if (right[i] if i < len(right) else True) else cell + pad)
        out.append((indent + gap.join(cells)).rstrip())
    return out


def _num(v: Any) -> str:
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


def _rate(v: Any) -> str:
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return "-"
    return f"{int(v):,}/s" if float(v).is_integer() else f"{v:.3g}/s"


def _dur(v: Any) -> str:
    from explorer.units import human_duration

    return "-" if v is None else human_duration(float(v))


VIOLATIONS = tuple(k.name for k in KINDS)
VIOLATION_HELP = {k.name: k.help for k in KINDS}


def _by_source(v: Any) -> str:
    if not isinstance(v, Mapping):
        return ""
    parts = [f"{src} {n:,}" for src, n in sorted((v.get("by_source") or {}).items()) if n]
    return ", ".join(parts)


def _describe_config(
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
        f"{_rate(io['probe_rate'])} ({io['probe_target']})" + ("" if metrics.get("sva_present", True) else
                                                                   " - no SVA mm bound"),
        f"kernel    {k['arch']}, {k['cpus']} CPUs, IOMMU_SVA={'y' if k['iommu_sva'] else 'n'}, "
        f"ASYNC_KERNEL_PGTABLE_FREE={k['async_kernel_pgtable_free']}"
        + (f" ({'y' if afree else 'n'})" if afree is not None and k["async_kernel_pgtable_free"] == "auto" else ""),
        "workload  " + (", ".join(f"{w['name']} {_rate(w.get('rate'))}" for w in config["workload"]) or "(none)"),
        f"run       {format_duration(config['run']['duration'])} simulated (+ up to "
        f"{format_duration(config['run']['drain'])} drain), seed {config['run']['seed']}, "
        f"{_num(metrics.get('events'))} events",
    ]
    return lines


def format_run_table(
    config: Mapping[str, Any], metrics: Mapping[str, Any], scenario: Mapping[str, Any] | None, color: bool,
    registry: Registry | None = None,
) -> str:
    out: list[str] = []
    if scenario:
        out += _scenario_line(scenario, color)
    out += _describe_config(config, metrics, registry)
    out.append("")

    kfreed = metrics.get("kernel_tables_freed") or 0
    flushes = metrics.get("flushes")
    per = f"{flushes / kfreed:.2f} per kernel table freed" if isinstance(flushes, int) and kfreed else ""
    queue = metrics.get("queue") or {}
    rows = [
        ["kernel tables freed", _num(metrics.get("kernel_tables_freed")),
         f"of {_num(metrics.get('kernel_tables_unlinked'))} unlinked" if "kernel_tables_unlinked" in metrics else ""],
        ["user tables freed", _num(metrics.get("user_tables_freed")), "never enter a strategy"],
        ["IOMMU flushes", _num(flushes), per],
        ["worker runs", _num(metrics.get("worker_runs")), ""],
        ["queue peak", _num(queue.get("peak")), "tables waiting at once"],
        ["queue page-seconds", _num(queue.get("page_seconds")), "memory held while waiting"],
    ]
    out.append(_bold("Frees", color))
    out += _align(rows, [False, True, False])
    out.append("")

    lat, caller = metrics.get("latency_ns") or {}, metrics.get("caller_ns") or {}
    rows = [["", "p50", "p99", "max"],
            ["unlink -> free", _dur(lat.get("p50")), _dur(lat.get("p99")), _dur(lat.get("max"))],
            ["caller in free path", _dur(caller.get("p50")), _dur(caller.get("p99")), _dur(caller.get("max"))]]
    out.append(_bold("Latency", color))
    out += _align(rows, [False, True, True, True])
    out.append("")

    violations = metrics.get("violations") or {}
    rows = []
    total_bad = 0
    for name in VIOLATIONS:
        v = violations.get(name)
        total = v.get("total", 0) if isinstance(v, Mapping) else v
        total_bad += total or 0
        cell = _num(total)
        rows.append([_red(name, color) if total else name, _red(cell, color) if total else cell,
                     _by_source(v) or ("" if total else VIOLATION_HELP.get(name, ""))])
    for name, v in violations.items():  # anything the checker adds later
        if name not in VIOLATIONS:
            total = v.get("total", 0) if isinstance(v, Mapping) else v
            total_bad += total or 0
            rows.append([name, _red(_num(total), color) if total else _num(total), _by_source(v)])
    swq = metrics.get("stale_walk_queued")
    swq_total = swq.get("total") if isinstance(swq, Mapping) else swq
    rows.append(["stale_walk_queued", _num(swq_total), "harmless: the page was still queued, not yet freed"])
    out.append(_bold("Violations", color) + ("  none" if not total_bad else _red(f"  {total_bad:,} in total", color)))
    out += _align(rows, [False, True, False])
    by_context = (violations.get("unflushed_free") or {}).get("by_context") if isinstance(violations, Mapping) else None
    if by_context:
        out.append("  unflushed frees by freeing context: "
                   + ", ".join(f"{ctx} {n:,}" for ctx, n in sorted(by_context.items())))
    out.append(_bold("Verdict", color) + ("  safe: no violation of any kind" if not total_bad
                                           else _red("  unsafe", color) + " (see docs/checker.md)"))

    if scenario and scenario.get("expected"):
        out.append("")
        out.append(_bold("Expected", color) + f"  {scenario['expected']}")
        for c in scenario.get("checks", []):
            mark = "ok  " if c["ok"] else ("??  " if c["ok"] is None else _red("FAIL", color))
            value = c["value"]
            if isinstance(value, list):  # the sources other than the expected one
                got = ("also " + ", ".join(value)) if value else "no other source"
            else:
                got = _num(value)
            out.append(f"  {mark} {c['metric']} {c['expect']} (got {got})")
    return "\n".join(out) + "\n"


# (label, metric path, lower is better, formatter)
COMPARE_ROWS: tuple[tuple[str, str, bool, Callable[[Any], str]], ...] = (
    ("violations (all kinds)", "@violations", True, _num),
    ("kernel tables freed", "kernel_tables_freed", False, _num),
    ("user tables freed", "user_tables_freed", False, _num),
    ("IOMMU flushes", "flushes", True, _num),
    ("flushes per kernel table", "@flushes_per_table", True, lambda v: "-" if v is None else f"{v:.2f}"),
    ("IOMMU commands", "@commands", True, _num),
    ("flush time (all CPUs)", "flush_time_ns", True, _dur),
    ("one flush p50", "flush_ns.p50", True, _dur),
    ("one flush max", "flush_ns.max", True, _dur),
    ("IOMMU queue-full stalls", "iommu_queue_stalls", True, _num),
    ("worker runs", "worker_runs", False, _num),
    ("worker CPU time", "worker_cpu_ns", True, _dur),
    ("queue peak", "queue.peak", True, _num),
    ("queue page-seconds", "queue.page_seconds", True, _num),
    ("latency p50", "latency_ns.p50", True, _dur),
    ("latency p99", "latency_ns.p99", True, _dur),
    ("latency max", "latency_ns.max", True, _dur),
    ("caller p50", "caller_ns.p50", True, _dur),
    ("caller p99", "caller_ns.p99", True, _dur),
    ("caller max", "caller_ns.max", True, _dur),
    *((name, f"violations.{name}", True, _num) for name in VIOLATIONS),
    ("stale_walk_queued (harmless)", "stale_walk_queued", False, _num),
    ("events", "events", False, _num),
)


def _row_value(metrics: Mapping[str, Any], path: str) -> Any:
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
    rows.append(["verdict", *((_red("✗ unsafe", color) + " ") if r else "✓ safe " for r in reasons)])
    safe = [not r for r in reasons]
    for label, path, lower, fmt in COMPARE_ROWS:
        values = [_row_value(c["metrics"], path) for c in columns]
        numeric = [v for v, ok in zip(values, safe, strict=True)
                   if ok and isinstance(v, (int, float)) and not isinstance(v, bool)]
        best = min(numeric) if lower and len(numeric) > 1 and len(set(numeric)) > 1 else None
        cells = [label]
        for v, ok in zip(values, safe, strict=True):
            cell = fmt(v)
            is_bad = path.startswith(("violations.", "@violations")) and isinstance(v, (int, float)) and v > 0
            if is_bad:
                cell = _red(cell, color)
            cells.append(cell + ("*" if ok and best is not None and v == best else " "))
        rows.append(cells)
    lines = _align(rows, [False, *([True] * len(columns))], indent="", gap="   ")
    lines.insert(1, "-" * max(_visible_len(line) for line in lines))
    lines.append("")
    lines.append("* best (lower is better) among the safe columns, where they differ")
    for c, r in zip(columns, reasons, strict=True):
        if r:
            lines.append(_red("✗", color) + f" {c['label']} is unsafe: {', '.join(r)}")
    diff = (workload or {}).get("unlinked_by_source")
    if diff:
        lines.append("! the columns did not see the same workload: tables unlinked by source differ ("
                     + describe_differences(diff, list((workload or {}).get("compared", ()))) + "); a strategy "
                     "that blocks its callers (sync) slows the sources down, so compare per table, not totals")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- commands


def _check_outputs(args: argparse.Namespace, outputs: Sequence[tuple[str, str | None]],
                   configs: Sequence[str | None]) -> None:
    """Before any work: every output can be written and none is an input (explorer.outputs)."""
    from explorer.outputs import Input, Output, check_outputs

    check_outputs([Output(option, path) for option, path in outputs],
                  [Input("the config", c) for c in configs if c])


def cmd_run(args: argparse.Namespace) -> int:
    from explorer.cli.sweep import _timeout

    timeout = _timeout(args.timeout)
    _check_outputs(args, [("--output", args.output), ("--trace", args.trace)], [args.config])
    registry = _load_registry(args)
    config, scen = _effective_config(args, registry, args.config, args.scenario)
    progress = _Progress("running")
    try:
        metrics = _simulate(config, registry, progress, trace=args.trace, timeout=timeout)
    finally:
        progress.close()
    if args.format == "json":
        _write_output(dumps_json(run_document(config, metrics, registry, scen)), args.output, "--output")
    else:
        scenario = scenario_doc(registry, scen, metrics)
        _write_output(format_run_table(config, metrics, scenario, _use_color(args.output), registry), args.output,
                      "--output")
    return EXIT_OK


def _variant(spec: str, kind: str) -> tuple[str, list[str]]:
    """``batched:batch=64,max_delay=1ms`` -> the name and the overrides that select it."""
    name, _, rest = spec.partition(":")
    name = name.strip()
    if not name:
        raise UserError(f"--{kind}: expected NAME or NAME:KEY=VALUE,..., got {spec!r}")
    key = "strategy.name" if kind == "strategy" else "iommu.model"
    prefix = "strategy.params." if kind == "strategy" else "iommu.params."
    sets = [f"{key}={name}"]
    for kv in filter(None, (s.strip() for s in rest.split(","))):
        sets.append(prefix + kv)
    return name, sets


def cmd_compare(args: argparse.Namespace) -> int:
    from explorer.config import apply_overrides, load_config

    if args.strategies and args.iommus:
        raise UserError("compare either strategies (--strategy) or IOMMU models (--iommu), not both at once")
    _check_outputs(args, [("--output", args.output)], args.configs)
    registry = _load_registry(args)
    overrides = _overrides(args)
    warnings: list[Problem] = []
    variants: list[tuple[str, dict[str, Any]]] = []
    scen: str | None = None
    if args.strategies or args.iommus:
        axis = "strategy" if args.strategies else "iommu"
        if len(args.configs) > 1:
            raise UserError(f"with --{axis}, give at most one CONFIG (the base); got {len(args.configs)}")
        base, scen = _base_config(registry, args.configs[0] if args.configs else None, args.scenario, warnings)
        if overrides:
            base = apply_overrides(base, overrides, registry, warnings=warnings)
        for spec in (args.strategies or args.iommus):
            _, sets = _variant(spec, axis)
            variants.append((spec, apply_overrides(base, sets, registry, source=f"--{axis} {spec}")))
    else:
        axis = "config"
        if args.scenario:
            raise UserError("--scenario needs --strategy or --iommu to compare against")
        if not args.configs:
            raise UserError("nothing to compare: give --strategy A --strategy B, --iommu X --iommu Y, "
                            "or two or more CONFIG files")
        for path in args.configs:
            cfg = load_config(path, registry, warnings=warnings)
            if overrides:
                cfg = apply_overrides(cfg, overrides, registry, warnings=warnings)
            variants.append((os.path.splitext(os.path.basename(path))[0], cfg))
    _print_warnings(warnings)
    if len(variants) < 2:
        raise UserError(f"nothing to compare: only {variants[0][0]!r}; give two or more --strategy, --iommu or "
                        "CONFIG (or use `run` for one)")

    labels: list[str] = []
    for label, _ in variants:
        n, candidate = 2, label
        while candidate in labels:
            candidate, n = f"{label}#{n}", n + 1
        labels.append(candidate)

    columns: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    for i, (label, cfg) in enumerate(zip(labels, (c for _, c in variants), strict=True)):
        progress = _Progress(f"[{i + 1}/{len(variants)}] {label}")
        try:
            metrics = _simulate(cfg, registry, progress)
        finally:
            progress.close()
        columns.append((label, cfg, metrics))

    doc = compare_document(axis, columns, registry, scen)
    if args.format == "json":
        _write_output(dumps_json(doc), args.output, "--output")
        return EXIT_OK
    scenario = doc.get("scenario")
    color = _use_color(args.output)
    head = []
    if scenario:
        head += _scenario_line(scenario, color)
    first = variants[0][1]
    head.append(f"compare   {axis}: {', '.join(labels)}; the same workload settings and seed {first['run']['seed']}")
    text = "\n".join(head) + "\n\n" + format_compare_table(doc["columns"], color, doc.get("workload"))
    _write_output(text, args.output, "--output")
    return EXIT_OK


def _param_doc(p: Param) -> dict[str, Any]:
    return {
        "name": p.name,
        "type": p.describe_type(),
        "default": p.to_toml(p.canonical_default()),
        "unit": p.unit,
        "min": p.min,
        "max": p.max,
        "choices": list(p.choices),
        "help": p.help,
    }


def _param_line(p: Param) -> list[str]:
    rng = ""
    if p.min is not None or p.max is not None:
        rng = f"{p.show(p.min) if p.min is not None else ''}..{p.show(p.max) if p.max is not None else ''}"
    return [p.name, p.describe_type(), p.show(p.canonical_default()), rng, p.help]


def cmd_plugins(args: argparse.Namespace) -> int:
    import textwrap

    registry = _load_registry(args, report_failures=False)

    def registered(kind: str, name: str) -> dict[str, Any]:
        obj = registry.table(kind)[name]
        doc: dict[str, Any] = {"kind": kind, "name": name, "version": str(getattr(obj, "version", ""))}
        if kind == "scenario":
            doc["description"] = obj.description
        else:
            doc["help"] = obj.help
            doc["params"] = [_param_doc(p) for p in obj.params]
        return doc

    if args.json:
        plugins = []
        for info in registry.plugins:
            d = info.as_dict()
            d["registered"] = [registered(k, n) for k, n in info.registers]
            plugins.append(d)
        failed = [{**info.as_dict(), "traceback": info.traceback} for info in registry.failures]
        _write_output(dumps_json({"plugins": plugins, "failed": failed}), None)
        return EXIT_OK

    out: list[str] = []
    rows = [["PLUGIN", "ORIGIN", "VERSION", "PROVIDES"]]
    for info in registry.plugins:
        provides = ", ".join(f"{k} {n}" for k, n in info.registers) or "(nothing)"
        rows.append([info.name, info.origin, info.version or "-", provides])
    out.append(f"Loaded plugins ({len(registry.plugins)})")
    out += _align(rows, [False, False, False, False])
    if args.verbose:
        for info in registry.plugins:
            out.append("")
            out.append(f"{info.name}  ({info.origin}: {info.location})")
            for kind, name in info.registers:
                obj = registry.table(kind)[name]
                if kind == "scenario":
                    out.append(f"  scenario {name}: {obj.description}")
                    continue
                out += textwrap.wrap(f"{kind} {name} {getattr(obj, 'version', '')}: {obj.help}".rstrip(": "), 100,
                                     initial_indent="  ", subsequent_indent="    ")
                if obj.params:
                    table = _align([_param_line(p)[:4] for p in obj.params], [False, False, True, False],
                                   indent="      ")
                    for line, p in zip(table, obj.params, strict=True):
                        out.append(line)
                        out += textwrap.wrap(p.help, 100, initial_indent=" " * 10, subsequent_indent=" " * 10)
    if registry.failures:
        out.append("")
        out.append(f"Failed to load ({len(registry.failures)})")
        for info in registry.failures:
            out.append(f"  {info.name}  ({info.origin}: {info.location})")
            out.append(f"      {info.error}")
    _write_output("\n".join(out) + "\n", None)
    return EXIT_OK


def cmd_scenarios(args: argparse.Namespace) -> int:
    import textwrap

    from explorer.config import plain_data

    registry = _load_registry(args)
    if args.json:
        docs = [
            {
                "name": sc.name,
                "version": sc.version,
                "description": sc.description,
                "expected": sc.expected,
                "expect": dict(sc.expect),
                "only_source": sc.only_source,
                "config": plain_data(sc.config),
            }
            for _, sc in sorted(registry.scenarios.items())
        ]
        _write_output(dumps_json(docs), None)
        return EXIT_OK
    out: list[str] = []
    if not registry.scenarios:
        out.append("no scenarios loaded")
    for name, sc in sorted(registry.scenarios.items()):
        out.append(name + ("  (the default)" if name == "linux-6.19" else ""))
        out += textwrap.wrap(sc.description, 96, initial_indent="    ", subsequent_indent="    ")
        if sc.expected:
            out += textwrap.wrap("expected: " + sc.expected, 96, initial_indent="    ", subsequent_indent="    ")
        out.append("")
    out.append("Run one with: pgtable-explorer run --scenario NAME")
    _write_output("\n".join(out) + "\n", None)
    return EXIT_OK


def cmd_config(args: argparse.Namespace) -> int:
    from explorer.config import default_config, dumps_config, json_schema

    registry = _load_registry(args)
    action = args.config_command
    if action == "default":
        config = default_config(registry, args.scenario)
        _write_output(dumps_config(config, registry, minimal=args.minimal), None)
    elif action == "show":
        config, _ = _effective_config(args, registry, args.config, None)
        _write_output(dumps_config(config, registry, minimal=args.minimal), None)
    elif action == "validate":
        _effective_config(args, registry, args.config, None)
        _write_output(f"{args.config}: ok\n", None)
    elif action == "schema":
        _write_output(json.dumps(json_schema(registry, args.draft), indent=2, ensure_ascii=False) + "\n", None)
    return EXIT_OK


def cmd_tui(args: argparse.Namespace) -> int:
    try:
        from explorer.tui.app import main as tui_main
    except ModuleNotFoundError as exc:
        if exc.name is not None and (exc.name == "explorer.tui" or exc.name.startswith("explorer.tui.")):
            _err("the interactive explorer (explorer.tui) is not available in this build; "
                 "use `pgtable-explorer run` (see `pgtable-explorer --help`)")
            return EXIT_USAGE
        raise
    if getattr(args, "config", None) and getattr(args, "scenario", None):
        _err("give a config file or --scenario, not both")
        return EXIT_USAGE
    result = tui_main(config_path=getattr(args, "config", None), plugins_dirs=_plugins_dirs(args),
                      scenario=getattr(args, "scenario", None))
    return int(result or 0)


def cmd_sweep(args: argparse.Namespace) -> int:
    from explorer.cli.sweep import cmd_sweep as sweep

    return sweep(args)


def cmd_plugin(args: argparse.Namespace) -> int:
    from explorer.cli.plugin_new import cmd_plugin as plugin

    return plugin(args)


def cmd_hunt(args: argparse.Namespace) -> int:
    from explorer.cli.hunt import cmd_hunt as hunt

    return hunt(args)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": cmd_run,
    "compare": cmd_compare,
    "plugins": cmd_plugins,
    "scenarios": cmd_scenarios,
    "config": cmd_config,
    "sweep": cmd_sweep,
    "plugin": cmd_plugin,
    "hunt": cmd_hunt,
    "tui": cmd_tui,
}


def main(argv: Sequence[str] | None = None) -> int:
    """The ``pgtable-explorer`` command; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return int(exc.code) if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_USAGE)
    command = args.command or "tui"
    if command == "tui":  # Textual handles its own signals
        return _dispatch(command, args)
    with _signals_interrupt() as received:
        status = _dispatch(command, args)
    return 128 + received[0] if received and status == EXIT_INTERRUPTED else status


#: SIGINT's status (128 + 2); SIGTERM and SIGHUP end with 128 + their number.
EXIT_INTERRUPTED = 130


@contextlib.contextmanager
def _signals_interrupt() -> Any:
    """SIGTERM and SIGHUP do what Ctrl-C does (raise KeyboardInterrupt where the program is), so
    every path that cleans up after Ctrl-C (temporary files, sweep workers) cleans up after them
    too. A signal that is ignored (``nohup``) stays ignored; the old handlers come back at the end.
    Yields a list that gets the number of the signal received."""
    import signal
    import threading

    received: list[int] = []

    def interrupt(signum: int, frame: object) -> None:
        received.append(signum)
        raise KeyboardInterrupt

    old: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for name in ("SIGTERM", "SIGHUP"):
            sig = getattr(signal, name, None)
            if sig is not None and signal.getsignal(sig) == signal.SIG_DFL:
                old[sig] = signal.signal(sig, interrupt)
    try:
        yield received
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def _dispatch(command: str, args: argparse.Namespace) -> int:
    from explorer.config import ConfigError, problem_lines
    from explorer.outputs import OutputError

    try:
        return COMMANDS[command](args)
    except ConfigError as exc:
        for line in problem_lines(exc.problems):
            _err(line)
        return EXIT_USAGE
    except (UserError, OutputError) as exc:
        _err(str(exc))
        return EXIT_USAGE
    except RunFailed as exc:
        _err(str(exc))
        if exc.traceback_text:
            print("\nplugin traceback:\n" + exc.traceback_text.rstrip(), file=sys.stderr)
        return EXIT_RUN_FAILED
    except BrokenPipeError:  # pragma: no cover - e.g. `| head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_RUN_FAILED
    except FileNotFoundError as exc:
        _err(f"{exc.filename or exc}: no such file")
        return EXIT_USAGE
    except IsADirectoryError as exc:
        _err(f"{exc.filename or exc}: is a directory, not a config file")
        return EXIT_USAGE
    except PermissionError as exc:
        _err(f"{exc.filename or exc}: permission denied")
        return EXIT_USAGE
    except OSError as exc:
        _err(f"{exc.filename + ': ' if exc.filename else ''}{exc.strerror or exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
