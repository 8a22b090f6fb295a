"""IOMMU model ``intel-vtd``: Intel VT-d queued invalidation, as the 6.19 SVA notifier drives it.

What one ``iommu_sva_invalidate_kva_range(PAGE_OFFSET, TLB_FLUSH_ALL)`` costs on one IOMMU
(kernel-model.md, section 4; drivers/iommu/intel/{svm,cache,dmar}.c):

* For every SVA-bound mm the mm's notifier (``intel_arch_invalidate_secondary_tlbs``) walks the SVA
  domain's cache tags (``cache_tag_flush_range``): one PASID-based IOTLB invalidation
  (``p_iotlb_inv_dsc``) per PASID tag and, for a device with ATS, one PASID-based device-TLB
  invalidation (``p_dev_tlb_inv_dsc``). The range is not (0, ULONG_MAX), so the flush-all shortcut
  is not taken: each is page-selective with an address mask covering the kernel half, which drops
  kernel-range entries only (``flush_all`` = true models whole-PASID granularity instead).
* Descriptors are gathered in a ``qi_batch`` of up to 16 and submitted with ``qi_submit_sync``,
  which appends an invalidation wait descriptor (``inv_wait_dsc``) and spins until the hardware
  writes its status. The notifier flushes its batch before returning, so every mm costs at
  least one synchronous submit.
* The invalidation queue is a ring of 256 descriptors. ``qi_submit_sync`` needs ``count + 2``
  free entries; while it has fewer, the submitter spins (a queue-full stall). The ring is shared
  with other submitters on the same IOMMU (DMA unmaps, user munmap notifiers), modelled as a
  periodic ``background_burst``; the hardware executes descriptors in order, one at a time.

Every latency is assumed: no vendor publishes them (section 4).
"""


from collections import defaultdict

from explorer.api import CacheLevel, CommandQueue, FlushTally, IommuModel, Param, hookimpl

P_IOTLB = "p_iotlb_inv_dsc"
P_DEVTLB = "p_dev_tlb_inv_dsc"
WAIT = "inv_wait_dsc"


