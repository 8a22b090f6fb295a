"""The ``compare`` command: the same workload and seed under several strategies, IOMMU models or
configs, one column each."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

from explorer.cli.common import (
    Progress,
    add_config_source,
    add_output,
    base_config,
    check_outputs,
    load_registry,
    overrides_of,
    parse_timeout,
    print_warnings,
    simulate,
    variant,
    write_output,
)
from explorer.cli.errors import EXIT_OK, RunFailed, UserError
from explorer.cli.tables import format_compare_table, scenario_line, use_color
from explorer.documents import compare_document, dumps_json

if TYPE_CHECKING:
    from explorer.config import Problem

def add_parser(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``compare`` to the CLI's subparsers (``common`` has --plugins-dir)."""
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
    add_config_source(p, positional=False)
    add_output(p)
    p.add_argument("--timeout", metavar="TIME",
                   help="wall-clock limit for each column's run: 60s, 2m, or a number of seconds (default: "
                   "none); a run over it fails (exit 1) naming the column and the plugin it was in")

    return p


def cmd_compare(args: argparse.Namespace) -> int:
    from explorer.config import apply_overrides, load_config

    if args.strategies and args.iommus:
        raise UserError("compare either strategies (--strategy) or IOMMU models (--iommu), not both at once")
    timeout = parse_timeout(args.timeout)
    check_outputs(args, [("--output", args.output)], args.configs)
    registry = load_registry(args)
    overrides = overrides_of(args)
    warnings: list[Problem] = []
    variants: list[tuple[str, dict[str, Any]]] = []
    scen: str | None = None
    if args.strategies or args.iommus:
        axis = "strategy" if args.strategies else "iommu"
        if len(args.configs) > 1:
            raise UserError(f"with --{axis}, give at most one CONFIG (the base); got {len(args.configs)}")
        base, scen = base_config(registry, args.configs[0] if args.configs else None, args.scenario, warnings)
        if overrides:
            base = apply_overrides(base, overrides, registry, warnings=warnings)
        for spec in (args.strategies or args.iommus):
            _, sets = variant(spec, axis)
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
    print_warnings(warnings)
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
        progress = Progress(f"[{i + 1}/{len(variants)}] {label}")
        try:
            metrics = simulate(cfg, registry, progress, timeout=timeout)
        except RunFailed as exc:  # which column failed: two may run the same plugin
            raise RunFailed(f"column {label!r}: {exc}", exc.traceback_text, exc.failure) from None
        finally:
            progress.close()
        columns.append((label, cfg, metrics))

    doc = compare_document(axis, columns, registry, scen)
    if args.format == "json":
        write_output(dumps_json(doc), args.output, "--output")
        return EXIT_OK
    scenario = doc.get("scenario")
    color = use_color(args.output)
    head = []
    if scenario:
        head += scenario_line(scenario, color)
    first = variants[0][1]
    head.append(f"compare   {axis}: {', '.join(labels)}; the same workload settings and seed {first['run']['seed']}")
    text = "\n".join(head) + "\n\n" + format_compare_table(doc["columns"], color, doc.get("workload"))
    write_output(text, args.output, "--output")
    return EXIT_OK

