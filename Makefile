# Two commands set everything up: `make demo` and `make test`. See README.md.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
UV     := $(BIN)/uv
VENDOR := src/leitstand/web/static/vendor
DEMO_ARGS ?=

.PHONY: demo test bench lint services install install-test edge-venv web-assets proto clean

demo: install web-assets
	$(BIN)/leitstand demo $(DEMO_ARGS)

test: services install-test edge-venv web-assets lint
	$(BIN)/pytest

bench: services install-test web-assets
	$(BIN)/python -m bench.run --out bench/results.json

lint: install-test
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

services:
	bash .ci/ensure-services

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(UV) pip install --quiet --python $(BIN)/python -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(UV) pip install --quiet --python $(BIN)/python -e '.[test]'
	touch $(VENV)/.installed $@

# An independent Sparkplug B implementation for the interoperability tests, in its own environment
# (it needs paho-mqtt 1.x, Leitstand uses 2.x).
EDGE := $(VENV)/sparkplug-edge
edge-venv: $(EDGE)/.installed
$(EDGE)/.installed: | $(BIN)/python
	$(UV) venv --quiet --python $(BIN)/python $(EDGE)
	$(UV) pip install --quiet --python $(EDGE)/bin/python 'pysparkplug==0.6.1'
	touch $@

# The Sparkplug B payload classes, generated from the schema in the repository.
proto: install-test
	cd src/leitstand/connect/sparkplug && ../../../../$(BIN)/python -m grpc_tools.protoc -I. --python_out=. --pyi_out=. sparkplug_b.proto

# Front-end assets come from the npm registry at build time and are served by the app (no CDN).
web-assets: $(VENDOR)/.built
$(VENDOR)/.built: src/leitstand/web/package.json src/leitstand/web/package-lock.json
	cd src/leitstand/web && npm ci --silent --no-audit --no-fund --ignore-scripts
	mkdir -p $(VENDOR)
	cp src/leitstand/web/node_modules/uplot/dist/uPlot.iife.min.js $(VENDOR)/
	cp src/leitstand/web/node_modules/uplot/dist/uPlot.min.css $(VENDOR)/
	cp src/leitstand/web/node_modules/swagger-ui-dist/swagger-ui-bundle.js $(VENDOR)/
	cp src/leitstand/web/node_modules/swagger-ui-dist/swagger-ui.css $(VENDOR)/
	touch $@

clean:
	rm -rf $(VENV) $(VENDOR) src/leitstand/web/node_modules .pytest_cache .mypy_cache .ruff_cache
