# Sealgate: every target bootstraps what it needs, so a fresh clone can start with any of them.
PY := .venv/bin/python
STAMP := .venv/.installed
TOOLS_STAMP := .tools/sam/.installed

.PHONY: setup test lint typecheck unit compat bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml layers/crypto/requirements.txt scripts/setup.sh
	bash scripts/setup.sh
	touch $(STAMP)

## test: lint, type-check and run every test (unit, interop, integration, template; SAM tools included)
test: $(STAMP) $(TOOLS_STAMP) lint typecheck
	$(PY) -m pytest -n 2 tests
	bash scripts/compat.sh

## compat: the layer's unit and interop tests on Python 3.11 (the oldest supported), in .venv311/
compat:
	bash scripts/compat.sh

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(STAMP)
	$(PY) -m mypy

unit: $(STAMP)
	$(PY) -m pytest -n 2 tests/unit

## bench: throughput of every scheme beside the reference implementation, as a table
bench: $(STAMP)
	$(PY) scripts/bench.py

clean:
	rm -rf .venv .venv311 .tools .aws-sam .pytest_cache .mypy_cache .ruff_cache .hypothesis

# --- SAM: aws-sam-cli and cfn-lint live in .tools/sam/ (they pin exact boto3 versions; kept out of .venv) ---

.PHONY: tools validate sam-build

## tools: .tools/sam/ with aws-sam-cli and cfn-lint, on Python 3.13
tools: $(TOOLS_STAMP)

$(TOOLS_STAMP): scripts/sam.sh
	bash scripts/sam.sh --install
	touch $(TOOLS_STAMP)

## validate: cfn-lint, then the SAM transform and its linter (sam validate, sam validate --lint)
validate: $(TOOLS_STAMP)
	bash scripts/sam.sh cfn-lint template.yaml
	bash scripts/sam.sh validate
	bash scripts/sam.sh validate --lint

## sam-build: sam build (layer and functions for python3.13 on arm64) into .aws-sam/build/
sam-build: $(TOOLS_STAMP)
	bash scripts/sam.sh build

# --- What follows from the partner profiles: the functions' secret policies in template.yaml, and events/ ---

.PHONY: generate

## generate: rewrite template.yaml's generated blocks and events/ from the partner profiles (--check: list stale)
generate: $(STAMP)
	$(PY) -m sealgate_local generate

# --- Local stack: moto, partner sandboxes, the functions, a local API Gateway and SQS poller (no AWS account) ---

.PHONY: demo demo-built run

## demo: start the local stack, run one flow per partner end to end, print the table; exit 0 if all verified
demo: $(STAMP)
	$(PY) -m sealgate_local demo

## demo-built: sam build, then the same demo against the built artifacts (.aws-sam/build)
demo-built: sam-build $(STAMP)
	$(PY) -m sealgate_local demo --built

## run: start the local stack and keep it up (Ctrl-C stops it); prints the base URL and a curl per route
run: $(STAMP)
	$(PY) -m sealgate_local run
