"""A strategy that raises at run time: the run must fail cleanly (exit status 1), naming it."""

from __future__ import annotations

from explorer.api import FreeStrategy, Param, hookimpl


class Raises(FreeStrategy):
    name = "test-raises"
    version = "1.0"
    help = "Frees the first AFTER tables at once, then raises RuntimeError."
    params = (Param("after", "int", 0, help="Tables freed correctly before it raises.", unit="tables", min=0),)

    def setup(self, k):
        self.calls = 0

    def pagetable_free_kernel(self, k, pt):
        if self.calls >= self.params["after"]:
            raise RuntimeError(f"test-raises: deliberate failure on table {pt.page}")
        self.calls += 1
        k.free_now(pt)


@hookimpl
def register_strategies(register):
    register(Raises)
