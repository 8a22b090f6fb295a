"""``hunt``: search for a memory-safety violation and shrink it to a replayable scripted workload.

::

    from explorer.hunt import hunt
    result = hunt(config, registry, kind="any", budget_s=60, max_runs=2000, seed=0, workers=2)
    if result.found:
        print(result.kind, result.events, "events")   # result.config: a normal config to run

The search (:mod:`explorer.hunt.space`) draws short scripted workloads from the config's own
workload sources, device probes aimed at the slots they unlink, page reuse, event times and a few
knobs (seed, workqueue delay, flush duration); Hypothesis shrinks the first one that shows the
violation to the fewest events. The result is deterministic for a given ``seed`` when the search
ends by ``max_runs`` (or finds something before the wall-clock budget ends it): see docs/hunt.md.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the process pool is imported when a hunt runs on several: the CLI starts light
    from concurrent.futures import Future

#: Candidates per round (one Hypothesis ``find``); rounds are what workers share.
ROUND_EXAMPLES = 100
#: Trace lines kept from the replay of a counterexample.
TRACE_LINES = 60


def memory_kinds() -> tuple[str, ...]:
    """The memory-safety violation kinds (:data:`explorer.violations.MEMORY_SAFETY`, from the one
    list of kinds the checker reports): what ``--kind any`` looks for."""
    from explorer.violations import MEMORY_SAFETY

    return MEMORY_SAFETY


def kind_choices() -> tuple[str, ...]:
    return (*memory_kinds(), "any")


class HuntError(Exception):
    """A hunt that cannot go on: a plugin raised during a candidate run (``plugin`` names it), or
    another failure of a candidate run (``failure``: its kind in :mod:`explorer.failures`)."""

    def __init__(self, message: str, traceback_text: str = "", plugin: str = "", failure: str = "plugin") -> None:
        super().__init__(message)
        self.traceback_text = traceback_text
        self.plugin = plugin
        self.failure = failure


@dataclass
class HuntResult:
    """What a hunt found (``found``) or covered.

    ``config`` is the counterexample as a canonical config (one ``script`` workload; ``run`` on it
    replays the violation), ``events`` its number of scripted events, ``trace`` the kernel trace of
    its replay. ``runs`` and ``simulated_ns`` count every candidate run (search and shrink);
    ``varied`` says what the search varied.
    """

    found: bool
    kind: str | None
    config: dict[str, Any] | None
    events: int
    runs: int
    simulated_ns: int
    varied: list[str]
    trace: list[str]
    seed: int = 0
    rounds: int = 0
    wall_s: float = 0.0
    stopped: str = ""  # "found", "max-runs" or "budget"
    violations: dict[str, int] = field(default_factory=dict)
    script: str = ""


def _kinds(kind: str) -> tuple[str, ...]:
    kinds = memory_kinds()
    if kind == "any":
        return kinds
    if kind not in kinds:
        raise ValueError(f"unknown violation kind {kind!r}; valid: {', '.join(kind_choices())}")
    return (kind,)


def _rounds_for(max_runs: int | None) -> list[int] | None:
    """The examples of each round when the search is bounded by runs (None: unbounded)."""
    if max_runs is None:
        return None
    n = max(1, math.ceil(max_runs / ROUND_EXAMPLES))
    return [min(ROUND_EXAMPLES, max_runs - i * ROUND_EXAMPLES) for i in range(n)]


def _replay(config: Mapping[str, Any], registry: Any, kinds: tuple[str, ...]) -> tuple[dict[str, Any], list[str]]:
    import io

    from explorer.sim.build import build_simulation

    with contextlib.redirect_stdout(io.StringIO()):
        sim = build_simulation(config, registry)
        sim.enable_trace(100_000)
        metrics = sim.run()
    return metrics, sim.trace_lines()


def hunt(
    config: dict[str, Any],
    registry: Any,
    *,
    kind: str = "any",
    budget_s: float = 60.0,
    max_runs: int | None = None,
    seed: int = 0,
    workers: int | None = 1,
    progress: Callable[[float, int], None] | None = None,
    scheduler: str | None = None,
    dask_local: int | None = None,
) -> HuntResult:
    """Search ``config`` (canonical, validated) for a violation of ``kind`` and shrink what is found.

    ``budget_s`` bounds the wall-clock time of the search and ``max_runs`` the candidate runs
    (shrinking a found candidate is not cut short by either). ``workers``: processes (1 = in this
    process; None = one per CPU). ``progress(fraction, runs)`` is called as rounds finish.
    ``scheduler="tcp://HOST:PORT"`` runs the rounds on that Dask cluster and ``dask_local=N`` on a
    local Dask cluster of N processes, as ``sweep`` does (either replaces ``workers``; the answer
    for a given ``seed`` and ``max_runs`` is the same wherever the rounds ran). A Dask cluster that
    cannot be used raises ``explorer.sweep.executors.SweepError``.
    Raises :class:`HuntError` when a plugin raises, ``ValueError`` for an unknown ``kind``.
    """
    from explorer.hunt.search import run_round
    from explorer.hunt.space import make_space, script_text

    kinds = _kinds(kind)
    if "script" not in registry.workloads:
        raise ValueError("the built-in workload source 'script' is not loaded: hunt writes its counterexamples "
                         "with it")
    started = time.monotonic()
    deadline = started + max(0.0, float(budget_s))
    plan = _rounds_for(max_runs)
    space = make_space(config, registry)
    if workers is None:
        from explorer.sweep.executors import default_workers

        workers = default_workers()
    workers = max(1, int(workers))
    if plan is not None:
        workers = min(workers, len(plan))

    results: dict[int, dict[str, Any]] = {}

    def report() -> None:
        if progress is None:
            return
        runs = sum(r["runs"] for r in results.values())
        frac = (time.monotonic() - started) / budget_s if budget_s > 0 else 1.0
        if plan is not None:
            frac = max(frac, len(results) / len(plan))
        progress(min(1.0, frac), runs)

    def examples(rnd: int) -> int | None:
        if plan is None:
            return ROUND_EXAMPLES
        return plan[rnd] if rnd < len(plan) else None

    if scheduler is not None or dask_local is not None:
        from explorer.sweep.executors import DaskExecutor

        dask = DaskExecutor(scheduler=scheduler, local_workers=dask_local)
        try:
            dask.start()
            threads = max(1, dask._capacity)
            _parallel(config, registry, kinds, seed, threads if plan is None else min(threads, len(plan)),
                      examples, deadline, results, report, pool=dask.client.get_executor(pure=False))
        finally:
            dask.close()
    elif workers == 1:
        rnd = 0
        while True:
            n = examples(rnd)
            if n is None or (time.monotonic() > deadline and rnd > 0):
                break
            res = run_round(config, registry, kinds, seed, rnd, n, deadline)
            results[rnd] = res
            report()
            if res["error"] or res["found"] or res["spent"]:
                break
            rnd += 1
    else:
        _parallel(config, registry, kinds, seed, workers, examples, deadline, results, report)

    errors = [results[r]["error"] for r in sorted(results) if results[r]["error"]]
    # The answer is the lowest round that found something, provided every round before it ran whole.
    winner = None
    for r in sorted(results):
        if results[r]["found"]:
            winner = r
            break
        if results[r]["error"] or results[r]["spent"]:
            break
    if winner is None and errors:
        e = errors[0]
        raise HuntError(f"{e['kind']} {e['name']!r} raised: {e['message']}" if e["name"] else e["message"],
                        e.get("traceback", ""), e["name"], e.get("failure", "plugin"))
    counted = [results[r] for r in sorted(results) if winner is None or r <= winner]
    runs = sum(r["runs"] for r in counted)
    simulated = sum(r["simulated_ns"] for r in counted)
    wall = time.monotonic() - started
    base = HuntResult(found=False, kind=None, config=None, events=0, runs=runs, simulated_ns=simulated,
                      varied=list(space.varied), trace=[], seed=seed, rounds=len(counted), wall_s=wall)
    if winner is None:
        spent = any(r["spent"] for r in results.values()) or (plan is None) or len(results) < len(plan)
        base.stopped = "budget" if spent else "max-runs"
        return base

    from explorer.hunt.space import candidate_config

    cand = results[winner]["candidate"]
    version = str(getattr(registry.workloads.get("script"), "version", "1.0"))
    cfg = candidate_config(space, cand, version)
    cfg = _normalised(cfg, registry)
    metrics, lines = _replay(cfg, registry, kinds)
    from explorer.hunt.search import violated

    base.found = True
    base.stopped = "found"
    base.kind = violated(metrics, kinds)
    base.config = cfg
    base.events = len(cand["events"])
    base.script, _ = script_text(space, cand["events"])
    base.trace = lines[:TRACE_LINES]
    base.violations = {k: int((metrics["violations"].get(k) or {}).get("total", 0)) for k in metrics["violations"]}
    return base


def _normalised(config: dict[str, Any], registry: Any) -> dict[str, Any]:
    """The config as ``run FILE.toml`` will read it back (TOML out and in again)."""
    from explorer.config import dumps_config, loads_config

    return loads_config(dumps_config(config, registry), registry, "<hunt>", warnings=[])


def _parallel(
    config: Mapping[str, Any], registry: Any, kinds: tuple[str, ...], seed: int, workers: int,
    examples: Callable[[int], int | None], deadline: float, results: dict[int, dict[str, Any]],
    report: Callable[[], None], pool: Any = None,
) -> None:
    """Rounds on ``workers`` local processes (the sweep's process machinery and plugin bundle), or
    on ``pool`` (a Dask client's ``concurrent.futures`` executor) when one is given.
    Stops submitting at the first find, error or spent budget; waits for the rounds before it."""
    from concurrent.futures import FIRST_COMPLETED
    from concurrent.futures import wait as futures_wait

    from explorer import procs
    from explorer.hunt.search import run_round_task
    from explorer.sweep.worker import init_local_worker, make_bundle

    bundle = make_bundle(getattr(registry, "plugins_dirs", ()))
    plain = copy.deepcopy(dict(config))
    own_pool = pool is None
    if own_pool:
        pool = procs.process_pool(workers, initializer=init_local_worker)
    running: dict[Future[dict[str, Any]], int] = {}
    nxt = 0
    stop_at: int | None = None  # the lowest round that found something (or failed, or ran out of time)
    try:
        while True:
            while len(running) < workers and stop_at is None:
                n = examples(nxt)
                remaining = deadline - time.monotonic()
                if n is None or (remaining <= 0 and nxt > 0):
                    break
                task = {"config": plain, "bundle": bundle, "kinds": list(kinds), "seed": seed, "round": nxt,
                        "max_examples": n, "remaining_s": max(0.0, remaining)}
                running[pool.submit(run_round_task, task)] = nxt
                nxt += 1
            if not running:
                break
            done, _ = futures_wait(list(running), return_when=FIRST_COMPLETED)
            for fut in done:
                rnd = running.pop(fut)
                try:
                    res = fut.result()
                except Exception as exc:  # the worker process died (killed, out of memory)
                    res = {"round": rnd, "found": False, "candidate": None, "runs": 0, "simulated_ns": 0,
                           "spent": False, "error": {"kind": "hunt", "name": "",
                                                     "message": f"a hunt worker process died: {exc}",
                                                     "traceback": "", "failure": "process"}}
                results[rnd] = res
                if res["found"] or res["error"] or res["spent"]:
                    stop_at = rnd if stop_at is None else min(stop_at, rnd)
                report()
            if stop_at is not None:
                # Rounds after the stop cannot change the answer: abandon them.
                for fut, rnd in list(running.items()):
                    if rnd > stop_at:
                        fut.cancel()
                        if fut.cancelled():
                            running.pop(fut)
                if all(rnd > stop_at for rnd in running.values()):
                    break
    finally:
        if own_pool:
            procs.kill_pool(pool)  # without waiting for abandoned rounds
        else:  # a cluster's rounds: cancel what is left (the cluster is closed by its owner)
            for fut in running:
                fut.cancel()


__all__ = ["HuntError", "HuntResult", "hunt", "kind_choices", "memory_kinds"]
