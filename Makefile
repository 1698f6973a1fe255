# lockerhub: `make run` starts the demo, `make test` runs the whole suite. Both set everything up.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
# System packages the tests run for real (a broker, Prometheus and promtool; the operator guide
# also runs sqlite3, openssl and curl; the simulation report is checked in headless chromium;
# the PostgreSQL store's tests start their own cluster with initdb and pg_ctl).
SYSTEM_BINARIES := mosquitto:mosquitto prometheus:prometheus promtool:prometheus sqlite3:sqlite3 openssl:openssl curl:curl chromium:chromium pg_ctl:postgresql

.PHONY: run test test-fast lint proto bench soak mutate system-deps venv clean

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[dev,bench,embedded-broker]'
	@touch $(STAMP)

venv: $(STAMP)

## system-deps: apt-get install what the tests need when it is missing (and we may)
system-deps:
	@missing=""; for pair in $(SYSTEM_BINARIES); do bin=$${pair%%:*}; pkg=$${pair##*:}; \
	  command -v $$bin >/dev/null 2>&1 || [ -x /usr/sbin/$$bin ] || compgen -G "/usr/lib/postgresql/*/bin/$$bin" >/dev/null || missing="$$missing $$pkg"; done; \
	missing=$$(echo $$missing | tr ' ' '\n' | sort -u | tr '\n' ' '); \
	if [ -n "$${missing// /}" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing system packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else \
	    echo "error: missing system packages:$$missing. Install them (sudo apt-get install$$missing) and re-run." >&2; exit 1; \
	  fi; \
	fi

## run: start the whole platform on embedded defaults with 20 simulated cabinets
run: $(STAMP)
	$(VENV)/bin/lockerhub demo

## test: the whole suite against real mosquitto, gRPC, SQLite and Prometheus
test: $(STAMP) system-deps
	$(PY) -m pytest -m "not slow" -p no:cacheprovider

## lint: ruff and mypy (strict) on the project's code
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

## proto: regenerate lockerhub.v1 from protos/ (the tests fail when it is stale)
proto: $(STAMP)
	$(PY) protos/generate.py

## bench: every tests/benchmarks/bench_*.py, each printing figures next to a same-run baseline
bench: $(STAMP) system-deps
	@set -e; for script in tests/benchmarks/bench_*.py; do \
	  echo "== $$script"; $(PY) $$script; done

## mutate: mutation score per module (tests/mutation/targets.toml; docs/testing.md).
## MODULES="lockerhub.codec edge.outbox" picks some, MUTATE_JOBS=2 runs mutants in parallel.
MODULES ?=
MUTATE_JOBS ?= 1
mutate: $(STAMP) system-deps
	$(PY) tools/mutate.py --jobs $(MUTATE_JOBS) $(MODULES)

## soak: the long variants of soak and scale tests (marked slow; `make test` runs short ones)
soak: $(STAMP) system-deps
	$(PY) -m pytest -m slow -p no:cacheprovider

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
