"""What keeps plugin code inside the tool's contract while a run goes: a wall-clock limit
(``run --timeout``) and naming the plugin whose code ended a run by means other than an exception
(``sys.exit()``, a stray ``GeneratorExit``) or was running when the limit struck.

Standard library only.
"""

from __future__ import annotations

import contextlib
import os
import threading
import traceback
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from explorer.plugins import PluginInfo, Registry


class RunTimeout(BaseException):
    """The run went over its wall-clock limit. A BaseException, like KeyboardInterrupt, so the
    wrappers around plugin code (``except Exception``) do not turn it into that plugin's error."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        #: the frame the signal was handled in when that frame had only just been entered or
        #: resumed: the time went elsewhere (see :func:`_just_entered`), so it is not the culprit
        self.not_running: object = None
        super().__init__(f"timed out after {seconds:g}s (wall clock)")


def _just_entered(frame: Any) -> bool:
    """Whether ``frame`` has run nothing since it was entered or resumed (it is at ``RESUME``).

    Python handles a signal at the next check of interpreted code: compiled code (the compiled
    simulator core, see explorer/compiled.py) runs on with it pending, and the first interpreted
    frame to start or resume, often a plugin's generator, is where it is handled. The time was not
    spent there."""
    import dis

    resume = dis.opmap.get("RESUME")
    if frame is None or resume is None:
        return False
    code, i = frame.f_code.co_code, frame.f_lasti
    return 0 <= i < len(code) and code[i] == resume


@contextlib.contextmanager
def wall_clock_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`RunTimeout` in this (the main) thread once ``seconds`` of wall-clock time have
    passed, and again every second after that (for a plugin that swallows it). No limit when
    ``seconds`` is None, off the main thread or where there is no SIGALRM."""
    import signal

    if seconds is None or threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGALRM"):
        yield
        return

    def expire(signum: int, frame: object) -> None:
        exc = RunTimeout(seconds)
        if _just_entered(frame):
            exc.not_running = frame
        raise exc

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _module_of(info: PluginInfo) -> str | None:
    """An installed plugin's module (its location is ``module:attr (dist)``)."""
    if info.origin != "installed package":
        return None
    return info.location.split(":", 1)[0].split(" ", 1)[0] or None


def culprit(exc: BaseException, registry: Registry, config: Mapping[str, Any] | None = None) -> str | None:
    """The plugin whose code ``exc`` came out of (the innermost plugin frame of its traceback):
    ``strategy 'name'`` when that plugin provides a plugin the config uses, else ``plugin NAME
    (LOCATION)``; None when no plugin code is on the traceback."""
    files = {os.path.realpath(i.location): i for i in registry.plugins if i.origin != "installed package"}
    modules = {m: i for i in registry.plugins if (m := _module_of(i))}
    found: PluginInfo | None = None
    skip = getattr(exc, "not_running", None)
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        if frame is skip:
            continue
        info = files.get(os.path.realpath(frame.f_code.co_filename))
        if info is None:
            name = str(frame.f_globals.get("__name__", ""))
            info = next((i for m, i in modules.items() if name == m or name.startswith(m + ".")), None)
        if info is not None:
            found = info  # keep walking: the innermost plugin frame is the one to name
    if found is None:
        return None
    used: set[tuple[str, str]] = set()
    if config is not None:
        used = {("strategy", config["strategy"]["name"]), ("iommu", config["iommu"]["model"])}
        used |= {("workload", w["name"]) for w in config.get("workload", [])}
    for kind, name in found.registers:
        if (kind, name) in used:
            return f"{kind} {name!r}"
    return f"plugin {found.name} ({found.location})"


def ended_by(exc: BaseException) -> str:
    """How a plugin ended the run: ``called sys.exit(3)``, ``raised GeneratorExit``."""
    if isinstance(exc, SystemExit):
        return f"called sys.exit({exc.code!r})" if exc.code is not None else "called sys.exit()"
    return f"raised {type(exc).__name__}" + (f": {exc}" if str(exc) else "")
