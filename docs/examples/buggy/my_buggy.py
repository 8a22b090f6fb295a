"""A user's strategy with a bug: it raises on the third table."""
from explorer.api import FreeStrategy, hookimpl

__version__ = "0.3"


class Buggy(FreeStrategy):
    name = "my-buggy"
    version = "0.3"
    help = "Frees two tables, then trips over its own list."

    def setup(self, k):
        self.n = 0

    def pagetable_free_kernel(self, k, pt):
        self.n += 1
        if self.n > 2:
            raise KeyError(f"table {pt.page} is not on my list")
        k.free_now(pt)


@hookimpl
def register_strategies(register):
    register(Buggy)
