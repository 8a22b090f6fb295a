"""Validation of a config against the parameter declarations of the core and of the loaded
plugins, and the default config (built-in defaults, or a scenario laid over them)."""

from __future__ import annotations

import copy
import math
import re
import warnings as _warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from explorer.api import Param, ParamError
from explorer.config.model import (
    DEFAULT_IOMMU,
    DEFAULT_SCENARIO,
    DEFAULT_STRATEGY,
    DEFAULT_WORKLOADS,
    IOMMU_CORE_PARAMS,
    IOMMU_SECTION,
    KIND_LABEL,
    SCHEMA_VERSION,
    STRATEGY_SECTION,
    TOP_KEYS,
    PluginSection,
)
from explorer.config.problems import (
    Collector,
    ConfigError,
    ConfigWarning,
    Problem,
    did_you_mean,
    join_key,
    workload_key,
)
from explorer.core_params import KERNEL_PARAMS, RUN_PARAMS

if TYPE_CHECKING:
    from explorer.plugins import Registry


def _unknown_key(col: Collector, key: str, prefix: str, valid: Sequence[str], hint: str = "") -> None:
    table = f"[{prefix}]" if prefix else "the top level"
    msg = f"unknown key; {hint}" if hint else f"unknown key{did_you_mean(key, valid)}"
    msg += f"; valid keys in {table}: {', '.join(valid) if valid else '(none)'}"
    col.add(join_key(prefix, key), msg)


def _unknown_plugin(kind: str, name: object, available: Iterable[str]) -> str:
    avail = sorted(available)
    label = KIND_LABEL[kind]
    msg = f"unknown {label} {name!r}"
    if isinstance(name, str):
        msg += did_you_mean(name, avail)
    return msg + f"; available: {', '.join(avail) if avail else '(none loaded)'}"


def _type_name(value: object) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array"}.get(
        type(value), "a table" if isinstance(value, Mapping) else type(value).__name__
    )


