"""Registers the name ``test-good`` again: load it after ``runtime/`` and it must be rejected."""

from explorer.api import FreeStrategy, hookimpl


class ShadowGood(FreeStrategy):
    name = "test-good"

    def pagetable_free_kernel(self, k, pt):
        k.free_now(pt)


@hookimpl
def register_strategies(register):
    register(ShadowGood)
