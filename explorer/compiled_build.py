"""Build the optional compiled core (``python -m explorer.compiled_build``; ``make setup`` runs it).

    python -m explorer.compiled_build [--if-stale] [--force]

Compiles the modules of :data:`explorer.compiled.MODULES` with mypyc into ``build/core/`` and writes
the manifest :mod:`explorer.compiled` checks (the SHA-256 of every source the build read). It never
fails the set-up: without a working C compiler (or the Python headers), or when the build fails, it
says so in one line and the explorer runs its pure-Python core, which gives the same results.

Why a step of its own rather than a build hook: the package is installed editable (the checkout is
what runs), the checkout has two top-level packages (``explorer`` and ``plugins``) that mypyc's
command line refuses to compile in place, and a failed compile must not fail ``pip install``. So
the sources are copied to a scratch folder laid out as a package, compiled there by
``mypyc.build.mypycify`` and setuptools' ``build_ext``, and only the extension modules and the
manifest land in ``build/core/``: nothing is written into the source tree, and nothing built is
committed (``build/`` is ignored).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from explorer import compiled
from explorer.compiled import MANIFEST, MODULES, PURE_ENV, read_status, source_digest

ROOT = Path(compiled.ROOT)
BUILD_DIR = Path(compiled.BUILD_DIR)

#: The setup script run in the scratch folder (a child process: setuptools and mypyc stay out of
#: the caller, and their output goes to the build log).
SETUP_PY = """\
import sys
from setuptools import setup
from mypyc.build import mypycify

