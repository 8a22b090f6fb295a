"""A plugin that registers something that is not a FreeStrategy subclass."""

from explorer.api import hookimpl


class NotAStrategy:
    name = "test-not-a-strategy"


@hookimpl
def register_strategies(register):
    register(NotAStrategy)
