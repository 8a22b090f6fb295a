"""The user's keymap: binding ids (``explorer.tui.actions.ACTIONS``) mapped to keys, from a TOML file.

    # ~/.config/pgtable-explorer/keymap.toml
    [keymap]
    toggle = "p"          # run / pause on the Run screen
    step = "n,."          # several keys: comma-separated

The file is ``$PGTABLE_EXPLORER_KEYMAP`` if set, else ``$XDG_CONFIG_HOME/pgtable-explorer/keymap.toml``
(``~/.config`` when XDG_CONFIG_HOME is unset). The app applies it with Textual's ``App.set_keymap``,
so the footer, F1 help and the command palette show the remapped keys. A file with any problem (bad
TOML, an unknown id, a key that is not a key, two actions on one key on one screen) is not applied at
all: the default keys stay in effect and :func:`load_keymap` returns the problems as text.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from textual.keys import Keys, _normalize_key_list

from explorer.tui.actions import ACTIONS, SCREEN_TITLES, Action

ENV_VAR = "PGTABLE_EXPLORER_KEYMAP"
MODIFIERS = ("ctrl", "shift", "alt", "meta", "super", "hyper")
_KEY_NAMES = frozenset(k.value for k in Keys)


@dataclass
class KeymapResult:
    """The keymap to apply (empty when there is none or it has problems) and its problems."""

    path: Path
    keymap: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def keymap_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get(ENV_VAR):
        return Path(env[ENV_VAR]).expanduser()
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "pgtable-explorer" / "keymap.toml"


def load_keymap(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> KeymapResult:
    """Read the keymap file (``path``, else :func:`keymap_path`). A missing default file is no keymap;
    a missing file named by ``PGTABLE_EXPLORER_KEYMAP`` (or ``path``) is a problem."""
    explicit = path is not None or bool((os.environ if env is None else env).get(ENV_VAR))
    p = Path(path) if path is not None else keymap_path(env)
    result = KeymapResult(p)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        if explicit:
            result.problems.append(f"{p}: no such file (named by {ENV_VAR})" if path is None
                                   else f"{p}: no such file")
        return result
    except (OSError, UnicodeDecodeError) as exc:
        result.problems.append(f"{p}: cannot read: {getattr(exc, 'strerror', None) or exc}")
        return result
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        result.problems.append(f"{p}: not valid TOML: {exc}")  # the message ends "(at line L, column C)"
        return result
    keymap, problems = parse_keymap(data, str(p), text)
    if problems:
        result.problems = problems
    else:
        result.keymap = keymap
    return result


def parse_keymap(data: Mapping[str, object], where: str = "keymap", text: str = "") -> tuple[dict[str, str], list[str]]:
    """Check a parsed keymap file; return the normalized keymap and every problem."""
    problems: list[str] = []
    for top in data:
        if top != "keymap":
            problems.append(f"{where}{_line(text, top)}: unknown table or key {top!r}; the file holds one "
                            "[keymap] table of binding-id = \"keys\"")
    table = data.get("keymap", {})
    if not isinstance(table, Mapping):
        return {}, [*problems, f"{where}{_line(text, 'keymap')}: keymap must be a table: [keymap]"]
    by_id = {a.id: a for a in ACTIONS}
    keymap: dict[str, str] = {}
    for bid, value in table.items():
        at = f"{where}{_line(text, bid)}: [keymap] {bid}"
        if bid not in by_id:
            problems.append(f"{at}: unknown binding id.{_did_you_mean(bid)} The ids are: " + ", ".join(by_id))
            continue
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = ",".join(value)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{at}: the value must be a key as a string, e.g. \"p\" or \"ctrl+n,n\"")
            continue
        keys = _normalize_key_list(value)
        bad = [k for k in keys.split(",") if not valid_key(k)]
        if bad:
            problems.append(f"{at}: not a key: " + ", ".join(repr(k) for k in bad)
                            + " (keys are as Textual names them: p, ctrl+n, f5, space, enter, ?, ...)")
            continue
        keymap[bid] = keys
    if not problems:
        problems += clashes(keymap, where, text)
    return keymap, problems


def valid_key(key: str) -> bool:
    *mods, base = key.split("+")
    if any(m not in MODIFIERS for m in mods) or not base:
        return False
    if len(base) == 1 or base in _KEY_NAMES:
        return True
    try:
        unicodedata.lookup(base.replace("_", " ").upper())  # full_stop, question_mark, ...
    except KeyError:
        return False
    return True


def effective_key(a: Action, keymap: Mapping[str, str] | None = None) -> str:
    return (keymap or {}).get(a.id, a.key)


def clashes(keymap: Mapping[str, str], where: str = "keymap", text: str = "") -> list[str]:
    """Two actions on one key where both are in effect (a screen's own actions and the app-wide ones).

    Each problem starts ``where:LINE:`` as the others do, with the line of the file's entry that
    makes the clash (the remapped one of the two; the later one when both are)."""
    out: list[str] = []
    for screen in SCREEN_TITLES:
        seen: dict[str, Action] = {}
        for a in ACTIONS:
            if a.screen not in ("app", screen):
                continue
            for k in _normalize_key_list(effective_key(a, keymap)).split(","):
                other = seen.get(k)
                if other is not None and other.id != a.id and (a.id in keymap or other.id in keymap):
                    culprit = a.id if a.id in keymap else other.id
                    msg = (f"{where}{_line(text, culprit)}: key {k!r} is bound to both {other.id} and {a.id}"
                           + ("" if a.screen == other.screen == "app" else f" on the {SCREEN_TITLES[screen]} screen"))
                    if msg not in out:
                        out.append(msg)
                seen.setdefault(k, a)
    return out


def _did_you_mean(bid: str) -> str:
    """Close ids, and ids whose action has that name (``run_pause`` -> toggle)."""
    ids = [a.id for a in ACTIONS]
    near = difflib.get_close_matches(bid, ids, n=3, cutoff=0.6)
    norm = bid.replace("-", "_").lower()
    for a in ACTIONS:
        name = a.action.split(".", 1)[-1].split("(")[0]
        if a.id not in near and (name == norm or difflib.SequenceMatcher(None, name, norm).ratio() >= 0.8):
            near.append(a.id)
    if not near:
        return ""
    return " Did you mean " + " or ".join(f"{n} ({_where(n)})" for n in near[:4]) + "?"


def _where(bid: str) -> str:
    a = next(a for a in ACTIONS if a.id == bid)
    return f"{a.short}, " + ("everywhere" if a.screen == "app" else f"{SCREEN_TITLES[a.screen]} screen")


def _line(text: str, key: str) -> str:
    """`` line N`` where ``key`` is first assigned (or the table opens) in the file's text."""
    # [ \t]*, not \s*: a blank line before the entry must not be where it is found
    pattern = re.compile(rf"^[ \t]*(\[[ \t]*{re.escape(key)}[ \t]*\]|[\"']?{re.escape(key)}[\"']?[ \t]*=)", re.M)
    m = pattern.search(text)
    return f":{text.count(chr(10), 0, m.start()) + 1}" if m else ""
