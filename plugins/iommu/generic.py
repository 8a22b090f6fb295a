"""IOMMU models ``none`` and ``generic``.

``generic`` is vendor-neutral: every SVA-bound mm (and each of its PASIDs) costs one
invalidation command, submitted and then waited for. All its latencies are assumed: no
vendor publishes them (kernel-model.md, section 4).
"""

from explorer.api import CacheLevel, FlushCost, IommuModel, Param, hookimpl


class NoIommu(IommuModel):
    name = "none"
    version = "1.0"
    help = "No IOMMU bound: no device walks anything, and kernel-range invalidations return at once."
    present = False

    def cache_geometry(self):
        return ()

    def invalidate_kernel_range(self, now, topo):
        return FlushCost(0, 0)


class GenericIommu(IommuModel):
    name = "generic"
    version = "1.0"
    help = (
        "A vendor-neutral IOMMU: one invalidation per PASID of every SVA-bound mm, then one "
        "completion wait. All latencies are assumed."
    )
    params = (
        Param("invalidate_per_mm", "duration", "1us", min=0, max=10**9,
              help="Time per PASID invalidation, submission and execution (assumed; the only public "
                   "figure, SMMUv2 on a Qualcomm SoC, is about 0.13us per TLB invalidation)."),
        Param("completion_wait", "duration", "2us", min=0, max=10**9,
              help="Time to wait for the completion of the batch (assumed)."),
        Param("cache_entries", "int", 128, unit="entries", min=1, max=1_000_000,
              help="Paging-structure cache entries per level (assumed)."),
        Param("cache_ways", "int", 0, min=0, max=1_000_000,
              help="Associativity (0 = fully associative; assumed)."),
    )

    def __init__(self, params):
        super().__init__(params)
        self.commands = 0

    def cache_geometry(self):
        n, ways = self.params["cache_entries"], self.params["cache_ways"]
        return (CacheLevel(1, n, ways), CacheLevel(2, n, ways))

    def invalidate_kernel_range(self, now, topo):
        count = topo.sva_mms * topo.pasids_per_mm
        self.commands += count
        submit = count * self.params["invalidate_per_mm"]
        return FlushCost(
            duration_ns=submit + self.params["completion_wait"],
            effective_ns=submit,
            commands={"invalidate_pasid": count, "completion_wait": 1},
            wait_ns=self.params["completion_wait"],
        )

    def metrics(self):
        return {"commands": self.commands}


@hookimpl
def register_iommu_models(register):
    register(NoIommu)
    register(GenericIommu)
