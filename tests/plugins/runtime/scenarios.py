"""Scenarios (named preset configs) that use the test strategies."""

from __future__ import annotations

from explorer.api import Scenario, hookimpl


@hookimpl
def register_scenarios(register):
    register(
        Scenario(
            name="test-buggy",
            description="The deliberately buggy late-free strategy, devices probing adversarially.",
            # Long flushes (1000 mms) so tables arrive while one runs; no user walks to evict the
            # kernel entries and a large cache, so the entries a device cached survive to be used.
            config={
                "strategy": {"name": "test-buggy-late-free"},
                "iommu": {
                    "model": "test-fixed-cost",
                    "sva_mms": 1000,
                    "walk_rate": "0/s",
                    "probe_rate": "200000/s",
                    "probe_target": "adversarial",
                    "params": {"pte_entries": 4096},
                },
                # the demo load of the history scenarios (the source defaults are a quiet kernel)
                "workload": [
                    {"name": "vmalloc-huge", "rate": "5000/s"},
                    {"name": "cpa-collapse", "rate": "500/s"},
                    {"name": "hot-remove", "rate": "20/s"},
                    {"name": "user-teardown"},
                ],
            },
            expected="Tables queued during a flush are freed without one: device walks reach reused pages.",
            expect={"violations.use_after_free": "nonzero"},
            version="1.0",
        )
    )
    register(
        Scenario(
            name="test-never-frees",
            description="A strategy that never frees: every kernel table is leaked.",
            config={"strategy": {"name": "test-never-frees"}},
            expected="Every kernel table unlinked is reported as leaked.",
            expect={"violations.leaked": "nonzero"},
            version="1.0",
        )
    )
