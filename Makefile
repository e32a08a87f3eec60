# Every target installs what it needs first (a stamp file makes repeat runs instant).
PYTHON ?= python3
PIP := $(PYTHON) -m pip
STAMP := .stamp-install
export PYTHONUNBUFFERED := 1

.PHONY: install demo test test-all bench lint clean

$(STAMP): pyproject.toml
	$(PIP) install -q -e '.[dev]'
	@# onnxruntime-web for `--target web` (npm registry, integrity-checked, cached; see README "Web").
	@if command -v npm >/dev/null; then $(PYTHON) -m edgeattn web setup || echo "onnxruntime-web not fetched: rerun 'edgeattn web setup'"; \
	else echo "npm not found: run 'edgeattn web setup' (or --from-tarball) before web exports"; fi
	@touch $(STAMP)

install: $(STAMP)

# The whole job on built-in data: train, prune, PTQ + QAT, export, validate, bench, report.
demo: $(STAMP)
	EDGEATTN_PROGRESS=1 $(PYTHON) -m edgeattn run recipes/demo_quick.yaml

test: $(STAMP)
	$(PYTHON) -m pytest -n 2 --dist loadfile -q

test-all: $(STAMP)
	$(PYTHON) -m pytest -n 2 --dist loadfile -q -m "not gpu and not macos"

# BENCH_ARGS="--models attn_vgg16" runs a subset (see `python -m edgeattn.bench.standing --help`).
bench: $(STAMP)
	EDGEATTN_PROGRESS=1 $(PYTHON) -m edgeattn.bench.standing --out exported/bench $(BENCH_ARGS)

lint: $(STAMP)
	$(PYTHON) -m ruff check edgeattn tests
	$(PYTHON) -m ruff format --check edgeattn tests

clean:
	rm -rf exported/*/ .pytest_cache $(STAMP)
