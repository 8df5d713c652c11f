# The two commands: `make run` (the whole system on embedded defaults) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test install lint bench clean

run: install
	$(BIN)/backroom dev

test: install lint
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: install
	$(BIN)/lint-imports

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

bench: install
	for script in bench/*.py; do case $$script in */_*) continue;; esac; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) var .pytest_cache *.egg-info
