# Every target a user types is listed by `make help`, from its `## ` comment.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

# Compose v2 when the docker CLI has it, else v1.29's docker-compose.
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
WEB_PORT ?= $(or $(shell sed -n 's/^WEB_PORT=//p' .env 2>/dev/null),5000)
DB_PORT ?= $(or $(shell sed -n 's/^DB_PORT=//p' .env 2>/dev/null),5432)
export WEB_PORT DB_PORT
RUN := $(COMPOSE) run --rm --no-deps
HEROKU_APP ?=
HEROKU := heroku$(if $(HEROKU_APP), --app $(HEROKU_APP))

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "; print "Usage: make <target>\n"} /^[a-zA-Z_-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): requirements.txt requirements-dev.txt
	@echo "==> creating $(VENV) and installing pinned dependencies"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

# --- The local stack (Compose) ------------------------------------------------

.PHONY: docker-running
docker-running:
	@command -v docker >/dev/null || { echo "error: docker is not installed: install Docker, then retry" >&2; exit 1; }
	@docker info >/dev/null 2>&1 || { echo "error: the Docker engine is not running (docker info failed): start it, then retry" >&2; exit 1; }

.env:
	@echo "==> creating .env from .env.example with a random SECRET_KEY"
	@sed "s/^SECRET_KEY=$$/SECRET_KEY=$$($(PYTHON) -c 'import secrets; print(secrets.token_hex(32))')/" .env.example > .env

.PHONY: up
up: docker-running .env ## Build, start db, run release, start web, wait for /readyz
	@echo "==> building the app image ($(COMPOSE))"
	@$(COMPOSE) build $(if $(CI),--quiet,) web
	@echo "==> starting db, running the release process, starting web"
	@$(COMPOSE) up -d --no-build web || { echo "error: the stack did not start; release output:" >&2; $(COMPOSE) logs --tail 40 release >&2; exit 1; }
	@echo "==> waiting for http://127.0.0.1:$(WEB_PORT)/readyz"
	@bin/wait-ready http://127.0.0.1:$(WEB_PORT)/readyz 60 || { $(COMPOSE) logs --tail 40 web >&2; exit 1; }
	@echo "==> up: http://127.0.0.1:$(WEB_PORT)  (make logs, make status, make down)"

.PHONY: down
down: docker-running ## Stop and remove the containers (the database volume is kept)
	@echo "==> stopping the stack"
	@$(COMPOSE) down

.PHONY: logs
logs: docker-running ## Follow the logs of every service
	@$(COMPOSE) logs -f --tail 100

.PHONY: ps
ps: docker-running ## Show the services and their state
	@$(COMPOSE) ps

.PHONY: db-up
db-up: docker-running .env
	@$(COMPOSE) up -d db >/dev/null 2>&1 || $(COMPOSE) up -d db
	@echo "==> waiting for the database"
	@for i in $$(seq 1 60); do \
		$(COMPOSE) exec -T db pg_isready -q -h 127.0.0.1 -U app -d app </dev/null && exit 0; sleep 0.5; \
	done; echo "error: the database did not become ready in 30 s (make logs)" >&2; exit 1

# One-off processes run the current code, as after a deploy: build first (a
# cached build takes about a second), then run the Procfile type.
.PHONY: image
image: docker-running .env
	@echo "==> building the app image"
	@$(COMPOSE) build --quiet web

# After a migration, recreate web if it runs an older image, so /readyz
# compares the database with the code you have.
define refresh-web
	@if [ -n "$$($(COMPOSE) ps -q web 2>/dev/null)" ]; then \
		$(COMPOSE) up -d --no-deps --no-build web 2>&1 | grep -v -i "up-to-date" || true; \
		bin/wait-ready http://127.0.0.1:$(WEB_PORT)/healthz 30 >/dev/null; \
	fi
endef

.PHONY: migrate
migrate: image db-up ## Apply every pending migration (one-off container, like heroku run)
	@echo "==> migrate: alembic upgrade head"
	@$(RUN) web bin/proc migrate
	$(refresh-web)

.PHONY: upgrade
upgrade: image db-up ## Apply the next migration only
	@echo "==> upgrade: alembic upgrade +1"
	@$(RUN) web bin/proc upgrade
	$(refresh-web)

.PHONY: downgrade
downgrade: image db-up ## Revert the latest applied migration
	@echo "==> downgrade: alembic downgrade -1"
	@$(RUN) web bin/proc downgrade
	$(refresh-web)

.PHONY: revision-message
revision-message:
	@test -n "$(m)" || { echo 'error: say what the revision changes: make revision m="Add color to locations"' >&2; exit 1; }

