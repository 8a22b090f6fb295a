"""The config explorer's model: every parameter as an :class:`Entry` (pure data, no Textual).

Entries come from the declarations (:class:`explorer.api.Param`) of the core (``[run]``,
``[kernel]``, ``[iommu]``) and of every loaded plugin. An entry knows its current value, its
default, whether it is active under the current choices (and why not), where its value came from
and which plugin (and version) declares it. Edits go through :func:`edit_value`, which parses
the text with the declaration and re-validates the whole config with ``explorer.config``.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from explorer import __version__
from explorer.api import Param
from explorer.config import (
    IOMMU_CORE_PARAMS,
    ConfigError,
    Problem,
    apply_overrides,
    validate,
    workload_labels,
)
from explorer.core_params import KERNEL_PARAMS, RUN_PARAMS, async_enabled

if TYPE_CHECKING:
    from explorer.plugins import Registry

#: Sections of the tree, in menu order.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("kernel", "Kernel"),
    ("strategy", "Strategy"),
    ("iommu", "IOMMU"),
    ("workload", "Workloads"),
    ("run", "Run"),
)

ORIGIN_TEXT = {
    "default": "default",
    "scenario": "scenario (the preset this config started from)",
    "file": "file",
    "override": "override (--set)",
    "edited": "override (edited here)",
}


@dataclass(frozen=True)
class Declarer:
    """Who declares a parameter: the core, or a plugin (module, origin, location, version)."""

    what: str  # "core" or the kind: "strategy", "iommu", "workload"
    name: str  # registered name ("deferred"), or "pgtable-explorer" for the core
    version: str
    module: str = ""  # the plugin module that registered it
    origin: str = ""  # built-in / installed package / directory
    location: str = ""

    def describe(self, long: bool = False) -> str:
        if self.what == "core":
            return f"pgtable-explorer {self.version} (core" + (", explorer/core_params.py)" if long else ")")
        label = {"strategy": "strategy", "iommu": "IOMMU model", "workload": "workload"}.get(self.what, self.what)
        out = f"{label} {self.name} {self.version}"
        if self.module:
            out += f" · plugin {self.module} ({self.origin}" + (f": {self.location})" if long else ")")
        return out


@dataclass(frozen=True)
class Entry:
    """One row of the config tree: a parameter (or a plugin choice) with everything ``?`` shows."""

    key: str  # the override key (``kernel.cpus``, ``strategy.params.batch``, ``workload.NAME.rate``)
    section: str
    group: str  # "" or a sub-menu: a workload source, or an inactive plugin's name
    param: Param
    value: Any  # canonical; None when not in the config
    default: Any  # canonical
    active: bool = True
    reason: str = ""  # why inactive
    declarer: Declarer | None = None
    origin: str = "default"
    depends: str = ""  # what it depends on, in words
    editable: bool = True
    is_choice_of: str = ""  # "strategy" / "iommu" for the plugin pickers

    @property
    def changed(self) -> bool:
        return self.value is not None and self.value != self.default

    @property
    def shown_value(self) -> str:
        if self.value is None:
            return "-"
        return self.param.show(self.value)

    @property
    def shown_default(self) -> str:
        return self.param.show(self.default)

    @property
    def search_text(self) -> str:
        return f"{self.key} {self.param.name} {self.group} {self.param.help}".lower()


@dataclass
class Tree:
    """Entries grouped by section, plus section-level notes (why a whole section is inactive)."""

    entries: list[Entry] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)

    def by_key(self) -> dict[str, Entry]:
        return {e.key: e for e in self.entries}

    def section(self, name: str) -> list[Entry]:
        return [e for e in self.entries if e.section == name]


def _declarer(registry: Registry, kind: str, name: str) -> Declarer:
    info = registry.provider.get((kind, name))
    version = registry.version_of(kind, name)
    if info is None:
        return Declarer(kind, name, version)
    return Declarer(kind, name, version, info.name, info.origin, info.location)


CORE = Declarer("core", "pgtable-explorer", __version__)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text and text.strip() else ""


def plugin_choice_param(registry: Registry, kind: str, default: str) -> Param:
    table = registry.table(kind)
    names = tuple(sorted(table))
    if kind == "strategy":
        help_ = ("The free strategy: the kernel's pagetable_free_kernel(). Every loaded strategy plugin "
                 "is offered, your own included: " + "; ".join(f"{n}: {_first_line(table[n].help)}" for n in names))
        return Param("name", "choice", default, help=help_, choices=names)
    help_ = ("The IOMMU model: cache geometry and the cost of invalidations. Every loaded model plugin is "
             "offered: " + "; ".join(f"{n}: {_first_line(table[n].help)}" for n in names))
    return Param("model", "choice", default, help=help_, choices=names)


def build_tree(
    config: Mapping[str, Any],
    registry: Registry,
    reference: Mapping[str, Any],
    origins: Mapping[str, str] | None = None,
) -> Tree:
    """Every entry of the explorer, active and inactive (the view decides what to show)."""
    origins = origins or {}
    tree = Tree()
    add = tree.entries.append

    def origin(okey: str) -> str:
        return origins.get(okey, "default")

    # Kernel
    for p in KERNEL_PARAMS:
        add(Entry(f"kernel.{p.name}", "kernel", "", p, config["kernel"].get(p.name), reference["kernel"][p.name],
                  declarer=CORE, origin=origin(f"kernel.{p.name}")))

    # Strategy
    kernel = config["kernel"]
    async_on = async_enabled(kernel)
    s_reason = ""
    if not async_on:
        why = ("kernel.async_kernel_pgtable_free = n" if kernel.get("async_kernel_pgtable_free") == "n"
               else f"Kconfig does not select it (arch = {kernel.get('arch')}, iommu_sva = "
               f"{'true' if kernel.get('iommu_sva') else 'false'})")
        s_reason = (f"CONFIG_ASYNC_KERNEL_PGTABLE_FREE is n ({why}): kernel tables go straight to "
                    "__pagetable_free() and no strategy is called")
        tree.notes["strategy"] = "inactive: ASYNC_KERNEL_PGTABLE_FREE=n"
    sname = config["strategy"]["name"]
    ref_s = reference["strategy"]
    add(Entry("strategy.name", "strategy", "", plugin_choice_param(registry, "strategy", ref_s["name"]), sname,
              ref_s["name"], active=async_on, reason=s_reason, declarer=CORE, origin=origin("strategy.name"),
              depends="CONFIG_ASYNC_KERNEL_PGTABLE_FREE=y", is_choice_of="strategy"))
    for name, cls in sorted(registry.strategies.items()):
        decl = _declarer(registry, "strategy", name)
        selected = name == sname
        for p in cls.params:
            if selected:
                default = ref_s["params"].get(p.name, p.canonical_default()) if name == ref_s["name"] else \
                    p.canonical_default()
                add(Entry(f"strategy.params.{p.name}", "strategy", "", p, config["strategy"]["params"].get(p.name),
                          default, active=async_on, reason=s_reason, declarer=decl,
                          origin=origin(f"strategy.params.{p.name}"),
                          depends=f"strategy.name = {name}, CONFIG_ASYNC_KERNEL_PGTABLE_FREE=y"))
            else:
                add(Entry(f"strategy.params.{p.name}@{name}", "strategy", name, p, None, p.canonical_default(),
                          active=False, reason=f"a parameter of strategy {name!r}; the config uses {sname!r}",
                          declarer=decl, depends=f"strategy.name = {name}", editable=False))

    # IOMMU
    io = config["iommu"]
    model = io["model"]
    ref_i = reference["iommu"]
    mcls = registry.iommu_models.get(model)
    present = bool(getattr(mcls, "present", True)) if mcls is not None else True
    i_reason = ""
    if not present:
        i_reason = f"IOMMU model {model!r} means no IOMMU is bound: nothing walks, nothing is flushed"
    elif not kernel.get("iommu_sva", True):
        i_reason = "kernel.iommu_sva = false: no mm is SVA-bound, so no device walks and flushes return at once"
    if i_reason:
        tree.notes["iommu"] = "inactive: " + ("no IOMMU bound" if not present else "IOMMU_SVA=n")
    add(Entry("iommu.model", "iommu", "", plugin_choice_param(registry, "iommu", ref_i["model"]), model,
              ref_i["model"], declarer=CORE, origin=origin("iommu.model"), is_choice_of="iommu"))
    count = int(io.get("count", 0) or 0)
    for p in IOMMU_CORE_PARAMS:
        reason = i_reason
        if not reason and count == 0 and p.name != "count":
            reason = "iommu.count = 0: there is no IOMMU"
        add(Entry(f"iommu.{p.name}", "iommu", "", p, io.get(p.name), ref_i[p.name], active=not reason,
                  reason=reason, declarer=CORE, origin=origin(f"iommu.{p.name}"),
                  depends="an IOMMU model that is present, kernel.iommu_sva = true"))
    for name, icls in sorted(registry.iommu_models.items()):
        decl = _declarer(registry, "iommu", name)
        for p in icls.params:
            if name == model:
                default = ref_i["params"].get(p.name, p.canonical_default()) if name == ref_i["model"] else \
                    p.canonical_default()
                add(Entry(f"iommu.params.{p.name}", "iommu", "", p, io["params"].get(p.name), default,
                          active=not i_reason, reason=i_reason, declarer=decl,
                          origin=origin(f"iommu.params.{p.name}"), depends=f"iommu.model = {name}"))
            else:
                add(Entry(f"iommu.params.{p.name}@{name}", "iommu", name, p, None, p.canonical_default(),
                          active=False, reason=f"a parameter of IOMMU model {name!r}; the config uses {model!r}",
                          declarer=decl, depends=f"iommu.model = {name}", editable=False))

    # Workloads: one sub-menu per instance, labelled as the CLI addresses it (``name``, then
    # ``name#1`` for a second source of the same name), so every instance has keys of its own.
    workloads = list(config.get("workload", []))
    ref_workloads = list(reference.get("workload", []))
    ref_w = dict(zip(workload_labels(ref_workloads), ref_workloads, strict=True))
    for i, (label, w) in enumerate(zip(workload_labels(workloads), workloads, strict=True)):
        name = w["name"]
        wcls = registry.workloads.get(name)
        if wcls is None:
            continue
        decl = _declarer(registry, "workload", name)
        ref = ref_w.get(label)
        for p in wcls.params:
            default = ref.get(p.name, p.canonical_default()) if ref is not None else p.canonical_default()
            add(Entry(f"workload.{label}.{p.name}", "workload", label, p, w.get(p.name), default, declarer=decl,
                      origin=origin(f"workload[{i}].{p.name}"), depends=f"workload {label!r} in the config"))
    for name in sorted(set(registry.workloads) - {w["name"] for w in workloads}):
        decl = _declarer(registry, "workload", name)
        for p in registry.workloads[name].params:
            add(Entry(f"workload.{name}.{p.name}@", "workload", name, p, None, p.canonical_default(),
                      active=False, reason=f"workload source {name!r} is not in the config (+ adds it)",
                      declarer=decl, depends=f"workload {name!r} in the config", editable=False))

    # Run
    for p in RUN_PARAMS:
        add(Entry(f"run.{p.name}", "run", "", p, config["run"].get(p.name), reference["run"][p.name], declarer=CORE,
                  origin=origin(f"run.{p.name}")))
    return tree


def toml_literal(param: Param, value: Any) -> str:
    """The canonical ``value`` as an override's right-hand side (parses back to the same value)."""
    v = param.to_toml(value)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(str(v), ensure_ascii=False)


