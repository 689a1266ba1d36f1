# Glasshouse: set-up, run and test on one machine.
#   make run    set up, then start web + worker + beat (no database server, broker or S3 needed)
#   make test   set up, start PostgreSQL + Redis if down, run pytest (needs root for apt on first run)
#   make test-fast  the same without the heavy tests (browser, Node boots, workers)

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV        := .venv
PY          := $(VENV)/bin/python
DATA_DIR    := $(or $(GLASSHOUSE_DATA_DIR),var)
PORT        ?= 8000

# `make test` talks to the real servers on this machine. Redis db 15 (and 14 to 12) is the test
# suite's own: the celery_worker fixture flushes it at the start of a session.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/glasshouse
TEST_REDIS_URL    ?= redis://127.0.0.1:6379/15
PYTEST_ARGS       ?=
# .ci/run sets ALLOW_NO_TESTS=1: pytest's exit 5 (no tests collected) then counts as success.
ALLOW_NO_TESTS    ?=

STAMP := $(VENV)/.requirements-installed

# Python caches the bytecode of what it imports (the venv is installed --no-compile, below), unless
# PYTHONDONTWRITEBYTECODE is set, as some shells and CI images do: then every process the suite
# starts (pytest's four, each Celery worker, each manage.py) compiles Django, Celery and the rest
# from source again (a quarter of the CPU of the worker tests here). Not passed on to recipes.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: help venv runtime setup run test test-fast lint lock lock-check bench bench-load services chromium nginx webkit firefox clean

help:
	@echo "make run     set up and start Glasshouse on http://127.0.0.1:$(PORT)/"
	@echo "make test    set up and run the test suite (PostgreSQL, Redis, Chromium, WebKitGTK, Firefox ESR)"
	@echo "make test-fast  the unit tests only (no browser, no Node boots, no workers): under 2 minutes"
	@echo "make lint    ruff and mypy (the type checker); make test runs it too"
	@echo "make lock    regenerate the plugin catalog lock files (python -m builder.lock)"
	@echo "make lock-check  regenerate the locks from PyPI and compare with the committed ones (needs PyPI)"
	@echo "make bench   reader benchmark: issue 10's table, gallery vs runtime floor and native Datasette (bench/readers.py; BENCH_ARGS=...)"
	@echo "make bench-load  50 concurrent uploads, every build followed to its end (bench/load.py; LOAD_ARGS=...)"
	@echo "make setup   venv + Pyodide runtime + migrate + collectstatic"

# --- set-up -------------------------------------------------------------------

venv: $(STAMP)

# Re-run only when requirements.txt changes (or the venv's interpreter is gone).
$(STAMP): requirements.txt
	@if ! $(PY) -c 'import sys; assert sys.version_info >= (3, 12)' 2>/dev/null; then \
	    python=$$(bash deploy/find-python.sh); \
	    echo "Creating $(VENV) with $$python ($$($$python --version))"; \
	    rm -rf $(VENV); \
	    $$python -m venv $(VENV); \
	fi
	@echo "Installing requirements.txt into $(VENV) (about a minute on a fresh machine) ..."
	@# -qq: the machine-wide pip config names extra indexes that lack most projects; pip warns per project.
	@# --no-compile: Python compiles what it imports on first use (and caches it); compiling every
	@# installed module up front took half of this step (66 -> 37 s here).
	$(VENV)/bin/pip install -qq --disable-pip-version-check --no-compile -r requirements.txt
	@touch $@

# Pyodide's core runtime, from the npm registry: the version and integrity builder/pyodide.py pins.
runtime:
	@bash deploy/install-node.sh
	@bash deploy/fetch-pyodide.sh

setup: venv runtime
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0

# --- run ----------------------------------------------------------------------

# honcho gives the worker PORT+100; these keep its gallery URLs on the web port.
run: export PORT := $(PORT)
run: export CONTENT_PORT ?= $(PORT)
run: export APP_URL ?= http://127.0.0.1:$(PORT)
run: setup
	@DATA_DIR=$(DATA_DIR) bash deploy/ensure-admin.sh $(PY)
	@echo
	@echo "Glasshouse is starting (web + build worker + beat for the build sweeper; Ctrl-C stops them all):"
	@echo "  app            $(APP_URL)/"
	@echo "  sign up        $(APP_URL)/accounts/signup/   (emails, e.g. address verification, are printed below)"
	@echo "  publish form   $(APP_URL)/publish/"
	@echo "  my galleries   $(APP_URL)/mine/"
	@echo "  admin          $(APP_URL)/admin/   user admin, password in $(DATA_DIR)/admin-password.txt (Moderation queue)"
	@echo "  galleries      http://<gallery-id>.$(or $(CONTENT_DOMAIN),localhost):$(CONTENT_PORT)/"
	@echo "  data folder    $(DATA_DIR)/ (SQLite database, uploads, bundles, broker queue)"
	@echo
	exec $(VENV)/bin/honcho start -f deploy/Procfile -d . -p $(PORT)

