"""Sweep: the axes marked on the config tree (w), run over the current config on local worker
processes, each point shown as it finishes; sort the table, open any point as a live run.

The sweep is :class:`explorer.sweep.Sweep`, iterated in a Textual thread worker; the thread keeps the
results in the app's :class:`~explorer.tui.sweep_model.SweepState` and posts a (conflated)
:class:`SweepScreen.Updated`, and ``stop()`` is called from the UI. ``explorer.sweep`` is imported
only when the screen is first used.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Label, Static

from explorer.tui import fmt
from explorer.tui.actions import bindings_for
from explorer.tui.focus_help import METRIC_HELP, SWEEP_AXES_HELP, Here
from explorer.tui.screens.base import ExplorerScreen
from explorer.tui.screens.choice import ChoiceModal
from explorer.tui.screens.file_dialog import FileDialog
from explorer.tui.screens.sweep_axis import SweepAxisModal, ask_axis
from explorer.tui.sweep_model import SweepState
from explorer.tui.widgets.footer import KeysFooter
from explorer.tui.widgets.topbar import TopBar
from explorer.tui.widgets.wide_table import WideTable

if TYPE_CHECKING:
    from explorer.sweep import PointResult, Progress


def _violations(rec: dict[str, Any]) -> Any:
    found = [v for k, v in rec.items() if k.startswith("violations.") and k.endswith(".total")
             and isinstance(v, (int, float))]
    return sum(found) if found else None


def _page_s(v: Any) -> str:
    return "-" if v is None else f"{v:.4g}"


#: The metric columns: (column key, header, value of a record, format).
METRICS: tuple[tuple[str, str, Any, Any], ...] = (
    ("violations", "violations", _violations, fmt.count),  # first: the column that matters most
    ("flushes", "flushes", lambda r: r.get("flushes"), fmt.count),
    ("queue.peak", "peak queue", lambda r: r.get("queue.peak"), fmt.count),
    ("queue.page_seconds", "page-s", lambda r: r.get("queue.page_seconds"), _page_s),
    ("latency_ns.p99", "p99 latency", lambda r: r.get("latency_ns.p99"), fmt.ns),
    ("caller_ns.p99", "caller p99", lambda r: r.get("caller_ns.p99"), fmt.ns),
)

STATUS_STYLE = {"ok": "green", "failed": "bold red"}


def sort_value(v: Any) -> tuple[int, Any]:
    """Numbers before text, missing values last."""
    if v is None:
        return (2, 0)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return (0, v)
    return (1, str(v))


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    m, s = divmod(round(seconds), 60)
    return f"{m:02d}:{s:02d}"


def start_helpers(executor: Any) -> None:
    """Start multiprocessing's helper processes (the forkserver, the resource tracker) from the UI
    thread with real stdio (:func:`explorer.procs.start_helpers`): workers then start from the
    sweep's thread without stdio."""
    from explorer.procs import start_helpers as start

    start(getattr(executor, "ctx", None))


