# Every target a user types is listed by `make help`, from its `## ` comment.
SHELL := /bin/bash
# Targets run one after the other even under make -j (MAKEFLAGS=-j in the
# environment): make up takes its turn before it stops live reload.
.NOTPARALLEL:
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The scripts in bin/ and the snippets below need only the standard library.
# Once the virtualenv exists its interpreter runs them (not when its link is
# dangling: the Python it was made with was uninstalled); before, the one
# $(PYTHON) stands for, asked once, when a recipe first needs it. Either way
# no version manager's shim runs in between (pyenv's costs about 0.1 s a start).
HOST_PYTHON = $(eval HOST_PYTHON := $(call quote,$(shell [ -x $(BIN)/python ] && echo $(BIN)/python || { \
	found="$$($(PYTHON) -c 'import sys; print(sys.executable)' 2>/dev/null)" && [ -n "$$found" ] && echo "$$found"; } || \
	echo $(PYTHON))))$(HOST_PYTHON)
# Several workers: most tests wait on Docker or Postgres, not on a core. Files
# go out in the order tests/conftest.py gives them (longest first), not by size.
PYTEST_ARGS ?= -n 4 --dist loadfile --no-loadscope-reorder

# A value as one shell word, whatever quotes it holds: what the user typed
# after name=, m=, to= or from= (or in .env, or a path) is passed on as it
# is, and runs nothing.
quote = '$(subst ','\'',$(1))'
# A comma inside a $(call) argument, which a bare one would split.
comma := ,

# Docker Compose v2: 2.22 added develop.watch, which live reload needs.
# It is a Docker CLI plugin; run straight from where the docker CLI finds it
# (in the CLI's order, skipping what cannot run), each command starts about
# 40 ms sooner than through `docker compose`. COMPOSE_PLUGIN= (empty) goes
# through the CLI instead, as make does where it finds none, or where the
# CLI's config.json names extra plugin directories (searched before those).
COMPOSE_PLUGIN ?= $(shell config="$${DOCKER_CONFIG:-$$HOME/.docker}"; \
	grep -qs cliPluginsExtraDirs "$$config/config.json" && exit; \
	for dir in "$$config/cli-plugins" /usr/local/lib/docker/cli-plugins /usr/local/libexec/docker/cli-plugins \
		/usr/lib/docker/cli-plugins /usr/libexec/docker/cli-plugins; do \
		[ -f "$$dir/docker-compose" ] && [ -x "$$dir/docker-compose" ] && { printf '%s' "$$dir/docker-compose"; exit; }; done)
