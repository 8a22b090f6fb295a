"""Text that does not fit is wrapped at word (or dot) boundaries or shortened with a mark, never
cut without a word."""

from __future__ import annotations

from explorer.tui.widgets.param_detail import wrap_dotted
from explorer.tui.widgets.status_line import fit_parts


def test_a_dotted_key_breaks_after_a_dot():
    assert wrap_dotted("workload.cpa-collapse.rate", 30) == "workload.cpa-collapse.rate"
    assert wrap_dotted("workload.cpa-collapse.rate", 18) == "workload.\ncpa-collapse.rate"
    assert wrap_dotted("kernel.async_kernel_pgtable_free", 14) == "kernel.\nasync_kernel_p\ngtable_free"


def test_the_status_line_leaves_out_whole_parts_first():
    what = "sync-unsafe · generic · 4 workloads · seed 1"
    assert fit_parts(what, 80) == what
    assert fit_parts(what, 25) == "sync-unsafe · generic"
    assert fit_parts(what, 8) == "sync-un…"


async def test_the_run_screen_opens_on_the_tab_the_docs_list_first(registry):
    import re

    from textual.widgets import TabbedContent

    from tests.conftest import TESTS, make_config
    from tests.tui_helpers import SHORT, make_app, wait_for_drawn

    doc = (TESTS.parent / "docs" / "tui.md").read_text()
    first = re.search(r"- tabs \(it opens on the first\): \*\*(\w+)\*\*", doc)
    assert first is not None
    app = make_app(registry, make_config(registry, *SHORT))
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for_drawn(pilot, app, ("paused",))
            tabs = app.screen.query_one(TabbedContent)
            assert tabs.active_pane is not None and str(tabs.active_pane._title) == first.group(1)
            assert str(tabs.query("Tab").first().label) == first.group(1)  # and it is the first tab
    finally:
        app.shutdown_sessions()


def test_the_readme_quick_tour_starts_by_putting_the_command_on_path():
    """After `make run` on a fresh machine, the tour's commands work as typed: its first line
    activates the virtual environment the Makefile creates, where `pgtable-explorer` is."""
    from tests.conftest import TESTS

    root = TESTS.parent
    tour = (root / "README.md").read_text().split("## Quick tour", 1)[1].split("```sh", 1)[1]
    first = tour.strip().splitlines()[0].split("#")[0].strip()
    venv = next(ln.split("?=")[1].strip() for ln in (root / "Makefile").read_text().splitlines()
                if ln.startswith("VENV"))
    assert first == f"source {venv}/bin/activate"


def test_a_sweep_says_when_a_vendor_iommu_runs_on_another_architecture(registry):
    from explorer.sweep import plan_sweep
    from tests.conftest import make_config

    base = make_config(registry, "kernel.arch=x86_64")
    plan = plan_sweep(base, registry, [("grid", "iommu.model=intel-vtd,arm-smmuv3")])
    odd = [n for n in plan.notes if "arm-smmuv3 with kernel.arch = x86_64" in n]
    assert len(odd) == 1 and odd[0].startswith("1 point(s)") and "arm64 IOMMU" in odd[0]
    assert not any("intel-vtd with" in n for n in plan.notes)  # the real pair says nothing
