# Floe — two commands: `make dev` runs the product, `make test` passes the suite.
# Every target installs what it needs, idempotently (apt packages, .venv, npm packages).
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV      := .venv
PY        := $(VENV)/bin/python
PIP       := $(VENV)/bin/pip
PYTHON313 := $(firstword $(wildcard /root/.pyenv/versions/3.13*/bin/python3) $(shell command -v python3.13 2>/dev/null))
APT_PACKAGES := clang llvm libbpf-dev bpftool libxdp-dev xdp-tools iproute2 ethtool wrk nghttp2-client \
                tcpdump libpcap-dev ca-certificates nfdump
STAMP := $(VENV)/.floe-installed
PROTOS := $(shell find proto -name '*.proto' 2>/dev/null)
export FLOE_DATA_DIR ?= $(CURDIR)/var

.PHONY: help install apt venv proto protoc bpf dev serve test test-unit test-integration bench lint clean

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

dev: install
	@echo "Starting Floe on embedded defaults (SQLite in $$FLOE_DATA_DIR). Ctrl-C stops everything."
	@export FLOE_ENV=$${FLOE_ENV:-development}; \
	if [ "$$(id -u)" = 0 ]; then exec $(VENV)/bin/floe demo; else exec $(VENV)/bin/floe serve; fi

serve: install
	exec $(VENV)/bin/floe serve

test: install
	@bash scripts/run-tests.sh

test-unit: install
	$(PY) -m pytest -q tests/unit

bench: install
	@bash bench/run.sh

lint: install
	$(VENV)/bin/ruff check app dataplane tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/bandit -q -r app dataplane -lll
	$(VENV)/bin/pip-audit --skip-editable --progress-spinner off

clean:
	rm -rf floe bpf/build var build .pytest_cache .mypy_cache .ruff_cache
