"""What ``hunt`` searches: scripted workloads built from a config's own workload sources.

A *candidate* is plain data: the knobs hunt may vary (``run.seed``, ``kernel.workqueue_delay``,
``iommu.sva_mms``, which sets how long a flush takes) and a short list of timed events:

- ``unlink`` of kernel tables, in one of the *flavours* the config's sources produce (a CPA
  collapse unlinks in atomic context and maybe unmarked, hot-remove in bursts and maybe from
  bootmem, ...), on one of the CPUs the source may use;
- ``free-user`` (user-teardown);
- ``probe``: a device walks a kernel slot, aimed at the few slots the unlinks use, which is what an
  adversarial device does with just-unlinked tables;
- ``alloc``: the rest of the kernel allocates a page on a CPU, reusing what was freed there last.

Each candidate becomes a normal config whose only workload is one ``script`` source, with random
device traffic and background allocation off, so a run is exactly its events. Hypothesis draws the
candidates and, once one shows a violation, shrinks it (fewer events, smaller gaps, the config's
own knob values) into the counterexample ``hunt`` writes.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from explorer.api import SvaTopology
from explorer.units import format_duration

US = 1_000
MS = 1_000_000
MAX_EVENTS = 12
#: How many CPUs (and kernel slots of each level) the events use: few, so they collide.
SEARCH_CPUS = 2
SEARCH_SLOTS = 2
SCRIPT = "script"


@dataclass(frozen=True)
class Flavour:
    """One way a workload source of the config frees page tables."""

    source: str  # the config's source it stands for (a comment in the script)
    op: str  # "unlink" or "free-user"
    cpus: tuple[int, ...]
    context: str = "sleepable"
    marked: bool = True
    bootmem: bool = False
    level: int = 1
    max_count: int = 1
    cpu_flush: int = 0
    after_flush: int = 0

    def options(self) -> str:
        """The script options this flavour always carries (besides slot, cpu, count)."""
        out = []
        if self.context != "sleepable":
            out.append(f"context={self.context}")
        if self.op == "unlink":
            if not self.marked:
                out.append("marked=false")
            if self.bootmem:
                out.append("bootmem=true")
            if self.cpu_flush:
                out.append(f"cpu_flush={format_duration(self.cpu_flush)}")
            if self.after_flush:
                out.append(f"after_flush={format_duration(self.after_flush)}")
        return " ".join(out)


@dataclass
class Space:
    """Everything the search draws from, derived once from the base config."""

    base: dict[str, Any]
    flavours: list[Flavour]
    cpus: tuple[int, ...]
    slots: tuple[int, ...]
    iommus: int
    seeds: tuple[int, ...]
    workqueue_delays: tuple[int, ...]
    sva_mms: tuple[int, ...]
    gaps: tuple[int, ...]
    varied: list[str] = field(default_factory=list)


def _cpus_of(spec: Any, cpus: int) -> tuple[int, ...]:
    """A few CPUs a source's ``cpus`` spec allows (``all``, ``N``, ``A-B``)."""
    m = re.match(r"^\s*(?:all|(\d+)|(\d+)\s*-\s*(\d+))\s*$", str(spec or "all"))
    if not m or (m.group(1) is None and m.group(2) is None):
        return tuple(range(min(cpus, SEARCH_CPUS)))
    if m.group(1) is not None:
        return (int(m.group(1)) % cpus,)
    lo, hi = int(m.group(2)), min(int(m.group(3)), cpus - 1)
    return tuple(range(lo, hi + 1))[:SEARCH_CPUS] or (0,)


def _shares(share: float, *, not_when_all: bool) -> list[bool]:
    """The values a per-table flag takes for a share of the tables: ``[False]`` for none, ``[True]``
    for all, both in between. With ``not_when_all`` the flag is the complement (``marked`` from a
    share of *unmarked* tables)."""
    values = [False] if share <= 0 else [True] if share >= 1 else [False, True]
    return [not v for v in values] if not_when_all else values


