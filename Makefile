# Quick start: `make demo` and `make test`. Everything the project needs is installed from here.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-demo

.PHONY: demo test lint bench fuzz check-rules configmaps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP) $(DEMO_STAMP)

# The demo needs only the package itself, not the test and lint tools (seconds, not a minute).
$(DEMO_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e .
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(PY) -m exporter demo

test: lint
	$(PY) -m pytest $(PYTEST_ARGS)

# ruff (lint and format) over everything; mypy over the packages that hold the decision
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) -m bench

fuzz: $(STAMP)
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-20000} $(PY) -m pytest -q tests/test_fuzz.py

check-rules: $(STAMP)
	$(VENV)/bin/llm-healthcheck check rules/
	$(VENV)/bin/llm-healthcheck test rules/tests/*.yaml

# The example ConfigMaps are the shipped packs (tests/test_configmaps.py keeps them equal).
configmaps: $(DEMO_STAMP)
	$(PY) -m exporter configmap --name tgi-healthcheck-rules --label app.kubernetes.io/instance=tgi \
	  rules/tgi.yaml > deploy/kubernetes/tgi/configmap-rules.yaml
	cp deploy/kubernetes/tgi/configmap-rules.yaml deploy/kubernetes/native-sidecar/configmap-rules.yaml
	$(PY) -m exporter configmap --name vllm-healthcheck-rules --label app.kubernetes.io/instance=vllm \
	  rules/vllm.yaml > deploy/kubernetes/vllm/configmap-rules.yaml

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
