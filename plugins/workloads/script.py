"""``script``: a workload of exact, timed events instead of random streams.

Each event is one line (or separated by ``;``): a time, an operation and ``key=value`` options::

    0us   probe   slot=3 iommu=0          # a device caches a pointer to slot 3's table
    10us  unlink  slot=3 cpu=1            # vmalloc-style unlink + pagetable_free() on CPU 1
    12us  alloc   cpu=1                   # the rest of the kernel allocates a page on CPU 1
    15us  probe   slot=3 iommu=0          # the device follows its cached pointer

Nothing is drawn at random, so a script replays exactly: the same events at the same times with
the same outcome, whatever the seed. ``pgtable-explorer hunt`` writes its counterexamples as
scripts; users write them as regression tests (docs/config.md, "The script source").
"""

from __future__ import annotations

import difflib
from typing import Any

from explorer.api import Param, ParamError, WorkloadSource, hookimpl, parse_duration

#: operation -> {option: (type, default)}; types: int, bool, duration, context, level
OPS: dict[str, dict[str, tuple[str, Any]]] = {
    "unlink": {
        "slot": ("int", None), "level": ("level", None), "count": ("int", 1), "cpu": ("int", 0),
        "context": ("context", "sleepable"), "marked": ("bool", True), "bootmem": ("bool", False),
        "still_linked": ("bool", False), "cpu_flush": ("duration", 0), "after_flush": ("duration", 0),
    },
    "free-user": {"count": ("int", 1), "cpu": ("int", 0), "context": ("context", "sleepable")},
    "probe": {"slot": ("int", None), "iommu": ("int", 0), "mm": ("int", 0)},
    "alloc": {"cpu": ("int", 0), "count": ("int", 1)},
}
CONTEXTS = ("sleepable", "atomic")
MAX_COUNT = 100_000

HELP = (
    "Exact timed events, one a line (or ';'-separated): 'TIME OP KEY=VALUE ...'. OPs: "
    "unlink (slot=N or level=1|2, count, cpu, context=sleepable|atomic, marked, bootmem, still_linked, "
    "cpu_flush, after_flush): unlink kernel tables and free them through pagetable_free(); "
    "free-user (count, cpu, context); probe (slot=N, iommu, mm): a device walks a kernel slot; "
    "alloc (cpu, count): data pages allocated on a CPU (reuses what was freed there last). "
    "No randomness: a script replays exactly."
)


