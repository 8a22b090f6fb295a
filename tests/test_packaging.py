"""The built wheel carries the first-party plugins and finds them from any directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("hatchling")
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (whl,) = out.glob("*.whl")
    return whl


def test_wheel_ships_the_builtin_plugins(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "explorer/builtin_plugins/strategies/deferred.py" in names
    assert not any(n.startswith("plugins/") for n in names)  # no top-level 'plugins' package


def test_installed_wheel_finds_its_plugins_from_elsewhere(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = (
        "import json, explorer\n"
        "from explorer.plugins import load_registry\n"
        "r = load_registry(entry_points=False)\n"
        "print(json.dumps({'file': explorer.__file__, 'strategies': sorted(r.strategies),"
        " 'failures': [f.name for f in r.failures]}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=elsewhere, env=env, check=True, capture_output=True, text=True
    )
    info = json.loads(out.stdout)
    assert info["file"].startswith(str(target))
    assert {"sync-unsafe", "sync", "deferred", "batched"} <= set(info["strategies"])
    assert info["failures"] == []
