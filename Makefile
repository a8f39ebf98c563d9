# Two commands from a fresh clone; each sets up what it needs first.
#   make demo   the basic pattern end to end, against $AMQP_URL or localhost:5672
#   make test   the linter, then the tests against a throwaway RabbitMQ
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint clean readme images

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

demo: $(VENV)/.installed
	$(BIN)/python basic/producer.py
	@# The consumer runs until stopped: a few seconds are enough to see the five arrive.
	timeout --signal=INT 3 $(BIN)/python basic/consumer.py; test $$? -eq 124 -o $$? -eq 0

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/pytest -n 2  # two workers, each with its own throwaway broker

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info

# README.rst: copy each pattern file into its code block, and re-record every
# transcript by running its scenario against a throwaway broker.
readme: $(VENV)/.installed
	$(BIN)/python tests/readme.py --transcripts

# images/*.png from their Graphviz sources, images/*.dot (needs graphviz).
images:
	bash images/render.sh
