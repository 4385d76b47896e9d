# The two commands of the README: `make demo` and `make test`. Everything they need is
# installed by the targets below; the control-plane binaries are cached across runs.
VENV ?= .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup demo test unit bench crds clean

$(VENV)/.installed: pyproject.toml dev/pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]' -e ./dev
	touch $@

setup: $(VENV)/.installed
	bash hack/install-kubectl.sh $(VENV)/bin
	bash hack/install-control-plane.sh >/dev/null
	bash hack/install-test-deps.sh

demo: setup
	$(VENV)/bin/aiops-dev demo

test: setup
	$(PY) -m pytest

unit: $(VENV)/.installed
	$(PY) -m pytest tests/unit

bench: setup
	$(PY) tests/bench/bench_reconcile.py

crds: $(VENV)/.installed
	$(VENV)/bin/aiops-dev crds

clean:
	$(VENV)/bin/aiops-dev cluster down || true
	rm -rf $(VENV)
