"""IOMMU model ``arm-smmuv3``: the Arm SMMUv3 command queue, as the SVA notifier drives it.

On arm64 this model never sees a kernel-range flush: arm64 does not select
``ASYNC_KERNEL_PGTABLE_FREE`` and the context descriptor the kernel writes for SVA sets EPD1, so
SVA walks never reach the kernel half (kernel-model.md, sections 1 and 4). The model follows the
architecture (``walks_kernel_half`` is left to ``kernel.arch``): with ``arch = "arm64"`` kernel
tables are freed at once and that is safe. With ``arch = "x86_64"`` it answers "what would this
queue cost if it had to do the x86 flush", which is what ``compare`` across vendors shows.

What one ``iommu_sva_invalidate_kva_range(PAGE_OFFSET, TLB_FLUSH_ALL)`` would cost on one SMMU
(drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3{,-sva}.c):

* For every SVA-bound mm the mm's notifier (``arm_smmu_mm_arch_invalidate_secondary_tlbs``)
  invalidates the domain's ASID: without the range-invalidation feature a range of 512 pages
  (``CMDQ_MAX_TLBI_OPS``) or more becomes one ``CMD_TLBI_NH_ASID`` (all of the ASID's entries,
  user ones too), issued with a ``CMD_SYNC``. With ``range_inv`` it becomes ``CMD_TLBI_NH_VA``
  range commands (5 bits of the page count per command), kernel half only.
* Then ``arm_smmu_atc_inv_domain``: one ``CMD_ATC_INV`` per ATS master and PASID, gathered in
  batches of 64 (``CMDQ_BATCH_ENTRIES``); a full batch is issued without a sync, the last with a
  ``CMD_SYNC``.
* A sync completes by polling the consumer pointer (spin, then ``udelay`` with exponential
  back-off) or by an MSI write. The command queue is a ring; a submitter that finds too little room
  for its commands and the sync polls until there is (a queue-full stall). Other submitters on the
  same SMMU are modelled as a periodic ``background_burst``; the SMMU executes commands in order.

Defaults follow the public gem5 SMMUv3 model where it has a value (walk cache 4/28/348/4 entries,
4-way; SMMU_IDR1.CMDQS = 7: 128 queue entries; no MSI, SEV or range invalidation); every latency
is assumed (section 4).
"""


from collections import defaultdict

from explorer.api import CacheLevel, CommandQueue, FlushTally, IommuModel, Param, hookimpl

TLBI_ASID = "CMD_TLBI_NH_ASID"
TLBI_VA = "CMD_TLBI_NH_VA"
ATC_INV = "CMD_ATC_INV"
SYNC = "CMD_SYNC"

#: x86_64 PAGE_OFFSET without KASLR, the start of the range the 6.19 worker flushes.
KERNEL_RANGE_START = 0xFFFF_8880_0000_0000
ULONG_MAX = (1 << 64) - 1
PAGE_SHIFT = 12
#: CMDQ_MAX_TLBI_OPS = 1 << (PAGE_SHIFT - 3): from this many pages on, invalidate the whole ASID.
MAX_TLBI_OPS = 1 << (PAGE_SHIFT - 3)
#: ARM_SMMU_POLL_SPIN_COUNT: cpu_relax() spins before each udelay() of the back-off.
POLL_SPIN_COUNT = 10


def range_commands(num_pages):
    """``CMD_TLBI_NH_VA`` commands __arm_smmu_tlb_inv_range issues with range invalidation.

    Each command covers ``num << scale`` pages, ``num`` being the 5 bits of the remaining page
    count above its lowest set bit; a non-leaf count whose low 5 bits are 1 is bumped by one.
    """
    if num_pages & 0x1F == 1:
        num_pages += 1
    n = 0
    while num_pages:
        scale = (num_pages & -num_pages).bit_length() - 1
        num = (num_pages >> scale) & 0x1F
        num_pages -= num << scale
        n += 1
    return n


def poll_backoff(wait, spin):
    """How long queue_poll() takes to see an event ``wait`` ns away: spins, then udelay(1, 2, 4...)."""
    t = 0
    delay = 1000
    while True:
        for _ in range(POLL_SPIN_COUNT - 1):
            if t >= wait:
                return t
            t += spin
        if t >= wait:
            return t
        t += delay
        delay *= 2


class _Acc(FlushTally):
    """A flush's tally, plus when the last command and the last CMD_SYNC queued complete."""

    def __init__(self, now):
        super().__init__(now)
        self.last_done = now
        self.last_sync = now


