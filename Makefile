# Two entry points for a fresh machine with only Python 3.11: `make run` and `make test`.
# Both create .venv when missing and (re)install only when pyproject.toml changed.
# EXTRAS picks the Keras backend build: cpu (default), gpu (tensorflow[and-cuda]) or jax.

PYTHON ?= python3
VENV   ?= .venv
EXTRAS ?= cpu
BIN    := $(VENV)/bin
DATA   := app_input/digits_data_params.json
HYPER  := app_input/digits_hyper_params.json

.PHONY: run test lint docs package-check demo bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-$(EXTRAS): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $@

$(VENV)/.installed-$(EXTRAS)-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS),test]'
	touch $@

# The terminal UI on the built-in demo digits, with their data and hyper params loaded.
# The demo data is exported only when missing, so edits to the demo JSON files are kept.
run: $(VENV)/.installed-$(EXTRAS)
	@test -f $(DATA) -a -f $(HYPER) -a -d datasets/digits/training || $(BIN)/cnn-tui demo
	$(BIN)/cnn-tui --data $(DATA) --hyper $(HYPER)

# The same job headless: digits -> summary -> training with validation -> evaluation
# -> confusion matrix, with the tables printed and the PNG paths shown.
demo: $(VENV)/.installed-$(EXTRAS)
	$(BIN)/cnn-tui demo
	$(BIN)/cnn-tui pipeline --data $(DATA) --hyper $(HYPER)

# The backend-neutral tests run a second time on JAX (CPU; the test extra installs jax): training, stop
# and resume, the fit pool, models, evaluation, explain, tuning, export's refusals, `info`, the rate finder
# and one-cycle, EMA, TTA, thresholds, ensembles, TPE.
JAX_TESTS := tests/core/test_training.py tests/core/test_fit_pool.py tests/core/test_run_lifecycle.py \
	tests/core/test_model.py tests/core/test_evaluation.py \
	tests/core/test_explain.py tests/core/test_tuning.py tests/core/test_export.py tests/core/test_backend.py \
	tests/core/test_lr_finder.py tests/core/test_averaging.py tests/core/test_tta.py tests/core/test_threshold.py \
	tests/core/test_ensemble.py tests/core/test_tuning_tpe.py

# Lint and the import contracts first (seconds), then the user guide and the wheel, then the suite on
# TensorFlow, then its backend-neutral part on JAX (tests marked tensorflow_only left out).
test: $(VENV)/.installed-$(EXTRAS)-test lint docs package-check
	$(BIN)/python -m pytest
	KERAS_BACKEND=jax $(BIN)/python -m pytest -m "not tensorflow_only and not slow" $(JAX_TESTS)

# ruff (rules in pyproject.toml) and import-linter's contracts: core imports neither tui nor cli
# (nor textual), tui does not import cli, nothing the app imports reaches back for the launcher.
lint: $(VENV)/.installed-$(EXTRAS)-test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports

# The user guide (docs/, nav in mkdocs.yml) as an MkDocs site in site/; --strict: a broken link
# or anchor, or a page missing from the nav, fails the build.
docs: $(VENV)/.installed-$(EXTRAS)-test
	$(BIN)/mkdocs build --strict --site-dir site

# The wheel as a user gets it: built from a clean copy of the tree, installed (not editable) in a fresh
# venv, then `cnn-tui --version` and `cnn-tui demo` run from it (a missing module or data file fails).
package-check: $(VENV)/.installed-$(EXTRAS)-test
	VENV_PYTHON=$(BIN)/python tools/check_package.sh

# Every benchmark, ours against the plain alternative, medians and ratios; rewrites the
# figures table in docs/benchmarks.md. BENCH_ARGS passes options, e.g. --data-dir DIR or --quick.
bench: $(VENV)/.installed-$(EXTRAS)
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache datasets site build
