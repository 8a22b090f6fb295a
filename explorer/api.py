"""The stable surface that plugins are written against.

A plugin module implements one or more of the hooks in :mod:`explorer.hookspecs` and calls the
``register`` callback it is given with the classes (or, for scenarios, the :class:`Scenario`
objects) it offers::

    from explorer.api import FreeStrategy, Param, hookimpl

    class MyStrategy(FreeStrategy):
        name = "mine"
        version = "0.1"
        help = "Free at once; a screenful of code."
        params = (Param("cost", "duration", "1us", help="CPU time per free (assumed)"),)

        def pagetable_free_kernel(self, k, pt):
            yield self.values["cost"]   # consume CPU time on the caller's CPU
            k.free_now(pt)

    @hookimpl
    def register_strategies(register):
        register(MyStrategy)

Everything a plugin needs is importable from here; first-party plugins use nothing else.
Times are integer nanoseconds, rates are events per second.

This module is the contract (:mod:`explorer.contract`, which has no pluggy and is all the simulator
imports) plus the pluggy marker :data:`hookimpl`: plugins keep importing ``explorer.api``.
"""

from __future__ import annotations

import pluggy

from explorer.contract import (
    CacheLevel,
    CommandQueue,
    FlushBatch,
    FlushCost,
    FlushTally,
    FreeStrategy,
    IommuModel,
    KernelServices,
    Param,
    ParamError,
    Scenario,
    SharedCache,
    SpinLock,
    Step,
    SvaTopology,
    Table,
    Timer,
    Waitable,
    WorkItem,
    WorkloadServices,
    WorkloadSource,
    format_duration,
    iter_params,
    parse_duration,
    workload_params,
)
from explorer.contract import (
    ParamType as ParamType,
)

__all__ = [
    "CacheLevel",
    "CommandQueue",
    "FlushBatch",
    "FlushCost",
    "FlushTally",
    "FreeStrategy",
    "IommuModel",
    "KernelServices",
    "Param",
    "ParamError",
    "Scenario",
    "SharedCache",
    "SpinLock",
    "Step",
    "SvaTopology",
    "Table",
    "Timer",
    "Waitable",
    "WorkItem",
    "WorkloadServices",
    "WorkloadSource",
    "format_duration",
    "hookimpl",
    "iter_params",
    "parse_duration",
    "workload_params",
]

#: pluggy's project name: the hook markers of explorer.hookspecs and of plugins carry it
PROJECT = "pgtable_explorer"
hookimpl = pluggy.HookimplMarker(PROJECT)
"""Decorator for plugin hook implementations."""