.PHONY: revision
revision: revision-message $(STAMP) image db-up ## Autogenerate a migration: make revision m="Add color to locations" [empty=1]
	@echo "==> alembic revision --autogenerate -m \"$(m)\" (into alembic/versions, owned by you)"
	@ls alembic/versions > .revision-before
	@$(RUN) --user "$$(id -u):$$(id -g)" -v "$(CURDIR)/alembic/versions:/app/alembic/versions" \
		web alembic $(if $(empty),-x empty=1 ,)revision --autogenerate -m "$(m)" \
		|| { rm -f .revision-before; exit 1; }
	@new="$$(ls alembic/versions | grep -v -x -F -f .revision-before | grep '\.py$$')"; rm -f .revision-before; \
		for file in $$new; do \
			echo "==> formatting alembic/versions/$$file"; \
			$(BIN)/ruff check --quiet --fix --select I,F401 "alembic/versions/$$file"; \
			$(BIN)/ruff format --quiet "alembic/versions/$$file"; \
			echo "==> wrote alembic/versions/$$file: read it (autogenerate is a draft), then make check and make migrate"; \
		done

.PHONY: status
status: image db-up ## Show the current revision and the pending ones
	@$(RUN) web python -m app.status

.PHONY: psql
psql: db-up ## Open psql on the Compose database
	@if [ -t 0 ]; then $(COMPOSE) exec db psql -U app app; else $(COMPOSE) exec -T db psql -U app app; fi

.PHONY: shell
shell: image db-up ## Open a Python shell with the app loaded, in a one-off container
	@$(RUN) $$([ -t 0 ] || echo -T) web flask --app "app:create_app()" shell

.PHONY: local
local: $(STAMP) db-up ## Run the Procfile on the host with honcho: release, then web
	@echo "==> release (honcho run, .env loaded)"
	@PATH="$(abspath $(BIN)):$$PATH" $(BIN)/honcho run bin/proc release
	@echo "==> web (honcho start web; Ctrl-C stops it, and honcho stops all processes when one exits)"
	@PATH="$(abspath $(BIN)):$$PATH" $(BIN)/honcho start web

# --- Heroku --------------------------------------------------------------------

.PHONY: heroku-cli
heroku-cli:
	@command -v heroku >/dev/null || { echo "error: the Heroku CLI is not installed: see https://devcenter.heroku.com/articles/heroku-cli" >&2; exit 1; }
	@heroku auth:whoami >/dev/null 2>&1 || { echo "error: the Heroku CLI is not logged in: run heroku login" >&2; exit 1; }

.PHONY: heroku-deploy
heroku-deploy: heroku-cli ## Deploy with heroku.yml: container stack, git push, release runs migrations
	@echo "==> heroku stack:set container"
	@$(HEROKU) stack:set container
	@echo "==> git push heroku HEAD:main (Heroku builds the Dockerfile, runs release, then web)"
	@git push heroku HEAD:main

.PHONY: heroku-migrate
heroku-migrate: heroku-cli ## Run the migrate process on Heroku (heroku run)
	@echo "==> heroku run bin/proc migrate"
	@$(HEROKU) run bin/proc migrate

# --- Development ---------------------------------------------------------------

.PHONY: venv
venv: $(STAMP) ## Create the virtualenv with the pinned dependencies

.PHONY: test
test: $(STAMP) ## Run the test suite against a throwaway Postgres (testcontainers)
	@echo "==> pytest (database: $${TEST_DATABASE_URL:+TEST_DATABASE_URL}$${TEST_DATABASE_URL:-container from $${POSTGRES_IMAGE:-postgres:17}})"
	@$(BIN)/pytest $(PYTEST_ARGS)

.PHONY: bench
bench: $(STAMP) docker-running ## Measure image size, start time, warm make up and throughput
	@command -v wrk >/dev/null || { echo "error: wrk is not installed: apt-get install wrk" >&2; exit 1; }
	@$(BIN)/python bench/bench.py

.PHONY: lint
lint: $(STAMP) ## Check style with ruff (lint and format)
	@echo "==> ruff check"
	@$(BIN)/ruff check .
	@echo "==> ruff format --check"
	@$(BIN)/ruff format --check .

.PHONY: check
check: lint ## Lint, then check migrations: one head, zero-downtime SQL lint (squawk), alembic check
	@$(BIN)/python bin/check-migrations

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
clean: ## Remove the containers, the database volume, the virtualenv and caches
	@if docker info >/dev/null 2>&1; then echo "==> removing containers and the database volume"; $(COMPOSE) down -v --remove-orphans; fi
	@echo "==> removing $(VENV) and caches"
	rm -rf $(VENV) .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