def check_text(param: Param, text: str) -> str | None:
    """Why ``text`` is not a valid value of ``param`` (None when it is)."""
    try:
        param.parse(text.strip())
    except ValueError as exc:
        return str(exc)
    return None


def edit_value(config: Mapping[str, Any], registry: Registry, key: str, param: Param, value: Any) -> dict[str, Any]:
    """Set ``key`` to ``value`` (text or canonical) and re-validate the whole config.

    Raises :class:`ConfigError` (every problem, keyed by the override key) when it does not hold.
    """
    try:
        canonical = param.parse(value.strip() if isinstance(value, str) else value)
    except ValueError as exc:
        raise ConfigError([Problem("edit", key, str(exc))]) from None
    return apply_overrides(config, [f"{key}={toml_literal(param, canonical)}"], registry, source="edit")


def add_workload(config: Mapping[str, Any], registry: Registry, name: str) -> dict[str, Any]:
    """The config with workload source ``name`` added (with its declared defaults)."""
    cls = registry.workloads[name]
    new = copy.deepcopy(dict(config))
    new["workload"] = [*new.get("workload", []), {"name": name, **{p.name: p.canonical_default() for p in cls.params}}]
    return validate(new, registry, "edit", base=config, warnings=[])


def source_name(label: str) -> str:
    """The workload source a label names: ``vmalloc-huge`` for ``vmalloc-huge#1``."""
    return re.sub(r"#\d+$", "", label)


