"""6. Parallel: ``compare`` of four strategies and a batch of runs, with 1 and 2 worker processes.

Configs cross the process boundary as plain dicts. The batch goes through the sweep engine
(``explorer.sweep``: ``Sweep`` on a ``LocalExecutor``) when it exists, else through a
``concurrent.futures.ProcessPoolExecutor``; ``compare`` runs its columns the same way.
"""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from tests.benchmarks.cases import STRATEGIES, config
from tests.benchmarks.common import Figure, median


def _run_one(cfg: dict[str, Any]) -> int:
    from explorer.plugins import load_registry
    from explorer.sim.build import Simulation

    return int(Simulation(cfg, load_registry(entry_points=False)).run()["events"])


def _spin(n: int) -> int:
    """Pure CPU work with nothing shared: the control for what the machine gives two processes."""
    x = 0
    for i in range(n):
        x ^= i * 2654435761 & 0xFFFF
    return x


def _control(workers: int, tasks: int = 8, n: int = 1_500_000) -> float:
    t = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        list(pool.map(_spin, [n] * tasks))
    return time.perf_counter() - t


def _pool(configs: list[dict[str, Any]], workers: int) -> float:
    t = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        list(pool.map(_run_one, configs))
    return time.perf_counter() - t


def _sweep(configs: list[dict[str, Any]], workers: int) -> float:
    from explorer.plugins import load_registry
    from explorer.sweep import LocalExecutor, Sweep, plan_sweep

    registry = load_registry(entry_points=False)
    # The same runs as the pool gets: the first config on as many seeds as there are configs.
    plan = plan_sweep(configs[0], registry, [], seeds=len(configs))
    t = time.perf_counter()
    report = Sweep(plan, registry, LocalExecutor(workers)).run()
    took = time.perf_counter() - t
    failed = getattr(report, "failed", 0)
    if failed:
        raise RuntimeError(f"{failed} sweep point(s) failed")
    return took


def _batch_runner() -> tuple[str, Any]:
    try:
        import explorer.sweep  # noqa: F401

        return "sweep (LocalExecutor)", _sweep
    except ImportError:
        return "ProcessPoolExecutor", _pool


def run(quick: bool = False) -> list[Figure]:
    ms = 300 if quick else 800
    n = 4 if quick else 8
    how, runner = _batch_runner()
    batch = [config(ms, seed) for seed in range(1, n + 1)]
    try:
        runner(batch[:2], 2)  # start-up of the worker machinery, not measured
        t1 = [runner(batch, 1)]
        t2 = [runner(batch, 2)]
    except Exception as exc:
        how, runner = f"ProcessPoolExecutor (the sweep failed: {type(exc).__name__}: {exc})", _pool
        t1, t2 = [runner(batch, 1)], [runner(batch, 2)]
    if not quick:
        t2.append(runner(batch, 2))
        t1.append(runner(batch, 1))
    b1, b2 = median(t1), median(t2)
    columns = [config(ms * 2, 1, strategy=s) for s in STRATEGIES]
    c1 = [_pool(columns, 1)]
    c2 = [_pool(columns, 2)]
    if not quick:
        c2.append(_pool(columns, 2))
        c1.append(_pool(columns, 1))
    k1, k2 = _control(1), _control(2)
    return [
        Figure("parallel_control_2", "control: pure CPU tasks, 1 worker / 2 workers", round(k1 / k2, 2), "x",
               note="what this machine gives two processes right now; below 1.8 the machine, not the "
               f"explorer, is the limit ({k1:.2f} s vs {k2:.2f} s)",
               extra={"control_1_worker_s": round(k1, 3), "control_2_workers_s": round(k2, 3)}),
        Figure("parallel_speedup_2", f"batch of {n} runs: 1 worker / 2 workers", round(b1 / b2, 2), "x", ">= 1.8",
               note=f"{how}; {ms} ms simulated each: {b1:.2f} s vs {b2:.2f} s",
               extra={"batch_1_worker_s": round(b1, 3), "batch_2_workers_s": round(b2, 3)}),
        Figure("compare_speedup_2", "compare of 4 strategies: 1 worker / 2 workers", round(median(c1) / median(c2), 2),
               "x", note=f"ProcessPoolExecutor, {2 * ms} ms simulated each: {median(c1):.2f} s vs {median(c2):.2f} s",
               extra={"compare_1_worker_s": round(median(c1), 3), "compare_2_workers_s": round(median(c2), 3)}),
    ]
