"""No code path that reads Kafka or Redis can unpickle: a test that reads the source.

Deserializers that run code named by their input (pickle and its relatives,
``numpy.load(allow_pickle=True)``, ``pandas.read_pickle``, ``torch.load`` without
``weights_only=True``) are found in the syntax tree of every module of the
packages that touch shared stores.  Pickling *out* (``pickle.dumps``) is allowed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("models", "stream_processors", "mcp_gateway", "producers", "seismo", "schemas")
CODE_LOADERS = {
    "pickle", "_pickle", "cPickle", "cloudpickle", "dill", "joblib", "marshal", "shelve", "jsonpickle",
}
LOADING = {"load", "loads", "Unpickler", "open", "decode"}


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def unsafe_loads(source: str, filename: str = "<source>") -> list[str]:
    """``line: what`` for every place ``source`` could deserialize code."""
    tree = ast.parse(source, filename)
    aliases: dict[str, str] = {}  # local name -> module
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                aliases[alias.asname or alias.name.split(".")[0]] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            top = node.module.split(".")[0]
            for alias in node.names:
                if top in CODE_LOADERS and alias.name in LOADING:
                    found.append(f"{node.lineno}: from {node.module} import {alias.name}")
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            module = aliases.get(func.value.id, func.value.id).split(".")[0]
            what = f"{node.lineno}: {func.value.id}.{func.attr}"
            if module in CODE_LOADERS and func.attr in LOADING:
                found.append(what)
            elif module == "numpy" and func.attr == "load":
                allow = _keyword(node, "allow_pickle")
                if not (isinstance(allow, ast.Constant) and allow.value is False) and allow is not None:
                    found.append(what + "(allow_pickle)")
            elif module == "pandas" and func.attr == "read_pickle":
                found.append(what)
            elif module == "torch" and func.attr == "load":
                safe = _keyword(node, "weights_only")
                if not (isinstance(safe, ast.Constant) and safe.value is True):
                    found.append(what + " without weights_only=True")
    return found


def _modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def test_the_scan_finds_every_shape_of_unpickling() -> None:
    source = (
        "import pickle\nimport pickle as p\nfrom dill import loads\nimport numpy as np\nimport torch\n"
        "pickle.loads(b'')\np.load(f)\nnp.load(f, allow_pickle=True)\ntorch.load(f)\n"
        "pickle.dumps(1)\nnp.load(f)\ntorch.load(f, weights_only=True)\n"
    )
    assert [line.split(":")[0] for line in unsafe_loads(source)] == ["3", "6", "7", "8", "9"]


def test_the_state_code_of_before_would_have_been_caught() -> None:
    old = "import pickle\ndef load_state(self, state):\n    loaded = pickle.loads(state)\n"
    assert unsafe_loads(old) == ["3: pickle.loads"]


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_that_reads_kafka_or_redis_can_unpickle(path: Path) -> None:
    assert unsafe_loads(path.read_text(encoding="utf-8"), str(path)) == []
