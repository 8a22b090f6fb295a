"""Every user mistake is exit status 2 with a message, never a traceback (issue 10's list)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import SHORT_ARGS, run_main

BIG = "9" * 5000  # over Python's 4300-digit limit for int(str)


FILES = {
    "deep.toml": "a = " + "[" * 600 + "]" * 600 + "\n",
    "nested-under-the-parser-limit.toml": "[run]\nseed = " + "[" * 400 + "]" * 400 + "\n",
    "overflow.toml": '[run]\nduration = "1e400ms"\n',
    "bigint.toml": f"[run]\nseed = {BIG}\n",
    "pages.toml": "[kernel]\npages = 100000000\n",
    "escape.toml": '"\\u001b]0;title\\u0007\\u001b[31mred" = 1\n',
}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["config", "validate", "deep.toml"], "deep.toml: nested too deeply"),
        (["config", "validate", "nested-under-the-parser-limit.toml"], "nested too deeply"),
        (["config", "validate", "overflow.toml"], "run.duration: '1e400ms' is too large for a duration"),
        (["run", "--duration", "1e400ms"], "'1e400ms' is too large for a duration"),
        (["run", "--set", "run.duration=1e400ms"], "'1e400ms' is too large for a duration"),
        (["config", "validate", "bigint.toml"], "bigint.toml: a number too long to read"),
        (["run", *SHORT_ARGS, "--set", f"run.seed={BIG}"], "run.seed: expected an integer"),
        (["run", *SHORT_ARGS, "--set", f"workload[{BIG}].rate=1/s"], "unknown key"),
        (["run", *SHORT_ARGS, "--set", f"workload[0].cpus=0-{BIG}"], "workload.vmalloc-huge.cpus: expected 'all'"),
        (["run", *SHORT_ARGS, "--set", "strategy.name=[1]", "--set", "strategy.params.batch=4"],
         "strategy.name: expected the name of a strategy (a string), got [1]"),
        (["run", *SHORT_ARGS, "--set", "iommu.model={a=1}", "--set", "iommu.params.x=4"],
         "iommu.model: expected the name of an IOMMU model (a string)"),
        (["run", *SHORT_ARGS, "--set", "workload[0].name=[1]", "--set", "workload[0].rate=4"],
         "workload[0].name: expected the name of a workload source (a string)"),
        (["run", "pages.toml"], "kernel.pages: 100000000 is above the maximum 10000000"),
        (["run", *SHORT_ARGS, "--scenario", ""], "unknown scenario ''"),
        (["run", *SHORT_ARGS, "--set", "workload[0].cpus=\u0663"], "workload.vmalloc-huge.cpus: expected 'all'"),
        (["config", "validate", "/dev/zero"], "/dev/zero: is a character device, not a config file"),
        (["config", "validate", "escape.toml"], "escape.toml: '\\x1b]0;title\\x07\\x1b[31mred': unknown key"),
    ],
)
def test_mistakes_exit_2_with_a_message(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch, argv: list[str], message: str) -> None:
    monkeypatch.chdir(tmp_path)
    for name, text in FILES.items():
        (tmp_path / name).write_text(text)
    rc, out, err = run_main(capsys, *argv)
    assert rc == 2 and out == "", err
    assert message in err, err
    assert "Traceback" not in err and "\x1b" not in err


def test_a_fifo_as_config_is_refused_without_blocking(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    fifo = tmp_path / "c.toml"
    os.mkfifo(fifo)
    rc, _, err = run_main(capsys, "config", "validate", str(fifo))
    assert rc == 2 and f"{fifo}: is a FIFO, not a config file" in err


def test_error_output_is_capped(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    many = tmp_path / "many.toml"
    many.write_text("".join(f"k{i} = 1\n" for i in range(5000)) + '[run]\nseed = "' + "x" * 100_000 + '"\n')
    rc, _, err = run_main(capsys, "config", "validate", str(many))
    lines = err.splitlines()
    assert rc == 2 and len(err) < 10_000
    assert lines[-1] == "error: ... and 4981 more problems"  # 5001 problems, 20 shown
    rc, _, err = run_main(capsys, "run", *SHORT_ARGS, "--set", "run.seed=" + "y" * 100_000)
    assert rc == 2 and len(err) < 1000 and "(99" in err and "more characters)" in err
