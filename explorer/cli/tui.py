"""The ``tui`` command (and no command at all): open the interactive explorer, reporting cleanly
when this build has none."""

from __future__ import annotations

import argparse
from typing import Any

from explorer.cli.common import err, plugins_dirs
from explorer.cli.errors import EXIT_USAGE


def add_parser(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``tui`` to the CLI's subparsers (``common`` has --plugins-dir)."""
    p = sub.add_parser("tui", parents=[common], help="open the interactive explorer (the default)")
    p.add_argument("config", nargs="?", metavar="FILE.toml", help="a config file to open")
    p.add_argument("--scenario", metavar="NAME", help="open on a scenario (see `scenarios`) instead of a file")
    return p


def cmd_tui(args: argparse.Namespace) -> int:
    try:
        from explorer.tui.app import main as tui_main
    except ModuleNotFoundError as exc:
        if exc.name is not None and (exc.name == "explorer.tui" or exc.name.startswith("explorer.tui.")):
            err("the interactive explorer (explorer.tui) is not available in this build; "
                 "use `pgtable-explorer run` (see `pgtable-explorer --help`)")
            return EXIT_USAGE
        raise
    if getattr(args, "config", None) and getattr(args, "scenario", None):
        err("give a config file or --scenario, not both")
        return EXIT_USAGE
    result = tui_main(config_path=getattr(args, "config", None), plugins_dirs=plugins_dirs(args),
                      scenario=getattr(args, "scenario", None))
    return int(result or 0)

