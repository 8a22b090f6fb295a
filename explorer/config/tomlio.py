"""The config as TOML: read (syntax errors with line and column, size and nesting limits, never a
FIFO or device), write with tomli-w (canonical units as text, ``minimal``), and save atomically
keeping the previous file as ``path~``."""

from __future__ import annotations

import os
import re
import stat
import sys
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tomli_w

from explorer import atomic
from explorer.api import Param
from explorer.config.model import IOMMU_SECTION, NUMBER_PATTERN, SCHEMA_VERSION, STRATEGY_SECTION, PluginSection
from explorer.config.problems import ConfigError, Problem
from explorer.config.validation import default_config, validate
from explorer.core_params import KERNEL_PARAMS, RUN_PARAMS

if TYPE_CHECKING:
    from explorer.plugins import Registry


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
_BARE_UNIT_RE = re.compile(rf"^\s*([A-Za-z0-9_.\-]+)\s*=\s*({NUMBER_PATTERN}\s*{_UNITS})\s*(?:#.*)?$")


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
    if nesting_depth(raw) > MAX_DEPTH:
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


def nesting_depth(value: Any) -> int:
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

    out["strategy"] = _plugin_table(config, STRATEGY_SECTION, registry, d)
    out["iommu"] = _plugin_table(config, IOMMU_SECTION, registry, d)

    workloads = []
    for w in config["workload"]:
        values = {k: v for k, v in w.items() if k != "name"}
        wp = _plugin_params(registry, "workload", w["name"], values)
        workloads.append({"name": w["name"], **_write_params(values, wp, _declared_defaults(wp) if minimal else None)})
    out["workload"] = workloads
    return out


def _plugin_table(config: Mapping[str, Any], sec: PluginSection, registry: Registry,
                  defaults: Mapping[str, Any] | None) -> dict[str, Any]:
    """``[strategy]`` or ``[iommu]`` in TOML form; with ``defaults`` (minimal), only what differs
    from them (from the plugin's declared defaults when the defaults name another plugin)."""
    values = config[sec.table]
    name = values[sec.key]
    params = _plugin_params(registry, sec.table, name, values["params"])
    table: dict[str, Any] = {sec.key: name}
    table.update(_write_params(values, sec.core, defaults[sec.table] if defaults else None))
    ref: Mapping[str, Any] | None = None
    if defaults is not None:
        ref = defaults[sec.table]["params"] if name == defaults[sec.table][sec.key] else _declared_defaults(params)
    written = _write_params(values["params"], params, ref)
    if written or defaults is None:
        table["params"] = written
    return table


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
