"""The layers of docs/architecture.md hold: the simulator loads nothing of the faces, TOML or plugin
loading, and `lint-imports` (the contracts in pyproject.toml, run by `make lint`) rejects an import
that crosses a layer. And the test layers: every test is `unit` or `functional` (tests/conftest.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# What importing the simulator must not load: the faces, TOML, pluggy (the simulator imports the
# plain explorer.contract, never explorer.api with its `hookimpl` marker), plugin loading, sweeps.
NOT_IN_THE_SIMULATOR = ("pluggy", "textual", "tomli_w", "tomllib", "explorer.api", "explorer.hookspecs",
                        "explorer.config", "explorer.plugins", "explorer.tui", "explorer.session", "explorer.sweep",
                        "explorer.hunt", "explorer.cli", "explorer.documents", "explorer.testing")
_EXTERNAL = ("pluggy", "textual", "tomli_w", "tomllib")


def _loaded(module: str, prefixes: tuple[str, ...]) -> list[str]:
    """Which of ``prefixes`` (packages or modules) a fresh interpreter has loaded after ``import module``."""
    code = (f"import json, sys, {module}; "
            f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {set(_EXTERNAL)!r} "
            f"or m.startswith('explorer.'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded: list[str] = json.loads(out)
    return sorted({p for m in loaded for p in prefixes if m == p or m.startswith(p + ".")})


@pytest.mark.parametrize("module", ["explorer.sim", "explorer.sim.build", "explorer.contract"])
def test_importing_the_simulator_loads_no_face_toml_pluggy_or_plugin_loading(module: str) -> None:
    assert _loaded(module, NOT_IN_THE_SIMULATOR) == []


def test_the_check_sees_what_a_face_loads() -> None:
    """The same check on the config module finds TOML, and on the plugin API pluggy: it does look
    (and would see a leak)."""
    assert _loaded("explorer.config", NOT_IN_THE_SIMULATOR) == ["explorer.api", "explorer.config", "pluggy",
                                                               "tomli_w", "tomllib"]
    assert _loaded("explorer.api", NOT_IN_THE_SIMULATOR) == ["explorer.api", "pluggy"]


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("lint-imports")
    if not exe.exists():
        pytest.skip("import-linter is not installed (it comes with the [dev] extra)")
    # PYTHONPATH first: the copy shadows the installed (editable) explorer.
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree)}
    return subprocess.run([str(exe), "--no-cache", "--no-logo"], cwd=tree, env=env, capture_output=True, text=True)


def test_lint_imports_rejects_the_simulator_importing_a_face_or_the_plugin_api(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "explorer", tmp_path / "explorer", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    metrics = tmp_path / "explorer" / "sim" / "metrics.py"
    metrics.write_text(metrics.read_text() + "\n\ndef _leak() -> None:\n    from explorer.tui import fmt  # noqa\n"
                       "    from explorer.api import hookimpl  # noqa\n")
    params = tmp_path / "explorer" / "contract" / "params.py"
    params.write_text(params.read_text() + "\n\ndef _leak() -> None:\n    import pluggy  # noqa\n")
    res = _lint_imports(tmp_path)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "explorer.sim is not allowed to import explorer.tui" in res.stdout
    assert "explorer.sim.metrics -> explorer.tui.fmt" in res.stdout
    assert "explorer.sim is not allowed to import explorer.api" in res.stdout
    assert "explorer.contract is not allowed to import pluggy" in res.stdout


# --------------------------------------------------------------------------- the test layers


def test_every_selected_test_is_in_exactly_one_layer(request: pytest.FixtureRequest) -> None:
    for item in request.session.items:
        layers = {m.name for m in item.iter_markers()} & {"unit", "functional"}
        assert len(layers) == 1, f"{item.nodeid}: {layers or 'no layer'}"


def _starts_a_process() -> None:
    subprocess.run(["true"], check=True)


def _calls_a_helper_that_does() -> None:
    _starts_a_process()


def _pure() -> int:
    return len(sys.argv)


@pytest.mark.unit  # by the rule it names subprocess (through the helpers above), but it runs none
def test_the_rule_follows_the_suites_helpers() -> None:
    from tests.conftest import PROCESS_NAMES, _names

    def through_a_lambda() -> None:
        (lambda: _calls_a_helper_that_does())()

    def uses(f: object) -> bool:
        return bool(_names(f.__code__, globals(), set()) & PROCESS_NAMES)  # type: ignore[attr-defined]

    assert uses(_starts_a_process) and uses(_calls_a_helper_that_does) and uses(through_a_lambda)
    assert not uses(_pure)
