"""Text that wraps between items, never inside one: ``vmalloc-huge 1,102`` or ``freed by caller
1,542`` stays on one line (a label with its number), as a table cell of any width."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions
from rich.measure import Measurement
from rich.style import StyleType
from rich.text import Text


def _fit(label: str, number: str, width: int) -> str:
    """``label number`` in ``width`` cells: the label cut with an ellipsis, the number kept whole."""
    whole = f"{label} {number}" if number else label
    if cell_len(whole) <= width:
        return whole
    room = width - (cell_len(number) + 1 if number else 0)
    if room < 2:  # no room for a label at all: the number alone (it is what is read)
        return f"… {number}" if number and cell_len(number) + 2 <= width else (number or label)
    cut = ""
    for ch in label:
        if cell_len(cut + ch) > room - 1:
            break
        cut += ch
    return f"{cut}…" + (f" {number}" if number else "")


class Atoms:
    """Items ``(sep, label, number)`` laid out in lines of the width the cell has: a line takes whole
    items; ``sep`` goes before an item on the same line (``", "``, ``" "``) and its trailing comma
    stays at the end of a broken line; ``"\\n"`` always starts a new line. An item wider than
    the whole line keeps its number and cuts its label with an ellipsis."""

    def __init__(self, items: Iterable[tuple[str, str, str]], style: StyleType = "") -> None:
        self.items = list(items)
        self.style = style

    def lines(self, width: int) -> list[str]:
        out: list[str] = []
        cur: str | None = None
        for i, (sep, label, number) in enumerate(self.items):
            after = self.items[i + 1][0] if i + 1 < len(self.items) else "\n"
            trailing = 0 if after == "\n" else cell_len(after.rstrip())  # room for a comma that may end the line
            atom = _fit(label, number, max(1, width - trailing))
            if cur is None:
                cur = atom
            elif sep != "\n" and cell_len(cur + sep + atom) + trailing <= width:
                cur += sep + atom
            else:
                out.append(cur + (sep.rstrip() if sep != "\n" else ""))
                cur = atom
        if cur is not None:
            out.append(cur)
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines(10**6))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Text]:
        yield Text("\n".join(self.lines(options.max_width)), style=self.style, no_wrap=True, overflow="fold",
                   end="")

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        atoms = [cell_len(f"{label} {number}" if number else label) for _, label, number in self.items]
        widest_line = max((cell_len(line) for line in self.lines(options.max_width)), default=0)
        return Measurement(min(max(atoms, default=0), 12), max(widest_line, 1))


def counted(pairs: Sequence[tuple[str, str]], first_sep: str, sep: str) -> list[tuple[str, str, str]]:
    """``[(label, number), ...]`` as items: ``first_sep`` before the first, ``sep`` between the rest."""
    return [(first_sep if i == 0 else sep, label, number) for i, (label, number) in enumerate(pairs)]
