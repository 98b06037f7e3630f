"""Compiled forms of the hot pure-Python modules (mypyc), used only while they match the source.

The steps spend most of their CPU in plain, fully typed Python: the metric detectors,
the score step's windows, the normalizer's masking, templating and redaction.  mypyc
compiles exactly that code (the same source, type-checked by mypy) to C extensions
that run it 1.5-2x faster with the same results (``docs/decisions.md``, "Compiled hot
modules").  The compiled modules are an optional build, never a requirement:

* ``python -m seismo.native build`` (run by ``scripts/setup.sh``) compiles
  :data:`MODULES` into ``build/native/`` of the checkout (``SEISMO_NATIVE_DIR`` elsewhere)
  and writes a manifest with each source file's SHA-256;
* :func:`install` (called by the ``models`` and ``stream_processors`` packages when they
  are imported) puts a finder in front of the import system that serves the compiled
  modules, but only when the manifest matches this interpreter and *every* listed source
  file as it is now.  A source edited after the build turns the whole set off (the
  modules call each other natively, so a partial set would mix old and new code), with one
  warning naming the file and the command that rebuilds;
* ``SEISMO_NATIVE=0`` turns them off; ``python -m seismo.native status`` (and
  ``seismo doctor``) says which form runs.

Without a C compiler, Python headers or mypy the build says why and Seismo runs the
pure-Python modules, which are the reference: the tests compare the two.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import logging
import os
import sys
import sysconfig
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
"""The directory holding the project's packages (the checkout, for an editable install)."""

MODULES: tuple[str, ...] = (
    # the metric detectors (score step, ``seismo detect``)
    "models.rolling", "models.robust_zscore", "models.quantile", "models.decision",
    "models.features", "models.series", "models.features_events", "models.iqr",
    # the score step
    "stream_processors.score.scorer", "stream_processors.score.service",
    "stream_processors.score.observation", "stream_processors.score.adapter",
    # the normalize step: redaction, masking, templating, the record splice
    "stream_processors.normalize.normalizer", "stream_processors.normalize.screen",
    "stream_processors.normalize.screen_tokens", "stream_processors.normalize.splice",
    "stream_processors.normalize.durable", "stream_processors.normalize.adapter",
    "stream_processors.normalize.templating.masking", "stream_processors.normalize.templating.miner",
    "stream_processors.normalize.templating.tokens", "stream_processors.normalize.templating.groups",
    "stream_processors.normalize.templating.align", "stream_processors.normalize.templating.registry",
    "stream_processors.normalize.redaction.detectors", "stream_processors.normalize.redaction.entropy",
    "stream_processors.normalize.redaction.patterns", "stream_processors.normalize.redaction.redactor",
    "stream_processors.runtime.records",
)
"""What is compiled: modules on the per-event path, each plain typed Python (no
``__file__``, no runtime-checkable protocols, not monkeypatched)."""

PACKAGES = ("seismo", "models", "stream_processors", "schemas", "producers", "mcp_gateway")
"""The project's packages, which the compiled modules import (and mypy reads) from one tree."""

MANIFEST = "manifest.json"
FORMAT = 1


def native_dir() -> Path:
    """Where the compiled modules live: ``SEISMO_NATIVE_DIR``, else ``build/native`` of the checkout."""
    configured = os.environ.get("SEISMO_NATIVE_DIR")
    return Path(configured) if configured else ROOT / "build" / "native"


def source_of(module: str) -> Path:
    return ROOT.joinpath(*module.split(".")).with_suffix(".py")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _abi() -> str:
    return str(sysconfig.get_config_var("EXT_SUFFIX"))


@dataclass(frozen=True)
class Status:
    """Which form runs, and why: ``state`` is active, off, missing, stale or unusable."""

    state: str
    reason: str
    directory: Path
    modules: tuple[str, ...] = ()
    group: str | None = None

    @property
    def active(self) -> bool:
        return self.state == "active"

    def group_and_modules(self) -> tuple[str, ...]:
        """Every extension of the build: mypyc's shared library (which the others import), the modules."""
        return (*([self.group] if self.group else []), *self.modules)


