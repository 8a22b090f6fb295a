"""The module an installed package's entry point (group ``pgtable_explorer``) points at."""

from explorer.api import FreeStrategy, hookimpl

__version__ = "2.5"


class Installed(FreeStrategy):
    name = "test-installed"
    version = "2.5"
    help = "Frees at once (no flush); comes from an installed package."

    def pagetable_free_kernel(self, k, pt):
        k.free_now(pt)


@hookimpl
def register_strategies(register):
    register(Installed)
