# Two commands on a fresh machine:  make book  (executed book in _build/html)  and  make test.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# 2 CPU cores here: one BLAS/OpenMP thread pool of that size.
export OMP_NUM_THREADS ?= 2
export MKL_NUM_THREADS ?= 2
export TQDM_DISABLE ?= 1
# The book is built with the cpu profile unless SSLKIT_PROFILE says otherwise.
export SSLKIT_PROFILE ?= cpu

.PHONY: book book-inputs test test-py312 browser-test student install bench bench-chapters clean clean-cache evidence verify-evidence

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

install: $(STAMP)

# ruff first: lint errors and unformatted code (package, tests, chapters) fail before any test runs.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q

# Colab runs Python 3.12: the package's tests on it, in a virtual environment of sslkit's
# runtime dependencies only (what a Colab reader installs). The tests of the book's build, the
# Colab copies and the coursework edition skip there (their tools are not installed). Without a
# Python 3.12 on the machine (python3.12, or pyenv's), it says so and does nothing.
PY312 ?= $(shell for p in python3.12 $$HOME/.pyenv/versions/3.12*/bin/python3.12; do $$p -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null && echo $$p && break; done)
VENV312 := .venv312
test-py312:
	@if [ -z "$(PY312)" ]; then echo "no Python 3.12 on this machine: the Python 3.12 tests are skipped"; exit 0; fi; \
	set -e; test -x $(VENV312)/bin/python || $(PY312) -m venv $(VENV312); \
	$(VENV312)/bin/python -m pip install -q --upgrade pip; \
	$(VENV312)/bin/python -m pip install -q -e . pytest; \
	$(VENV312)/bin/python -m pytest -q -p no:cacheprovider -rs tests

# -W: any Sphinx warning (a failing cell included) fails the build; --keep-going reports them all.
# SSLKIT_BOOK_BUILD=1: a verdict that contradicts the book's prose fails its cell (see sslkit/teach/book.py).
# The notebook cache keys on cell sources only: when the package's code (its figures, tables
# and measurements), the evidence store, the recorded verdicts, the answer box (whose verdicts
# chapter 7 checks) or the verification result change, every chapter runs again (trained runs
# stay in sslkit's own cache); Sphinx's saved environment goes too, or it would re-read only the pages
# whose source changed and keep the others' old outputs.
EVIDENCE_STAMP := _build/.evidence-stamp
# What every chapter's outputs depend on besides its own cells: every file of the package (the
# modules of every wing, the evidence store's tables and manifests), the answer box and the
# verification result. `make -s book-inputs` lists them (a test checks the list is complete).
BOOK_INPUTS = $(shell find sslkit -type f ! -path '*/__pycache__/*' ! -name '*.pyc' ! -name '.*' | LC_ALL=C sort) _parts/answer.md
book-inputs:
	@printf '%s\n' $(BOOK_INPUTS)
book: $(STAMP)
	@mkdir -p _build; new=$$( (echo $(BOOK_INPUTS); cat $(BOOK_INPUTS) _build/verify-evidence.json 2>/dev/null) | sha256sum); \
	if [ "$$new" != "$$(cat $(EVIDENCE_STAMP) 2>/dev/null)" ]; then rm -rf _build/.jupyter_cache _build/.doctrees; echo "$$new" > $(EVIDENCE_STAMP); fi
	PATH=$(CURDIR)/$(BIN):$$PATH SSLKIT_BOOK_BUILD=1 $(BIN)/jupyter-book build . -W --keep-going -n --path-output .
	@echo "Book built: $(CURDIR)/_build/html/index.html"

# Every page of the built book in headless Chromium (Debian's `chromium`; see browser_tests/).
# Run after `make book` and `make student` (it also checks the student edition);
# full-page screenshots go to _build/screenshots/.
browser-test: $(STAMP)
	$(BIN)/python -m pytest browser_tests -q -p no:cacheprovider

# The coursework edition (sslkit/teach/course.py), from the chapters as `make book` executed them:
# student notebooks, an otter autograder per chapter, the answer key and the student site.
# Grade a folder of submissions with `python -m sslkit.course grade FOLDER --out scores.csv`.
STUDENT := _build/student
# The release a term's notebooks and autograders install: `make student REF=v0.2.0`; by default
# the tag of this commit, else the commit itself (never a moving branch).
REF ?= $(shell git describe --tags --exact-match 2>/dev/null || git rev-parse --short HEAD)

student: $(STAMP)
	test -d _build/.jupyter_cache || $(MAKE) book
	$(BIN)/python -m sslkit.course build --out $(STUDENT) --executed _build/.jupyter_cache --ref $(REF)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/jupyter-book build $(STUDENT)/site -W --keep-going -n -q
	@echo "Student edition: $(CURDIR)/$(STUDENT)/ (notebooks/, autograder/, answer_key.html, site/_build/html)"

# The evidence store (sslkit/evidence/reference/): every configuration the findings use, 8 seeds,
# at the reference scale; resumable (hours on 2 CPU cores; commit the tables as they grow).
evidence: $(STAMP)
	$(BIN)/python -m sslkit evidence build --profile reference

# Re-train a fixed sample of the store's runs from scratch and compare every stored value it can
# recompute (sslkit/findings/verify.py); a difference beyond the tolerance fails, naming run and metric.
verify-evidence: $(STAMP)
	$(BIN)/python -m sslkit evidence verify --profile reference

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

# Each chapter's measuring time (its runs trained, an empty evaluation cache), beside the figures
# of sslkit.plan that the chapter headers add to training (about 20 minutes; after `make book`).
bench-chapters: $(STAMP)
	$(BIN)/python benchmarks/chapter_times.py

clean:
	rm -rf _build

# Deletes only sslkit's own entries, and refuses a folder that sslkit did not create.
clean-cache: $(STAMP)
	rm -rf _build/.jupyter_cache
	$(BIN)/python -m sslkit clean-cache
