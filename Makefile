# compliance-exports: the two commands of the quick start are `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
DATE ?=
PYTEST_ARGS ?=
SIM_PROFILE ?= default

.PHONY: help venv run up down status test lint typecheck pytest pytest-next-year bench lock system-deps wheel

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

venv: ## create .venv from the pinned locks (idempotent)
	@./scripts/bootstrap.sh

run: venv ## the main job: local stack up, nightly exports for yesterday (or DATE=YYYY-MM-DD), summary, stack down
	@SIM_PROFILE=$(SIM_PROFILE) $(PY) -m include.localstack run $(if $(DATE),--date $(DATE))

up: venv ## start the embedded local stack (simulators, local S3, airflow standalone)
	@SIM_PROFILE=$(SIM_PROFILE) $(PY) -m include.localstack up

down: venv ## stop everything `make up` started
	@$(PY) -m include.localstack down

status: venv ## show what the local stack is running
	@$(PY) -m include.localstack status

test: venv system-deps lint typecheck pytest pytest-next-year ## the whole suite: lint + type check + pytest (+ DAG runs a year ahead)

system-deps: ## Debian packages some tests drive (chromium, docker-compose), when root
	@./scripts/system-deps.sh

lint: venv
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .

typecheck: venv
	@$(VENV)/bin/mypy

pytest: venv
	@$(PY) -m pytest $(PYTEST_ARGS)

# The DAG-run tests again with the suite's today (SIM_TODAY, honoured by the tests and the
# simulators alike) a year ahead: nothing in them may depend on the calendar.
pytest-next-year: venv
	@SIM_TODAY=$$(date -u -d "+1 year" +%F) $(PY) -m pytest tests/dags/test_dag_runs.py tests/dags/test_manual_runs.py -k "not hostile" $(PYTEST_ARGS)

wheel: venv ## build dist/compliance_exports-<version>-py3-none-any.whl (README "Add it to your Airflow")
	@.cache/bootstrap/bin/uv build --wheel --out-dir dist

bench: venv ## every benchmark; results in bench/results/*.json
	@$(PY) -m bench

lock: ## regenerate requirements.txt and requirements-dev.txt with uv pip compile
	@./scripts/bootstrap.sh
	@.cache/bootstrap/bin/uv pip compile --quiet --python-version 3.11 requirements.in -o requirements.txt
	@.cache/bootstrap/bin/uv pip compile --quiet --python-version 3.11 requirements-dev.in -o requirements-dev.txt
