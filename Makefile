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
BUNDLE := bundle
DEMO_MEMBERS := $(foreach exp,demo_b0 demo_b0_noteacher demo_v2s,outputs/$(exp)/export/model.onnx)

.PHONY: install demo dashboard review test bundle bench lint browser translations clean-outputs clean-runs

# Reinstall whenever the declared dependencies change.
$(STAMP): pyproject.toml requirements/constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements/constraints.txt -e '.[train,dev]'
	@touch $@

install: $(STAMP)

# Supervised (BirdNET distillation) -> Noisy Student x2 -> select -> export -> Site-22 harness,
# then field inference on the S22 soundscape.
demo: $(STAMP)
	dvc repro harness@demo_b0
	pantanal infer $(SOUNDSCAPE) --model $(DEMO_OUT)/export/model.onnx --out $(DEMO_OUT)/infer
	@echo
	@echo "Model:       $(DEMO_OUT)/export/model.onnx"
	@echo "Harness:     $(DEMO_OUT)/harness/S22.json"
	@echo "Submission:  $(DEMO_OUT)/infer/submission.csv"
	@echo "Detections:  $(DEMO_OUT)/infer/detections.csv"
	@echo "Report:      $(DEMO_OUT)/infer/report.html"
	@echo "MLflow runs: mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlruns/mlflow.db"

# The champion dashboard from MLflow and the decision ledger.
dashboard: $(STAMP)
	pantanal dashboard --out outputs/dashboard.html
	@echo "Dashboard:   outputs/dashboard.html"

# The review notebook, executed on the demo's harness report; the tracked notebook stays clean.
review: $(STAMP)
	@test -f $(DEMO_OUT)/harness/S22.json || { echo "no harness report yet: run make demo first"; exit 1; }
	PANTANAL_HARNESS_REPORT=$(CURDIR)/$(DEMO_OUT)/harness/S22.json MPLBACKEND=module://matplotlib_inline.backend_inline \
		jupyter-execute notebooks/review_harness.ipynb --output=$(CURDIR)/outputs/review_harness.ipynb
	@echo "Review:      outputs/review_harness.ipynb (open it in JupyterLab or VS Code)"

# The demo ensemble: three CNN members (B0 distilled from BirdNET, B0 without a teacher, V2-S) and
# the BirdNET V2.4 teacher, packaged into bundle/ and checked on the S22 soundscape. The checklist
# scores through the bundle loader and writes the checked submission to outputs/bundle_checklist/.
# The teacher only gates here, and one centred 3 s window per 5 s window halves its cost, which
# brings the bundle past 30 files/min on 2 cores (docs/benchmarks.md).
bundle: $(STAMP)
	dvc repro $(foreach exp,demo_b0 demo_b0_noteacher demo_v2s,export@$(exp))
	pantanal package --members $(DEMO_MEMBERS) --teacher birdnet_v24 --teacher-sub-windows centre \
		--taxonomy $(DATA)/taxonomy.csv --out $(BUNDLE) --force
	pantanal checklist $(BUNDLE) --input $(DATA)/train_soundscapes \
		--sample-submission $(DATA)/sample_submission.csv --out outputs/bundle_checklist
	pantanal infer $(SOUNDSCAPE) --bundle $(BUNDLE) --out outputs/bundle_infer

# Speed on real 60 s soundscapes (not a test): per-member compute, end to end, overhead ratio.
bench: $(STAMP)
	@test -f $(BUNDLE)/manifest.json || $(MAKE) bundle
	$(BIN)/python bench/bench_inference.py --bundle $(BUNDLE) --int8 --json .bench/inference.json
	$(BIN)/python bench/stream_rss.py --model outputs/demo_b0/export/model.onnx

# Headless Chromium for the report and dashboard tests (Debian's package; root or sudo).
browser:
	@scripts/ensure_chromium.sh

test: $(STAMP) browser
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/lint-imports

# Extract the field command's strings (and argparse's own), merge them into the pt-BR catalog,
# compile it. Translate the new empty entries in the .po, then run this again.
translations: $(STAMP)
	$(BIN)/pybabel extract --no-location --sort-output --width 100 -k _ -k ngettext:1,2 -o .pantanal.pot \
		src/infer $$($(BIN)/python -c 'import argparse; print(argparse.__file__)')
	$(BIN)/pybabel update --no-fuzzy-matching --ignore-obsolete --width 100 -i .pantanal.pot \
		-d src/infer/locale -D pantanal -l pt_BR
	$(BIN)/pybabel compile --statistics -d src/infer/locale -D pantanal
	rm -f .pantanal.pot

# Generated models, reports and bundles. MLflow runs stay: the decision ledger in registry/
# refers to them, and `pantanal registry check` would report every decided run as missing.
clean-outputs:
	rm -rf outputs bundle dvc.lock

# MLflow runs too (mlruns/); decisions already in registry/decisions/ then point at nothing.
clean-runs: clean-outputs
	rm -rf mlruns
