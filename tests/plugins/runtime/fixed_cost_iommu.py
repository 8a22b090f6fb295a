"""An IOMMU model with a constant cost per invalidated PASID."""

from __future__ import annotations

from explorer.api import CacheLevel, FlushCost, IommuModel, Param, hookimpl


class FixedCost(IommuModel):
    name = "test-fixed-cost"
    version = "1.0"
    help = "Each kernel-range flush invalidates every PASID of every SVA-bound mm at a fixed cost."
    params = (
        Param("per_pasid", "duration", "1us", help="Time to invalidate one PASID (assumed).", min=0, max=10**9),
        Param(
            "effective",
            "float",
            0.0,
            help="Fraction of the flush time after which cached entries are gone (0 = at once).",
            min=0.0,
            max=1.0,
        ),
        Param("pte_entries", "int", 32, help="Cache entries pointing at PTE tables.", unit="entries", min=1),
    )

    def cache_geometry(self):
        return (CacheLevel(1, self.params["pte_entries"]), CacheLevel(2, 8))

    def invalidate_kernel_range(self, now, topo):
        pasids = topo.sva_mms * topo.pasids_per_mm
        duration = pasids * self.params["per_pasid"]
        return FlushCost(
            duration_ns=duration,
            effective_ns=int(duration * self.params["effective"]),
            commands={"invalidate_pasid": pasids},
            scope="pasid",
        )


@hookimpl
def register_iommu_models(register):
    register(FixedCost)
