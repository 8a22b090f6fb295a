"""What the commands share: the config-source and output options, loading the plugins and the
config as the user gave them, writing a command's output, the progress bar, and running one
simulation with the CLI's error handling.

Standard library only at import time (the rest inside the functions, so start-up stays light).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from explorer.cli.errors import RunFailed, UserError
from explorer.failures import PLUGIN, TIMEOUT, USER, Failure, classify_failure

if TYPE_CHECKING:
    from explorer.config import Problem
    from explorer.plugins import Registry


def add_config_source(p: argparse.ArgumentParser, *, positional: bool = True) -> None:
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


def add_output(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format (default: table)")
    p.add_argument("--output", "-o", metavar="FILE",
                   help="write the output to FILE instead of standard output ('-': standard output; a file is "
                   "replaced whole, a device or FIFO written into, a symlink's target replaced)")


def err(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)


def plugins_dirs(args: argparse.Namespace) -> list[str]:
    dirs = [*getattr(args, "plugins_dirs", []), *getattr(args, "sub_plugins_dirs", [])]
    for d in dirs:  # a typo in a folder name would otherwise run without the user's plugins
        if not os.path.isdir(d):
            raise UserError(f"--plugins-dir {d}: no such directory")
    return dirs


def load_registry(args: argparse.Namespace, *, report_failures: bool = True) -> Registry:
    from explorer.plugins import load_registry

    dirs = plugins_dirs(args)
    # A plugin's print() at import or in a registration hook must not land in the output
    # (`plugins --json`, `run --format json`): it goes to stderr, as during runs.
    with contextlib.redirect_stdout(sys.stderr):
        registry = load_registry(plugins_dirs=dirs)
    if report_failures:
        for info in registry.failures:
            warn(f"plugin {info.name} ({info.origin}, {info.location}) failed to load: {info.error}")
    for info in registry.plugins:
        for text in info.warnings:
            warn(f"plugin {info.name} ({info.location}): {text}")
    return registry


def warn(text: str) -> None:
    """``warning: ...`` on stderr, the prefix on every line of a multi-line text."""
    for line in str(text).splitlines() or [""]:
        print(f"warning: {line}", file=sys.stderr)


def print_warnings(warnings: Sequence[Problem]) -> None:
    for w in warnings:
        warn(str(w))


def overrides_of(args: argparse.Namespace) -> list[str]:
    out = list(getattr(args, "overrides", []) or [])
    if getattr(args, "seed", None) is not None:
        out.append(f"run.seed={args.seed}")
    if getattr(args, "duration", None) is not None:
        out.append(f"run.duration={args.duration}")
    return out


def base_config(
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


def effective_config(
    args: argparse.Namespace, registry: Registry, path: str | None, scenario: str | None
) -> tuple[dict[str, Any], str | None]:
    from explorer.config import apply_overrides

    warnings: list[Problem] = []
    config, scen = base_config(registry, path, scenario, warnings)
    overrides = overrides_of(args)
    if overrides:
        config = apply_overrides(config, overrides, registry, warnings=warnings)
    print_warnings(warnings)
    return config, scen


def write_output(text: str, output: str | None, option: str | None = None) -> None:
    """Write a command's output: to standard output, or to ``output`` by the rules of
    :mod:`explorer.outputs` (``-`` is standard output; devices and FIFOs are written into).
    ``option`` names the option that could have named a file (default: --output when one is given)."""
    from explorer.outputs import STDOUT, write_text

    write_text(output, text, option if option is not None else ("--output" if output is not None else ""))
    if output is not None and output != STDOUT:
        print(f"wrote {output}", file=sys.stderr)


class Progress:
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


def simulate(config: Mapping[str, Any], registry: Registry, progress: Callable[[float], None],
              trace: str | None = None, timeout: float | None = None) -> dict[str, Any]:
    from explorer.config import ConfigError
    from explorer.outputs import OutputError
    from explorer.runguard import wall_clock_limit
    from explorer.sim.build import build_simulation

    try:
        # A plugin's print() must not land in the output (`--format json | jq`): it goes to stderr.
        with contextlib.redirect_stdout(sys.stderr), wall_clock_limit(timeout):
            sim = build_simulation(config, registry)
            if trace is None:
                return sim.run(progress=progress)
            return _run_traced(sim, progress, trace)
    except (KeyboardInterrupt, ConfigError, OutputError):  # main() reports these itself
        raise
    except BaseException as exc:
        failure = classify_failure(exc)
        if failure is USER:  # the config asks for more than the machine it describes
            raise UserError(str(exc)) from None
        message, traceback_text = _describe_failure(exc, failure, registry, config)
        raise RunFailed(message, traceback_text, failure) from None


def _describe_failure(exc: BaseException, failure: Failure, registry: Registry,
                      config: Mapping[str, Any]) -> tuple[str, str]:
    """The message and the traceback (if it helps) of a run that failed with ``exc``."""
    import traceback

    from explorer.runguard import culprit, ended_by
    from explorer.sim.engine import PluginError, PluginMistake

    tb = "".join(traceback.format_exception(exc))
    if isinstance(exc, PluginError):
        if exc.error.startswith(PluginMistake.PREFIX):  # the message names the file and line: no traceback
            return exc.summary, ""
        return f"{exc.kind} {exc.name!r} raised: {exc.error}", exc.traceback_text
    if failure is TIMEOUT:
        where = culprit(exc, registry, config)
        if where is None:  # the simulator's own work (a very large config), not a plugin: no traceback
            return (f"the run {exc}; it was still simulating (raise --timeout, or shorten run.duration "
                    "or lower the rates)"), ""
        return f"the run {exc}; it was in {where}", tb
    if failure is PLUGIN:  # plugin code may not end the program (sys.exit(), a stray GeneratorExit)
        who = culprit(exc, registry, config) or "plugin code"
        return f"{who} {ended_by(exc)} during the run (a plugin must raise an exception instead)", tb
    return f"{failure.title}: {type(exc).__name__}: {exc} ({failure.help})", tb


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


def check_outputs(args: argparse.Namespace, outputs: Sequence[tuple[str, str | None]],
                   configs: Sequence[str | None]) -> None:
    """Before any work: every output can be written and none is an input (explorer.outputs)."""
    from explorer.outputs import Input, Output, check_outputs

    check_outputs([Output(option, path) for option, path in outputs],
                  [Input("the config", c) for c in configs if c])


def variant(spec: str, kind: str) -> tuple[str, list[str]]:
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



def parse_timeout(text: str | None) -> float | None:
    """``--timeout`` (of ``run``, ``compare`` and ``sweep``): seconds, or None."""
    if text is None:
        return None
    import math

    from explorer.units import UnitError, parse_seconds

    try:
        seconds = parse_seconds(text)
    except UnitError as exc:
        raise UserError(f"--timeout: {exc}") from None
    if not (math.isfinite(seconds) and seconds > 0):
        raise UserError(f"--timeout must be a positive time such as 60s or 2m, got {text!r}")
    return seconds
