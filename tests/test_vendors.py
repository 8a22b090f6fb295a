"""The vendor IOMMU models: command counts derived from the kernel's rules, the queue, the caches.

Rules (kernel-model.md, section 4; docs/iommu-models.md). One kernel-range flush reaches every
SVA-bound mm's notifier, and each notifier invalidates on every IOMMU:

* intel-vtd, per mm and IOMMU: one p_iotlb_inv_dsc per PASID, one p_dev_tlb_inv_dsc per PASID with
  ATS, submitted in chunks of 16, each chunk with one inv_wait_dsc.
* amd-vi, per mm, PASID and IOMMU: INVALIDATE_IOMMU_PAGES, INVALIDATE_IOTLB_PAGES with ATS, then
  COMPLETION_WAIT.
* arm-smmuv3, per mm and SMMU: the kernel range is >= 512 pages, so one CMD_TLBI_NH_ASID (the ASID
  is per mm, whatever the PASIDs) + CMD_SYNC; then one CMD_ATC_INV per PASID with ATS, in batches
  of 64, + CMD_SYNC.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import pytest

from explorer.api import Param, SvaTopology, WorkloadSource, workload_params
from explorer.plugins import Registry, load_registry
from explorer.sim.build import build_simulation
from tests.conftest import make_config

VENDORS = ("intel-vtd", "amd-vi", "arm-smmuv3")


class OneBatch(WorkloadSource):
    """Frees ``burst`` kernel tables at once, 1 ms into the run, and nothing else."""

    name = "test-one-batch"
    version = "1.0"
    params = workload_params("1/s", burst=10, cpus="0")

    def process(self, w):
        yield 1_000_000
        yield from w.free_kernel_tables(self.params["burst"], cpu=0, atomic=False)
        while True:
            yield 1 << 40


@pytest.fixture(scope="module")
def reg() -> Registry:
    r = load_registry(entry_points=False)
    assert not r.failures, [(f.name, f.error) for f in r.failures]
    r.workloads[OneBatch.name] = OneBatch
    return r


def model(reg: Registry, name: str, **params: Any) -> Any:
    cls = reg.iommu_models[name]
    values = {p.name: p.canonical_default() for p in cls.params}
    values.update({k: cls_param(cls, k).parse(v) for k, v in params.items()})
    return cls(values)


def cls_param(cls: Any, name: str) -> Param:
    return next(p for p in cls.params if p.name == name)


def one_batch(reg: Registry, vendor: str, *overrides: str, tables: int = 10) -> dict[str, Any]:
    """10 tables freed at once under the 6.19 strategy: exactly one batch, so one flush. Every mm is
    bound on every IOMMU (iommus_per_mm = 0), so each IOMMU flushes all 3 mms."""
    cfg = make_config(reg, "run.duration=10ms", f"iommu.model={vendor}", "iommu.count=2", "iommu.sva_mms=3",
                      "iommu.iommus_per_mm=0", *overrides)
    cfg["workload"] = [{"name": OneBatch.name, "rate": 1.0, "burst": tables, "cpus": "0"}]
    sim = build_simulation(cfg, reg)
    m = sim.run()
    m["_sim"] = sim
    assert m["kernel_tables_freed"] == tables
    assert m["flushes"] == m["worker_runs"] == 1
    return m


# --------------------------------------------------------------------------- command counts


def test_intel_vtd_commands_for_10_tables_and_3_mms(reg: Registry) -> None:
    m = one_batch(reg, "intel-vtd")
    # 1 flush x 3 mms x 2 IOMMUs, 1 PASID each: 1 PASID-IOTLB + 1 device-TLB descriptor (ATS) = 2,
    # one chunk of <= 16, so one wait descriptor per mm and IOMMU.
    assert m["iommu_commands"] == {"p_iotlb_inv_dsc": 6, "p_dev_tlb_inv_dsc": 6, "inv_wait_dsc": 6}
    for unit in m["iommus"]:
        assert unit["commands"] == {"inv_wait_dsc": 3, "p_dev_tlb_inv_dsc": 3, "p_iotlb_inv_dsc": 3}


def test_intel_vtd_batches_16_descriptors_per_wait(reg: Registry) -> None:
    m = one_batch(reg, "intel-vtd", "iommu.pasids_per_mm=10")
    # Per mm and IOMMU 10 PASIDs x 2 descriptors = 20 -> chunks of 16 and 4 -> 2 waits.
    assert m["iommu_commands"] == {"p_iotlb_inv_dsc": 60, "p_dev_tlb_inv_dsc": 60, "inv_wait_dsc": 12}
    m = one_batch(reg, "intel-vtd", "iommu.pasids_per_mm=8", "iommu.params.ats=false")
    # Without ATS 8 descriptors per mm fit one chunk: one wait per mm and IOMMU.
    assert m["iommu_commands"] == {"p_iotlb_inv_dsc": 48, "inv_wait_dsc": 6}


def test_amd_vi_commands_for_10_tables_and_3_mms(reg: Registry) -> None:
    m = one_batch(reg, "amd-vi")
    # 3 mms x 1 PASID x 2 IOMMUs = 6 (mm, PASID, IOMMU) triples, 3 commands each.
    assert m["iommu_commands"] == {"INVALIDATE_IOMMU_PAGES": 6, "INVALIDATE_IOTLB_PAGES": 6, "COMPLETION_WAIT": 6}
    m = one_batch(reg, "amd-vi", "iommu.pasids_per_mm=4", "iommu.params.ats=false")
    # Every PASID pays its own completion wait: 3 x 4 x 2 = 24 of each, no IOTLB (device) commands.
    assert m["iommu_commands"] == {"INVALIDATE_IOMMU_PAGES": 24, "COMPLETION_WAIT": 24}


def test_arm_smmuv3_commands_for_10_tables_and_3_mms(reg: Registry) -> None:
    m = one_batch(reg, "arm-smmuv3")
    # Per mm and SMMU: TLBI_NH_ASID + SYNC, ATC_INV + SYNC -> 6 TLBI, 6 ATC, 12 syncs.
    assert m["iommu_commands"] == {"CMD_TLBI_NH_ASID": 6, "CMD_ATC_INV": 6, "CMD_SYNC": 12}
    m = one_batch(reg, "arm-smmuv3", "iommu.pasids_per_mm=4")
    # The TLB is tagged by ASID (one per mm): still one TLBI per mm; the ATCs grow with the PASIDs.
    assert m["iommu_commands"] == {"CMD_TLBI_NH_ASID": 6, "CMD_ATC_INV": 24, "CMD_SYNC": 12}
    m = one_batch(reg, "arm-smmuv3", "iommu.pasids_per_mm=64")
    # 64 ATC_INV per mm fill exactly one batch: still one sync for them.
    assert m["iommu_commands"] == {"CMD_TLBI_NH_ASID": 6, "CMD_ATC_INV": 384, "CMD_SYNC": 12}
    # 100 (more than the config allows per mm, so straight to the model): a batch of 64 issued
    # without a sync, then 36 + the sync.
    c = model(reg, "arm-smmuv3").invalidate_kernel_range(0, SvaTopology(3, 100, 2, 0))
    assert c.commands == {"CMD_TLBI_NH_ASID": 3, "CMD_ATC_INV": 300, "CMD_SYNC": 6}


def test_arm_smmuv3_range_invalidation_splits_the_kernel_range(reg: Registry) -> None:
    m = one_batch(reg, "arm-smmuv3", "iommu.params.range_inv=true", "iommu.params.ats=false")
    # The range is PAGE_OFFSET (0xffff888000000000) .. ULONG_MAX: 0x777ffffff pages, 35 bits. Each
    # CMD_TLBI_NH_VA covers 5 bits of the count (NUM) at its lowest set bit (SCALE); every 5-bit
    # group of 0x777ffffff is non-zero, so 7 commands per mm and SMMU.
    pages = ((1 << 64) - 1 - 0xFFFF_8880_0000_0000) >> 12
    assert pages == 0x777FFFFFF and pages.bit_length() == 35
    assert all((pages >> (5 * i)) & 0x1F for i in range(7))
    assert m["iommu_commands"] == {"CMD_TLBI_NH_VA": 7 * 6, "CMD_SYNC": 6}


def test_smmuv3_force_sync_adds_a_sync_per_full_batch(reg: Registry) -> None:
    c = model(reg, "arm-smmuv3", force_sync=True).invalidate_kernel_range(0, SvaTopology(3, 100, 2, 0))
    # Per mm: TLBI + sync; 64 ATC + sync (forced); 36 ATC + sync.
    assert c.commands == {"CMD_TLBI_NH_ASID": 3, "CMD_ATC_INV": 300, "CMD_SYNC": 9}


# --------------------------------------------------------------------------- scope and cost


@pytest.mark.parametrize(
    ("vendor", "params", "scope"),
    [
        ("intel-vtd", {}, "kernel"),  # page-selective, address mask over the kernel half
        ("intel-vtd", {"flush_all": True}, "pasid"),
        ("amd-vi", {}, "kernel"),  # 6.19 build_inv_address(): 2^47 bytes over the kernel half
        ("amd-vi", {"la57": True}, "pasid"),  # 5-level paging: the range spans bit 55 > 51
        ("amd-vi", {"range_flush": "whole-pasid"}, "pasid"),  # older kernels: any range > 1 page
        ("arm-smmuv3", {}, "pasid"),  # >= 512 pages: the whole ASID
        ("arm-smmuv3", {"range_inv": True}, "kernel"),
    ],
)
def test_scope_of_the_kernel_range_invalidation(reg: Registry, vendor: str, params: dict, scope: str) -> None:
    assert model(reg, vendor, **params).invalidate_kernel_range(0, SvaTopology(3, 1, 2, 0)).scope == scope


def _cost(reg: Registry, vendor: str, mms: int, pasids: int, **params: Any) -> Any:
    return model(reg, vendor, **params).invalidate_kernel_range(1000, SvaTopology(mms, pasids, 2, 0))


@pytest.mark.parametrize("vendor", VENDORS)
def test_flush_time_is_submission_execution_and_wait_and_grows_with_the_fan_out(reg: Registry, vendor: str) -> None:
    one = _cost(reg, vendor, 1, 1)
    assert 0 < one.wait_ns < one.duration_ns  # submission and execution around the waits
    assert 0 < one.effective_ns <= one.duration_ns
    # Every mm is one notifier call with the hardware idle after it: cost is linear in the mms.
    for mms in (2, 7, 300):
        c = _cost(reg, vendor, mms, 1)
        assert c.duration_ns == mms * one.duration_ns
        assert c.wait_ns == mms * one.wait_ns
        assert {k: n for k, n in c.commands.items()} == {k: mms * n for k, n in one.commands.items()}
    # More PASIDs per mm: more device invalidations (and on VT-d/AMD more IOTLB ones): more time.
    assert _cost(reg, vendor, 3, 4).duration_ns > _cost(reg, vendor, 3, 1).duration_ns


@pytest.mark.parametrize("vendor", VENDORS)
def test_flush_time_grows_with_the_number_of_iommus(reg: Registry, vendor: str) -> None:
    one = one_batch(reg, vendor, "iommu.count=1")
    two = one_batch(reg, vendor, "iommu.count=2")
    four = one_batch(reg, vendor, "iommu.count=4")
    assert two["flush_time_ns"] == 2 * one["flush_time_ns"]
    assert four["flush_time_ns"] == 4 * one["flush_time_ns"]
    assert sum(four["iommu_commands"].values()) == 4 * sum(one["iommu_commands"].values())


@pytest.mark.parametrize("vendor", VENDORS)
def test_the_shortcut_for_identical_mms_equals_the_step_by_step_queue(reg: Registry, vendor: str) -> None:
    fast = _cost(reg, vendor, 40, 3)
    # A background stream whose first burst comes long after the flush forces the step-by-step path.
    slow = _cost(reg, vendor, 40, 3, background_burst=1, background_period="1s")
    assert (fast.duration_ns, fast.effective_ns, fast.wait_ns, fast.commands) == (
        slow.duration_ns, slow.effective_ns, slow.wait_ns, slow.commands
    )


def test_vendors_differ_by_mechanism(reg: Registry) -> None:
    vtd = _cost(reg, "intel-vtd", 1, 1)
    amd = _cost(reg, "amd-vi", 1, 1)
    smmu = _cost(reg, "arm-smmuv3", 1, 1)
    assert len({vtd.duration_ns, amd.duration_ns, smmu.duration_ns}) == 3
    # AMD polls its completion semaphore with udelay(1): its waits are whole microseconds.
    assert amd.wait_ns % 1000 == 0
    # SMMUv3 with MSI completion beats polling with exponential back-off.
    assert _cost(reg, "arm-smmuv3", 1, 1, sync_wait="msi").duration_ns < smmu.duration_ns


# --------------------------------------------------------------------------- queue-full stalls


def test_intel_vtd_full_ring_stalls_the_submitter(reg: Registry) -> None:
    # At t = 100us another submitter queues 255 descriptors into the 256-entry ring. Our first
    # qi_submit_sync needs count + 2 = 4 free entries: it spins until 3 of them have executed.
    m = model(reg, "intel-vtd", background_burst=255, background_period="100us")
    c = m.invalidate_kernel_range(100_000, SvaTopology(1, 1, 1, 0))
    exec_iotlb = cls_param(type(m), "exec_iotlb").canonical_default()
    assert (c.stalls, c.stall_ns) == (1, 3 * exec_iotlb)
    assert c.wait_ns >= 252 * exec_iotlb  # and then waits behind the rest of the burst (FIFO)
    # It occupies count + 1 = 3 entries (the spare one stays free): 252 + 3 = the burst's 255.
    assert m.metrics()["per_iommu"][0]["peak_occupancy"] == 255


def test_amd_vi_full_buffer_stalls_in_udelay_steps(reg: Registry) -> None:
    # 510 of 512 entries taken; iommu_queue_command needs more than 2 entries left: one must
    # execute (130 ns), seen by the udelay(1) polling loop after 1 us.
    m = model(reg, "amd-vi", background_burst=510, background_period="100us")
    c = m.invalidate_kernel_range(100_000, SvaTopology(1, 1, 1, 0))
    assert (c.stalls, c.stall_ns) == (1, 1000)


def test_arm_smmuv3_full_queue_stalls_the_submitter(reg: Registry) -> None:
    # 127 of 128 entries taken; TLBI + CMD_SYNC need 2: the first background command executes after
    # 130 ns, seen by the 20 ns cpu_relax() polls at 140 ns.
    m = model(reg, "arm-smmuv3", background_burst=127, background_period="100us")
    c = m.invalidate_kernel_range(100_000, SvaTopology(1, 1, 1, 0))
    assert (c.stalls, c.stall_ns) == (1, 140)


def test_arm_smmuv3_own_atc_storm_fills_the_queue(reg: Registry) -> None:
    # 200 ATS masters per mm: batches of 64 are issued without a sync; two fill the 128-entry queue
    # (each CMD_ATC_INV takes 1.5 us), so the third waits for room.
    c = model(reg, "arm-smmuv3").invalidate_kernel_range(0, SvaTopology(1, 200, 1, 0))
    assert c.commands == {"CMD_TLBI_NH_ASID": 1, "CMD_ATC_INV": 200, "CMD_SYNC": 2}
    assert c.stalls >= 1 and c.stall_ns > 0


@pytest.mark.parametrize(
    ("vendor", "burst", "period"),
    [("intel-vtd", 250, "30us"), ("amd-vi", 510, "60us"), ("arm-smmuv3", 127, "15us")],
)
def test_queue_stalls_are_counted_in_the_run_metrics(reg: Registry, vendor: str, burst: int, period: str) -> None:
    # Background bursts that take longer to execute than their period keep the queue full.
    m = one_batch(reg, vendor, f"iommu.params.background_burst={burst}", f"iommu.params.background_period={period}")
    assert m["iommu_queue_stalls"] > 0 and m["iommu_stall_ns"] > 0
    per_unit = [u["queue_stalls"] for u in m["iommus"]]
    assert all(n > 0 for n in per_unit) and sum(per_unit) == m["iommu_queue_stalls"]
    quiet = one_batch(reg, vendor)
    assert quiet["iommu_queue_stalls"] == 0
    assert m["flush_time_ns"] > quiet["flush_time_ns"]


# --------------------------------------------------------------------------- caches and arch


def test_smmuv3_cache_geometry_is_gem5s(reg: Registry) -> None:
    m = one_batch(reg, "arm-smmuv3")
    caches = m["_sim"].kernel.iommus[0].caches
    assert {lv: (c.entries, c.ways) for lv, c in caches.items()} == {1: (348, 4), 2: (28, 4), 3: (4, 4)}
    assert caches[1].nsets == 87


@pytest.mark.parametrize("vendor", ("intel-vtd", "amd-vi"))
def test_assumed_cache_geometry_is_a_parameter(reg: Registry, vendor: str) -> None:
    m = one_batch(reg, vendor, "iommu.params.cache_l1=64", "iommu.params.cache_ways=0")
    c = m["_sim"].kernel.iommus[1].caches[1]
    assert (c.entries, c.ways, c.nsets) == (64, 64, 1)
    assert "assumed" in cls_param(reg.iommu_models[vendor], "cache_l1").help


def test_smmuv3_on_arm64_never_caches_kernel_tables(reg: Registry) -> None:
    hot = ("run.duration=10ms", "iommu.model=arm-smmuv3", "iommu.probe_target=adversarial",
           "iommu.probe_rate=500000/s")
    arm = build_simulation(make_config(reg, *hot, "kernel.arch=arm64"), reg).run()
    x86 = build_simulation(make_config(reg, *hot, "kernel.arch=x86_64"), reg).run()
    assert arm["flushes"] == 0 and not arm["async_kernel_pgtable_free"]
    assert all(u["kernel_entries"] == 0 for u in arm["iommus"])
    assert arm["stale_walk_queued"]["total"] == 0
    assert all(v["total"] == 0 for v in arm["violations"].values())
    # The same device on x86_64 does reach kernel tables (and the 6.19 flush protects them).
    assert x86["flushes"] > 0 and sum(u["kernel_entries"] for u in x86["iommus"]) > 0


def test_model_metrics_report_the_queue(reg: Registry) -> None:
    for vendor in VENDORS:
        m = one_batch(reg, vendor)
        per = m["iommu_model"]["per_iommu"]
        assert [u["index"] for u in per] == [0, 1]
        assert all(u["peak_occupancy"] > 0 for u in per)
        entries = cls_param(reg.iommu_models[vendor], "queue_entries").canonical_default()
        assert m["iommu_model"]["queue_entries"] == entries
        for unit in m["iommus"]:
            assert unit["wait_ns"] > 0 and unit["flush_ns"] >= unit["wait_ns"]
            assert {"hit_rate", "stale_entries", "queue_stalls"} <= set(unit)


# --------------------------------------------------------------------------- declarations


SOURCES = ("assumed", "drivers/iommu", "gem5", "udelay", "QI_", "CMDQ_", "CMD_BUFFER", "ARM_SMMU_", "kernel-model.md",
           "build_inv_address", "BITS_PER_LONG", "SVA notifier")


@pytest.mark.parametrize("vendor", VENDORS)
def test_every_parameter_says_where_its_default_comes_from(reg: Registry, vendor: str) -> None:
    cls = reg.iommu_models[vendor]
    for p in cls.params:
        assert p.help, (vendor, p.name)
        if p.type == "duration":
            assert "assumed" in p.help or "udelay" in p.help, (vendor, p.name, p.help)
        elif p.type in ("int", "choice") or p.name.startswith(("cache", "queue", "batch")):
            assert any(s in p.help for s in SOURCES), (vendor, p.name, p.help)


def test_models_reject_a_batch_that_cannot_fit_the_queue(reg: Registry) -> None:
    """A config error naming the key (intel-vtd's check_values), not a crash when the run builds it."""
    from explorer.config import ConfigError

    with pytest.raises(ConfigError) as err:
        make_config(reg, "iommu.model=intel-vtd", "iommu.params.queue_entries=20", "iommu.params.batch=32")
    (problem,) = err.value.problems
    assert problem.key == "iommu.params.batch" and "fit in queue_entries 20" in problem.message
    make_config(reg, "iommu.model=intel-vtd", "iommu.params.queue_entries=34", "iommu.params.batch=32")  # fits


def test_registry_is_not_modified_for_other_tests(reg: Registry) -> None:
    fresh = load_registry(entry_points=False)
    assert OneBatch.name not in fresh.workloads
    assert set(VENDORS) <= set(fresh.iommu_models)
    # The models are plain data to a config: they round-trip like any plugin.
    cfg = make_config(fresh, "iommu.model=arm-smmuv3")
    assert copy.deepcopy(cfg) == cfg and replace(SvaTopology(1, 1, 1, 0), sva_mms=2).sva_mms == 2


def test_docs_list_every_parameter_with_its_default(reg: Registry) -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parent.parent / "docs" / "iommu-models.md").read_text()
    for vendor in (*VENDORS, "generic"):
        cls = reg.iommu_models[vendor]
        section = doc[doc.index(f"### {vendor}\n"):]
        for p in cls.params:
            assert f"| `{p.name}` | {p.show(p.canonical_default())} |" in section, (vendor, p.name)


def test_amd_build_inv_address_as_in_6_19() -> None:
    from importlib import import_module

    amd = import_module("pgtable_explorer_builtin.iommu.amd_vi")
    # One page: the page itself, no S bit.
    assert amd.build_inv_address(0x5123, 100) == (0x5000, 4096)
    # Two pages straddling a 16 KiB boundary inside [0, 16 KiB): the aligned 16 KiB range, S bit.
    assert amd.build_inv_address(0x1000, 0x2000) == (0x1001, 0x4000)
    # (PAGE_OFFSET, TLB_FLUSH_ALL) with 4-level paging: start and end first differ at bit 46, so a
    # 2^47-byte range (the kernel half); the address keeps PAGE_OFFSET's bits above 46.
    start = 0xFFFF_8880_0000_0000
    addr, span = amd.build_inv_address(start, (1 << 64) - 1 - start)
    assert span == 1 << 47 and addr == 0xFFFF_BFFF_FFFF_F001
    # 5-level paging: they differ at bit 55 > 51, so the whole-PASID address.
    start = 0xFF11_0000_0000_0000
    assert amd.build_inv_address(start, (1 << 64) - 1 - start) == (0x7FFF_FFFF_FFFF_F001, 0)
