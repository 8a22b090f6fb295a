"""Scenarios: Linux 6.19 on each vendor's IOMMU, and a machine with hundreds of SVA-bound mms.

See docs/scenarios.md and docs/iommu-models.md.
"""

from explorer.api import Scenario, hookimpl

#: The worst-case device (the same as in the history scenarios).
ADVERSARIAL_DEVICE = {"probe_target": "adversarial", "probe_rate": "200000/s"}

#: The demo load of the history scenarios (history.DEMO_LOAD; assumed rates).
DEMO_WORKLOAD = [
    {"name": "vmalloc-huge", "rate": "5000/s"},
    {"name": "cpa-collapse", "rate": "500/s"},
    {"name": "hot-remove", "rate": "20/s"},
    {"name": "user-teardown"},
]

LINUX_6_19_AMD = Scenario(
    name="linux-6.19-amd",
    version="1.1",
    description="Linux 6.19 on an AMD-Vi IOMMU (x86_64): the worker's flush reaches every SVA-bound mm "
    "through its notifier, which issues INVALIDATE_IOMMU_PAGES (build_inv_address: a 2^47-byte range "
    "over the kernel half, user entries kept), INVALIDATE_IOTLB_PAGES and a COMPLETION_WAIT per "
    "PASID, each wait polled with udelay(1).",
    expected="No walk into a reused page; every flush sends one INVALIDATE_IOMMU_PAGES, one "
    "INVALIDATE_IOTLB_PAGES and one COMPLETION_WAIT per bound mm and PASID: as many of each.",
    config={"strategy": {"name": "deferred"}, "iommu": {"model": "amd-vi", **ADVERSARIAL_DEVICE},
            "workload": DEMO_WORKLOAD},
    expect={"violations.unflushed_free": "zero", "violations.use_after_free": "zero", "flushes": "nonzero",
            "iommu_commands.COMPLETION_WAIT": "== iommu_commands.INVALIDATE_IOMMU_PAGES",
            "iommu_commands.INVALIDATE_IOTLB_PAGES": "== iommu_commands.INVALIDATE_IOMMU_PAGES"},
)

LINUX_6_19_SMMUV3 = Scenario(
    name="linux-6.19-smmuv3",
    version="1.0",
    description="Linux 6.19 on arm64 with SMMUv3: ASYNC_KERNEL_PGTABLE_FREE is not selected, so "
    "kernel page tables are freed at once and no kernel-range flush ever happens. The SVA context "
    "descriptor sets EPD1: the SMMU never walks the kernel half (TTBR1), so it never caches a "
    "pointer to a kernel table.",
    expected="Safe all the same: no use-after-free and no stale walk at all, zero kernel-range "
    "flushes, the strategy never called.",
    config={
        "strategy": {"name": "deferred"},
        "kernel": {"arch": "arm64"},
        "iommu": {"model": "arm-smmuv3", **ADVERSARIAL_DEVICE},
        "workload": DEMO_WORKLOAD,
    },
    expect={
        "violations.unflushed_free": "zero",
        "violations.use_after_free": "zero",
        "stale_walk_queued": "zero",
        "flushes": "zero",
        "strategy_calls": "zero",
        "kernel_tables_freed": "nonzero",
    },
)

LARGE_SVA = Scenario(
    name="large-sva",
    version="1.1",
    description="Linux 6.19 (x86_64, Intel VT-d) on a large system with 1024 SVA-bound mms, 512 on each "
    "of its 2 IOMMUs: every batch's flush walks all of them (iommu_sva_mms has no bound), the "
    "'expensive on large-scale systems' of the seed patch; processes bind and unbind at 2000/s "
    "(assumed), on the same iommu_sva_lock. Compare vendors with "
    "`compare --scenario large-sva --iommu intel-vtd --iommu amd-vi --iommu arm-smmuv3`.",
    expected="Still no walk into a reused page, but each flush takes milliseconds (flush p50 over 1 ms), "
    "so batches grow (fewer flushes than tables) and tables wait longer before they are freed; SVA "
    "binds and unbinds (2000/s) wait for iommu_sva_lock behind the flushes.",
    config={"strategy": {"name": "deferred"},
            "iommu": {"model": "intel-vtd", "sva_mms": 1024, "bind_rate": "2000/s"},
            "workload": DEMO_WORKLOAD},
    expect={
        "violations.unflushed_free": "zero",
        "violations.use_after_free": "zero", "flushes": "< kernel_tables_freed",
            "flush_ns.p50": "> 1000000", "sva_bind.contended": "nonzero"},
)


@hookimpl
def register_scenarios(register):
    register(LINUX_6_19_AMD)
    register(LINUX_6_19_SMMUV3)
    register(LARGE_SVA)
