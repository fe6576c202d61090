# Tally: `make run` serves the API on a local DynamoDB; `make test` runs every test.
# Both build the venv from the pinned requirements first; nothing else is needed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PORT   ?= 8000
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: venv run test lint bench tables clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check 'pip<26.3' setuptools wheel
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

run: venv
	PORT=$(PORT) $(PY) -m tools.devserver

test: lint
	$(PY) -m pytest

lint: venv
	$(VENV)/bin/ruff check .

bench: venv
	$(PY) -m bench.run

tables: venv
	$(PY) -m tools.create_tables

clean:
	rm -rf $(VENV) .cache .data dist
