"""The compiled hot modules (seismo/native.py): used only while current, and the same results."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from seismo import native

PROBE = Path(__file__).with_name("native_probe.py")


def _manifest(directory: Path, sources: dict[str, str], abi: str | None = None) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    manifest = {"format": native.FORMAT, "abi": abi or native._abi(), "mypyc": "test",
                "group": "abc__mypyc", "sources": sources}
    (directory / native.MANIFEST).write_text(json.dumps(manifest))
    for module in ["abc__mypyc", *sources]:
        extension = native._extension(directory, module)
        extension.parent.mkdir(parents=True, exist_ok=True)
        extension.write_bytes(b"")


def _digest(module: str) -> str:
    return native._digest(native.source_of(module))


def test_a_build_matching_every_source_is_active(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEISMO_NATIVE", raising=False)
    _manifest(tmp_path, {m: _digest(m) for m in ("models.rolling", "models.quantile")})
    status = native.check(tmp_path)
    assert status.active and status.modules == ("models.rolling", "models.quantile")
    assert status.group == "abc__mypyc"


def test_a_source_edited_after_the_build_turns_the_whole_set_off_and_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SEISMO_NATIVE", raising=False)
    _manifest(tmp_path, {"models.rolling": _digest("models.rolling"), "models.quantile": "0" * 64})
    status = native.check(tmp_path)
    assert status.state == "stale" and not status.active
    assert "models/quantile.py changed since the build" in status.reason
    assert "python -m seismo.native build" in status.reason


@pytest.mark.parametrize(("setup", "state", "words"), [
    ("nothing", "missing", "not built"),
    ("other abi", "unusable", "built for .cpython-399"),
    ("garbage", "unusable", "cannot read"),
    ("no extension", "unusable", "is missing"),
])
def test_a_missing_foreign_or_broken_build_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setup: str, state: str, words: str,
) -> None:
    monkeypatch.delenv("SEISMO_NATIVE", raising=False)
    if setup == "other abi":
        _manifest(tmp_path, {"models.rolling": _digest("models.rolling")}, abi=".cpython-399-x.so")
    elif setup == "garbage":
        tmp_path.joinpath(native.MANIFEST).write_text("{not json")
    elif setup == "no extension":
        _manifest(tmp_path, {"models.rolling": _digest("models.rolling")})
        native._extension(tmp_path, "models.rolling").unlink()
    status = native.check(tmp_path)
    assert status.state == state and words in status.reason


def test_seismo_native_0_turns_a_good_build_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _manifest(tmp_path, {"models.rolling": _digest("models.rolling")})
    monkeypatch.setenv("SEISMO_NATIVE", "0")
    assert native.check(tmp_path).state == "off"


def test_status_says_which_form_runs_and_require_fails_without_a_build(tmp_path: Path) -> None:
    env = {**os.environ, "SEISMO_NATIVE_DIR": str(tmp_path / "none")}
    done = subprocess.run([sys.executable, "-m", "seismo.native", "status", "--require"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "native modules: missing: not built" in done.stdout


# -- with the real build (scripts/setup.sh makes it; without a C compiler it is absent) --------------

BUILT = native.check()
needs_build = pytest.mark.skipif(not BUILT.active, reason=f"no compiled modules here: {BUILT.reason}")


def _probe(**env: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, str(PROBE)], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    result["stderr"] = done.stderr
    return result


@needs_build
def test_the_compiled_modules_give_byte_for_byte_what_the_source_gives() -> None:
    compiled, source = _probe(SEISMO_NATIVE="1"), _probe(SEISMO_NATIVE="0")
    assert compiled["native"] is True and source["native"] is False
    assert compiled["anomalies"] and compiled["metric_flags"]  # the probe exercises every path
    assert compiled["digest"] == source["digest"]
    assert {k: compiled[k] for k in ("events", "enriched", "anomalies", "metric_flags")} == \
        {k: source[k] for k in ("events", "enriched", "anomalies", "metric_flags")}


@needs_build
def test_a_stale_build_runs_the_source_with_one_warning(tmp_path: Path) -> None:
    copy = tmp_path / "native"
    shutil.copytree(BUILT.directory, copy)
    manifest = json.loads((copy / native.MANIFEST).read_text())
    manifest["sources"]["models.rolling"] = "0" * 64
    (copy / native.MANIFEST).write_text(json.dumps(manifest))
    result = _probe(SEISMO_NATIVE_DIR=str(copy))
    assert result["native"] is False
    assert "compiled modules not used, the pure-Python ones run: models/rolling.py changed" in str(
        result["stderr"])
    script = "import models.rolling as m, stream_processors.score.scorer as s; print(m.__file__, s.__file__)"
    done = subprocess.run([sys.executable, "-c", script], env={**os.environ, "SEISMO_NATIVE_DIR": str(copy)},
                          capture_output=True, text=True, timeout=60, check=True)
    assert all(path.endswith(".py") for path in done.stdout.split())


@needs_build
def test_a_current_build_serves_every_listed_module_compiled() -> None:
    script = ("import importlib, json; from seismo.native import MODULES; "
              "print(json.dumps({m: importlib.import_module(m).__file__ for m in MODULES}))")
    done = subprocess.run([sys.executable, "-c", script], env={**os.environ, "SEISMO_NATIVE": "1"},
                          capture_output=True, text=True, timeout=60, check=True)
    files = json.loads(done.stdout)
    assert set(files) == set(native.MODULES)
    assert all(str(path).startswith(str(BUILT.directory)) and str(path).endswith(native._abi())
               for path in files.values()), files


def test_a_build_of_one_module_is_served_from_its_directory_and_vouched_for_by_its_manifest(
    tmp_path: Path,
) -> None:
    pytest.importorskip("mypyc.build", reason="mypyc (package mypy) builds the compiled modules")
    if not shutil.which("cc") and not shutil.which("gcc"):
        pytest.skip("no C compiler")
    target = tmp_path / "native"
    status = native.build(target, modules=("models.quantile",), jobs=1)
    assert status.active and status.modules == ("models.quantile",), status.reason
    manifest = json.loads((target / native.MANIFEST).read_text())
    assert manifest["sources"] == {"models.quantile": _digest("models.quantile")}
    script = "import models.quantile as q, models.rolling as r; print(q.__file__); print(r.__file__)"
    env = {**os.environ, "SEISMO_NATIVE_DIR": str(target)}
    done = subprocess.run([sys.executable, "-c", script], env=env,
                          capture_output=True, text=True, timeout=60, check=True)
    compiled, source = done.stdout.split()
    assert compiled == str(native._extension(target, "models.quantile"))
    assert source.endswith("models/rolling.py")  # not in this build: the source runs


def test_status_require_asks_for_a_rebuild_when_a_module_was_added_to_the_list_since(tmp_path: Path) -> None:
    _manifest(tmp_path, {"models.rolling": _digest("models.rolling")})
    env = {**os.environ, "SEISMO_NATIVE_DIR": str(tmp_path), "SEISMO_NATIVE": "1"}
    done = subprocess.run([sys.executable, "-m", "seismo.native", "status", "--require"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "native modules: active: 1 modules" in done.stdout
    assert "not in this build (they run as Python): models.robust_zscore" in done.stdout
