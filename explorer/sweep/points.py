"""The points of a sweep: axes (``--grid``, ``--range``), seeds and sampling, expanded into plain configs.

A sweep starts from one *base* config (a file or a scenario, with ``--set``/``--seed``/``--duration``
applied exactly as ``run`` applies them). Each axis names one config key, written the way ``--set``
writes it (``strategy.params.batch``, ``iommu.model``, ``workload.vmalloc-huge.rate``), and lists
its values:

``--grid KEY=V1,V2,...``
    the values as written (each read like a ``--set`` value: ``4``, ``20us``, ``5000/s``, ``arm64``).
``--range KEY=START:STOP:STEPS[:lin|log]``
    ``STEPS`` values from ``START`` to ``STOP``, both included, evenly spaced (``lin``, the default)
    or evenly spaced in the logarithm (``log``). ``START``/``STOP`` may carry units
    (``1us:1ms:4:log``). For integer parameters and durations the values are rounded to whole
    numbers and repeats dropped (``1:8:8:log`` gives 1, 2, 3, 4, 6, 8).

The points are the product of the axes in the order given (the last axis varies fastest), each run
with ``--seeds N`` seeds: the base seed and the N-1 following (the seed varies fastest of all).
``--sample K`` keeps K of the parameter combinations, drawn at random with a fixed sampling seed
(``--sample-seed``, default 0), in their original order; each kept combination still runs every seed.

When ``strategy.name`` (or ``iommu.model``) is itself an axis, a ``strategy.params.K``
(``iommu.params.K``) axis only applies to the strategies (models) that declare ``K``: for the others
it is left out, and the points that become identical are run once. So
``--grid strategy.name=deferred,batched --grid strategy.params.batch=64,256`` is three points per seed.

Every point is a complete, validated config (plain data): what crosses to a worker.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from explorer.api import Param, ParamError
from explorer.config import ConfigError, apply_overrides, parse_override_value, plain_data, validate, workload_labels
from explorer.core_params import IOMMU_PARAMS, KERNEL_PARAMS, RUN_PARAMS
from explorer.documents import at_path

if TYPE_CHECKING:
    from explorer.plugins import Registry


class SweepError(ValueError):
    """A sweep that cannot be set up: a bad axis, a point whose config does not validate, ..."""


_WL_INDEX_RE = re.compile(r"^workload\[(\d+)\]\.(.+)$")
_WL_NAME_RE = re.compile(r"^workload\.([^.\[\]]+)\.(.+)$")

#: A swept key names a config value: its first part is one of these tables.
PARAM_SECTIONS = ("run", "kernel", "strategy", "iommu", "workload")


def is_param_column(name: str) -> bool:
    """True for a results-file column that is a swept config key (``strategy.params.batch``), as
    opposed to a metric (``queue.peak``) or a bookkeeping column (``point``, ``seed``)."""
    head = re.split(r"[.\[]", name, maxsplit=1)[0]
    return head in PARAM_SECTIONS and len(head) < len(name)


# --------------------------------------------------------------------------- axes


@dataclass(frozen=True)
class Axis:
    """One swept key and its values, each written as a ``--set`` value would be."""

    key: str
    values: tuple[str, ...]
    spec: str  # as the user wrote it: "--grid k=..." or "--range k=..."

    def __len__(self) -> int:
        return len(self.values)


def split_values(text: str) -> list[str]:
    """Split ``v1,v2,...`` on commas outside quotes and brackets (``"a,b"`` and ``[1, 2]`` stay whole)."""
    out: list[str] = []
    buf: list[str] = []
    quote: str | None = None
    depth = 0
    for ch in text:
        if quote:
            buf.append(ch)
            if ch == quote:
                quote = None
            continue
        if ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            out.append("".join(buf).strip())
            buf = []
            continue
        buf.append(ch)
    out.append("".join(buf).strip())
    return out


def _split_key(text: str, flag: str, example: str) -> tuple[str, str]:
    if "=" not in text:
        raise SweepError(f"{flag} {text!r}: expected KEY={example}")
    key, rest = text.split("=", 1)
    key = key.strip()
    if not key:
        raise SweepError(f"{flag} {text!r}: expected KEY={example}")
    return key, rest.strip()


def parse_grid(text: str) -> Axis:
    """``KEY=V1,V2,...`` -> an :class:`Axis` (values kept as written)."""
    key, rest = _split_key(text, "--grid", "V1,V2,...")
    values = split_values(rest)
    if any(v == "" for v in values):
        raise SweepError(f"--grid {text!r}: empty value (expected KEY=V1,V2,...)")
    seen: list[str] = []
    for v in values:
        if v in seen:
            raise SweepError(f"--grid {text!r}: value {v!r} is listed twice")
        seen.append(v)
    return Axis(key, tuple(values), f"--grid {text}")


def _number_text(value: str) -> int | float | None:
    try:
        v = parse_override_value(value)
    except Exception:  # pragma: no cover - parse_override_value never raises for one line
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return v


def range_values(
    start: float, stop: float, steps: int, scale: str = "lin", *, integer: bool = False
) -> list[int | float]:
    """The values of a range: ``steps`` values from ``start`` to ``stop`` (both included).

    ``scale`` is ``lin`` or ``log`` (``log`` needs both ends positive). With ``integer``, values are
    rounded to whole numbers and repeats dropped. Floats are rounded to 12 significant digits, so
    ``0:1:11`` gives ``0.1``, not ``0.1000000000000000055``.
    """
    if steps < 1:
        raise ValueError("STEPS must be at least 1")
    if scale not in ("lin", "log"):
        raise ValueError(f"scale must be 'lin' or 'log', got {scale!r}")
    if scale == "log" and (start <= 0 or stop <= 0):
        raise ValueError("a log range needs START and STOP above zero")
    if steps == 1:
        raw = [float(start)]
    elif scale == "lin":
        raw = [start + (stop - start) * i / (steps - 1) for i in range(steps)]
    else:
        lo, hi = math.log(start), math.log(stop)
        raw = [math.exp(lo + (hi - lo) * i / (steps - 1)) for i in range(steps)]
        raw[0], raw[-1] = float(start), float(stop)  # the ends exactly as given
    out: list[int | float] = []
    for v in raw:
        value: int | float = round(v) if integer else float(f"{v:.12g}")
        if value not in out:
            out.append(value)
    return out


def parse_range(text: str, param: Param | None = None) -> Axis:
    """``KEY=START:STOP:STEPS[:lin|log]`` -> an :class:`Axis`.

    ``param`` (the declaration of KEY, when known) decides how ``START``/``STOP`` are read (units of
    a duration or rate) and whether values are whole numbers.
    """
    key, rest = _split_key(text, "--range", "START:STOP:STEPS[:lin|log]")
    parts = [p.strip() for p in rest.split(":")]
    if len(parts) not in (3, 4):
        raise SweepError(f"--range {text!r}: expected KEY=START:STOP:STEPS or KEY=START:STOP:STEPS:log")
    scale = parts[3].lower() if len(parts) == 4 else "lin"
    if scale not in ("lin", "log"):
        raise SweepError(f"--range {text!r}: the fourth field must be 'lin' or 'log', got {parts[3]!r}")
    try:
        steps = int(parts[2])
    except ValueError:
        raise SweepError(f"--range {text!r}: STEPS must be a whole number, got {parts[2]!r}") from None
    if steps < 1:
        raise SweepError(f"--range {text!r}: STEPS must be at least 1")

    ends: list[int | float] = []
    integer: bool
    if param is not None and param.type in ("int", "float", "duration", "rate"):
        for p in parts[:2]:
            try:
                v = param.parse(parse_override_value(p))
            except ParamError as exc:
                raise SweepError(f"--range {text!r}: {key}: {exc}") from None
            ends.append(v)
        integer = param.type in ("int", "duration")
    elif param is not None:
        raise SweepError(f"--range {text!r}: {key} is a {param.type} parameter; a range needs a number "
                         "(use --grid for a list of values)")
    else:
        nums = [_number_text(p) for p in parts[:2]]
        if any(n is None for n in nums):
            raise SweepError(f"--range {text!r}: START and STOP must be numbers")
        ends = [n for n in nums if n is not None]
        integer = all(isinstance(n, int) for n in ends)
    try:
        values = range_values(ends[0], ends[1], steps, scale, integer=integer)
    except ValueError as exc:
        raise SweepError(f"--range {text!r}: {exc}") from None
    return Axis(key, tuple(str(v) if isinstance(v, int) else repr(v) for v in values), f"--range {text}")


# --------------------------------------------------------------------------- keys and values


def _workload_index(config: Mapping[str, Any], key: str) -> tuple[int, str] | None:
    m = _WL_INDEX_RE.match(key)
    if m:
        return int(m.group(1)), m.group(2)
    m = _WL_NAME_RE.match(key)
    if m:
        # by label, as overrides address them: the second source of one name is NAME#1
        labels = workload_labels(config.get("workload", []))
        if m.group(1) in labels:
            return labels.index(m.group(1)), m.group(2)
    return None


def get_value(config: Mapping[str, Any], key: str) -> Any:
    """The canonical value of ``key`` (a ``--set`` key) in ``config``, or None when it has none."""
    if key.startswith("workload"):
        found = _workload_index(config, key)
        if found is None:
            return None
        i, rest = found
        workloads = config.get("workload", [])
        return workloads[i].get(rest) if i < len(workloads) else None
    return at_path(config, key)


def param_for_key(
    key: str, config: Mapping[str, Any], registry: Registry, plugin_choices: Mapping[str, Sequence[str]] | None = None
) -> Param | None:
    """The :class:`Param` declaration that ``key`` sets, or None when it names none.

    ``plugin_choices`` maps ``strategy.name``/``iommu.model`` to the names swept on those axes; a
    plugin parameter is looked up in each of them in turn.
    """
    choices = plugin_choices or {}

    def find(params: Sequence[Param], name: str) -> Param | None:
        return next((p for p in params if p.name == name), None)

    if key.startswith("workload"):
        found = _workload_index(config, key)
        if found is None:
            return None
        i, name = found
        workloads = config.get("workload", [])
        if i >= len(workloads):
            return None
        cls = registry.workloads.get(workloads[i].get("name"))
        return find(cls.params, name) if cls is not None else None
    parts = key.split(".")
    if len(parts) == 2 and parts[0] == "run":
        return find(RUN_PARAMS, parts[1])
    if len(parts) == 2 and parts[0] == "kernel":
        return find(KERNEL_PARAMS, parts[1])
    if len(parts) == 2 and parts[0] == "iommu":
        return find(IOMMU_PARAMS, parts[1])
    if len(parts) == 3 and parts[1] == "params" and parts[0] in ("strategy", "iommu"):
        name_key = "strategy.name" if parts[0] == "strategy" else "iommu.model"
        names = list(choices.get(name_key) or [get_value(config, name_key)])
        table: Mapping[str, Any] = registry.strategies if parts[0] == "strategy" else registry.iommu_models
        for n in names:
            plugin = table.get(n)
            p = find(plugin.params, parts[2]) if plugin is not None else None
            if p is not None:
                return p
    return None


def value_shower(
    records: Sequence[Mapping[str, Any]], config: Mapping[str, Any], registry: Registry
) -> Callable[[str, Any], str]:
    """``show(key, value)``: a swept value as a user writes it, in its declared unit
    (``strategy.params.max_delay`` 200000 -> ``200us``); a key no parameter declares as it is."""
    choices = {k: sorted({str(r[k]) for r in records if r.get(k) is not None})
               for k in ("strategy.name", "iommu.model") if any(k in r for r in records)}
    found: dict[str, Param | None] = {}

    def show(key: str, value: Any) -> str:
        if value is None:
            return "-"
        if key not in found:
            found[key] = param_for_key(key, config, registry, choices) or _declared_anywhere(key, registry)
        p = found[key]
        if p is None:
            return f"{value:g}" if isinstance(value, float) else str(value)
        try:
            return p.show(p.parse(value))
        except (ParamError, TypeError, ValueError):
            return str(value)

    return show


def _declared_anywhere(key: str, registry: Registry) -> Param | None:
    """For results read without their config: ``strategy.params.X`` (or ``iommu.params.X``) as the
    loaded plugins declare X, when every declaration of it has one type."""
    parts = key.split(".")
    if len(parts) != 3 or parts[1] != "params" or parts[0] not in ("strategy", "iommu"):
        return None
    table: Mapping[str, Any] = registry.strategies if parts[0] == "strategy" else registry.iommu_models
    decls = [p for cls in table.values() for p in cls.params if p.name == parts[2]]
    return decls[0] if decls and len({p.type for p in decls}) == 1 else None


def _declares(registry: Registry, kind: str, plugin: Any, name: str) -> bool:
    table = registry.strategies if kind == "strategy" else registry.iommu_models
    cls = table.get(plugin) if isinstance(plugin, str) else None
    return cls is not None and any(p.name == name for p in cls.params)


def point_id(config: Mapping[str, Any]) -> str:
    """A stable identity of a point: a hash of its whole config (seed included).

    ``--resume`` recognises a finished point by it, so a point is run again when anything in its
    config changed, a plugin version included.
    """
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- points


@dataclass(frozen=True)
class Point:
    """One run of a sweep: its number, its swept values, its seed and its whole config."""

    index: int
    params: dict[str, Any]  # swept key -> canonical value (None where the key does not apply)
    seed: int
    config: dict[str, Any]
    id: str

    def label(self) -> str:
        """``strategy.params.batch=64 iommu.model=generic seed=3``."""
        parts = [f"{k}={v}" for k, v in self.params.items() if v is not None]
        return " ".join([*parts, f"seed={self.seed}"])

    def overrides(self) -> list[str]:
        """The ``--set`` arguments that turn the sweep's base config into this point."""
        return [f"{k}={_as_override(v)}" for k, v in self.params.items() if v is not None]


