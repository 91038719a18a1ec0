# The README's two commands live here: `make toy` and `make test`.
# Each builds its own virtual environment; nothing is installed globally
# except Debian packages that tests use as real peers: GnuTLS's tools (interop),
# HAProxy (the load balancer in front of appliances) and Chromium (the page).

PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: toy toy-unsandboxed test lint typecheck pytest fuzz-ci conformance system-deps clean

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
## bounded time, tlsfuzzer's conformance scripts, the test suite (last, so its
## summary closes the output).
test: $(STAMP) system-deps lint typecheck fuzz-ci conformance pytest

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

# tlsfuzzer (../shared/tlsfuzzer) against our engine and the toy appliance on
# loopback, judged against tests/conformance/tlsfuzzer_expectations.toml.
# tlsfuzzer needs tlslite-ng 0.9 (kyber-py for its ML-KEM script), while the
# interop tests use tlslite-ng 0.8 as a peer: so a virtualenv of its own.
TLSFUZZER_VENV  ?= .venv-tlsfuzzer
TLSFUZZER_STAMP := $(TLSFUZZER_VENV)/.installed

$(TLSFUZZER_STAMP):
	$(PYTHON) -m venv $(TLSFUZZER_VENV)
	$(TLSFUZZER_VENV)/bin/pip install --quiet --upgrade pip
	$(TLSFUZZER_VENV)/bin/pip install --quiet tlslite-ng==0.9.0b2 ecdsa==0.19.2 kyber-py==1.2.0
	touch $(TLSFUZZER_STAMP)

conformance: $(STAMP) $(TLSFUZZER_STAMP)
	$(BIN)/python -m tests.conformance.run --tlsfuzzer-python $(TLSFUZZER_VENV)/bin/python

# Real peers for the tests, installed when we may (root + apt), each only if
# missing: GnuTLS's tools (interop), HAProxy (tests/appliance/test_haproxy.py)
# and Chromium (the page's browser tests). Without them those tests skip and
# say why.
SYSTEM_DEPS := gnutls-cli:gnutls-bin haproxy:haproxy chromium:chromium
system-deps:
	@missing=""; for pair in $(SYSTEM_DEPS); do \
		cmd=$${pair%%:*}; pkg=$${pair#*:}; \
		command -v $$cmd >/dev/null 2>&1 || [ -x /usr/sbin/$$cmd ] || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
		|| echo "warning: could not install$$missing; the tests that need them will be skipped"; \
	fi

clean:
	rm -rf $(VENV) $(TLSFUZZER_VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
