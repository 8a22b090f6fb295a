"""``pgtable-explorer hunt``: its arguments and its handler (the search is :mod:`explorer.hunt`).

Exit status: 0 nothing found within the budget (what was covered is printed), 1 a counterexample
found (written to ``--out``, its events and the story of its trace printed) or a plugin raised, 2 a
user error. Like every command module, this one imports only the standard library at import time.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from explorer.cli.common import Progress, effective_config, load_registry, variant, write_output
from explorer.cli.errors import EXIT_OK, RunFailed, UserError
from explorer.documents import dumps_json
from explorer.failures import BY_NAME, PLUGIN, USER

if TYPE_CHECKING:
    from explorer.hunt import HuntResult
    from explorer.plugins import Registry

EXIT_FOUND = 1
DEFAULT_OUT = "counterexample.toml"
#: The kinds the parser offers before the checker is imported (kept in step by a test).
KIND_HELP = "use_after_free, stale_walk_free, double_free, freed_while_linked, ... or any"


def add_parser(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``hunt`` subcommand to ``sub`` (the CLI's subparsers; ``common`` has --plugins-dir)."""
    p = sub.add_parser(
        "hunt",
        parents=[common],
        help="search for a use-after-free and shrink it to a replayable counterexample",
        description="Search the config's workload (event times and bursts, which CPU frees, device probes "
        "aimed at just-unlinked tables, page reuse, the seed, the workqueue delay, flush durations) for a "
        "memory-safety violation. A run that shows one is shrunk to the fewest scripted events and written "
        "to --out as a normal config: `run FILE --trace T` replays it. Exit status: 0 nothing found within "
        "the budget, 1 counterexample found (or a plugin raised), 2 usage error.",
        epilog="Examples:\n"
        "  pgtable-explorer hunt --scenario before-fix --out uaf.toml\n"
        "  pgtable-explorer hunt --scenario linux-6.19 --strategy batched:batch=64 --budget 2m\n"
        "  pgtable-explorer hunt my.toml --max-runs 2000 --seed 7    # repeatable: the same answer every time\n"
        "See docs/hunt.md.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", nargs="?", metavar="CONFIG", help="a TOML config file (default: linux-6.19)")
    p.add_argument("--scenario", metavar="NAME", help="start from a scenario (see `scenarios`) instead of a file")
    p.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE",
                   help="override one value of the config (repeatable)")
    p.add_argument("--strategy", metavar="NAME[:K=V,...]",
                   help="hunt on this strategy, optionally with parameters, e.g. batched:batch=64")
    p.add_argument("--kind", default="any", metavar="KIND",
                   help=f"the violation to look for: {KIND_HELP} (any memory-safety kind; default: any)")
    p.add_argument("--budget", default="60s", metavar="TIME",
                   help="wall-clock time the search may take: 60s, 2m, or seconds (default: 60s)")
    p.add_argument("--max-runs", type=int, metavar="N",
                   help="at most N candidate runs: the same seed and N give the same answer on any machine")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="the seed of the search (default: 0)")
    x = p.add_mutually_exclusive_group()
    x.add_argument("--workers", type=int, metavar="N", help="local worker processes (default: one per CPU)")
    x.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="hunt on this Dask cluster, as sweep does (pgtable-explorer[dask] here and on the workers)")
    x.add_argument("--dask-local", type=int, metavar="N", help="hunt on a local Dask cluster of N worker processes")
    p.add_argument("--out", metavar="FILE.toml",
                   help=f"where to write a counterexample (default: {DEFAULT_OUT}, or the first free "
                   "counterexample-N.toml)")
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format (default: table)")
    return p


def _out_path(requested: str | None) -> str:
    if requested:
        folder = os.path.dirname(os.path.abspath(requested))
        if not os.path.isdir(folder):
            raise UserError(f"--out {requested}: the folder {folder} does not exist")
        if os.path.isdir(requested):
            raise UserError(f"--out {requested}: is a directory")
        return requested
    if not os.path.exists(DEFAULT_OUT):
        return DEFAULT_OUT
    n = 2
    while os.path.exists(f"counterexample-{n}.toml"):
        n += 1
    return f"counterexample-{n}.toml"


def story(trace: Sequence[str], kind: str | None = None, limit: int = 20) -> list[str]:
    """The trace up to and including the first violation of ``kind`` (any kind when None), at most
    ``limit`` lines: a use-after-free's story goes on past the unflushed free that caused it."""
    mark = f": violation: kind={kind} " if kind else ": violation:"
    out: list[str] = []
    for line in trace:
        out.append(line)
        if mark in line + " ":
            break
    return out[-limit:]


def counterexample_text(result: HuntResult, registry: Registry, path: str) -> str:
    """The counterexample as a config file: a comment saying what it is, then the config."""
    from explorer.config import dumps_config

    assert result.config is not None
    head = [
        f"# A counterexample found by `pgtable-explorer hunt` (seed {result.seed}, {result.runs} runs): "
        f"{result.kind}.",
        f"# Replay it: pgtable-explorer run {path} --trace story.txt",
        f"# The only workload is a `script` of {result.events} event(s); random device traffic and "
        "background allocation are off, so the run is exactly these events.",
    ]
    return "\n".join(head) + "\n\n" + dumps_config(result.config, registry)