def _did_you_mean(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _value(kind: str, text: str) -> Any:
    if kind == "int":
        try:
            n = int(text.replace("_", ""))
        except ValueError:
            raise ValueError(f"expected a whole number, got {text!r}") from None
        if n < 0:
            raise ValueError(f"expected a number >= 0, got {n}")
        return n
    if kind == "bool":
        words = {"true": True, "yes": True, "y": True, "1": True, "false": False, "no": False, "n": False, "0": False}
        if text.lower() not in words:
            raise ValueError(f"expected true or false, got {text!r}")
        return words[text.lower()]
    if kind == "duration":
        return parse_duration(text)
    if kind == "context":
        if text not in CONTEXTS:
            raise ValueError(f"expected one of {', '.join(CONTEXTS)}; got {text!r}")
        return text
    if kind == "level":
        if text not in ("1", "2"):
            raise ValueError(f"expected 1 (a PTE table) or 2 (a PMD table), got {text!r}")
        return int(text)
    raise AssertionError(kind)  # pragma: no cover - a declaration bug


def _lines(text: str) -> list[str]:
    out = []
    for raw in text.replace(";", "\n").split("\n"):
        line = raw.split("#", 1)[0].strip()
        if line:
            out.append(line)
    return out


def parse_events(text: str) -> list[dict[str, Any]]:
    """The events of a script, in the order they run (by time; equal times as written).

    Each is ``{"n": its number (1-based, as written), "text", "at" (ns), "op", options...}``.
    Raises :class:`ParamError` naming the event, the key and what is valid.
    """
    events = []
    for n, line in enumerate(_lines(text), 1):
        where = f"event {n} ({line!r})"
        words = line.split()
        if len(words) < 2:
            raise ParamError(f"{where}: expected 'TIME OP KEY=VALUE ...', e.g. '10us unlink slot=3 cpu=1'; "
                             f"operations: {', '.join(OPS)}")
        try:
            at = parse_duration(words[0])
        except Exception as exc:
            raise ParamError(f"{where}: the time: {exc}") from None
        op = words[1]
        if op not in OPS:
            raise ParamError(f"{where}: unknown operation {op!r}{_did_you_mean(op, OPS)}; valid: {', '.join(OPS)}")
        spec = OPS[op]
        ev: dict[str, Any] = {"n": n, "text": line, "at": at, "op": op}
        ev.update({k: default for k, (_, default) in spec.items()})
        seen = set()
        for word in words[2:]:
            key, eq, val = word.partition("=")
            if not eq or not key or not val:
                raise ParamError(f"{where}: expected KEY=VALUE, got {word!r}; keys of {op}: {', '.join(spec)}")
            if key not in spec:
                raise ParamError(f"{where}: unknown key {key!r} for {op}{_did_you_mean(key, spec)}; "
                                 f"valid: {', '.join(spec)}")
            if key in seen:
                raise ParamError(f"{where}: {key} is given twice")
            seen.add(key)
            try:
                ev[key] = _value(spec[key][0], val)
            except Exception as exc:
                raise ParamError(f"{where}: {key}: {exc}") from None
        if "count" in ev and not 1 <= ev["count"] <= MAX_COUNT:
            raise ParamError(f"{where}: count: expected 1 to {MAX_COUNT}, got {ev['count']}")
        if op == "probe" and ev["slot"] is None:
            raise ParamError(f"{where}: a probe needs slot=N (the kernel slot the device walks)")
        if op == "unlink" and ev["slot"] is not None and ev["level"] is not None:
            raise ParamError(f"{where}: give slot=N (that slot's table) or level=1|2 (the lowest linked slots "
                             "of that level), not both")
        events.append(ev)
    events.sort(key=lambda e: e["at"])  # stable: equal times run as written
    return events


def _check_events(text: str) -> str:
    parse_events(text)
    return text  # kept as written: the TOML round trip is exact


class Script(WorkloadSource):
    name = "script"
    version = "1.0"
    help = HELP
    params = (
        Param("events", "str", "", check=_check_events,
              help="The events, one a line: 'TIME OP KEY=VALUE ...' (see the source's help and "
                   "docs/config.md). Empty: no events."),
    )

    @classmethod
    def check_machine(cls, params: Any, machine: Any) -> list[tuple[str, str]]:
        problems = []
        cpus, slots = machine["cpus"], machine["kernel_slots"]
        for ev in parse_events(params.get("events", "")):
            where = f"event {ev['n']} ({ev['text']!r})"
            if "cpu" in ev and ev["cpu"] >= cpus:
                problems.append(("events", f"{where}: CPU {ev['cpu']} does not exist: kernel.cpus is {cpus} "
                                           f"(CPUs 0-{cpus - 1})"))
            if ev.get("slot") is not None:
                last = ev["slot"] + (ev.get("count", 1) - 1 if ev["op"] == "unlink" else 0)
                if last >= slots:
                    problems.append(("events", f"{where}: slot {last} does not exist: kernel.kernel_slots is "
                                               f"{slots} (slots 0-{slots - 1})"))
            if ev["op"] == "probe":
                if ev["iommu"] >= max(1, machine["iommus"]):
                    problems.append(("events", f"{where}: IOMMU {ev['iommu']} does not exist: iommu.count is "
                                               f"{machine['iommus']}"))
                if ev["mm"] >= max(1, machine["sva_mms"]):
                    problems.append(("events", f"{where}: mm {ev['mm']} is not bound: iommu.sva_mms is "
                                               f"{machine['sva_mms']}"))
        return problems

    def process(self, w):
        # Every event, even one at 0s, happens once the run is under way (after a trace is attached).
        yield 0
        for ev in parse_events(self.values["events"]):
            if ev["at"] > w.now:
                yield ev["at"] - w.now
            op = ev["op"]
            if op == "probe":
                w.device_probe(ev["iommu"], ev["slot"], ev["mm"])
            elif op == "alloc":
                w.alloc_pages(ev["cpu"], ev["count"])
            elif op == "free-user":
                w.spawn(w.free_user_tables(ev["count"], cpu=ev["cpu"], atomic=ev["context"] == "atomic"))
            else:
                w.spawn(self._unlink(w, ev))

    @staticmethod
    def _unlink(w, ev):
        slot = ev["slot"]
        if slot is None:  # the lowest linked slots of the level, at the time of the event
            linked = w.linked_slots(ev["level"] or 1)
            chosen = linked[: ev["count"]]
        else:
            chosen = [slot + i for i in range(ev["count"])]
        opts = dict(atomic=ev["context"] == "atomic", marked=ev["marked"], via_pagetable_free=not ev["bootmem"],
                    cpu_flush_ns=ev["cpu_flush"], unlink=not ev["still_linked"])
        for i, s in enumerate(chosen):
            last = i == len(chosen) - 1
            yield from w.free_kernel_tables(1, cpu=ev["cpu"], slot=s, after_flush_ns=ev["after_flush"] if last else 0,
                                            **opts)


@hookimpl
def register_workloads(register):
    register(Script)
