"""Compare: 2-4 strategies (or IOMMU models) on the identical workload and seed, side by side,
live, each in its own simulation process. A verdict row says which are unsafe (✗, any violation)
and why; the best value of each metric among the safe variants that have finished is marked ★."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Static

from explorer import atomic
from explorer.documents import at_path, flatten_metrics
from explorer.session import Snapshot
from explorer.tui import fmt
from explorer.tui.actions import bindings_for
from explorer.tui.focus_help import COMPARE_HELP, Here
from explorer.tui.screens.base import ExplorerScreen
from explorer.tui.screens.compare_setup import CompareSetup
from explorer.tui.screens.export_dialog import ExportDialog
from explorer.tui.widgets.chart import TimeChart
from explorer.tui.widgets.footer import KeysFooter
from explorer.tui.widgets.topbar import TopBar
from explorer.violations import BY_NAME, describe_differences, unsafe_reasons, workload_differences


def _get(path: str) -> Callable[[dict[str, Any]], Any]:
    return lambda d: at_path(d, path)


def _commands(d: dict[str, Any]) -> Any:
    c = d.get("iommu_commands")
    return sum(c.values()) if isinstance(c, dict) else None


#: (label, getter, better: "low" | "high" | None, formatter)
#: the violation kinds with a row of their own (the total counts every kind)
VIOLATION_KINDS = ("unflushed_free", "use_after_free", "stale_walk_free", "sleep_in_atomic", "leaked")

METRICS: tuple[tuple[str, Callable[[dict[str, Any]], Any], str | None, Callable[[Any], str]], ...] = (
    ("violations (all kinds)", fmt.violations_total, "low", fmt.count),
    *((f"  {BY_NAME[k].short}", _get(f"violations.{k}.total"), "low", fmt.count) for k in VIOLATION_KINDS),
    ("flushes", _get("flushes"), "low", fmt.count),
    ("IOMMU commands", _commands, "low", fmt.count),
    ("flush time", _get("flush_time_ns"), "low", fmt.ns),
    ("kernel tables unlinked", _get("kernel_tables_unlinked"), None, fmt.count),
    ("kernel tables freed", _get("kernel_tables_freed"), None, fmt.count),
    ("pending now", _get("tables_pending"), None, fmt.count),
    ("peak queue depth", _get("queue.peak"), "low", fmt.count),
    ("page-seconds held", _get("queue.page_seconds"), "low", lambda v: "-" if v is None else f"{v:.6f}"),
    ("unlink→free p50", _get("latency_ns.p50"), "low", fmt.ns),
    ("unlink→free p99", _get("latency_ns.p99"), "low", fmt.ns),
    ("unlink→free max", _get("latency_ns.max"), "low", fmt.ns),
    ("caller time p99", _get("caller_ns.p99"), "low", fmt.ns),
    ("caller time max", _get("caller_ns.max"), "low", fmt.ns),
    ("worker CPU", _get("worker_cpu_ns"), "low", fmt.ns),
    ("worker runs", _get("worker_runs"), None, fmt.count),
    ("stale walks (queued, harmless)", _get("stale_walk_queued.total"), None, fmt.count),
    ("cache hit rate", _get("cache.hit_rate"), None, fmt.pct),
)


VIOLATION_ROWS = 1 + len(VIOLATION_KINDS)


def best_indexes(values: list[Any], better: str | None, eligible: set[int] | None = None) -> set[int]:
    """Indexes of the best value (ties all marked); none when all equal or nothing to compare.
    With ``eligible``, only those indexes compete (the safe, finished variants)."""
    nums = [(i, v) for i, v in enumerate(values) if isinstance(v, (int, float)) and not isinstance(v, bool)
            and (eligible is None or i in eligible)]
    if better is None or len(nums) < 2:
        return set()
    if len({v for _, v in nums}) == 1:
        return set()
    target = min(v for _, v in nums) if better == "low" else max(v for _, v in nums)
    return {i for i, v in nums if v == target}


def compare_table(names: list[str], snaps: list[Snapshot | None], states: list[str], errors: list[str]) -> Table:
    t = Table(expand=True, header_style="bold", pad_edge=False, show_edge=False)
    t.add_column("metric", no_wrap=True, overflow="ellipsis", max_width=30)
    for n in names:
        t.add_column(n, justify="right", no_wrap=True, ratio=1, overflow="ellipsis")
    icons = {"running": "▶", "paused": "⏸", "finished": "✓", "failed": "✗", "stopped": "■", "starting": "◌"}
    t.add_row(Text("state · simulated time", style="dim"), *[
        Text(f"{icons.get(st, st)} {fmt.ns(s.now_ns) if s else ''}".strip(),
             style="red" if st in ("failed", "stopped") else ("green" if st == "running" else "dim"))
        for st, s in zip(states, snaps, strict=True)])
    datas = [dict(s.data) if s is not None and s.data else None for s in snaps]
    reasons = [unsafe_reasons(d) for d in datas]
    verdicts = []
    for st, d, r in zip(states, datas, reasons, strict=True):
        if r:  # a violation is final: it cannot un-happen later in the run (the why: under the table)
            verdicts.append(Text("✗ unsafe", style="bold red"))
        elif d is None or st in ("failed", "stopped"):
            verdicts.append(Text("-", style="dim"))
        elif st == "finished":
            verdicts.append(Text("✓ safe", style="green"))
        else:
            verdicts.append(Text("… none yet", style="dim"))
    t.add_row(Text("verdict"), *verdicts)
    # ★ only among variants that finished safe: a running one's counts are not final (0 flushes may
    # only mean its worker has not run yet), and an unsafe one is never best.
    eligible = {i for i, (st, d, r) in enumerate(zip(states, datas, reasons, strict=True))
                if st == "finished" and d is not None and not r}
    for row, (label, get, better, show) in enumerate(METRICS):
        values = [get(d) if d is not None else None for d in datas]
        best = best_indexes(values, better, eligible)
        cells = []
        for i, v in enumerate(values):
            style = "bold red" if row < VIOLATION_ROWS and v else ""
            if i in best:
                cells.append(Text("★ " + show(v), style="bold green"))
            else:
                cells.append(Text(show(v), style=style))
        t.add_row(label, *cells)
    if any(errors):
        t.add_row(Text("error", style="red"), *[Text(e[:40], style="red") for e in errors])
    caption = Text()
    for name, r in zip(names, reasons, strict=True):
        if r:
            caption.append(f"✗ {name} is unsafe: {', '.join(r)}\n", style="bold red")
    # Only finished runs can be told apart from runs that are merely behind.
    diff = workload_differences(datas) if datas and all(st == "finished" for st in states) else {}
    if diff:
        caption.append("! not the same workload: tables unlinked by source differ (" + describe_differences(diff, names)
                       + "): a strategy that blocks its callers slows the sources down", style="bold yellow")
    if caption:
        caption.rstrip()
        t.caption = caption
        t.caption_justify = "left"
    return t


class CompareScreen(ExplorerScreen):
    BINDINGS = bindings_for("compare")

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.chart_names: list[str] = []

    def compose(self) -> ComposeResult:
        yield TopBar("compare")
        yield Static("", id="cmp-title")
        with VerticalScroll(id="cmp-scroll"):
            yield Static("", id="cmp-table")
        yield Horizontal(id="cmp-charts")
        yield KeysFooter(compact=True)

    def focus_help(self) -> Here | None:
        """F1: how to read the table (the one thing on this screen that takes the focus)."""
        return Here("the comparison", Text(COMPARE_HELP))

    def on_mount(self) -> None:
        self.set_interval(0.5, self._tick)

    def on_screen_resume(self) -> None:
        self.query_one(TopBar).set_file(self.xapp.file_label(), self.xapp.dirty)
        if not self.xapp.compare_sessions:
            self.xapp.start_compare()
        self.apply_latest()

    def _tick(self) -> None:
        if self.app.screen is self:
            self.apply_latest()

    async def _ensure_charts(self, names: list[str]) -> None:
        if names == self.chart_names:
            return
        self.chart_names = list(names)
        box = self.query_one("#cmp-charts", Horizontal)
        await box.remove_children()
        # the name alone heads a chart (four fit in 80 columns); what they show is the box's title
        box.border_title = "pending queue depth over simulated time (the maximum in each column)"
        await box.mount_all([TimeChart(n, "max", classes="cmp-chart") for n in names])

    def apply_latest(self) -> None:
        app = self.xapp
        names = list(app.compare_names)
        sessions = list(app.compare_sessions)
        snaps = [s.latest for s in sessions]
        states = [s.state for s in sessions]
        errors = [s.error.title if s.error else "" for s in sessions]
        what = "strategies" if app.compare_kind == "strategy" else "IOMMU models"
        cfg = app.config
        title = Text(f" {what}: ", style="bold")
        title.append(" · ".join(names) or "(none)")
        title.append(f"  speed {fmt.speed(app.compare_speed)}", style="bold")
        title.append(f"  same workloads ({len(cfg.get('workload', []))}), seed {cfg['run']['seed']}, "
                     f"{fmt.ns(cfg['run']['duration'])}", style="dim")
        if any(s.stalled for s in sessions):
            title.append("  NOT RESPONDING: x stops", style="bold white on red")
        self.query_one("#cmp-title", Static).update(title)
        self.query_one("#cmp-table", Static).update(compare_table(names, snaps, states, errors))
        if names != self.chart_names:
            self.run_worker(partial(self._ensure_charts, names), exclusive=True, group="charts")  # type: ignore[arg-type]
            return
        spans = [max(int(s.data.get("duration_ns", 0) or 0), s.now_ns, 1) for s in snaps if s is not None and s.data]
        span = max(spans) if spans else 1
        for chart, snap in zip(self.query(".cmp-chart").results(TimeChart), snaps, strict=False):
            if snap is not None and snap.data:
                chart.set_series((snap.data.get("series") or {}).get("queue_depth"), span, snap.now_ns,
                                 current=snap.data.get("tables_pending", 0))

    # -- actions
    def action_run_pause(self) -> None:
        app = self.xapp
        if not app.compare_sessions:
            app.start_compare()
        sessions = app.compare_sessions
        if any(s.state == "running" for s in sessions):
            for s in sessions:
                s.pause()
            return
        for s in sessions:
            if s.state in ("finished", "stopped", "failed"):
                s.reset()
            s.run()

    # -- speed: the comparison's own (the Run screen's stays as it is)
    def _set_speed(self, speed: float) -> None:
        self.xapp.set_compare_speed(speed)
        self.apply_latest()
        self.notify(f"compare speed {fmt.speed(speed)}", timeout=2)

    def action_faster(self) -> None:
        self._set_speed(fmt.faster(self.xapp.compare_speed))

    def action_slower(self) -> None:
        self._set_speed(fmt.slower(self.xapp.compare_speed))

    def action_max_speed(self) -> None:
        self._set_speed(0.0)

    def action_reset(self) -> None:
        self.xapp.start_compare(self.xapp.compare_kind, self.xapp.compare_names)
        self.notify("every variant reset to time zero", timeout=2)

    def action_choose(self) -> None:
        app = self.xapp

        def done(result: tuple[str, list[str]] | None) -> None:
            if result:
                app.start_compare(*result)
                self.apply_latest()

        self.app.push_screen(CompareSetup(sorted(app.registry.strategies), sorted(app.registry.iommu_models),
                                          app.compare_kind, app.compare_names), done)

    def action_stop(self) -> None:
        forced = [s.stop(timeout=0.5) for s in self.xapp.compare_sessions]
        self.notify(f"stopped {len(forced)} variant(s)" + (" (terminated)" if any(forced) else ""))
        self.apply_latest()

    def _results(self) -> dict[str, Any] | None:
        """The comparison as ``compare --format json`` prints it (``axis``, ``columns`` of label,
        TOML-form config and metrics, the scenario): a variant not run yet has ``metrics: null``, a
        failed one an ``error`` as well."""
        from explorer.documents import compare_document

        app = self.xapp
        sessions = list(app.compare_sessions)
        snaps = [s.latest for s in sessions]
        metrics = [snap.metrics() if snap is not None and snap.data else None for snap in snaps]
        if not any(metrics):
            self.notify("nothing to export yet: space runs the comparison", severity="warning")
            return None
        columns = [(n, s.config, m) for n, s, m in zip(app.compare_names, sessions, metrics, strict=True)]
        return compare_document(app.compare_kind, columns, app.registry, app.scenario,
                                errors=[s.error.as_dict() if s.error else None for s in sessions],
                                finished=[s.state == "finished" for s in sessions])

    def action_export(self) -> None:
        results = self._results()
        if results is None:
            return

        def write(path: str, kind: str) -> str | None:
            from explorer.documents import dumps_json

            if kind == "csv":
                names = [c["label"] for c in results["columns"]]
                flat = {c["label"]: flatten_metrics(c["metrics"] or {}) for c in results["columns"]}
                keys: list[str] = []
                for n in names:
                    keys += [k for k in flat[n] if k not in keys]
                import csv
                import io

                buf = io.StringIO()
                w = csv.writer(buf, lineterminator="\n")
                w.writerow(["metric", *names])
                for k in keys:
                    w.writerow([k, *[flat[n].get(k, "") for n in names]])
                text = buf.getvalue()
            else:
                text = dumps_json(results)
            try:
                atomic.write_text(path, text)
            except OSError as exc:
                return f"cannot write {path}: {exc.strerror or exc}"
            return None

        self.app.push_screen(ExportDialog("pgtable-explorer-compare", write),
                             lambda p: self.notify(f"exported {p}") if p else None)

    def action_copy(self) -> None:
        results = self._results()
        if results is not None:
            from explorer.documents import dumps_json

            self.app.copy_to_clipboard(dumps_json(results))
            self.notify("comparison copied to the clipboard (JSON)")
