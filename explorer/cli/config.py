"""The ``config`` command: ``default``, ``show``, ``validate`` and ``schema`` of config files."""

from __future__ import annotations

import argparse
import json
from typing import Any

from explorer.cli.common import add_config_source, effective_config, load_registry, write_output
from explorer.cli.errors import EXIT_OK


def add_parser(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``config`` to the CLI's subparsers (``common`` has --plugins-dir)."""
    p = sub.add_parser("config", parents=[common], help="print, check and describe config files",
                       description="Print, check and describe config files.")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    c = csub.add_parser("default", parents=[common], help="print the default config (or a scenario's) as TOML")
    c.add_argument("--scenario", metavar="NAME", help="the config of this scenario")
    c.add_argument("--minimal", action="store_true", help="only what differs from the defaults")
    c = csub.add_parser("show", parents=[common], help="print the effective config of CONFIG with overrides")
    c.add_argument("config", metavar="CONFIG", help="a TOML config file")
    add_config_source(c, positional=False)
    c.add_argument("--minimal", action="store_true", help="only what differs from the defaults")
    c = csub.add_parser("validate", parents=[common], help="check CONFIG: print 'ok' or every problem (exit 2)")
    c.add_argument("config", metavar="CONFIG", help="a TOML config file")
    c.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE",
                   help="also check these overrides")
    c = csub.add_parser("schema", parents=[common], help="print the JSON Schema of config files (for editors)")
    c.add_argument("--draft", choices=("2020-12", "7"), default="2020-12",
                   help="the JSON Schema draft to declare (the keywords used are the same; default: 2020-12)")

    return p


def cmd_config(args: argparse.Namespace) -> int:
    from explorer.config import default_config, dumps_config, json_schema

    registry = load_registry(args)
    action = args.config_command
    if action == "default":
        config = default_config(registry, args.scenario)
        write_output(dumps_config(config, registry, minimal=args.minimal), None)
    elif action == "show":
        config, _ = effective_config(args, registry, args.config, None)
        write_output(dumps_config(config, registry, minimal=args.minimal), None)
    elif action == "validate":
        effective_config(args, registry, args.config, None)
        write_output(f"{args.config}: ok\n", None)
    elif action == "schema":
        write_output(json.dumps(json_schema(registry, args.draft), indent=2, ensure_ascii=False) + "\n", None)
    return EXIT_OK

