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

.PHONY: book book-inputs test test-py312 test-oracles browser-test student install release bench bench-chapters clean clean-cache evidence verify-evidence

# sslkit needs Python 3.11 or newer (requires-python in pyproject.toml): checked first, before
# the virtual environment is made or anything downloaded, with one line that says what to do.
PY_MIN := 3.11
define check_python
v=$$($(1) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || { \
  echo "make: cannot run the Python '$(1)': name one of $(PY_MIN) or newer with PY=, e.g. make PY=python3.12" >&2; exit 1; }; \
printf '%s\n' $(PY_MIN) "$$v" | sort -V -C || { \
  echo "make: $(1) is Python $$v, sslkit needs $(PY_MIN) or newer: $(2)" >&2; exit 1; }
endef

# PyTorch from PyPI brings CUDA's libraries (3.2 GB of the 6.5 GB .venv). On a machine without
# an NVIDIA GPU: make book TORCH_INDEX=https://download.pytorch.org/whl/cpu (CPU wheels, the
# same code; the index is PyTorch's own, not PyPI, so CI does not use it).
TORCH_INDEX ?=

$(STAMP): requirements.txt pyproject.toml
	@if [ -x $(BIN)/python ]; then $(call check_python,$(BIN)/python,remove $(VENV) and run make PY=python$(PY_MIN) (or newer)); \
	else $(call check_python,$(PY),run make PY=python$(PY_MIN) (or newer; PY= is the Python that makes $(VENV))); fi
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) -r requirements.txt
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
# Colab copies and the coursework edition skip there (their tools are not installed). The Python
# 3.12 is PY312=, else python3.12 on the PATH, else pyenv's: under `pyenv root`, or beside the
# pyenv on the PATH (where HOME is not the user's own, `pyenv root` names the wrong folder).
# Without one it says so and does nothing, except under CI=true, where it fails: a skip there
# would hide that Colab's Python went untested.
PY312 ?= $(shell for p in python3.12 $$(pyenv root 2>/dev/null)/versions/3.12*/bin/python3.12 \
	$$(e=$$(command -v pyenv) && dirname "$$(dirname "$$(readlink -f "$$e")")")/versions/3.12*/bin/python3.12 \
	$${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.12*/bin/python3.12; do \
	$$p -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null && echo $$p && break; done)
VENV312 := .venv312
test-py312:
	@if [ -z "$(PY312)" ]; then \
	  msg="no Python 3.12 found (python3.12 on the PATH, or pyenv's under $$(pyenv root 2>/dev/null || echo \$$PYENV_ROOT)/versions): install one (pyenv install 3.12) or name it, make test-py312 PY312=/path/to/python3.12"; \
	  if [ "$(CI)" = true ]; then echo "make: $$msg. Under CI this fails: Colab's Python must be tested" >&2; exit 1; fi; \
	  echo "$$msg. The Python 3.12 tests are skipped"; exit 0; fi; \
	$(PY312) -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null || { \
	  echo "make: PY312=$(PY312) is not a Python 3.12" >&2; exit 1; }; \
	set -e; test -x $(VENV312)/bin/python || $(PY312) -m venv $(VENV312); \
	$(VENV312)/bin/python -m pip install -q --upgrade pip; \
	$(VENV312)/bin/python -m pip install -q -e . pytest; \
	$(VENV312)/bin/python -m pytest -q -p no:cacheprovider -rs tests

# An oracle: sslkit's VICReg, NT-Xent and Barlow Twins losses against lightly's (a peer library)
# on the same inputs. lightly is installed here from PyPI, never by requirements.txt: `make test`
# skips that file without it.
test-oracles: $(STAMP)
	$(BIN)/python -m pip install -q "lightly>=1.6,<2"
	$(BIN)/python -m pytest -q -p no:cacheprovider -rs tests/test_oracles.py

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

# A release (sslkit/teach/release.py): the tag v<sslkit.__version__> written into the chapters'
# install cells, CITATION.cff and the README's Binder link; the sdist and the wheel built
# (python -m build) and checked (twine check --strict); the wheel installed in a fresh virtual
# environment and imported from there. Its dependencies come from $(VENV), not downloaded again
# (3 GB with torch); RELEASE_DEPS=download lets pip install them all from PyPI into the fresh
# one. It tags and uploads nothing: it prints the git tag command (README, "Releases").
RELEASE_TOOLS := $(VENV)/.release-tools
RELEASE_DEPS ?= $(VENV)
$(RELEASE_TOOLS): requirements-release.txt $(STAMP)
	$(BIN)/python -m pip install -q -r requirements-release.txt
	touch $@
release: $(RELEASE_TOOLS)
	$(BIN)/python -m sslkit.teach.release write
	rm -rf dist
	$(BIN)/python -m build --quiet --outdir dist .
	$(BIN)/twine check --strict dist/*
	@set -e; fresh=$$(mktemp -d); trap 'rm -rf "$$fresh"' EXIT; \
	$(BIN)/python -m venv --without-pip "$$fresh/venv"; \
	if [ "$(RELEASE_DEPS)" = download ]; then \
	  $(BIN)/python -m pip --python "$$fresh/venv/bin/python" install -q $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) dist/*.whl; \
	else \
	  $(BIN)/python -c 'import sys; print("\n".join(p for p in sys.path if p.endswith("-packages")))' \
	    > "$$("$$fresh/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/_release_deps.pth"; \
	  $(BIN)/python -m pip --python "$$fresh/venv/bin/python" install -q --no-deps --ignore-installed dist/*.whl; \
	fi; \
	cd "$$fresh"; venv/bin/python -I -m sslkit.teach.release installed --prefix "$$fresh"
	@$(BIN)/python -m sslkit.teach.release tag

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