class SweepScreen(ExplorerScreen):
    BINDINGS = bindings_for("sweep")
    AUTO_FOCUS = "#sweep-results"

    class Updated(Message):
        """The running sweep has new results or progress (posted from its thread, conflated)."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.sort_key: str = "#"
        self.sort_reverse = False
        self.shown = 0  # results drawn
        self.drawn_axes: list[Any] = []
        self._pending = False
        self._pending_lock = threading.Lock()

    @property
    def state(self) -> SweepState:
        return self.xapp.sweep_state

    def compose(self) -> ComposeResult:
        yield TopBar("sweep")
        with Vertical(id="sweep-body"):
            yield Label("", id="sweep-axes-title", classes="section-title")
            yield WideTable(id="sweep-axes", cursor_type="row", show_cursor=True)
            yield Static("", id="sweep-status")
            yield Label("Results", id="sweep-results-title", classes="section-title")
            yield WideTable(id="sweep-results", cursor_type="cell", zebra_stripes=True)
        yield KeysFooter(compact=True)

    def on_mount(self) -> None:
        axes = self.query_one("#sweep-axes", DataTable)
        axes.add_column("swept key", key="key")
        axes.add_column("values", key="values")
        axes.add_column("as the CLI", key="cli")
        self.refresh_all()
        self.set_interval(0.5, self._tick)

    def on_screen_resume(self) -> None:
        self.refresh_all()

    def refresh_top(self) -> None:
        self.query_one(TopBar).set_file(self.xapp.file_label(), self.xapp.dirty)
        self._draw_axes()

    def refresh_all(self) -> None:
        self.refresh_top()
        self._draw_status()
        self._draw_results(rebuild=True)

    # -- drawing
    def _draw_axes(self) -> None:
        st = self.state
        axes = self.query_one("#sweep-axes", DataTable)
        now = [(a.key, a.text, st.seeds) for a in st.axes]
        if now != self.drawn_axes:
            self.drawn_axes = now
            cursor = axes.cursor_row
            axes.clear()
            for a in st.axes:
                axes.add_row(a.key, a.text, a.flag, key=a.key)
            if st.axes:
                axes.move_cursor(row=min(cursor, len(st.axes) - 1))
        axes.display = bool(st.axes)
        title = self.query_one("#sweep-axes-title", Label)
        if not st.axes:
            title.update("No axes yet: on the Config screen (1), select a parameter and press w to sweep it "
                         "(or press a here)")
            return
        try:
            n: int | str = len(st.plan_for(self.xapp.config, self.xapp.registry).points) if not st.running \
                else len(st.plan.points) if st.plan is not None else "?"
        except Exception as exc:
            title.update(Text(f"Axes: ✗ {exc}", style="red"))
            return
        out = st.out or "in memory only (o picks a file)"
        # the seeds start at the config's: after a point was opened that is the point's seed, so say it
        first = int(self.xapp.config["run"]["seed"])
        seeds = f"seed {first}" if st.seeds == 1 else f"seeds {first}..{first + st.seeds - 1}"
        title.update(f"Axes ({len(st.axes)}) × {seeds} = {n} points over the current config ({self.xapp.file_label()})"
                     f" · {st.worker_count()} local workers · results: {out}")

    def _draw_status(self) -> None:
        st = self.state
        p = st.progress
        status = self.query_one("#sweep-status", Static)
        if st.error:
            status.update(Text(f"✗ {st.error}", style="bold red"))
            return
        if p is None:
            status.update(Text("space starts the sweep" if st.axes else "", style="dim"))
            return
        frac = p.finished / p.total if p.total else 1.0
        width = 30
        filled = round(frac * width)
        t = Text()
        if st.running:
            t.append("▶ running  ", style="bold green")
        elif st.sweep is not None and st.sweep.stopped:
            t.append("■ stopped  ", style="bold yellow")
        else:
            t.append("✓ finished  ", style="bold")
        t.append("█" * filled, style="green")
        t.append("░" * (width - filled), style="dim")
        t.append(f" {p.finished}/{p.total} points  ")
        t.append(f"{p.failed} failed", style="red" if p.failed else "")
        t.append(f"  {p.rate:.3g}/s" if p.rate else "  -/s")
        if st.running:
            t.append(f"  ETA {clock(p.eta)}  elapsed {clock(p.elapsed)}")
        else:
            t.append(f"  took {p.elapsed:.1f}s")
        if p.retries:
            t.append(f"  {p.retries} retried", style="yellow")
        status.update(t)

    def _columns(self) -> list[tuple[str, str]]:
        st = self.state
        keys = st.plan.keys if st.plan is not None else [a.key for a in st.axes]
        # the point (its values, seed), then violations and status: what matters most fits in 80 columns
        first, rest = METRICS[0], METRICS[1:]
        return [("#", "#"), *[(k, k) for k in keys], ("seed", "seed"), (first[0], first[1]), ("status", "status"),
                *[(k, h) for k, h, _, _ in rest]]

    def _value(self, r: PointResult, col: str) -> Any:
        if col == "#":
            return r.point.index
        if col == "seed":
            return r.point.seed
        if col == "status":
            return r.status
        for k, _, get, _ in METRICS:
            if k == col:
                return get(r.record)
        return r.point.params.get(col)

    def _cell(self, r: PointResult, col: str) -> Any:
        v = self._value(r, col)
        for k, _, _, show in METRICS:
            if k == col:
                return Text(show(v), justify="right")
        if col == "status":
            return Text(v, style=STATUS_STYLE.get(v, ""))
        if col in ("#", "seed"):
            return Text(str(v), justify="right")
        if v is None:
            return "-"
        param = self._params().get(col)
        if param is not None:
            with contextlib.suppress(Exception):
                return param.show(v)
        return str(v)

    def _params(self) -> dict[str, Any]:
        """The declarations of the swept keys (to show their values with units)."""
        st = self.state
        if st.plan is None:
            return {}
        if getattr(self, "_params_of", None) is not st.plan:
            from explorer.sweep.points import param_for_key

            choices = {a.key: list(a.values) for a in st.plan.axes if a.key in ("strategy.name", "iommu.model")}
            self._param_cache = {k: param_for_key(k, st.plan.base, self.xapp.registry, choices) for k in st.plan.keys}
            self._params_of = st.plan
        return self._param_cache

    def sorted_results(self) -> list[PointResult]:
        return sorted(self.state.results, key=lambda r: sort_value(self._value(r, self.sort_key)),
                      reverse=self.sort_reverse)

    def _draw_results(self, rebuild: bool = False) -> None:
        """Draw the results table; ``rebuild`` redraws every row (a new sort, the screen shown again).

        The cursor keeps its row (by the point's key) and its column (by the column's key) across any
        redraw: clearing the table puts it at 0/0, and enter and s act on what is under it."""
        st = self.state
        table = self.query_one("#sweep-results", DataTable)
        cols = self._columns()
        row_key: str | None = None
        column_key: str | None = None
        column = table.cursor_column
        if table.row_count and table.cursor_row < table.row_count:
            cell = table.coordinate_to_cell_key(table.cursor_coordinate)
            row_key, column_key = cell.row_key.value, cell.column_key.value
        elif table.columns and column < len(table.columns):
            column_key = list(table.columns)[column].value
        labels = [h + ((" ▼" if self.sort_reverse else " ▲") if k == self.sort_key else "") for k, h in cols]
        drawn = [(str(c.key.value), c.label.plain) for c in table.columns.values()]
        if drawn != [(k, lbl) for (k, _), lbl in zip(cols, labels, strict=True)]:
            # only when the columns (or the sort arrow) changed: clearing them loses the scroll too
            table.clear(columns=True)
            for (k, _), lbl in zip(cols, labels, strict=True):
                table.add_column(Text(lbl), key=k)  # a Text: a swept key is not markup
            self.shown = -1
        elif rebuild:
            self.shown = -1
        if self.shown == len(st.results):
            return
        table.clear()
        for r in self.sorted_results():
            table.add_row(*[self._cell(r, k) for k, _ in cols], key=str(r.point.index))
        self.shown = len(st.results)
        keys = [k for k, _ in cols]
        if column_key in keys:
            column = keys.index(column_key)
        column = min(column, len(keys) - 1)
        row = 0
        if row_key is not None:
            with contextlib.suppress(Exception):  # the row is gone (a new sweep)
                row = table.get_row_index(row_key)
        if table.row_count:
            table.move_cursor(row=row, column=column, animate=False)
        ok = sum(1 for r in st.results if r.ok)
        self.query_one("#sweep-results-title", Label).update(
            f"Results: {ok} ok, {len(st.results) - ok} failed · sorted by {self.sort_key}"
            f"{' (descending)' if self.sort_reverse else ''} · s sorts by the cursor's column · "
            "enter opens the point as a live run")

    def _tick(self) -> None:
        if self.state.running and self.is_current:
            self._draw_status()

    # -- the sweep thread
    def _poke(self) -> None:
        with self._pending_lock:
            if self._pending:
                return
            self._pending = True
        self.post_message(self.Updated())

    @on(Updated)
    def _updated(self, _event: Updated) -> None:
        with self._pending_lock:
            self._pending = False
        self._draw_status()
        self._draw_results()
        if not self.state.running:
            self._draw_axes()

    def _work(self) -> None:
        st = self.state
        sweep = st.sweep
        assert sweep is not None
        try:
            for r in sweep:
                st.results.append(r)
                self._poke()
        except Exception as exc:
            st.error = f"the sweep stopped: {type(exc).__name__}: {exc}"
        finally:
            st.running = False
            st.done.set()
            self._poke()

    def _progress(self, p: Progress) -> None:
        self.state.progress = p
        self._poke()

    def start(self, *, resume: bool = False, overwrite: bool = False) -> None:
        from explorer.sweep import LocalExecutor, Sweep, SweepError
        from explorer.sweep.results import ResultsFiles

        st = self.state
        if st.running:
            return
        if not st.axes:
            self.notify("no axes: on the Config screen, select a parameter and press w (or press a here)",
                        severity="warning")
            return
        try:
            plan = st.plan_for(self.xapp.config, self.xapp.registry)
        except SweepError as exc:
            self.notify(str(exc), severity="error", title="sweep")
            return
        if st.out and not (resume or overwrite):
            try:
                ResultsFiles(st.out).check()
            except SweepError:
                self.app.push_screen(
                    ChoiceModal(f"{st.out} already exists", [
                        ("resume", "Resume", "skip the points already finished ok in it; run the others"),
                        ("overwrite", "Overwrite", "start again: replace the results file"),
                    ]), lambda c: self.start(resume=c == "resume", overwrite=c == "overwrite") if c else None)
                return
        executor = LocalExecutor(st.worker_count(), quiet=True)  # workers' prints would land on the screen
        try:
            sweep = Sweep(plan, self.xapp.registry, executor, out=st.out, resume=resume,
                          overwrite=overwrite, on_progress=self._progress)
        except SweepError as exc:
            self.notify(str(exc), severity="error", title="sweep")
            return
        start_helpers(executor)
        st.plan, st.sweep, st.results, st.progress, st.error = plan, sweep, [], None, None
        st.running = True
        st.done.clear()
        self.sort_key, self.sort_reverse = "#", False
        self.refresh_all()
        for note in plan.notes:
            self.notify(note, timeout=6)
        self.run_worker(self._work, name="sweep", group="sweep", thread=True, exit_on_error=False)

    # -- actions
    def action_start_stop(self) -> None:
        st = self.state
        if st.running:
            st.stop()
            self.notify("stopping the sweep: the points that finished are kept")
        else:
            self.start()

    def action_add_axis(self) -> None:
        app = self.xapp
        options = [(e.key, e.key, f"now {e.shown_value} · {(e.param.help.strip().splitlines() or [''])[0]}")
                   for e in app.model().entries if e.editable and e.active]
        if not options:
            return

        def picked(key: str | None) -> None:
            if key:
                entry = app.model().by_key().get(key)
                ask_axis(app, key, entry.shown_value if entry else "", then=self.refresh_all)

        self.app.push_screen(ChoiceModal("Sweep which parameter?", options), picked)

    def _axis_key(self) -> str | None:
        axes = self.query_one("#sweep-axes", DataTable)
        if not self.state.axes or axes.row_count == 0:
            return None
        return str(axes.coordinate_to_cell_key(axes.cursor_coordinate).row_key.value)

    def action_edit_axis(self) -> None:
        key = self._axis_key()
        if key is None:
            self.action_add_axis()
            return
        entry = self.xapp.model().by_key().get(key)
        ask_axis(self.xapp, key, entry.shown_value if entry else "", then=self.refresh_all)

    def action_remove_axis(self) -> None:
        key = self._axis_key()
        if key is None or self.state.running:
            return
        self.state.remove_axis(key)
        self.notify(f"{key} is no longer swept")
        self.refresh_all()

    def action_seeds(self) -> None:
        self.app.push_screen(SweepAxisModal(None), lambda ok: self.refresh_all() if ok else None)

    def action_out_file(self) -> None:
        st = self.state

        def choose(path: str, _minimal: bool) -> str | None:
            if Path(path).is_dir():
                return f"{path} is a folder: give a file name such as sweep.csv"
            st.out = path
            return None

        # a file already chosen: its folder's CSV files are the ones to offer (the dialog joins a bare
        # name to that folder, so the chosen file is given as an absolute path)
        folder, initial = Path.cwd(), "sweep.csv"
        if st.out:
            chosen = Path(st.out).expanduser()
            chosen = chosen if chosen.is_absolute() else Path.cwd() / chosen
            folder, initial = chosen.parent, str(chosen)
        self.app.push_screen(FileDialog("Write the results to (CSV; the JSON Lines file goes beside it)",
                                        initial, "Use", choose, folder=folder, suffix=".csv"),
                             lambda p: self.refresh_all() if p else None)

    def focus_help(self) -> Here | None:
        """F1: the axes table, or the results column under the cursor (a metric or a swept key)."""
        focused = self.focused
        if focused is None:
            return None
        if focused.id == "sweep-axes":
            return Here(SWEEP_AXES_HELP[0], Text(SWEEP_AXES_HELP[1]))
        if focused.id != "sweep-results":
            return None
        cols = self._columns()
        key, header = cols[min(cast(DataTable[Any], focused).cursor_column, len(cols) - 1)]
        if key in METRIC_HELP:
            return Here(f"the column {header}", Text(METRIC_HELP[key]))
        entry = self.xapp.model().by_key().get(key)
        text = entry.param.help if entry is not None else ""
        return Here(f"the column {header}", Text(f"A swept parameter. {text}".strip()))

    def action_sort(self, column: str | None = None) -> None:
        table = self.query_one("#sweep-results", DataTable)
        if column is None:
            cols = self._columns()
            if not cols:
                return
            column = cols[min(table.cursor_column, len(cols) - 1)][0]
        if column == self.sort_key:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_key, self.sort_reverse = column, False
        self._draw_results(rebuild=True)
        self.query_one("#sweep-results", DataTable).move_cursor(
            column=[k for k, _ in self._columns()].index(column), animate=False)

    @on(DataTable.HeaderSelected, "#sweep-results")
    def _header(self, event: DataTable.HeaderSelected) -> None:
        self.action_sort(str(event.column_key.value))

    @on(DataTable.CellSelected, "#sweep-results")
    def _cell_selected(self, event: DataTable.CellSelected) -> None:
        self.open_point(int(str(event.cell_key.row_key.value)))

    @on(DataTable.RowSelected, "#sweep-axes")
    def _axis_selected(self, _event: DataTable.RowSelected) -> None:
        self.action_edit_axis()

    def action_open_point(self) -> None:
        table = self.query_one("#sweep-results", DataTable)
        if table.row_count == 0:
            return
        self.open_point(int(str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)))

    def open_point(self, index: int) -> None:
        """Make the point's config the app's config and show it on the Run screen, paused at zero."""
        st = self.state
        if st.plan is None or not 0 <= index < len(st.plan.points):
            return
        app = self.xapp
        point = st.plan.points[index]
        app.set_config(point.config, reason="sweep",
                       edited=[app.doc.origin_key(k) for k, v in point.params.items() if v is not None] + ["run.seed"])
        if app.session is not None and app.session.state != "starting":
            app.session.reset(app.config)
        app.action_goto("run")
        app.notify(f"point {index}: {point.label()} · space runs it live", timeout=6)
