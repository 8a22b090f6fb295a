"""Parameters of the simulated machine itself, declared exactly like plugin parameters.

They fill the ``[run]``, ``[kernel]`` and ``[iommu]`` tables of a config (plugin parameters go in
``[strategy.params]``, ``[iommu.params]`` and inline in each ``[[workload]]``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from explorer.contract import Param, ParamError
from explorer.units import DURATION_UNITS, NUMBER

_SPEED_RE = re.compile(rf"^\s*({NUMBER})\s*(ns|us|µs|ms|s)\s*/\s*s\s*$")
SPEED_PATTERN = rf"^\s*(max|({NUMBER})\s*(ns|us|µs|ms|s)\s*/\s*s)\s*$"


class SpeedParam(Param):
    """``run.speed``: simulated time per wall second, written with units as every other value is
    (``"10ms/s"``, ``"1us/s"``, ``"max"``). A bare number, as configs were written before, is still
    read: microseconds per wall second, 0 for max. The canonical value stays that number."""

    def _convert(self, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.lower() == "max":
                return 0.0
            m = _SPEED_RE.match(text)
            if m is None:
                try:
                    return float(text)  # "10000" on the command line: the old bare number
                except ValueError:
                    raise ParamError(f"expected a speed such as '10ms/s', '1us/s' or 'max', got {value!r}") \
                        from None
            number, unit = float(m.group(1)), m.group(2)
            if unit in ("us", "µs"):  # the canonical unit: exact, so a saved value reads back the same
                return number
            return number * DURATION_UNITS[unit] / 1000.0
        return super()._convert(value)

    def to_toml(self, value: Any) -> Any:
        us = float(value)
        if us <= 0:
            return "max"
        for unit, per in (("s", 1e6), ("ms", 1e3)):
            if us >= per and (us / per).is_integer():
                return f"{int(us / per)}{unit}/s"
        return f"{int(us) if us.is_integer() else repr(us)}us/s"

    def show(self, value: Any) -> str:
        return str(self.to_toml(value))

    def describe_type(self) -> str:
        return "speed (simulated time per wall second, or max)"

    def json_schema(self, bounds: Mapping[str, Any]) -> dict[str, Any]:
        return {"anyOf": [{"type": "string", "pattern": SPEED_PATTERN}, {"type": "number", **bounds}]}


RUN_PARAMS: tuple[Param, ...] = (
    Param(
        "duration", "duration", "100ms", help="Simulated time during which the workloads run.", min=1, max=3600 * 10**9
    ),
    Param(
        "seed", "int", 1, help="Seed of every random stream; same config + seed = same numbers.", min=0, max=2**63 - 1
    ),
    Param(
        "drain",
        "duration",
        "50ms",
        help="After the workloads stop, how long the kernel may take to free what is still queued; "
        "tables still unfreed after that are reported as leaked.",
        min=0,
        max=3600 * 10**9,
    ),
    SpeedParam(
        "speed",
        "float",
        "10ms/s",
        help="TUI only: simulated time per wall second, such as '10ms/s' or '1us/s', or 'max' (as fast as "
        "possible); a bare number is microseconds per second (0 = max). The default plays 100ms of kernel "
        "time in 10 seconds, slow enough to watch the queue fill and drain.",
        unit="us/s",
        min=0.0,
        max=1e9,
    ),
)

KERNEL_PARAMS: tuple[Param, ...] = (
    Param(
        "arch",
        "choice",
        "x86_64",
        choices=("x86_64", "arm64"),
        help="Architecture: on arm64 the SMMU's SVA walks never reach kernel tables (EPD1), and "
        "ASYNC_KERNEL_PGTABLE_FREE is not selected.",
    ),
    Param("cpus", "int", 8, help="Number of CPUs.", min=1, max=4096),
    Param(
        "async_kernel_pgtable_free",
        "choice",
        "auto",
        choices=("auto", "y", "n"),
        help="CONFIG_ASYNC_KERNEL_PGTABLE_FREE. It has no prompt: 'auto' is what Kconfig selects "
        "(y on x86_64 when IOMMU_SVA=y, else n). With n, pagetable_free_kernel() is "
        "__pagetable_free() and the strategy is never called.",
    ),
    Param(
        "iommu_sva",
        "bool",
        True,
        help="CONFIG_IOMMU_SVA: devices may bind process address spaces (PASIDs). Without it no "
        "mm is ever SVA-bound and the kernel-range invalidation returns at once.",
    ),
    Param(
        "sva_x86_disabled",
        "bool",
        False,
        help="Linux 6.18.4 - 6.18.6: 'iommu: disable SVA when CONFIG_X86 is set' (72f98ef9a4be) makes "
        "iommu_sva_bind_device() fail with -EOPNOTSUPP on x86, so no mm is ever SVA-bound: no device "
        "walks a PASID, no hazard and no flush (devices that need SVA lose it).",
    ),
    Param(
        "workqueue_delay",
        "duration",
        "20us",
        help="Time from schedule_work() on an idle item until the calling CPU's kworker is woken to run "
        "it (assumed). A running item scheduled again runs again straight after, with no delay.",
        min=0,
        max=10**10,
    ),
    Param(
        "preemption",
        "choice",
        "voluntary",
        choices=("none", "voluntary", "full"),
        help="Preemption model (CONFIG_PREEMPT_NONE / _VOLUNTARY / CONFIG_PREEMPT, or preempt= with "
        "PREEMPT_DYNAMIC). Without full preemption a kworker woken on a CPU cannot run until the task "
        "there leaves the CPU (voluntary: or reaches a might_sleep() point), so a long free path "
        "batches everything it queued. Default voluntary: what x86 distributions ship (Debian, Ubuntu, "
        "Fedora: PREEMPT_DYNAMIC with PREEMPT_VOLUNTARY as the boot default).",
    ),
    Param(
        "spinlock_ns",
        "duration",
        "50ns",
        help="CPU time for an uncontended spin_lock/spin_unlock pair (assumed).",
        min=0,
        max=10**7,
    ),
    Param(
        "free_page_ns",
        "duration",
        "200ns",
        help="CPU time of __pagetable_free() for one page (assumed).",
        min=0,
        max=10**8,
    ),
    Param(
        "background_alloc_rate",
        "rate",
        "200000/s",
        help="Page allocations by the rest of the kernel (what reuses a freed table), machine-wide; "
        "the same rate of data pages is freed back.",
        unit="/s",
        min=0.0,
        max=1e9,
    ),
    # max: a page costs the simulator about 5 bytes (its state and its slot in the data pages'
    # ring) and a few ns to set up, so 10**7 pages take about 100 MB of RSS and under a second
    # before the first event (660 MB and 1.8 s before the machine held no per-page lists).
    Param("pages", "int", 16384, help="Pages of memory in the simulated machine.", min=64, max=10**7),
    Param(
        "kernel_slots",
        "int",
        512,
        help="Kernel address-space slots (each maps through one table) that workloads use.",
        min=1,
        max=10**7,
    ),
    Param(
        "slot_refill",
        "duration",
        "1ms",
        help="Mean time until an emptied kernel slot is mapped at small granularity again "
        "(a new table is allocated for it).",
        min=0,
        max=10**12,
    ),
)

IOMMU_PARAMS: tuple[Param, ...] = (
    Param("model", "str", "generic", help="IOMMU model plugin."),
    Param(
        "count",
        "int",
        2,
        help="Number of IOMMUs (each with its own paging-structure cache and devices).",
        min=0,
        max=256,
    ),
    Param(
        "sva_mms",
        "int",
        16,
        help="Processes (mms) bound with SVA; each kernel-range flush fans out over all of them.",
        min=0,
        max=100_000,
    ),
    Param("pasids_per_mm", "int", 1, help="PASIDs per SVA-bound mm (per IOMMU).", min=1, max=64),
    Param(
        "iommus_per_mm",
        "int",
        1,
        help="IOMMUs each SVA-bound mm is bound on (those of the devices that bound it): mm i on IOMMUs "
        "i, i+1, ... (mod count). A flush on an IOMMU costs only the mms bound there. 0 = every mm on "
        "every IOMMU. Default 1: a process binds one accelerator (assumed).",
        min=0,
        max=256,
    ),
    Param(
        "bind_rate",
        "rate",
        "0/s",
        help="SVA bind and unbind calls (alternating), machine-wide; each takes iommu_sva_lock, so a "
        "busy flush delays them (metric sva_bind.wait_ns). 0 = none (assumed).",
        unit="/s",
        min=0.0,
        max=1e8,
    ),
    Param(
        "bind_hold",
        "duration",
        "5us",
        help="Time a bind or unbind holds iommu_sva_lock (assumed).",
        min=0,
        max=10**9,
    ),
    Param(
        "walk_rate",
        "rate",
        "20000/s",
        help="Paging-structure walks of user addresses per IOMMU (IOTLB misses of device DMA): they fill "
        "the caches and evict kernel entries.",
        unit="/s",
        min=0.0,
        max=1e9,
    ),
    Param(
        "probe_rate",
        "rate",
        "50000/s",
        help="Device walks of kernel addresses per IOMMU (speculation or a malicious device).",
        unit="/s",
        min=0.0,
        max=1e9,
    ),
    Param(
        "probe_target",
        "choice",
        "uniform",
        choices=("uniform", "adversarial"),
        help="uniform: any kernel slot; adversarial: re-probe recently unlinked slots half the time.",
    ),
    Param(
        "probe_mms",
        "int",
        1,
        help="How many of the SVA-bound mms have a device that probes kernel addresses (their PASIDs "
        "tag the cached kernel entries).",
        min=1,
        max=100_000,
    ),
    Param("user_slots", "int", 1024, help="Distinct user-address slots a device walks.", min=1, max=10**8),
)


def async_enabled(kernel_cfg: Mapping[str, Any]) -> bool:
    """CONFIG_ASYNC_KERNEL_PGTABLE_FREE: x86 selects it if IOMMU_SVA; 'y'/'n' force it."""
    choice = kernel_cfg.get("async_kernel_pgtable_free", "auto")
    if choice == "y":
        return True
    if choice == "n":
        return False
    return kernel_cfg.get("arch", "x86_64") == "x86_64" and bool(kernel_cfg.get("iommu_sva", True))
