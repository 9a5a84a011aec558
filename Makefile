# Sealgate: every target bootstraps what it needs, so a fresh clone can start with any of them.
PY := .venv/bin/python
STAMP := .venv/.installed
TOOLS_STAMP := .tools/sam/.installed

.PHONY: setup test lint typecheck unit bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml layers/crypto/requirements.txt scripts/setup.sh
	bash scripts/setup.sh
	touch $(STAMP)

## test: lint, type-check and run every test (unit, interop, integration, template; SAM tools included)
test: $(STAMP) $(TOOLS_STAMP) lint typecheck
	$(PY) -m pytest -n 2 tests

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
	rm -rf .venv .tools .aws-sam .pytest_cache .mypy_cache .ruff_cache .hypothesis

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
