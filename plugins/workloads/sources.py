"""The four places the kernel frees page tables (kernel-model.md, section 3), and kernel TLB
flushes that free none.

Every default rate is **assumed**: we found no published measurement of how often a running kernel
frees kernel page tables on any of these paths. The defaults are chosen to be plausible for a busy
x86 server and to let a 100 ms run see each source; the storm scenarios (docs/scenarios.md) raise
them on purpose. The share of tables that lack the kernel mark (``unmarked``) defaults to 0, the
series' intent; the help of each says what the 6.19 code gives and where that comes from.
"""

from explorer.api import Param, WorkloadSource, hookimpl, workload_params


class VmallocHuge(WorkloadSource):
    name = "vmalloc-huge"
    version = "2.0"
    help = (
        "A huge vmalloc/ioremap mapping is installed over a range that still has a PTE table "
        "(vmap_try_huge_pmd -> pmd_free_pte_page) or, for a 1 GiB mapping, a PMD table "
        "(vmap_try_huge_pud -> pud_free_pmd_page, which frees the PMD table and every PTE table under "
        "it). vfree() itself frees no table: the tables of a freed range are freed here, when a later "
        "huge mapping reuses it. Sleepable; the CPU TLB is flushed (flush_tlb_kernel_range) before "
        "the free."
    )
    params = workload_params(
        "200/s",
        extra=(
            Param("cpu_flush", "duration", "2us", min=0, max=10**9,
                  help="CPU TLB flush before the free (flush_tlb_kernel_range, an IPI to every CPU; "
                       "assumed)."),
            Param("pud_fraction", "float", 0.0, min=0.0, max=1.0,
                  help="Fraction of events that map a 1 GiB page and so call pud_free_pmd_page() "
                       "(assumed: rare)."),
            Param("pud_ptes", "int", 512, unit="tables", min=0, max=512,
                  help="PTE tables under the PMD table that pud_free_pmd_page() frees with it: up to "
                       "512, one per 2 MiB of the 1 GiB range still mapped with 4 KiB pages "
                       "(default 512, the worst case: 513 tables in one call)."),
            Param("atomic", "bool", False,
                  help="Run the free path in atomic context. No x86_64 caller does (the vmap paths "
                       "sleep); true stands for an assumed atomic caller of flush_tlb_kernel_range() "
                       "(the sync-in-atomic scenario)."),
        ),
    )

    def process(self, w):
        p = self.params
        pud = p["pud_fraction"]
        while True:
            yield w.interarrival(p["rate"])
            cpu = w.pick_cpu(p["cpus"])
            if pud and w.rng.random() < pud:
                # pud_free_pmd_page(): clear every PMD entry and the PUD entry, one
                # flush_tlb_kernel_range(), then free the PTE tables and the PMD table.
                for _ in range(p["burst"]):
                    yield from w.free_kernel_group(
                        [1] * p["pud_ptes"] + [2], cpu=cpu, atomic=p["atomic"], flush_ns=p["cpu_flush"]
                    )
                continue
            yield from w.free_kernel_tables(
                p["burst"], cpu=cpu, atomic=p["atomic"], level=1, cpu_flush_ns=p["cpu_flush"]
            )


class CpaCollapse(WorkloadSource):
    name = "cpa-collapse"
    version = "2.0"
    help = (
        "CPA large-page collapse (cpa_collapse_large_pages, from set_memory_rox for BPF JIT/execmem): "
        "process context (the caller holds a mutex in vm_unmap_aliases(), no spinlock at the free); it "
        "collects the tables it replaces, calls flush_tlb_all(), then frees them."
    )
    params = workload_params(
        "50/s",
        extra=(
            Param("unmarked", "float", 0.0, min=0.0, max=1.0,
                  help="Share of the collapsed tables without the kernel mark. The 6.19 code gives 1: "
                       "the PTE tables a collapse frees were allocated by split_large_page() "
                       "(arch/x86/mm/pat/set_memory.c, alloc_pages(GFP_KERNEL, 0)), which never calls "
                       "ptdesc_set_kernel. Default 0 (the series' intent); see the cpa-unmarked scenario."),
            Param("tlb_flush_all", "duration", "10us", min=0, max=10**9,
                  help="flush_tlb_all() between the collapse and the free, an IPI to every CPU (assumed)."),
        ),
    )

    def process(self, w):
        p = self.params
        while True:
            yield w.interarrival(p["rate"])
            yield from w.free_kernel_group(
                [1] * p["burst"], cpu=w.pick_cpu(p["cpus"]), atomic=False,
                flush_ns=p["tlb_flush_all"], unmarked=p["unmarked"],
            )


class HotRemove(WorkloadSource):
    name = "hot-remove"
    version = "2.0"
    help = (
        "Memory hot-remove (remove_pagetable -> free_pagetable): rare bursts of many tables (removing "
        "a few GiB mapped with 4 KiB pages frees thousands; see the dimm-hot-remove scenario), freed "
        "as the walk goes, then one flush_tlb_all() at the end. Tables that came from bootmem "
        "bypass pagetable_free() and get no IOMMU flush."
    )
    params = workload_params(
        "1/s",
        burst=64,
        extra=(
            Param("bootmem_fraction", "float", 0.0, min=0.0, max=1.0,
                  help="Fraction of bursts whose tables came from bootmem (freed without pagetable_free)."),
            Param("unmarked", "float", 0.0, min=0.0, max=1.0,
                  help="Share of the tables without the kernel mark. Inferred from the 6.19 code, not "
                       "confirmed: the direct-map tables built at hot-add come from alloc_low_pages() "
                       "(arch/x86/mm/init.c) and the vmemmap tables from vmemmap_alloc_block(), neither "
                       "of which sets the mark, which would give 1. Default 0 (the series' intent)."),
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
                after_flush_ns=p["tlb_flush_all"], unmarked=p["unmarked"],
            )


class KernelTlbFlush(WorkloadSource):
    name = "kernel-tlb-flush"
    version = "1.0"
    help = (
        "Kernel TLB flushes that free no page table: flush_tlb_kernel_range() from vmalloc's lazy "
        "purge (__purge_vmap_area_lazy), vunmap, set_memory_* and the like. They matter only to a "
        "design that hooks the IOMMU flush into the kernel TLB flush (v3-flush-deferred)."
    )
    params = workload_params(
        "1000/s",
        extra=(
            Param("cpu_flush", "duration", "2us", min=0, max=10**9,
                  help="CPU time of the flush (an IPI to every CPU; assumed)."),
            Param("atomic", "bool", False,
                  help="Run in atomic context (an assumed atomic caller of flush_tlb_kernel_range())."),
        ),
    )

    def process(self, w):
        p = self.params
        while True:
            yield w.interarrival(p["rate"])
            cpu = w.pick_cpu(p["cpus"])
            for _ in range(p["burst"]):
                yield from w.flush_tlb_kernel(p["cpu_flush"], cpu=cpu, atomic=p["atomic"])


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
    register(KernelTlbFlush)
    register(UserTeardown)
