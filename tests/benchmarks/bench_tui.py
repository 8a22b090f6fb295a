"""5. Under the TUI: simulation throughput while the TUI shows the run, and key-to-screen latency.

Each measurement runs in its own process (``python -m tests.benchmarks.bench_tui WHAT``) so the
TUI, its session process and the headless run never share an interpreter with the suite.

- *Throughput*: the default scenario made long (60 s simulated, so it never ends during the
  measurement) runs at full speed; simulated events per wall second over a window of a few seconds,
  read from the session's snapshots as they arrive, with the TUI (Textual, headless driver: every
  frame is composed and rendered, only the write to a terminal is skipped) showing the Run screen,
  against the same config run headless (``pgtable-explorer run``, in one process; measured before
  and after the others and averaged) and, for the record, by a session with no TUI attached.
- *Key to screen*: while that run goes at full speed, keys that switch screens (``1`` Config,
  ``2`` Run) are delivered as the terminal driver delivers them; the latency is the time from
  the key to the first frame the app composes of the new screen.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from tests.benchmarks.common import Figure, is_na, na, percentile, run_python

LONG_MS = 60_000
WINDOW_S = 4.0
WARMUP_S = 1.0
PRESSES = 30


def _config() -> dict[str, Any]:
    from tests.benchmarks.cases import config

    cfg = config(LONG_MS, 1)
    cfg["run"]["speed"] = 0.0  # full speed (the default config plays at a watchable speed)
    return cfg


def _sampler(get_latest: Any) -> Any:
    """Coroutine helpers that timestamp each new snapshot as it is first seen."""
    state = {"seq": None}

    def poll() -> tuple[float, int] | None:
        snap = get_latest()
        if snap is None or snap.seq == state["seq"]:
            return None
        state["seq"] = snap.seq
        return time.perf_counter(), int(snap.data.get("events", 0))

    return poll


async def _rate_async(get_latest: Any, window: float) -> float:
    poll = _sampler(get_latest)
    start = None
    while start is None:
        start = poll()
        await asyncio.sleep(0.002)
    end = None
    while True:
        s = poll()
        if s is not None and s[0] - start[0] >= window:
            end = s
            break
        await asyncio.sleep(0.002)
    return (end[1] - start[1]) / (end[0] - start[0])


def measure_tui() -> dict[str, Any]:
    try:
        from textual import events

        from explorer.tui.app import ExplorerApp
        from tests.benchmarks.cases import registry
    except Exception as exc:  # the TUI may not exist yet
        return {"error": f"cannot import the TUI: {type(exc).__name__}: {exc}"}

    async def main() -> dict[str, Any]:
        app = ExplorerApp(None, [], registry=registry(), config=_config(), start="run", entry_points=False)
        frames: list[tuple[float, Any]] = []
        original = app._display

        def display(screen: Any, renderable: Any) -> None:
            original(screen, renderable)
            if renderable is not None:
                frames.append((time.perf_counter(), screen))

        app._display = display  # type: ignore[method-assign]
        out: dict[str, Any] = {}
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("space")  # Run / pause: start the run at full speed
            deadline = time.perf_counter() + 30
            while (app.session is None or app.session.state != "running" or app.session.latest is None
                   or app.session.latest.now_ns == 0):
                if time.perf_counter() > deadline:
                    return {"error": "the run did not start within 30 s (space on the Run screen)"}
                await asyncio.sleep(0.01)
            await asyncio.sleep(WARMUP_S)
            cpu0, wall0 = time.process_time(), time.perf_counter()
            out["tui_rate"] = await _rate_async(lambda: app.session.latest, WINDOW_S)  # type: ignore[union-attr]
            # CPU the UI process itself used while the run went at full speed (share of one core)
            out["ui_cpu"] = (time.process_time() - cpu0) / (time.perf_counter() - wall0)

            latencies = []
            targets = {"1": "config", "2": "run"}
            for i in range(PRESSES):
                key = "1" if i % 2 == 0 else "2"
                target = app.screens_by_name[targets[key]]
                n = len(frames)
                t0 = time.perf_counter()
                app._driver.send_message(events.Key(key, key))  # type: ignore[union-attr]
                limit = t0 + 5
                while not any(s is target for _, s in frames[n:]):
                    if time.perf_counter() > limit:
                        return {**out, "error": f"no frame of the {targets[key]} screen 5 s after key {key}"}
                    await asyncio.sleep(0.0005)
                t1 = next(t for t, s in frames[n:] if s is target)
                latencies.append((t1 - t0) * 1000)
                await asyncio.sleep(0.05)
            out["key_ms"] = latencies
            still = app.session.state if app.session is not None else "?"
            out["state_after"] = still
            app.shutdown_sessions()
        return out

    return asyncio.run(main())


def measure_session() -> dict[str, Any]:
    from explorer.session import Session

    s = Session(_config(), entry_points=False).start(run=True)
    try:
        deadline = time.perf_counter() + 30
        while s.latest is None or s.latest.now_ns == 0:
            if time.perf_counter() > deadline:
                return {"error": "the session did not start"}
            time.sleep(0.01)
        time.sleep(WARMUP_S)
        return {"session_rate": asyncio.run(_rate_async(lambda: s.latest, WINDOW_S))}
    finally:
        s.close()


def measure_headless() -> dict[str, Any]:
    from explorer.sim.build import Simulation
    from tests.benchmarks.cases import registry

    sim = Simulation(_config(), registry())
    sim.advance(200_000_000)  # warm up as the others do
    e0, t0 = sim.engine.events, time.perf_counter()
    while time.perf_counter() - t0 < WINDOW_S:
        sim.advance(sim.now + 50_000_000)
    return {"headless_rate": (sim.engine.events - e0) / (time.perf_counter() - t0)}


def _sub(what: str) -> dict[str, Any]:
    try:
        out = run_python("import sys; from tests.benchmarks.bench_tui import main; main(sys.argv[1])", what,
                         timeout=180)
        return json.loads(out.strip().splitlines()[-1])
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {str(exc)[-300:]}"}


def run(quick: bool = False) -> list[Figure]:
    # The headless rate is measured before and after the TUI and the session and averaged: the
    # ratio compares processes run a few seconds apart, and a shared host's speed drifts.
    before = _sub("headless")
    tui = _sub("tui")
    session = _sub("session")
    after = _sub("headless")
    headless = before if "error" in before or "error" in after else {
        "headless_rate": (before["headless_rate"] + after["headless_rate"]) / 2,
        "spread": abs(before["headless_rate"] - after["headless_rate"])}
    figures = []
    if "error" in tui and "tui_rate" not in tui:
        reason = na(tui["error"])
        figures.append(Figure("tui_throughput_ratio", "sim events/s under the TUI / headless", reason, target=">= 0.8"))
    elif "error" in headless:
        figures.append(Figure("tui_throughput_ratio", "sim events/s under the TUI / headless",
                              na(headless["error"]), target=">= 0.8"))
    else:
        ratio = tui["tui_rate"] / headless["headless_rate"]
        extra: dict[str, Any] = {"tui_events_per_s": round(tui["tui_rate"]),
                                 "headless_events_per_s": round(headless["headless_rate"])}
        note = (f"TUI {tui['tui_rate'] / 1e3:.0f} k ev/s, headless run {headless['headless_rate'] / 1e3:.0f} k ev/s"
                f" (mean of before and after, {headless.get('spread', 0) / 1e3:.0f} k apart)")
        if "ui_cpu" in tui:
            extra["tui_process_cpu_share"] = round(tui["ui_cpu"], 3)
            note += f", UI process CPU {tui['ui_cpu'] * 100:.0f} % of a core"
        if "session_rate" in session:
            extra["session_no_tui_events_per_s"] = round(session["session_rate"])
            note += f", session without TUI {session['session_rate'] / 1e3:.0f} k ev/s"
        figures.append(Figure("tui_throughput_ratio", "sim events/s under the TUI / headless", round(ratio, 2), "",
                              ">= 0.8", note=note, extra=extra))
    keys = tui.get("key_ms")
    if keys:
        p50, p95 = percentile(keys, 50), percentile(keys, 95)
        figures.append(Figure("tui_key_p95_ms", "key to screen while running, p95", round(p95, 1), "ms", "< 100",
                              note=f"p50 {p50:.1f} ms, max {max(keys):.1f} ms over {len(keys)} screen switches",
                              extra={"tui_key_p50_ms": round(p50, 1)}))
    else:
        figures.append(Figure("tui_key_p95_ms", "key to screen while running, p95",
                              na(tui.get("error", "not measured")), target="< 100"))
    for f in figures:
        if is_na(f.value):
            f.note = "rerun once the TUI exists"
    return figures


def main(what: str) -> None:
    fn = {"tui": measure_tui, "session": measure_session, "headless": measure_headless}[what]
    try:
        res = fn()
    except Exception as exc:
        res = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(res))


if __name__ == "__main__":
    main(sys.argv[1])
