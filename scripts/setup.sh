#!/usr/bin/env bash
# Creates .venv/ at the repository root (Python 3.13 where pyenv or PATH has it, else any Python >= 3.11)
# and installs the layer package (editable) with the development tools.
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {
  local candidates=()
  if command -v pyenv >/dev/null 2>&1; then
    local root
    root=$(pyenv root)
    for d in $(ls -d "$root"/versions/3.13* 2>/dev/null | sort -V -r); do
      candidates+=("$d/bin/python3.13")
    done
  fi
  candidates+=(python3.13 python3.12 python3.11 python3)
  for py in "${candidates[@]}"; do
    if command -v "$py" >/dev/null 2>&1 &&
       "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      echo "$py"
      return 0
    fi
  done
  return 1
}

if [ ! -x .venv/bin/python ]; then
  py=$(find_python) || { echo "setup: no Python >= 3.11 found (Lambda runs python3.13; install it with pyenv)" >&2; exit 1; }
  version=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  if [ "$version" != "3.13" ]; then
    echo "setup: Python 3.13 (the Lambda runtime) not found; using Python $version instead" >&2
  fi
  "$py" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip 2>/dev/null || true
.venv/bin/python -m pip install --quiet -e '.[dev]'
echo "setup: .venv ready ($(.venv/bin/python --version)); try: .venv/bin/python -m sealgate --help"
