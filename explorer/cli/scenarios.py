"""The ``scenarios`` command: the named preset configs and what each is expected to show."""

from __future__ import annotations

import argparse
from typing import Any

from explorer.cli.common import load_registry, write_output
from explorer.cli.errors import EXIT_OK
from explorer.documents import dumps_json


def add_parser(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``scenarios`` to the CLI's subparsers (``common`` has --plugins-dir)."""
    p = sub.add_parser("scenarios", parents=[common], help="list the scenarios (named preset configs)")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    return p


def cmd_scenarios(args: argparse.Namespace) -> int:
    import textwrap

    from explorer.config import plain_data

    registry = load_registry(args)
    if args.json:
        docs = [
            {
                "name": sc.name,
                "version": sc.version,
                "description": sc.description,
                "expected": sc.expected,
                "expect": dict(sc.expect),
                "only_source": sc.only_source,
                "config": plain_data(sc.config),
            }
            for _, sc in sorted(registry.scenarios.items())
        ]
        write_output(dumps_json(docs), None)
        return EXIT_OK
    out: list[str] = []
    if not registry.scenarios:
        out.append("no scenarios loaded")
    for name, sc in sorted(registry.scenarios.items()):
        out.append(name + ("  (the default)" if name == "linux-6.19" else ""))
        out += textwrap.wrap(sc.description, 96, initial_indent="    ", subsequent_indent="    ")
        if sc.expected:
            out += textwrap.wrap("expected: " + sc.expected, 96, initial_indent="    ", subsequent_indent="    ")
        out.append("")
    out.append("Run one with: pgtable-explorer run --scenario NAME")
    write_output("\n".join(out) + "\n", None)
    return EXIT_OK

