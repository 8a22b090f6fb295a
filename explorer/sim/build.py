"""Build a simulation from a validated config and the plugin classes, and run it.

The config is plain data (see ``explorer.config``); the registry maps plugin names to classes.
Everything random is drawn from named streams seeded from ``run.seed``, so a workload's draws do
not depend on the strategy or the IOMMU model: two strategies compared on the same seed see the
identical sequence of unlinks.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from explorer.contract import FreeStrategy, IommuModel, WorkloadSource
from explorer.core_params import async_enabled
from explorer.sim.contexts import KernelContext, WorkloadContext
from explorer.sim.engine import DeadlineProcess, Engine, PluginError, SimulatorError
from explorer.sim.hookcheck import check_geometry
from explorer.sim.iommu import IommuUnit
from explorer.sim.kernel import Kernel
from explorer.sim.memory import STATE_NAMES, OutOfMemory
from explorer.sim.metrics import LogHistogram
from explorer.sim.streams import named_stream, workload_streams
from explorer.sim.sva import BindTraffic, bound_counts
from explorer.tracelines import trace_line  # here too: tests, the testing kit and hunts import it from build


class PluginTables(Protocol):
    """What the simulator needs of a plugin registry (``explorer.plugins.Registry`` has it)."""

    @property
    def strategies(self) -> Mapping[str, type[FreeStrategy]]: ...

    @property
    def iommu_models(self) -> Mapping[str, type[IommuModel]]: ...

    @property
    def workloads(self) -> Mapping[str, type[WorkloadSource]]: ...


class BuildError(ValueError):
    """The config names a plugin that is not loaded (the config layer normally catches this)."""


def _params(cls: type[Any], given: Mapping[str, Any]) -> dict[str, Any]:
    out = {p.name: p.canonical_default() for p in cls.params}
    out.update({k: v for k, v in given.items() if k in out})
    return out


def _instantiate(kind: str, name: str, cls: type[Any], params: Mapping[str, Any]) -> Any:
    try:
        return cls(_params(cls, params))
    except Exception as exc:
        raise PluginError(kind, name, exc) from exc


class _LineWriter:
    """A trace sink that writes each record as a line (see :meth:`Simulation.trace_to`)."""

    __slots__ = ("write",)

    def __init__(self, write: Callable[[str], object]) -> None:
        self.write = write

    def append(self, record: tuple[int, str, dict[str, Any]], /) -> None:
        self.write(trace_line(record) + "\n")


class Simulation:
    """One run: advance it in steps (the TUI) or all at once (the CLI); read snapshots and metrics."""

    def __init__(self, config: Mapping[str, Any], registry: PluginTables) -> None:
        self.config = config
        run = config["run"]
        kcfg = config["kernel"]
        icfg = config["iommu"]
        scfg = config["strategy"]
        self.seed = int(run["seed"])
        self.duration = int(run["duration"])
        self.drain = int(run["drain"])
        self.end_ns = self.duration + self.drain
        self.finished = False
        self.closed = False
        self.failed: PluginError | None = None

        for kind, name, table in (
            ("strategy", scfg["name"], registry.strategies),
            ("iommu", icfg["model"], registry.iommu_models),
            *(("workload", w["name"], registry.workloads) for w in config.get("workload", [])),
        ):
            if name not in table:
                raise BuildError(f"{kind} {name!r} is not loaded; available: {', '.join(sorted(table))}")

        strategy = _instantiate("strategy", scfg["name"], registry.strategies[scfg["name"]], scfg.get("params", {}))
        model_cls = registry.iommu_models[icfg["model"]]
        model = _instantiate("iommu", icfg["model"], model_cls, icfg.get("params", {}))
        arch = kcfg["arch"]
        walks_kernel_half = model_cls.walks_kernel_half
        if walks_kernel_half is None:
            walks_kernel_half = arch == "x86_64"

        self.engine = Engine()
        self.pages = int(kcfg["pages"])
        try:
            k = self.kernel = self._kernel(kcfg, icfg, scfg, strategy, model, walks_kernel_half)
        except OutOfMemory:
            raise BuildError(
                f"kernel.pages = {self.pages} is too small: the machine runs out of pages before the run "
                f"starts (kernel.kernel_slots = {kcfg['kernel_slots']} kernel page tables, half the memory "
                "as data); raise kernel.pages or lower kernel.kernel_slots") from None

        try:
            geometry = check_geometry(model.cache_geometry(), icfg["model"])
        except SimulatorError:
            raise
        except Exception as exc:
            raise PluginError("iommu", icfg["model"], exc) from exc
        if k.sva_present:
            bound = bound_counts(int(icfg["sva_mms"]), int(icfg["count"]), int(icfg.get("iommus_per_mm", 0)))
            for i in range(int(icfg["count"])):
                unit = IommuUnit(
                    k.space,
                    self.engine,
                    k.checker,
                    k.trace,
                    i,
                    geometry,
                    walk_rate=float(icfg["walk_rate"]),
                    probe_rate=float(icfg["probe_rate"]),
                    probe_target=str(icfg["probe_target"]),
                    probe_mms=int(icfg["probe_mms"]),
                    user_slots=int(icfg["user_slots"]),
                    walks_kernel_half=walks_kernel_half,
                    seed=self.seed,
                    sva_mms=k.sva_mms,
                    bound_mms=bound[i],
                )
                k.iommus.append(unit)
                unit.start()
        if float(icfg.get("bind_rate", 0.0)) > 0 and k.sva_present:
            k.sva_binds = BindTraffic(k, float(icfg["bind_rate"]), int(icfg.get("bind_hold", 0)),
                                      named_stream(self.seed, "iommu/bind"))
            k.sva_binds.start(self.duration)
        k.start_background(float(kcfg["background_alloc_rate"]))

        setup_ctx = KernelContext(k, 0, False, "setup")
        try:
            strategy.setup(setup_ctx)
        except Exception as exc:
            raise PluginError("strategy", scfg["name"], exc) from exc

        self.workloads: list[tuple[str, WorkloadContext]] = []
        names_seen: dict[str, int] = {}
        for w in config.get("workload", []):
            name = w["name"]
            params = {key: v for key, v in w.items() if key != "name"}
            src = _instantiate("workload", name, registry.workloads[name], params)
            n = names_seen.get(name, 0)
            names_seen[name] = n + 1
            label = name if n == 0 else f"{name}#{n}"
            wctx = WorkloadContext(k, label, workload_streams(self.seed, label))
            self.workloads.append((label, wctx))
            try:
                gen = src.process(wctx)
            except Exception as exc:
                raise PluginError("workload", label, exc) from exc
            DeadlineProcess(self.engine, gen, label, wctx, self.duration).resume(None)


    def _kernel(self, kcfg: Mapping[str, Any], icfg: Mapping[str, Any], scfg: Mapping[str, Any],
                strategy: FreeStrategy, model: IommuModel, walks_kernel_half: bool) -> Kernel:
        """The kernel with its page tables linked and half the memory handed out as data
        (:func:`explorer.sim.machine.boot_machine`)."""
        k = Kernel(
            engine=self.engine,
            seed=self.seed,
            cpus=int(kcfg["cpus"]),
            pages=int(kcfg["pages"]),
            kernel_slots=int(kcfg["kernel_slots"]),
            slot_refill_ns=int(kcfg["slot_refill"]),
            async_free=async_enabled(kcfg),
            # 6.18.4-6.18.6 refused every SVA bind on x86: as if no mm were ever bound
            sva_enabled=bool(kcfg["iommu_sva"]) and not (kcfg.get("sva_x86_disabled") and kcfg["arch"] == "x86_64"),
            walks_kernel_half=walks_kernel_half,
            workqueue_delay=int(kcfg["workqueue_delay"]),
            preemption=str(kcfg.get("preemption", "voluntary")),
            spinlock_ns=int(kcfg["spinlock_ns"]),
            free_page_ns=int(kcfg["free_page_ns"]),
            strategy=strategy,
            strategy_name=scfg["name"],
            iommu_model=model,
            iommu_model_name=icfg["model"],
            iommu_count=int(icfg["count"]),
            sva_mms=int(icfg["sva_mms"]),
            pasids_per_mm=int(icfg["pasids_per_mm"]),
        )
        return k

    # -- running ------------------------------------------------------------------------------
    @property
    def now(self) -> int:
        return self.engine.now

    def enable_trace(self, size: int = 2000) -> None:
        """Keep the last ``size`` kernel trace events for :meth:`trace_lines` (off by default)."""
        self.kernel.tracer = deque(maxlen=size)

    def trace_to(self, write: Callable[[str], object]) -> None:
        """Send every kernel trace event, as a trace line with its newline, to ``write`` as it
        happens (``run --trace FILE``); instead of :meth:`enable_trace`."""
        self.kernel.tracer = _LineWriter(write)

    def advance(self, until: int) -> None:
        """Run events up to simulated time ``until`` (capped at the end of the run)."""
        if self.finished:
            return
        until = min(until, self.end_ns)
        try:
            if self.engine.now < self.duration:
                self.engine.run(min(until, self.duration))
            # After the workloads stop, end as soon as nothing is left queued.
            if (
                self.engine.now >= self.duration
                and until >= self.duration
                and (self.engine.run_until_true(until, self._quiet) or self.engine.now >= self.end_ns)
            ):
                self._finish()
        except PluginError as err:
            self.failed = err
            self.finished = True
            raise
        except OutOfMemory:
            self.finished = True
            raise OutOfMemory(
                f"the simulated machine ran out of free pages at t={self.engine.now / 1e9:.6f}s: kernel.pages = "
                f"{self.pages} is too small for this workload; raise kernel.pages (or lower the workloads' "
                "rates and bursts)") from None

    def _quiet(self) -> bool:
        return self.kernel.quiescent() and not any(w.in_op for _, w in self.workloads)

    def _finish(self) -> None:
        if not self.finished:
            self.finished = True
            self.kernel.report_leaks()

    def run(self, progress: Callable[[float], None] | None = None, steps: int = 100) -> dict[str, Any]:
        """Run to the end and return the metrics. ``progress(fraction)`` is called as it goes."""
        step = max(1, self.end_ns // steps)
        while not self.finished:
            self.advance(self.engine.now + step)
            if progress is not None:
                progress(1.0 if self.finished else min(1.0, self.engine.now / self.end_ns))
        return self.metrics()

    def close(self) -> None:
        """Free the run's memory now (read its metrics first): a run's kernel, engine and IOMMUs
        refer to one another, so a dropped simulation waits for Python's cyclic collector, and a
        sweep's or a hunt's worker, running thousands of short runs, spends a tenth of a run's
        set-up in it. After this the simulation can be neither advanced nor read."""
        self.closed = True
        self.finished = True
        self.engine.clear()
        self.kernel.release()
        self.workloads.clear()

    def __enter__(self) -> Simulation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ------------------------------------------------------------------------------
    def metrics(self) -> dict[str, Any]:
        if self.closed:
            raise RuntimeError("the simulation was closed: read its metrics before close()")
        k = self.kernel
        st = k.stats
        # Device walks of user addresses are replayed lazily; bring them up to now first, so the
        # numbers do not depend on whether (or when) anything read the caches during the run.
        for u in k.iommus:
            u.catch_up(self.engine.now)
        page_ns = st.page_ns + len(k.pending) * (self.engine.now - k.stats.last_change)
        hits = sum(u.hits for u in k.iommus)
        misses = sum(u.misses for u in k.iommus)
        model_metrics: dict[str, Any] = {}
        try:
            model_metrics = dict(k.iommu_model.metrics())
        except Exception as exc:
            raise PluginError("iommu", k.iommu_model_name, exc) from exc
        return {
            "sim_time_ns": self.engine.now,
            "events": self.engine.events,
            "flushes": st.flushes,
            "flush_time_ns": st.flush_time_ns,
            "flush_ns": st.flush_hist.summary(),
            "iommu_commands": dict(sorted(k.flush_commands.items())),
            "iommu_queue_stalls": k.flush_stalls,
            "iommu_stall_ns": k.flush_stall_ns,
            "iommu_wait_ns": k.flush_wait_ns,
            "iommu_model": model_metrics,
            "worker_runs": st.oneshot_runs + sum(w.runs for w in k.work_items),
            # flush_tlb_kernel_range() / flush_tlb_all() calls made by the workloads
            "kernel_tlb_flushes": st.tlb_flush_calls,
            "worker_cpu_ns": st.worker_cpu_ns,
            # woken kworkers that had to wait for the task on their CPU (kernel.preemption)
            "kworker_cpu_waits": {
                "count": st.kworker_waits,
                "ns": st.kworker_wait_ns + self.engine.now * sum(map(len, k.cpu_waiters)),  # + those still waiting
            },
            "strategy_calls": st.strategy_calls,
            "kernel_tables_unlinked": st.kernel_unlinked,
            "kernel_tables_freed": st.kernel_freed,
            "user_tables_freed": st.user_freed,
            "tables_pending": len(k.pending),
            "queue": {"peak": st.peak_pending, "page_seconds": round(page_ns / 1e9, 9)},
            "latency_ns": st.latency.summary(),
            "caller_ns": st.caller.summary(),
            "latency_ns_by_source": {s: h.summary() for s, h in sorted(st.latency_by_source.items())},
            "caller_ns_by_source": {s: h.summary() for s, h in sorted(st.caller_by_source.items())},
            "flushes_by_source": st.flushes_by_source.as_dict(),
            "cache": {
                "hits": hits,
                "misses": misses,
                "hit_rate": round(hits / (hits + misses), 6) if hits + misses else 0.0,
            },
            "violations": k.checker.as_dict(),
            "stale_walk_queued": k.checker.stale_walk_queued.as_dict(),
            "freed_by_source": st.freed_by_source.as_dict(),
            "unlinked_by_source": st.unlinked_by_source.as_dict(),
            "bypassed_pagetable_free": st.bypassed.as_dict(),
            "starved": st.starved.as_dict(),
            "spinlock_contended": sum(lock.contended for lock in k.spinlocks),
            "sva_mutex_contended": st.mutex_contended,
            # SVA bind/unbind calls and how long they waited for iommu_sva_lock (iommu.bind_rate)
            "sva_bind": k.sva_binds.as_dict() if k.sva_binds is not None else {
                "calls": 0, "contended": 0, "wait_ns": LogHistogram().summary()},
            "async_kernel_pgtable_free": k.async_free,
            "sva_present": k.sva_present,
            "sva_bound_mms": k.sva_mms if k.sva_present else 0,
            "iommus": [u.occupancy() for u in k.iommus],
            "examples": list(k.checker.examples),
            "series": {
                "queue_depth": st.queue_series.as_dict(),
                "flushes": st.flush_series.as_dict(),
                "frees": st.free_series.as_dict(),
            },
        }

    def snapshot(self, pending_limit: int = 50) -> dict[str, Any]:
        """What a live view shows: metrics plus the queues themselves."""
        k = self.kernel
        now = self.engine.now
        pending = list(k.pending.values())[:pending_limit]
        snap = self.metrics()
        snap.update(
            {
                "now_ns": now,
                "end_ns": self.end_ns,
                "duration_ns": self.duration,
                "finished": self.finished,
                "pending_list": [
                    {
                        "pfn": pt.page,
                        "slot": pt.slot,
                        "level": pt.level,
                        "source": pt.source,
                        "age_ns": now - pt.unlinked_at,
                    }
                    for pt in pending
                ],
                "work_items": [{"name": w.name, "state": w.state, "runs": w.runs} for w in k.work_items],
            }
        )
        return snap

    def trace_lines(self) -> list[str]:
        """The kept trace events as kernel trace lines: ``  kworker/0-  [000]  1.000020: flush_start: ...``."""
        if self.kernel.tracer is None:
            return []
        if not isinstance(self.kernel.tracer, deque):
            return []
        return [trace_line(rec) for rec in self.kernel.tracer]

    def invariant_problems(self) -> list[str]:
        """Conservation and allocator consistency; empty when everything holds."""
        return self.kernel.conservation_problems()


def build_simulation(config: Mapping[str, Any], registry: PluginTables) -> Simulation:
    """Construct a ready-to-run :class:`Simulation` from a validated config."""
    return Simulation(config, registry)


__all__ = ["STATE_NAMES", "BuildError", "Simulation", "build_simulation", "trace_line"]
