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
"""

from __future__ import annotations

import copy
import difflib
import math
import os
import re
import stat
import sys
import tomllib
import warnings as _warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tomli_w

from explorer import atomic
from explorer.api import Param, ParamError
from explorer.core_params import IOMMU_PARAMS, KERNEL_PARAMS, RUN_PARAMS

if TYPE_CHECKING:
    from explorer.plugins import Registry

SCHEMA_VERSION = 1
TOP_KEYS: tuple[str, ...] = ("schema", "plugins", "run", "kernel", "strategy", "iommu", "workload")
DEFAULT_SCENARIO = "linux-6.19"
DEFAULT_STRATEGY = "deferred"
DEFAULT_IOMMU = "generic"
DEFAULT_WORKLOADS: tuple[str, ...] = ("vmalloc-huge", "cpa-collapse", "hot-remove", "user-teardown")

#: The ``[iommu]`` parameters of the shared IOMMU core (``model`` is handled as a plugin name).
IOMMU_CORE_PARAMS: tuple[Param, ...] = tuple(p for p in IOMMU_PARAMS if p.name != "model")

# The same number syntax as explorer.units, for the JSON Schema string patterns.
_NUM = r"(?:[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?)"
DURATION_PATTERN = rf"^\s*{_NUM}\s*(?:ns|us|µs|ms|s)\s*$"
RATE_PATTERN = rf"^\s*{_NUM}\s*(?:/s|/ms|/us|hz|Hz|k/s|M/s)\s*$"

_KIND_LABEL = {"strategy": "strategy", "iommu": "IOMMU model", "workload": "workload source"}


# --------------------------------------------------------------------------- problems


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config (or, as a warning, worth knowing).

    ``key`` is dotted (``workload[1].rate``, ``strategy.params.batch``), empty for the file as a
    whole. ``line``/``col`` (1-based) are set only for TOML syntax errors, together with the text
    of the offending ``source_line``.
    """

    file: str
    key: str
    message: str
    line: int | None = None
    col: int | None = None
    source_line: str | None = None

    def __str__(self) -> str:
        file = shown(self.file)
        if self.line is not None:
            where = f"{file}:{self.line}" + (f":{self.col}" if self.col is not None else "")
            out = f"{where}: {capped(self.message)}"
            if self.source_line is not None:
                line, col = self.source_line, self.col
                if col is not None and col > MAX_SHOWN // 2:  # show the part of a long line around the column
                    line, col = line[col - MAX_SHOWN // 2:], MAX_SHOWN // 2 + 1
                out += f"\n    {_escaped(capped(line))}"
                if col is not None:
                    pad = "".join("\t" if ch == "\t" else " " for ch in _escaped(line[: col - 1]))
                    out += f"\n    {pad}^"
            return out
        if self.key:
            return f"{file}: {shown(capped(self.key))}: {capped(self.message)}"
        return f"{file}: {capped(self.message)}"


#: The longest key, value or message shown in a problem; the rest is cut ("... (N more characters)").
MAX_SHOWN = 300

#: The most problems listed; then "... and N more problems".
MAX_PROBLEMS = 20


def capped(text: str, limit: int = MAX_SHOWN) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out: a config with a
    megabyte value must not echo a megabyte back."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def shown(text: str) -> str:
    """``text`` safe to print on a terminal: as is when every character is printable, else
    quoted and escaped by ``repr`` (a key with an ANSI or OSC escape must not reach the terminal raw)."""
    return text if text.isprintable() else repr(text)


def _escaped(line: str) -> str:
    """A source line safe to print: control characters escaped, tabs kept (the caret lines up)."""
    return "".join(ch if ch.isprintable() or ch == "\t" else repr(ch)[1:-1] for ch in line)


def problem_lines(problems: Sequence[Problem], limit: int = MAX_PROBLEMS) -> list[str]:
    """The problems to print: the first ``limit``, then how many more there are."""
    lines = [str(p) for p in problems[:limit]]
    if len(problems) > limit:
        more = len(problems) - limit
        lines.append(f"... and {more} more problem{'s' if more != 1 else ''}")
    return lines


class ConfigError(Exception):
    """A config that cannot be used; :attr:`problems` holds every problem found, not just the first."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(problem_lines(self.problems))


class ConfigWarning(UserWarning):
    """Emitted (when the caller collects no warnings itself) for a plugin version mismatch."""


class _Collector:
    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []

    def add(self, key: str, message: str) -> None:
        self.problems.append(Problem(self.source, key, message))

    def warn(self, key: str, message: str) -> None:
        self.warnings.append(Problem(self.source, key, message))


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _unknown_key(col: _Collector, key: str, prefix: str, valid: Sequence[str], hint: str = "") -> None:
    table = f"[{prefix}]" if prefix else "the top level"
    msg = f"unknown key; {hint}" if hint else f"unknown key{_did_you_mean(key, valid)}"
    msg += f"; valid keys in {table}: {', '.join(valid) if valid else '(none)'}"
    col.add(_join(prefix, key), msg)


def _unknown_plugin(kind: str, name: object, available: Iterable[str]) -> str:
    avail = sorted(available)
    label = _KIND_LABEL[kind]
    msg = f"unknown {label} {name!r}"
    if isinstance(name, str):
        msg += _did_you_mean(name, avail)
    return msg + f"; available: {', '.join(avail) if avail else '(none loaded)'}"


def _type_name(value: object) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array"}.get(
        type(value), "a table" if isinstance(value, Mapping) else type(value).__name__
    )


# --------------------------------------------------------------------------- validation


def plain_data(obj: Any) -> Any:
    """Deep copy of mappings/sequences as plain dicts and lists (scenario configs may be mappings)."""
    if isinstance(obj, Mapping):
        return {str(k): plain_data(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain_data(v) for v in obj]
    return obj


def _check_params(
    table: Mapping[str, Any],
    params: Sequence[Param],
    base: Mapping[str, Any],
    prefix: str,
    col: _Collector,
    reserved: Sequence[str] = (),
    hints: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Validate one table of parameters; missing ones come from ``base``, else the declared default."""
    known = {p.name: p for p in params}
    valid = [*reserved, *known]
    for key in table:
        if key not in known and key not in reserved:
            _unknown_key(col, key, prefix, valid, (hints or {}).get(key, ""))
    out: dict[str, Any] = {}
    for p in params:
        if p.name in table:
            try:
                value = p.parse(table[p.name])
            except ParamError as exc:
                col.add(_join(prefix, p.name), str(exc))
                continue
            if isinstance(value, float) and not math.isfinite(value):
                col.add(_join(prefix, p.name), f"expected a finite value, got {table[p.name]!r}")
                continue
            out[p.name] = value
        elif p.name in base:
            out[p.name] = base[p.name]
        else:
            out[p.name] = p.canonical_default()
    return out


def _check_together(cls: Any, values: Mapping[str, Any], prefix: str, col: _Collector) -> None:
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
            col.add(_join(prefix, str(key)), str(message))
    else:
        col.add(prefix, str(why))


def _table(raw: Mapping[str, Any], key: str, prefix: str, col: _Collector) -> Mapping[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, Mapping):
        col.add(_join(prefix, key), f"expected a table, got {_type_name(value)} ({value!r})")
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
    col: _Collector,
) -> str | None:
    """The plugin named by ``section[key]`` (or the base's), or None after reporting why not."""
    name = section.get(key, base_name)
    table = registry.table(kind)
    if name is None:
        col.add(_join(prefix, key), _unknown_plugin(kind, None, table).replace("unknown", "no", 1))
        return None
    if not isinstance(name, str):
        label = _KIND_LABEL[kind]
        col.add(_join(prefix, key), f"expected the name of {'an' if label[0] in 'aeiouI' else 'a'} {label} "
                f"(a string), got {name!r}")
        return None
    if name not in table:
        where = ("; plugins come from --plugins-dir DIR (each .py file in it) and installed packages "
                 "(entry point group pgtable_explorer): `pgtable-explorer plugins` lists what is loaded")
        failed = len(getattr(registry, "failures", ()) or ())
        if failed:
            where += f" and the {failed} that failed to load"
        col.add(_join(prefix, key), _unknown_plugin(kind, name, table) + where)
        return None
    return name


