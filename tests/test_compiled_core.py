"""The optional compiled core (explorer/compiled.py, explorer/compiled_build.py): which core a
process runs, a stale build never used, the build's one-line refusal without a C compiler, and the
compiled and pure cores giving bit-identical outcomes.

When ``make setup`` could build the core (a C compiler and the Python headers), this process runs
it and the child process of :func:`test_compiled_and_pure_cores_agree` runs the pure one; without a
build both run pure and the test still checks that the child was forced pure.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from explorer import compiled
from explorer.compiled import MANIFEST, MODULES, PURE_ENV, read_status

ROOT = Path(__file__).resolve().parent.parent

#: Cases of tests/benchmarks/cases.py that reach the compiled modules' every part (tie rules, the
#: background lane, set-associative and vendor caches, bind traffic, a plugin's late free), some
#: advanced in uneven steps with snapshots and trace lines: a second or two on either core.
CASES = ("tie-storm", "holes", "set-assoc", "small-machine", "storm-preempt", "amd-deferred", "vtd-sync",
         "no-background", "test-buggy", "steady-atomic", "v3-tlb")
STEPPED = ("holes", "test-buggy")


def _fake_build(tmp_path: Path, source_text: str = "x = 1\n") -> tuple[Path, Path]:
    """A build folder whose manifest records one source of a fake checkout, and that checkout."""
    root = tmp_path / "checkout"
    (root / "explorer" / "sim").mkdir(parents=True)
    src = root / "explorer" / "sim" / "engine.py"
    src.write_text(source_text)
    build = tmp_path / "core"
    build.mkdir()
    extensions = {}
    for m in MODULES:
        (build / f"{m}.so").write_bytes(b"")
        extensions[m] = f"{m}.so"
    manifest = {"format": 1, "cache_tag": sys.implementation.cache_tag, "mypyc": "9.9", "modules": list(MODULES),
                "extensions": extensions,
                "sources": {"explorer/sim/engine.py": hashlib.sha256(src.read_bytes()).hexdigest()}}
    (build / MANIFEST).write_text(json.dumps(manifest))
    return build, root


def test_a_fresh_build_is_used_and_the_environment_variable_forces_pure(tmp_path: Path) -> None:
    build, root = _fake_build(tmp_path)
    st = read_status(build, root, env_pure=False)
    assert st.compiled and st.describe() == "compiled (mypyc 9.9)"
    forced = read_status(build, root, env_pure=True)
    assert not forced.compiled and forced.describe() == f"pure Python ({PURE_ENV}=1)"


def test_a_stale_build_is_never_used(tmp_path: Path) -> None:
    build, root = _fake_build(tmp_path)
    (root / "explorer" / "sim" / "engine.py").write_text("x = 2\n")  # an edit after the build
    st = read_status(build, root, env_pure=False)
    assert not st.compiled and st.stale == ["explorer/sim/engine.py"]
    assert "stale: explorer/sim/engine.py changed since; run make setup" in st.describe()
    (root / "explorer" / "sim" / "engine.py").unlink()
    assert read_status(build, root, env_pure=False).stale == ["explorer/sim/engine.py"]


def test_no_build_another_python_or_a_missing_module_runs_pure(tmp_path: Path) -> None:
    build, root = _fake_build(tmp_path)
    assert read_status(tmp_path / "nowhere", root, env_pure=False).reason == "not built"
    (build / f"{MODULES[0]}.so").unlink()
    assert "incomplete" in read_status(build, root, env_pure=False).reason
    manifest = json.loads((build / MANIFEST).read_text())
    manifest["cache_tag"] = "cpython-10"
    (build / MANIFEST).write_text(json.dumps(manifest))
    assert not read_status(build, root, env_pure=False).compiled


def test_a_stale_build_warns_once_and_the_finder_then_loads_the_pure_modules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build, root = _fake_build(tmp_path)
    (root / "explorer" / "sim" / "engine.py").write_text("x = 2\n")
    monkeypatch.setattr(compiled, "_status", None)  # as in a process that has not decided yet
    monkeypatch.setattr(compiled, "read_status", lambda: read_status(build, root, env_pure=False))
    with pytest.warns(RuntimeWarning, match="stale: explorer/sim/engine.py changed since; run make setup; running "
                                            "the pure-Python core"):
        assert compiled.CompiledFinder().find_spec(MODULES[0]) is None  # the ordinary finders load the .py
    assert not compiled.status().compiled and "stale" in compiled.status().describe()


def test_the_finder_leaves_other_modules_alone() -> None:
    finder = compiled.CompiledFinder()
    assert finder.find_spec("explorer.config") is None
    assert finder.find_spec("json") is None


def test_build_without_a_c_compiler_says_so_in_one_line_and_succeeds(tmp_path: Path) -> None:
    manifest = Path(compiled.BUILD_DIR) / MANIFEST
    before = manifest.stat().st_mtime_ns if manifest.exists() else None
    env = {**os.environ, "CC": "/bin/false"}
    proc = subprocess.run([sys.executable, "-m", "explorer.compiled_build"], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("compiled core: not built: "), proc.stdout
    assert ("no working C compiler (/bin/false" in lines[0]) or ("no Python headers" in lines[0])
    assert lines[0].endswith("running the pure-Python core (same results, slower)")
    assert (manifest.stat().st_mtime_ns if manifest.exists() else None) == before  # the build is untouched


def _outcomes_code() -> str:
    return (
        "import hashlib, json\n"
        "from explorer import compiled\n"
        "from tests.benchmarks.cases import canonical, cases, outcome\n"
        f"cs = cases()\n"
        f"out = {{n: canonical(outcome(cs[n])) for n in {CASES!r}}}\n"
        f"out.update({{n + '+stepped': canonical(outcome(cs[n], stepped=True)) for n in {STEPPED!r}}})\n"
        "print(json.dumps({'compiled': compiled.running_compiled(), 'summary': compiled.summary(), 'out': out}))\n"
    )


def test_compiled_and_pure_cores_agree() -> None:
    """The same cases on this process's core and on the pure one (a child with the variable set):
    every metric, snapshot, trace line and invariant identical."""
    env = {**os.environ, PURE_ENV: "1"}
    child = subprocess.Popen([sys.executable, "-c", _outcomes_code()], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=env, cwd=ROOT)
    here: dict[str, object] = {}
    exec(_outcomes_code().replace("print(json.dumps(", "here.update(("), {"here": here})
    out, err = child.communicate(timeout=240)
    assert child.returncode == 0, err
    pure = json.loads(out)
    assert pure["compiled"] is False and pure["summary"] == f"pure Python ({PURE_ENV}=1)"
    fresh = read_status(env_pure=False).compiled
    if os.environ.get(PURE_ENV, "") in ("", "0"):
        # a fresh build is what this process runs: the comparison is compiled against pure
        assert here["compiled"] is fresh, here["summary"]
    assert sorted(here["out"]) == sorted(pure["out"])  # type: ignore[call-overload]
    for name, text in pure["out"].items():
        assert here["out"][name] == text, f"{name}: the compiled and pure cores differ"  # type: ignore[index]


@pytest.mark.skipif(not compiled.running_compiled(), reason="the compiled core is not built here")
def test_the_simulator_modules_are_the_compiled_ones_when_built() -> None:
    import explorer.sim.engine as engine

    assert not engine.__file__.endswith(".py") and compiled.BUILD_DIR in engine.__file__


@pytest.mark.skipif(not compiled.running_compiled(), reason="the pure core runs here: these tests ran in this process")
def test_the_tests_that_patch_the_simulator_run_on_the_pure_core() -> None:
    """The tests marked ``pure_core`` (fast paths against the plain code they replaced, patched in)
    are skipped in a process running the compiled core: here they run in a pure child."""
    env = {**os.environ, PURE_ENV: "1"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "pure_core", "tests/test_determinism.py",
                           "tests/test_failures.py"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    summary = proc.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "skipped" not in summary and "failed" not in summary, summary
