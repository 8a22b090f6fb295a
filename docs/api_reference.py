"""Generate docs/api-reference.md from the docstrings of explorer.api, explorer.hookspecs and
explorer.testing (what plugin authors write against).

    .venv/bin/python docs/api_reference.py          # rewrite docs/api-reference.md
    .venv/bin/python docs/api_reference.py --check  # exit 1 if the committed file is out of date

``tests/test_docs_api.py`` runs the check, so CI fails when a docstring changed and the reference
was not regenerated.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "api-reference.md"

HEADER = """# API reference

Generated from the docstrings by `docs/api_reference.py` (do not edit by hand: run
`.venv/bin/python docs/api_reference.py`; a test fails when this file is out of date). The tutorial
is [writing-plugins.md](writing-plugins.md).

- [explorer.api](#explorerapi): what plugins are written against
- [explorer.hookspecs](#explorerhookspecs): the hooks a plugin implements
- [explorer.testing](#explorertesting): the testing kit (and its pytest fixtures)
"""


def _doc(obj: Any) -> str:
    return inspect.cleandoc(obj.__doc__) if getattr(obj, "__doc__", None) else ""


def _signature(obj: Any) -> str:
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):
        return ""


def _own_members(cls: type) -> list[tuple[str, Any]]:
    """Public members a class defines itself (not inherited from object or a Protocol base)."""
    out = []
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(value, classmethod):  # shown as called on the class: Cls.name(values)
            sig = inspect.signature(value.__func__)
            out.append((name, (sig.replace(parameters=list(sig.parameters.values())[1:]), value.__func__)))
            continue
        if inspect.isfunction(value) or isinstance(value, property):
            out.append((name, value))
    return out


def _class(name: str, cls: type) -> list[str]:
    lines = [f"### `{name}`", ""]
    bases = [b.__name__ for b in cls.__bases__ if b is not object and not b.__name__.startswith("_")]
    kind = "dataclass" if dataclasses.is_dataclass(cls) else "class"
    lines.append(f"*{kind}*" + (f", a `{'`, `'.join(bases)}`" if bases else ""))
    lines.append("")
    if _doc(cls):
        lines += [_doc(cls), ""]
    if dataclasses.is_dataclass(cls):
        rows = []
        for f in dataclasses.fields(cls):
            default = ""
            if f.default is not dataclasses.MISSING:
                default = f" = {f.default!r}"
            elif f.default_factory is not dataclasses.MISSING:
                default = f" = {f.default_factory.__name__}()"
            rows.append(f"- `{f.name}: {f.type}{default}`")
        lines += ["Fields:", "", *rows, ""]
    # members of a private base (explorer.api._Declared: name, version, params, values, ...) are
    # documented on each public class that has them
    owners = [b for b in reversed(cls.__mro__[1:]) if b.__name__.startswith("_") and b.__module__ == cls.__module__]
    attrs = {k: v for c in (*owners, cls) for k, v in vars(c).get("__annotations__", {}).items()
             if not k.startswith("_")}
    if attrs and not dataclasses.is_dataclass(cls):
        lines += ["Attributes:", "", *(f"- `{k}: {v}`" for k, v in attrs.items()), ""]
    members = [m for c in (*owners, cls) for m in _own_members(c)]
    for mname, member in members:
        if isinstance(member, tuple):
            sig, func = member
            doc = _doc(func).replace("\n", "\n  ")
            lines.append(f"- `{cls.__name__}.{mname}{sig}` (classmethod)" + (f"\n  {doc}" if doc else ""))
        elif isinstance(member, property):
            lines.append(f"- `{mname}` (property)" + (f": {_doc(member)}" if _doc(member) else ""))
        else:
            doc = _doc(member).replace("\n", "\n  ")
            lines.append(f"- `{mname}{_signature(member)}`" + (f"\n  {doc}" if doc else ""))
    if members:
        lines.append("")
    return lines


def _module(title: str, module: ModuleType, names: list[str]) -> list[str]:
    lines = [f"## {title}", ""]
    if _doc(module):
        lines += [_doc(module), ""]
    for name in names:
        obj = getattr(module, name)
        if inspect.isclass(obj):
            lines += _class(name, obj)
        elif inspect.isfunction(obj):
            lines += [f"### `{name}{_signature(obj)}`", ""]
            if _doc(obj):
                lines += [_doc(obj), ""]
        else:
            lines += [f"### `{name}`", "", f"`{obj!r}`" if not _doc(obj) or isinstance(obj, (str, tuple)) else "", ""]
    return lines


def render() -> str:
    from explorer import api, hookspecs, testing

    hooks = sorted(n for n, f in inspect.getmembers(hookspecs, inspect.isfunction)
                   if hasattr(f, "pgtable_explorer_spec"))
    kit = [n for n in testing.__all__ if not n.isupper()]
    lines = [*HEADER.splitlines(), ""]
    lines += _module("explorer.api", api, sorted(n for n in api.__all__ if n != "hookimpl"))
    lines += _module("explorer.hookspecs", hookspecs, hooks)
    lines += _module("explorer.testing", testing, kit)
    text = "\n".join(lines)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.rstrip() + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT} is out of date: run .venv/bin/python docs/api_reference.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main(sys.argv[1:]))