def plain_data(obj: Any) -> Any:
    """Deep copy of mappings/sequences as plain dicts and lists (scenario configs may be mappings)."""
    kind = type(obj)
    if kind is str or kind is int or kind is float or kind is bool:  # most leaves: no ABC check
        return obj
    if kind is dict or isinstance(obj, Mapping):  # a dict first: the ABC check costs more
        return {str(k): plain_data(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain_data(v) for v in obj]
    return obj


def _check_params(
    table: Mapping[str, Any],
    params: Sequence[Param],
    base: Mapping[str, Any],
    prefix: str,
    col: Collector,
    reserved: Sequence[str] = (),
    hints: Mapping[str, str] | None = None,
    static: bool = False,
) -> dict[str, Any]:
    """Validate one table of parameters; missing ones come from ``base``, else the declared default.

    ``static``: the declarations are the machine's own (``[run]``, ``[kernel]``, the core of
    ``[iommu]``), which no plugin reload changes; then a value equal to the base's, type and all,
    is the base's canonical value and is not parsed again. Base values are canonical (they are
    taken as they are when a key is missing), and parsing a canonical value gives it back; a
    sweep's points and an edit re-validate a whole config to change one value.
    """
    known = {p.name: p for p in params}
    valid = [*reserved, *known]
    for key in table:
        if key not in known and key not in reserved:
            _unknown_key(col, key, prefix, valid, (hints or {}).get(key, ""))
    out: dict[str, Any] = {}
    for p in params:
        if p.name in table:
            given = table[p.name]
            if static and p.name in base:
                had = base[p.name]
                if type(given) is type(had) and given == had:
                    out[p.name] = had
                    continue
            try:
                value = p.parse(given)
            except ParamError as exc:
                col.add(join_key(prefix, p.name), str(exc))
                continue
            if isinstance(value, float) and not math.isfinite(value):
                col.add(join_key(prefix, p.name), f"expected a finite value, got {table[p.name]!r}")
                continue
            out[p.name] = value
        elif p.name in base:
            out[p.name] = base[p.name]
        else:
            out[p.name] = p.canonical_default()
    return out


def with_run_table(config: Mapping[str, Any], run: Mapping[str, Any], source: str = "<config>") -> dict[str, Any]:
    """A copy of ``config`` with its ``[run]`` table replaced by ``run`` (TOML form or canonical),
    checked; raise :class:`ConfigError` naming ``run.K`` for a bad value.

    ``config`` must be what :func:`validate` returned for the loaded plugins: no other table's check
    reads ``[run]`` (the machine, the plugins and the workloads are checked without it), so the rest
    stays valid as it is. A sweep's points over ``run.*`` keys take this path instead of a whole
    validation each.
    """
    col = Collector(source)
    checked = _check_params(run, RUN_PARAMS, config["run"], "run", col, static=True)
    if col.problems:
        raise ConfigError(col.problems)
    out = plain_data(config)
    out["run"] = checked
    return out


def _check_together(cls: Any, values: Mapping[str, Any], prefix: str, col: Collector) -> None:
    """The plugin's own check of its parameter values together (``check_values``), as problems."""
    check = getattr(cls, "check_values", None)
    if check is None:
        return
    try:
        why = check(dict(values))
    except Exception as exc:  # a plugin bug: said as a problem of the config it was asked about
        col.add(prefix, f"{cls.name}: check_values raised {type(exc).__name__}: {exc}")
        return
    if not why:
        return
    if isinstance(why, Mapping):
        for key, message in why.items():
            col.add(join_key(prefix, str(key)), str(message))
    else:
        col.add(prefix, str(why))


def _table(raw: Mapping[str, Any], key: str, prefix: str, col: Collector) -> Mapping[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, Mapping):
        col.add(join_key(prefix, key), f"expected a table, got {_type_name(value)} ({value!r})")
        return {}
    return value


# ASCII digits only ("٣" is not a CPU number), and few enough for int() (over 4300 digits it raises).
_CPUS_RE = re.compile(r"^\s*(?:all|([0-9]{1,9})|([0-9]{1,9})\s*-\s*([0-9]{1,9}))\s*$", re.ASCII)


def _check_cpus_spec(spec: str, cpus: int) -> str | None:
    m = _CPUS_RE.match(spec)
    if not m:
        return f"expected 'all', a CPU number 'N' or a range 'A-B', got {spec!r}"
    if m.group(1) is not None and int(m.group(1)) >= cpus:
        return f"CPU {m.group(1)} does not exist: kernel.cpus is {cpus} (CPUs 0-{cpus - 1})"
    if m.group(2) is not None:
        a, b = int(m.group(2)), int(m.group(3))
        if a > b:
            return f"empty CPU range {spec!r}"
        if b >= cpus:
            return f"CPU range {spec!r} goes past the last CPU: kernel.cpus is {cpus} (CPUs 0-{cpus - 1})"
    return None


def _plugin_name(
    section: Mapping[str, Any], key: str, base_name: str | None, kind: str, registry: Registry, prefix: str,
    col: Collector,
) -> str | None:
    """The plugin named by ``section[key]`` (or the base's), or None after reporting why not."""
    name = section.get(key, base_name)
    table = registry.table(kind)
    if name is None:
        col.add(join_key(prefix, key), _unknown_plugin(kind, None, table).replace("unknown", "no", 1))
        return None
    if not isinstance(name, str):
        label = KIND_LABEL[kind]
        col.add(join_key(prefix, key), f"expected the name of {'an' if label[0] in 'aeiouI' else 'a'} {label} "
                f"(a string), got {name!r}")
        return None
    if name not in table:
        where = ("; plugins come from --plugins-dir DIR (each .py file in it) and installed packages "
                 "(entry point group pgtable_explorer): `pgtable-explorer plugins` lists what is loaded")
        failed = len(getattr(registry, "failures", ()) or ())
        if failed:
            where += f" and the {failed} that failed to load"
        col.add(join_key(prefix, key), _unknown_plugin(kind, name, table) + where)
        return None
    return name


def _plugin_section(raw: Mapping[str, Any], sec: PluginSection, base: Mapping[str, Any], registry: Registry,
                    col: Collector) -> dict[str, Any]:
    """``[strategy]`` or ``[iommu]`` in canonical form: the plugin it names (else the base's), the
    table's own parameters, and the plugin's under ``params`` (then checked together by the plugin,
    when each one holds on its own). A plugin's parameter written beside the name gets a hint."""
    table = _table(raw, sec.table, "", col)
    name = _plugin_name(table, sec.key, base[sec.table][sec.key], sec.table, registry, sec.table, col)
    cls = registry.table(sec.table).get(name) if name else None
    hints = {}
    if cls is not None:
        label = KIND_LABEL[sec.table]
        hints = {p.name: f"'{p.name}' is a parameter of {label} {name!r}: write it under [{sec.table}.params]"
                 for p in cls.params}
    core = _check_params(
        {k: v for k, v in table.items() if k not in (sec.key, "params")},
        sec.core, base[sec.table], sec.table, col, reserved=(sec.key, "params"), hints=hints, static=True,
    )
    params_raw = _table(table, "params", sec.table, col)
    params: dict[str, Any] = {}
    if cls is not None:
        prefix = f"{sec.table}.params"
        pbase = base[sec.table]["params"] if name == base[sec.table][sec.key] else {}
        before = len(col.problems)
        params = _check_params(params_raw, cls.params, pbase, prefix, col)
        if len(col.problems) == before:
            _check_together(cls, params, prefix, col)
    return {sec.key: name, **core, "params": params}


def _validate(
    raw: Mapping[str, Any],
    registry: Registry,
    source: str,
    base: Mapping[str, Any],
    warnings: list[Problem] | None,
) -> dict[str, Any]:
    col = Collector(source)
    if not isinstance(raw, Mapping):
        raise ConfigError([Problem(source, "", f"expected a table of settings, got {_type_name(raw)}")])
    for key in raw:
        if key not in TOP_KEYS:
            _unknown_key(col, key, "", TOP_KEYS)

    # schema
    schema = raw.get("schema", SCHEMA_VERSION)
    if isinstance(schema, bool) or not isinstance(schema, int):
        col.add("schema", f"expected the integer {SCHEMA_VERSION}, got {schema!r}")
    elif schema != SCHEMA_VERSION:
        col.add(
            "schema",
            f"schema {schema} is not supported: this version of pgtable-explorer reads schema {SCHEMA_VERSION}"
            + ("; a newer pgtable-explorer wrote this file" if schema > SCHEMA_VERSION else ""),
        )

    out: dict[str, Any] = {"schema": SCHEMA_VERSION, "plugins": {}}
    out["run"] = _check_params(_table(raw, "run", "", col), RUN_PARAMS, base["run"], "run", col, static=True)
    out["kernel"] = _check_params(_table(raw, "kernel", "", col), KERNEL_PARAMS, base["kernel"], "kernel", col,
                                  static=True)

    # [strategy], [iommu]
    out["strategy"] = _plugin_section(raw, STRATEGY_SECTION, base, registry, col)
    out["iommu"] = _plugin_section(raw, IOMMU_SECTION, base, registry, col)
    sname, model = out["strategy"]["name"], out["iommu"]["model"]

    # [[workload]]
    workloads: list[dict[str, Any]] = []
    if "workload" in raw:
        wl = raw["workload"]
        if not isinstance(wl, list):
            col.add("workload", f"expected an array of [[workload]] tables, got {_type_name(wl)} ({wl!r})")
            wl = []
        for i, entry in enumerate(wl):
            prefix = workload_key(wl, i)
            if not isinstance(entry, Mapping):
                col.add(prefix, f"expected a [[workload]] table, got {_type_name(entry)} ({entry!r})")
                continue
            if "name" not in entry:
                col.add(join_key(prefix, "name"), "missing: every [[workload]] needs a name; available: "
                        + ", ".join(sorted(registry.workloads)))
                continue
            wname = _plugin_name(entry, "name", None, "workload", registry, prefix, col)
            if wname is None:
                continue
            wcls = registry.workloads[wname]
            hints = {"params": "the parameters of a workload are written inline in its [[workload]] table"}
            before = len(col.problems)
            params = _check_params(entry, wcls.params, {}, prefix, col, reserved=("name",), hints=hints)
            if len(col.problems) == before:
                _check_together(wcls, params, prefix, col)
            workloads.append({"name": wname, **params})
    else:
        workloads = copy.deepcopy([dict(w) for w in base["workload"]])
    cpus = out["kernel"].get("cpus")
    if isinstance(cpus, int):
        for i, w in enumerate(workloads):
            wdecl = registry.workloads.get(w["name"])
            decl = {p.name: p for p in wdecl.params} if wdecl is not None else {}
            if "cpus" in decl and decl["cpus"].type == "str" and isinstance(w.get("cpus"), str):
                why = _check_cpus_spec(w["cpus"], cpus)
                if why:
                    col.add(workload_key(workloads, i, "cpus"), why)
    _check_machine(workloads, out, registry, col)
    out["workload"] = workloads

    # [plugins]: what the config needs, checked against what is loaded
    used: dict[str, str] = {}
    if sname:
        used.setdefault(sname, "strategy")
    if model:
        used.setdefault(model, "iommu")
    for w in workloads:
        used.setdefault(w["name"], "workload")
    declared = _table(raw, "plugins", "", col)
    for pname, ver in declared.items():
        key = f"plugins.{pname}"
        if not isinstance(ver, str):
            col.add(key, f"expected the version the config was saved with (a string), got {ver!r}")
            continue
        kinds = [k for k in ("strategy", "iommu", "workload") if pname in registry.table(k)]
        if not kinds:
            avail = sorted({n for k in ("strategy", "iommu", "workload") for n in registry.table(k)})
            col.add(
                key,
                f"the config needs plugin {pname!r} (version {ver}), which is not loaded{did_you_mean(pname, avail)}; "
                "install it or pass --plugins-dir; available: " + (", ".join(avail) or "(none)"),
            )
            continue
        kind = used.get(pname, kinds[0])
        have = registry.version_of(kind, pname)
        if have != ver:
            col.warn(key, f"the config was saved with {pname} {ver}, the loaded version is {have}; "
                     "results may differ")
    out["plugins"] = {name: registry.version_of(kind, name) for name, kind in used.items()}

    if col.problems:
        raise ConfigError(col.problems)
    if col.warnings:
        if warnings is not None:
            warnings.extend(col.warnings)
        else:
            for problem in col.warnings:
                _warnings.warn(str(problem), ConfigWarning, stacklevel=3)
    return out


def _check_machine(workloads: Sequence[Mapping[str, Any]], out: Mapping[str, Any], registry: Registry,
                   col: Collector) -> None:
    """Each source's own check of its parameters against the machine (``WorkloadSource.check_machine``)."""
    kernel, iommu = out["kernel"], out["iommu"]
    if not all(isinstance(kernel.get(k), int) for k in ("cpus", "kernel_slots")):
        return  # already reported
    machine = {"cpus": kernel["cpus"], "kernel_slots": kernel["kernel_slots"], "iommus": iommu.get("count", 0),
               "probe_mms": iommu.get("probe_mms", 1), "sva_mms": iommu.get("sva_mms", 0)}
    for i, w in enumerate(workloads):
        cls = registry.workloads.get(w["name"])
        check = getattr(cls, "check_machine", None)
        if check is None:
            continue
        try:
            problems = check({k: v for k, v in w.items() if k != "name"}, machine)
        except Exception as exc:  # a plugin's bug: say so against its table rather than crash the loader
            col.add(workload_key(workloads, i), f"workload source {w['name']!r} failed to check its parameters: {exc}")
            continue
        for key, message in problems:
            col.add(workload_key(workloads, i, key), message)


def _pick(names: Iterable[str], preferred: Sequence[str]) -> str | None:
    names = sorted(names)
    for p in preferred:
        if p in names:
            return p
    return names[0] if names else None


def builtin_defaults(registry: Registry) -> dict[str, Any]:
    """Every declared default, with strategy ``deferred``, IOMMU ``generic`` and the four standard
    workload sources (or, when one is not loaded, the first of its kind), ignoring scenarios."""
    sname = _pick(registry.strategies, (DEFAULT_STRATEGY,))
    model = _pick(registry.iommu_models, (DEFAULT_IOMMU, "none"))
    problems = []
    if sname is None:
        problems.append(Problem("<defaults>", "strategy.name", "no free strategy is loaded"))
    if model is None:
        problems.append(Problem("<defaults>", "iommu.model", "no IOMMU model is loaded"))
    if problems:
        raise ConfigError(problems)
    assert sname is not None and model is not None
    scls = registry.strategies[sname]
    icls = registry.iommu_models[model]
    wnames = [w for w in DEFAULT_WORKLOADS if w in registry.workloads]
    workloads = [
        {"name": w, **{p.name: p.canonical_default() for p in registry.workloads[w].params}} for w in wnames
    ]
    plugins = {sname: registry.version_of("strategy", sname)}
    plugins.setdefault(model, registry.version_of("iommu", model))
    for w in wnames:
        plugins.setdefault(w, registry.version_of("workload", w))
    return {
        "schema": SCHEMA_VERSION,
        "plugins": plugins,
        "run": {p.name: p.canonical_default() for p in RUN_PARAMS},
        "kernel": {p.name: p.canonical_default() for p in KERNEL_PARAMS},
        "strategy": {"name": sname, "params": {p.name: p.canonical_default() for p in scls.params}},
        "iommu": {
            "model": model,
            **{p.name: p.canonical_default() for p in IOMMU_CORE_PARAMS},
            "params": {p.name: p.canonical_default() for p in icls.params},
        },
        "workload": workloads,
    }


def default_config(registry: Registry, scenario: str | None = None) -> dict[str, Any]:
    """The default config: the ``linux-6.19`` scenario if it is loaded, else :func:`builtin_defaults`.

    With ``scenario``, that scenario's partial config laid over :func:`builtin_defaults` (nested
    tables merge, a ``workload`` list replaces). An unknown scenario is a :class:`ConfigError`.
    """
    if scenario is None:
        scenario = DEFAULT_SCENARIO if DEFAULT_SCENARIO in registry.scenarios else None
    elif scenario not in registry.scenarios:
        raise ConfigError([Problem("--scenario", "", "unknown scenario " + repr(scenario)
                                   + did_you_mean(scenario, registry.scenarios) + "; available: "
                                   + (", ".join(sorted(registry.scenarios)) or "(none loaded)"))])
    base = builtin_defaults(registry)
    if scenario is None:
        return base
    sc = registry.scenarios[scenario]
    return _validate(plain_data(sc.config), registry, f"scenario {scenario}", base, warnings=[])


def validate(
    raw: Mapping[str, Any],
    registry: Registry,
    source: str = "<config>",
    *,
    base: Mapping[str, Any] | None = None,
    warnings: list[Problem] | None = None,
) -> dict[str, Any]:
    """Return the canonical config for ``raw`` (TOML form or canonical) or raise :class:`ConfigError`
    listing every problem. Missing values come from ``base`` (default: :func:`default_config`).

    Warnings (a plugin loaded in another version than the config was saved with) are appended to
    ``warnings`` when given, else emitted as :class:`ConfigWarning`.
    """
    if base is None:
        base = default_config(registry)
    return _validate(raw, registry, source, base, warnings)