def flavours_of(config: Mapping[str, Any]) -> list[Flavour]:
    """The ways the config's workload sources free tables (built-in sources by what they do; any
    other source as plain marked unlinks in both contexts)."""
    ncpus = int(config["kernel"]["cpus"])
    out: list[Flavour] = []
    for w in config.get("workload", []):
        name = w["name"]
        cpus = _cpus_of(w.get("cpus"), ncpus)
        burst = max(1, min(int(w.get("burst", 1) or 1), 4))
        # A share of unmarked tables (the 2026 finding): both kinds when some are and some are not.
        marks = _shares(float(w.get("unmarked", 0.0) or 0.0), not_when_all=True)
        context = "atomic" if w.get("atomic") is True else "sleepable"
        if name == "vmalloc-huge":
            out.append(Flavour(name, "unlink", cpus, context=context, cpu_flush=int(w.get("cpu_flush", 0))))
            if float(w.get("pud_fraction", 0.0)) > 0:
                out.append(Flavour(name, "unlink", cpus, context=context, level=2,
                                   cpu_flush=int(w.get("cpu_flush", 0))))
        elif name == "cpa-collapse":  # unlink, flush_tlb_all(), then free (a group of one per table here)
            for marked in marks:
                out.append(Flavour(name, "unlink", cpus, context=context, marked=marked, max_count=burst,
                                   cpu_flush=int(w.get("tlb_flush_all", 0))))
        elif name == "hot-remove":
            for bootmem in _shares(float(w.get("bootmem_fraction", 0.0)), not_when_all=False):
                for marked in marks:
                    out.append(Flavour(name, "unlink", cpus, context=context, marked=marked, bootmem=bootmem,
                                       max_count=burst, after_flush=int(w.get("tlb_flush_all", 0))))
        elif name == "user-teardown":
            out.append(Flavour(name, "free-user", cpus, context=context, max_count=burst))
        elif name in (SCRIPT, "kernel-tlb-flush"):
            continue  # a script's own events are not replayed (the generic flavours are); a flush frees nothing
        else:
            out.append(Flavour(name, "unlink", cpus, context=context, max_count=burst))
    if not any(f.op == "unlink" for f in out):  # nothing frees kernel tables: try the plain kernel paths
        allcpus = tuple(range(min(ncpus, SEARCH_CPUS)))
        out += [Flavour("kernel", "unlink", allcpus), Flavour("kernel", "unlink", allcpus, context="atomic")]
    # one of each: the same flavour twice (two sources alike) only makes the search slower
    seen: dict[tuple[Any, ...], Flavour] = {}
    for f in out:
        seen.setdefault((f.op, f.cpus, f.context, f.marked, f.bootmem, f.level, f.max_count), f)
    return list(seen.values())


def flush_estimate(config: Mapping[str, Any], registry: Any) -> int:
    """How long one kernel-range flush takes on this machine (all IOMMUs), from the IOMMU model."""
    io = config["iommu"]
    cls = registry.iommu_models.get(io["model"])
    if cls is None:
        return 0
    total = 0
    try:
        model = cls({**{p.name: p.canonical_default() for p in cls.params}, **io.get("params", {})})
        for i in range(int(io["count"])):
            topo = SvaTopology(int(io["sva_mms"]), int(io["pasids_per_mm"]), int(io["count"]), i)
            total += max(0, int(model.invalidate_kernel_range(0, topo).duration_ns))
    except Exception:  # the run itself reports a broken model, naming it
        return 0
    return total