class ArmSmmuV3(IommuModel):
    name = "arm-smmuv3"
    version = "1.0"
    help = (
        "Arm SMMUv3 command queue: per SVA mm, CMD_TLBI_NH_ASID (a range of 512 pages or more without "
        "range invalidation) + CMD_SYNC, then CMD_ATC_INV per ATS master in batches of 64 + CMD_SYNC. "
        "On arm64 (EPD1) SVA never walks kernel tables and no kernel-range flush happens. Cache sizes "
        "from gem5; latencies assumed."
    )
    params = (
        Param("queue_entries", "int", 128, unit="commands", min=128, max=1 << 19,
              help="Command queue entries (gem5 SMMUv3: SMMU_IDR1.CMDQS = 7, 128 entries; the driver "
                   "needs more than a batch of 64)."),
        Param("batch", "int", 64, unit="commands", min=1, max=4096,
              help="Commands gathered per issue (CMDQ_BATCH_ENTRIES = BITS_PER_LONG = 64)."),
        Param("ats", "bool", True,
              help="The SVA masters have ATS enabled, so each PASID gets a CMD_ATC_INV (assumed)."),
        Param("range_inv", "bool", False,
              help="ARM_SMMU_FEAT_RANGE_INV (SMMUv3.2 IDR3.RIL): range CMD_TLBI_NH_VA commands instead of "
                   "an ASID-wide invalidation (gem5: SMMU_IDR3 = 0, no)."),
        Param("force_sync", "bool", False,
              help="ARM_SMMU_OPT_CMDQ_FORCE_SYNC (an erratum workaround): a CMD_SYNC after every full batch."),
        Param("sync_wait", "choice", "poll", choices=("poll", "msi"),
              help="How CMD_SYNC completion is seen: poll the consumer pointer (spin, then udelay back-off) "
                   "or an MSI write to the sync entry (gem5: SMMU_IDR0 has neither MSI nor SEV: poll)."),
        Param("write_cmd", "duration", "20ns", min=0, max=10**7,
              help="CPU time to write one command into the queue (assumed)."),
        Param("doorbell", "duration", "100ns", min=0, max=10**7,
              help="CPU time to publish the producer index (MMIO write), once per issue (assumed)."),
        Param("exec_tlbi", "duration", "130ns", min=0, max=10**9,
              help="SMMU time of one TLBI command (assumed; the only public figure, SMMUv2 on a Qualcomm "
                   "SoC, is about 0.13us per TLB invalidation)."),
        Param("exec_atc", "duration", "1500ns", min=0, max=10**9,
              help="SMMU time of one CMD_ATC_INV: an ATS invalidation to the device and its completion "
                   "(assumed)."),
        Param("exec_sync", "duration", "20ns", min=0, max=10**9,
              help="SMMU time to execute CMD_SYNC (assumed)."),
        Param("spin", "duration", "20ns", min=0, max=10**7,
              help="One cpu_relax() poll of the consumer pointer; after 10 the driver backs off with "
                   "udelay(1), udelay(2), ... (spin time assumed)."),
        Param("msi_latency", "duration", "100ns", min=0, max=10**7,
              help="From the sync's completion to the CPU seeing its MSI write (assumed)."),
        Param("background_burst", "int", 0, unit="commands", min=0, max=1 << 20,
              help="Other submitters on the same SMMU (DMA unmaps, user munmap notifiers): commands queued "
                   "in one burst every background_period; 0 = none (assumed)."),
        Param("background_period", "duration", "100us", min=1, max=10**12,
              help="Time between two background bursts; each command takes exec_tlbi (assumed)."),
        Param("cache_l1", "int", 348, unit="entries", min=1, max=1 << 20,
              help="Walk-cache entries pointing at PTE tables (gem5 walk_S1L2 = 348)."),
        Param("cache_l2", "int", 28, unit="entries", min=1, max=1 << 20,
              help="Walk-cache entries pointing at PMD tables (gem5 walk_S1L1 = 28)."),
        Param("cache_l3", "int", 4, unit="entries", min=1, max=1 << 20,
              help="Walk-cache entries pointing at PUD tables (gem5 walk_S1L0 = 4; gem5's walk_S1L3 = 4 "
                   "holds last-level entries, which are not a paging-structure cache)."),
        Param("cache_ways", "int", 4, min=0, max=1 << 20,
              help="Associativity of each level (gem5 walk_assoc = 4; 0 = fully associative)."),
    )

    @classmethod
    def check_values(cls, values):
        if values["batch"] + 1 > values["queue_entries"]:
            return {"batch": f"batch {values['batch']} + CMD_SYNC must fit in queue_entries {values['queue_entries']}"}
        return None

    def __init__(self, params):
        super().__init__(params)
        # one command queue per SMMU, made on its first flush
        self.rings = defaultdict(lambda: CommandQueue(
            params["queue_entries"], params["background_burst"], params["background_period"], params["exec_tlbi"]))

    def cache_geometry(self):
        p = self.params
        w = p["cache_ways"]
        return (CacheLevel(1, p["cache_l1"], w), CacheLevel(2, p["cache_l2"], w), CacheLevel(3, p["cache_l3"], w))

    def tlbi_commands(self):
        """The TLBI commands for the kernel range of one ASID: (type, count)."""
        pages = (ULONG_MAX - KERNEL_RANGE_START) >> PAGE_SHIFT
        if not self.params["range_inv"]:
            if pages >= MAX_TLBI_OPS:
                return TLBI_ASID, 1
            return TLBI_VA, pages
        return TLBI_VA, range_commands(pages)

    def invalidate_kernel_range(self, now, topo):
        p = self.params
        tlbi, n_tlbi = self.tlbi_commands()
        tlbis = [(tlbi, p["exec_tlbi"])] * n_tlbi
        atcs = [(ATC_INV, p["exec_atc"])] * (topo.pasids_per_mm if p["ats"] else 0)
        ring = self.rings[topo.iommu_index]
        acc = ring.flush_each_mm(_Acc(now), topo.sva_mms, lambda acc: self._flush_mm(ring, acc, tlbis, atcs))
        return acc.cost(now, "kernel" if tlbi == TLBI_VA else "pasid")

    def _flush_mm(self, ring, acc, tlbis, atcs):
        """One mm's notifier: invalidate the ASID (then sync), then the ATCs (then sync)."""
        # arm_smmu_tlb_inv_asid() / arm_smmu_tlb_inv_range_asid(): one batch, then the sync.
        self._batched(ring, acc, tlbis)
        acc.effective = acc.last_done
        self._wait_sync(acc)
        if atcs:  # arm_smmu_atc_inv_domain()
            self._batched(ring, acc, atcs)
            self._wait_sync(acc)

    # -- the command queue ------------------------------------------------------------------------
    def _issue(self, ring, acc, cmds, sync):
        """arm_smmu_cmdq_issue_cmdlist(): wait for room, write the commands (+ sync), publish."""
        p = self.params
        ring.catch_up(acc.t)
        n = len(cmds) + (1 if sync else 0)
        ready = ring.room(acc.t, n)  # queue_has_space(), else arm_smmu_cmdq_poll_until_not_full()
        if ready > acc.t:
            acc.stall(acc.t + poll_backoff(ready - acc.t, p["spin"]))
        acc.t += n * p["write_cmd"] + p["doorbell"]
        for kind, ex in cmds:
            acc.last_done = ring.push(acc.t, ex)
            acc.count(kind)
        if sync:  # every sync issued is waited for (_wait_sync), which counts it
            acc.last_sync = ring.push(acc.t, p["exec_sync"])
            acc.count(SYNC)

    def _batched(self, ring, acc, cmds):
        """arm_smmu_cmdq_batch_add() per command, then arm_smmu_cmdq_batch_submit() (with a sync)."""
        batch = self.params["batch"]
        force = self.params["force_sync"]
        while len(cmds) > batch:
            self._issue(ring, acc, cmds[:batch], force)
            if force:
                self._wait_sync(acc)
            cmds = cmds[batch:]
        self._issue(ring, acc, cmds, True)

    def _wait_sync(self, acc):
        """arm_smmu_cmdq_poll_until_sync(): an MSI write, or polling the consumer pointer."""
        p = self.params
        wait = max(0, acc.last_sync - acc.t)
        seen = wait + p["msi_latency"] if p["sync_wait"] == "msi" else poll_backoff(wait, p["spin"])
        acc.wait(acc.t + seen)

    def metrics(self):
        return {
            "queue_entries": self.params["queue_entries"],
            "per_iommu": [
                {
                    "index": i,
                    "syncs": r.waits,
                    "peak_occupancy": r.peak,
                    "background_commands": r.bg_commands,
                }
                for i, r in sorted(self.rings.items())
            ],
        }


@hookimpl
def register_iommu_models(register):
    register(ArmSmmuV3)
