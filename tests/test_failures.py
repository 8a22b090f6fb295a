"""One vocabulary for failures (explorer.failures): the CLI's exit status, the TUI session's error
(its panel title) and a sweep row's ``failure`` say the same of the same failure. Each face runs
in this process (the CLI's main(), the session's child loop, the sweep worker's run_point), so the
comparison is cheap and each face's own code path is what is compared."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest

from explorer import failures
from explorer.cli import main
from explorer.failures import BY_NAME, classify_failure
from explorer.plugins import load_registry
from explorer.session.child import Child
from explorer.sweep.executors import Outcome
from explorer.sweep.worker import make_bundle, run_point
from tests.conftest import make_config, raising_strategy_source, strategy_source

#: kernel.pages just above what the build needs: the machine runs out of pages 0.1 ms into the run
OUT_OF_MEMORY = ("kernel.pages=1030", "strategy.name=deferred")


def test_every_named_exception_exists() -> None:
    """A class renamed or moved would silently become a "simulator" failure."""
    for qualified in failures.EXCEPTIONS:
        module, _, name = qualified.rpartition(".")
        cls = getattr(importlib.import_module(module), name)
        assert isinstance(cls, type) and issubclass(cls, BaseException), qualified
        assert classify_failure(cls.__new__(cls)).name == failures.EXCEPTIONS[qualified]


def test_subclasses_and_unknown_exceptions() -> None:
    from explorer.outputs import OutputLost
    from explorer.sim.engine import SimulatorError

    assert classify_failure(OutputLost.__new__(OutputLost)) is failures.USER  # nearest named base wins
    assert classify_failure(SimulatorError("x")) is failures.SIMULATOR
    assert classify_failure(TypeError("x")) is failures.SIMULATOR
    assert [f.exit_status for f in failures.FAILURES] == [2, 1, 1, 1, 1, 130]


class _Pipe:
    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []

    def send(self, msg: tuple[str, Any]) -> None:
        self.sent.append(msg)


def _session_error(config: dict[str, Any], dirs: list[str]) -> dict[str, Any]:
    """What the TUI's session reports: the child loop, driven in this process to the end."""
    child = Child(None, _Pipe(), config, {"plugins_dirs": dirs, "entry_points": False, "trace_size": 0})
    child.build()
    if child.state != "failed":
        child.advance(10**12)
    assert child.state == "failed" and child.error is not None
    return child.error


def _sweep_failure(config: dict[str, Any], dirs: list[str]) -> str | None:
    """What a sweep row says: the worker's record, as the executor reports it to the runner."""
    rec = run_point({"index": 0, "id": "p0", "config": config, "bundle": make_bundle(dirs, entry_points=False)})
    assert rec["status"] == "failed"
    return Outcome.from_record({}, rec).failure


def _cli_status(capsys: pytest.CaptureFixture[str], overrides: tuple[str, ...], dirs: list[str]) -> int:
    argv = ["run", "--duration", "1ms", *(a for d in dirs for a in ("--plugins-dir", d))]
    for o in overrides:
        argv += ["--set", o]
    status = main(argv)
    capsys.readouterr()
    return status


SYS_EXIT = strategy_source("test-exits", "Exits", "import sys\nsys.exit(3)", help="Ends the program.")


@pytest.mark.parametrize(("case", "source", "overrides", "expected"), [
    ("out of memory", None, OUT_OF_MEMORY, "user"),
    ("a plugin raises", raising_strategy_source("test-boom"), ("strategy.name=test-boom",), "plugin"),
    ("a plugin calls sys.exit()", SYS_EXIT, ("strategy.name=test-exits",), "plugin"),
])
def test_the_cli_the_session_and_a_sweep_row_agree(case: str, source: str | None, overrides: tuple[str, ...],
                                                   expected: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    dirs = []
    if source is not None:
        (tmp_path / "p.py").write_text(source)
        dirs = [str(tmp_path)]
    registry = load_registry(dirs, entry_points=False)
    config = make_config(registry, "run.duration=1ms", *overrides)
    failure = BY_NAME[expected]

    assert _cli_status(capsys, overrides, dirs) == failure.exit_status, case
    err = _session_error(config, dirs)
    assert err["failure"] == expected, (case, err)
    assert _sweep_failure(config, dirs) == expected, case
    if expected == "user":  # what to change, as the CLI says it: no exception type, no traceback
        assert err["error"].startswith("the simulated machine ran out of free pages") and err["traceback"] == ""
    if expected == "plugin":  # the session names the plugin, as the CLI does
        assert "test-boom" in err["name"] or "strategy 'test-exits' called sys.exit(3)" in err["error"], err


@pytest.mark.pure_core  # patches Simulation, which the compiled core compiles
def test_a_simulator_bug_is_one_everywhere(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                           registry: Any) -> None:
    from explorer.sim.build import Simulation

    def bug(self: Any, *args: Any, **kwargs: Any) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(Simulation, "__init__", bug)
    config = make_config(registry, "run.duration=1ms")
    assert main(["run", "--duration", "1ms"]) == 1
    err_text = capsys.readouterr().err
    assert err_text.startswith("error: the simulator failed: ZeroDivisionError: a bug") and "\ntraceback:\n" in err_text
    assert _session_error(config, [])["failure"] == "simulator"
    assert _sweep_failure(config, []) == "simulator"




@pytest.mark.parametrize(("exc", "status"), [("OutOfMemory", 2), ("RuntimeError", 1)])
def test_hunt_reports_a_candidates_failure_by_its_kind(exc: str, status: int, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """hunt's candidate runs classify their failures (explorer.hunt.search); the CLI exits by the
    kind (an out-of-memory candidate used to exit 1). The search itself is not run: Hypothesis
    shrinks a failing candidate for seconds before it reports it."""
    import explorer.hunt
    from explorer.sim.memory import OutOfMemory

    error = OutOfMemory("the machine ran out") if exc == "OutOfMemory" else RuntimeError("boom")

    def fake_hunt(*args: Any, **kwargs: Any) -> None:
        raise explorer.hunt.HuntError(str(error), "", "", classify_failure(error).name)

    monkeypatch.setattr(explorer.hunt, "hunt", fake_hunt)
    assert main(["hunt", "--max-runs", "1", "--workers", "1"]) == status
    assert str(error) in capsys.readouterr().err
