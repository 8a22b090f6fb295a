"""The shape of a config: its version, top-level tables, default plugins, and the number syntax
of values with units (shared by the TOML reader's hints and the JSON Schema)."""

from __future__ import annotations

from dataclasses import dataclass

from explorer.api import Param
from explorer.core_params import IOMMU_PARAMS

SCHEMA_VERSION = 1
TOP_KEYS: tuple[str, ...] = ("schema", "plugins", "run", "kernel", "strategy", "iommu", "workload")
DEFAULT_SCENARIO = "linux-6.19"
DEFAULT_STRATEGY = "deferred"
DEFAULT_IOMMU = "generic"
DEFAULT_WORKLOADS: tuple[str, ...] = ("vmalloc-huge", "cpa-collapse", "hot-remove", "user-teardown")

#: The ``[iommu]`` parameters of the shared IOMMU core (``model`` is handled as a plugin name).
IOMMU_CORE_PARAMS: tuple[Param, ...] = tuple(p for p in IOMMU_PARAMS if p.name != "model")

# The same number syntax as explorer.units, for the JSON Schema string patterns.
NUMBER_PATTERN = r"(?:[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?)"
DURATION_PATTERN = rf"^\s*{NUMBER_PATTERN}\s*(?:ns|us|µs|ms|s)\s*$"
RATE_PATTERN = rf"^\s*{NUMBER_PATTERN}\s*(?:/s|/ms|/us|hz|Hz|k/s|M/s)\s*$"

KIND_LABEL = {"strategy": "strategy", "iommu": "IOMMU model", "workload": "workload source"}


@dataclass(frozen=True)
class PluginSection:
    """A table that names a plugin and holds that plugin's parameters under ``params``: ``[strategy]``
    and ``[iommu]``, which validation, ``--set`` and the TOML writer each treat alike."""

    table: str  # the table, which is also the plugin kind in the registry
    key: str  # the key that names the plugin
    core: tuple[Param, ...] = ()  # the table's own parameters, beside the name and params


STRATEGY_SECTION = PluginSection("strategy", "name")
IOMMU_SECTION = PluginSection("iommu", "model", IOMMU_CORE_PARAMS)
