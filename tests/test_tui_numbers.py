"""Numbers that agree: a flush counts once, when it is over, on the big counter, the chart and the
percentiles alike; the flush chart's columns are whole counts."""

from __future__ import annotations

from explorer.session import Snapshot
from explorer.sim.build import build_simulation
from explorer.tui.widgets.chart import TimeChart, column_ns, resample
from explorer.tui.widgets.counter import BigCounter
from tests.conftest import make_config
from tests.tui_helpers import SHORT, make_app, wait_for_drawn, wait_for_screen, wait_until


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
            counter = app.screen.query_one("#c-flushes", BigCounter)
            chart = app.screen.query_one("#chart-flushes", TimeChart)
            assert counter.value == done == round(sum(chart.values))
            assert counter.border_subtitle == "+1 in progress"
            def flush_n(text: str) -> str | None:
                """The percentiles' n of one IOMMU flush, as drawn."""
                line = next((ln for ln in text.splitlines() if "IOMMU flush" in ln), "IOMMU flush -")
                return line.split("IOMMU flush")[1].split()[0]

            # the chart's head, and the percentiles' n: drawn from this snapshot
            text = await wait_for_screen(pilot, lambda t: f"total {done:,}" in t and flush_n(t) == f"{done:,}",
                                         "the snapshot drawn")
            assert flush_n(text) == f"{done:,}"
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


def test_a_label_and_its_number_never_wrap_apart():
    from explorer.tui.widgets.atoms import Atoms, counted

    items = counted([("cpa-collapse", "72"), ("vmalloc-huge", "1,102")], "\n", ", ")
    items += [(" · ", "freed by", ""), *counted([("caller", "1,542"), ("timer", "3")], " ", ", ")]
    assert Atoms(items).lines(200) == ["cpa-collapse 72, vmalloc-huge 1,102 · freed by caller 1,542, timer 3"]
    assert Atoms(items).lines(30) == ["cpa-collapse 72,", "vmalloc-huge 1,102 · freed by", "caller 1,542, timer 3"]
    # narrower than one item: the label is cut, its number kept
    assert Atoms(items).lines(10) == ["cpa-c… 72,", "v… 1,102 ·", "freed by", "ca… 1,542,", "timer 3"]


async def test_the_side_pane_keeps_freed_by_caller_and_its_count_together():
    from textual.app import App

    from explorer.tui.widgets.violations import ViolationsView

    data = {"violations": {"unflushed_free": {"total": 1542, "by_source": {"vmalloc-huge": 1102, "cpa-collapse": 440},
                                              "by_context": {"caller": 1542}}}}

    class Side(App[None]):
        CSS = "ViolationsView { width: 51; }"  # the side column at 120x40

        def compose(self):
            yield ViolationsView(id="v")

    async with Side().run_test(size=(60, 12)) as pilot:
        view = pilot.app.query_one(ViolationsView)
        view.set_data(data)
        text = await wait_for_screen(pilot, lambda t: "freed by caller 1,542" in t, "the violations drawn")
        lines = [ln.strip() for ln in text.splitlines()]
        assert lines[1].startswith("unflushed free") and lines[1].endswith("1,542  cpa-collapse 440")
        assert lines[2:4] == ["vmalloc-huge 1,102", "freed by caller 1,542"]
        # narrower: "freed by" breaks before the context, not inside it; a source too long for the
        # column keeps its count
        view.styles.width = 44
        await wait_until(pilot, lambda: view.size.width == 44, what="the narrower column")
        text = await wait_for_screen(pilot, lambda t: "cpa-collap… 440" in t, "the narrower column drawn")
        lines = [ln.strip() for ln in text.splitlines()]
        assert lines[1].endswith("1,542  cpa-collap… 440")
        assert lines[2:5] == ["vmalloc-… 1,102", "freed by", "caller 1,542"]
