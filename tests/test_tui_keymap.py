"""The user's keymap (explorer.tui.keymap): a TOML file of binding id = keys, applied with Textual's
``App.set_keymap`` so the bindings, footer, F1 help and palette use the remapped keys; a bad file is
reported in the TUI and the default keys stay in effect."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from textual.command import CommandPalette

from explorer.tui.actions import ACTIONS
from explorer.tui.keymap import ENV_VAR, keymap_path, load_keymap
from explorer.tui.screens.help import HelpScreen
from tests.conftest import make_config
from tests.tui_helpers import SHORT, make_app, paste, wait_for_drawn, wait_for_screen, wait_for_text, wait_until

ROOT = Path(__file__).resolve().parent.parent


def _keymap(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "keymap.toml"
    p.write_text(text)
    return p


def _count_toggles(app: Any) -> list[int]:
    """Wrap the Run screen session's toggle (what run/pause calls when paused) with a counter."""
    s = app.ensure_session()
    calls = [0]
    real = s.toggle

    def toggle() -> None:
        calls[0] += 1
        real()

    s.toggle = toggle
    return calls


def _errors(app: Any) -> list[str]:
    return [f"{n.title}: {n.message}" for n in app._notifications if n.severity == "error"]


# ---------------------------------------------------------------- the file


