# Two commands from a fresh clone; each sets up what it needs first.
#   make demo   every pattern in one terminal (PATTERNS="basic rpc" for some)
#   make test   the linters, then the tests against a throwaway RabbitMQ
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo demo-image clean-broker bench test test-rabbitmq4 test-cluster mutants cluster lint clean readme images

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	@echo "Installing what the demo and the tests need into $(VENV) (a minute, once) ..."
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

demo: $(VENV)/.installed
	$(BIN)/python tools/demo.py $(PATTERNS)

# Delete the patterns' queues and exchanges from the broker (AMQP_URL, else localhost).
clean-broker: $(VENV)/.installed
	$(BIN)/python tools/demo.py --delete

# The picture of a demo run in README.rst.
demo-image: $(VENV)/.installed
	$(BIN)/python tools/demo.py workers routing --svg images/demo.svg

# ruff, and mypy on the helpers' type hints (their public API is typed).
lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Two workers, each with its own throwaway broker, and each test file on one of them (so
# one cluster for tests/test_cluster.py). Not --dist loadgroup: with pytest 9 and
# pytest-xdist 3.8 it ignores the groups and splits them.
test: lint
	$(BIN)/pytest -n 2 --dist loadfile

# The same tests, their throwaway nodes running RabbitMQ 4.0 from Debian 13's packages in
# a chroot that tools/rabbitmq4.sh makes once and keeps (root only; about a minute the
# first time).
test-rabbitmq4: $(VENV)/.installed
	tools/rabbitmq4.sh $(BIN)/pytest -n 2 --dist loadfile

# Only the tests on a three-node cluster (quorum queues, a node killed).
test-cluster: $(VENV)/.installed
	$(BIN)/pytest -m cluster

# Break each promise of the helpers on purpose, one at a time (tools/mutants.toml), and
# check that a test catches it: fails unless every mutant is killed (about 4 minutes).
mutants: $(VENV)/.installed
	$(BIN)/python tools/mutants.py

# A local three-node cluster to experiment with; Ctrl-C stops and removes it.
cluster: $(VENV)/.installed
	$(BIN)/python tools/cluster.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info

# README.rst: copy each pattern file into its code block, and re-record every
# transcript by running its scenario against a throwaway broker.
readme: $(VENV)/.installed
	$(BIN)/python tools/readme.py --transcripts

# Publish, consume, RPC and workers figures: bare pika next to the helpers, in one run
# (about a minute). Not part of the tests: a smoke test runs it at a tiny scale.
bench: $(VENV)/.installed
	$(BIN)/python tools/bench.py --json images/bench.json --chart images/bench.png
	$(BIN)/python tools/readme.py

# images/*.png from their Graphviz sources, images/*.dot (needs graphviz).
images:
	bash images/render.sh
