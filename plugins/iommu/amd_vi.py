"""IOMMU model ``amd-vi``: the AMD-Vi command buffer, as the 6.19 SVA notifier drives it.

What one ``iommu_sva_invalidate_kva_range(PAGE_OFFSET, TLB_FLUSH_ALL)`` costs on one IOMMU
(kernel-model.md, section 4; drivers/iommu/amd/{pasid,iommu}.c):

* For every SVA-bound mm the mm's notifier (``sva_arch_invalidate_secondary_tlbs``) walks the
  devices bound to the SVA domain and calls ``amd_iommu_dev_flush_pasid_pages`` for each: one
  ``INVALIDATE_IOMMU_PAGES`` for the PASID, an ``INVALIDATE_IOTLB_PAGES`` when the device has ATS,
  then ``iommu_completion_wait``: a ``COMPLETION_WAIT`` that stores to a semaphore, polled with
  ``udelay(1)``. So every (mm, PASID) pays its own completion wait.
* The range: in 6.19 ``build_inv_address()`` turns (address, size) into a power-of-two aligned
  range with the S bit, and uses the whole-PASID address (``CMD_INV_IOMMU_ALL_PAGES_ADDRESS``) only
  when the range spans more than 2^51 bytes (bit 51 differs between start and end). The kernel
  range (PAGE_OFFSET, TLB_FLUSH_ALL) becomes a 2^47-byte range over the kernel half with 4-level
  paging, so only kernel-half entries are dropped (scope ``kernel``); with 5-level paging (LA57,
  PAGE_OFFSET 0xff11000000000000) it spans bit 55 and becomes whole-PASID. Older kernels flushed the
  whole PASID for any SVA range above one page (``range_flush = "whole-pasid"``).
* The command buffer holds 512 16-byte entries. ``iommu_queue_command`` writes one command and the
  tail register each time; when no more than two entries (0x20 bytes) would be left it re-reads
  the head, then polls with ``udelay(1)`` (a queue-full stall). Other submitters on the same IOMMU
  are modelled as a periodic ``background_burst``; the hardware executes commands in order.

Every latency except the 1us polling step of the driver is assumed (section 4).
"""


from collections import defaultdict

from explorer.api import CacheLevel, CommandQueue, FlushTally, IommuModel, Param, hookimpl

INV_PAGES = "INVALIDATE_IOMMU_PAGES"
INV_IOTLB = "INVALIDATE_IOTLB_PAGES"
COMPLETION_WAIT = "COMPLETION_WAIT"


PAGE_SIZE = 4096
#: CMD_INV_IOMMU_ALL_PAGES_ADDRESS (drivers/iommu/amd/amd_iommu_types.h)
ALL_PAGES_ADDRESS = 0x7FFF_FFFF_FFFF_F000
#: x86_64 PAGE_OFFSET with 4-level and with 5-level paging (__PAGE_OFFSET_BASE_L4 / _L5)
PAGE_OFFSET = {False: 0xFFFF_8880_0000_0000, True: 0xFF11_0000_0000_0000}
TLB_FLUSH_ALL = (1 << 64) - 1


def build_inv_address(address, size):
    """drivers/iommu/amd/iommu.c ``build_inv_address()`` (6.19): ``(cmd_address, span_bytes)``.

    One page: the page itself. Otherwise the most significant bit that differs between the first
    and the last byte decides: above bit 51, the whole-PASID address; else the aligned power-of-two
    range that contains both (its low bits set, then the S bit). ``span_bytes`` is 0 for whole-PASID.
    """
    mask = (1 << 64) - 1
    end = (address + size - 1) & mask
    if address // PAGE_SIZE == end // PAGE_SIZE:
        return address & ~(PAGE_SIZE - 1) & mask, PAGE_SIZE
    msb_diff = (end ^ address).bit_length() - 1
    if msb_diff > 51:
        return ALL_PAGES_ADDRESS | 1, 0
    aligned = (address | ((1 << msb_diff) - 1)) & ~(PAGE_SIZE - 1) & mask
    return aligned | 1, 1 << (msb_diff + 1)


