"""``pgtable-explorer sweep``: its arguments and its handler (the engine is :mod:`explorer.sweep`).

Two modes:

- *run a sweep*: a base config (``CONFIG``, ``--scenario``, ``--set``/``--seed``/``--duration`` as
  for ``run``), axes (``--grid``, ``--range``), ``--seeds``/``--sample``, an executor (``--workers``,
  ``--scheduler``, ``--dask-local``), results to ``--out``; then a summary, and a plot when
  ``--plot`` and an image file are given.
- *read results*: with ``--plot``/``--summary`` and nothing that defines a sweep, the results in
  ``--out`` are plotted (``sweep --plot METRIC --x KEY [--hue KEY] out.png``) or summarised.

Like every command module, this one imports only the standard library at import time.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from explorer.cli.common import add_config_source, effective_config, load_registry, parse_timeout, write_output
from explorer.cli.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_RUN_FAILED, UserError
from explorer.cli.tables import align
from explorer.documents import dumps_json

if TYPE_CHECKING:
    from explorer.sweep import SweepPlan

IMAGE_SUFFIXES = (".png", ".svg", ".pdf")
DEFAULT_OUT = "sweep.csv"
#: The metrics of the per-point table when no --metric is given.
TABLE_METRICS = ("flushes", "queue.peak", "latency_ns.p99", "violations.use_after_free.total")


class _Axis(argparse.Action):
    """--grid and --range both append to one list, keeping their order on the command line."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        axes = list(getattr(namespace, "axes", None) or [])
        axes.append((self.const, values))
        namespace.axes = axes


