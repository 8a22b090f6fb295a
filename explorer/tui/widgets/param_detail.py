"""The pane beside the tree: what the selected parameter is, and its editor.

The editor validates as you type (the declaration's own parser) and, on enter, the whole config
(cross-field rules such as a workload's CPU range against ``kernel.cpus``); a bad value is
explained right under the input and nothing changes until it is fixed or abandoned (escape).
"""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Input, Static

from explorer.tui.model import ORIGIN_TEXT, Entry, check_text


def entry_facts(e: Entry, long: bool = False) -> list[tuple[str, str]]:
    """What ``?`` shows: type, unit, default, current, origin, declaring plugin, dependencies."""
    p = e.param
    rng = ""
    if p.min is not None or p.max is not None:
        lo = p.show(p.min) if p.min is not None else "…"
        hi = p.show(p.max) if p.max is not None else "…"
        rng = f"{lo} .. {hi}"
    facts = [
        ("key", e.key.split("@")[0]),
        ("type", p.describe_type()),
    ]
    if p.unit:
        facts.append(("unit", p.unit))
    elif p.type == "duration":
        facts.append(("unit", "time (ns, us, ms, s)"))
    elif p.type == "rate":
        facts.append(("unit", "events per second (/s, k/s, M/s, hz)"))
    if rng:
        facts.append(("range", rng))
    facts.append(("default", e.shown_default))
    facts.append(("current", e.shown_value + ("  (changed)" if e.changed else "")))
    facts.append(("from", ORIGIN_TEXT.get(e.origin, e.origin) if e.value is not None else "not in the config"))
    if e.declarer is not None:
        facts.append(("declared by", e.declarer.describe(long)))
    if e.depends:
        facts.append(("depends on", e.depends))
    if not e.active:
        facts.append(("inactive", e.reason))
    return facts


def wrap_dotted(key: str, width: int) -> str:
    """A dotted key in lines of at most ``width``, broken after a dot (``workload.`` /
    ``cpa-collapse.rate``), never inside a name unless one name alone is too long."""
    if width <= 0 or len(key) <= width:
        return key
    pieces = [p + "." for p in key.split(".")]
    pieces[-1] = pieces[-1][:-1]
    lines: list[str] = []
    line = ""
    for piece in pieces:
        if line and len(line) + len(piece) > width:
            lines.append(line)
            line = ""
        line += piece
        while len(line) > width:  # one name longer than the pane: fold it
            lines.append(line[:width])
            line = line[width:]
    lines.append(line)
    return "\n".join(lines)


def facts_table(e: Entry, long: bool = False, width: int = 0) -> Table:
    """The facts of ``e`` as a two-column table; with the ``width`` it has, the key is broken at dots."""
    t = Table(box=None, show_header=False, pad_edge=False, expand=True)
    t.add_column(style="bold", no_wrap=True)
    t.add_column(ratio=1)
    facts = entry_facts(e, long)
    label_width = max(len(k) for k, _ in facts) + 2  # the label and the gap between the columns
    for k, v in facts:
        if k == "key" and width:
            v = wrap_dotted(v, width - label_width)
        style = "yellow" if k == "inactive" else ("bold" if k == "current" and e.changed else "")
        t.add_row(k, Text(v, style=style))
    return t


class ParamDetail(VerticalScroll):
    """Shows one :class:`Entry`; :meth:`start_edit` opens the inline editor."""

    DEFAULT_CSS = """
    ParamDetail { padding: 0 1; }
    ParamDetail > #detail-title { text-style: bold; color: $accent; height: auto; }
    ParamDetail > #detail-help { height: auto; margin-bottom: 1; }
    ParamDetail > #detail-facts { height: auto; }
    ParamDetail > #editor { display: none; }
    ParamDetail.-editing > #editor { display: block; }
    ParamDetail > #edit-error { height: auto; color: $error; display: none; }
    ParamDetail.-editing > #edit-error { display: block; }
    ParamDetail > #edit-hint { height: auto; color: $text-muted; display: none; margin-bottom: 1; }
    ParamDetail.-editing > #edit-hint { display: block; }
    """

    class Submitted(Message):
        def __init__(self, key: str, text: str) -> None:
            super().__init__()
            self.key = key
            self.text = text

    class Cancelled(Message):
        pass

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.entry: Entry | None = None
        self.can_focus = False

    def compose(self) -> ComposeResult:
        yield Static("", id="detail-title")
        yield EditorInput(id="editor")
        yield Static("", id="edit-error")
        yield Static("enter applies · esc cancels", id="edit-hint")
        yield Static("", id="detail-help")
        yield Static("", id="detail-facts")

    def show_entry(self, e: Entry | None, section_text: str = "") -> None:
        self.entry = e
        if e is None:
            self.query_one("#detail-title", Static).update(section_text.split("\n", 1)[0])
            _, _, body = section_text.partition("\n")
            self.query_one("#detail-help", Static).update(body)
            self.query_one("#detail-facts", Static).update("")
            return
        width = self.scrollable_content_region.width - 2  # room for the scrollbar a long text brings
        self.query_one("#detail-title", Static).update(Text(wrap_dotted(e.key.split("@")[0], width)))
        self.query_one("#detail-help", Static).update(Text(e.param.help or "(no help text)"))
        self.query_one("#detail-facts", Static).update(facts_table(e, width=width))

    @property
    def editing(self) -> bool:
        return self.has_class("-editing")

    def start_edit(self, e: Entry) -> None:
        self.show_entry(e)
        self.add_class("-editing")
        inp = self.query_one("#editor", Input)
        inp.value = e.shown_value if e.value is not None else e.shown_default
        inp.placeholder = e.param.describe_type()
        self.show_problem(None)
        self.scroll_home(animate=False)
        inp.focus()
        inp.action_end()

    def stop_edit(self) -> None:
        self.remove_class("-editing")
        self.show_problem(None)

    def show_problem(self, message: str | None) -> None:
        err = self.query_one("#edit-error", Static)
        err.update(Text("✗ " + message) if message else "")
        inp = self.query_one("#editor", Input)
        inp.set_class(bool(message), "-invalid")

    @on(Input.Changed, "#editor")
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        if self.entry is not None and self.editing:
            self.show_problem(check_text(self.entry.param, event.value))

    @on(Input.Submitted, "#editor")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.entry is None:
            return
        problem = check_text(self.entry.param, event.value)
        if problem:
            self.show_problem(problem)
            return
        self.post_message(self.Submitted(self.entry.key, event.value))


class EditorInput(Input):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", show=True)]

    def action_cancel(self) -> None:
        detail = self.parent
        if isinstance(detail, ParamDetail):
            detail.stop_edit()
            detail.post_message(ParamDetail.Cancelled())
