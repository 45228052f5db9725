# exresearch: every entry point is a target here; `make help` lists them.
# The environment is .venv, installed from the pinned lock (requirements.lock),
# so two machines building the same commit get the same library versions.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
STUDY  ?= data/demo
SITE   ?= reports/demo
JOBS   ?=
PYTEST_ARGS ?=
# test processes (pytest-xdist): one per core; TEST_WORKERS=0 runs the suite in this process.
# --dist loadfile keeps a test file in one process, so a module's built site is built once.
TEST_WORKERS ?= auto
XDIST  = -n $(TEST_WORKERS) --dist loadfile
PORT   ?= 8888
LAB_ARGS ?=
KERNEL := $(VENV)/share/jupyter/kernels/exresearch/kernel.json

.DEFAULT_GOAL := help
.PHONY: help setup reports demo test test-fast lab bench lint browser clean git-filter validity

help: ## list the targets
	@echo "exresearch -- targets:"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

$(KERNEL): $(STAMP)
	$(PY) -m exresearch.kernel --prefix $(VENV)

setup: $(STAMP) $(KERNEL) git-filter ## create .venv, install exresearch from the lock, the kernel and the git filter

# Git clean filter (see .gitattributes): git only ever sees notebooks without outputs,
# whatever an editor saved. Run from the work tree's top folder with plain python3, so
# it works before .venv exists; skipped outside a git checkout.
git-filter:
	@if git rev-parse --git-dir >/dev/null 2>&1; then \
	  git config filter.exresearch-nbstrip.clean "$(PYTHON) exresearch/nbstrip.py" && \
	  git config filter.exresearch-nbstrip.smudge cat; fi

demo: $(STAMP) ## write the simulated demo study into data/demo if absent
	@if [ -f $(STUDY)/study.yml ]; then echo "demo study present: $(STUDY)"; \
	else $(VENV)/bin/exresearch simulate $(STUDY) --clients 10 --units 30 --periods 4 --seed 20261122; fi

reports: demo ## set up, make the demo study if absent, build its report site and print the index path
	@$(VENV)/bin/exresearch build $(STUDY) --out $(SITE) $(if $(JOBS),--jobs $(JOBS),)

test: setup browser ## set up, then run the whole test suite (slow and browser tests included)
	$(PY) -m pytest $(XDIST) $(PYTEST_ARGS)

test-fast: setup ## the suite without slow end-to-end and browser tests
	$(PY) -m pytest $(XDIST) -m "not slow and not browser" $(PYTEST_ARGS)

browser: ## install Debian's chromium (and poppler-utils, for the PDF checks) when missing and we are root
	@{ command -v chromium && command -v pdfinfo; } >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium poppler-utils >/dev/null) \
	    || echo "could not install chromium: browser tests will be skipped"; \
	  else echo "chromium not found: browser tests will be skipped (apt-get install chromium)"; fi; }

# The project's Jupyter config (jupyter/: outputs stripped on save) is added to yours.
# As root (a container) Jupyter needs --allow-root; PORT=8890 make lab for another port.
lab: setup ## open JupyterLab on notebooks/ with the project kernel (PORT=8888, LAB_ARGS=...)
	JUPYTER_CONFIG_PATH="$(CURDIR)/jupyter$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" \
	  $(VENV)/bin/jupyter lab --port=$(PORT) $(if $(filter 0,$(shell id -u)),--allow-root,) \
	  $(LAB_ARGS) notebooks/

bench: setup ## run the benchmarks and write bench/results.md
	$(PY) bench/run.py

VALIDITY_JOBS ?= 2
validity: $(STAMP) ## error rates of the reports' claims on simulated clients -> validity/results.md
	validity/run_parallel.sh $(PY) $(VALIDITY_JOBS)

lint: $(STAMP) ## ruff on the package, tests, benchmarks and report notebooks
	$(VENV)/bin/ruff check exresearch tests bench notebooks

clean: ## remove the environment and built sites (never data/)
	rm -rf $(VENV) reports/*/ .pytest_cache
