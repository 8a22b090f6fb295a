"""A plugin with one correct hook and one misspelt hook name (``register_workload``, no ``s``).

pluggy silently accepts an implementation of an unknown hook; only ``check_pending()`` catches
it. The whole module is rejected, so ``test-misspelt`` must not be registered either.
"""

from explorer.api import FreeStrategy, hookimpl


class Misspelt(FreeStrategy):
    name = "test-misspelt"

    def pagetable_free_kernel(self, k, pt):
        k.free_now(pt)


@hookimpl
def register_strategies(register):
    register(Misspelt)


@hookimpl
def register_workload(register):  # misspelt: the hook is register_workloads
    pass
