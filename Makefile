# Two entry points for a fresh machine with only Python 3.11: `make run` and `make test`.
# Both create .venv when missing and (re)install only when pyproject.toml changed.
# EXTRAS picks the Keras backend build: cpu (default), gpu (tensorflow[and-cuda]) or jax.

PYTHON ?= python3
VENV   ?= .venv
EXTRAS ?= cpu
BIN    := $(VENV)/bin
DATA   := app_input/digits_data_params.json
HYPER  := app_input/digits_hyper_params.json

.PHONY: run test demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-$(EXTRAS): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $@

$(VENV)/.installed-$(EXTRAS)-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS),test]'
	touch $@

# The main job on the built-in demo data: digits -> summary -> training with validation
# -> evaluation -> confusion matrix, with the tables printed and the PNG paths shown.
run: $(VENV)/.installed-$(EXTRAS)
	$(BIN)/cnn-tui demo
	$(BIN)/cnn-tui pipeline --data $(DATA) --hyper $(HYPER)

demo: run

test: $(VENV)/.installed-$(EXTRAS)-test
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .pytest_cache datasets