paths = sys.argv[1:]
sys.argv[1:] = ["build_ext", "--inplace"]
setup(name="pgtable-explorer-core", ext_modules=mypycify(paths + ["--ignore-missing-imports"], opt_level="3"))
"""


def _module_file(name: str, root: Path = ROOT) -> Path:
    return root / Path(*name.split(".")).with_suffix(".py")


def _explorer_imports(path: Path) -> set[str]:
    """The ``explorer`` modules a source imports (``from explorer.x import y`` may name a module ``y``)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("explorer.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("explorer") and not node.level:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in out if _module_file(m).is_file() or (ROOT / Path(*m.split("."))).is_dir()}


def sources() -> list[str]:
    """Every explorer source the compiled modules depend on (themselves and what they import,
    transitively), relative to the checkout: the build is stale when one of them changes (mypyc
    may copy a constant or a type from a module it does not compile)."""
    seen: set[str] = set()
    todo = list(MODULES)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        f = _module_file(name)
        if f.is_file():
            todo += _explorer_imports(f)
        parts = name.split(".")
        for i in range(1, len(parts)):  # the packages' __init__ run too
            todo.append(".".join(parts[:i]))
    files = set()
    for name in seen:
        f = _module_file(name)
        init = ROOT / Path(*name.split(".")) / "__init__.py"
        files |= {p for p in (f, init) if p.is_file()}
    return sorted(p.relative_to(ROOT).as_posix() for p in files)


def compiler_problem() -> str | None:
    """Why no extension module can be built here (no C compiler, no Python headers), or None."""
    cc = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    include = sysconfig.get_paths()["include"]
    if not (Path(include) / "Python.h").is_file():
        return f"no Python headers ({include}/Python.h; install the python3-dev package)"
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "probe.c"
        src.write_text("#include <Python.h>\nint probe(void) { return 0; }\n")
        try:
            res = subprocess.run([*cc, "-c", str(src), "-I", include, "-o", str(Path(tmp) / "probe.o")],
                                 capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"no working C compiler ({' '.join(cc)}: {exc})"
        if res.returncode != 0:
            first = (res.stderr.strip().splitlines() or [f"exit status {res.returncode}"])[0]
            return f"no working C compiler ({' '.join(cc)}: {first})"
    return None


def build(out: Path = BUILD_DIR, log: Path | None = None) -> str | None:
    """Build the compiled core into ``out`` (replacing what is there only on success). Returns
    None, or why it was not built (one line)."""
    problem = compiler_problem()
    if problem:
        return problem
    try:
        import mypyc  # noqa: F401
        import setuptools  # noqa: F401
    except ImportError as exc:
        return f"{exc.name} is not installed (pip install mypy setuptools)"
    srcs = sources()
    out.parent.mkdir(parents=True, exist_ok=True)
    log = log or out.parent / "core-build.log"
    scratch = Path(tempfile.mkdtemp(prefix="core-", dir=out.parent))
    try:
        for rel in srcs:  # the compiled modules and everything they import from explorer
            target = scratch / "src" / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / rel, target)
        (scratch / "src" / "setup.py").write_text(SETUP_PY)
        paths = [_module_file(m, Path(".")).as_posix() for m in MODULES]
        env = {**os.environ, PURE_ENV: "1"}
        with log.open("w") as fh:
            res = subprocess.run([sys.executable, "setup.py", *paths], cwd=scratch / "src", stdout=fh,
                                 stderr=subprocess.STDOUT, env=env)
        if res.returncode != 0:
            return f"the mypyc build failed (exit status {res.returncode}; see {log})"
        stage = scratch / "core"
        extensions: dict[str, str] = {}
        suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
        for so in sorted((scratch / "src").rglob("*" + suffix)):
            so_rel = so.relative_to(scratch / "src")
            name = so_rel.as_posix()[: -len(suffix)].replace("/", ".")
            if name not in MODULES and not (len(so_rel.parts) == 1 and name.endswith("__mypyc")):
                continue  # setuptools' own copies under build/
            (stage / so_rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(so, stage / so_rel)
            extensions[name] = so_rel.as_posix()
        if not set(MODULES) <= set(extensions):
            return f"the mypyc build made no module for {', '.join(sorted(set(MODULES) - set(extensions)))} (see {log})"
        import mypy.version

        manifest = {
            "format": 1,
            "cache_tag": sys.implementation.cache_tag,
            "mypyc": mypy.version.__version__,
            "built": time.strftime("%Y-%m-%d %H:%M:%S"),
            "modules": list(MODULES),
            "extensions": extensions,
            # the digests of the sources as they were copied (an edit during the build makes it stale)
            "sources": {rel: source_digest(scratch / "src" / rel) for rel in srcs},
        }
        (stage / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        old = Path(tempfile.mkdtemp(prefix="core-old-", dir=out.parent))
        try:
            if out.exists():
                out.rename(old / "core")  # a running process keeps its mapped files; new ones see the new build
            stage.rename(out)
        except OSError as exc:  # another build (a second make) swapped at the same moment
            return f"could not put the build in place ({exc}); run make setup again"
        finally:
            shutil.rmtree(old, ignore_errors=True)
        return None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


#: Where a failed build records the sources it failed on: ``--if-stale`` (``make``) does not try
#: again until one of them changes (a build takes a minute; make runs this before every test run).
FAILED = BUILD_DIR.parent / "core-failed.json"


def _digests() -> dict[str, str]:
    return {rel: source_digest(ROOT / rel) for rel in sources()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m explorer.compiled_build", description=__doc__.splitlines()[0])
    ap.add_argument("--if-stale", action="store_true",
                    help="build only when there is no fresh build (and no failed attempt on the same sources)")
    args = ap.parse_args(argv)
    say = "compiled core: not built: {}; running the pure-Python core (same results, slower)"
    if args.if_stale:
        if read_status(env_pure=False).compiled:
            return 0
        try:
            failed = json.loads(FAILED.read_text())
        except (OSError, ValueError):
            failed = None
        if failed and failed.get("sources") == _digests() and failed.get("python") == sys.implementation.cache_tag:
            again = " (on these same sources: `python -m explorer.compiled_build` tries again)"
            print(say.format(failed["why"] + again))
            return 0
    problem = compiler_problem()
    if problem:
        print(say.format(problem))
        return 0
    t = time.perf_counter()
    print("compiled core: building with mypyc (a minute or two; the pure-Python core works meanwhile) ...",
          flush=True)
    why = build()
    if why:
        print(say.format(why))
        FAILED.write_text(json.dumps({"why": why, "python": sys.implementation.cache_tag, "sources": _digests()}))
    else:
        FAILED.unlink(missing_ok=True)
        print(f"compiled core: built in {time.perf_counter() - t:.0f} s into {BUILD_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
