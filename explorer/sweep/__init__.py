"""Sweeps: many runs over parameters and seeds, on local processes or a Dask cluster.

A sweep is a base config, axes (``--grid``/``--range``) and seeds, expanded into points that are
plain configs (:mod:`explorer.sweep.points`). Each point runs in a worker exactly as ``run`` runs
it (:mod:`explorer.sweep.worker`), on an executor (:mod:`explorer.sweep.executors`); the runner
retries a failed point once on another worker and writes each finished point to the results files
(:mod:`explorer.sweep.runner`, :mod:`explorer.sweep.results`); summaries and plots read those files
(:mod:`explorer.sweep.summary`, :mod:`explorer.sweep.plot`). See ``docs/sweeps.md``.

The engine drives any face::

    from explorer.sweep import LocalExecutor, Sweep, plan_sweep

    plan = plan_sweep(base_config, registry, [("grid", "strategy.params.batch=64,256")], seeds=5)
    sweep = Sweep(plan, registry, LocalExecutor(4), out="results.csv")
    for result in sweep:        # each point as it finishes; sweep.stop() from another thread
        print(result.point.label(), result.status)
"""

from explorer.documents import flatten_metrics  # the results columns (re-exported: the one definition)
from explorer.sweep.executors import DASK_MISSING, DaskExecutor, Executor, LocalExecutor, Outcome, make_executor
from explorer.sweep.points import (
    Axis,
    Point,
    SweepError,
    SweepPlan,
    expand,
    make_axes,
    parse_grid,
    parse_range,
    plan_sweep,
    point_id,
    range_values,
)
from explorer.sweep.results import jsonl_path, read_results, summary_path
from explorer.sweep.runner import MAX_ATTEMPTS, PointResult, Progress, Sweep, SweepReport, bundle_for
from explorer.sweep.summary import HEADLINE, SummaryRow, best, summarize
from explorer.sweep.worker import make_bundle, run_config, run_point

__all__ = [
    "DASK_MISSING",
    "HEADLINE",
    "MAX_ATTEMPTS",
    "Axis",
    "DaskExecutor",
    "Executor",
    "LocalExecutor",
    "Outcome",
    "Point",
    "PointResult",
    "Progress",
    "SummaryRow",
    "Sweep",
    "SweepError",
    "SweepPlan",
    "SweepReport",
    "best",
    "bundle_for",
    "expand",
    "flatten_metrics",
    "jsonl_path",
    "make_axes",
    "make_bundle",
    "make_executor",
    "parse_grid",
    "parse_range",
    "plan_sweep",
    "point_id",
    "range_values",
    "read_results",
    "run_config",
    "run_point",
    "summarize",
    "summary_path",
]
