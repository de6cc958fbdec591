# One-command set-up: every target that needs the environment depends on $(STAMP), which creates
# .venv and installs the pinned packages when the venv is missing or the pins changed.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
# nbgrader runs `alembic` (and the lab runs `nbgrader`) as commands: the venv's bin must be on PATH.
export PATH := $(BIN):$(PATH)

# The stamp's name carries a hash of the pin file and pyproject.toml: editing either makes it stale.
PIN_HASH := $(shell $(PYTHON) -c "import hashlib; print(hashlib.sha256(open('constraints.txt','rb').read() + open('pyproject.toml','rb').read()).hexdigest()[:16])")
STAMP := $(VENV)/.installed-$(PIN_HASH)

ASSIGNMENTS := $(notdir $(wildcard solutions/a*))
LAB_ARGS ?=
# Jupyter refuses to start as root (containers, CI) unless told that it is on purpose.
LAB_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)
PYTEST_ARGS ?=
# pytest-xdist: one worker per core ("auto"); tests that share a module-scoped fixture (the lab
# server, the grader's corpus, the site) run in one worker (tests/conftest.py groups them), in the
# order conftest.py gives them (--no-loadscope-reorder: xdist would otherwise sort the groups by
# how many tests they hold, and the site's few but long tests would start last).
TEST_WORKERS ?= auto
# make timings: which lectures (ids, default all) and which mode (quick, full or both)
LECTURES ?=
MODE ?= both

.DEFAULT_GOAL := help
.PHONY: help env lab test lint release bench grade formgrade html timings course-map clean

help:
	@echo "make lab      set up .venv if needed, then open JupyterLab on the course"
	@echo "make test     set up .venv if needed, then ruff and every test (notebooks and nbgrader included)"
	@echo "make lint     ruff check on cnnlib/, tests/, benchmarks/ and the lectures"
	@echo "make release  regenerate assignments/ from solutions/ with nbgrader (instructors)"
	@echo "make bench    speed comparisons (NumPy conv vs PyTorch, training throughput), printed as ratios"
	@echo "make html     the course site: every lecture executed (quick mode) and rendered, in build/site/html"
	@echo "make timings  measure each lecture's run time (MODE=quick|full|both, LECTURES='02 07a') into docs/timings.json"
	@echo "make course-map  refresh the README's course map from lectures/course.yml and docs/timings.json"
	@echo "make grade ASSIGNMENT=a1_conv_arithmetic SUBMISSIONS=dir  grade a class safely (instructors)"
	@echo "make formgrade ASSIGNMENT=a1_conv_arithmetic  grade by hand / adjust in nbgrader's formgrader"
	@echo "make clean    remove .venv and nbgrader's working folders"

env: $(STAMP)

$(STAMP):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "cnnlib needs Python >= 3.11, found " + sys.version.split()[0] + ": run make PYTHON=python3.11 ...")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade -c constraints.txt -e '.[course]'
	@rm -f $(VENV)/.installed-*
	@touch $@
	@echo "environment ready in $(VENV) (pins $(PIN_HASH))"

lab: $(STAMP)
	$(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" $(LAB_ROOT) $(LAB_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check cnnlib tests benchmarks lectures

test: lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder $(PYTEST_ARGS)

# HTML_ARGS='' for full mode (what a student gets; slow), or --executed DIR to reuse a run
HTML_ARGS ?= --quick
html: $(STAMP)
	$(BIN)/python docs/build.py $(HTML_ARGS)

timings: $(STAMP)
	$(BIN)/python -m cnnlib.course.timings --mode $(MODE) $(if $(LECTURES),--lectures $(LECTURES))

course-map: $(STAMP)
	$(BIN)/python -c "from pathlib import Path; from cnnlib.course import catalog; p = Path('README.md'); p.write_text(catalog.readme_with_map(p.read_text()))"

release: $(STAMP)
	@for a in $(ASSIGNMENTS); do \
	  echo "nbgrader generate_assignment $$a"; \
	  $(BIN)/nbgrader generate_assignment "$$a" --force --log-level=WARN || exit 1; \
	done

bench: $(STAMP)
	@for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python "$$f" || exit 1; done

ASSIGNMENT ?=
SUBMISSIONS ?=
GRADE_ARGS ?=
grade: $(STAMP)
	@test -n "$(ASSIGNMENT)" -a -n "$(SUBMISSIONS)" || { echo "usage: make grade ASSIGNMENT=<id> SUBMISSIONS=<dir or zip> [GRADE_ARGS='--workers 2 --out dir']"; exit 2; }
	$(BIN)/python -m cnnlib grade "$(ASSIGNMENT)" --submissions "$(SUBMISSIONS)" $(GRADE_ARGS)

formgrade: $(STAMP)
	@test -n "$(ASSIGNMENT)" || { echo "usage: make formgrade ASSIGNMENT=<id> [GRADE_ARGS='--out dir'] [LAB_ARGS='--no-browser']"; exit 2; }
	$(BIN)/python -m cnnlib formgrade "$(ASSIGNMENT)" $(GRADE_ARGS) $(LAB_ARGS)

clean:
	rm -rf $(VENV) gradebook.db submitted autograded feedback downloaded release grades.csv exchange build
