"""F1 help for the focused widget: what the part of the screen that has the focus shows.

Each screen may define ``focus_help() -> Here | None``; F1 puts its answer above the screen's keys.
The texts for the panes and tables live here, one place, so the help, the docs and the widgets agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import RenderableType


@dataclass(frozen=True)
class Here:
    """The focused part of the screen: a title (``Here: …``) and what to say about it."""

    title: str
    body: RenderableType


#: The Run screen's tabs (TabbedContent pane ids).
RUN_PANES = {
    "tab-log": ("Log tab", "The kernel's trace, one line per event in the style of ftrace "
                "(pagetable_free, kernel_pgtable_work_func, iommu_sva_invalidate_kva_range, frees, stale walks). "
                "The filter above it keeps the lines that contain every word typed (-word excludes a "
                "word); empty shows all. The newest line is at the bottom; the log keeps the last 2000."),
    "tab-queues": ("Queues tab", "The queues themselves, as of the latest snapshot. The pending list: kernel "
                   "tables unlinked and waiting to be freed (pfn, slot, level, the workload source that "
                   "unlinked it and its age). The work items: idle, pending (queued, not yet running) or "
                   "running, and how often each ran. Per IOMMU: cache occupancy against capacity, kernel "
                   "entries, and stale entries (cached pointers to tables already unlinked; each one is a "
                   "walk away from a use-after-free once its page is freed)."),
    "tab-violations": ("Violations tab", "Every violation the checker caught, by kind and by the workload source "
                       "that caused it, with the first examples (pfn, slot, times). unflushed free: a kernel "
                       "table was freed before every IOMMU completed an invalidation started after its unlink "
                       "(found at every free, no device needed; 'freed by' names the code path: caller, "
                       "kworker:WORK, timer). use-after-free: a device "
                       "walked a cached pointer into a page that was freed and reused; stale_walk_free: into a "
                       "freed page not yet reused; sleep_in_atomic: a strategy slept (an IOMMU flush waits) "
                       "with a spin lock held; leaked: unlinked but never freed by the end."),
    "tab-latency": ("Latency tab", "Percentiles of the unlink-to-free latency (how long a table waits, memory "
                    "held) and of the caller time (what the kernel path that freed it paid inline), overall "
                    "and per workload source."),
    "tab-metrics": ("Metrics tab", "Every metric of the run, as `pgtable-explorer run --format json` prints "
                    "it; Export writes them as JSON or CSV and Copy puts them on the clipboard (keys below)."),
}

#: A failed run's error panel (it takes the place of the tabs); ``{reset}`` etc. are the keys in effect.
ERROR_PANEL_HELP = ("the error panel", "The run failed: a plugin (or the simulator) raised. At the top, the error "
                    "and the plugin that raised it (its name, version and where it was loaded from: built in, an "
                    "installed package, a --plugins-dir folder), and whether it raised while the simulation was "
                    "built or while it ran; below, the traceback from the simulation process (it scrolls). "
                    "{copy} copies the traceback, {reset} resets the run (a new simulation process from time "
                    "zero, with the current config), {config} goes to the config to choose another plugin or "
                    "fix a value, {stop} stops the simulation process (one that hangs rather than raises).")

#: What the headline metric columns mean (the Sweep results; the Compare rows say the same in words).
METRIC_HELP = {
    "#": "The point's number in the sweep (the order of the grid, seeds innermost).",
    "seed": "The run's seed: the workload, the devices and the background traffic draw from streams "
            "seeded by it, so the same config and seed give the same numbers everywhere.",
    "status": "ok, or failed with its error (a plugin raised, a worker died, a timeout); a failed point "
              "is retried once on another worker.",
    "flushes": "IOMMU flushes (iommu_sva_invalidate_kva_range calls that reached the IOMMUs). Fewer is "
               "cheaper; batching trades them for memory held and latency.",
    "queue.peak": "The most kernel tables pending at once (unlinked, not yet freed).",
    "queue.page_seconds": "Memory held while waiting: the integral of the pending queue over simulated "
                          "time, in page-seconds (4 KiB pages).",
    "latency_ns.p99": "99th percentile of the unlink-to-free latency of kernel tables.",
    "caller_ns.p99": "99th percentile of the time the freeing kernel path spent inline (in atomic context "
                     "when it holds a spin lock).",
    "violations": "Every violation the checker caught: unflushed frees, use-after-free, stale walks into free "
                  "pages, double frees, frees while linked, leaks and sleeping in atomic context. Not zero: red.",
}

COMPARE_HELP = ("One column per strategy (or IOMMU model), each run in its own process on the identical "
                "workload settings and seed. The verdict row: ✗ and the kinds of violation for an unsafe "
                "variant (any violation, unflushed frees included), ✓ safe once one finished without any, "
                "'none yet' while it runs. Each row is a metric; ★ marks the best (lowest) value of the row "
                "among the variants that finished safe, where they differ (an unsafe or unfinished one "
                "never gets a ★; rows such as tables freed or the hit rate are not ranked), and violations "
                "that are not zero are red. A yellow note below the table says when the variants did not "
                "unlink the same tables (a strategy that blocks its callers slows the sources down). Below, "
                "a chart of each one's pending queue depth over simulated time.")

PLUGINS_HELP = {
    "loaded": ("Loaded plugins", "Each plugin that loaded: its kind, where it came from (built-in, an "
               "installed package's entry point, or a --plugins-dir folder), its version and what it "
               "registers (strategies, IOMMU models, workloads, scenarios)."),
    "failed": ("Plugins that failed to load", "Each plugin that failed, with where it came from and its "
               "error; enter shows the whole traceback. Everything else keeps working."),
}

SWEEP_AXES_HELP = ("Sweep axes", "Each row is a swept key and its values, and the same axis as a CLI flag "
                   "(--grid or --range); the keys below edit, remove and add axes.")