def check(directory: Path | None = None) -> Status:
    """Whether the compiled modules in ``directory`` may be used now (reads the manifest and hashes
    the listed sources: about a millisecond)."""
    where = directory or native_dir()
    if os.environ.get("SEISMO_NATIVE", "1").strip().lower() in {"0", "false", "no", "off"}:
        return Status("off", "SEISMO_NATIVE=0", where)
    path = where / MANIFEST
    try:
        manifest = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return Status("missing", f"not built (no {path}): `python -m seismo.native build`", where)
    except (OSError, ValueError) as exc:
        return Status("unusable", f"cannot read {path}: {exc}", where)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return Status("unusable", f"{path} is not a manifest of format {FORMAT}", where)
    if manifest.get("abi") != _abi():
        return Status("unusable", f"built for {manifest.get('abi')}, this interpreter loads {_abi()}", where)
    sources = manifest.get("sources")
    group = manifest.get("group")
    if not isinstance(sources, dict) or not isinstance(group, str) or not sources:
        return Status("unusable", f"{path} lists no modules", where)
    for module, digest in sources.items():
        source = source_of(module)
        try:
            changed = _digest(source) != digest
        except OSError:
            return Status("stale", f"{source.relative_to(ROOT)} is gone since the build", where)
        if changed:
            return Status("stale", f"{source.relative_to(ROOT)} changed since the build: "
                                   "`python -m seismo.native build` compiles it again", where)
    for module in (group, *sources):
        if not _extension(where, module).is_file():
            return Status("unusable", f"{_extension(where, module)} is missing", where)
    return Status("active", f"{len(sources)} modules compiled by mypyc {manifest.get('mypyc', '?')}",
                  where, tuple(sources), group)


def _extension(directory: Path, module: str) -> Path:
    return directory.joinpath(*module.split(".")).with_name(module.rsplit(".", 1)[-1] + _abi())


class _Finder(importlib.abc.MetaPathFinder):
    """Serves the compiled form of each module of an active build (and mypyc's shared library)."""

    def __init__(self, status: Status) -> None:
        assert status.group is not None
        self.paths = {m: _extension(status.directory, m) for m in status.group_and_modules()}

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        file = self.paths.get(fullname)
        if file is None:
            return None
        loader = importlib.machinery.ExtensionFileLoader(fullname, str(file))
        return importlib.util.spec_from_file_location(fullname, file, loader=loader)


_installed: Status | None = None


def install() -> Status:
    """Serve the compiled modules when :func:`check` allows it; idempotent, never raises."""
    global _installed
    if _installed is not None:
        return _installed
    try:
        status = check()
    except Exception as exc:  # a broken build must never stop Seismo: the source runs
        status = Status("unusable", f"{exc.__class__.__name__}: {exc}", native_dir())
    if status.active:
        loaded = [m for m in status.modules if m in sys.modules]
        if loaded:  # imported before the finder: mixing forms would mix old and new code
            status = Status("unusable", f"{loaded[0]} was imported before the compiled modules were "
                                        "installed", status.directory)
        else:
            sys.meta_path.insert(0, _Finder(status))
    elif status.state in {"stale", "unusable"}:
        log.warning("compiled modules not used, the pure-Python ones run: %s", status.reason)
    _installed = status
    return status


def active() -> bool:
    """Whether this process runs the compiled modules."""
    return _installed is not None and _installed.active


# -- building ---------------------------------------------------------------------------------------


class BuildError(RuntimeError):
    """The compiled modules could not be built (the pure-Python ones still run)."""


