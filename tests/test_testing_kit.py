"""The plugin authors' testing kit (explorer.testing) through its pytest fixtures (explorer.pytest_plugin)."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from explorer import testing
from explorer.api import FreeStrategy, KernelServices, Param, Table, hookimpl
from explorer.config import load_config
from explorer.sim.build import build_simulation

RUNTIME = Path(__file__).resolve().parent / "plugins" / "runtime"
SMALL = {"scenarios": ["large-sva"], "iommu_models": ["generic"], "duration": "40ms"}


class FreeAtOnce(FreeStrategy):
    """The kernel before the fix: straight back to the allocator, no IOMMU told."""

    name = "kit-free-at-once"
    version = "1.0"
    help = "Frees every table at once (unsafe)."
    params = (Param("cost", "duration", "0ns", min=0, max=10**6, help="CPU time per free."),)

    def pagetable_free_kernel(self, k: KernelServices, pt: Table) -> Any:
        if self.values["cost"]:
            yield self.values["cost"]
        k.free_now(pt)


@hookimpl
def register_strategies(register: Any) -> None:  # pragma: no cover - the kit registers the class itself
    register(FreeAtOnce)


def test_a_safe_strategy_passes_and_the_report_says_what_ran(check_strategy: Any) -> None:
    report = check_strategy("test-good", plugins_dir=RUNTIME, hunt=False, **SMALL)
    assert report.ok and report.runs == 1 and report.configs == ["large-sva/generic"]
    assert "no violation in 1 runs" in str(report)


def test_the_buggy_late_free_is_rejected_with_a_counterexample_that_reproduces(
        check_strategy: Any, tmp_path: Path) -> None:
    with pytest.raises(AssertionError) as err:
        check_strategy("test-buggy-late-free", plugins_dir=RUNTIME, **SMALL)
    text = str(err.value)
    assert "strategy 'test-buggy-late-free' breaks the kernel's rules in 1 of 1 configs" in text
    assert "scenario large-sva, iommu generic, seed 1" in text
    # the cause (a free no flush covered, decided at the free), then the walk into the reused page
    assert re.search(r"violations: unflushed_free \d+, use_after_free \d+", text)
    # the trace tells the page's story: unlinked, handed to the strategy, freed before a flush covered it
    pfn = re.search(r"first: unflushed_free .* pfn=(\d+)", text).group(1)  # type: ignore[union-attr]
    story = [line for line in text.splitlines() if f"pfn={pfn} " in line and line.lstrip().startswith("[")]
    assert [re.search(r": (\w+):", s).group(1) for s in story][:3] == ["unlink", "pagetable_free_kernel", "free"]  # type: ignore[union-attr]
    assert "kind=unflushed_free" in story[-1]
    # the config file is in the test's tmp_path and reproduces the violation
    path = Path(re.search(r"config: (\S+\.toml)", text).group(1))  # type: ignore[union-attr]
    assert path.parent == tmp_path
    registry = testing.kit_registry(plugins_dir=RUNTIME)
    metrics = build_simulation(load_config(path, registry), registry).run()
    assert metrics["violations"]["use_after_free"]["total"] > 0
    assert f"--plugins-dir {RUNTIME} run {path}" in text


def test_a_class_is_checked_without_being_installed(check_strategy: Any) -> None:
    with pytest.raises(AssertionError, match=r"kit-free-at-once.*\n.*\n  violations: unflushed_free \d+, use_after_f"):
        check_strategy(FreeAtOnce, scenarios=["linux-6.19"], iommu_models=["generic"], duration="20ms", hunt=False)


def test_run_strategy_takes_a_class_and_its_params(run_strategy: Any) -> None:
    fast = run_strategy(FreeAtOnce, duration="10ms")
    slow = run_strategy(FreeAtOnce, duration="10ms", params={"cost": "5us"})
    assert fast["kernel_tables_freed"] == slow["kernel_tables_freed"] > 0
    assert fast["caller_ns"]["max"] < 5_000 <= slow["caller_ns"]["max"]
    assert fast["flushes"] == 0


def test_compare_strategy_runs_both_on_the_same_workload(compare_strategy: Any) -> None:
    ours, kernel = compare_strategy(FreeAtOnce, "deferred", duration="10ms")
    assert ours["unlinked_by_source"] == kernel["unlinked_by_source"]
    assert ours["flushes"] == 0 < kernel["flushes"]
    assert compare_strategy(FreeAtOnce, duration="10ms").delta("flushes") == -kernel["flushes"]


def test_a_class_may_not_take_a_builtin_name() -> None:
    class Impostor(FreeAtOnce):
        name = "deferred"

    with pytest.raises(ValueError, match="built-in"):
        testing.kit_registry(Impostor)


def test_hunt_runs_when_the_build_has_it_and_its_find_is_reported(
        check_strategy: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hunt (explorer.hunt, from another branch) gets the configs that passed and the rest of
    the budget; a config it returns is re-run, written out and reported like any other."""
    calls: list[dict[str, Any]] = []

    def fake_hunt(config: dict[str, Any], registry: Any, **kw: Any) -> Any:
        calls.append(kw)
        bad = testing.make_config(registry, "test-buggy-late-free", scenario="large-sva", iommu="generic",
                                  duration="40ms", overrides=testing.ADVERSARIAL_DEVICE)
        return SimpleNamespace(found=True, kind="use_after_free", config=bad, runs=7, trace=[])

    monkeypatch.setattr(testing, "_hunt_function", lambda: fake_hunt)
    with pytest.raises(AssertionError, match=r"\(found by hunt\)"):
        check_strategy("test-good", plugins_dir=RUNTIME, scenarios=["linux-6.19"], iommu_models=["generic"],
                       duration="10ms", budget="20s")
    assert calls and calls[0]["kind"] == "any" and 0 < calls[0]["budget_s"] <= 20


def test_a_safe_strategy_is_hunted_for_real_and_the_report_counts_the_runs() -> None:
    """The kit's hunt is explorer.hunt itself: on a safe strategy it runs and finds nothing."""
    report = testing.check_strategy("test-good", plugins_dir=RUNTIME, scenarios=["linux-6.19"],
                                    iommu_models=["generic"], duration="10ms", budget="4s")
    assert re.fullmatch(r"hunt: [1-9][0-9]* more runs found nothing", report.hunted), report.hunted


def test_instance_values_and_the_old_params_name_are_one_mapping() -> None:
    s = FreeAtOnce({"cost": 7})
    assert s.values == {"cost": 7} and s.params is s.values
    assert FreeAtOnce.params[0].name == "cost"  # on the class: still the declarations
