# Two commands do all the set-up on a fresh machine (see README):
#   make all    run the study (profile chosen for this machine) and build the book
#   make test   run the test suite
# and one to work on the notebooks:
#   make lab    JupyterLab on notebooks/, each NN_name.py opened and saved as a notebook
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# PROFILE=smoke|cpu|gpu. Study default: gpu with CUDA, else cpu. Book default: the most
# complete profile in results/ (gpu > cpu > smoke).
PROFILE ?=

.PHONY: all venv lock test study book bench lab clean

all: study book

# The environment: the package with every extra, every package at the version of
# requirements.lock (the whole environment the tests and the study ran with).
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[test,study,book]"
	touch $@

# Write requirements.lock anew: a fresh environment from pyproject.toml with the pins of
# constraints.txt (the versions chosen by hand), frozen by pip. Run it after changing either.
LOCK_VENV := .lock-venv
lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LOCK_VENV)/bin/python -m pip install --quiet -c constraints.txt -e ".[test,study,book]"
	{ printf '%s\n' \
	  "# The whole environment, every package at its exact version: written by \`make lock\` (pip freeze" \
	  "# of a fresh venv installed from pyproject.toml with the pins of constraints.txt). Do not edit:" \
	  "# change constraints.txt or pyproject.toml and run \`make lock\`. \`make venv\` installs with it."; \
	  $(LOCK_VENV)/bin/python -m pip freeze --exclude-editable; } > requirements.lock.new
	mv requirements.lock.new requirements.lock
	rm -rf $(LOCK_VENV)

venv: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

study: $(STAMP)
	$(BIN)/refinenet study run $(if $(PROFILE),--profile $(PROFILE))

book: $(STAMP)
	$(BIN)/refinenet study book $(if $(PROFILE),--profile $(PROFILE))

bench: $(STAMP)
	$(BIN)/refinenet bench

# JupyterLab on notebooks/. jupytext (the study extra) ships the server extension that reads
# and saves a percent-format .py as a notebook, back into the .py itself (inputs only, no
# .ipynb beside it); jupytext-config makes "Jupytext Notebook" the default viewer of Python
# files, in this venv's own labconfig (not in ~/.jupyter), so a double click opens each
# NN_name.py as a notebook. A notebook run there reads the cpu profile's ledger and writes
# its tables and figures to results/interactive/ (book/rerun.md). JupyterLab is installed
# into the venv on first use (the lock pins what it shares with the study).
LAB_SETTINGS := $(VENV)/etc/jupyter/labconfig/default_setting_overrides.json
lab: $(STAMP)
	@test -x $(BIN)/jupyter-lab || $(BIN)/python -m pip install --quiet -c requirements.lock "jupyterlab>=4,<5"
	$(BIN)/jupytext-config --settings-file $(LAB_SETTINGS) set-default-viewer python
	$(BIN)/jupyter lab --ServerApp.root_dir=notebooks

clean:
	rm -rf _build .pytest_cache book/notebooks
