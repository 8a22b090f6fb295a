"""``sync`` and ``sync-unsafe``: free in the caller, with or without flushing the IOMMUs first."""

from explorer.api import FreeStrategy, hookimpl


class SyncUnsafe(FreeStrategy):
    name = "sync-unsafe"
    version = "1.0"
    help = (
        "The kernel before the fix (<= 6.18.3): the page goes straight back to the allocator and "
        "no IOMMU is told. Cached pointers to it survive the free."
    )

    def pagetable_free_kernel(self, k, pt):
        k.free_now(pt)


class Sync(FreeStrategy):
    name = "sync"
    version = "1.0"
    help = (
        "Flush the IOMMUs, then free, inline in the caller (the v1 design). Safe, one flush per "
        "table, and iommu_sva_invalidate_kva_range() takes a mutex: in atomic context that is "
        "'sleeping function called from invalid context'."
    )

    def pagetable_free_kernel(self, k, pt):
        yield from k.iommu_sva_invalidate_kva_range()
        k.free_now(pt)


@hookimpl
def register_strategies(register):
    register(SyncUnsafe)
    register(Sync)
