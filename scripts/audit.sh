#!/usr/bin/env bash
# Supply-chain and policy checks (make audit), from .tools/audit/, a tool environment of its own: checkov and
# cfn-lint-serverless pin their own cfn-lint, boto3 and friends, which must stay out of .venv and .tools/sam.
#
#   scripts/audit.sh --install      create or update .tools/audit/ (Python 3.13, as scripts/sam.sh finds it)
#   scripts/audit.sh --lock         rewrite layers/crypto/requirements.lock from requirements.txt (hashes of
#                                   every wheel of each pinned version, so the arm64 layer build verifies too)
#   scripts/audit.sh [--json FILE]  run every check; prints one summary line per tool, exits 1 on any failure
#
# The checks: checkov on the SAM template after the transform (scripts/audit.py translates it offline), cfn-lint
# with the serverless rules, bandit on the code, pip-audit on the lock file, and that the lock still matches
# requirements.txt. scripts/audit.py does the work; this file only finds Python 3.13 and the tool environment.
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS=.tools/audit
# Pinned: a new release of a checker can fail a build that nothing in the repository changed.
CHECKOV_VERSION=3.3.30
CFN_LINT_SERVERLESS_VERSION=0.3.6
BANDIT_VERSION=1.9.4
PIP_AUDIT_VERSION=2.10.1
PIP_TOOLS_VERSION=7.6.2
SAM_TRANSLATOR_VERSION=1.115.0
LOCK=layers/crypto/requirements.lock

python313() {
  if command -v pyenv >/dev/null 2>&1; then
    local root d
    root=$(pyenv root)
    for d in $(ls -d "$root"/versions/3.13* 2>/dev/null | sort -V -r); do
      if [ -x "$d/bin/python3.13" ]; then
        echo "$d/bin/python3.13"
        return 0
      fi
    done
  fi
  python3.13 -c 'import sys; print(sys.executable)' 2>/dev/null
}

case "${1:-}" in
  --install)
    py=$(python313) || { echo "audit.sh: Python 3.13 not found (install it with pyenv install 3.13)" >&2; exit 1; }
    [ -x "$TOOLS/bin/python" ] || "$py" -m venv "$TOOLS"
    "$TOOLS/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    # aws-sam-translator: scripts/audit.py transforms the template with it (the version .tools/sam's SAM CLI pins).
    "$TOOLS/bin/python" -m pip install --quiet --disable-pip-version-check \
      "checkov==$CHECKOV_VERSION" "cfn-lint-serverless==$CFN_LINT_SERVERLESS_VERSION" \
      "bandit==$BANDIT_VERSION" "pip-audit==$PIP_AUDIT_VERSION" "pip-tools==$PIP_TOOLS_VERSION" \
      "aws-sam-translator==$SAM_TRANSLATOR_VERSION"
    echo "audit.sh: $TOOLS ready (checkov $("$TOOLS/bin/checkov" --version), $("$TOOLS/bin/cfn-lint" --version)," \
      "$("$TOOLS/bin/bandit" --version | head -1), $("$TOOLS/bin/pip-audit" --version))"
    exit 0
    ;;
esac

if [ "${1:-}" = "--lock" ]; then
  [ -x "$TOOLS/bin/pip-compile" ] || { echo "audit.sh: $TOOLS is missing; run: make audit-tools" >&2; exit 1; }
  # Resolved here (any platform: no dependency of the layer has a platform marker); pip-compile writes the
  # hashes of every file of each pinned version, so the arm64 wheels the layer build installs verify too.
  {
    echo "# The crypto layer's runtime dependencies, pinned with their hashes; layers/crypto/Makefile installs"
    echo "# exactly these (pip --require-hashes) and make audit checks them with pip-audit."
    echo "# Generated from requirements.txt by: make lock (scripts/audit.sh --lock). Do not edit by hand."
    "$TOOLS/bin/pip-compile" --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
      --no-emit-find-links --no-header --output-file - layers/crypto/requirements.txt
  } >"$LOCK.new"
  mv "$LOCK.new" "$LOCK"
  echo "audit.sh: $LOCK written ($(grep -c '^[a-z]' "$LOCK") packages)"
  exit 0
fi

if [ ! -x "$TOOLS/bin/checkov" ] || [ ! -x "$TOOLS/bin/pip-audit" ]; then
  echo "audit.sh: $TOOLS is missing; run: make audit-tools" >&2
  exit 1
fi
exec "$TOOLS/bin/python" scripts/audit.py "$@"
