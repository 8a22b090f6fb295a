"""4. Start-up, as whole processes: ``--version``, ``run --help`` and the TUI's first frame."""

from __future__ import annotations

import os
import select
import subprocess
import time
from pathlib import Path

from tests.benchmarks.common import BIN, PYTHON, ROOT, Figure, env_for_subprocess, median, na

SCRIPT = BIN / "pgtable-explorer"


def _command() -> list[str]:
    """The installed console script, else ``python -m explorer`` (the same entry point)."""
    return [str(SCRIPT)] if SCRIPT.exists() else [PYTHON, "-m", "explorer"]


def _time_process(args: list[str], runs: int) -> tuple[float, str]:
    times = []
    out = ""
    for _ in range(runs):
        t = time.perf_counter()
        p = subprocess.run(_command() + args, cwd=ROOT, env=env_for_subprocess(), capture_output=True, text=True,
                           timeout=60)
        times.append(time.perf_counter() - t)
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} exited {p.returncode}: {p.stderr.strip()[-500:]}")
        out = p.stdout
    return median(times), out


def _imports_textual(args: list[str]) -> bool:
    p = subprocess.run([PYTHON, "-X", "importtime", "-m", "explorer", *args], cwd=ROOT, env=env_for_subprocess(),
                       capture_output=True, text=True, timeout=60)
    return any(line.rsplit("|", 1)[-1].strip().split(".")[0] == "textual" for line in p.stderr.splitlines())


def tui_first_frame(timeout: float = 20.0) -> float | str:
    """Seconds from starting ``pgtable-explorer`` (the TUI) in a pseudo-terminal to its first full frame.

    The first frame is the first time the app has drawn its title and footer keys into the
    terminal; the process is then asked to quit (ctrl+q) and, failing that, killed.
    """
    try:
        import pty  # noqa: F401
    except ImportError:
        return na("no pseudo-terminals on this platform")
    if not (ROOT / "explorer" / "tui" / "app.py").exists():
        return na("the TUI (explorer/tui/app.py) does not exist yet")
    import fcntl
    import struct
    import termios

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = env_for_subprocess()
    env.update(TERM="xterm-256color", COLUMNS="120", LINES="40", TEXTUAL_ANIMATIONS="none")
    env.pop("NO_COLOR", None)
    t0 = time.perf_counter()
    proc = subprocess.Popen(_command(), cwd=ROOT, env=env, stdin=slave, stdout=slave, stderr=slave,
                            start_new_session=True)
    os.close(slave)
    seen = b""
    first: float | str = na(f"no frame within {timeout:.0f} s")
    try:
        while time.perf_counter() - t0 < timeout:
            r, _, _ = select.select([master], [], [], 0.05)
            if r:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk
                text = seen.decode("utf-8", "replace")
                # The header carries the title; the footer lists the keys: both drawn = a full frame.
                if "pgtable-explorer" in text and ("Quit" in text or "Help" in text):
                    first = time.perf_counter() - t0
                    break
            if proc.poll() is not None:
                first = na(f"the TUI exited with status {proc.returncode} before drawing: "
                           + seen.decode("utf-8", "replace")[-300:].strip())
                break
    finally:
        if proc.poll() is None:
            try:
                os.write(master, b"\x11")  # ctrl+q
                proc.wait(timeout=3)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()
        os.close(master)
    return first


def run(quick: bool = False) -> list[Figure]:
    runs = 5 if quick else 9
    figures = []
    for key, label, args in (("version_s", "pgtable-explorer --version", ["--version"]),
                             ("run_help_s", "pgtable-explorer run --help", ["run", "--help"])):
        try:
            secs, _ = _time_process(args, runs)
            textual = _imports_textual(args)
            figures.append(Figure(key, label + " (whole process)", round(secs, 4), "s", "< 0.15",
                                  note="imports textual!" if textual else "does not import textual",
                                  extra={key.replace("_s", "_imports_textual"): textual}))
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            figures.append(Figure(key, label, na(str(exc)[:200]), target="< 0.15"))
    frames = []
    for _ in range(2 if quick else 3):
        f = tui_first_frame()
        if isinstance(f, str):
            frames = [f]
            break
        frames.append(f)
    value: float | str = frames[0] if isinstance(frames[0], str) else round(median(frames), 3)
    figures.append(Figure("tui_first_frame_s", "TUI first frame (whole process, in a pty)", value, "s", "< 0.5"))
    return figures


if __name__ == "__main__":
    print(tui_first_frame())
    print(Path(SCRIPT))
