"""The ``pgtable-explorer`` program: the parser of every command, and ``main()``, which runs one and
turns what it raises into a message and an exit status (:mod:`explorer.cli.errors`).

Each command is a module of this package with ``add_parser(sub, common)`` and its handler; they
import only the standard library at import time (the config layer, the plugins, the simulator and
Textual inside the handlers), so ``--version`` and ``run --help`` stay fast.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from explorer import __version__
from explorer.cli import compare, config, hunt, plugin_new, plugins, run, scenarios, sweep, tui
from explorer.cli.common import err
from explorer.cli.errors import EXIT_INTERRUPTED, EXIT_RUN_FAILED, EXIT_USAGE, PROG, RunFailed, UserError
from explorer.failures import PLUGIN, TIMEOUT

#: Every command and its handler, in the order ``--help`` lists them (the order of add_parser).
COMMANDS: dict[str, tuple[Callable[[Any, argparse.ArgumentParser], argparse.ArgumentParser],
                          Callable[[argparse.Namespace], int]]] = {
    "run": (run.add_parser, run.cmd_run),
    "compare": (compare.add_parser, compare.cmd_compare),
    "plugins": (plugins.add_parser, plugins.cmd_plugins),
    "scenarios": (scenarios.add_parser, scenarios.cmd_scenarios),
    "config": (config.add_parser, config.cmd_config),
    "sweep": (sweep.add_parser, sweep.cmd_sweep),
    "plugin": (plugin_new.add_parser, plugin_new.cmd_plugin),
    "hunt": (hunt.add_parser, hunt.cmd_hunt),
    "tui": (tui.add_parser, tui.cmd_tui),
}


class _VersionAction(argparse.Action):
    """``--version``: the version, and on a second line which simulator core runs (explorer/compiled.py)."""

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        from explorer.compiled import summary

        sys.stdout.write(f"{PROG} {__version__}\nsimulator core: {summary()}\n")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--plugins-dir",
        action="append",
        default=[],
        dest="sub_plugins_dirs",
        metavar="DIR",
        help="also load plugins from the .py files in DIR (repeatable)",
    )

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Simulate how the Linux kernel frees kernel page-table pages and flushes IOMMUs. "
        "Without a command, opens the interactive explorer (TUI).",
        epilog="Run `pgtable-explorer COMMAND --help` for a command's options. Exit status: 0 ok, 1 a run "
        "failed (a plugin raised), 2 a usage or config error.",
    )
    parser.add_argument("--version", action=_VersionAction, nargs=0, help="show the version and which simulator "
                        "core runs (compiled or pure Python), then exit")
    parser.add_argument(
        "--plugins-dir",
        action="append",
        default=[],
        dest="plugins_dirs",
        metavar="DIR",
        help="also load plugins from the .py files in DIR (repeatable)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    for add_parser, _ in COMMANDS.values():
        add_parser(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The ``pgtable-explorer`` command; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return int(exc.code) if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_USAGE)
    command = args.command or "tui"
    if command == "tui":  # Textual handles its own signals
        return _dispatch(command, args)
    with _signals_interrupt() as received:
        status = _dispatch(command, args)
    return 128 + received[0] if received and status == EXIT_INTERRUPTED else status


@contextlib.contextmanager
def _signals_interrupt() -> Any:
    """SIGTERM and SIGHUP do what Ctrl-C does (raise KeyboardInterrupt where the program is), so
    every path that cleans up after Ctrl-C (temporary files, sweep workers) cleans up after them
    too. A signal that is ignored (``nohup``) stays ignored; the old handlers come back at the end.
    Yields a list that gets the number of the signal received."""
    import signal
    import threading

    received: list[int] = []

    def interrupt(signum: int, frame: object) -> None:
        received.append(signum)
        raise KeyboardInterrupt

    old: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for name in ("SIGTERM", "SIGHUP"):
            sig = getattr(signal, name, None)
            if sig is not None and signal.getsignal(sig) == signal.SIG_DFL:
                old[sig] = signal.signal(sig, interrupt)
    try:
        yield received
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def _dispatch(command: str, args: argparse.Namespace) -> int:
    from explorer.config import ConfigError, problem_lines
    from explorer.outputs import OutputError

    try:
        return COMMANDS[command][1](args)
    except ConfigError as exc:
        for line in problem_lines(exc.problems):
            err(line)
        return EXIT_USAGE
    except (UserError, OutputError) as exc:
        err(str(exc))
        return EXIT_USAGE
    except RunFailed as exc:
        err(str(exc))
        if exc.traceback_text:
            whose = "plugin traceback" if exc.failure in (PLUGIN, TIMEOUT) else "traceback"
            print(f"\n{whose}:\n" + exc.traceback_text.rstrip(), file=sys.stderr)
        return exc.failure.exit_status
    except BrokenPipeError:  # pragma: no cover - e.g. `| head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_RUN_FAILED
    except FileNotFoundError as exc:
        err(f"{exc.filename or exc}: no such file")
        return EXIT_USAGE
    except IsADirectoryError as exc:
        err(f"{exc.filename or exc}: is a directory, not a config file")
        return EXIT_USAGE
    except PermissionError as exc:
        err(f"{exc.filename or exc}: permission denied")
        return EXIT_USAGE
    except OSError as exc:
        err(f"{exc.filename + ': ' if exc.filename else ''}{exc.strerror or exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
