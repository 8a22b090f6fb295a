"""Scenarios: the kernel's history of this bug as named preset configs (kernel-model.md, section 6).

Each chapter but ``linux-6.19`` (which is also the default config, so it keeps the default device)
uses the same worst-case device: one that probes kernel addresses at 200000/s per IOMMU and
re-probes the slots whose tables were recently unlinked (``probe_target = "adversarial"``), the
device a security reviewer asks about. With it the unsafe chapters show their use-after-free in a
few milliseconds of simulated time, and the safe ones show that even this device finds nothing.
See docs/scenarios.md for the history and the reasoning behind every number.
"""

from explorer.api import Scenario, hookimpl

#: The worst-case device of every chapter (kernel-model.md, section 8).
ADVERSARIAL_DEVICE = {"probe_target": "adversarial", "probe_rate": "200000/s"}


def _mix(vmalloc=None, cpa=None, hot=None, user=None):
    """The four standard workload sources, each with its defaults unless given."""
    return [
        {"name": "vmalloc-huge", **(vmalloc or {})},
        {"name": "cpa-collapse", **(cpa or {})},
        {"name": "hot-remove", **(hot or {})},
        {"name": "user-teardown", **(user or {})},
    ]


LINUX_6_19 = Scenario(
    name="linux-6.19",
    version="1.0",
    description="Linux 6.19 as merged (x86_64, IOMMU_SVA=y, ASYNC_KERNEL_PGTABLE_FREE=y; backported to "
    "6.18.7): kernel page tables are marked at allocation, queued by pagetable_free(), and the worker "
    "flushes the IOMMUs once per batch before freeing them.",
    expected="No walk into a reused page; fewer flushes than kernel tables freed.",
    config={"strategy": {"name": "deferred"}},
    expect={"violations.use_after_free": "zero", "violations.sleep_in_atomic": "zero"},
)

BEFORE_FIX = Scenario(
    name="before-fix",
    version="1.1",
    description="Linux <= 6.18.3: kernel page tables go straight back to the page allocator and no "
    "IOMMU is told; a device that probes kernel addresses keeps cached pointers to them "
    "(CVE-2025-71089).",
    expected="Use-after-free: device walks through stale cache entries into reused pages, from every "
    "source that frees kernel tables (never from user-teardown); no IOMMU flush at all.",
    config={"strategy": {"name": "sync-unsafe"}, "iommu": dict(ADVERSARIAL_DEVICE)},
    expect={"violations.use_after_free": "nonzero", "flushes": "zero"},
)

V3_DESIGN = Scenario(
    name="v3-design",
    version="1.0",
    description="v3 of the series: the IOMMU flush moves to a work item (so it may take the mutex) but "
    "the page is freed at once (strategy v3-flush-deferred). Dave Hansen's review: the page can be "
    "handed out again before the worker's flush. A loaded system: the kworker starts 500us after "
    "schedule_work().",
    expected="Use-after-free although every free is followed by a flush: the page is reused in the "
    "window between the free and the worker's flush.",
    config={
        "strategy": {"name": "v3-flush-deferred"},
        "kernel": {"workqueue_delay": "500us"},
        "iommu": dict(ADVERSARIAL_DEVICE),
    },
    expect={"violations.use_after_free": "nonzero", "flushes": "nonzero"},
)

CPA_UNMARKED = Scenario(
    name="cpa-unmarked-2026",
    version="1.0",
    description="Linux 6.19 with the 2026 finding: page tables allocated by CPA splits are never marked "
    "kernel (ptdesc_set_kernel), so when cpa_collapse_large_pages() frees them (BPF JIT / execmem, "
    "set_memory_rox) pagetable_free() sends them straight to the allocator with no IOMMU flush. "
    "A BPF-heavy mix: CPA collapses at 2000/s, huge vmalloc at 200/s.",
    expected="Use-after-free even with the 6.19 strategy, and only from cpa-collapse; the marked "
    "sources stay safe.",
    config={
        "strategy": {"name": "deferred"},
        "iommu": dict(ADVERSARIAL_DEVICE),
        "workload": _mix(vmalloc={"rate": "200/s"}, cpa={"rate": "2000/s", "marked": False}),
    },
    expect={"violations.use_after_free": "nonzero"},
    only_source="cpa-collapse",
)

HOTREMOVE_BOOTMEM = Scenario(
    name="hotremove-bootmem",
    version="1.0",
    description="Linux 6.19, memory hot-remove of memory whose page tables came from bootmem: "
    "free_pagetable() hands those pages back without pagetable_free(), so they get no IOMMU flush "
    "(the accepted hole: rare, needs root). Bursts of 2048 tables, many more than usual so a short "
    "run sees several; 4096 kernel slots so a burst never runs out of tables.",
    expected="Use-after-free only from hot-remove; vmalloc and CPA frees stay safe.",
    config={
        "strategy": {"name": "deferred"},
        "kernel": {"kernel_slots": 4096, "pages": 32768},
        "iommu": dict(ADVERSARIAL_DEVICE),
        "workload": _mix(
            vmalloc={"rate": "100/s"},
            cpa={"rate": "100/s"},
            hot={"rate": "200/s", "burst": 2048, "bootmem_fraction": 1.0},
        ),
    },
    expect={"violations.use_after_free": "nonzero", "bypassed_pagetable_free": "nonzero"},
    only_source="hot-remove",
)

SYNC_IN_ATOMIC = Scenario(
    name="sync-in-atomic",
    version="1.0",
    description="v1 of the series: flush the IOMMUs and free inline in pagetable_free_kernel() "
    "(strategy sync). iommu_sva_invalidate_kva_range() takes the iommu_sva_lock mutex, and "
    "cpa_collapse_large_pages() frees under the cpa_lock spinlock.",
    expected='"BUG: sleeping function called from invalid context", only from cpa-collapse; no '
    "use-after-free (every table is flushed before it is freed), one flush per table.",
    config={"strategy": {"name": "sync"}, "iommu": dict(ADVERSARIAL_DEVICE)},
    expect={"violations.sleep_in_atomic": "nonzero", "violations.use_after_free": "zero"},
    only_source="cpa-collapse",
)


@hookimpl
def register_scenarios(register):
    register(LINUX_6_19)
    register(BEFORE_FIX)
    register(V3_DESIGN)
    register(CPA_UNMARKED)
    register(HOTREMOVE_BOOTMEM)
    register(SYNC_IN_ATOMIC)
