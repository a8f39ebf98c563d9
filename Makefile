# Two commands from a fresh clone; each sets up what it needs first.
#   make demo   every pattern in one terminal (PATTERNS="basic rpc" for some)
#   make test   the linters, then the tests against a throwaway RabbitMQ
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo demo-image clean-broker bench test image test-image test-cluster test-interrupts test-restarts mutants cluster lint clean readme images

$(VENV)/.installed: $(VENV)/.demo requirements-dev.txt
	@echo "Installing what the tests need into $(VENV) (a minute, once) ..."
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# The demo needs only pika, common/ and rich: seconds to install, where the tests' tools
# (linters, containers, the chart) take a minute and hundreds of megabytes.
$(VENV)/.demo: requirements.txt requirements-demo.txt pyproject.toml
	@echo "Installing what the demo needs into $(VENV) (pika and rich, once) ..."
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-demo.txt
	touch $@

demo: $(VENV)/.demo
	$(BIN)/python tools/demo.py $(PATTERNS)

# Delete the patterns' queues and exchanges from the broker (AMQP_URL, else localhost).
clean-broker: $(VENV)/.demo
	$(BIN)/python tools/demo.py --delete

# The picture of a demo run in README.rst.
demo-image: $(VENV)/.installed
	$(BIN)/python tools/demo.py workers routing --svg images/demo.svg

# ruff, and mypy on the helpers' type hints (their public API is typed).
lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Three workers, each with its own throwaway broker, and each test file on one of them:
# three on two cores, since the tests mostly wait on their brokers (136 s, against 167 s
# with two, at rest on two cores).
# Not --dist loadgroup: with pytest 9 and pytest-xdist 3.8 it ignores the groups and
# splits them. The broker: a container of
# RABBITMQ_IMAGE (default rabbitmq:4.3-management) if Docker has it or can pull it, else
# a local rabbitmq-server node; THROWAWAY=container or THROWAWAY=local forces one.
# The cluster tests, the interrupt tests and the restart tests are apart (make
# test-cluster, make test-interrupts, make test-restarts): make test stays under three
# minutes.
test: lint
	$(BIN)/pytest -n 3 --dist loadfile -m "not cluster and not interrupts and not restarts"

# The broker restarted, stopped and killed under running scripts (two files, two workers).
test-restarts: $(VENV)/.installed
	$(BIN)/pytest -n 2 --dist loadfile -m restarts

# The scripts interrupted at random moments, 200 runs in all (about half a minute).
test-interrupts: $(VENV)/.installed
	$(BIN)/pytest -m interrupts

# A RabbitMQ image from Debian's packages, for a machine that reaches no image registry
# (root, a Docker engine): SUITE=bookworm (3.10.8), trixie (4.0.5) or sid (4.3.x).
SUITE ?= sid
image:
	$(PYTHON) tools/rabbitmq_image.py $(SUITE)

# The tests in containers of that image: make test-image SUITE=trixie
test-image: $(VENV)/.installed
	image="$$($(PYTHON) tools/rabbitmq_image.py $(SUITE))" && \
		RABBITMQ_IMAGE="$$image" THROWAWAY=container $(MAKE) test

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
