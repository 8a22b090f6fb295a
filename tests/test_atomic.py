"""Files written whole or not at all (explorer.atomic): what every output of the explorer goes through."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from explorer import atomic


def test_a_write_that_fails_halfway_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic.atomic_open(path) as f:
        f.write("half of the new")
        raise RuntimeError("the run failed")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_a_replaced_file_keeps_its_mode_and_a_new_one_gets_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "private.csv"
    path.write_text("old")
    os.chmod(path, 0o600)
    atomic.write_text(path, "new")
    assert path.read_text() == "new" and stat.S_IMODE(path.stat().st_mode) == 0o600
    fresh = tmp_path / "fresh.csv"
    atomic.write_bytes(fresh, b"x")
    assert stat.S_IMODE(fresh.stat().st_mode) == atomic.default_mode()  # not mkstemp's 0600


def test_a_missing_folder_is_an_os_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        atomic.write_text(tmp_path / "nope" / "out.json", "{}")
