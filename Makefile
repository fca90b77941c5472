# Every target a user types is listed by `make help`, from its `## ` comment.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "; print "Usage: make <target>\n"} /^[a-zA-Z_-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): requirements.txt requirements-dev.txt
	@echo "==> creating $(VENV) and installing pinned dependencies"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

.PHONY: venv
venv: $(STAMP) ## Create the virtualenv with the pinned dependencies

.PHONY: test
test: $(STAMP) ## Run the test suite against a throwaway Postgres (testcontainers)
	@echo "==> pytest (database: $${TEST_DATABASE_URL:+TEST_DATABASE_URL}$${TEST_DATABASE_URL:-container from $${POSTGRES_IMAGE:-postgres:17}})"
	@$(BIN)/pytest $(PYTEST_ARGS)

.PHONY: lint
lint: $(STAMP) ## Check style with ruff (lint and format)
	@echo "==> ruff check"
	@$(BIN)/ruff check .
	@echo "==> ruff format --check"
	@$(BIN)/ruff format --check .

.PHONY: format
format: $(STAMP) ## Fix what ruff can fix and format the code
	@$(BIN)/ruff check --fix .
	@$(BIN)/ruff format .

.PHONY: lock
lock: ## Re-pin requirements*.txt from pyproject.toml in a scratch virtualenv
	@echo "==> resolving runtime dependencies"
	@rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	@.lock-venv/bin/pip install --quiet --disable-pip-version-check .
	@{ echo "# Pinned runtime dependencies: the image, CI and Heroku install exactly these."; \
	   echo "# Direct dependencies are declared in pyproject.toml; regenerate with \`make lock\`."; \
	   .lock-venv/bin/pip freeze --exclude flask-heroku-parity; } > requirements.txt
	@echo "==> resolving development dependencies"
	@.lock-venv/bin/pip install --quiet --disable-pip-version-check '.[dev]'
	@{ echo "# Pinned development and test dependencies, on top of the runtime pins."; \
	   echo "-r requirements.txt"; \
	   .lock-venv/bin/pip freeze --exclude flask-heroku-parity | grep -v -x -i -F -f <(grep -v '^#' requirements.txt); } > requirements-dev.txt
	@rm -rf .lock-venv build *.egg-info
	@echo "==> requirements.txt and requirements-dev.txt updated"

.PHONY: clean
clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
