"""The hooks a pgtable-explorer plugin may implement (pluggy project ``pgtable_explorer``).

Each hook is called once per plugin at load time with a ``register`` callback; a plugin calls it
once for every object it offers, so one module can contribute many. Hooks are always called with
keyword arguments. Implement them with :data:`explorer.api.hookimpl`.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from explorer.api import PROJECT, FreeStrategy, IommuModel, Scenario, WorkloadSource

hookspec = pluggy.HookspecMarker(PROJECT)


@hookspec
def register_strategies(register: Callable[[type[FreeStrategy]], None]) -> None:
    """Register free strategies: ``register(MyStrategy)`` for each :class:`FreeStrategy` subclass.

    Since 1.0.
    """


@hookspec
def register_iommu_models(register: Callable[[type[IommuModel]], None]) -> None:
    """Register IOMMU models: ``register(MyModel)`` for each :class:`IommuModel` subclass.

    Since 1.0.
    """


@hookspec
def register_workloads(register: Callable[[type[WorkloadSource]], None]) -> None:
    """Register workload sources: ``register(MySource)`` for each :class:`WorkloadSource` subclass.

    Since 1.0.
    """


@hookspec
def register_scenarios(register: Callable[[Scenario], None]) -> None:
    """Register scenarios (named preset configs): ``register(Scenario(...))``.

    Since 1.0.
    """
