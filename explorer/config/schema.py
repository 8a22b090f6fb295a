"""The JSON Schema of a config's TOML form, built from the parameter declarations of everything
loaded (``pgtable-explorer config schema``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from explorer.api import Param
from explorer.config.model import DURATION_PATTERN, IOMMU_CORE_PARAMS, KIND_LABEL, RATE_PATTERN, SCHEMA_VERSION
from explorer.core_params import KERNEL_PARAMS, RUN_PARAMS

if TYPE_CHECKING:
    from explorer.plugins import Registry


def _param_schema(p: Param) -> dict[str, Any]:
    bounds: dict[str, Any] = {}
    if p.min is not None:
        bounds["minimum"] = int(p.min) if p.type in ("int", "duration") and float(p.min).is_integer() else p.min
    if p.max is not None:
        bounds["maximum"] = int(p.max) if p.type in ("int", "duration") and float(p.max).is_integer() else p.max
    s: dict[str, Any]
    own = getattr(p, "json_schema", None)  # a parameter with a form of its own (run.speed)
    if callable(own):
        s = own(bounds)
    elif p.type == "int":
        s = {"type": "integer", **bounds}
    elif p.type == "float":
        s = {"type": "number", **bounds}
    elif p.type == "bool":
        s = {"anyOf": [{"type": "boolean"}, {"enum": ["y", "yes", "true", "on", "1", "n", "no", "false", "off", "0"]}]}
    elif p.type == "str":
        s = {"type": "string"}
    elif p.type == "choice":
        s = {"enum": list(p.choices)}
    elif p.type == "duration":
        s = {"anyOf": [{"type": "string", "pattern": DURATION_PATTERN}, {"type": "integer", **bounds}]}
    elif p.type == "rate":
        s = {"anyOf": [{"type": "string", "pattern": RATE_PATTERN}, {"type": "number", **bounds}]}
    else:  # pragma: no cover - declaration bug
        s = {}
    desc = p.help
    extra = []
    if p.type == "duration":
        extra.append("a duration such as '20us' or '5ms' (a bare integer is nanoseconds)")
    elif p.type == "rate":
        extra.append("a rate such as '2000/s' (a bare number is per second)")
    elif p.unit:
        extra.append(f"unit: {p.unit}")
    if p.min is not None or p.max is not None:
        lo = p.show(p.min) if p.min is not None else ""
        hi = p.show(p.max) if p.max is not None else ""
        extra.append(f"range {lo}..{hi}")
    if extra:
        desc = f"{desc} ({'; '.join(extra)})" if desc else "; ".join(extra)
    s["description"] = desc
    s["default"] = p.to_toml(p.canonical_default())
    return s


def _params_object(params: Sequence[Param], extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    props = dict(extra or {})
    props.update({p.name: _param_schema(p) for p in params})
    return {"type": "object", "properties": props, "additionalProperties": False}


SCHEMA_DRAFTS = {
    "2020-12": "https://json-schema.org/draft/2020-12/schema",
    "7": "http://json-schema.org/draft-07/schema#",
}


def json_schema(registry: Registry, draft: str = "2020-12") -> dict[str, Any]:
    """A JSON Schema for the TOML form of a config, built from the parameter declarations of
    everything loaded. It uses only keywords that drafts 7 and 2020-12 read the same way, so
    ``draft="7"`` changes nothing but ``$schema`` (for validators that do not know 2020-12)."""
    if draft not in SCHEMA_DRAFTS:
        raise ValueError(f"unknown JSON Schema draft {draft!r}; choose one of {', '.join(SCHEMA_DRAFTS)}")
    def per_plugin(kind: str, key: str, then: Any) -> list[dict[str, Any]]:
        return [
            {"if": {"properties": {key: {"const": name}}, "required": [key]}, "then": then(cls)}
            for name, cls in sorted(registry.table(kind).items())
        ]

    def name_schema(kind: str) -> dict[str, Any]:
        table = registry.table(kind)
        return {
            "enum": sorted(table),
            "description": f"The {KIND_LABEL[kind]} plugin: "
            + "; ".join(f"{n}: {(cls.help or '').splitlines()[0] if cls.help else ''}".rstrip(": ")
                        for n, cls in sorted(table.items())),
        }

    strategy = {
        "type": "object",
        "description": "The free strategy (pagetable_free_kernel) and its parameters.",
        "properties": {"name": name_schema("strategy"), "params": {"type": "object"}},
        "additionalProperties": False,
        "allOf": per_plugin("strategy", "name", lambda cls: {"properties": {"params": _params_object(cls.params)}}),
    }
    iommu_props: dict[str, Any] = {"model": name_schema("iommu")}
    iommu_props.update({p.name: _param_schema(p) for p in IOMMU_CORE_PARAMS})
    iommu_props["params"] = {"type": "object"}
    iommu = {
        "type": "object",
        "description": "The IOMMUs: the shared core's parameters, the model and its parameters.",
        "properties": iommu_props,
        "additionalProperties": False,
        "allOf": per_plugin("iommu", "model", lambda cls: {"properties": {"params": _params_object(cls.params)}}),
    }
    workload_item = {
        "type": "object",
        "required": ["name"],
        "properties": {"name": name_schema("workload")},
        "allOf": per_plugin("workload", "name",
                            lambda cls: _params_object(cls.params, {"name": {"const": cls.name}})),
    }
    return {
        "$schema": SCHEMA_DRAFTS[draft],
        "title": "pgtable-explorer configuration",
        "description": "A pgtable-explorer run: plugins, kernel knobs, strategy, IOMMUs and workloads "
        "(see docs/config.md). Generated by `pgtable-explorer config schema` from the loaded plugins.",
        "type": "object",
        "properties": {
            "schema": {"const": SCHEMA_VERSION, "description": "Config file format version."},
            "plugins": {
                "type": "object",
                "description": "Plugins the config needs (name = version it was saved with); written on save.",
                "additionalProperties": {"type": "string"},
            },
            "run": {**_params_object(RUN_PARAMS), "description": "The run: simulated time, seed, drain."},
            "kernel": {**_params_object(KERNEL_PARAMS), "description": "The simulated kernel and machine."},
            "strategy": strategy,
            "iommu": iommu,
            "workload": {
                "type": "array",
                "description": "Workload sources ([[workload]] tables), each with its parameters inline.",
                "items": workload_item,
            },
        },
        "additionalProperties": False,
    }
