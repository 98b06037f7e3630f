#!/usr/bin/env bash
# Run Seismo's checks: ruff, mypy --strict, and pytest against a real Kafka and Redis.
# Starts the local broker and redis-server unless SEISMO_KAFKA_BOOTSTRAP / SEISMO_REDIS_URL
# are set, and stops only what it started.  Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SEISMO_VENV:-.venv}"
SEISMO="$VENV/bin/seismo"

started=()
cleanup() {
  for svc in "${started[@]}"; do "$SEISMO" "$svc" stop || true; done
}
trap cleanup EXIT

if [ -z "${SEISMO_KAFKA_BOOTSTRAP:-}" ]; then
  if ! "$SEISMO" kafka status >/dev/null 2>&1; then
    "$SEISMO" kafka start
    started+=(kafka)
  fi
fi
if [ -z "${SEISMO_REDIS_URL:-}" ]; then
  if ! "$SEISMO" redis status >/dev/null 2>&1; then
    "$SEISMO" redis start
    started+=(redis)
  fi
fi

echo "== ruff"
"$VENV/bin/ruff" check .
echo "== mypy --strict"
"$VENV/bin/mypy"
echo "== pytest"
"$VENV/bin/pytest" "$@"