def workload_index(config: Mapping[str, Any], label: str) -> int | None:
    """The index in ``config["workload"]`` of the instance labelled ``label`` (``name`` or ``name#N``)."""
    labels = workload_labels(config.get("workload", []))
    return labels.index(label) if label in labels else None


def remove_workload(config: Mapping[str, Any], registry: Registry, label: str) -> dict[str, Any]:
    """The config without the workload instance ``label`` (only that one when a source appears twice)."""
    i = workload_index(config, label)
    new = copy.deepcopy(dict(config))
    if i is not None:
        del new["workload"][i]
    return validate(new, registry, "edit", base=config, warnings=[])


def search(entries: Sequence[Entry], query: str) -> list[Entry]:
    """Entries whose name, key or help contain every word of ``query`` (names first)."""
    words = query.lower().split()
    if not words:
        return []
    hits = [e for e in entries if all(w in e.search_text for w in words)]
    hits.sort(key=lambda e: (not all(w in e.key.lower() for w in words), not e.active))
    return hits


def scenario_origins(registry: Registry, scenario: str | None) -> dict[str, str]:
    """Keys a scenario sets (``value_origins`` style), marked ``scenario``."""
    if not scenario or scenario not in registry.scenarios:
        return {}
    from explorer.config import value_origins

    raw = json.loads(json.dumps(registry.scenarios[scenario].config, default=str))
    return {k: "scenario" for k in value_origins(raw)}