def make_space(config: Mapping[str, Any], registry: Any) -> Space:
    base = copy.deepcopy(dict(config))
    k, io = base["kernel"], base["iommu"]
    ncpus, nslots = int(k["cpus"]), int(k["kernel_slots"])
    flavours = flavours_of(base)
    cpus = tuple(sorted({c for f in flavours for c in f.cpus} | set(range(min(ncpus, SEARCH_CPUS)))))
    slots = [s for s in range(nslots) if s % 32 != 31][:SEARCH_SLOTS]
    if any(f.level == 2 for f in flavours) and nslots > 31:
        slots.append(31)
    seed = int(base["run"]["seed"])
    wq = int(k["workqueue_delay"])
    mms = int(io["sva_mms"])
    sva_choices = [mms] + [m for m in (mms * 8, mms * 64) if 0 < m <= 100_000]
    wq_choices = [wq] + [d for d in (0, 1 * US, 100 * US, 1 * MS) if d != wq]
    flush = flush_estimate(base, registry)
    # The gaps between events: the scales at which the kernel's windows open and close (the
    # workqueue delay, one flush, several), then anything up to a few flushes.
    gaps = sorted({0, 1, 100, 1 * US, 5 * US, wq, wq + 1, flush // 2, flush, flush + wq, 2 * flush + wq,
                   50 * US, 200 * US, 1 * MS} - {-1})
    space = Space(
        base=base,
        flavours=flavours,
        cpus=cpus or (0,),
        slots=tuple(slots) or (0,),
        iommus=max(1, min(int(io["count"]), 2)),
        seeds=(seed, seed + 1, seed + 2, seed + 3),
        workqueue_delays=tuple(wq_choices),
        sva_mms=tuple(sva_choices),
        gaps=tuple(g for g in gaps if g >= 0),
    )
    space.varied = [
        "event times (gaps 0 to " + format_duration(max(space.gaps) * 2) + ")",
        "which CPU frees (" + ",".join(map(str, space.cpus)) + ")",
        "device probes of just-unlinked slots (" + ",".join(map(str, space.slots)) + f") on {space.iommus} IOMMU(s)",
        "page reuse (allocations) on each CPU",
        "sources: " + ", ".join(sorted({f.source for f in flavours})),
        "bursts" if any(f.max_count > 1 for f in flavours) else "",
        "run.seed",
        "kernel.workqueue_delay (" + ", ".join(format_duration(d) for d in space.workqueue_delays) + ")",
        "iommu.sva_mms: flush duration (" + ", ".join(map(str, space.sva_mms)) + ")",
    ]
    space.varied = [v for v in space.varied if v]
    return space


#: A probe's target or an allocation's CPU that refers to an unlink instead of naming a value:
#: the device aims at the table the next (or the last) unlink removes, the reuse happens on the CPU
#: that freed last. Adversarial by construction, and what keeps the search from waiting for chance.
NEXT, LAST = -1, -2


def candidates(space: Space) -> st.SearchStrategy[dict[str, Any]]:
    """The Hypothesis strategy of candidates; it shrinks to fewer events, smaller gaps, references
    rather than values, lower CPUs and slots, and the config's own knob values."""
    # Mostly the scales at which windows open and close, sometimes any time at all.
    scale = st.sampled_from(space.gaps)
    gap = st.one_of(scale, scale, scale, st.integers(0, max(space.gaps) * 2))
    slot = st.sampled_from(space.slots)
    target = st.sampled_from((NEXT, LAST, *space.slots))
    reuse_cpu = st.sampled_from((LAST, *space.cpus))

    @st.composite
    def event(draw: Any) -> tuple[Any, ...]:
        t = draw(gap)
        op = draw(st.sampled_from(("probe", "unlink", "alloc")))
        if op == "probe":
            return (t, "probe", draw(target), draw(st.integers(0, space.iommus - 1)))
        if op == "alloc":
            return (t, "alloc", draw(reuse_cpu))
        fl = draw(st.integers(0, len(space.flavours) - 1))
        f = space.flavours[fl]
        count = draw(st.integers(1, f.max_count)) if f.max_count > 1 else 1
        return (t, "unlink", fl, draw(st.sampled_from(f.cpus)), draw(slot), count)

    return st.fixed_dictionaries({
        "events": st.lists(event(), min_size=2, max_size=MAX_EVENTS),
        "seed": st.sampled_from(space.seeds),
        "workqueue_delay": st.sampled_from(space.workqueue_delays),
        "sva_mms": st.sampled_from(space.sva_mms),
    })


