"""A testing kit for plugin authors: run a strategy, compare it with a built-in, check it is safe.

::

    from explorer.testing import check_strategy, compare_strategy, run_strategy

    metrics = run_strategy(MyStrategy)                      # a class, or a loaded plugin's name
    ours, kernel = compare_strategy(MyStrategy, "deferred")  # the same workload and seed
    check_strategy(MyStrategy)                              # AssertionError with a counterexample

With pytest the same three are fixtures (``check_strategy``, ``run_strategy``,
``compare_strategy``; see :mod:`explorer.pytest_plugin`), so a test is three lines::

    def test_delayed_is_safe(check_strategy):
        check_strategy(Delayed)

A strategy is given as its class (nothing needs to be installed or loaded: the kit registers it
next to the built-ins) or as the name of a plugin that is loaded (a built-in, an installed package,
or a file in ``plugins_dir``). Every run is the simulator's own, deterministic for a seed.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from explorer.api import FreeStrategy, IommuModel, WorkloadSource
from explorer.plugins import PluginInfo, Registry, load_registry

#: The scenarios :func:`check_strategy` runs a strategy through: the kernel as merged (every
#: source), a loaded system (the kworker starts 500us late), 1024 SVA-bound processes (long
#: flushes: tables arrive while one runs) and an atomic caller of the free path (sync-in-atomic's
#: vmalloc-huge#1: a strategy that sleeps there is caught; CPA collapse is process context).
DEFAULT_SCENARIOS: tuple[str, ...] = ("linux-6.19", "v3-design", "large-sva", "sync-in-atomic")
#: The IOMMU models it runs each scenario with (x86_64: devices walk the kernel half).
DEFAULT_IOMMU_MODELS: tuple[str, ...] = ("intel-vtd", "amd-vi", "generic")
#: Every check uses the worst-case device: it re-probes the slots whose tables were just unlinked.
ADVERSARIAL_DEVICE: tuple[str, ...] = ("iommu.probe_target=adversarial", "iommu.probe_rate=200000/s")
#: Overrides that switch on optional checker invariants for every check. None today: the
#: flush-before-free invariant (``unflushed_free``) is always on, and every violation kind the
#: checker reports is caught by :func:`violations`.
INVARIANTS: tuple[str, ...] = ()
#: Violations: every counter in a run's ``violations``; nonzero in any of them fails a check.
DEFAULT_BUDGET = "30s"

PluginLike = str | type


# --------------------------------------------------------------------------- registry


def _kind_of(cls: type) -> str:
    for kind, base in (("strategy", FreeStrategy), ("iommu", IommuModel), ("workload", WorkloadSource)):
        if isinstance(cls, type) and issubclass(cls, base):
            return kind
    raise TypeError(f"expected a FreeStrategy, IommuModel or WorkloadSource subclass, got {cls!r}")


def _module_dir(cls: type) -> str | None:
    module = sys.modules.get(cls.__module__)
    path = getattr(module, "__file__", None)
    return str(Path(path).resolve().parent) if path else None


def kit_registry(*plugins: type, plugins_dir: str | Path | Sequence[str | Path] | None = None) -> Registry:
    """The plugins the tool would load (built-ins, installed packages, ``plugins_dir``), plus the
    classes in ``plugins`` registered under their own names (replacing a loaded plugin of that
    name, so a class under test wins over an installed older version of itself).

    Raises ``ValueError`` for a class that does not follow the contract (the loader's message),
    or that takes a built-in's name.
    """
    from explorer.plugins import validate_registration

    dirs = [] if plugins_dir is None else [plugins_dir] if isinstance(plugins_dir, (str, Path)) else list(plugins_dir)
    registry = load_registry([str(d) for d in dirs])
    for cls in plugins:
        kind = _kind_of(cls)
        name = validate_registration(kind, cls)
        other = registry.provider.get((kind, name))
        if other is not None and registry.table(kind)[name] is cls:
            continue  # already loaded as it is (an installed package): keep where it came from
        if other is not None and other.origin == "built-in":
            raise ValueError(f"{kind} {name!r} is a built-in's name: give {cls.__name__} another name")
        registry.table(kind)[name] = cls
        registry.provider[(kind, name)] = PluginInfo(name=cls.__module__, origin="testing kit",
                                                     location=_module_dir(cls) or "", registers=[(kind, name)])
    return registry


def _name(obj: PluginLike) -> str:
    return obj if isinstance(obj, str) else str(obj.name)  # type: ignore[attr-defined]


def _classes(*objs: Any) -> list[type]:
    out: list[type] = []
    for obj in objs:
        if isinstance(obj, type):
            out.append(obj)
        elif isinstance(obj, (list, tuple)):
            out += [o for o in obj if isinstance(o, type)]
    return out


# --------------------------------------------------------------------------- configs and runs


def make_config(
    registry: Registry,
    strategy: PluginLike,
    *,
    scenario: str | None = "linux-6.19",
    iommu: PluginLike | None = None,
    workloads: Sequence[PluginLike] | None = None,
    params: Mapping[str, Any] | None = None,
    overrides: Iterable[str] = (),
    seed: int | None = None,
    duration: str | int | None = None,
) -> dict[str, Any]:
    """A validated config: ``scenario`` (or the defaults) with this strategy, its ``params``
    (as a user writes them: ``{"delay": "200us"}``), another IOMMU model, other workload sources
    (each with its defaults), a seed, a duration and ``KEY=VALUE`` overrides. A mistake raises
    :class:`explorer.config.ConfigError` naming the key."""
    from explorer.config import apply_overrides, default_config, to_toml_dict, validate

    config = default_config(registry, scenario)
    sets = [f"strategy.name={_name(strategy)}"]
    sets += [f"strategy.params.{k}={v}" for k, v in (params or {}).items()]
    if iommu is not None:
        sets.append(f"iommu.model={_name(iommu)}")
    if seed is not None:
        sets.append(f"run.seed={seed}")
    if duration is not None:
        sets.append(f"run.duration={duration}")
    sets += list(overrides)
    if workloads is not None:
        raw = to_toml_dict(config, registry)
        raw["workload"] = [{"name": _name(w)} for w in workloads]
        config = validate(raw, registry, "workloads", base=config)
    return apply_overrides(config, sets, registry, source="explorer.testing")


def run_config(config: Mapping[str, Any], registry: Registry, *, trace: bool = False) -> dict[str, Any]:
    """Run one validated config to its end; return the metrics (``trace=True`` adds the first
    violation's story as ``metrics["trace"]``: see :func:`violation_trace`)."""
    from explorer.sim.build import build_simulation

    with build_simulation(config, registry) as sim:
        sink = _FirstViolation() if trace else None
        if sink is not None:
            sim.kernel.tracer = sink
        metrics = sim.run()
    if sink is not None:
        metrics["trace"] = sink.lines()
    return metrics


def run_strategy(
    strategy: PluginLike = "deferred",
    *,
    scenario: str | None = "linux-6.19",
    iommu: PluginLike | None = None,
    workloads: Sequence[PluginLike] | None = None,
    params: Mapping[str, Any] | None = None,
    overrides: Iterable[str] = (),
    seed: int | None = None,
    duration: str | int | None = None,
    plugins_dir: str | Path | Sequence[str | Path] | None = None,
) -> dict[str, Any]:
    """Run ``strategy`` once (on ``scenario``, by default the kernel as merged) and return the
    metrics, exactly what ``pgtable-explorer run --format json`` prints under ``metrics``.

    ``strategy``, ``iommu`` and each of ``workloads`` may be a class (registered for this run) or
    the name of a loaded plugin.
    """
    registry = kit_registry(*_classes(strategy, iommu, list(workloads or ())), plugins_dir=plugins_dir)
    config = make_config(registry, strategy, scenario=scenario, iommu=iommu, workloads=workloads, params=params,
                         overrides=overrides, seed=seed, duration=duration)
    return run_config(config, registry)


class Comparison(NamedTuple):
    """The metrics of the strategy under test and of the one it is compared with (same workload, seed)."""

    ours: dict[str, Any]
    other: dict[str, Any]

    def delta(self, path: str) -> float:
        """``ours - other`` of one metric (``flushes``, ``latency_ns.p99``, ``queue.peak``)."""
        from explorer.documents import dig

        return float(dig(self.ours, path)) - float(dig(self.other, path))


def compare_strategy(
    strategy: PluginLike,
    other: PluginLike = "deferred",
    *,
    params: Mapping[str, Any] | None = None,
    other_params: Mapping[str, Any] | None = None,
    **same: Any,
) -> Comparison:
    """Run ``strategy`` (with ``params``) and ``other`` (by default the kernel's ``deferred``, with
    ``other_params``) on the same config and seed (the other keyword arguments of
    :func:`run_strategy`); unpack as ``ours, theirs``."""
    return Comparison(run_strategy(strategy, params=params, **same), run_strategy(other, params=other_params, **same))


# --------------------------------------------------------------------------- checking


def violations(metrics: Mapping[str, Any]) -> dict[str, int]:
    """The nonzero violation counters of a run, by kind (every kind the checker reports)."""
    out: dict[str, int] = {}
    for kind, v in (metrics.get("violations") or {}).items():
        total = v.get("total", 0) if isinstance(v, Mapping) else v
        if total:
            out[kind] = int(total)
    return out


class _FirstViolation:
    """A trace sink that keeps the records up to the first violation, then stops listening.

    ``stale_walk_free`` (a walk into a page that sits free) comes first for most bugs; the
    use-after-free that follows is the one that matters, so the trace stops at the first
    violation that is not a hazard, or at the 50th hazard.
    """

    def __init__(self, size: int = 4000) -> None:
        self.records: deque[tuple[int, str, dict[str, Any]]] = deque(maxlen=size)
        self.done = False
        self.hazards = 0

    def append(self, record: tuple[int, str, dict[str, Any]], /) -> None:
        if self.done:
            return
        self.records.append(record)
        if record[1] == "violation":
            if record[2].get("kind") == "stale_walk_free" and self.hazards < 50:
                self.hazards += 1
                return
            self.done = True

    def lines(self, limit: int = 16) -> list[str]:
        return violation_trace(list(self.records), limit)


def violation_trace(records: Sequence[tuple[int, str, dict[str, Any]]], limit: int = 16) -> list[str]:
    """The story of the first violation in ``records``: the flush running when the page was
    unlinked, its unlink, its hand-over to the strategy, the flushes and worker runs until it was
    freed, its free, and the violation itself (harmless walks are counted, not listed)."""
    from explorer.sim.build import trace_line

    if not records or records[-1][1] != "violation":
        return [trace_line(r) for r in records[-limit:]]
    last = records[-1]
    pfn = last[2].get("pfn")
    if pfn is None:  # sleep_in_atomic: what led to it
        return [trace_line(r) for r in records[-limit:]]
    start = next((i for i, r in enumerate(records) if r[1] == "unlink" and r[2].get("pfn") == pfn), 0)
    before = [r for r in records[:start] if r[1] in ("flush_start", "worker_start")][-2:]
    queued = hazards = 0
    story: list[tuple[int, str, dict[str, Any]]] = []
    for r in records[start:-1]:
        mine = r[2].get("pfn") == pfn
        if mine and r[1] == "stale_walk":
            queued += 1
        elif mine and r[1] == "violation" and r[2].get("kind") == "stale_walk_free":
            hazards += 1
        elif mine or r[1] in ("flush_start", "flush_end", "worker_start", "worker_end"):
            story.append(r)
    if len(story) > limit:  # keep the page's own events, and the most recent of the rest
        own = [r for r in story if r[2].get("pfn") == pfn]
        rest = [r for r in story if r[2].get("pfn") != pfn][-max(0, limit - len(own)):]
        keep = {id(r) for r in own + rest}
        story = [r for r in story if id(r) in keep]
    lines = [trace_line(r) for r in (*before, *story, last)]
    notes = []
    if queued:
        notes.append(f"{queued} harmless walk{'s' if queued != 1 else ''} into the page while it was queued")
    if hazards:
        notes.append(f"{hazards} walk{'s' if hazards != 1 else ''} into it while it sat free (stale_walk_free)")
    return lines + ([f"({'; '.join(notes)} not shown)"] if notes else [])


@dataclass
class Finding:
    """One config under which the strategy broke a rule."""

    scenario: str | None
    iommu: str
    seed: int
    violations: dict[str, int]
    examples: list[dict[str, Any]]
    trace: list[str]
    config_path: str = ""
    found_by: str = "run"  # "run": the scenario as it is; "hunt": a config the hunt varied

    def describe(self, reproduce: str) -> str:
        where = f"scenario {self.scenario or '(defaults)'}, iommu {self.iommu}, seed {self.seed}"
        lines = [f"{where}" + (" (found by hunt)" if self.found_by == "hunt" else "")]
        lines.append("  violations: " + ", ".join(f"{k} {n}" for k, n in self.violations.items()))
        for ex in self.examples[:2]:
            detail = " ".join(f"{k}={v}" for k, v in ex.items() if k not in ("kind", "time_ns"))
            lines.append(f"  first: {ex.get('kind')} at {ex.get('time_ns', 0) / 1e9:.6f}s {detail}")
        if self.config_path:
            lines.append(f"  config: {self.config_path}")
            lines.append(f"  reproduce: {reproduce.format(config=self.config_path)}")
        if self.trace:
            lines.append("  trace (the page's story up to the violation):")
            lines += [f"    {t}" for t in self.trace]
        return "\n".join(lines)


@dataclass
class CheckReport:
    """What :func:`check_strategy` ran and found."""

    strategy: str
    runs: int = 0
    configs: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    hunted: str = ""  # what the hunt did, or why it did not run
    reproduce: str = "pgtable-explorer run {config}"

    @property
    def ok(self) -> bool:
        return not self.findings

    def __str__(self) -> str:
        if self.ok:
            return (f"strategy {self.strategy!r}: no violation in {self.runs} runs "
                    f"({', '.join(self.configs)}); {self.hunted}")
        head = (f"strategy {self.strategy!r} breaks the kernel's rules in {len(self.findings)} of "
                f"{len(self.configs)} configs:")
        first, *others = self.findings
        lines = [head, first.describe(self.reproduce)]
        for f in others:
            lines.append(f"also scenario {f.scenario}, iommu {f.iommu}: "
                         + ", ".join(f"{k} {n}" for k, n in f.violations.items()) + f" ({f.config_path})")
        return "\n".join(lines)


def _budget_s(budget: str | float | int) -> float:
    from explorer.units import parse_duration

    if isinstance(budget, (int, float)) and not isinstance(budget, bool):
        return float(budget)
    return parse_duration(budget) / 1e9


def _hunt_function() -> Callable[..., Any]:
    """The search :func:`check_strategy` runs after the scenarios (a seam the kit's tests replace)."""
    from explorer.hunt import hunt as hunt_fn  # imported when a check hunts: it loads Hypothesis

    return hunt_fn


def check_strategy(
    strategy: PluginLike,
    *,
    plugins_dir: str | Path | Sequence[str | Path] | None = None,
    scenarios: Sequence[str] = DEFAULT_SCENARIOS,
    iommu_models: Sequence[str] = DEFAULT_IOMMU_MODELS,
    budget: str | float = DEFAULT_BUDGET,
    params: Mapping[str, Any] | None = None,
    seed: int = 1,
    duration: str | int | None = None,
    report_dir: str | Path | None = None,
    hunt: bool = True,
) -> CheckReport:
    """Run ``strategy`` through each of ``scenarios`` with each of ``iommu_models`` (with the
    worst-case device and every checker invariant on), then, with the rest of ``budget``, hunt
    for a violation in configs around them; raise ``AssertionError`` with a report on any.

    The report names, for each failing config: the scenario, model and seed, the violations, the
    first examples, a TOML file of the config (in ``report_dir``, by default a new temporary
    folder) with the command that reproduces it, and the trace of the first violated page's life.
    Returns the :class:`CheckReport` when everything holds.
    """
    from explorer.config import dumps_config

    t0 = time.monotonic()
    budget_s = _budget_s(budget)
    registry = kit_registry(*_classes(strategy), plugins_dir=plugins_dir)
    name = _name(strategy)
    if name not in registry.strategies:
        raise ValueError(f"strategy {name!r} is not loaded: pass its class, or the plugins_dir it is in")
    dirs = [] if plugins_dir is None else [plugins_dir] if isinstance(plugins_dir, (str, Path)) else list(plugins_dir)
    if isinstance(strategy, type) and registry.provider[("strategy", name)].origin == "testing kit":
        where = _module_dir(strategy)
        dirs = [*dirs, where] if where else dirs
    report = CheckReport(strategy=name)
    report.reproduce = ("pgtable-explorer " + "".join(f"--plugins-dir {d} " for d in dirs)
                        + "run {config} --trace trace.txt")
    out_dir = Path(report_dir) if report_dir is not None else None

    def record(config: Mapping[str, Any], metrics: Mapping[str, Any], scen: str | None, how: str) -> None:
        nonlocal out_dir
        bad = violations(metrics)
        if not bad:
            return
        if out_dir is None:
            out_dir = Path(tempfile.mkdtemp(prefix="pgtx-check-"))
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"counterexample-{name}-{len(report.findings) + 1}.toml"
        from explorer import atomic

        atomic.write_text(path, dumps_config(config, registry))
        report.findings.append(Finding(scen, config["iommu"]["model"], int(config["run"]["seed"]), bad,
                                       list(metrics.get("examples") or []), list(metrics.get("trace") or []),
                                       str(path), how))

    configs: list[tuple[str, dict[str, Any]]] = []
    for scen in scenarios:
        for model in iommu_models:
            config = make_config(registry, name, scenario=scen, iommu=model, params=params, seed=seed,
                                 duration=duration, overrides=(*ADVERSARIAL_DEVICE, *INVARIANTS))
            configs.append((scen, config))
            report.configs.append(f"{scen}/{model}")
            metrics = run_config(config, registry, trace=False)
            report.runs += 1
            if violations(metrics):  # again, with the trace of the first violation
                record(config, run_config(config, registry, trace=True), scen, "run")

    if report.findings:
        report.hunted = "no hunt: the scenarios already failed"
    elif not hunt:
        report.hunted = "no hunt (hunt=False)"
    else:
        hunt_fn = _hunt_function()
        left = budget_s - (time.monotonic() - t0)
        hunted = 0
        for i, (scen, config) in enumerate(configs):
            share = left / (len(configs) - i) if left > 0 else 0.0
            if share < 0.5:
                break
            t_start = time.monotonic()
            result = hunt_fn(config, registry, kind="any", budget_s=share, seed=seed)
            hunted += int(getattr(result, "runs", 0) or 0)
            left -= time.monotonic() - t_start
            if getattr(result, "found", False):
                found = dict(result.config)
                metrics = run_config(found, registry, trace=True)
                record(found, metrics, scen, "hunt")
                if report.findings and getattr(result, "trace", None) and not report.findings[-1].trace:
                    report.findings[-1].trace = list(result.trace)[-16:]
                break
        report.hunted = f"hunt: {hunted} more runs found nothing" if not report.findings else "hunt found one"
    if report.findings:
        raise AssertionError(str(report))
    return report


__all__ = [
    "ADVERSARIAL_DEVICE",
    "DEFAULT_IOMMU_MODELS",
    "DEFAULT_SCENARIOS",
    "INVARIANTS",
    "CheckReport",
    "Comparison",
    "Finding",
    "check_strategy",
    "compare_strategy",
    "kit_registry",
    "make_config",
    "run_config",
    "run_strategy",
    "violation_trace",
    "violations",
]