def _csv_list(values: Sequence[str]) -> list[str]:
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def add_parser(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``sweep`` subcommand to ``sub`` (the CLI's subparsers; ``common`` has --plugins-dir)."""
    p = sub.add_parser(
        "sweep",
        parents=[common],
        help="run a grid of configs and seeds on local processes or a Dask cluster",
        description="Run many points: the product of --grid/--range axes over a base config, each with "
        "--seeds seeds, in parallel. Each point runs exactly as `run` would. Results go to --out (CSV, and "
        "JSON Lines beside it) as points finish. With --plot/--summary and no sweep definition, read "
        "the results in --out instead.",
        epilog="Examples:\n"
        "  pgtable-explorer sweep --set strategy.name=batched --grid strategy.params.batch=16,64,256 \\\n"
        "      --grid iommu.model=intel-vtd,amd-vi,arm-smmuv3 --seeds 5 --out batch.csv\n"
        "  pgtable-explorer sweep --plot flushes,queue.peak --x strategy.params.batch --hue iommu.model \\\n"
        "      --out batch.csv batch.svg\n"
        "See docs/sweeps.md.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(axes=[])
    p.add_argument("targets", nargs="*", metavar="CONFIG|IMAGE",
                   help="a TOML config file (the base of the sweep) and/or the plot file (.png, .svg, .pdf)")
    p.add_argument("--scenario", metavar="NAME", help="start from a scenario instead of a file")
    add_config_source(p, positional=False)

    g = p.add_argument_group("the points")
    g.add_argument("--grid", action=_Axis, const="grid", metavar="KEY=V1,V2,...",
                   help="sweep KEY over these values (repeatable: the product of all axes)")
    g.add_argument("--range", action=_Axis, const="range", metavar="KEY=START:STOP:STEPS[:log]",
                   help="sweep KEY over STEPS values from START to STOP, evenly spaced (or log-spaced)")
    g.add_argument("--seeds", type=int, metavar="N",
                   help="run each combination with N seeds: the base seed and the N-1 after it (default 1)")
    g.add_argument("--sample", type=int, metavar="K", help="run only K combinations, drawn at random")
    g.add_argument("--sample-seed", type=int, default=0, metavar="N",
                   help="the seed of that draw (default 0: the same K every time)")
    g.add_argument("--dry-run", action="store_true", help="list the points and exit")

    g = p.add_argument_group("where they run")
    x = g.add_mutually_exclusive_group()
    x.add_argument("--workers", type=int, metavar="N", help="local worker processes (default: one per CPU)")
    x.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="run on this Dask cluster (needs pgtable-explorer[dask] here and on the workers)")
    x.add_argument("--dask-local", type=int, metavar="N",
                   help="start a Dask LocalCluster of N workers on 127.0.0.1 and run there")
    g.add_argument("--timeout", metavar="TIME",
                   help="wall-clock limit per point: 60s, 2m, or a number of seconds (default: none); a point "
                   "over it fails as 'timed out' (its local worker process is killed) and is retried once")

    g = p.add_argument_group("results")
    g.add_argument("--out", default=DEFAULT_OUT, metavar="FILE.csv",
                   help=f"the results file, in a folder that exists; JSON Lines go beside it (default: {DEFAULT_OUT})")
    r = g.add_mutually_exclusive_group()
    r.add_argument("--resume", action="store_true",
                   help="skip the points already finished in --out (which must be a sweep's results file)")
    r.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    g.add_argument("--no-progress", action="store_true",
                   help="no progress on stderr (a bar on a terminal; elsewhere a status line a minute)")
    g.add_argument("--metric", action="append", default=[], metavar="M[,M...]",
                   help="metrics to show in the summary (default: a few headline ones; the summary file has all)")
    g.add_argument("--maximize", action="append", default=[], metavar="M[,M...]",
                   help="for these metrics the best point is the highest mean (default: the lowest)")
    g.add_argument("--summary", action="store_true", help="summarise the results in --out (without a sweep: only that)")
    g.add_argument("--json", action="store_true", help="print the summary (or --dry-run points) as JSON")

    g = p.add_argument_group("plot")
    g.add_argument("--plot", action="append", default=[], metavar="M[,M...]",
                   help="draw these metrics (one panel each) against --x into the IMAGE file")
    g.add_argument("--x", metavar="KEY", help="the swept key on the x axis")
    g.add_argument("--hue", metavar="KEY", help="one line per value of this swept key")
    return p


# --------------------------------------------------------------------------- the handler


def _split_targets(targets: Sequence[str]) -> tuple[str | None, str | None]:
    config = image = None
    for t in targets:
        if t.lower().endswith(IMAGE_SUFFIXES):
            if image is not None:
                raise UserError(f"two plot files given: {image} and {t}")
            image = t
        else:
            if config is not None:
                raise UserError(f"two configs given: {config} and {t} (sweep takes one base config)")
            config = t
    return config, image


def _defines_sweep(args: argparse.Namespace, config: str | None) -> bool:
    return bool(config or args.scenario or args.axes or args.seeds or args.sample or args.overrides
                or args.seed is not None or args.duration is not None)


def cmd_sweep(args: argparse.Namespace) -> int:
    from explorer.sweep.results import jsonl_path, summary_path  # explorer.sweep.results is light

    config_path, image = _split_targets(args.targets)
    plot_metrics = _csv_list(args.plot)
    if plot_metrics and not args.x:
        raise UserError("--plot needs --x KEY (the swept key on the x axis)")
    if plot_metrics and image is None:
        raise UserError("--plot needs a plot file to write: add OUT.png or OUT.svg")
    if image is not None and not plot_metrics:
        raise UserError(f"{image}: a plot file needs --plot METRIC and --x KEY")
    if (args.x or args.hue) and not plot_metrics:
        raise UserError("--x/--hue go with --plot METRIC")
    if image is not None:
        _check_folder(image)  # before a sweep that would end unable to draw
    if not _defines_sweep(args, config_path) and (plot_metrics or args.summary):
        _check_outputs([("the plot file", image)], [("the results (--out)", args.out),
                                                     ("the results (--out)", str(jsonl_path(args.out)))])
        return _from_results(args, plot_metrics, image)
    _check_outputs([("--out", args.out), ("--out's JSON Lines", str(jsonl_path(args.out))),
                    ("--out's summary", str(summary_path(args.out))), ("the plot file", image)],
                   [("the config", config_path)])
    status = _run_sweep(args, config_path)
    if status in (EXIT_OK, EXIT_RUN_FAILED) and plot_metrics and image is not None:
        _plot(args, plot_metrics, image)
    return status


def _check_outputs(outputs: Sequence[tuple[str, str | None]], inputs: Sequence[tuple[str, str | None]]) -> None:
    """Before any work: each output can be written and none is an input (explorer.outputs)."""
    from explorer.outputs import Input, Output, check_outputs

    check_outputs([Output(o, p) for o, p in outputs], [Input(label, p) for label, p in inputs])


def _check_folder(path: str) -> None:
    from explorer.sweep import SweepError
    from explorer.sweep.results import check_folder

    try:
        check_folder(path)
    except SweepError as exc:
        raise UserError(str(exc)) from None


def _read(out: str) -> list[dict[str, Any]]:
    from explorer.sweep import read_results
    from explorer.sweep.results import NotResults

    try:
        records = read_results(out, strict=True)
    except FileNotFoundError as exc:
        raise UserError(f"{exc} (give the results of a sweep with --out FILE.csv)") from None
    except NotResults as exc:
        raise UserError(exc.problem) from None
    except IsADirectoryError:
        raise UserError(f"{out} is a folder, not a results file "
                        "(give the results of a sweep with --out FILE.csv)") from None
    if not records:
        raise UserError(f"{out}: no results in it")
    return records


def _from_results(args: argparse.Namespace, plot_metrics: list[str], image: str | None) -> int:
    records = _read(args.out)
    if plot_metrics and image is not None:
        _plot(args, plot_metrics, image, records)
    if args.summary:
        _print_summary(args, records, header=[f"results   {args.out}: {len(records)} rows"])
    return EXIT_OK


def _shower(args: argparse.Namespace, records: list[dict[str, Any]]) -> Any:
    """``show(key, value)`` for the swept values, in their declared units (``200us``, not ``200000``)."""
    from explorer.config import ConfigError, default_config
    from explorer.sweep.points import value_shower

    registry = load_registry(args, report_failures=False)
    try:
        base = default_config(registry, getattr(args, "scenario", None))
    except ConfigError:
        base = default_config(registry)
    return value_shower(records, base, registry)


def _plot(
    args: argparse.Namespace, metrics: list[str], image: str, records: list[dict[str, Any]] | None = None
) -> None:
    from explorer.sweep import SweepError
    from explorer.sweep.plot import plot_results

    if records is None:
        records = _read(args.out)
    from explorer.outputs import OutputError

    try:
        notes = plot_results(records, metrics, args.x, image, hue=args.hue, show=_shower(args, records))
    except SweepError as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:  # a full disk: the old plot is kept (plot_results writes atomically)
        raise OutputError("the plot file", image, f"cannot write: {exc.strerror or exc}") from None
    for n in notes:
        print(f"note: {n}", file=sys.stderr)
    print(f"wrote {image}", file=sys.stderr)


def _describe_plan(plan: SweepPlan) -> str:
    sizes = [f"{a.key} ({len(a)} value{'s' if len(a) != 1 else ''})" for a in plan.axes]
    seeds = f"{len(plan.seeds)} seed{'s' if len(plan.seeds) != 1 else ''}"
    what = " x ".join([*sizes, seeds])
    text = f"{len(plan.points)} point{'s' if len(plan.points) != 1 else ''}: {what}"
    if plan.sample is not None and plan.sample < plan.combinations:
        text += f" (a sample of {plan.sample} of {plan.combinations} combinations, sample seed {plan.sample_seed})"
    return text


def _run_sweep(args: argparse.Namespace, config_path: str | None) -> int:
    from explorer.sweep import Sweep, SweepError, make_executor, plan_sweep, summary_path
    from explorer.sweep.progress import ProgressBar

    timeout = parse_timeout(args.timeout)
    registry = load_registry(args)
    base, _ = effective_config(args, registry, config_path, args.scenario)
    try:
        plan = plan_sweep(base, registry, args.axes, seeds=1 if args.seeds is None else args.seeds, sample=args.sample,
                          sample_seed=args.sample_seed)
    except SweepError as exc:
        raise UserError(str(exc)) from None
    for note in plan.notes:
        print(f"note: {note}", file=sys.stderr)
    if args.dry_run:
        _print_points(plan, args.json)
        return EXIT_OK

    try:
        executor = make_executor(args.workers, args.scheduler, args.dask_local)
    except SweepError as exc:
        raise UserError(str(exc)) from None
    bar = None if args.no_progress else ProgressBar(sys.stderr)
    try:
        sweep = Sweep(plan, registry, executor, out=args.out, resume=args.resume, overwrite=args.overwrite,
                      on_progress=bar, timeout=timeout)
    except SweepError as exc:
        raise UserError(str(exc)) from None
    print(f"sweep     {_describe_plan(plan)}; on {executor.describe()}; results to {args.out}", file=sys.stderr)
    interrupted = False
    try:
        sweep.run()
    except KeyboardInterrupt:
        interrupted = True
    except SweepError as exc:
        raise UserError(str(exc)) from None
    finally:
        if bar is not None:
            bar.close()
    report = sweep.report()
    from explorer.sweep.results import jsonl_path

    done = report.ok + report.failed
    if interrupted or report.stopped:
        print(f"interrupted: {report.skipped + done} of {report.total} points finished, kept in {args.out}; "
              "run the same command with --resume to finish the sweep", file=sys.stderr)
        return EXIT_INTERRUPTED

    header = [
        f"sweep     {report.total} points on {executor.describe()}: {report.ok} ok, {report.failed} failed"
        + (f", {report.skipped} already done" if report.skipped else "") + f" in {report.elapsed:.1f}s",
        f"results   {args.out}, {jsonl_path(args.out)}; summary {summary_path(args.out)}",
    ]
    ids = {p.id for p in plan.points}
    mine = [r for r in report.records if r.get("point_id") in ids]
    if len(mine) < len(report.records):
        header.append(f"note      {len(report.records) - len(mine)} row(s) in {args.out} are not points of this "
                      "sweep: kept at the end, left out of the summary")
    _print_summary(args, mine, header=header, write_file=True)
    failed = [r for r in mine if r.get("status") == "failed"]
    if failed:
        print(f"{len(failed)} point(s) failed; the first: point {failed[0].get('point')}: {failed[0].get('error')}",
              file=sys.stderr)
        return EXIT_RUN_FAILED
    return EXIT_OK


def _print_points(plan: SweepPlan, as_json: bool) -> None:
    if as_json:
        lines = [json.dumps({"point": p.index, "point_id": p.id, "params": p.params, "seed": p.seed,
                             "overrides": p.overrides()}) for p in plan.points]
        write_output("\n".join(lines) + ("\n" if lines else ""), None)
        return
    rows = [["point", *plan.keys, "seed", "point_id"]]
    for p in plan.points:
        rows.append([str(p.index), *("-" if p.params[k] is None else str(p.params[k]) for k in plan.keys),
                     str(p.seed), p.id])
    text = "\n".join(align(rows, [True] + [False] * (len(plan.keys)) + [True, False], indent=""))
    write_output(f"{_describe_plan(plan)}\n\n{text}\n", None)


def _print_summary(args: argparse.Namespace, records: list[dict[str, Any]], *, header: list[str],
                   write_file: bool = False) -> None:
    from explorer.sweep import HEADLINE, best, summarize, summary_path
    from explorer.sweep.summary import fmt_stat, metric_columns, summary_json, write_summary_csv

    available = metric_columns(records)
    chosen = _csv_list(args.metric)
    for m in chosen:
        if m not in available:
            import difflib

            close = difflib.get_close_matches(m, available, n=3)
            raise UserError(f"--metric {m}: no such metric in the results"
                            + (f" (did you mean {', '.join(close)}?)" if close else ""))
    maximize = set(_csv_list(args.maximize))
    rows = summarize(records, available)
    show = _shower(args, records)
    if write_file:
        write_summary_csv(rows, summary_path(args.out), available)
    shown = chosen or [m for m in HEADLINE if m in available]
    if args.json:
        doc = summary_json(rows, shown, maximize)
        doc["results"] = args.out
        write_output(dumps_json(doc), None)
        return
    out = list(header)
    table_metrics = chosen or [m for m in TABLE_METRICS if m in available]
    if rows and len(rows) <= 40 and table_metrics:
        keys = list(rows[0].params)
        table = [[*keys, "seeds", "safe", *table_metrics]]
        for r in rows:
            table.append([*(show(k, r.params.get(k)) for k in keys),
                          f"{r.ok}" + (f" ({r.failed} failed)" if r.failed else ""),
                          "✓" if r.safe else "✗ " + ", ".join(r.unsafe),
                          *(fmt_stat(r.stats.get(m), m) for m in table_metrics)])
        out.append("")
        out.append("mean ± 95% confidence interval over the seeds; ✗ = a violation in some seed (unsafe)")
        out += align(table, [False] * len(keys) + [True, False] + [True] * len(table_metrics))
    elif rows:
        out.append(f"({len(rows)} parameter points: see the summary file for each)")
    bests = []
    for m in shown:
        b = best(rows, m, maximize=m in maximize)
        if b is None:
            continue
        tie = sum(1 for r in rows if r.safe and m in r.stats and r.stats[m].mean == b.stats[m].mean)
        where = b.label(show) + (f" (and {tie - 1} more with the same mean)" if tie > 1 else "")
        bests.append([m, "highest" if m in maximize else "lowest", fmt_stat(b.stats[m], m), where])
    unsafe = [r for r in rows if not r.safe]
    if bests:
        out.append("")
        out.append("best point per metric" + (" (among the safe points only)" if unsafe else ""))
        out += align(bests, [False, False, True, False])
    if unsafe:
        out.append("")
        out.append(f"✗ {len(unsafe)} of {len(rows)} point(s) unsafe (a violation in some seed), never best:")
        out += align([[r.label(show), ", ".join(r.unsafe_reasons())] for r in unsafe[:5]], [False, False])
        if len(unsafe) > 5:
            out.append(f"  ... and {len(unsafe) - 5} more (the summary file's safe and unsafe_reasons columns)")
    write_output("\n".join(out) + "\n", None)
