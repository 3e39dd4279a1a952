# The workbook's commands. Each one creates the virtual environment first if needed.
#   make lab        set up and open JupyterLab on the first notebook (extra flags: LAB_ARGS="...")
#   make test       set up and run the whole test suite (unit tests + every notebook, fast mode)
#   make notebooks  (instructors) run every notebook headless in FULL mode into build/notebooks
#   make cache      (instructors) pre-train everything the chapters train on first run (CHAPTERS=01,02 for some)
#   make test-browser  every notebook run and used in JupyterLab in Chromium, in the Binder environment
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch: the CPU build. Where download.pytorch.org is reachable, take it from the CPU index;
# otherwise (offline mirrors, this project's machines) pip finds the CPU wheel locally.
TORCH_VERSION ?= 2.13.0
TORCH_INDEX ?= $(shell $(PYTHON) -c "import socket; socket.create_connection(('download.pytorch.org', 443), 2); print('--index-url https://download.pytorch.org/whl/cpu')" 2>/dev/null)

.PHONY: setup lab test test-unit test-notebooks notebooks cache clean-cache test-browser

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "torch==$(TORCH_VERSION)" $(TORCH_INDEX)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

setup: $(BIN)/.installed

# JupyterLab's file browser starts at the repository (README, quizzes/, course_lib/ in view, as on
# Binder) and the first notebook opens. JupyterLab refuses to run as root (Docker containers, cloud
# notebooks) unless given --allow-root: it is added for root only. Extra flags go in LAB_ARGS, e.g.
#   make lab LAB_ARGS="--no-browser --port 8899"
LAB_USER_ID := $(shell id -u 2>/dev/null)
LAB_ROOT_FLAG := $(if $(filter 0,$(LAB_USER_ID)),--allow-root)
LAB_ARGS ?=

lab: setup
	$(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" \
		--LabApp.default_url=/lab/tree/notebooks/00_welcome.ipynb $(LAB_ROOT_FLAG) $(LAB_ARGS)

# Fast mode and a project-local cache, so tests never touch a learner's trained models.
test: setup
	COURSE_FAST=1 COURSE_CACHE=$(CURDIR)/.cache/test HF_HUB_OFFLINE=1 \
		$(BIN)/python -m pytest tests notebooks --nbval-lax --durations=10 -q

test-unit: setup
	COURSE_FAST=1 COURSE_CACHE=$(CURDIR)/.cache/test HF_HUB_OFFLINE=1 $(BIN)/python -m pytest tests -q

test-notebooks: setup
	COURSE_FAST=1 COURSE_CACHE=$(CURDIR)/.cache/test HF_HUB_OFFLINE=1 \
		$(BIN)/python -m pytest notebooks --nbval-lax -q

notebooks: setup
	$(BIN)/python scripts/run_notebooks.py --out build/notebooks

# A classroom machine or a JupyterHub image, before the course: the teacher, the students, the sweeps
# (full mode, into the normal cache or COURSE_CACHE). `make lab` never needs it; chapters train what is missing.
CHAPTERS ?= all
cache: setup
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/build_cache.py --chapters $(CHAPTERS)

clean-cache:
	rm -rf .cache/test

# The browser suite (tests/browser/README.md): builds the Binder environment from binder/ as
# repo2docker does (cached in .cache/binder-venv-*), starts JupyterLab from it, and drives every
# notebook in Debian's Chromium (apt-get install chromium). BROWSER_LAB_ENV=dev uses .venv instead.
# binder/postBuild pre-builds the cache as on Binder, here in fast mode and for chapter 01 only (the teacher),
# so the suite checks that a pre-built teacher is found; COURSE_PREBUILD=all pre-builds every chapter.
COURSE_PREBUILD ?= 01
test-browser: setup
	COURSE_BROWSER=1 COURSE_FAST=1 COURSE_CACHE=$(CURDIR)/.cache/test HF_HUB_OFFLINE=1 COURSE_PREBUILD=$(COURSE_PREBUILD) \
		$(BIN)/python -m pytest tests/browser -v
