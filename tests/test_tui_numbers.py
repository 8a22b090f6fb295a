"""Numbers that agree: a flush counts once, when it is over, on the big counter, the chart and the
percentiles alike; the flush chart's columns are whole counts."""

from __future__ import annotations

from explorer.session import Snapshot
from explorer.sim.build import build_simulation
from explorer.tui.widgets.chart import TimeChart, column_ns, resample
from explorer.tui.widgets.counter import BigCounter
from tests.conftest import make_config
from tests.tui_helpers import SHORT, make_app, screen_text, wait_for_drawn


def mid_flush(registry):
    """A snapshot taken while a flush runs (stepping 1 µs at a time until one is in flight)."""
    sim = build_simulation(make_config(registry, *SHORT), registry)
    for t in range(1_000, 5_000_000, 1_000):
        sim.advance(t)
        d = sim.snapshot()
        if d["flushes"] != d["flush_ns"]["count"]:
            return d
    raise AssertionError("no flush in flight at any microsecond")


async def test_a_flush_counts_once_everywhere_at_the_same_moment(registry):
    d = mid_flush(registry)
    done = d["flush_ns"]["count"]
    assert d["flushes"] == done + 1  # the kernel's counter is ahead while one is in flight
    app = make_app(registry, make_config(registry, *SHORT))
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for_drawn(pilot, app, ("paused",))
            app.screen._draw(Snapshot(seq=999, state="paused", speed=0.0, data=d))
            await pilot.pause()
            counter = app.screen.query_one("#c-flushes", BigCounter)
            chart = app.screen.query_one("#chart-flushes", TimeChart)
            assert counter.value == done == round(sum(chart.values))
            assert counter.border_subtitle == "+1 in progress"
            text = screen_text(app)
            assert f"total {done:,}" in text  # the chart's head
            # the percentiles' n of one IOMMU flush
            line = next(ln for ln in text.splitlines() if "IOMMU flush" in ln)
            assert line.split("IOMMU flush")[1].split()[0] == f"{done:,}"
    finally:
        app.shutdown_sessions()


def test_the_flush_chart_bins_whole_columns():
    # 100 bins of 10 µs over 1 ms on 30 columns: 4 bins (40 µs) a column, never a part of one
    values = [1.0] * 100
    assert column_ns(10_000, 1_000_000, 30) == 40_000
    cols = resample(values, 10_000, 1_000_000, 30, "sum")
    assert all(c == int(c) for c in cols) and sum(cols) == 100
    assert cols[:25] == [4.0] * 25 and cols[25:] == [0.0] * 5
    # fewer bins than columns: a bin is drawn as whole columns of its own count
    assert resample([3.0, 5.0], 100_000, 200_000, 10, "sum") == [3.0] * 5 + [5.0] * 5
    assert resample([3.0, 7.0, 2.0], 1_000, 3_000, 2, "max") == [7.0, 2.0]