@contextmanager
def _captured(path: Path) -> Iterator[None]:
    """File descriptors 1 and 2 (this process's and the compilers' it runs) go to ``path``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with path.open("wb") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def build(directory: Path | None = None, modules: Sequence[str] = MODULES, jobs: int | None = None) -> Status:
    """Compile ``modules`` with mypyc into ``directory`` and write its manifest; raises BuildError.

    The C sources go to a temporary directory; the old build is replaced only once the
    new one is complete, so a failed build leaves the previous state (and a stale one is
    simply not used)."""
    import shutil
    import tempfile

    where = directory or native_dir()
    try:
        from mypyc.build import mypycify  # mypy's compiler ships with mypy
        from setuptools import Distribution
    except ImportError as exc:
        raise BuildError(f"mypyc (package mypy) and setuptools are needed to build: {exc}") from None
    compiler = str(sysconfig.get_config_var("CC") or "cc").split()[0]  # what distutils will run
    if not shutil.which(compiler):
        raise BuildError(f"no C compiler found ({compiler}; install gcc)")
    include = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not include.is_file():
        raise BuildError(f"the Python headers are missing ({include}; install python3.11-dev)")
    sources = {m: source_of(m) for m in modules}
    if missing := [str(p) for p in sources.values() if not p.is_file()]:
        raise BuildError(f"no such source: {', '.join(missing)}")
    where.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="seismo-native-", dir=where.parent) as tmp:
        work, out, src = Path(tmp) / "c", Path(tmp) / "out", Path(tmp) / "src"
        # The packages are compiled from a copy: where they are installed (site-packages) mypy
        # would take every installed module for the project's own; the copy is what the manifest
        # vouches for, byte for byte.
        for package in PACKAGES:
            if (ROOT / package / "__init__.py").is_file():
                shutil.copytree(ROOT / package, src / package,
                                ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyc"))
        if (ROOT / "pyproject.toml").is_file():  # [tool.mypy], when building a checkout
            shutil.copy2(ROOT / "pyproject.toml", src / "pyproject.toml")
        cwd = Path.cwd()
        transcript = Path(tmp) / "build.log"
        os.chdir(src)  # mypyc names modules by their paths
        try:
            with _captured(transcript):  # mypyc's and every compiler line; shown when it fails
                relative = [str(p.relative_to(ROOT)) for p in sources.values()]
                # Type errors that only a missing stub package makes (an image has no dev stubs)
                # must not stop the build: unresolved imports are Any, which compiles the same.
                flags = ["--ignore-missing-imports", "--no-warn-unused-ignores"]
                extensions = mypycify([*flags, *relative], opt_level="3", target_dir=str(work))
                dist = Distribution({"name": "seismo-native", "ext_modules": extensions})
                dist.script_args = ["build_ext", "--build-lib", str(out), "--build-temp", str(work / "obj"),
                                    "--parallel", str(jobs or os.cpu_count() or 1)]
                dist.parse_command_line()
                dist.run_commands()
        except (SystemExit, Exception) as exc:  # distutils reports compiler errors as SystemExit
            tail = transcript.read_text("utf-8", "replace").strip().splitlines()[-15:]
            why = f"{exc.__class__.__name__}: {exc}"
            raise BuildError(f"compiling failed ({why}):\n" + "\n".join(tail)) from None
        finally:
            os.chdir(cwd)
        # mypyc's shared library: top-level for several modules, beside the module for one
        groups = [".".join(p.relative_to(out).parts)[: -len(_abi())] for p in out.rglob(f"*__mypyc{_abi()}")]
        if len(groups) != 1:
            raise BuildError(f"expected one mypyc shared library in the build, found {groups}")
        from mypy.version import __version__ as mypy_version

        manifest = {
            "format": FORMAT, "abi": _abi(), "mypyc": mypy_version, "group": groups[0],
            "sources": {m: _digest(src / p.relative_to(ROOT)) for m, p in sources.items()},
        }
        (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", "utf-8")
        if where.exists():
            shutil.rmtree(where)
        shutil.move(str(out), where)
    return check(where)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m seismo.native",
        description="Build or inspect the compiled (mypyc) forms of Seismo's hot modules. "
                    "Seismo runs the same code as pure Python when they are absent or stale.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="compile the hot modules (about a minute on 2 cores)")
    b.add_argument("--dir", type=Path, default=None, help="where to put them (default: build/native)")
    b.add_argument("--jobs", type=int, default=None, help="parallel C compiler jobs (default: CPUs)")
    b.add_argument("--if-possible", action="store_true",
                   help="exit 0 when the build cannot run here (no compiler, headers or mypyc)")
    s = sub.add_parser("status", help="say whether the compiled modules are used, and why")
    s.add_argument("--dir", type=Path, default=None)
    s.add_argument("--require", action="store_true", help="exit 1 unless they are used")
    args = parser.parse_args(argv)
    if args.command == "build":
        print(f"compiling {len(MODULES)} modules with mypyc …", file=sys.stderr, flush=True)
        try:
            status = build(args.dir, jobs=args.jobs)
        except BuildError as exc:
            print(f"native build: {exc}; Seismo runs the pure-Python modules", file=sys.stderr)
            return 0 if args.if_possible else 1
        print(f"native build: {status.state}: {status.reason} in {status.directory}")
        return 0 if status.active else 1
    status = check(args.dir)
    print(f"native modules: {status.state}: {status.reason} ({status.directory})")
    if status.active and (left := [m for m in MODULES if m not in status.modules]):
        # a module added to MODULES since the build runs as Python: --require asks for a rebuild
        print(f"not in this build (they run as Python): {', '.join(left)}")
        return 1 if args.require else 0
    return 1 if args.require and not status.active else 0


if __name__ == "__main__":
    raise SystemExit(main())
