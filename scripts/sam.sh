#!/usr/bin/env bash
# Runs the AWS SAM CLI (or cfn-lint) from .tools/sam/, a tool environment of its own: aws-sam-cli pins exact
# boto3 and cfn-lint versions, which must not leak into the project's .venv.
#
#   scripts/sam.sh --install        create or update .tools/sam/ (Python 3.13, as scripts/setup.sh finds it)
#   scripts/sam.sh cfn-lint ARGS    run the tool environment's cfn-lint
#   scripts/sam.sh ARGS             run `sam ARGS`
#
# Python 3.13 goes first on PATH: `sam build` builds the python3.13 runtime with the python3.13 it finds there.
# Commands that work offline (build, validate, local) get a dummy region and credentials when none are set;
# deploy and every other command use your own profile untouched.
set -euo pipefail
cd "$(dirname "$0")/.."

SAM_CLI_VERSION=1.170.0
TOOLS=.tools/sam

python313_bin() {
  if command -v pyenv >/dev/null 2>&1; then
    local root d
    root=$(pyenv root)
    for d in $(ls -d "$root"/versions/3.13* 2>/dev/null | sort -V -r); do
      if [ -x "$d/bin/python3.13" ]; then
        echo "$d/bin"
        return 0
      fi
    done
  fi
  # A pyenv shim fails here unless 3.13 is active, so ask the interpreter where it really lives.
  python3.13 -c 'import os, sys; print(os.path.dirname(os.path.realpath(sys.executable)))' 2>/dev/null
}

bin=$(python313_bin) || {
  echo "sam.sh: Python 3.13 not found (Lambda runs python3.13; install it with pyenv install 3.13)" >&2
  exit 1
}
export PATH="$bin:$PATH"

if [ "${1:-}" = "--install" ]; then
  [ -x "$TOOLS/bin/python" ] || "$bin/python3.13" -m venv "$TOOLS"
  "$TOOLS/bin/python" -m pip install --quiet --upgrade pip
  # cfn-lint unpinned: pip takes the exact version aws-sam-cli pins.
  "$TOOLS/bin/python" -m pip install --quiet "aws-sam-cli==$SAM_CLI_VERSION" cfn-lint
  echo "sam.sh: $TOOLS ready ($("$TOOLS/bin/sam" --version), $("$TOOLS/bin/cfn-lint" --version))"
  exit 0
fi

if [ ! -x "$TOOLS/bin/sam" ]; then
  echo "sam.sh: $TOOLS is missing; run: make tools" >&2
  exit 1
fi

export SAM_CLI_TELEMETRY=0
if [ "${1:-}" = "cfn-lint" ]; then
  shift
  exec "$TOOLS/bin/cfn-lint" "$@"
fi

case "${1:-}" in
  build | validate | local)
    if [ -z "${AWS_REGION:-}${AWS_DEFAULT_REGION:-}" ] && ! "$TOOLS/bin/python" -c \
      'import boto3, sys; sys.exit(0 if boto3.session.Session().region_name else 1)' 2>/dev/null; then
      export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
    fi
    if [ -z "${AWS_ACCESS_KEY_ID:-}${AWS_PROFILE:-}" ] && [ ! -e "${AWS_SHARED_CREDENTIALS_FILE:-$HOME/.aws/credentials}" ]; then
      export AWS_ACCESS_KEY_ID=offline-dummy AWS_SECRET_ACCESS_KEY=offline-dummy
    fi
    ;;
esac
exec "$TOOLS/bin/sam" "$@"