def _polled(start, ready, step):
    """When a loop that checks at ``start`` and then every ``step`` first sees ``ready``."""
    if ready <= start or step <= 0:
        return max(start, ready)
    return start + -(-(ready - start) // step) * step


class AmdVi(IommuModel):
    name = "amd-vi"
    version = "1.1"
    help = (
        "AMD-Vi command buffer: per SVA mm and PASID, INVALIDATE_IOMMU_PAGES (6.19: a 2^47-byte aligned "
        "range over the kernel half), INVALIDATE_IOTLB_PAGES with ATS, then COMPLETION_WAIT polled with "
        "udelay(1); 512-entry buffer. Latencies are assumed."
    )
    params = (
        Param("queue_entries", "int", 512, unit="commands", min=4, max=1 << 20,
              help="Command buffer entries (CMD_BUFFER_SIZE 8192 bytes / 16-byte commands = 512, "
                   "drivers/iommu/amd/amd_iommu_types.h)."),
        Param("ats", "bool", True,
              help="The SVA devices have ATS enabled, so each PASID also gets INVALIDATE_IOTLB_PAGES "
                   "(assumed: AMD SVA needs ATS and PRI on the device)."),
        Param("range_flush", "choice", "aligned", choices=("aligned", "whole-pasid"),
              help="How INVALIDATE_IOMMU_PAGES covers the kernel range: aligned (6.19 "
                   "build_inv_address(): a power-of-two range with the S bit; (PAGE_OFFSET, "
                   "TLB_FLUSH_ALL) is 2^47 bytes over the kernel half, kernel entries only; whole PASID "
                   "only above 2^51 bytes) or whole-pasid (older kernels: any SVA range above one page "
                   "flushes the whole PASID, user entries too)."),
        Param("la57", "bool", False,
              help="5-level paging: PAGE_OFFSET is 0xff11000000000000, so the kernel range spans bit 55 "
                   "and build_inv_address() falls back to the whole PASID."),
        Param("write_cmd", "duration", "20ns", min=0, max=10**7,
              help="CPU time to write one command into the buffer (assumed)."),
        Param("doorbell", "duration", "100ns", min=0, max=10**7,
              help="CPU time of the MMIO write of the tail register, once per command as "
                   "iommu_queue_command does (assumed)."),
        Param("exec_inv_pages", "duration", "130ns", min=0, max=10**9,
              help="Hardware time of one INVALIDATE_IOMMU_PAGES (assumed; the only public figure, SMMUv2 "
                   "on a Qualcomm SoC, is about 0.13us per TLB invalidation)."),
        Param("exec_inv_iotlb", "duration", "1500ns", min=0, max=10**9,
              help="Hardware time of one INVALIDATE_IOTLB_PAGES: an ATS invalidation request to the "
                   "device and its completion (assumed)."),
        Param("exec_completion_wait", "duration", "20ns", min=0, max=10**9,
              help="Hardware time to execute COMPLETION_WAIT and store the semaphore (assumed)."),
        Param("poll_step", "duration", "1us", min=0, max=10**9,
              help="Polling step of the completion wait and of a full buffer (udelay(1) in wait_on_sem "
                   "and __iommu_queue_command_sync)."),
        Param("background_burst", "int", 0, unit="commands", min=0, max=1 << 20,
              help="Other submitters on the same IOMMU (DMA unmaps, user munmap notifiers): commands "
                   "queued in one burst every background_period; 0 = none (assumed)."),
        Param("background_period", "duration", "100us", min=1, max=10**12,
              help="Time between two background bursts; each command takes exec_inv_pages (assumed)."),
        Param("cache_l1", "int", 128, unit="entries", min=1, max=1 << 20,
              help="Page-directory cache entries pointing at PTE tables (assumed, AMD publishes no sizes)."),
        Param("cache_l2", "int", 32, unit="entries", min=1, max=1 << 20,
              help="Entries pointing at PMD tables (assumed)."),
        Param("cache_l3", "int", 8, unit="entries", min=1, max=1 << 20,
              help="Entries pointing at PUD tables (assumed)."),
        Param("cache_ways", "int", 4, min=0, max=1 << 20,
              help="Associativity of each level (0 = fully associative; assumed)."),
    )

    def __init__(self, params):
        super().__init__(params)
        # one command buffer per IOMMU, made on its first flush
        self.rings = defaultdict(lambda: CommandQueue(
            params["queue_entries"], params["background_burst"], params["background_period"],
            params["exec_inv_pages"]))

    def cache_geometry(self):
        p = self.params
        w = p["cache_ways"]
        return (CacheLevel(1, p["cache_l1"], w), CacheLevel(2, p["cache_l2"], w), CacheLevel(3, p["cache_l3"], w))

    def invalidate_kernel_range(self, now, topo):
        p = self.params
        per_pasid = [(INV_PAGES, p["exec_inv_pages"])]
        if p["ats"]:
            per_pasid.append((INV_IOTLB, p["exec_inv_iotlb"]))
        per_pasid.append((COMPLETION_WAIT, p["exec_completion_wait"]))
        ring = self.rings[topo.iommu_index]
        tally = ring.flush_each_mm(FlushTally(now), topo.sva_mms,
                                   lambda tally: self._flush_mm(ring, tally, topo.pasids_per_mm, per_pasid))
        return tally.cost(now, self.scope())

    def scope(self):
        """What INVALIDATE_IOMMU_PAGES of (PAGE_OFFSET, TLB_FLUSH_ALL) drops: ``kernel`` or ``pasid``."""
        p = self.params
        if p["range_flush"] == "whole-pasid":
            return "pasid"
        start = PAGE_OFFSET[bool(p["la57"])]
        _, span = build_inv_address(start, TLB_FLUSH_ALL - start)
        return "pasid" if span == 0 else "kernel"

    def _flush_mm(self, ring, tally, pasids, per_pasid):
        """One mm's notifier: amd_iommu_dev_flush_pasid_pages() for each PASID of the domain."""
        p = self.params
        write, doorbell, step = p["write_cmd"], p["doorbell"], p["poll_step"]
        for _pasid in range(pasids):
            done = tally.t
            for kind, ex in per_pasid:  # iommu_queue_command() each
                ring.catch_up(tally.t)
                # Full when no more than 0x20 bytes (2 entries) would be left after this one.
                ready = ring.room(tally.t, 3)
                if ready > tally.t:
                    tally.stall(_polled(tally.t, ready, step))
                tally.t += write + doorbell
                done = ring.push(tally.t, ex)
                tally.count(kind)
                if kind == INV_PAGES:
                    tally.effective = done
            tally.wait(_polled(tally.t, done, step))  # wait_on_sem(): udelay(1) until the store lands

    def metrics(self):
        return {
            "queue_entries": self.params["queue_entries"],
            "per_iommu": [
                {
                    "index": i,
                    "completion_waits": r.waits,
                    "peak_occupancy": r.peak,
                    "background_commands": r.bg_commands,
                }
                for i, r in sorted(self.rings.items())
            ],
        }


@hookimpl
def register_iommu_models(register):
    register(AmdVi)
