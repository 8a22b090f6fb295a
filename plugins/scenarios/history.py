"""Scenarios: the kernel's history of this bug as named preset configs."""

from explorer.api import Scenario, hookimpl

LINUX_6_19 = Scenario(
    name="linux-6.19",
    version="1.0",
    description="Linux 6.19 as merged (x86_64, IOMMU_SVA=y, ASYNC_KERNEL_PGTABLE_FREE=y): kernel "
    "page tables are queued, and the worker flushes the IOMMUs once per batch before freeing them.",
    expected="No walk into a reused page; fewer flushes than kernel tables freed.",
    config={"strategy": {"name": "deferred"}},
    expect={"violations.use_after_free": "zero", "violations.sleep_in_atomic": "zero"},
)

BEFORE_FIX = Scenario(
    name="before-fix",
    version="1.0",
    description="Linux <= 6.18.3: kernel page tables go straight back to the page allocator and no "
    "IOMMU is told; a device that probes kernel addresses keeps cached pointers to them.",
    expected="Use-after-free: device walks through stale cache entries into reused pages.",
    config={"strategy": {"name": "sync-unsafe"}},
    expect={"violations.use_after_free": "nonzero"},
)


@hookimpl
def register_scenarios(register):
    register(LINUX_6_19)
    register(BEFORE_FIX)
