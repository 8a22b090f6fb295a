"""A plugin declaring a parameter whose default does not validate (an int that is not one)."""

from explorer.api import FreeStrategy, Param, hookimpl


class BadDefault(FreeStrategy):
    name = "test-bad-default"
    params = (Param("batch", "int", "lots", help="Tables per batch."),)

    def pagetable_free_kernel(self, k, pt):
        k.free_now(pt)


@hookimpl
def register_strategies(register):
    register(BadDefault)
