"""One line: run state, simulated time, progress, speed, step size and what is being run."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from explorer.tui import fmt

ICON = {
    "starting": ("◌ starting", "dim"),
    "paused": ("⏸ paused", "bold yellow"),
    "running": ("▶ running", "bold green"),
    "finished": ("✓ finished", "bold cyan"),
    "failed": ("✗ failed", "bold red"),
    "stopped": ("■ stopped", "bold red"),
    "idle": ("○ not started", "dim"),
}

ALERT = "NOT RESPONDING: x stops the simulation process"
ALERT_SHORT = "NOT RESPONDING: x stops it"  # for a narrow terminal


class StatusLine(Static):
    DEFAULT_CSS = """
    StatusLine { height: 1; background: $boost; padding: 0 1; }
    """

    _last: Text | None = None

    def show(self, state: str, now_ns: int, end_ns: int, speed: float, step_ns: int, what: str,
             stalled: bool = False, note: str = "") -> None:  # type: ignore[override]
        width = max(20, self.size.width - 2)
        t = self._line(state, now_ns, end_ns, speed, step_ns, stalled, note, ALERT, bar=True, step=True)
        if stalled:
            # The alert must show whole, its x hint above all (the line is cut at the edge): on a
            # narrow terminal (80 columns) say it shorter, then leave out the step and the bar.
            for alert, bar, step in ((ALERT_SHORT, True, True), (ALERT_SHORT, True, False),
                                     (ALERT_SHORT, False, False)):
                if t.cell_len <= width:
                    break
                t = self._line(state, now_ns, end_ns, speed, step_ns, stalled, note, alert, bar=bar, step=step)
        rest = width - t.cell_len - 2
        if rest > 8 and what:
            t.append("  " + fit_parts(what, rest), style="dim")
        if t == self._last:  # the same line: nothing to draw
            return
        self._last = t
        self.update(t, layout=False)  # one line, always: no new layout

    @staticmethod
    def _line(state: str, now_ns: int, end_ns: int, speed: float, step_ns: int, stalled: bool, note: str,
              alert: str, *, bar: bool, step: bool) -> Text:
        label, style = ICON.get(state, (state, ""))
        t = Text(label, style=style)
        t.append(f"  t={fmt.sim_time(now_ns)}")
        if end_ns:
            t.append(f"/{fmt.ns(end_ns)}", style="dim")
            if bar:
                frac = min(1.0, now_ns / end_ns)
                n = 10
                done = round(frac * n)
                t.append(" " + "━" * done, style="green")
                t.append("━" * (n - done), style="dim")
        t.append(f"  speed {fmt.speed(speed)}")
        if step:
            t.append(f"  step {fmt.ns(step_ns)}", style="dim")
        if stalled:
            t.append(f"  {alert}", style="bold white on red")
        elif note:
            t.append(f"  {note}", style="bold yellow")
        return t


def fit_parts(what: str, room: int) -> str:
    """``a · b · c`` in ``room`` cells: the last parts left out whole (the first matter most), and
    an ellipsis when even the first does not fit (a cut is never silent)."""
    parts = what.split(" · ")
    while len(parts) > 1 and len(" · ".join(parts)) > room:
        parts.pop()
    text = " · ".join(parts)
    return text if len(text) <= room else text[: max(0, room - 1)] + "…"
