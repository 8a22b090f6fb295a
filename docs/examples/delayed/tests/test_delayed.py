# tests/test_delayed.py
"""The delayed strategy, checked with pgtable-explorer's testing kit."""

from pgtx_delayed.strategy import Delayed


def test_delayed_follows_the_kernels_rules(check_strategy):
    check_strategy(Delayed)


def test_delayed_flushes_less_than_deferred(compare_strategy):
    ours, kernel = compare_strategy(Delayed, "deferred")  # the same workload and seed
    assert ours["flushes"] < kernel["flushes"] / 4  # one flush per 1ms batch
    assert ours["kernel_tables_freed"] == kernel["kernel_tables_freed"]
