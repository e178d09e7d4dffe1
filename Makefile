# The commands a newcomer types. `make test` and `make demo` work from a fresh clone with
# only the machine's toolchain: Python 3.11+, Java 17+ and Maven.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: test demo demo-tls lint typecheck unit venv lock clean

# Create .venv and install ssegate with its dev tools, pinned by constraints.txt.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; sys.exit("ssegate needs Python 3.11+, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --constraint constraints.txt --editable '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# Lint, types, then the whole suite (unit and integration, against a real Kafka broker).
test: lint typecheck
	$(BIN)/pytest

# Local Kafka, topic `events`, a stock-price producer and the gateway on port 7114.
# EXAMPLE picks a directory of examples/: fanout (default); secure (a JWT guard, with the
# demo's own token issuer on port 7115: examples/secure/ssegate.yaml says how to get a token);
# avro (Avro records and a schema registry on port 7116, fetched on first use; Java 21+).
EXAMPLE ?= fanout
demo: $(STAMP)
	$(BIN)/ssegate demo --config examples/$(EXAMPLE)/ssegate.yaml

# The same over HTTPS, with a certificate from a local CA the demo makes (docs/tls.md).
demo-tls: $(STAMP)
	$(BIN)/ssegate demo --tls --config examples/$(EXAMPLE)/ssegate.yaml

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

# benchmarks/ is strict too, with its own config: overrides for the modules it imports that
# are installed only in its tool and peer venvs (benchmarks/mypy.ini).
typecheck: $(STAMP)
	$(BIN)/mypy --strict src
	$(BIN)/mypy --config-file benchmarks/mypy.ini benchmarks

unit: $(STAMP)
	$(BIN)/pytest tests/unit

# Re-pin constraints.txt from what pyproject.toml resolves to today.
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --editable '.[dev]'
	.lock-venv/bin/pip freeze --exclude-editable | grep -v '^-e ' > constraints.txt
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

# --- Benchmarks (benchmarks/README.md, docs/performance.md) -------------------------------
# `make bench` runs every scenario (about 30 minutes); `make bench SCENARIO=fanout` one of
# idle, fanout, filtered, resume-storm, catch-up, workers, overload, tls-http2, schemas.
# Peers are installed on first use (benchmarks/.venv-peers, apt-get nginx + libnginx-mod-nchan).
SCENARIO ?=
BENCH_TOOLS := benchmarks/.venv-tools/bin/python

.PHONY: bench bench-quick bench-report bench-lint

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run $(if $(SCENARIO),--scenario $(SCENARIO))

bench-quick: $(STAMP)
	$(BIN)/python -m benchmarks.run --quick $(if $(SCENARIO),--scenario $(SCENARIO))

bench-report: $(STAMP)
	$(BIN)/python -c 'from benchmarks import install; install.tools_venv()'
	$(BENCH_TOOLS) -m benchmarks.report

bench-lint: $(STAMP)
	$(BIN)/ruff check benchmarks tests/benchmarks
	$(BIN)/ruff format --check benchmarks tests/benchmarks