def _unlinked(space: Space, ev: tuple[Any, ...]) -> tuple[int, int]:
    """(CPU, the slot whose table it frees last) of an unlink event."""
    f = space.flavours[ev[2]]
    first = ev[4] if f.level == 1 or ev[4] == 31 else 31
    return ev[3], first + ev[5] - 1


def script_text(space: Space, events: Sequence[tuple[Any, ...]]) -> tuple[str, int]:
    """The ``script`` events of a candidate, one a line (references resolved to slots and CPUs);
    and the time of the last one (ns)."""
    frees = [(i, _unlinked(space, ev)) for i, ev in enumerate(events)
             if ev[1] == "unlink" and space.flavours[ev[2]].op == "unlink"]
    freeing_cpus = [(i, ev[3]) for i, ev in enumerate(events) if ev[1] == "unlink"]

    def slot_for(i: int, ref: int) -> int:
        if ref >= 0:
            return ref
        after = [s for j, (_, s) in frees if j > i]
        before = [s for j, (_, s) in frees if j < i]
        if ref == NEXT:
            return (after or before[-1:] or [space.slots[0]])[0]
        return (before[-1:] or after or [space.slots[0]])[0]

    def cpu_for(i: int, ref: int) -> int:
        if ref >= 0:
            return ref
        before = [c for j, c in freeing_cpus if j < i]
        return before[-1] if before else space.cpus[0]

    lines = []
    t = 0
    for i, ev in enumerate(events):
        t += ev[0]
        at = format_duration(t)
        if ev[1] == "probe":
            lines.append(f"{at} probe slot={slot_for(i, ev[2])} iommu={ev[3]}")
        elif ev[1] == "alloc":
            lines.append(f"{at} alloc cpu={cpu_for(i, ev[2])}")
        else:
            f = space.flavours[ev[2]]
            count = f" count={ev[5]}" if ev[5] > 1 else ""
            opts = f.options()
            tail = (f" {opts}" if opts else "") + f"  # as {f.source}"
            if f.op == "free-user":
                lines.append(f"{at} free-user cpu={ev[3]}{count}{tail}")
            else:
                _, last = _unlinked(space, ev)
                lines.append(f"{at} unlink slot={last - ev[5] + 1} cpu={ev[3]}{count}{tail}")
    return "\n".join(lines) + "\n", t


def candidate_config(space: Space, cand: Mapping[str, Any], script_version: str) -> dict[str, Any]:
    """The canonical config a candidate runs: the base with one ``script`` source and no random traffic."""
    cfg = copy.deepcopy(space.base)
    text, last = script_text(space, cand["events"])
    cfg["run"]["seed"] = int(cand["seed"])
    # The story ends with the last event: the workloads stop just after it (the run then drains).
    cfg["run"]["duration"] = last + 1 * US
    # Slow enough to watch in the TUI: the events play in about ten wall seconds.
    cfg["run"]["speed"] = float(max(1, (last + 1 * US) // US // 10))
    cfg["kernel"]["workqueue_delay"] = int(cand["workqueue_delay"])
    cfg["kernel"]["background_alloc_rate"] = 0.0
    cfg["iommu"]["sva_mms"] = int(cand["sva_mms"])
    cfg["iommu"]["walk_rate"] = 0.0
    cfg["iommu"]["probe_rate"] = 0.0
    cfg["workload"] = [{"name": SCRIPT, "events": text}]
    plugins = {n: v for n, v in cfg.get("plugins", {}).items()
               if n in (cfg["strategy"]["name"], cfg["iommu"]["model"])}
    plugins[SCRIPT] = script_version
    cfg["plugins"] = plugins
    return cfg
