"""One search: a bounded Hypothesis ``find`` over the candidates of a :class:`~explorer.hunt.space.Space`.

A hunt is a sequence of *rounds*; round ``r`` is one ``find`` with ``max_examples`` candidates and
its own seed derived from the hunt's ``--seed`` and ``r``. Rounds are independent, so they run on
as many processes as there are workers, and the hunt's answer is the lowest round that found
something: the same for a given seed however many workers ran it and however fast they were.
The Hypothesis database is off, so nothing from an earlier hunt changes this one.

This module is imported by every hunt worker process: keep its imports light.
"""

from __future__ import annotations

import contextlib
import io
import random
import threading
import time
import traceback
import warnings
import zlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from explorer.failures import classify_failure
from explorer.sim.build import build_simulation
from explorer.sim.engine import PluginError, SimulatorError

_STDOUT_SWAP = threading.Lock()


class BudgetSpent(Exception):
    """Raised out of a round when the wall-clock budget ran out before it found anything."""


def round_seed(seed: int, rnd: int) -> int:
    """The seed of round ``rnd`` of a hunt seeded ``seed`` (independent of the worker that runs it)."""
    return zlib.crc32(f"pgtable-explorer hunt {seed} {rnd}".encode())


def violated(metrics: Mapping[str, Any], kinds: Sequence[str]) -> str | None:
    """The first of ``kinds`` the run's metrics show, or None."""
    v = metrics.get("violations") or {}
    for k in kinds:
        x = v.get(k)
        total = x.get("total", 0) if isinstance(x, Mapping) else (x or 0)
        if total:
            return k
    return None


@contextlib.contextmanager
def hermetic_hypothesis() -> Iterator[None]:
    """Hypothesis without the constants it gathers from the modules this process happens to have
    imported (it mixes them into what it draws): without this, the same seed searched in a worker
    process, in the TUI or under pytest would try other candidates. Restored afterwards.

    Also quiet Hypothesis's "do not use the random module inside strategies" check: it compares the
    global ``random`` state before and after each draw, and in a Dask worker the worker's own
    threads move that state meanwhile (the candidates draw only from Hypothesis), so every user of
    ``--dask-local`` saw a deprecation warning about code that is not theirs."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Do not use the `random` module inside strategies")
        with _no_local_constants():
            yield


@contextlib.contextmanager
def _no_local_constants() -> Iterator[None]:
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:  # pragma: no cover - another Hypothesis layout: nothing to neutralise
        yield
        return
    patches: dict[str, Any] = {}
    if hasattr(providers, "_get_local_constants") and hasattr(providers, "Constants"):
        empty = providers.Constants()
        patches["_get_local_constants"] = lambda: empty
    if isinstance(getattr(providers, "CONSTANTS_CACHE", None), dict):
        patches["CONSTANTS_CACHE"] = {}
    saved = {name: getattr(providers, name) for name in patches}
    for name, value in patches.items():
        setattr(providers, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(providers, name, value)


def run_round(
    config: Mapping[str, Any], registry: Any, kinds: Sequence[str], seed: int, rnd: int, max_examples: int,
    deadline: float | None = None,
) -> dict[str, Any]:
    """Search round ``rnd``: return ``{"round", "found", "candidate", "runs", "simulated_ns", "error"}``.

    ``deadline`` (``time.monotonic()``) stops the search part of the round when it passes; a
    candidate already found is still shrunk to the end.
    """
    from hypothesis import HealthCheck, Phase, Verbosity, find, settings
    from hypothesis.errors import NoSuchExample

    from explorer.hunt.space import candidate_config, candidates, make_space

    space = make_space(config, registry)
    version = str(getattr(registry.workloads.get("script"), "version", "1.0"))
    stats = {"runs": 0, "simulated_ns": 0, "found": False}

    def condition(cand: Mapping[str, Any]) -> bool:
        if not stats["found"] and deadline is not None and time.monotonic() > deadline:
            raise BudgetSpent
        cfg = candidate_config(space, cand, version)
        # A plugin's print() is not the hunt's output. redirect_stdout swaps sys.stdout for the whole
        # process, so rounds in threads of one process (a Dask worker with several threads) take
        # turns: interleaved, one thread's restore could leave sys.stdout at another's buffer. The
        # GIL runs their candidates one at a time anyway, so the lock costs no parallelism.
        with _STDOUT_SWAP, contextlib.redirect_stdout(io.StringIO()), build_simulation(cfg, registry) as sim:
            metrics = sim.run()
        stats["runs"] += 1
        stats["simulated_ns"] += int(metrics.get("sim_time_ns", 0))
        if violated(metrics, kinds):
            stats["found"] = True
            return True
        return False

    out: dict[str, Any] = {"round": rnd, "found": False, "candidate": None, "error": None, "spent": False}
    try:
        with hermetic_hypothesis():
            cand = find(
                candidates(space),
                condition,
                settings=settings(
                    max_examples=max_examples, database=None, deadline=None, verbosity=Verbosity.quiet,
                    suppress_health_check=list(HealthCheck),
                    phases=(Phase.generate, Phase.shrink),
                ),
                random=random.Random(round_seed(seed, rnd)),
            )
        out.update(found=True, candidate=minimise(cand, condition))
    except NoSuchExample:
        pass
    except BudgetSpent:
        out["spent"] = True
    except PluginError as exc:
        out["error"] = {"kind": exc.kind, "name": exc.name, "message": str(getattr(exc, "error", exc)),
                        "traceback": getattr(exc, "traceback_text", ""), "failure": classify_failure(exc).name}
    except SimulatorError as exc:  # out of memory: the machine is too small for the candidate
        out["error"] = {"kind": "config", "name": "", "message": str(exc), "traceback": "",
                        "failure": classify_failure(exc).name}
    out["runs"] = stats["runs"]
    out["simulated_ns"] = stats["simulated_ns"]
    return out


def minimise(cand: Mapping[str, Any], still_fails: Any) -> dict[str, Any]:
    """Drop every event the violation does not need, one at a time, until none can go.

    Hypothesis's shrinker stops early on long candidates; this pass makes the answer 1-minimal (no
    single event can be removed). The other events keep their times: a removed event's gap moves
    to the next one.
    """
    best = dict(cand)
    i = 0
    while i < len(best["events"]) and len(best["events"]) > 1:
        events = list(best["events"])
        removed = events.pop(i)
        if i < len(events):
            nxt = events[i]
            events[i] = (nxt[0] + removed[0], *nxt[1:])
        trial = {**best, "events": events}
        if still_fails(trial):
            best = trial  # the same index now holds the next event
        else:
            i += 1
    return best


def run_round_task(task: Mapping[str, Any]) -> dict[str, Any]:
    """A round in a worker process: the registry from the task's plugin bundle (as a sweep's)."""
    from explorer.sweep.worker import registry_for

    try:
        registry = registry_for(task["bundle"])
        deadline = None
        if task.get("remaining_s") is not None:
            deadline = time.monotonic() + float(task["remaining_s"])
        return run_round(task["config"], registry, task["kinds"], task["seed"], task["round"],
                         task["max_examples"], deadline)
    except Exception as exc:  # never lose a worker to a surprise: report it as the round's error
        return {"round": task["round"], "found": False, "candidate": None, "runs": 0, "simulated_ns": 0,
                "spent": False, "error": {"kind": "hunt", "name": "", "message": f"{type(exc).__name__}: {exc}",
                                          "traceback": traceback.format_exc(), "failure": classify_failure(exc).name}}
