"""The Config: load and validate TOML, save it with tomli-w, and a JSON Schema, all from the
parameter declarations (:class:`explorer.api.Param`).

The canonical in-memory config is plain data (it crosses process boundaries)::

    {"schema": 1,
     "plugins": {name: version},          # what the config needs, never a path to code
     "run": {...}, "kernel": {...},        # RUN_PARAMS / KERNEL_PARAMS, canonical units
     "strategy": {"name": str, "params": {...}},
     "iommu": {"model": str, <IOMMU_PARAMS but model>, "params": {...}},
     "workload": [{"name": str, <that source's params>}, ...]}

Canonical units: durations are integer nanoseconds, rates float events per second. The TOML form
is the same tables with every value written by :meth:`Param.to_toml` (``"20us"``, ``"2000/s"``).

Missing keys take their value from a *base* config: by default :func:`default_config` (the
``linux-6.19`` scenario when it is loaded). A ``[strategy]`` naming another strategy than the
base's starts from that strategy's own defaults; the same for ``iommu.model``. A ``[[workload]]``
list replaces the base's list, each entry starting from its source's defaults.

The package, one module a part (each imports only those listed after it):

- :mod:`~explorer.config.overrides`: ``--set KEY=VALUE`` (:func:`apply_overrides`) and provenance
  (:func:`value_origins`);
- :mod:`~explorer.config.schema`: the JSON Schema (:func:`json_schema`);
- :mod:`~explorer.config.tomlio`: TOML in and out (:func:`load_config`, :func:`save_config`, ...);
- :mod:`~explorer.config.validation`: :func:`validate`, :func:`default_config`;
- :mod:`~explorer.config.problems`: :class:`Problem`, :class:`ConfigError` and how they print;
- :mod:`~explorer.config.model`: the constants (schema version, top-level keys, default plugins).

Import from ``explorer.config``: the modules are how the code is arranged, not the API.
"""

from explorer.config.model import (
    DEFAULT_IOMMU,
    DEFAULT_SCENARIO,
    DEFAULT_STRATEGY,
    DEFAULT_WORKLOADS,
    DURATION_PATTERN,
    IOMMU_CORE_PARAMS,
    RATE_PATTERN,
    SCHEMA_VERSION,
    TOP_KEYS,
)
from explorer.config.overrides import apply_overrides, parse_override_value, value_origins, workload_labels
from explorer.config.problems import (
    MAX_PROBLEMS,
    MAX_SHOWN,
    ConfigError,
    ConfigWarning,
    Problem,
    capped,
    problem_lines,
    shown,
)
from explorer.config.schema import SCHEMA_DRAFTS, json_schema
from explorer.config.tomlio import (
    MAX_CONFIG_BYTES,
    MAX_DEPTH,
    STDIN_NAMES,
    backup_path,
    dumps_config,
    dumps_toml,
    load_config,
    load_raw,
    loads_config,
    loads_raw,
    save_config,
    to_toml_dict,
)
from explorer.config.validation import builtin_defaults, default_config, plain_data, validate

# The parameters of the core, as this module has always offered them (``from explorer.config import RUN_PARAMS``).
from explorer.core_params import IOMMU_PARAMS, KERNEL_PARAMS, RUN_PARAMS

__all__ = [
    "DEFAULT_IOMMU",
    "DEFAULT_SCENARIO",
    "DEFAULT_STRATEGY",
    "DEFAULT_WORKLOADS",
    "DURATION_PATTERN",
    "IOMMU_CORE_PARAMS",
    "IOMMU_PARAMS",
    "KERNEL_PARAMS",
    "MAX_CONFIG_BYTES",
    "MAX_DEPTH",
    "MAX_PROBLEMS",
    "MAX_SHOWN",
    "RATE_PATTERN",
    "RUN_PARAMS",
    "SCHEMA_DRAFTS",
    "SCHEMA_VERSION",
    "STDIN_NAMES",
    "TOP_KEYS",
    "ConfigError",
    "ConfigWarning",
    "Problem",
    "apply_overrides",
    "backup_path",
    "builtin_defaults",
    "capped",
    "default_config",
    "dumps_config",
    "dumps_toml",
    "json_schema",
    "load_config",
    "load_raw",
    "loads_config",
    "loads_raw",
    "parse_override_value",
    "plain_data",
    "problem_lines",
    "save_config",
    "shown",
    "to_toml_dict",
    "validate",
    "value_origins",
    "workload_labels",
]