COMPOSE := $(if $(COMPOSE_PLUGIN),$(call quote,$(COMPOSE_PLUGIN)),docker compose)
# The scripts in bin/ run Compose the same way.
export COMPOSE_COMMAND := $(COMPOSE)
COMPOSE_MIN := 2.22
# Settings Compose reads from .env too; make needs them for its messages,
# read as Compose reads them for what such settings hold: an optional
# `export`, blanks around `=`, a value in quotes taken whole, else cut at
# " #"; the last line wins; a byte-order mark and Windows line ends are
# ignored (bin/localstack.py reads .env the same way for the scripts).
# Not copied: ${VAR} and $$ expansion, and \" inside double quotes.
# (make runs it on one line: every statement ends with ";").
define ENV_READER
{ sub(/\r$$/, ""); } NR == 1 { sub(/^\357\273\277/, ""); } { sub(/^[ \t]*(export[ \t]+)?/, ""); }
index($$0, "=") {
	key = substr($$0, 1, index($$0, "=") - 1); sub(/[ \t]+$$/, "", key); if (key != name) next;
	v = substr($$0, index($$0, "=") + 1); sub(/^[ \t]+/, "", v); q = substr(v, 1, 1); rest = substr(v, 2);
	if ((q == "\"" || q == sq) && index(rest, q)) v = substr(rest, 1, index(rest, q) - 1);
	else { sub(/[ \t]+#.*/, "", v); sub(/[ \t]+$$/, "", v); }
	value = v; found = 1;
}
END { if (found) print value; }
endef
env_or = $(or $(shell awk -v name=$(1) -v "sq='" '$(ENV_READER)' .env 2>/dev/null),$(2))
# A setting from the command line or the environment, else .env, else a
# default; empty counts as unset, as in Compose's ${VAR:-default}. Assigned
# with override := so .env is read once (make expands an exported recursive
# variable again for every line of every recipe), even over an empty VAR=.
setting = $(or $(if $(filter environment command line,$(origin $(1))),$($(1))),$(call env_or,$(1),$(2)))
override WEB_PORT := $(call setting,WEB_PORT,5000)
override WEB_TLS_PORT := $(call setting,WEB_TLS_PORT,5443)
override WEB_DIRECT_PORT := $(call setting,WEB_DIRECT_PORT,5001)
override DB_PORT := $(call setting,DB_PORT,5432)
# make local's web, on the host (in Compose, each dyno has its DYNO_PORT inside its container).
override LOCAL_PORT := $(call setting,PORT,5002)
# Each Compose dyno's $PORT, as docker-compose.yml sets it (make debug publishes it).
DYNO_PORT = $(shell sed -n 's/^ *PORT: &dyno-port "\([0-9]*\)"$$/\1/p' docker-compose.yml)
# The address it listens on: this machine only, unless WEB_HOST=0.0.0.0 opens it to the network.
override LOCAL_HOST := $(call setting,WEB_HOST,127.0.0.1)
override POSTGRES_PASSWORD := $(call setting,POSTGRES_PASSWORD,app)
override WEB_RELOAD := $(call setting,WEB_RELOAD,1)
# Read, not exported: make scale changes it in .env for the Compose it runs.
override WEB_SCALE := $(call setting,WEB_SCALE,1)
# The Compose database as processes on the host reach it (make local, make revision).
# The role the dynos connect as, as docker-compose.yml names it: it owns the database, and is no superuser.
DYNO_ROLE = $(shell sed -n 's/^ *DYNO_ROLE: \([a-z_]*\)$$/\1/p' docker-compose.yml)
HOST_DATABASE_URL = postgres://$(DYNO_ROLE):$(POSTGRES_PASSWORD)@127.0.0.1:$(DB_PORT)/app
# The Postgres major, shared by Compose, the tests, CI and heroku.yml's add-on.
POSTGRES_MAJOR := $(shell cat .postgres-version)
# The db image as docker-compose.yml picks it: POSTGRES_IMAGE from the
# environment or .env, else the official image of the major.
DB_IMAGE := $(call setting,POSTGRES_IMAGE,postgres:$(POSTGRES_MAJOR))
# Heroku's dyno sizes and their memory ("Dyno Types"); DYNO_SIZE picks one.
# In any case: the CLI writes standard-2x, the dashboard Standard-2X.
lowercase = $(shell printf '%s' $(call quote,$(1)) | tr '[:upper:]' '[:lower:]')
override DYNO_SIZE := $(call lowercase,$(call setting,DYNO_SIZE,standard-1x))
DYNO_MEMORY_eco := 512m
DYNO_MEMORY_basic := 512m
DYNO_MEMORY_standard-1x := 512m
DYNO_MEMORY_standard-2x := 1024m
DYNO_MEMORY_performance-m := 2560m
DYNO_MEMORY_performance-l := 14336m
DYNO_MEMORY := $(DYNO_MEMORY_$(DYNO_SIZE))
# Heroku's dyno manager restarts a dyno of each of these sizes at twice its
# quota, with R15 ("Dyno Memory Behavior"): the hard limit of a Compose dyno.
DYNO_MEMORY_LIMIT := $(if $(DYNO_MEMORY),$(shell echo $$(( $(DYNO_MEMORY:m=) * 2 )))m)
# A checksum of the router's configuration, which docker-compose.yml hands
# the router: Compose sees a mounted file only as a path, so without it an
# edited haproxy.cfg would wait for a make down before it took effect.
# Every file of compose/router (the router mounts it whole), whatever its kind.
ROUTER_CONFIG := $(shell cat $(wildcard compose/router/*.* compose/router/errors/*) /dev/null | cksum | cut -d' ' -f1)
export WEB_PORT WEB_TLS_PORT WEB_DIRECT_PORT DB_PORT WEB_RELOAD POSTGRES_MAJOR DYNO_SIZE DYNO_MEMORY DYNO_MEMORY_LIMIT ROUTER_CONFIG
# The background `docker compose watch` of this checkout: its pid and log,
# and a shell test for whether it is running.
WATCH_PID := .run/watch.pid
WATCH_LOG := .run/watch.log
# The pid of the watch make stopped last, until it has exited (watch-gone).
WATCH_STOPPED := .run/watch.stopped
# There once live reload has copied a file into web, until web is made afresh.
WEB_SYNCED := .run/web-synced
# Whether the pid file names a running watcher: a process of its group (the
# pid is the group's) runs compose watch. The Compose plugin outlives the
# recorded pid when only that is killed; after a crash or a reboot the pid
# may name another program by now, which must be left alone.
watching = { [ -f $(WATCH_PID) ] && pgrep -g "$$(cat $(WATCH_PID))" -f 'compose.* watch' >/dev/null 2>&1; }
# Whether a web dyno runs.
web-running = [ -n "$$($(COMPOSE) ps --quiet --status running web 2>/dev/null)" ]
# Whether web was started with live reload, whatever .env says now (WEB_RELOAD=0 make up starts it
# without): gunicorn reloads what the watcher copies in only then. True when no dyno runs.
web-reloads = { id="$$($(COMPOSE) ps -q web | head -n 1)"; [ -z "$$id" ] || \
	docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$$id" | grep -qx 'WEB_RELOAD=1'; }
# The Compose project's name, as Compose derives it (docker-compose.yml sets
# no name:): COMPOSE_PROJECT_NAME, else the checkout's folder's name
# lowercased, with only a-z, 0-9, _ and - kept, none leading. Without
# running Compose, for a check on every Docker target (a test compares).
PROJECT_NAME = $(call setting,COMPOSE_PROJECT_NAME,$(shell basename $(call quote,$(CURDIR)) | \
	tr '[:upper:]' '[:lower:]' | tr -cd 'a-z0-9_-' | sed 's/^[-_]*//'))
# Two checkouts in folders of the same name (a clone of a branch beside the
# first, say) are one Compose project: the second's make up would take over
# the first's containers, with the database in them. Each of the project's
# containers, running or not, must be this folder's (its working_dir label).
define own-project
here="$$(pwd -P)"; \
docker ps --all --filter "label=com.docker.compose.project=$(PROJECT_NAME)" \
	--format '{{.Label "com.docker.compose.project.working_dir"}}' | sort -u | while IFS= read -r dir; do \
	[ -z "$$dir" ] || [ "$$(cd "$$dir" 2>/dev/null && pwd -P)" = "$$here" ] && continue; \
	[ -d "$$dir" ] && gone= || gone=", no longer there (docker compose -p $(PROJECT_NAME) down removes what it left)"; \
	echo "error: the Compose project $(PROJECT_NAME) is another checkout's, in $$dir$$gone: its containers and database would be this one's too; give this checkout a name of its own, COMPOSE_PROJECT_NAME=... in its .env" >&2; \
	exit 1; done
endef
# A shell test for whether a Docker engine answers.
engine_answers = docker version --format '{{.Server.Version}}' >/dev/null 2>&1
# One-off processes, as `heroku run`: their own DYNO, and TLS to the database.
RUN := $(COMPOSE) run --rm --no-deps -e DYNO=run.1
HEROKU_APP ?=
export HEROKU_APP
# The app make's Heroku targets talk to, once the CLI is installed and logged
# in: HEROKU_APP, else the one the git remote heroku points at (the checks of
# bin/heroku_cli.py, as db-pull and doctor make them). Deploys push to that
# app's own git URL, so a remote of another app never receives them.
heroku-app = app="$$($(HOST_PYTHON) bin/heroku_cli.py app)" || exit 1

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "; print "Usage: make <target>\n"} /^[a-zA-Z_-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# pip installs the pins (with pip's own configuration: an index or mirror
# set there is used); then uv, pinned there too, removes what is no longer
# pinned (a branch switched away from the one that added it), offline, so
# an import of it fails here as it would in the image.
$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || { echo "==> creating $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@echo "==> installing the pinned dependencies into $(VENV)"
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@$(BIN)/uv pip sync --offline --quiet --python $(BIN)/python requirements-dev.txt
	@touch $@

# --- The local stack (Compose) ------------------------------------------------

# docker version needs the engine to answer, and asks it for less than
# docker info does (about 25 ms of CPU instead of 50).
.PHONY: docker-running
docker-running:
	@command -v docker >/dev/null || { echo "error: docker is not installed: install Docker, then retry" >&2; exit 1; }
	@$(engine_answers) || { echo "error: the Docker engine is not running (docker version found no server): start it, then retry" >&2; exit 1; }

.PHONY: compose
compose: docker-running dyno-size
	@v="$$($(COMPOSE) version --short 2>/dev/null)"; v="$${v#v}"; \
	if [ -z "$$v" ]; then \
		echo "error: Docker Compose v2 is not installed ($(if $(COMPOSE_PLUGIN),$(COMPOSE_PLUGIN),docker compose) version failed): install the Compose plugin, https://docs.docker.com/compose/install/$(if $(COMPOSE_PLUGIN), (or COMPOSE_PLUGIN= to use docker compose))" >&2; exit 1; \
	elif ! printf '%s\n%s\n' "$(COMPOSE_MIN)" "$$v" | sort -V -C; then \
		echo "error: Docker Compose $$v$(if $(COMPOSE_PLUGIN), ($(COMPOSE_PLUGIN))) is too old; $(COMPOSE_MIN) or newer is needed: update the Compose plugin, https://docs.docker.com/compose/install/" >&2; exit 1; \
	fi
	@$(own-project)

# DATABASE_URL holds the password as it is, so only characters a URL
# leaves alone: a "@" or "/" there would point web at another host.
# Checked where a stack or make local starts, so every other target still
# works (make psql, to change the password of a database made with it).
.PHONY: db-password
db-password:
	@case $(call quote,$(POSTGRES_PASSWORD)) in *[!A-Za-z0-9._~-]*) \
		echo "error: POSTGRES_PASSWORD may hold only letters, digits and - . _ ~ (DATABASE_URL holds it as it is): choose another in .env (the next make up gives it to the database)" >&2; exit 1;; esac

.PHONY: dyno-size
dyno-size:
	@test -n "$(DYNO_MEMORY)" || { echo "error: DYNO_SIZE=$(DYNO_SIZE) is not a Heroku dyno size: use eco, basic, standard-1x, standard-2x, performance-m or performance-l" >&2; exit 1; }

# A make db-upgrade killed outright leaves this file, and its copy of the
# data in a volume: the database is not used again until it is finished.
UPGRADE_MARK := .run/db-upgrade
.PHONY: upgrade-finished
upgrade-finished:
	@test ! -f $(UPGRADE_MARK) || { echo "error: a make db-upgrade did not finish (the data is kept in volume $$(cut -d' ' -f1 $(UPGRADE_MARK))): run make db-upgrade again, which sets that right first" >&2; exit 1; }

# A random SECRET_KEY, as make up writes into a new .env and make heroku-create sets on the app.
new-secret-key = $(HOST_PYTHON) -c 'import secrets; print(secrets.token_hex(32))'

.env:
	@echo "==> creating .env from .env.example with a random SECRET_KEY"
	@sed "s/^SECRET_KEY=$$/SECRET_KEY=$$($(new-secret-key))/" .env.example > .env

# The ids of a service's own containers, running or not (not those of make debug or compose run).
service-containers = $(COMPOSE) ps --all --format '{{.ID}} {{.Labels}}' $(1) | grep 'com.docker.compose.oneoff=False' | cut -d' ' -f1

# Fewer dynos in .env than run: drop the extra ones before web is recreated
# on a changed image or setting, so the dynos left are web.1 to web.N, as on
# Heroku (bin/dynos scale says why Compose needs two steps for that).
# (Stopped dynos count: Compose converges them too.)
keep-dyno-numbers = [ "$$($(COMPOSE) ps --all --format '{{.Labels}}' web | grep -c 'oneoff=False')" -le "$(WEB_SCALE)" ] || { \
	echo "==> .env asks for fewer web dynos ($(WEB_SCALE)): removing the others first, so those left start at web.1"; \
	$(COMPOSE) --progress quiet up --detach --no-build --no-deps --no-recreate web; }

# Web dynos holding code that live reload copied in since their image was
# built (files under app/ or alembic/ that differ from the image's). A build
# of the checkout can equal their image (a branch switched back while live
# reload was off), and Compose would keep them running the copied code.
# docker diff takes about 0.3 s a dyno: it runs only once live reload has
# copied something (WEB_SYNCED, kept from each watcher's log as it stops).
drifted-dynos = [ ! -f $(WEB_SYNCED) ] || for dyno in $$($(COMPOSE) ps --all --quiet web); do \
	docker diff "$$dyno" 2>/dev/null | grep -q -E '^[ACD] /app/(app|alembic)(/|$$)' && echo "$$dyno"; done
# Before web's dynos start afresh (make scale, make restart): when they hold
# code live reload copied in, build the image first, so they start on that
# code. Sets drifted to those dynos. Argument: what then happens, for the note.
build-if-drifted = $(note-syncs); drifted="$$($(drifted-dynos))"; [ -z "$$drifted" ] || { \
	echo "==> web holds code live reload copied into it: building the image first, $(1)"; $(build-web); }

# make up stops live reload first; when it fails, saves no longer reach a
# web that still runs from before, and the user is told so.
up-failed = { [ "$(WEB_RELOAD)" != 1 ] || echo "note: live reload is off until make up succeeds (or make watch)" >&2; exit 1; }

# One command at a time changes a checkout's stack or database (up, down,
# scale, restart, debug, db-snapshot, db-restore, db-reset, db-pull, db-upgrade): another
# one waits its turn (make up: before it stops live reload, which the first
# may be starting).
%-turn:
	@$(HOST_PYTHON) bin/one_at_a_time.py .run/turn.pid $$PPID $*

.PHONY: up
up: compose .env db-password up-turn unwatch upgrade-finished ## Build, start db, run release, start web (live reload on), wait until it serves through the router
	@echo "==> building the app image"
# On a terminal, Compose's progress as it goes; under CI or into a pipe,
# only why it failed (build-web, below).
	@if [ -z "$(CI)" ] && [ -t 1 ]; then $(COMPOSE) build web || { \
		echo "error: the app image did not build (why: Docker's summary of the failed step, just above): fix it, then make up" >&2; \
		false; }; else ( $(build-web) ); fi || $(up-failed)
# In Heroku's order: the release process runs while web still serves what
# it ran before, and web is recreated on the new image only once release
# succeeded. A failed release leaves that web running, as on Heroku.
# (Release waits for the database itself, so db's healthcheck is not awaited.)
# Release runs as its service's container (not a one-off), shown as it goes
# from the moment it started, its status from docker wait. Web's depends_on
# finds that container when Compose recreates web on a watch rebuild
# (Compose before 2.37 runs release again then; later ones leave it be).
	@stop_release() { $(COMPOSE) --progress quiet stop --timeout 5 release; echo "==> interrupted: the release process was stopped (a revision it was applying rolled back): make status shows where the database is" >&2; trap - INT; kill -INT $$$$; }; \
	trap stop_release INT; \
	echo "==> starting db and the router; the release process"; \
	since="$$(date +%s.%N)"; since="$${since%.N}"; \
	$(COMPOSE) up --detach --no-build db router release || { \
		$(HOST_PYTHON) bin/doctor ports || $(up-failed); \
		echo "error: db, the router or the release process did not start; what they said:" >&2; \
		$(COMPOSE) logs --no-log-prefix --since "$$since" db router release >&2; $(up-failed); }; \
	release="$$($(call service-containers,release))"; \
	[ -n "$$release" ] || { echo "error: the release process's container is gone: make up again" >&2; $(up-failed); }; \
	docker logs --follow --since "$$(docker inspect --format '{{.State.StartedAt}}' "$$release")" "$$release" || \
		echo "note: the release process's output cannot be shown (docker logs failed)" >&2; \
	[ "$$(docker wait "$$release")" = 0 ] || { \
		if [ -z "$$($(COMPOSE) ps --status running --quiet db)" ]; then \
			echo "error: the database stopped; what it said:" >&2; \
			$(COMPOSE) logs --no-log-prefix --since "$$since" db >&2; \
		elif [ -n "$$($(COMPOSE) ps --status running --quiet web)" ]; then \
			echo "error: the release process failed (above): web still runs, as on Heroku, $(if $(filter 1,$(WEB_RELOAD)),with the code live reload last copied into it,on what it ran before); fix it, then make up" >&2; \
		else echo "error: the release process failed (above), so web was not started (as on Heroku): fix it, then make up" >&2; fi; \
		$(up-failed); }
	@trap 'echo "==> interrupted: web may still be starting (make ps shows it); make up again to finish" >&2; trap - INT; kill -INT $$$$' INT; \
	echo "==> starting web"; \
	since="$$(date +%s.%N)"; since="$${since%.N}"; \
	$(keep-dyno-numbers); \
	drifted="$$($(drifted-dynos))"; \
	[ -z "$$drifted" ] || echo "==> web holds code live reload copied into it: recreating it from the image just built"; \
	unhealthy() { echo "error: web did not become healthy; what it said:" >&2; \
		$(COMPOSE) logs --no-log-prefix --since "$$since" web >&2; $(up-failed); }; \
	$(COMPOSE) up --detach $(if $(filter-out 0 1,$(WEB_SCALE)),--wait) --no-build --no-deps $${drifted:+--force-recreate} web || { \
		if $(COMPOSE) ps --all --format '{{.Name}} {{.Labels}}' web | grep 'oneoff=True' | grep -q -- '-web-1 '; then \
			echo "error: the dyno a make debug ran is still there (its terminal closed?): make down removes it, then make up" >&2; \
			$(up-failed); \
		else unhealthy; fi; }; \
	rm -f $(WEB_SYNCED); \
	if [ "$(WEB_SCALE)" = 0 ]; then \
		echo "==> web is scaled to 0 (WEB_SCALE=0 in .env): the router answers 503 (H10) until make scale web=1"; \
	else $(call wait-routed,readyz) $$($(call service-containers,web)) || { [ $$? != 3 ] || unhealthy; $(up-failed); }; fi
	@[ "$(WEB_SCALE)" -le 1 ] 2>/dev/null || $(HOST_PYTHON) bin/dynos connections
	$(start-others)
	$(start-watch)
	@echo "==> up: http://127.0.0.1:$(WEB_PORT) and https://127.0.0.1:$(WEB_TLS_PORT) through the router  (make logs, make ps, make debug, make down)"

# Once web serves, start (or recreate, on a new image) the Procfile's other
# dyno types, a worker of yours say (none in the seed), each the Compose
# service of its name, as many as its replicas (make scale worker=N keeps
# that count in .env), as Heroku starts the whole formation after a release.
# A type taken out of docker-compose.yml has its dynos stopped, as a deploy
# scales a type the app no longer has to 0.
define start-others
	@others="$$($(HOST_PYTHON) bin/dynos others)" || $(up-failed); \
	$(HOST_PYTHON) bin/dynos retire $(PROJECT_NAME) || $(up-failed); \
	[ -z "$$others" ] || { echo "==> starting $$others"; \
		$(COMPOSE) --progress quiet up --detach --no-build --no-deps $$others || $(up-failed); }
endef

# Wait until a request through the router reaches web: what a user waits
# for, and sooner than Docker's healthcheck says so (its first probe runs a
# second after the start; the router's checks of a dyno that is down run
# every 100 ms). make up asks /readyz, so it returns with web serving the
# database it just migrated; make scale and make debug ask /healthz. The
# router has no healthcheck of its own. Arguments: URL,
# then the web containers to watch: one that stops, that its healthcheck
# finds unhealthy, or that answers with an error of its own (not the
# router's 502-504 for a dyno not there yet) ends the wait with status 3.
# It waits 30 s, and longer while a web is still starting: a dyno that has
# not bound $PORT by its boot timeout stops itself, as on Heroku (R10).
define ROUTED
import signal, subprocess, sys, time, urllib.error, urllib.request
signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C: stop waiting, without a traceback
url, containers, began = sys.argv[1], sys.argv[2:], time.monotonic()
deadline, told = began + 30, False
probe = urllib.request.Request(url, headers={"User-Agent": "healthcheck"})
state = "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}"
checked = time.monotonic()
while True:
    try:
        urllib.request.urlopen(probe, timeout=2).close()
        break
    except urllib.error.HTTPError as exc:
        if containers and exc.code not in (502, 503, 504):
            sys.exit(3)
        error: OSError = exc
    except OSError as exc:
        error = exc
    waited = time.monotonic() - began
    if time.monotonic() > deadline:
        sys.exit(f"error: {url} did not answer 200 through the router within {waited:.0f} s ({error}): make logs shows why")
    if containers and time.monotonic() - checked > 0.5:
        checked = time.monotonic()
        said = subprocess.run(["docker", "inspect", "--format", state, *containers], capture_output=True, text=True)
        if any(line.split()[:1] != ["running"] or "unhealthy" in line for line in said.stdout.splitlines()):
            sys.exit(3)
        if "starting" in said.stdout:
            deadline = max(deadline, time.monotonic() + 30)
    if waited > 10 and not told:
        print("==> web is not serving yet after 10 s; waiting while it starts (make logs shows what it says)", flush=True)
        told = True
    time.sleep(0.05)
endef
export ROUTED
# How make up, make scale and make debug end: ROUTED on the router's plain
# port, for /healthz unless a page is named ($(call wait-routed,readyz)).
wait-routed = $(HOST_PYTHON) -c "$$ROUTED" http://127.0.0.1:$(WEB_PORT)/$(or $(1),healthz)

# Start a command in the background, in a session of its own: closing the
# terminal that ran make does not end it, and `kill -- -PID` ends all of it.
# Python waits until the child has its session, so make may exit at once.
# (setsid(1) is not on macOS.) Arguments: log file, pid file, command.
define DETACH
import subprocess, sys
log, pid_file, *command = sys.argv[1:]
with open(log, "w") as out:
    child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
with open(pid_file, "w") as out:
    out.write(str(child.pid))
endef
export DETACH

# Live reload: `docker compose watch` copies saved code into web and rebuilds
# on requirements.txt or Dockerfile changes; it runs in the background until
# `make down`. `make up` stops it while it builds, so the two never race.
# WEB_RELOAD=0 (in .env or the environment) turns it all off.
# Canned recipes, so make up, scale and debug start and stop it within
# their own make, after the Docker and Compose checks they already ran.
define start-watch
	@mkdir -p $(dir $(WATCH_PID))
	@if [ "$(WEB_RELOAD)" != 1 ]; then \
		echo "==> live reload is off (WEB_RELOAD=$(WEB_RELOAD)): web runs as on Heroku; make up again after a change"; \
	elif $(watching); then \
		echo "==> live reload: already on (pid $$(cat $(WATCH_PID)))"; \
	else \
		$(note-syncs); \
		$(watch-gone); \
		for attempt in 1 2; do \
			$(HOST_PYTHON) -c "$$DETACH" $(WATCH_LOG) $(WATCH_PID) $(COMPOSE) watch --no-up web; \
			for _ in $$(seq 1 300); do grep -q "Watch enabled" $(WATCH_LOG) 2>/dev/null && break; \
				kill -0 "$$(cat $(WATCH_PID))" 2>/dev/null || break; sleep 0.1; done; \
			grep -q "Watch enabled" $(WATCH_LOG) && break; \
			[ $$attempt = 1 ] && grep -q "exclusive lock" $(WATCH_LOG) || break; \
			$(HOST_PYTHON) bin/watch_lock.py stale $(WATCH_LOG); cleared=$$?; \
			[ $$cleared = 0 ] || { [ $$cleared = 2 ] && break; exit 1; }; \
		done; \
		grep -q "Watch enabled" $(WATCH_LOG) || { echo "error: live reload did not start: $(WATCH_LOG) says why" >&2; cat $(WATCH_LOG) >&2; exit 1; }; \
		echo "==> live reload: watching app/, alembic/ and the image's inputs (log: $(WATCH_LOG), shown by make logs)"; \
	fi
endef

# Whether the last watcher copied anything is kept before its log goes.
# ("Syncing service ..." since Compose 2.30, "Syncing \"web\" ..." before it.)
note-syncs = ! grep -q '^Syncing ' $(WATCH_LOG) 2>/dev/null || touch $(WEB_SYNCED)

define stop-watch
	@if $(watching); then kill -- -"$$(cat $(WATCH_PID))" 2>/dev/null || true; mv $(WATCH_PID) $(WATCH_STOPPED); fi; \
	rm -f $(WATCH_PID); $(note-syncs); : 2>/dev/null > $(WATCH_LOG) || true
endef

# Once a stopped watch has exited (it takes a second or so; make up builds
# meanwhile), its lock is removed: the next watch starts at once, and no
# lock file is left behind (bin/watch_lock.py).
watch-gone = [ ! -f $(WATCH_STOPPED) ] || { $(HOST_PYTHON) bin/watch_lock.py stopped $(call quote,$(PROJECT_NAME)) \
	"$$(cat $(WATCH_STOPPED))"; rm -f $(WATCH_STOPPED); }

.PHONY: watch
watch: compose ## Start live reload again (make up starts it; a failed make up leaves it off)
	@$(web-running) || { echo "error: web is not running, so live reload would have nothing to copy into: make up starts both" >&2; exit 1; }
	@$(web-reloads) || { echo "error: web was started without live reload (WEB_RELOAD=0), so it would not load what the watcher copies in: make up starts it with live reload" >&2; exit 1; }
	$(start-watch)

.PHONY: unwatch
unwatch:
	$(stop-watch)

.PHONY: down
down: compose down-turn unwatch ## Stop and remove the containers (the database volume is kept)
	@echo "==> stopping the stack"
	@$(COMPOSE) down --remove-orphans
	@rm -f $(WEB_SYNCED); $(watch-gone)
	@# Each rebuild after an edit (make migrate, live reload) leaves the image before it untagged.
	@pruned="$$(docker image prune --force \
		--filter "label=com.docker.compose.project=$(PROJECT_NAME)" | grep -c '^deleted: ')"; \
		[ "$${pruned:-0}" = 0 ] || echo "==> removed $$pruned older build(s) of this project's app image"

.PHONY: logs
# Live reload's lines come prefixed as Compose prefixes a service's: read
# line by line in the shell, as some awks (mawk) read a pipe in blocks and
# would hold them back. The follower ends with the Compose logs (make down
# ends those); Ctrl-C ends both. Compose follows one-off dynos too (make
# run, make status), as heroku logs does, but stops with an error (status
# 1) when one is gone before it attached: while the stack runs, it follows
# on from a second before (a line may come twice; none is lost). Ctrl-C's
# 130 ends it; so do six failures in a row, each within 2 s.
logs: compose ## Follow the logs, like heroku logs --tail: every service's and live reload's, or make logs dyno=web (web.2, router)
	@listed="$$($(COMPOSE) ps --all --quiet)" || exit 1; \
	[ -n "$$listed" ] || { echo "==> the stack is down: no logs to follow (make up starts it)"; exit 0; }; \
	source="$$($(HOST_PYTHON) bin/dynos logs $(call quote,$(dyno)))" || exit 1; set -- $$source; \
	if [ -f $(WATCH_LOG) ] && [ "$${1:-web}" = web ] && [ $$# -lt 2 ]; then \
		tail -n 5 -F $(WATCH_LOG) 2>/dev/null | while IFS= read -r line; do printf 'watch    | %s\n' "$$line"; done & fi; \
	trap 'pkill -P $$$$ -x tail 2>/dev/null; exit 130' INT; \
	if [ $$# = 2 ]; then docker logs --follow --tail 100 "$$2"; status=$$?; else from="--tail 100"; quick=0; \
		while started=$$SECONDS; $(COMPOSE) logs --follow $$from $$1; status=$$?; [ $$status = 1 ]; do \
			[ $$((SECONDS - started)) -le 2 ] && quick=$$((quick + 1)) || quick=0; [ $$quick -le 5 ] || break; \
			from="--since $$(( $$(date +%s) - 1 ))"; \
			[ -n "$$($(COMPOSE) ps --quiet $$1 2>/dev/null)" ] || break; \
			echo "==> (a one-off dyno ended as Compose attached to it: following on)" >&2; sleep 0.2; done; fi; \
	pkill -P $$$$ -x tail 2>/dev/null; exit $$status

.PHONY: ps
ps: compose ## List the dynos like heroku ps: type.N, state, since, memory against the dyno size; and live reload
	@$(HOST_PYTHON) bin/dynos ps
	@# A reader that has all it wanted (make ps | head) is no failure: the line goes nowhere, quietly.
	@trap '' PIPE; { if [ "$(WEB_RELOAD)" != 1 ]; then echo "live reload: off (WEB_RELOAD=$(WEB_RELOAD))"; \
	elif $(watching); then echo "live reload: on (pid $$(cat $(WATCH_PID)), log: $(WATCH_LOG))"; \
	elif ! $(web-running); then echo "live reload: off (web is not running)"; \
	elif ! $(web-reloads); then echo "live reload: off (web was started with WEB_RELOAD=0: make up turns it on)"; \
	else echo "live reload: off until make up succeeds (or make watch)"; fi; } 2>/dev/null || :

.PHONY: scale
scale: compose .env scale-turn ## Run N dynos of a type, like heroku ps:scale: make scale web=N [worker=N]
	@$(call build-if-drifted,and every dyno starts afresh on it); \
	$(HOST_PYTHON) bin/dynos scale $(foreach v,$(MAKEOVERRIDES),$(call quote,$(v))) $(if $(filter environment,$(origin web)),$(call quote,web=$(web))) $${drifted:+--recreate}
	@if [ $(call quote,$(web)) != 0 ]; then $(wait-routed); fi
	$(stop-watch)
	$(start-watch)

# As heroku ps:restart: each dyno gets SIGTERM and a new container, so what
# it kept on its filesystem or in memory is gone, as after Heroku's daily
# restart or a deploy (bin/dynos restart). Web restarts on the code it
# serves: when live reload copied code into it, the image is built first.
.PHONY: restart
restart: compose .env restart-turn ## Start dynos afresh in new containers, like heroku ps:restart: make restart [dyno=web]
	@$(HOST_PYTHON) bin/dynos restart --check $(call quote,$(dyno))
	@case $(call quote,$(dyno)) in ""|web|web.*) $(call build-if-drifted,so web restarts on that code);; esac; \
	$(HOST_PYTHON) bin/dynos restart $(call quote,$(dyno))
	@case $(call quote,$(dyno)) in ""|web|web.*) [ -z "$$($(call service-containers,web))" ] || $(wait-routed);; esac
	$(stop-watch)
	$(start-watch)

# Pull the Postgres image in $$image unless it is here, with its progress, or
# stop with one line: $(1) says whose image it is, $(2) adds to the way out.
pull-postgres = docker image inspect --format . "$$image" >/dev/null 2>&1 || { \
	echo "==> pulling $$image, $(1) (once)"; \
	docker pull "$$image" || { echo "error: $$image, $(1), could not be pulled (Docker said why, above): connect and retry, or set POSTGRES_IMAGE to a Postgres image you have (docker images)$(2)" >&2; exit 1; }; }

# A healthy db of the configured image is left as it is: up --wait takes
# about 0.6 s even then, and every migrate, status, psql and db-* command
# starts here. One of another image (.postgres-version changed) is
# recreated, so no command runs on the previous major unnoticed. An image
# not here yet is pulled first, with its progress (up itself is quiet).
.PHONY: db-up
db-up: compose .env upgrade-finished
	@if [ "$$($(COMPOSE) ps --format '{{.Image}} {{.Health}}' db 2>/dev/null)" != "$(DB_IMAGE) healthy" ]; then \
		image=$(call quote,$(DB_IMAGE)); $(call pull-postgres,the database's image); \
		$(COMPOSE) --progress quiet up --detach --wait db || { $(HOST_PYTHON) bin/doctor ports DB_PORT || exit 1; \
			$(COMPOSE) logs --no-log-prefix --tail 1 db >&2; echo "error: the database did not become ready: make logs shows why" >&2; exit 1; }; \
	fi

# One-off processes run the current code, as after a deploy: build first (a
# cached build takes about a second), then run the Procfile type.
.PHONY: image
image: compose .env
	@echo "==> building the app image"
	@$(build-web)

# A build that prints nothing unless it fails, and then why: BuildKit's
# summary of the failed step (a SyntaxError's file and line, pip's error),
# not just "failed to solve".
build-web = mkdir -p .run && { $(build-logged) || $(build-lost-why); } || { \
	{ grep -q '^------$$' .run/build.log && sed -n '/^------$$/,$$p' .run/build.log || tail -n 5 .run/build.log; } >&2; \
	echo "error: the app image did not build (all of it: .run/build.log)" >&2; exit 1; }
build-logged = $(COMPOSE) --progress plain build web > .run/build.log 2>&1
# BuildKit can drop the whole progress of one of two builds that fail at
# the same moment (moby/buildkit#1456): the log then names the failed step
# with no summary of what it said, so the build runs once more to show it.
build-lost-why = { grep -q -e 'executor failed running' -e 'did not complete successfully' .run/build.log \
	&& ! grep -q '^------$$' .run/build.log \
	&& echo "==> Docker lost the failed step's output (another build failed beside it): building once more to show it" >&2 \
	&& $(build-logged); }

# After a migration, recreate web if it runs an older image (live reload
# off), so /readyz compares the database with the code you have; then
# wait-web. Web keeps the live reload it was started with, whatever .env
# says (WEB_RELOAD=0 make up's web stays as Heroku runs it). Commands that only move data (snapshot, restore, pull) wait,
# and never deploy code the user has not started.
define refresh-web
	@if [ -n "$$($(COMPOSE) ps -q web 2>/dev/null)" ] && ! $(watching); then \
		drifted="$$($(drifted-dynos))"; reload=0; ! $(web-reloads) || reload=1; \
		WEB_RELOAD=$$reload $(COMPOSE) --progress quiet up --detach --wait --no-deps --no-build $${drifted:+--force-recreate} web; \
		[ $$reload != 1 ] || echo "note: live reload is off (a make up failed or was stopped): saves do not reach web until make up succeeds, or make watch"; fi
	$(wait-web)
endef

# Wait until web serves the revision the database is now at: with live
# reload a new revision file reaches web a second or so after the save
# (sync, then a worker restart), and a fast migration finishes first; a
# snapshot, a restore or a pull restarts web's workers, and the old ones
# answer 503 for a moment on the sessions that were ended.
define wait-web
	@dynos=$$(( $$($(COMPOSE) ps -q web 2>/dev/null | wc -l) )); \
	if [ "$$dynos" != 0 ]; then \
		$(HOST_PYTHON) -c "$$LOADED" http://127.0.0.1:$(WEB_PORT)/readyz "$$dynos" "$$($(watching) && echo 1)"; fi
endef

# Wait until every web dyno knows the database's revision: /readyz answers
# 200, or lists what is pending. A 503 with nothing pending and a revision
# other than the head means that dyno's code does not contain it: yet, if
# live reload is on and a file under alembic/versions assigns it; else
# never (a snapshot of another branch, an image older than the checkout),
# and /readyz already says so. Anything else (restarting, the router's
# error page) means ask again. The router takes the dynos in turn, so
# twice their number of answers in a row have come from each.
# Arguments: URL, number of dynos, 1 when live reload is on.
define LOADED
import http.client, json, signal, sys, time, urllib.error, urllib.request
sys.path.insert(0, "bin")
from localstack import in_checkout
signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C: stop waiting, without a traceback
url, dynos, syncing = sys.argv[1], int(sys.argv[2]), sys.argv[3:] == ["1"]
probe = urllib.request.Request(url, headers={"User-Agent": "healthcheck"})
def knows():
    try:
        with urllib.request.urlopen(probe, timeout=2):
            return True
    except urllib.error.HTTPError as exc:
        try:
            body = json.load(exc)
        except ValueError:
            return False
    except (OSError, http.client.HTTPException):
        return False
    if not isinstance(body, dict) or body.get("database") != "ok":
        return False
    revision = body.get("revision")
    return bool(body.get("pending")) or revision in (None, body.get("head")) or not (
        syncing and isinstance(revision, str) and in_checkout(revision))
deadline, said, streak = time.monotonic() + 20, False, 0
while streak < 2 * dynos:
    streak = streak + 1 if knows() else 0
    if streak:
        continue
    if not said:
        print("==> waiting for web to serve the database's revision", flush=True)
        said = True
    if time.monotonic() > deadline:
        print("warning: web has not loaded the database's revision within 20 s: make logs shows why", file=sys.stderr)
        break
    time.sleep(0.1)
endef
export LOADED

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

# to=base reverts everything: asked first, before anything is built or started.
.PHONY: downgrade-confirmed
downgrade-confirmed:
	@if [ $(call quote,$(to)) = base ] && [ "$(confirm)" != 1 ]; then \
		if [ ! -t 0 ]; then echo "error: make downgrade to=base deletes every table the migrations made, with its rows: run it in a terminal to confirm, or add confirm=1" >&2; exit 1; fi; \
		printf "Revert every migration of the Compose database, deleting every table they made and its rows (make db-snapshot name=... keeps a copy first)? Type yes: "; \
		read -r answer; [ "$$answer" = yes ] || { echo "error: not confirmed; nothing was changed" >&2; exit 1; }; fi

.PHONY: downgrade
downgrade: downgrade-confirmed image db-up ## Revert the latest migration, or down to a revision: make downgrade [to=REV] (to=base asks first: confirm=1)
	@echo "==> downgrade: alembic downgrade" $(call quote,$(or $(to),-1))
	@$(RUN) web $(if $(to),alembic downgrade $(call quote,$(to)),bin/proc downgrade)
	$(refresh-web)

.PHONY: merge
# After a git merge of branches that each added a revision, the history has
# two heads: a merge revision (no schema change of its own) joins them.
# Alembic's script directory alone: no database needed.
merge: $(STAMP) ## Join the history's heads in a merge revision, as after a git merge of two branches [m="..."]
	@mkdir -p .run; heads="$$($(BIN)/alembic heads 2>.run/heads.err)" || { \
		echo "error: alembic cannot read the history: $$(tail -n 1 .run/heads.err) (make check says more)" >&2; exit 1; }; \
	heads="$$(echo "$$heads" | cut -d' ' -f1 | paste -sd' ' -)"; \
	if [ "$$(echo $$heads | wc -w)" -lt 2 ]; then echo "==> merge: nothing to join: the history has one head ($$heads)"; exit 0; fi; \
	echo "==> alembic merge heads ($$heads) -m" $(call quote,$(or $(m),Merge heads)); \
	$(BIN)/alembic merge -m $(call quote,$(or $(m),Merge heads)) heads && \
	echo "==> make check, then make migrate applies it (and whichever branch's revisions the database lacks)"

.PHONY: revision-message
revision-message:
	@test -n $(call quote,$(m)) || { echo 'error: say what the revision changes: make revision m="Add color to locations"' >&2; exit 1; }

.PHONY: revision
# empty=1: a revision to write by hand, no autogenerate, so no database either.
revision-empty = $(filter 1,$(empty))
revision: revision-message $(STAMP) $(if $(revision-empty),,db-up) ## Autogenerate a migration: make revision m="Add color to locations" [empty=1]
	@$(BIN)/python -m app.migrations head >/dev/null
	@printf "==> alembic revision $(if $(revision-empty),,--autogenerate )-m \"%s\" (into alembic/versions, formatted by ruff: alembic.ini's post_write_hooks)\n" $(call quote,$(m))
	@DATABASE_URL="$(HOST_DATABASE_URL)" \
		$(BIN)/alembic revision $(if $(revision-empty),,--autogenerate )-m $(call quote,$(m))
	@echo "==> $(if $(revision-empty),write its upgrade() and downgrade(),read the new revision (autogenerate is a draft)), then make check and make migrate"

.PHONY: status
status: image db-up ## Show the current revision, the pending ones and, at head, what differs from the models
	@$(RUN) web python -m app.migrations status

.PHONY: seed
seed: image db-up ## Load the demo accounts, locations and favourites (again adds nothing)
	@echo "==> loading the demo data (one-off container, like heroku run python -m app.migrations seed)"
	@$(RUN) web python -m app.migrations seed

.PHONY: psql
psql: db-up ## Open psql on the Compose database, as the role the dynos use (like heroku pg:psql)
	@$(COMPOSE) exec $$([ -t 0 ] || echo -T) db psql -U $(DYNO_ROLE) app

.PHONY: shell
shell: image db-up ## Open a Python shell with the app loaded, in a one-off container
	@$(RUN) $$([ -t 0 ] || echo -T) web flask --app "app:create_app()" shell

.PHONY: run
# cmd's value as typed ($(value)): a $ in it is the dyno's shell's to expand, not make's.
# Not exported either: make would expand it for the recipes' environment, and
# run a $(shell ...) in it on this machine.
unexport cmd
run: cmd-given image db-up ## Run a command in a one-off dyno, like heroku run: make run cmd="python -m app.migrations seed" (cmd=bash)
	@printf '==> running in a one-off dyno, run.1 (like heroku run): %s\n' $(call quote,$(value cmd))
	@$(RUN) $$([ -t 0 ] || echo -T) web sh -c $(call quote,$(value cmd))

.PHONY: cmd-given
cmd-given:
	@[ -n $(call quote,$(value cmd)) ] || { \
		echo 'error: say what to run: make run cmd="python -m app.migrations status" (cmd=bash opens a shell)' >&2; exit 1; }

.PHONY: db-pull
db-pull: db-pull-turn db-up ## Copy the Heroku app's database into the Compose one: make db-pull [from=URL] [confirm=1] [scrub=0]
	@$(HOST_PYTHON) bin/localdb pull $(if $(from),--from $(call quote,$(from)),) $(if $(filter 1,$(confirm)),--yes,) $(if $(filter 0,$(scrub)),--no-scrub,)
	$(wait-web)

.PHONY: db-ps
db-ps: db-up ## List the database's busy sessions, like heroku pg:ps: pid, state, which dyno, for how long, the query
	@$(HOST_PYTHON) bin/localdb ps

.PHONY: db-kill
db-kill: db-up ## Cancel a session's query, like heroku pg:kill: make db-kill pid=N (force=1 ends the session)
	@$(HOST_PYTHON) bin/localdb kill $(if $(filter 1,$(force)),--force,) -- $(call quote,$(pid))

.PHONY: db-push
db-push: db-up ## Copy the Compose database into the Heroku app's empty one: make db-push [confirm=APP] [to=URL]
	@$(HOST_PYTHON) bin/localdb push $(if $(to),--to $(call quote,$(to)),) $(if $(confirm),--confirm $(call quote,$(confirm)),)

.PHONY: db-reset
# The image is built first: a build that fails leaves the database as it was.
db-reset: compose .env db-reset-turn upgrade-finished image ## Drop the Compose database, recreate it, migrate to head (asks first: confirm=1; confirm=volume to delete a volume of another Postgres major)
	@$(HOST_PYTHON) bin/localdb reset $(if $(filter 1,$(confirm)),--yes,)$(if $(filter volume,$(confirm)),--yes-volume,)
	@$(RUN) web bin/proc release
	$(refresh-web)

# After .postgres-version changes: the old major's image serves a copy of
# the volume while the new one restores from it (from_image= if that image
# is not postgres:N).
.PHONY: db-upgrade
db-upgrade: compose .env db-upgrade-turn ## Carry the Compose database over to .postgres-version's major, like heroku pg:upgrade [from_image=IMAGE]
	@$(HOST_PYTHON) bin/localdb upgrade $(if $(from_image),--from-image $(call quote,$(from_image)),)

.PHONY: db-snapshot
db-snapshot: db-snapshot-turn db-up ## Save the Compose database, revision included: make db-snapshot name=before-x
	@test -n $(call quote,$(name)) || { echo "error: name the snapshot: make db-snapshot name=before-x" >&2; exit 1; }
	@$(HOST_PYTHON) bin/localdb snapshot -- $(call quote,$(name))
	$(wait-web)

.PHONY: db-restore
db-restore: db-restore-turn db-up ## Put a snapshot back in place of the Compose database: make db-restore name=before-x
	@test -n $(call quote,$(name)) || { echo "error: name the snapshot to restore: make db-restore name=before-x (make db-snapshots lists them)" >&2; exit 1; }
	@$(HOST_PYTHON) bin/localdb restore -- $(call quote,$(name))
	$(wait-web)

.PHONY: db-snapshots
db-snapshots: db-up ## List the snapshots: name, revision, when taken, size
	@$(HOST_PYTHON) bin/localdb list

.PHONY: db-snapshot-rm
db-snapshot-rm: db-up ## Delete a snapshot: make db-snapshot-rm name=before-x
	@test -n $(call quote,$(name)) || { echo "error: name the snapshot to delete: make db-snapshot-rm name=before-x" >&2; exit 1; }
	@$(HOST_PYTHON) bin/localdb remove -- $(call quote,$(name))

.PHONY: terminal
terminal:
	@test -t 0 || { echo "error: make $(MAKECMDGOALS) needs a terminal (pdb reads from it): run it in a terminal" >&2; exit 1; }

# Debugging is of a running stack: web is replaced by the debug dyno behind
# the router, and WEB_DIRECT_PORT must be free before web is stopped.
.PHONY: debuggable
debuggable: compose
	@[ -n "$$($(COMPOSE) ps --status running --quiet router)" ] || { echo "error: the stack is not up, so there is no router to debug behind: make up, then make debug" >&2; exit 1; }
	@$(HOST_PYTHON) bin/doctor ports WEB_DIRECT_PORT

.PHONY: debug
debug: terminal debug-turn debuggable image db-up unwatch ## Run one web dyno in the foreground for breakpoint(), also on 127.0.0.1:WEB_DIRECT_PORT; Ctrl-C ends it
	@echo "==> stopping web; running web.1 in the foreground: one worker, one thread, no timeout"
	@echo "    through the router: http://127.0.0.1:$(WEB_PORT) (its 30 s timeout applies); straight to the dyno: http://127.0.0.1:$(WEB_DIRECT_PORT)"
	@echo "    a breakpoint() in a view stops here; Ctrl-C ends debugging and starts web again"
	@$(COMPOSE) --progress quiet stop web
	@$(COMPOSE) --progress quiet rm --force web
	@$(COMPOSE) run --rm --no-deps --name "$(PROJECT_NAME)-web-1" --publish "127.0.0.1:$(WEB_DIRECT_PORT):$(DYNO_PORT)" \
		-e WEB_DEBUG=1 web bin/proc web; \
	echo "==> starting web again, on an image with what you saved while debugging"; \
	( $(build-web) ) || echo "==> web runs the image from before make debug" >&2; \
	$(COMPOSE) --progress quiet up --detach --wait --no-deps --no-build web
	@$(wait-routed)
	$(start-watch)

# honcho with .env, and then the Compose database's URL on DB_PORT, and the
# port, address and live reload as make reads them (honcho lets the later file win,
# over the environment too: PORT=5003 or WEB_RELOAD=0 make local would
# otherwise still get .env's, where make up takes them).
HONCHO = PATH="$(abspath $(BIN)):$$PATH" $(BIN)/honcho --env .env,$(LOCAL_ENV)
LOCAL_ENV := .run/local.env

.PHONY: local-env
local-env: .env
	@mkdir -p $(dir $(LOCAL_ENV)) && printf 'DATABASE_URL=%s\nPORT=%s\nWEB_HOST=%s\nWEB_RELOAD=%s\n' "$(HOST_DATABASE_URL)" "$(LOCAL_PORT)" "$(LOCAL_HOST)" "$(WEB_RELOAD)" > $(LOCAL_ENV)

.PHONY: local
local: $(STAMP) db-password db-up local-env ## Run the Procfile on the host with honcho: release, then web (on PORT, 5002) and your other dyno types
	@PORT=$(LOCAL_PORT) $(HOST_PYTHON) bin/doctor ports PORT >/dev/null || exit 1
	@echo "==> release (honcho run: .env, and the Compose database on 127.0.0.1:$(DB_PORT))"
	@trap 'echo "==> interrupted: the release process was stopped (a revision it was applying rolled back): make status shows where the database is" >&2; trap - INT; kill -INT $$$$' INT; \
	$(HONCHO) run bin/proc release || { echo "error: the release process failed (above), so web was not started (as on Heroku): fix it, then make local" >&2; exit 1; }
	@others="$$($(HOST_PYTHON) bin/dynos others)" || exit 1; \
	echo "==> web on http://127.0.0.1:$(LOCAL_PORT)$${others:+, and $$others} (honcho start web$${others:+ $$others}; Ctrl-C or closing the terminal stops it; honcho stops all processes when one exits)"; \
	$(HOST_PYTHON) bin/local env $(HONCHO) start web $$others

# --- Heroku --------------------------------------------------------------------

.PHONY: doctor
doctor: ## Check Docker, Compose, ports, the image's Python and the database's Postgres; with the Heroku CLI, the app against this project
	@$(HOST_PYTHON) bin/doctor

.PHONY: heroku-create
heroku-create: ## Create the Heroku app: container stack, Postgres at .postgres-version's major, a SECRET_KEY (name=my-maps)
	@printf '%s\n' $(call quote,$(name)) | grep -Eqx '[a-z][a-z0-9-]{1,28}[a-z0-9]' || { \
		echo "error: name the app as Heroku names apps, 3 to 30 of a-z, 0-9 and -, from a letter to a letter or digit: make heroku-create name=my-maps" >&2; exit 1; }
	@$(HOST_PYTHON) bin/heroku_cli.py cli || exit 1
	@echo "==> heroku create $(name) --stack container"
	@heroku create $(name) --stack container
	@echo "==> heroku addons:create heroku-postgresql --app $(name) --wait -- --version=$(POSTGRES_MAJOR) (.postgres-version's major; until it is ready)"
	@heroku addons:create heroku-postgresql --app $(name) --wait -- --version=$(POSTGRES_MAJOR) || { \
		echo "error: $(name) exists without its database: heroku addons:create heroku-postgresql --app $(name) -- --version=$(POSTGRES_MAJOR), then heroku config:set SECRET_KEY=... --app $(name)" >&2; exit 1; }
	@echo "==> heroku config:set SECRET_KEY=<new random key> --app $(name) (the key is not printed)"
	@heroku config:set --app $(name) \
		SECRET_KEY="$$($(new-secret-key))" > /dev/null || { \
		echo "error: $(name) and its database exist, without a SECRET_KEY: heroku config:set SECRET_KEY=\$$(python3 -c 'import secrets; print(secrets.token_hex(32))') --app $(name)" >&2; exit 1; }
	@remote="$$(git remote get-url heroku 2>/dev/null)"; case "$$remote" in \
		*/$(name).git) echo "==> $(name) is ready: make heroku-deploy" ;; \
		"") echo "==> $(name) is ready: HEROKU_APP=$(name) make heroku-deploy (or heroku git:remote --app $(name))" ;; \
		*) echo "==> $(name) is ready; the git remote heroku is another app's ($$remote): HEROKU_APP=$(name) make heroku-deploy" ;; esac

.PHONY: heroku-deploy
heroku-deploy: ## Deploy with heroku.yml: container stack, git push, release runs migrations
	@$(heroku-app); \
	$(HOST_PYTHON) bin/heroku_cli.py committed || exit 1; \
	echo "==> heroku stack:set container --app $$app"; heroku stack:set container --app "$$app" && \
	echo "==> git push https://git.heroku.com/$$app.git HEAD:main (Heroku builds the Dockerfile, runs release, then web)" && \
	git push "https://git.heroku.com/$$app.git" HEAD:main

.PHONY: heroku-migrate
heroku-migrate: ## Run the migrate process on Heroku (heroku run)
	@$(heroku-app); echo "==> heroku run --exit-code --app $$app -- bin/proc migrate"; \
	heroku run --exit-code --app "$$app" -- bin/proc migrate

# --- Development ---------------------------------------------------------------

.PHONY: venv
venv: $(STAMP) ## Create the virtualenv with the pinned dependencies

# The throwaway Postgres's image, as devtools/project.py's postgres_image() picks it (a shell expression).
TEST_POSTGRES_IMAGE = $${POSTGRES_IMAGE:-postgres:$(POSTGRES_MAJOR)}
# What the suite runs against, for the line each test target prints first (a shell expression).
TEST_DATABASE = $${TEST_DATABASE_URL:+TEST_DATABASE_URL}$${TEST_DATABASE_URL:-container from $(TEST_POSTGRES_IMAGE)}

# Before pytest starts: the engine answers and the throwaway Postgres's image
# is here, pulled once with its progress. testcontainers pulls in silence,
# and when Docker was down or the pull failed, every test that needs the
# database failed with the same traceback. Nothing to do with TEST_DATABASE_URL.
.PHONY: test-database
test-database:
	@[ -n "$$TEST_DATABASE_URL" ] || { \
		{ command -v docker >/dev/null && $(engine_answers); } || { echo "error: the tests' Postgres runs in Docker, and no Docker engine answers: start it, or set TEST_DATABASE_URL to a Postgres server of your own" >&2; exit 1; }; \
		image="$(TEST_POSTGRES_IMAGE)"; $(call pull-postgres,the tests' Postgres,$(comma) or TEST_DATABASE_URL to a server); }

.PHONY: test
test: $(STAMP) test-database ## Run the test suite against a throwaway Postgres (testcontainers)
	@echo "==> pytest (database: $(TEST_DATABASE))"
	@$(BIN)/pytest $(PYTEST_ARGS)

# The tests marked docker build the image or start containers and Compose
# stacks; copies_the_suite runs the suite again in a copy. The rest need
# only the one throwaway Postgres.
QUICK := not docker and not copies_the_suite

.PHONY: test-quick
test-quick: $(STAMP) test-database ## Run the suite without image builds or Compose stacks: app, API, migrations, checks
	@echo "==> pytest -m '$(QUICK)' (make test runs every test; database: $(TEST_DATABASE))"
	@$(BIN)/pytest $(PYTEST_ARGS) -m "$(QUICK)"

.PHONY: bench
bench: $(STAMP) compose ## Measure image size, start time, warm make up, live reload, throughput, make test
	@command -v wrk >/dev/null || { echo "error: wrk is not installed: apt-get install wrk" >&2; exit 1; }
	@$(BIN)/python bench/bench.py

.PHONY: lint
lint: $(STAMP) ## Check style with ruff (lint and format)
	@echo "==> ruff check"
	@$(BIN)/ruff check .
	@echo "==> ruff format --check"
	@$(BIN)/ruff format --check .

# Every check runs even when an earlier one fails, so one run shows every finding.
.PHONY: check
check: $(STAMP) ## Run every check, then fail if any failed: ruff, format, mypy, one head, squawk, alembic check
	@failed=""; \
	echo "==> ruff check"; $(BIN)/ruff check . || failed="$$failed ruff-check"; \
	echo "==> ruff format --check"; $(BIN)/ruff format --check . || failed="$$failed ruff-format"; \
	echo "==> mypy (strict)"; $(BIN)/mypy || failed="$$failed mypy"; \
	$(BIN)/python -m app.migrations check || failed="$$failed migrations"; \
	if [ -n "$$failed" ]; then echo "error: make check failed:$$failed (every finding is listed above)" >&2; exit 1; fi; \
	echo "==> make check: every check passed"

.PHONY: format
# Fix, then format (which wraps long lines), then list what is left for you:
# a finding ruff cannot fix must not keep the formatting from running.
format: $(STAMP) ## Fix what ruff can fix and format the code; list what is left
	@echo "==> ruff check --fix"
	@$(BIN)/ruff check --fix --exit-zero --quiet .
	@echo "==> ruff format"
	@$(BIN)/ruff format .
	@echo "==> ruff check (what is left needs your hand)"
	@$(BIN)/ruff check .

.PHONY: lock
lock: $(STAMP) ## Re-pin requirements*.txt from pyproject.toml with uv pip compile (for every Python, 3.11 up)
	@echo "==> resolving runtime dependencies into requirements.txt"
	@$(BIN)/uv pip compile pyproject.toml --universal --quiet --custom-compile-command "make lock" -o requirements.txt
	@echo "==> resolving development dependencies into requirements-dev.txt (runtime pins kept)"
	@$(BIN)/uv pip compile pyproject.toml --universal --quiet --custom-compile-command "make lock" \
		--extra dev --constraint requirements.txt -o requirements-dev.txt
	@echo "==> requirements.txt and requirements-dev.txt updated: make venv installs them"

.PHONY: clean
clean: unwatch ## Remove the containers, the database volume (snapshots too), the app image, the virtualenv and caches
	@if $(engine_answers); then { $(own-project); } && echo "==> removing containers and the database volume" && \
		$(COMPOSE) down -v --remove-orphans; fi
	@$(watch-gone)
	@# The app image and the older builds live reload left, by the label Compose gives what it builds.
	@if $(engine_answers); then \
		built="$$(docker image ls --quiet --filter "label=com.docker.compose.project=$(PROJECT_NAME)" | sort -u)" && \
		if [ -n "$$built" ]; then echo "==> removing the app images Compose built for $(PROJECT_NAME)"; docker image rm --force $$built >/dev/null; fi; fi
	@if [ -f $(UPGRADE_MARK) ] && $(engine_answers); then \
		left="$$(cut -d' ' -f1 $(UPGRADE_MARK))"; echo "==> removing $$left, left by a make db-upgrade that did not finish"; \
		docker rm --force --volumes "$$left-server" >/dev/null 2>&1; docker volume rm "$$left" >/dev/null; fi
	@echo "==> removing $(VENV) and caches"
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis .run
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
