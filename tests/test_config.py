"""Config: defaults and scenarios, validation errors, TOML round trip, atomic save, overrides,
provenance and the JSON Schema.

Most tests use a hermetic registry: the built-in plugins directory is swapped for an empty one and
small declaration-only plugins (below) are loaded with the names the defaults look for, so the
expected values follow from the declarations here and not from the first-party plugins' defaults.
"""

from __future__ import annotations

import json
import os
import stat
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import explorer.plugins as plugins_mod
from explorer import config as C
from explorer.api import Param
from explorer.config import ConfigError, Problem
from explorer.core_params import KERNEL_PARAMS, RUN_PARAMS
from explorer.plugins import Registry, load_registry

TEST_PLUGINS = '''
from explorer.api import (
    FreeStrategy, FlushCost, IommuModel, Param, Scenario, WorkloadSource, hookimpl, workload_params,
)


class Strategy(FreeStrategy):  # declarations are what these tests are about; the method is a stub
    def pagetable_free_kernel(self, k, pt):
        k.free_now(pt)


class Model(IommuModel):
    def invalidate_kernel_range(self, now, topo):
        return FlushCost(0, 0)


class Source(WorkloadSource):
    def process(self, w):
        yield 10**9


class Deferred(Strategy):
    name = "deferred"
    version = "1.0"
    help = "Queue, flush in a worker, free."


class Batched(Strategy):
    name = "batched"
    version = "2.1"
    help = "Flush once per batch."
    params = (
        Param("batch", "int", 32, min=1, max=4096, help="tables per flush"),
        Param("max_delay", "duration", "1ms", min=0, max=10**10, help="longest wait"),
        Param("mode", "choice", "count", choices=("count", "time")),
    )


class Sync(Strategy):
    name = "sync"
    version = "1.0"
    params = (Param("check", "bool", False), Param("cost", "float", 1.5, min=0.0, max=100.0))


class Generic(Model):
    name = "generic"
    version = "1.0"
    params = (Param("invalidate_per_mm", "duration", "1us", min=0, max=10**9),)


class NoIommu(Model):
    name = "none"
    version = "1.0"
    present = False


class Vmalloc(Source):
    name = "vmalloc-huge"
    version = "1.0"
    params = workload_params("5000/s")


class Cpa(Source):
    name = "cpa-collapse"
    version = "1.0"
    params = workload_params("500/s", extra=(Param("flush", "duration", "10us", min=0, max=10**9),))


class HotRemove(Source):
    name = "hot-remove"
    version = "1.0"
    params = workload_params("20/s", burst=64)


@hookimpl
def register_strategies(register):
    for cls in (Deferred, Batched, Sync):
        register(cls)


@hookimpl
def register_iommu_models(register):
    register(Generic)
    register(NoIommu)


@hookimpl
def register_workloads(register):
    for cls in (Vmalloc, Cpa, HotRemove):
        register(cls)


@hookimpl
def register_scenarios(register):
    register(Scenario("linux-6.19", "the default", {"kernel": {"cpus": 4},
                      "strategy": {"name": "batched", "params": {"batch": 16}}}, expected="fine"))
    register(Scenario("before-fix", "old", {"strategy": {"name": "sync"},
                      "workload": [{"name": "hot-remove", "burst": 8}]}))
'''


@pytest.fixture(scope="module")
def reg(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    root = tmp_path_factory.mktemp("cfgplugins")
    (root / "decl.py").write_text(TEST_PLUGINS)
    empty = tmp_path_factory.mktemp("nobuiltins")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plugins_mod, "builtin_plugins_dir", lambda: empty)
        registry = load_registry([root], entry_points=False)
    assert not registry.failures, [f.error for f in registry.failures]
    return registry


def problems_of(exc: pytest.ExceptionInfo[ConfigError]) -> dict[str, str]:
    return {p.key: p.message for p in exc.value.problems}


# --------------------------------------------------------------------------- defaults


def test_default_config_is_the_linux_6_19_scenario_over_declared_defaults(reg: Registry) -> None:
    d = C.default_config(reg)
    assert d["schema"] == 1
    assert d["kernel"]["cpus"] == 4  # from the scenario
    assert d["kernel"]["arch"] == "x86_64"  # declared default
    assert d["strategy"] == {"name": "batched", "params": {"batch": 16, "max_delay": 1_000_000, "mode": "count"}}
    assert d["iommu"]["model"] == "generic"
    assert d["iommu"]["params"] == {"invalidate_per_mm": 1_000}
    assert [w["name"] for w in d["workload"]] == ["vmalloc-huge", "cpa-collapse", "hot-remove"]
    assert d["workload"][2] == {"name": "hot-remove", "rate": 20.0, "burst": 64, "cpus": "all"}
    assert d["run"] == {p.name: p.canonical_default() for p in RUN_PARAMS}
    assert d["plugins"] == {"batched": "2.1", "generic": "1.0", "vmalloc-huge": "1.0", "cpa-collapse": "1.0",
                            "hot-remove": "1.0"}


