# Two commands do all the set-up on a fresh machine (see README):
#   make all    run the study (profile chosen for this machine) and build the book
#   make test   run the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# PROFILE=smoke|cpu|gpu. Study default: gpu with CUDA, else cpu. Book default: the most
# complete profile in results/ (gpu > cpu > smoke).
PROFILE ?=

.PHONY: all venv test study book bench clean

all: study book

# The environment: the package with every extra, exact versions from constraints.txt.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test,study,book]"
	touch $@

venv: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

study: $(STAMP)
	$(BIN)/refinenet study run $(if $(PROFILE),--profile $(PROFILE))

book: $(STAMP)
	$(BIN)/refinenet study book $(if $(PROFILE),--profile $(PROFILE))

bench: $(STAMP)
	$(BIN)/refinenet bench

clean:
	rm -rf _build .pytest_cache book/notebooks
