"""The command line: every command, its output and its exit status (0 ok, 1 run failed, 2 user error).

Runs are short (10-20 ms of simulated time). Most tests call ``main([...])`` in-process; a few run
``python -m explorer`` to check what a user's shell sees.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tomllib
import types
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from explorer import __version__
from explorer import config as C
from explorer.cli import main
from explorer.cli.common import Progress
from explorer.plugins import Registry
from tests.conftest import SHORT_ARGS, make_config, raising_strategy_source, run_main, strategy_source

RAISING_STRATEGY = raising_strategy_source("boom", "Boom")


# --------------------------------------------------------------------------- start-up


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from explorer.compiled import summary

    rc, out, _ = run_main(capsys, "--version")
    assert rc == 0
    # the second line says which simulator core runs (explorer/compiled.py)
    assert out.splitlines() == [f"pgtable-explorer {__version__}", f"simulator core: {summary()}"]
    assert summary().startswith(("compiled (mypyc ", "pure Python ("))


@pytest.mark.parametrize("argv", [["--version"], ["run", "--help"], ["compare", "--help"]])
def test_light_commands_import_neither_textual_nor_the_simulator(argv: list[str]) -> None:
    code = (
        "import sys\n"
        "from explorer.cli import main\n"
        f"rc = main({argv!r})\n"
        "heavy = sorted(m for m in sys.modules if m == 'textual' or m.startswith(('textual.', 'explorer.sim', "
        "'explorer.tui', 'explorer.config', 'pluggy')))\n"
        "assert rc == 0 and not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_argparse_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run_main(capsys, "run", "--format", "yaml")
    assert rc == 2
    assert "invalid choice: 'yaml'" in err
    assert run_main(capsys, "frobnicate")[0] == 2


# --------------------------------------------------------------------------- run


def test_run_table(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run_main(capsys, "run", *SHORT_ARGS)
    assert rc == 0, err
    for heading in ("Frees", "Latency", "Violations", "IOMMU flushes", "use_after_free", "stale_walk_queued"):
        assert heading in out
    assert "scenario  linux-6.19" in out  # the default is that scenario, and says what to expect
    assert "Expected" in out
    assert "\033[" not in out  # no colour when stdout is not a terminal
    assert "\r" not in err  # no progress bar when stderr is not a terminal
    rc, out, _ = run_main(capsys, "run", *SHORT_ARGS, "--set", "strategy.name=batched", "--set",
                          "strategy.params.max_age=2500us")
    assert rc == 0 and "strategy  batched (batch=256, max_age=2500us)" in out  # as written, not in ns


def test_run_json_is_byte_identical_for_the_same_seed(capsys: pytest.CaptureFixture[str], registry: Registry) -> None:
    outs = [run_main(capsys, "run", *SHORT_ARGS, "--seed", "7", "--format", "json")[1] for _ in range(2)]
    assert outs[0] == outs[1]
    other = run_main(capsys, "run", *SHORT_ARGS, "--seed", "8", "--format", "json")[1]
    assert other != outs[0]  # the seed matters
    doc = json.loads(outs[0])
    assert doc["config"]["run"]["seed"] == 7 and doc["config"]["run"]["duration"] == SHORT_ARGS[1]
    # the config part is the TOML form: it loads back to the config that ran
    config = C.validate(doc["config"], registry)
    assert C.to_toml_dict(config, registry) == doc["config"]
    m = doc["metrics"]
    for key in ("events", "flushes", "worker_runs", "kernel_tables_freed", "user_tables_freed", "stale_walk_queued"):
        assert key in m
    assert set(m["queue"]) >= {"peak", "page_seconds"}
    for key in ("latency_ns", "caller_ns"):
        assert set(m[key]) >= {"p50", "p99", "max"}
    for v in ("use_after_free", "stale_walk_free", "double_free", "freed_while_linked", "leaked", "sleep_in_atomic"):
        assert set(m["violations"][v]) >= {"total", "by_source"}
    assert doc["scenario"]["name"] == "linux-6.19"
    assert doc["scenario"]["expected"]
    assert outs[0] == json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def test_run_scenario_json_reports_its_expectations(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run_main(capsys, "run", "--scenario", "before-fix", "--duration", "20ms", "--format", "json")
    assert rc == 0
    doc = json.loads(out)
    assert doc["scenario"]["name"] == "before-fix"
    assert doc["config"]["strategy"]["name"] == "sync-unsafe"
    checks = doc["scenario"]["checks"]
    assert checks and all(c["ok"] for c in checks), checks
    for c in checks:  # each check reads the metric it names
        node = doc["metrics"]
        for part in c["metric"].split("."):
            # a source that never caused a violation has no by_source entry: it reads as 0
            node = node.get(part, 0) if "by_source" in c["metric"] else node[part]
        assert c["value"] == (node["total"] if isinstance(node, dict) else node)
    # a scenario that names the one source its violations come from: the table says what else came
    rc, out, _ = run_main(capsys, "run", "--scenario", "cpa-unmarked-2026", "--duration", "20ms")
    assert rc == 0 and "ok   violations.by_source only cpa-collapse (got no other source)" in out
    rc, out, _ = run_main(capsys, "run", "--scenario", "cpa-unmarked-2026", "--duration", "20ms",
                          "--set", "strategy.name=sync-unsafe")
    assert "violations.by_source only cpa-collapse (got also vmalloc-huge" in out and "FAIL" in out


def test_run_from_a_file_with_overrides_and_output(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[run]\nduration = "10ms"\n[kernel]\ncpus = 2\n[strategy]\nname = "sync"\n')
    out_file = tmp_path / "out.json"
    rc, out, err = run_main(capsys, "run", str(cfg), "--set", "kernel.cpus=3", "--seed", "5",
                            "--format", "json", "--output", str(out_file))
    assert rc == 0, err
    assert out == ""
    doc = json.loads(out_file.read_text())
    assert doc["config"]["kernel"]["cpus"] == 3
    assert doc["config"]["strategy"]["name"] == "sync"
    assert doc["config"]["run"]["seed"] == 5
    assert "scenario" not in doc


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "missing.toml"], "missing.toml: no such file"),
        (["run", "--scenario", "linux-9"], "unknown scenario 'linux-9'"),
        (["run", "--set", "kernel.cpu=4"], "--set: kernel.cpu: unknown key (did you mean 'cpus'?)"),
        (["run", "--set", "strategy.name=nope"], "unknown strategy 'nope'"),
        (["run", "--duration", "5 parsecs"], "run.duration: expected a duration"),
        (["run", "--output", "/nonexistent-dir/x.json", "--duration", "1ms"],
             "--output /nonexistent-dir/x.json: the folder /nonexistent-dir does not exist"),
        (["compare"], "nothing to compare"),
        (["run", "--duration", "1ms", "--trace", "x.out", "-o", "./x.out"],
         "--trace x.out: is the same file as --output ./x.out"),
        (["--plugins-dir", "no-such-dir", "run"], "--plugins-dir no-such-dir: no such directory"),
        (["plugins", "--plugins-dir", "no-such-dir"], "--plugins-dir no-such-dir: no such directory"),
        (["compare", "--strategy", "deferred", "--duration", "1ms"], "nothing to compare: only 'deferred'"),
        (["compare", "--strategy", "sync", "--iommu", "none"], "not both"),
        (["compare", "--strategy", "sinc", "--strategy", "sync"], "unknown strategy 'sinc' (did you mean 'sync'?)"),
        (["config", "validate", "missing.toml"], "missing.toml: no such file"),
        (["config", "default", "--scenario", "nope"], "unknown scenario 'nope'"),
    ],
)
def test_user_errors_exit_2_without_a_traceback(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    rc, out, err = run_main(capsys, *argv)
    assert rc == 2
    assert out == ""
    assert message in err
    assert err.startswith("error: ")
    assert "Traceback" not in err


def test_file_and_scenario_together_is_an_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("")
    rc, _, err = run_main(capsys, "run", str(cfg), "--scenario", "before-fix")
    assert rc == 2 and "not both" in err


def test_syntax_error_shows_line_column_and_caret(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[kernel]\ncpus = = 4\n")
    rc, _, err = run_main(capsys, "run", str(cfg))
    assert rc == 2
    assert f"error: {cfg}:2:8: TOML syntax error" in err
    assert "    cpus = = 4\n           ^" in err


def test_a_plugin_that_raises_fails_the_run_with_exit_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "boom.py").write_text(RAISING_STRATEGY)
    rc, out, err = run_main(capsys, "--plugins-dir", str(tmp_path), "run", "--set", "strategy.name=boom", *SHORT_ARGS)
    assert rc == 1
    assert out == ""
    assert err.startswith("error: strategy 'boom' raised: RuntimeError: boom on purpose")
    assert "plugin traceback:" in err and "pagetable_free_kernel" in err
    # --plugins-dir works after the command too
    rc, _, err = run_main(capsys, "run", "--plugins-dir", str(tmp_path), "--set", "strategy.name=boom", *SHORT_ARGS)
    assert rc == 1


def _trace_counts(path: Path) -> dict[str, int]:
    """Lines per event of a trace file; a violation counts as ``violation:KIND``."""
    counts: dict[str, int] = {}
    for line in path.read_text().splitlines():
        event = line.split(": ", 2)[1]
        if event == "violation":
            event += ":" + line.split("kind=", 1)[1].split()[0]
        counts[event] = counts.get(event, 0) + 1
    return counts


@pytest.mark.parametrize("scenario", ["before-fix", "linux-6.19", "sync-in-atomic", "v3-design"])
def test_run_trace_has_a_line_for_everything_the_metrics_count(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                               registry: Registry, scenario: str) -> None:
    trace = tmp_path / "run.trace"
    rc, out, err = run_main(capsys, "run", "--scenario", scenario, "--duration", "20ms", "--format", "json",
                            "--trace", str(trace))
    assert rc == 0, err
    m = json.loads(out)["metrics"]
    counts = _trace_counts(trace)
    for kind, v in m["violations"].items():  # every violation, not only the kept examples
        assert counts.get(f"violation:{kind}", 0) == v["total"], kind
    assert counts.get("stale_walk", 0) == m["stale_walk_queued"]["total"]  # the harmless ones too
    assert counts["free"] == m["kernel_tables_freed"] + m["user_tables_freed"]
    assert counts["unlink"] == m["kernel_tables_unlinked"] + m["user_tables_freed"]
    assert counts.get("flush_start", 0) == counts.get("flush_end", 0) == m["flushes"]
    assert counts.get("worker_start", 0) == m["worker_runs"]
    if scenario == "sync-in-atomic":
        assert m["violations"]["sleep_in_atomic"]["total"] > 3  # beyond the three kept as examples
    if scenario in ("before-fix", "v3-design"):
        assert m["violations"]["use_after_free"]["total"] > 0 and m["violations"]["stale_walk_free"]["total"] > 0
    # the tail of the file is what the TUI's log shows of the same run
    from explorer.sim.build import build_simulation

    sim = build_simulation(make_config(registry, "run.duration=20ms", scenario=scenario), registry)
    sim.enable_trace(50)
    sim.run()
    assert trace.read_text().splitlines()[-50:] == sim.trace_lines()


def test_a_failed_run_keeps_its_trace_and_a_bad_trace_path_is_a_user_error(capsys: pytest.CaptureFixture[str],
                                                                            tmp_path: Path) -> None:
    (tmp_path / "boom.py").write_text(RAISING_STRATEGY)
    trace = tmp_path / "boom.trace"
    rc, _, err = run_main(capsys, "--plugins-dir", str(tmp_path), "run", "--set", "strategy.name=boom", *SHORT_ARGS,
                          "--trace", str(trace))
    assert rc == 1 and "boom on purpose" in err
    lines = trace.read_text().splitlines()
    assert lines and lines[-1].split(": ", 2)[1] == "pagetable_free_kernel"  # up to the call that raised
    rc, _, err = run_main(capsys, "run", *SHORT_ARGS, "--trace", str(tmp_path / "no" / "such" / "dir.trace"))
    assert rc == 2 and err.startswith("error: --trace ") and "does not exist" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["boom.py", "boom.trace"]  # no temporary file left


CHATTY_STRATEGY = strategy_source("chatty", "Chatty", 'print("freeing", pt)\nk.free_now(pt)',
                                  help="Prints, then frees at once.")


def test_a_plugin_that_prints_does_not_spoil_the_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "chatty.py").write_text(CHATTY_STRATEGY)
    rc, out, err = run_main(capsys, "--plugins-dir", str(tmp_path), "run", "--set", "strategy.name=chatty",
                            *SHORT_ARGS, "--format", "json")
    assert rc == 0, err
    m = json.loads(out)["metrics"]  # stdout is the JSON and nothing else
    assert err.count("freeing") == m["strategy_calls"] > 0  # the prints went to stderr


@pytest.mark.parametrize("sets, says", [
    (["kernel.pages=64"], "kernel.pages = 64 is too small: the machine runs out of pages before the run starts"),
    (["kernel.pages=1300", "workload.user-teardown.burst=200"],
     "the simulated machine ran out of free pages at t="),
])
def test_a_machine_too_small_for_its_config_is_a_user_error(capsys: pytest.CaptureFixture[str], sets: list[str],
                                                            says: str) -> None:
    # an in-range kernel.pages that the rest of the config outgrows: the config's fault, not a plugin's
    rc, out, err = run_main(capsys, "run", *[a for kv in sets for a in ("--set", kv)], "--duration", "20ms")
    assert rc == 2 and out == ""
    assert err.startswith("error: ") and says in err and "raise kernel.pages" in err
    assert "Traceback" not in err and "raised" not in err


# --------------------------------------------------------------------------- compare


def _table_rows(out: str) -> tuple[list[str], dict[str, list[str]]]:
    lines = out.splitlines()
    sep = next(i for i, line in enumerate(lines) if line and set(line) == {"-"})
    header = lines[sep - 1].split()
    rows: dict[str, list[str]] = {}
    for line in lines[sep + 1:]:
        if not line.strip():
            break
        cells = line.split()
        rows[" ".join(cells[: -len(header)])] = cells[-len(header):]
    return header, rows


def test_compare_has_one_column_per_strategy(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run_main(capsys, "compare", "--scenario", "linux-6.19", "--strategy", "sync", "--strategy",
                            "deferred", "--strategy", "batched", *SHORT_ARGS)
    assert rc == 0, err
    header, rows = _table_rows(out)
    assert header == ["sync", "deferred", "batched"]
    assert all(len(cells) == 3 for cells in rows.values())
    for row in ("IOMMU flushes", "kernel tables freed", "use_after_free", "latency p99", "queue peak"):
        assert row in rows
    # the best (lowest) value of a lower-is-better row is marked, and only it
    values = [int(c.rstrip("*").replace(",", "")) for c in rows["IOMMU flushes"]]
    marked = [c.endswith("*") for c in rows["IOMMU flushes"]]
    if len(set(values)) > 1:
        assert marked == [v == min(values) for v in values]
    else:
        assert not any(marked)
    # the workload is the same in every column, so the same tables are freed
    assert len(set(rows["kernel tables freed"])) == 1


def test_compare_json_columns_differ_only_in_the_strategy(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run_main(capsys, "compare", "--strategy", "sync", "--strategy", "batched:batch=4", "--seed", "3",
                          *SHORT_ARGS, "--format", "json")
    assert rc == 0
    doc = json.loads(out)
    assert doc["axis"] == "strategy"
    assert [c["label"] for c in doc["columns"]] == ["sync", "batched:batch=4"]
    a, b = (c["config"] for c in doc["columns"])
    assert b["strategy"] == {"name": "batched", "params": {**b["strategy"]["params"], "batch": 4}}
    for key in ("run", "kernel", "iommu", "workload"):
        assert a[key] == b[key]
    assert a["run"]["seed"] == 3
    again = run_main(capsys, "compare", "--strategy", "sync", "--strategy", "batched:batch=4", "--seed", "3",
                     *SHORT_ARGS, "--format", "json")[1]
    assert again == out


def test_compare_never_stars_an_unsafe_strategy(capsys: pytest.CaptureFixture[str]) -> None:
    # sync-unsafe issues no flush at all (the lowest of every flush row) and frees every table at once
    # (the lowest latency): unsafe, it takes no * and says why; deferred and sync (no atomic source
    # here, so no sleep in atomic) are both safe and are ranked against each other only.
    argv = ("compare", "--strategy", "sync-unsafe", "--strategy", "deferred", "--strategy", "sync",
            "--set", "workload.cpa-collapse.rate=0/s", *SHORT_ARGS)
    rc, out, err = run_main(capsys, *argv)
    assert rc == 0, err
    _, rows = _table_rows(out)
    verdict = next(line for line in out.splitlines() if line.startswith("verdict"))
    assert verdict.split()[1:] == ["✗", "unsafe", "✓", "safe", "✓", "safe"]
    assert not any(row[0].endswith("*") for label, row in rows.items() if label != "")  # sync-unsafe: never
    assert rows["IOMMU flushes"] == ["0", rows["IOMMU flushes"][1], rows["IOMMU flushes"][2]]
    # deferred batches its flushes: fewer than sync's, one per table
    assert rows["IOMMU flushes"][1].endswith("*") and not rows["IOMMU flushes"][2].endswith("*")
    assert "✗ sync-unsafe is unsafe: unflushed_free " in out and "not the same workload" not in out
    rc, out, _ = run_main(capsys, *argv, "--format", "json")
    cols = json.loads(out)["columns"]
    assert [c["safe"] for c in cols] == [False, True, True]
    m = cols[0]["metrics"]["violations"]
    assert cols[0]["unsafe_reasons"][0] == f"unflushed_free {m['unflushed_free']['total']}"
    assert cols[1]["unsafe_reasons"] == [] == cols[2]["unsafe_reasons"]
    assert json.loads(out)["workload"]["same"] is True


def test_compare_says_when_the_columns_did_not_see_the_same_workload(capsys: pytest.CaptureFixture[str]) -> None:
    # 256 SVA mms make each flush long; sync makes the caller wait for it, so vmalloc-huge, which
    # waits for each operation to end, unlinks fewer tables in the same 5 ms.
    argv = ("compare", "--strategy", "deferred", "--strategy", "sync", "--set", "iommu.sva_mms=256", *SHORT_ARGS)
    rc, out, _ = run_main(capsys, *argv, "--format", "json")
    assert rc == 0
    doc = json.loads(out)
    unlinked = [c["metrics"]["unlinked_by_source"]["by_source"]["vmalloc-huge"] for c in doc["columns"]]
    assert unlinked[1] < unlinked[0]
    assert doc["workload"] == {"same": False, "compared": ["deferred", "sync"],
                               "unlinked_by_source": {"vmalloc-huge": unlinked}}
    rc, out, _ = run_main(capsys, *argv)
    assert f"! the columns did not see the same workload: tables unlinked by source differ (vmalloc-huge: " \
           f"deferred {unlinked[0]}, sync {unlinked[1]})" in out


def test_compare_iommu_models_and_config_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc, out, _ = run_main(capsys, "compare", "--iommu", "generic", "--iommu", "none", *SHORT_ARGS)
    assert rc == 0
    assert _table_rows(out)[0] == ["generic", "none"]
    one, two = tmp_path / "one.toml", tmp_path / "two.toml"
    one.write_text('[strategy]\nname = "sync"\n')
    two.write_text('[strategy]\nname = "deferred"\n')
    rc, out, _ = run_main(capsys, "compare", str(one), str(two), *SHORT_ARGS, "--format", "json")
    assert rc == 0
    doc = json.loads(out)
    assert doc["axis"] == "config"
    assert [(c["label"], c["config"]["strategy"]["name"]) for c in doc["columns"]] == [("one", "sync"),
                                                                                        ("two", "deferred")]
    assert {c["config"]["run"]["duration"] for c in doc["columns"]} == {SHORT_ARGS[1]}


def test_compare_fails_with_exit_1_when_a_column_raises(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "boom.py").write_text(RAISING_STRATEGY)
    rc, _, err = run_main(capsys, "--plugins-dir", str(tmp_path), "compare", "--strategy", "sync",
                          "--strategy", "boom", *SHORT_ARGS)
    assert rc == 1
    assert err.startswith("error: column 'boom': strategy 'boom' raised: RuntimeError: boom on purpose")


# --------------------------------------------------------------------------- plugins, scenarios


def test_plugins_lists_origins_and_failures(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "boom.py").write_text(RAISING_STRATEGY)
    (tmp_path / "broken.py").write_text("raise ImportError('needs a library that is not installed')\n")
    rc, out, _ = run_main(capsys, "--plugins-dir", str(tmp_path), "plugins")
    assert rc == 0
    assert "built-in" in out and "strategy deferred" in out
    assert "boom" in out and "directory" in out
    failed = out[out.index("Failed to load (1)"):]
    assert "broken" in failed and "ImportError: needs a library that is not installed" in failed

    rc, out, _ = run_main(capsys, "--plugins-dir", str(tmp_path), "plugins", "--json")
    assert rc == 0
    doc = json.loads(out)
    names = {p["name"]: p for p in doc["plugins"]}
    assert names["boom"]["origin"] == "directory"
    assert {"kind": "strategy", "name": "boom"} in names["boom"]["registers"]
    assert [f["name"] for f in doc["failed"]] == ["broken"]
    assert "ImportError" in doc["failed"][0]["error"]
    batched = next(r for p in doc["plugins"] for r in p["registered"] if r["name"] == "batched")
    assert batched["params"] and {"name", "type", "default", "help"} <= set(batched["params"][0])


def test_plugins_verbose_lists_parameters(capsys: pytest.CaptureFixture[str], registry: Registry) -> None:
    from explorer.compiled import summary

    rc, out, _ = run_main(capsys, "plugins", "-v")
    assert rc == 0
    for p in registry.workloads["vmalloc-huge"].params:
        assert p.name in out
    assert f"\nSimulator core: {summary()}\n" in out


def test_scenarios(capsys: pytest.CaptureFixture[str], registry: Registry) -> None:
    rc, out, _ = run_main(capsys, "scenarios")
    assert rc == 0
    for sc in registry.scenarios.values():
        assert sc.name in out
        assert sc.expected.split()[0] in out
    rc, out, _ = run_main(capsys, "scenarios", "--json")
    doc = json.loads(out)
    assert {d["name"] for d in doc} == set(registry.scenarios)
    assert all(d["description"] and "expected" in d for d in doc)


# --------------------------------------------------------------------------- config


def test_config_default_show_validate(capsys: pytest.CaptureFixture[str], tmp_path: Path, registry: Registry) -> None:
    rc, out, _ = run_main(capsys, "config", "default")
    assert rc == 0
    assert C.loads_config(out, registry) == C.default_config(registry)
    rc, out, _ = run_main(capsys, "config", "default", "--scenario", "before-fix", "--minimal")
    assert tomllib.loads(out)["strategy"] == {"name": "sync-unsafe"}
    assert C.loads_config(out, registry) == C.default_config(registry, "before-fix")

    cfg = tmp_path / "c.toml"
    cfg.write_text(out)
    rc, out, _ = run_main(capsys, "config", "show", str(cfg), "--set", "kernel.cpus=3", "--seed", "4")
    assert rc == 0
    shown = tomllib.loads(out)
    assert shown["kernel"]["cpus"] == 3 and shown["run"]["seed"] == 4
    assert shown["strategy"]["name"] == "sync-unsafe"

    rc, out, _ = run_main(capsys, "config", "validate", str(cfg))
    assert (rc, out) == (0, f"{cfg}: ok\n")


def test_config_validate_lists_every_problem(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[kernel]\ncpu = 4\narch = "sparc"\n[strategy]\nname = "defered"\n')
    rc, out, err = run_main(capsys, "config", "validate", str(cfg))
    assert rc == 2 and out == ""
    lines = err.splitlines()
    assert len(lines) == 3
    assert f"error: {cfg}: kernel.cpu: unknown key (did you mean 'cpus'?)" in lines[0]
    assert any("kernel.arch: expected one of x86_64, arm64; got 'sparc'" in line for line in lines)
    assert any("strategy.name: unknown strategy 'defered' (did you mean 'deferred'?)" in line for line in lines)


def test_config_version_mismatch_is_a_warning(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cfg = tmp_path / "old.toml"
    cfg.write_text('[plugins]\ndeferred = "0.1"\n')
    rc, out, err = run_main(capsys, "config", "validate", str(cfg))
    assert rc == 0 and out.endswith("ok\n")
    assert "warning: " in err and "plugins.deferred: the config was saved with deferred 0.1" in err
    cfg.write_text('[plugins]\nnot-installed = "1.0"\n')
    rc, _, err = run_main(capsys, "config", "validate", str(cfg))
    assert rc == 2 and "not loaded; install it or pass --plugins-dir" in err


def test_config_schema(capsys: pytest.CaptureFixture[str], registry: Registry) -> None:
    rc, out, _ = run_main(capsys, "config", "schema")
    assert rc == 0
    schema = json.loads(out)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert not list(jsonschema.Draft202012Validator(schema).iter_errors(
        C.to_toml_dict(C.default_config(registry), registry)))


# --------------------------------------------------------------------------- TUI entry and progress


def test_no_command_without_the_tui_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "explorer.tui", None)  # as if the package were not there
    monkeypatch.setitem(sys.modules, "explorer.tui.app", None)  # even if another test imported it
    rc, _, err = run_main(capsys)
    assert rc == 2
    assert "error: the interactive explorer (explorer.tui) is not available" in err


def test_no_command_opens_the_tui(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                  tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d1").mkdir()
    (tmp_path / "d2").mkdir()
    calls: list[dict[str, Any]] = []
    pkg = types.ModuleType("explorer.tui")
    pkg.__path__ = []
    app = types.ModuleType("explorer.tui.app")

    def fake_main(**kwargs: Any) -> int:
        calls.append(kwargs)
        return 0

    app.main = fake_main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "explorer.tui", pkg)
    monkeypatch.setitem(sys.modules, "explorer.tui.app", app)
    assert main([]) == 0
    assert main(["--plugins-dir", "d1", "tui", "x.toml", "--plugins-dir", "d2"]) == 0
    assert main(["tui", "--scenario", "before-fix"]) == 0
    assert calls == [{"config_path": None, "plugins_dirs": [], "scenario": None},
                     {"config_path": "x.toml", "plugins_dirs": ["d1", "d2"], "scenario": None},
                     {"config_path": None, "plugins_dirs": [], "scenario": "before-fix"}]


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_terminal() -> None:
    tty = FakeTty()
    bar = Progress("running", stream=tty)
    for f in (0.0, 0.004, 0.5, 1.0):
        bar(f)
    bar.close()
    text = tty.getvalue()
    assert text.count("\r") == 4  # 0%, 50%, 100% and the clearing; 0.4% is still 0%
    assert "100%" in text and text.endswith("\r\033[K")
    plain = io.StringIO()
    bar = Progress("running", stream=plain)
    bar(0.5)
    bar.close()
    assert plain.getvalue() == ""


# --------------------------------------------------------------------------- python -m explorer


def test_python_m_explorer(tmp_path: Path) -> None:
    env = {**os.environ, "PGTABLE_EXPLORER_NO_ENTRYPOINTS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "explorer", "run", "--scenario", "before-fix", "--duration", "10ms", "--format", "json"],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["scenario"]["name"] == "before-fix"
    proc = subprocess.run([sys.executable, "-m", "explorer", "run", "--set", "kernel.cpus=0"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: --set: kernel.cpus: 0 is below the minimum 1")
    assert "Traceback" not in proc.stderr


def test_tui_bad_files_are_error_lines_like_the_cli(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    rc, _, err = run_main(capsys, "tui", "missing.toml")  # no terminal here: said first, as an error line
    assert rc == 2 and err.startswith("error: the interactive explorer needs a terminal")
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    rc, _, err = run_main(capsys, "tui", "missing.toml")
    assert rc == 2 and err.startswith("error: cannot read missing.toml")
    (tmp_path / "bad.toml").write_text("[kernel]\ncpuz = 4\n[strategy]\nname = \"batchd\"\n")
    rc, _, err = run_main(capsys, "tui", "bad.toml")
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 2 and all(line.startswith("error: ") and "bad.toml: " in line for line in lines)
    assert "did you mean 'cpus'" in lines[0] and "did you mean 'batched'" in lines[1]
