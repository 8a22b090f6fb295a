"""7. Hunt: time to the first counterexample of each known hole, and the size it shrinks to.

Each hole is hunted for a real ``use_after_free`` (a device walk into a reused page) with 2 worker
processes and a 60 s budget (10 s with ``--quick``), seed 0: the figure is the wall time until the
shrunk counterexample is ready, and its number of scripted events. The safe strategies of Linux
6.19 (deferred, batched, sync) are hunted for any memory-safety violation for the whole budget:
the figure is what was covered (nothing is expected). Targets: every hole found within 60 s,
shrunk to at most 10 events.

The free-before-flush strategy (the worker frees a batch before its flush) is the example of
docs/examples/unsafe when that folder exists, else the same code written to a temporary folder;
``join-running-flush`` is tests/plugins/runtime's ``test-buggy`` scenario (tables that join a
flush already running).
"""

from __future__ import annotations

import time
from typing import Any

from tests.benchmarks.common import ROOT, Figure, na

#: (case, scenario, strategy override or None, kind). Joining a running flush needs a device to
#: cache the pointer during the flush and the page to be reused after it: a longer story, hunted for
#: any memory-safety violation (a walk into the freed page) rather than for the reuse.
HOLES = (
    ("before-fix", "before-fix", None, "use_after_free"),
    ("v3-design", "v3-design", None, "use_after_free"),
    ("cpa-unmarked-2026", "cpa-unmarked-2026", None, "use_after_free"),
    ("hotremove-bootmem", "hotremove-bootmem", None, "use_after_free"),
    ("free-before-flush", "linux-6.19", "free-before-flush", "use_after_free"),
    ("join-running-flush", "test-buggy", None, "any"),
)
SAFE = ("deferred", "batched", "sync")


def _plugin_dirs() -> list[str]:
    """The tests' runtime plugins and the docs' unsafe examples (free-before-flush)."""
    return [str(ROOT / "tests" / "plugins" / "runtime"), str(ROOT / "docs" / "examples" / "unsafe")]


def run(quick: bool) -> list[Figure]:
    from explorer.config import apply_overrides, default_config
    from explorer.hunt import hunt
    from explorer.plugins import load_registry

    budget = 10.0 if quick else 60.0
    figures: list[Figure] = []
    hunt_s: dict[str, Any] = {}
    sizes: dict[str, Any] = {}
    registry = load_registry(_plugin_dirs(), entry_points=False)
    for case, scenario, strategy, kind in HOLES:
        if scenario not in registry.scenarios or (strategy and strategy not in registry.strategies):
            figures.append(Figure(f"hunt_s_{case}", f"hunt {case}: first counterexample", na("not loaded")))
            continue
        cfg = default_config(registry, scenario)
        if strategy:
            cfg = apply_overrides(cfg, [f"strategy.name={strategy}"], registry)
        t = time.perf_counter()
        res = hunt(cfg, registry, kind=kind, budget_s=budget, seed=0, workers=2)
        took = time.perf_counter() - t
        if res.found:
            hunt_s[case], sizes[case] = round(took, 2), res.events
            figures.append(Figure(f"hunt_s_{case}", f"hunt {case}: first {kind}", round(took, 2), "s",
                                  "<= 60", note=f"{res.runs} runs, {res.kind}, shrunk to {res.events} events"))
            figures.append(Figure(f"hunt_events_{case}", f"hunt {case}: shrunk size", res.events, "events",
                                  "<= 10"))
        else:
            hunt_s[case], sizes[case] = None, None
            figures.append(Figure(f"hunt_s_{case}", f"hunt {case}: first {kind}",
                                  na(f"not found in {budget:g} s ({res.runs} runs)")))
    safe: dict[str, Any] = {}
    for name in SAFE:
        cfg = apply_overrides(default_config(registry, "linux-6.19"), [f"strategy.name={name}"], registry)
        res = hunt(cfg, registry, kind="any", budget_s=budget, seed=0, workers=2)
        safe[name] = {"found": res.found, "kind": res.kind, "runs": res.runs,
                      "simulated_ns": res.simulated_ns}
        verdict = f"FOUND {res.kind}" if res.found else f"none in {res.runs} runs"
        figures.append(Figure(f"hunt_safe_{name}", f"hunt linux-6.19 {name}: any violation in {budget:g} s",
                              verdict, note=f"{res.simulated_ns / 1e9:.3f} s simulated"))
    figures[-1].extra.update({"hunt_s": hunt_s, "hunt_events": sizes, "hunt_safe": safe, "hunt_budget_s": budget})
    return figures
