# The README's two commands live here: `make toy` and `make test`.
# Each builds its own virtual environment; nothing is installed globally
# except Debian's GnuTLS tools (a real peer for the interop tests) and
# Chromium (a real browser for the page's tests).

PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: toy toy-unsandboxed test lint typecheck pytest fuzz-ci system-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,fuzz]'
	touch $(STAMP)

## Build the reproducible toy unikernel image and run it, sandboxed, on
## 127.0.0.1 (toy credentials, dummy secret). `make toy-unsandboxed` runs the
## same toy appliance as a plain process.
toy: $(STAMP)
	$(BIN)/python -m unikernel build toy --out out
	$(BIN)/pinata toy --instructions-only
	$(BIN)/python -m unikernel run out/pinata-unikernel-toy.tar.gz

toy-unsandboxed: $(STAMP)
	$(BIN)/pinata toy

## Set up and run everything CI runs: lint, strict typing, the fuzzers for a
## bounded time, the test suite (last, so its summary closes the output).
test: $(STAMP) system-deps lint typecheck fuzz-ci pytest

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy pinata

pytest: $(STAMP)
	$(BIN)/pytest

# Every atheris harness for a bounded time on a throwaway copy of the
# committed corpus; any finding fails the run and prints its reproducer.
FUZZ_BUDGET ?= 240
fuzz-ci: $(STAMP)
	$(BIN)/python -m fuzz ci --budget $(FUZZ_BUDGET)

# GnuTLS is a peer for interop tests, Chromium the browser for the page's
# tests; installed when we may (root + apt). Without them those tests skip
# and say why.
system-deps:
	@if ! command -v gnutls-cli >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gnutls-bin >/dev/null) \
		|| echo "warning: gnutls-bin could not be installed; GnuTLS interop tests will be skipped"; \
	fi
	@if ! command -v chromium >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
		|| echo "warning: chromium could not be installed; the page's browser tests will be skipped"; \
	fi

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
