"""A workload source: a steady Poisson stream of kernel-table frees."""

from __future__ import annotations

from explorer.api import Param, WorkloadSource, hookimpl, workload_params


class Steady(WorkloadSource):
    name = "test-steady"
    version = "1.0"
    help = "Unlinks and frees BURST kernel PTE tables at RATE, sleepable or atomic."
    params = workload_params("2000/s", extra=(Param("atomic", "bool", False, help="Free in atomic context."),))

    def process(self, w):
        if self.params["rate"] <= 0:
            return
        while True:
            yield w.interarrival(self.params["rate"])
            cpu = w.pick_cpu(self.params["cpus"])
            yield from w.free_kernel_tables(self.params["burst"], cpu=cpu, atomic=self.params["atomic"])


@hookimpl
def register_workloads(register):
    register(Steady)
