# Everything installs itself: a fresh clone needs only python3 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/tokenbot demo

lint: install
	$(BIN)/ruff check bot tests

# The suite mostly waits on sockets, subprocesses and databases, so more workers than cores pay
# off: on 2 cores, 6 workers beat 4 and 8 (and `-n auto`, which is 2). `make test TEST_WORKERS=0`
# runs it in one process.
TEST_WORKERS ?= 6

test: lint
	$(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal

bench: install
	$(BIN)/python bench/evaluate.py
	$(BIN)/python bench/sync_scale.py
	$(BIN)/python bench/fanout.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis *.egg-info
