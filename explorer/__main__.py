"""``python -m explorer``: the same as the ``pgtable-explorer`` command."""

from explorer.cli import main

raise SystemExit(main())
