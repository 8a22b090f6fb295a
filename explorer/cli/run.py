"""The ``run`` command: one simulation, its metrics as a table or JSON, and optionally its trace."""

from __future__ import annotations

import argparse
from typing import Any

from explorer.cli.common import (
    Progress,
    add_config_source,
    add_output,
    check_outputs,
    effective_config,
    load_registry,
    parse_timeout,
    simulate,
    write_output,
)
from explorer.cli.errors import EXIT_OK
from explorer.cli.tables import format_run_table, use_color
from explorer.documents import dumps_json, run_document, scenario_doc


def add_parser(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``run`` to the CLI's subparsers (``common`` has --plugins-dir)."""
    p = sub.add_parser("run", parents=[common], help="run one simulation and print its metrics",
                       description="Run one simulation: from CONFIG, a --scenario, or the default "
                       "(linux-6.19), with overrides; print the metrics.")
    add_config_source(p)
    add_output(p)
    p.add_argument("--timeout", metavar="TIME",
                   help="wall-clock limit for the run: 60s, 2m, or a number of seconds (default: none); a run "
                   "over it fails (exit 1) naming the plugin it was in, for plugins that hang")
    p.add_argument("--trace", metavar="FILE",
                   help="also write the kernel trace of the whole run to FILE: every unlink, free, "
                   "flush, worker run and violation, one line each (kept when the run fails)")

    return p


def cmd_run(args: argparse.Namespace) -> int:
    timeout = parse_timeout(args.timeout)
    check_outputs(args, [("--output", args.output), ("--trace", args.trace)], [args.config])
    registry = load_registry(args)
    config, scen = effective_config(args, registry, args.config, args.scenario)
    progress = Progress("running")
    try:
        metrics = simulate(config, registry, progress, trace=args.trace, timeout=timeout)
    finally:
        progress.close()
    if args.format == "json":
        write_output(dumps_json(run_document(config, metrics, registry, scen)), args.output, "--output")
    else:
        scenario = scenario_doc(registry, scen, metrics)
        write_output(format_run_table(config, metrics, scenario, use_color(args.output), registry), args.output,
                      "--output")
    return EXIT_OK

