"""The violation kinds the checker reports, and the safety verdict built on them.

One list, read by every face: the checker's counters (``explorer.sim.checker``), the CLI's run and
compare tables, the TUI's Violations tab and Compare screen, sweep summaries. A kind added here
shows up everywhere; see docs/checker.md for what each one means.

A run (or a compare column, or a sweep point) is *safe* when no violation of any kind was
recorded. Safety is a verdict on the whole run: a variant with a violation never collects a "best"
mark, however few flushes it issued.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple


class ViolationKind(NamedTuple):
    """One kind of violation: its key in ``metrics.violations`` and how each face names it."""

    name: str
    #: the full label (the TUI's Violations tab)
    label: str
    #: a short label (counters, narrow tables)
    short: str
    #: one line saying what it means (the CLI's run table, next to a zero)
    help: str


#: Every kind, in the order the faces list them: the invariant first (found at every free, no
#: device needed), then what a device actually did, then the kernel bugs.
KINDS: tuple[ViolationKind, ...] = (
    ViolationKind("unflushed_free", "unflushed free (freed before the flush)",
                  "unflushed free", "a kernel table freed before every IOMMU's invalidation covered it"),
    ViolationKind("use_after_free", "use-after-free (walk into a reused page)", "use-after-free",
                  "device walked through a stale entry into a reused page"),
    ViolationKind("stale_walk_free", "stale walk into a free page", "stale walk, free page",
                  "device walked into a page already back in the allocator"),
    ViolationKind("double_free", "double free", "double free", "a table freed twice"),
    ViolationKind("freed_while_linked", "freed while still linked", "freed while linked",
                  "a table freed while still reachable"),
    ViolationKind("leaked", "leaked (never freed)", "leaked", "a table never freed by the end of the run"),
    ViolationKind("sleep_in_atomic", "sleeping function called from invalid context", "sleep in atomic",
                  "a sleeping call in atomic context"),
)

#: The kinds' names, in order (the keys of ``metrics.violations``).
NAMES: tuple[str, ...] = tuple(k.name for k in KINDS)
BY_NAME: dict[str, ViolationKind] = {k.name: k for k in KINDS}
#: The kinds about memory safety (a table freed too early or wrongly, a walk into a freed page):
#: what ``hunt --kind any`` looks for. A leak and a sleep in atomic context are bugs of another sort.
MEMORY_SAFETY: tuple[str, ...] = tuple(n for n in NAMES if n not in ("leaked", "sleep_in_atomic"))


def total(entry: Any) -> int:
    """The count of one ``metrics.violations`` entry (``{"total": n, ...}`` or a plain number)."""
    if isinstance(entry, Mapping):
        entry = entry.get("total", 0)
    return int(entry) if isinstance(entry, (int, float)) and not isinstance(entry, bool) else 0


def unsafe_reasons(metrics: Mapping[str, Any] | None) -> list[str]:
    """Why a run is unsafe: ``"unflushed_free 12"`` for each kind with a non-zero count, in the
    order of :data:`KINDS` (then any kind a newer checker added); empty when it is safe."""
    v = (metrics or {}).get("violations")
    if not isinstance(v, Mapping):
        return []
    names = [*NAMES, *sorted(k for k in v if k not in BY_NAME)]
    return [f"{name} {total(v[name])}" for name in names if name in v and total(v[name])]


def is_safe(metrics: Mapping[str, Any] | None) -> bool:
    """No violation of any kind (a run with no metrics yet has none either: ask :func:`unsafe_reasons`)."""
    return not unsafe_reasons(metrics)


def flat_unsafe_reasons(record: Mapping[str, Any]) -> list[str]:
    """:func:`unsafe_reasons` of a flattened record (a sweep row: ``violations.KIND.total`` columns)."""
    out = []
    for key, value in record.items():
        if key.startswith("violations.") and key.endswith(".total") and key.count(".") == 2:
            n = total(value)
            if n:
                out.append((key.split(".")[1], n))
    order = {name: i for i, name in enumerate(NAMES)}
    out.sort(key=lambda kv: (order.get(kv[0], len(order)), kv[0]))
    return [f"{name} {n}" for name, n in out]


def workload_differences(columns: Sequence[Mapping[str, Any] | None]) -> dict[str, list[int]]:
    """Sources whose unlinked tables differ between the columns' metrics: ``{source: [n per
    column]}`` (empty when every column saw the same unlinks, or fewer than two have metrics).

    Every column of a compare draws the same arrivals from the same seed, but a strategy that blocks
    its callers (``sync``: the caller waits for the flush) delays what each source does next, so a
    run of the same length can unlink fewer tables: then the columns are not comparable one to one.
    """
    have = [c for c in columns if c]
    if len(have) < 2:
        return {}
    per = [((c.get("unlinked_by_source") or {}).get("by_source") or {}) for c in columns if c]
    sources = sorted({s for p in per for s in p})
    out = {}
    for s in sources:
        counts = [int(p.get(s, 0)) for p in per]
        if len(set(counts)) > 1:
            out[s] = counts
    return out


def describe_differences(diff: Mapping[str, Iterable[int]], labels: Sequence[str] = ()) -> str:
    """``vmalloc-huge 512/498, cpa-collapse 40/38`` (the counts in column order), or with the
    columns' ``labels`` ``vmalloc-huge: deferred 512, sync 498; cpa-collapse: ...``."""
    if labels:
        return "; ".join(f"{s}: " + ", ".join(f"{label} {n}" for label, n in zip(labels, counts, strict=False))
                         for s, counts in diff.items())
    return ", ".join(f"{s} {'/'.join(str(n) for n in counts)}" for s, counts in diff.items())