class IntelVtd(IommuModel):
    name = "intel-vtd"
    version = "1.0"
    help = (
        "Intel VT-d queued invalidation: per SVA mm, one PASID-based IOTLB invalidation per PASID "
        "(page-selective, address mask over the kernel half) plus a device-TLB invalidation with "
        "ATS, submitted 16 at a time with a wait descriptor each (qi_submit_sync), into a "
        "256-descriptor ring. Latencies are assumed."
    )
    params = (
        Param("queue_entries", "int", 256, unit="descriptors", min=18, max=1 << 20,
              help="Invalidation queue length (QI_LENGTH = 256 in drivers/iommu/intel/dmar.c)."),
        Param("batch", "int", 16, unit="descriptors", min=1, max=4096,
              help="Descriptors gathered per qi_submit_sync (QI_MAX_BATCHED_DESC_COUNT = 16, "
                   "drivers/iommu/intel/iommu.h)."),
        Param("ats", "bool", True,
              help="The SVA devices have ATS enabled, so each PASID also gets a device-TLB invalidation "
                   "(assumed: SVA devices on VT-d normally use ATS and PRI)."),
        Param("flush_all", "bool", False,
              help="Use whole-PASID granularity instead of a page-selective range with an address mask. "
                   "The SVA notifier does so only for the range (0, ULONG_MAX), which "
                   "iommu_sva_invalidate_kva_range never passes; whole-PASID also drops user entries."),
        Param("write_desc", "duration", "20ns", min=0, max=10**7,
              help="CPU time to write one descriptor into the ring (assumed)."),
        Param("doorbell", "duration", "100ns", min=0, max=10**7,
              help="CPU time of the MMIO write of the queue tail register, once per submit (assumed)."),
        Param("exec_iotlb", "duration", "130ns", min=0, max=10**9,
              help="Hardware time to execute one PASID-based IOTLB invalidation (assumed; the only public "
                   "figure, SMMUv2 on a Qualcomm SoC, is about 0.13us per TLB invalidation)."),
        Param("exec_devtlb", "duration", "1500ns", min=0, max=10**9,
              help="Hardware time of one device-TLB invalidation: an ATS invalidation request to the "
                   "device and its completion (assumed)."),
        Param("exec_wait", "duration", "20ns", min=0, max=10**9,
              help="Hardware time to execute a wait descriptor and write its status (assumed)."),
        Param("poll", "duration", "50ns", min=0, max=10**7,
              help="Time for the spinning CPU to notice the wait descriptor's status write (assumed)."),
        Param("background_burst", "int", 0, unit="descriptors", min=0, max=1 << 20,
              help="Other submitters on the same IOMMU (DMA unmaps, user munmap notifiers): "
                   "descriptors queued in one burst every background_period; 0 = none (assumed)."),
        Param("background_period", "duration", "100us", min=1, max=10**12,
              help="Time between two background bursts; each descriptor takes exec_iotlb (assumed)."),
        Param("cache_l1", "int", 256, unit="entries", min=1, max=1 << 20,
              help="Paging-structure cache entries pointing at PTE tables (PDE cache; assumed, Intel "
                   "publishes no sizes)."),
        Param("cache_l2", "int", 32, unit="entries", min=1, max=1 << 20,
              help="Entries pointing at PMD tables (PDPE cache; assumed)."),
        Param("cache_l3", "int", 8, unit="entries", min=1, max=1 << 20,
              help="Entries pointing at PUD tables (PML4E cache; assumed)."),
        Param("cache_ways", "int", 4, min=0, max=1 << 20,
              help="Associativity of each level (0 = fully associative; assumed)."),
    )

    @classmethod
    def check_values(cls, values):
        if values["batch"] + 2 > values["queue_entries"]:
            return {"batch": f"batch {values['batch']} + 2 must fit in queue_entries {values['queue_entries']} "
                             "(qi_submit_sync needs count + 2 free entries)"}
        return None

    def __init__(self, params):
        super().__init__(params)
        # one invalidation queue per IOMMU, made on its first flush
        self.rings = defaultdict(lambda: CommandQueue(
            params["queue_entries"], params["background_burst"], params["background_period"], params["exec_iotlb"]))

    def cache_geometry(self):
        p = self.params
        w = p["cache_ways"]
        return (CacheLevel(1, p["cache_l1"], w), CacheLevel(2, p["cache_l2"], w), CacheLevel(3, p["cache_l3"], w))

    def mm_descriptors(self, topo):
        """The descriptors one mm's notifier queues on one IOMMU, in cache-tag order."""
        p = self.params
        per_pasid = [(P_IOTLB, p["exec_iotlb"])]
        if p["ats"]:
            per_pasid.append((P_DEVTLB, p["exec_devtlb"]))
        return per_pasid * topo.pasids_per_mm

    def invalidate_kernel_range(self, now, topo):
        p = self.params
        batch = p["batch"]
        descs = self.mm_descriptors(topo)
        chunks = [descs[i:i + batch] for i in range(0, len(descs), batch)]
        ring = self.rings[topo.iommu_index]
        tally = ring.flush_each_mm(FlushTally(now), topo.sva_mms, lambda tally: self._flush_mm(ring, tally, chunks))
        return tally.cost(now, "pasid" if p["flush_all"] else "kernel")

    def _flush_mm(self, ring, tally, chunks):
        """One mm's notifier on this IOMMU: each qi_batch chunk through qi_submit_sync()."""
        p = self.params
        write, doorbell, exec_wait, poll = p["write_desc"], p["doorbell"], p["exec_wait"], p["poll"]
        for chunk in chunks:
            ring.catch_up(tally.t)
            ready = ring.room(tally.t, len(chunk) + 2)  # while (qi->free_cnt < count + 2) spin
            if ready > tally.t:
                tally.stall(ready)
            tally.t += (len(chunk) + 1) * write + doorbell
            for kind, ex in chunk:
                done = ring.push(tally.t, ex)
                tally.count(kind)
                if kind == P_IOTLB:
                    tally.effective = done
            done = ring.push(tally.t, exec_wait)
            tally.count(WAIT)
            tally.wait(done + poll)

    def metrics(self):
        return {
            "queue_entries": self.params["queue_entries"],
            "per_iommu": [
                {
                    "index": i,
                    "submits": r.waits,
                    "peak_occupancy": r.peak,
                    "background_descriptors": r.bg_commands,
                }
                for i, r in sorted(self.rings.items())
            ],
        }


@hookimpl
def register_iommu_models(register):
    register(IntelVtd)