def _seconds(ns: int) -> str:
    from explorer.units import human_duration

    return human_duration(float(ns))


def format_result(result: HuntResult, label: str, kind: str, out: str | None) -> str:
    lines = [f"hunt      {label}"]
    covered = (f"{result.runs:,} runs in {result.rounds} round(s), {result.wall_s:.1f}s wall, "
               f"{_seconds(result.simulated_ns)} simulated")
    if result.found:
        lines.append(f"found     {result.kind} after {covered}")
        lines.append(f"shrunk    to {result.events} event(s), written to {out}")
        lines.append("")
        lines += ["  " + line for line in result.script.rstrip("\n").split("\n")]
        lines.append("")
        tale = story(result.trace, result.kind)
        lines.append(f"The story (pgtable-explorer run {out} --trace story.txt):")
        lines += ["  " + line for line in tale]
        if len(result.trace) > len(tale):
            lines.append(f"  ... the trace goes on ({len(result.trace) - len(tale)} more lines)")
        return "\n".join(lines) + "\n"
    what = "memory-safety violation" if kind == "any" else kind
    lines.append(f"nothing   found: no {what} in {covered}")
    lines.append("varied    " + "\n          ".join(result.varied))
    if result.stopped == "budget":
        lines.append("stopped   by the wall-clock budget: --max-runs N gives the same coverage on every machine")
    else:
        lines.append("stopped   after --max-runs")
    lines.append("")
    lines.append("Not finding one is evidence, not proof: a longer --budget, other --seed values or another "
                 "scenario search further.")
    return "\n".join(lines) + "\n"


def result_document(result: HuntResult, registry: Registry, out: str | None) -> dict[str, Any]:
    from explorer.config import to_toml_dict

    return {
        "found": result.found,
        "kind": result.kind,
        "events": result.events,
        "runs": result.runs,
        "rounds": result.rounds,
        "simulated_ns": result.simulated_ns,
        "wall_s": round(result.wall_s, 3),
        "seed": result.seed,
        "stopped": result.stopped,
        "varied": result.varied,
        "out": out,
        "script": result.script or None,
        "violations": result.violations,
        "config": to_toml_dict(result.config, registry) if result.config is not None else None,
        "trace": result.trace,
    }


def cmd_hunt(args: argparse.Namespace) -> int:
    from explorer.hunt import HuntError, hunt, kind_choices
    from explorer.units import UnitError, parse_seconds

    kinds = kind_choices()
    if args.kind not in kinds:
        import difflib

        close = difflib.get_close_matches(args.kind, kinds, n=1)
        raise UserError(f"--kind {args.kind}: unknown violation kind" + (f" (did you mean {close[0]!r}?)" if close
                                                                          else "") + f"; valid: {', '.join(kinds)}")
    try:
        budget = parse_seconds(args.budget)
    except UnitError as exc:
        raise UserError(f"--budget: {exc}") from None
    if budget <= 0:
        raise UserError(f"--budget: must be more than 0, got {args.budget}")
    if args.max_runs is not None and args.max_runs < 1:
        raise UserError(f"--max-runs: must be at least 1, got {args.max_runs}")
    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers: must be at least 1, got {args.workers}")
    from explorer.outputs import Input, Output, check_outputs, write_text
    from explorer.sweep.executors import SweepError

    out = _out_path(args.out)
    # before the search: --out can be written and is not the config (hunt C.toml --out C.toml)
    check_outputs([Output("--out", out)], [Input("the config", args.config)] if args.config else [])
    registry = load_registry(args)
    if args.strategy:
        _, sets = variant(args.strategy, "strategy")
        args.overrides = [*sets, *args.overrides]
    config, scen = effective_config(argparse.Namespace(overrides=args.overrides), registry, args.config, args.scenario)

    label = (scen or (os.path.basename(args.config) if args.config else "the default config"))
    label += f": strategy {config['strategy']['name']}, iommu {config['iommu']['model']}; kind {args.kind}; " \
             f"seed {args.seed}"
    bar = Progress("hunting")

    def progress(fraction: float, runs: int) -> None:
        bar.label = f"hunting ({runs:,} runs)"
        bar(fraction)

    try:
        result = hunt(config, registry, kind=args.kind, budget_s=budget, max_runs=args.max_runs, seed=args.seed,
                      workers=args.workers, progress=progress, scheduler=args.scheduler, dask_local=args.dask_local)
    except SweepError as exc:  # the Dask cluster: not installed, unreachable, other versions
        raise UserError(str(exc)) from None
    except HuntError as exc:
        failure = BY_NAME.get(exc.failure, PLUGIN)
        if failure is USER:  # a candidate ran out of the machine's pages: the config's kernel.pages
            raise UserError(str(exc)) from None
        raise RunFailed(str(exc), exc.traceback_text, failure) from None
    finally:
        bar.close()
    written = None
    if result.found:
        write_text(out, counterexample_text(result, registry, out), "--out")
        written = out
    if args.format == "json":
        write_output(dumps_json(result_document(result, registry, written)), None)
    else:
        write_output(format_result(result, label, args.kind, written), None)
    return EXIT_FOUND if result.found else EXIT_OK


__all__ = ["EXIT_FOUND", "add_parser", "cmd_hunt"]
