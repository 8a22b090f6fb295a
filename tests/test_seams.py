"""The seams between modules (issue 14): no module of explorer/ imports another module's private
names, and the command line is a package of small modules with one home per name."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


_IMPORT = re.compile(r"^[ \t]*from[ \t]+(explorer[\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n]*)", re.MULTILINE)


def private_imports(package: Path) -> list[str]:
    """``file:line: from M import _name`` for every import of a private name from another module
    (a regular expression, not a parse: the whole tree in milliseconds)."""
    base = package.parent
    found = []
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(base).with_suffix("").parts)
        here = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        text = path.read_text(encoding="utf-8")
        for m in _IMPORT.finditer(text):
            if m.group(1) == here:
                continue
            names = re.sub(r"#[^\n]*", "", m.group(2)).strip("()")
            for item in names.split(","):
                name = item.split(" as ")[0].strip()
                if name.startswith("_") and not name.startswith("__"):
                    line = text.count("\n", 0, m.start()) + 1
                    found.append(f"{path.relative_to(base)}:{line}: from {m.group(1)} import {name}")
    return found


def test_no_module_imports_another_modules_private_names() -> None:
    assert private_imports(ROOT / "explorer") == []


def test_the_check_sees_a_private_import(tmp_path: Path) -> None:
    pkg = tmp_path / "explorer"
    pkg.mkdir()
    (pkg / "a.py").write_text("def _helper():\n    pass\n")
    (pkg / "b.py").write_text("def f():\n    from explorer.a import _helper, __version__\n"
                              "    from explorer.a import (\n        x,  # a comment\n        _other as o,\n    )\n")
    (pkg / "c.py").write_text("def _own():\n    pass\n\n\nfrom explorer.c import _own\n")  # its own: fine
    assert private_imports(pkg) == ["explorer/b.py:2: from explorer.a import _helper",
                                    "explorer/b.py:3: from explorer.a import _other"]


def test_the_entry_points_still_lead_to_main() -> None:
    """pyproject's console script and ``python -m explorer`` name the CLI's main()."""
    import tomllib

    from explorer.cli import main
    from explorer.cli.main import main as real_main

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, attr = scripts["pgtable-explorer"].partition(":")
    assert getattr(__import__(module, fromlist=[attr]), attr) is main is real_main
    assert "from explorer.cli import main" in (ROOT / "explorer" / "__main__.py").read_text()
