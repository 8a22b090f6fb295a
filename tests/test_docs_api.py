"""The docs for plugin authors stay true: the generated API reference is current, and the example
package in docs/examples/delayed installs into a fresh virtual environment, loads, and passes its tests."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.test_scaffold import _fresh_venv

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "docs" / "examples" / "delayed"


def test_the_committed_api_reference_is_generated_from_the_current_docstrings() -> None:
    spec = importlib.util.spec_from_file_location("api_reference", ROOT / "docs" / "api_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = (ROOT / "docs" / "api-reference.md").read_text()
    assert committed == module.render(), "out of date: run .venv/bin/python docs/api_reference.py"
    for name in ("FlushBatch", "SharedCache", "check_values", "values", "check_strategy", "register_strategies"):
        assert f"`{name}" in committed or f".{name}" in committed, name


def test_the_tutorials_strategy_is_the_example_packages() -> None:
    blocks = re.findall(r"```python\n(# src/pgtx_delayed/strategy\.py\n.*?)```",
                        (ROOT / "docs" / "writing-plugins.md").read_text(), flags=re.S)
    assert blocks == [(EXAMPLE / "src" / "pgtx_delayed" / "strategy.py").read_text()]


def test_the_example_package_installs_loads_and_passes_its_tests(tmp_path: Path) -> None:
    pytest.importorskip("hatchling")
    python = _fresh_venv(tmp_path / "venv")
    env = {k: v for k, v in os.environ.items() if k != "PGTABLE_EXPLORER_NO_ENTRYPOINTS"}
    pkg = tmp_path / "delayed"
    shutil.copytree(EXAMPLE, pkg)  # the build must not write into the docs
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", str(pkg)],
                   check=True, capture_output=True, env=env, cwd=tmp_path)
    out = subprocess.run([python, "-m", "explorer", "plugins", "--json"], check=True, capture_output=True,
                         text=True, env=env, cwd=tmp_path / "venv")
    doc = json.loads(out.stdout)
    (info,) = [p for p in doc["plugins"] if any(r["name"] == "delayed" for r in p["registered"])]
    assert (info["origin"], info["version"]) == ("installed package", "0.1.0")
    tests = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--pgx-quick",
                            str(pkg / "tests")], capture_output=True, text=True, env=env, cwd=tmp_path / "venv")
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
    assert "2 passed" in tests.stdout
