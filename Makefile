# Every target installs what it needs first (a stamp file makes repeat runs instant).
PYTHON ?= python3
PIP := $(PYTHON) -m pip
STAMP := .stamp-install
export PYTHONUNBUFFERED := 1

.PHONY: install demo test test-all bench lint clean

$(STAMP): pyproject.toml
	$(PIP) install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# Until `edgeattn run` lands, the demo trains and evaluates a small attention model on built-in data.
demo: $(STAMP)
	EDGEATTN_PROGRESS=1 $(PYTHON) -m edgeattn train --model attn_vgg11 --data builtin:digits --input-size 32 \
		--epochs 6 --option width=0.5 --option batch_norm=true --out exported/demo/attn_vgg11.pt
	$(PYTHON) -m edgeattn eval exported/demo/attn_vgg11.pt --data builtin:digits --json exported/demo/eval.json
	$(PYTHON) -m edgeattn profile exported/demo/attn_vgg11.pt

test: $(STAMP)
	$(PYTHON) -m pytest -n 2 --dist loadfile -q

test-all: $(STAMP)
	$(PYTHON) -m pytest -n 2 --dist loadfile -q -m "not gpu and not macos"

bench: $(STAMP)
	EDGEATTN_PROGRESS=1 $(PYTHON) -m edgeattn.bench.standing --out exported/bench

lint: $(STAMP)
	$(PYTHON) -m ruff check edgeattn tests
	$(PYTHON) -m ruff format --check edgeattn tests

clean:
	rm -rf exported/*/ .pytest_cache $(STAMP)
