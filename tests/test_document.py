"""The TUI's document (explorer.tui.document.ConfigDocument) without Textual: edits and their
origins, dirty state, workloads, scenarios, and the file rules (never replace a file that is not a
config, ask before replacing another file, nothing changes when opening or saving fails)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from explorer.config import dumps_config, load_config
from explorer.plugins import Registry
from explorer.tui.document import ConfigDocument, DocumentError


@pytest.fixture
def doc(registry: Registry) -> ConfigDocument:
    return ConfigDocument.start(registry)


def test_it_starts_on_the_default_scenario_clean_and_in_no_file(doc: ConfigDocument) -> None:
    assert (doc.scenario, doc.path, doc.dirty) == ("linux-6.19", None, False)
    assert doc.file_label() == "scenario linux-6.19 (not saved)"
    assert doc.suggested_name() == "linux-6.19.toml"
    assert doc.origins["strategy.name"] == "scenario"
    assert set(doc.origins.values()) == {"scenario"}


def test_an_edit_marks_its_origin_and_makes_the_document_dirty(doc: ConfigDocument) -> None:
    assert doc.edit("kernel.cpus", "6") is None
    assert doc.config["kernel"]["cpus"] == 6
    assert doc.origins["kernel.cpus"] == "edited"
    assert doc.dirty
    assert doc.model().by_key()["kernel.cpus"].origin == "edited"


def test_a_bad_edit_says_why_and_changes_nothing(doc: ConfigDocument) -> None:
    before, origins = copy.deepcopy(doc.config), dict(doc.origins)
    assert doc.edit("kernel.cpus", "0") == "0 is below the minimum 1"
    assert doc.edit("kernel.cpus", "abc") == "expected an integer, got 'abc'"
    assert doc.edit("kernel.nope", "1") == "unknown parameter kernel.nope"
    assert (doc.config, doc.origins, doc.dirty) == (before, origins, False)


def test_reset_to_default_forgets_the_origin_and_undoes_the_edit(doc: ConfigDocument) -> None:
    doc.edit("kernel.cpus", "6")
    assert doc.reset("kernel.cpus") is None
    assert "kernel.cpus" not in doc.origins
    assert not doc.dirty  # the default scenario is the reference: back to where it started


def test_removing_a_workload_moves_the_origins_of_those_after_it(doc: ConfigDocument) -> None:
    names = [w["name"] for w in doc.config["workload"]]
    assert names[:3] == ["vmalloc-huge", "cpa-collapse", "hot-remove"]
    doc.edit("workload.cpa-collapse.cpus", "0")
    doc.edit("workload.hot-remove.cpus", "1")
    assert (doc.origins["workload[1].cpus"], doc.origins["workload[2].cpus"]) == ("edited", "edited")
    assert doc.remove_workload("cpa-collapse") is None
    assert [w["name"] for w in doc.config["workload"]] == [n for n in names if n != "cpa-collapse"]
    assert doc.origins["workload[1].cpus"] == "edited"  # hot-remove's edit, one up
    assert "workload[2].cpus" not in doc.origins
    assert doc.model().by_key()["workload.hot-remove.cpus"].origin == "edited"


def test_a_second_instance_of_a_source_has_keys_and_origins_of_its_own(doc: ConfigDocument) -> None:
    n = len(doc.config["workload"])
    assert doc.add_workload("vmalloc-huge") is None
    assert doc.config["workload"][n]["name"] == "vmalloc-huge"
    assert doc.origin_key("workload.vmalloc-huge#1.rate") == f"workload[{n}].rate"
    assert doc.origin_key("workload.vmalloc-huge.rate") == "workload[0].rate"
    assert doc.edit("workload.vmalloc-huge#1.rate", "10/s") is None
    assert doc.config["workload"][n]["rate"] == 10.0
    assert doc.origins[f"workload[{n}].rate"] == "edited"


def test_speed_is_an_edit_only_when_it_changes(doc: ConfigDocument) -> None:
    assert not doc.set_speed(doc.speed)
    assert "run.speed" not in doc.origins
    assert doc.set_speed(doc.speed + 5)
    assert doc.origins["run.speed"] == "edited" and doc.dirty


def test_a_scenario_replaces_the_config_clean_and_drops_the_file(doc: ConfigDocument, tmp_path: Path) -> None:
    doc.save(str(tmp_path / "mine.toml"))
    doc.edit("kernel.cpus", "6")
    assert doc.load_scenario("before-fix") is None
    assert (doc.scenario, doc.path, doc.dirty) == ("before-fix", None, False)
    assert "kernel.cpus" not in doc.origins


def test_an_unknown_scenario_changes_nothing(doc: ConfigDocument) -> None:
    before = copy.deepcopy(doc.config)
    problem = doc.load_scenario("nope")
    assert problem is not None and "unknown scenario 'nope'" in problem
    assert (doc.config, doc.scenario) == (before, "linux-6.19")


def test_a_counterexample_is_adopted_unsaved_in_no_file(doc: ConfigDocument, registry: Registry) -> None:
    other = copy.deepcopy(doc.config)
    other["run"]["seed"] = 99
    doc.adopt(other)
    assert (doc.path, doc.scenario, doc.origins, doc.dirty) == (None, None, {}, True)
    assert doc.file_label() == "(not saved)" and doc.suggested_name() == "pgtable-explorer.toml"


def test_save_makes_it_clean_in_that_file_and_reports_no_change(doc: ConfigDocument, registry: Registry,
                                                                 tmp_path: Path) -> None:
    target = tmp_path / "mine.toml"
    doc.edit("kernel.cpus", "6")
    assert doc.save(str(target)) is True
    assert (doc.path, doc.dirty) == (target.resolve(), False)
    assert load_config(target, registry) == doc.config
    assert doc.save(str(target)) is False  # the same text: nothing written, no backup
    assert not target.with_name("mine.toml~").exists()
    doc.edit("kernel.cpus", "5")
    assert doc.save(str(target)) is True
    assert load_config(target.with_name("mine.toml~"), registry)["kernel"]["cpus"] == 6


def test_a_save_that_fails_changes_nothing(doc: ConfigDocument, tmp_path: Path) -> None:
    doc.edit("kernel.cpus", "6")
    with pytest.raises(DocumentError, match=r"^cannot write .*missing/mine\.toml: No such file or directory"):
        doc.save(str(tmp_path / "missing" / "mine.toml"))
    assert (doc.path, doc.dirty) == (None, True)


def test_open_reads_a_file_clean_with_file_origins(doc: ConfigDocument, registry: Registry, tmp_path: Path) -> None:
    target = tmp_path / "c.toml"
    target.write_text('[kernel]\ncpus = 3\n')
    doc.edit("kernel.cpus", "6")
    assert doc.open(str(target)) == []
    assert (doc.path, doc.scenario, doc.dirty) == (target.resolve(), None, False)
    assert doc.config["kernel"]["cpus"] == 3
    assert doc.origins == {"kernel.cpus": "file"}
    assert doc.file_label() == str(target.resolve())  # outside the current folder: the whole path


def test_open_of_a_bad_or_missing_file_changes_nothing(doc: ConfigDocument, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[kernel]\ncpus = 0\n")
    doc.edit("kernel.cpus", "6")
    before = copy.deepcopy(doc.config)
    with pytest.raises(DocumentError) as info:
        doc.open(str(bad))
    assert str(info.value) == f"{bad}: kernel.cpus: 0 is below the minimum 1"
    with pytest.raises(DocumentError, match=r"^cannot read .*gone\.toml: No such file or directory$"):
        doc.open(str(tmp_path / "gone.toml"))
    assert (doc.config, doc.path, doc.scenario, doc.dirty) == (before, None, "linux-6.19", True)


def test_starting_from_a_file_keeps_its_warnings(registry: Registry, tmp_path: Path) -> None:
    target = tmp_path / "old.toml"
    target.write_text('[plugins]\ndeferred = "0.0.1"\n\n[kernel]\ncpus = 3\n')
    doc = ConfigDocument.start(registry, path=target)
    assert (doc.path, doc.dirty, doc.origins) == (target.resolve(), False, {"kernel.cpus": "file"})
    assert [w.key for w in doc.load_warnings] == ["plugins.deferred"]


def test_a_save_never_replaces_what_is_not_a_config_and_asks_before_another_file(
        doc: ConfigDocument, registry: Registry, tmp_path: Path) -> None:
    own, other, foreign = tmp_path / "own.toml", tmp_path / "other.toml", tmp_path / "pyproject.toml"
    doc.save(str(own))
    other.write_text(dumps_config(doc.config, registry))
    foreign.write_text('[project]\nname = "x"\n')
    assert doc.refuses(str(foreign)) is not None and "not a pgtable-explorer config" in str(doc.refuses(str(foreign)))
    assert doc.refuses(str(other)) is None and doc.refuses(str(tmp_path / "new.toml")) is None
    assert doc.asks_before_replacing(str(other))
    assert not doc.asks_before_replacing(str(own))  # its own file: what a plain save writes anyway
    assert not doc.asks_before_replacing(str(tmp_path / "new.toml"))


def test_refit_to_the_same_plugins_keeps_the_config(doc: ConfigDocument, registry: Registry) -> None:
    doc.edit("kernel.cpus", "6")
    before = copy.deepcopy(doc.config)
    assert doc.refit(registry) is None
    assert doc.config == before and doc.registry is registry
