# pantanal: `make demo` runs the whole pipeline on the bundled real recordings, `make test` runs
# the tests. Both create .venv and install into it on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(BIN):$(PATH)

DATA ?= ../shared/data/birdclef2026-mini
SOUNDSCAPE := $(DATA)/train_soundscapes/BC2026_Train_0039_S22_20211231_201500.ogg
DEMO_OUT := outputs/demo_b0

.PHONY: install demo test bundle bench lint browser translations clean-outputs

# Reinstall whenever the declared dependencies change.
$(STAMP): pyproject.toml requirements/constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements/constraints.txt -e '.[train,dev]'
	@touch $@

install: $(STAMP)

# Supervised (BirdNET distillation) -> Noisy Student x2 -> select -> export, then field inference.
demo: $(STAMP)
	dvc repro export@demo_b0
	pantanal infer $(SOUNDSCAPE) --model $(DEMO_OUT)/export/model.onnx --out $(DEMO_OUT)/infer
	@echo
	@echo "Model:       $(DEMO_OUT)/export/model.onnx"
	@echo "Submission:  $(DEMO_OUT)/infer/submission.csv"
	@echo "Detections:  $(DEMO_OUT)/infer/detections.csv"
	@echo "MLflow runs: mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlruns/mlflow.db"

# Headless Chromium for the report and dashboard tests (Debian's package; root or sudo).
browser:
	@scripts/ensure_chromium.sh

test: $(STAMP) browser
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/lint-imports

# Peak RSS of `pantanal infer` streaming a generated 24-hour recording (bench/stream_rss.py --help).
bench: $(STAMP)
	$(BIN)/python bench/stream_rss.py

# Extract the field command's strings (and argparse's own), merge them into the pt-BR catalog,
# compile it. Translate the new empty entries in the .po, then run this again.
translations: $(STAMP)
	$(BIN)/pybabel extract --no-location --sort-output --width 100 -k _ -k ngettext:1,2 -o .pantanal.pot \
		src/infer $$($(BIN)/python -c 'import argparse; print(argparse.__file__)')
	$(BIN)/pybabel update --no-fuzzy-matching --ignore-obsolete --width 100 -i .pantanal.pot \
		-d src/infer/locale -D pantanal -l pt_BR
	$(BIN)/pybabel compile --statistics -d src/infer/locale -D pantanal
	rm -f .pantanal.pot

clean-outputs:
	rm -rf outputs mlruns dvc.lock
