# The two commands: `make run` (the whole system on embedded defaults) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# the system Chromium the edge scraper and the /admin/ browser test drive (never `playwright install`)
CHROMIUM := /usr/bin/chromium

.PHONY: run test install lint fmt bench clean chromium client

run: install
	$(BIN)/backroom dev

test: install lint chromium
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# import contracts, lint, formatting and types (configured in pyproject.toml)
lint: install
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# rewrite the tree the way `make lint` wants it: the safe lint fixes, then the formatter (in this order:
# a fix can leave lines the formatter rewrites)
fmt: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

# Provision Chromium where we can (root with apt), else stop at once with one line saying how.
chromium:
	@test -x $(CHROMIUM) || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  echo "make test: installing Chromium (apt-get install chromium)" && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  { echo "make test: $(CHROMIUM) is missing: run 'sudo apt-get install -y chromium' (Debian/Ubuntu), then make test again"; exit 1; }
	@test -x $(CHROMIUM) || { echo "make test: $(CHROMIUM) is still missing after apt-get install chromium"; exit 1; }

# The TypeScript client (clients/typescript): openapi.json and src/schema.d.ts from the served API.
client: install
	$(BIN)/python clients/typescript/generate.py

bench: install
	for script in bench/*.py; do case $$script in */_*) continue;; esac; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) var .pytest_cache *.egg-info