def test_builtin_defaults_without_scenario(reg: Registry) -> None:
    d = C.builtin_defaults(reg)
    assert d["strategy"] == {"name": "deferred", "params": {}}
    assert d["kernel"] == {p.name: p.canonical_default() for p in KERNEL_PARAMS}
    assert [w["name"] for w in d["workload"]] == ["vmalloc-huge", "cpa-collapse", "hot-remove"]


def test_scenario_merges_tables_and_replaces_workloads(reg: Registry) -> None:
    d = C.default_config(reg, "before-fix")
    assert d["strategy"] == {"name": "sync", "params": {"check": False, "cost": 1.5}}
    assert d["kernel"]["cpus"] == 8  # laid over the declared defaults, not over linux-6.19
    assert d["workload"] == [{"name": "hot-remove", "rate": 20.0, "burst": 8, "cpus": "all"}]
    assert d["plugins"] == {"sync": "1.0", "generic": "1.0", "hot-remove": "1.0"}


def test_unknown_scenario_lists_the_available_ones(reg: Registry) -> None:
    with pytest.raises(ConfigError) as exc:
        C.default_config(reg, "linux-6.91")
    msg = str(exc.value)
    assert "unknown scenario 'linux-6.91'" in msg
    assert "did you mean 'linux-6.19'" in msg
    assert "available: before-fix, linux-6.19" in msg


def test_missing_values_come_from_the_defaults(reg: Registry) -> None:
    c = C.loads_config('[kernel]\ncpus = 2\n[strategy]\nname = "sync"\n', reg)
    d = C.default_config(reg)
    assert c["kernel"] == {**d["kernel"], "cpus": 2}
    # another strategy than the default's starts from its own declared defaults
    assert c["strategy"] == {"name": "sync", "params": {"check": False, "cost": 1.5}}
    assert c["workload"] == d["workload"]
    # the same strategy keeps the default's (the scenario's) parameters
    c = C.loads_config('[strategy.params]\nmode = "time"\n', reg)
    assert c["strategy"]["params"] == {"batch": 16, "max_delay": 1_000_000, "mode": "time"}


def test_workload_list_replaces_and_each_entry_starts_from_its_defaults(reg: Registry) -> None:
    c = C.loads_config('[[workload]]\nname = "cpa-collapse"\nrate = "2/ms"\n', reg)
    assert c["workload"] == [{"name": "cpa-collapse", "rate": 2000.0, "burst": 1, "cpus": "all", "flush": 10_000}]
    assert C.loads_config("workload = []\n", reg)["workload"] == []


# --------------------------------------------------------------------------- errors


def test_syntax_error_has_line_column_and_caret(reg: Registry) -> None:
    text = 'schema = 1\n[kernel]\ncpus = = 4\n'
    with pytest.raises(ConfigError) as exc:
        C.loads_config(text, reg, "bad.toml")
    (p,) = exc.value.problems
    assert (p.file, p.line, p.col) == ("bad.toml", 3, 8)
    assert p.source_line == "cpus = = 4"
    lines = str(exc.value).splitlines()
    assert lines[0].startswith("bad.toml:3:8: TOML syntax error: Invalid value")
    assert lines[1] == "    cpus = = 4"
    assert lines[2] == "    " + " " * 7 + "^"


def test_syntax_error_of_an_unquoted_unit_says_how_to_write_it(reg: Registry) -> None:
    with pytest.raises(ConfigError) as exc:
        C.loads_config("[kernel]\nworkqueue_delay = 20us\n", reg)
    (p,) = exc.value.problems
    assert p.line == 2
    assert p.message.endswith('(a value with a unit is a string: write workqueue_delay = "20us")')


def test_syntax_error_at_end_of_document(reg: Registry) -> None:
    with pytest.raises(ConfigError) as exc:
        C.loads_config('[run]\nseed = "1', reg, "eof.toml")
    (p,) = exc.value.problems
    assert p.line == 2 and p.col == len('seed = "1') + 1
    assert "(at end of document)" not in p.message


