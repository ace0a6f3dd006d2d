# Every target creates or refreshes the virtual environment .venv first when it is missing
# or older than pyproject.toml, so `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup test demo bench bench-video clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,bench]'
	touch $(STAMP)

setup: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

demo: $(STAMP)
	$(PY) experiments/demo.py

bench: $(STAMP)
	$(PY) experiments/bench_entropy.py

# Long: fits 8 networks on the CPU (hours). Finished points are cached under out/.
bench-video: $(STAMP)
	$(PY) experiments/bench_video_rd.py --epochs 60

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis
