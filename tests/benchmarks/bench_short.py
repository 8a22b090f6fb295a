"""8. Short runs: runs per second of a 10 ms scenario through the path sweeps and hunts use, one
worker (this process), and where the time of a run goes.

``short_runs_per_s``: the default scenario (linux-6.19) with ``run.duration = 10ms``, run again and
again through :func:`explorer.sweep.worker.run_point` (what a sweep worker, and a hunt's worker
through the same registry cache, does for each point), median of 3 batches. The breakdown times
each part (CPU time, median of the batches); validation, build and run are timed one after
another for each point, as a worker meets them, the simulation dropped before the next is built:

- *task*: ``run_point``'s own work (the cached registry, the plugin check, the result record);
- *planning*: the point's config as ``sweep`` makes it, in the sweep's parent, once per point:
  :func:`explorer.sweep.plan_sweep` of a ``run.seed`` axis of as many values as points, divided
  by them (each point's overrides applied and checked, its config copied, its id hashed);
- *build*: :func:`explorer.sim.build.build_simulation` (the kernel, its page tables, half the
  memory handed out, the IOMMUs, the workload processes);
- *run*: ``Simulation.run()`` to the end, metrics included;
- *close*: ``Simulation.close()``, which a worker calls after each run, so that the run is freed at
  once rather than by the cyclic collector.

``short_setup_share`` = (task + planning + build + close) / run; target < 0.1. Loading the
registry is once per worker process (``short_registry_cold_s``, a fresh interpreter), so it is not
in the share.

The hunt's candidates are shorter still (a few scripted events, no background traffic): ``hunt_
candidate_ms`` splits one round of the before-fix hunt into Hypothesis's own work, making the
candidate's config, the build and the run.
"""

from __future__ import annotations

import gc
import json
import statistics
import time
from typing import Any

from tests.benchmarks.common import Figure, run_python

REGISTRY_COLD = """
import json, time
t = time.perf_counter()
from explorer.sweep.worker import registry_for
from explorer.sweep.runner import bundle_for
from explorer.plugins import load_registry
t1 = time.perf_counter()
reg = load_registry(entry_points=False)
print(json.dumps({"imports_s": t1 - t, "registry_s": time.perf_counter() - t1}))
"""


def _cpu(fn: Any, n: int) -> float:
    t = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - t) / n


def _hunt_candidates(registry: Any, quick: bool) -> dict[str, Any]:
    """One round of a before-fix hunt, its time split between Hypothesis, config, build and run."""
    import explorer.hunt.search as search
    import explorer.hunt.space as space
    from explorer.config import default_config

    cfg = default_config(registry, "before-fix")
    parts = {"config": 0.0, "build": 0.0, "run": 0.0}
    real_build, real_config = search.build_simulation, space.candidate_config

    class Timed:
        def __init__(self, sim: Any) -> None:
            self.sim = sim

        def run(self) -> dict[str, Any]:
            t = time.process_time()
            try:
                return self.sim.run()
            finally:
                parts["run"] += time.process_time() - t

        def __enter__(self) -> Any:
            return self

        def __exit__(self, *exc: object) -> None:
            t = time.process_time()
            self.sim.close()
            parts["build"] += time.process_time() - t  # the set-up's other end

    def build(c: Any, r: Any) -> Any:
        t = time.process_time()
        sim = real_build(c, r)
        parts["build"] += time.process_time() - t
        return Timed(sim)

    def config(*a: Any) -> Any:
        t = time.process_time()
        out = real_config(*a)
        parts["config"] += time.process_time() - t
        return out

    search.build_simulation, space.candidate_config = build, config  # type: ignore[assignment]
    try:
        t = time.process_time()
        res = search.run_round(cfg, registry, ["use_after_free"], seed=0, rnd=1, max_examples=40 if quick else 150)
        total = time.process_time() - t
    finally:
        search.build_simulation, space.candidate_config = real_build, real_config  # type: ignore[assignment]
    runs = max(1, res["runs"])
    ms = {k: round(v / runs * 1e3, 3) for k, v in parts.items()}
    ms["hypothesis"] = round((total - sum(parts.values())) / runs * 1e3, 3)
    return {"runs": res["runs"], "found": res["found"], "ms_per_candidate": ms,
            "candidates_per_s": round(runs / total, 1)}


def run(quick: bool = False) -> list[Figure]:
    from explorer import compiled
    from explorer.config import apply_overrides, default_config
    from explorer.plugins import load_registry
    from explorer.sim.build import build_simulation
    from explorer.sweep import plan_sweep, worker
    from explorer.sweep.runner import bundle_for

    registry = load_registry(entry_points=False)
    cfg = apply_overrides(default_config(registry, "linux-6.19"), ["run.duration=10ms"], registry)
    task = {"index": 0, "id": "short", "config": cfg, "bundle": bundle_for(registry), "explorer": worker.__version__}
    worker.run_point(task)  # the registry cache, first imports: not measured
    n = 10 if quick else 40
    per_run, task_ms, plan_ms, build_ms, run_ms, close_ms, gc_share = [], [], [], [], [], [], []
    gc_time = [0.0, 0.0]

    def on_gc(phase: str, _info: dict[str, Any]) -> None:  # time inside the cyclic garbage collector
        if phase == "start":
            gc_time[1] = time.perf_counter()
        else:
            gc_time[0] += time.perf_counter() - gc_time[1]

    for _ in range(3):
        gc_time[0] = 0.0
        gc.callbacks.append(on_gc)
        t = time.perf_counter()
        try:
            for _ in range(n):
                out = worker.run_point(task)
                if out["status"] != "ok":
                    raise RuntimeError(out["error"])
        finally:
            gc.callbacks.remove(on_gc)
        per_run.append((time.perf_counter() - t) / n)
        gc_share.append(gc_time[0] / (per_run[-1] * n))
        # The parts timed one after another as a worker meets them, each run's simulation dropped
        # before the next is built: the collector's work on a dropped run then falls where it
        # falls in a real sweep (building 40 and keeping them would charge it to the build).
        reg = worker.registry_for(task["bundle"])
        t0 = time.process_time()
        plan = plan_sweep(cfg, registry, [("range", f"run.seed=1:{n}:{n}")])
        plan_ms.append((time.process_time() - t0) / n)
        parts = {"build": 0.0, "run": 0.0, "close": 0.0}
        for point in plan.points:
            t1 = time.process_time()
            sim = build_simulation(point.config, reg)
            t2 = time.process_time()
            sim.run()
            t3 = time.process_time()
            sim.close()
            t4 = time.process_time()
            del sim
            parts["build"] += t2 - t1
            parts["run"] += t3 - t2
            parts["close"] += t4 - t3
        build_ms.append(parts["build"] / n)
        run_ms.append(parts["run"] / n)
        close_ms.append(parts["close"] / n)

        def task_only(reg: Any = reg) -> None:
            worker.registry_for(task["bundle"])
            worker._check_plugins(task["config"], reg)
            worker.worker_name()

        task_ms.append(_cpu(task_only, n))
    med = {k: statistics.median(v) * 1e3 for k, v in
           (("task", task_ms), ("planning", plan_ms), ("build", build_ms), ("run", run_ms), ("close", close_ms))}
    share = (med["task"] + med["planning"] + med["build"] + med["close"]) / med["run"]
    runs_per_s = 1 / statistics.median(per_run)
    cold = json.loads(run_python(REGISTRY_COLD))
    hunt = _hunt_candidates(registry, quick)
    core = compiled.summary()
    parts = ", ".join(f"{k} {v:.2f} ms" for k, v in med.items())
    hparts = ", ".join(f"{k} {v:.2f}" for k, v in hunt["ms_per_candidate"].items())
    return [
        Figure("short_runs_per_s", "10 ms scenario through a sweep worker, runs/s (1 worker)", round(runs_per_s, 1),
               "/s", note=f"{core}; per run: {parts}; cyclic GC {statistics.median(gc_share):.0%} of the wall time",
               extra={"short_gc_share": round(statistics.median(gc_share), 3)}),
        Figure("short_setup_share", "set-up (task + planning + build + close) / run, 10 ms scenario",
               round(share, 3), "", "< 0.1",
               note=f"registry loaded once per worker: {cold['registry_s']:.3f} s (imports {cold['imports_s']:.3f} s)",
               extra={"short_ms": {k: round(v, 3) for k, v in med.items()}, "short_registry_cold_s":
                      round(cold["registry_s"], 3), "short_imports_cold_s": round(cold["imports_s"], 3),
                      "short_core": core}),
        Figure("hunt_candidates_per_s", "hunt before-fix: candidates/s in one round (1 worker)",
               hunt["candidates_per_s"], "/s", note=f"ms per candidate: {hparts} ({hunt['runs']} runs)",
               extra={"hunt_candidate_ms": hunt["ms_per_candidate"]}),
    ]
