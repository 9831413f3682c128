# Every target installs what it needs into .venv first, so each works on a fresh clone.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)
PRISM := .cache/prism/node_modules/.bin/prism

.PHONY: test lint fmt playground bench prism install

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-*; touch $@

install: $(STAMP)

# Prism serves Twilio's own OpenAPI spec for the contract tests. Without npm they skip and say why.
prism:
	@if [ -x $(PRISM) ]; then :; \
	elif command -v npm >/dev/null 2>&1; then \
	  npm install --silent --no-audit --no-fund --prefix .cache/prism @stoplight/prism-cli@5 \
	  || echo "could not install Prism: the contract tests will skip"; \
	else echo "npm not found: the contract tests will skip"; fi

test: $(STAMP) prism
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

playground: $(STAMP)
	$(BIN)/python -m bot playground

bench: $(STAMP)
	$(BIN)/python -m benchmarks
