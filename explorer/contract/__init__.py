"""The contract between the simulator and its plugins, without pluggy.

Everything a plugin subclasses, calls, returns or is handed: :class:`Param`, the Protocols of the
kernel facade (:class:`KernelServices`, :class:`WorkloadServices`, ...), the plugin base classes,
the IOMMU value types and the command-queue helpers. The simulator (``explorer.sim``) imports only
this package; plugins import :mod:`explorer.api`, which re-exports all of it and adds the pluggy
``hookimpl`` marker. Import-linter keeps pluggy and the rest of the application out of here
(``pyproject.toml``, contract ``contract-pure``).

- :mod:`explorer.contract.params`: :class:`Param`, :class:`ParamError`
- :mod:`explorer.contract.services`: what a plugin is handed (Protocols) and :data:`Step`
- :mod:`explorer.contract.iommu`: :class:`CacheLevel`, :class:`SharedCache`, :class:`FlushBatch`,
  :class:`FlushCost`, :class:`SvaTopology`, :class:`CommandQueue`, :class:`FlushTally`
- :mod:`explorer.contract.bases`: :class:`FreeStrategy`, :class:`IommuModel`,
  :class:`WorkloadSource`, :class:`Scenario`, :func:`workload_params`, :func:`iter_params`
"""

from __future__ import annotations

from explorer.contract.bases import (
    FreeStrategy,
    IommuModel,
    Scenario,
    WorkloadSource,
    iter_params,
    workload_params,
)
from explorer.contract.iommu import (
    CacheLevel,
    CommandQueue,
    FlushBatch,
    FlushCost,
    FlushTally,
    SharedCache,
    SvaTopology,
)
from explorer.contract.params import Param, ParamError, ParamType
from explorer.contract.services import (
    KernelServices,
    SpinLock,
    Step,
    Table,
    Timer,
    Waitable,
    WorkItem,
    WorkloadServices,
)
from explorer.units import format_duration, parse_duration

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
    "ParamType",
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
    "iter_params",
    "parse_duration",
    "workload_params",
]
