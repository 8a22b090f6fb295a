"""Scenarios: the kernel's history of this bug as named preset configs (kernel-model.md, section 6).

Every chapter runs the same demo load (``DEMO_LOAD``: each kernel source far busier than the
sources' own defaults, which stand for a quiet kernel; assumed rates), so that a short run shows its
outcome. Each chapter but ``linux-6.19`` (which keeps the default device) uses the same worst-case
device: one that probes kernel addresses at 200000/s per IOMMU and
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


#: The load of the history chapters: every kernel source far busier than a quiet kernel (the
#: source defaults), so that a 20 ms run shows each chapter's outcome. Rates ASSUMED, not measured.
DEMO_LOAD = {"vmalloc": {"rate": "5000/s"}, "cpa": {"rate": "500/s"}, "hot": {"rate": "20/s"}}


def _demo(vmalloc=None, cpa=None, hot=None, user=None):
    """The four sources at the demo load, with the given settings on top."""
    return _mix(
        vmalloc={**DEMO_LOAD["vmalloc"], **(vmalloc or {})},
        cpa={**DEMO_LOAD["cpa"], **(cpa or {})},
        hot={**DEMO_LOAD["hot"], **(hot or {})},
        user=user,
    )


LINUX_6_19 = Scenario(
    name="linux-6.19",
    version="2.0",
    description="Linux 6.19 as merged (x86_64, IOMMU_SVA=y, ASYNC_KERNEL_PGTABLE_FREE=y; backported to "
    "6.18.7): kernel page tables are marked at allocation, queued by pagetable_free(), and the worker "
    "flushes the IOMMUs once per batch before freeing them. The demo load (every source busier than "
    "its quiet default; assumed rates). This is the default config.",
    expected="No walk into a reused page; at most one flush per worker run, and fewer flushes than "
    "kernel tables freed.",
    config={"strategy": {"name": "deferred"}, "workload": _demo()},
    expect={
        "violations.unflushed_free": "zero",
        "violations.use_after_free": "zero",
        "violations.stale_walk_free": "zero",
        "violations.sleep_in_atomic": "zero",
        "worker_runs": ">= flushes",
        "flushes": "< kernel_tables_freed",
    },
)

BEFORE_FIX = Scenario(
    name="before-fix",
    version="2.0",
    description="Linux <= 6.18.3: kernel page tables go straight back to the page allocator and no "
    "IOMMU is told; a device that probes kernel addresses keeps cached pointers to them (the hole "
    "CVE-2025-71202 names, fixed by the deferred-free series). The demo load, with hot-remove at "
    "200 bursts/s so that every kernel source shows the hole in a short run.",
    expected="Use-after-free from every source that frees kernel tables (vmalloc-huge, cpa-collapse, "
    "hot-remove), never from user-teardown; no IOMMU flush at all.",
    config={
        "strategy": {"name": "sync-unsafe"},
        "iommu": dict(ADVERSARIAL_DEVICE),
        "workload": _demo(hot={"rate": "200/s"}),
    },
    expect={
        "violations.unflushed_free": "nonzero",
        "violations.use_after_free": "nonzero",
        "violations.use_after_free.by_source.vmalloc-huge": "nonzero",
        "violations.use_after_free.by_source.cpa-collapse": "nonzero",
        "violations.use_after_free.by_source.hot-remove": "nonzero",
        "violations.use_after_free.by_source.user-teardown": "zero",
        "flushes": "zero",
    },
)

SVA_DISABLED_X86 = Scenario(
    name="sva-disabled-x86",
    version="1.0",
    description="Linux 6.18.4 - 6.18.6: the interim fix 'iommu: disable SVA when CONFIG_X86 is set' "
    "(72f98ef9a4be; CVE-2025-71089 appears to name it, check before citing) makes "
    "iommu_sva_bind_device() fail with -EOPNOTSUPP on x86 (kernel.sva_x86_disabled). Kernel tables are "
    "still freed at once (no deferred free yet), but no mm is ever SVA-bound, so no device walks the "
    "kernel half through a PASID. The demo load and the worst-case device, as in before-fix.",
    expected="No hazard and no flush: no SVA mm is bound, so no stale walk of any kind and zero IOMMU "
    "flushes; devices that need SVA lose it.",
    config={
        "strategy": {"name": "sync-unsafe"},
        "kernel": {"sva_x86_disabled": True},
        "iommu": dict(ADVERSARIAL_DEVICE),
        "workload": _demo(hot={"rate": "200/s"}),
    },
    expect={
        "violations.unflushed_free": "zero",
        "sva_bound_mms": "zero",
        "violations.use_after_free": "zero",
        "violations.stale_walk_free": "zero",
        "stale_walk_queued": "zero",
        "flushes": "zero",
        "kernel_tables_freed": "nonzero",
    },
)

V3_DESIGN = Scenario(
    name="v3-design",
    version="2.0",
    description="v3 of the series: flush_tlb_kernel_range() / flush_tlb_all() each allocate a work item "
    "(kzalloc(GFP_ATOMIC), silently dropped on failure) that flushes the IOMMUs later; nothing "
    "coalesces, and every kernel TLB flush triggers one, even when no table is freed (kernel-tlb-flush "
    "at 1000/s); the table itself is freed at once (strategy v3-flush-deferred). Dave Hansen's "
    "review: the page can be handed out again before the worker's flush. A loaded system: the kworker "
    "starts 500us after schedule_work().",
    expected="Use-after-free although every kernel TLB flush is followed by an IOMMU flush: at least one "
    "IOMMU flush per flush_tlb_kernel_range()/flush_tlb_all() call, and the page is reused in the window "
    "before it.",
    config={
        "strategy": {"name": "v3-flush-deferred"},
        "kernel": {"workqueue_delay": "500us"},
        "iommu": dict(ADVERSARIAL_DEVICE),
        "workload": [*_demo(), {"name": "kernel-tlb-flush"}],
    },
    expect={
        "violations.unflushed_free": "nonzero",
        "violations.use_after_free": "nonzero", "flushes": ">= kernel_tlb_flushes"},
)

CPA_UNMARKED = Scenario(
    name="cpa-unmarked-2026",
    version="2.0",
    description="Linux 6.19 as the code reads (found by reading the code; no public report): the PTE "
    "tables that cpa_collapse_large_pages() frees (BPF JIT / execmem, set_memory_rox) were allocated by "
    "split_large_page() with alloc_pages(), never marked kernel (ptdesc_set_kernel), so pagetable_free() "
    "sends them straight to the allocator, after the collapse's flush_tlb_all() but with no IOMMU flush. "
    "A BPF-heavy mix: CPA collapses at 2000/s with every table unmarked (cpa-collapse unmarked = 1).",
    expected="Use-after-free even with the 6.19 strategy, and only from cpa-collapse; the marked "
    "sources stay safe.",
    config={
        "strategy": {"name": "deferred"},
        "iommu": dict(ADVERSARIAL_DEVICE),
        "workload": _demo(vmalloc={"rate": "200/s"}, cpa={"rate": "2000/s", "unmarked": 1.0}),
    },
    expect={"violations.unflushed_free": "nonzero", "violations.use_after_free": "nonzero"},
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
    expect={
        "violations.unflushed_free": "nonzero",
        "violations.use_after_free": "nonzero", "bypassed_pagetable_free": "nonzero"},
    only_source="hot-remove",
)

SYNC_IN_ATOMIC = Scenario(
    name="sync-in-atomic",
    version="2.0",
    description="v1 of the series took the iommu_sva_lock mutex inside flush_tlb_kernel_range(); v2's "
    "changelog replaced it with a spinlock \"to make the interface usable in the critical regions\". "
    "Modelled as the flush inline in the free path (strategy sync). The atomic caller is ASSUMED: we "
    "found no caller of flush_tlb_kernel_range() under a spinlock on x86_64 (x86_32's "
    "flush_all_zero_pkmaps() under kmap_lock is one, but SVA is x86_64 only), so a second vmalloc-huge "
    "source with atomic = true (vmalloc-huge#1, 1000/s) stands for it. CPA collapse is process context "
    "and is not a culprit.",
    expected='"BUG: sleeping function called from invalid context", only from the assumed atomic caller '
    "(vmalloc-huge#1); no use-after-free (every table is flushed before it is freed), one flush per "
    "kernel table.",
    config={
        "strategy": {"name": "sync"},
        "iommu": dict(ADVERSARIAL_DEVICE),
        "workload": [*_demo(), {"name": "vmalloc-huge", "rate": "1000/s", "atomic": True}],
    },
    expect={
        "violations.unflushed_free": "zero",
        "violations.sleep_in_atomic": "nonzero", "violations.use_after_free": "zero",
        "flushes": "== kernel_tables_freed", "worker_runs": "zero"},
    only_source="vmalloc-huge#1",
)

NFT_VMALLOC_STORM = Scenario(
    name="nft-vmalloc-storm",
    version="1.0",
    description="Linux 6.19 under a huge-vmalloc storm, the path syzbot reached through nf_tables: an "
    "unprivileged loop that creates and deletes large sets makes kvmalloc() install huge mappings over "
    "ranges that still have PTE tables (vmap_try_huge_pmd -> pmd_free_pte_page). Rate ASSUMED: 20000/s "
    "(a tight loop; no measurement found). Every tenth event is a 1 GiB mapping whose "
    "pud_free_pmd_page() frees a PMD table and 64 PTE tables (assumed); 4096 kernel slots.",
    expected="No use-after-free; the worker batches: fewer flushes than kernel tables freed.",
    config={
        "strategy": {"name": "deferred"},
        "kernel": {"kernel_slots": 4096, "pages": 32768},
        "iommu": dict(ADVERSARIAL_DEVICE),
        "workload": _mix(vmalloc={"rate": "20000/s", "pud_fraction": 0.1, "pud_ptes": 64}),
    },
    expect={"violations.use_after_free": "zero", "flushes": "nonzero",
            "kernel_tables_freed": "> flushes"},
)

BPF_JIT_BURST = Scenario(
    name="bpf-jit-burst",
    version="1.0",
    description="Linux 6.19 while BPF programs are loaded in a burst: every set_memory_rox() of a JIT "
    "image may collapse the direct map back to large pages (cpa_collapse_large_pages: process "
    "context, flush_tlb_all(), then the tables are freed). Rate ASSUMED: 5000 collapses/s of 4 tables "
    "each. The tables are taken as marked (cpa-collapse unmarked = 0, the series' intent); with the "
    "code's unmarked tables see cpa-unmarked-2026.",
    expected="No use-after-free; fewer flushes than kernel tables freed.",
    config={
        "strategy": {"name": "deferred"},
        "iommu": dict(ADVERSARIAL_DEVICE),
        "workload": _mix(cpa={"rate": "5000/s", "burst": 4}),
    },
    expect={"violations.use_after_free": "zero", "flushes": "nonzero",
            "kernel_tables_freed": "> flushes"},
)

DIMM_HOT_REMOVE = Scenario(
    name="dimm-hot-remove",
    version="1.0",
    description="Linux 6.19 while DIMMs are hot-removed: remove_pagetable() frees the page tables of the "
    "removed range as it walks (here 1024 PTE tables a removal, 2 GiB mapped at 4 KiB; assumed), then "
    "flush_tlb_all(). Rate ASSUMED: 200 removals/s, a storm (real systems remove a DIMM rarely). With "
    "the default voluntary preemption the kworker cannot run before remove_pagetable() leaves its CPU, "
    "so each removal is flushed in one batch (try kernel.preemption = \"full\").",
    expected="No use-after-free; each removal's 1024 tables wait together for one batch (queue peak at "
    "least 1024), so far fewer flushes than kernel tables freed.",
    config={
        "strategy": {"name": "deferred"},
        "kernel": {"kernel_slots": 4096, "pages": 32768},
        "iommu": dict(ADVERSARIAL_DEVICE),
        "workload": _mix(hot={"rate": "200/s", "burst": 1024}),
    },
    expect={"violations.use_after_free": "zero", "flushes": "nonzero",
            "kernel_tables_freed": "> flushes", "queue.peak": ">= 1024"},
)


@hookimpl
def register_scenarios(register):
    register(LINUX_6_19)
    register(BEFORE_FIX)
    register(SVA_DISABLED_X86)
    register(V3_DESIGN)
    register(CPA_UNMARKED)
    register(HOTREMOVE_BOOTMEM)
    register(SYNC_IN_ATOMIC)
    register(NFT_VMALLOC_STORM)
    register(BPF_JIT_BURST)
    register(DIMM_HOT_REMOVE)