def test_keymap_path_env_var_then_xdg_then_home(tmp_path):
    assert keymap_path({ENV_VAR: str(tmp_path / "k.toml"), "XDG_CONFIG_HOME": "/x"}) == tmp_path / "k.toml"
    assert keymap_path({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "pgtable-explorer" / "keymap.toml"
    assert keymap_path({}) == Path.home() / ".config" / "pgtable-explorer" / "keymap.toml"
    # no file at the default place is no keymap; a missing file named by the variable is a problem
    assert load_keymap(env={"XDG_CONFIG_HOME": str(tmp_path)}).problems == []
    missing = load_keymap(env={ENV_VAR: str(tmp_path / "nope.toml")})
    assert missing.keymap == {} and "nope.toml: no such file" in missing.problems[0]


def test_keymap_file_is_normalized_and_checked(tmp_path):
    ok = load_keymap(_keymap(tmp_path, '[keymap]\ntoggle = "p"\nstep = "n, ."\nhelp = ["f2", "ctrl+h"]\n'))
    assert ok.problems == [] and ok.keymap == {"toggle": "p", "step": "n,full_stop", "help": "f2,ctrl+h"}

    bad = load_keymap(_keymap(tmp_path, '[keymap]\ntoggle = "p"\nrun_pause = "p"\nreset = "ctrl+zz"\n'))
    assert bad.keymap == {}  # nothing of a file with problems is applied
    unknown, not_a_key = bad.problems
    assert unknown.startswith(f"{tmp_path / 'keymap.toml'}:3: [keymap] run_pause: unknown binding id")
    assert "Did you mean toggle (Run/Pause, Run screen)" in unknown and "sw_out" in unknown
    assert "reset: not a key: 'ctrl+zz'" in not_a_key

    clash = load_keymap(_keymap(tmp_path, '[keymap]\nstep = "r"\n'))
    assert clash.keymap == {} and clash.problems == [
        f"{tmp_path / 'keymap.toml'}:2: key 'r' is bound to both step and reset on the Run screen"]
    # the line is the remapped entry's, wherever it is in the file
    later = load_keymap(_keymap(tmp_path, '[keymap]\ntoggle = "p"\n\nreset = "s"\n'))
    assert later.problems == [f"{tmp_path / 'keymap.toml'}:4: key 's' is bound to both step and reset "
                              "on the Run screen"]
    # swapping two keys is no clash
    assert load_keymap(_keymap(tmp_path, '[keymap]\nstep = "r"\nreset = "s"\n')).problems == []

    typo = load_keymap(_keymap(tmp_path, '[keymap]\ntoggle = "p"\nstep = "n\n'))
    assert typo.keymap == {} and "not valid TOML" in typo.problems[0] and "line 3" in typo.problems[0]


def test_docs_list_every_binding_id_with_its_default_key():
    text = (ROOT / "docs" / "tui.md").read_text()
    table = text[text.index("<!-- keys:start -->"):text.index("<!-- keys:end -->")]
    for a in ACTIONS:
        assert f"| `{a.id}` |" in table, a.id


# ---------------------------------------------------------------- in the app


async def test_remapped_run_pause_key_drives_the_run_and_shows_everywhere(registry, tmp_path):
    app = make_app(registry, make_config(registry, *SHORT), keymap_path=_keymap(tmp_path, '[keymap]\ntoggle = "p"\n'))
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for_drawn(pilot, app, ("paused",))
            assert _errors(app) == []
            calls = _count_toggles(app)
            bindings = app.screen.active_bindings
            assert bindings["p"].binding.id == "toggle"
            assert "space" not in bindings  # Textual's keymap replaces the default key, it does not add one
            await wait_for_screen(pilot, lambda t: re.search(r"\bp Run/Pause", t) is not None, "the footer's p")
            await pilot.press("space")
            await pilot.pause()
            assert calls[0] == 0 and app.session.state == "paused"
            await pilot.press("p")
            assert calls[0] == 1
            await wait_for_drawn(pilot, app, ("finished",))

            await pilot.press("f1")
            assert isinstance(app.screen, HelpScreen)
            help_text = await wait_for_screen(pilot, lambda t: re.search(r"\bp\s+Run/Pause", t) is not None,
                                              "the help's p")
            assert not re.search(r"space\s+Run/Pause", help_text)
            await pilot.press("escape")
            commands = {c.title: c.help for c in app.get_system_commands(app.screen)}
            assert "(key: p)" in commands["Run / pause"]
    finally:
        app.shutdown_sessions()


@pytest.mark.parametrize("text, expect", [
    ('[keymap]\nrun_pause = "p"\n', ["keymap.toml:2: [keymap] run_pause: unknown binding id", "Did you mean toggle"]),
    ('[keymap]\ntoggle = "p\n', ["keymap.toml: not valid TOML", "(at line 2, column"]),
])
async def test_a_bad_keymap_is_reported_and_the_defaults_stay(registry, tmp_path, text, expect):
    app = make_app(registry, make_config(registry, *SHORT), keymap_path=_keymap(tmp_path, text))
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for_drawn(pilot, app, ("paused",))
            errors = _errors(app)
            assert len(errors) == 1 and errors[0].startswith("Keymap not applied: ")
            assert all(e in errors[0] for e in expect) and "default keys are in effect" in errors[0]
            calls = _count_toggles(app)
            await pilot.press("p")
            await pilot.pause()
            assert calls[0] == 0
            await pilot.press("space")
            assert calls[0] == 1
            await wait_until(pilot, lambda: app.session.state in ("running", "finished"), what="the run")
    finally:
        app.shutdown_sessions()


async def _reload_from_the_palette(pilot: Any) -> None:
    await pilot.press("ctrl+p")
    await paste(pilot, "Reload keymap")
    await wait_for_text(pilot, "Reload keymap")
    await pilot.press("enter")
    await wait_until(pilot, lambda: not isinstance(pilot.app.screen, CommandPalette), what="the palette to close")


async def test_the_keymap_reloads_from_the_palette(registry, tmp_path):
    path = _keymap(tmp_path, '[keymap]\ntoggle = "p"\n')
    app = make_app(registry, make_config(registry, *SHORT), keymap_path=path)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for_drawn(pilot, app, ("paused",))
            calls = _count_toggles(app)
            # edited while the app runs: the new key works after a reload, the old one no longer
            path.write_text('[keymap]\ntoggle = "o"\n')
            await _reload_from_the_palette(pilot)
            assert app.keymap == {"toggle": "o"} and "o" in app.screen.active_bindings
            await pilot.press("p")
            await pilot.pause()
            assert calls[0] == 0
            await pilot.press("o")
            assert calls[0] == 1
            await pilot.press("o")  # pause again
            # a file with a problem changes nothing and says why
            path.write_text('[keymap]\ntoggle = "o\n')
            await _reload_from_the_palette(pilot)
            assert any(e.startswith("Keymap not reloaded: ") and "not valid TOML" in e for e in _errors(app))
            assert app.keymap == {"toggle": "o"} and "o" in app.screen.active_bindings
            # an empty keymap gives the default keys back
            path.write_text("[keymap]\n")
            await _reload_from_the_palette(pilot)
            assert app.keymap == {} and "space" in app.screen.active_bindings and "o" not in app.screen.active_bindings
    finally:
        app.shutdown_sessions()


async def test_the_footer_is_rebuilt_when_its_keys_change_and_only_then(registry, tmp_path):
    from textual.widgets._footer import FooterKey

    path = _keymap(tmp_path, "[keymap]\n")
    app = make_app(registry, make_config(registry, *SHORT), keymap_path=path)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for_drawn(pilot, app, ("paused",))
            run = app.screen
            before = list(run.query(FooterKey))
            assert any(k.key == "space" for k in before)
            for key, screen in (("1", "config"), ("2", "run"), ("1", "config"), ("2", "run")):
                await pilot.press(key)
                await wait_until(pilot, lambda screen=screen: app.current_mode == screen, what=screen)
            await pilot.pause()
            assert list(run.query(FooterKey)) == before  # the same widgets: switching screens rebuilt nothing
            path.write_text('[keymap]\ntoggle = "p"\n')
            await _reload_from_the_palette(pilot)
            await wait_for_screen(pilot, lambda t: re.search(r"\bp Run/Pause", t) is not None, "the footer's p")
            assert not any(k.key == "space" for k in run.query(FooterKey))
    finally:
        app.shutdown_sessions()


async def test_help_remapped_to_f2_names_no_other_key(registry, tmp_path):
    """The help action's text names no key: remapped to f2, nothing says F1."""
    app = make_app(registry, make_config(registry, *SHORT), keymap_path=_keymap(tmp_path, '[keymap]\nhelp = "f2"\n'))
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for_drawn(pilot, app, ("paused",))
            assert _errors(app) == []
            commands = {c.title: c.help for c in app.get_system_commands(app.screen)}
            assert commands["Help"].endswith("(key: f2)") and "F1" not in commands["Help"]
            await pilot.press("f2")
            await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), what="the help")
            text = await wait_for_screen(pilot, lambda t: re.search(r"\bf2\s+Help", t) is not None, "the help's f2")
            assert "F1" not in text
    finally:
        app.shutdown_sessions()
