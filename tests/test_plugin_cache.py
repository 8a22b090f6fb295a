"""The sweep's plugin cache ($TMPDIR/pgtable-explorer-<uid>/plugins/<digest>) runs no code that
another user planted: private folders, owner and mode checked, files verified before use."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest

from explorer.config import apply_overrides, default_config
from explorer.plugins import load_registry
from explorer.sweep import LocalExecutor, Sweep, SweepError, plan_sweep
from explorer.sweep import worker as W
from tests.conftest import strategy_source

GOOD = strategy_source("cache-good", "CacheGood", "k.free_now(pt)")


@pytest.fixture
def tmpdir_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """TMPDIR (as tempfile sees it) is a fresh folder, so the cache is created there."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    W._registries.clear()
    return tmp


def _bundle(tmp_path: Path) -> dict[str, object]:
    d = tmp_path / "plugins"
    d.mkdir()
    (d / "good.py").write_text(GOOD)
    return W.make_bundle([d], entry_points=False)


def test_cache_folders_are_created_private(tmpdir_is: Path, tmp_path: Path) -> None:
    bundle = _bundle(tmp_path)
    [folder] = W._materialise(bundle)
    for path in (W.cache_root(), W.cache_root() / "plugins", folder.parent, folder):
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
    assert (folder / "good.py").read_text() == GOOD


def test_a_cache_of_another_user_is_refused(tmpdir_is: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = _bundle(tmp_path)
    monkeypatch.setattr(os, "getuid", lambda: os.geteuid() + 4242)  # the folder's owner is now someone else
    W.cache_root().mkdir(mode=0o700)
    with pytest.raises(W.CacheFolderError, match="belongs to another user"):
        W._materialise(bundle)


def test_a_cache_writable_by_others_is_refused_before_the_sweep(tmpdir_is: Path, tmp_path: Path) -> None:
    root = W.cache_root()
    root.mkdir()
    os.chmod(root, 0o777)
    d = tmp_path / "p"
    d.mkdir()
    (d / "good.py").write_text(GOOD)
    reg = load_registry(plugins_dirs=[d], entry_points=False)
    config = apply_overrides(default_config(reg), ["run.duration=1ms", "strategy.name=cache-good"], reg)
    plan = plan_sweep(config, reg, [])
    with pytest.raises(SweepError, match="writable by other users"):
        Sweep(plan, reg, LocalExecutor(1), out=None)


def test_planted_files_in_a_cached_bundle_are_never_loaded(tmpdir_is: Path, tmp_path: Path) -> None:
    bundle = _bundle(tmp_path)
    marker = tmp_path / "planted-ran"
    planted = f"open({str(marker)!r}, 'w').write('x')\n"
    # Someone wrote the bundle's digest folder first: the same layout, a changed file and an extra one.
    root = W.check_cache_folder() / str(bundle["digest"])
    (root / "0").mkdir(parents=True, mode=0o700)
    (root / "0" / "good.py").write_text(GOOD + "\n" + planted)
    (root / "0" / "extra.py").write_text(planted)
    (root / ".complete").write_text("")
    registry = W.registry_for(bundle)
    assert "cache-good" in registry.strategies and not registry.failures
    assert not marker.exists()
    assert W._materialise(bundle)[0] != root / "0"  # a fresh private copy, not the planted one