def _validate(
    raw: Mapping[str, Any],
    registry: Registry,
    source: str,
    base: Mapping[str, Any],
    warnings: list[Problem] | None,
) -> dict[str, Any]:
    col = _Collector(source)
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
    out["run"] = _check_params(_table(raw, "run", "", col), RUN_PARAMS, base["run"], "run", col)
    out["kernel"] = _check_params(_table(raw, "kernel", "", col), KERNEL_PARAMS, base["kernel"], "kernel", col)

    # [strategy]
    st = _table(raw, "strategy", "", col)
    sname = _plugin_name(st, "name", base["strategy"]["name"], "strategy", registry, "strategy", col)
    scls = registry.strategies.get(sname) if sname else None
    hints = {}
    if scls is not None:
        hints = {p.name: f"'{p.name}' is a parameter of strategy {sname!r}: write it under [strategy.params]"
                 for p in scls.params}
    for key in st:
        if key not in ("name", "params"):
            _unknown_key(col, key, "strategy", ["name", "params"], hints.get(key, ""))
    sparams_raw = _table(st, "params", "strategy", col)
    if scls is not None:
        pbase = base["strategy"]["params"] if sname == base["strategy"]["name"] else {}
        before = len(col.problems)
        sparams = _check_params(sparams_raw, scls.params, pbase, "strategy.params", col)
        if len(col.problems) == before:
            _check_together(scls, sparams, "strategy.params", col)
    else:
        sparams = {}
    out["strategy"] = {"name": sname, "params": sparams}

    # [iommu]
    io = _table(raw, "iommu", "", col)
    model = _plugin_name(io, "model", base["iommu"]["model"], "iommu", registry, "iommu", col)
    icls = registry.iommu_models.get(model) if model else None
    hints = {}
    if icls is not None:
        hints = {p.name: f"'{p.name}' is a parameter of IOMMU model {model!r}: write it under [iommu.params]"
                 for p in icls.params}
    core = _check_params(
        {k: v for k, v in io.items() if k not in ("model", "params")},
        IOMMU_CORE_PARAMS, base["iommu"], "iommu", col, reserved=("model", "params"), hints=hints,
    )
    iparams_raw = _table(io, "params", "iommu", col)
    if icls is not None:
        pbase = base["iommu"]["params"] if model == base["iommu"]["model"] else {}
        before = len(col.problems)
        iparams = _check_params(iparams_raw, icls.params, pbase, "iommu.params", col)
        if len(col.problems) == before:
            _check_together(icls, iparams, "iommu.params", col)
    else:
        iparams = {}
    out["iommu"] = {"model": model, **core, "params": iparams}

    # [[workload]]
    workloads: list[dict[str, Any]] = []
    if "workload" in raw:
        wl = raw["workload"]
        if not isinstance(wl, list):
            col.add("workload", f"expected an array of [[workload]] tables, got {_type_name(wl)} ({wl!r})")
            wl = []
        for i, entry in enumerate(wl):
            prefix = f"workload[{i}]"
            if not isinstance(entry, Mapping):
                col.add(prefix, f"expected a [[workload]] table, got {_type_name(entry)} ({entry!r})")
                continue
            if "name" not in entry:
                col.add(_join(prefix, "name"), "missing: every [[workload]] needs a name; available: "
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
                    col.add(f"workload[{i}].cpus", why)
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
                f"the config needs plugin {pname!r} (version {ver}), which is not loaded{_did_you_mean(pname, avail)}; "
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
                   col: _Collector) -> None:
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
            col.add(f"workload[{i}]", f"workload source {w['name']!r} failed to check its parameters: {exc}")
            continue
        for key, message in problems:
            col.add(f"workload[{i}].{key}", message)


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
                                   + _did_you_mean(scenario, registry.scenarios) + "; available: "
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


