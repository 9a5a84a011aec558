#!/usr/bin/env bash
# Runs the layer's unit and interop tests on Python 3.11 (the oldest Python Sealgate supports; Lambda runs
# 3.13) in .venv311/. Without a Python 3.11 it says so and, in CI, fails.
set -euo pipefail
cd "$(dirname "$0")/.."

py=""
if command -v pyenv >/dev/null 2>&1; then
  for d in $(ls -d "$(pyenv root)"/versions/3.11* 2>/dev/null | sort -V -r); do
    [ -x "$d/bin/python3.11" ] && { py="$d/bin/python3.11"; break; }
  done
fi
[ -n "$py" ] || py=$(command -v python3.11 || true)
if [ -z "$py" ]; then
  echo "compat: no Python 3.11 found; the 3.11 run is skipped" >&2
  [ "${CI:-}" = "true" ] && exit 1
  exit 0
fi
if [ ! -x .venv311/bin/python ] || [ pyproject.toml -nt .venv311/.installed ]; then
  "$py" -m venv .venv311
  .venv311/bin/python -m pip install --quiet --upgrade pip 2>/dev/null || true
  .venv311/bin/python -m pip install --quiet -e '.[dev]' 2>&1 | grep -v "^WARNING: Location" || true
  touch .venv311/.installed
fi
.venv311/bin/python -m pytest -q -n 2 -p no:cacheprovider tests/unit tests/interop
