# Footprint: `make run` starts the local stack, `make test` runs the suite and the linters.
# Both create their own virtualenv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install analytics-js run test unit integration e2e browser lint format typecheck validate-template bench faults clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Footprint needs Python >= 3.11"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

run: install  ## start the whole stack locally (moto, tracking API, pumps, local page)
	$(BIN)/footprint-local $(ARGS)

test: install analytics-js lint  ## the whole suite, then the linters
	$(BIN)/pytest -n 2 --dist loadgroup

unit: install
	$(BIN)/pytest tests/unit

integration: install
	$(BIN)/pytest tests/integration

e2e: install
	$(BIN)/pytest tests/e2e

browser: install analytics-js  ## headless Chromium on the demo shop (Debian's chromium package; skipped without it)
	$(BIN)/pytest tests/browser

lint: install typecheck validate-template
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: install
	$(BIN)/mypy

# Segment's analytics.js (the npm package's standalone build), for the browser test that runs it
# unchanged against Footprint. Only the package's own tarball: the standalone build bundles its code.
ANALYTICS_JS_VERSION := 1.84.3
ANALYTICS_JS        := .cache/analytics-next-$(ANALYTICS_JS_VERSION)

$(ANALYTICS_JS)/package.json:
	mkdir -p $(ANALYTICS_JS)
	cd $(ANALYTICS_JS) && npm pack --silent @segment/analytics-next@$(ANALYTICS_JS_VERSION) >/dev/null \
	  && tar xzf segment-analytics-next-$(ANALYTICS_JS_VERSION).tgz --strip-components=1 && rm -f *.tgz

analytics-js: $(ANALYTICS_JS)/package.json

# aws-sam-cli pins its own dependencies tightly, so it lives in a virtualenv of its own (installed once).
# The dummy credentials keep `sam validate` offline: it never calls AWS, it only needs a session to exist.
SAM_CLI_VERSION := 1.170.0
SAM_VENV        := .venv-sam
SAM_STAMP       := $(SAM_VENV)/.installed-aws-sam-cli-$(SAM_CLI_VERSION)

$(SAM_STAMP):
	test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet 'aws-sam-cli==$(SAM_CLI_VERSION)'
	rm -f $(SAM_VENV)/.installed-*
	touch $@

validate-template: $(SAM_STAMP)  ## sam validate --lint (SAM + cfn-lint rules), offline
	AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing \
	AWS_DEFAULT_REGION=us-east-1 SAM_CLI_TELEMETRY=0 \
	$(SAM_VENV)/bin/sam validate --lint --template infra/template.yaml --region us-east-1

bench: install  ## benchmarks; figures are recorded in docs/benchmarks.md
	$(BIN)/python -m bench

faults: install  ## fault injection: 300 visitors, faults at every boundary, against a fault-free run (tests/faults.py)
	$(BIN)/python -m tests.faults --visitors 300 $(ARGS)

clean:
	rm -rf $(VENV) .cache .aws-sam .pytest_cache .mypy_cache .ruff_cache
