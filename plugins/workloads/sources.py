"""The four places the kernel frees page tables (kernel-model.md, section 3)."""

from explorer.api import Param, WorkloadSource, hookimpl, workload_params


class VmallocHuge(WorkloadSource):
    name = "vmalloc-huge"
    version = "1.1"
    help = (
        "A huge vmalloc/ioremap mapping replaces a PTE table (vmap_try_huge_pmd -> "
        "pmd_free_pte_page) or, for a PUD mapping, a PMD table (vmap_try_huge_pud -> "
        "pud_free_pmd_page). Sleepable; the CPU TLB is flushed (flush_tlb_kernel_range) before the free."
    )
    params = workload_params(
        "5000/s",
        extra=(
            Param("cpu_flush", "duration", "2us", min=0, max=10**9,
                  help="CPU TLB flush before each free (flush_tlb_kernel_range, an IPI to every CPU; "
                       "assumed)."),
            Param("pud_fraction", "float", 0.0, min=0.0, max=1.0,
                  help="Fraction of events that map a 1 GiB page and so free a PMD table "
                       "(pud_free_pmd_page) instead of a PTE table (assumed: rare)."),
        ),
    )

    def process(self, w):
        p = self.params
        pud = p["pud_fraction"]
        while True:
            yield w.interarrival(p["rate"])
            level = 2 if pud and w.rng.random() < pud else 1
            yield from w.free_kernel_tables(
                p["burst"], cpu=w.pick_cpu(p["cpus"]), atomic=False, level=level, cpu_flush_ns=p["cpu_flush"]
            )


class CpaCollapse(WorkloadSource):
    name = "cpa-collapse"
    version = "1.0"
    help = (
        "CPA large-page collapse (cpa_collapse_large_pages, from set_memory_rox for BPF JIT/execmem): "
        "runs under the cpa_lock spinlock, so the free path is in atomic context; flush_tlb_all() "
        "runs after the collapse."
    )
    params = workload_params(
        "500/s",
        extra=(
            Param("marked", "bool", True,
                  help="Whether the collapsed tables carry the kernel mark. In 2026 it was found that "
                       "tables allocated by CPA splits never do (false): they skip the deferred path."),
            Param("tlb_flush_all", "duration", "10us", min=0, max=10**9,
                  help="flush_tlb_all() after the collapse, an IPI to every CPU (assumed)."),
        ),
    )

    def process(self, w):
        p = self.params
        while True:
            yield w.interarrival(p["rate"])
            yield from w.free_kernel_tables(
                p["burst"], cpu=w.pick_cpu(p["cpus"]), atomic=True, level=1,
                marked=p["marked"], after_flush_ns=p["tlb_flush_all"],
            )


class HotRemove(WorkloadSource):
    name = "hot-remove"
    version = "1.1"
    help = (
        "Memory hot-remove (remove_pagetable -> free_pagetable): rare bursts of many tables (removing "
        "a few GiB mapped with 4 KiB pages frees thousands; see the hotremove-bootmem scenario, which "
        "raises kernel.kernel_slots for that), then flush_tlb_all(). Tables that came from bootmem "
        "bypass pagetable_free() and get no IOMMU flush."
    )
    params = workload_params(
        "20/s",
        burst=64,
        extra=(
            Param("bootmem_fraction", "float", 0.0, min=0.0, max=1.0,
                  help="Fraction of bursts whose tables came from bootmem (freed without pagetable_free)."),
            Param("tlb_flush_all", "duration", "10us", min=0, max=10**9,
                  help="flush_tlb_all() at the end of remove_pagetable() (assumed)."),
        ),
    )

    def process(self, w):
        p = self.params
        while True:
            yield w.interarrival(p["rate"])
            bootmem = w.rng.random() < p["bootmem_fraction"]
            yield from w.free_kernel_tables(
                p["burst"], cpu=w.pick_cpu(p["cpus"]), atomic=False, via_pagetable_free=not bootmem,
                after_flush_ns=p["tlb_flush_all"],
            )


class UserTeardown(WorkloadSource):
    name = "user-teardown"
    version = "1.0"
    help = (
        "Process exit / munmap (mmu_gather, tlb_remove_table): user page tables, which must go "
        "straight to the allocator and never through the kernel path."
    )
    params = workload_params(
        "2000/s",
        burst=4,
        extra=(Param("atomic", "bool", False, help="Whether the teardown runs in atomic context."),),
    )

    def process(self, w):
        p = self.params
        while True:
            yield w.interarrival(p["rate"])
            yield from w.free_user_tables(p["burst"], cpu=w.pick_cpu(p["cpus"]), atomic=p["atomic"])


@hookimpl
def register_workloads(register):
    register(VmallocHuge)
    register(CpaCollapse)
    register(HotRemove)
    register(UserTeardown)
