"""explorer.procs: one start method and one forkserver preload list for every child process the tool
starts (a session's simulation process, sweep and hunt workers), whoever asks first."""

from __future__ import annotations

import ast
import importlib.util
from collections import deque
from pathlib import Path
from typing import Any

import pytest

from explorer import procs
from tests.conftest import make_config, strategy_source

ROOT = Path(__file__).resolve().parent.parent


def test_the_preloaded_modules_exist() -> None:
    """A renamed entry point would leave the forkserver preloading nothing useful, silently."""
    for name in procs.PRELOAD:
        assert importlib.util.find_spec(name) is not None, name


def test_session_sweep_and_hunt_share_one_context(registry) -> None:
    from explorer.session import Session
    from explorer.sweep import LocalExecutor

    executor = LocalExecutor(1)  # the sweep's executor first: it used to set its own preload list
    session = Session(make_config(registry))
    assert executor.ctx is session._ctx is procs.context()
    assert procs.context().get_start_method() == procs.start_method()
    if procs.start_method() == "forkserver":  # the list the forkserver will read when it starts
        from multiprocessing import forkserver

        LocalExecutor(1)
        assert forkserver._forkserver._preload_modules == list(procs.PRELOAD)  # type: ignore[attr-defined]


def test_no_other_module_chooses_a_start_method() -> None:
    """get_context / set_forkserver_preload / ProcessPoolExecutor(...) only in explorer/procs.py."""
    offenders = []
    for path in sorted((ROOT / "explorer").rglob("*.py")):
        if path.name == "procs.py" and path.parent.name == "explorer":
            continue
        text = path.read_text()
        if not any(word in text for word in ("get_context", "set_forkserver_preload", "set_start_method",
                                              "ProcessPoolExecutor(")):
            continue  # parse only the few files that could offend
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Call):
                f = node.func
                name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
                if name in ("get_context", "set_forkserver_preload", "set_start_method") or (
                        name == "ProcessPoolExecutor" and not any(k.arg == "mp_context" for k in node.keywords)):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}")
    assert offenders == []


def test_captured_output_keeps_whole_lines() -> None:
    lines: deque[str] = deque()
    out = procs.CapturedOutput(lines, "stdout")
    out.write("freeing 1\nfree")
    out.write("ing 2\n")
    assert list(lines) == ["[stdout] freeing 1", "[stdout] freeing 2"] and out.partial == ""


CHATTY = strategy_source("test-chatty", "Chatty", 'print("freeing", pt.page)\nk.free_now(pt)', help="Prints.")


def _chatty_task(tmp_path: Path) -> dict[str, Any]:
    from explorer.plugins import load_registry
    from explorer.sweep.worker import make_bundle

    (tmp_path / "chatty.py").write_text(CHATTY)
    config = make_config(load_registry([tmp_path], entry_points=False), "run.duration=1ms",
                         "strategy.name=test-chatty")
    return {"index": 0, "id": "p0", "config": config, "bundle": make_bundle([tmp_path], entry_points=False)}


def test_a_sweep_points_prints_go_to_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """As in `run`: a plugin's print() never lands in the sweep's output (`sweep --json | jq`)."""
    from explorer.sweep.worker import run_point

    assert run_point(_chatty_task(tmp_path))["status"] == "ok"
    out, err = capsys.readouterr()
    assert out == "" and "freeing" in err


def test_quiet_workers_print_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The TUI's sweep workers (LocalExecutor(quiet=True)) never write on the terminal it draws on:
    their initializer silences Python's streams and the file descriptors (checked in a fresh
    interpreter, whose output is what a terminal would get)."""
    import subprocess
    import sys

    from explorer.sweep import LocalExecutor, worker

    assert LocalExecutor(1, quiet=True).slots[0].initializer is worker.init_quiet_worker
    assert LocalExecutor(1).slots[0].initializer is worker.init_local_worker
    calls: list[str] = []
    monkeypatch.setattr(worker, "init_local_worker", lambda: calls.append("local"))
    monkeypatch.setattr(procs, "silence_stdio", lambda: calls.append("silence"))
    worker.init_quiet_worker()
    assert calls == ["local", "silence"]
    code = ("import os, sys; from explorer.procs import silence_stdio; print('before', flush=True); "
            "silence_stdio(); print('python'); print('err', file=sys.stderr); os.write(1, b'fd 1'); "
            "os.write(2, b'fd 2')")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert (res.stdout, res.stderr) == ("before\n", "")