# --------------------------------------------------------------------------- TOML in


_AT_RE = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_END_RE = re.compile(r"\s*\(at end of document\)\s*$")


def _syntax_problem(exc: tomllib.TOMLDecodeError, text: str, source: str) -> Problem:
    msg = str(exc)
    line: int | None = getattr(exc, "lineno", None)
    col: int | None = getattr(exc, "colno", None)
    base_msg = getattr(exc, "msg", None)
    m = _AT_RE.search(msg)
    if m:
        line, col = int(m.group(1)), int(m.group(2))
        msg = msg[: m.start()]
    elif _END_RE.search(msg):
        msg = _END_RE.sub("", msg)
        lines = text.split("\n")
        line, col = len(lines), len(lines[-1]) + 1
        if lines[-1] == "" and len(lines) > 1:
            line, col = len(lines) - 1, len(lines[-2]) + 1
    elif isinstance(base_msg, str) and line is not None:
        msg = base_msg
    lines = text.split("\n")
    src = lines[line - 1].rstrip("\r") if line is not None and 1 <= line <= len(lines) else None
    if src is not None:
        m = _BARE_UNIT_RE.match(src)
        if m:
            msg += f' (a value with a unit is a string: write {m.group(1)} = "{m.group(2)}")'
    return Problem(source, "", f"TOML syntax error: {msg}", line=line or 1, col=col, source_line=src)


