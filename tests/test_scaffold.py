"""`pgtable-explorer plugin new`: what it refuses, and that what it writes installs, loads and passes
its own tests in a fresh virtual environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from explorer.cli import main
from explorer.cli.plugin_new import create, names_for, validate_name

KINDS = {"strategy": "slowpoke", "iommu": "my-vtd", "workload": "burst2"}


@pytest.mark.parametrize("name", ["", "Delayed", "my_plugin", "2fast", "-x", "a--b", "x-", "import", "a" * 41])
def test_bad_names_are_refused_with_exit_2_and_nothing_written(name: str, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert validate_name(name)
    assert main(["plugin", "new", name, "--dir", str(tmp_path / "out")]) == 2
    assert "error:" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_builtin_name_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugin", "new", "deferred", "--dir", str(tmp_path / "out")]) == 2
    assert "built-in" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_an_existing_non_empty_target_is_refused_and_left_alone(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    assert main(["plugin", "new", "delayed", "--dir", str(target)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
    assert (target / "notes.txt").read_text() == "keep me"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["plugin", "new", "delayed", "--dir", str(empty)]) == 0  # an empty folder is fine
    assert (empty / "src" / "pgtx_delayed" / "strategy.py").is_file()


def test_a_failure_half_way_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    real = Path.write_text
    written: list[str] = []

    def disk_full_at_the_third_file(self: Path, *args: object, **kwargs: object) -> int:
        written.append(self.name)
        if len(written) == 3:
            raise OSError(28, "No space left on device")
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "write_text", disk_full_at_the_third_file)
    assert main(["plugin", "new", "delayed", "--dir", str(tmp_path / "pkg")]) == 2
    assert "No space left on device" in capsys.readouterr().err and len(written) == 3
    assert list(tmp_path.iterdir()) == []  # neither the package nor its staging folder


def test_a_dangling_symlink_or_missing_folder_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "link").symlink_to(tmp_path / "gone")
    assert main(["plugin", "new", "delayed", "--dir", str(tmp_path / "link")]) == 2
    assert "which does not exist" in capsys.readouterr().err
    assert main(["plugin", "new", "delayed", "--dir", str(tmp_path / "no" / "pkg")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link"]


def test_default_folder_is_named_after_the_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["plugin", "new", "my-vtd", "--kind", "iommu"]) == 0
    pyproject = tomllib.loads((tmp_path / "pgtable-explorer-my-vtd" / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == "pgtable-explorer-my-vtd"
    assert pyproject["project"]["entry-points"]["pgtable_explorer"] == {"my-vtd": "pgtx_my_vtd.iommu"}


def test_generated_strategy_is_the_kernels_deferred_free(tmp_path: Path) -> None:
    """As generated (extra_delay 0) it is deferred, line for line: the same run, number for number."""
    from explorer.testing import compare_strategy

    target, _ = create("slowpoke", "strategy", tmp_path / "pkg")
    ours, kernel = compare_strategy("slowpoke", "deferred", plugins_dir=target / "src" / "pgtx_slowpoke",
                                    duration="20ms")
    for key in ("flushes", "kernel_tables_freed", "latency_ns", "queue", "worker_runs", "violations"):
        assert ours[key] == kernel[key], key
    delayed = compare_strategy("slowpoke", "deferred", plugins_dir=target / "src" / "pgtx_slowpoke",
                               duration="20ms", params={"extra_delay": "200us"})
    assert delayed.ours["flushes"] < delayed.other["flushes"]  # the parameter does what it says


def _fresh_venv(path: Path) -> Path:
    """A new virtual environment that sees this one's packages (pgtable-explorer, pytest, hatchling)
    through a .pth file, so installing into it is fast and needs no network."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    python = path / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]
    Path(site, "_parent_env.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    return python


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """One package of each kind, generated and pip-installed (not editable) into a fresh venv."""
    pytest.importorskip("hatchling")
    root = tmp_path_factory.mktemp("scaffold")
    python = _fresh_venv(root / "venv")
    env = {k: v for k, v in os.environ.items() if k != "PGTABLE_EXPLORER_NO_ENTRYPOINTS"}
    for kind, name in KINDS.items():
        target, _ = create(name, kind, root / name)
        subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", str(target)],
                       check=True, capture_output=True, env=env, cwd=root)
    return python, root, env


def test_generated_packages_install_and_show_as_installed_packages(
        installed: tuple[Path, Path, dict[str, str]]) -> None:
    python, root, env = installed
    out = subprocess.run([python, "-m", "explorer", "plugins", "--json"], check=True, capture_output=True,
                         text=True, env=env, cwd=root / "venv")  # not the source folders: only what is installed
    doc = json.loads(out.stdout)
    assert doc["failed"] == []
    got = {(r["kind"], r["name"]): (p["origin"], p["version"], r["version"]) for p in doc["plugins"]
           for r in p["registered"]}
    for kind, name in KINDS.items():  # one version: the package's is the class's
        assert got.get((kind, name)) == ("installed package", "0.1.0", "0.1.0"), (kind, name)


def test_generated_tests_pass_with_the_kit(installed: tuple[Path, Path, dict[str, str]]) -> None:
    python, root, env = installed
    tests = [str(root / name / "tests") for name in KINDS.values()]
    out = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--pgx-quick", *tests],
                         capture_output=True, text=True, env=env, cwd=root / "venv")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "4 passed" in out.stdout


def test_names_derive_from_the_plugin_name() -> None:
    n = names_for("my-vtd", "iommu")
    assert (n.dist, n.package, n.cls, n.module) == ("pgtable-explorer-my-vtd", "pgtx_my_vtd", "MyVtdIommu",
                                                    "pgtx_my_vtd.iommu")