def test_load_config_reports_the_path(reg: Registry, tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[kernel\n")
    with pytest.raises(ConfigError) as exc:
        C.load_config(path, reg)
    assert str(exc.value).startswith(f"{path}:1:8: ")
    with pytest.raises(FileNotFoundError):
        C.load_config(tmp_path / "missing.toml", reg)
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="not a UTF-8 text file"):
        C.load_config(tmp_path / "bin.toml", reg)


def test_unknown_key_suggests_and_lists_valid_keys(reg: Registry) -> None:
    with pytest.raises(ConfigError) as exc:
        C.loads_config("[kernel]\ncpu = 4\n", reg, "c.toml")
    (p,) = exc.value.problems
    assert p.key == "kernel.cpu"
    assert "did you mean 'cpus'?" in p.message
    assert "valid keys in [kernel]: " + ", ".join(q.name for q in KERNEL_PARAMS) in p.message
    assert str(p).startswith("c.toml: kernel.cpu: unknown key")


def test_unknown_top_level_and_plugin_param_keys(reg: Registry) -> None:
    text = """
    kernal = 1
    [strategy]
    name = "batched"
    [strategy.params]
    bach = 3
    [iommu.params]
    invalidate_per_m = "1us"
    [[workload]]
    name = "vmalloc-huge"
    brust = 2
    """
    with pytest.raises(ConfigError) as exc:
        C.loads_config(textwrap.dedent(text), reg)
    probs = problems_of(exc)
    assert "did you mean 'kernel'?" in probs["kernal"]
    assert "did you mean 'batch'?" in probs["strategy.params.bach"]
    assert "valid keys in [strategy.params]: batch, max_delay, mode" in probs["strategy.params.bach"]
    assert "did you mean 'invalidate_per_mm'?" in probs["iommu.params.invalidate_per_m"]
    assert "did you mean 'burst'?" in probs["workload.vmalloc-huge.brust"]


def test_misplaced_plugin_parameters_get_a_hint(reg: Registry) -> None:
    text = '[strategy]\nname = "batched"\nbatch = 3\n[iommu]\ninvalidate_per_mm = "2us"\n' \
           '[[workload]]\nname = "hot-remove"\n[workload.params]\nburst = 3\n'
    with pytest.raises(ConfigError) as exc:
        C.loads_config(text, reg)
    probs = problems_of(exc)
    assert "write it under [strategy.params]" in probs["strategy.batch"]
    assert "write it under [iommu.params]" in probs["iommu.invalidate_per_mm"]
    assert "written inline in its [[workload]] table" in probs["workload.hot-remove.params"]


@pytest.mark.parametrize(
    ("toml", "key", "message"),
    [
        ('[kernel]\ncpus = "many"', "kernel.cpus", "expected an integer, got 'many'"),
        ("[kernel]\niommu_sva = 3", "kernel.iommu_sva", "expected true or false, got 3"),
        ('[kernel]\narch = "sparc"', "kernel.arch", "expected one of x86_64, arm64; got 'sparc'"),
        ("[kernel]\ncpus = 0", "kernel.cpus", "0 is below the minimum 1"),
        ("[run]\nseed = -1", "run.seed", "-1 is below the minimum 0"),
        ('[kernel]\nworkqueue_delay = "20 parsecs"', "kernel.workqueue_delay", "expected a duration such as"),
        ('[kernel]\nworkqueue_delay = "1.5ns"', "kernel.workqueue_delay", "is not a whole number of nanoseconds"),
        ('[kernel]\nbackground_alloc_rate = "fast"', "kernel.background_alloc_rate", "expected a rate such as"),
        ("[kernel]\nbackground_alloc_rate = nan", "kernel.background_alloc_rate", "expected a finite value"),
        ('[strategy.params]\nmax_delay = "20s"', "strategy.params.max_delay", "is above the maximum 10s"),
        ('[strategy]\nname = "defered"', "strategy.name",
         "unknown strategy 'defered' (did you mean 'deferred'?); available: batched, deferred, sync"),
        ('[iommu]\nmodel = "amd"', "iommu.model", "unknown IOMMU model 'amd'; available: generic, none"),
        ('[[workload]]\nname = "hotremove"', "workload.hotremove.name",
         "unknown workload source 'hotremove' (did you mean 'hot-remove'?); available: cpa-collapse, hot-remove, "
         "vmalloc-huge"),
        ("[[workload]]\nrate = 1", "workload[0].name", "missing: every [[workload]] needs a name"),
        ("kernel = 3", "kernel", "expected a table"),
        ("workload = 3", "workload", "expected an array of [[workload]] tables"),
        ("schema = 2", "schema", "schema 2 is not supported"),
        ('schema = "1"', "schema", "expected the integer 1"),
        ('[kernel]\ncpus = 4\n[[workload]]\nname = "hot-remove"\ncpus = "2-7"', "workload.hot-remove.cpus",
         "goes past the last CPU: kernel.cpus is 4"),
        ('[[workload]]\nname = "hot-remove"\ncpus = "some"', "workload.hot-remove.cpus",
         "expected 'all', a CPU number"),
        ('[plugins]\nfancy = "1.0"', "plugins.fancy", "the config needs plugin 'fancy' (version 1.0), which is not "
         "loaded; install it or pass --plugins-dir; available: batched, cpa-collapse, deferred"),
        ("[plugins]\nsync = 1", "plugins.sync", "expected the version the config was saved with"),
    ],
)
def test_each_error_class_has_its_message(reg: Registry, toml: str, key: str, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        C.loads_config(toml + "\n", reg, "x.toml")
    probs = problems_of(exc)
    assert key in probs, str(exc.value)
    assert message in probs[key]
    assert f"x.toml: {key}: " in str(exc.value)


def test_all_problems_are_collected(reg: Registry) -> None:
    text = """
    [run]
    duration = "5 parsecs"
    [kernel]
    cpu = 4
    arch = "sparc"
    [strategy]
    name = "batched"
    [strategy.params]
    batch = 0
    [iommu]
    model = "generik"
    count = "two"
    [[workload]]
    name = "vmalloc-huge"
    rate = "fast"
    [[workload]]
    name = "cpa-colapse"
    """
    with pytest.raises(ConfigError) as exc:
        C.loads_config(textwrap.dedent(text), reg, "bad.toml")
    assert sorted(problems_of(exc)) == sorted([
        "run.duration", "kernel.cpu", "kernel.arch", "strategy.params.batch", "iommu.model", "iommu.count",
        "workload.vmalloc-huge.rate", "workload.cpa-colapse.name",
    ])
    assert len(str(exc.value).splitlines()) == 8
    assert all(line.startswith("bad.toml: ") for line in str(exc.value).splitlines())


def test_problem_str_formats() -> None:
    assert str(Problem("f.toml", "kernel.cpus", "bad")) == "f.toml: kernel.cpus: bad"
    assert str(Problem("f.toml", "", "bad")) == "f.toml: bad"
    tabbed = Problem("f.toml", "", "oops", line=2, col=3, source_line="\tx=")
    assert str(tabbed) == "f.toml:2:3: oops\n    \tx=\n    \t ^"


def test_plugin_version_mismatch_is_a_warning(reg: Registry) -> None:
    found: list[Problem] = []
    c = C.loads_config('[plugins]\nbatched = "0.9"\n', reg, "old.toml", warnings=found)
    assert [(p.key, p.message) for p in found] == [
        ("plugins.batched", "the config was saved with batched 0.9, the loaded version is 2.1; results may differ")
    ]
    assert c["plugins"]["batched"] == "2.1"  # what the config needs now, as it will be saved
    with pytest.warns(C.ConfigWarning, match="saved with batched 0.9"):
        C.loads_config('[plugins]\nbatched = "0.9"\n', reg)


def test_plugins_table_records_what_is_used(reg: Registry) -> None:
    c = C.loads_config('[strategy]\nname = "sync"\n[iommu]\nmodel = "none"\n[[workload]]\nname = "hot-remove"\n', reg)
    assert c["plugins"] == {"sync": "1.0", "none": "1.0", "hot-remove": "1.0"}


# --------------------------------------------------------------------------- TOML out and round trip


def test_toml_form_uses_units_and_array_of_tables(reg: Registry) -> None:
    d = C.default_config(reg)
    text = C.dumps_config(d, reg)
    assert 'workqueue_delay = "20us"' in text
    assert 'background_alloc_rate = "200000/s"' in text
    assert text.count("[[workload]]") == 3
    assert "[strategy.params]" in text and "[iommu.params]" in text
    assert text.startswith("schema = 1\n")
    assert C.loads_config(text, reg) == d


def test_minimal_keeps_only_differences_and_the_names(reg: Registry) -> None:
    d = C.default_config(reg)
    assert C.to_toml_dict(d, reg, minimal=True) == {
        "schema": 1,
        "plugins": d["plugins"],
        "strategy": {"name": "batched"},
        "iommu": {"model": "generic"},
        "workload": [{"name": "vmalloc-huge"}, {"name": "cpa-collapse"}, {"name": "hot-remove"}],
    }
    c = C.apply_overrides(d, ["kernel.cpus=2", "strategy.params.batch=64", "workload[2].burst=3"], reg)
    m = C.to_toml_dict(c, reg, minimal=True)
    assert m["kernel"] == {"cpus": 2}
    assert m["strategy"] == {"name": "batched", "params": {"batch": 64}}
    assert m["workload"][2] == {"name": "hot-remove", "burst": 3}
    assert C.loads_config(C.dumps_config(c, reg, minimal=True), reg) == c
    # another scenario, saved minimally, loads back as itself
    b = C.default_config(reg, "before-fix")
    assert C.loads_config(C.dumps_config(b, reg, minimal=True), reg) == b


def test_empty_workload_list_round_trips(reg: Registry) -> None:
    c = C.loads_config("workload = []\n", reg)
    assert c["workload"] == [] and sorted(c["plugins"]) == ["batched", "generic"]
    for minimal in (False, True):
        assert C.loads_config(C.dumps_config(c, reg, minimal=minimal), reg) == c


def _value(p: Param, cpus_max: int = 1) -> st.SearchStrategy[Any]:
    lo = p.min if p.min is not None else -(10**12)
    hi = p.max if p.max is not None else 10**12
    if p.type in ("int", "duration"):
        return st.integers(int(lo), int(hi))
    if p.type in ("float", "rate"):
        return st.floats(float(lo), float(hi), allow_nan=False, allow_infinity=False)
    if p.type == "bool":
        return st.booleans()
    if p.type == "choice":
        return st.sampled_from(p.choices)
    if p.name == "cpus":
        return st.sampled_from(["all", "0", "0-0"])
    return st.text(max_size=12)


def _params(params: tuple[Param, ...]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({p.name: _value(p) for p in params})


@st.composite
def configs(draw: st.DrawFn, registry: Registry) -> dict[str, Any]:
    sname = draw(st.sampled_from(sorted(registry.strategies)))
    model = draw(st.sampled_from(sorted(registry.iommu_models)))
    wnames = draw(st.lists(st.sampled_from(sorted(registry.workloads)), max_size=4))
    raw = {
        "run": draw(_params(RUN_PARAMS)),
        "kernel": draw(_params(KERNEL_PARAMS)),
        "strategy": {"name": sname, "params": draw(_params(registry.strategies[sname].params))},
        "iommu": {"model": model, **draw(_params(C.IOMMU_CORE_PARAMS)),
                  "params": draw(_params(registry.iommu_models[model].params))},
        "workload": [{"name": w, **draw(_params(registry.workloads[w].params))} for w in wnames],
    }
    return C.validate(raw, registry)


def test_round_trip_property(reg: Registry) -> None:
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(configs(reg))
    def check(config: dict[str, Any]) -> None:
        assert C.validate(config, reg) == config  # canonical is a fixed point
        for minimal in (False, True):
            text = C.dumps_config(config, reg, minimal=minimal)
            again = C.loads_config(text, reg)
            assert again == config
            assert C.dumps_config(again, reg, minimal=minimal) == text

    check()


def test_first_party_defaults_round_trip(registry: Registry) -> None:
    for scenario in [None, *sorted(registry.scenarios)]:
        d = C.default_config(registry, scenario)
        for minimal in (False, True):
            assert C.loads_config(C.dumps_config(d, registry, minimal=minimal), registry) == d


# --------------------------------------------------------------------------- save


def test_save_is_atomic_keeps_a_backup_and_skips_unchanged(reg: Registry, tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    d = C.default_config(reg)
    assert C.save_config(d, path, reg) is True
    assert not C.backup_path(path).exists()
    first = path.read_text()
    assert C.load_config(path, reg) == d

    assert C.save_config(d, path, reg) is False  # nothing changed: no write, no backup
    assert not C.backup_path(path).exists()

    c = C.apply_overrides(d, ["kernel.cpus=2"], reg)
    assert C.save_config(c, path, reg) is True
    assert C.backup_path(path).read_text() == first
    assert C.load_config(path, reg) == c
    assert sorted(os.listdir(tmp_path)) == ["run.toml", "run.toml~"]  # no temporary files left


def test_save_keeps_the_top_comment_block_and_mode(reg: Registry, tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("#:schema ./pgtable-explorer.schema.json\n# my experiment\n\n[kernel]\ncpus = 2 # two\n")
    path.chmod(0o600)
    c = C.load_config(path, reg)
    assert C.save_config(c, path, reg, minimal=True) is True
    text = path.read_text()
    assert text.startswith("#:schema ./pgtable-explorer.schema.json\n# my experiment\n\nschema = 1\n")
    assert "# two" not in text  # other comments are not kept (tomli-w)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert C.load_config(path, reg) == c
    assert C.save_config(c, path, reg, minimal=True) is False


def test_save_follows_symlinks(reg: Registry, tmp_path: Path) -> None:
    real = tmp_path / "real.toml"
    link = tmp_path / "link.toml"
    C.save_config(C.default_config(reg), real, reg)
    link.symlink_to(real)
    c = C.apply_overrides(C.default_config(reg), ["kernel.cpus=3"], reg)
    assert C.save_config(c, link, reg)
    assert link.is_symlink()
    assert C.load_config(real, reg) == c


def test_failed_save_leaves_the_old_file_and_no_temporary(
    reg: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.toml"
    C.save_config(C.default_config(reg), path, reg)
    before = path.read_bytes()
    real_replace = os.replace

    def failing_replace(src: Any, dst: Any) -> None:
        if Path(dst) == path:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="No space left"):
        C.save_config(C.apply_overrides(C.default_config(reg), ["kernel.cpus=2"], reg), path, reg)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["c.toml", "c.toml~"]


# --------------------------------------------------------------------------- overrides


def test_overrides_of_every_form(reg: Registry) -> None:
    d = C.default_config(reg)
    c = C.apply_overrides(d, [
        "kernel.cpus=2", "kernel.iommu_sva=false", "run.duration=20ms", "strategy.params.batch=64",
        "workload.vmalloc-huge.rate=1000/s", "workload[0].burst=2", "iommu.params.invalidate_per_mm=3us",
        "iommu.probe_target=adversarial", "kernel.arch=arm64", 'workload[1].cpus="1"',
    ], reg)
    assert c["kernel"]["cpus"] == 2 and c["kernel"]["iommu_sva"] is False and c["kernel"]["arch"] == "arm64"
    assert c["run"]["duration"] == 20_000_000
    assert c["strategy"]["params"]["batch"] == 64
    assert c["workload"][0]["rate"] == 1000.0 and c["workload"][0]["burst"] == 2
    assert c["workload"][1]["cpus"] == "1"
    assert c["iommu"]["params"]["invalidate_per_mm"] == 3_000
    assert c["iommu"]["probe_target"] == "adversarial"
    assert d["kernel"]["cpus"] == 4  # the input is not modified


def test_changing_strategy_resets_its_params_unless_also_set(reg: Registry) -> None:
    d = C.apply_overrides(C.default_config(reg), ["strategy.params.mode=time"], reg)
    c = C.apply_overrides(d, ["strategy.name=sync"], reg)
    assert c["strategy"] == {"name": "sync", "params": {"check": False, "cost": 1.5}}
    assert c["plugins"] == {**{k: v for k, v in d["plugins"].items() if k != "batched"}, "sync": "1.0"}
    c = C.apply_overrides(d, ["strategy.params.cost=2", "strategy.name=sync"], reg)
    assert c["strategy"]["params"] == {"check": False, "cost": 2.0}
    back = C.apply_overrides(c, ["strategy.name=batched"], reg)
    assert back["strategy"]["params"] == {"batch": 32, "max_delay": 1_000_000, "mode": "count"}  # declared
    same = C.apply_overrides(d, ["strategy.name=batched"], reg)
    assert same["strategy"] == d["strategy"]  # not a change: parameters kept
    m = C.apply_overrides(d, ["iommu.params.invalidate_per_mm=5us"], reg)
    assert C.apply_overrides(m, ["iommu.model=none"], reg)["iommu"]["params"] == {}
    w = C.apply_overrides(d, ["workload[2].name=vmalloc-huge"], reg)
    assert w["workload"][2] == {"name": "vmalloc-huge", "rate": 5000.0, "burst": 1, "cpus": "all"}


def test_second_source_of_a_name_is_addressed_by_its_label(reg: Registry) -> None:
    c = C.loads_config('[[workload]]\nname = "hot-remove"\n[[workload]]\nname = "hot-remove"\n', reg)
    assert C.workload_labels(c["workload"]) == ["hot-remove", "hot-remove#1"]
    c = C.apply_overrides(c, ["workload.hot-remove#1.burst=2"], reg)
    assert [w["burst"] for w in c["workload"]] == [64, 2]


def test_override_values_parse_like_toml(reg: Registry) -> None:
    assert C.parse_override_value("4") == 4
    assert C.parse_override_value("true") is True
    assert C.parse_override_value("1.5") == 1.5
    assert C.parse_override_value('"quoted"') == "quoted"
    assert C.parse_override_value("1000/s") == "1000/s"
    assert C.parse_override_value("arm64") == "arm64"
    assert C.parse_override_value("1\nx = 2") == "1\nx = 2"
    # plain decimal integers skip the TOML parser: each of these must read as TOML reads it
    for text in ("0", "7", "42", "007", "00", "1_000", "+5", "-5", "٣", "123456789012345678",
                 "1234567890123456789012", "0x10", "1e3", "9" * 4400):
        try:
            want = tomllib.loads(f"v = {text}")["v"]
        except (tomllib.TOMLDecodeError, ValueError):
            want = text
        got = C.parse_override_value(text)
        assert (type(got), got) == (type(want), want), text


def test_run_overrides_on_a_valid_base_check_only_run_with_the_same_outcome(reg: Registry) -> None:
    base = C.apply_overrides(C.default_config(reg), ["strategy.name=batched"], reg)
    for sets in (["run.seed=9"], ["run.seed=9", "run.duration=3ms"], ["run.duration=250us", "run.drain=0"],
                 ["run.seed=-1"], ["run.duration=fast"], ["run.sed=1"], ["run.seed=1", "kernel.cpus=0"],
                 ["run.seed=true"], ["run.speed=0"]):
        outcomes = []
        for trusted in (False, True):
            try:
                outcomes.append(C.apply_overrides(base, sets, reg, source="sweep", base_valid=trusted))
            except ConfigError as exc:
                outcomes.append([str(p) for p in exc.problems])
        assert outcomes[0] == outcomes[1], sets
    out = C.apply_overrides(base, ["run.seed=9"], reg, base_valid=True)
    out["strategy"]["params"]["batch"] = 1
    assert base["strategy"]["params"]["batch"] != 1  # a copy, not the base's tables


def test_override_problems_are_all_reported_with_the_keys_as_typed(reg: Registry) -> None:
    d = C.default_config(reg)
    with pytest.raises(ConfigError) as exc:
        C.apply_overrides(d, [
            "kernel.cpu=2", "strategy.batch=3", "workload.foo.rate=1", "nonsense", "iommu.invalidate_per_mm=3us",
            "plugins.x=1", "workload[7].rate=1", "workload.vmalloc-huge.rate=fast",
        ], reg)
    probs = problems_of(exc)
    assert all(p.file == "--set" for p in exc.value.problems)
    assert "did you mean 'cpus'?" in probs["kernel.cpu"]
    assert "did you mean strategy.params.batch?" in probs["strategy.batch"]
    assert "no workload 'foo'" in probs["workload.foo.rate"] and "vmalloc-huge" in probs["workload.foo.rate"]
    assert "expected KEY=VALUE" in probs["nonsense"]
    assert "did you mean iommu.params.invalidate_per_mm?" in probs["iommu.invalidate_per_mm"]
    assert "cannot be set" in probs["plugins.x"]
    assert "there is no workload[7]" in probs["workload[7].rate"]
    assert "expected a rate" in probs["workload.vmalloc-huge.rate"]
    with pytest.raises(ConfigError) as exc:
        C.apply_overrides(d, ["iommu.model=amd", "strategy.name=sinc"], reg)
    probs = problems_of(exc)
    assert "unknown IOMMU model 'amd'; available: generic, none" in probs["iommu.model"]
    assert "unknown strategy 'sinc' (did you mean 'sync'?)" in probs["strategy.name"]


# --------------------------------------------------------------------------- provenance


def test_value_origins(reg: Registry) -> None:
    raw = {"schema": 1, "plugins": {"batched": "2.1"}, "kernel": {"cpus": 3},
           "strategy": {"name": "batched", "params": {"batch": 3}},
           "workload": [{"name": "vmalloc-huge", "rate": 3}, {"name": "hot-remove"}]}
    overrides = ["workload.hot-remove.burst=3", "run.seed=9"]
    config = C.apply_overrides(C.validate(raw, reg), overrides, reg)
    origins = C.value_origins(raw, overrides, config)
    assert origins == {
        "kernel.cpus": "file",
        "strategy.name": "file",
        "strategy.params.batch": "file",
        "workload[0].name": "file",
        "workload[0].rate": "file",
        "workload[1].name": "file",
        "workload[1].burst": "override",
        "run.seed": "override",
    }
    # a different strategy from the command line: the file's strategy parameters no longer apply
    config = C.apply_overrides(C.validate(raw, reg), ["strategy.name=sync"], reg)
    origins = C.value_origins(raw, ["strategy.name=sync"], config)
    assert origins["strategy.name"] == "override"
    assert not any(k.startswith("strategy.params.") for k in origins)
    assert C.value_origins(None, []) == {}


# --------------------------------------------------------------------------- JSON Schema


def test_json_schema_validates_the_defaults(reg: Registry, registry: Registry) -> None:
    for r in (reg, registry):
        schema = C.json_schema(r)
        jsonschema.Draft202012Validator.check_schema(schema)
        validator = jsonschema.Draft202012Validator(schema)
        for scenario in [None, *sorted(r.scenarios)]:
            d = C.default_config(r, scenario)
            for minimal in (False, True):
                doc = C.to_toml_dict(d, r, minimal=minimal)
                assert not list(validator.iter_errors(doc))
                # what a TOML file holds after a trip through text
                assert not list(validator.iter_errors(tomllib.loads(C.dumps_config(d, r, minimal=minimal))))
        json.dumps(schema)  # plain JSON
        draft7 = C.json_schema(r, draft="7")
        jsonschema.Draft7Validator.check_schema(draft7)
        assert not list(jsonschema.Draft7Validator(draft7).iter_errors(C.to_toml_dict(C.default_config(r), r)))
        assert draft7["$schema"] == "http://json-schema.org/draft-07/schema#"
        assert {**draft7, "$schema": ""} == {**schema, "$schema": ""}


def test_json_schema_rejects_what_validate_rejects(reg: Registry) -> None:
    validator = jsonschema.Draft202012Validator(C.json_schema(reg))
    good = C.to_toml_dict(C.default_config(reg), reg)

    def bad(path: list[Any], value: Any) -> bool:
        doc = json.loads(json.dumps(good))
        node = doc
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value
        with pytest.raises(ConfigError):
            C.validate(doc, reg)
        return bool(list(validator.iter_errors(doc)))

    assert bad(["kernel", "cpu"], 3)
    assert bad(["kernel", "cpus"], 0)
    assert bad(["kernel", "arch"], "sparc")
    assert bad(["kernel", "workqueue_delay"], "20 parsecs")
    assert bad(["kernel", "background_alloc_rate"], "fast")
    assert bad(["strategy", "params", "bach"], 3)
    assert bad(["strategy", "params", "batch"], 0)
    assert bad(["strategy", "name"], "nope")
    assert bad(["iommu", "params", "x"], 1)
    assert bad(["workload", 0, "rate"], "fast")
    assert bad(["workload", 0, "flush"], "1us")  # a parameter of cpa-collapse, not of vmalloc-huge
    assert bad(["schema"], 2)


def test_schema_unit_patterns_agree_with_the_parsers() -> None:
    import re

    from explorer.units import UnitError, parse_duration, parse_rate

    for text in ["20us", "5ms", "1s", "1.5ms", " 3 ns", "2µs", ".5s", "1e3ns", "20", "5 parsecs", "1.5ns", "ms"]:
        try:
            parse_duration(text)
            ok = True
        except UnitError:
            ok = text == "1.5ns"  # syntactically a duration; rejected only as a fraction of a ns
        assert bool(re.search(C.DURATION_PATTERN, text)) == ok, text
    for text in ["2000/s", "5/ms", "50k/s", "1M/s", "3hz", "2 /us", "2000", "fast", "/s"]:
        try:
            parse_rate(text)
            ok = True
        except UnitError:
            ok = False
        assert bool(re.search(C.RATE_PATTERN, text)) == ok, text


# --------------------------------------------------------------------------- docs


def test_docs_describe_every_core_key_and_the_example_loads(registry: Registry) -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "config.md").read_text()
    for section, params in (("run", RUN_PARAMS), ("kernel", KERNEL_PARAMS), ("iommu", C.IOMMU_CORE_PARAMS)):
        for p in params:
            assert f"| `{p.name}` |" in doc, f"docs/config.md does not describe {section}.{p.name}"
    example = doc.split("```toml\n", 1)[1].split("```", 1)[0]
    assert example.startswith("schema = 1")
    found: list[Problem] = []
    config = C.loads_config(example, registry, "docs/config.md", warnings=found)
    assert config["strategy"]["name"] == "batched"


def test_a_value_equal_to_the_base_but_of_another_type_is_still_checked(reg: Registry) -> None:
    """Validation takes a [run]/[kernel]/[iommu] value equal to the base's, type and all, as it is
    (a sweep re-validates a whole config per point); 1 == True and 4.0 == 4 are not such values."""
    base = C.default_config(reg)
    assert base["kernel"]["iommu_sva"] is True and base["kernel"]["cpus"] == 4
    raw = C.to_toml_dict(base, reg)
    raw["kernel"]["iommu_sva"] = 1
    with pytest.raises(ConfigError, match=r"kernel\.iommu_sva: expected true or false, got 1"):
        C.validate(raw, reg, base=base)
    raw["kernel"]["iommu_sva"] = True
    raw["kernel"]["cpus"] = 4.0
    out = C.validate(raw, reg, base=base)
    assert out["kernel"]["cpus"] == 4 and type(out["kernel"]["cpus"]) is int
    assert out == base
    # the base's own values, unparsed: canonical in, canonical out
    canonical = C.validate(json.loads(json.dumps(base)), reg, base=base)
    assert canonical == base
