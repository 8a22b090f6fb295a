"""A plugin whose import fails: reported with its origin and error, and skipped."""

from explorer.api import hookimpl

raise RuntimeError("test plugin exploding at import time")


@hookimpl
def register_strategies(register):  # never reached
    raise AssertionError("unreachable")
