# Two commands do all the set-up on a fresh machine (see README):
#   make all    run the study (profile chosen for this machine) and build the book
#   make test   run the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: all venv test clean

all: $(STAMP)
	@echo "The study runner and the book are still to come (issue 5); for now:"
	$(BIN)/refinenet model --backbone resnet101 --crp-blocks 4 --depth 1

# The environment: the package with every extra, exact versions from constraints.txt.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test,study,book]"
	touch $@

venv: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf _build .pytest_cache
