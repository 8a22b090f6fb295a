"""A strategy that takes every table and never frees one: every kernel table it gets is leaked."""

from __future__ import annotations

from explorer.api import FreeStrategy, KernelServices, Table, hookimpl


class NeverFrees(FreeStrategy):
    name = "test-never-frees"
    version = "1.0"
    help = "Keeps every table on a list forever (a leak)."

    def setup(self, k: KernelServices) -> None:
        self.held: list[Table] = []

    def pagetable_free_kernel(self, k: KernelServices, pt: Table) -> None:
        self.held.append(pt)


@hookimpl
def register_strategies(register):
    register(NeverFrees)