# --- tests --------------------------------------------------------------------

chromium:
	@bash deploy/install-chromium.sh

# Debian's nginx, for the tests that run deploy/nginx/ in front of the test servers, and
# Debian's docker-compose, for the test that validates deploy/compose.yaml (`config`; no daemon needed).
nginx:
	@bash deploy/apt-install.sh nginx nginx-light
	@bash deploy/apt-install.sh docker-compose docker-compose

# WebKitGTK (Safari's engine family), for tests/e2e/test_webkit_in_browser.py: Debian's WebKitWebDriver
# (webkit2gtk-driver, which brings the MiniBrowser it drives) and Xvfb, the display MiniBrowser
# needs (it has no headless mode). Selenium, which drives it, is in requirements.txt.
webkit:
	@bash deploy/apt-install.sh WebKitWebDriver webkit2gtk-driver --no-install-recommends
	@bash deploy/apt-install.sh Xvfb xvfb --no-install-recommends

# Firefox ESR (Gecko), for tests/e2e/test_firefox_in_browser.py: Debian's firefox-esr, driven over
# WebDriver BiDi by puppeteer-core (pinned in tests/firefox/package-lock.json; no browser download).
firefox:
	@bash deploy/apt-install.sh firefox-esr firefox-esr
	@cd tests/firefox && { [ -d node_modules/puppeteer-core ] || npm ci --no-audit --no-fund --loglevel=error; }

services:
	@bash deploy/services.sh

# $(call run_pytest,<extra pytest arguments>): pytest against the test servers; PYTEST_ARGS come last and win.
define run_pytest
	@rc=0; DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) \
	    DJANGO_SETTINGS_MODULE=gallery.project.settings \
	    $(VENV)/bin/pytest $(1) $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ] && [ -n "$(ALLOW_NO_TESTS)" ]; then \
	    echo "pytest collected no tests (exit 5); ALLOW_NO_TESTS is set, so that counts as success"; rc=0; \
	fi; \
	exit $$rc
endef

# The heavy tests: Chromium (e2e), a Pyodide boot in Node or a full build (slow), a Celery worker
# or moto (integration), PyPI (network). tests/plugins/suite.py marks tests by the fixtures they use.
FAST_MARKERS := not slow and not e2e and not integration and not network

# -n 4 --dist loadfile: four pytest processes (pytest-xdist), a test file at a time each. The suite
# waits on browsers, workers and builds, so several keep two cores busy (pytest 18.6 min in one
# process, 12.1 in two, 10.1 in three, 9.6 in four here; the cores are then the limit). Each process
# has its own test database (_gwN), Redis database (15 down to 12: tests/plugins/suite.py) and servers,
# and they share the session's prebuilt bundles.
# --durations: the 25 slowest phases (set-up, call, tear-down) close the report, to watch the suite's time.
TEST_PROCESSES ?= 4
test: setup lint chromium webkit firefox nginx services
	$(call run_pytest,-n $(TEST_PROCESSES) --dist loadfile --durations=25)

# Units only: no browser, no Node boot, no worker process; under 2 minutes. Two pytest processes, one
# per core (1,452 tests: 128 s in one process, 76 s in two, here with one core busy elsewhere).
FAST_PROCESSES ?= 2
test-fast: setup services
	$(call run_pytest,-n $(FAST_PROCESSES) --dist loadfile -m "$(FAST_MARKERS)")

# ruff, then mypy with django-stubs over gallery/, builder/ and worker_shell/ (mypy.ini). make test runs it
# first, so CI does too; mypy's cache lives in .mypy_cache (about 10 s from cold, 2 s warm).
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

lock: venv
	$(PY) -m builder.lock

# Not part of `make test`: it fails whenever PyPI publishes a newer dependency, which says
# nothing about our code. Run it when updating the catalog.
lock-check: venv
	$(VENV)/bin/pytest -m network tests/builder/test_lock.py

# Reader benchmark: one table of issue 10's figures side by side (bench/readers.py), in headless
# Chromium against gunicorn + a Celery worker on loopback. About 10-15 minutes on a quiet 2-core
# machine, the big database included. BENCH_ARGS="--runs 5", "--skip-big", "--big-rows N", "--1gb".
BENCH_ARGS ?=
bench: setup chromium
	$(PY) bench/readers.py $(BENCH_ARGS)

# Load benchmark: gunicorn, a prefork Celery worker, beat and moto on free ports, PostgreSQL
# database glasshouse_load and Redis db 10 (both wiped; make test uses 12-15); 7 to 14 minutes on 2 cores.
# The worker-loss variant: make bench-load LOAD_ARGS="--kill-worker-at 0.5"
LOAD_ARGS ?=
bench-load: setup services
	$(PY) bench/load.py $(LOAD_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
	@echo "Left $(DATA_DIR)/ alone (database, uploads, bundles): remove it yourself if you mean to."
