# HotDash: `make run` serves the dashboard with the sandbox; `make test` passes the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
SANDBOX_PORT ?= 8001
export SANDBOX_PORT

.PHONY: install run test lint format bench clean screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python requirements.txt requirements-dev.txt requirements-clients.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -r requirements-clients.txt
	touch $@

install: $(VENV)/.installed

run: install
	DEBUG=true $(BIN)/python manage.py migrate --noinput
	DEBUG=true $(BIN)/python manage.py seed_demo
	@echo ""
	@echo "  HotDash:  http://127.0.0.1:$(PORT)/   (sandbox: http://127.0.0.1:$(SANDBOX_PORT)/)"
	@echo "  Stop everything with Ctrl-C. A process that exits is restarted (with backoff)."
	@echo ""
	@DEBUG=true $(BIN)/python -m hotdash.supervise \
	  "sandbox=$(BIN)/python manage.py sandbox --port $(SANDBOX_PORT) \
	    --webhook-url http://127.0.0.1:$(PORT)/webhooks/github" \
	  "worker=$(BIN)/celery -A hotdash worker --loglevel INFO --hostname worker@%h" \
	  "beat=$(BIN)/celery -A hotdash beat --loglevel INFO --schedule var/celerybeat-schedule" \
	  "web=$(BIN)/python manage.py runserver 127.0.0.1:$(PORT) --noreload"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	DEBUG=true $(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/python -m pytest $(PYTEST_ARGS); status=$$?; \
	  if [ $$status -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$status

bench: install
	$(BIN)/python -m bench --quick

screenshots: install
	$(BIN)/python scripts/screenshots.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
