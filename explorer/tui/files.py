"""What a file dialog may write over: a pgtable-explorer config, never another program's TOML
(``pyproject.toml``), and an existing file only when the user says so."""

from __future__ import annotations

import tomllib
from pathlib import Path

from explorer.config import TOP_KEYS


def not_a_config(path: str | Path) -> str | None:
    """Why the existing file ``path`` is not a pgtable-explorer config (so a save must not replace
    it), or None when it is one or does not exist.

    A config is TOML whose top-level keys are all config keys (``schema``, ``run``, ``kernel``,
    ...); a config with a bad value is still a config (saving over it is how it gets fixed).
    """
    p = Path(path)
    if not p.is_file():
        return None if not p.exists() else f"{p} is not a file"
    try:
        raw = tomllib.loads(p.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return f"{p} is not a pgtable-explorer config (not a TOML file); give another name"
    foreign = [k for k in raw if k not in TOP_KEYS]
    if foreign:
        return (f"{p} is not a pgtable-explorer config (it has " + ", ".join(f"[{k}]" for k in foreign[:4])
                + "; a config has only " + ", ".join(TOP_KEYS) + "); give another name")
    return None


def looks_like_config(path: Path) -> bool:
    """For the save dialog's list: offer only files a save may replace."""
    return not_a_config(path) is None