_UNITS = r"(?:ns|us|µs|ms|s|/s|/ms|/us|hz|Hz|k/s|M/s)"
_BARE_UNIT_RE = re.compile(rf"^\s*([A-Za-z0-9_.\-]+)\s*=\s*({_NUM}\s*{_UNITS})\s*(?:#.*)?$")


def loads_raw(text: str, source: str = "<config>") -> dict[str, Any]:
    """Parse TOML text into the raw dict (no validation); a syntax error is a :class:`ConfigError`
    with line and column."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([_syntax_problem(exc, text, source)]) from None
    except RecursionError:  # tomllib recurses once per level of nesting
        raise ConfigError([Problem(source, "", f"nested too deeply: a config nests at most {MAX_DEPTH} levels "
                                   "of arrays and tables")]) from None
    except ValueError as exc:  # tomllib turns integers into ints: over 4300 digits that raises
        raise ConfigError([Problem(source, "", f"a number too long to read ({str(exc).split(':')[0]})")]) from None
    if _depth(raw) > MAX_DEPTH:
        raise ConfigError([Problem(source, "", f"nested too deeply: a config nests at most {MAX_DEPTH} levels "
                                   "of arrays and tables")])
    return raw


#: Config paths that mean standard input (the only non-regular file read as a config).
STDIN_NAMES = ("-", "/dev/stdin", "/dev/fd/0", "/proc/self/fd/0")

#: How deep arrays and tables may nest in a config (a real one nests 3 levels; deeper values only
#: make every later step, from validation to error messages, recurse that deep).
MAX_DEPTH = 32

#: The largest config file read; more is not a config (``/dev/zero``, a log given by mistake).
MAX_CONFIG_BYTES = 16 * 1024 * 1024


def _depth(value: Any) -> int:
    """How deep arrays and tables nest in ``value`` (a scalar is 0), without recursing."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, d = stack.pop()
        if isinstance(node, Mapping):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, d + 1)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((c, d + 1) for c in children)
    return deepest


