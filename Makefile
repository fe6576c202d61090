# Tally: `make run` serves the API on a local DynamoDB; `make test` runs every test.
# Both build the venv from the pinned requirements first; nothing else is needed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PORT   ?= 8000
STAGE  ?= prod
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: venv run test test-fast model lint browser bench soak verify tables infra package key clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check 'pip<26.3' setuptools wheel
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

run: venv
	PORT=$(PORT) $(PY) -m tools.devserver

# The full suite, in two lanes: everything but the races on two workers, then the races with the CPU to themselves.
test: lint browser
	$(PY) -m pytest -n 2 --dist loadgroup -m "not race"
	$(PY) -m pytest -m race

# The inner loop: behaviour tests on moto only, on two workers.
test-fast: venv
	$(PY) -m pytest -n 2 -m "not dynamodb_local and not slow and not package and not race"

# The model-checked ledger (tests/test_model.py) for as long as asked: rounds of random examples until MODEL_SECONDS
# (default 60) are spent, each round's seed printed (MODEL_SEED=<it> repeats one). MODEL_EXAMPLES and MODEL_STEPS
# size a round, MODEL_LOCAL=1 runs it on DynamoDB Local.
model: venv
	MODEL_RUN=1 MODEL_SECONDS=$${MODEL_SECONDS:-60} $(PY) -m pytest tests/test_model.py -k for_as_long_as_asked -s \
		-p no:cacheprovider

# Headless Chromium and ChromeDriver for the console's browser test: Debian's packages, apt-get installed when missing
# (idempotent; where apt-get cannot be used it says so, and the browser test skips).
browser: venv
	$(PY) -m tools.chromium

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: venv
	$(PY) -m bench.run

soak: venv  # every surface from 16 threads for SOAK_SECONDS (default 120), then the verifier
	$(PY) -m bench.soak

verify: venv  # check every invariant of the stored ledger (make run's data, or DYNAMODB_ENDPOINT)
	$(PY) -m tools.verify

key: venv  # a /v1 API key: make key TENANT=acme SCOPES=read,write (limits, list, revoke: python -m tools.keys --help)
	$(PY) -m tools.keys create --tenant "$(TENANT)" --scopes "$(SCOPES)"

tables: venv
	$(PY) -m tools.create_tables

infra: venv  # rewrite infra/<stage>.json from the models (a test fails when they drift)
	$(PY) -m tools.infra

package: venv  # dist/$(STAGE)/sam.json + deployment.zip, linted by cfn-lint
	$(PY) -m tools.package $(STAGE)

clean:
	rm -rf $(VENV) .cache .data dist
