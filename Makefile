# Floe — two commands: `make dev` runs the product, `make test` passes the suite.
# Every target installs what it needs, idempotently (apt packages, .venv, npm packages).
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV      := .venv
PY        := $(VENV)/bin/python
PIP       := $(VENV)/bin/pip
PYTHON313 := $(firstword $(wildcard /root/.pyenv/versions/3.13*/bin/python3) $(shell command -v python3.13 2>/dev/null))
APT_PACKAGES := clang llvm libbpf-dev bpftool libxdp-dev xdp-tools iproute2 ethtool wrk nghttp2-client ngtcp2-client \
                tcpdump libpcap-dev ca-certificates nfdump
STAMP := $(VENV)/.floe-installed
PROTOS := $(shell find proto -name '*.proto' 2>/dev/null)
export FLOE_DATA_DIR ?= $(CURDIR)/var

.PHONY: help install apt venv proto protoc bpf dev serve test test-unit test-integration bench lint clean \
        webui webui-deps webui-test chromium node-check screenshots

help:
	@echo "make dev    - install what is missing, build, start control plane + dataplane (demo traffic) on SQLite"
	@echo "make test   - install test needs and run every suite"
	@echo "make bench  - run the benchmarks in bench/ (results: docs/benchmarks.md)"
	@echo "make lint   - ruff, mypy, bandit, pip-audit"

apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "apt: installing$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
	@if [ -z "$(PYTHON313)" ]; then \
	  echo "apt: installing python3.13"; apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3.13 python3.13-venv >/dev/null; fi

$(PY):
	@py="$(PYTHON313)"; [ -n "$$py" ] || py=$$(command -v python3.13); \
	echo "venv: creating $(VENV) with $$py"; $$py -m venv $(VENV) && $(PIP) install -q --upgrade pip

# The gRPC code is generated into floe/ BEFORE the editable install: setuptools maps the
# packages that exist at install time, and without floe/ the `floe` console script could not
# import it (python -m from the repository root could, which hid the problem from the tests).
$(STAMP): $(PY) pyproject.toml requirements.lock Makefile $(PROTOS)
	$(PIP) install -q -c requirements.lock grpcio-tools
	@$(MAKE) -s protoc
	$(PIP) install -q -c requirements.lock -e '.[dev]'
	@touch $(STAMP)

protoc:
	@if [ -n "$(PROTOS)" ]; then \
	  $(PY) -m grpc_tools.protoc -Iproto --python_out=. --pyi_out=. --grpc_python_out=. $(PROTOS) && \
	  find floe -type d -exec touch {}/__init__.py \; ; fi

venv: $(STAMP)

proto: $(STAMP)
	@$(MAKE) -s protoc

bpf: apt
	@if [ -f bpf/Makefile ]; then $(MAKE) -s -C bpf; fi

install: apt venv proto bpf

dev: install webui
	@echo "Starting Floe on embedded defaults (SQLite in $$FLOE_DATA_DIR). Ctrl-C stops everything."
	@export FLOE_ENV=$${FLOE_ENV:-development}; \
	if [ "$$(id -u)" = 0 ]; then exec $(VENV)/bin/floe demo; else exec $(VENV)/bin/floe serve; fi

serve: install
	exec $(VENV)/bin/floe serve

test: install webui chromium
	@bash scripts/run-tests.sh

test-unit: install
	$(PY) -m pytest -q tests/unit

bench: install
	@bash bench/run.sh

lint: install webui-deps
	$(VENV)/bin/ruff check app dataplane tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/bandit -q -r app dataplane -lll
	$(VENV)/bin/pip-audit --skip-editable --progress-spinner off
	cd webui && npx tsc -b && node scripts/audit.mjs

clean:
	rm -rf floe bpf/build var build .pytest_cache .mypy_cache .ruff_cache

# ---- the dashboard (webui/) -----------------------------------------------------------
# Node >= 20.19 and npm come with the machine (Debian's nodejs is too old for Vite 8); the
# packages are installed with `npm ci` from the committed lock, again only when it changes.
WEBUI_STAMP := webui/node_modules/.floe-installed
WEBUI_SRC := $(shell find webui/src webui/public -type f 2>/dev/null) webui/index.html \
             webui/vite.config.ts webui/tsconfig.app.json

node-check:
	@command -v node >/dev/null && command -v npm >/dev/null || \
	  { echo "webui: node >= 20.19 and npm are needed (https://nodejs.org or your distribution)"; exit 1; }
	@node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' || \
	  { echo "webui: node $$(node --version) is too old; Vite 8 needs >= 20.19"; exit 1; }

$(WEBUI_STAMP): webui/package.json webui/package-lock.json | node-check
	cd webui && npm ci --no-audit --no-fund --loglevel=error
	@touch $(WEBUI_STAMP)

webui-deps: $(WEBUI_STAMP)

webui/dist/index.html: $(WEBUI_STAMP) $(WEBUI_SRC)
	cd webui && npm run -s build

webui: webui/dist/index.html

# Debian's Chromium for Playwright (`npx playwright install` cannot download here).
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  echo "apt: installing chromium"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium fonts-dejavu-core >/dev/null; \
	fi

webui-test: install webui chromium
	cd webui && npx vitest run && npx playwright test

# Refresh docs/screenshots/*.png from a live run (as root: with demo traffic).
screenshots: install webui chromium
	cd webui && FLOE_SCREENSHOTS=1 npx playwright test e2e/08-screenshots.spec.ts
