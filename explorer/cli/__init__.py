"""The command line: ``run``, ``compare``, ``sweep``, ``hunt``, ``plugins``, ``scenarios``, ``config``,
``plugin new``, ``tui`` (no command: the TUI).

- :mod:`~explorer.cli.main`: the parser and ``main()``, the entry point (``pgtable-explorer``,
  ``python -m explorer``), which turns errors into messages and exit statuses;
- :mod:`~explorer.cli.errors`: the exit statuses, ``UserError`` (2) and ``RunFailed`` (1);
- :mod:`~explorer.cli.common`: what the commands share (options, plugins, config, output, progress,
  running one simulation); :mod:`~explorer.cli.tables`: the text tables;
- one module per command: ``run``, ``compare``, ``plugins``, ``scenarios``, ``config``, ``tui``,
  ``sweep``, ``hunt``, ``plugin_new``.

Start-up is kept light: these modules import only the standard library at import time (and
:mod:`explorer.documents`, :mod:`explorer.violations`); the config layer, the plugins, the
simulator and Textual are imported inside the commands that need them.
"""

from explorer.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
