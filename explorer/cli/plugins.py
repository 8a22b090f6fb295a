"""The ``plugins`` command: the loaded plugins, what each provides (``-v``: every parameter), and
those that failed to load."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from explorer.cli.common import load_registry, write_output
from explorer.cli.errors import EXIT_OK
from explorer.cli.tables import align
from explorer.documents import dumps_json

if TYPE_CHECKING:
    from explorer.api import Param

def add_parser(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``plugins`` to the CLI's subparsers (``common`` has --plugins-dir)."""
    p = sub.add_parser("plugins", parents=[common], help="list the loaded plugins and those that failed to load")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--verbose", "-v", action="store_true", help="also list every parameter and where plugins live")

    return p


def _param_doc(p: Param) -> dict[str, Any]:
    return {
        "name": p.name,
        "type": p.describe_type(),
        "default": p.to_toml(p.canonical_default()),
        "unit": p.unit,
        "min": p.min,
        "max": p.max,
        "choices": list(p.choices),
        "help": p.help,
    }


def _param_line(p: Param) -> list[str]:
    rng = ""
    if p.min is not None or p.max is not None:
        rng = f"{p.show(p.min) if p.min is not None else ''}..{p.show(p.max) if p.max is not None else ''}"
    return [p.name, p.describe_type(), p.show(p.canonical_default()), rng, p.help]


def cmd_plugins(args: argparse.Namespace) -> int:
    import textwrap

    registry = load_registry(args, report_failures=False)

    def registered(kind: str, name: str) -> dict[str, Any]:
        obj = registry.table(kind)[name]
        doc: dict[str, Any] = {"kind": kind, "name": name, "version": str(getattr(obj, "version", ""))}
        if kind == "scenario":
            doc["description"] = obj.description
        else:
            doc["help"] = obj.help
            doc["params"] = [_param_doc(p) for p in obj.params]
        return doc

    if args.json:
        plugins = []
        for info in registry.plugins:
            d = info.as_dict()
            d["registered"] = [registered(k, n) for k, n in info.registers]
            plugins.append(d)
        failed = [{**info.as_dict(), "traceback": info.traceback} for info in registry.failures]
        write_output(dumps_json({"plugins": plugins, "failed": failed}), None)
        return EXIT_OK

    out: list[str] = []
    rows = [["PLUGIN", "ORIGIN", "VERSION", "PROVIDES"]]
    for info in registry.plugins:
        provides = ", ".join(f"{k} {n}" for k, n in info.registers) or "(nothing)"
        rows.append([info.name, info.origin, info.version or "-", provides])
    out.append(f"Loaded plugins ({len(registry.plugins)})")
    out += align(rows, [False, False, False, False])
    if args.verbose:
        for info in registry.plugins:
            out.append("")
            out.append(f"{info.name}  ({info.origin}: {info.location})")
            for kind, name in info.registers:
                obj = registry.table(kind)[name]
                if kind == "scenario":
                    out.append(f"  scenario {name}: {obj.description}")
                    continue
                out += textwrap.wrap(f"{kind} {name} {getattr(obj, 'version', '')}: {obj.help}".rstrip(": "), 100,
                                     initial_indent="  ", subsequent_indent="    ")
                if obj.params:
                    table = align([_param_line(p)[:4] for p in obj.params], [False, False, True, False],
                                   indent="      ")
                    for line, p in zip(table, obj.params, strict=True):
                        out.append(line)
                        out += textwrap.wrap(p.help, 100, initial_indent=" " * 10, subsequent_indent=" " * 10)
    if args.verbose:
        from explorer.compiled import summary

        out += ["", f"Simulator core: {summary()}"]
    if registry.failures:
        out.append("")
        out.append(f"Failed to load ({len(registry.failures)})")
        for info in registry.failures:
            out.append(f"  {info.name}  ({info.origin}: {info.location})")
            out.append(f"      {info.error}")
    write_output("\n".join(out) + "\n", None)
    return EXIT_OK

