# Two entry points: `make synth` and `make test`. Each installs what it needs, idempotently:
# a Python virtualenv in .venv and the CDK CLI + asl-validator in a local node_modules.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
CDK := node_modules/.bin/cdk
# jsii (the bridge between Python and the CDK's JavaScript) prints a banner on Node 20.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export CDK_DISABLE_VERSION_CHECK := true
export CDK_CLI_NOTICES := false

.PHONY: synth test lint demo bench deps browser clean

deps: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11 or run make PYTHON=python3"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

## Synthesize the sample stack into cdk.out/ (cdk-nag AwsSolutions: any finding fails).
synth: deps
	$(CDK) synth --quiet --no-notices --no-version-reporting
	@echo "Template written: cdk.out/SensitiveDataScanPipelineSample.template.json"

## Run the synthesized pipeline offline on samples/ (local engine, local Macie; reviewers deny).
demo: $(VENV)/.installed
	$(PY) -m macie_pipeline.local run samples --decision deny

## Count what the pipeline does and costs per 1,000 objects (local engine): the sample batched and with a
## window of zero, side by side, for 1,000 and for 10,000 objects (BENCH_OBJECTS="N ..." to choose).
## Figures and wall times: README, "Throughput and cost".
BENCH_OBJECTS ?= 1000 10000
bench: $(VENV)/.installed
	@set -e; for n in $(BENCH_OBJECTS); do \
		echo "== bench --objects $$n"; \
		$(PY) -m macie_pipeline.local bench --objects $$n; \
	done

## Headless Chromium and its driver for the review-page browser test (Debian packages).
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; else \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; \
	fi

## Lint (ruff: pyflakes, pycodestyle, import order, bugbear, complexity at most 10 per function).
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

## Run every test (lint, handlers, template, cdk-nag, cfn-lint, ASL, local engine scenarios, browser).
test: deps browser lint
	$(PY) -m pytest -n 2 --dist loadfile -q

## Regenerate the README's workflow diagram (Mermaid) from the synthesized state machine.
.PHONY: docs
docs: $(VENV)/.installed
	$(PY) -m macie_pipeline.diagram --readme README.md

clean:
	rm -rf cdk.out .pytest_cache
