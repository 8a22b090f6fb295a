"""The output rules (explorer.outputs, docs/cli.md "Output files"): what a path names is never
replaced unless it is a regular file; an input is never an output; outputs are checked before the
run; a full disk or a signal keeps the old file and leaves no temporary one.

No test here writes to a real device: FIFOs are made in tmp_path, ``/dev/null`` is only classified.
"""

from __future__ import annotations

import glob
import os
import resource
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from explorer import atomic
from explorer.cli import run as cli_run
from explorer.outputs import Input, Output, OutputError, check_outputs
from tests.conftest import SHORT_ARGS, run_main

CLI = [sys.executable, "-m", "explorer"]
ENV = {**os.environ, "PGTABLE_EXPLORER_NO_ENTRYPOINTS": "1"}


def test_devices_fifos_and_dev_paths_are_streams_regular_files_are_not(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    regular = tmp_path / "file"
    regular.write_text("x")
    assert atomic.is_stream("/dev/null") and atomic.is_stream("/dev/stdout") and atomic.is_stream(fifo)
    assert not atomic.is_stream(regular) and not atomic.is_stream(tmp_path / "new")


def test_run_output_into_a_fifo_writes_into_it_and_leaves_it_a_fifo(capsys: pytest.CaptureFixture[str],
                                                                      tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader, so opening for writing does not block
    try:
        rc, _, err = run_main(capsys, "run", *SHORT_ARGS, "--format", "json", "-o", str(fifo))
        data = os.read(reader, 1 << 16)
    finally:
        os.close(reader)
    assert rc == 0, err
    assert data.startswith(b"{") and b'"metrics"' in data
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]  # no temporary file beside it


def test_dash_is_standard_output(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    rc, out, err = run_main(capsys, "run", *SHORT_ARGS, "--format", "json", "-o", "-")
    assert rc == 0 and out.startswith("{") and "wrote" not in err
    assert list(tmp_path.iterdir()) == []  # not a file called '-'


def test_a_symlink_is_followed_its_target_replaced_and_the_link_kept(capsys: pytest.CaptureFixture[str],
                                                                       tmp_path: Path) -> None:
    target = tmp_path / "real.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target.name)
    rc, _, _ = run_main(capsys, "run", *SHORT_ARGS, "--format", "json", "-o", str(link))
    assert rc == 0
    assert link.is_symlink() and os.readlink(link) == "real.json"
    assert target.read_text().startswith("{")


@pytest.mark.parametrize("option", ["-o", "--trace"])
def test_an_output_that_is_the_config_is_refused_and_nothing_written(capsys: pytest.CaptureFixture[str],
                                                                     tmp_path: Path, option: str) -> None:
    config = tmp_path / "C.toml"
    rc, text, _ = run_main(capsys, "config", "default")
    config.write_text(text)
    alias = tmp_path / "alias.toml"
    os.link(config, alias)  # the same file by another name: compared by inode, not by name
    for out in (config, alias):
        rc, stdout, err = run_main(capsys, "run", str(config), *SHORT_ARGS, option, str(out))
        assert rc == 2 and stdout == ""
        assert f"{option if option != '-o' else '--output'} {out}: is the config ({config})" in err
        assert config.read_text() == text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["C.toml", "alias.toml"]


def test_outputs_are_checked_before_the_run(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    def must_not_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("the run started before its outputs were checked")

    monkeypatch.setattr(cli_run, "simulate", must_not_run)
    (tmp_path / "adir").mkdir()
    for argv, message in [
        (["-o", str(tmp_path / "no" / "x.json")], "the folder"),
        (["--trace", str(tmp_path / "adir")], "is a folder"),
        (["-o", str(tmp_path / "x"), "--trace", str(tmp_path / "x")], "is the same file as"),
    ]:
        rc, _, err = run_main(capsys, "run", *SHORT_ARGS, *argv)
        assert rc == 2 and message in err, err


def test_check_outputs_tries_the_folder_rather_than_trusting_mode_bits(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    def read_only(*args: object, **kwargs: object) -> None:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(OutputError, match=r"cannot write in .*Read-only file system"):
        check_outputs([Output("--out", str(tmp_path / "r.csv"))], [Input("the config", None)])


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))  # a disk that fills after 20 kB


def test_a_full_disk_while_the_trace_streams_keeps_the_old_trace(tmp_path: Path) -> None:
    trace = tmp_path / "run.trace"
    trace.write_text("the old trace\n")
    proc = subprocess.run([*CLI, "run", "--duration", "20ms", "--trace", str(trace)], cwd=tmp_path, env=ENV,
                          preexec_fn=_limit_file_size, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"error: --trace {trace}: cannot write: File too large")
    assert "Traceback" not in proc.stderr and "workload" not in proc.stderr
    assert trace.read_text() == "the old trace\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.trace"]


def test_a_plot_that_fails_halfway_keeps_the_old_plot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    from explorer.sweep.plot import plot_results

    def half_then_full(self: Figure, fname: object, **kwargs: object) -> None:
        if isinstance(fname, (str, os.PathLike)):
            with open(fname, "wb") as f:  # what matplotlib does with a path: write in place
                f.write(b"\x89PNG half")
        else:
            fname.write(b"\x89PNG half")  # type: ignore[attr-defined]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", half_then_full)
    out = tmp_path / "plot.png"
    out.write_bytes(b"the old plot")
    records = [{"point_id": str(i), "status": "ok", "seed": 1, "strategy.params.batch": b, "flushes": 10 * b}
               for i, b in enumerate((1, 2, 4))]
    with pytest.raises(OSError, match="No space"):
        plot_results(records, ["flushes"], "strategy.params.batch", out)
    assert out.read_bytes() == b"the old plot"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plot.png"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_clean_up_like_ctrl_c(tmp_path: Path, sig: signal.Signals) -> None:
    trace = tmp_path / "run.trace"
    # The child starts with the signal's default action even when this test runs under nohup (an
    # ignored SIGHUP is inherited, and the CLI rightly leaves an ignored signal ignored).
    proc = subprocess.Popen([*CLI, "run", "--duration", "10s", "--trace", str(trace)], cwd=tmp_path, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(sig, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 60
        while not glob.glob(str(tmp_path / ".run.trace.*.tmp")):  # the trace is streaming
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.02)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + sig, err
    assert err.strip().splitlines()[-1] == "interrupted"
    assert list(tmp_path.iterdir()) == []


def test_closed_standard_output_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    proc = subprocess.run([*CLI, "plugins", "--json"], cwd=tmp_path, env=ENV, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, timeout=60,
                          preexec_fn=lambda: os.close(1))
    assert proc.returncode == 2 and proc.stderr.startswith("error: standard output: closed"), proc.stderr
