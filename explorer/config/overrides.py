"""``--set KEY=VALUE`` overrides (parsed as TOML values, keys checked with did-you-mean, a new
plugin name starting from its own defaults) and provenance: which value came from the file, an
override or a default."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from explorer.config.model import IOMMU_SECTION, STRATEGY_SECTION
from explorer.config.problems import Collector, ConfigError, Problem, did_you_mean, join_key
from explorer.config.tomlio import MAX_DEPTH, nesting_depth
from explorer.config.validation import plain_data, validate, with_run_table
from explorer.core_params import KERNEL_PARAMS, RUN_PARAMS

if TYPE_CHECKING:
    from explorer.plugins import Registry


# --------------------------------------------------------------------------- overrides


_WL_INDEX_RE = re.compile(r"^workload\[([0-9]{1,9})\]\.(.+)$", re.ASCII)
_WL_NAME_RE = re.compile(r"^workload\.([^.\[\]]+)\.([^.]+)$")


def parse_override_value(text: str) -> Any:
    """A ``--set`` value: read as a TOML value where it is one (``4``, ``true``, ``"x"``), else the
    text itself (``1000/s``, ``20us``, ``arm64``)."""
    if "\n" in text or "\r" in text:
        return text
    if text.isdigit() and text.isascii() and len(text) < 19 and (text[0] != "0" or text == "0"):
        return int(text)  # a plain decimal integer, as TOML reads it (a sweep's seeds and sizes)
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except (tomllib.TOMLDecodeError, ValueError, RecursionError):  # ValueError: an int over 4300 digits
        return text
    return text if nesting_depth(value) > MAX_DEPTH else value


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
            return [], (f"the config has no workload {m.group(1)!r}{did_you_mean(m.group(1), names)}; it has: "
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
            out = join_key(out, part)
    return out


def apply_overrides(
    config: Mapping[str, Any],
    overrides: Sequence[str],
    registry: Registry,
    source: str = "--set",
    *,
    warnings: list[Problem] | None = None,
    base_valid: bool = False,
) -> dict[str, Any]:
    """Apply ``KEY=VALUE`` overrides and re-validate; raise :class:`ConfigError` with every problem.

    Keys: ``run.K``, ``kernel.K``, ``strategy.name``, ``strategy.params.K``, ``iommu.model``,
    ``iommu.K``, ``iommu.params.K``, ``workload[I].K``, ``workload.NAME.K`` (``K`` may be ``name``
    to swap a source). Changing ``strategy.name``/``iommu.model``/a workload's name starts that
    plugin from its own defaults, then applies the other overrides.

    ``base_valid``: ``config`` is what validation returned for ``registry``, unchanged since (a
    sweep validates its base once, then each point); overrides of ``run.*`` keys alone then check
    only ``[run]`` (:func:`~explorer.config.validation.with_run_table`), with the same result.
    """
    col = Collector(source)
    parsed: list[tuple[str, list[str | int], Any]] = []
    for item in overrides:
        kv = _split_override(item)
        if kv is None:
            col.add(item, "expected KEY=VALUE, such as kernel.cpus=4 or strategy.params.batch=64")
            continue
        key, text = kv
        path, err = _resolve_key(key, config["workload"])
        if err:
            col.add(key, err)
            continue
        parsed.append((key, path, parse_override_value(text)))

    if base_valid and parsed and not col.problems and all(
            len(path) == 2 and path[0] == "run" for _key, path, _value in parsed):
        return _override_run(config, parsed, registry, col)
    # The canonical config itself, not its TOML form: validation takes either, and skipping the
    # round trip through unit strings halves the time of a sweep's per-point validation.
    raw = plain_data(config)

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
        col.problems.extend(_as_typed(exc.problems, user_key))
    if col.problems:
        raise ConfigError(col.problems)
    return result


def _as_typed(problems: Sequence[Problem], user_key: Mapping[str, str]) -> list[Problem]:
    """Validation's problems under the keys as the user typed them (``workload.NAME.K``, not ``[I]``)."""
    return [Problem(p.file, user_key.get(p.key, p.key), p.message, p.line, p.col, p.source_line) for p in problems]


def _override_run(config: Mapping[str, Any], parsed: Sequence[tuple[str, list[str | int], Any]],
                  registry: Registry, col: Collector) -> dict[str, Any]:
    """:func:`apply_overrides` of ``run.*`` keys alone on a valid config: only ``[run]`` is checked."""
    run = dict(config["run"])
    user_key: dict[str, str] = {}
    for key, path, value in parsed:
        err = _settable(path, config, registry)
        if err:
            col.add(key, err)
            continue
        run[str(path[1])] = value
        user_key[_path_key(path)] = key
    try:
        if not col.problems:
            return with_run_table(config, run, col.source)
    except ConfigError as exc:
        col.problems.extend(_as_typed(exc.problems, user_key))
    raise ConfigError(col.problems)


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
        msg = f"unknown key; {hint}" if hint else f"unknown key{did_you_mean(word, valid)}"
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
    if top in ("strategy", "iommu"):
        sec = STRATEGY_SECTION if top == "strategy" else IOMMU_SECTION
        name = raw[sec.table][sec.key]
        cls = _named(registry.table(sec.table), name)
        pnames = [p.name for p in cls.params] if cls is not None else []
        if len(path) == 3 and path[1] == "params":
            if path[2] not in pnames:
                return unknown(str(path[2]), pnames, f"[{top}.params] of {name!r}")
            return None
        core = [p.name for p in sec.core]
        if len(path) == 2 and path[1] in core:
            return None
        hint = f"did you mean {top}.params.{path[1]}?" if len(path) == 2 and path[1] in pnames else ""
        return unknown(_path_key(path[1:]), [sec.key, *core, "params.<param>"], f"[{top}]", hint)
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
                walk(v, join_key(prefix, str(k)))
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