def _read_config_bytes(path: str | os.PathLike[str]) -> bytes:
    """The bytes of a config file, refusing what is not one: a FIFO or device (it may never end,
    or block forever), or a file over :data:`MAX_CONFIG_BYTES`. ``-`` is standard input."""
    source = os.fspath(path)
    if source in STDIN_NAMES:
        data = sys.stdin.buffer.read(MAX_CONFIG_BYTES + 1) if sys.stdin is not None else b""
    else:
        st = os.stat(source)  # OSError (a missing file ...) propagates
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(21, "Is a directory", source)
        if not stat.S_ISREG(st.st_mode):
            kind = ("a FIFO" if stat.S_ISFIFO(st.st_mode) else "a character device" if stat.S_ISCHR(st.st_mode)
                    else "a block device" if stat.S_ISBLK(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode)
                    else "not a regular file")
            raise ConfigError([Problem(source, "", f"is {kind}, not a config file (give a TOML file, or - to "
                                       "read standard input)")])
        with open(source, "rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError([Problem(source, "", f"over {MAX_CONFIG_BYTES // (1024 * 1024)} MiB: not a config file")])
    return data


def load_raw(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a TOML file into the raw dict (for :func:`value_origins`). ``OSError`` propagates."""
    data = _read_config_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        why = f"not a UTF-8 text file ({exc.reason} at byte {exc.start})"
        raise ConfigError([Problem(str(path), "", why)]) from None
    return loads_raw(text, str(path))


def loads_config(
    text: str,
    registry: Registry,
    source: str = "<config>",
    *,
    base: Mapping[str, Any] | None = None,
    warnings: list[Problem] | None = None,
) -> dict[str, Any]:
    """Parse and validate TOML text."""
    return validate(loads_raw(text, source), registry, source, base=base, warnings=warnings)


def load_config(
    path: str | os.PathLike[str],
    registry: Registry,
    *,
    base: Mapping[str, Any] | None = None,
    warnings: list[Problem] | None = None,
) -> dict[str, Any]:
    """Read and validate a TOML config file. ``OSError`` (a missing file ...) propagates."""
    return validate(load_raw(path), registry, str(path), base=base, warnings=warnings)


# --------------------------------------------------------------------------- TOML out


def _write_params(
    values: Mapping[str, Any], params: Sequence[Param], ref: Mapping[str, Any] | None
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in params:
        if p.name not in values:
            continue
        if ref is not None and p.name in ref and values[p.name] == ref[p.name]:
            continue
        out[p.name] = p.to_toml(values[p.name])
    return out


def _plugin_params(registry: Registry, kind: str, name: str, values: Mapping[str, Any]) -> tuple[Param, ...]:
    cls = registry.table(kind).get(name)
    if cls is not None:
        return tuple(cls.params)
    # Not loaded (should not happen for a validated config): write the values untouched.
    return tuple(Param(k, "str", "") for k in values)


def to_toml_dict(config: Mapping[str, Any], registry: Registry, minimal: bool = False) -> dict[str, Any]:
    """The TOML form of a canonical config (units written as ``"20us"``, ``"2000/s"``).

    ``minimal`` keeps only values that differ from :func:`default_config` (plus schema, plugins,
    ``strategy.name``, ``iommu.model`` and the workload names); loading it gives the same config.
    """
    d = default_config(registry) if minimal else None
    out: dict[str, Any] = {"schema": SCHEMA_VERSION, "plugins": dict(config.get("plugins", {}))}
    for section, params in (("run", RUN_PARAMS), ("kernel", KERNEL_PARAMS)):
        table = _write_params(config[section], params, d[section] if d else None)
        if table or not minimal:
            out[section] = table

    st = config["strategy"]
    sp = _plugin_params(registry, "strategy", st["name"], st["params"])
    ref: Mapping[str, Any] | None = None
    if d is not None:
        ref = d["strategy"]["params"] if st["name"] == d["strategy"]["name"] else _declared_defaults(sp)
    strategy: dict[str, Any] = {"name": st["name"]}
    sparams = _write_params(st["params"], sp, ref)
    if sparams or not minimal:
        strategy["params"] = sparams
    out["strategy"] = strategy

    io = config["iommu"]
    ip = _plugin_params(registry, "iommu", io["model"], io["params"])
    iommu: dict[str, Any] = {"model": io["model"]}
    iommu.update(_write_params(io, IOMMU_CORE_PARAMS, d["iommu"] if d else None))
    ref = None
    if d is not None:
        ref = d["iommu"]["params"] if io["model"] == d["iommu"]["model"] else _declared_defaults(ip)
    iparams = _write_params(io["params"], ip, ref)
    if iparams or not minimal:
        iommu["params"] = iparams
    out["iommu"] = iommu

    workloads = []
    for w in config["workload"]:
        values = {k: v for k, v in w.items() if k != "name"}
        wp = _plugin_params(registry, "workload", w["name"], values)
        workloads.append({"name": w["name"], **_write_params(values, wp, _declared_defaults(wp) if minimal else None)})
    out["workload"] = workloads
    return out


def _declared_defaults(params: Sequence[Param]) -> dict[str, Any]:
    return {p.name: p.canonical_default() for p in params}


def dumps_toml(toml_dict: Mapping[str, Any]) -> str:
    """Write a TOML-form dict with tomli-w, always as ``[[workload]]`` tables."""
    body = dict(toml_dict)
    workloads = body.pop("workload", None)
    if workloads is not None and not workloads:
        body = {"schema": body.pop("schema", SCHEMA_VERSION), "workload": [], **body}
    text = tomli_w.dumps(body)
    for w in workloads or ():
        text += "\n[[workload]]\n" + tomli_w.dumps(w, multiline_strings=True)  # a script's events, one a line
    return text


def dumps_config(config: Mapping[str, Any], registry: Registry, minimal: bool = False) -> str:
    """The config as TOML text."""
    return dumps_toml(to_toml_dict(config, registry, minimal=minimal))


def _leading_comments(text: str) -> str:
    """The comment block at the very top of a file (a ``#:schema`` line, a description), kept on save."""
    kept: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or not stripped:
            kept.append(line.rstrip())
        else:
            break
    while kept and not kept[-1]:
        kept.pop()
    return "\n".join(kept) + "\n\n" if kept else ""


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - not every platform can open a directory
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def backup_path(path: str | os.PathLike[str]) -> Path:
    """Where :func:`save_config` keeps the previous version of ``path`` (``path~``)."""
    p = Path(path)
    return p.with_name(p.name + "~")


def save_config(
    config: Mapping[str, Any], path: str | os.PathLike[str], registry: Registry, minimal: bool = False
) -> bool:
    """Write ``config`` to ``path`` atomically; return False (and write nothing) when the file
    already holds exactly this text.

    A temporary file in the same directory is written, fsynced and renamed over ``path``; the old
    file is kept as ``path~``. The comment block at the top of the old file is kept. Symlinks are
    followed (the link stays a link).
    """
    target = Path(os.path.realpath(path))
    body = dumps_config(config, registry, minimal=minimal)
    try:
        old: bytes | None = target.read_bytes()
    except FileNotFoundError:
        old = None
    text = body
    if old is not None:
        text = _leading_comments(old.decode("utf-8", errors="replace")) + body
    data = text.encode("utf-8")
    if old == data:
        return False
    if old is not None:
        mode = stat.S_IMODE(target.stat().st_mode)
        atomic.write_bytes(backup_path(target), old, mode)
    else:
        mode = atomic.default_mode()
    atomic.write_bytes(target, data, mode)
    _fsync_dir(target.parent)
    return True


# --------------------------------------------------------------------------- overrides


_WL_INDEX_RE = re.compile(r"^workload\[([0-9]{1,9})\]\.(.+)$", re.ASCII)
_WL_NAME_RE = re.compile(r"^workload\.([^.\[\]]+)\.([^.]+)$")


def parse_override_value(text: str) -> Any:
    """A ``--set`` value: read as a TOML value where it is one (``4``, ``true``, ``"x"``), else the
    text itself (``1000/s``, ``20us``, ``arm64``)."""
    if "\n" in text or "\r" in text:
        return text
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except (tomllib.TOMLDecodeError, ValueError, RecursionError):  # ValueError: an int over 4300 digits
        return text
    return text if _depth(value) > MAX_DEPTH else value


def _split_override(item: str) -> tuple[str, str] | None:
    if "=" not in item:
        return None
    key, value = item.split("=", 1)
    key = key.strip()
    if not key:
        return None
    return key, value.strip()


def _resolve_key(
    key: str, workloads: Sequence[Mapping[str, Any]]
) -> tuple[list[str | int], str | None]:
    """Turn a user's dotted key into a path into the TOML-form dict, or an error message."""
    m = _WL_INDEX_RE.match(key)
    if m:
        i = int(m.group(1))
        if i >= len(workloads):
            return [], f"there is no workload[{i}]: the config has {len(workloads)} workload(s)" + (
                " (" + ", ".join(f"workload[{j}] = {w['name']}" for j, w in enumerate(workloads)) + ")"
                if workloads else ""
            )
        return ["workload", i, m.group(2)], None
    m = _WL_NAME_RE.match(key)
    if m:
        names = workload_labels(workloads)
        if m.group(1) not in names:
            return [], (f"the config has no workload {m.group(1)!r}{_did_you_mean(m.group(1), names)}; it has: "
                        + (", ".join(names) or "(none)") + " (add a source with a [[workload]] table in the file)")
        return ["workload", names.index(m.group(1)), m.group(2)], None
    parts: list[str | int] = list(key.split("."))
    return parts, None


def workload_labels(workloads: Sequence[Mapping[str, Any]]) -> list[str]:
    """The label of each workload, as metrics report sources: its name, ``name#1`` for a second
    source of the same name, and so on. ``workload.LABEL.K`` overrides address them."""
    seen: dict[str, int] = {}
    out = []
    for w in workloads:
        name = str(w["name"])
        n = seen.get(name, 0)
        seen[name] = n + 1
        out.append(name if n == 0 else f"{name}#{n}")
    return out


def _path_key(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out = _join(out, part)
    return out


def apply_overrides(
    config: Mapping[str, Any],
    overrides: Sequence[str],
    registry: Registry,
    source: str = "--set",
    *,
    warnings: list[Problem] | None = None,
) -> dict[str, Any]:
    """Apply ``KEY=VALUE`` overrides and re-validate; raise :class:`ConfigError` with every problem.

    Keys: ``run.K``, ``kernel.K``, ``strategy.name``, ``strategy.params.K``, ``iommu.model``,
    ``iommu.K``, ``iommu.params.K``, ``workload[I].K``, ``workload.NAME.K`` (``K`` may be ``name``
    to swap a source). Changing ``strategy.name``/``iommu.model``/a workload's name starts that
    plugin from its own defaults, then applies the other overrides.
    """
    raw = to_toml_dict(config, registry)
    col = _Collector(source)
    parsed: list[tuple[str, list[str | int], Any]] = []
    for item in overrides:
        kv = _split_override(item)
        if kv is None:
            col.add(item, "expected KEY=VALUE, such as kernel.cpus=4 or strategy.params.batch=64")
            continue
        key, text = kv
        path, err = _resolve_key(key, raw["workload"])
        if err:
            col.add(key, err)
            continue
        parsed.append((key, path, parse_override_value(text)))

    # Plugin names first: a new plugin starts from its own defaults.
    for _key, path, value in parsed:
        if path == ["strategy", "name"] and value != raw["strategy"]["name"]:
            raw["strategy"] = {"name": value, "params": _toml_defaults(registry, "strategy", value)}
        elif path == ["iommu", "model"] and value != raw["iommu"]["model"]:
            raw["iommu"]["model"] = value
            raw["iommu"]["params"] = _toml_defaults(registry, "iommu", value)
        elif len(path) == 3 and path[0] == "workload" and path[2] == "name":
            i = path[1]
            assert isinstance(i, int)
            if value != raw["workload"][i]["name"]:
                raw["workload"][i] = {"name": value, **_toml_defaults(registry, "workload", value)}

    user_key: dict[str, str] = {}
    for key, path, value in parsed:
        if path in (["strategy", "name"], ["iommu", "model"]) or (len(path) == 3 and path[2] == "name"):
            user_key[_path_key(path)] = key
            continue
        err = _settable(path, raw, registry)
        if err:
            col.add(key, err)
            continue
        node: Any = raw
        for part in path[:-1]:
            node = node.setdefault(part, {}) if isinstance(part, str) else node[part]
        node[path[-1]] = value
        user_key[_path_key(path)] = key
    try:
        result = validate(raw, registry, source, base=config, warnings=warnings)
    except ConfigError as exc:
        col.problems.extend(
            Problem(p.file, user_key.get(p.key, p.key), p.message, p.line, p.col, p.source_line) for p in exc.problems
        )
    if col.problems:
        raise ConfigError(col.problems)
    return result


def _toml_defaults(registry: Registry, kind: str, name: Any) -> dict[str, Any]:
    cls = registry.table(kind).get(name) if isinstance(name, str) else None
    if cls is None:
        return {}
    return {p.name: p.to_toml(p.canonical_default()) for p in cls.params}


def _named(table: Mapping[str, Any], name: object) -> Any:
    """The plugin ``name`` names, or None: a name that is not a string (``--set strategy.name=[1]``)
    names nothing, and validation reports it."""
    return table.get(name) if isinstance(name, str) else None


def _settable(path: Sequence[str | int], raw: Mapping[str, Any], registry: Registry) -> str | None:
    """Why ``path`` is not a settable key (with did-you-mean), or None."""
    def unknown(word: str, valid: Sequence[str], where: str, hint: str = "") -> str:
        msg = f"unknown key; {hint}" if hint else f"unknown key{_did_you_mean(word, valid)}"
        return msg + f"; valid keys in {where}: {', '.join(valid) if valid else '(none)'}"

    top = path[0]
    sections = ["run", "kernel", "strategy", "iommu", "workload"]
    named = {"strategy": lambda: raw["strategy"]["name"], "iommu": lambda: raw["iommu"]["model"]}
    if top in named and len(path) == 3 and path[1] == "params" and not isinstance(named[str(top)](), str):
        return None  # the name itself is the mistake: validation reports it, once
    if not isinstance(top, str) or top not in sections:
        word = str(top)
        if word in ("schema", "plugins"):
            return f"{word} cannot be set: it is written by pgtable-explorer"
        return unknown(word, sections, "a --set key (run.K, kernel.K, strategy.params.K, iommu.K, "
                       "iommu.params.K, workload[I].K or workload.NAME.K)")
    if top in ("run", "kernel"):
        params = RUN_PARAMS if top == "run" else KERNEL_PARAMS
        names = [p.name for p in params]
        if len(path) != 2 or path[1] not in names:
            return unknown(_path_key(path[1:]), names, f"[{top}]")
        return None
    if top == "strategy":
        scls = _named(registry.strategies, raw["strategy"]["name"])
        pnames = [p.name for p in scls.params] if scls is not None else []
        if len(path) == 3 and path[1] == "params":
            if path[2] not in pnames:
                return unknown(str(path[2]), pnames, f"[strategy.params] of {raw['strategy']['name']!r}")
            return None
        hint = ""
        if len(path) == 2 and path[1] in pnames:
            hint = f"did you mean strategy.params.{path[1]}?"
        return unknown(_path_key(path[1:]), ["name", "params.<param>"], "[strategy]", hint)
    if top == "iommu":
        icls = _named(registry.iommu_models, raw["iommu"]["model"])
        pnames = [p.name for p in icls.params] if icls is not None else []
        if len(path) == 3 and path[1] == "params":
            if path[2] not in pnames:
                return unknown(str(path[2]), pnames, f"[iommu.params] of {raw['iommu']['model']!r}")
            return None
        core = [p.name for p in IOMMU_CORE_PARAMS]
        if len(path) == 2 and path[1] in core:
            return None
        hint = f"did you mean iommu.params.{path[1]}?" if len(path) == 2 and path[1] in pnames else ""
        return unknown(_path_key(path[1:]), ["model", *core, "params.<param>"], "[iommu]", hint)
    # workload
    if len(path) != 3 or not isinstance(path[1], int):
        return "expected workload[I].KEY or workload.NAME.KEY"
    w = raw["workload"][path[1]]
    if not isinstance(w.get("name"), str):
        return None  # the name itself is the mistake: validation reports it, once
    wcls = _named(registry.workloads, w["name"])
    pnames = [p.name for p in wcls.params] if wcls is not None else []
    if path[2] not in pnames:
        return unknown(str(path[2]), ["name", *pnames], f"workload {w['name']!r}")
    return None


# --------------------------------------------------------------------------- provenance


def value_origins(
    raw_file_dict: Mapping[str, Any] | None,
    overrides: Sequence[str] = (),
    config: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """Which values were set where: dotted key -> ``"file"`` or ``"override"``.

    ``raw_file_dict`` is the file as read (:func:`load_raw`), ``overrides`` the ``KEY=VALUE``
    strings. ``config`` (the effective config) resolves ``workload.NAME.K`` keys to indices.
    Every other value is a default (or comes from the scenario the config started from).
    """
    out: dict[str, str] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, Mapping):
            for k, v in node.items():
                walk(v, _join(prefix, str(k)))
        elif isinstance(node, list) and node and all(isinstance(x, Mapping) for x in node):
            for i, x in enumerate(node):
                walk(x, f"{prefix}[{i}]")
        else:
            out[prefix] = "file"

    raw = raw_file_dict or {}
    for section, value in raw.items():
        if section not in ("schema", "plugins"):
            walk(value, section)

    file_wl = raw.get("workload") if isinstance(raw.get("workload"), list) else None
    workloads = list(config["workload"]) if config is not None else list(file_wl or [])
    file_strategy = raw.get("strategy", {}).get("name") if isinstance(raw.get("strategy"), Mapping) else None
    file_model = raw.get("iommu", {}).get("model") if isinstance(raw.get("iommu"), Mapping) else None
    for item in overrides:
        kv = _split_override(item)
        if kv is None:
            continue
        path, err = _resolve_key(kv[0], [w for w in workloads if isinstance(w, Mapping) and "name" in w])
        if err:
            continue
        key = _path_key(path)
        if key == "strategy.name" and (config is None or config["strategy"]["name"] != file_strategy):
            for k in [k for k in out if k.startswith("strategy.params.")]:
                del out[k]
        if key == "iommu.model" and (config is None or config["iommu"]["model"] != file_model):
            for k in [k for k in out if k.startswith("iommu.params.")]:
                del out[k]
        if len(path) == 3 and path[0] == "workload" and path[2] == "name":
            prefix = f"workload[{path[1]}]."
            for k in [k for k in out if k.startswith(prefix)]:
                del out[k]
        out[key] = "override"
    return out


# --------------------------------------------------------------------------- JSON Schema


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
            "description": f"The {_KIND_LABEL[kind]} plugin: "
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
