"""The live run: counters, charts over simulated time, percentiles, violations, the trace and
the queues, sampled from the session's newest snapshot (never once per simulation event)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.lazy import Lazy
from textual.widgets import Input, Static, TabbedContent, TabPane, Tabs

from explorer import atomic
from explorer.tui import fmt
from explorer.tui.actions import ACTIONS, bindings_for, display_key
from explorer.tui.focus_help import ERROR_PANEL_HELP, RUN_PANES, Here
from explorer.tui.keymap import effective_key
from explorer.tui.screens.base import ExplorerScreen
from explorer.tui.screens.export_dialog import ExportDialog
from explorer.tui.widgets.chart import TimeChart
from explorer.tui.widgets.counter import BigCounter
from explorer.tui.widgets.error_panel import ErrorPanel
from explorer.tui.widgets.event_log import EventLog
from explorer.tui.widgets.footer import KeysFooter
from explorer.tui.widgets.keys_line import KeysLine
from explorer.tui.widgets.percentiles import Percentiles
from explorer.tui.widgets.queues import QueuesView
from explorer.tui.widgets.status_line import StatusLine
from explorer.tui.widgets.topbar import TopBar
from explorer.tui.widgets.violations import ViolationsView

if TYPE_CHECKING:
    from explorer.session import Snapshot


def export_stem(config: dict) -> str:
    return f"pgtable-explorer-{config['strategy']['name']}-seed{config['run']['seed']}"


class RunScreen(ExplorerScreen):
    BINDINGS = bindings_for("run")
    AUTO_FOCUS = "#tabs Tabs"

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.snapshot: Snapshot | None = None
        self.stale = True
        self.applied_seq = -1

    def compose(self) -> ComposeResult:
        yield TopBar("run")
        yield StatusLine(id="status")
        with Horizontal(id="counters"):
            yield BigCounter("flushes", id="c-flushes")
            yield BigCounter("kernel tables freed", short="freed", id="c-freed")
            yield BigCounter("pending now", short="pending", id="c-pending")
            yield BigCounter("violations", alarm=True, id="c-violations")
        with Horizontal(id="middle"):
            with Vertical(id="charts"):
                yield TimeChart("pending queue depth", "max", id="chart-queue")
                yield TimeChart("flushes", "sum", id="chart-flushes")
            with VerticalScroll(id="stats", can_focus=False):  # a scrollbar says when violations run on
                yield Percentiles(id="pct-main")
                yield ViolationsView(id="viol-main")
        yield ErrorPanel(id="error-panel")
        # The hidden tabs' contents mount just after the first frame (Lazy): fewer widgets to style
        # before it (start-up time, docs/performance.md).
        # Queues first, the tab it opens on (docs/tui.md lists them in this order): the Log costs
        # the run its trace lines, so it is asked for, not the default.
        with TabbedContent(id="tabs", initial="tab-queues"):
            with TabPane("Queues", id="tab-queues"), VerticalScroll():
                yield QueuesView(id="queues")
            with TabPane("Log", id="tab-log"):
                yield Lazy(EventLog(id="event-log"))
            with TabPane("Violations", id="tab-violations"):
                yield Lazy(VerticalScroll(ViolationsView(examples=True, id="viol-tab")))
            with TabPane("Latency", id="tab-latency"):
                yield Lazy(VerticalScroll(Percentiles(id="pct-tab")))
            with TabPane("Metrics", id="tab-metrics"):
                yield Lazy(VerticalScroll(Static("", id="metrics-all")))
        yield KeysLine("run", id="run-keys")  # the footer of the narrow layout
        yield KeysFooter(compact=True)

    def on_mount(self) -> None:
        self.set_interval(0.5, self._tick)
        self.refresh_top()
        self._draw_status()

    def on_screen_resume(self) -> None:
        if self.xapp.session is None:  # the first time: start the process once the frame is drawn
            self.call_after_refresh(self.xapp.ensure_session)
        self.refresh_top()
        self.apply_latest(force=True)

    def refresh_top(self) -> None:
        self.query_one(TopBar).set_file(self.xapp.file_label(), self.xapp.dirty)

    # -- sampling
    def apply_latest(self, force: bool = False) -> None:
        """Draw the session's newest snapshot (called on SessionUpdated while this screen shows)."""
        if not self.query(StatusLine):  # the app is closing and took the widgets down first
            return
        session = self.xapp.session
        snap = session.latest if session is not None else None
        if snap is None:
            self._draw_status()
            return
        self._sync_view()
        if snap.seq == self.applied_seq and not force:
            self._draw_status()
            return
        self.applied_seq = snap.seq
        self.snapshot = snap
        with self.app.batch_update():
            self._draw(snap)

    def _draw(self, snap: Snapshot) -> None:
        d = dict(snap.data)
        self._draw_status()
        # A flush counts once it is over, as the chart and the percentiles count it: the kernel's
        # counter goes up when one starts, so mid-flush it would be one ahead of them.
        done, running = fmt.flushes_done(d)
        flushes = self.query_one("#c-flushes", BigCounter)
        flushes.set_value(done)
        flushes.border_subtitle = f"+{running} in progress" if running else ""
        self.query_one("#c-freed", BigCounter).set_value(int(d.get("kernel_tables_freed", 0)))
        self.query_one("#c-pending", BigCounter).set_value(int(d.get("tables_pending", 0)))
        self.query_one("#c-violations", BigCounter).set_value(fmt.violations_total(d))
        series = d.get("series") or {}
        span = max(int(d.get("duration_ns", 0) or 0), snap.now_ns, 1)
        self.query_one("#chart-queue", TimeChart).set_series(series.get("queue_depth"), span, snap.now_ns,
                                                             current=d.get("tables_pending", 0))
        self.query_one("#chart-flushes", TimeChart).set_series(series.get("flushes"), span, snap.now_ns)
        if self.query_one("#stats").display:
            self.query_one("#pct-main", Percentiles).set_data(d)
            self.query_one("#viol-main", ViolationsView).set_data(d)
        error = snap.error or (self.xapp.session.error if self.xapp.session else None)
        self.set_class(error is not None, "-failed")
        self.query_one(ErrorPanel).show_error(error, self.xapp.describe_plugin(error) if error else "")
        active = self.query_one(TabbedContent).active
        if active == "tab-queues":
            self.query_one(QueuesView).set_data(d, still=snap.state != "running")
        elif not self._lazy_mounted():  # the hidden tabs mount after the first frame
            self.call_after_refresh(self.apply_latest, True)
        elif active == "tab-log":
            self.query_one(EventLog).set_trace(snap.trace, snap.trace_file)
        elif active == "tab-violations":
            self.query_one("#viol-tab", ViolationsView).set_data(d)
        elif active == "tab-latency":
            self.query_one("#pct-tab", Percentiles).set_data(d)
        elif active == "tab-metrics":
            from explorer.documents import flatten_metrics

            rows = list(flatten_metrics(snap.metrics()).items())
            width = max((len(k) for k, _ in rows), default=10)
            self.query_one("#metrics-all", Static).update(
                Text("\n".join(f"{k.ljust(width)}  {json.dumps(v)}" for k, v in rows)))

    def _sync_view(self) -> None:
        """Trace lines in the snapshots only while the Log tab shows them (they cost the run)."""
        s = self.xapp.session
        if s is None:
            return
        want = self.query_one(TabbedContent).active == "tab-log"
        if s.opts.get("want_trace", True) != want:
            s.set_view(trace=want)
            if want:
                s.request_snapshot()  # the lines now, also when paused

    def _lazy_mounted(self) -> bool:
        return bool(self.query("#metrics-all")) and bool(self.query("#log-filter"))

    def focus_help(self) -> Here | None:
        """F1: the error panel of a failed run (it replaces the tabs), else the tab that has the focus
        (the tabs and their contents are all that can take it)."""
        if self.has_class("-failed"):
            title, text = ERROR_PANEL_HELP
            return Here(title, Text(text.format(copy=self._key("copy_trace"), reset=self._key("reset"),
                                                config=self._key("screen.config"), stop=self._key("stop"))))
        pane = RUN_PANES.get(self.query_one(TabbedContent).active)
        return Here(*pane) if pane else None

    def _key(self, binding_id: str) -> str:
        """The key of an action as the user's keymap has it (the text must not name a default key)."""
        action = next(a for a in ACTIONS if a.id == binding_id)
        return display_key(effective_key(action, self.xapp.keymap))

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if self.xapp.session is not None and self.xapp.session.latest is not None:
            self._sync_view()
        if self.snapshot is not None:
            self._draw(self.snapshot)
        elif event.pane.id == "tab-log" and self._lazy_mounted():
            self.query_one(EventLog).set_lines(())

    def _draw_status(self) -> None:
        app = self.xapp
        s = app.session
        snap = s.latest if s is not None else None
        cfg = app.config
        what = (f"{cfg['strategy']['name']} · {cfg['iommu']['model']} · {len(cfg.get('workload', []))} workloads · "
                f"seed {cfg['run']['seed']}")
        note = ""
        if s is not None and s.config != app.config and s.state not in ("failed",):
            note = "config changed: r applies it"
        if s is not None and s.state == "stopped":
            note = "space starts again from t=0"
        state = s.state if s is not None else "idle"
        self.query_one(StatusLine).show(
            state,
            snap.now_ns if snap else 0,
            int(snap.data.get("duration_ns", 0)) if snap else int(cfg["run"]["duration"]),
            s.speed if s is not None else float(cfg["run"].get("speed", 0.0)),
            s.step_ns if s is not None else app.step_ns,
            what,
            stalled=bool(s is not None and s.stalled),
            note=note,
        )

    def _tick(self) -> None:
        if self.app.screen is self:
            self._draw_status()

    def on_resize(self) -> None:
        narrow = self.size.width < 100 or self.size.height < 32
        self.set_class(narrow, "-narrow")
        # the footer's keys need about 125 columns on one line; below that they wrap (KeysLine)
        self.set_class(self.size.width < 125, "-wrap-keys")
        tabs = self.query_one(TabbedContent)
        if narrow:
            tabs.show_tab("tab-latency")
        else:
            if tabs.active == "tab-latency":
                tabs.active = "tab-queues"
            tabs.hide_tab("tab-latency")

    # -- actions
    def action_run_pause(self) -> None:
        app = self.xapp
        s = app.ensure_session()
        if s.state in ("finished", "stopped") or (s.state == "failed" and s.config != app.config):
            if s.state == "stopped":  # a stopped process cannot go on where it was
                self.notify("the run was stopped: it starts again from t=0", timeout=4)
            s.reset(app.config)
            s.run()
            return
        if s.state == "failed":
            self.notify("the run failed: r resets, 1 changes the config", severity="warning")
            return
        if s.state != "running" and s.config != app.config and (s.latest is None or s.latest.now_ns == 0):
            s.reset(app.config)
        s.toggle()

    def action_step(self) -> None:
        s = self.xapp.ensure_session()
        if s.state == "finished":
            self.notify("the run has finished: r resets")
            return
        s.step()

    def action_reset(self) -> None:
        s = self.xapp.ensure_session()
        s.reset(self.xapp.config)
        self.applied_seq = -1
        self.notify("reset to time zero", timeout=2)

    def _set_speed(self, speed: float) -> None:
        self.xapp.set_speed(speed)
        self._draw_status()
        self.notify(f"speed {fmt.speed(speed)}" + (" (as fast as possible)" if speed <= 0 else
                                                   " (simulated time per wall second)"), timeout=2)

    def action_faster(self) -> None:
        self._set_speed(fmt.faster(self.xapp.current_speed()))

    def action_slower(self) -> None:
        self._set_speed(fmt.slower(self.xapp.current_speed()))

    def action_max_speed(self) -> None:
        self._set_speed(0.0)

    def action_cycle_step(self) -> None:
        app = self.xapp
        sizes = fmt.STEP_SIZES
        cur = app.step_ns
        app.step_ns = sizes[(sizes.index(cur) + 1) % len(sizes)] if cur in sizes else sizes[1]
        if app.session is not None:
            app.session.set_step(app.step_ns)
        self._draw_status()
        self.notify(f"one step = {fmt.ns(app.step_ns)} of simulated time", timeout=2)

    def action_stop(self) -> None:
        s = self.xapp.session
        if s is None or not s.alive:
            self.notify("no simulation process is running")
            return
        forced = s.stop(timeout=0.5)
        self._draw_status()
        self.notify("simulation process terminated" if forced else "simulation stopped" + "; r starts a new one",
                    severity="warning" if forced else "information")

    def action_filter(self) -> None:
        self.query_one(TabbedContent).active = "tab-log"
        if self._lazy_mounted():
            self.query_one("#log-filter", Input).focus()
        else:
            self.call_after_refresh(self.action_filter)

    def on_key(self, event: object) -> None:
        key = getattr(event, "key", "")
        if key == "escape" and isinstance(self.focused, Input):
            self.query_one(TabbedContent).query_one(Tabs).focus()
            if hasattr(event, "stop"):  # esc leaves the filter; it does not also go back a screen
                event.stop()
                event.prevent_default()  # type: ignore[attr-defined]

    def _metrics(self) -> dict | None:
        s = self.xapp.session
        snap = s.latest if s is not None else None
        if snap is None or not snap.data:
            self.notify("nothing to export yet: run first (space)", severity="warning")
            return None
        return snap.metrics()

    def action_export(self) -> None:
        metrics = self._metrics()
        if metrics is None:
            return
        config = self.xapp.session.config if self.xapp.session else self.xapp.config

        def write(path: str, kind: str) -> str | None:
            from explorer.documents import dumps_json, metrics_csv, run_document

            # JSON: the document `pgtable-explorer run --format json` prints for this config, so the
            # two can be diffed (the config in its TOML form, keys sorted, the scenario if any)
            text = metrics_csv(metrics) if kind == "csv" else \
                dumps_json(run_document(config, metrics, self.xapp.registry, self.xapp.scenario))
            try:
                atomic.write_text(path, text)
            except OSError as exc:
                return f"cannot write {path}: {exc.strerror or exc}"
            return None

        def done(path: str | None) -> None:
            if path:
                self.notify(f"exported {path}")

        self.app.push_screen(ExportDialog(export_stem(config), write), done)

    def action_copy(self) -> None:
        metrics = self._metrics()
        if metrics is None:
            return
        self.app.copy_to_clipboard(json.dumps(metrics, indent=2))
        self.notify("metrics copied to the clipboard (JSON)")

    def action_copy_traceback(self) -> None:
        s = self.xapp.session
        err = s.error if s is not None else None
        if err is None:
            self.notify("no error to copy")
            return
        self.app.copy_to_clipboard(f"{err.title}\n\n{err.traceback}")
        self.notify("traceback copied to the clipboard")
