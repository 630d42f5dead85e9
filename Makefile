# Every target sets itself up: a fresh clone needs only Python 3.11 and make.
PYTHON ?= python3.11
VENV := .venv
TOOLS_VENV := .venv-tools
AZURITE := tools/azurite
BROWSER := tools/browser
CHROMIUM := /usr/bin/chromium
UV_VERSION := 0.13.8
UV := $(VENV)/bin/uv
ENV ?= local

.PHONY: deploy test lint tools bench lock clean mlflow-ui serve

# The local workspace needs only the runtime; Azure environments need the azure extra too.
DEPLOY_DEPS := $(if $(filter local,$(ENV)),$(VENV)/.runtime,$(VENV)/.dev)

deploy: $(DEPLOY_DEPS)
	$(VENV)/bin/python scripts/deploy.py --env $(ENV)

test: $(VENV)/.dev tools
	$(VENV)/bin/ruff check src pipelines scripts tests benchmarks tools
	$(VENV)/bin/ruff format --check src pipelines scripts tests benchmarks tools
	AMLOPS_TOOLS_BIN=$(CURDIR)/$(TOOLS_VENV)/bin $(VENV)/bin/pytest -q tests

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check --fix src pipelines scripts tests benchmarks tools
	$(VENV)/bin/ruff format src pipelines scripts tests benchmarks tools

tools: $(TOOLS_VENV)/.tools $(AZURITE)/node_modules/.installed $(BROWSER)/node_modules/.installed \
	$(CHROMIUM)

bench: $(VENV)/.runtime
	$(VENV)/bin/python benchmarks/run_all.py

# The published endpoints over REST on 127.0.0.1, and the schedules firing, until Ctrl-C.
serve: $(VENV)/.runtime
	$(VENV)/bin/python -m amlops.cli serve --env $(ENV)

mlflow-ui: $(VENV)/.runtime
	$(VENV)/bin/python -m amlops.cli mlflow-ui

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.runtime: requirements/runtime.txt pyproject.toml | $(UV)
	$(UV) pip install --quiet --compile-bytecode --python $(VENV)/bin/python -r requirements/runtime.txt
	$(UV) pip install --quiet --compile-bytecode --python $(VENV)/bin/python --no-deps -e .
	touch $@

$(VENV)/.dev: requirements/dev.txt $(VENV)/.runtime
	$(UV) pip install --quiet --compile-bytecode --python $(VENV)/bin/python -r requirements/dev.txt
	touch $@

$(TOOLS_VENV)/.tools: requirements/tools.txt
	$(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(TOOLS_VENV)/bin/uv pip install --quiet --compile-bytecode --python $(TOOLS_VENV)/bin/python -r requirements/tools.txt
	touch $@

# Azurite (the Azure Storage emulator) for the blob upload tests, from its committed lock into
# the project folder. --ignore-scripts: none of its packages needs an install script to run.
$(AZURITE)/node_modules/.installed: $(AZURITE)/package.json $(AZURITE)/package-lock.json
	@command -v npm >/dev/null || { echo "make tools: needs Node.js >= 20 and npm (Azurite)"; exit 1; }
	cd $(AZURITE) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

# playwright-core for the web page test, from its committed lock; it drives the distribution's
# Chromium and never downloads a browser of its own (--ignore-scripts: it has no install script
# it needs).
$(BROWSER)/node_modules/.installed: $(BROWSER)/package.json $(BROWSER)/package-lock.json
	@command -v npm >/dev/null || { echo "make tools: needs Node.js >= 20 and npm (playwright-core)"; exit 1; }
	cd $(BROWSER) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

# The headless browser of the web page test: Debian's chromium package, installed when missing.
$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "make tools: install Chromium at $(CHROMIUM)"; exit 1; }
	$(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq
	$(if $(filter 0,$(shell id -u)),,sudo) env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends chromium

# Re-resolve the locks after a dependency change (needs the package index).
lock: | $(UV)
	$(UV) pip compile --quiet --python-version 3.11 pyproject.toml --extra azure --extra test \
		-o requirements/dev.txt
	$(UV) pip compile --quiet --python-version 3.11 pyproject.toml -c requirements/dev.txt \
		-o requirements/runtime.txt
	$(UV) pip compile --quiet --python-version 3.11 requirements/tools.in -o requirements/tools.txt

clean:
	rm -rf $(VENV) $(TOOLS_VENV) .amlops $(AZURITE)/node_modules $(BROWSER)/node_modules
