# Sealgate: every target bootstraps what it needs, so a fresh clone can start with any of them.
PY := .venv/bin/python
STAMP := .venv/.installed
TOOLS_STAMP := .tools/sam/.installed
AUDIT_STAMP := .tools/audit/.installed
# This checkout's layer and local tooling ahead of whatever the venv's editable install points at.
CHECKOUT_PATH := PYTHONPATH=$(CURDIR)/layers/crypto:$(CURDIR)/local

.PHONY: setup test lint typecheck unit compat bench verify clean

setup: $(STAMP)

$(STAMP): pyproject.toml layers/crypto/requirements.txt scripts/setup.sh
	bash scripts/setup.sh
	touch $(STAMP)

## test: lint, type-check and run every test (unit, interop, integration, template; SAM tools included)
test: $(STAMP) $(TOOLS_STAMP) lint typecheck
	SEALGATE_LEAK_REPORT=.verify/leaks.json $(PY) -m pytest -n 2 tests
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

## verify: every figure of reliability, security and performance in one table (.verify/figures.md): the leak
## detector's from the last `make test`, then soak, fuzz, load, audit and bench; exit 1 when a gate is missed
verify: $(STAMP) $(AUDIT_STAMP)
	$(CHECKOUT_PATH) $(PY) scripts/verify.py $(VERIFY_ARGS)

clean:
	rm -rf .venv .venv311 .tools .aws-sam .pytest_cache .mypy_cache .ruff_cache .hypothesis .verify

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

# --- Supply chain: checkov, cfn-lint serverless rules, bandit, pip-audit in .tools/audit/ (kept out of .venv) ---


.PHONY: audit audit-tools lock

## audit: checkov (transformed template), cfn-lint serverless rules, bandit, pip-audit (lock file); exit 1 on a failure
audit: $(AUDIT_STAMP)
	bash scripts/audit.sh --json .tools/audit/report.json

audit-tools: $(AUDIT_STAMP)

$(AUDIT_STAMP): scripts/audit.sh
	bash scripts/audit.sh --install
	touch $(AUDIT_STAMP)

## lock: rewrite layers/crypto/requirements.lock (pins and hashes) from layers/crypto/requirements.txt
lock: $(AUDIT_STAMP)
	bash scripts/audit.sh --lock

# --- What follows from the partner profiles: the functions' secret policies in template.yaml, and events/ ---

.PHONY: generate

## generate: rewrite template.yaml's generated blocks and events/ from the partner profiles (--check: list stale)
generate: $(STAMP)
	$(PY) -m sealgate_local generate

# --- Local stack: moto, partner sandboxes, the functions, a local API Gateway and SQS poller (no AWS account) ---

.PHONY: demo demo-built run load fuzz

## demo: start the local stack, run one flow per partner end to end, print the table; exit 0 if all verified
demo: $(STAMP)
	$(CHECKOUT_PATH) $(PY) -m sealgate_local demo

## demo-built: sam build, then the same demo against the built artifacts (.aws-sam/build)
demo-built: sam-build $(STAMP)
	$(CHECKOUT_PATH) $(PY) -m sealgate_local demo --built

## run: start the local stack and keep it up (Ctrl-C stops it); prints the base URL, throwaway SigV4 credentials
## and a signed curl per route (every route but the webhooks checks SigV4, as API Gateway does)
run: $(STAMP)
	$(CHECKOUT_PATH) $(PY) -m sealgate_local run

## load: bounded load test of the local stack on 127.0.0.1 (8 and 32 signed clients, 10 s each): requests/s,
## p50/p99 latency, errors; LOAD_ARGS="--json load.json" also writes the figures as JSON
load: $(STAMP)
	$(CHECKOUT_PATH) $(PY) scripts/load.py $(LOAD_ARGS)

## fuzz: every route of openapi.json fuzzed by schemathesis, then hand-written hostile input, against the local
## stack (about two minutes): requests tried, 5xx, answers outside {code, message}; exit 1 when a target is missed;
## FUZZ_ARGS="--json fuzz.json" also writes the figures as JSON
fuzz: $(STAMP)
	$(CHECKOUT_PATH) $(PY) scripts/fuzz.py $(FUZZ_ARGS)