def _as_override(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return str(value)


@dataclass
class SweepPlan:
    """Everything a sweep runs, as plain data: the base config, the axes, and every point."""

    base: dict[str, Any]
    axes: list[Axis]
    seeds: list[int]
    points: list[Point]
    combinations: int  # the size of the full product of the axes (before --sample)
    sample: int | None = None
    sample_seed: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def keys(self) -> list[str]:
        """The swept keys, in axis order (the results' parameter columns)."""
        return [a.key for a in self.axes]


def make_axes(
    base: Mapping[str, Any], registry: Registry, specs: Sequence[tuple[str, str]]
) -> list[Axis]:
    """Parse ``[("grid", "k=v1,v2"), ("range", "k=1:10:4"), ...]`` in the order given."""
    axes: list[Axis] = []
    grids = [parse_grid(text) for kind, text in specs if kind == "grid"]
    choices = {a.key: [parse_override_value(v) for v in a.values] for a in grids
               if a.key in ("strategy.name", "iommu.model")}
    it = iter(grids)
    for kind, text in specs:
        if kind == "grid":
            axes.append(next(it))
        elif kind == "range":
            key = text.split("=", 1)[0].strip()
            axes.append(parse_range(text, param_for_key(key, base, registry, choices)))
        else:  # pragma: no cover - programming error
            raise ValueError(f"unknown axis kind {kind!r}")
    seen: dict[str, str] = {}
    for a in axes:
        if a.key in seen:
            raise SweepError(f"{a.spec}: {a.key} is already swept by {seen[a.key]}")
        seen[a.key] = a.spec
    return axes


def _decode(index: int, sizes: Sequence[int]) -> tuple[int, ...]:
    out = []
    for size in reversed(sizes):
        index, r = divmod(index, size)
        out.append(r)
    return tuple(reversed(out))


def expand(
    base: Mapping[str, Any],
    registry: Registry,
    axes: Sequence[Axis],
    *,
    seeds: int = 1,
    sample: int | None = None,
    sample_seed: int = 0,
) -> SweepPlan:
    """Expand the axes into the list of points (see the module docstring for the order).

    Raises :class:`SweepError` when a combination does not give a valid config, naming it.
    """
    if seeds < 1:
        raise SweepError(f"--seeds must be at least 1, got {seeds}")
    # The base checked once against these plugins; each point then checks what its overrides change.
    try:
        base = validate(base, registry, "sweep", base=base, warnings=[])
    except ConfigError as exc:
        raise SweepError(f"the base config is not valid:\n{exc}") from None
    if seeds > 1 and any(a.key == "run.seed" for a in axes):
        raise SweepError("run.seed is swept by an axis: drop --seeds, or the run.seed axis")
    if sample is not None and sample < 1:
        raise SweepError(f"--sample must be at least 1, got {sample}")
    sizes = [len(a) for a in axes]
    total = math.prod(sizes)
    if sample is not None and sample < total:
        chosen: Sequence[int] = sorted(random.Random(sample_seed).sample(range(total), sample))
    else:
        chosen = range(total)
    base_seed = int(base["run"]["seed"])
    seed_list = [base_seed + i for i in range(seeds)]
    notes: list[str] = []

    conditional: dict[str, tuple[str, str]] = {}  # key -> (kind, param name) for plugin params
    swept_names = {a.key for a in axes}
    for a in axes:
        parts = a.key.split(".")
        if len(parts) == 3 and parts[1] == "params" and parts[0] in ("strategy", "iommu"):
            name_key = "strategy.name" if parts[0] == "strategy" else "iommu.model"
            if name_key in swept_names:
                conditional[a.key] = (parts[0], parts[2])

    points: list[Point] = []
    seen_ids: set[str] = set()
    dropped = 0
    cache: dict[tuple[str, ...], dict[str, Any]] = {}
    for combo_index in chosen:
        picks = _decode(combo_index, sizes)
        assignment = {a.key: a.values[i] for a, i in zip(axes, picks, strict=True)}
        overrides = []
        for key, text in assignment.items():
            if key in conditional:
                kind, pname = conditional[key]
                name_key = "strategy.name" if kind == "strategy" else "iommu.model"
                plugin = parse_override_value(assignment[name_key])
                if not _declares(registry, kind, plugin, pname):
                    continue
            overrides.append(f"{key}={text}")
        sig = tuple(overrides)
        config = cache.get(sig)
        fresh = config is None
        if config is None:
            try:
                config = apply_overrides(base, overrides, registry, source="sweep", warnings=[], base_valid=True)
            except ConfigError as exc:
                where = " ".join(overrides) or "(the base config)"
                raise SweepError(f"the point {where} is not a valid config:\n{exc}") from None
            cache[sig] = config
        applied = {o.split("=", 1)[0] for o in overrides}
        seed_values: list[int | None] = [None] if "run.seed" in applied else list(seed_list)
        for j, seed in enumerate(seed_values):
            # a config made for this point alone goes to its last seed as it is; the others copy it
            cfg = config if fresh and j == len(seed_values) - 1 else plain_data(config)
            if seed is not None:
                cfg["run"]["seed"] = seed
            pid = point_id(cfg)
            if pid in seen_ids:
                dropped += 1
                continue
            seen_ids.add(pid)
            params = {a.key: (get_value(cfg, a.key) if a.key in applied else None) for a in axes}
            points.append(Point(len(points), params, int(cfg["run"]["seed"]), cfg, pid))
    if dropped:
        notes.append(f"{dropped} point(s) dropped as identical to another (a plugin parameter that does "
                     "not apply to every plugin on its axis)")
    notes.extend(arch_notes(points))
    return SweepPlan(
        base=dict(base), axes=list(axes), seeds=seed_list, points=points, combinations=total,
        sample=sample, sample_seed=sample_seed, notes=notes,
    )


def plan_sweep(
    base: Mapping[str, Any],
    registry: Registry,
    axis_specs: Sequence[tuple[str, str]] = (),
    *,
    seeds: int = 1,
    sample: int | None = None,
    sample_seed: int = 0,
) -> SweepPlan:
    """Parse the axes and expand them: the one call a face (CLI, TUI) needs."""
    return expand(base, registry, make_axes(base, registry, axis_specs), seeds=seeds, sample=sample,
                  sample_seed=sample_seed)



#: The architecture each vendor IOMMU model is found on. Another is allowed (it answers "what would
#: this IOMMU cost doing that architecture's flush", docs/iommu-models.md), but is no real machine.
VENDOR_ARCH = {"arm-smmuv3": "arm64", "intel-vtd": "x86_64", "amd-vi": "x86_64"}


def arch_notes(points: Sequence[Point]) -> list[str]:
    """A note for each vendor model a sweep runs on an architecture it is not found on."""
    odd: dict[tuple[str, str], int] = {}
    for p in points:
        model, arch = p.config["iommu"]["model"], p.config["kernel"]["arch"]
        if VENDOR_ARCH.get(model, arch) != arch:
            odd[(model, arch)] = odd.get((model, arch), 0) + 1
    return [f"{n} point(s) run {model} with kernel.arch = {arch}: no real machine has that pair "
            f"({model} is an {VENDOR_ARCH[model]} IOMMU); they show what its invalidation would cost "
            f"doing the {arch} flush" for (model, arch), n in sorted(odd.items())]
